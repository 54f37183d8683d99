//! Exact Euclidean neighbour queries for high dimensions through the Gram form.
//!
//! ‖a − b‖² = ‖a‖² + ‖b‖² − 2a·b turns the all-pairs scan into matrix products (faer), but the
//! form cancels, so its values are only *approximations* of the engine's distances. They are used
//! to select candidates, never as results: for every pair we know an interval [lo, hi] that
//! provably contains the distance the engine defines (the direct sum of squared coordinate
//! differences, computed in the input's precision, as in `brute.rs` and `kdtree.rs`). Then
//!
//! - k-NN (the symmetric sweep, [`GramSearch::knn_all`]): τ_i = the k-th smallest exact distance
//!   seen so far bounds the final k-th distance from above, so every j with lo > τ_i is strictly
//!   farther than the k-th neighbour; the other pairs get their exact distance and go through
//!   [`KBest`] (ties by smaller index) on both sides, so distances *and* indices are those of the
//!   direct scan. Above k = 64 a query-by-point sweep with f64 products (τ_i the k-th smallest
//!   upper bound hi) keeps its lists one block of queries at a time;
//! - radius counts: a pair is counted (or not) outright when its whole interval lies on one side
//!   of the squared radius, and decided on the exact distance otherwise.
//!
//! # The error bound
//!
//! Coordinates are first shifted by a fixed vector m (the mean of up to 1024 evenly spaced rows;
//! any m is correct, a central one keeps the bound tight when the data sit far from the origin):
//! a' = fl(a − m) in f64 (f32 input converts to f64 exactly). With u = 2⁻⁵³ and
//! γ_n = n·u / (1 − n·u) (Higham, *Accuracy and Stability of Numerical Algorithms*, §3.1), for
//! rows a, b with exact squared distance s = Σ (a_k − b_k)²:
//!
//! 1. shift: |a'_k − (a_k − m_k)| ≤ u·|a_k − m_k|, so ‖a' − b'‖ is within u(‖a−m‖ + ‖b−m‖) of
//!    √s, and s' = ‖a' − b'‖² is within (4u + 2u²)(A + B) of s (A = ‖a−m‖², B = ‖b−m‖²);
//! 2. norms, summed in f64: n_a = A'(1 + θ), |θ| ≤ γ_d; likewise n_b;
//! 3. dot product from the matrix product, in any summation order, blocked or with FMA:
//!    |p − a'·b'| ≤ γ_d Σ|a'_k b'_k| ≤ γ_d (A' + B')/2 (Cauchy–Schwarz), doubled by the 2 in 2a·b;
//! 4. g = fl(fl(n_a + n_b) − 2p): two more roundings, ≤ u(1 + γ_d)(A' + B') + u|g|, |g| ≲ 2(A' + B').
//!
//! To first order |g − s| ≤ (2γ_d + 7u)(A + B). We use E = c·(n_a + n_b) with
//! c = 2·(2γ_d + 8u): the factor 2 covers the second-order terms (A' vs A, n vs A', products of
//! u's) and the rounding of evaluating the bounds themselves (three operations, ≤ 6u(A + B)),
//! since the slack it adds, (2γ_d + 8u)(A + B) ≥ (2d + 8)u(A + B), exceeds that for every d.
//!
//! The engine's distance D is the direct sum in the input's precision T (unit roundoff u_T:
//! 2⁻²⁴ for f32, 2⁻⁵³ for f64): d subtractions, d squarings, d − 1 additions of non-negative
//! terms, so |D − s| ≤ γ^T_{d+2}·s + d·(underflow), the latter below d·(smallest normal of T).
//! Together, with η = 2·((2d + 4)·2⁻¹⁰²² + (d + 2)·(smallest normal of T)) for underflow
//! anywhere:
//!
//!   lo = (g − E)(1 − γ^T_{d+2}) − η  ≤  D  ≤  hi = (g + E)(1 + γ^T_{d+2}) + η.
//!
//! The argument needs no overflow: when max_j n_j > (largest finite T)/16 (or is not finite), or
//! d·u_T > 2⁻¹⁰, [`build`] returns the direct scan instead. The bound is loose only by a small
//! factor over the true rounding, and relative to ‖a − m‖² + ‖b − m‖², not to the distance: on
//! data whose nearest-neighbour distances are many orders of magnitude below their spread (or on
//! heavily tied data) more candidates survive, which costs time, never exactness.
//!
//! # Products in single precision (the k-NN sweep)
//!
//! The k-NN sweep computes its products in f32 where d·u₃₂ ≤ 2⁻¹⁰ (u₃₂ = 2⁻²⁴: twice the lanes
//! per instruction), else in f64; write P for that precision, u_P its unit roundoff. Rows are
//! shifted by the same m and scaled by a power of two, σ = 2⁻ᵉ with 2ᵉ > √(max_j n_j) (e clamped
//! to [−500, 511], so σ² is a normal f64): x̂ = fl_P(fl(x − m)·σ). Multiplying by σ is exact in f64
//! but for underflow, and every |x̂_k| is at most about 1, so no product or sum of P overflows.
//! With A = σ(a − m), B = σ(b − m) exact and S = ‖A − B‖² = σ²s:
//!
//! 1. conversion: |x̂_k − A_k| ≤ u′|A_k| + ν, with u′ = u when P = f64 (the shift's rounding) and
//!    u′ ≤ u₃₂ + 2u when P = f32 (and the rounding to f32), and ν ≤ 2⁻¹⁴⁹ + σ·2⁻¹⁰⁷⁴ for underflow
//!    (of the f32 rounding, and of fl(x − m) carried by σ); as in step 1 above, with ŝ = ‖â − b̂‖²,
//!    |ŝ − S| ≤ (4u′ + 4u′²)(A² + B²) + 4√d·ν(‖A‖ + ‖B‖) + 8dν²;
//! 2. norms n̂ = Σ x̂_k², in f64: squares of f32 values are exact, the sum is within γ_d (f64);
//! 3. products in P, any order, blocked or with FMA: |p − â·b̂| ≤ γ^P_d (n̂_a + n̂_b)/2 + d·2⁻¹⁴⁹
//!    (gradual underflow adds at most half the smallest subnormal of P to each product);
//! 4. g = fl(fl(n̂_a + n̂_b) − 2p) in f64, as in step 4 above.
//!
//! To first order |g − S| ≤ (2γ^P_d + 4u′ + 3u)(n̂_a + n̂_b) ≤ (2γ^P_d + 8u_P)(n̂_a + n̂_b) in both
//! precisions (4u′ + 3u is 7u for f64 and at most 4u₃₂ + 11u for f32), and E = c_P·(n̂_a + n̂_b)
//! with c_P = 2(2γ^P_d + 8u_P) covers the second-order terms and the evaluation of the bound as
//! before (the slack it adds is at least (2d + 8)u_P(n̂_a + n̂_b), far above the f64 roundings).
//! The absolute terms, with ‖A‖, ‖B‖ < 1.01 (σ√n_j < 1): 4√d·ν(‖A‖ + ‖B‖) + 8dν² + 2d·2⁻¹⁴⁹ (the products,
//! doubled) is at most 9√d·2⁻¹⁴⁹ + 9√d·σ·2⁻¹⁰⁷⁴ + 3d·2⁻¹⁴⁹; the terms without σ are far below
//! (2d + 4)·(smallest normal of P) (f32: 2⁻¹²⁶; for f64 read 2⁻¹⁰⁷⁴ for 2⁻¹⁴⁹, under 2⁻¹⁰²²), the
//! σ term is below d·10⁻³⁰⁰ when σ ≤ 1 and below σ²η when σ > 1. In scaled units, then,
//!
//!   lo = (g − E)(1 − γ^T_{d+2}) − η̂ ≤ σ²D,  η̂ = 2((2d + 4)·(smallest normal of P) + d·10⁻³⁰⁰) + σ²η,
//!
//! and j is a candidate of i when lo ≤ fl(σ²τ_i): exact unless it underflows, and then within
//! 2⁻¹⁰⁷⁵ of σ²τ_i, which the second d·10⁻³⁰⁰ in η̂ covers. The exact distances stay in T.

