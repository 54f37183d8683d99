//! Bindings of the binned (plug-in) estimators (`crate::info::binning`).

use super::{run, views, FloatArray, View, Views};
use crate::error::CoreError;
use crate::info::binning::{self, Binner, Binning, ColumnRule};
use crate::info::resample::RowSets;
use crate::knn::{Points, Real};
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// Index sets (rows of int64 arrays) as u32, one entry per input: inputs passed the same array
/// (a confidence interval resamples every input alike) share one converted copy. The conversion
/// runs on the worker pool; a negative or huge index is an error.
pub(super) struct IndexSets {
    owned: Vec<(Vec<u32>, usize)>,
    slot: Vec<Option<usize>>,
}

impl IndexSets {
    pub(super) fn new(name: &'static str, arrays: &[&Option<PyReadonlyArray2<'_, i64>>]) -> PyResult<IndexSets> {
        use rayon::prelude::*;
        let mut owned: Vec<(Vec<u32>, usize)> = Vec::new();
        let mut seen: Vec<*const i64> = Vec::new();
        let mut slot = Vec::with_capacity(arrays.len());
        for a in arrays {
            let Some(a) = a else {
                slot.push(None);
                continue;
            };
            let ptr = a.as_array().as_ptr();
            if let Some(k) = seen.iter().position(|&p| p == ptr) {
                if owned[k].1 == a.shape()[1] && owned[k].0.len() == a.len() {
                    slot.push(Some(k));
                    continue;
                }
            }
            let m = a.shape()[1];
            let convert = |i: &i64| u32::try_from(*i).map_err(|_| PyValueError::new_err(format!("{name}: index {i} out of range")));
            let flat: Vec<u32> = match a.as_slice() {
                Ok(sl) => crate::parallel::pool()?.install(|| sl.par_iter().map(convert).collect::<PyResult<_>>())?,
                Err(_) => a.as_array().iter().map(convert).collect::<PyResult<_>>()?,
            };
            seen.push(ptr);
            owned.push((flat, m));
            slot.push(Some(owned.len() - 1));
        }
        Ok(IndexSets { owned, slot })
    }

    pub(super) fn get(&self, i: usize) -> Option<RowSets<'_>> {
        self.slot[i].map(|k| RowSets { indices: &self.owned[k].0, m: self.owned[k].1 })
    }

    pub(super) fn all(&self) -> Vec<Option<RowSets<'_>>> {
        (0..self.slot.len()).map(|i| self.get(i)).collect()
    }
}

fn unchecked_points<'a, T: Real>(v: &View<'a, T>) -> Result<Points<'a, T>, CoreError> {
    let &(name, data, n, d) = v;
    if n == 0 || d == 0 {
        return Err(CoreError::invalid(name, format!("empty input (shape ({n}, {d}))")));
    }
    Ok(Points::trusted(data, n, d))
}

fn parse_binning(strategy: &str, n_bins: usize, bin_size: Option<f64>, per_unit: bool) -> Result<Binning, CoreError> {
    match (strategy, bin_size) {
        ("uniform", None) => Ok(Binning::Uniform { n_bins, per_unit }),
        ("uniform", Some(bin_size)) => Ok(Binning::FixedWidth { bin_size }),
        ("quantile", None) => Ok(Binning::Quantile { n_bins }),
        ("quantile", Some(_)) => Err(CoreError::invalid("bin_size", "only applies to strategy='uniform'")),
        (other, _) => Err(CoreError::invalid("strategy", format!("unknown strategy {other:?}; expected 'uniform' or 'quantile'"))),
    }
}

/// The fitted rule of each column as a (d, k) array: (lo, width) for equal-width bins, the edges
/// for quantile bins, (bin_size,) for fixed bins.
fn describe(binner: &Binner) -> (Vec<f64>, usize) {
    let width = match binner.rules.first() {
        Some(ColumnRule::Width { .. }) => 2,
        Some(ColumnRule::Fixed { .. }) => 1,
        Some(ColumnRule::Edges(e)) => e.len(),
        None => 0,
    };
    let mut flat = Vec::with_capacity(binner.rules.len() * width);
    for rule in &binner.rules {
        match rule {
            ColumnRule::Width { lo, width, .. } => flat.extend([*lo, *width]),
            ColumnRule::Fixed { size } => flat.push(*size),
            ColumnRule::Edges(e) => flat.extend_from_slice(e),
        }
    }
    (flat, width)
}

