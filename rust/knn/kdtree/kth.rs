//! The k-th neighbour distance alone, for small k in few dimensions: a flat search over the
//! k-d tree's leaves, without neighbour indices.
//!
//! [`KdTree::kth_distances_walk`] keeps (distance, index) pairs, so that ties are ordered for the
//! neighbour *sets*, and tests every active query at every internal node it descends to. For the
//! entropy and the KSG joint radius only the k-th distance counts, and in 1–6 dimensions most of
//! the walk's time went to those per-node branches and to inserting pairs. Here, for one leaf of
//! queries (the group):
//! 1. every query is seeded with its K smallest distances to the other points of its leaf, through
//!    branch-free min/max insertion networks, one per point of the leaf, in vector lanes
//!    ([`KdTree::seed_group`]);
//! 2. the leaves whose box lies closer to the group's box than the largest seeded k-th distance
//!    are listed once, nearest first, and their boxes stored [`LANES`] at a time
//!    coordinate-major;
//! 3. each query then tests [`LANES`] boxes at a time in vector lanes, in that order, stops once
//!    the list's distances from the group reach its own k-th distance, and scans only the leaves
//!    whose box is nearer than that, a chunk of [`CHUNK`] points at a time: each chunk's distances
//!    are compared with the k-th distance while still in registers ([`for_each_chunk`]). Storing
//!    a leaf's distances and reading them back in a second pass, as before, took longer: 4-D,
//!    N = 10⁵, k = 3, release builds alternated four times, loop means on two threads
//!    20.2 / 20.0 / 20.0 / 20.2 → 19.7 / 18.5 / 20.0 / 19.9 ms (`rc.entropy`); float32 input
//!    (the plain search) 18.3 / 18.5 → 16.6 / 16.6 ms, medians. For the max-norm a box test
//!    clamps at 0 once, after the maximum over the coordinates, and a chunk's distances start
//!    from their first term instead of combining it with 0 (both the same values): loop means
//!    on two threads 19.4 / 18.0 / 17.7 → 17.6 / 16.5 / 17.4 ms, alternated.
//!
//! For f64 points and the max-norm, step 3 runs on an f32 copy of the leaves ([`Narrow`]): boxes
//! tested eight at a time and leaves scanned in f32 (one AVX2 register holds eight), and only the
//! points whose f32 distance is within a proven rounding bound δ of the current k-th distance are
//! measured in f64. At 4-D, N = 10⁵, k = 3 (Gaussian, `rc.entropy`, alternating builds, medians):
//! one thread 54.4–56.2 → 48.8–51.8 ms, two 29.5–30.3 → 27.8–29.1 ms. Seeding in f32 as well was
//! slower (the eight lanes' survivors cost more network steps than the narrower scan saved).
//! That search lists subtrees of [`NARROW`] leaves in step 2, not leaves, and tests a subtree's
//! leaf boxes only when the query is near the subtree's box: the leaf boxes of each subtree are
//! laid out in lanes once per tree, so a group no longer sorts and lays out its ~145 leaves (at
//! 4-D, N = 10⁵, one thread, TSC ticks: listing 15–18 M → 2–3 M; box-test lane iterations per
//! query 12.7 → 4.7; `rc.entropy` medians in three alternating pairs, one thread 51.4 / 52.4 / 53.9 →
//! 46.9 / 47.6 / 55.9 ms (the last a noisy run), two threads 29.1 / 29.1 / 29.7 → 26.8 / 27.2 / 26.8 ms).
//!
//! Every distance is the leaf scan's, the same bits as [`Metric::dist`], and a leaf or point is
//! passed over only when it cannot be nearer than the current k-th distance: the result is the
//! walk's, bit for bit (tested against it and the naive scan). Measured on one thread, 4-D
//! Gaussian, N = 10⁵, k = 3 (`rc.entropy`, whole call): 67–75 ms against 109–119 ms by the walk;
//! 2–6 dimensions gain 1.4–2.8×, while from 8 dimensions on the group's box is wide next to the
//! neighbour distances, so many listed leaves are tested per query for nothing, and the walk was
//! as fast or faster (8-D: 0.42–0.53 s against 0.38–0.40 s Euclidean, N = 5·10⁴).

use super::{leaf_offset, KdTree, CHUNK};
use crate::error::Result;
use crate::knn::metric::Metric;
use crate::knn::{need_distances, scatter_rows};
use crate::memory::{self, Need};
use crate::parallel::Ctl;
use crate::points::Real;
use crate::with_const;
use rayon::prelude::*;

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
    /// Per query, its K smallest distances so far, ascending (∞ where fewer were seen).
    best: Vec<[T; FLAT_MAX_K]>,
    /// The listed leaves (or subtrees, [`Narrow`]): (distance from the group's box, number within
    /// their level), nearest first.
    leaves: Vec<(T, u32)>,
    /// Their boxes, [`LANES`] leaves at a time ([`lay_out_boxes`]).
    boxes: Vec<T>,
    /// Nodes still to visit while listing.
    stack: Vec<usize>,
    /// The narrow filter's copies ([`Narrow`]): the group's points in f32 and the listed
    /// subtrees' boxes [`NARROW`] at a time.
    queries32: Vec<f32>,
    boxes32: Vec<f32>,
}

