//! An exact k-d tree for self-queries (k-NN distances, k-NN sets, radius counts).
//!
//! Layout: a complete binary tree stored implicitly (children of node i are 2i+1, 2i+2); every
//! node covers a contiguous range of the points, which are copied in tree order. A node over
//! `[s, e)` splits at `s + (e − s)/2` along the widest side of its (inherited) box, so all leaves hold
//! between ⌊n/2^depth⌋ and ⌈n/2^depth⌉ points. Each node stores its tight bounding box; radius
//! counts add whole nodes that lie inside the ball without visiting their points.

use super::{scatter_rows, within, KBest, Metric, NeighborSearch, Points, Real};
use crate::error::Result;
use crate::parallel::Ctl;
use crate::with_dim;
use rayon::prelude::*;
use std::marker::PhantomData;

/// Points per leaf at most; leaves are also the query groups of `GroupWalk`. A compromise, from
/// (noisy) one-thread timings: 8-D 3-NN and 4-D radius counts at N = 10⁵ ran fastest with
/// 32–64 (8–16 pay more node overhead), 2-D 3-NN at N = 10⁶ with 16 (by about 20 %).
const LEAF_SIZE: usize = 32;
/// Subtrees smaller than this are partitioned without spawning parallel tasks.
const PARALLEL_BUILD_MIN: usize = 1 << 14;

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

/// Grows the box `[lo, hi]` to contain `rows`.
fn grow_box<'a, T: Real>(lo: &mut [T], hi: &mut [T], rows: impl Iterator<Item = &'a [T]>) {
    for row in rows {
        for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(row) {
            *l = l.min_of(v);
            *h = h.max_of(v);
        }
    }
}

