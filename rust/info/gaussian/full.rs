//! A linear layer after the Gaussian channel (docs/spec.md §3.14): Z' = A·T with T | x_i ~
//! N(μ_i, diag v_i) and A (ρ × d) of full row rank ρ, so that Z' | x_i ~ N(A μ_i, Σ_i = A diag(v_i) Aᵀ)
//! with Σ_i positive definite.
//!
//! Coordinates are first whitened by the mean noise covariance: with Σ̄ = A diag(v̄) Aᵀ = L̄ L̄ᵀ
//! (v̄ the mean variance per coordinate) the map B = L̄⁻¹ A gives components of mean covariance I.
//! Every mutual information is invariant to this invertible map of Z'; h(Z'|X) gains log det L̄.
//!
//! - Shared noise: Σ = B diag(v) Bᵀ = I, so the whitened channel is the diagonal one with unit
//!   variances: the means B μ_i and the draws B(√v ⊙ ε) go to [`super::gaussian_channel_mi`].
//! - Per-sample noise: full covariances. Per sample j the Cholesky factor L_j of Σ_j and K_j =
//!   L_j⁻¹; then, all in the difference form (no cancellation of large terms),
//!   log q_j(z) = −½‖K_j (z − m_j)‖² − ½ log det Σ_j (+ the constant −(ρ/2) log 2π, dropped),
//!   KL(i‖j) = ½[‖K_j L_i‖²_F + ‖K_j Δ‖² − ρ + log det Σ_j − log det Σ_i] (‖K_j L_i‖²_F = tr(Σ_j⁻¹Σ_i)),
//!   BD(i, j) = ⅛‖L̄_ij⁻¹ Δ‖² + ½ log det Σ̄_ij − ¼(log det Σ_i + log det Σ_j),
//!   Σ̄_ij = (Σ_i + Σ_j)/2 = L̄_ij L̄_ijᵀ factored per pair, Δ = m_i − m_j.
//!
//! The Monte Carlo draw of row m·N + i is z = m_i + u, u = B(√v_i ⊙ ε) with ε the row of
//! standard normals of T's own draws (d of them): Z' is the image of the very draw of T that the
//! diagonal channel uses, so for an invertible A every term is the diagonal channel's (the terms
//! are invariant to invertible maps of z).
//!
//! The column side (m_j, K_j, Σ_j) is stored coordinate-major and padded to a multiple of
//! [`LANES`] columns; a row runs over [`LANES`] columns at a time, one per vector lane, so the
//! inner loops vectorise. No fused multiply-adds and a fixed order of operations: the same bits on
//! every instruction set and at every thread count. Rows are reduced by the log-sum-exps of
//! mixture.rs (`reduce_rows`), blocks fixed by N alone.

use super::mixture::{reduce_rows, RowLse};
use super::{assemble, gaussian_channel_mi, prepare, validate, Channel, ChannelMi, Groups, Noise, Request, LN_2PI_E};
use crate::error::{CoreError, Result};
use crate::memory::{self, Need};
use crate::parallel::Ctl;
#[cfg(target_arch = "x86_64")]
use crate::simd::has_avx2;
use crate::simd::ln_mantissa;
use std::sync::atomic::{AtomicBool, Ordering};

/// Columns handled together by the kernels (one per vector lane, several vectors).
pub(super) const LANES: usize = 16;

/// Position of entry (a, b), b ≤ a, of a packed lower-triangular matrix (row by row).
#[inline(always)]
pub(super) fn tri(a: usize, b: usize) -> usize {
    a * (a + 1) / 2 + b
}

/// Lower Cholesky factor of the packed symmetric `s` (lower triangle, ρ × ρ) into `l`; false when
/// a pivot is not a positive normal number (not numerically positive definite).
pub(super) fn cholesky_packed(s: &[f64], l: &mut [f64], rho: usize) -> bool {
    for a in 0..rho {
        for b in 0..=a {
            let mut x = s[tri(a, b)];
            for k in 0..b {
                x -= l[tri(a, k)] * l[tri(b, k)];
            }
            if a == b {
                if !(x >= f64::MIN_POSITIVE && x.is_finite()) {
                    return false;
                }
                l[tri(a, a)] = x.sqrt();
            } else {
                l[tri(a, b)] = x / l[tri(b, b)];
            }
        }
    }
    true
}