use super::brute::BruteForce;
use super::metric::{Euclidean, Metric};
use super::{
    check_k, knn_indices_in_blocks, kth_distances_in_blocks, need_distances, need_neighbour_lists, new_bests, within,
    KBest, NeighborSearch, KBEST_SORTED_MAX,
};
use crate::error::{CoreError, Result};
use crate::linalg::{gemm_abt, gemm_abt_f32};
use crate::memory::{self, Need, Zero};
use crate::parallel::Ctl;
use crate::points::{Points, Real};
use rayon::prelude::*;
use std::sync::{Mutex, PoisonError};

/// Queries per block and points per tile (one block of products is `QUERY_BLOCK × POINT_TILE`
/// f64, 1 MiB per thread).
const QUERY_BLOCK: usize = 256;
const POINT_TILE: usize = 512;
/// Points per square tile of the symmetric k-NN sweep (one product is `SYM_TILE²` values of the
/// product precision, 256 KiB per thread in f32).
const SYM_TILE: usize = 256;
/// The largest k for the symmetric k-NN sweep: it holds the best-k lists of all N points at once
/// (O(N·k) memory, like the neighbour lists `knn_indices` returns); above, the query-by-point sweep,
/// whose lists live one block of queries at a time, so that k-th distances stay O(N) (docs/spec.md §0.5).
const SYMMETRIC_MAX_K: usize = KBEST_SORTED_MAX;
/// Pairs whose lower bounds are computed together (one vectorised step).
const LANES: usize = 8;
/// Rows averaged for the shift m.
const SHIFT_SAMPLE: usize = 1024;

