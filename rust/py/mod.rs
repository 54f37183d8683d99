//! The PyO3 binding layer: validates, borrows numpy arrays without copying, releases the GIL,
//! calls the core and maps `CoreError` to Python exceptions. No computation lives here.
//! The public, documented API is the Python package (`python/repcompress`).

use crate::error::CoreError;
use crate::info::ksg::{self, KsgVariant, Norm};
use crate::knn::metric::{Chebyshev, Euclidean};
use crate::knn::{self, Method};
use crate::parallel::{self, Ctl};
use crate::points::{Points, Real};
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyKeyboardInterrupt, PyMemoryError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;

mod binning;
mod choice;
mod gaussian;
mod geometry;
mod pairs;
mod resample;

impl From<CoreError> for PyErr {
    fn from(e: CoreError) -> PyErr {
        match e {
            CoreError::InvalidArgument { .. } => PyValueError::new_err(e.to_string()),
            CoreError::Interrupted => PyKeyboardInterrupt::new_err("interrupted"),
            CoreError::OutOfMemory { .. } => PyMemoryError::new_err(e.to_string()),
            CoreError::Internal(_) => PyRuntimeError::new_err(e.to_string()),
        }
    }
}

/// A 2-D float array as numpy holds it: float32 or float64, read in place.
#[derive(FromPyObject)]
enum FloatArray<'py> {
    F64(PyReadonlyArray2<'py, f64>),
    F32(PyReadonlyArray2<'py, f32>),
}

fn slice_of<'a, T: numpy::Element>(
    arg: &'static str,
    a: &'a PyReadonlyArray2<'_, T>,
) -> PyResult<(&'a [T], usize, usize)> {
    if !a.is_c_contiguous() {
        return Err(PyValueError::new_err(format!(
            "{arg}: the core needs a C-contiguous array"
        )));
    }
    let (n, d) = (a.shape()[0], a.shape()[1]);
    let s = a.as_slice().map_err(|e| PyValueError::new_err(format!("{arg}: {e}")))?;
    Ok((s, n, d))
}

/// Borrowed arrays of one common dtype.
enum Views<'a> {
    F64(Vec<View<'a, f64>>),
    F32(Vec<View<'a, f32>>),
}

/// The element types a `FloatArray` can hold.
trait FloatElement: Real + numpy::Element {
    fn pick<'a, 'py>(a: &'a FloatArray<'py>) -> Option<&'a PyReadonlyArray2<'py, Self>>;
}

impl FloatElement for f64 {
    fn pick<'a, 'py>(a: &'a FloatArray<'py>) -> Option<&'a PyReadonlyArray2<'py, f64>> {
        match a {
            FloatArray::F64(x) => Some(x),
            FloatArray::F32(_) => None,
        }
    }
}

impl FloatElement for f32 {
    fn pick<'a, 'py>(a: &'a FloatArray<'py>) -> Option<&'a PyReadonlyArray2<'py, f32>> {
        match a {
            FloatArray::F32(x) => Some(x),
            FloatArray::F64(_) => None,
        }
    }
}

type View<'a, T> = (&'static str, &'a [T], usize, usize);

/// The arrays as slices of `T`, or None when any of them holds another dtype.
fn views_of<'a, T: FloatElement>(
    arrays: &'a [(&'static str, &'a FloatArray<'_>)],
) -> PyResult<Option<Vec<View<'a, T>>>> {
    let mut out = Vec::with_capacity(arrays.len());
    for (name, a) in arrays {
        let Some(a) = T::pick(a) else { return Ok(None) };
        let (s, n, d) = slice_of(name, a)?;
        out.push((*name, s, n, d));
    }
    Ok(Some(out))
}

fn views<'a>(arrays: &'a [(&'static str, &'a FloatArray<'_>)]) -> PyResult<Views<'a>> {
    if let Some(v) = views_of::<f64>(arrays)? {
        return Ok(Views::F64(v));
    }
    if let Some(v) = views_of::<f32>(arrays)? {
        return Ok(Views::F32(v));
    }
    Err(PyTypeError::new_err(
        "arrays must share one dtype (all float32 or all float64)",
    ))
}

fn points<'a, T: Real>(v: &[View<'a, T>]) -> Result<Vec<Points<'a, T>>, CoreError> {
    v.iter().map(|&(name, s, n, d)| Points::new(name, s, n, d)).collect()
}

