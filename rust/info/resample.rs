//! Many evaluations of one estimator on resampled rows (subsamples, bootstrap samples,
//! permutations), run in parallel over the resamples (SPEC §5).
//!
//! The caller draws the resamples (so the same seed gives the same resamples at any thread count)
//! and passes one index set per resample for each input; an input without index sets is used as
//! it is (a permutation test shuffles one variable and leaves the other alone). Each resample is
//! one job; the estimator inside it may itself run in parallel on the same pool.

use crate::error::{CoreError, Result};
use crate::info::ksg::{self, EntropyMetric, KsgVariant};
use crate::knn::{Method, Points, Real};
use crate::parallel::Ctl;

/// Resamples given as `count()` rows of `m` indices each (row-major).
#[derive(Clone, Copy, Debug)]
pub struct RowSets<'a> {
    pub indices: &'a [u32],
    pub m: usize,
}

impl<'a> RowSets<'a> {
    pub fn count(&self) -> usize {
        self.indices.len().checked_div(self.m).unwrap_or(0)
    }
    pub fn get(&self, r: usize) -> &'a [u32] {
        &self.indices[r * self.m..(r + 1) * self.m]
    }
}

/// The number of resamples and their size, given the index sets of each input (`None`: the input
/// as it is, which needs resamples of all `n` rows). No index sets at all: one "resample", the
/// sample itself.
pub fn resample_shape(sets: &[Option<RowSets<'_>>], n: usize) -> Result<(usize, usize)> {
    let mut shape: Option<(usize, usize)> = None;
    for s in sets.iter().flatten() {
        if s.m == 0 || s.indices.len() % s.m != 0 {
            return Err(CoreError::invalid("resamples", "index sets must be non-empty rows of equal length"));
        }
        if let Some(i) = s.indices.iter().find(|&&i| i as usize >= n) {
            return Err(CoreError::invalid("resamples", format!("index {i} out of range for {n} samples")));
        }
        match shape {
            None => shape = Some((s.count(), s.m)),
            Some(sh) if sh != (s.count(), s.m) => {
                return Err(CoreError::invalid("resamples", "every input needs the same number and size of resamples"))
            }
            _ => {}
        }
    }
    let (count, m) = shape.unwrap_or((1, n));
    if sets.iter().any(|s| s.is_none()) && m != n {
        return Err(CoreError::invalid("resamples", "an input without index sets needs resamples of all N rows"));
    }
    Ok((count, m))
}

/// Runs `f(r, ctl)` for every resample r in `0..count`, in parallel; `f` gets an uninterruptible
/// control on the same pool (interrupts are checked between chunks of resamples). The results
/// are in resample order and do not depend on the thread count.
pub fn map_resamples<O: Send>(count: usize, ctl: &Ctl, f: impl Fn(usize, &Ctl) -> Result<O> + Sync) -> Result<Vec<O>> {
    let nested = ctl.nested();
    let mut out: Vec<Option<Result<O>>> = (0..count).map(|_| None).collect();
    ctl.fill_blocks(&mut out, 1, |r, slot| slot[0] = Some(f(r, &nested())))?;
    out.into_iter()
        .enumerate()
        .map(|(r, o)| match o {
            Some(Ok(v)) => Ok(v),
            Some(Err(CoreError::InvalidArgument { arg, message })) => {
                Err(CoreError::invalid(arg, format!("{message} (in resample {r})")))
            }
            Some(Err(e)) => Err(e),
            None => Err(CoreError::Internal(format!("resample {r} was never evaluated"))),
        })
        .collect()
}

/// The k-NN estimators that can be evaluated on resamples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KnnEstimator {
    /// I(X;Y), inputs x, y.
    MutualInfo(KsgVariant),
    /// I(X;Y|Z), inputs x, y, z.
    ConditionalMutualInfo,
    /// h(X), input x.
    Entropy(EntropyMetric),
    /// I(X;labels) by Ross's estimator, input x and labels.
    MutualInfoLabels,
    /// I(X;Y|labels), inputs x, y and labels.
    MutualInfoGivenLabels(KsgVariant),
}

impl KnnEstimator {
    /// How many point sets the estimator takes, and whether it takes labels.
    pub fn inputs(&self) -> (usize, bool) {
        match self {
            KnnEstimator::MutualInfo(_) => (2, false),
            KnnEstimator::ConditionalMutualInfo => (3, false),
            KnnEstimator::Entropy(_) => (1, false),
            KnnEstimator::MutualInfoLabels => (1, true),
            KnnEstimator::MutualInfoGivenLabels(_) => (2, true),
        }
    }

