//! Pre-processing of the KSG estimators' inputs (docs/spec.md §1.4): the columns' standard
//! deviations by a fixed pairwise tree of sums, then every column divided by a scale and,
//! optionally, a small Gaussian jitter added to break ties, in one parallel pass whose noise
//! depends on the seed alone.

use crate::error::{CoreError, Result};
use crate::parallel::Ctl;
use crate::random::Xoshiro256pp;

/// Rows per block of [`scaled_with_normals`]: block b draws from stream b.
const NOISE_ROWS: usize = 4096;

/// The row-major `data` (rows of `divisors.len()` values) with column j divided by
/// `divisors[j]` and, when `seed` is given, `scales[j]`·z added, z standard normal and
/// independent: the normalisation and jitter of docs/spec.md §1.4, in one parallel pass into a new buffer.
/// Rows come in blocks of [`NOISE_ROWS`] drawn from stream (seed, block) in row-major order, so
/// the noise depends on the seed alone, not on the thread count. Each value is
/// `data/divisor + scale·z`, the same IEEE operations as dividing and then adding the noise.
pub fn scaled_with_normals(
    data: &[f64],
    divisors: &[f64],
    scales: &[f64],
    seed: Option<u64>,
    ctl: &Ctl,
) -> Result<Vec<f64>> {
    let d = divisors.len();
    if d == 0 || data.len() % d != 0 || scales.len() != d {
        return Err(CoreError::invalid(
            "scales",
            format!("{d} divisors and {} scales for {} values", scales.len(), data.len()),
        ));
    }
    let mut out = crate::memory::zeros::<f64>(data.len(), || {
        crate::memory::Need::new(
            "x",
            format!("the pre-processed float64 copy ({} × {d} values)", data.len() / d),
            "use fewer samples or fewer dimensions",
        )
    })?;
    ctl.fill_blocks(&mut out, NOISE_ROWS * d, |start, block| {
        let src = &data[start..start + block.len()];
        match seed {
            Some(seed) => {
                let mut g = Xoshiro256pp::for_stream(seed, (start / (NOISE_ROWS * d)) as u64);
                for (t, (o, &v)) in block.iter_mut().zip(src).enumerate() {
                    *o = v / divisors[t % d] + scales[t % d] * g.normal();
                }
            }
            None => block
                .iter_mut()
                .zip(src)
                .enumerate()
                .for_each(|(t, (o, &v))| *o = v / divisors[t % d]),
        }
    })?;
    Ok(out)
}

/// Values per block of the pairwise sums' parallel levels; a level of fewer values runs serially.
const SUM_BLOCK: usize = 1 << 14;

/// The population standard deviation of each column of the row-major `data` (rows of `d` values):
/// √(Σ_i (x_ij − μ_j)² / N) with μ_j = (Σ_i x_ij) / N, each Σ over the rows by the fixed pairwise
/// tree of docs/spec.md §1.4 (rows i and i + ⌊m/2⌋ added while m > 1 rows are left, an odd last
/// row carried), and each deviation squared as (x − μ)·(x − μ). Those are the IEEE operations, in
/// the same order, of the NumPy statement of the tree and of the torch back-end's (§8.2), so the
/// result is theirs bit for bit; here the squared deviations are never stored, the levels run in
/// parallel, and the scratch space is half the data. Non-finite values propagate as IEEE
/// arithmetic does (the caller rescues such columns, §0.8).
pub fn population_std(data: &[f64], d: usize, ctl: &Ctl) -> Result<Vec<f64>> {
    if d == 0 || data.is_empty() || data.len() % d != 0 {
        return Err(CoreError::invalid(
            "x",
            format!("{} values do not make rows of {d} columns", data.len()),
        ));
    }
    let n = data.len() / d;
    let rows = n / 2 + n % 2;
    let mut scratch = crate::memory::zeros::<f64>(rows * d, || {
        crate::memory::Need::new(
            "x",
            format!("the pairwise column sums' scratch space ({rows} × {d} values)"),
            "use fewer samples or fewer dimensions",
        )
    })?;
    let sums = tree_column_sums(data, d, |_, v| v, &mut scratch, ctl)?;
    let mean: Vec<f64> = sums.iter().map(|s| s / n as f64).collect();
    let squares = tree_column_sums(
        data,
        d,
        |j, v| {
            let dev = v - mean[j];
            dev * dev
        },
        &mut scratch,
        ctl,
    )?;
    Ok(squares.iter().map(|s| (s / n as f64).sqrt()).collect())
}