/// Runs `f` with the GIL released; Ctrl-C is checked between chunks of work (re-attaching
/// briefly), and a panic becomes a RuntimeError instead of reaching the user.
fn run<R: Send>(py: Python<'_>, f: impl FnOnce(&Ctl) -> Result<R, CoreError> + Send) -> PyResult<R> {
    let pending: Mutex<Option<PyErr>> = Mutex::new(None);
    let check = || -> Result<(), CoreError> {
        Python::attach(|py| py.check_signals()).map_err(|e| {
            *pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            CoreError::Interrupted
        })
    };
    let result = py.detach(|| {
        std::panic::catch_unwind(AssertUnwindSafe(|| {
            let ctl = Ctl::new(&check)?;
            f(&ctl)
        }))
        .unwrap_or_else(|payload| {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(CoreError::Internal(msg))
        })
    });
    match result {
        Ok(v) => Ok(v),
        Err(CoreError::Interrupted) => {
            let stored = pending.lock().unwrap_or_else(|p| p.into_inner()).take();
            Err(stored.unwrap_or_else(|| PyKeyboardInterrupt::new_err("interrupted")))
        }
        Err(e) => Err(e.into()),
    }
}

/// Dispatches a computation over the common dtype of `arrays`.
macro_rules! over_dtype_impl {
    ($py:expr, $arrays:expr, |$pts:ident, $ctl:ident| $body:expr) => {{
        match views($arrays)? {
            Views::F64(v) => run($py, |$ctl| {
                let $pts = points::<f64>(&v)?;
                $body
            }),
            Views::F32(v) => run($py, |$ctl| {
                let $pts = points::<f32>(&v)?;
                $body
            }),
        }
    }};
}
pub(crate) use over_dtype_impl as over_dtype;

#[pyfunction]
#[pyo3(signature = (x, y, k, estimator, metric, neighbors))]
fn mutual_info_ksg(
    py: Python<'_>,
    x: FloatArray<'_>,
    y: FloatArray<'_>,
    k: usize,
    estimator: KsgVariant,
    metric: Norm,
    neighbors: Method,
) -> PyResult<f64> {
    over_dtype!(py, &[("x", &x), ("y", &y)], |p, ctl| ksg::mutual_info_ksg(
        p[0], p[1], k, estimator, metric, neighbors, ctl
    ))
}

/// A new float64 matrix: the C-contiguous float64 matrix `a` with column j divided by
/// divisors[j] and, when `seed` is given, scales[j]·z added (z standard normal from `seed`): the
/// normalisation and jitter of docs/spec.md §1.4 in one parallel pass (see `preprocess::scaled_with_normals`).
#[pyfunction]
#[pyo3(signature = (a, divisors, scales, seed=None))]
fn standardize<'py>(
    py: Python<'py>,
    a: PyReadonlyArray2<'py, f64>,
    divisors: PyReadonlyArray1<'py, f64>,
    scales: PyReadonlyArray1<'py, f64>,
    seed: Option<u64>,
) -> PyResult<Bound<'py, numpy::PyArray2<f64>>> {
    let (n, d) = (a.shape()[0], a.shape()[1]);
    let data = a.as_slice().map_err(|_| PyValueError::new_err("a: not C-contiguous"))?;
    let divisors = divisors
        .as_slice()
        .map_err(|_| PyValueError::new_err("divisors: not contiguous"))?;
    let scales = scales
        .as_slice()
        .map_err(|_| PyValueError::new_err("scales: not contiguous"))?;
    if divisors.len() != d {
        return Err(PyValueError::new_err(format!(
            "divisors: {} for {d} columns",
            divisors.len()
        )));
    }
    let out = run(py, |ctl| {
        crate::preprocess::scaled_with_normals(data, divisors, scales, seed, ctl)
    })?;
    PyArray1::from_vec(py, out).reshape([n, d])
}

