//! An exact k-d tree for self-queries (k-NN distances, k-NN sets, radius counts).
//!
//! Layout: a complete binary tree stored implicitly (children of node i are 2i+1, 2i+2); every
//! node covers a contiguous range of the points, which are copied in tree order. A node over
//! `[s, e)` splits at `s + left_len(e − s)` (half, rounded to whole chunks) along the widest side
//! of its (inherited) box, so the leaves of one tree hold about equally many points. Each node
//! stores its tight bounding box; radius counts add whole nodes that lie inside the ball without
//! visiting their points.
//!
//! Inside a leaf the points are stored in chunks of [`CHUNK`] points, each chunk coordinate-major
//! (all first coordinates, then all second ones, …), so that a query's distances to a chunk are
//! computed side by side in vector lanes ([`leaf_distances`]). Every distance is still the sum (or
//! max) of the same terms in the same order as [`Metric::dist`]: the same bits as the other
//! back-ends.

use super::metric::Metric;
use super::{need_distances, need_neighbour_lists, new_bests, scatter_rows, within, KBest, NeighborSearch};
use crate::error::Result;
use crate::memory::{self, Need};
use crate::parallel::Ctl;
use crate::points::{Points, Real};
use crate::with_dim;
use rayon::prelude::*;
use std::marker::PhantomData;

mod kth;

/// Points per leaf (at most, up to the rounding of splits to whole chunks), by dimension; leaves
/// are also the query groups of `GroupWalk`. From instruction counts (valgrind, one thread) at
/// leaf sizes 32 / 64 / 128, against the previous tree (row-major leaves of 32, one distance at a
/// time) in brackets: 2-D 3-NN, N = 2·10⁵: 788 / 893 / 1074 M (849 M), since in 1–3 dimensions
/// internal nodes are decided for the group alone and larger groups prune worse; 4-D radius
/// counts, N = 5·10⁴: 464 / 411 / 414 M (587 M); 8-D 3-NN, N = 5·10⁴: 2943 / 2494 / 2453 M
/// (4938 M); 10-D 2-NN sets, N = 5·10⁴: 10570 / 8586 / 8308 M (19022 M); 16-D 3-NN, N = 2·10⁴:
/// 14689 / 10727 / 8804 M (28892 M). Above three dimensions the chunked leaf scan is cheap next to
/// the per-query box tests at internal nodes, so fewer, larger leaves pay.
fn leaf_size(d: usize) -> usize {
    if d <= 3 {
        32
    } else {
        128
    }
}
/// Points per chunk of a leaf (see the module notes): eight independent sums, four SSE2 or two
/// AVX2 registers of f64 (two or one of f32).
pub(super) const CHUNK: usize = 8;
/// Subtrees smaller than this are partitioned without spawning parallel tasks.
const PARALLEL_BUILD_MIN: usize = 1 << 14;

