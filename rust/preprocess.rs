//! Pre-processing of the KSG estimators' inputs (docs/spec.md §1.4): every column divided by a scale and,
//! optionally, a small Gaussian jitter added to break ties, in one parallel pass whose noise depends
//! on the seed alone.

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

#[cfg(test)]
mod tests {
    use super::*;

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
