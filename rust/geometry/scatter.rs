//! Streaming class statistics in f64: per class the count, the mean and the sum of squared
//! distances to the mean (M2), and optionally the within-class scatter matrix
//! S_W = Σ_i (h_i − μ_{y_i})(h_i − μ_{y_i})ᵀ (d × d, one for all classes).
//!
//! A batch is summarised with a corrected two-pass algorithm (means first, then centred sums, with
//! the residual mean folded back in), so translating the data by a large offset costs no accuracy;
//! batches are combined with Chan, Golub & LeVeque's pairwise update:
//! n = n_a + n_b, δ = μ_b − μ_a, μ = μ_a + δ n_b/n, M2 = M2_a + M2_b + ‖δ‖² n_a n_b/n,
//! S_W = S_W,a + S_W,b + Σ_c (n_a n_b/n) δ_c δ_cᵀ.

use super::{need_two_classes, Classes};
use crate::error::{CoreError, Result};
use crate::linalg::{gemm_atb, scatter_matrix, sym_eigen, symmetrize};
use crate::memory::{self, Need};
use crate::parallel::Ctl;
use crate::points::{Points, Real};
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct ClassStats {
    d: usize,
    /// Per class code (absent codes have count 0).
    counts: Vec<u64>,
    means: Vec<f64>,
    m2: Vec<f64>,
    /// Σ_{i∈c} ‖h_i − μ_c‖ per class (Davies–Bouldin); only for statistics of a single batch.
    dist_sums: Option<Vec<f64>>,
    /// Shared (copy on write) with copies of these statistics and with a decomposition that an
    /// interrupt left running (`Ctl::run_detached`).
    within: Option<Arc<Vec<f64>>>,
}

/// What holding the class means and S_W takes, for out-of-memory errors.
fn need_means(k: usize, d: usize) -> impl FnOnce() -> Need {
    move || {
        Need::new(
            "labels",
            format!("the means of {k} classes in {d} dimensions"),
            "use fewer classes or fewer dimensions",
        )
    }
}

fn need_within(d: usize) -> impl FnOnce() -> Need {
    move || {
        Need::new(
            "h",
            format!("the {d} × {d} within-class scatter matrix S_W"),
            "reduce the number of dimensions (columns) first, e.g. by PCA or a random projection, or keep no \
             second moments (second_moments=False)",
        )
    }
}

impl ClassStats {
    /// Empty statistics for `d`-dimensional data; `second_moments` keeps S_W (d × d).
    pub fn new(d: usize, second_moments: bool) -> Result<Self> {
        Ok(ClassStats {
            d,
            counts: Vec::new(),
            means: Vec::new(),
            m2: Vec::new(),
            dist_sums: None,
            within: if second_moments {
                Some(Arc::new(memory::zeros(d.saturating_mul(d), need_within(d))?))
            } else {
                None
            },
        })
    }

    /// Statistics of one batch with class codes `codes` (< `n_classes`).
    pub fn from_points<T: Real>(
        p: Points<'_, T>,
        codes: &[u32],
        n_classes: usize,
        second_moments: bool,
        ctl: &Ctl,
    ) -> Result<Self> {
        let classes = Classes::new(codes, p.n(), n_classes)?;
        Self::from_classes(p, &classes, n_classes, second_moments, ctl)
    }

