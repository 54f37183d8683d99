//! Bindings of the resampling driver (`crate::info::resample`) for the k-NN estimators.

use super::binning::IndexSets;
use super::{class_indices, over_dtype, points, run, views, FloatArray, Views};
use crate::info::ksg::{self, EntropyMetric, KsgVariant};
use crate::info::resample::{self, KnnEstimator};
use crate::knn::Method;
use numpy::{PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

const ARRAY_NAMES: [&str; 3] = ["x", "y", "z"];

fn parse_estimator(name: &str, option: &str) -> PyResult<KnnEstimator> {
    Ok(match name {
        "mutual_info" => KnnEstimator::MutualInfo(KsgVariant::parse(option)?),
        "conditional_mutual_info" => KnnEstimator::ConditionalMutualInfo,
        "entropy" => KnnEstimator::Entropy(EntropyMetric::parse(option)?),
        "mutual_info_labels" => KnnEstimator::MutualInfoLabels,
        "mutual_info_given_labels" => KnnEstimator::MutualInfoGivenLabels(KsgVariant::parse(option)?),
        other => return Err(PyValueError::new_err(format!("estimator: no resampling path for {other:?}"))),
    })
}

/// One k-NN estimator evaluated on many resamples, in parallel. `rows` holds one index-set
/// array (R × m) or None per input: the point arrays in order, then the labels.
#[pyfunction]
#[pyo3(signature = (estimator, option, arrays, labels, rows, k, neighbors))]
#[allow(clippy::too_many_arguments)]
fn knn_resamples(
    py: Python<'_>,
    estimator: &str,
    option: &str,
    arrays: Vec<FloatArray<'_>>,
    labels: Option<PyReadonlyArray1<'_, i64>>,
    rows: Vec<Option<PyReadonlyArray2<'_, i64>>>,
    k: usize,
    neighbors: &str,
) -> PyResult<Vec<f64>> {
    let est = parse_estimator(estimator, option)?;
    let method = Method::parse(neighbors)?;
    let (n_arrays, needs_labels) = est.inputs();
    if arrays.len() != n_arrays || labels.is_some() != needs_labels || rows.len() != n_arrays + needs_labels as usize {
        return Err(PyValueError::new_err(format!("{estimator}: wrong number of arrays, labels or index sets")));
    }
    let labels = labels.as_ref().map(class_indices).transpose()?;
    let owned = IndexSets::new("rows", &rows.iter().collect::<Vec<_>>())?;
    let sets = owned.all();
    let named: Vec<(&'static str, &FloatArray<'_>)> = ARRAY_NAMES.iter().copied().zip(arrays.iter()).collect();
    over_dtype!(py, &named, |p, ctl| resample::knn_resamples(est, &p, labels.as_deref(), &sets, k, method, ctl))
}

/// I(X;Y | labels) by KSG within each class; returns the value and the skipped (class, size).
#[pyfunction]
#[pyo3(signature = (x, y, labels, k, estimator, neighbors))]
fn mutual_info_given_labels_ksg(
    py: Python<'_>,
    x: FloatArray<'_>,
    y: FloatArray<'_>,
    labels: PyReadonlyArray1<'_, i64>,
    k: usize,
    estimator: &str,
    neighbors: &str,
) -> PyResult<(f64, Vec<(u32, usize)>)> {
    let variant = KsgVariant::parse(estimator)?;
    let method = Method::parse(neighbors)?;
    let labels = class_indices(&labels)?;
    over_dtype!(py, &[("x", &x), ("y", &y)], |p, ctl| ksg::mutual_info_given_labels(
        p[0], p[1], &labels, k, variant, method, ctl
    ))
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(knn_resamples, m)?)?;
    m.add_function(wrap_pyfunction!(mutual_info_given_labels_ksg, m)?)?;
    Ok(())
}
