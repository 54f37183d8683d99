//! Bindings of the Gaussian-channel estimator (docs/spec.md §3). The Python front door
//! (`repcompress.gaussian_channel_mi`) validates, floors the variances and draws the noise; this
//! layer borrows the float64 arrays, releases the GIL and returns the numbers as a typed, frozen
//! result ([`PyChannelMi`]).

use super::run;
use crate::choice::Choice;
use crate::error::CoreError;
use crate::info::gaussian::{self, Channel, ChannelMi, Estimate, Noise, NoiseKind, Request};
use numpy::{PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

fn slice2<'a>(arg: &'static str, a: &'a PyReadonlyArray2<'_, f64>) -> PyResult<(&'a [f64], usize, usize)> {
    if !a.is_c_contiguous() {
        return Err(PyValueError::new_err(format!(
            "{arg}: the core needs a C-contiguous array"
        )));
    }
    let s = a.as_slice().map_err(|e| PyValueError::new_err(format!("{arg}: {e}")))?;
    Ok((s, a.shape()[0], a.shape()[1]))
}

/// One information quantity of the channel, in nats: the paired Monte Carlo estimate and its
/// standard error, the pairwise bounds (KL: upper, Bhattacharyya: lower), the maximum-entropy bound
/// and the ceiling (None: not computed).
#[pyclass(frozen, name = "ChannelEstimate", module = "repcompress._core")]
pub(super) struct PyChannelEstimate {
    inner: Estimate,
}

#[pymethods]
impl PyChannelEstimate {
    #[getter]
    fn mi(&self) -> Option<f64> {
        self.inner.mc.map(|m| m.mi)
    }
    #[getter]
    fn stderr(&self) -> Option<f64> {
        self.inner.mc.map(|m| m.stderr)
    }
    #[getter]
    fn kl(&self) -> Option<f64> {
        self.inner.kl
    }
    #[getter]
    fn bd(&self) -> Option<f64> {
        self.inner.bd
    }
    #[getter]
    fn maxent(&self) -> Option<f64> {
        self.inner.maxent
    }
    #[getter]
    fn ceiling(&self) -> f64 {
        self.inner.ceiling
    }
}

/// Mutual information through the Gaussian channel, in nats: h(Z|X), I(X;Z) (`total`), with labels
/// I(X;Z|Y) (`given_labels`) and the Monte Carlo I(Y;Z) with its standard error.
#[pyclass(frozen, name = "ChannelMI", module = "repcompress._core")]
pub(super) struct PyChannelMi {
    inner: ChannelMi,
}

#[pymethods]
impl PyChannelMi {
    #[getter]
    fn h_z_given_x(&self) -> f64 {
        self.inner.h_z_given_x
    }
    #[getter]
    fn total(&self) -> PyChannelEstimate {
        PyChannelEstimate {
            inner: self.inner.total,
        }
    }
    #[getter]
    fn given_labels(&self) -> Option<PyChannelEstimate> {
        self.inner.given_labels.map(|inner| PyChannelEstimate { inner })
    }
    #[getter]
    fn labels_mi(&self) -> Option<f64> {
        self.inner.labels_mc.map(|m| m.mi)
    }
    #[getter]
    fn labels_stderr(&self) -> Option<f64> {
        self.inner.labels_mc.map(|m| m.stderr)
    }
}

/// `noise`: shared (variances is 1 × d) or per-sample (N × d). `draws`: (n_draws·N) × d
/// standard normals, row m·N + i for sample i, or None for no Monte Carlo. `labels`: codes 0..C−1.
#[pyfunction]
#[pyo3(signature = (means, variances, noise, draws, n_draws, bounds, labels=None))]
#[allow(clippy::too_many_arguments)]
fn gaussian_channel_mi<'py>(
    py: Python<'py>,
    means: PyReadonlyArray2<'py, f64>,
    variances: PyReadonlyArray2<'py, f64>,
    noise: NoiseKind,
    draws: Option<PyReadonlyArray2<'py, f64>>,
    n_draws: usize,
    bounds: bool,
    labels: Option<PyReadonlyArray1<'py, i64>>,
) -> PyResult<PyChannelMi> {
    let (channel, draws, labels) = channel_arguments(&means, &variances, noise, &draws, &labels)?;
    let request = Request {
        draws,
        n_draws,
        bounds,
        labels: labels.as_deref(),
    };
    let r = run(py, |ctl| -> Result<_, CoreError> {
        gaussian::gaussian_channel_mi(&channel, &request, ctl)
    })?;
    Ok(PyChannelMi { inner: r })
}