/// Pattern ids of the binned rows of x, their number, and the binning used.
#[pyfunction]
#[pyo3(signature = (x, strategy, n_bins, bin_size, per_unit))]
fn factorize_binned<'py>(
    py: Python<'py>,
    x: FloatArray<'py>,
    strategy: &str,
    n_bins: usize,
    bin_size: Option<f64>,
    per_unit: bool,
) -> PyResult<(Bound<'py, PyArray1<u32>>, usize, Bound<'py, PyArray2<f64>>)> {
    let binning = parse_binning(strategy, n_bins, bin_size, per_unit)?;
    // The core checks finiteness itself, in the pass that finds the ranges.
    let (ids, m, binner) = match views(&[("x", &x)])? {
        Views::F64(v) => run(py, |ctl| binning::factorize_binned(unchecked_points(&v[0])?, &binning, ctl))?,
        Views::F32(v) => run(py, |ctl| binning::factorize_binned(unchecked_points(&v[0])?, &binning, ctl))?,
    };
    let (flat, width) = describe(&binner);
    let rules = PyArray1::from_vec(py, flat).reshape([binner.rules.len(), width])?;
    Ok((PyArray1::from_vec(py, ids), m, rules))
}

/// Pattern ids of the rows of an integer table, and their number.
#[pyfunction]
fn factorize_integers<'py>(py: Python<'py>, x: PyReadonlyArray2<'py, i64>) -> PyResult<(Bound<'py, PyArray1<u32>>, usize)> {
    let (n, d) = (x.shape()[0], x.shape()[1]);
    let values = x.as_slice().map_err(|e| PyValueError::new_err(format!("x: {e}")))?;
    let (ids, m) = run(py, |ctl| binning::factorize_integers(values, n, d, ctl))?;
    Ok((PyArray1::from_vec(py, ids), m))
}

fn ids_of<'a>(name: &'static str, a: &'a PyReadonlyArray1<'_, u32>) -> PyResult<&'a [u32]> {
    a.as_slice().map_err(|e| PyValueError::new_err(format!("{name}: {e}")))
}

/// Plug-in entropy (nats) and number of distinct ids of every resample (rows None: the sample).
#[pyfunction]
#[pyo3(signature = (ids, n_ids, rows=None))]
fn plugin_entropy_resamples<'py>(
    py: Python<'py>,
    ids: PyReadonlyArray1<'py, u32>,
    n_ids: usize,
    rows: Option<PyReadonlyArray2<'py, i64>>,
) -> PyResult<(Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<u64>>)> {
    let ids = ids_of("ids", &ids)?;
    let rows = IndexSets::new("rows", &[&rows])?;
    let out = run(py, |ctl| binning::entropy_resamples(ids, n_ids, rows.get(0), ctl))?;
    let (h, m): (Vec<f64>, Vec<u64>) = out.into_iter().map(|(h, m)| (h, m as u64)).unzip();
    Ok((PyArray1::from_vec(py, h), PyArray1::from_vec(py, m)))
}

/// For every resample: H(A), H(B), H(A,B) (nats) and their distinct counts, as an (R, 6) array.
#[pyfunction]
#[pyo3(signature = (ids_a, n_a, ids_b, n_b, rows_a=None, rows_b=None))]
fn plugin_mi_resamples<'py>(
    py: Python<'py>,
    ids_a: PyReadonlyArray1<'py, u32>,
    n_a: usize,
    ids_b: PyReadonlyArray1<'py, u32>,
    n_b: usize,
    rows_a: Option<PyReadonlyArray2<'py, i64>>,
    rows_b: Option<PyReadonlyArray2<'py, i64>>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let (a, b) = (ids_of("x", &ids_a)?, ids_of("y", &ids_b)?);
    let rows = IndexSets::new("rows", &[&rows_a, &rows_b])?;
    let out = run(py, |ctl| binning::mutual_info_resamples((a, n_a), (b, n_b), rows.get(0), rows.get(1), ctl))?;
    let count = out.len();
    let flat: Vec<f64> = out.iter().flat_map(|t| t.iter().flat_map(|&(h, m)| [h, m as f64])).collect();
    Ok(PyArray1::from_vec(py, flat).reshape([count, 6])?)
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(factorize_binned, m)?)?;
    m.add_function(wrap_pyfunction!(factorize_integers, m)?)?;
    m.add_function(wrap_pyfunction!(plugin_entropy_resamples, m)?)?;
    m.add_function(wrap_pyfunction!(plugin_mi_resamples, m)?)?;
    Ok(())
}
