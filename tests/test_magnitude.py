"""Finite input gives the right answer at any magnitude: the silhouette does not depend on translation
(docs/spec.md §4.9)."""

import math

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
