//! Mutual information between every pair of a set of variables (the columns, or groups of columns,
//! of one data matrix) in one parallel call (docs/spec.md §1.15).
//!
//! A pair is `ksg::mutual_info_ksg(xs[a], ys[b], …)`: the very function `mutual_info` calls, with
//! the same options, so each entry equals that call bit for bit. The caller passes each variable
//! pre-processed as the x and as the y of a pairwise call (with jitter they carry different noise;
//! without, they may be the same array; far from unit magnitude, scaled as that pair would be). Pairs run in parallel on the pool, each
//! pair's own search nested inside; Ctrl-C is checked between chunks of pairs.

use crate::error::{CoreError, Result};
use crate::info::ksg::{self, KsgVariant, Norm};
use crate::knn::{check_k, Method};
use crate::memory;
use crate::parallel::Ctl;
use crate::points::{Points, Real};

/// KSG mutual information of the pairs (`first[r]`, `second[r]`), in nats: entry r is
/// `mutual_info_ksg(xs[first[r]], ys[second[r]], k, variant, norm, method)`.
#[allow(clippy::too_many_arguments)]
pub fn mutual_info_pairs<T: Real>(
    xs: &[Points<'_, T>],
    ys: &[Points<'_, T>],
    first: &[u32],
    second: &[u32],
    k: usize,
    variant: KsgVariant,
    norm: Norm,
    method: Method,
    ctl: &Ctl,
) -> Result<Vec<f64>> {
    if first.len() != second.len() {
        return Err(CoreError::invalid(
            "pairs",
            format!("{} first and {} second variables", first.len(), second.len()),
        ));
    }
    if let Some(&a) = first.iter().find(|&&a| a as usize >= xs.len()) {
        return Err(CoreError::invalid(
            "pairs",
            format!("variable {a} of {} x variables", xs.len()),
        ));
    }
    if let Some(&b) = second.iter().find(|&&b| b as usize >= ys.len()) {
        return Err(CoreError::invalid(
            "pairs",
            format!("variable {b} of {} y variables", ys.len()),
        ));
    }
    let n = xs.first().or(ys.first()).map_or(0, |p| p.n());
    if xs.iter().chain(ys).any(|p| p.n() != n) {
        return Err(CoreError::invalid("x", "all variables need the same number of rows"));
    }
    let count = first.len();
    if count == 0 {
        return Ok(Vec::new());
    }
    check_k(k, n)?;
    let mut out = memory::filled(count, f64::NAN, || {
        memory::Need::new(
            "x",
            format!("the mutual informations of {count} pairs of variables"),
            "use fewer columns or groups",
        )
    })?;
    let nested = ctl.nested();
    // One pair per block: its search is itself parallel, so even a few pairs fill the pool.
    ctl.try_fill_blocks(&mut out, 1, |r, slot| {
        let (a, b) = (first[r] as usize, second[r] as usize);
        slot[0] = ksg::mutual_info_ksg(xs[a], ys[b], k, variant, norm, method, &nested())?;
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_equal_single_calls() {
        let ctl = Ctl::uninterruptible().unwrap();
        let n = 300;
        let mut s = 3u64;
        let mut next = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let cols: Vec<Vec<f64>> = (0..4).map(|_| (0..n).map(|_| next()).collect()).collect();
        let pts: Vec<Points<'_, f64>> = cols.iter().map(|c| Points::new("x", c, n, 1).unwrap()).collect();
        let (first, second): (Vec<u32>, Vec<u32>) = (0..4u32).flat_map(|a| (a + 1..4).map(move |b| (a, b))).unzip();
        let (ksg1, auto) = (KsgVariant::Ksg1, Method::Auto);
        for variant in [KsgVariant::Ksg1, KsgVariant::Ksg2] {
            for norm in [Norm::Chebyshev, Norm::Euclidean] {
                let all = mutual_info_pairs(&pts, &pts, &first, &second, 3, variant, norm, auto, &ctl).unwrap();
                let tail =
                    mutual_info_pairs(&pts, &pts, &first[4..], &second[4..], 3, variant, norm, auto, &ctl).unwrap();
                assert_eq!(&all[4..], &tail[..]);
                for (r, v) in all.iter().enumerate() {
                    let (a, b) = (first[r] as usize, second[r] as usize);
                    let want = ksg::mutual_info_ksg(pts[a], pts[b], 3, variant, norm, auto, &ctl).unwrap();
                    assert_eq!(v.to_bits(), want.to_bits());
                }
            }
        }
        assert!(mutual_info_pairs(&pts, &pts, &[0], &[4], 3, ksg1, Norm::Chebyshev, auto, &ctl).is_err());
        assert!(mutual_info_pairs(&pts, &pts, &[0], &[1, 2], 3, ksg1, Norm::Chebyshev, auto, &ctl).is_err());
    }
}