/// K = L⁻¹ for a packed lower-triangular L with positive diagonal (K is lower-triangular too).
pub(super) fn invert_lower_packed(l: &[f64], k: &mut [f64], rho: usize) {
    for b in 0..rho {
        k[tri(b, b)] = 1.0 / l[tri(b, b)];
        for a in b + 1..rho {
            let mut x = 0.0;
            for c in b..a {
                x += l[tri(a, c)] * k[tri(c, b)];
            }
            k[tri(a, b)] = -x / l[tri(a, a)];
        }
    }
}

/// 2 Σ_k log L_kk of a packed Cholesky factor: log det of the factored matrix.
fn log_det_packed(l: &[f64], rho: usize) -> f64 {
    2.0 * (0..rho).map(|a| l[tri(a, a)].ln()).sum::<f64>()
}

fn need_full(n: usize, rho: usize, what: &'static str) -> impl Fn() -> Need {
    move || {
        Need::new(
            "transform",
            format!("{what} of the {n} samples in the transform's {rho} dimensions"),
            "use fewer samples (a random subset) or a transform of lower rank",
        )
    }
}

/// Validated A and the whitening: B = L̄⁻¹ A (ρ × d, row-major) and log det L̄.
fn whiten(ch: &Channel<'_>, a: &[f64], rho: usize) -> Result<(Vec<f64>, f64)> {
    let (n, d) = (ch.n, ch.d);
    if rho == 0 || a.len() != rho * d {
        return Err(CoreError::invalid(
            "transform",
            format!("has {} values, expected ρ × {d} with ρ ≥ 1", a.len()),
        ));
    }
    if a.iter().any(|x| !x.is_finite()) {
        return Err(CoreError::invalid("transform", "contains NaN or inf"));
    }
    let mean_var: Vec<f64> = match ch.noise {
        Noise::Shared(v) => v.to_vec(),
        Noise::PerSample(v) => {
            let mut m = vec![0.0; d];
            for row in v.chunks_exact(d) {
                m.iter_mut().zip(row).for_each(|(s, &x)| *s += x);
            }
            m.iter_mut().for_each(|s| *s /= n as f64);
            m
        }
    };
    let t = tri(rho, 0);
    let mut cov = vec![0.0; t];
    for r in 0..rho {
        for c in 0..=r {
            cov[tri(r, c)] = (0..d).map(|k| a[r * d + k] * mean_var[k] * a[c * d + k]).sum();
        }
    }
    let mut l = vec![0.0; t];
    if !cholesky_packed(&cov, &mut l, rho) {
        return Err(CoreError::invalid(
            "transform",
            "A·diag(v̄)·Aᵀ (the mean noise covariance after the transform) is not numerically positive \
             definite: the transform's rows are nearly dependent",
        ));
    }
    let mut b = vec![0.0; rho * d];
    for k in 0..d {
        for r in 0..rho {
            let mut x = a[r * d + k];
            for c in 0..r {
                x -= l[tri(r, c)] * b[c * d + k];
            }
            b[r * d + k] = x / l[tri(r, r)];
        }
    }
    Ok((b, 0.5 * log_det_packed(&l, rho)))
}

/// u = B(√v ⊙ ε) (length ρ).
#[inline]
fn noise_image(b: &[f64], d: usize, v: &[f64], eps: &[f64], u: &mut [f64]) {
    for (r, ur) in u.iter_mut().enumerate() {
        *ur = b[r * d..(r + 1) * d]
            .iter()
            .zip(v)
            .zip(eps)
            .map(|((&bk, &vk), &e)| bk * (vk.sqrt() * e))
            .sum();
    }
}

