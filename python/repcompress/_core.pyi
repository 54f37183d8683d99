"""Type stubs of the Rust extension. The documented API is the `repcompress` package itself."""

from typing import Literal, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "ChannelEstimate",
    "ChannelMI",
    "ClassStats",
    "Draws",
    "_forget_pool_after_fork",
    "available_memory",
    "conditional_mutual_info_ksg",
    "effective_rank",
    "entropy_kl",
    "factorize_binned",
    "factorize_integers",
    "factorize_pairs",
    "gaussian_channel_mi",
    "gaussian_channel_mi_linear",
    "get_num_threads",
    "knn_count_within",
    "knn_indices",
    "knn_kth_distances",
    "knn_resamples",
    "mixed_counts",
    "mutual_info_given_labels_ksg",
    "mutual_info_ksg",
    "mutual_info_mixed",
    "mutual_info_pairs",
    "mutual_info_ross",
    "nc1_from_data",
    "nearest_class_mean",
    "plugin_entropy_resamples",
    "plugin_mi_resamples",
    "population_std",
    "set_num_threads",
    "silhouette_samples",
    "singular_values",
    "standardize",
    "twonn",
]

_Float = npt.NDArray[np.float32] | npt.NDArray[np.float64]
_F64 = npt.NDArray[np.float64]
_Codes = npt.NDArray[np.int64]  # class codes 0..n_classes-1
_Ids = npt.NDArray[np.uint32]

# The option strings (each parsed once into the core's enum; any other value is a ValueError).
_Neighbors = Literal["auto", "kdtree", "brute"]
_KsgVariant = Literal["ksg1", "ksg2"]
_EntropyMetric = Literal["chebyshev", "euclidean"]
_Scheme = Literal["bootstrap", "subsample", "permutation"]
_Strategy = Literal["uniform", "quantile"]
_Noise = Literal["shared", "per_sample"]
_KnnEstimator = Literal[
    "mutual_info",
    "conditional_mutual_info",
    "entropy",
    "mutual_info_labels",
    "mutual_info_given_labels",
    "mutual_info_mixed",
]

# k-NN estimators and the neighbour engine (rust/py/mod.rs).
def mutual_info_ksg(
    x: _Float, y: _Float, k: int, estimator: _KsgVariant, metric: _EntropyMetric, neighbors: _Neighbors
) -> float: ...
def standardize(a: _F64, divisors: _F64, scales: _F64, seed: int | None = None) -> _F64: ...
def population_std(a: _F64) -> _F64: ...
def conditional_mutual_info_ksg(
    x: _Float, y: _Float, z: _Float, k: int, metric: _EntropyMetric, neighbors: _Neighbors
) -> float: ...
def entropy_kl(x: _Float, k: int, metric: _EntropyMetric, neighbors: _Neighbors) -> float: ...
def mutual_info_ross(x: _Float, labels: _Codes, k: int, metric: _EntropyMetric, neighbors: _Neighbors) -> float: ...
def mutual_info_mixed(x: _Float, y: _Float, k: int, neighbors: _Neighbors) -> float: ...
def mixed_counts(x: _Float, y: _Float, k: int, neighbors: _Neighbors) -> tuple[list[int], list[int], list[int]]: ...
def mutual_info_pairs(
    xs: list[_Float],
    ys: list[_Float],
    first: _Codes,
    second: _Codes,
    k: int,
    estimator: _KsgVariant,
    metric: _EntropyMetric,
    neighbors: _Neighbors,
) -> list[float]: ...
def knn_kth_distances(x: _Float, k: int, metric: _EntropyMetric, neighbors: _Neighbors) -> _Float: ...
def knn_indices(x: _Float, k: int, neighbors: _Neighbors) -> _Ids: ...
def knn_count_within(x: _Float, radii: _Float, strict: bool, neighbors: _Neighbors) -> _Ids: ...
def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def available_memory() -> tuple[int | None, int]: ...
def _forget_pool_after_fork() -> None: ...

# Binned (plug-in) estimators and the row factorisation (rust/py/binning.rs).
def factorize_binned(
    x: _Float, strategy: _Strategy, n_bins: int, bin_size: float | None, per_unit: bool
) -> tuple[_Ids, int, _F64]: ...
def factorize_integers(x: npt.NDArray[np.int64]) -> tuple[_Ids, int]: ...
def factorize_pairs(ids_a: _Ids, n_a: int, ids_b: _Ids, n_b: int) -> tuple[_Ids, int]: ...
def plugin_entropy_resamples(
    tables: list[tuple[_Ids, int]], draws: Draws | None = None, start: int = 0, count: int = 1
) -> _F64: ...
def plugin_mi_resamples(
    ids_a: _Ids,
    n_a: int,
    ids_b: _Ids,
    n_b: int,
    draws: Draws | None = None,
    start: int = 0,
    count: int = 1,
) -> _F64: ...

