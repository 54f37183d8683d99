//! Bindings of the mixed discrete–continuous MI (`crate::info::mixed`) and of the MI of all pairs
//! of variables (`crate::info::matrix`).

use super::{over_dtype, points, run, views, FloatArray, Views};
use crate::info::ksg::{KsgVariant, Norm};
use crate::info::{matrix, mixed};
use crate::knn::Method;
use numpy::PyReadonlyArray1;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

#[pyfunction]
#[pyo3(signature = (x, y, k, neighbors))]
fn mutual_info_mixed(
    py: Python<'_>,
    x: FloatArray<'_>,
    y: FloatArray<'_>,
    k: usize,
    neighbors: Method,
) -> PyResult<f64> {
    over_dtype!(py, &[("x", &x), ("y", &y)], |p, ctl| mixed::mutual_info_mixed(
        p[0], p[1], k, neighbors, ctl
    ))
}

/// The per-sample counts (k̃, n_x, n_y) of the mixed estimator, for tests against a reference.
#[pyfunction]
#[pyo3(signature = (x, y, k, neighbors))]
fn mixed_counts(
    py: Python<'_>,
    x: FloatArray<'_>,
    y: FloatArray<'_>,
    k: usize,
    neighbors: Method,
) -> PyResult<(Vec<u32>, Vec<u32>, Vec<u32>)> {
    over_dtype!(py, &[("x", &x), ("y", &y)], |p, ctl| mixed::mixed_counts(
        p[0], p[1], k, neighbors, ctl
    ))
}

fn indices(arg: &'static str, a: &PyReadonlyArray1<'_, i64>) -> PyResult<Vec<u32>> {
    let s = a.as_slice().map_err(|e| PyValueError::new_err(format!("{arg}: {e}")))?;
    s.iter()
        .map(|&v| u32::try_from(v).map_err(|_| PyValueError::new_err(format!("{arg}: index {v} out of range"))))
        .collect()
}

/// KSG MI of the pairs (`first[r]`, `second[r]`): `mutual_info_ksg(xs[first[r]], ys[second[r]], …)`.
#[pyfunction]
#[pyo3(signature = (xs, ys, first, second, k, estimator, metric, neighbors))]
#[allow(clippy::too_many_arguments)]
fn mutual_info_pairs(
    py: Python<'_>,
    xs: Vec<FloatArray<'_>>,
    ys: Vec<FloatArray<'_>>,
    first: PyReadonlyArray1<'_, i64>,
    second: PyReadonlyArray1<'_, i64>,
    k: usize,
    estimator: KsgVariant,
    metric: Norm,
    neighbors: Method,
) -> PyResult<Vec<f64>> {
    let g = xs.len();
    let (first, second) = (indices("first", &first)?, indices("second", &second)?);
    let named: Vec<(&'static str, &FloatArray<'_>)> = xs.iter().chain(&ys).map(|a| ("x", a)).collect();
    over_dtype!(py, &named, |p, ctl| matrix::mutual_info_pairs(
        &p[..g],
        &p[g..],
        &first,
        &second,
        k,
        estimator,
        metric,
        neighbors,
        ctl
    ))
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(mutual_info_mixed, m)?)?;
    m.add_function(wrap_pyfunction!(mixed_counts, m)?)?;
    m.add_function(wrap_pyfunction!(mutual_info_pairs, m)?)?;
    Ok(())
}
