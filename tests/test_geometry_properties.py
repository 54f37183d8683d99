"""Property tests (hypothesis) for the geometric metrics: S_T = S_W + S_B, invariances of CDNV and
NC1, relabelling and permutation invariance, and streaming = one-shot for any split."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference_geometry as ref
import repcompress as rc
from strategies import labels_for


@st.composite
def labelled_data(draw, min_n=8, max_n=60):
    """h (n, d) with class structure and arbitrary integer labels, every class of size >= 2."""
    n = draw(st.integers(min_n, max_n))
    d = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    labels = draw(labels_for(n, singletons=False))
    _, codes = np.unique(labels, return_inverse=True)
    k = codes.max() + 1
    # Make every class have >= 2 members (merge singletons into class 0's id).
    counts = np.bincount(codes, minlength=k)
    labels = np.where(counts[codes] < 2, labels[np.flatnonzero(counts[codes] >= 2)[0]], labels)
    centres = rng.normal(scale=draw(st.sampled_from((0.3, 3.0))), size=(k, d))
    scale = draw(st.sampled_from((1.0, 1e-3, 100.0)))
    h = (centres[codes] + rng.normal(size=(n, d))) * scale
    return h, labels


def finite_metrics(h, y):
    return rc.class_distance_normalized_variance(h, y), rc.neural_collapse(h, y).nc1


def random_rotation(rng, d):
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    return q * np.sign(np.diag(r))


@given(labelled_data())
def test_total_scatter_is_within_plus_between(data):
    h, y = data
    s = rc.scatter_matrices(h, y)
    scale = np.abs(s.total).max()
    np.testing.assert_allclose(s.within + s.between, s.total, rtol=0, atol=1e-11 * scale)
    np.testing.assert_allclose(s.within, ref.scatter(h, y)[0], rtol=0, atol=1e-11 * scale)


@given(labelled_data(), st.integers(0, 2**32 - 1))
def test_cdnv_and_nc1_invariant_to_similarity_transforms(data, seed):
    h, y = data
    if len(np.unique(y)) < 2:
        return
    rng = np.random.default_rng(seed)
    base = finite_metrics(h, y)
    d = h.shape[1]
    factor = float(rng.choice([1e-3, 0.5, 7.0, 1e3]))
    shift = rng.normal(scale=1e5 * factor * np.abs(h).max(), size=d)  # 1e5× the scaled data
    moved = (h @ random_rotation(rng, d)) * factor + shift
    # Rounding `moved` itself loses ~1e5·ε of the spread; E‖h‖² − ‖μ‖² would lose ~1e10·ε and fail;
    # the centred two-pass sums must lose no more than the input rounding does. That loss moves the
    # class means by ~1e5·ε·max|h|, so the squared distance between two means, hence CDNV and NC1,
    # changes by a relative ~2e5·ε·max|h| / ‖μ_a − μ_b‖: nearly coinciding means amplify it.
    means = ref.class_means(h, y)
    closest = min(np.linalg.norm(a - b) for a, b in itertools.combinations(means, 2))
    rel = 1e-8 * max(1.0, np.abs(h).max() / closest)
    for a, b in zip(finite_metrics(moved, y), base, strict=True):
        assert a == pytest.approx(b, rel=rel)


@given(labelled_data(), st.integers(0, 2**32 - 1))
def test_invariant_to_relabelling_and_sample_order(data, seed):
    h, y = data
    rng = np.random.default_rng(seed)
    ids = np.unique(y)
    new_ids = rng.choice(np.arange(-(10**6), 10**6), size=len(ids), replace=False)
    relabelled = new_ids[np.searchsorted(ids, y)]
    perm = rng.permutation(len(y))
    base = (*finite_metrics(h, y), rc.trace_ratio(h, y))
    for hh, yy in ((h, relabelled), (h[perm], y[perm])):
        got = (*finite_metrics(hh, yy), rc.trace_ratio(hh, yy))
        for a, b in zip(got, base, strict=True):
            assert a == pytest.approx(b, rel=1e-10)


@given(labelled_data(), st.lists(st.integers(0, 60), max_size=5), st.booleans())
@settings(max_examples=40)
def test_streaming_equals_one_shot(data, cuts, via_merge):
    h, y = data
    bounds = [0, *sorted(c % (len(y) + 1) for c in cuts), len(y)]
    acc = rc.ClassStatistics()
    for lo, hi in itertools.pairwise(bounds):
        if hi <= lo:
            continue
        if via_merge:
            part = rc.ClassStatistics().update(h[lo:hi], y[lo:hi])
            acc.merge(part)
        else:
            acc.update(h[lo:hi], y[lo:hi])
    assert acc.n_samples == len(y)
    np.testing.assert_array_equal(acc.classes, np.unique(y))
    assert acc.cdnv() == pytest.approx(rc.class_distance_normalized_variance(h, y), rel=1e-9)
    assert acc.nc1() == pytest.approx(rc.neural_collapse(h, y).nc1, rel=1e-8)
    assert acc.trace_ratio() == pytest.approx(rc.trace_ratio(h, y), rel=1e-9)
    if len(np.unique(y)) < len(y):
        assert acc.calinski_harabasz() == pytest.approx(rc.calinski_harabasz(h, y), rel=1e-9)
    nc = rc.neural_collapse(h, y)
    for a, b in zip(acc.nc2(), (nc.nc2_equinorm, nc.nc2_equiangular, nc.nc2_max_angle), strict=True):
        assert a == pytest.approx(b, rel=1e-8, abs=1e-12)
    s_one, s_acc = rc.scatter_matrices(h, y), acc.scatter_matrices()
    scale = np.abs(s_one.total).max()
    np.testing.assert_allclose(s_acc.within, s_one.within, rtol=0, atol=1e-11 * scale)
    np.testing.assert_allclose(s_acc.means, s_one.means, rtol=0, atol=1e-12 * np.abs(h).max())
    m1, ids1 = acc.cdnv_matrix()
    m2, ids2 = rc.cdnv_matrix(h, y)
    np.testing.assert_array_equal(ids1, ids2)
    np.testing.assert_allclose(m1, m2, rtol=1e-9)