/// The population standard deviation of each column of the C-contiguous float64 matrix `a`, each
/// sum over the rows by the fixed pairwise tree of docs/spec.md §1.4 (see
/// `preprocess::population_std`).
#[pyfunction]
fn population_std<'py>(py: Python<'py>, a: PyReadonlyArray2<'py, f64>) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let d = a.shape()[1];
    let data = a.as_slice().map_err(|_| PyValueError::new_err("a: not C-contiguous"))?;
    let out = run(py, |ctl| crate::preprocess::population_std(data, d, ctl))?;
    Ok(PyArray1::from_vec(py, out))
}

#[pyfunction]
#[pyo3(signature = (x, y, z, k, metric, neighbors))]
fn conditional_mutual_info_ksg(
    py: Python<'_>,
    x: FloatArray<'_>,
    y: FloatArray<'_>,
    z: FloatArray<'_>,
    k: usize,
    metric: Norm,
    neighbors: Method,
) -> PyResult<f64> {
    over_dtype!(py, &[("x", &x), ("y", &y), ("z", &z)], |p, ctl| {
        ksg::conditional_mutual_info_ksg(p[0], p[1], p[2], k, metric, neighbors, ctl)
    })
}

#[pyfunction]
#[pyo3(signature = (x, k, metric, neighbors))]
fn entropy_kl(py: Python<'_>, x: FloatArray<'_>, k: usize, metric: Norm, neighbors: Method) -> PyResult<f64> {
    over_dtype!(py, &[("x", &x)], |p, ctl| ksg::entropy_kl(
        p[0], k, metric, neighbors, ctl
    ))
}

fn class_indices(labels: &PyReadonlyArray1<'_, i64>) -> PyResult<Vec<u32>> {
    let s = labels
        .as_slice()
        .map_err(|e| PyValueError::new_err(format!("labels: {e}")))?;
    s.iter()
        .map(|&c| u32::try_from(c).map_err(|_| PyValueError::new_err("labels: class indices must lie in 0..2^32")))
        .collect()
}

#[pyfunction]
#[pyo3(signature = (x, labels, k, metric, neighbors))]
fn mutual_info_ross(
    py: Python<'_>,
    x: FloatArray<'_>,
    labels: PyReadonlyArray1<'_, i64>,
    k: usize,
    metric: Norm,
    neighbors: Method,
) -> PyResult<f64> {
    let labels = class_indices(&labels)?;
    over_dtype!(py, &[("x", &x)], |p, ctl| ksg::mutual_info_ross(
        p[0], &labels, k, metric, neighbors, ctl
    ))
}

/// The neighbour engine itself (for tests and advanced use): k-th neighbour distances.
#[pyfunction]
#[pyo3(signature = (x, k, metric, neighbors))]
fn knn_kth_distances<'py>(
    py: Python<'py>,
    x: FloatArray<'py>,
    k: usize,
    metric: Norm,
    neighbors: Method,
) -> PyResult<Bound<'py, PyAny>> {
    fn go<T: Real>(p: Points<'_, T>, k: usize, metric: Norm, method: Method, ctl: &Ctl) -> Result<Vec<T>, CoreError> {
        match metric {
            Norm::Chebyshev => knn::build_index::<T, Chebyshev>(p, method, ctl)?.kth_distances(k, ctl),
            Norm::Euclidean => knn::build_index::<T, Euclidean>(p, method, ctl)?.kth_distances(k, ctl),
        }
    }
    match views(&[("x", &x)])? {
        Views::F64(v) => {
            let out = run(py, |ctl| go(points(&v)?[0], k, metric, neighbors, ctl))?;
            Ok(PyArray1::from_vec(py, out).into_any())
        }
        Views::F32(v) => {
            let out = run(py, |ctl| go(points(&v)?[0], k, metric, neighbors, ctl))?;
            Ok(PyArray1::from_vec(py, out).into_any())
        }
    }
}