impl<T> Scratch<T> {
    fn new() -> Self {
        Scratch {
            queries: Vec::new(),
            best: Vec::new(),
            leaves: Vec::new(),
            boxes: Vec::new(),
            stack: Vec::new(),
            queries32: Vec::new(),
            boxes32: Vec::new(),
        }
    }
}

/// Bit l set for each `values[l] < bound`: a vector compare and a mask, no branch per lane.
#[inline(always)]
fn lanes_below<T: Real>(values: &[T], bound: T) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        let size = std::mem::size_of::<T>();
        if size == 8 && values.len() == 4 {
            // SAFETY: T is f64 (the only 8-byte Real) and the slice holds 4 values; SSE2 is
            // part of x86-64.
            unsafe {
                let p = values.as_ptr() as *const f64;
                let b = _mm_set1_pd(bound.to_f64());
                let lo = _mm_movemask_pd(_mm_cmplt_pd(_mm_loadu_pd(p), b));
                let hi = _mm_movemask_pd(_mm_cmplt_pd(_mm_loadu_pd(p.add(2)), b));
                return (lo | hi << 2) as u32;
            }
        }
        if size == 4 && values.len() == 8 {
            // SAFETY: T is f32 (the only 4-byte Real) and the slice holds 8 values.
            unsafe {
                let p = values.as_ptr() as *const f32;
                let b = _mm_set1_ps(bound.to_f64() as f32);
                let lo = _mm_movemask_ps(_mm_cmplt_ps(_mm_loadu_ps(p), b));
                let hi = _mm_movemask_ps(_mm_cmplt_ps(_mm_loadu_ps(p.add(4)), b));
                return (lo | hi << 4) as u32;
            }
        }
    }
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

/// f32 values in one AVX2 register: the narrow filter's lanes.
const NARROW: usize = 8;

/// The next f32 above (`up`) or below `f` (not NaN; infinities step towards the finite values or
/// stay): `f32::next_up` and `next_down`, which the crate's minimum Rust version lacks.
fn f32_step(f: f32, up: bool) -> f32 {
    if f == 0.0 {
        return f32::from_bits(if up { 1 } else { 0x8000_0001 });
    }
    if (up && f == f32::INFINITY) || (!up && f == f32::NEG_INFINITY) {
        return f;
    }
    let bits = f.to_bits();
    f32::from_bits(if (f > 0.0) == up { bits + 1 } else { bits - 1 })
}

/// f32 rounding of an f64 downwards (towards −∞).
fn f32_down(x: f64) -> f32 {
    let f = x as f32;
    if f as f64 > x {
        f32_step(f, false)
    } else {
        f
    }
}

/// f32 rounding of an f64 upwards (towards +∞).
fn f32_up(x: f64) -> f32 {
    let f = x as f32;
    if (f as f64) < x {
        f32_step(f, true)
    } else {
        f
    }
}

/// The tree's leaves in f32, a filter for the max-norm search of f64 points: a point is offered
/// to the exact f64 test only when its f32 distance could be below the current k-th distance.
///
/// Bound: with A the largest |coordinate| and u = 2⁻²⁴, rounding q and x to f32 moves each by at
/// most uA (+2⁻¹⁵⁰ below the normal range), and the f32 difference rounds by at most u·2A(1 + u)
/// more, while the f64 difference rounds by at most 2⁻⁵³·2A; so an f32 gap F and the f64 gap D of
/// the same coordinate differ by at most (4u + 2u² + 2⁻⁵²)A + 4·2⁻¹⁵⁰ < δ = 5uA + 2⁻¹⁴⁰, and so
/// do their maxima over the coordinates. A point is passed over only if F ≥ t ≥ b + δ for the
/// current k-th distance b, i.e. D ≥ b: exactly the points the f64 search would not insert. The
/// leaf boxes are rounded outwards, so the same holds for a query's f32 distance to a box.
struct Narrow {
    /// The points in f32, laid out as the tree's.
    points: Vec<f32>,
    /// Per subtree of [`NARROW`] leaves (the nodes [`Narrow::subtree_depth`] levels above the
    /// leaves, in level order): its box, the lower corner rounded down, then the upper one
    /// rounded up.
    subtrees: Vec<f32>,
    /// Per subtree: its leaves' boxes, rounded the same way, laid out as [`lay_out_boxes`] does.
    leaf_lanes: Vec<f32>,
    /// Levels between a subtree and its leaves (3, or the tree's depth when it is shallower).
    subtree_depth: u32,
    /// δ above.
    delta: f64,
}

