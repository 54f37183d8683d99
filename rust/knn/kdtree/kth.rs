//! The k-th neighbour distance alone, for small k in few dimensions: a flat search over the
//! k-d tree's leaves, without neighbour indices.
//!
//! [`KdTree::kth_distances_walk`] keeps (distance, index) pairs, so that ties are ordered for the
//! neighbour *sets*, and tests every active query at every internal node it descends to. For the
//! entropy and the KSG joint radius only the k-th distance counts, and in 1–6 dimensions most of
//! the walk's time went to those per-node branches and to inserting pairs. Here, for one leaf of
//! queries (the group):
//! 1. every query is seeded with its K smallest distances to the other points of its leaf, through
//!    a branch-free min/max insertion network ([`merge_smallest`]);
//! 2. the leaves whose box lies closer to the group's box than the largest seeded k-th distance
//!    are listed once, nearest first, and their boxes stored [`LANES`] at a time
//!    coordinate-major;
//! 3. each query then tests [`LANES`] boxes at a time in vector lanes, in that order, stops once
//!    the list's distances from the group reach its own k-th distance, and scans only the leaves
//!    whose box is nearer than that.
//!
//! Every distance is the leaf scan's, the same bits as [`Metric::dist`], and a leaf or point is
//! passed over only when it cannot be nearer than the current k-th distance: the result is the
//! walk's, bit for bit (tested against it and the naive scan). Measured on one thread, 4-D
//! Gaussian, N = 10⁵, k = 3 (`rc.entropy`, whole call): 67–75 ms against 109–119 ms by the walk;
//! 2–6 dimensions gain 1.4–2.8×, while from 8 dimensions on the group's box is wide next to the
//! neighbour distances, so many listed leaves are tested per query for nothing, and the walk was
//! as fast or faster (8-D: 0.42–0.53 s against 0.38–0.40 s Euclidean, N = 5·10⁴).

use super::{leaf_distances, KdTree};
use crate::error::Result;
use crate::knn::metric::Metric;
use crate::knn::{need_distances, scatter_rows};
use crate::memory;
use crate::parallel::Ctl;
use crate::points::Real;
use crate::with_const;

/// The largest k of the flat search.
const FLAT_MAX_K: usize = 8;
/// The most dimensions of the flat search (see the module notes).
const FLAT_MAX_DIM: usize = 6;
/// Boxes tested together per query: one AVX2 register of f64.
const LANES: usize = 4;

/// Whether [`KdTree::kth_distances_flat`] serves k-th distances for this k and dimension.
pub(super) fn flat_applies(k: usize, d: usize) -> bool {
    (1..=FLAT_MAX_K).contains(&k) && d <= FLAT_MAX_DIM
}

/// Scratch space of the groups' searches, reused by a worker for group after group: each step
/// clears or overwrites what it reads.
struct Scratch<T> {
    /// The group's points, row-major.
    queries: Vec<T>,
    /// One query's distances to the points of one leaf.
    dists: Vec<T>,
    /// Per query, its K smallest distances so far, ascending (∞ where fewer were seen).
    best: Vec<[T; FLAT_MAX_K]>,
    /// The listed leaves: (distance from the group's box, leaf), nearest first.
    leaves: Vec<(T, u32)>,
    /// Their boxes, [`LANES`] leaves at a time: the lower corners coordinate-major (coordinate 0
    /// of the LANES leaves, then coordinate 1, …), then the upper ones; the last lanes padded
    /// with empty boxes (lower +∞, upper −∞), which are never nearer than anything.
    boxes: Vec<T>,
    /// Nodes still to visit while listing.
    stack: Vec<usize>,
}

impl<T> Scratch<T> {
    fn new() -> Self {
        Scratch {
            queries: Vec::new(),
            dists: Vec::new(),
            best: Vec::new(),
            leaves: Vec::new(),
            boxes: Vec::new(),
            stack: Vec::new(),
        }
    }
}

/// Bit l set for each `values[l] < bound`: a vector compare and a mask, no branch per lane.
#[inline(always)]
fn lanes_below<T: Real>(values: &[T], bound: T) -> u32 {
    values
        .iter()
        .enumerate()
        .fold(0u32, |mask, (l, &v)| mask | (((v < bound) as u32) << l))
}

