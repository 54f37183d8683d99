//! The quadratic part of the Gaussian channel (see the parent module): rows of log-densities of
//! the mixture's components at the Monte Carlo draws, or of minus the pairwise divergences, filled
//! a block of rows at a time (matrix products, or the direct Bhattacharyya loop) and reduced row
//! by row to log-sum-exps over all columns and over the row's own class. Where the product form
//! may cancel, cancellation.rs recomputes the entries that matter in the difference form.

use super::cancellation::{self, PerSample, Scratch, Shared};
use super::{Groups, Prepared};
use crate::error::Result;
use crate::linalg::gemm_abt_scaled;
use crate::memory::{self, Need};
use crate::parallel::Ctl;
#[cfg(target_arch = "x86_64")]
use crate::simd::has_avx2;
use crate::simd::{ln_mantissa, max_sum};

/// Log-sum-exp of one row, over all columns and over the row's own class.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct RowLse {
    pub(super) all: f64,
    pub(super) class: f64,
}

/// Rows per block so that one rows × N buffer holds about 2^20 values.
fn block_rows(n: usize) -> usize {
    ((1usize << 20) / n.max(1)).clamp(16, 256)
}

#[inline]
fn combine((m1, s1): (f64, f64), (m2, s2): (f64, f64)) -> f64 {
    let m = m1.max(m2);
    m + (s1 * (m1 - m).exp() + s2 * (m2 - m).exp()).ln()
}

