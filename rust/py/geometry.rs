//! Bindings of the geometric metrics (`crate::geometry`). Validation of labels and options lives
//! in `python/repcompress/geometry.py`; this layer borrows arrays, releases the GIL and maps errors.

use super::{class_indices, over_dtype, points, run, views, FloatArray, Views};
use crate::error::CoreError;
use crate::geometry::{clustering, collapse, intrinsic, ClassStats, Classes};
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;

/// Streaming class statistics (counts, means, M2 and optionally S_W), all in float64.
#[pyclass(name = "ClassStats", module = "repcompress._core")]
#[derive(Clone)]
pub struct PyClassStats {
    inner: ClassStats,
}

fn array2<'py>(py: Python<'py>, v: Vec<f64>, rows: usize, cols: usize) -> PyResult<Bound<'py, PyAny>> {
    Ok(PyArray1::from_vec(py, v).reshape([rows, cols])?.into_any())
}

#[pymethods]
impl PyClassStats {
    #[new]
    fn new(d: usize, second_moments: bool) -> PyResult<Self> {
        Ok(PyClassStats {
            inner: ClassStats::new(d, second_moments)?,
        })
    }

    #[staticmethod]
    fn from_data(
        py: Python<'_>,
        h: FloatArray<'_>,
        labels: PyReadonlyArray1<'_, i64>,
        n_classes: usize,
        second_moments: bool,
    ) -> PyResult<Self> {
        let codes = class_indices(&labels)?;
        let inner = over_dtype!(py, &[("h", &h)], |p, ctl| ClassStats::from_points(
            p[0],
            &codes,
            n_classes,
            second_moments,
            ctl
        ))?;
        Ok(PyClassStats { inner })
    }

    fn update(
        &mut self,
        py: Python<'_>,
        h: FloatArray<'_>,
        labels: PyReadonlyArray1<'_, i64>,
        n_classes: usize,
    ) -> PyResult<()> {
        let codes = class_indices(&labels)?;
        let inner = &mut self.inner;
        over_dtype!(py, &[("h", &h)], |p, ctl| inner.update(p[0], &codes, n_classes, ctl))
    }

    /// Adds `other`, whose class code c is this object's code `map[c]`.
    fn merge(&mut self, py: Python<'_>, other: &PyClassStats, map: Vec<u32>) -> PyResult<()> {
        let (inner, other) = (&mut self.inner, &other.inner);
        run(py, |_| inner.merge(other, &map))
    }

    fn copy(&self) -> Self {
        self.clone()
    }

    /// The statistics of the data times 2^e.
    fn scale_by_power_of_two(&mut self, e: i32) {
        self.inner.scale_by_power_of_two(e)
    }

    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    #[getter]
    fn n_samples(&self) -> u64 {
        self.inner.n_samples()
    }
    #[getter]
    fn has_second_moments(&self) -> bool {
        self.inner.has_second_moments()
    }
    /// Codes of the present classes, ascending.
    fn present(&self) -> Vec<usize> {
        self.inner.present()
    }
    fn counts(&self) -> Vec<u64> {
        self.inner.present().into_iter().map(|c| self.inner.count(c)).collect()
    }
    fn means<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let present = self.inner.present();
        let d = self.inner.dim();
        let mut v = crate::memory::with_capacity(present.len() * d, || {
            crate::memory::Need::new(
                "labels",
                format!("the means of {} classes", present.len()),
                "use fewer classes",
            )
        })?;
        for &c in &present {
            v.extend_from_slice(self.inner.mean(c));
        }
        array2(py, v, present.len(), d)
    }
    fn variances(&self, py: Python<'_>, ddof: u32) -> PyResult<Vec<f64>> {
        let inner = &self.inner;
        run(py, |_| inner.variances(ddof))
    }
    fn trace_within(&self, py: Python<'_>) -> PyResult<f64> {
        let inner = &self.inner;
        run(py, |_| Ok(inner.trace_within()))
    }
    fn trace_between(&self, py: Python<'_>) -> PyResult<f64> {
        let inner = &self.inner;
        run(py, |_| Ok(inner.trace_between()))
    }
    fn within<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let d = self.inner.dim();
        let w = self
            .inner
            .within()
            .ok_or(CoreError::invalid("second_moments", "S_W needs second_moments=True"))?;
        let mut copy = crate::memory::with_capacity(w.len(), || {
            crate::memory::Need::new(
                "h",
                format!("a copy of the {d} × {d} matrix S_W"),
                "use fewer dimensions",
            )
        })?;
        copy.extend_from_slice(w);
        array2(py, copy, d, d)
    }
    fn between<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (inner, d) = (&self.inner, self.inner.dim());
        array2(py, run(py, |_| inner.between())?, d, d)
    }
    fn between_unweighted<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (inner, d) = (&self.inner, self.inner.dim());
        array2(py, run(py, |_| inner.between_unweighted())?, d, d)
    }
    fn cdnv_matrix<'py>(&self, py: Python<'py>, ddof: u32) -> PyResult<Bound<'py, PyAny>> {
        let (inner, k) = (&self.inner, self.inner.present().len());
        array2(py, run(py, |ctl| collapse::cdnv_matrix(inner, ddof, ctl))?, k, k)
    }
    fn cdnv(&self, py: Python<'_>, ddof: u32) -> PyResult<f64> {
        let inner = &self.inner;
        run(py, |ctl| collapse::cdnv(inner, ddof, ctl))
    }
    fn trace_ratio(&self, py: Python<'_>) -> PyResult<f64> {
        let inner = &self.inner;
        run(py, |_| inner.trace_ratio())
    }
    fn fisher_ratio(&self, py: Python<'_>, ridge: f64) -> PyResult<f64> {
        let inner = &self.inner;
        run(py, |ctl| inner.fisher_ratio(ridge, ctl))
    }
    fn nc1(&self, py: Python<'_>) -> PyResult<f64> {
        let inner = &self.inner;
        run(py, |ctl| collapse::nc1(inner, ctl))
    }
    fn nc2(&self, py: Python<'_>) -> PyResult<(f64, f64, f64)> {
        let inner = &self.inner;
        run(py, |ctl| collapse::nc2(inner, ctl))
    }
    fn nc3(&self, py: Python<'_>, weights: PyReadonlyArray2<'_, f64>) -> PyResult<f64> {
        let w = weights
            .as_slice()
            .map_err(|e| CoreError::invalid("weights", e.to_string()))?;
        let inner = &self.inner;
        run(py, |_| collapse::nc3(inner, w))
    }
    fn calinski_harabasz(&self, py: Python<'_>) -> PyResult<f64> {
        let inner = &self.inner;
        run(py, |_| clustering::calinski_harabasz(inner))
    }
    fn davies_bouldin(&self, py: Python<'_>) -> PyResult<f64> {
        let inner = &self.inner;
        run(py, |ctl| clustering::davies_bouldin(inner, ctl))
    }
}