/// The Gram-form search over `points`, or the direct scan where the error bound does not apply
/// (values near overflow, or a dimension so large that d·u_T > 2⁻¹⁰).
pub fn build<'a, T: Real>(points: Points<'a, T>, ctl: &Ctl) -> Result<Box<dyn NeighborSearch<T> + 'a>> {
    Ok(match GramSearch::new(points, ctl)? {
        Some(g) => Box::new(g),
        None => Box::new(BruteForce::<T, Euclidean>::new(points)),
    })
}

/// γ_n = n·u / (1 − n·u).
fn gamma(n: usize, u: f64) -> f64 {
    let nu = n as f64 * u;
    nu / (1.0 - nu)
}

pub struct GramSearch<'a, T> {
    points: Points<'a, T>,
    /// The shift m.
    shift: Vec<f64>,
    /// n_j = ‖fl(x_j − m)‖², summed in f64 in coordinate order.
    norms: Vec<f64>,
    /// c·n_j (see the module docs).
    slack: Vec<f64>,
    /// γ^T_{d+2}.
    gamma_t: f64,
    /// η.
    eta: f64,
}

/// Per-block scratch: shifted queries, a shifted tile of points, their products.
struct Scratch {
    queries: Vec<f64>,
    tile: Vec<f64>,
    dots: Vec<f64>,
}

impl<'a, T: Real> GramSearch<'a, T> {
    /// None when the error bound's preconditions fail (see the module docs).
    pub fn new(points: Points<'a, T>, ctl: &Ctl) -> Result<Option<Self>> {
        let (n, d) = (points.n(), points.d());
        if d as f64 * T::UNIT_ROUNDOFF > 1.0 / 1024.0 {
            return Ok(None);
        }
        let stride = n.div_ceil(SHIFT_SAMPLE).max(1);
        let mut shift = vec![0.0f64; d];
        let mut rows = 0usize;
        for i in (0..n).step_by(stride) {
            for (s, &x) in shift.iter_mut().zip(points.row(i)) {
                *s += x.to_f64();
            }
            rows += 1;
        }
        shift.iter_mut().for_each(|s| *s /= rows as f64);
        let mut norms = vec![0.0f64; n];
        ctl.fill_blocks(&mut norms, 4096, |start, out| {
            for (r, o) in out.iter_mut().enumerate() {
                let mut acc = 0.0f64;
                for (&x, &m) in points.row(start + r).iter().zip(&shift) {
                    let v = x.to_f64() - m;
                    acc += v * v;
                }
                *o = acc;
            }
        })?;
        let limit = T::MAX_FINITE / 16.0;
        if !norms.iter().fold(true, |ok, &v| ok & (v.is_finite() & (v <= limit))) {
            return Ok(None);
        }
        let u = f64::EPSILON / 2.0;
        let c = 2.0 * (2.0 * gamma(d, u) + 8.0 * u);
        let slack = norms.iter().map(|&v| c * v).collect();
        let gamma_t = gamma(d + 2, T::UNIT_ROUNDOFF);
        let eta = 2.0 * ((2 * d + 4) as f64 * f64::MIN_POSITIVE + (d + 2) as f64 * T::MIN_NORMAL);
        Ok(Some(GramSearch {
            points,
            shift,
            norms,
            slack,
            gamma_t,
            eta,
        }))
    }

    fn scratch(&self) -> Scratch {
        let d = self.points.d();
        Scratch {
            queries: vec![0.0; QUERY_BLOCK * d],
            tile: vec![0.0; POINT_TILE * d],
            dots: vec![0.0; QUERY_BLOCK * POINT_TILE],
        }
    }

    /// Rows `first..first + count`, shifted by m, into `buf` (row-major f64).
    fn gather_shifted(&self, first: usize, count: usize, buf: &mut [f64]) {
        let d = self.points.d();
        for (r, dst) in buf[..count * d].chunks_mut(d).enumerate() {
            for ((o, &x), &m) in dst.iter_mut().zip(self.points.row(first + r)).zip(&self.shift) {
                *o = x.to_f64() - m;
            }
        }
    }