    pub fn evaluate<T: Real>(&self, p: &[Points<'_, T>], labels: Option<&[u32]>, k: usize, method: Method, ctl: &Ctl) -> Result<f64> {
        let (n_points, needs_labels) = self.inputs();
        if p.len() != n_points || needs_labels != labels.is_some() {
            return Err(CoreError::Internal(format!("{self:?} got {} arrays (labels: {})", p.len(), labels.is_some())));
        }
        let labels = || labels.expect("checked above");
        match *self {
            KnnEstimator::MutualInfo(v) => ksg::mutual_info_ksg(p[0], p[1], k, v, method, ctl),
            KnnEstimator::ConditionalMutualInfo => ksg::conditional_mutual_info_ksg(p[0], p[1], p[2], k, method, ctl),
            KnnEstimator::Entropy(metric) => ksg::entropy_kl(p[0], k, metric, method, ctl),
            KnnEstimator::MutualInfoLabels => ksg::mutual_info_ross(p[0], labels(), k, method, ctl),
            KnnEstimator::MutualInfoGivenLabels(v) => {
                ksg::mutual_info_given_labels(p[0], p[1], labels(), k, v, method, ctl).map(|(value, _)| value)
            }
        }
    }
}

/// `estimator` on every resample. `rows` has one entry per point set, then one for the labels
/// when the estimator takes them.
pub fn knn_resamples<T: Real>(
    estimator: KnnEstimator,
    points: &[Points<'_, T>],
    labels: Option<&[u32]>,
    rows: &[Option<RowSets<'_>>],
    k: usize,
    method: Method,
    ctl: &Ctl,
) -> Result<Vec<f64>> {
    let n = points.first().map_or(0, |p| p.n());
    if points.iter().any(|p| p.n() != n) || labels.is_some_and(|l| l.len() != n) {
        return Err(CoreError::invalid("arrays", "all inputs need the same number of rows"));
    }
    if rows.len() != points.len() + labels.is_some() as usize {
        return Err(CoreError::Internal("one index set per input expected".into()));
    }
    let (count, m) = resample_shape(rows, n)?;
    crate::knn::check_k(k, m)?;
    map_resamples(count, ctl, |r, inner| {
        let data: Vec<Option<Vec<T>>> = points.iter().zip(rows).map(|(p, s)| s.map(|s| p.gather(s.get(r)))).collect();
        let parts: Vec<Points<'_, T>> = points
            .iter()
            .zip(&data)
            .map(|(p, d)| d.as_ref().map_or(*p, |d| Points::trusted(d, m, p.d())))
            .collect();
        let resampled_labels: Option<Vec<u32>> = match (labels, rows.last().copied().flatten()) {
            (Some(l), Some(s)) => Some(s.get(r).iter().map(|&i| l[i as usize]).collect()),
            _ => None,
        };
        estimator.evaluate(&parts, resampled_labels.as_deref().or(labels), k, method, inner)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resamples_equal_direct_calls_on_gathered_rows() {
        let ctl = Ctl::uninterruptible().unwrap();
        let n = 300;
        let mut s = 7u64;
        let mut next = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let x: Vec<f64> = (0..n).map(|_| next()).collect();
        let y: Vec<f64> = x.iter().map(|v| v + 0.3 * next()).collect();
        let (px, py) = (Points::new("x", &x, n, 1).unwrap(), Points::new("y", &y, n, 1).unwrap());
        let idx: Vec<u32> = (0..3 * 150).map(|t| ((t * 7 + t / 150) % n) as u32).collect();
        let sets = RowSets { indices: &idx, m: 150 };
        let est = KnnEstimator::MutualInfo(KsgVariant::Ksg1);
        let got = knn_resamples(est, &[px, py], None, &[Some(sets), Some(sets)], 3, Method::Auto, &ctl).unwrap();
        for (r, g) in got.iter().enumerate() {
            let (xr, yr) = (px.gather(sets.get(r)), py.gather(sets.get(r)));
            let want = ksg::mutual_info_ksg(
                Points::new("x", &xr, 150, 1).unwrap(),
                Points::new("y", &yr, 150, 1).unwrap(),
                3,
                KsgVariant::Ksg1,
                Method::Auto,
                &ctl,
            )
            .unwrap();
            assert_eq!(*g, want);
        }
        // Shuffling y alone (a permutation test) needs index sets of all N rows.
        assert!(knn_resamples(est, &[px, py], None, &[None, Some(sets)], 3, Method::Auto, &ctl).is_err());
    }
}
