//! Where the matrix-product form of mixture.rs may cancel, and the difference form that replaces it
//! there (docs/spec.md §3.11).
//!
//! The product form evaluates a quadratic form Q = Σ_k (z_k − μ_jk)² w_jk as
//! A − 2 Σ_k z_k μ_jk w_jk + B with A = Σ_k z_k² w_jk and B = B_j = Σ_k μ_jk² w_jk. In floating point
//! (any summation order, with or without fused multiply-adds, m rounded operations per entry) its
//! error is at most γ_m (A + 2|Σ z μ w| + B) ≤ 2γ_m (A + B), γ_m = m u / (1 − m u), u = 2⁻⁵³
//! (Higham, *Accuracy and Stability of Numerical Algorithms*, §3.1). A is not known per entry, but
//! Q ≥ (√A − √B)² gives A ≤ 2B + 2Q, hence for the computed value Q̂
//!
//!   |Q̂ − Q| ≤ g (3B + 2 Q̂⁺),   g = 2γ_m / (1 − 4γ_m),
//!
//! and the same holds for the KL form (its extra term Σ v_ik w_jk is ≤ Q). The 2 Q̂⁺ part is an
//! ordinary relative error; the 3B part is the cancellation: it is large when the column's centred
//! mean is far from the origin in units of its standard deviations (e.g. a ReLU zero, centred to
//! −μ̄_k, with a floored variance). A column is *prone* when its cancellation part can exceed
//! [`TOLERANCE`]; an entry of a prone column is recomputed in the difference form
//! Σ_k ((μ_ik − μ_jk) + √v_ik ε_k)² w_jk (no cancellation) when it can matter, i.e. when it can lie
//! within [`relevance`] of the row's own, exact term (for divergences: of D_ii = 0). Entries further
//! below cannot change the log-sum-exp by more than e⁻⁴⁰. Inputs whose bound is below the tolerance
//! everywhere (the usual case) keep the product form, bit for bit.
//!
//! With shared noise (whitened coordinates) both norms are known, so the bound is
//! |D̂ − D| ≤ g (‖z‖² + ‖μ_j‖²) per entry.

use super::Prepared;
#[cfg(target_arch = "x86_64")]
use crate::simd::has_avx2;

/// Largest error of a log-density or divergence entry (nats) for which the product form is kept.
pub(super) const TOLERANCE: f64 = 1e-11;

/// g = 2γ_m / (1 − 4γ_m) for m rounded operations per entry.
pub(super) fn rounding_factor(m: usize) -> f64 {
    let mu = m as f64 * (f64::EPSILON / 2.0);
    let gamma = mu / (1.0 - mu);
    2.0 * gamma / (1.0 - 4.0 * gamma)
}

/// Entries more than this below the row's own term (log-densities) or below 0 (−divergences) are
/// left alone: together they weigh at most N e^−(40 + ln N) = e⁻⁴⁰ relative to the own term.
pub(super) fn relevance(n: usize) -> f64 {
    40.0 + (n as f64).ln()
}

/// Rounded operations per product-form entry with per-sample variances: an inner product of 2d
/// terms, their rounded inputs (z², 1/v, −2μ/v, z itself), the added B_j and a margin.
pub(super) fn per_sample_ops(d: usize) -> usize {
    2 * d + 8
}

/// Rounded operations per entry with shared noise: an inner product of d terms, the two norms and
/// a margin.
pub(super) fn shared_ops(d: usize) -> usize {
    d + 8
}

/// The per-sample side of the difference form: centred means, variances, w = 1/v, log-dets.
pub(super) struct PerSample<'a> {
    p: &'a Prepared,
    /// Column features [w_j, −2 μ_j w_j] (N × 2d) of mixture.rs: w_j is read from them.
    cols: &'a [f64],
    /// 1.5·g·B_j, the cancellation part of column j's error bound (nats), where it exceeds the
    /// tolerance (the column is *prone*); −∞ elsewhere.
    cancel: Vec<f64>,
    /// The prone columns, ascending.
    prone: Vec<u32>,
    g: f64,
    relevance: f64,
}

/// Per-thread scratch of the fix-ups: a mask over the columns and the candidate indices.
#[derive(Default)]
pub(super) struct Scratch {
    mask: Vec<u8>,
    hits: Vec<u32>,
}

/// Whether x + c + g·max(b − 2x − l, 0) ≥ floor: an entry x whose error bound c + g·(…) can bring
/// it within reach of `floor`.
#[inline(always)]
fn may_matter(x: f64, c: f64, l: f64, g: f64, b: f64, floor: f64) -> bool {
    let q = b - 2.0 * x - l;
    x + c + g * if q > 0.0 { q } else { 0.0 } >= floor
}

