//! An exact k-d tree for self-queries (k-NN distances, k-NN sets, radius counts).
//!
//! Layout: a complete binary tree stored implicitly (children of node i are 2i+1, 2i+2); every
//! node covers a contiguous range of the points, which are copied in tree order. A node over
//! `[s, e)` splits at `s + (e − s)/2` along the dimension of largest spread, so all leaves hold
//! between ⌊n/2^depth⌋ and ⌈n/2^depth⌉ points. Each node stores its tight bounding box; radius
//! counts add whole nodes that lie inside the ball without visiting their points.

use super::{scatter_rows, query_in_order, KBest, Metric, NeighborSearch, Points, Real};
use crate::error::Result;
use crate::parallel::Ctl;
use crate::with_dim;
use rayon::prelude::*;
use std::marker::PhantomData;

/// Points per leaf at most.
const LEAF_SIZE: usize = 32;
/// Subtrees smaller than this are partitioned without spawning parallel tasks.
const PARALLEL_BUILD_MIN: usize = 1 << 14;
/// Queries per parallel block.
const QUERY_BLOCK: usize = 256;

pub struct KdTree<T, M> {
    d: usize,
    n: usize,
    /// Points in tree order, row-major.
    points: Vec<T>,
    /// Tree position → original index.
    index: Vec<u32>,
    /// Per node: [start, end) in tree order.
    ranges: Vec<(u32, u32)>,
    /// Per node: lo[0..d] then hi[0..d].
    bounds: Vec<T>,
    /// Nodes `0..n_internal` are internal, the rest are leaves.
    n_internal: usize,
    _metric: PhantomData<M>,
}

fn spread_dimension<T: Real>(points: &Points<'_, T>, idx: &[u32]) -> usize {
    let d = points.d();
    let mut lo = points.row(idx[0] as usize).to_vec();
    let mut hi = lo.clone();
    for &i in &idx[1..] {
        let row = points.row(i as usize);
        for k in 0..d {
            lo[k] = lo[k].min_of(row[k]);
            hi[k] = hi[k].max_of(row[k]);
        }
    }
    let mut best = 0;
    let mut best_spread = T::ZERO - T::INFINITY;
    for k in 0..d {
        let s = hi[k] - lo[k];
        if s > best_spread {
            best = k;
            best_spread = s;
        }
    }
    best
}

/// Reorders `idx` so that every subtree of `levels` more levels covers a contiguous range.
fn partition<T: Real>(points: &Points<'_, T>, idx: &mut [u32], levels: usize) {
    if levels == 0 || idx.len() <= 1 {
        return;
    }
    let dim = spread_dimension(points, idx);
    let mid = idx.len() / 2;
    let d = points.d();
    let data = points.data();
    idx.select_nth_unstable_by(mid, |&a, &b| {
        data[a as usize * d + dim].total_order(&data[b as usize * d + dim])
    });
    let (left, right) = idx.split_at_mut(mid);
    if left.len() + right.len() >= PARALLEL_BUILD_MIN {
        rayon::join(|| partition(points, left, levels - 1), || partition(points, right, levels - 1));
    } else {
        partition(points, left, levels - 1);
        partition(points, right, levels - 1);
    }
}

impl<T: Real, M: Metric> KdTree<T, M> {
    pub fn new(points: Points<'_, T>, ctl: &Ctl) -> Self {
        let (n, d) = (points.n(), points.d());
        let mut depth = 0;
        while n.div_ceil(1 << depth) > LEAF_SIZE {
            depth += 1;
        }
        let n_nodes = (1usize << (depth + 1)) - 1;
        let n_internal = (1usize << depth) - 1;

        let mut index: Vec<u32> = (0..n as u32).collect();
        ctl.install(|| partition(&points, &mut index, depth));

        let mut ranges = vec![(0u32, 0u32); n_nodes];
        ranges[0] = (0, n as u32);
        for node in 0..n_internal {
            let (s, e) = ranges[node];
            let mid = s + (e - s) / 2;
            ranges[2 * node + 1] = (s, mid);
            ranges[2 * node + 2] = (mid, e);
        }

        let mut tree_points = vec![T::ZERO; n * d];
        let mut bounds = vec![T::ZERO; n_nodes * 2 * d];
        ctl.install(|| {
            tree_points.par_chunks_mut(d).zip(index.par_iter()).for_each(|(dst, &i)| {
                dst.copy_from_slice(points.row(i as usize));
            });
            // Leaf boxes from their points.
            let tp = &tree_points;
            bounds[n_internal * 2 * d..].par_chunks_mut(2 * d).enumerate().for_each(|(leaf, b)| {
                let (s, e) = ranges[n_internal + leaf];
                let (lo, hi) = b.split_at_mut(d);
                if s == e {
                    // An empty leaf (only when n is tiny): an inverted box that never intersects.
                    lo.fill(T::INFINITY);
                    hi.fill(T::ZERO - T::INFINITY);
                    return;
                }
                lo.copy_from_slice(&tp[s as usize * d..(s as usize + 1) * d]);
                hi.copy_from_slice(lo);
                for p in s as usize + 1..e as usize {
                    let row = &tp[p * d..(p + 1) * d];
                    for k in 0..d {
                        lo[k] = lo[k].min_of(row[k]);
                        hi[k] = hi[k].max_of(row[k]);
                    }
                }
            });
        });
        // Internal boxes bottom-up as unions of their children.
        for node in (0..n_internal).rev() {
            let (head, tail) = bounds.split_at_mut((2 * node + 1) * 2 * d);
            let b = &mut head[node * 2 * d..(node + 1) * 2 * d];
            let (l, r) = tail.split_at(2 * d);
            let r = &r[..2 * d];
            for k in 0..d {
                b[k] = l[k].min_of(r[k]);
                b[d + k] = l[d + k].max_of(r[d + k]);
            }
        }

        KdTree { d, n, points: tree_points, index, ranges, bounds, n_internal, _metric: PhantomData }
    }