/// The network's compare-exchange: `b` keeps the smaller of the two, `x` carries the larger on.
#[inline(always)]
fn keep_smaller<T: Real>(b: &mut T, x: &mut T) {
    let lo = b.min_of(*x);
    *x = b.max_of(*x);
    *b = lo;
}

/// One step of the insertion network: `x` enters the ascending `best[..K]` and the largest value
/// drops out. Min and max only, so it costs the same whether or not `x` is kept.
#[inline(always)]
fn network_insert<T: Real, const K: usize>(best: &mut [T], mut x: T) {
    for b in best[..K].iter_mut() {
        keep_smaller(b, &mut x);
    }
}

/// Merges `dists` into the ascending K smallest `best[..K]`: [`LANES`] independent networks
/// (vector lanes) over the bulk, then their survivors and the tail one at a time. Values only,
/// so the result is the K smallest whatever the order they arrive in.
#[inline(always)]
fn merge_smallest<T: Real, const K: usize>(dists: &[T], best: &mut [T]) {
    let mut lanes = [[T::INFINITY; LANES]; K];
    let mut chunks = dists.chunks_exact(LANES);
    for c in &mut chunks {
        let mut x = [T::ZERO; LANES];
        x.copy_from_slice(c);
        for row in lanes.iter_mut() {
            for (b, x) in row.iter_mut().zip(x.iter_mut()) {
                keep_smaller(b, x);
            }
        }
    }
    for &v in chunks.remainder().iter().chain(lanes.iter().flatten()) {
        network_insert::<T, K>(best, v);
    }
}

impl<T: Real, M: Metric> KdTree<T, M> {
    /// [`NeighborSearch::kth_distances`](crate::knn::NeighborSearch::kth_distances) by the flat
    /// search (see the module notes); `k` already checked, and [`flat_applies`].
    pub(in crate::knn) fn kth_distances_flat(&self, k: usize, ctl: &Ctl) -> Result<Vec<T>> {
        let mut by_pos = memory::filled(self.n, T::ZERO, need_distances(self.n))?;
        // Only the dimensions and k of `flat_applies` are compiled (each pair is one copy per
        // float type, metric and instruction set): D = 0 is the runtime-dimension copy, which no
        // d of the flat search reaches but keeps the match total.
        with_const!(self.d, D in [1, 2, 3, 4, 5, 6] else 0 => {
            with_const!(k, K in [1, 2, 3, 4, 5, 6, 7] else FLAT_MAX_K => {
                ctl.fill_segments_with(&mut by_pos, &self.leaf_bounds(1), Scratch::new, |s, leaf, _, out| {
                    self.kth_group::<D, K>(self.n_internal + leaf, out, s);
                })
            })
        })?;
        scatter_rows(&self.index, &by_pos, 1)
    }

    /// The k-th distances of the points of `leaf` into `out` (leaf order).
    fn kth_group<const D: usize, const K: usize>(&self, leaf: usize, out: &mut [T], s: &mut Scratch<T>) {
        #[cfg(target_arch = "x86_64")]
        if crate::simd::has_avx2() {
            // SAFETY: the processor runs AVX2 (checked above).
            return unsafe { self.kth_group_avx2::<D, K>(leaf, out, s) };
        }
        self.kth_group_impl::<D, K>(leaf, out, s)
    }

