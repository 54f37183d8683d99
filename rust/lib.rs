//! repcompress core: estimators of information and geometric compression of representations.
//!
//! The core is pure Rust (no Python): functions over slices that return `Result<_, CoreError>`.
//! The PyO3 binding layer lives in `py/` behind the `python` cargo feature.

pub mod block_cache;
pub mod choice;
pub mod error;
pub mod factorize;
pub mod geometry;
pub mod info;
pub mod knn;
pub mod linalg;
pub mod memory;
pub mod parallel;
pub mod points;
pub mod preprocess;
pub mod random;
pub mod simd;
pub mod special;

#[cfg(feature = "python")]
mod py;

/// The extension's allocator: the system's, with large freed blocks kept for the next call.
#[cfg(feature = "python")]
#[global_allocator]
static GLOBAL: block_cache::BlockCache = block_cache::BlockCache::new();

pub use error::CoreError;
