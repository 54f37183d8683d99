"""repcompress: how neural-network representations compress, in information and in geometry.

Fast, exact estimators with a Rust core. All information quantities are in nats unless
``base=2`` is passed. Each function's docstring gives its formula and references; the
conventions and definitions are stated in docs/spec.md §0–§6.
"""

from __future__ import annotations

import os as _os
from importlib.metadata import version as _distribution_version

from . import _core, _threads
from ._threads import get_num_threads, set_num_threads
from .binning import InformationPlanePoint, binned_entropy, binned_mutual_info, binning_information_plane
from .gaussian_channel import (
    ChannelInformation,
    GaussianChannelMI,
    gaussian_channel_mi,
)
from .geometry import (
    ClassStatistics,
    NeuralCollapse,
    ScatterMatrices,
    calinski_harabasz,
    cdnv_matrix,
    class_distance_normalized_variance,
    davies_bouldin,
    effective_rank,
    fisher_ratio,
    neural_collapse,
    scatter_matrices,
    silhouette,
    silhouette_samples,
    trace_ratio,
    twonn_dimension,
)
from .knn_estimators import (
    conditional_mutual_info,
    entropy,
    mutual_info,
    mutual_info_given_labels,
    mutual_info_labels,
    mutual_info_matrix,
    mutual_info_mixed,
)
from .uncertainty import ConfidenceInterval, PermutationTest, confidence_interval, permutation_test

# One source of truth: Cargo.toml's version, which maturin writes into the package metadata.
__version__ = _distribution_version("repcompress")

__all__ = [
    "ChannelInformation",
    "ClassStatistics",
    "ConfidenceInterval",
    "GaussianChannelMI",
    "InformationPlanePoint",
    "NeuralCollapse",
    "PermutationTest",
    "ScatterMatrices",
    "binned_entropy",
    "binned_mutual_info",
    "binning_information_plane",
    "calinski_harabasz",
    "cdnv_matrix",
    "class_distance_normalized_variance",
    "conditional_mutual_info",
    "confidence_interval",
    "davies_bouldin",
    "effective_rank",
    "entropy",
    "fisher_ratio",
    "gaussian_channel_mi",
    "get_num_threads",
    "mutual_info",
    "mutual_info_given_labels",
    "mutual_info_labels",
    "mutual_info_matrix",
    "mutual_info_mixed",
    "neural_collapse",
    "permutation_test",
    "scatter_matrices",
    "set_num_threads",
    "silhouette",
    "silhouette_samples",
    "trace_ratio",
    "twonn_dimension",
]


# A forked child (multiprocessing, DataLoader workers) has none of the parent's worker threads:
# make it start a fresh pool instead of waiting on threads that do not exist.
if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(after_in_child=_core._forget_pool_after_fork)

# An oversized REPCOMPRESS_NUM_THREADS / RAYON_NUM_THREADS would start that many threads: clamp it.
_threads.check_environment()


def __getattr__(name: str) -> object:
    # repcompress.sweep(...) without importing pandas, Dask or pyarrow with the package.
    if name == "sweep":
        from .sweeps import sweep

        return sweep
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