    pub fn from_classes<T: Real>(
        p: Points<'_, T>,
        classes: &Classes,
        n_classes: usize,
        second_moments: bool,
        ctl: &Ctl,
    ) -> Result<Self> {
        let d = p.d();
        let k = classes.n_classes();
        // Pass 1: class means (parallel over classes; each class sums its own rows in order).
        let mut means_c = memory::zeros::<f64>(k.saturating_mul(d), need_means(k, d))?;
        let bounds: Vec<usize> = (0..=k).map(|c| c * d).collect();
        ctl.fill_segments(&mut means_c, &bounds, |c, _, mean| {
            let rows = classes.rows(c);
            for &i in rows {
                for (m, &x) in mean.iter_mut().zip(p.row(i as usize)) {
                    *m += x.to_f64();
                }
            }
            let inv = 1.0 / rows.len() as f64;
            mean.iter_mut().for_each(|m| *m *= inv);
        })?;
        // Pass 2: centred sums. Per class: residual sum (d), M2, Σ‖h − μ‖.
        let width = d + 2;
        let mut second = memory::zeros::<f64>(k.saturating_mul(width), need_means(k, d))?;
        let bounds: Vec<usize> = (0..=k).map(|c| c * width).collect();
        ctl.fill_segments(&mut second, &bounds, |c, _, out| {
            let mean = &means_c[c * d..(c + 1) * d];
            let (resid, rest) = out.split_at_mut(d);
            let (mut m2, mut dist) = (0.0f64, 0.0f64);
            for &i in classes.rows(c) {
                let mut sq = 0.0f64;
                for ((r, &x), &mu) in resid.iter_mut().zip(p.row(i as usize)).zip(mean) {
                    let v = x.to_f64() - mu;
                    *r += v;
                    sq += v * v;
                }
                m2 += sq;
                dist += sq.sqrt();
            }
            rest[0] = m2;
            rest[1] = dist;
        })?;
        ctl.check()?;
        let mut stats = ClassStats::new(d, false)?;
        stats.grow(n_classes)?;
        let mut dist_sums = vec![0.0; n_classes];
        for c in 0..k {
            let id = classes.ids[c] as usize;
            let n = classes.size(c) as f64;
            let row = &second[c * width..(c + 1) * width];
            let (resid, m2, dist) = (&row[..d], row[d], row[d + 1]);
            // Corrected two-pass: fold the rounding residual back into the mean and M2.
            let mut r2 = 0.0;
            for (j, &r) in resid.iter().enumerate() {
                stats.means[id * d + j] = means_c[c * d + j] + r / n;
                r2 += r * r;
            }
            stats.counts[id] = classes.size(c) as u64;
            stats.m2[id] = (m2 - r2 / n).max(0.0);
            dist_sums[id] = dist;
        }
        stats.dist_sums = Some(dist_sums);
        if second_moments {
            let pos_class: Vec<u32> = (0..k)
                .flat_map(|c| std::iter::repeat_n(c as u32, classes.size(c)))
                .collect();
            let mean_of = |pos: usize| {
                let id = classes.ids[pos_class[pos] as usize] as usize;
                Some(&stats.means[id * d..(id + 1) * d])
            };
            let w = scatter_matrix(
                "h",
                "the within-class scatter matrix S_W",
                p,
                &classes.order,
                &mean_of,
                ctl,
            )?;
            stats.within = Some(Arc::new(w));
        }
        Ok(stats)
    }

    fn grow(&mut self, n_classes: usize) -> Result<()> {
        if n_classes > self.counts.len() {
            let extra = (n_classes - self.counts.len()).saturating_mul(self.d);
            memory::reserve(&mut self.means, extra, need_means(n_classes, self.d))?;
            self.counts.resize(n_classes, 0);
            self.means.resize(n_classes * self.d, 0.0);
            self.m2.resize(n_classes, 0.0);
            if let Some(ds) = self.dist_sums.as_mut() {
                ds.resize(n_classes, 0.0);
            }
        }
        Ok(())
    }

    /// Adds a batch (codes < `n_classes`).
    pub fn update<T: Real>(&mut self, p: Points<'_, T>, codes: &[u32], n_classes: usize, ctl: &Ctl) -> Result<()> {
        if p.d() != self.d {
            return Err(CoreError::invalid(
                "h",
                format!("has {} columns but earlier batches had {}", p.d(), self.d),
            ));
        }
        let batch = ClassStats::from_points(p, codes, n_classes, self.within.is_some(), ctl)?;
        let map: Vec<u32> = (0..n_classes as u32).collect();
        self.merge(&batch, &map)
    }

