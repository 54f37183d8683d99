//! Mutual information through a Gaussian channel (SPEC §3).
//!
//! X is uniform over N inputs and Z | X = x_i ~ N(μ_i, diag(v_i)). We compute
//! - h(Z|X) in closed form,
//! - the paired Monte Carlo estimate I = mean_{i,m}[log p_i(z_im) − log p(z_im)] with its standard
//!   error, from standard-normal draws ε the caller supplies (z_im = μ_i + √v_i ⊙ ε_im),
//! - the pairwise bounds of Kolchinsky & Tracey (2017): I_D = mean_i[log N − LSE_j(−D_ij)] with
//!   D = KL (upper bound) and D = Bhattacharyya (lower bound),
//! - the Gaussian maximum-entropy bound ½ log det(2πe Cov Z) − h(Z|X),
//!
//! and, with labels, the same restricted to each sample's class (I(X;Z|Y)) and I(Y;Z) from the
//! same draws.
//!
//! Everything quadratic streams over blocks of rows: a block fills a rows × N buffer of
//! log-densities (or −divergences), then each row is reduced by a log-sum-exp (max, then sum of
//! exponentials) over all columns and over the columns of its own class (samples are sorted by
//! class first, so a class is one contiguous range). Memory is O(N · rows) per thread.
//! Log-densities and KL divergences use the matrix-product form
//!   log N(z; μ_j, v_j) = −½[Σ_k z_k²/v_jk − 2 Σ_k z_k μ_jk/v_jk + Σ_k μ_jk²/v_jk + Σ_k log v_jk] + const,
//! computed with faer's matmul per block after centring the means (subtracting their overall mean,
//! which the result does not depend on) to limit cancellation. With one variance vector shared by
//! all samples (additive noise) the coordinates are whitened and everything is a squared Euclidean
//! distance; the Bhattacharyya divergence is then KL/4. With per-sample variances the
//! Bhattacharyya divergence is not separable (1/(v_ik + v_jk)) and runs as a direct blocked
//! O(N² d) loop. The diagonal terms (log p_i(z_im), D_ii = 0) are set exactly, not from the
//! product form. Results do not depend on the thread count: blocks are fixed by N alone.

use crate::choice::Choice;
use crate::error::{CoreError, Result};
use crate::linalg::{gemm_abt_scaled, log_det_identity_plus_covariance};
use crate::parallel::Ctl;
#[cfg(target_arch = "x86_64")]
use crate::simd::has_avx2;
use crate::simd::{ln_mantissa, max_sum};

/// How the noise variances are given, by name (the variances themselves come apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoiseKind {
    /// One row of d variances shared by all samples ([`Noise::Shared`]).
    Shared,
    /// N rows of d variances ([`Noise::PerSample`]).
    PerSample,
}

impl Choice for NoiseKind {
    const ARG: &'static str = "noise";
    const NAMES: &'static [(&'static str, Self)] =
        &[("shared", NoiseKind::Shared), ("per_sample", NoiseKind::PerSample)];
}

/// How the noise variances are given.
#[derive(Clone, Copy, Debug)]
pub enum Noise<'a> {
    /// One diagonal covariance shared by all samples (additive noise): `d` variances.
    Shared(&'a [f64]),
    /// Per-sample diagonal variances (dropout, Gaussian encoders): N × d, row-major.
    PerSample(&'a [f64]),
}

/// The channel: N means of dimension d (row-major) and their noise variances (all > 0).
#[derive(Clone, Copy, Debug)]
pub struct Channel<'a> {
    pub means: &'a [f64],
    pub n: usize,
    pub d: usize,
    pub noise: Noise<'a>,
}

/// What to compute.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// Standard-normal draws for the Monte Carlo estimate, (n_draws · N) × d row-major, row
    /// m·N + i belonging to sample i; `None`: no Monte Carlo estimate.
    pub draws: Option<&'a [f64]>,
    pub n_draws: usize,
    /// Compute the pairwise (KL, Bhattacharyya) and maximum-entropy bounds.
    pub bounds: bool,
    /// Class codes 0..C−1 of each sample (every code present), for the conditional quantities.
    pub labels: Option<&'a [u32]>,
}

