//! Information estimators: `ksg` holds the k-nearest-neighbour family (docs/spec.md §1); `binning` and
//! `plugin` the plug-in estimators on binned patterns (docs/spec.md §2), `binning` fitting the bins and
//! numbering the patterns, `plugin` counting their entropies; `gaussian` the Gaussian channel
//! (docs/spec.md §3); `resample` the parallel evaluation of an estimator on many resamples (docs/spec.md §5.1);
//! `mixed` the MI of discrete–continuous mixtures (docs/spec.md §1.14); `matrix` the KSG MI of all pairs of
//! variables (docs/spec.md §1.15).

pub mod binning;
pub mod gaussian;
pub mod ksg;
pub mod matrix;
pub mod mixed;
pub mod plugin;
pub mod resample;