impl Narrow {
    /// The smallest f32 `t` with `t ≥ b + δ`: distances at or above it cannot be below `b`.
    #[inline(always)]
    fn above(&self, b: f64) -> f32 {
        // b + δ > 0 (b ≥ 0, δ > 0): one step up is one more in the bits, +∞ stays, and no
        // branch is taken (this runs after every insertion).
        let x = b + self.delta;
        let f = x as f32;
        f32::from_bits(f.to_bits() + ((f as f64) < x) as u32)
    }
}

/// The boxes of `count` nodes, `L` at a time (`corners(i)` gives the i-th node's lower and upper
/// corner): the lower corners coordinate-major (coordinate 0 of the L nodes, then coordinate 1,
/// …), then the upper ones; the last lanes padded with empty boxes (lower +∞, upper −∞), which
/// are never nearer than anything.
fn lay_out_boxes<'b, U: Real, const L: usize>(
    out: &mut Vec<U>,
    count: usize,
    d: usize,
    corners: impl Fn(usize) -> (&'b [U], &'b [U]),
) {
    let width = 2 * d * L;
    out.clear();
    out.resize(count.div_ceil(L) * width, U::INFINITY);
    for (g, lanes) in out.chunks_exact_mut(width).enumerate() {
        let (lanes_lo, lanes_hi) = lanes.split_at_mut(d * L);
        lanes_hi.fill(U::ZERO - U::INFINITY);
        for l in 0..L.min(count - g * L) {
            let (lo, hi) = corners(g * L + l);
            for k in 0..d {
                lanes_lo[k * L + l] = lo[k];
                lanes_hi[k * L + l] = hi[k];
            }
        }
    }
}

/// The query's distance to each of the `L` boxes laid out by [`lay_out_boxes`], as
/// `M::min_to_box`.
#[inline(always)]
fn lane_box_distances<U: Real, M: Metric, const L: usize>(q: &[U], boxes: &[U]) -> [U; L] {
    let (blo, bhi) = boxes.split_at(q.len() * L);
    let mut near = [U::ZERO; L];
    if M::MAX_NORM {
        // max(0, max_k max(lo_k − q_k, q_k − hi_k)): the same value as clamping each gap at 0
        // and combining, with one clamp in all instead of one per coordinate.
        let mut coordinates = q.iter().zip(blo.chunks_exact(L)).zip(bhi.chunks_exact(L));
        let mut far = [U::ZERO; L];
        if let Some(((&qk, lo), hi)) = coordinates.next() {
            for ((f, &lo), &hi) in far.iter_mut().zip(lo).zip(hi) {
                *f = (lo - qk).max_of(qk - hi);
            }
        }
        for ((&qk, lo), hi) in coordinates {
            for ((f, &lo), &hi) in far.iter_mut().zip(lo).zip(hi) {
                *f = f.max_of((lo - qk).max_of(qk - hi));
            }
        }
        for (n, &f) in near.iter_mut().zip(&far) {
            *n = U::ZERO.max_of(f);
        }
        return near;
    }
    for ((&qk, lo), hi) in q.iter().zip(blo.chunks_exact(L)).zip(bhi.chunks_exact(L)) {
        for ((n, &lo), &hi) in near.iter_mut().zip(lo).zip(hi) {
            let gap = (lo - qk).max_of(qk - hi).max_of(U::ZERO);
            *n = M::combine(*n, M::term(gap));
        }
    }
    near
}

/// Calls `visit` for each chunk of a leaf block of `m` points with the index of the chunk's first
/// point and the chunk's distances from `q` ([`chunk_distances`]). The full chunks and the last
/// one are visited from two call sites, so that the full chunks' distances stay in registers.
#[inline(always)]
fn for_each_chunk<U: Real, M: Metric, const D: usize>(
    q: &[U],
    block: &[U],
    m: usize,
    mut visit: impl FnMut(usize, &[U; CHUNK]),
) {
    let d = if D == 0 { q.len() } else { D };
    let full = m / CHUNK;
    for (c, chunk) in block[..full * CHUNK * d].chunks_exact(CHUNK * d).enumerate() {
        visit(c * CHUNK, &chunk_distances::<U, M, D>(q, chunk, CHUNK));
    }
    let w = m - full * CHUNK;
    if w > 0 {
        visit(
            full * CHUNK,
            &chunk_distances::<U, M, D>(q, &block[full * CHUNK * d..][..w * d], w),
        );
    }
}

/// Bit l set for each lane of a chunk's distances below `bound` ([`lanes_below`], one or two
/// registers).
#[inline(always)]
fn chunk_below<U: Real>(x: &[U; CHUNK], bound: U) -> u32 {
    if std::mem::size_of::<U>() == 4 {
        lanes_below(x, bound)
    } else {
        let (lo, hi) = x.split_at(CHUNK / 2);
        lanes_below(lo, bound) | lanes_below(hi, bound) << (CHUNK / 2)
    }
}

