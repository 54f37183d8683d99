//! One-dimensional neighbour queries on a sorted copy of the values.
//!
//! Radius counts gallop outwards from the query's own position and finish with a binary search;
//! the predicate is always the computed distance |v − q| compared with the radius (never
//! `v < q − r`, which rounds differently), so counts equal the other back-ends' exactly.
//! Rounding is monotone, so |v − q| never increases as v approaches q from either side.

use super::{scatter_rows, sort_with_indices, check_k, within, query_in_order, KBest, NeighborSearch, Points, Real};
use crate::error::Result;
use crate::parallel::{split_at_bounds, Ctl};
use rayon::prelude::*;

const QUERY_BLOCK: usize = 1024;

pub struct Sorted1D<T> {
    /// Values in ascending order (ties by original index).
    values: Vec<T>,
    /// Sorted position → original index.
    order: Vec<u32>,
    /// A bucket index over the value range: `bucket_start[b]` is the first position whose value
    /// falls in bucket b or later. It only *guesses* where a boundary lies; the boundary itself is
    /// then settled by galloping from the guess with the exact distance predicate.
    bucket_start: Vec<u32>,
    lowest: f64,
    buckets_per_unit: f64,
}

impl<T: Real> Sorted1D<T> {
    /// (`_ctl`: the sort is a serial radix sort, faster at these sizes than the parallel
    /// comparison sort it replaced even on two threads.)
    pub fn new(points: Points<'_, T>, ctl: &Ctl) -> Self {
        debug_assert_eq!(points.d(), 1);
        let (values, order) = sort_with_indices(points.data(), ctl);
        Self::from_sorted(values, order, ctl)
    }

    /// From values already in ascending order (ties by original index) and their original indices.
    pub fn from_sorted(values: Vec<T>, order: Vec<u32>, ctl: &Ctl) -> Self {
        debug_assert!(values.windows(2).all(|w| w[0].total_order(&w[1]).is_le()));
        let n = values.len();
        let lowest = values[0].to_f64();
        let span = values[n - 1].to_f64() - lowest;
        let n_buckets = n.max(1);
        let buckets_per_unit = if span > 0.0 && span.is_finite() { n_buckets as f64 / span } else { 0.0 };
        let bucket_of = |p: usize| (((values[p].to_f64() - lowest) * buckets_per_unit) as usize).min(n_buckets - 1);
        // bucket_start[b] = first position whose bucket is ≥ b (n past the last one). Buckets never
        // decrease along the sorted values, so a block of positions p0..p1 decides exactly the
        // entries after the bucket of p0 − 1 up to the bucket of p1 − 1: blocks fill disjoint
        // ranges, in parallel.
        let block = 1 << 14;
        let mut cuts: Vec<usize> = (0..n).step_by(block).map(|p0| if p0 == 0 { 0 } else { bucket_of(p0 - 1) + 1 }).collect();
        cuts.push(bucket_of(n - 1) + 1);
        cuts.push(n_buckets + 1);
        let mut bucket_start = vec![n as u32; n_buckets + 1];
        // Past the last value's bucket (the last cut) every entry keeps n.
        let mut segments = split_at_bounds(&mut bucket_start, &cuts[..cuts.len() - 1]);
        let cuts = &cuts;
        ctl.install(|| {
            segments.par_iter_mut().enumerate().for_each(|(c, seg)| {
                let mut p = c * block;
                for (b, o) in (cuts[c]..).zip(seg.iter_mut()) {
                    while bucket_of(p) < b {
                        p += 1;
                    }
                    *o = p as u32;
                }
            })
        });
        Sorted1D { values, order, bucket_start, lowest, buckets_per_unit }
    }

    /// A position near the first value ≥ `v` (only a starting point for the exact search).
    #[inline(always)]
    fn guess(&self, v: f64) -> usize {
        let nb = self.bucket_start.len() - 1;
        let b = (v - self.lowest) * self.buckets_per_unit;
        let b = if b > 0.0 { (b as usize).min(nb - 1) } else { 0 };
        self.bucket_start[b] as usize
    }