/// The neighbour engine: k nearest neighbours (max-norm), ordered by (distance, index), as an n × k array.
#[pyfunction]
#[pyo3(signature = (x, k, neighbors))]
fn knn_indices<'py>(py: Python<'py>, x: FloatArray<'py>, k: usize, neighbors: Method) -> PyResult<Bound<'py, PyAny>> {
    let n = match &x {
        FloatArray::F64(a) => a.shape()[0],
        FloatArray::F32(a) => a.shape()[0],
    };
    let out = over_dtype!(py, &[("x", &x)], |p, ctl| knn::build_index::<_, Chebyshev>(
        p[0], neighbors, ctl
    )?
    .knn_indices(k, ctl))?;
    let arr = PyArray1::from_vec(py, out);
    Ok(arr.reshape([n, k])?.into_any())
}

/// The neighbour engine: #{j ≠ i : ‖x_j − x_i‖∞ < radii[i]} (strict) or ≤ radii[i].
#[pyfunction]
#[pyo3(signature = (x, radii, strict, neighbors))]
fn knn_count_within<'py>(
    py: Python<'py>,
    x: FloatArray<'py>,
    radii: &Bound<'py, PyAny>,
    strict: bool,
    neighbors: Method,
) -> PyResult<Bound<'py, PyArray1<u32>>> {
    fn go<T: Real>(
        p: Points<'_, T>,
        radii: &[T],
        strict: bool,
        method: Method,
        ctl: &Ctl,
    ) -> Result<Vec<u32>, CoreError> {
        if radii.len() != p.n() {
            return Err(CoreError::invalid(
                "radii",
                format!("has {} entries but x has {} rows", radii.len(), p.n()),
            ));
        }
        knn::build_index::<T, Chebyshev>(p, method, ctl)?.count_within(radii, strict, ctl)
    }
    let out = match views(&[("x", &x)])? {
        Views::F64(v) => {
            let r: PyReadonlyArray1<'_, f64> = radii.extract()?;
            let r = r.as_slice().map_err(|e| PyValueError::new_err(format!("radii: {e}")))?;
            run(py, |ctl| go(points(&v)?[0], r, strict, neighbors, ctl))?
        }
        Views::F32(v) => {
            let r: PyReadonlyArray1<'_, f32> = radii.extract()?;
            let r = r.as_slice().map_err(|e| PyValueError::new_err(format!("radii: {e}")))?;
            run(py, |ctl| go(points(&v)?[0], r, strict, neighbors, ctl))?
        }
    };
    Ok(PyArray1::from_vec(py, out))
}

#[pyfunction]
fn set_num_threads(n: usize) -> PyResult<()> {
    Ok(parallel::set_num_threads(n)?)
}

/// The memory the system reports available to this process in bytes (None where unknown), and the
/// size from which the core compares a request with it (docs/spec.md §0.5): Python-side buffers
/// whose size the user sets are judged by the same rule.
#[pyfunction]
fn available_memory() -> (Option<u64>, usize) {
    (crate::memory::available(), crate::memory::CHECK_FROM)
}

#[pyfunction]
fn get_num_threads() -> usize {
    parallel::get_num_threads()
}

/// Called in a forked child (os.register_at_fork): the parent's worker threads do not exist there.
#[pyfunction]
fn _forget_pool_after_fork() {
    parallel::forget_pool_after_fork();
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(mutual_info_ksg, m)?)?;
    m.add_function(wrap_pyfunction!(available_memory, m)?)?;
    m.add_function(wrap_pyfunction!(standardize, m)?)?;
    m.add_function(wrap_pyfunction!(population_std, m)?)?;
    m.add_function(wrap_pyfunction!(conditional_mutual_info_ksg, m)?)?;
    m.add_function(wrap_pyfunction!(entropy_kl, m)?)?;
    m.add_function(wrap_pyfunction!(mutual_info_ross, m)?)?;
    m.add_function(wrap_pyfunction!(knn_kth_distances, m)?)?;
    m.add_function(wrap_pyfunction!(knn_indices, m)?)?;
    m.add_function(wrap_pyfunction!(knn_count_within, m)?)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(_forget_pool_after_fork, m)?)?;
    binning::register(m)?;
    resample::register(m)?;
    geometry::register(m)?;
    gaussian::register(m)?;
    pairs::register(m)?;
    Ok(())
}
