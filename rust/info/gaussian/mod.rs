//! Mutual information through a Gaussian channel (docs/spec.md §3).
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

mod cancellation;
mod full;
mod mixture;

use crate::choice::Choice;
use crate::error::{CoreError, Result};
use crate::linalg::log_det_identity_plus_covariance;
use crate::memory::{self, Need};
use crate::parallel::Ctl;
pub use full::linear_channel_mi;
use mixture::{mc_rows, pairwise_rows, RowLse};

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

/// What the copies of the means and variances are for, in an out-of-memory error.
fn need_copies(n: usize, d: usize) -> impl Fn() -> Need {
    move || {
        Need::new(
            "means",
            format!("a working copy of the {n} × {d} means and variances"),
            "use fewer samples (a random subset) or fewer dimensions",
        )
    }
}

/// The samples sorted by class (stable): the original index of each sorted sample, the class
/// ranges in sorted order (class c is bounds[c]..bounds[c+1]; one class without labels) and the
/// class of each sorted sample.
fn class_order(n: usize, labels: Option<&[u32]>) -> (Vec<usize>, Vec<usize>, Vec<u32>) {
    let mut order: Vec<usize> = (0..n).collect();
    match labels {
        Some(l) => {
            order.sort_by_key(|&i| l[i]); // stable: ties keep their order
            let c = l.iter().map(|&x| x as usize + 1).max().unwrap_or(1);
            let mut counts = vec![0usize; c + 1];
            l.iter().for_each(|&x| counts[x as usize + 1] += 1);
            for k in 1..=c {
                counts[k] += counts[k - 1];
            }
            let class_of = order.iter().map(|&i| l[i]).collect();
            (order, counts, class_of)
        }
        None => (order, vec![0, n], vec![0u32; n]),
    }
}

/// The class structure of the sorted samples, all the row reductions need.
#[derive(Clone, Copy)]
pub(super) struct Groups<'a> {
    pub(super) n: usize,
    /// Class ranges in sorted order: class c is bounds[c]..bounds[c+1].
    pub(super) bounds: &'a [usize],
    /// Class of each sorted sample.
    pub(super) class_of: &'a [u32],
}

impl Groups<'_> {
    /// log N_y of the class of sorted sample i.
    fn class_log_n(&self, i: usize) -> f64 {
        let c = self.class_of[i] as usize;
        ((self.bounds[c + 1] - self.bounds[c]) as f64).ln()
    }

    /// The class ranges (a, b), in class order.
    fn ranges(&self) -> Vec<(usize, usize)> {
        self.bounds.windows(2).map(|w| (w[0], w[1])).collect()
    }
}

impl Prepared {
    pub(super) fn groups(&self) -> Groups<'_> {
        Groups {
            n: self.n,
            bounds: &self.bounds,
            class_of: &self.class_of,
        }
    }
}

