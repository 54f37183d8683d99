"""Finite input gives the right answer, or a clear warning: the silhouette does not depend on translation
(docs/spec.md §4.9), and integers that float64 rounds are announced (docs/spec.md §0.2)."""

import math
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

import repcompress as rc

REL = 1e-9


def close(a, b, rel=REL):
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


def class_data(seed=1, n=300, d=6, k=4):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    return rng.standard_normal((k, d))[labels] * 2 + rng.standard_normal((n, d)), labels


# ------------------------------------------------------------------------------------- geometry


@pytest.mark.parametrize("offset", (1e8, 1e15))
def test_silhouette_does_not_depend_on_translation(offset):
    # Values are multiples of 1/8 below 2^7, so h + offset is exact: the same points, moved.
    h, labels = class_data()
    h = np.round(h * 8) / 8
    moved = h + offset
    assert np.array_equal(moved - offset, h)
    assert close(rc.silhouette(moved, labels), rc.silhouette(h, labels), rel=1e-12)
    np.testing.assert_allclose(rc.silhouette_samples(moved, labels), rc.silhouette_samples(h, labels), atol=1e-12)
    # Still scikit-learn's value on data without an offset.
    assert rc.silhouette(h, labels) == pytest.approx(skm.silhouette_score(h, labels), rel=1e-10)


# ------------------------------------------------------------------------------------- integers


def test_integers_rounded_to_float64_are_announced():
    big = np.array([2**60 + 1, 2**60 + 3, 2**60 + 5, 2**60 + 7, 1, 2], dtype=np.int64)
    labels = np.array([0, 0, 0, 1, 1, 1])
    for call, name in (
        (lambda: rc.entropy(big), "x"),
        (lambda: rc.class_distance_normalized_variance(big, labels), "h"),
        (lambda: rc.binned_entropy(big.astype(np.uint64), n_bins=3), "z"),
        (lambda: rc.mutual_info(big.astype(float), big, k=2), "y"),
    ):
        with pytest.warns(UserWarning, match=f"^{name}: integer values beyond ±2\\^53 are rounded") as record:
            try:
                call()
            except ValueError:
                pass
        assert record[0].filename == __file__  # points at the caller
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rc.entropy(np.array([2**53, -(2**53), 0, 5]), jitter=0)  # exact: no warning
        rc.entropy(np.array([True, False, True, False]), jitter=1e-10)