    /// Adds `other`, whose class code c is this one's code `map[c]`.
    pub fn merge(&mut self, other: &ClassStats, map: &[u32]) -> Result<()> {
        let d = self.d;
        if other.d != d {
            return Err(CoreError::invalid(
                "other",
                format!("has dimension {} but these statistics have {d}", other.d),
            ));
        }
        if map.len() < other.counts.len() {
            return Err(CoreError::Internal(
                "class map shorter than the other statistics' classes".into(),
            ));
        }
        if self.within.is_some() && other.within.is_none() {
            return Err(CoreError::invalid(
                "other",
                "keeps no second moments (second_moments=False) but these statistics do",
            ));
        }
        let needed = map
            .iter()
            .take(other.counts.len())
            .map(|&m| m as usize + 1)
            .max()
            .unwrap_or(0);
        self.grow(needed)?;
        let was_empty = self.n_samples() == 0;
        // Rows √(n_a n_b / n) δ_c of the between-batch correction to S_W.
        let mut corr: Vec<f64> = Vec::new();
        for (c, &nb) in other.counts.iter().enumerate() {
            if nb == 0 {
                continue;
            }
            let t = map[c] as usize;
            let na = self.counts[t];
            let mb = &other.means[c * d..(c + 1) * d];
            if na == 0 {
                self.means[t * d..(t + 1) * d].copy_from_slice(mb);
                self.m2[t] = other.m2[c];
                self.counts[t] = nb;
                continue;
            }
            let (fa, fb) = (na as f64, nb as f64);
            let n = fa + fb;
            let w = fa * fb / n;
            let ma = &mut self.means[t * d..(t + 1) * d];
            let mut delta2 = 0.0;
            let start = corr.len();
            for (a, &b) in ma.iter_mut().zip(mb) {
                let delta = b - *a;
                delta2 += delta * delta;
                *a += delta * (fb / n);
                corr.push(delta * w.sqrt());
            }
            debug_assert_eq!(corr.len(), start + d);
            self.m2[t] += other.m2[c] + delta2 * w;
            self.counts[t] = na + nb;
        }
        // Distances to the final centroids cannot be merged.
        self.dist_sums = if was_empty {
            other.dist_sums.as_ref().map(|ds| remap(ds, map, self.counts.len()))
        } else {
            None
        };
        if let (Some(wa), Some(wb)) = (self.within.as_mut(), other.within.as_ref()) {
            let wa = Arc::make_mut(wa);
            for (a, b) in wa.iter_mut().zip(wb.iter()) {
                *a += b;
            }
            let rows = corr.len() / d;
            if rows > 0 {
                gemm_atb(wa, &corr, &corr, d, d, rows, true);
                symmetrize(wa, d);
            }
        }
        Ok(())
    }

    // ---- accessors over present classes (in code order) ----

    pub fn dim(&self) -> usize {
        self.d
    }
    pub fn n_samples(&self) -> u64 {
        self.counts.iter().sum()
    }
    /// Codes of the classes with at least one sample.
    pub fn present(&self) -> Vec<usize> {
        (0..self.counts.len()).filter(|&c| self.counts[c] > 0).collect()
    }
    pub fn count(&self, c: usize) -> u64 {
        self.counts[c]
    }
    pub fn mean(&self, c: usize) -> &[f64] {
        &self.means[c * self.d..(c + 1) * self.d]
    }
    pub fn m2(&self, c: usize) -> f64 {
        self.m2[c]
    }
    pub fn dist_sum(&self, c: usize) -> Option<f64> {
        self.dist_sums.as_ref().map(|ds| ds[c])
    }
    pub fn within(&self) -> Option<&[f64]> {
        self.within.as_deref().map(|w| &w[..])
    }
    pub fn has_second_moments(&self) -> bool {
        self.within.is_some()
    }

