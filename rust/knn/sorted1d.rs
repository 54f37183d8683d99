//! One-dimensional neighbour queries on a sorted copy of the values.
//!
//! Radius counts gallop outwards from the query's own position and finish with a binary search;
//! the predicate is always the computed distance |v − q| compared with the radius (never
//! `v < q − r`, which rounds differently), so counts equal the other back-ends' exactly.
//! Rounding is monotone, so |v − q| never increases as v approaches q from either side.

use super::{scatter_rows, check_k, query_in_order, KBest, NeighborSearch, Points, Real};
use crate::error::Result;
use crate::parallel::Ctl;
use rayon::prelude::*;

const QUERY_BLOCK: usize = 1024;

pub struct Sorted1D<T> {
    /// Values in ascending order (ties by original index).
    values: Vec<T>,
    /// Sorted position → original index.
    order: Vec<u32>,
}

impl<T: Real> Sorted1D<T> {
    pub fn new(points: Points<'_, T>, ctl: &Ctl) -> Self {
        debug_assert_eq!(points.d(), 1);
        // Sorting (value, index) pairs keeps the comparisons on contiguous memory.
        let mut pairs: Vec<(T, u32)> = points.data().iter().enumerate().map(|(i, &v)| (v, i as u32)).collect();
        ctl.install(|| pairs.par_sort_unstable_by(|a, b| a.0.total_order(&b.0).then(a.1.cmp(&b.1))));
        let (values, order) = pairs.into_iter().unzip();
        Sorted1D { values, order }
    }

    /// Number of positions `j` on one side of `p` (walking away by `step` = ±1) whose distance to
    /// the value at `p` satisfies `inside`; `inside` holds on a prefix of the walk.
    #[inline]
    fn count_side(&self, p: usize, inside: impl Fn(T) -> bool, towards_end: bool) -> usize {
        let q = self.values[p];
        let avail = if towards_end { self.values.len() - 1 - p } else { p };
        let at = |s: usize| {
            let j = if towards_end { p + s } else { p - s };
            inside((self.values[j] - q).abs())
        };
        // Gallop: find the first step s (1-based) with !at(s), bracketed in (lo, hi].
        let mut lo = 0; // at(lo) is known true (s = 0 is the query itself)
        let mut hi = 1;
        while hi <= avail && at(hi) {
            lo = hi;
            hi *= 2;
        }
        let hi = hi.min(avail + 1);
        // Branch-free binary search in (lo, hi): at(lo) true, at(hi) false or out of range.
        let mut len = hi - lo;
        while len > 1 {
            let half = len / 2;
            if at(lo + half) {
                lo += half;
            }
            len -= half;
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
        query_in_order(&self.order, QUERY_BLOCK, ctl, || (), |_, p| {
            let r = radii[self.order[p] as usize];
            let inside = |dist: T| if strict { dist < r } else { dist <= r };
            (self.count_side(p, inside, false) + self.count_side(p, inside, true)) as u32
        })
    }
}
