//! Many evaluations of one estimator on resampled rows (subsamples, bootstrap samples,
//! permutations), run in parallel over the resamples (docs/spec.md §5.1).
//!
//! The resamples are drawn here, inside the parallel loop, by [`Draws`]: resample b has its own
//! generator seeded from (seed, b), so the same seed gives the same resamples at any thread count
//! and however the resamples are split into calls. Each input is either picked by the drawn rows
//! or used as it is (a permutation test shuffles one variable and leaves the other alone). Each
//! resample is one job; the estimator inside it may itself run in parallel on the same pool.

use crate::choice::Choice;
use crate::error::{CoreError, Result};
use crate::info::ksg::{self, KsgVariant, Norm};
use crate::info::mixed;
use crate::knn::Method;
use crate::parallel::Ctl;
use crate::points::{Points, Real};
use crate::random::Xoshiro256pp;
use std::ops::Range;

/// How the rows of one resample are drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scheme {
    /// N rows drawn uniformly with replacement (the bootstrap), in the order drawn.
    Bootstrap,
    /// m = ⌊N/2⌋ distinct rows, every m-subset equally likely, ascending (half-sampling).
    HalfSample,
    /// All N rows in a uniformly random order (a permutation test); with strata, each row's
    /// stratum is kept: the rows of every stratum are shuffled among themselves.
    Permutation,
}

impl Choice for Scheme {
    const ARG: &'static str = "scheme";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("bootstrap", Scheme::Bootstrap),
        ("subsample", Scheme::HalfSample),
        ("permutation", Scheme::Permutation),
    ];
}

/// The resamples of one call (resample numbers 0, 1, 2, …): resample b draws its rows with its own
/// generator, [`Xoshiro256pp::for_stream`]`(seed, b)`, so its rows depend on (seed, b) alone.
#[derive(Clone, Debug)]
pub struct Draws {
    scheme: Scheme,
    n: usize,
    seed: u64,
    /// Stratified permutations: the rows of each stratum, ascending, strata in code order;
    /// stratum s is `members[bounds[s]..bounds[s + 1]]`. Empty otherwise.
    members: Vec<u32>,
    bounds: Vec<usize>,
}

impl Draws {
    pub fn new(scheme: Scheme, n: usize, seed: u64) -> Result<Draws> {
        if n > u32::MAX as usize {
            return Err(CoreError::invalid(
                "n",
                format!("at most 2^32 - 1 rows can be resampled, got {n}"),
            ));
        }
        let least = if scheme == Scheme::HalfSample { 2 } else { 1 };
        if n < least {
            return Err(CoreError::invalid(
                "n",
                format!("{scheme:?} needs at least {least} rows, got {n}"),
            ));
        }
        Ok(Draws {
            scheme,
            n,
            seed,
            members: Vec::new(),
            bounds: Vec::new(),
        })
    }