    /// Var_c = M2_c / (n_c − ddof) per present class (the trace of the class covariance).
    pub fn variances(&self, ddof: u32) -> Result<Vec<f64>> {
        self.present()
            .into_iter()
            .map(|c| {
                let n = self.counts[c];
                if n <= ddof as u64 {
                    return Err(CoreError::invalid(
                        "labels",
                        format!(
                            "a class has {n} sample(s); its variance with ddof={ddof} needs at least {}",
                            ddof + 1
                        ),
                    ));
                }
                Ok(self.m2[c] / (n - ddof as u64) as f64)
            })
            .collect()
    }

    /// The mean of all samples, μ = Σ_c n_c μ_c / N.
    pub fn grand_mean(&self) -> Vec<f64> {
        let n = self.n_samples() as f64;
        let mut mu = vec![0.0; self.d];
        for c in self.present() {
            let w = self.counts[c] as f64 / n;
            for (m, &x) in mu.iter_mut().zip(self.mean(c)) {
                *m += w * x;
            }
        }
        mu
    }

    /// Rows μ_c − μ_G (C × d) over present classes, μ_G the unweighted mean of the class means.
    pub fn centred_means(&self) -> Result<Vec<f64>> {
        let present = self.present();
        let k = present.len() as f64;
        let mut mu_g = vec![0.0; self.d];
        for &c in &present {
            for (m, &x) in mu_g.iter_mut().zip(self.mean(c)) {
                *m += x / k;
            }
        }
        let mut out = memory::with_capacity(present.len() * self.d, need_means(present.len(), self.d))?;
        for &c in &present {
            out.extend(self.mean(c).iter().zip(&mu_g).map(|(x, g)| x - g));
        }
        Ok(out)
    }

    /// tr(S_W) = Σ_c M2_c.
    pub fn trace_within(&self) -> f64 {
        self.present().into_iter().map(|c| self.m2[c]).sum()
    }

    /// tr(S_B) = Σ_c n_c ‖μ_c − μ‖².
    pub fn trace_between(&self) -> f64 {
        let mu = self.grand_mean();
        self.present()
            .into_iter()
            .map(|c| {
                self.counts[c] as f64
                    * self
                        .mean(c)
                        .iter()
                        .zip(&mu)
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum::<f64>()
            })
            .sum()
    }

    /// S_B = Σ_c n_c (μ_c − μ)(μ_c − μ)ᵀ (d × d).
    pub fn between(&self) -> Result<Vec<f64>> {
        let mu = self.grand_mean();
        let present = self.present();
        let mut rows = memory::with_capacity(present.len() * self.d, need_means(present.len(), self.d))?;
        for c in present {
            let s = (self.counts[c] as f64).sqrt();
            rows.extend(self.mean(c).iter().zip(&mu).map(|(a, b)| s * (a - b)));
        }
        self.outer_sum(&rows)
    }

    /// Σ_B = (1/C) Σ_c (μ_c − μ_G)(μ_c − μ_G)ᵀ (Papyan et al.; unweighted).
    pub fn between_unweighted(&self) -> Result<Vec<f64>> {
        let rows = self.centred_means()?;
        let mut m = self.outer_sum(&rows)?;
        let k = self.present().len() as f64;
        m.iter_mut().for_each(|v| *v /= k);
        Ok(m)
    }

    fn outer_sum(&self, rows: &[f64]) -> Result<Vec<f64>> {
        let d = self.d;
        let mut m = memory::zeros(d.saturating_mul(d), || {
            Need::new(
                "h",
                format!("a {d} × {d} between-class scatter matrix"),
                "reduce the number of dimensions (columns) first, e.g. by PCA or a random projection",
            )
        })?;
        gemm_atb(&mut m, rows, rows, d, d, rows.len() / d, false);
        symmetrize(&mut m, d);
        Ok(m)
    }

    pub fn need_classes(&self) -> Result<usize> {
        let k = self.present().len();
        need_two_classes(k)?;
        Ok(k)
    }

    /// tr(S_W)/tr(S_B); +inf when every class mean coincides (tr S_B = 0) and nan when both are 0.
    pub fn trace_ratio(&self) -> Result<f64> {
        self.need_classes()?;
        Ok(self.trace_within() / self.trace_between())
    }