# Resampling (rust/py/resample.rs).
@final
class Draws:
    """The resamples of one call; resample b draws its rows with a generator seeded from (seed, b).
    `scheme`: "bootstrap", "subsample" (half-samples) or "permutation" (within `strata` if given)."""

    def __new__(cls, scheme: _Scheme, n: int, seed: int, strata: _Codes | None = None) -> Draws: ...
    @property
    def n(self) -> int: ...
    @property
    def m(self) -> int: ...
    def rows(self, start: int, count: int) -> npt.NDArray[np.int64]: ...

def knn_resamples(
    estimator: _KnnEstimator,
    option: str,  # the KSG variant of the KSG mutual informations; ignored by the others
    metric: _EntropyMetric,  # the norm inside each variable
    arrays: list[_Float],
    labels: _Codes | None,
    draws: Draws,
    start: int,
    count: int,
    picked: list[bool],
    k: int,
    neighbors: _Neighbors,
) -> list[float]: ...
def mutual_info_given_labels_ksg(
    x: _Float,
    y: _Float,
    labels: _Codes,
    k: int,
    estimator: _KsgVariant,
    metric: _EntropyMetric,
    neighbors: _Neighbors,
) -> tuple[float, list[tuple[int, int]]]: ...

# Geometry (rust/py/geometry.rs).
@final
class ClassStats:
    def __new__(cls, d: int, second_moments: bool) -> ClassStats: ...
    @staticmethod
    def from_data(h: _Float, labels: _Codes, n_classes: int, second_moments: bool) -> ClassStats: ...
    def update(self, h: _Float, labels: _Codes, n_classes: int) -> None: ...
    def merge(self, other: ClassStats, map: list[int]) -> None: ...
    def copy(self) -> ClassStats: ...
    def scale_by_power_of_two(self, e: int) -> None: ...
    @property
    def dim(self) -> int: ...
    @property
    def n_samples(self) -> int: ...
    @property
    def has_second_moments(self) -> bool: ...
    def present(self) -> list[int]: ...
    def counts(self) -> list[int]: ...
    def means(self) -> _F64: ...
    def variances(self, ddof: int) -> list[float]: ...
    def trace_within(self) -> float: ...
    def trace_between(self) -> float: ...
    def within(self) -> _F64: ...
    def between(self) -> _F64: ...
    def between_unweighted(self) -> _F64: ...
    def cdnv_matrix(self, ddof: int) -> _F64: ...
    def cdnv(self, ddof: int) -> float: ...
    def trace_ratio(self) -> float: ...
    def fisher_ratio(self, ridge: float) -> float: ...
    def nc1(self) -> float: ...
    def nc2(self) -> tuple[float, float, float]: ...
    def nc3(self, weights: _F64) -> float: ...
    def calinski_harabasz(self) -> float: ...
    def davies_bouldin(self) -> float: ...

def nc1_from_data(h: _Float, labels: _Codes, n_classes: int, stats: ClassStats) -> float: ...
def nearest_class_mean(h: _Float, stats: ClassStats) -> _Ids: ...
def silhouette_samples(h: _Float, labels: _Codes, n_classes: int) -> _F64: ...
def twonn(h: _Float, discard_fraction: float) -> tuple[float, int, int]: ...
def singular_values(h: _Float) -> _F64: ...
def effective_rank(h: _Float) -> float: ...

# Gaussian channel (rust/py/gaussian.rs). Results in nats; None: not computed.
@final
class ChannelEstimate:
    """One information quantity: Monte Carlo estimate and standard error, pairwise bounds (kl:
    upper, bd: lower), maximum-entropy bound and ceiling."""

    @property
    def mi(self) -> float | None: ...
    @property
    def stderr(self) -> float | None: ...
    @property
    def kl(self) -> float | None: ...
    @property
    def bd(self) -> float | None: ...
    @property
    def maxent(self) -> float | None: ...
    @property
    def ceiling(self) -> float: ...

@final
class ChannelMI:
    """h(Z|X), I(X;Z) (`total`), I(X;Z|Y) (`given_labels`, with labels) and the Monte Carlo
    I(Y;Z) (`labels_mi` ± `labels_stderr`, with labels and draws)."""

    @property
    def h_z_given_x(self) -> float: ...
    @property
    def total(self) -> ChannelEstimate: ...
    @property
    def given_labels(self) -> ChannelEstimate | None: ...
    @property
    def labels_mi(self) -> float | None: ...
    @property
    def labels_stderr(self) -> float | None: ...

def gaussian_channel_mi(
    means: _F64,
    variances: _F64,
    noise: _Noise,
    draws: _F64 | None,
    n_draws: int,
    bounds: bool,
    labels: _Codes | None = None,
) -> ChannelMI: ...
def gaussian_channel_mi_linear(
    means: _F64,
    variances: _F64,
    noise: _Noise,
    transform: _F64,
    draws: _F64 | None,
    n_draws: int,
    bounds: bool,
    labels: _Codes | None = None,
) -> ChannelMI: ...
