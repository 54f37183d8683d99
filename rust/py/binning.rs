//! Bindings of the binned (plug-in) estimators (`crate::info::binning`, `crate::info::plugin`) and
//! of the row factorisation (`crate::factorize`).

use super::resample::PyDraws;
use super::{run, views, FloatArray, View, Views};
use crate::error::CoreError;
use crate::factorize;
use crate::info::binning::{self, Binner, Binning, ColumnRule, Strategy};
use crate::info::plugin;
use crate::points::{Points, Real};
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

fn unchecked_points<'a, T: Real>(v: &View<'a, T>) -> Result<Points<'a, T>, CoreError> {
    let &(name, data, n, d) = v;
    if n == 0 || d == 0 {
        return Err(CoreError::invalid(name, format!("empty input (shape ({n}, {d}))")));
    }
    Ok(Points::trusted(data, n, d))
}

/// The fitted rule of each column as a (d, k) array: (lo, width) for equal-width bins, the edges
/// for quantile bins, (bin_size,) for fixed bins.
fn describe(binner: &Binner) -> (Vec<f64>, usize) {
    let rows: Vec<Vec<f64>> = binner.rules.iter().map(ColumnRule::describe).collect();
    let width = rows.first().map_or(0, Vec::len);
    (rows.concat(), width)
}

/// Pattern ids, their number, and the fitted rule of each column (see [`describe`]).
type Factorized<'py> = (Bound<'py, PyArray1<u32>>, usize, Bound<'py, PyArray2<f64>>);

/// Pattern ids of the binned rows of x, their number, and the binning used.
#[pyfunction]
#[pyo3(signature = (x, strategy, n_bins, bin_size, per_unit))]
fn factorize_binned<'py>(
    py: Python<'py>,
    x: FloatArray<'py>,
    strategy: Strategy,
    n_bins: usize,
    bin_size: Option<f64>,
    per_unit: bool,
) -> PyResult<Factorized<'py>> {
    let binning = Binning::new(strategy, n_bins, bin_size, per_unit)?;
    // The core checks finiteness itself, in the pass that finds the ranges.
    let (ids, m, binner) = match views(&[("x", &x)])? {
        Views::F64(v) => run(py, |ctl| {
            binning::factorize_binned(unchecked_points(&v[0])?, &binning, ctl)
        })?,
        Views::F32(v) => run(py, |ctl| {
            binning::factorize_binned(unchecked_points(&v[0])?, &binning, ctl)
        })?,
    };
    let (flat, width) = describe(&binner);
    let rules = PyArray1::from_vec(py, flat).reshape([binner.rules.len(), width])?;
    Ok((PyArray1::from_vec(py, ids), m, rules))
}

/// Pattern ids of the rows of an integer table, and their number.
#[pyfunction]
fn factorize_integers<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, i64>,
) -> PyResult<(Bound<'py, PyArray1<u32>>, usize)> {
    let (n, d) = (x.shape()[0], x.shape()[1]);
    let values = x.as_slice().map_err(|e| PyValueError::new_err(format!("x: {e}")))?;
    let (ids, m) = run(py, |ctl| factorize::factorize_integers(values, n, d, ctl))?;
    Ok((PyArray1::from_vec(py, ids), m))
}

fn ids_of<'a>(name: &'static str, a: &'a PyReadonlyArray1<'_, u32>) -> PyResult<&'a [u32]> {
    a.as_slice().map_err(|e| PyValueError::new_err(format!("{name}: {e}")))
}

/// Ids of the pairs (ids_a[i], ids_b[i]) and their number (the joint variable).
#[pyfunction]
fn factorize_pairs<'py>(
    py: Python<'py>,
    ids_a: PyReadonlyArray1<'py, u32>,
    n_a: usize,
    ids_b: PyReadonlyArray1<'py, u32>,
    n_b: usize,
) -> PyResult<(Bound<'py, PyArray1<u32>>, usize)> {
    let (a, b) = (ids_of("x", &ids_a)?, ids_of("y", &ids_b)?);
    let (ids, m) = run(py, |ctl| plugin::factorize_pairs((a, n_a), (b, n_b), ctl))?;
    Ok((PyArray1::from_vec(py, ids), m))
}

/// Plug-in entropies (nats) and distinct counts of id tables over the same rows: `tables` holds
/// (ids, number of ids); for the sample (draws None) or resamples `start..start + count` of
/// `draws`. An (R, 2T) array: entropy and count of each table in turn.
#[pyfunction]
#[pyo3(signature = (tables, draws=None, start=0, count=1))]
fn plugin_entropy_resamples<'py>(
    py: Python<'py>,
    tables: Vec<(PyReadonlyArray1<'py, u32>, usize)>,
    draws: Option<PyRef<'py, PyDraws>>,
    start: usize,
    count: usize,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let slices: Vec<(&[u32], usize)> = tables
        .iter()
        .map(|(ids, n)| Ok((ids_of("ids", ids)?, *n)))
        .collect::<PyResult<_>>()?;
    let draws = draws.as_deref().map(|d| (&d.inner, start..start + count));
    let out = run(py, |ctl| plugin::entropy_resamples(&slices, draws, ctl))?;
    entropy_rows(py, &out, slices.len())
}

/// Rows of (entropy, distinct count) pairs, `tables` pairs a row, as an (R, 2·tables) array.
fn entropy_rows<'py, R: AsRef<[(f64, usize)]>>(
    py: Python<'py>,
    rows: &[R],
    tables: usize,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let flat: Vec<f64> = rows
        .iter()
        .flat_map(|t| t.as_ref().iter().flat_map(|&(h, m)| [h, m as f64]))
        .collect();
    PyArray1::from_vec(py, flat).reshape([rows.len(), 2 * tables])
}

/// H(A), H(B), H(A,B) (nats) and their distinct counts, as an (R, 6) array: for the sample
/// (draws None), or with b's rows drawn by resamples `start..start + count` of `draws`.
#[pyfunction]
#[pyo3(signature = (ids_a, n_a, ids_b, n_b, draws=None, start=0, count=1))]
#[allow(clippy::too_many_arguments)]
fn plugin_mi_resamples<'py>(
    py: Python<'py>,
    ids_a: PyReadonlyArray1<'py, u32>,
    n_a: usize,
    ids_b: PyReadonlyArray1<'py, u32>,
    n_b: usize,
    draws: Option<PyRef<'py, PyDraws>>,
    start: usize,
    count: usize,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let (a, b) = (ids_of("x", &ids_a)?, ids_of("y", &ids_b)?);
    let draws = draws.as_deref().map(|d| (&d.inner, start..start + count));
    let out = run(py, |ctl| plugin::mutual_info_resamples((a, n_a), (b, n_b), draws, ctl))?;
    entropy_rows(py, &out, 3)
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(factorize_binned, m)?)?;
    m.add_function(wrap_pyfunction!(factorize_integers, m)?)?;
    m.add_function(wrap_pyfunction!(factorize_pairs, m)?)?;
    m.add_function(wrap_pyfunction!(plugin_entropy_resamples, m)?)?;
    m.add_function(wrap_pyfunction!(plugin_mi_resamples, m)?)?;
    Ok(())
}
