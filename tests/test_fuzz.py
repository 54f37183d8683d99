"""A bounded fuzz of every public estimator: shapes, dtypes, memory layouts, ties and magnitudes
from 1e-300 to 1e300 (docs/spec.md §0.4, §0.8).

For any input the call either returns or raises ``ValueError``, ``TypeError`` or ``MemoryError``
(never another exception, never a crash); finite input gives a finite result; and the
scale-invariant quantities give the same value on x and on x·2^k. The number of examples is small
in the suite (a few seconds); ``REPCOMPRESS_FUZZ_EXAMPLES=2000`` runs a longer fuzz on demand.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import repcompress as rc

EXAMPLES = int(os.environ.get("REPCOMPRESS_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
ALLOWED = (ValueError, TypeError, MemoryError)


@st.composite
def samples(draw, n=None, d=None):
    """An (n, d) array of any dtype, layout and magnitude, often with ties."""
    n = draw(st.integers(1, 40)) if n is None else n
    d = draw(st.integers(1, 4)) if d is None else d
    seed = draw(st.integers(0, 2**32 - 1))
    kind = draw(st.sampled_from(["float64", "float32", "int64", "bool", "float64-huge-int"]))
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, d))
    if draw(st.booleans()):  # ties: quantised values, repeated rows
        base = np.round(base * draw(st.sampled_from([1, 2, 8])))
        if n > 2:
            base[: n // 3] = base[n // 3 : 2 * (n // 3)][: n // 3]
    if kind == "float64":
        a = base * 10.0 ** draw(st.integers(-300, 300))
    elif kind == "float32":
        a = (base * 10.0 ** draw(st.integers(-30, 30))).astype(np.float32)
    elif kind == "int64":
        a = (base * 1000).astype(np.int64)
    elif kind == "bool":
        a = base > 0
    else:  # integers beyond 2^53: converted with a warning
        a = (np.clip(base, -7.0, 7.0) * 2.0**60).astype(np.int64)
    layout = draw(st.sampled_from(["C", "F", "strided", "1-D"]))
    if layout == "F":
        a = np.asfortranarray(a)
    elif layout == "strided":
        a = np.repeat(a, 2, axis=1)[:, ::2]
    elif layout == "1-D":
        a = a[:, 0]
    return a


@st.composite
def problems(draw):
    n = draw(st.integers(1, 40))
    x = draw(samples(n=n))
    y = draw(samples(n=n))
    classes = draw(st.integers(1, 5))
    labels = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).integers(0, classes, n)
    if draw(st.booleans()):
        labels = labels * 1000 - 7  # any integer values
    return x, y, labels


def _stats(h, labels) -> rc.ClassStatistics:
    """Class statistics gathered in two batches, as in a training loop."""
    acc = rc.ClassStatistics()
    half = len(labels) // 2
    acc.update(h[:half] if half else h, labels[:half] if half else labels)
    if half:
        acc.update(h[half:], labels[half:])
    return acc


CALLS = {
    "mutual_info ksg1": lambda x, y, labels: rc.mutual_info(x, y, k=1),
    "mutual_info ksg2": lambda x, y, labels: rc.mutual_info(x, y, k=2, estimator="ksg2"),
    "mutual_info raw": lambda x, y, labels: rc.mutual_info(x, y, k=1, normalize=False, jitter=0),
    "conditional_mutual_info": lambda x, y, labels: rc.conditional_mutual_info(x, y, x, k=1),
    "entropy": lambda x, y, labels: rc.entropy(x, k=1),
    "entropy euclidean": lambda x, y, labels: rc.entropy(x, k=2, metric="euclidean"),
    "mutual_info_labels": lambda x, y, labels: rc.mutual_info_labels(x, labels, k=1),
    "mutual_info_given_labels": lambda x, y, labels: rc.mutual_info_given_labels(x, y, labels, k=1),
    "binned_entropy": lambda x, y, labels: rc.binned_entropy(x, n_bins=4),
    "binned_entropy quantile": lambda x, y, labels: rc.binned_entropy(x, n_bins=3, strategy="quantile"),
    "binned_mutual_info": lambda x, y, labels: rc.binned_mutual_info(x, y, n_bins=3),
    "information plane": lambda x, y, labels: rc.binning_information_plane(x, labels, n_bins=5).I_TY,
    "cdnv": lambda x, y, labels: rc.class_distance_normalized_variance(x, labels),
    "cdnv_matrix": lambda x, y, labels: rc.cdnv_matrix(x, labels)[0],
    "scatter_matrices": lambda x, y, labels: rc.scatter_matrices(x, labels).total,
    "trace_ratio": lambda x, y, labels: rc.trace_ratio(x, labels),
    "fisher_ratio": lambda x, y, labels: rc.fisher_ratio(x, labels, ridge=1.0),
    "neural_collapse": lambda x, y, labels: rc.neural_collapse(x, labels).nc1,
    "calinski_harabasz": lambda x, y, labels: rc.calinski_harabasz(x, labels),
    "davies_bouldin": lambda x, y, labels: rc.davies_bouldin(x, labels),
    "silhouette": lambda x, y, labels: rc.silhouette(x, labels),
    "twonn_dimension": lambda x, y, labels: rc.twonn_dimension(x),
    "effective_rank": lambda x, y, labels: rc.effective_rank(x),
    "ClassStatistics.cdnv": lambda x, y, labels: _stats(np.asarray(x), labels).cdnv(),
    "ClassStatistics.trace_ratio": lambda x, y, labels: _stats(np.asarray(x), labels).trace_ratio(),
    "ClassStatistics.nc1": lambda x, y, labels: _stats(np.asarray(x), labels).nc1(),
    "ClassStatistics.calinski_harabasz": lambda x, y, labels: _stats(np.asarray(x), labels).calinski_harabasz(),
    "gaussian_channel_mi": lambda x, y, labels: rc.gaussian_channel_mi(x, noise_variance=1.0, labels=labels).mi,
}


def _finite(value) -> bool:
    values = value if isinstance(value, tuple) else (value,)
    return all(np.isfinite(np.asarray(v, dtype=np.float64)).all() for v in values)


def _class_means(x, labels) -> np.ndarray:
    h = np.asarray(x, dtype=np.float64).reshape(len(labels), -1)
    return np.array([h[labels == c].mean(axis=0) for c in np.unique(labels)])


def _same(a: np.ndarray, b: np.ndarray, scale: float) -> bool:
    """Equal up to the rounding of a mean: numpy's pairwise sums and the core's sums in sample
    order can differ in the last bits, so means the core finds equal may differ here by a few
    ulp of the data's magnitude."""
    return bool((np.abs(a - b) <= 8 * np.finfo(np.float64).eps * scale).all())