/// NC1 from the data (no d × d matrix): `stats` must be the statistics of exactly this data.
#[pyfunction]
fn nc1_from_data(
    py: Python<'_>,
    h: FloatArray<'_>,
    labels: PyReadonlyArray1<'_, i64>,
    n_classes: usize,
    stats: &PyClassStats,
) -> PyResult<f64> {
    let codes = class_indices(&labels)?;
    let st = &stats.inner;
    over_dtype!(py, &[("h", &h)], |p, ctl| {
        let classes = Classes::new(&codes, p[0].n(), n_classes)?;
        collapse::nc1_from_points(p[0], &classes, st, ctl)
    })
}

/// For every row, the index (into the present classes) of the nearest class mean.
#[pyfunction]
fn nearest_class_mean<'py>(
    py: Python<'py>,
    h: FloatArray<'py>,
    stats: &PyClassStats,
) -> PyResult<Bound<'py, PyArray1<u32>>> {
    let st = &stats.inner;
    let out = over_dtype!(py, &[("h", &h)], |p, ctl| collapse::nearest_class_mean(p[0], st, ctl))?;
    Ok(PyArray1::from_vec(py, out))
}

#[pyfunction]
fn silhouette_samples<'py>(
    py: Python<'py>,
    h: FloatArray<'py>,
    labels: PyReadonlyArray1<'py, i64>,
    n_classes: usize,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let codes = class_indices(&labels)?;
    let out = over_dtype!(py, &[("h", &h)], |p, ctl| {
        let classes = Classes::new(&codes, p[0].n(), n_classes)?;
        clustering::silhouette_samples(p[0], &classes, ctl)
    })?;
    Ok(PyArray1::from_vec(py, out))
}

/// (dimension, number of distinct points, number of ratios fitted).
#[pyfunction]
fn twonn(py: Python<'_>, h: FloatArray<'_>, discard_fraction: f64) -> PyResult<(f64, usize, usize)> {
    let r = over_dtype!(py, &[("h", &h)], |p, ctl| intrinsic::twonn(p[0], discard_fraction, ctl))?;
    Ok((r.dimension, r.n_distinct, r.n_fitted))
}

#[pyfunction]
fn singular_values<'py>(py: Python<'py>, h: FloatArray<'py>) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let out = over_dtype!(py, &[("h", &h)], |p, ctl| intrinsic::singular_values(p[0], ctl))?;
    Ok(PyArray1::from_vec(py, out))
}

#[pyfunction]
fn effective_rank(py: Python<'_>, h: FloatArray<'_>) -> PyResult<f64> {
    over_dtype!(py, &[("h", &h)], |p, ctl| intrinsic::effective_rank(p[0], ctl))
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyClassStats>()?;
    m.add_function(wrap_pyfunction!(nc1_from_data, m)?)?;
    m.add_function(wrap_pyfunction!(nearest_class_mean, m)?)?;
    m.add_function(wrap_pyfunction!(silhouette_samples, m)?)?;
    m.add_function(wrap_pyfunction!(twonn, m)?)?;
    m.add_function(wrap_pyfunction!(singular_values, m)?)?;
    m.add_function(wrap_pyfunction!(effective_rank, m)?)?;
    Ok(())
}
