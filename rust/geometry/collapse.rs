//! Class-distance normalised variance (Galanti et al. 2022) and neural collapse NC1–NC4
//! (Papyan, Han & Donoho 2020), over the classes present.

use super::{for_pair_values, pair_budget, sum_start, ClassStats, Classes, Pairs};
use crate::error::{CoreError, Result};
use crate::linalg::{gather_rows, gemm_abt, thin_svd_of_transpose, GATHER_ROWS};
use crate::memory::{self, Need};
use crate::parallel::Ctl;
use crate::points::{Points, Real};

fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// CDNV of the pair of present classes (a, b), a < b: (Var_a + Var_b)/(2‖μ_a − μ_b‖²).
fn cdnv_pair(stats: &ClassStats, var: &[f64], present: &[usize], a: usize, b: usize) -> f64 {
    (var[a] + var[b]) / (2.0 * sq_dist(stats.mean(present[a]), stats.mean(present[b])))
}

/// CDNV per pair of present classes, (Var_c + Var_c')/(2‖μ_c − μ_c'‖²), as a C × C row-major
/// matrix with a zero diagonal. Coincident means give +inf (nan when both variances are 0 too).
/// The one C × C table of the module: it is the result asked for.
pub fn cdnv_matrix(stats: &ClassStats, ddof: u32, ctl: &Ctl) -> Result<Vec<f64>> {
    let k = stats.need_classes()?;
    let var = stats.variances(ddof)?;
    let present = stats.present();
    let mut out = memory::zeros::<f64>(k.saturating_mul(k), || {
        Need::new(
            "labels",
            format!("the {k} × {k} matrix of CDNV pair values"),
            "use fewer classes, or the mean CDNV (class_distance_normalized_variance), which needs no matrix",
        )
    })?;
    // Row a in parallel; entry (a, b) is the value of the pair (min, max), the same bits both ways.
    ctl.fill_blocks(&mut out, k, |start, row| {
        let a = start / k;
        for (b, v) in row.iter_mut().enumerate() {
            if b != a {
                *v = cdnv_pair(stats, &var, &present, a.min(b), a.max(b));
            }
        }
    })?;
    Ok(out)
}

/// Mean of the CDNV over unordered pairs of present classes, summed in pair order (a < b, row by
/// row) in blocks of rows: O(C·d) memory, no C × C table.
pub fn cdnv(stats: &ClassStats, ddof: u32, ctl: &Ctl) -> Result<f64> {
    let k = stats.need_classes()?;
    let var = stats.variances(ddof)?;
    let present = stats.present();
    let mut sum = 0.0;
    for_pair_values(
        k,
        Pairs::Upper,
        pair_budget(k, stats.dim()),
        ctl,
        |a, b| cdnv_pair(stats, &var, &present, a, b),
        |values| {
            for v in values {
                sum += v;
            }
        },
    )?;
    Ok(sum / (k * (k - 1) / 2) as f64)
}

/// The eigen-directions of Σ_B that NC1 inverts: from the thin SVD of the centred means
/// Mᵀ (d × C), Σ_B = Mᵀ M / C = Σ_k (s_k²/C) u_k u_kᵀ. Keeps at most C − 1 directions (the centred
/// means sum to zero) and drops those with s_k ≤ max(d, C)·ε·s_max (numpy's matrix_rank
/// tolerance on the singular values of the centred-mean matrix). Returns (s_k², U as d × r row-major).
pub fn between_directions(stats: &ClassStats, ctl: &Ctl) -> Result<(Vec<f64>, Vec<f64>)> {
    let k = stats.need_classes()?;
    let d = stats.dim();
    let m = stats.centred_means()?; // k × d row-major = Mᵀ column-major
    let (s, u) = thin_svd_of_transpose(m, k, d, ctl)?; // U: d × r_all row-major
    let r_all = s.len();
    let mut idx: Vec<usize> = (0..r_all).collect();
    idx.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
    let s_max = if r_all > 0 { s[idx[0]] } else { 0.0 };
    if s_max.is_nan() || s_max <= 0.0 {
        return Err(CoreError::invalid(
            "h",
            "all class means coincide: Σ_B = 0 and NC1 is undefined",
        ));
    }
    let tol = d.max(k) as f64 * f64::EPSILON * s_max;
    let keep: Vec<usize> = idx.into_iter().take(k - 1).filter(|&j| s[j] > tol).collect();
    let r = keep.len();
    let mut dirs = memory::zeros::<f64>(d * r, || {
        Need::new(
            "h",
            format!("the {d} × {r} between-class directions"),
            "use fewer classes or fewer dimensions",
        )
    })?;
    for i in 0..d {
        for (q, &j) in keep.iter().enumerate() {
            dirs[i * r + q] = u[i * r_all + j];
        }
    }
    Ok((keep.iter().map(|&j| s[j] * s[j]).collect(), dirs))
}