/// A Monte Carlo estimate and its standard error sd(terms)/√(#terms).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Paired {
    pub mi: f64,
    pub stderr: f64,
}

/// One information quantity with its bounds (those requested).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    pub mc: Option<Paired>,
    /// Kolchinsky–Tracey bound with the KL divergence (upper bound).
    pub kl: Option<f64>,
    /// Kolchinsky–Tracey bound with the Bhattacharyya distance (lower bound).
    pub bd: Option<f64>,
    /// ½ log det(2πe Cov Z) − h(Z|X); +inf when the covariance is not numerically positive definite.
    pub maxent: Option<f64>,
    /// The ceiling: log N, or Σ_y p(y) log N_y for the conditional quantity.
    pub ceiling: f64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChannelMi {
    /// h(Z|X) = (1/N) Σ_i ½ Σ_k log(2πe v_ik).
    pub h_z_given_x: f64,
    /// I(X;Z).
    pub total: Estimate,
    /// I(X;Z|Y), when labels were given.
    pub given_labels: Option<Estimate>,
    /// I(Y;Z) = I(X;Z) − I(X;Z|Y) from the same draws, when labels and draws were given.
    pub labels_mc: Option<Paired>,
}

/// Log-sum-exp of one row, over all columns and over the row's own class.
#[derive(Clone, Copy, Debug, Default)]
struct RowLse {
    all: f64,
    class: f64,
}

const LN_2PI_E: f64 = 2.837_877_066_409_345_5; // ln(2πe)

/// Validated, class-sorted, centred data the kernels work on.
struct Prepared {
    n: usize,
    d: usize,
    /// Centred means (shared noise: also whitened), sorted by class, N × d.
    mu: Vec<f64>,
    /// Per-sample variances sorted by class (empty for shared noise), N × d.
    var: Vec<f64>,
    /// Shared variances (length d) or empty.
    shared: Vec<f64>,
    /// Σ_k log v_ik per sample (sorted order); 0 for shared noise (whitened coordinates).
    log_det: Vec<f64>,
    /// Original index of each sorted sample.
    order: Vec<usize>,
    /// Class ranges in sorted order: class c is bounds[c]..bounds[c+1] (one class without labels).
    bounds: Vec<usize>,
    /// Class of each sorted sample.
    class_of: Vec<u32>,
}

fn validate(ch: &Channel<'_>, req: &Request<'_>) -> Result<()> {
    let (n, d) = (ch.n, ch.d);
    if n == 0 || d == 0 {
        return Err(CoreError::invalid(
            "means",
            format!("empty input ({n} samples, {d} dimensions)"),
        ));
    }
    if ch.means.len() != n * d {
        return Err(CoreError::invalid(
            "means",
            format!("has {} values, expected {n} × {d}", ch.means.len()),
        ));
    }
    if let Some(r) = ch
        .means
        .chunks_exact(d)
        .position(|row| row.iter().any(|v| !v.is_finite()))
    {
        return Err(CoreError::invalid(
            "means",
            format!("contains NaN or inf (first at row {r})"),
        ));
    }
    let (name, vals, rows) = match ch.noise {
        Noise::Shared(v) => ("noise_variance", v, 1),
        Noise::PerSample(v) => ("variances", v, n),
    };
    if vals.len() != rows * d {
        return Err(CoreError::invalid(
            name,
            format!("has {} values, expected {rows} × {d}", vals.len()),
        ));
    }
    if let Some(pos) = vals.iter().position(|v| !(v.is_finite() && *v > 0.0)) {
        return Err(CoreError::invalid(
            name,
            format!(
                "every variance must be finite and > 0 (raise min_variance); row {} has {}",
                pos / d,
                vals[pos]
            ),
        ));
    }
    if let Some(draws) = req.draws {
        if req.n_draws == 0 {
            return Err(CoreError::invalid("n_draws", "must be at least 1"));
        }
        if draws.len() != req.n_draws * n * d {
            return Err(CoreError::invalid(
                "draws",
                format!("has {} values, expected {} × {n} × {d}", draws.len(), req.n_draws),
            ));
        }
        if draws.iter().any(|v| !v.is_finite()) {
            return Err(CoreError::invalid("draws", "contains NaN or inf"));
        }
    }
    if let Some(labels) = req.labels {
        if labels.len() != n {
            return Err(CoreError::invalid(
                "labels",
                format!("has {} entries but means has {n} rows", labels.len()),
            ));
        }
        let c = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
        let mut seen = vec![false; c];
        labels.iter().for_each(|&l| seen[l as usize] = true);
        if seen.iter().any(|s| !s) {
            return Err(CoreError::invalid(
                "labels",
                "class codes must be 0..C−1 with every code present",
            ));
        }
    }
    Ok(())
}

