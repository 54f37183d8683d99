//! Exact Euclidean neighbour queries for high dimensions through the Gram form.
//!
//! ‖a − b‖² = ‖a‖² + ‖b‖² − 2a·b turns the all-pairs scan into matrix products (faer), but the
//! form cancels, so its values are only *approximations* of the engine's distances. They are used
//! to select candidates, never as results: for every pair we know an interval [lo, hi] that
//! provably contains the distance the engine defines (the direct sum of squared coordinate
//! differences, computed in the input's precision, as in `brute.rs` and `kdtree.rs`). Then
//!
//! - k-NN: τ_i = the k-th smallest hi over j ≠ i bounds the k-th distance from above, so every j
//!   with lo > τ_i is strictly farther than the k-th neighbour; the other candidates get their
//!   exact distance and go through [`KBest`] (ties by smaller index), so distances *and* indices
//!   are those of the direct scan;
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

use super::brute::BruteForce;
use super::metric::{Euclidean, Metric};
use super::{check_k, knn_indices_in_blocks, kth_distances_in_blocks, within, KBest, NeighborSearch};
use crate::error::Result;
use crate::linalg::gemm_abt;
use crate::parallel::Ctl;
use crate::points::{Points, Real};

/// Queries per block and points per tile (one block of products is `QUERY_BLOCK × POINT_TILE`
/// f64, 1 MiB per thread).
const QUERY_BLOCK: usize = 256;
const POINT_TILE: usize = 512;
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

    /// Exact k-NN of the queries `start..start + bests.len()`.
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
}

impl<T: Real> NeighborSearch<T> for GramSearch<'_, T> {
    fn n(&self) -> usize {
        self.points.n()
    }

    fn kth_distances(&self, k: usize, ctl: &Ctl) -> Result<Vec<T>> {
        check_k(k, self.points.n())?;
        kth_distances_in_blocks::<T, Euclidean>(self.points.n(), k, QUERY_BLOCK, ctl, |start, bests| {
            self.knn_block(start, bests, &mut self.scratch())
        })
    }

    fn knn_indices(&self, k: usize, ctl: &Ctl) -> Result<Vec<u32>> {
        check_k(k, self.points.n())?;
        knn_indices_in_blocks(self.points.n(), k, QUERY_BLOCK, ctl, |start, bests| {
            self.knn_block(start, bests, &mut self.scratch())
        })
    }

    fn count_within(&self, radii: &[T], strict: bool, ctl: &Ctl) -> Result<Vec<u32>> {
        let n = self.points.n();
        let mut out = vec![0u32; n];
        ctl.fill_blocks(&mut out, QUERY_BLOCK, |start, block| {
            // The same reduced radius (r·r in T) the direct scan compares with.
            let reduced: Vec<T> = (start..start + block.len())
                .map(|i| Euclidean::reduce_radius(radii[i]))
                .collect();
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