/// The reduced distance from `q` to the `j`-th point of a leaf block of `m` points: the same
/// terms in the same order as [`leaf_distances`](super::leaf_distances), so the same bits.
#[inline(always)]
fn point_distance<T: Real, M: Metric, const D: usize>(q: &[T], block: &[T], m: usize, j: usize) -> T {
    let d = q.len();
    let mut acc = T::ZERO;
    for (k, &qk) in q.iter().enumerate() {
        acc = M::combine(acc, M::term((block[leaf_offset(m, d, j, k)] - qk).abs()));
    }
    acc
}

/// The reduced distances from `q` to the `w` ≤ [`CHUNK`] points of one chunk of a leaf block
/// (coordinate-major, `w` wide), +∞ in the lanes past `w`: the same terms in the same order as
/// [`leaf_distances`](super::leaf_distances), so the same bits.
#[inline(always)]
fn chunk_distances<T: Real, M: Metric, const D: usize>(q: &[T], chunk: &[T], w: usize) -> [T; CHUNK] {
    let dim = if D == 0 { q.len() } else { D };
    let q = &q[..dim];
    let mut acc = [T::ZERO; CHUNK];
    if w == CHUNK {
        // Sliced to the known length, so that the loop over the coordinates unrolls. The first
        // term is taken as it is: combining it with 0 gives its own bits (a term is never −0 or
        // NaN for finite points: |·| and squares are +0 at least, and a difference of finite
        // values is finite or ±∞), so these are still `leaf_distances`' bits.
        for (k, (&qk, col)) in q.iter().zip(chunk[..dim * CHUNK].chunks_exact(CHUNK)).enumerate() {
            for (a, &v) in acc.iter_mut().zip(col) {
                let term = M::term((v - qk).abs());
                *a = if k == 0 { term } else { M::combine(*a, term) };
            }
        }
    } else {
        acc = [T::INFINITY; CHUNK];
        acc[..w].fill(T::ZERO);
        for (&qk, col) in q.iter().zip(chunk.chunks_exact(w)) {
            for (a, &v) in acc.iter_mut().zip(col) {
                *a = M::combine(*a, M::term((v - qk).abs()));
            }
        }
    }
    acc
}

impl<T: Real, M: Metric> KdTree<T, M> {
    /// The narrow filter of this tree, where it applies: f64 points, the max-norm, and
    /// coordinates small enough that f32 differences stay finite.
    fn narrow(&self, ctl: &Ctl) -> Result<Option<Narrow>> {
        if !M::MAX_NORM || T::UNIT_ROUNDOFF >= f32::EPSILON as f64 / 2.0 || self.n == 0 {
            return Ok(None);
        }
        let (lo, hi) = self.boxes(0);
        let a = lo.iter().chain(hi).fold(0.0f64, |a, &v| a.max(v.to_f64().abs()));
        // NaN or beyond 1e37 (2A must stay below f32's largest finite value): no filter.
        if a.is_nan() || a > 1e37 {
            return Ok(None);
        }
        let need = || {
            Need::new(
                "x",
                format!("an f32 copy of {} points in {} dimensions", self.n, self.d),
                "use fewer samples",
            )
        };
        let mut points = memory::filled(self.points.len(), 0.0f32, need)?;
        ctl.install(|| {
            points
                .par_chunks_mut(1 << 14)
                .zip(self.points.par_chunks(1 << 14))
                .for_each(|(o, v)| {
                    for (o, v) in o.iter_mut().zip(v) {
                        *o = v.to_f64() as f32;
                    }
                })
        });
        let leaves = self.n_internal + 1;
        let subtree_depth = leaves.trailing_zeros().min(NARROW.trailing_zeros());
        let n_subtrees = leaves >> subtree_depth;
        // The boxes of `count` nodes from `first` on, rounded outwards to f32.
        let rounded = |first: usize, count: usize| -> Result<Vec<f32>> {
            let mut out = memory::filled(count * 2 * self.d, 0.0f32, need)?;
            for (node, b) in (first..).zip(out.chunks_exact_mut(2 * self.d)) {
                let (l, h) = self.boxes(node);
                let (lo, hi) = b.split_at_mut(self.d);
                for k in 0..self.d {
                    lo[k] = f32_down(l[k].to_f64());
                    hi[k] = f32_up(h[k].to_f64());
                }
            }
            Ok(out)
        };
        let subtrees = rounded(n_subtrees - 1, n_subtrees)?;
        // The leaves in tree order, NARROW to a group of lanes: subtree t's leaves are group t
        // (a tree of fewer than NARROW leaves is one subtree, and one group).
        let leaf_boxes = rounded(self.n_internal, leaves)?;
        let mut leaf_lanes = memory::with_capacity(n_subtrees * 2 * self.d * NARROW, need)?;
        lay_out_boxes::<f32, NARROW>(&mut leaf_lanes, leaves, self.d, |i| {
            leaf_boxes[i * 2 * self.d..][..2 * self.d].split_at(self.d)
        });
        let delta = 5.0 * a * (f32::EPSILON as f64 / 2.0) + 2f64.powi(-140);
        Ok(Some(Narrow {
            points,
            subtrees,
            leaf_lanes,
            subtree_depth,
            delta,
        }))
    }