fn prepare(ch: &Channel<'_>, labels: Option<&[u32]>) -> Result<Prepared> {
    let (n, d) = (ch.n, ch.d);
    let (order, bounds, class_of) = class_order(n, labels);
    let mut centre = vec![0.0; d];
    for row in ch.means.chunks_exact(d) {
        centre.iter_mut().zip(row).for_each(|(c, &m)| *c += m);
    }
    centre.iter_mut().for_each(|c| *c /= n as f64);
    let mut mu = memory::with_capacity(n.saturating_mul(d), need_copies(n, d))?;
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
            Ok(Prepared {
                n,
                d,
                mu,
                var: Vec::new(),
                shared: v.to_vec(),
                log_det: vec![0.0; n],
                order,
                bounds,
                class_of,
            })
        }
        Noise::PerSample(v) => {
            let mut var = memory::with_capacity(n.saturating_mul(d), need_copies(n, d))?;
            for &i in &order {
                var.extend_from_slice(&v[i * d..(i + 1) * d]);
            }
            let log_det = var
                .chunks_exact(d)
                .map(|r| r.iter().map(|x| x.ln()).sum::<f64>())
                .collect();
            Ok(Prepared {
                n,
                d,
                mu,
                var,
                shared: Vec::new(),
                log_det,
                order,
                bounds,
                class_of,
            })
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
///
/// The O(m·min(m, d)²) product and its Cholesky factorisation cannot stop midway: they run
/// detached (`Ctl::run_detached`), so Ctrl-C returns at once (docs/spec.md §0.7).
fn maxent_bound(p: &Prepared, lo: usize, hi: usize, ctl: &Ctl) -> Result<f64> {
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
    let mut centred = memory::zeros::<f64>(m.saturating_mul(d), need_copies(m, d))?;
    for (dst, row) in centred.chunks_exact_mut(d).zip(p.mu[lo * d..hi * d].chunks_exact(d)) {
        for k in 0..d {
            dst[k] = (row[k] - centre[k]) * scale[k];
        }
    }
    // S Cov S = I + XᵀX/m with X the scaled, centred means.
    let Some(log_det_scaled) =
        ctl.run_detached(move || log_det_identity_plus_covariance("means", &centred, m, d))??
    else {
        return Ok(f64::INFINITY);
    };
    let log_det_cov = log_det_scaled + mean_var.iter().map(|v| v.ln()).sum::<f64>();
    let mean_l = if p.var.is_empty() {
        0.0
    } else {
        p.log_det[lo..hi].iter().sum::<f64>() / m as f64
    };
    Ok(0.5 * (log_det_cov - mean_l))
}

/// Mutual information through the Gaussian channel (docs/spec.md §3.1); see the module documentation.
pub fn gaussian_channel_mi(ch: &Channel<'_>, req: &Request<'_>, ctl: &Ctl) -> Result<ChannelMi> {
    validate(ch, req)?;
    let p = ctl.install(|| prepare(ch, req.labels))?;
    let (n, d) = (p.n, p.d);
    let log_det_shared = p.shared.iter().map(|v| v.ln()).sum::<f64>();
    let mean_log_det = if p.var.is_empty() {
        log_det_shared
    } else {
        p.log_det.iter().sum::<f64>() / n as f64
    };
    let h_z_given_x = 0.5 * (d as f64 * LN_2PI_E + mean_log_det);
    let mc = match req.draws {
        Some(draws) => Some(mc_rows(&p, draws, req.n_draws, ctl)?),
        None => None,
    };
    let bounds = if req.bounds {
        let pairs = pairwise_rows(&p, ctl)?;
        let groups = p.groups().ranges();
        // One bound after another from the calling thread, each factorisation on its own detached
        // thread, so Ctrl-C returns at once (issue 14 §4).
        let total = maxent_bound(&p, 0, n, ctl)?;
        let per_class = if req.labels.is_some() {
            groups
                .iter()
                .map(|&(a, b)| maxent_bound(&p, a, b, ctl))
                .collect::<Result<Vec<f64>>>()?
        } else {
            Vec::new()
        };
        let maxent = (total, per_class);
        Some((pairs, maxent))
    } else {
        None
    };
    Ok(assemble(
        &p.groups(),
        h_z_given_x,
        req.labels.is_some(),
        mc.as_ref(),
        bounds.as_ref(),
    ))
}

/// The row log-sum-exps of the pairwise bounds (KL, Bhattacharyya) and the maximum-entropy bounds
/// (over all samples, and per class in class order when there are labels).
type BoundRows = ((Vec<RowLse>, Vec<RowLse>), (f64, Vec<f64>));

/// The estimates from the reduced rows: Monte Carlo rows (`lse`, own terms; n_draws · N rows, row
/// m·N + i for sorted sample i), the pairwise rows and maximum-entropy bounds. Shared by the
/// diagonal channel and the full-covariance one (full.rs).
fn assemble(
    g: &Groups<'_>,
    h_z_given_x: f64,
    with_labels: bool,
    mc: Option<&(Vec<RowLse>, Vec<f64>)>,
    bounds: Option<&BoundRows>,
) -> ChannelMi {
    let n = g.n;
    let log_n = (n as f64).ln();
    let cond_ceiling = (0..n).map(|i| g.class_log_n(i)).sum::<f64>() / n as f64;
    let mut total = Estimate {
        mc: None,
        kl: None,
        bd: None,
        maxent: None,
        ceiling: log_n,
    };
    let mut cond = Estimate {
        ceiling: cond_ceiling,
        ..total
    };
    let mut labels_mc = None;
    if let Some((lse, own)) = mc {
        let t_all = |r: usize| own[r] - lse[r].all + log_n;
        let t_cls = |r: usize| own[r] - lse[r].class + g.class_log_n(r % n);
        let rows = 0..lse.len();
        total.mc = Some(mean_sd(rows.clone().map(t_all)));
        if with_labels {
            cond.mc = Some(mean_sd(rows.clone().map(t_cls)));
            labels_mc = Some(mean_sd(rows.map(|r| t_all(r) - t_cls(r))));
        }
    }
    if let Some(((kl, bd), (maxent, per_class))) = bounds {
        let bound = |rows: &[RowLse], class: bool| {
            (0..n)
                .map(|i| {
                    if class {
                        g.class_log_n(i) - rows[i].class
                    } else {
                        log_n - rows[i].all
                    }
                })
                .sum::<f64>()
                / n as f64
        };
        total.kl = Some(bound(kl, false));
        total.bd = Some(bound(bd, false));
        total.maxent = Some(*maxent);
        if with_labels {
            cond.kl = Some(bound(kl, true));
            cond.bd = Some(bound(bd, true));
            cond.maxent = Some(
                g.ranges()
                    .iter()
                    .zip(per_class)
                    .map(|(&(a, b), &m)| (b - a) as f64 / n as f64 * m)
                    .sum::<f64>(),
            );
        }
    }
    ChannelMi {
        h_z_given_x,
        total,
        given_labels: with_labels.then_some(cond),
        labels_mc,
    }
}

#[cfg(test)]
mod tests;
