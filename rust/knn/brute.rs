//! Exact brute-force neighbour queries: every query is compared with every point.
//!
//! Each query call first copies the points into chunks of [`LANES`] points, each chunk
//! coordinate-major (all first coordinates of its points, then all second ones, …; the last chunk
//! padded with +∞), so that one query's distances to a chunk are computed side by side in vector
//! lanes ([`chunk_distances`]; an AVX2 build of the same code where the processor has it). The
//! distances stop early, every [`GROUP`] coordinates, once every lane exceeds the current bound
//! (the k-th distance so far, or the radius). Cache-blocked: a block of `QUERY_BLOCK` queries
//! sweeps the chunks in tiles of about `TILE_BYTES`, so a tile is read from cache once per query
//! block. Parallel over query blocks; the copy is the size of the points, nothing grows with N².
//! This is the path for high dimensions, where k-d trees degenerate into a slower scan.
//!
//! Every distance that decides anything is `Metric::dist` bit for bit: the Euclidean sum runs over
//! the coordinates in order in each lane, and the max-norm is a maximum of the same |a − q| values,
//! which is the same value in any order (the maximum rounds nothing), so it is combined as a tree
//! inside each group of coordinates (shorter dependency chains).

use super::metric::{Chebyshev, Metric};
use super::{check_k, knn_indices_in_blocks, kth_distances_in_blocks, need_distances, within, KBest, NeighborSearch};
use crate::error::Result;
use crate::memory::{self, Need};
use crate::parallel::Ctl;
use crate::points::{Points, Real};
use crate::with_dim;
use std::marker::PhantomData;

/// Points per chunk: eight independent lanes, two AVX2 registers of f64 (one of f32).
pub(super) const LANES: usize = 8;
/// Coordinates between two early-exit tests.
pub(super) const GROUP: usize = 8;
// `fold_group` spells out the max-norm's tree for eight coordinates.
const _: () = assert!(GROUP == 8);
const QUERY_BLOCK: usize = 32;
const TILE_BYTES: usize = 64 * 1024;

pub struct BruteForce<'a, T, M> {
    points: Points<'a, T>,
    _metric: PhantomData<M>,
}

/// The points in chunks of [`LANES`], coordinate-major: coordinate k of point `c·LANES + l` at
/// `c·LANES·d + k·LANES + l`. Padding lanes of the last chunk hold +∞.
pub(super) struct Chunked<T> {
    data: Vec<T>,
    n: usize,
    d: usize,
}

impl<T: Real> Chunked<T> {
    pub(super) fn new(points: &Points<'_, T>) -> Result<Self> {
        let (n, d) = (points.n(), points.d());
        let chunks = n.div_ceil(LANES);
        let mut data = memory::filled(chunks.saturating_mul(LANES * d), T::INFINITY, || {
            Need::new(
                "x",
                format!("a copy of {n} points in {d} dimensions for the brute-force search"),
                "use fewer samples",
            )
        })?;
        for (c, chunk) in data.chunks_exact_mut(LANES * d).enumerate() {
            for l in 0..LANES.min(n - c * LANES) {
                for (k, &v) in points.row(c * LANES + l).iter().enumerate() {
                    chunk[k * LANES + l] = v;
                }
            }
        }
        Ok(Chunked { data, n, d })
    }

    fn chunks(&self) -> usize {
        self.n.div_ceil(LANES)
    }

    #[inline(always)]
    pub(super) fn chunk(&self, c: usize) -> &[T] {
        &self.data[c * LANES * self.d..(c + 1) * LANES * self.d]
    }

    /// Real points in chunk `c` (all but the last chunk are full).
    #[inline(always)]
    fn width(&self, c: usize) -> usize {
        LANES.min(self.n - c * LANES)
    }
}

/// Whether `M` is the max-norm, whose maximum may be taken in any order.
#[inline(always)]
fn is_max_norm<M: Metric>() -> bool {
    std::any::TypeId::of::<M>() == std::any::TypeId::of::<Chebyshev>()
}

/// Folds the terms of coordinates `q.len()` (≤ GROUP) of one chunk into `acc`: in coordinate order
/// (any metric), or, for the max-norm, their maximum per lane first (a tree), then into `acc`.
#[inline(always)]
fn fold_group<T: Real, M: Metric>(acc: &mut [T; LANES], q: &[T], cols: &[T]) {
    if is_max_norm::<M>() && q.len() == GROUP {
        let gap = |k: usize| -> [T; LANES] { std::array::from_fn(|l| (cols[k * LANES + l] - q[k]).abs()) };
        let max = |a: [T; LANES], b: [T; LANES]| -> [T; LANES] { std::array::from_fn(|l| a[l].max_of(b[l])) };
        let m = max(
            max(max(gap(0), gap(1)), max(gap(2), gap(3))),
            max(max(gap(4), gap(5)), max(gap(6), gap(7))),
        );
        *acc = max(*acc, m);
    } else {
        for (&qk, col) in q.iter().zip(cols.chunks_exact(LANES)) {
            for (a, &v) in acc.iter_mut().zip(col) {
                *a = M::combine(*a, M::term((v - qk).abs()));
            }
        }
    }
}