    /// For the queries `start..start + count` (count ≤ QUERY_BLOCK), calls `visit(qi, j0, dots)`
    /// for every tile of points `j0..j0 + dots.len()`, with `dots[jj]` the product of query
    /// `start + qi` and point `j0 + jj` in shifted coordinates. Tiles come in ascending order.
    fn sweep(&self, start: usize, count: usize, s: &mut Scratch, mut visit: impl FnMut(usize, usize, &[f64])) {
        let (n, d) = (self.points.n(), self.points.d());
        self.gather_shifted(start, count, &mut s.queries);
        let mut j0 = 0;
        while j0 < n {
            let len = POINT_TILE.min(n - j0);
            self.gather_shifted(j0, len, &mut s.tile);
            gemm_abt(&mut s.dots, &s.queries, &s.tile, count, len, d, false);
            for qi in 0..count {
                visit(qi, j0, &s.dots[qi * len..(qi + 1) * len]);
            }
            j0 += len;
        }
    }

    /// Runs only the sweeps (products, no selection): the timing test's baseline.
    #[cfg(test)]
    pub(crate) fn products_only(&self, ctl: &Ctl) -> f64 {
        let mut out = vec![0.0f64; self.points.n()];
        ctl.fill_blocks(&mut out, QUERY_BLOCK, |start, block| {
            let mut s = self.scratch();
            self.sweep(start, block.len(), &mut s, |qi, _, dots| block[qi] += dots[0]);
        })
        .unwrap();
        out.iter().sum()
    }

    /// The Gram value g and its slack E for query i and point j given their product.
    #[inline(always)]
    fn g_and_e(&self, i: usize, j: usize, dot: f64) -> (f64, f64) {
        (
            (self.norms[i] + self.norms[j]) - 2.0 * dot,
            self.slack[i] + self.slack[j],
        )
    }

    /// lo for query i and the points `base..base + dots.len()` (at most `LANES`; the rest +∞).
    #[inline(always)]
    fn lower_bounds(&self, i: usize, base: usize, dots: &[f64]) -> [f64; LANES] {
        let mut lo = [f64::INFINITY; LANES];
        let (ni, si) = (self.norms[i], self.slack[i]);
        let (norms, slack) = (
            &self.norms[base..base + dots.len()],
            &self.slack[base..base + dots.len()],
        );
        for (((l, &dot), &nj), &sj) in lo.iter_mut().zip(dots).zip(norms).zip(slack) {
            // Same operations, in the same order, as `g_and_e` followed by the lower bound.
            let g = (ni + nj) - 2.0 * dot;
            let e = si + sj;
            *l = (g - e) * (1.0 - self.gamma_t) - self.eta;
        }
        lo
    }

    #[inline(always)]
    fn upper(&self, g: f64, e: f64) -> f64 {
        (g + e) * (1.0 + self.gamma_t) + self.eta
    }

    /// Exact k-NN of the queries `start..start + bests.len()` by a query-by-point sweep (f64 products,
    /// τ_i the k-th smallest upper bound): O(block·k) memory, for k above [`SYMMETRIC_MAX_K`].
    fn knn_block(&self, start: usize, bests: &mut [KBest<T>], s: &mut Scratch) {
        let k = bests[0].k();
        // Per query: the k smallest upper bounds (their k-th is τ) and the candidates (lo, j)
        // with lo ≤ τ at the time they were seen; τ only decreases, so a final filter suffices.
        let mut taus = vec![KBest::<f64>::new(k); bests.len()];
        let mut cands: Vec<Vec<(f64, u32)>> = vec![Vec::new(); bests.len()];
        let cap = 4 * k + 60;
        self.sweep(start, bests.len(), s, |qi, j0, dots| {
            let i = start + qi;
            let (tau, cand) = (&mut taus[qi], &mut cands[qi]);
            // Lower bounds a chunk at a time (vectorised); a chunk is looked at pair by pair only
            // when one of its bounds reaches τ, which after the first tiles is rare.
            for (c, chunk) in dots.chunks(LANES).enumerate() {
                let base = j0 + c * LANES;
                let lo = self.lower_bounds(i, base, chunk);
                if !lo.iter().fold(false, |any, &l| any | (l <= tau.worst())) {
                    continue;
                }
                for (jj, &dot) in chunk.iter().enumerate() {
                    let j = base + jj;
                    if lo[jj] <= tau.worst() && j != i {
                        let (g, e) = self.g_and_e(i, j, dot);
                        tau.consider(self.upper(g, e), j as u32);
                        cand.push((lo[jj], j as u32));
                        if cand.len() > cap {
                            let t = tau.worst();
                            cand.retain(|c| c.0 <= t);
                        }
                    }
                }
            }
        });
        for (qi, best) in bests.iter_mut().enumerate() {
            best.clear();
            let q = self.points.row(start + qi);
            let t = taus[qi].worst();
            for &(lo, j) in &cands[qi] {
                if lo <= t {
                    best.consider(Euclidean::dist::<T, 0>(q, self.points.row(j as usize)), j);
                }
            }
        }
    }

