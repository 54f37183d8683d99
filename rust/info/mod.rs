//! Information estimators: `ksg` holds the k-nearest-neighbour family (SPEC §1), `binning` the
//! plug-in estimators on binned patterns (SPEC §2), `resample` the parallel evaluation of an
//! estimator on many resamples (SPEC §5).

pub mod binning;
pub mod gaussian;
pub mod ksg;
pub mod resample;