pub struct KdTree<T, M> {
    d: usize,
    n: usize,
    /// Points in tree order, leaf by leaf in chunks (see [`leaf_offset`]).
    points: Vec<T>,
    /// Tree position → original index.
    index: Vec<u32>,
    /// Per node: [start, end) in tree order.
    ranges: Vec<(u32, u32)>,
    /// Per node: lo[0..d] then hi[0..d].
    bounds: Vec<T>,
    /// Nodes `0..n_internal` are internal, the rest are leaves.
    n_internal: usize,
    /// The most points in one leaf.
    max_leaf: usize,
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

/// Where coordinate `k` of the `j`-th point of a leaf of `m` points lies in the leaf's block:
/// chunk `j / CHUNK` holds its points coordinate-major, with the width of that chunk.
#[inline(always)]
pub(super) fn leaf_offset(m: usize, d: usize, j: usize, k: usize) -> usize {
    let c = j / CHUNK * CHUNK;
    c * d + k * CHUNK.min(m - c) + (j - c)
}

/// The reduced distances from `q` to each of the `m` points of a leaf `block`, in leaf order, into
/// `out[..m]`, and the smallest of them; each is `M::dist(q, point)` exactly (same terms, same
/// order: |v − q| equals |q − v| bit for bit).
#[inline(always)]
pub(super) fn leaf_distances<T: Real, M: Metric, const D: usize>(q: &[T], block: &[T], m: usize, out: &mut [T]) -> T {
    let dim = if D == 0 { q.len() } else { D };
    let q = &q[..dim];
    let full = m / CHUNK;
    let (head, tail) = block.split_at(full * CHUNK * dim);
    let mut nearest = [T::INFINITY; CHUNK];
    for (chunk, o) in head.chunks_exact(CHUNK * dim).zip(out.chunks_exact_mut(CHUNK)) {
        let mut acc = [T::ZERO; CHUNK];
        for (&qk, col) in q.iter().zip(chunk.chunks_exact(CHUNK)) {
            for (a, &v) in acc.iter_mut().zip(col) {
                *a = M::combine(*a, M::term((v - qk).abs()));
            }
        }
        for ((o, n), &a) in o.iter_mut().zip(nearest.iter_mut()).zip(&acc) {
            *o = a;
            *n = n.min_of(a);
        }
    }
    let mut nearest = nearest.iter().fold(T::INFINITY, |a, &b| a.min_of(b));
    let w = m - full * CHUNK;
    if w > 0 {
        let o = &mut out[full * CHUNK..m];
        o.fill(T::ZERO);
        for (&qk, col) in q.iter().zip(tail.chunks_exact(w)) {
            for (a, &v) in o.iter_mut().zip(col) {
                *a = M::combine(*a, M::term((v - qk).abs()));
            }
        }
        nearest = o.iter().fold(nearest, |a, &b| a.min_of(b));
    }
    nearest
}

/// A leaf scan ([`leaf_distances`]) compiled for one instruction set.
pub(super) type LeafScan<T> = unsafe fn(&[T], &[T], usize, &mut [T]) -> T;

/// The leaf scan for this processor: with AVX2 (x86-64) four f64 / eight f32 lanes at a time
/// instead of two / four. Both versions evaluate the same IEEE operations in the same order, so
/// they return the same bits.
pub(super) fn leaf_scan<T: Real, M: Metric, const D: usize>() -> LeafScan<T> {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::has_avx2() {
        return leaf_distances_avx2::<T, M, D>;
    }
    leaf_distances::<T, M, D>
}

/// [`leaf_distances`] compiled with AVX2; call only where the processor has it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn leaf_distances_avx2<T: Real, M: Metric, const D: usize>(q: &[T], block: &[T], m: usize, out: &mut [T]) -> T {
    leaf_distances::<T, M, D>(q, block, m, out)
}

/// Points in the left child of a node of `len` points: half, rounded to whole chunks once the
/// node holds two chunks, so that every leaf but the last in tree order fills whole chunks.
fn left_len(len: usize) -> usize {
    let half = len / 2;
    if len >= 2 * CHUNK {
        (half + CHUNK / 2) / CHUNK * CHUNK
    } else {
        half
    }
}