thread_local! {
    static BUFFER: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Reduces `n_rows` rows of scores: `fill(r0, rows, buf)` writes rows r0..r0+rows (buf is rows × N,
/// row-major); row r belongs to (sorted) sample r mod N. For every scale s, the row's LSE of s·x
/// over all columns and over its own class. Output index: r · scales.len() + s.
pub(super) fn reduce_rows(
    p: &Groups<'_>,
    n_rows: usize,
    scales: &[f64],
    ctl: &Ctl,
    fill: impl Fn(usize, usize, &mut [f64]) + Sync,
) -> Result<Vec<RowLse>> {
    let n = p.n;
    let rows = block_rows(n);
    let ns = scales.len();
    let mut out = vec![RowLse::default(); n_rows * ns];
    ctl.fill_blocks(&mut out, rows * ns, |start, sl| {
        let r0 = start / ns;
        let nr = sl.len() / ns;
        // One buffer per worker thread, reused across blocks, instead of allocating (and
        // page-faulting) rows × N values for every block.
        BUFFER.with(|cell| {
            let mut buf = cell.borrow_mut();
            buf.clear();
            buf.resize(nr * n, 0.0);
            fill(r0, nr, &mut buf);
            for (r, (x, o)) in buf.chunks_exact(n).zip(sl.chunks_exact_mut(ns)).enumerate() {
                let i = (r0 + r) % n;
                let c = p.class_of[i] as usize;
                let (a, b) = (p.bounds[c], p.bounds[c + 1]);
                for (&s, o) in scales.iter().zip(o.iter_mut()) {
                    let inside = max_sum(&x[a..b], s);
                    let before = max_sum(&x[..a], s);
                    let after = max_sum(&x[b..], s);
                    o.class = inside.0 + inside.1.ln();
                    let rest = (before.0.max(after.0), 0.0);
                    let rest = if rest.0.is_finite() {
                        (
                            rest.0,
                            before.1 * (before.0 - rest.0).exp() + after.1 * (after.0 - rest.0).exp(),
                        )
                    } else {
                        rest
                    };
                    o.all = combine(inside, rest);
                }
            }
        });
    })?;
    Ok(out)
}

fn sq_norm(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum()
}

/// Monte Carlo rows: LSE over components j of log p_j(z_r) (constants common to all j dropped),
/// and the exact own term log p_i(z_r) with the same constants dropped.
pub(super) fn mc_rows(p: &Prepared, draws: &[f64], n_draws: usize, ctl: &Ctl) -> Result<(Vec<RowLse>, Vec<f64>)> {
    let (n, d) = (p.n, p.d);
    // Draw row of sorted sample i, draw m.
    let draw = |m: usize, i: usize| {
        let o = m * n + p.order[i];
        &draws[o * d..(o + 1) * d]
    };
    let n_rows = n * n_draws;
    let own: Vec<f64> = (0..n_rows)
        .map(|r| -0.5 * (sq_norm(draw(r / n, r % n)) + p.log_det[r % n]))
        .collect();
    let lse = if p.var.is_empty() {
        // Whitened: log p_j(z) = −½‖z − μ_j‖² + const.
        let mu_norm: Vec<f64> = p.mu.chunks_exact(d).map(sq_norm).collect();
        let guard = shared_guard(p, &mu_norm);
        reduce_rows(&p.groups(), n_rows, &[1.0], ctl, |r0, rows, buf| {
            let mut q = vec![0.0; rows * d];
            let mut qn = vec![0.0; rows];
            for r in 0..rows {
                let (m, i) = ((r0 + r) / n, (r0 + r) % n);
                let z = &mut q[r * d..(r + 1) * d];
                z.iter_mut()
                    .zip(&p.mu[i * d..(i + 1) * d])
                    .zip(draw(m, i))
                    .for_each(|((z, &mu), &e)| *z = mu + e);
                qn[r] = sq_norm(z);
            }
            gemm_abt_scaled(buf, &q, &p.mu, rows, n, d, -2.0);
            for (r, row) in buf.chunks_exact_mut(n).enumerate() {
                row.iter_mut()
                    .zip(&mu_norm)
                    .for_each(|(x, &mn)| *x = -0.5 * (*x + qn[r] + mn).max(0.0));
                let (m, i) = ((r0 + r) / n, (r0 + r) % n);
                row[i] = own[r0 + r];
                guard.fix_mc_row(i, draw(m, i), qn[r], own[r0 + r], row);
            }
        })?
    } else {
        // log p_j(z) = −½[Σ z²w_j − 2Σ z μ_j w_j + Σ μ_j² w_j + Σ log v_j] + const, w = 1/v.
        let (cols, quad) = per_sample_columns(p)?;
        let guard = PerSample::new(p, &cols, &quad);
        reduce_rows(&p.groups(), n_rows, &[1.0], ctl, |r0, rows, buf| {
            let mut q = vec![0.0; rows * 2 * d];
            let mut scratch = Scratch::default();
            for r in 0..rows {
                let (m, i) = ((r0 + r) / n, (r0 + r) % n);
                let (sq, lin) = q[r * 2 * d..(r + 1) * 2 * d].split_at_mut(d);
                let (mu, v) = (&p.mu[i * d..(i + 1) * d], &p.var[i * d..(i + 1) * d]);
                for k in 0..d {
                    let z = mu[k] + v[k].sqrt() * draw(m, i)[k];
                    sq[k] = z * z;
                    lin[k] = z;
                }
            }
            gemm_abt_scaled(buf, &q, &cols, rows, n, 2 * d, 1.0);
            for (r, row) in buf.chunks_exact_mut(n).enumerate() {
                row.iter_mut()
                    .zip(&quad)
                    .zip(&p.log_det)
                    .for_each(|((x, &qj), &lj)| *x = -0.5 * ((*x + qj).max(0.0) + lj));
                let (m, i) = ((r0 + r) / n, (r0 + r) % n);
                row[i] = own[r0 + r];
                guard.fix_mc_row(i, draw(m, i), own[r0 + r], row, &mut scratch);
            }
        })?
    };
    Ok((lse, own))
}

fn shared_guard<'a>(p: &'a Prepared, mu_norm: &'a [f64]) -> Shared<'a> {
    Shared {
        mu: &p.mu,
        d: p.d,
        norms: mu_norm,
        max_norm: mu_norm.iter().fold(0.0, |a, &b| a.max(b)),
        g: cancellation::rounding_factor(cancellation::shared_ops(p.d)),
        relevance: cancellation::relevance(p.n),
    }
}

/// Column features [w_j, −2 μ_j w_j] (N × 2d) and Σ_k μ_jk² w_jk, w = 1/v.
fn per_sample_columns(p: &Prepared) -> Result<(Vec<f64>, Vec<f64>)> {
    let d = p.d;
    let mut cols = memory::zeros::<f64>(p.n.saturating_mul(2 * d), need_columns(p.n, d))?;
    let mut quad = vec![0.0; p.n];
    for j in 0..p.n {
        let (w, l) = cols[j * 2 * d..(j + 1) * 2 * d].split_at_mut(d);
        for k in 0..d {
            let wk = 1.0 / p.var[j * d + k];
            w[k] = wk;
            l[k] = -2.0 * p.mu[j * d + k] * wk;
            quad[j] += p.mu[j * d + k] * p.mu[j * d + k] * wk;
        }
    }
    Ok((cols, quad))
}

fn need_columns(n: usize, d: usize) -> impl Fn() -> Need {
    move || {
        Need::new(
            "means",
            format!(
                "the {n} × {} per-sample column features of the means and variances",
                2 * d
            ),
            "use fewer samples (a random subset) or fewer dimensions",
        )
    }
}

/// Pairwise rows: LSE_j(−D_ij) for (KL, Bhattacharyya).
pub(super) fn pairwise_rows(p: &Prepared, ctl: &Ctl) -> Result<(Vec<RowLse>, Vec<RowLse>)> {
    let (n, d) = (p.n, p.d);
    if p.var.is_empty() {
        // Whitened: KL_ij = ½‖μ_i − μ_j‖², BD_ij = ⅛‖μ_i − μ_j‖². Buffer holds −‖μ_i − μ_j‖².
        let mu_norm: Vec<f64> = p.mu.chunks_exact(d).map(sq_norm).collect();
        let guard = shared_guard(p, &mu_norm);
        let both = reduce_rows(&p.groups(), n, &[0.5, 0.125], ctl, |r0, rows, buf| {
            gemm_abt_scaled(buf, &p.mu[r0 * d..(r0 + rows) * d], &p.mu, rows, n, d, -2.0);
            for (r, row) in buf.chunks_exact_mut(n).enumerate() {
                let ni = mu_norm[r0 + r];
                row.iter_mut()
                    .zip(&mu_norm)
                    .for_each(|(x, &nj)| *x = -(*x + ni + nj).max(0.0));
                row[r0 + r] = 0.0;
                guard.fix_distance_row(r0 + r, row);
            }
        })?;
        let kl = both.iter().step_by(2).copied().collect();
        let bd = both.iter().skip(1).step_by(2).copied().collect();
        return Ok((kl, bd));
    }
    // KL_ij = ½[Σ (v_i + μ_i²) w_j − 2 Σ μ_i μ_j w_j + Σ μ_j² w_j + L_j − L_i − d], L = Σ log v.
    let (cols, quad) = per_sample_columns(p)?;
    let guard = PerSample::new(p, &cols, &quad);
    let kl = reduce_rows(&p.groups(), n, &[1.0], ctl, |r0, rows, buf| {
        let mut q = vec![0.0; rows * 2 * d];
        let mut scratch = Scratch::default();
        for r in 0..rows {
            let i = r0 + r;
            let (a, b) = q[r * 2 * d..(r + 1) * 2 * d].split_at_mut(d);
            for k in 0..d {
                let mu = p.mu[i * d + k];
                a[k] = p.var[i * d + k] + mu * mu;
                b[k] = mu;
            }
        }
        gemm_abt_scaled(buf, &q, &cols, rows, n, 2 * d, 1.0);
        for (r, row) in buf.chunks_exact_mut(n).enumerate() {
            let li = p.log_det[r0 + r] + d as f64;
            row.iter_mut()
                .zip(&quad)
                .zip(&p.log_det)
                .for_each(|((x, &qj), &lj)| *x = -(0.5 * (*x + qj + lj - li)).max(0.0));
            row[r0 + r] = 0.0;
            guard.fix_kl_row(r0 + r, row, &mut scratch);
        }
    })?;
    let bd = bhattacharyya_rows(p, ctl)?;
    Ok((kl, bd))
}

/// BD_ij = Σ_k [(μ_ik − μ_jk)²/(4 s_k) + ½ log s_k] − ¼(L_i + L_j) − (d/2) log 2, s = v_i + v_j.
/// Direct O(N² d) loop (not separable). Σ_k log s_k is taken as the log of a running product,
/// renormalised through its binary exponent every few coordinates (one log per pair instead of
/// d). Coordinates are first rescaled so that every variance of a coordinate is ≤ 1 (the
/// divergence is invariant to rescaling a coordinate's mean and standard deviation together),
/// and the renormalisation period is chosen from the smallest variance ratio, so the running
/// product can neither overflow nor underflow.
fn bhattacharyya_rows(p: &Prepared, ctl: &Ctl) -> Result<Vec<RowLse>> {
    let (n, d) = (p.n, p.d);
    let mut vmax = vec![0.0f64; d];
    for row in p.var.chunks_exact(d) {
        vmax.iter_mut().zip(row).for_each(|(m, &v)| *m = m.max(v));
    }
    // Coordinate-major copies for the column side: vt[k * n + j], mt[k * n + j].
    let mut vt = memory::zeros::<f64>(n.saturating_mul(d), need_columns(n, d))?;
    let mut mt = memory::zeros::<f64>(n.saturating_mul(d), need_columns(n, d))?;
    let mut lmin = 0.0f64;
    for j in 0..n {
        for k in 0..d {
            let v = p.var[j * d + k] / vmax[k];
            vt[k * n + j] = v;
            mt[k * n + j] = p.mu[j * d + k] / vmax[k].sqrt();
            lmin = lmin.min(v.ln());
        }
    }
    let log_det_scaled: Vec<f64> = (0..n).map(|j| (0..d).map(|k| vt[k * n + j].ln()).sum()).collect();
    // s ∈ [2·exp(lmin), 2]: a product of `period` of them after renormalisation to [1, 2) stays
    // within [exp(period·(lmin + ln 2)), 2^(period+1)]: keep that above e^-700.
    let period = ((700.0 / (-(lmin + std::f64::consts::LN_2)).max(1.0)) as usize).clamp(1, 16);
    let half_d_ln2 = 0.5 * d as f64 * std::f64::consts::LN_2;
    let bd = BdColumns {
        n,
        d,
        vt: &vt,
        mt: &mt,
        log_det: &log_det_scaled,
        period,
        half_d_ln2,
    };
    reduce_rows(&p.groups(), n, &[1.0], ctl, |r0, rows, buf| bd.fill(r0, rows, buf))
}

/// The column side of the Bhattacharyya loop, coordinate-major and rescaled.
struct BdColumns<'a> {
    n: usize,
    d: usize,
    vt: &'a [f64],
    mt: &'a [f64],
    log_det: &'a [f64],
    period: usize,
    half_d_ln2: f64,
}

impl BdColumns<'_> {
    fn fill(&self, r0: usize, rows: usize, buf: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: the CPU supports AVX2 (checked above).
            return unsafe { self.fill_avx2(r0, rows, buf) };
        }
        self.fill_generic(r0, rows, buf)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn fill_avx2(&self, r0: usize, rows: usize, buf: &mut [f64]) {
        self.fill_generic(r0, rows, buf)
    }

    /// Rows r0..r0+rows of −BD into buf (rows × N). Same operations in the same order on every
    /// instruction set (no fused multiply-add), hence the same bits.
    #[inline(always)]
    fn fill_generic(&self, r0: usize, rows: usize, buf: &mut [f64]) {
        // A chunk of COLS columns (2·COLS·d values) stays in L2 while every row of the block
        // passes over it: column data is read from memory once per block, not once per row.
        const COLS: usize = 128;
        let (n, d, vt, mt) = (self.n, self.d, self.vt, self.mt);
        let mut acc = [0.0f64; COLS];
        let mut prod = [1.0f64; COLS];
        let mut expo = [0i64; COLS];
        for j0 in (0..n).step_by(COLS) {
            let w = COLS.min(n - j0);
            for r in 0..rows {
                let i = r0 + r;
                let row = &mut buf[r * n..(r + 1) * n];
                let (acc, prod, expo) = (&mut acc[..w], &mut prod[..w], &mut expo[..w]);
                acc.fill(0.0);
                prod.fill(1.0);
                expo.fill(0);
                for k in 0..d {
                    let (vi, mi) = (vt[k * n + i], mt[k * n + i]);
                    let vs = &vt[k * n + j0..k * n + j0 + w];
                    let ms = &mt[k * n + j0..k * n + j0 + w];
                    for t in 0..w {
                        let s = vi + vs[t];
                        let dm = mi - ms[t];
                        acc[t] += dm * dm / s;
                        prod[t] *= s;
                    }
                    if (k + 1) % self.period == 0 || k + 1 == d {
                        // prod = mantissa · 2^e: keep the mantissa in [1, 2), add e up.
                        for t in 0..w {
                            let bits = prod[t].to_bits();
                            expo[t] += ((bits >> 52) & 0x7ff) as i64 - 1023;
                            prod[t] = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
                        }
                    }
                }
                for t in 0..w {
                    let j = j0 + t;
                    let log_s = ln_mantissa(prod[t]) + expo[t] as f64 * std::f64::consts::LN_2;
                    let bd = 0.25 * acc[t] + 0.5 * log_s - 0.25 * (self.log_det[i] + self.log_det[j]) - self.half_d_ln2;
                    row[j] = if j == i { 0.0 } else { -bd.max(0.0) };
                }
            }
        }
    }
}
