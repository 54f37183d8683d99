//! Information estimators. `ksg` holds the k-nearest-neighbour family (SPEC §1).

pub mod ksg;
pub mod gaussian;
