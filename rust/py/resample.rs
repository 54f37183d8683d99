//! Bindings of the resampling driver (`crate::info::resample`): the resamples of a call
//! ([`PyDraws`]) and the k-NN estimators on them.

use super::{class_indices, over_dtype, points, run, views, FloatArray, Views};
use crate::choice::Choice;
use crate::info::ksg::{self, KsgVariant, Norm};
use crate::info::resample::{self, Draws, KnnEstimator, KnnEstimatorKind, Scheme};
use crate::knn::Method;
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// The resamples of one call: resample b draws its rows with a generator seeded from (seed, b).
#[pyclass(frozen, name = "Draws", module = "repcompress._core")]
pub(super) struct PyDraws {
    pub(super) inner: Draws,
}

#[pymethods]
impl PyDraws {
    #[new]
    #[pyo3(signature = (scheme, n, seed, strata=None))]
    fn new(
        py: Python<'_>,
        scheme: Scheme,
        n: usize,
        seed: u64,
        strata: Option<PyReadonlyArray1<'_, i64>>,
    ) -> PyResult<Self> {
        let inner = match strata {
            None => Draws::new(scheme, n, seed)?,
            Some(_) if scheme != Scheme::Permutation => {
                return Err(PyValueError::new_err("strata: only permutations can be stratified"))
            }
            Some(codes) => {
                let codes = class_indices(&codes)?;
                if codes.len() != n {
                    return Err(PyValueError::new_err(format!(
                        "strata: has {} entries for {n} rows",
                        codes.len()
                    )));
                }
                run(py, |_| Draws::stratified_permutations(&codes, seed))?
            }
        };
        Ok(PyDraws { inner })
    }

    /// The number of rows of the sample.
    #[getter]
    fn n(&self) -> usize {
        self.inner.n()
    }

    /// The number of rows of each resample.
    #[getter]
    fn m(&self) -> usize {
        self.inner.m()
    }

    /// The rows of resamples `start..start + count`, as a (count, m) int64 array.
    fn rows<'py>(&self, py: Python<'py>, start: usize, count: usize) -> PyResult<Bound<'py, PyArray2<i64>>> {
        let flat = run(py, |ctl| self.inner.rows(start..start + count, ctl))?;
        let flat: Vec<i64> = flat.into_iter().map(i64::from).collect();
        PyArray1::from_vec(py, flat).reshape([count, self.inner.m()])
    }
}

const ARRAY_NAMES: [&str; 3] = ["x", "y", "z"];

/// One k-NN estimator on resamples `start..start + count` of `draws`, in parallel. `picked` has
/// one flag per input (the point arrays in order, then the labels): whether it takes the drawn rows.
#[pyfunction]
#[pyo3(signature = (estimator, option, metric, arrays, labels, draws, start, count, picked, k, neighbors))]
#[allow(clippy::too_many_arguments)]
fn knn_resamples(
    py: Python<'_>,
    estimator: KnnEstimatorKind,
    option: &str,
    metric: &str,
    arrays: Vec<FloatArray<'_>>,
    labels: Option<PyReadonlyArray1<'_, i64>>,
    draws: PyRef<'_, PyDraws>,
    start: usize,
    count: usize,
    picked: Vec<bool>,
    k: usize,
    neighbors: Method,
) -> PyResult<Vec<f64>> {
    let est = KnnEstimator::new(estimator, option, metric)?;
    let (n_arrays, needs_labels) = est.inputs();
    if arrays.len() != n_arrays || labels.is_some() != needs_labels || picked.len() != n_arrays + needs_labels as usize
    {
        return Err(PyValueError::new_err(format!(
            "{}: wrong number of arrays, labels or flags",
            estimator.name()
        )));
    }
    let labels = labels.as_ref().map(class_indices).transpose()?;
    let draws = &draws.inner;
    let named: Vec<(&'static str, &FloatArray<'_>)> = ARRAY_NAMES.iter().copied().zip(arrays.iter()).collect();
    over_dtype!(py, &named, |p, ctl| resample::knn_resamples(
        est,
        &p,
        labels.as_deref(),
        draws,
        start..start + count,
        &picked,
        k,
        neighbors,
        ctl
    ))
}

/// I(X;Y | labels) by KSG within each class; returns the value and the skipped (class, size).
#[pyfunction]
#[pyo3(signature = (x, y, labels, k, estimator, metric, neighbors))]
#[allow(clippy::too_many_arguments)]
fn mutual_info_given_labels_ksg(
    py: Python<'_>,
    x: FloatArray<'_>,
    y: FloatArray<'_>,
    labels: PyReadonlyArray1<'_, i64>,
    k: usize,
    estimator: KsgVariant,
    metric: Norm,
    neighbors: Method,
) -> PyResult<(f64, Vec<(u32, usize)>)> {
    let labels = class_indices(&labels)?;
    over_dtype!(py, &[("x", &x), ("y", &y)], |p, ctl| ksg::mutual_info_given_labels(
        p[0], p[1], &labels, k, estimator, metric, neighbors, ctl
    ))
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyDraws>()?;
    m.add_function(wrap_pyfunction!(knn_resamples, m)?)?;
    m.add_function(wrap_pyfunction!(mutual_info_given_labels_ksg, m)?)?;
    Ok(())
}