    /// [`NeighborSearch::kth_distances`](crate::knn::NeighborSearch::kth_distances) by the flat
    /// search (see the module notes); `k` already checked, and [`flat_applies`].
    pub(in crate::knn) fn kth_distances_flat(&self, k: usize, ctl: &Ctl) -> Result<Vec<T>> {
        let narrow = self.narrow(ctl)?;
        self.kth_distances_flat_by(k, narrow.as_ref(), ctl)
    }

    /// [`Self::kth_distances_flat`] with or without the [`Narrow`] filter (the same result).
    fn kth_distances_flat_by(&self, k: usize, narrow: Option<&Narrow>, ctl: &Ctl) -> Result<Vec<T>> {
        let mut by_pos = memory::filled(self.n, T::ZERO, need_distances(self.n))?;
        // Only the dimensions and k of `flat_applies` are compiled (each pair is one copy per
        // float type, metric and instruction set): D = 0 is the runtime-dimension copy, which no
        // d of the flat search reaches but keeps the match total.
        with_const!(self.d, D in [1, 2, 3, 4, 5, 6] else 0 => {
            with_const!(k, K in [1, 2, 3, 4, 5, 6, 7] else FLAT_MAX_K => {
                ctl.fill_segments_with(&mut by_pos, &self.leaf_bounds(1), Scratch::new, |s, leaf, _, out| {
                    self.kth_group::<D, K>(self.n_internal + leaf, out, s, narrow);
                })
            })
        })?;
        scatter_rows(&self.index, &by_pos, 1)
    }

    /// The k-th distances of the points of `leaf` into `out` (leaf order).
    fn kth_group<const D: usize, const K: usize>(
        &self,
        leaf: usize,
        out: &mut [T],
        s: &mut Scratch<T>,
        narrow: Option<&Narrow>,
    ) {
        #[cfg(target_arch = "x86_64")]
        if crate::simd::has_avx2() {
            // SAFETY: the processor runs AVX2 (checked above).
            return unsafe { self.kth_group_avx2::<D, K>(leaf, out, s, narrow) };
        }
        self.kth_group_dispatch::<D, K>(leaf, out, s, narrow)
    }

    /// The group's search with the [`Narrow`] filter where the tree has one, else in `T` alone.
    #[inline(always)]
    fn kth_group_dispatch<const D: usize, const K: usize>(
        &self,
        leaf: usize,
        out: &mut [T],
        s: &mut Scratch<T>,
        narrow: Option<&Narrow>,
    ) {
        match narrow {
            Some(nw) => self.kth_group_narrow::<D, K>(leaf, out, s, nw),
            None => self.kth_group_impl::<D, K>(leaf, out, s),
        }
    }