    /// Number of positions on one side of `p` (towards the end, or towards the start) whose
    /// distance to the value at `p` satisfies `inside`; `inside` holds for the first steps away
    /// from `p` and then never again. The search gallops from `guess` (a position near the run's
    /// edge), so its cost is logarithmic in the guess's error, usually a bucket's occupancy.
    #[inline]
    fn edge_from_guess(&self, p: usize, guess: usize, inside: impl Fn(T) -> bool, towards_end: bool) -> usize {
        let q = self.values[p];
        let avail = if towards_end { self.values.len() - 1 - p } else { p };
        // at(s): is the position s steps away from p inside? at(0) holds (p itself).
        let at = |s: usize| {
            let j = if towards_end { p + s } else { p - s };
            inside((self.values[j] - q).abs())
        };
        let g = if towards_end { guess.saturating_sub(p) } else { p.saturating_sub(guess) }.min(avail);
        // Invariant: at(lo) holds; hi is past the end or !at(hi).
        let (mut lo, mut hi) = (0, avail + 1);
        if g > 0 {
            let mut step = 1;
            if at(g) {
                lo = g;
                while lo + step <= avail && at(lo + step) {
                    lo += step;
                    step *= 2;
                }
                hi = (lo + step).min(avail + 1);
            } else {
                hi = g;
                while step < hi && !at(hi - step) {
                    hi -= step;
                    step *= 2;
                }
                lo = hi.saturating_sub(step);
            }
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if at(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The k nearest (distance, position) by merging outwards from `p`.
    #[inline]
    fn kth_at(&self, p: usize, k: usize) -> T {
        let q = self.values[p];
        let n = self.values.len();
        let (mut l, mut r) = (p, p + 1); // next left candidate is l - 1
        let mut last = T::ZERO;
        for _ in 0..k {
            let dl = if l > 0 { (self.values[l - 1] - q).abs() } else { T::INFINITY };
            let dr = if r < n { (self.values[r] - q).abs() } else { T::INFINITY };
            if dl <= dr {
                last = dl;
                l -= 1;
            } else {
                last = dr;
                r += 1;
            }
        }
        last
    }
}

impl<T: Real> Sorted1D<T> {
    /// Strict (`<`) or inclusive radius counts like `count_within`, but with radii and counts
    /// indexed by *sorted position* (no gather of radii, no scatter of counts).
    pub fn count_within_by_position(&self, radii: &[T], strict: bool, ctl: &Ctl) -> Result<Vec<u32>> {
        let mut out = vec![0u32; self.values.len()];
        ctl.fill_blocks(&mut out, QUERY_BLOCK, |start, block| {
            for (j, o) in block.iter_mut().enumerate() {
                *o = self.count_at(start + j, radii[start + j], strict);
            }
        })?;
        Ok(out)
    }

    /// Like `count_within` (radii in original order), but the counts come in sorted order: for
    /// callers that only sum them, this spares scattering them back.
    pub fn count_within_in_sorted_order(&self, radii: &[T], strict: bool, ctl: &Ctl) -> Result<Vec<u32>> {
        let mut out = vec![0u32; self.values.len()];
        ctl.fill_blocks(&mut out, QUERY_BLOCK, |start, block| {
            for (j, o) in block.iter_mut().enumerate() {
                let p = start + j;
                *o = self.count_at(p, radii[self.order[p] as usize], strict);
            }
        })?;
        Ok(out)
    }

    /// #{j ≠ p : |v_j − v_p| within r} for the value at sorted position p.
    #[inline]
    fn count_at(&self, p: usize, r: T, strict: bool) -> u32 {
        let inside = |dist: T| within(dist, r, strict);
        let (q, rf) = (self.values[p].to_f64(), r.to_f64());
        let left = self.edge_from_guess(p, self.guess(q - rf), inside, false);
        let right = self.edge_from_guess(p, self.guess(q + rf), inside, true);
        (left + right) as u32
    }
}

impl<T: Real> NeighborSearch<T> for Sorted1D<T> {
    fn n(&self) -> usize {
        self.values.len()
    }

    fn kth_distances(&self, k: usize, ctl: &Ctl) -> Result<Vec<T>> {
        check_k(k, self.values.len())?;
        query_in_order(&self.order, QUERY_BLOCK, ctl, || (), |_, p| self.kth_at(p, k))
    }

    fn knn_indices(&self, k: usize, ctl: &Ctl) -> Result<Vec<u32>> {
        check_k(k, self.values.len())?;
        let n = self.values.len();
        let mut by_pos = vec![0u32; n * k];
        ctl.fill_blocks(&mut by_pos, QUERY_BLOCK * k, |start, out| {
            let mut best = KBest::new(k);
            for (j, row) in out.chunks_mut(k).enumerate() {
                let p = start / k + j;
                let q = self.values[p];
                let kth = self.kth_at(p, k);
                // Every point at distance <= kth competes, so ties go to the smaller index.
                best.clear();
                let mut l = p;
                while l > 0 && (self.values[l - 1] - q).abs() <= kth {
                    l -= 1;
                    best.consider((self.values[l] - q).abs(), self.order[l]);
                }
                let mut r = p + 1;
                while r < n && (self.values[r] - q).abs() <= kth {
                    best.consider((self.values[r] - q).abs(), self.order[r]);
                    r += 1;
                }
                for (o, &(_, idx)) in row.iter_mut().zip(best.items()) {
                    *o = idx;
                }
            }
        })?;
        Ok(scatter_rows(&self.order, &by_pos, k))
    }

    fn count_within(&self, radii: &[T], strict: bool, ctl: &Ctl) -> Result<Vec<u32>> {
        query_in_order(&self.order, QUERY_BLOCK, ctl, || (), |_, p| self.count_at(p, radii[self.order[p] as usize], strict))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bucket starts, filled block by block in parallel, equal their definition (first
    /// position whose bucket is ≥ b), for skewed values with ties over several blocks.
    #[test]
    fn bucket_starts_equal_their_definition() {
        let ctl = Ctl::uninterruptible().unwrap();
        for n in [1usize, 2, 100, 16_384, 16_385, 50_001] {
            let mut values: Vec<f64> = (0..n).map(|i| ((i * 7919 % 1000) as f64 / 1000.0).powi(6) * if i % 5 == 0 { 3.0 } else { 1.0 }).collect();
            values.sort_by(|a, b| a.total_cmp(b));
            let order: Vec<u32> = (0..n as u32).collect();
            let s = Sorted1D::from_sorted(values.clone(), order, &ctl);
            let bucket = |v: f64| (((v - s.lowest) * s.buckets_per_unit) as usize).min(n.max(1) - 1);
            let mut want = 0;
            for b in 0..=n.max(1) {
                while want < n && bucket(values[want]) < b {
                    want += 1;
                }
                assert_eq!(s.bucket_start[b] as usize, want, "n={n} b={b}");
            }
        }
    }
}