/// NC1 = Tr(Σ_W Σ_B⁺)/C = Σ_k u_kᵀ Σ_W u_k / s_k², with Σ_W = S_W/N from the accumulated S_W.
pub fn nc1(stats: &ClassStats, ctl: &Ctl) -> Result<f64> {
    let w = stats.within().ok_or_else(|| {
        CoreError::invalid(
            "second_moments",
            "NC1 from accumulated statistics needs second_moments=True",
        )
    })?;
    let (s2, u) = between_directions(stats, ctl)?;
    let (d, r) = (stats.dim(), s2.len());
    let n = stats.n_samples() as f64;
    // u_kᵀ S_W u_k for every direction, in parallel (interruptible between chunks of directions).
    let mut quads = vec![0.0f64; r];
    ctl.fill_blocks(&mut quads, 1, |q, out| {
        let mut quad = 0.0;
        for i in 0..d {
            let wu: f64 = (0..d).map(|j| w[i * d + j] * u[j * r + q]).sum();
            quad += u[i * r + q] * wu;
        }
        out[0] = quad;
    })?;
    let mut total = 0.0;
    for (q, quad) in quads.iter().enumerate() {
        total += quad / n / s2[q];
    }
    Ok(total)
}

/// NC1 from the data without forming Σ_W: u_kᵀ Σ_W u_k = (1/N) Σ_i ((h_i − μ_{y_i})·u_k)², an
/// N·d·r product over centred blocks of each class (r ≤ C − 1 directions).
pub fn nc1_from_points<T: Real>(p: Points<'_, T>, classes: &Classes, stats: &ClassStats, ctl: &Ctl) -> Result<f64> {
    let (s2, u) = between_directions(stats, ctl)?;
    let (d, r, k) = (p.d(), s2.len(), classes.n_classes());
    // u as r × d row-major, for out(rows × r) = block(rows × d) · uᵀ.
    let need = |what: &str| {
        let what = format!("{what} (C = {k} classes, d = {d}, {r} directions)");
        move || Need::new("h", what, "use fewer classes or fewer dimensions")
    };
    let mut ut = memory::zeros::<f64>(r * d, need("the between-class directions"))?;
    for i in 0..d {
        for q in 0..r {
            ut[q * d + i] = u[i * r + q];
        }
    }
    drop(u);
    let mut per_class = memory::zeros::<f64>(k * r, need("the per-class projections"))?;
    let bounds: Vec<usize> = (0..=k).map(|c| c * r).collect();
    ctl.try_fill_segments(&mut per_class, &bounds, |c, _, acc| {
        let rows = classes.rows(c);
        let mean = stats.mean(classes.ids[c] as usize);
        let mut buf = memory::zeros::<f64>(GATHER_ROWS * d, need("a block of centred rows"))?;
        let mut proj = memory::zeros::<f64>(GATHER_ROWS * r, need("a block of projections"))?;
        for chunk in rows.chunks(GATHER_ROWS) {
            gather_rows(p, chunk, Some(mean), &mut buf);
            gemm_abt(&mut proj, &buf, &ut, chunk.len(), r, d, false);
            for row in proj[..chunk.len() * r].chunks(r) {
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a += v * v;
                }
            }
        }
        Ok(())
    })?;
    let n = p.n() as f64;
    let mut total = 0.0;
    for q in 0..r {
        let quad: f64 = (0..k).map(|c| per_class[c * r + q]).sum();
        total += quad / n / s2[q];
    }
    Ok(total)
}