def _some_class_means_coincide(x, labels) -> bool:
    means = _class_means(x, labels)
    scale = float(np.abs(means).max())
    return any(_same(means[a], means[b], scale) for a in range(len(means)) for b in range(a))


def _all_class_means_coincide(x, labels) -> bool:
    means = _class_means(x, labels)
    return _same(means, means[0], float(np.abs(means).max()))


def _constant(x, labels) -> bool:
    h = np.asarray(x, dtype=np.float64).reshape(len(labels), -1)
    return bool((h == h[0]).all())


# Non-finite results the specification documents, and the condition under which each may occur.
# docs/spec.md §4.1: coincident class means give +inf in ratios with their distance in the
# denominator (NaN when the numerator is 0 too): the CDNV pair values (§4.2) and the trace ratio,
# whose denominator tr(S_B) is 0 only when all class means coincide (§4.7). §1.8: the entropy is
# -inf when a k-th neighbour distance is 0; with jitter > 0 (as called here) only for constant data,
# which gets no jitter.
DOCUMENTED_NONFINITE = {
    "cdnv": _some_class_means_coincide,
    "cdnv_matrix": _some_class_means_coincide,
    "ClassStatistics.cdnv": _some_class_means_coincide,
    "ClassStatistics.trace_ratio": _all_class_means_coincide,
    "trace_ratio": _all_class_means_coincide,
    "entropy": _constant,
    "entropy euclidean": _constant,
}


@pytest.mark.parametrize("name", sorted(CALLS))
@FUZZ
@given(problem=problems())
def test_any_input_returns_a_finite_value_or_a_clear_error(name, problem):
    x, y, labels = problem
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = CALLS[name](x, y, labels)
        except ALLOWED as exc:
            message = str(exc)
            assert message and "internal error" not in message, (name, message)
            return
    documented = DOCUMENTED_NONFINITE.get(name)
    if documented is not None and documented(x, labels):
        return
    assert _finite(value), (name, value, x.dtype, np.abs(np.asarray(x, dtype=np.float64)).max())


SCALE_INVARIANT = {
    "mutual_info": lambda x, labels: rc.mutual_info(x[:, :1], x[:, 1:] + x[:, :1], k=2),
    "mutual_info_labels": lambda x, labels: rc.mutual_info_labels(x, labels, k=2),
    "cdnv": lambda x, labels: rc.class_distance_normalized_variance(x, labels),
    "trace_ratio": lambda x, labels: rc.trace_ratio(x, labels),
    "nc1": lambda x, labels: rc.neural_collapse(x, labels).nc1,
    "calinski_harabasz": lambda x, labels: rc.calinski_harabasz(x, labels),
    "davies_bouldin": lambda x, labels: rc.davies_bouldin(x, labels),
    "silhouette": lambda x, labels: rc.silhouette(x, labels),
    "twonn_dimension": lambda x, labels: rc.twonn_dimension(x),
    "effective_rank": lambda x, labels: rc.effective_rank(x),
}


@pytest.mark.parametrize("name", sorted(SCALE_INVARIANT))
@FUZZ
@given(
    seed=st.integers(0, 2**32 - 1),
    exponent=st.integers(-500, 500),
    n=st.integers(12, 60),
    d=st.integers(2, 4),
)
def test_scale_invariant_quantities_do_not_see_the_scale(name, seed, exponent, n, d):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    x = rng.standard_normal((3, d))[labels] + rng.standard_normal((n, d))
    scaled = np.ldexp(x, exponent)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = SCALE_INVARIANT[name](x, labels)
        b = SCALE_INVARIANT[name](scaled, labels)
    assert math.isfinite(a)
    assert b == pytest.approx(a, rel=1e-9, abs=1e-12), (name, exponent, a, b)
