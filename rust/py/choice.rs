//! The core's option enums from Python strings: every [`Choice`] converts from a `str` argument
//! through [`Choice::parse`] (the one place a name is compared), so a `#[pyfunction]` takes the
//! enum itself. A bad name is a ValueError, a value that is not a `str` a TypeError; both name the
//! argument and list the valid names.

use crate::choice::Choice;
use crate::info::binning::Strategy;
use crate::info::gaussian::NoiseKind;
use crate::info::ksg::{KsgVariant, Norm};
use crate::info::resample::{KnnEstimatorKind, Scheme};
use crate::knn::Method;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyString;

fn extract_choice<C: Choice>(obj: Borrowed<'_, '_, PyAny>) -> PyResult<C> {
    let Ok(name) = obj.cast::<PyString>() else {
        return Err(PyTypeError::new_err(format!(
            "{}: expected a str, one of {}; got {}",
            C::ARG,
            C::listed(),
            obj.get_type().name()?
        )));
    };
    Ok(C::parse(&name.to_cow()?)?)
}

macro_rules! from_python_by_name {
    ($($t:ty),* $(,)?) => {$(
        impl<'a, 'py> FromPyObject<'a, 'py> for $t {
            type Error = PyErr;

            fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
                extract_choice(obj)
            }
        }
    )*};
}

from_python_by_name!(Method, KsgVariant, Norm, Scheme, KnnEstimatorKind, Strategy, NoiseKind);
