//! One-dimensional neighbour queries on a sorted copy of the values.
//!
//! Radius counts gallop outwards from the query's own position and finish with a binary search;
//! the predicate is always the computed distance |v − q| compared with the radius (never
//! `v < q − r`, which rounds differently), so counts equal the other back-ends' exactly.
//! Rounding is monotone, so |v − q| never increases as v approaches q from either side.

use super::sort::{sort_with_buckets, Buckets};
use super::{
    check_k, need_distances, need_neighbour_lists, new_bests, queries_per_block, query_in_order, scatter_rows, within,
    NeighborSearch,
};
use crate::error::Result;
use crate::memory;
use crate::parallel::Ctl;
use crate::points::{Points, Real};

const QUERY_BLOCK: usize = 1024;
/// Positions tested at once by the windowed edge search of the radius counts.
const WINDOW: usize = 16;

pub struct Sorted1D<T> {
    /// Values in ascending order (ties by original index).
    values: Vec<T>,
    /// Sorted position → original index.
    order: Vec<u32>,
    /// A bucket index over the value range (the sort's buckets): it only *guesses* where a
    /// boundary lies; the boundary itself is then settled from the guess with the exact distance
    /// predicate.
    buckets: Buckets,
}

impl<T: Real> Sorted1D<T> {
    pub fn new(points: Points<'_, T>, ctl: &Ctl) -> Result<Self> {
        debug_assert_eq!(points.d(), 1);
        let (values, order, buckets) = sort_with_buckets(points.data(), ctl)?;
        Ok(Self::from_sorted(values, order, buckets))
    }

    /// From values already in ascending order (ties by original index), their original indices
    /// and the buckets the sort used over them (`sort_with_buckets`).
    pub(crate) fn from_sorted(values: Vec<T>, order: Vec<u32>, buckets: Buckets) -> Self {
        debug_assert!(values.windows(2).all(|w| w[0].total_order(&w[1]).is_le()));
        debug_assert_eq!(*buckets.start.last().unwrap() as usize, values.len());
        Sorted1D { values, order, buckets }
    }

    /// Number of positions on one side of `p` (towards the end, or towards the start) whose
    /// distance to the value at `p` satisfies `inside`; `inside` holds for the first steps away
    /// from `p` and then never again. The search gallops from `guess` (a position near the run's
    /// edge), so its cost is logarithmic in the guess's error, usually a bucket's occupancy.
    #[inline]
    fn edge_from_guess(&self, p: usize, guess: usize, inside: &impl Fn(T) -> bool, towards_end: bool) -> usize {
        let q = self.values[p];
        let avail = if towards_end { self.values.len() - 1 - p } else { p };
        // at(s): is the position s steps away from p inside? at(0) holds (p itself).
        let at = |s: usize| {
            let j = if towards_end { p + s } else { p - s };
            inside((self.values[j] - q).abs())
        };
        let g = if towards_end {
            guess.saturating_sub(p)
        } else {
            p.saturating_sub(guess)
        }
        .min(avail);
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
            let dl = if l > 0 {
                (self.values[l - 1] - q).abs()
            } else {
                T::INFINITY
            };
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
        let mut out = memory::zeros::<u32>(self.values.len(), need_distances(self.values.len()))?;
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
        let mut out = memory::zeros::<u32>(self.values.len(), need_distances(self.values.len()))?;
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
        if strict {
            self.count_at_rule::<true>(p, r)
        } else {
            self.count_at_rule::<false>(p, r)
        }
    }

    /// `count_at` with the radius rule fixed at compile time (`within(·, r, STRICT)`), so that the
    /// window tests below compile to straight-line vector code.
    #[inline(always)]
    fn count_at_rule<const STRICT: bool>(&self, p: usize, r: T) -> u32 {
        let q = self.values[p];
        let inside = |dist: T| within(dist, r, STRICT);
        let (qf, rf) = (q.to_f64(), r.to_f64());
        let (g_left, g_right) = (self.buckets.guess(qf - rf), self.buckets.guess(qf + rf));
        let left = self
            .edge_in_window(p, g_left, &inside, false)
            .unwrap_or_else(|| self.edge_from_guess(p, g_left, &inside, false));
        let right = self
            .edge_in_window(p, g_right, &inside, true)
            .unwrap_or_else(|| self.edge_from_guess(p, g_right, &inside, true));
        (left + right) as u32
    }

    /// `edge_from_guess` without branches on the values, when the edge falls in the window of
    /// [`WINDOW`] positions that starts just before `guess` (the common case: a bucket holds a few
    /// values): `inside` is tested on the whole window at once, and since it holds on a contiguous
    /// run next to `p` (see `edge_from_guess`), the number of positions inside locates the edge.
    /// None when the window does not settle it (the edge lies outside, or near the ends).
    #[inline(always)]
    fn edge_in_window(&self, p: usize, guess: usize, inside: &impl Fn(T) -> bool, towards_end: bool) -> Option<usize> {
        let (n, q) = (self.values.len(), self.values[p]);
        if towards_end {
            // Positions a..a + WINDOW, all after p; inside holds on a prefix of them.
            let a = guess.saturating_sub(2).max(p + 1);
            if a + WINDOW > n {
                return None;
            }
            let w: &[T; WINDOW] = self.values[a..a + WINDOW].try_into().unwrap();
            let m: usize = w.iter().map(|&v| inside((v - q).abs()) as usize).sum();
            // The last position inside is a + m − 1, unless the run may start before or go past the window.
            ((m > 0 || a == p + 1) && (m < WINDOW || a + WINDOW == n)).then(|| a + m - 1 - p)
        } else {
            // Positions a..a + WINDOW, all before p; inside holds on a suffix of them.
            if p < WINDOW {
                return None;
            }
            let a = guess.saturating_sub(2).min(p - WINDOW);
            let w: &[T; WINDOW] = self.values[a..a + WINDOW].try_into().unwrap();
            let outside: usize = w.iter().map(|&v| !inside((v - q).abs()) as usize).sum();
            // The first position inside is a + outside, unless the run may start before or after the window.
            ((outside > 0 || a == 0) && (outside < WINDOW || a + WINDOW == p)).then(|| p - (a + outside))
        }
    }
}