/// Reorders `idx` so that every subtree of `levels` more levels covers a contiguous range.
/// The split dimension is the widest side of the node's box as inherited from its ancestors'
/// splits (`lo`, `hi`; cheap, and the tight boxes used by queries are computed afterwards).
/// `keys` is scratch space: the split coordinate is gathered once per element and the selection
/// runs on contiguous (key, index) pairs instead of chasing indices on every comparison.
fn partition<T: Real>(points: &Points<'_, T>, idx: &mut [u32], keys: &mut [(T, u32)], lo: &[T], hi: &[T], levels: usize) {
    if levels == 0 || idx.len() <= 1 {
        return;
    }
    let d = points.d();
    let mut dim = 0;
    for k in 1..d {
        if hi[k] - lo[k] > hi[dim] - lo[dim] {
            dim = k;
        }
    }
    let data = points.data();
    for (key, &i) in keys.iter_mut().zip(idx.iter()) {
        *key = (data[i as usize * d + dim], i);
    }
    let mid = idx.len() / 2;
    keys.select_nth_unstable_by(mid, |a, b| a.0.total_order(&b.0));
    let split = keys[mid].0;
    for (i, key) in idx.iter_mut().zip(keys.iter()) {
        *i = key.1;
    }
    let (left, right) = idx.split_at_mut(mid);
    let (kl, kr) = keys.split_at_mut(mid);
    let (llo, mut lhi, mut rlo, rhi) = (lo.to_vec(), hi.to_vec(), lo.to_vec(), hi.to_vec());
    lhi[dim] = split;
    rlo[dim] = split;
    if left.len() + right.len() >= PARALLEL_BUILD_MIN {
        rayon::join(
            || partition(points, left, kl, &llo, &lhi, levels - 1),
            || partition(points, right, kr, &rlo, &rhi, levels - 1),
        );
    } else {
        partition(points, left, kl, &llo, &lhi, levels - 1);
        partition(points, right, kr, &rlo, &rhi, levels - 1);
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
        let (mut lo, mut hi) = (vec![T::INFINITY; d], vec![T::ZERO - T::INFINITY; d]);
        grow_box(&mut lo, &mut hi, (0..n).map(|i| points.row(i)));
        let mut keys = vec![(T::ZERO, 0u32); n];
        ctl.install(|| partition(&points, &mut index, &mut keys, &lo, &hi, depth));
        drop(keys);

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
            // Leaf boxes from their points (an empty leaf keeps an inverted box that meets nothing).
            let tp = &tree_points;
            bounds[n_internal * 2 * d..].par_chunks_mut(2 * d).enumerate().for_each(|(leaf, b)| {
                let (s, e) = ranges[n_internal + leaf];
                let (lo, hi) = b.split_at_mut(d);
                lo.fill(T::INFINITY);
                hi.fill(T::ZERO - T::INFINITY);
                grow_box(lo, hi, tp[s as usize * d..e as usize * d].chunks_exact(d));
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

    /// Offsets (times `width`) of the leaves in tree order: the query groups.
    fn leaf_bounds(&self, width: usize) -> Vec<usize> {
        let mut b: Vec<usize> = self.ranges[self.n_internal..].iter().map(|&(s, _)| s as usize * width).collect();
        b.push(self.n * width);
        b
    }
}

/// The queries of one leaf (close in space) walked down the tree together: a node is pruned, or
/// counted whole, for the entire group at once when the group's bounding box allows it, and
/// otherwise per query; queries drop out of the walk as soon as a node decides them. Active query
/// lists live in one buffer per tree level (no allocation per node).
struct GroupWalk<'t, T, M> {
    tree: &'t KdTree<T, M>,
    start: usize,
    /// The group's bounding box: its leaf's box.
    qlo: &'t [T],
    qhi: &'t [T],
    active: Vec<Vec<u16>>,
}

impl<'t, T: Real, M: Metric> GroupWalk<'t, T, M> {
    fn new(tree: &'t KdTree<T, M>, leaf: usize) -> Self {
        let (qlo, qhi) = tree.boxes(leaf);
        let (start, end) = tree.ranges[leaf];
        let (start, m) = (start as usize, (end - start) as usize);
        let levels = (usize::BITS - tree.ranges.len().leading_zeros()) as usize + 2;
        let mut active = vec![Vec::with_capacity(m); levels];
        active[0].extend(0..m as u16);
        GroupWalk { tree, start, qlo, qhi, active }
    }

    /// k-NN: `best[qi]` collects the neighbours of query qi. `exact_ties` keeps nodes at exactly
    /// the current k-th distance (needed when the neighbour *set* matters).
    /// Points at tree positions in `seeded` were already offered to every query.
    fn knn<const D: usize>(&mut self, node: usize, level: usize, best: &mut [KBest<T>], exact_ties: bool, seeded: (usize, usize)) {
        let tree = self.tree;
        let (s, e) = tree.ranges[node];
        if s as usize >= seeded.0 && e as usize <= seeded.1 {
            return;
        }
        let (lo, hi) = tree.boxes(node);
        let pruned = |near: T, worst: T| if exact_ties { near > worst } else { near >= worst };
        let is_leaf = node >= tree.n_internal;
        // In 1–3 dimensions the per-query test rarely prunes more than the group test, so internal
        // nodes are decided for the group alone and queries keep their active list (measured at
        // N = 10⁶, d = 2: 0.56 s against 0.93 s). Above, the group's box is wide compared with
        // the neighbour distances and testing each query pays (N = 10⁵, d = 8: 1.5 s against 5.2 s).
        let group_only = (1..=3).contains(&D) && !is_leaf;
        let next_level = if group_only { level } else { level + 1 };
        {
            let cur = &self.active[level];
            let group_worst = cur.iter().map(|&qi| best[qi as usize].worst()).fold(T::ZERO, T::max_of);
            if pruned(M::box_min_dist::<T, D>(self.qlo, self.qhi, lo, hi), group_worst) {
                return;
            }
        }
        if !group_only {
            let (cur, next) = self.active.split_at_mut(level + 1);
            let (cur, next) = (&cur[level], &mut next[0]);
            next.clear();
            for &qi in cur {
                let q = tree.row(self.start + qi as usize);
                if !pruned(M::min_to_box::<T, D>(q, lo, hi), best[qi as usize].worst()) {
                    next.push(qi);
                }
            }
            if next.is_empty() {
                return;
            }
            if is_leaf {
                for &qi in next.iter() {
                    let q = tree.row(self.start + qi as usize);
                    let me = tree.index[self.start + qi as usize];
                    let b = &mut best[qi as usize];
                    for p in s as usize..e as usize {
                        let dist = M::dist::<T, D>(q, tree.row(p));
                        if !pruned(dist, b.worst()) {
                            let j = tree.index[p];
                            if j != me {
                                b.consider(dist, j);
                            }
                        }
                    }
                }
                return;
            }
        }
        let (l, r) = (2 * node + 1, 2 * node + 2);
        let (llo, lhi) = tree.boxes(l);
        let (rlo, rhi) = tree.boxes(r);
        let dl = M::box_min_dist::<T, D>(self.qlo, self.qhi, llo, lhi);
        let dr = M::box_min_dist::<T, D>(self.qlo, self.qhi, rlo, rhi);
        let (first, second) = if dl <= dr { (l, r) } else { (r, l) };
        self.knn::<D>(first, next_level, best, exact_ties, seeded);
        self.knn::<D>(second, next_level, best, exact_ties, seeded);
    }

    /// Radius counts (including the query itself): `count[qi] += #{points of node within radii[qi]}`.
    fn count<const D: usize>(&mut self, node: usize, level: usize, radii: &[T], rmin: T, rmax: T, strict: bool, count: &mut [u32]) {
        let tree = self.tree;
        let (lo, hi) = tree.boxes(node);
        let (s, e) = tree.ranges[node];
        // A box is outside the ball when even its nearest point misses it, inside when its
        // farthest point is within.
        let outside = |near: T, r: T| !within(near, r, strict);
        let inside = |far: T, r: T| within(far, r, strict);
        {
            let (cur, next) = self.active.split_at_mut(level + 1);
            let (cur, next) = (&cur[level], &mut next[0]);
            if outside(M::box_min_dist::<T, D>(self.qlo, self.qhi, lo, hi), rmax) {
                return;
            }
            if inside(M::box_max_dist::<T, D>(self.qlo, self.qhi, lo, hi), rmin) {
                for &qi in cur {
                    count[qi as usize] += e - s;
                }
                return;
            }
            next.clear();
            for &qi in cur {
                let q = tree.row(self.start + qi as usize);
                let r = radii[qi as usize];
                if outside(M::min_to_box::<T, D>(q, lo, hi), r) {
                    continue;
                }
                if inside(M::max_to_box::<T, D>(q, lo, hi), r) {
                    count[qi as usize] += e - s;
                    continue;
                }
                next.push(qi);
            }
            if next.is_empty() {
                return;
            }
            if node >= tree.n_internal {
                for &qi in next.iter() {
                    let q = tree.row(self.start + qi as usize);
                    let r = radii[qi as usize];
                    let mut c = 0;
                    for p in s as usize..e as usize {
                        let dist = M::dist::<T, D>(q, tree.row(p));
                        c += within(dist, r, strict) as u32;
                    }
                    count[qi as usize] += c;
                }
                return;
            }
        }
        self.count::<D>(2 * node + 1, level + 1, radii, rmin, rmax, strict, count);
        self.count::<D>(2 * node + 2, level + 1, radii, rmin, rmax, strict, count);
    }
}

impl<T: Real, M: Metric> KdTree<T, M> {
    /// k-NN of the queries in leaf `leaf` (`best[qi]` for its qi-th point).
    fn knn_block<const D: usize>(&self, leaf: usize, best: &mut [KBest<T>], exact_ties: bool) {
        let start = self.ranges[leaf].0 as usize;
        // Seed every query with the other points of its own group (its leaf): tight bounds from
        // the start make the walk prune early.
        let m = best.len();
        for (qi, b) in best.iter_mut().enumerate() {
            b.clear();
            let q = self.row(start + qi);
            for p in start..start + m {
                if p != start + qi {
                    b.consider(M::dist::<T, D>(q, self.row(p)), self.index[p]);
                }
            }
        }
        GroupWalk::new(self, leaf).knn::<D>(0, 0, best, exact_ties, (start, start + m));
    }
}

impl<T: Real, M: Metric> NeighborSearch<T> for KdTree<T, M> {
    fn n(&self) -> usize {
        self.n
    }

    fn kth_distances(&self, k: usize, ctl: &Ctl) -> Result<Vec<T>> {
        super::check_k(k, self.n)?;
        let mut by_pos = vec![T::ZERO; self.n];
        with_dim!(self.d, D => {
            ctl.fill_segments(&mut by_pos, &self.leaf_bounds(1), |leaf, _, out| {
                let mut best = vec![KBest::new(k); out.len()];
                self.knn_block::<D>(self.n_internal + leaf, &mut best, false);
                for (o, b) in out.iter_mut().zip(&best) {
                    *o = M::finish(b.worst());
                }
            })
        })?;
        Ok(scatter_rows(&self.index, &by_pos, 1))
    }

    fn knn_indices(&self, k: usize, ctl: &Ctl) -> Result<Vec<u32>> {
        super::check_k(k, self.n)?;
        let mut by_pos = vec![0u32; self.n * k];
        with_dim!(self.d, D => {
            ctl.fill_segments(&mut by_pos, &self.leaf_bounds(k), |leaf, _, out| {
                let mut best = vec![KBest::new(k); out.len() / k];
                self.knn_block::<D>(self.n_internal + leaf, &mut best, true);
                for (row, b) in out.chunks_mut(k).zip(&best) {
                    for (o, &(_, idx)) in row.iter_mut().zip(b.items()) {
                        *o = idx;
                    }
                }
            })
        })?;
        Ok(scatter_rows(&self.index, &by_pos, k))
    }

    fn count_within(&self, radii: &[T], strict: bool, ctl: &Ctl) -> Result<Vec<u32>> {
        let mut by_pos = vec![0u32; self.n];
        with_dim!(self.d, D => {
            ctl.fill_segments(&mut by_pos, &self.leaf_bounds(1), |leaf, start, out| {
                let r: Vec<T> = (start..start + out.len()).map(|p| M::reduce_radius(radii[self.index[p] as usize])).collect();
                let rmin = r.iter().copied().fold(T::INFINITY, T::min_of);
                let rmax = r.iter().copied().fold(T::ZERO, T::max_of);
                GroupWalk::new(self, self.n_internal + leaf).count::<D>(0, 0, &r, rmin, rmax, strict, out);
                // Each query met itself at distance 0.
                for (c, &ri) in out.iter_mut().zip(&r) {
                    *c -= within(T::ZERO, ri, strict) as u32;
                }
            })
        })?;
        Ok(scatter_rows(&self.index, &by_pos, 1))
    }
}