    /// [`Self::kth_group_dispatch`] (either search) compiled with AVX2: the same IEEE operations
    /// in the same order, four f64 (eight f32) lanes wide.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn kth_group_avx2<const D: usize, const K: usize>(
        &self,
        leaf: usize,
        out: &mut [T],
        s: &mut Scratch<T>,
        narrow: Option<&Narrow>,
    ) {
        self.kth_group_dispatch::<D, K>(leaf, out, s, narrow)
    }

    #[inline(always)]
    fn kth_group_impl<const D: usize, const K: usize>(&self, leaf: usize, out: &mut [T], s: &mut Scratch<T>) {
        let m = out.len();
        if m == 0 {
            return;
        }
        let d = self.d;
        self.seed_group::<D, K>(leaf, s);
        self.list_leaves::<D, K>(leaf, s, None);

        for (qi, best) in s.best.iter_mut().enumerate() {
            let q = &s.queries[qi * d..(qi + 1) * d];
            let q = if D == 0 { q } else { &q[..D] };
            for (g, boxes) in s.boxes.chunks_exact(2 * d * LANES).enumerate() {
                // The list is nearest first, and no point of a leaf is nearer to the query than
                // the leaf's box is to the group's box.
                if s.leaves[g * LANES].0 >= best[K - 1] {
                    break;
                }
                let near = lane_box_distances::<T, M, LANES>(q, boxes);
                let mut open = lanes_below(&near, best[K - 1]);
                while open != 0 {
                    let l = open.trailing_zeros() as usize;
                    open &= open - 1;
                    // The k-th distance may have shrunk since the mask was taken.
                    if near[l] >= best[K - 1] {
                        continue;
                    }
                    let (block, mo) = self.leaf_block(self.n_internal + s.leaves[g * LANES + l].1 as usize);
                    for_each_chunk::<T, M, D>(q, block, mo, |_, x| {
                        let mut hits = chunk_below(x, best[K - 1]);
                        while hits != 0 {
                            let dist = x[hits.trailing_zeros() as usize];
                            hits &= hits - 1;
                            if dist < best[K - 1] {
                                network_insert::<T, K>(best, dist);
                            }
                        }
                    });
                }
            }
        }
        for (o, b) in out.iter_mut().zip(&s.best) {
            *o = M::finish(b[K - 1]);
        }
    }

    /// [`Self::kth_group_impl`] with the [`Narrow`] filter: the same steps, each leaf scanned in
    /// f32 and only the points the filter cannot rule out measured in f64.
    #[inline(always)]
    fn kth_group_narrow<const D: usize, const K: usize>(
        &self,
        leaf: usize,
        out: &mut [T],
        s: &mut Scratch<T>,
        nw: &Narrow,
    ) {
        let m = out.len();
        if m == 0 {
            return;
        }
        let d = self.d;
        self.seed_group::<D, K>(leaf, s);
        s.queries32.clear();
        s.queries32.extend(s.queries.iter().map(|v| v.to_f64() as f32));
        self.list_leaves::<D, K>(leaf, s, Some(nw));

        let width = 2 * d * NARROW;
        // The group's own leaf, already scanned by the seeding: its subtree and lane.
        let own = leaf - self.n_internal;
        let (own_subtree, own_lane) = (own >> nw.subtree_depth, own & ((1 << nw.subtree_depth) - 1));
        for (qi, best) in s.best.iter_mut().enumerate() {
            let q = &s.queries[qi * d..(qi + 1) * d];
            let q = if D == 0 { q } else { &q[..D] };
            let q32 = &s.queries32[qi * d..(qi + 1) * d];
            let q32 = if D == 0 { q32 } else { &q32[..D] };
            let mut t = nw.above(best[K - 1].to_f64());
            for (g, boxes) in s.boxes32.chunks_exact(width).enumerate() {
                if s.leaves[g * NARROW].0 >= best[K - 1] {
                    break;
                }
                let near = lane_box_distances::<f32, M, NARROW>(q32, boxes);
                let mut open = lanes_below(&near, t);
                while open != 0 {
                    let l = open.trailing_zeros() as usize;
                    open &= open - 1;
                    if near[l] >= t {
                        continue;
                    }
                    let subtree = s.leaves[g * NARROW + l].1 as usize;
                    let lanes = &nw.leaf_lanes[subtree * width..][..width];
                    let leaf_near = lane_box_distances::<f32, M, NARROW>(q32, lanes);
                    let mut leaf_open = lanes_below(&leaf_near, t);
                    if subtree == own_subtree {
                        leaf_open &= !(1 << own_lane);
                    }
                    while leaf_open != 0 {
                        let j = leaf_open.trailing_zeros() as usize;
                        leaf_open &= leaf_open - 1;
                        if leaf_near[j] >= t {
                            continue;
                        }
                        let other = self.n_internal + (subtree << nw.subtree_depth) + j;
                        let (block, mo) = self.leaf_block(other);
                        let start = self.ranges[other].0 as usize * d;
                        let block32 = &nw.points[start..start + mo * d];
                        for_each_chunk::<f32, M, D>(q32, block32, mo, |first, x| {
                            let mut hits = chunk_below(x, t);
                            while hits != 0 {
                                let p = first + hits.trailing_zeros() as usize;
                                hits &= hits - 1;
                                let dist = point_distance::<T, M, D>(q, block, mo, p);
                                if dist < best[K - 1] {
                                    network_insert::<T, K>(best, dist);
                                    t = nw.above(best[K - 1].to_f64());
                                }
                            }
                        });
                    }
                }
            }
        }
        for (o, b) in out.iter_mut().zip(&s.best) {
            *o = M::finish(b[K - 1]);
        }
    }

    /// Step 1: the group's points as queries, each with its K smallest distances to the other
    /// points of the leaf. Column by column: for each chunk of the leaf, the distances of every
    /// query to its points enter [`CHUNK`] lanes of a K + 1 network (`d(q_i, p_j)` is `d(q_j, p_i)`
    /// bit for bit, |a − b| being |b − a|), so each lane ends with the K + 1 smallest distances
    /// of its point; the smallest is the point's zero distance to itself (a duplicate elsewhere in
    /// the leaf adds another zero, which stays), and is dropped.
    #[inline(always)]
    fn seed_group<const D: usize, const K: usize>(&self, leaf: usize, s: &mut Scratch<T>) {
        let d = self.d;
        self.leaf_rows(leaf, &mut s.queries);
        let (block, m) = self.leaf_block(leaf);
        s.best.clear();
        s.best.resize(m, [T::INFINITY; FLAT_MAX_K]);
        for (c, best) in s.best.chunks_mut(CHUNK).enumerate() {
            let w = best.len();
            let chunk = &block[c * CHUNK * d..][..w * d];
            let mut lanes = [[T::INFINITY; CHUNK]; FLAT_MAX_K + 1];
            for q in s.queries.chunks_exact(d) {
                let mut x = chunk_distances::<T, M, D>(q, chunk, w);
                // Constant indices only (both loops unroll), so that `lanes` can live in
                // registers. A merge whose lanes were read through an iterator afterwards was
                // kept on the stack by release builds and stored on every step; with one thread
                // the search then took 44 ms against 32 ms (4-D, N = 10⁵), one instruction after
                // those stores holding a third of its samples, most likely the loads waiting on
                // them (4 KiB aliasing, which depends on where the thread's stack lies).
                #[allow(clippy::needless_range_loop)]
                for r in 0..=K {
                    for l in 0..CHUNK {
                        keep_smaller(&mut lanes[r][l], &mut x[l]);
                    }
                }
            }
            let mut kept = [[T::INFINITY; CHUNK]; FLAT_MAX_K];
            // Constant indices again (no slice copy), as measured.
            #[allow(clippy::needless_range_loop, clippy::manual_memcpy)]
            for r in 0..K {
                kept[r] = lanes[r + 1];
            }
            for (l, b) in best.iter_mut().enumerate() {
                for (r, v) in b[..K].iter_mut().enumerate() {
                    *v = kept[r][l];
                }
            }
        }
    }

    /// Step 2: the other leaves whose box is nearer to the group's box than the largest seeded
    /// k-th distance, nearest first, and their boxes in lanes. With the [`Narrow`] filter, the
    /// subtrees of [`NARROW`] leaves instead (the group's own among them), their boxes in f32.
    #[inline(always)]
    fn list_leaves<const D: usize, const K: usize>(&self, leaf: usize, s: &mut Scratch<T>, narrow: Option<&Narrow>) {
        let d = self.d;
        let reach = s.best.iter().map(|b| b[K - 1]).fold(T::ZERO, T::max_of);
        // Nodes from `first` on are listed, not descended into.
        let first = match narrow {
            Some(nw) => ((self.n_internal + 1) >> nw.subtree_depth) - 1,
            None => self.n_internal,
        };
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
            if node >= first {
                if node != leaf {
                    s.leaves.push((near, (node - first) as u32));
                }
            } else {
                s.stack.push(2 * node + 2);
                s.stack.push(2 * node + 1);
            }
        }
        s.leaves.sort_unstable_by(|a, b| a.0.total_order(&b.0));
        match narrow {
            Some(nw) => lay_out_boxes::<f32, NARROW>(&mut s.boxes32, s.leaves.len(), d, |i| {
                let t = s.leaves[i].1 as usize;
                nw.subtrees[t * 2 * d..][..2 * d].split_at(d)
            }),
            None => lay_out_boxes::<T, LANES>(&mut s.boxes, s.leaves.len(), d, |i| {
                self.boxes(first + s.leaves[i].1 as usize)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knn::metric::{Chebyshev, Euclidean};
    use crate::points::Points;

    /// A small generator for the test data (xorshift64*), in [0, 1).
    struct Draw(u64);
    impl Draw {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Points the f32 copy cannot tell apart, or rounds at its worst: rows whose coordinates differ
    /// far below f32's resolution (with exact duplicates), values halfway between two f32 values,
    /// scales of 10³⁰ and 10⁻⁴⁰ (f32 subnormals), and a tight cluster beside a far outlier (a δ
    /// large next to the cluster's distances). The narrow filter must give the plain search's bits.
    fn hard_sets(n: usize, d: usize, seed: u64) -> Vec<(&'static str, Vec<f64>)> {
        let mut r = Draw(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut fine: Vec<f64> = (0..n * d).map(|_| 1.0 + (r.next() * 64.0).floor() * 1e-9).collect();
        if n > 2 {
            let (a, b) = fine.split_at_mut(d);
            b[..d].copy_from_slice(a);
        }
        let halfway = (0..n * d)
            .map(|_| 1.0 + (2.0 * (r.next() * 32.0).floor() + 1.0) * 2f64.powi(-25))
            .collect();
        let big = (0..n * d).map(|_| (r.next() - 0.5) * 1e30).collect();
        let tiny = (0..n * d).map(|_| (r.next() - 0.5) * 1e-40).collect();
        let mut outlier: Vec<f64> = (0..n * d).map(|_| 3.0 + (r.next() - 0.5) * 1e-8).collect();
        outlier[0] = 1e6;
        vec![
            ("below f32 resolution", fine),
            ("halfway between f32 values", halfway),
            ("scale 1e30", big),
            ("scale 1e-40", tiny),
            ("cluster and outlier", outlier),
        ]
    }

    #[test]
    fn narrow_filter_gives_the_plain_flat_search() {
        let ctl = Ctl::uninterruptible().unwrap();
        for d in 1..=6usize {
            for &n in &[3usize, 60, 700, 3000] {
                for (kind, data) in hard_sets(n, d, (n * 10 + d) as u64) {
                    let pts = Points::new("x", &data, n, d).unwrap();
                    let tree = KdTree::<f64, Chebyshev>::new(pts, &ctl).unwrap();
                    let narrow = tree.narrow(&ctl).unwrap();
                    assert!(narrow.is_some(), "{kind}: the filter applies");
                    for k in 1..=FLAT_MAX_K.min(n - 1) {
                        let with = tree.kth_distances_flat_by(k, narrow.as_ref(), &ctl).unwrap();
                        let without = tree.kth_distances_flat_by(k, None, &ctl).unwrap();
                        let walk = tree.kth_distances_walk(k, &ctl).unwrap();
                        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
                        assert_eq!(bits(&with), bits(&without), "{kind} n={n} d={d} k={k}");
                        assert_eq!(bits(&with), bits(&walk), "{kind} n={n} d={d} k={k}: the walk");
                    }
                }
            }
        }
    }

    #[test]
    fn directed_f32_rounding_brackets_the_value() {
        let mut r = Draw(7);
        let mut values = vec![
            0.0, -0.0, 1.0, -1.0, 1e-45, -1e-45, 1e-300, 3.4e38, -3.4e38, 1e39, -1e39,
        ];
        values.extend((0..2000).map(|_| (r.next() - 0.5) * 10f64.powf(r.next() * 80.0 - 40.0)));
        for x in values {
            let (lo, hi) = (f32_down(x), f32_up(x));
            assert!(lo as f64 <= x && x <= hi as f64, "{x}: {lo} {hi}");
            assert!(
                lo == hi || f32_step(lo, true) == hi,
                "{x}: adjacent f32 values {lo} {hi}"
            );
        }
        assert_eq!(f32_step(f32::MAX, true), f32::INFINITY);
        assert_eq!(f32_step(f32::INFINITY, false), f32::MAX);
        assert_eq!(f32_step(-1.0, true), -1.0f32 + f32::EPSILON / 2.0);
    }

    #[test]
    fn branch_free_bound_is_the_directed_rounding() {
        let mut r = Draw(11);
        let nw = Narrow {
            points: Vec::new(),
            subtrees: Vec::new(),
            leaf_lanes: Vec::new(),
            subtree_depth: 0,
            delta: 2f64.powi(-140),
        };
        let mut values = vec![0.0, 1e-45, 1.0, 3.4e38, f32::MAX as f64, 3.5e38, 1e300, f64::INFINITY];
        values.extend((0..5000).map(|_| r.next() * 10f64.powf(r.next() * 90.0 - 45.0)));
        for b in values {
            let (got, want) = (nw.above(b), f32_up(b + nw.delta));
            assert_eq!(got.to_bits(), want.to_bits(), "{b}: {got} {want}");
        }
    }

    #[test]
    fn narrow_filter_only_for_f64_max_norm_within_range() {
        let ctl = Ctl::uninterruptible().unwrap();
        let data: Vec<f64> = (0..200).map(|i| (i as f64 * 0.37).sin()).collect();
        let pts = Points::new("x", &data, 50, 4).unwrap();
        assert!(KdTree::<f64, Chebyshev>::new(pts, &ctl)
            .unwrap()
            .narrow(&ctl)
            .unwrap()
            .is_some());
        assert!(KdTree::<f64, Euclidean>::new(pts, &ctl)
            .unwrap()
            .narrow(&ctl)
            .unwrap()
            .is_none());
        let data32: Vec<f32> = data.iter().map(|&v| v as f32).collect();
        let pts32 = Points::new("x", &data32, 50, 4).unwrap();
        assert!(KdTree::<f32, Chebyshev>::new(pts32, &ctl)
            .unwrap()
            .narrow(&ctl)
            .unwrap()
            .is_none());
        // Beyond 1e37 the f32 differences could overflow: the plain search, the same distances.
        let huge: Vec<f64> = data.iter().map(|&v| v * 1e38).collect();
        let pts = Points::new("x", &huge, 50, 4).unwrap();
        let tree = KdTree::<f64, Chebyshev>::new(pts, &ctl).unwrap();
        assert!(tree.narrow(&ctl).unwrap().is_none());
        assert_eq!(
            tree.kth_distances_flat(3, &ctl).unwrap(),
            tree.kth_distances_walk(3, &ctl).unwrap()
        );
    }
}