    /// tr((S_W + ridge·N·I)⁻¹ S_B), i.e. ridge is added to the within-class covariance S_W/N.
    pub fn fisher_ratio(&self, ridge: f64, ctl: &Ctl) -> Result<f64> {
        self.need_classes()?;
        let d = self.d;
        let w = self
            .within
            .clone()
            .ok_or_else(|| CoreError::invalid("second_moments", "the Fisher ratio needs second_moments=True"))?;
        if !(ridge >= 0.0 && ridge.is_finite()) {
            return Err(CoreError::invalid(
                "ridge",
                format!("must be finite and >= 0, got {ridge}"),
            ));
        }
        let n = self.n_samples() as f64;
        let (vals, vecs) = sym_eigen("h", w, d, true, ctl)?;
        let top = vals.iter().cloned().fold(0.0f64, f64::max);
        let shift = ridge * n;
        if shift == 0.0 && (top <= 0.0 || vals[0] <= top * d as f64 * f64::EPSILON) {
            return Err(CoreError::invalid(
                "h",
                "the within-class scatter matrix S_W is singular (too few samples per dimension, or a constant \
                 direction inside every class): pass ridge > 0",
            ));
        }
        // tr(A⁻¹ S_B) = Σ_c Σ_j n_c (v_jᵀ δ_c)² / (w_j + shift), S_B = Σ_c n_c δ_c δ_cᵀ. The C × d
        // terms are computed in parallel (interruptible between chunks of classes), then added in
        // class order, then j order, as one sequential sum.
        let mu = self.grand_mean();
        let present = self.present();
        let mut terms = memory::zeros::<f64>(present.len() * d, need_means(present.len(), d))?;
        let bounds: Vec<usize> = (0..=present.len()).map(|q| q * d).collect();
        ctl.fill_segments(&mut terms, &bounds, |q, _, out| {
            let c = present[q];
            let nc = self.counts[c] as f64;
            let delta: Vec<f64> = self.mean(c).iter().zip(&mu).map(|(a, b)| a - b).collect();
            for (j, t) in out.iter_mut().enumerate() {
                let proj: f64 = (0..d).map(|i| vecs[i * d + j] * delta[i]).sum();
                *t = nc * proj * proj / (vals[j] + shift);
            }
        })?;
        Ok(terms.iter().fold(0.0, |total, &t| total + t))
    }
}

impl ClassStats {
    /// Turns these into the statistics of the data times 2^e: means and distance sums times 2^e,
    /// M2 and S_W times 2^2e (exact for normal numbers). A caller keeps batches of any magnitude
    /// in a range where their squares are safe this way (docs/spec.md §0.8).
    pub fn scale_by_power_of_two(&mut self, e: i32) {
        let times = |v: &mut f64, e: i32| *v = times_power_of_two(*v, e);
        self.means.iter_mut().for_each(|v| times(v, e));
        self.dist_sums.iter_mut().flatten().for_each(|v| times(v, e));
        self.m2.iter_mut().for_each(|v| times(v, 2 * e));
        if let Some(w) = self.within.as_mut() {
            Arc::make_mut(w).iter_mut().for_each(|v| times(v, 2 * e));
        }
    }
}

/// v·2^e, in steps whose factors are normal float64 numbers.
fn times_power_of_two(mut v: f64, mut e: i32) -> f64 {
    let power = |e: i32| f64::from_bits(((1023 + e) as u64) << 52); // |e| ≤ 1000
    while e.abs() > 1000 {
        let step = 1000 * e.signum();
        v *= power(step);
        e -= step;
    }
    v * power(e)
}

fn remap(values: &[f64], map: &[u32], len: usize) -> Vec<f64> {
    let mut out = vec![0.0; len];
    for (c, &v) in values.iter().enumerate() {
        out[map[c] as usize] = v;
    }
    out
}