    /// The k nearest neighbours of every point, by the symmetric sweep: the points are cut into
    /// square tiles of [`SYM_TILE`] rows, and each unordered pair of tiles (I, J), I ≤ J, gets one
    /// product whose pairs feed the best-k lists of both sides, so every pair (i, j) is bounded
    /// once instead of twice (half the products of a query-by-point sweep).
    ///
    /// The filter is the exact k-th distance so far: j is a candidate of i when lo ≤ the current
    /// k-th distance of i (or of j, for j's list). That k-th distance only decreases and never
    /// falls below the final one, and lo ≤ D, so every member of the final k best (ties
    /// included: the test is ≤) is considered; [`KBest`] keeps the k smallest (distance, index)
    /// pairs of what it is given, which does not depend on the order, hence not on the schedule.
    ///
    /// Schedule: the tile pairs are played as a round-robin tournament (the circle method over an
    /// odd number P ≥ B of tiles): within a round no tile appears twice, so the round's pairs run
    /// in parallel, each owning its two tiles' lists; a tile sitting out a round does its diagonal
    /// tile (I, I) then. The interrupt check runs between rounds.
    fn knn_all(&self, k: usize, ctl: &Ctl) -> Result<Vec<KBest<T>>> {
        if self.points.d() as f64 * <f32 as Product>::UNIT_ROUNDOFF <= 1.0 / 1024.0 {
            self.knn_all_in::<f32>(k, ctl)
        } else {
            self.knn_all_in::<f64>(k, ctl)
        }
    }

    /// [`Self::knn_all`] with the products in precision `P`.
    fn knn_all_in<P: Product>(&self, k: usize, ctl: &Ctl) -> Result<Vec<KBest<T>>> {
        let n = self.points.n();
        let bounds = self.scaled_bounds::<P>(ctl)?;
        let n_tiles = n.div_ceil(SYM_TILE);
        let mut tiles = Vec::with_capacity(n_tiles);
        let mut left = new_bests::<T>(n, k)?;
        while !left.is_empty() {
            let rest = left.split_off(SYM_TILE.min(left.len()));
            let tau = vec![f64::INFINITY; left.len()];
            tiles.push(Mutex::new(TileLists { bests: left, tau }));
            left = rest;
        }
        let p = n_tiles | 1;
        ctl.run_adaptive(p, 1, |rounds| {
            ctl.install(|| {
                for r in rounds {
                    let mut pairs = Vec::with_capacity(p / 2 + 1);
                    if r < n_tiles {
                        pairs.push((r, r));
                    }
                    for o in 1..=p / 2 {
                        let (a, b) = ((r + o) % p, (r + p - o) % p);
                        if a < n_tiles && b < n_tiles {
                            pairs.push((a.min(b), a.max(b)));
                        }
                    }
                    pairs.par_iter().for_each_init(
                        || vec![P::default(); SYM_TILE * SYM_TILE],
                        |dots, &(a, b)| self.tile_pair(a, b, &bounds, &tiles, dots),
                    );
                }
            });
            Ok(())
        })?;
        let mut out = Vec::with_capacity(n);
        for t in tiles {
            out.extend(t.into_inner().unwrap_or_else(PoisonError::into_inner).bests);
        }
        Ok(out)
    }

    /// The scale, norms and slacks of the symmetric sweep with products in precision `P` (module
    /// docs, "Products in single precision").
    fn scaled_bounds<P: Product>(&self, ctl: &Ctl) -> Result<ScaledBounds<P>> {
        let (n, d) = (self.points.n(), self.points.d());
        let max_norm = self.norms.iter().fold(0.0f64, |m, &v| m.max(v));
        // 2^-e with 2^e > √max_norm (so that every scaled coordinate is at most about 1); the
        // clamp keeps scale² a normal number.
        let e = if max_norm > 0.0 {
            (max_norm.sqrt().log2().floor() as i32 + 1).clamp(-500, 511)
        } else {
            0
        };
        let scale = 2f64.powi(-e);
        let mut coords = memory::zeros::<P>(n.saturating_mul(d), || {
            Need::new(
                "x",
                format!("a scaled copy of the {n} × {d} points"),
                "use fewer samples or dimensions",
            )
        })?;
        let block = 4096usize.div_ceil(d).max(1) * d;
        ctl.fill_blocks(&mut coords, block, |start, out| {
            self.gather_scaled(start / d, out.len() / d, scale, out);
        })?;
        let mut norms = memory::zeros::<f64>(n, need_distances(n))?;
        ctl.fill_blocks(&mut norms, 4096, |start, out| {
            for (r, o) in out.iter_mut().enumerate() {
                let row = &coords[(start + r) * d..(start + r + 1) * d];
                *o = row.iter().fold(0.0f64, |acc, &v| acc + v.to_f64() * v.to_f64());
            }
        })?;
        let c = 2.0 * (2.0 * gamma(d, P::UNIT_ROUNDOFF) + 8.0 * P::UNIT_ROUNDOFF);
        let mut slack = memory::zeros::<f64>(n, need_distances(n))?;
        slack.iter_mut().zip(&norms).for_each(|(s, &v)| *s = c * v);
        let scale2 = scale * scale;
        let eta = 2.0 * ((2 * d + 4) as f64 * P::MIN_NORMAL + d as f64 * TINY) + self.eta * scale2;
        Ok(ScaledBounds {
            coords,
            scale2,
            norms,
            slack,
            eta,
        })
    }

