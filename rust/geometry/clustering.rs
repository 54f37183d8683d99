//! Clustering indices exactly as scikit-learn defines them (`sklearn.metrics`): Calinski–Harabasz,
//! Davies–Bouldin and the silhouette coefficient (Euclidean).

use super::{gather_rows, gemm_abt, ClassStats, Classes};
use crate::error::{CoreError, Result};
use crate::knn::{Points, Real};
use crate::parallel::Ctl;

/// scikit-learn's check: the number of clusters must lie in 2..=N−1.
pub fn check_number_of_labels(n_labels: usize, n_samples: usize) -> Result<()> {
    if !(2..n_samples).contains(&n_labels) {
        return Err(CoreError::invalid(
            "labels",
            format!("number of labels is {n_labels}; valid values are 2 to n_samples - 1 = {} (inclusive)", n_samples.saturating_sub(1)),
        ));
    }
    Ok(())
}

/// Calinski–Harabasz: [tr(S_B)/(C − 1)] / [tr(S_W)/(N − C)]; 1.0 when tr(S_W) = 0 (scikit-learn).
pub fn calinski_harabasz(stats: &ClassStats) -> Result<f64> {
    let k = stats.present().len();
    let n = stats.n_samples() as usize;
    check_number_of_labels(k, n)?;
    let intra = stats.trace_within();
    if intra == 0.0 {
        return Ok(1.0);
    }
    Ok(stats.trace_between() * (n - k) as f64 / (intra * (k as f64 - 1.0)))
}

/// Davies–Bouldin: mean over classes of max_{c'≠c} (s_c + s_c')/‖μ_c − μ_c'‖, s_c the mean distance
/// of class c to its centroid. As scikit-learn: 0 when every s_c or every centroid distance is
/// within 1e-8 of 0 (`np.allclose`), and a pair of coincident centroids contributes 0.
/// Needs the statistics of a single batch (distances to the final centroids).
pub fn davies_bouldin(stats: &ClassStats) -> Result<f64> {
    let present = stats.present();
    let (k, n) = (present.len(), stats.n_samples() as usize);
    check_number_of_labels(k, n)?;
    let mut intra = Vec::with_capacity(k);
    for &c in &present {
        let s = stats
            .dist_sum(c)
            .ok_or_else(|| CoreError::invalid("h", "Davies–Bouldin needs the data in one piece (not merged statistics)"))?;
        intra.push(s / stats.count(c) as f64);
    }
    let mut cdist = vec![0.0; k * k];
    for a in 0..k {
        for b in a + 1..k {
            let v = stats.mean(present[a]).iter().zip(stats.mean(present[b])).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt();
            cdist[a * k + b] = v;
            cdist[b * k + a] = v;
        }
    }
    const ATOL: f64 = 1e-8;
    if intra.iter().all(|v| v.abs() <= ATOL) || cdist.iter().all(|v| v.abs() <= ATOL) {
        return Ok(0.0);
    }
    let mut total = 0.0;
    for a in 0..k {
        let mut worst = f64::NEG_INFINITY;
        for b in 0..k {
            // scikit-learn sets zero centroid distances (the diagonal, coincident means) to +inf.
            let dist = if cdist[a * k + b] == 0.0 { f64::INFINITY } else { cdist[a * k + b] };
            worst = worst.max((intra[a] + intra[b]) / dist);
        }
        total += worst;
    }
    Ok(total / k as f64)
}

const ROW_BLOCK: usize = 128;
const COL_TILE: usize = 512;

/// Silhouette coefficient of every sample (Rousseeuw 1987), Euclidean, exact:
/// a(i) = mean distance to the other members of its class, b(i) = min over other classes of the
/// mean distance, s(i) = (b − a)/max(a, b); 0 for members of singleton classes and when
/// a = b = 0. Distances as scikit-learn computes them: √max(‖x‖² + ‖y‖² − 2x·y, 0) in f64, and 0
/// from a sample to itself. Parallel over blocks of rows; each block sweeps all samples in tiles
/// grouped by class, keeping one sum per (row, class): O(N·C) memory besides the input.
pub fn silhouette_samples<T: Real>(p: Points<'_, T>, classes: &Classes, ctl: &Ctl) -> Result<Vec<f64>> {
    let (n, d, k) = (p.n(), p.d(), classes.n_classes());
    check_number_of_labels(k, n)?;
    let norms: Vec<f64> = (0..n).map(|i| p.row(i).iter().map(|&x| x.to_f64() * x.to_f64()).sum()).collect();
    // Tiles of the class-sorted order, each split at class boundaries into (class, start, end).
    let mut tiles: Vec<(usize, usize, Vec<(usize, usize, usize)>)> = Vec::new();
    let mut t0 = 0;
    while t0 < n {
        let t1 = (t0 + COL_TILE).min(n);
        let mut segs = Vec::new();
        for c in 0..k {
            let (lo, hi) = (classes.bounds[c].max(t0), classes.bounds[c + 1].min(t1));
            if lo < hi {
                segs.push((c, lo - t0, hi - t0));
            }
        }
        tiles.push((t0, t1, segs));
        t0 = t1;
    }
    let sizes: Vec<f64> = (0..k).map(|c| classes.size(c) as f64).collect();
    let mut out = vec![0.0f64; n];
    ctl.fill_blocks(&mut out, ROW_BLOCK, |start, sl| {
        let rows = sl.len();
        let idx: Vec<u32> = (start as u32..(start + rows) as u32).collect();
        let mut rbuf = vec![0.0; rows * d];
        gather_rows(p, &idx, None, &mut rbuf);
        let mut cbuf = vec![0.0; COL_TILE * d];
        let mut g = vec![0.0; rows * COL_TILE];
        let mut sums = vec![0.0f64; rows * k];
        for (t0, t1, segs) in &tiles {
            let cols = &classes.order[*t0..*t1];
            let w = cols.len();
            gather_rows(p, cols, None, &mut cbuf);
            gemm_abt(&mut g, &rbuf, &cbuf, rows, w, d, false);
            for r in 0..rows {
                let i = start + r;
                let nr = norms[i];
                let grow = &g[r * w..(r + 1) * w];
                for &(c, lo, hi) in segs {
                    let mut s = 0.0;
                    for q in lo..hi {
                        let j = cols[q] as usize;
                        let sq = (nr + norms[j] - 2.0 * grow[q]).max(0.0);
                        s += if j == i { 0.0 } else { sq.sqrt() };
                    }
                    sums[r * k + c] += s;
                }
            }
        }
        for (r, o) in sl.iter_mut().enumerate() {
            let own = classes.of_row[start + r] as usize;
            if sizes[own] <= 1.0 {
                *o = 0.0;
                continue;
            }
            let a = sums[r * k + own] / (sizes[own] - 1.0);
            let mut b = f64::INFINITY;
            for c in 0..k {
                if c != own {
                    b = b.min(sums[r * k + c] / sizes[c]);
                }
            }
            let denom = a.max(b);
            *o = if denom > 0.0 { (b - a) / denom } else { 0.0 };
        }
    })?;
    Ok(out)
}

/// Mean silhouette coefficient over all samples.
pub fn silhouette<T: Real>(p: Points<'_, T>, classes: &Classes, ctl: &Ctl) -> Result<f64> {
    let s = silhouette_samples(p, classes, ctl)?;
    Ok(s.iter().sum::<f64>() / s.len() as f64)
}
