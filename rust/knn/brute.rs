//! Exact brute-force neighbour queries: every query is compared with every point.
//!
//! Cache-blocked: a block of `QUERY_BLOCK` queries sweeps the points in tiles of about 64 KiB, so
//! each tile is read from cache once per query block instead of once per query; distances stop
//! early (every 8 coordinates) once they exceed the current bound. Parallel over query blocks,
//! O(N) memory, no copy of the points. This is the path for high dimensions, where k-d trees
//! degenerate into a slower scan.

use super::metric::Metric;
use super::{check_k, knn_indices_in_blocks, kth_distances_in_blocks, within, KBest, NeighborSearch};
use crate::error::Result;
use crate::parallel::Ctl;
use crate::points::{Points, Real};
use crate::with_dim;
use std::marker::PhantomData;

const QUERY_BLOCK: usize = 32;
const TILE_BYTES: usize = 64 * 1024;

pub struct BruteForce<'a, T, M> {
    points: Points<'a, T>,
    tile: usize,
    _metric: PhantomData<M>,
}

impl<'a, T: Real, M: Metric> BruteForce<'a, T, M> {
    pub fn new(points: Points<'a, T>) -> Self {
        let tile = (TILE_BYTES / (points.d() * std::mem::size_of::<T>())).max(16);
        BruteForce {
            points,
            tile,
            _metric: PhantomData,
        }
    }

    /// k-NN of queries `start..start + bests.len()`.
    fn knn_block<const D: usize>(&self, start: usize, bests: &mut [KBest<T>], exact_ties: bool) {
        let n = self.points.n();
        for b in bests.iter_mut() {
            b.clear();
        }
        let mut t0 = 0;
        while t0 < n {
            let t1 = n.min(t0 + self.tile);
            for (qi, best) in bests.iter_mut().enumerate() {
                let i = start + qi;
                let q = self.points.row(i);
                for j in t0..t1 {
                    if j == i {
                        continue;
                    }
                    let bound = best.worst();
                    let dist = M::dist_bounded::<T, D>(q, self.points.row(j), bound);
                    if dist < bound || (exact_ties && dist == bound) {
                        best.consider(dist, j as u32);
                    }
                }
            }
            t0 = t1;
        }
    }
}

impl<T: Real, M: Metric> NeighborSearch<T> for BruteForce<'_, T, M> {
    fn n(&self) -> usize {
        self.points.n()
    }

    fn kth_distances(&self, k: usize, ctl: &Ctl) -> Result<Vec<T>> {
        check_k(k, self.points.n())?;
        with_dim!(self.points.d(), D => {
            kth_distances_in_blocks::<T, M>(self.points.n(), k, QUERY_BLOCK, ctl, |start, bests| {
                self.knn_block::<D>(start, bests, false)
            })
        })
    }

    fn knn_indices(&self, k: usize, ctl: &Ctl) -> Result<Vec<u32>> {
        check_k(k, self.points.n())?;
        with_dim!(self.points.d(), D => {
            knn_indices_in_blocks(self.points.n(), k, QUERY_BLOCK, ctl, |start, bests| self.knn_block::<D>(start, bests, true))
        })
    }

    fn count_within(&self, radii: &[T], strict: bool, ctl: &Ctl) -> Result<Vec<u32>> {
        let n = self.points.n();
        let mut out = vec![0u32; n];
        with_dim!(self.points.d(), D => {
            ctl.fill_blocks(&mut out, QUERY_BLOCK, |start, block| {
                let reduced: Vec<T> = (start..start + block.len()).map(|i| M::reduce_radius(radii[i])).collect();
                let mut t0 = 0;
                while t0 < n {
                    let t1 = n.min(t0 + self.tile);
                    for (qi, count) in block.iter_mut().enumerate() {
                        let i = start + qi;
                        let q = self.points.row(i);
                        let r = reduced[qi];
                        let mut c = 0u32;
                        for j in t0..t1 {
                            let dist = M::dist_bounded::<T, D>(q, self.points.row(j), r);
                            c += within(dist, r, strict) as u32;
                        }
                        *count += c;
                    }
                    t0 = t1;
                }
                // Each query met itself at distance 0.
                for (qi, count) in block.iter_mut().enumerate() {
                    let r = reduced[qi];
                    *count -= within(T::ZERO, r, strict) as u32;
                }
            })
        })?;
        Ok(out)
    }
}