    /// Rows `first..first + count`, shifted by m and scaled, into `buf` (row-major, precision P).
    fn gather_scaled<P: Product>(&self, first: usize, count: usize, scale: f64, buf: &mut [P]) {
        let d = self.points.d();
        for (r, dst) in buf[..count * d].chunks_mut(d).enumerate() {
            for ((o, &x), &m) in dst.iter_mut().zip(self.points.row(first + r)).zip(&self.shift) {
                *o = P::from_f64((x.to_f64() - m) * scale);
            }
        }
    }

    /// The products of tiles `a ≤ b` and the pairs they leave as candidates.
    fn tile_pair<P: Product>(
        &self,
        a: usize,
        b: usize,
        bounds: &ScaledBounds<P>,
        tiles: &[Mutex<TileLists<T>>],
        dots: &mut [P],
    ) {
        let (n, d) = (self.points.n(), self.points.d());
        let (i0, j0) = (a * SYM_TILE, b * SYM_TILE);
        let (li, lj) = (SYM_TILE.min(n - i0), SYM_TILE.min(n - j0));
        let rows_a = &bounds.coords[i0 * d..(i0 + li) * d];
        let rows_b = &bounds.coords[j0 * d..(j0 + lj) * d];
        P::gemm_abt(dots, rows_a, rows_b, li, lj, d);
        let lock = |t: usize| tiles[t].lock().unwrap_or_else(PoisonError::into_inner);
        if a == b {
            let mut rows = lock(a);
            self.scan(bounds, i0, j0, li, lj, dots, &mut rows, None);
        } else {
            let (mut rows, mut cols) = (lock(a), lock(b));
            self.scan(bounds, i0, j0, li, lj, dots, &mut rows, Some(&mut cols));
        }
    }

    /// The bound test over one tile pair's products, [`scan_tile`] compiled for this processor.
    #[allow(clippy::too_many_arguments)]
    fn scan<P: Product>(
        &self,
        bounds: &ScaledBounds<P>,
        i0: usize,
        j0: usize,
        li: usize,
        lj: usize,
        dots: &[P],
        rows: &mut TileLists<T>,
        cols: Option<&mut TileLists<T>>,
    ) {
        #[cfg(target_arch = "x86_64")]
        if crate::simd::has_avx2() {
            // SAFETY: the processor has AVX2 (checked just above).
            unsafe { scan_tile_avx2(self, bounds, i0, j0, li, lj, dots, rows, cols) };
            return;
        }
        scan_tile(self, bounds, i0, j0, li, lj, dots, rows, cols);
    }
}

/// Below every absolute error of the scaled conversion that the other terms of η̂ do not cover
/// (an underflow of fl(x − m) carried by a scale < 1): module docs.
const TINY: f64 = 1e-300;

/// The precision of the candidate products: f32 (twice the lanes) where d·u₃₂ ≤ 2⁻¹⁰, else f64.
trait Product: Copy + Default + Send + Sync + Zero + 'static {
    const UNIT_ROUNDOFF: f64;
    const MIN_NORMAL: f64;
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn gemm_abt(out: &mut [Self], a: &[Self], b: &[Self], m: usize, n: usize, k: usize);
}

impl Product for f32 {
    const UNIT_ROUNDOFF: f64 = 1.0 / 16_777_216.0;
    const MIN_NORMAL: f64 = f32::MIN_POSITIVE as f64;
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn gemm_abt(out: &mut [Self], a: &[Self], b: &[Self], m: usize, n: usize, k: usize) {
        gemm_abt_f32(out, a, b, m, n, k)
    }
}

impl Product for f64 {
    const UNIT_ROUNDOFF: f64 = f64::EPSILON / 2.0;
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    fn gemm_abt(out: &mut [Self], a: &[Self], b: &[Self], m: usize, n: usize, k: usize) {
        gemm_abt(out, a, b, m, n, k, false)
    }
}