/// Whether every lane exceeds `bound`.
#[inline(always)]
fn all_above<T: Real>(acc: &[T; LANES], bound: T) -> bool {
    let mut below = 0u32;
    for &a in acc {
        below |= (a <= bound) as u32;
    }
    below == 0
}

/// The reduced distances (`Metric::dist`, bit for bit) from `q` to the [`LANES`] points of
/// `chunk`, or `None` as soon as every lane is known to exceed `bound` (partial sums and maxima
/// never decrease, so a lane above `bound` stays above it).
#[inline(always)]
pub(super) fn chunk_distances<T: Real, M: Metric, const D: usize>(
    q: &[T],
    chunk: &[T],
    bound: T,
) -> Option<[T; LANES]> {
    let dim = if D == 0 { q.len() } else { D };
    let (q, chunk) = (&q[..dim], &chunk[..dim * LANES]);
    let mut acc = [T::ZERO; LANES];
    let full = dim / GROUP;
    for (qg, cg) in q.chunks_exact(GROUP).zip(chunk.chunks_exact(GROUP * LANES)) {
        fold_group::<T, M>(&mut acc, qg, cg);
        if all_above(&acc, bound) {
            return None;
        }
    }
    let rest = full * GROUP;
    if rest < dim {
        fold_group::<T, M>(&mut acc, &q[rest..], &chunk[rest * LANES..]);
    }
    Some(acc)
}

