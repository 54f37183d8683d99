//! Bindings of the Gaussian-channel estimator (SPEC §3). The Python front door
//! (`repcompress.gaussian_channel_mi`) validates, floors the variances and draws the noise; this
//! layer borrows the float64 arrays, releases the GIL and returns the numbers as a dict.

use super::run;
use crate::error::CoreError;
use crate::info::gaussian::{self, Channel, Estimate, Noise, Request};
use numpy::{PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

fn slice2<'a>(arg: &'static str, a: &'a PyReadonlyArray2<'_, f64>) -> PyResult<(&'a [f64], usize, usize)> {
    if !a.is_c_contiguous() {
        return Err(PyValueError::new_err(format!(
            "{arg}: the core needs a C-contiguous array"
        )));
    }
    let s = a.as_slice().map_err(|e| PyValueError::new_err(format!("{arg}: {e}")))?;
    Ok((s, a.shape()[0], a.shape()[1]))
}

fn put_estimate(dict: &Bound<'_, PyDict>, prefix: &str, e: &Estimate) -> PyResult<()> {
    dict.set_item(format!("{prefix}mi"), e.mc.map(|m| m.mi))?;
    dict.set_item(format!("{prefix}stderr"), e.mc.map(|m| m.stderr))?;
    dict.set_item(format!("{prefix}kl"), e.kl)?;
    dict.set_item(format!("{prefix}bd"), e.bd)?;
    dict.set_item(format!("{prefix}maxent"), e.maxent)?;
    dict.set_item(format!("{prefix}ceiling"), e.ceiling)?;
    Ok(())
}

/// `noise`: "shared" (variances is 1 × d) or "per_sample" (N × d). `draws`: (n_draws·N) × d
/// standard normals, row m·N + i for sample i, or None for no Monte Carlo. `labels`: codes 0..C−1.
#[pyfunction]
#[pyo3(signature = (means, variances, noise, draws, n_draws, bounds, labels=None))]
#[allow(clippy::too_many_arguments)]
fn gaussian_channel_mi<'py>(
    py: Python<'py>,
    means: PyReadonlyArray2<'py, f64>,
    variances: PyReadonlyArray2<'py, f64>,
    noise: &str,
    draws: Option<PyReadonlyArray2<'py, f64>>,
    n_draws: usize,
    bounds: bool,
    labels: Option<PyReadonlyArray1<'py, i64>>,
) -> PyResult<Bound<'py, PyDict>> {
    let (mu, n, d) = slice2("means", &means)?;
    let (var, vn, vd) = slice2("variances", &variances)?;
    if vd != d {
        return Err(PyValueError::new_err(format!(
            "variances: has {vd} columns but means has {d}"
        )));
    }
    let noise = match (noise, vn) {
        ("shared", 1) => Noise::Shared(var),
        ("per_sample", m) if m == n => Noise::PerSample(var),
        _ => {
            return Err(PyValueError::new_err(format!(
                "noise: {noise:?} does not fit variances of shape ({vn}, {vd})"
            )))
        }
    };
    let draws = match &draws {
        Some(a) => Some(slice2("draws", a)?.0),
        None => None,
    };
    let labels = match &labels {
        Some(l) => Some(super::class_indices(l)?),
        None => None,
    };
    let channel = Channel { means: mu, n, d, noise };
    let request = Request {
        draws,
        n_draws,
        bounds,
        labels: labels.as_deref(),
    };
    let r = run(py, |ctl| -> Result<_, CoreError> {
        gaussian::gaussian_channel_mi(&channel, &request, ctl)
    })?;
    let dict = PyDict::new(py);
    dict.set_item("h_z_given_x", r.h_z_given_x)?;
    put_estimate(&dict, "", &r.total)?;
    if let Some(c) = &r.given_labels {
        put_estimate(&dict, "given_labels_", c)?;
    }
    if let Some(y) = r.labels_mc {
        dict.set_item("labels_mi", y.mi)?;
        dict.set_item("labels_stderr", y.stderr)?;
    }
    Ok(dict)
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(gaussian_channel_mi, m)?)?;
    Ok(())
}