/// The Gram-form bounds of the symmetric sweep in scaled coordinates x̂ = fl_P(fl(x − m)·scale)
/// (module docs): x̂ itself, norms n̂_j = ‖x̂_j‖² (f64), slacks c_P·n̂_j, scale² and η̂.
struct ScaledBounds<P> {
    /// x̂, row-major.
    coords: Vec<P>,
    scale2: f64,
    norms: Vec<f64>,
    slack: Vec<f64>,
    eta: f64,
}

/// The best-k lists of one tile's points and their k-th distances so far, in scaled units
/// (τ·scale², f64; ∞ until full), for the vectorised bound test.
struct TileLists<T> {
    bests: Vec<KBest<T>>,
    tau: Vec<f64>,
}

/// For rows `i0..i0 + li` against columns `j0..j0 + lj` with products `dots` (li × lj): every pair
/// whose lower bound reaches the current k-th distance of its row or of its column gets its exact
/// distance, which goes to both lists. `cols` None means the diagonal tile (columns = rows; only
/// the pairs above the diagonal, each unordered pair once).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn scan_tile<T: Real, P: Product>(
    g: &GramSearch<'_, T>,
    bounds: &ScaledBounds<P>,
    i0: usize,
    j0: usize,
    li: usize,
    lj: usize,
    dots: &[P],
    rows: &mut TileLists<T>,
    mut cols: Option<&mut TileLists<T>>,
) {
    let diagonal = cols.is_none();
    let (one_minus, eta) = (1.0 - g.gamma_t, bounds.eta);
    // lo = (g − E)(1 − γ_T) − η̂ with g = (n̂_i + n̂_j) − 2p and E = c·n̂_i + c·n̂_j.
    let lower = |ni: f64, si: f64, nj: f64, sj: f64, dot: P| {
        let gv = (ni + nj) - 2.0 * dot.to_f64();
        (gv - (si + sj)) * one_minus - eta
    };
    let (norms, slack) = (&bounds.norms[j0..j0 + lj], &bounds.slack[j0..j0 + lj]);
    for r in 0..li {
        let i = i0 + r;
        let q = g.points.row(i);
        let row = &dots[r * lj..(r + 1) * lj];
        let (ni, si) = (bounds.norms[i], bounds.slack[i]);
        // On the diagonal tile only the pairs above the diagonal, from the chunk that holds it.
        let mut c = if diagonal { (r + 1) / LANES * LANES } else { 0 };
        while c < lj {
            let end = (c + LANES).min(lj);
            // Whether some pair of the chunk reaches the threshold of its row or of its column:
            // lo ≤ max(τ_i, τ_j) ⇔ lo − max(τ_i, τ_j) ≤ 0 (a difference of floats is ≤ 0 exactly
            // when the first is ≤ the second, ∞ included), so one minimum over the lanes decides,
            // without branches; after the first tiles a chunk rarely passes.
            let reaches = {
                let tau_i = rows.tau[r];
                let tau_cols = match &cols {
                    Some(t) => &t.tau[c..end],
                    None => &rows.tau[c..end],
                };
                let mut least = f64::INFINITY;
                if end - c == LANES {
                    let dot8: &[P; LANES] = row[c..end].try_into().unwrap();
                    let n8: &[f64; LANES] = norms[c..end].try_into().unwrap();
                    let s8: &[f64; LANES] = slack[c..end].try_into().unwrap();
                    let t8: &[f64; LANES] = tau_cols.try_into().unwrap();
                    for l in 0..LANES {
                        let t = if t8[l] > tau_i { t8[l] } else { tau_i };
                        let m = lower(ni, si, n8[l], s8[l], dot8[l]) - t;
                        least = if m < least { m } else { least };
                    }
                } else {
                    for l in 0..end - c {
                        let t = tau_cols[l].max(tau_i);
                        least = least.min(lower(ni, si, norms[c + l], slack[c + l], row[c + l]) - t);
                    }
                }
                least <= 0.0
            };
            if reaches {
                let first = if diagonal { c.max(r + 1) } else { c };
                for cj in first..end {
                    let l = lower(ni, si, norms[cj], slack[cj], row[cj]);
                    let tau_j = match &cols {
                        Some(t) => t.tau[cj],
                        None => rows.tau[cj],
                    };
                    if l <= rows.tau[r] || l <= tau_j {
                        let j = j0 + cj;
                        let dist = Euclidean::dist::<T, 0>(q, g.points.row(j));
                        rows.bests[r].consider(dist, j as u32);
                        rows.tau[r] = rows.bests[r].worst().to_f64() * bounds.scale2;
                        let other = match &mut cols {
                            Some(t) => &mut **t,
                            None => &mut *rows,
                        };
                        other.bests[cj].consider(dist, i as u32);
                        other.tau[cj] = other.bests[cj].worst().to_f64() * bounds.scale2;
                    }
                }
            }
            c = end;
        }
    }
}