/// Reorders `idx` so that every subtree of `levels` more levels covers a contiguous range.
/// The split dimension is the widest side of the node's box as inherited from its ancestors'
/// splits (`lo`, `hi`; cheap, and the tight boxes used by queries are computed afterwards).
/// `keys` is scratch space: the split coordinate is gathered once per element and the selection
/// runs on contiguous (key, index) pairs instead of chasing indices on every comparison.
fn partition<T: Real>(
    points: &Points<'_, T>,
    idx: &mut [u32],
    keys: &mut [(T, u32)],
    lo: &[T],
    hi: &[T],
    levels: usize,
) {
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
    let mid = left_len(idx.len());
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
    pub fn new(points: Points<'_, T>, ctl: &Ctl) -> Result<Self> {
        let (n, d) = (points.n(), points.d());
        let mut depth = 0;
        while n.div_ceil(1 << depth) > leaf_size(d) {
            depth += 1;
        }
        let n_nodes = (1usize << (depth + 1)) - 1;
        let n_internal = (1usize << depth) - 1;

        let need = || {
            Need::new(
                "x",
                format!("a k-d tree over {n} points in {d} dimensions"),
                "use fewer samples",
            )
        };
        let mut index: Vec<u32> = memory::collect(0..n as u32, need)?;
        let (mut lo, mut hi) = (vec![T::INFINITY; d], vec![T::ZERO - T::INFINITY; d]);
        grow_box(&mut lo, &mut hi, (0..n).map(|i| points.row(i)));
        let mut keys = memory::filled(n, (T::ZERO, 0u32), need)?;
        ctl.install(|| partition(&points, &mut index, &mut keys, &lo, &hi, depth));
        drop(keys);

        let mut ranges = memory::filled(n_nodes, (0u32, 0u32), need)?;
        ranges[0] = (0, n as u32);
        for node in 0..n_internal {
            let (s, e) = ranges[node];
            let mid = s + left_len((e - s) as usize) as u32;
            ranges[2 * node + 1] = (s, mid);
            ranges[2 * node + 2] = (mid, e);
        }

        let mut tree_points = memory::filled(n * d, T::ZERO, need)?;
        let mut bounds = memory::filled(n_nodes * 2 * d, T::ZERO, need)?;
        ctl.install(|| {
            // Leaf blocks and leaf boxes from their points (an empty leaf keeps an inverted box
            // that meets nothing).
            let mut blocks: Vec<&mut [T]> = Vec::with_capacity(n_internal + 1);
            let mut rest = &mut tree_points[..];
            for &(s, e) in &ranges[n_internal..] {
                let (block, tail) = std::mem::take(&mut rest).split_at_mut((e - s) as usize * d);
                blocks.push(block);
                rest = tail;
            }
            let index = &index;
            let ranges = &ranges;
            blocks
                .into_par_iter()
                .zip(bounds[n_internal * 2 * d..].par_chunks_mut(2 * d))
                .enumerate()
                .for_each(|(leaf, (block, b))| {
                    let (s, e) = ranges[n_internal + leaf];
                    let m = (e - s) as usize;
                    let (lo, hi) = b.split_at_mut(d);
                    lo.fill(T::INFINITY);
                    hi.fill(T::ZERO - T::INFINITY);
                    for (j, &i) in index[s as usize..e as usize].iter().enumerate() {
                        let row = points.row(i as usize);
                        for (k, &v) in row.iter().enumerate() {
                            block[leaf_offset(m, d, j, k)] = v;
                        }
                        grow_box(lo, hi, std::iter::once(row));
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

        let max_leaf = ranges[n_internal..]
            .iter()
            .map(|&(s, e)| (e - s) as usize)
            .max()
            .unwrap_or(0);
        Ok(KdTree {
            d,
            n,
            points: tree_points,
            index,
            ranges,
            bounds,
            n_internal,
            max_leaf,
            _metric: PhantomData,
        })
    }

    /// The block of a leaf's points and their number.
    #[inline(always)]
    fn leaf_block(&self, leaf: usize) -> (&[T], usize) {
        let (s, e) = self.ranges[leaf];
        (&self.points[s as usize * self.d..e as usize * self.d], (e - s) as usize)
    }

    /// A leaf's points as rows (row-major), into `out`.
    fn leaf_rows(&self, leaf: usize, out: &mut Vec<T>) {
        let (block, m) = self.leaf_block(leaf);
        let d = self.d;
        out.clear();
        out.resize(m * d, T::ZERO);
        for (j, row) in out.chunks_exact_mut(d).enumerate() {
            for (k, o) in row.iter_mut().enumerate() {
                *o = block[leaf_offset(m, d, j, k)];
            }
        }
    }

    #[inline(always)]
    fn boxes(&self, node: usize) -> (&[T], &[T]) {
        let b = &self.bounds[node * 2 * self.d..(node + 1) * 2 * self.d];
        b.split_at(self.d)
    }

    /// Offsets (times `width`) of the leaves in tree order: the query groups.
    fn leaf_bounds(&self, width: usize) -> Vec<usize> {
        let mut b: Vec<usize> = self.ranges[self.n_internal..]
            .iter()
            .map(|&(s, _)| s as usize * width)
            .collect();
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
    /// The group's points (the queries), row-major.
    queries: Vec<T>,
    /// One query's distances to the points of one leaf.
    dists: Vec<T>,
    /// The leaf scan for this processor.
    scan: LeafScan<T>,
    active: Vec<Vec<u16>>,
}

impl<'t, T: Real, M: Metric> GroupWalk<'t, T, M> {
    fn new(tree: &'t KdTree<T, M>, leaf: usize, scan: LeafScan<T>) -> Self {
        let (qlo, qhi) = tree.boxes(leaf);
        let (start, end) = tree.ranges[leaf];
        let (start, m) = (start as usize, (end - start) as usize);
        let levels = (usize::BITS - tree.ranges.len().leading_zeros()) as usize + 2;
        let mut active = vec![Vec::with_capacity(m); levels];
        active[0].extend(0..m as u16);
        let mut queries = Vec::new();
        tree.leaf_rows(leaf, &mut queries);
        GroupWalk {
            tree,
            start,
            qlo,
            qhi,
            queries,
            dists: vec![T::ZERO; tree.max_leaf],
            scan,
            active,
        }
    }

    /// k-NN: `best[qi]` collects the neighbours of query qi. `exact_ties` keeps nodes at exactly
    /// the current k-th distance (needed when the neighbour *set* matters).
    /// Points at tree positions in `seeded` were already offered to every query. `near` is the
    /// smallest distance between the group's box and `node`'s box (the parent computed it to
    /// order its children).
    fn knn<const D: usize>(
        &mut self,
        node: usize,
        near: T,
        level: usize,
        best: &mut [KBest<T>],
        exact_ties: bool,
        seeded: (usize, usize),
    ) {
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
            if pruned(near, group_worst) {
                return;
            }
        }
        if !group_only {
            let (cur, next) = self.active.split_at_mut(level + 1);
            let (cur, next) = (&cur[level], &mut next[0]);
            next.clear();
            let d = tree.d;
            for &qi in cur {
                let q = &self.queries[qi as usize * d..(qi as usize + 1) * d];
                if !pruned(M::min_to_box::<T, D>(q, lo, hi), best[qi as usize].worst()) {
                    next.push(qi);
                }
            }
            if next.is_empty() {
                return;
            }
            if is_leaf {
                let (block, m) = tree.leaf_block(node);
                let index = &tree.index[s as usize..e as usize];
                for &qi in next.iter() {
                    let q = &self.queries[qi as usize * d..(qi as usize + 1) * d];
                    let b = &mut best[qi as usize];
                    // SAFETY: `leaf_scan` picked a version this processor runs.
                    let nearest = unsafe { (self.scan)(q, block, m, &mut self.dists) };
                    if pruned(nearest, b.worst()) {
                        continue;
                    }
                    let me = tree.index[self.start + qi as usize];
                    for (&dist, &j) in self.dists[..m].iter().zip(index) {
                        if !pruned(dist, b.worst()) && j != me {
                            b.consider(dist, j);
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
        let ((first, dfirst), (second, dsecond)) = if dl <= dr {
            ((l, dl), (r, dr))
        } else {
            ((r, dr), (l, dl))
        };
        self.knn::<D>(first, dfirst, next_level, best, exact_ties, seeded);
        self.knn::<D>(second, dsecond, next_level, best, exact_ties, seeded);
    }

    /// Radius counts (including the query itself): `count[qi] += #{points of node within radii.each[qi]}`.
    fn count<const D: usize>(&mut self, node: usize, level: usize, group: &GroupRadii<'_, T>, count: &mut [u32]) {
        let GroupRadii {
            each: radii,
            min: rmin,
            max: rmax,
            strict,
        } = *group;
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
            let d = tree.d;
            for &qi in cur {
                let q = &self.queries[qi as usize * d..(qi as usize + 1) * d];
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
                let (block, m) = tree.leaf_block(node);
                for &qi in next.iter() {
                    let q = &self.queries[qi as usize * d..(qi as usize + 1) * d];
                    // SAFETY: `leaf_scan` picked a version this processor runs.
                    unsafe { (self.scan)(q, block, m, &mut self.dists) };
                    let r = radii[qi as usize];
                    count[qi as usize] += self.dists[..m]
                        .iter()
                        .map(|&dist| within(dist, r, strict) as u32)
                        .sum::<u32>();
                }
                return;
            }
        }
        self.count::<D>(2 * node + 1, level + 1, group, count);
        self.count::<D>(2 * node + 2, level + 1, group, count);
    }
}

/// The radii of a group of queries for [`GroupWalk::count`]: each query's reduced radius, their
/// smallest and largest, and whether the counts are strict (`<`) or inclusive (`<=`).
#[derive(Clone, Copy)]
struct GroupRadii<'r, T> {
    each: &'r [T],
    min: T,
    max: T,
    strict: bool,
}

impl<T: Real, M: Metric> KdTree<T, M> {
    /// k-NN of the queries in leaf `leaf` (`best[qi]` for its qi-th point).
    fn knn_block<const D: usize>(&self, leaf: usize, best: &mut [KBest<T>], exact_ties: bool) {
        let start = self.ranges[leaf].0 as usize;
        // Seed every query with the other points of its own group (its leaf): tight bounds from
        // the start make the walk prune early.
        let m = best.len();
        let mut walk = GroupWalk::new(self, leaf, leaf_scan::<T, M, D>());
        let (block, _) = self.leaf_block(leaf);
        let index = &self.index[start..start + m];
        for (qi, b) in best.iter_mut().enumerate() {
            b.clear();
            // SAFETY: `leaf_scan` picked a version this processor runs.
            unsafe { (walk.scan)(&walk.queries[qi * self.d..(qi + 1) * self.d], block, m, &mut walk.dists) };
            for (p, (&dist, &j)) in walk.dists[..m].iter().zip(index).enumerate() {
                if p != qi {
                    b.consider(dist, j);
                }
            }
        }
        let (lo, hi) = self.boxes(0);
        let near = M::box_min_dist::<T, D>(walk.qlo, walk.qhi, lo, hi);
        walk.knn::<D>(0, near, 0, best, exact_ties, (start, start + m));
    }
}

impl<T: Real, M: Metric> NeighborSearch<T> for KdTree<T, M> {
    fn n(&self) -> usize {
        self.n
    }

    fn kth_distances(&self, k: usize, ctl: &Ctl) -> Result<Vec<T>> {
        super::check_k(k, self.n)?;
        if kth::flat_applies(k, self.d) {
            self.kth_distances_flat(k, ctl)
        } else {
            self.kth_distances_walk(k, ctl)
        }
    }

    fn knn_indices(&self, k: usize, ctl: &Ctl) -> Result<Vec<u32>> {
        super::check_k(k, self.n)?;
        let mut by_pos = memory::zeros::<u32>(self.n.saturating_mul(k), need_neighbour_lists(self.n, k))?;
        with_dim!(self.d, D => {
            ctl.try_fill_segments(&mut by_pos, &self.leaf_bounds(k), |leaf, _, out| {
                let mut best = new_bests(out.len() / k, k)?;
                self.knn_block::<D>(self.n_internal + leaf, &mut best, true);
                for (row, b) in out.chunks_mut(k).zip(best.iter_mut()) {
                    for (o, &(_, idx)) in row.iter_mut().zip(b.sorted()) {
                        *o = idx;
                    }
                }
                Ok(())
            })
        })?;
        scatter_rows(&self.index, &by_pos, k)
    }

    fn count_within(&self, radii: &[T], strict: bool, ctl: &Ctl) -> Result<Vec<u32>> {
        self.count_within_by(radii, M::reduce_radius, strict, ctl)
    }
}

impl<T: Real, M: Metric> KdTree<T, M> {
    /// [`NeighborSearch::kth_distances`] by the group walk (every k and dimension; the flat search
    /// of [`kth`] replaces it where that is faster). `k` already checked.
    pub(super) fn kth_distances_walk(&self, k: usize, ctl: &Ctl) -> Result<Vec<T>> {
        let mut by_pos = memory::filled(self.n, T::ZERO, need_distances(self.n))?;
        with_dim!(self.d, D => {
            ctl.try_fill_segments(&mut by_pos, &self.leaf_bounds(1), |leaf, _, out| {
                let mut best = new_bests(out.len(), k)?;
                self.knn_block::<D>(self.n_internal + leaf, &mut best, false);
                for (o, b) in out.iter_mut().zip(&best) {
                    *o = M::finish(b.worst());
                }
                Ok(())
            })
        })?;
        scatter_rows(&self.index, &by_pos, 1)
    }

    /// Like [`NeighborSearch::count_within`], with the radii already in the metric's reduced
    /// units (Euclidean: squared). The KSG estimators' Euclidean option compares squared
    /// distances throughout; a square root and back would not round-trip exactly.
    pub fn count_within_reduced(&self, radii: &[T], strict: bool, ctl: &Ctl) -> Result<Vec<u32>> {
        self.count_within_by(radii, |r| r, strict, ctl)
    }

    /// Radius counts with each radius turned into reduced units by `reduce`.
    fn count_within_by(&self, radii: &[T], reduce: fn(T) -> T, strict: bool, ctl: &Ctl) -> Result<Vec<u32>> {
        let mut by_pos = memory::zeros::<u32>(self.n, need_distances(self.n))?;
        with_dim!(self.d, D => {
            ctl.fill_segments(&mut by_pos, &self.leaf_bounds(1), |leaf, start, out| {
                let r: Vec<T> = (start..start + out.len()).map(|p| reduce(radii[self.index[p] as usize])).collect();
                let group = GroupRadii {
                    each: &r,
                    min: r.iter().copied().fold(T::INFINITY, T::min_of),
                    max: r.iter().copied().fold(T::ZERO, T::max_of),
                    strict,
                };
                GroupWalk::new(self, self.n_internal + leaf, leaf_scan::<T, M, D>()).count::<D>(0, 0, &group, out);
                // Each query met itself at distance 0.
                for (c, &ri) in out.iter_mut().zip(&r) {
                    *c -= within(T::ZERO, ri, strict) as u32;
                }
            })
        })?;
        scatter_rows(&self.index, &by_pos, 1)
    }
}