/// NC2: (equinorm, equiangularity, max-angle) of the centred class means.
/// equinorm = std_c ‖m_c‖ / mean_c ‖m_c‖; equiangularity = std over c ≠ c' of cos(m_c, m_c');
/// max-angle = mean over c ≠ c' of |cos + 1/(C − 1)|. Standard deviations are population ones
/// (ddof = 0). A class mean equal to μ_G makes the angles nan.
///
/// The cosines are visited in pair order (c, then c' ≠ c) in blocks of rows, O(C·d) memory: once
/// for their sum and the max-angle sum, and again for the squared deviations from their mean
/// (recomputed, unless all C(C − 1) of them fit in that memory and were kept). Every sum adds the
/// same terms in the same order as sums over a table of the cosines.
pub fn nc2(stats: &ClassStats, ctl: &Ctl) -> Result<(f64, f64, f64)> {
    let k = stats.need_classes()?;
    let d = stats.dim();
    let m = stats.centred_means()?;
    let norms: Vec<f64> = m
        .chunks(d)
        .map(|r| r.iter().map(|v| v * v).sum::<f64>().sqrt())
        .collect();
    let (mean_n, std_n) = mean_std(norms.iter().copied());
    let cos = |a: usize, b: usize| -> f64 {
        let dot: f64 = m[a * d..(a + 1) * d]
            .iter()
            .zip(&m[b * d..(b + 1) * d])
            .map(|(x, y)| x * y)
            .sum();
        dot / (norms[a] * norms[b])
    };
    let count = k * (k - 1);
    let budget = pair_budget(k, d);
    let mut kept = if count <= budget {
        Some(memory::with_capacity::<f64>(count, || {
            Need::new("labels", format!("the cosines of {k} class means"), "use fewer classes")
        })?)
    } else {
        None
    };
    let shift = 1.0 / (k as f64 - 1.0);
    let (mut sum, mut sum_abs) = (sum_start(), sum_start());
    for_pair_values(k, Pairs::Ordered, budget, ctl, cos, |values| {
        for &c in values {
            sum += c;
            sum_abs += (c + shift).abs();
        }
        if let Some(kept) = kept.as_mut() {
            kept.extend_from_slice(values);
        }
    })?;
    let n = count as f64;
    let mean = sum / n;
    let mut sq = sum_start();
    match &kept {
        Some(values) => {
            for &c in values {
                sq += (c - mean) * (c - mean);
            }
        }
        None => for_pair_values(k, Pairs::Ordered, budget, ctl, cos, |values| {
            for &c in values {
                sq += (c - mean) * (c - mean);
            }
        })?,
    }
    let std_cos = (sq / n).sqrt();
    let max_angle = sum_abs / count as f64;
    Ok((std_n / mean_n, std_cos, max_angle))
}

fn mean_std(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = values.clone().count() as f64;
    let mean = values.clone().sum::<f64>() / n;
    let var = values.map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// NC3 = ‖Wᵀ/‖W‖_F − M/‖M‖_F‖²_F with W the classifier rows of the present classes (C × d, in
/// code order) and M the centred class means.
pub fn nc3(stats: &ClassStats, weights: &[f64]) -> Result<f64> {
    let k = stats.need_classes()?;
    let d = stats.dim();
    if weights.len() != k * d {
        return Err(CoreError::invalid(
            "weights",
            format!(
                "need {k} × {d} rows for the present classes, got {} values",
                weights.len()
            ),
        ));
    }
    let m = stats.centred_means()?;
    let nw = weights.iter().map(|v| v * v).sum::<f64>().sqrt();
    let nm = m.iter().map(|v| v * v).sum::<f64>().sqrt();
    if nw == 0.0 {
        return Err(CoreError::invalid("weights", "all zero: NC3 is undefined"));
    }
    Ok(weights.iter().zip(&m).map(|(w, x)| (w / nw - x / nm).powi(2)).sum())
}

/// The nearest class mean (Euclidean, ties to the smaller code) of every row, as a compact index
/// into `stats.present()`.
pub fn nearest_class_mean<T: Real>(p: Points<'_, T>, stats: &ClassStats, ctl: &Ctl) -> Result<Vec<u32>> {
    if p.d() != stats.dim() {
        return Err(CoreError::invalid(
            "h",
            format!("has {} columns but the statistics have {}", p.d(), stats.dim()),
        ));
    }
    let present = stats.present();
    let mut out = memory::zeros::<u32>(p.n(), || Need::new("h", "the nearest class means", "use fewer samples"))?;
    ctl.fill_blocks(&mut out, 256, |start, sl| {
        for (j, o) in sl.iter_mut().enumerate() {
            let row = p.row(start + j);
            let mut best = (f64::INFINITY, 0u32);
            for (q, &c) in present.iter().enumerate() {
                let dist: f64 = row
                    .iter()
                    .zip(stats.mean(c))
                    .map(|(&x, &m)| (x.to_f64() - m) * (x.to_f64() - m))
                    .sum();
                if dist < best.0 {
                    best = (dist, q as u32);
                }
            }
            *o = best.1;
        }
    })?;
    Ok(out)
}