#[inline(always)]
fn mark_generic(row: &[f64], cancel: &[f64], log_det: &[f64], (g, b, floor): (f64, f64, f64), mask: &mut [u8]) {
    for (((m, &x), &c), &l) in mask.iter_mut().zip(row).zip(cancel).zip(log_det) {
        *m = may_matter(x, c, l, g, b, floor) as u8;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn mark_avx2(row: &[f64], cancel: &[f64], log_det: &[f64], gbf: (f64, f64, f64), mask: &mut [u8]) {
    mark_generic(row, cancel, log_det, gbf, mask)
}

/// mask_j = may_matter(row_j, cancel_j, L_j): one vectorised pass (the same comparisons on every
/// instruction set).
fn mark(row: &[f64], cancel: &[f64], log_det: &[f64], gbf: (f64, f64, f64), mask: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU supports AVX2 (checked above).
        return unsafe { mark_avx2(row, cancel, log_det, gbf, mask) };
    }
    mark_generic(row, cancel, log_det, gbf, mask)
}

/// Candidate columns of one row, into `scratch.hits`: the j with
/// x_j + cancel_j + g·max(b − 2x_j − L_j, 0) ≥ floor.
fn candidates(ps: &PerSample<'_>, row: &[f64], b: f64, floor: f64, scratch: &mut Scratch) {
    let (log_det, g) = (&ps.p.log_det, ps.g);
    let Scratch { mask, hits } = scratch;
    hits.clear();
    if ps.prone.len() * 8 < row.len() {
        let j = ps.prone.iter().map(|&j| j as usize);
        let hit = j.filter(|&j| may_matter(row[j], ps.cancel[j], log_det[j], g, b, floor));
        hits.extend(hit.map(|j| j as u32));
        return;
    }
    // Most columns are prone: one vectorised pass over all of them (a non-prone column has
    // cancel = −∞ and never qualifies), then a scan that skips eight clear columns at a time.
    mask.resize(row.len(), 0);
    mark(row, &ps.cancel, log_det, (g, b, floor), mask);
    for (chunk, bytes) in mask.chunks(8).enumerate() {
        let mut word = [0u8; 8];
        word[..bytes.len()].copy_from_slice(bytes);
        if u64::from_ne_bytes(word) != 0 {
            let hit = bytes.iter().enumerate().filter(|(_, &m)| m != 0);
            hits.extend(hit.map(|(t, _)| (chunk * 8 + t) as u32));
        }
    }
}

/// Σ_k t_k in four interleaved partial sums (independent additions, not one serial chain).
#[inline(always)]
fn sum4(terms: impl Iterator<Item = f64>) -> f64 {
    let mut acc = [0.0f64; 4];
    for (k, t) in terms.enumerate() {
        acc[k % 4] += t;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

impl<'a> PerSample<'a> {
    /// `quad` holds B_j = Σ_k μ_jk² w_jk.
    pub(super) fn new(p: &'a Prepared, cols: &'a [f64], quad: &[f64]) -> Self {
        let g = rounding_factor(per_sample_ops(p.d));
        let cancel: Vec<f64> = quad
            .iter()
            .map(|&b| {
                if 1.5 * g * b > TOLERANCE {
                    1.5 * g * b
                } else {
                    f64::NEG_INFINITY
                }
            })
            .collect();
        let prone = (0..cancel.len() as u32)
            .filter(|&j| cancel[j as usize] > f64::NEG_INFINITY)
            .collect();
        PerSample {
            p,
            cols,
            cancel,
            prone,
            g,
            relevance: relevance(p.n),
        }
    }

    /// Whether any column is prone (else the fix-ups have nothing to do).
    pub(super) fn active(&self) -> bool {
        !self.prone.is_empty()
    }

    fn w(&self, j: usize) -> &[f64] {
        let d = self.p.d;
        &self.cols[j * 2 * d..j * 2 * d + d]
    }

    fn mu(&self, j: usize) -> &[f64] {
        let d = self.p.d;
        &self.p.mu[j * d..(j + 1) * d]
    }

    /// Monte Carlo row of sample i with standard normals `eps`: `row[j]` = −½(Q̂_j⁺ + L_j), `own` the
    /// exact −½(‖ε‖² + L_i). Recomputes the entries of prone columns that may matter (err_j =
    /// ½ g (3B_j + 2Q̂_j⁺), Q̂_j⁺ = −2 row[j] − L_j, and row[j] + err_j ≥ own − relevance).
    /// `scratch` is reused between rows.
    pub(super) fn fix_mc_row(&self, i: usize, eps: &[f64], own: f64, row: &mut [f64], scratch: &mut Scratch) {
        if !self.active() {
            return;
        }
        candidates(self, row, 0.0, own - self.relevance, scratch);
        let d = self.p.d;
        let mu_i = self.mu(i);
        let noise: Vec<f64> = self.p.var[i * d..(i + 1) * d]
            .iter()
            .zip(eps)
            .map(|(v, e)| v.sqrt() * e)
            .collect();
        for &j in &scratch.hits {
            let j = j as usize;
            if j != i {
                let terms = mu_i.iter().zip(self.mu(j)).zip(&noise).zip(self.w(j));
                let s = sum4(terms.map(|(((&a, &b), &e), &w)| ((a - b) + e) * ((a - b) + e) * w));
                row[j] = -0.5 * (s + self.p.log_det[j]);
            }
        }
    }

    /// Row i of −KL: `row[j]` = −max(0, ½(P̂_j + L_j − L_i − d)). Recomputes the entries of prone
    /// columns that may matter (err_j = ½ g (3B_j + 2P̂_j⁺), P̂_j⁺ = −2 row[j] − L_j + L_i + d, which
    /// bounds P̂ also where the clamp hit, and KL̂_j − err_j ≤ relevance) as
    /// ½ Σ_k (v_ik + (μ_ik − μ_jk)²) w_jk + ½(L_j − L_i − d).
    pub(super) fn fix_kl_row(&self, i: usize, row: &mut [f64], scratch: &mut Scratch) {
        if !self.active() {
            return;
        }
        let d = self.p.d;
        let li = self.p.log_det[i] + d as f64;
        candidates(self, row, li, -self.relevance, scratch);
        let (mu_i, v_i) = (self.mu(i), &self.p.var[i * d..(i + 1) * d]);
        for &j in &scratch.hits {
            let j = j as usize;
            if j != i {
                let terms = mu_i.iter().zip(self.mu(j)).zip(v_i).zip(self.w(j));
                let s = sum4(terms.map(|(((&a, &b), &v), &w)| (v + (a - b) * (a - b)) * w));
                row[j] = -(0.5 * (s + self.p.log_det[j] - li)).max(0.0);
            }
        }
    }
}

/// The shared-noise side: whitened centred means and their squared norms.
pub(super) struct Shared<'a> {
    pub(super) mu: &'a [f64],
    pub(super) d: usize,
    pub(super) norms: &'a [f64],
    pub(super) max_norm: f64,
    pub(super) g: f64,
    pub(super) relevance: f64,
}

impl Shared<'_> {
    fn mu(&self, j: usize) -> &[f64] {
        &self.mu[j * self.d..(j + 1) * self.d]
    }

    /// Monte Carlo row of sample i: `row[j]` = −½ max(0, ‖z‖² − 2 z·μ_j + ‖μ_j‖²), z = μ_i + ε,
    /// `own` = −½‖ε‖². Recomputes as −½ Σ_k ((μ_ik − μ_jk) + ε_k)² where that may matter.
    pub(super) fn fix_mc_row(&self, i: usize, eps: &[f64], z_norm: f64, own: f64, row: &mut [f64]) {
        if 0.5 * self.g * (z_norm + self.max_norm) <= TOLERANCE {
            return;
        }
        let mu_i = self.mu(i);
        let floor = own - self.relevance;
        for (j, x) in row.iter_mut().enumerate() {
            let err = 0.5 * self.g * (z_norm + self.norms[j]);
            if err <= TOLERANCE || j == i || *x + err < floor {
                continue;
            }
            let mu_j = self.mu(j);
            let s: f64 = (0..self.d)
                .map(|k| {
                    let dz = (mu_i[k] - mu_j[k]) + eps[k];
                    dz * dz
                })
                .sum();
            *x = -0.5 * s;
        }
    }

    /// Row i of −‖μ_i − μ_j‖² (KL = ½ of it, Bhattacharyya ⅛). Recomputes as −Σ_k (μ_ik − μ_jk)² where
    /// the error can exceed the tolerance (in KL) and the Bhattacharyya distance can matter.
    pub(super) fn fix_distance_row(&self, i: usize, row: &mut [f64]) {
        let ni = self.norms[i];
        if 0.5 * self.g * (ni + self.max_norm) <= TOLERANCE {
            return;
        }
        let mu_i = self.mu(i);
        for (j, x) in row.iter_mut().enumerate() {
            let err = self.g * (ni + self.norms[j]);
            if 0.5 * err <= TOLERANCE || j == i || 0.125 * (-*x - err) > self.relevance {
                continue;
            }
            let mu_j = self.mu(j);
            let s: f64 = (0..self.d)
                .map(|k| {
                    let dm = mu_i[k] - mu_j[k];
                    dm * dm
                })
                .sum();
            *x = -s;
        }
    }
}