    /// Permutations that keep every row in its stratum; `strata[i]` is row i's stratum code
    /// (codes below N, as class codes 0..C are).
    pub fn stratified_permutations(strata: &[u32], seed: u64) -> Result<Draws> {
        let mut draws = Draws::new(Scheme::Permutation, strata.len(), seed)?;
        let n = strata.len();
        if let Some(&c) = strata.iter().find(|&&c| c as usize >= n) {
            return Err(CoreError::invalid(
                "strata",
                format!("stratum code {c} is not below the number of rows {n}"),
            ));
        }
        // Counting sort by code; rows stay ascending within a stratum.
        let mut bounds = vec![0usize; n + 1];
        for &c in strata {
            bounds[c as usize + 1] += 1;
        }
        for s in 0..n {
            bounds[s + 1] += bounds[s];
        }
        let mut fill = bounds.clone();
        let mut members = vec![0u32; n];
        for (i, &c) in strata.iter().enumerate() {
            members[fill[c as usize]] = i as u32;
            fill[c as usize] += 1;
        }
        bounds.dedup();
        draws.members = members;
        draws.bounds = bounds;
        Ok(draws)
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The number of rows of the sample.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The number of rows of each resample.
    pub fn m(&self) -> usize {
        match self.scheme {
            Scheme::HalfSample => self.n / 2,
            Scheme::Bootstrap | Scheme::Permutation => self.n,
        }
    }

    fn generator(&self, b: usize) -> Xoshiro256pp {
        Xoshiro256pp::for_stream(self.seed, b as u64)
    }

    /// The rows of resample b, into `out` (its previous content is dropped).
    pub fn rows_into(&self, b: usize, out: &mut Vec<u32>) {
        let mut g = self.generator(b);
        out.clear();
        match self.scheme {
            Scheme::Bootstrap => out.extend((0..self.n).map(|_| g.below(self.n as u64) as u32)),
            Scheme::HalfSample => g.sorted_sample(self.n, self.m(), out),
            Scheme::Permutation if self.bounds.is_empty() => {
                out.extend(0..self.n as u32);
                g.shuffle(out);
            }
            Scheme::Permutation => {
                // Row members[j] takes the row at a shuffled position within its stratum.
                out.resize(self.n, 0);
                let mut shuffled = self.members.clone();
                for w in self.bounds.windows(2) {
                    g.shuffle(&mut shuffled[w[0]..w[1]]);
                }
                for (&i, &j) in self.members.iter().zip(&shuffled) {
                    out[i as usize] = j;
                }
            }
        }
    }

    /// Calls `f` with each row of resample b, in the order of [`Draws::rows_into`]. Bootstrap rows
    /// are passed on as they are drawn and never stored.
    #[inline]
    pub fn for_each_row(&self, b: usize, mut f: impl FnMut(usize)) {
        if self.scheme == Scheme::Bootstrap {
            let mut g = self.generator(b);
            for _ in 0..self.n {
                f(g.below(self.n as u64) as usize);
            }
        } else {
            let mut rows = Vec::new();
            self.rows_into(b, &mut rows);
            rows.into_iter().for_each(|i| f(i as usize));
        }
    }

    /// The rows of the resamples numbered `resamples`, as a (count × m) row-major table, drawn in
    /// parallel (for estimators that are called once per resample with the rows picked out).
    pub fn rows(&self, resamples: Range<usize>, ctl: &Ctl) -> Result<Vec<u32>> {
        let m = self.m();
        let count = resamples.len();
        let mut out = crate::memory::zeros::<u32>(count.saturating_mul(m), || {
            crate::memory::Need::new(
                "n_resamples",
                format!("the rows of {count} resamples of {m} samples"),
                "use fewer resamples",
            )
        })?;
        ctl.fill_blocks(&mut out, m, |start, block| {
            let mut rows = Vec::with_capacity(m);
            self.rows_into(resamples.start + start / m, &mut rows);
            block.copy_from_slice(&rows);
        })?;
        Ok(out)
    }
}

/// Runs `f(r, ctl)` for every resample r in `0..count`, in parallel; `f` gets an uninterruptible
/// control on the same pool (interrupts are checked between chunks of resamples). The results
/// are in resample order and do not depend on the thread count.
pub fn map_resamples<O: Send>(count: usize, ctl: &Ctl, f: impl Fn(usize, &Ctl) -> Result<O> + Sync) -> Result<Vec<O>> {
    map_resamples_with(count, ctl, || (), |_, r, inner| f(r, inner))
}

/// `map_resamples` with scratch space made by `init()` and reused by the resamples one worker
/// evaluates in a row (see `Ctl::fill_blocks_with`: `f` must leave it as it found it).
pub fn map_resamples_with<O: Send, S>(
    count: usize,
    ctl: &Ctl,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize, &Ctl) -> Result<O> + Sync,
) -> Result<Vec<O>> {
    let nested = ctl.nested();
    let mut out: Vec<Option<Result<O>>> = (0..count).map(|_| None).collect();
    ctl.fill_blocks_with(&mut out, 1, init, |state, r, slot| {
        slot[0] = Some(f(state, r, &nested()))
    })?;
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
    MutualInfo(KsgVariant, Norm),
    /// I(X;Y|Z), inputs x, y, z.
    ConditionalMutualInfo(Norm),
    /// h(X), input x.
    Entropy(Norm),
    /// I(X;labels) by Ross's estimator, input x and labels.
    MutualInfoLabels(Norm),
    /// I(X;Y|labels), inputs x, y and labels.
    MutualInfoGivenLabels(KsgVariant, Norm),
    /// I(X;Y) of discrete–continuous mixtures (Gao et al. 2017), inputs x, y.
    MutualInfoMixed,
}

