//! Information estimators: `ksg` holds the k-nearest-neighbour family (SPEC §1); `binning` and
//! `plugin` the plug-in estimators on binned patterns (SPEC §2), `binning` fitting the bins and
//! numbering the patterns, `plugin` counting their entropies; `gaussian` the Gaussian channel
//! (SPEC §3); `resample` the parallel evaluation of an estimator on many resamples (SPEC §5).

pub mod binning;
pub mod gaussian;
pub mod ksg;
pub mod plugin;
pub mod resample;
