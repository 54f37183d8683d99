//! Clustering indices exactly as scikit-learn defines them (`sklearn.metrics`): Calinski–Harabasz,
//! Davies–Bouldin and the silhouette coefficient (Euclidean).

use super::{pair_budget, ClassStats, Classes};
use crate::error::{CoreError, Result};
use crate::linalg::{gather_rows, gemm_abt};
use crate::memory::{self, Need};
use crate::parallel::{Ctl, FirstError};
use crate::points::{Points, Real};

/// scikit-learn's check: the number of clusters must lie in 2..=N−1.
pub fn check_number_of_labels(n_labels: usize, n_samples: usize) -> Result<()> {
    if !(2..n_samples).contains(&n_labels) {
        return Err(CoreError::invalid(
            "labels",
            format!(
                "number of labels is {n_labels}; valid values are 2 to n_samples - 1 = {} (inclusive)",
                n_samples.saturating_sub(1)
            ),
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
///
/// Without a C × C table of centroid distances: each row's worst ratio is computed from its own
/// distances (in parallel over rows, O(C) memory, a distance of a pair computed the same way from
/// either side), and the rows' worst ratios are added in class order.
pub fn davies_bouldin(stats: &ClassStats, ctl: &Ctl) -> Result<f64> {
    let present = stats.present();
    let (k, n) = (present.len(), stats.n_samples() as usize);
    check_number_of_labels(k, n)?;
    let mut intra = Vec::with_capacity(k);
    for &c in &present {
        let s = stats.dist_sum(c).ok_or_else(|| {
            CoreError::invalid(
                "h",
                "Davies–Bouldin needs the data in one piece (not merged statistics)",
            )
        })?;
        intra.push(s / stats.count(c) as f64);
    }
    // ‖μ_a − μ_b‖ of the pair taken as (min, max): the same bits from either side.
    let dist = |a: usize, b: usize| -> f64 {
        let (a, b) = (a.min(b), a.max(b));
        stats
            .mean(present[a])
            .iter()
            .zip(stats.mean(present[b]))
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f64>()
            .sqrt()
    };
    const ATOL: f64 = 1e-8;
    if intra.iter().all(|v| v.abs() <= ATOL) {
        return Ok(0.0);
    }
    // Is some centroid distance beyond ATOL? Rows a block at a time, stopping at the first found.
    let mut far = memory::zeros::<u8>(k, || Need::new("labels", format!("{k} classes"), "use fewer classes"))?;
    let rows_per_check = (pair_budget(k, stats.dim()) / k).max(1);
    let mut any_far = false;
    for first in (0..k).step_by(rows_per_check) {
        let last = (first + rows_per_check).min(k);
        ctl.fill_blocks(&mut far[first..last], 1, |i, out| {
            let a = first + i;
            out[0] = (a + 1..k).any(|b| dist(a, b).abs() > ATOL) as u8;
        })?;
        if far[first..last].iter().any(|&f| f != 0) {
            any_far = true;
            break;
        }
    }
    if !any_far {
        return Ok(0.0);
    }
    drop(far);
    let mut worst = memory::zeros::<f64>(k, || Need::new("labels", format!("{k} classes"), "use fewer classes"))?;
    ctl.fill_blocks(&mut worst, 1, |a, out| {
        let mut w = f64::NEG_INFINITY;
        for b in 0..k {
            // scikit-learn sets zero centroid distances (the diagonal, coincident means) to +inf.
            let d = if b == a { 0.0 } else { dist(a, b) };
            let d = if d == 0.0 { f64::INFINITY } else { d };
            w = w.max((intra[a] + intra[b]) / d);
        }
        out[0] = w;
    })?;
    let mut total = 0.0;
    for w in &worst {
        total += w;
    }
    Ok(total / k as f64)
}

/// Samples per block (rows and columns of one distance tile).
const BLOCK: usize = 256;

/// One distance tile of a silhouette round: blocks (I, J) and the per-class sums of I's samples
/// and, unless I = J, of J's.
type TileJob<'s> = (usize, usize, &'s mut [f64], Option<&'s mut [f64]>);

/// Silhouette coefficient of every sample (Rousseeuw 1987), Euclidean, exact:
/// a(i) = mean distance to the other members of its class, b(i) = min over other classes of the
/// mean distance, s(i) = (b − a)/max(a, b); 0 for members of singleton classes and when
/// a = b = 0. Distances as scikit-learn computes them, √max(‖x‖² + ‖y‖² − 2x·y, 0) in f64, but
/// on centred samples, and 0 from a sample to itself.
///
/// The samples, sorted by class, are cut into blocks; each pair of blocks (I ≤ J) gets one
/// distance tile (a matrix product), whose row sums go to the per-class sums of I's samples and
/// whose column sums to J's, so every distance is computed once. Pairs are scheduled in rounds of
/// a round-robin tournament: within a round no block appears twice, so a round runs in parallel
/// without locks, and every sum receives its terms in the same order whatever the thread count.
/// Memory: O(N·C) sums besides the input and O(threads · BLOCK · (d + BLOCK)) scratch.
pub fn silhouette_samples<T: Real>(p: Points<'_, T>, classes: &Classes, ctl: &Ctl) -> Result<Vec<f64>> {
    use rayon::prelude::*;
    let (n, d, k) = (p.n(), p.d(), classes.n_classes());
    check_number_of_labels(k, n)?;
    let order = &classes.order;
    // Class of each position of the sorted order, norms by position.
    let need_sums = || {
        Need::new(
            "labels",
            format!("the per-class distance sums of {n} samples to {k} classes (N × C values)"),
            "average over a random subset of the samples (silhouette(..., sample_size=...)) or use fewer classes",
        )
    };
    let mut class_at = memory::with_capacity::<u32>(n, need_sums)?;
    class_at.extend((0..k).flat_map(|c| std::iter::repeat_n(c as u32, classes.size(c))));
    // Distances are computed on the samples centred on their mean: the same distances, but the
    // Gram form then loses no accuracy to a large common offset (docs/spec.md §4.9).
    let mut centre = vec![0.0f64; d];
    for i in 0..n {
        for (m, &x) in centre.iter_mut().zip(p.row(i)) {
            *m += x.to_f64();
        }
    }
    centre.iter_mut().for_each(|m| *m /= n as f64);
    let norms: Vec<f64> = memory::collect(
        order.iter().map(|&i| {
            let row = p.row(i as usize);
            row.iter()
                .zip(&centre)
                .map(|(&x, &m)| (x.to_f64() - m) * (x.to_f64() - m))
                .sum::<f64>()
        }),
        need_sums,
    )?;
    let nb = n.div_ceil(BLOCK);
    let span = |b: usize| (b * BLOCK, ((b + 1) * BLOCK).min(n));
    // (class, start, end) runs of a block, offsets relative to the block.
    let runs = |b: usize| -> Vec<(usize, usize, usize)> {
        let (lo, hi) = span(b);
        let mut out: Vec<(usize, usize, usize)> = Vec::new();
        for (q, &c) in class_at[lo..hi].iter().enumerate() {
            let c = c as usize;
            match out.last_mut() {
                Some(last) if last.0 == c => last.2 = q + 1,
                _ => out.push((c, q, q + 1)),
            }
        }
        out
    };
    let mut sums = memory::zeros::<f64>(n.saturating_mul(k), need_sums)?;
    // Round-robin (circle method) over nb blocks, plus a dummy when nb is odd; round 0 also does
    // the diagonal tiles (I, I).
    let m = nb + (nb % 2);
    let pair_rounds = if nb > 1 { m - 1 } else { 0 };
    let need_tile = || {
        Need::new(
            "h",
            format!("the rows of a distance tile ({BLOCK} samples × {d} dimensions)"),
            "reduce the number of dimensions (columns) first",
        )
    };
    let tile = |bi: usize, bj: usize, si: &mut [f64], sj: Option<&mut [f64]>| -> Result<()> {
        let (ilo, ihi) = span(bi);
        let (jlo, jhi) = span(bj);
        let (ri, rj) = (ihi - ilo, jhi - jlo);
        let mut abuf = memory::zeros::<f64>(ri * d, need_tile)?;
        gather_rows(p, &order[ilo..ihi], Some(&centre), &mut abuf);
        let mut g = memory::zeros::<f64>(ri * rj, need_tile)?;
        if bi == bj {
            gemm_abt(&mut g, &abuf, &abuf, ri, rj, d, false);
        } else {
            let mut bbuf = memory::zeros::<f64>(rj * d, need_tile)?;
            gather_rows(p, &order[jlo..jhi], Some(&centre), &mut bbuf);
            gemm_abt(&mut g, &abuf, &bbuf, ri, rj, d, false);
        }
        let (runs_i, runs_j) = (runs(bi), runs(bj));
        for r in 0..ri {
            let nr = norms[ilo + r];
            let row = &mut g[r * rj..(r + 1) * rj];
            for (v, &nc) in row.iter_mut().zip(&norms[jlo..jhi]) {
                *v = (nr + nc - 2.0 * *v).max(0.0).sqrt();
            }
            if bi == bj {
                row[r] = 0.0; // a sample's distance to itself is exactly 0
            }
            for &(c, lo, hi) in &runs_j {
                si[r * k + c] += sum(&row[lo..hi]);
            }
        }
        if let Some(sj) = sj {
            let mut col = vec![0.0; rj];
            for &(c, lo, hi) in &runs_i {
                col.iter_mut().for_each(|v| *v = 0.0);
                for r in lo..hi {
                    for (a, &v) in col.iter_mut().zip(&g[r * rj..(r + 1) * rj]) {
                        *a += v;
                    }
                }
                for (q, &v) in col.iter().enumerate() {
                    sj[q * k + c] += v;
                }
            }
        }
        Ok(())
    };
    for round in 0..=pair_rounds {
        // Disjoint mutable views of every block's sums.
        let mut blocks: Vec<Option<&mut [f64]>> = sums.chunks_mut(BLOCK * k).map(Some).collect();
        let mut jobs: Vec<TileJob<'_>> = Vec::new();
        if round == 0 {
            for (b, sums_b) in blocks.iter_mut().enumerate() {
                jobs.push((b, b, sums_b.take().unwrap(), None));
            }
        } else {
            // Circle method: position 0 fixed, the others rotate; pair t with m - 1 - t.
            let at = |t: usize| if t == 0 { 0 } else { (t - 1 + round - 1) % (m - 1) + 1 };
            for t in 0..m / 2 {
                let (a, b) = (at(t), at(m - 1 - t));
                if a >= nb || b >= nb {
                    continue; // the dummy block
                }
                let (lo, hi) = (a.min(b), a.max(b));
                let sl = blocks[lo].take().unwrap();
                let sh = blocks[hi].take().unwrap();
                jobs.push((lo, hi, sl, Some(sh)));
            }
        }
        // The tiles of a round touch disjoint sums: they run in chunks, with the interrupt check
        // between chunks, in any grouping.
        let mut jobs: Vec<Option<TileJob<'_>>> = jobs.into_iter().map(Some).collect();
        let failure = FirstError::default();
        ctl.run_adaptive(jobs.len(), ctl.threads(), |range| {
            let chunk = &mut jobs[range];
            ctl.install(|| {
                chunk.par_iter_mut().for_each(|job| {
                    if let Some((bi, bj, si, sj)) = job.take() {
                        if !failure.happened() {
                            failure.record(tile(bi, bj, si, sj));
                        }
                    }
                })
            });
            failure.take()
        })?;
    }
    // Round 0 did the diagonal; rounds 1..m-1 cover every pair I < J exactly once.
    let mut out = memory::zeros::<f64>(n, need_sums)?;
    let sizes: Vec<f64> = (0..k).map(|c| classes.size(c) as f64).collect();
    for pos in 0..n {
        let own = class_at[pos] as usize;
        let i = order[pos] as usize;
        if sizes[own] <= 1.0 {
            out[i] = 0.0;
            continue;
        }
        let srow = &sums[pos * k..(pos + 1) * k];
        let a = srow[own] / (sizes[own] - 1.0);
        let mut b = f64::INFINITY;
        for c in 0..k {
            if c != own {
                b = b.min(srow[c] / sizes[c]);
            }
        }
        let denom = a.max(b);
        out[i] = if denom > 0.0 { (b - a) / denom } else { 0.0 };
    }
    Ok(out)
}

/// Sum with four accumulators (the additions pipeline instead of waiting on one another).
#[inline]
fn sum(v: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let mut chunks = v.chunks_exact(4);
    for c in &mut chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    let tail: f64 = chunks.remainder().iter().sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Mean silhouette coefficient over all samples.
pub fn silhouette<T: Real>(p: Points<'_, T>, classes: &Classes, ctl: &Ctl) -> Result<f64> {
    let s = silhouette_samples(p, classes, ctl)?;
    Ok(s.iter().sum::<f64>() / s.len() as f64)
}