    #[inline(always)]
    fn row(&self, p: usize) -> &[T] {
        &self.points[p * self.d..(p + 1) * self.d]
    }

    #[inline(always)]
    fn boxes(&self, node: usize) -> (&[T], &[T]) {
        let b = &self.bounds[node * 2 * self.d..(node + 1) * 2 * self.d];
        b.split_at(self.d)
    }

    /// k-NN search; `exact_ties` keeps nodes at exactly the current k-th distance (needed when
    /// the neighbour *set* matters; for the k-th distance alone they cannot change the answer).
    fn knn_node<const D: usize>(&self, node: usize, q: &[T], skip: u32, best: &mut KBest<T>, exact_ties: bool) {
        if node >= self.n_internal {
            let (s, e) = self.ranges[node];
            for p in s as usize..e as usize {
                let j = self.index[p];
                if j == skip {
                    continue;
                }
                let dist = M::dist::<T, D>(q, self.row(p));
                best.consider(dist, j);
            }
            return;
        }
        let (l, r) = (2 * node + 1, 2 * node + 2);
        let (llo, lhi) = self.boxes(l);
        let (rlo, rhi) = self.boxes(r);
        let dl = M::min_to_box::<T, D>(q, llo, lhi);
        let dr = M::min_to_box::<T, D>(q, rlo, rhi);
        let (first, dfirst, second, dsecond) = if dl <= dr { (l, dl, r, dr) } else { (r, dr, l, dl) };
        for (child, dchild) in [(first, dfirst), (second, dsecond)] {
            let worst = best.worst();
            let prune = if exact_ties { dchild > worst } else { dchild >= worst };
            if !prune {
                self.knn_node::<D>(child, q, skip, best, exact_ties);
            }
        }
    }

    fn count_node<const D: usize>(&self, node: usize, q: &[T], r: T, strict: bool) -> u32 {
        let (lo, hi) = self.boxes(node);
        let near = M::min_to_box::<T, D>(q, lo, hi);
        if (strict && near >= r) || (!strict && near > r) {
            return 0;
        }
        let (s, e) = self.ranges[node];
        let far = M::max_to_box::<T, D>(q, lo, hi);
        if (strict && far < r) || (!strict && far <= r) {
            return e - s;
        }
        if node >= self.n_internal {
            let mut c = 0;
            for p in s as usize..e as usize {
                let dist = M::dist::<T, D>(q, self.row(p));
                c += ((strict && dist < r) || (!strict && dist <= r)) as u32;
            }
            return c;
        }
        self.count_node::<D>(2 * node + 1, q, r, strict) + self.count_node::<D>(2 * node + 2, q, r, strict)
    }

    fn knn_at<const D: usize>(&self, pos: usize, best: &mut KBest<T>, exact_ties: bool) {
        best.clear();
        self.knn_node::<D>(0, self.row(pos), self.index[pos], best, exact_ties);
    }
}

impl<T: Real, M: Metric> NeighborSearch<T> for KdTree<T, M> {
    fn n(&self) -> usize {
        self.n
    }

    fn kth_distances(&self, k: usize, ctl: &Ctl) -> Result<Vec<T>> {
        super::check_k(k, self.n)?;
        with_dim!(self.d, D => {
            query_in_order(&self.index, QUERY_BLOCK, ctl, || KBest::new(k), |best, pos| {
                self.knn_at::<D>(pos, best, false);
                M::finish(best.worst())
            })
        })
    }

    fn knn_indices(&self, k: usize, ctl: &Ctl) -> Result<Vec<u32>> {
        super::check_k(k, self.n)?;
        with_dim!(self.d, D => {
            let mut by_pos = vec![0u32; self.n * k];
            ctl.fill_blocks(&mut by_pos, QUERY_BLOCK * k, |start, out| {
                let mut best = KBest::new(k);
                for (j, row) in out.chunks_mut(k).enumerate() {
                    self.knn_at::<D>(start / k + j, &mut best, true);
                    for (o, &(_, idx)) in row.iter_mut().zip(best.items()) {
                        *o = idx;
                    }
                }
            })?;
            Ok(scatter_rows(&self.index, &by_pos, k))
        })
    }

    fn count_within(&self, radii: &[T], strict: bool, ctl: &Ctl) -> Result<Vec<u32>> {
        with_dim!(self.d, D => {
            query_in_order(&self.index, QUERY_BLOCK, ctl, || (), |_, pos| {
                let orig = self.index[pos] as usize;
                let r = M::reduce_radius(radii[orig]);
                let q = self.row(pos);
                let total = self.count_node::<D>(0, q, r, strict);
                // The query point itself is at distance 0.
                let self_in = (strict && T::ZERO < r) || (!strict && T::ZERO <= r);
                total - self_in as u32
            })
        })
    }
}