    /// [`Self::kth_group_impl`] compiled with AVX2: the same IEEE operations in the same order,
    /// four f64 (eight f32) lanes wide.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn kth_group_avx2<const D: usize, const K: usize>(&self, leaf: usize, out: &mut [T], s: &mut Scratch<T>) {
        self.kth_group_impl::<D, K>(leaf, out, s)
    }

    #[inline(always)]
    fn kth_group_impl<const D: usize, const K: usize>(&self, leaf: usize, out: &mut [T], s: &mut Scratch<T>) {
        let m = out.len();
        if m == 0 {
            return;
        }
        let d = self.d;
        self.seed_group::<D, K>(leaf, s);
        self.list_leaves::<D, K>(leaf, s);

        for (qi, best) in s.best.iter_mut().enumerate() {
            let q = &s.queries[qi * d..(qi + 1) * d];
            let q = if D == 0 { q } else { &q[..D] };
            for (g, boxes) in s.boxes.chunks_exact(2 * d * LANES).enumerate() {
                // The list is nearest first, and no point of a leaf is nearer to the query than
                // the leaf's box is to the group's box.
                if s.leaves[g * LANES].0 >= best[K - 1] {
                    break;
                }
                // The query's distance to each of the LANES boxes, as `M::min_to_box`.
                let (blo, bhi) = boxes.split_at(d * LANES);
                let mut near = [T::ZERO; LANES];
                for ((&qk, lo), hi) in q.iter().zip(blo.chunks_exact(LANES)).zip(bhi.chunks_exact(LANES)) {
                    for ((n, &lo), &hi) in near.iter_mut().zip(lo).zip(hi) {
                        let gap = (lo - qk).max_of(qk - hi).max_of(T::ZERO);
                        *n = M::combine(*n, M::term(gap));
                    }
                }
                let mut open = lanes_below(&near, best[K - 1]);
                while open != 0 {
                    let l = open.trailing_zeros() as usize;
                    open &= open - 1;
                    // The k-th distance may have shrunk since the mask was taken.
                    if near[l] >= best[K - 1] {
                        continue;
                    }
                    let (block, mo) = self.leaf_block(s.leaves[g * LANES + l].1 as usize);
                    let nearest = leaf_distances::<T, M, D>(q, block, mo, &mut s.dists);
                    if nearest >= best[K - 1] {
                        continue;
                    }
                    for c in s.dists[..mo].chunks(LANES) {
                        let mut hits = lanes_below(c, best[K - 1]);
                        while hits != 0 {
                            let dist = c[hits.trailing_zeros() as usize];
                            hits &= hits - 1;
                            if dist < best[K - 1] {
                                network_insert::<T, K>(best, dist);
                            }
                        }
                    }
                }
            }
        }
        for (o, b) in out.iter_mut().zip(&s.best) {
            *o = M::finish(b[K - 1]);
        }
    }

    /// Step 1: the group's points as queries, each with its K smallest distances to the other
    /// points of the leaf.
    #[inline(always)]
    fn seed_group<const D: usize, const K: usize>(&self, leaf: usize, s: &mut Scratch<T>) {
        let d = self.d;
        self.leaf_rows(leaf, &mut s.queries);
        let (block, m) = self.leaf_block(leaf);
        s.dists.resize(self.max_leaf, T::ZERO);
        s.best.clear();
        s.best.resize(m, [T::INFINITY; FLAT_MAX_K]);
        for (qi, best) in s.best.iter_mut().enumerate() {
            leaf_distances::<T, M, D>(&s.queries[qi * d..(qi + 1) * d], block, m, &mut s.dists);
            // Not itself (a duplicate elsewhere in the leaf still counts, at distance 0).
            s.dists[qi] = T::INFINITY;
            merge_smallest::<T, K>(&s.dists[..m], best);
        }
    }

    /// Step 2: the other leaves whose box is nearer to the group's box than the largest seeded
    /// k-th distance, nearest first, and their boxes in lanes.
    #[inline(always)]
    fn list_leaves<const D: usize, const K: usize>(&self, leaf: usize, s: &mut Scratch<T>) {
        let d = self.d;
        let reach = s.best.iter().map(|b| b[K - 1]).fold(T::ZERO, T::max_of);
        let (qlo, qhi) = self.boxes(leaf);
        s.leaves.clear();
        s.stack.clear();
        s.stack.push(0);
        while let Some(node) = s.stack.pop() {
            let (lo, hi) = self.boxes(node);
            let near = M::box_min_dist::<T, D>(qlo, qhi, lo, hi);
            if near >= reach {
                continue;
            }
            if node >= self.n_internal {
                if node != leaf {
                    s.leaves.push((near, node as u32));
                }
            } else {
                s.stack.push(2 * node + 2);
                s.stack.push(2 * node + 1);
            }
        }
        s.leaves.sort_unstable_by(|a, b| a.0.total_order(&b.0));

        let width = 2 * d * LANES;
        s.boxes.clear();
        s.boxes.resize(s.leaves.len().div_ceil(LANES) * width, T::INFINITY);
        for (lanes, group) in s.boxes.chunks_exact_mut(width).zip(s.leaves.chunks(LANES)) {
            let (lanes_lo, lanes_hi) = lanes.split_at_mut(d * LANES);
            lanes_hi.fill(T::ZERO - T::INFINITY);
            for (l, &(_, other)) in group.iter().enumerate() {
                let (lo, hi) = self.boxes(other as usize);
                for k in 0..d {
                    lanes_lo[k * LANES + l] = lo[k];
                    lanes_hi[k * LANES + l] = hi[k];
                }
            }
        }
    }
}