/// The channel followed by a linear map: `transform` is A (ρ × d, full row rank; the Python layer
/// reduces W to it), the rest as for `gaussian_channel_mi` (draws are T's, (n_draws·N) × d).
/// h(Z|X) is in the coordinates of A·T.
#[pyfunction]
#[pyo3(signature = (means, variances, noise, transform, draws, n_draws, bounds, labels=None))]
#[allow(clippy::too_many_arguments)]
fn gaussian_channel_mi_linear<'py>(
    py: Python<'py>,
    means: PyReadonlyArray2<'py, f64>,
    variances: PyReadonlyArray2<'py, f64>,
    noise: NoiseKind,
    transform: PyReadonlyArray2<'py, f64>,
    draws: Option<PyReadonlyArray2<'py, f64>>,
    n_draws: usize,
    bounds: bool,
    labels: Option<PyReadonlyArray1<'py, i64>>,
) -> PyResult<PyChannelMi> {
    let (channel, draws, labels) = channel_arguments(&means, &variances, noise, &draws, &labels)?;
    let (a, rho, ad) = slice2("transform", &transform)?;
    if ad != channel.d {
        return Err(PyValueError::new_err(format!(
            "transform: has {ad} columns but means has {}",
            channel.d
        )));
    }
    let request = Request {
        draws,
        n_draws,
        bounds,
        labels: labels.as_deref(),
    };
    let r = run(py, |ctl| -> Result<_, CoreError> {
        gaussian::linear_channel_mi(&channel, a, rho, &request, ctl)
    })?;
    Ok(PyChannelMi { inner: r })
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyChannelEstimate>()?;
    m.add_class::<PyChannelMi>()?;
    m.add_function(wrap_pyfunction!(gaussian_channel_mi, m)?)?;
    m.add_function(wrap_pyfunction!(gaussian_channel_mi_linear, m)?)?;
    Ok(())
}

/// The channel, the draws and the class indices of a call, checked: what every binding of the
/// channel takes apart from its own options.
#[allow(clippy::type_complexity)]
fn channel_arguments<'a>(
    means: &'a PyReadonlyArray2<'_, f64>,
    variances: &'a PyReadonlyArray2<'_, f64>,
    noise: NoiseKind,
    draws: &'a Option<PyReadonlyArray2<'_, f64>>,
    labels: &Option<PyReadonlyArray1<'_, i64>>,
) -> PyResult<(Channel<'a>, Option<&'a [f64]>, Option<Vec<u32>>)> {
    let (mu, n, d) = slice2("means", means)?;
    let (var, vn, vd) = slice2("variances", variances)?;
    if vd != d {
        return Err(PyValueError::new_err(format!(
            "variances: has {vd} columns but means has {d}"
        )));
    }
    let noise = match (noise, vn) {
        (NoiseKind::Shared, 1) => Noise::Shared(var),
        (NoiseKind::PerSample, m) if m == n => Noise::PerSample(var),
        _ => {
            return Err(PyValueError::new_err(format!(
                "noise: {:?} does not fit variances of shape ({vn}, {vd})",
                noise.name()
            )))
        }
    };
    let draws = match draws {
        Some(a) => Some(slice2("draws", a)?.0),
        None => None,
    };
    let labels = match labels {
        Some(l) => Some(super::class_indices(l)?),
        None => None,
    };
    Ok((Channel { means: mu, n, d, noise }, draws, labels))
}