fn prepare(ch: &Channel<'_>, labels: Option<&[u32]>) -> Prepared {
    let (n, d) = (ch.n, ch.d);
    let mut order: Vec<usize> = (0..n).collect();
    let (bounds, class_of) = match labels {
        Some(l) => {
            order.sort_by_key(|&i| l[i]); // stable: ties keep their order
            let c = l.iter().map(|&x| x as usize + 1).max().unwrap_or(1);
            let mut counts = vec![0usize; c + 1];
            l.iter().for_each(|&x| counts[x as usize + 1] += 1);
            for k in 1..=c {
                counts[k] += counts[k - 1];
            }
            (counts, order.iter().map(|&i| l[i]).collect())
        }
        None => (vec![0, n], vec![0u32; n]),
    };
    let mut centre = vec![0.0; d];
    for row in ch.means.chunks_exact(d) {
        centre.iter_mut().zip(row).for_each(|(c, &m)| *c += m);
    }
    centre.iter_mut().for_each(|c| *c /= n as f64);
    let mut mu = Vec::with_capacity(n * d);
    for &i in &order {
        mu.extend(ch.means[i * d..(i + 1) * d].iter().zip(&centre).map(|(&m, &c)| m - c));
    }
    match ch.noise {
        Noise::Shared(v) => {
            let scale: Vec<f64> = v.iter().map(|&x| 1.0 / x.sqrt()).collect();
            for row in mu.chunks_exact_mut(d) {
                row.iter_mut().zip(&scale).for_each(|(m, &s)| *m *= s);
            }
            // In whitened coordinates every variance is 1: log det 0.
            Prepared {
                n,
                d,
                mu,
                var: Vec::new(),
                shared: v.to_vec(),
                log_det: vec![0.0; n],
                order,
                bounds,
                class_of,
            }
        }
        Noise::PerSample(v) => {
            let mut var = Vec::with_capacity(n * d);
            for &i in &order {
                var.extend_from_slice(&v[i * d..(i + 1) * d]);
            }
            let log_det = var
                .chunks_exact(d)
                .map(|r| r.iter().map(|x| x.ln()).sum::<f64>())
                .collect();
            Prepared {
                n,
                d,
                mu,
                var,
                shared: Vec::new(),
                log_det,
                order,
                bounds,
                class_of,
            }
        }
    }
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
/// row-major); `sample(r)` is the (sorted) sample a row belongs to. For every scale s, the row's
/// LSE of s·x over all columns and over its own class. Output index: r · scales.len() + s.
fn reduce_rows(
    p: &Prepared,
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
fn mc_rows(p: &Prepared, draws: &[f64], n_draws: usize, ctl: &Ctl) -> Result<(Vec<RowLse>, Vec<f64>)> {
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
        reduce_rows(p, n_rows, &[1.0], ctl, |r0, rows, buf| {
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
                let i = (r0 + r) % n;
                row[i] = -0.5 * sq_norm(draw((r0 + r) / n, i));
            }
        })?
    } else {
        // log p_j(z) = −½[Σ z²w_j − 2Σ z μ_j w_j + Σ μ_j² w_j + Σ log v_j] + const, w = 1/v.
        let (cols, quad) = per_sample_columns(p);
        reduce_rows(p, n_rows, &[1.0], ctl, |r0, rows, buf| {
            let mut q = vec![0.0; rows * 2 * d];
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
                let i = (r0 + r) % n;
                row[i] = own[r0 + r];
            }
        })?
    };
    Ok((lse, own))
}