/// Mutual information through the Gaussian channel followed by the linear map A (ρ × d, full row
/// rank, row-major): I(X; A·T) and the rest of [`ChannelMi`], h(Z'|X) in the coordinates of A·T.
/// `req.draws` are T's standard normals ((n_draws · N) × d), as for the diagonal channel.
pub fn linear_channel_mi(ch: &Channel<'_>, a: &[f64], rho: usize, req: &Request<'_>, ctl: &Ctl) -> Result<ChannelMi> {
    validate(ch, req)?;
    let (b, log_det_white) = whiten(ch, a, rho)?;
    let (n, d) = (ch.n, ch.d);
    match ch.noise {
        Noise::Shared(v) => {
            // Whitened, the noise is N(0, I_ρ): the diagonal channel with unit variances.
            let mut m = memory::zeros::<f64>(n.saturating_mul(rho), need_full(n, rho, "the transformed means"))?;
            ctl.fill_blocks(&mut m, 256 * rho, |start, sl| {
                let i0 = start / rho;
                for (r, mi) in sl.chunks_exact_mut(rho).enumerate() {
                    let mu = &ch.means[(i0 + r) * d..(i0 + r + 1) * d];
                    for (c, x) in mi.iter_mut().enumerate() {
                        *x = b[c * d..(c + 1) * d].iter().zip(mu).map(|(&bk, &m)| bk * m).sum();
                    }
                }
            })?;
            let draws = match req.draws {
                Some(eps) => {
                    let rows = req.n_draws * n;
                    let mut u =
                        memory::zeros::<f64>(rows.saturating_mul(rho), need_full(n, rho, "the Monte Carlo draws"))?;
                    ctl.fill_blocks(&mut u, 256 * rho, |start, sl| {
                        let r0 = start / rho;
                        for (r, ur) in sl.chunks_exact_mut(rho).enumerate() {
                            noise_image(&b, d, v, &eps[(r0 + r) * d..(r0 + r + 1) * d], ur);
                        }
                    })?;
                    Some(u)
                }
                None => None,
            };
            let ones = vec![1.0; rho];
            let whitened = Channel {
                means: &m,
                n,
                d: rho,
                noise: Noise::Shared(&ones),
            };
            let sub = Request {
                draws: draws.as_deref(),
                ..*req
            };
            let mut r = gaussian_channel_mi(&whitened, &sub, ctl)?;
            r.h_z_given_x += log_det_white;
            Ok(r)
        }
        Noise::PerSample(_) => {
            let full = Full::new(ch, &b, rho, req.labels, ctl)?;
            let h = 0.5 * (rho as f64 * LN_2PI_E + full.ld[..n].iter().sum::<f64>() / n as f64) + log_det_white;
            let mc = match req.draws {
                Some(eps) => Some(full.mc_rows(eps, req.n_draws, ctl)?),
                None => None,
            };
            let bounds = if req.bounds {
                let kl = full.kl_rows(ctl)?;
                let bd = full.bd_rows(ctl)?;
                let total = full.maxent(0, n);
                let per_class = if req.labels.is_some() {
                    full.groups().ranges().iter().map(|&(a, b)| full.maxent(a, b)).collect()
                } else {
                    Vec::new()
                };
                Some(((kl, bd), (total, per_class)))
            } else {
                None
            };
            Ok(assemble(
                &full.groups(),
                h,
                req.labels.is_some(),
                mc.as_ref(),
                bounds.as_ref(),
            ))
        }
    }
}

/// The per-sample, full-covariance channel in whitened coordinates, samples sorted by class.
pub(super) struct Full {
    n: usize,
    /// Columns padded to a multiple of LANES (copies of the last sample).
    np: usize,
    rho: usize,
    /// ρ(ρ+1)/2.
    t: usize,
    /// B (ρ × d) and the sorted variances (N × d), for the draws.
    b: Vec<f64>,
    var: Vec<f64>,
    d: usize,
    order: Vec<usize>,
    bounds: Vec<usize>,
    class_of: Vec<u32>,
    /// Row side, sample-major: centred means (N × ρ), packed Σ_i, L_i, K_i (N × t each).
    mu: Vec<f64>,
    sig: Vec<f64>,
    chol: Vec<f64>,
    inv: Vec<f64>,
    /// log det Σ_j (np, padded).
    ld: Vec<f64>,
    /// Column side, coordinate-major (index · np + j): means, K_j, Σ_j.
    mt: Vec<f64>,
    kt: Vec<f64>,
    st: Vec<f64>,
}