/// A block of queries against the points ([`knn_block`] or [`count_block`]) compiled for one
/// instruction set.
type KnnBlock<T> = unsafe fn(&Points<'_, T>, &Chunked<T>, usize, usize, &mut [KBest<T>], bool);
type CountBlock<T> = unsafe fn(&Points<'_, T>, &Chunked<T>, usize, usize, &[T], bool, &mut [u32]);

/// Chunks per tile: about `TILE_BYTES` of points.
fn tile_chunks<T>(d: usize) -> usize {
    (TILE_BYTES / (LANES * d * std::mem::size_of::<T>())).max(2)
}

/// k-NN of queries `start..start + bests.len()` (`bests` cleared here).
#[inline(always)]
fn knn_block<T: Real, M: Metric, const D: usize>(
    points: &Points<'_, T>,
    chunked: &Chunked<T>,
    tile: usize,
    start: usize,
    bests: &mut [KBest<T>],
    exact_ties: bool,
) {
    for b in bests.iter_mut() {
        b.clear();
    }
    let chunks = chunked.chunks();
    let mut c0 = 0;
    while c0 < chunks {
        let c1 = chunks.min(c0 + tile);
        for (qi, best) in bests.iter_mut().enumerate() {
            let i = start + qi;
            let q = points.row(i);
            for c in c0..c1 {
                let Some(dist) = chunk_distances::<T, M, D>(q, chunked.chunk(c), best.worst()) else {
                    continue;
                };
                let first = c * LANES;
                for (l, &dist) in dist[..chunked.width(c)].iter().enumerate() {
                    let bound = best.worst();
                    if (dist < bound || (exact_ties && dist == bound)) && first + l != i {
                        best.consider(dist, (first + l) as u32);
                    }
                }
            }
        }
        c0 = c1;
    }
}

/// Radius counts of queries `start..start + counts.len()` against all points (each query included:
/// it meets itself at distance 0), `reduced` their reduced radii; adds to `counts`.
#[inline(always)]
fn count_block<T: Real, M: Metric, const D: usize>(
    points: &Points<'_, T>,
    chunked: &Chunked<T>,
    tile: usize,
    start: usize,
    reduced: &[T],
    strict: bool,
    counts: &mut [u32],
) {
    let chunks = chunked.chunks();
    let mut c0 = 0;
    while c0 < chunks {
        let c1 = chunks.min(c0 + tile);
        for (qi, count) in counts.iter_mut().enumerate() {
            let q = points.row(start + qi);
            let r = reduced[qi];
            let mut found = 0u32;
            for c in c0..c1 {
                if let Some(dist) = chunk_distances::<T, M, D>(q, chunked.chunk(c), r) {
                    for &dist in &dist[..chunked.width(c)] {
                        found += within(dist, r, strict) as u32;
                    }
                }
            }
            *count += found;
        }
        c0 = c1;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn knn_block_avx2<T: Real, M: Metric, const D: usize>(
    points: &Points<'_, T>,
    chunked: &Chunked<T>,
    tile: usize,
    start: usize,
    bests: &mut [KBest<T>],
    exact_ties: bool,
) {
    knn_block::<T, M, D>(points, chunked, tile, start, bests, exact_ties)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn count_block_avx2<T: Real, M: Metric, const D: usize>(
    points: &Points<'_, T>,
    chunked: &Chunked<T>,
    tile: usize,
    start: usize,
    reduced: &[T],
    strict: bool,
    counts: &mut [u32],
) {
    count_block::<T, M, D>(points, chunked, tile, start, reduced, strict, counts)
}

/// The block functions for this processor: with AVX2 (x86-64) four f64 / eight f32 lanes per
/// instruction instead of two / four. Both versions evaluate the same IEEE operations on the same
/// values, so they return the same bits.
fn block_fns<T: Real, M: Metric, const D: usize>() -> (KnnBlock<T>, CountBlock<T>) {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::has_avx2() {
        return (knn_block_avx2::<T, M, D>, count_block_avx2::<T, M, D>);
    }
    (knn_block_plain::<T, M, D>, count_block_plain::<T, M, D>)
}

/// The baseline versions, as `unsafe fn` pointers of the same type as the AVX2 ones.
unsafe fn knn_block_plain<T: Real, M: Metric, const D: usize>(
    points: &Points<'_, T>,
    chunked: &Chunked<T>,
    tile: usize,
    start: usize,
    bests: &mut [KBest<T>],
    exact_ties: bool,
) {
    knn_block::<T, M, D>(points, chunked, tile, start, bests, exact_ties)
}

unsafe fn count_block_plain<T: Real, M: Metric, const D: usize>(
    points: &Points<'_, T>,
    chunked: &Chunked<T>,
    tile: usize,
    start: usize,
    reduced: &[T],
    strict: bool,
    counts: &mut [u32],
) {
    count_block::<T, M, D>(points, chunked, tile, start, reduced, strict, counts)
}

impl<'a, T: Real, M: Metric> BruteForce<'a, T, M> {
    pub fn new(points: Points<'a, T>) -> Self {
        BruteForce {
            points,
            _metric: PhantomData,
        }
    }
}

impl<T: Real, M: Metric> NeighborSearch<T> for BruteForce<'_, T, M> {
    fn n(&self) -> usize {
        self.points.n()
    }

    fn kth_distances(&self, k: usize, ctl: &Ctl) -> Result<Vec<T>> {
        let n = self.points.n();
        check_k(k, n)?;
        let chunked = Chunked::new(&self.points)?;
        let tile = tile_chunks::<T>(self.points.d());
        with_dim!(self.points.d(), D => {
            let (knn, _) = block_fns::<T, M, D>();
            kth_distances_in_blocks::<T, M>(n, k, QUERY_BLOCK, ctl, |start, bests| {
                // SAFETY: `block_fns` picked a version this processor runs.
                unsafe { knn(&self.points, &chunked, tile, start, bests, false) }
            })
        })
    }

    fn knn_indices(&self, k: usize, ctl: &Ctl) -> Result<Vec<u32>> {
        let n = self.points.n();
        check_k(k, n)?;
        let chunked = Chunked::new(&self.points)?;
        let tile = tile_chunks::<T>(self.points.d());
        with_dim!(self.points.d(), D => {
            let (knn, _) = block_fns::<T, M, D>();
            knn_indices_in_blocks(n, k, QUERY_BLOCK, ctl, |start, bests| {
                // SAFETY: as above.
                unsafe { knn(&self.points, &chunked, tile, start, bests, true) }
            })
        })
    }

    fn count_within(&self, radii: &[T], strict: bool, ctl: &Ctl) -> Result<Vec<u32>> {
        let n = self.points.n();
        let chunked = Chunked::new(&self.points)?;
        let tile = tile_chunks::<T>(self.points.d());
        let mut out = memory::zeros::<u32>(n, need_distances(n))?;
        with_dim!(self.points.d(), D => {
            let (_, count) = block_fns::<T, M, D>();
            ctl.fill_blocks(&mut out, QUERY_BLOCK, |start, block| {
                let reduced: Vec<T> = (start..start + block.len()).map(|i| M::reduce_radius(radii[i])).collect();
                // SAFETY: as above.
                unsafe { count(&self.points, &chunked, tile, start, &reduced, strict, block) };
                // Each query met itself at distance 0.
                for (count, &r) in block.iter_mut().zip(&reduced) {
                    *count -= within(T::ZERO, r, strict) as u32;
                }
            })
        })?;
        Ok(out)
    }
}