/// Σ_i f(j, x_ij) of each column j by the pairwise tree of [`population_std`]: the first level
/// maps and adds rows i and i + ⌊N/2⌋ into `acc` (⌈N/2⌉ rows), the later ones add in place.
fn tree_column_sums(
    data: &[f64],
    d: usize,
    f: impl Fn(usize, f64) -> f64 + Sync,
    acc: &mut [f64],
    ctl: &Ctl,
) -> Result<Vec<f64>> {
    let n = data.len() / d;
    // Whole rows per block, so that a block's values start at column 0.
    let block = (SUM_BLOCK / d).max(1) * d;
    // A level in parallel blocks, or serially when it is one block or less.
    let level = |out: &mut [f64], fill: &(dyn Fn(usize, &mut [f64]) + Sync)| -> Result<()> {
        if out.len() > block {
            ctl.fill_blocks(out, block, fill)
        } else {
            fill(0, out);
            Ok(())
        }
    };
    // One row (N = 1) is all carry: the first level is empty and no later level runs.
    let half = n / 2;
    let (lower, upper) = data.split_at(half * d);
    let first = |start: usize, out: &mut [f64]| {
        let rows = out
            .chunks_exact_mut(d)
            .zip(lower[start..].chunks_exact(d))
            .zip(upper[start..].chunks_exact(d));
        for ((o, a), b) in rows {
            for (j, ((o, &a), &b)) in o.iter_mut().zip(a).zip(b).enumerate() {
                *o = f(j, a) + f(j, b);
            }
        }
    };
    level(&mut acc[..half * d], &first)?;
    if n % 2 == 1 {
        for (j, (o, &v)) in acc[half * d..(half + 1) * d]
            .iter_mut()
            .zip(&upper[half * d..])
            .enumerate()
        {
            *o = f(j, v);
        }
    }
    let mut m = half + n % 2;
    while m > 1 {
        let half = m / 2;
        let (lower, upper) = acc.split_at_mut(half * d);
        let upper = &*upper;
        let add = |start: usize, out: &mut [f64]| {
            for (o, &v) in out.iter_mut().zip(&upper[start..]) {
                *o += v;
            }
        };
        level(lower, &add)?;
        if m % 2 == 1 {
            acc.copy_within(2 * half * d..(2 * half + 1) * d, half * d);
        }
        m = half + m % 2;
    }
    Ok(acc[..d].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pairwise tree as docs/spec.md §1.4 states it: a new, shorter array per level.
    fn tree_sums_by_levels(rows: Vec<Vec<f64>>) -> Vec<f64> {
        let mut acc = rows;
        while acc.len() > 1 {
            let half = acc.len() / 2;
            let mut next: Vec<Vec<f64>> = (0..half)
                .map(|i| acc[i].iter().zip(&acc[i + half]).map(|(a, b)| a + b).collect())
                .collect();
            next.extend(acc[2 * half..].iter().cloned());
            acc = next;
        }
        acc.pop().unwrap()
    }

    /// The fused, in-place, parallel sums are the level-by-level statement's, bit for bit, at any
    /// thread count: odd and even row counts, one row, and levels above the parallel block size.
    #[test]
    fn population_std_is_the_pairwise_tree() {
        for threads in [1, 2, 3] {
            let ctl = Ctl::with_threads(threads);
            for (n, d) in [(1, 2), (2, 1), (3, 3), (7, 2), (1000, 1), (20_001, 3), (65_536, 1)] {
                let data: Vec<f64> = (0..n * d)
                    .map(|i| ((i as f64 * 0.618).sin() * 1e3 + (i % 7) as f64).powi(3))
                    .collect();
                let rows = |f: &dyn Fn(usize, f64) -> f64| -> Vec<Vec<f64>> {
                    data.chunks(d)
                        .map(|r| r.iter().enumerate().map(|(j, &v)| f(j, v)).collect())
                        .collect()
                };
                let mean: Vec<f64> = tree_sums_by_levels(rows(&|_, v| v))
                    .iter()
                    .map(|s| s / n as f64)
                    .collect();
                let want: Vec<f64> = tree_sums_by_levels(rows(&|j, v| (v - mean[j]) * (v - mean[j])))
                    .iter()
                    .map(|s| (s / n as f64).sqrt())
                    .collect();
                let got = population_std(&data, d, &ctl).unwrap();
                assert!(
                    got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "n {n}, d {d}, {threads} threads: {got:?} against {want:?}"
                );
            }
        }
        assert!(population_std(&[1.0, 2.0, 3.0], 2, &Ctl::with_threads(1)).is_err());
    }

    /// The noise is its definition (so it does not depend on the thread count); its moments are those of a standard normal
    /// (N = 4·10⁵: mean within 5 standard errors, variance within 5 of its standard errors); a
    /// zero scale adds nothing; blocks draw independent streams.
    #[test]
    fn scaled_normals_are_reproducible_standard_normals() {
        let ctl = Ctl::uninterruptible().unwrap();
        let (n, d) = (200_000, 2);
        let a = scaled_with_normals(&vec![1.0; n * d], &[1.0, 1.0], &[1.0, 0.0], Some(7), &ctl).unwrap();
        // The definition, serially: block b's values in row-major order from stream (7, b).
        let mut b = vec![1.0; n * d];
        for (blk, chunk) in b.chunks_mut(NOISE_ROWS * d).enumerate() {
            let mut g = Xoshiro256pp::for_stream(7, blk as u64);
            for (t, v) in chunk.iter_mut().enumerate() {
                *v += [1.0, 0.0][t % d] * g.normal();
            }
        }
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
        assert!(a.iter().skip(1).step_by(2).all(|&v| v == 1.0));
        let z: Vec<f64> = a.iter().step_by(2).map(|v| v - 1.0).collect();
        let mean = z.iter().sum::<f64>() / n as f64;
        let var = z.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 5.0 / (n as f64).sqrt(), "mean {mean}");
        assert!((var - 1.0).abs() < 5.0 * (2.0 / n as f64).sqrt(), "variance {var}");
        let fourth = z.iter().map(|v| v.powi(4)).sum::<f64>() / n as f64;
        assert!(
            (fourth - 3.0).abs() < 5.0 * (96.0 / n as f64).sqrt(),
            "fourth moment {fourth}"
        );
        // Consecutive blocks are not copies of each other.
        assert_ne!(z[0], z[NOISE_ROWS]);
    }

    /// Division by the divisors first, then the noise, in the same IEEE operations as doing the
    /// two steps apart; without a seed, division only.
    #[test]
    fn scaled_with_normals_divides_then_adds_noise() {
        let ctl = Ctl::uninterruptible().unwrap();
        let data: Vec<f64> = (0..9000).map(|i| (i as f64 * 0.37).sin() * 1e3).collect();
        let (div, scales) = ([3.0, 0.7, 1.0], [1e-10, 0.0, 2.0]);
        let plain = scaled_with_normals(&data, &div, &scales, None, &ctl).unwrap();
        assert!(plain
            .iter()
            .zip(&data)
            .enumerate()
            .all(|(t, (p, v))| p.to_bits() == (v / div[t % 3]).to_bits()));
        let noisy = scaled_with_normals(&data, &div, &scales, Some(5), &ctl).unwrap();
        let noise = scaled_with_normals(&vec![0.0; data.len()], &[1.0; 3], &[1.0; 3], Some(5), &ctl).unwrap();
        for (t, ((o, p), z)) in noisy.iter().zip(&plain).zip(&noise).enumerate() {
            assert_eq!(o.to_bits(), (p + scales[t % 3] * z).to_bits(), "value {t}");
        }
        assert!(scaled_with_normals(&data, &div, &scales[..2], None, &ctl).is_err());
    }
}