impl Full {
    pub(super) fn new(ch: &Channel<'_>, b: &[f64], rho: usize, labels: Option<&[u32]>, ctl: &Ctl) -> Result<Full> {
        let p = prepare(ch, labels)?;
        let (n, d) = (p.n, p.d);
        let t = tri(rho, 0);
        let np = n.div_ceil(LANES) * LANES;
        let mut mu = memory::zeros::<f64>(n.saturating_mul(rho), need_full(n, rho, "the transformed means"))?;
        ctl.fill_blocks(&mut mu, 256 * rho, |start, sl| {
            let i0 = start / rho;
            for (r, mi) in sl.chunks_exact_mut(rho).enumerate() {
                let m = &p.mu[(i0 + r) * d..(i0 + r + 1) * d];
                for (c, x) in mi.iter_mut().enumerate() {
                    *x = b[c * d..(c + 1) * d].iter().zip(m).map(|(&bk, &mk)| bk * mk).sum();
                }
            }
        })?;
        // Per sample: Σ_i, its Cholesky factor L_i and K_i = L_i⁻¹, packed side by side.
        let mut packed = memory::zeros::<f64>(n.saturating_mul(3 * t), need_full(n, rho, "the covariances"))?;
        let failed = AtomicBool::new(false);
        ctl.fill_blocks(&mut packed, 64 * 3 * t, |start, sl| {
            let i0 = start / (3 * t);
            for (r, block) in sl.chunks_exact_mut(3 * t).enumerate() {
                let v = &p.var[(i0 + r) * d..(i0 + r + 1) * d];
                let (s, rest) = block.split_at_mut(t);
                let (l, k) = rest.split_at_mut(t);
                for a in 0..rho {
                    for c in 0..=a {
                        let (ba, bc) = (&b[a * d..(a + 1) * d], &b[c * d..(c + 1) * d]);
                        s[tri(a, c)] = ba.iter().zip(bc).zip(v).map(|((&x, &y), &w)| x * w * y).sum();
                    }
                }
                if cholesky_packed(s, l, rho) {
                    invert_lower_packed(l, k, rho);
                } else {
                    failed.store(true, Ordering::Relaxed);
                }
            }
        })?;
        if failed.load(Ordering::Relaxed) {
            return Err(CoreError::invalid(
                "transform",
                "a covariance A·diag(v_i)·Aᵀ is not numerically positive definite (variances too small for \
                 the transform's conditioning: raise min_variance)",
            ));
        }
        let mut sig = memory::zeros::<f64>(n.saturating_mul(t), need_full(n, rho, "the covariances"))?;
        let mut chol = memory::zeros::<f64>(n.saturating_mul(t), need_full(n, rho, "the Cholesky factors"))?;
        let mut inv = memory::zeros::<f64>(n.saturating_mul(t), need_full(n, rho, "the inverse factors"))?;
        for (i, block) in packed.chunks_exact(3 * t).enumerate() {
            sig[i * t..(i + 1) * t].copy_from_slice(&block[..t]);
            chol[i * t..(i + 1) * t].copy_from_slice(&block[t..2 * t]);
            inv[i * t..(i + 1) * t].copy_from_slice(&block[2 * t..]);
        }
        drop(packed);
        let src = |j: usize| j.min(n - 1); // padding columns repeat the last sample
        let ld: Vec<f64> = (0..np).map(|j| log_det_packed(&chol[src(j) * t..], rho)).collect();
        let column_major = |data: &[f64], width: usize, what: &'static str| -> Result<Vec<f64>> {
            let mut out = memory::zeros::<f64>(np.saturating_mul(width), need_full(n, rho, what))?;
            for j in 0..np {
                let row = &data[src(j) * width..(src(j) + 1) * width];
                for (x, &v) in row.iter().enumerate() {
                    out[x * np + j] = v;
                }
            }
            Ok(out)
        };
        let mt = column_major(&mu, rho, "the transformed means")?;
        let kt = column_major(&inv, t, "the inverse factors")?;
        let st = column_major(&sig, t, "the covariances")?;
        Ok(Full {
            n,
            np,
            rho,
            t,
            b: b.to_vec(),
            var: p.var,
            d,
            order: p.order,
            bounds: p.bounds,
            class_of: p.class_of,
            mu,
            sig,
            chol,
            inv,
            ld,
            mt,
            kt,
            st,
        })
    }

    fn groups(&self) -> Groups<'_> {
        Groups {
            n: self.n,
            bounds: &self.bounds,
            class_of: &self.class_of,
        }
    }

    /// Monte Carlo rows: LSE_j log q_j(z_r) (−(ρ/2) log 2π dropped) and the own terms
    /// log q_i(z_r) = −½(‖K_i u‖² + log det Σ_i), row m·N + i for sorted sample i.
    pub(super) fn mc_rows(&self, draws: &[f64], n_draws: usize, ctl: &Ctl) -> Result<(Vec<RowLse>, Vec<f64>)> {
        let (n, rho, d) = (self.n, self.rho, self.d);
        let rows = n * n_draws;
        let mut u = memory::zeros::<f64>(rows.saturating_mul(rho), need_full(n, rho, "the Monte Carlo draws"))?;
        ctl.fill_blocks(&mut u, 256 * rho, |start, sl| {
            let r0 = start / rho;
            for (r, ur) in sl.chunks_exact_mut(rho).enumerate() {
                let (m, i) = ((r0 + r) / n, (r0 + r) % n);
                let o = m * n + self.order[i];
                noise_image(
                    &self.b,
                    d,
                    &self.var[i * d..(i + 1) * d],
                    &draws[o * d..(o + 1) * d],
                    ur,
                );
            }
        })?;
        let own: Vec<f64> = (0..rows)
            .map(|r| {
                let i = r % n;
                -0.5 * (self.lower_norm(&self.inv[i * self.t..], &u[r * rho..(r + 1) * rho]) + self.ld[i])
            })
            .collect();
        let lse = reduce_rows(&self.groups(), rows, &[1.0], ctl, |r0, nr, buf| {
            let mut delta = vec![0.0; rho * LANES];
            for (r, row) in buf.chunks_exact_mut(n).enumerate() {
                let i = (r0 + r) % n;
                let ui = &u[(r0 + r) * rho..(r0 + r + 1) * rho];
                self.fill_quadratic_row(&self.mu[i * rho..(i + 1) * rho], ui, &mut delta, row, |acc, ldj| {
                    -0.5 * (acc + ldj)
                });
                row[i] = own[r0 + r];
            }
            debug_assert_eq!(buf.len(), nr * n);
        })?;
        Ok((lse, own))
    }

    /// ‖K x‖² for packed lower-triangular K.
    fn lower_norm(&self, k: &[f64], x: &[f64]) -> f64 {
        (0..self.rho)
            .map(|a| {
                let y: f64 = (0..=a).map(|b| k[tri(a, b)] * x[b]).sum();
                y * y
            })
            .sum()
    }

    /// Row −KL(i‖·): −max(0, ½[‖K_j L_i‖²_F + ‖K_j Δ‖² − ρ + log det Σ_j − log det Σ_i]).
    fn kl_rows(&self, ctl: &Ctl) -> Result<Vec<RowLse>> {
        let (n, rho, t) = (self.n, self.rho, self.t);
        let zero = vec![0.0; rho];
        reduce_rows(&self.groups(), n, &[1.0], ctl, |r0, _, buf| {
            let mut delta = vec![0.0; rho * LANES];
            for (r, row) in buf.chunks_exact_mut(n).enumerate() {
                let i = r0 + r;
                let li = &self.chol[i * t..(i + 1) * t];
                let c = self.ld[i] + rho as f64;
                self.fill_quadratic_row(&self.mu[i * rho..(i + 1) * rho], &zero, &mut delta, row, |acc, ldj| {
                    acc + ldj - c
                });
                // Add the trace term and finish.
                for j0 in (0..n).step_by(LANES) {
                    let tr = self.trace_lanes(j0, li);
                    let w = LANES.min(n - j0);
                    for (x, &tj) in row[j0..j0 + w].iter_mut().zip(&tr) {
                        *x = -(0.5 * (*x + tj)).max(0.0);
                    }
                }
                row[i] = 0.0;
            }
        })
    }

    /// For each chunk of LANES columns: acc_j = ‖K_j((m_i − m_j) + u)‖², then
    /// row[j] = finish(acc_j, log det Σ_j).
    #[inline]
    fn fill_quadratic_row(
        &self,
        mi: &[f64],
        u: &[f64],
        delta: &mut [f64],
        row: &mut [f64],
        finish: impl Fn(f64, f64) -> f64,
    ) {
        let n = self.n;
        for j0 in (0..n).step_by(LANES) {
            let acc = self.quad_lanes(j0, mi, u, delta);
            let w = LANES.min(n - j0);
            for t in 0..w {
                row[j0 + t] = finish(acc[t], self.ld[j0 + t]);
            }
        }
    }

    fn quad_lanes(&self, j0: usize, mi: &[f64], u: &[f64], delta: &mut [f64]) -> [f64; LANES] {
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: the CPU supports AVX2 (checked above).
            return unsafe { self.quad_lanes_avx2(j0, mi, u, delta) };
        }
        self.quad_lanes_generic(j0, mi, u, delta)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn quad_lanes_avx2(&self, j0: usize, mi: &[f64], u: &[f64], delta: &mut [f64]) -> [f64; LANES] {
        self.quad_lanes_generic(j0, mi, u, delta)
    }

    /// ‖K_j((m_i − m_j) + u)‖² for the LANES columns from j0.
    #[inline(always)]
    fn quad_lanes_generic(&self, j0: usize, mi: &[f64], u: &[f64], delta: &mut [f64]) -> [f64; LANES] {
        let (np, rho) = (self.np, self.rho);
        for b in 0..rho {
            let ms: &[f64; LANES] = self.mt[b * np + j0..b * np + j0 + LANES].try_into().unwrap();
            let dl: &mut [f64; LANES] = (&mut delta[b * LANES..(b + 1) * LANES]).try_into().unwrap();
            for l in 0..LANES {
                dl[l] = (mi[b] - ms[l]) + u[b];
            }
        }
        let mut acc = [0.0f64; LANES];
        for a in 0..rho {
            let mut y = [0.0f64; LANES];
            for b in 0..=a {
                let o = tri(a, b) * np + j0;
                let ks: &[f64; LANES] = self.kt[o..o + LANES].try_into().unwrap();
                let dl: &[f64; LANES] = delta[b * LANES..(b + 1) * LANES].try_into().unwrap();
                for l in 0..LANES {
                    y[l] += ks[l] * dl[l];
                }
            }
            for l in 0..LANES {
                acc[l] += y[l] * y[l];
            }
        }
        acc
    }

    fn trace_lanes(&self, j0: usize, li: &[f64]) -> [f64; LANES] {
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: the CPU supports AVX2 (checked above).
            return unsafe { self.trace_lanes_avx2(j0, li) };
        }
        self.trace_lanes_generic(j0, li)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn trace_lanes_avx2(&self, j0: usize, li: &[f64]) -> [f64; LANES] {
        self.trace_lanes_generic(j0, li)
    }

    /// ‖K_j L_i‖²_F = tr(Σ_j⁻¹ Σ_i) for the LANES columns from j0: (K_j L_i)_ab = Σ_{k=b..a} K_j,ak L_i,kb.
    #[inline(always)]
    fn trace_lanes_generic(&self, j0: usize, li: &[f64]) -> [f64; LANES] {
        let (np, rho) = (self.np, self.rho);
        let mut acc = [0.0f64; LANES];
        for b in 0..rho {
            for a in b..rho {
                let mut x = [0.0f64; LANES];
                for k in b..=a {
                    let o = tri(a, k) * np + j0;
                    let ks: &[f64; LANES] = self.kt[o..o + LANES].try_into().unwrap();
                    let l = li[tri(k, b)];
                    for c in 0..LANES {
                        x[c] += ks[c] * l;
                    }
                }
                for c in 0..LANES {
                    acc[c] += x[c] * x[c];
                }
            }
        }
        acc
    }

    /// Row −BD(i, ·), Σ̄ = (Σ_i + Σ_j)/2 factored per pair.
    fn bd_rows(&self, ctl: &Ctl) -> Result<Vec<RowLse>> {
        let (n, rho, t) = (self.n, self.rho, self.t);
        let failed = AtomicBool::new(false);
        let rows = reduce_rows(&self.groups(), n, &[1.0], ctl, |r0, _, buf| {
            let mut c = vec![0.0; t * LANES];
            for (r, row) in buf.chunks_exact_mut(n).enumerate() {
                let i = r0 + r;
                let si = &self.sig[i * t..(i + 1) * t];
                let mi = &self.mu[i * rho..(i + 1) * rho];
                for j0 in (0..n).step_by(LANES) {
                    let (bd, ok) = self.bd_lanes(j0, si, mi, self.ld[i], &mut c);
                    if !ok {
                        failed.store(true, Ordering::Relaxed);
                    }
                    let w = LANES.min(n - j0);
                    for (x, &v) in row[j0..j0 + w].iter_mut().zip(&bd) {
                        *x = -v.max(0.0);
                    }
                }
                row[i] = 0.0;
            }
        })?;
        if failed.load(Ordering::Relaxed) {
            return Err(CoreError::invalid(
                "transform",
                "the mean (Σ_i + Σ_j)/2 of two covariances is not numerically positive definite (variances too \
                 small for the transform's conditioning: raise min_variance)",
            ));
        }
        Ok(rows)
    }

    fn bd_lanes(&self, j0: usize, si: &[f64], mi: &[f64], ldi: f64, c: &mut [f64]) -> ([f64; LANES], bool) {
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: the CPU supports AVX2 (checked above).
            return unsafe { self.bd_lanes_avx2(j0, si, mi, ldi, c) };
        }
        self.bd_lanes_generic(j0, si, mi, ldi, c)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn bd_lanes_avx2(&self, j0: usize, si: &[f64], mi: &[f64], ldi: f64, c: &mut [f64]) -> ([f64; LANES], bool) {
        self.bd_lanes_generic(j0, si, mi, ldi, c)
    }

    /// BD(i, j) for the LANES columns from j0: Cholesky of Σ̄ in every lane at once (c: t × LANES
    /// scratch), y = L̄⁻¹Δ, BD = ⅛‖y‖² + Σ_k log L̄_kk − ¼(log det Σ_i + log det Σ_j). Π_k L̄_kk is
    /// kept as mantissa · 2^e (renormalised after every factor, so it neither over- nor underflows)
    /// and its log taken once. The flag is false when a pivot is not a positive normal number.
    #[inline(always)]
    fn bd_lanes_generic(&self, j0: usize, si: &[f64], mi: &[f64], ldi: f64, c: &mut [f64]) -> ([f64; LANES], bool) {
        let (np, rho) = (self.np, self.rho);
        for (x, &s) in si.iter().enumerate() {
            let sj: &[f64; LANES] = self.st[x * np + j0..x * np + j0 + LANES].try_into().unwrap();
            let cx: &mut [f64; LANES] = (&mut c[x * LANES..(x + 1) * LANES]).try_into().unwrap();
            for l in 0..LANES {
                cx[l] = 0.5 * (s + sj[l]);
            }
        }
        let mut ok = true;
        let mut prod = [1.0f64; LANES];
        let mut expo = [0i64; LANES];
        let mut y = vec![[0.0f64; LANES]; rho];
        let mut q = [0.0f64; LANES];
        let mut rinv = vec![[0.0f64; LANES]; rho];
        for a in 0..rho {
            for b in 0..=a {
                let mut x: [f64; LANES] = c[tri(a, b) * LANES..(tri(a, b) + 1) * LANES].try_into().unwrap();
                for k in 0..b {
                    let (ca, cb) = (tri(a, k) * LANES, tri(b, k) * LANES);
                    for l in 0..LANES {
                        x[l] -= c[ca + l] * c[cb + l];
                    }
                }
                let o = tri(a, b) * LANES;
                if a == b {
                    for l in 0..LANES {
                        ok &= x[l] >= f64::MIN_POSITIVE && x[l] < f64::INFINITY;
                        let s = x[l].sqrt();
                        c[o + l] = s;
                        rinv[a][l] = 1.0 / s;
                        let p = prod[l] * s;
                        let bits = p.to_bits();
                        expo[l] += ((bits >> 52) & 0x7ff) as i64 - 1023;
                        prod[l] = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
                    }
                } else {
                    for l in 0..LANES {
                        c[o + l] = x[l] * rinv[b][l];
                    }
                }
            }
            // Forward substitution for y_a as soon as row a of L̄ is known.
            let ms: &[f64; LANES] = self.mt[a * np + j0..a * np + j0 + LANES].try_into().unwrap();
            let mut x: [f64; LANES] = std::array::from_fn(|l| mi[a] - ms[l]);
            for (k, yk) in y[..a].iter().enumerate() {
                let ca = tri(a, k) * LANES;
                for l in 0..LANES {
                    x[l] -= c[ca + l] * yk[l];
                }
            }
            for l in 0..LANES {
                y[a][l] = x[l] * rinv[a][l];
                q[l] += y[a][l] * y[a][l];
            }
        }
        let mut out = [0.0f64; LANES];
        for l in 0..LANES {
            let log_det_half = ln_mantissa(prod[l]) + expo[l] as f64 * std::f64::consts::LN_2;
            out[l] = 0.125 * q[l] + log_det_half - 0.25 * (ldi + self.ld[j0 + l]);
        }
        (out, ok)
    }

    /// ½ log det Cov Z' − ½ mean log det Σ_i over sorted samples lo..hi, Cov Z' = mean Σ_i + the
    /// covariance of the means; +inf when Cov Z' is not numerically positive definite.
    fn maxent(&self, lo: usize, hi: usize) -> f64 {
        let (rho, t) = (self.rho, self.t);
        let m = (hi - lo) as f64;
        let mut centre = vec![0.0; rho];
        for row in self.mu[lo * rho..hi * rho].chunks_exact(rho) {
            centre.iter_mut().zip(row).for_each(|(c, &x)| *c += x);
        }
        centre.iter_mut().for_each(|c| *c /= m);
        let mut cov = vec![0.0; t];
        for i in lo..hi {
            let (s, mu) = (&self.sig[i * t..(i + 1) * t], &self.mu[i * rho..(i + 1) * rho]);
            for a in 0..rho {
                for b in 0..=a {
                    cov[tri(a, b)] += s[tri(a, b)] + (mu[a] - centre[a]) * (mu[b] - centre[b]);
                }
            }
        }
        cov.iter_mut().for_each(|x| *x /= m);
        let mut l = vec![0.0; t];
        if !cholesky_packed(&cov, &mut l, rho) {
            return f64::INFINITY;
        }
        let mean_ld = self.ld[lo..hi].iter().sum::<f64>() / m;
        0.5 * (log_det_packed(&l, rho) - mean_ld)
    }
}

#[cfg(test)]
#[path = "full_tests.rs"]
mod tests;