/// The k-NN estimators that can be evaluated on resamples, by name; their options (the KSG
/// variant, the norm) are given apart ([`KnnEstimator::new`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KnnEstimatorKind {
    MutualInfo,
    ConditionalMutualInfo,
    Entropy,
    MutualInfoLabels,
    MutualInfoGivenLabels,
    MutualInfoMixed,
}

impl Choice for KnnEstimatorKind {
    const ARG: &'static str = "estimator";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("mutual_info", KnnEstimatorKind::MutualInfo),
        ("conditional_mutual_info", KnnEstimatorKind::ConditionalMutualInfo),
        ("entropy", KnnEstimatorKind::Entropy),
        ("mutual_info_labels", KnnEstimatorKind::MutualInfoLabels),
        ("mutual_info_given_labels", KnnEstimatorKind::MutualInfoGivenLabels),
        ("mutual_info_mixed", KnnEstimatorKind::MutualInfoMixed),
    ];
}

impl KnnEstimator {
    /// The estimator `kind` with its options, named as [`Choice::parse`] reads them: `variant`
    /// the KSG variant of the KSG mutual informations (the others ignore it), `metric` the norm
    /// inside each variable.
    pub fn new(kind: KnnEstimatorKind, variant: &str, metric: &str) -> Result<Self> {
        let norm = Norm::parse(metric)?;
        Ok(match kind {
            KnnEstimatorKind::MutualInfo => KnnEstimator::MutualInfo(KsgVariant::parse(variant)?, norm),
            KnnEstimatorKind::ConditionalMutualInfo => KnnEstimator::ConditionalMutualInfo(norm),
            KnnEstimatorKind::Entropy => KnnEstimator::Entropy(norm),
            KnnEstimatorKind::MutualInfoLabels => KnnEstimator::MutualInfoLabels(norm),
            KnnEstimatorKind::MutualInfoGivenLabels => {
                KnnEstimator::MutualInfoGivenLabels(KsgVariant::parse(variant)?, norm)
            }
            KnnEstimatorKind::MutualInfoMixed => KnnEstimator::MutualInfoMixed,
        })
    }

    /// How many point sets the estimator takes, and whether it takes labels.
    pub fn inputs(&self) -> (usize, bool) {
        match self {
            KnnEstimator::MutualInfo(..) => (2, false),
            KnnEstimator::ConditionalMutualInfo(_) => (3, false),
            KnnEstimator::Entropy(_) => (1, false),
            KnnEstimator::MutualInfoLabels(_) => (1, true),
            KnnEstimator::MutualInfoGivenLabels(..) => (2, true),
            KnnEstimator::MutualInfoMixed => (2, false),
        }
    }