impl<T: Real> NeighborSearch<T> for Sorted1D<T> {
    fn n(&self) -> usize {
        self.values.len()
    }

    fn kth_distances(&self, k: usize, ctl: &Ctl) -> Result<Vec<T>> {
        check_k(k, self.values.len())?;
        // kth_at walks k positions per query: fewer queries per block for large k.
        query_in_order(
            &self.order,
            queries_per_block(QUERY_BLOCK, k),
            ctl,
            || (),
            |_, p| self.kth_at(p, k),
        )
    }

    fn knn_indices(&self, k: usize, ctl: &Ctl) -> Result<Vec<u32>> {
        check_k(k, self.values.len())?;
        let n = self.values.len();
        let mut by_pos = memory::zeros::<u32>(n.saturating_mul(k), need_neighbour_lists(n, k))?;
        ctl.try_fill_blocks(&mut by_pos, queries_per_block(QUERY_BLOCK, k) * k, |start, out| {
            let mut best = new_bests(1, k)?.pop().unwrap();
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
                for (o, &(_, idx)) in row.iter_mut().zip(best.sorted()) {
                    *o = idx;
                }
            }
            Ok(())
        })?;
        scatter_rows(&self.order, &by_pos, k)
    }

    fn count_within(&self, radii: &[T], strict: bool, ctl: &Ctl) -> Result<Vec<u32>> {
        query_in_order(
            &self.order,
            QUERY_BLOCK,
            ctl,
            || (),
            |_, p| self.count_at(p, radii[self.order[p] as usize], strict),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks that `start[b]` is the first position whose bucket is ≥ b.
    fn assert_bucket_starts(s: &Sorted1D<f64>, what: &str) {
        let (n, bk) = (s.values.len(), &s.buckets);
        let nb = bk.start.len() - 1;
        let mut want = 0;
        for b in 0..=nb {
            while want < n && Buckets::bucket(bk.lowest, bk.per_unit, nb, s.values[want]) < b {
                want += 1;
            }
            assert_eq!(bk.start[b] as usize, want, "{what} n={n} b={b}");
        }
    }

    /// The bucket starts the sort hands over (`Sorted1D::new`: filled in parallel by the bucket
    /// sort from 64 values on, built over the sorted values below) equal their definition (first
    /// position whose bucket is ≥ b), for skewed values with ties.
    #[test]
    fn bucket_starts_equal_their_definition() {
        let ctl = Ctl::uninterruptible().unwrap();
        for n in [1usize, 2, 63, 64, 100, 16_384, 16_385, 50_001] {
            let values: Vec<f64> = (0..n)
                .map(|i| ((i * 7919 % 1000) as f64 / 1000.0).powi(6) * if i % 5 == 0 { 3.0 } else { 1.0 })
                .collect();
            assert_bucket_starts(
                &Sorted1D::new(Points::trusted(&values, n, 1), &ctl).unwrap(),
                "from the sort",
            );
        }
    }

    /// Radius counts equal the naive count, strict and inclusive, with runs of equal values
    /// longer than the search window, radii from 0 to the whole span and exact gaps (boundary
    /// cases), so both the windowed search and its galloping fallback decide edges.
    #[test]
    fn counts_equal_naive_around_the_window() {
        let ctl = Ctl::uninterruptible().unwrap();
        let n = 3000;
        let mut rng = crate::knn::tests::SplitMix(77);
        let values: Vec<f64> = (0..n)
            .map(|i| match i % 4 {
                0 => (rng.next_u64() % 50) as f64 * 0.125, // runs of ties (about 15 per value)
                1 => rng.uniform().powi(3) * 4.0,
                _ => rng.uniform() * 6.0,
            })
            .collect();
        let radii: Vec<f64> = (0..n)
            .map(|i| match i % 5 {
                0 => 0.0,
                1 => 0.125 * (i % 7) as f64,
                2 => rng.uniform() * 0.01,
                3 => rng.uniform() * 0.5,
                _ => rng.uniform() * 8.0,
            })
            .collect();
        let s = Sorted1D::new(Points::trusted(&values, n, 1), &ctl).unwrap();
        for strict in [true, false] {
            let counts = s.count_within(&radii, strict, &ctl).unwrap();
            for i in 0..n {
                let expected = (0..n)
                    .filter(|&j| j != i && within((values[j] - values[i]).abs(), radii[i], strict))
                    .count();
                assert_eq!(counts[i] as usize, expected, "strict={strict} i={i}");
            }
        }
    }
}