/// Column features [w_j, −2 μ_j w_j] (N × 2d) and Σ_k μ_jk² w_jk, w = 1/v.
fn per_sample_columns(p: &Prepared) -> (Vec<f64>, Vec<f64>) {
    let d = p.d;
    let mut cols = vec![0.0; p.n * 2 * d];
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
    (cols, quad)
}

/// Pairwise rows: LSE_j(−D_ij) for (KL, Bhattacharyya).
fn pairwise_rows(p: &Prepared, ctl: &Ctl) -> Result<(Vec<RowLse>, Vec<RowLse>)> {
    let (n, d) = (p.n, p.d);
    if p.var.is_empty() {
        // Whitened: KL_ij = ½‖μ_i − μ_j‖², BD_ij = ⅛‖μ_i − μ_j‖². Buffer holds −‖μ_i − μ_j‖².
        let mu_norm: Vec<f64> = p.mu.chunks_exact(d).map(sq_norm).collect();
        let both = reduce_rows(p, n, &[0.5, 0.125], ctl, |r0, rows, buf| {
            gemm_abt_scaled(buf, &p.mu[r0 * d..(r0 + rows) * d], &p.mu, rows, n, d, -2.0);
            for (r, row) in buf.chunks_exact_mut(n).enumerate() {
                let ni = mu_norm[r0 + r];
                row.iter_mut()
                    .zip(&mu_norm)
                    .for_each(|(x, &nj)| *x = -(*x + ni + nj).max(0.0));
                row[r0 + r] = 0.0;
            }
        })?;
        let kl = both.iter().step_by(2).copied().collect();
        let bd = both.iter().skip(1).step_by(2).copied().collect();
        return Ok((kl, bd));
    }
    // KL_ij = ½[Σ (v_i + μ_i²) w_j − 2 Σ μ_i μ_j w_j + Σ μ_j² w_j + L_j − L_i − d], L = Σ log v.
    let (cols, quad) = per_sample_columns(p);
    let kl = reduce_rows(p, n, &[1.0], ctl, |r0, rows, buf| {
        let mut q = vec![0.0; rows * 2 * d];
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
    let mut vt = vec![0.0; n * d];
    let mut mt = vec![0.0; n * d];
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
    reduce_rows(p, n, &[1.0], ctl, |r0, rows, buf| bd.fill(r0, rows, buf))
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

fn mean_sd(xs: impl Iterator<Item = f64> + Clone) -> Paired {
    let (mut n, mut sum) = (0usize, 0.0);
    for x in xs.clone() {
        n += 1;
        sum += x;
    }
    let mean = sum / n as f64;
    let ss: f64 = xs.map(|x| (x - mean) * (x - mean)).sum();
    let stderr = if n > 1 {
        (ss / (n - 1) as f64).sqrt() / (n as f64).sqrt()
    } else {
        0.0
    };
    Paired { mi: mean, stderr }
}

/// ½ log det Cov(Z) of the mixture over samples lo..hi (sorted order), minus the mean of ½ L_i:
/// the maximum-entropy bound on I(X;Z) within that group. +inf when Cholesky fails.
fn maxent_bound(p: &Prepared, lo: usize, hi: usize) -> f64 {
    let d = p.d;
    let m = hi - lo;
    let mut centre = vec![0.0; d];
    for row in p.mu[lo * d..hi * d].chunks_exact(d) {
        centre.iter_mut().zip(row).for_each(|(c, &x)| *c += x);
    }
    centre.iter_mut().for_each(|c| *c /= m as f64);
    // Diagonal: mean noise variance per coordinate (whitened: 1). Scale coordinates by its square
    // root for conditioning: log det Cov = log det(S Cov S) + Σ_k log mean_v_k.
    let mean_var: Vec<f64> = if p.var.is_empty() {
        vec![1.0; d]
    } else {
        let mut mv = vec![0.0; d];
        for row in p.var[lo * d..hi * d].chunks_exact(d) {
            mv.iter_mut().zip(row).for_each(|(a, &v)| *a += v);
        }
        mv.iter_mut().for_each(|a| *a /= m as f64);
        mv
    };
    let scale: Vec<f64> = mean_var.iter().map(|v| 1.0 / v.sqrt()).collect();
    let mut centred = vec![0.0; m * d];
    for (dst, row) in centred.chunks_exact_mut(d).zip(p.mu[lo * d..hi * d].chunks_exact(d)) {
        for k in 0..d {
            dst[k] = (row[k] - centre[k]) * scale[k];
        }
    }
    // S Cov S = I + XᵀX/m with X the scaled, centred means.
    let Some(log_det_scaled) = log_det_identity_plus_covariance(&centred, m, d) else {
        return f64::INFINITY;
    };
    let log_det_cov = log_det_scaled + mean_var.iter().map(|v| v.ln()).sum::<f64>();
    let mean_l = if p.var.is_empty() {
        0.0
    } else {
        p.log_det[lo..hi].iter().sum::<f64>() / m as f64
    };
    0.5 * (log_det_cov - mean_l)
}

/// Mutual information through the Gaussian channel (SPEC §3); see the module documentation.
pub fn gaussian_channel_mi(ch: &Channel<'_>, req: &Request<'_>, ctl: &Ctl) -> Result<ChannelMi> {
    validate(ch, req)?;
    let p = ctl.install(|| prepare(ch, req.labels));
    let (n, d) = (p.n, p.d);
    let log_n = (n as f64).ln();
    let with_labels = req.labels.is_some();
    let class_log_n = |i: usize| {
        let c = p.class_of[i] as usize;
        ((p.bounds[c + 1] - p.bounds[c]) as f64).ln()
    };
    let cond_ceiling = (0..n).map(class_log_n).sum::<f64>() / n as f64;
    let log_det_shared = p.shared.iter().map(|v| v.ln()).sum::<f64>();
    let mean_log_det = if p.var.is_empty() {
        log_det_shared
    } else {
        p.log_det.iter().sum::<f64>() / n as f64
    };
    let h_z_given_x = 0.5 * (d as f64 * LN_2PI_E + mean_log_det);

    let mut total = Estimate {
        mc: None,
        kl: None,
        bd: None,
        maxent: None,
        ceiling: log_n,
    };
    let mut cond = Estimate {
        mc: None,
        kl: None,
        bd: None,
        maxent: None,
        ceiling: cond_ceiling,
    };
    let mut labels_mc = None;

    if let Some(draws) = req.draws {
        let (lse, own) = mc_rows(&p, draws, req.n_draws, ctl)?;
        let t_all = |r: usize| own[r] - lse[r].all + log_n;
        let t_cls = |r: usize| own[r] - lse[r].class + class_log_n(r % n);
        let rows = 0..lse.len();
        total.mc = Some(mean_sd(rows.clone().map(t_all)));
        if with_labels {
            cond.mc = Some(mean_sd(rows.clone().map(t_cls)));
            labels_mc = Some(mean_sd(rows.map(|r| t_all(r) - t_cls(r))));
        }
    }
    if req.bounds {
        let (kl, bd) = pairwise_rows(&p, ctl)?;
        let bound = |rows: &[RowLse], class: bool| {
            (0..n)
                .map(|i| {
                    if class {
                        class_log_n(i) - rows[i].class
                    } else {
                        log_n - rows[i].all
                    }
                })
                .sum::<f64>()
                / n as f64
        };
        total.kl = Some(bound(&kl, false));
        total.bd = Some(bound(&bd, false));
        total.maxent = Some(ctl.install(|| maxent_bound(&p, 0, n)));
        if with_labels {
            cond.kl = Some(bound(&kl, true));
            cond.bd = Some(bound(&bd, true));
            let groups: Vec<(usize, usize)> = p.bounds.windows(2).map(|w| (w[0], w[1])).collect();
            let per_class: Vec<f64> = ctl.install(|| {
                use rayon::prelude::*;
                groups.par_iter().map(|&(a, b)| maxent_bound(&p, a, b)).collect()
            });
            cond.maxent = Some(
                groups
                    .iter()
                    .zip(&per_class)
                    .map(|(&(a, b), &m)| (b - a) as f64 / n as f64 * m)
                    .sum::<f64>(),
            );
        }
    }
    Ok(ChannelMi {
        h_z_given_x,
        total,
        given_labels: with_labels.then_some(cond),
        labels_mc,
    })
}

#[cfg(test)]
#[path = "gaussian_tests.rs"]
mod tests;