    pub fn evaluate<T: Real>(
        &self,
        p: &[Points<'_, T>],
        labels: Option<&[u32]>,
        k: usize,
        method: Method,
        ctl: &Ctl,
    ) -> Result<f64> {
        let (n_points, needs_labels) = self.inputs();
        if p.len() != n_points || needs_labels != labels.is_some() {
            return Err(CoreError::Internal(format!(
                "{self:?} got {} arrays (labels: {})",
                p.len(),
                labels.is_some()
            )));
        }
        let labels = || labels.expect("checked above");
        match *self {
            KnnEstimator::MutualInfo(v, norm) => ksg::mutual_info_ksg(p[0], p[1], k, v, norm, method, ctl),
            KnnEstimator::ConditionalMutualInfo(norm) => {
                ksg::conditional_mutual_info_ksg(p[0], p[1], p[2], k, norm, method, ctl)
            }
            KnnEstimator::Entropy(norm) => ksg::entropy_kl(p[0], k, norm, method, ctl),
            KnnEstimator::MutualInfoLabels(norm) => ksg::mutual_info_ross(p[0], labels(), k, norm, method, ctl),
            KnnEstimator::MutualInfoGivenLabels(v, norm) => {
                ksg::mutual_info_given_labels(p[0], p[1], labels(), k, v, norm, method, ctl).map(|(value, _)| value)
            }
            KnnEstimator::MutualInfoMixed => mixed::mutual_info_mixed(p[0], p[1], k, method, ctl),
        }
    }
}

/// Checks which inputs the drawn rows pick (`picked`, one flag per input) against the sample size
/// `n`: at least one input is resampled, and an input used as it is needs resamples of all N rows.
pub fn check_picked(draws: &Draws, picked: &[bool], n: usize) -> Result<()> {
    if draws.n() != n {
        return Err(CoreError::invalid(
            "draws",
            format!("resample {} rows, but the inputs have {n}", draws.n()),
        ));
    }
    if !picked.iter().any(|&p| p) {
        return Err(CoreError::invalid("picked", "no input is resampled"));
    }
    if picked.iter().any(|&p| !p) && draws.m() != n {
        return Err(CoreError::invalid(
            "picked",
            "an input used as it is needs resamples of all N rows",
        ));
    }
    Ok(())
}

/// `estimator` on the resamples numbered `resamples` of `draws`. `picked` has one flag per point
/// set, then one for the labels when the estimator takes them: whether that input takes the drawn
/// rows (otherwise it is used as it is).
#[allow(clippy::too_many_arguments)]
pub fn knn_resamples<T: Real>(
    estimator: KnnEstimator,
    points: &[Points<'_, T>],
    labels: Option<&[u32]>,
    draws: &Draws,
    resamples: Range<usize>,
    picked: &[bool],
    k: usize,
    method: Method,
    ctl: &Ctl,
) -> Result<Vec<f64>> {
    let n = points.first().map_or(0, |p| p.n());
    if points.iter().any(|p| p.n() != n) || labels.is_some_and(|l| l.len() != n) {
        return Err(CoreError::invalid("arrays", "all inputs need the same number of rows"));
    }
    if picked.len() != points.len() + labels.is_some() as usize {
        return Err(CoreError::Internal("one flag per input expected".into()));
    }
    check_picked(draws, picked, n)?;
    let m = draws.m();
    crate::knn::check_k(k, m)?;
    let label_picked = labels.is_some() && picked[points.len()];
    map_resamples(resamples.len(), ctl, |r, inner| {
        let mut rows = Vec::with_capacity(m);
        draws.rows_into(resamples.start + r, &mut rows);
        let data: Vec<Option<Vec<T>>> = points
            .iter()
            .zip(picked)
            .map(|(p, &pick)| pick.then(|| p.gather(&rows)).transpose())
            .collect::<Result<_>>()?;
        let parts: Vec<Points<'_, T>> = points
            .iter()
            .zip(&data)
            .map(|(p, d)| d.as_ref().map_or(*p, |d| Points::trusted(d, m, p.d())))
            .collect();
        let resampled_labels: Option<Vec<u32>> = match labels {
            Some(l) if label_picked => Some(rows.iter().map(|&i| l[i as usize]).collect()),
            _ => None,
        };
        estimator.evaluate(&parts, resampled_labels.as_deref().or(labels), k, method, inner)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctl() -> Ctl<'static> {
        Ctl::uninterruptible().unwrap()
    }

    #[test]
    fn resamples_equal_direct_calls_on_gathered_rows() {
        let ctl = ctl();
        let n = 300;
        let mut s = 7u64;
        let mut next = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let x: Vec<f64> = (0..n).map(|_| next()).collect();
        let y: Vec<f64> = x.iter().map(|v| v + 0.3 * next()).collect();
        let (px, py) = (Points::new("x", &x, n, 1).unwrap(), Points::new("y", &y, n, 1).unwrap());
        let draws = Draws::new(Scheme::HalfSample, n, 17).unwrap();
        let est = KnnEstimator::MutualInfo(KsgVariant::Ksg1, Norm::Chebyshev);
        let got = knn_resamples(est, &[px, py], None, &draws, 2..5, &[true, true], 3, Method::Auto, &ctl).unwrap();
        let mut rows = Vec::new();
        for (r, g) in got.iter().enumerate() {
            draws.rows_into(2 + r, &mut rows);
            let (xr, yr) = (px.gather(&rows).unwrap(), py.gather(&rows).unwrap());
            let want = ksg::mutual_info_ksg(
                Points::new("x", &xr, 150, 1).unwrap(),
                Points::new("y", &yr, 150, 1).unwrap(),
                3,
                KsgVariant::Ksg1,
                Norm::Chebyshev,
                Method::Auto,
                &ctl,
            )
            .unwrap();
            assert_eq!(*g, want);
        }
        // Shuffling y alone (a permutation test) needs resamples of all N rows.
        assert!(knn_resamples(
            est,
            &[px, py],
            None,
            &draws,
            0..3,
            &[false, true],
            3,
            Method::Auto,
            &ctl
        )
        .is_err());
        let perms = Draws::new(Scheme::Permutation, n, 17).unwrap();
        let null = knn_resamples(
            est,
            &[px, py],
            None,
            &perms,
            0..3,
            &[false, true],
            3,
            Method::Auto,
            &ctl,
        )
        .unwrap();
        perms.rows_into(1, &mut rows);
        let yr = py.gather(&rows).unwrap();
        let want = ksg::mutual_info_ksg(
            px,
            Points::new("y", &yr, n, 1).unwrap(),
            3,
            KsgVariant::Ksg1,
            Norm::Chebyshev,
            Method::Auto,
            &ctl,
        )
        .unwrap();
        assert_eq!(null[1], want);
    }

    #[test]
    fn draws_are_valid_resamples() {
        let ctl = ctl();
        let n = 1001;
        let mut rows = Vec::new();
        let boot = Draws::new(Scheme::Bootstrap, n, 5).unwrap();
        boot.rows_into(0, &mut rows);
        assert_eq!(rows.len(), n);
        assert!(rows.iter().all(|&i| (i as usize) < n));
        let mut streamed = Vec::new();
        boot.for_each_row(0, |i| streamed.push(i as u32));
        assert_eq!(streamed, rows, "the fused pass draws the stored rows");
        let half = Draws::new(Scheme::HalfSample, n, 5).unwrap();
        half.rows_into(3, &mut rows);
        assert_eq!(rows.len(), 500);
        assert!(rows.windows(2).all(|w| w[0] < w[1]));
        let perm = Draws::new(Scheme::Permutation, n, 5).unwrap();
        perm.rows_into(3, &mut rows);
        let mut sorted = rows.clone();
        sorted.sort_unstable();
        assert!(sorted.iter().enumerate().all(|(i, &v)| i as u32 == v));
        assert_ne!(rows, sorted);
        // Stratified: every row keeps its stratum, and each stratum is a permutation of itself.
        let strata: Vec<u32> = (0..n).map(|i| ((i * 7) % 3) as u32 * 2).collect(); // codes 0, 2, 4
        let strat = Draws::stratified_permutations(&strata, 5).unwrap();
        strat.rows_into(0, &mut rows);
        assert!(rows.iter().enumerate().all(|(i, &j)| strata[i] == strata[j as usize]));
        let mut sorted = rows.clone();
        sorted.sort_unstable();
        assert!(sorted.iter().enumerate().all(|(i, &v)| i as u32 == v));
        assert!(rows.iter().enumerate().any(|(i, &j)| i as u32 != j));
        assert!(Draws::stratified_permutations(&[0, 5, 1], 1).is_err());
        assert!(Draws::new(Scheme::HalfSample, 1, 1).is_err());
        // Different seeds, different resamples.
        let other = Draws::new(Scheme::Bootstrap, n, 6).unwrap();
        assert_ne!(boot.rows(0..1, &ctl).unwrap(), other.rows(0..1, &ctl).unwrap());
    }

    #[test]
    fn draws_do_not_depend_on_threads_or_batches() {
        // Resample b's rows depend on (seed, b) alone: any split into calls, on any pool, gives the
        // same table.
        let n = 777;
        for draws in [
            Draws::new(Scheme::Bootstrap, n, 99).unwrap(),
            Draws::new(Scheme::HalfSample, n, 99).unwrap(),
            Draws::new(Scheme::Permutation, n, 99).unwrap(),
        ] {
            let m = draws.m();
            let before = crate::parallel::get_num_threads();
            crate::parallel::set_num_threads(1).unwrap();
            let whole = draws.rows(0..40, &ctl()).unwrap();
            let mut one_by_one = Vec::new();
            let mut rows = Vec::new();
            for b in 0..40 {
                draws.rows_into(b, &mut rows);
                one_by_one.extend_from_slice(&rows);
            }
            assert_eq!(whole, one_by_one);
            for threads in [2, 3] {
                crate::parallel::set_num_threads(threads).unwrap();
                let ctl = ctl();
                assert_eq!(ctl.threads(), threads);
                let split: Vec<u32> = [0..7, 7..8, 8..31, 31..40]
                    .into_iter()
                    .flat_map(|r| draws.rows(r, &ctl).unwrap())
                    .collect();
                assert_eq!(split, whole);
            }
            crate::parallel::set_num_threads(before).unwrap();
            assert_eq!(whole.len(), 40 * m);
        }
    }
}