/// [`scan_tile`] compiled with AVX2 (the same IEEE operations in the same order, no fused
/// multiply-add: the exact distances keep their bits); call only where the processor has it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn scan_tile_avx2<T: Real, P: Product>(
    g: &GramSearch<'_, T>,
    bounds: &ScaledBounds<P>,
    i0: usize,
    j0: usize,
    li: usize,
    lj: usize,
    dots: &[P],
    rows: &mut TileLists<T>,
    cols: Option<&mut TileLists<T>>,
) {
    scan_tile(g, bounds, i0, j0, li, lj, dots, rows, cols)
}

impl<T: Real> NeighborSearch<T> for GramSearch<'_, T> {
    fn n(&self) -> usize {
        self.points.n()
    }

    fn kth_distances(&self, k: usize, ctl: &Ctl) -> Result<Vec<T>> {
        check_k(k, self.points.n())?;
        if k > SYMMETRIC_MAX_K {
            return kth_distances_in_blocks::<T, Euclidean>(self.points.n(), k, QUERY_BLOCK, ctl, |start, bests| {
                self.knn_block(start, bests, &mut self.scratch())
            });
        }
        let bests = self.knn_all(k, ctl)?;
        let n = self.points.n();
        let mut out = memory::zeros::<T>(n, need_distances(n))?;
        for (o, b) in out.iter_mut().zip(&bests) {
            *o = Euclidean::finish(b.worst());
        }
        Ok(out)
    }

    fn knn_indices(&self, k: usize, ctl: &Ctl) -> Result<Vec<u32>> {
        check_k(k, self.points.n())?;
        if k > SYMMETRIC_MAX_K {
            return knn_indices_in_blocks(self.points.n(), k, QUERY_BLOCK, ctl, |start, bests| {
                self.knn_block(start, bests, &mut self.scratch())
            });
        }
        let mut bests = self.knn_all(k, ctl)?;
        let n = self.points.n();
        let mut out = memory::zeros::<u32>(n.saturating_mul(k), need_neighbour_lists(n, k))?;
        for (row, b) in out.chunks_mut(k).zip(bests.iter_mut()) {
            for (o, &(_, idx)) in row.iter_mut().zip(b.sorted()) {
                *o = idx;
            }
        }
        Ok(out)
    }

    fn count_within(&self, radii: &[T], strict: bool, ctl: &Ctl) -> Result<Vec<u32>> {
        // The same reduced radius (r·r in T) the direct scan compares with.
        let reduced: Vec<T> = radii.iter().map(|&r| Euclidean::reduce_radius(r)).collect();
        self.count_within_reduced(&reduced, strict, ctl)
    }
}

impl<T: Real> GramSearch<'_, T> {
    /// [`NeighborSearch::count_within`] with the radii already reduced (squared distances in T,
    /// as KSG's Euclidean marginal counts carry them): #{j ≠ i : D(i, j) < reduced[i]} (`strict`)
    /// or `<=`, D the direct sum of squares.
    pub fn count_within_reduced(&self, reduced: &[T], strict: bool, ctl: &Ctl) -> Result<Vec<u32>> {
        let n = self.points.n();
        if reduced.len() != n {
            return Err(CoreError::Internal(format!("{} radii for {n} points", reduced.len())));
        }
        let mut out = vec![0u32; n];
        ctl.fill_blocks(&mut out, QUERY_BLOCK, |start, block| {
            let reduced = &reduced[start..start + block.len()];
            let mut s = self.scratch();
            block.fill(0);
            self.sweep(start, block.len(), &mut s, |qi, j0, dots| {
                let i = start + qi;
                let q = self.points.row(i);
                let (r, r64) = (reduced[qi], reduced[qi].to_f64());
                let mut c = 0u32;
                for (ch, chunk) in dots.chunks(LANES).enumerate() {
                    let base = j0 + ch * LANES;
                    let lo = self.lower_bounds(i, base, chunk);
                    // D ≥ lo: a chunk whose every bound is past the radius holds no neighbour.
                    if !lo.iter().fold(false, |any, &l| any | within(l, r64, strict)) {
                        continue;
                    }
                    for (jj, &dot) in chunk.iter().enumerate() {
                        let j = base + jj;
                        if !within(lo[jj], r64, strict) || j == i {
                            continue;
                        }
                        let (g, e) = self.g_and_e(i, j, dot);
                        // D ≤ hi: in when hi is already inside; otherwise decide on D itself.
                        c += if within(self.upper(g, e), r64, strict) {
                            1
                        } else {
                            within(Euclidean::dist::<T, 0>(q, self.points.row(j)), r, strict) as u32
                        };
                    }
                }
                block[qi] += c;
            });
        })?;
        Ok(out)
    }
}
