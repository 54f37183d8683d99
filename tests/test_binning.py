"""Binned (plug-in) estimators: equality with the numpy reference, bounds and invariances (docs/spec.md §2)."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import reference_binning as ref
import repcompress as rc
from repcompress.binning import bin_patterns
from strategies import labels_for, tied_arrays

BINNINGS = [
    dict(strategy="uniform", n_bins=1),
    dict(strategy="uniform", n_bins=3),
    dict(strategy="uniform", n_bins=30),
    dict(strategy="uniform", n_bins=5, range="unit"),
    dict(strategy="uniform", bin_size=0.25),
    dict(strategy="quantile", n_bins=4),
    dict(strategy="quantile", n_bins=2),
]


def _ref_codes(z, opts):
    return ref.bin_codes(
        z,
        strategy=opts["strategy"],
        n_bins=opts.get("n_bins", 30),
        bin_size=opts.get("bin_size"),
        per_unit=opts.get("range") == "unit",
    )


def _full(opts):
    return dict(dict(n_bins=30, bin_size=None, strategy="uniform", range="layer", correction=None), **opts)


@given(
    data=st.integers(5, 60).flatmap(lambda n: tied_arrays(n, [3], np.float64)),
    which=st.sampled_from(range(len(BINNINGS))),
    dtype=st.sampled_from([np.float64, np.float32]),
)
def test_patterns_equal_numpy_unique(data, which, dtype):
    (z,) = data
    z = z.astype(dtype)
    opts = BINNINGS[which]
    got = bin_patterns(z, **_full(opts))
    codes = _ref_codes(z, opts)
    want = ref.pattern_ids(codes)
    np.testing.assert_array_equal(got.ids, want)
    assert got.n_patterns == len(np.unique(codes, axis=0))
    for correction in (None, "miller-madow"):
        h = rc.binned_entropy(z, correction=correction, **opts)
        assert h == pytest.approx(ref.entropy(codes, correction), abs=1e-12)


@given(
    data=st.integers(6, 60).flatmap(lambda n: st.tuples(tied_arrays(n, [2, 1], np.float64), labels_for(n))),
    which=st.sampled_from(range(len(BINNINGS))),
)
def test_information_plane_equals_reference_and_obeys_bounds(data, which):
    (z, _), labels = data
    opts = BINNINGS[which]
    point = rc.binning_information_plane(z, labels, **opts)
    codes = _ref_codes(z, opts)
    h_t = ref.entropy(codes)
    h_y = ref.entropy(labels)
    i_ty = h_t - ref.conditional_entropy(codes, labels)
    assert point.H_T == pytest.approx(h_t, abs=1e-12)
    assert point.I_XT == point.H_T
    assert point.I_TY == pytest.approx(i_ty, abs=1e-12)
    n = z.shape[0]
    assert -1e-12 <= point.I_TY <= min(point.H_T, h_y) + 1e-12
    assert point.H_T <= math.log(n) + 1e-12
    assert point.n_patterns == len(np.unique(codes, axis=0))


@given(data=st.integers(6, 50).flatmap(lambda n: st.tuples(tied_arrays(n, [2], np.float64), labels_for(n))))
def test_stochastic_passes_with_sample_ids(data):
    (z,), ids = data
    point = rc.binning_information_plane(z, np.zeros(len(z), int) + (ids > ids.min()), sample_ids=ids, n_bins=4)
    codes = _ref_codes(z, dict(strategy="uniform", n_bins=4))
    i_xt = ref.entropy(codes) - ref.conditional_entropy(codes, ids)
    assert point.I_XT == pytest.approx(i_xt, abs=1e-12)
    assert -1e-12 <= point.I_XT <= point.H_T + 1e-12


@given(
    data=st.integers(6, 60).flatmap(lambda n: st.tuples(tied_arrays(n, [2, 1], np.float64), labels_for(n))),
    seed=st.integers(0, 2**32 - 1),
)
def test_invariant_to_relabelling_and_permuting_samples(data, seed):
    (z, _), labels = data
    rng = np.random.default_rng(seed)
    base = rc.binning_information_plane(z, labels, n_bins=5)
    values = np.unique(labels)
    relabel = dict(zip(values, rng.permutation(len(values)) * 7 - 3, strict=True))
    relabelled = rc.binning_information_plane(z, np.array([relabel[v] for v in labels]), n_bins=5)
    perm = rng.permutation(len(labels))
    permuted = rc.binning_information_plane(z[perm], labels[perm], n_bins=5)
    for other in (relabelled, permuted):
        assert other.H_T == pytest.approx(base.H_T, abs=1e-12)
        assert other.I_TY == pytest.approx(base.I_TY, abs=1e-12)


@given(data=st.integers(5, 60).flatmap(lambda n: tied_arrays(n, [2, 1], np.float64)))
def test_binned_mutual_info_with_categories(data):
    x, y = data
    y_int = np.round(y[:, 0] * 10).astype(np.int64)
    got = rc.binned_mutual_info(x, y_int, n_bins=3)
    want = ref.mutual_info(_ref_codes(x, dict(strategy="uniform", n_bins=3)), y_int)
    assert got == pytest.approx(want, abs=1e-12)
    assert -1e-12 <= got <= min(ref.entropy(y_int), rc.binned_entropy(x, n_bins=3)) + 1e-12
    # Both binned, each on its own range; bits.
    got2 = rc.binned_mutual_info(x, y, n_bins=4, base=2, correction="miller-madow")
    want2 = ref.mutual_info(
        _ref_codes(x, dict(strategy="uniform", n_bins=4)),
        _ref_codes(y, dict(strategy="uniform", n_bins=4)),
        "miller-madow",
    )
    assert got2 == pytest.approx(want2 / math.log(2), abs=1e-12)


def test_known_values():
    z = np.array([0.0, 0.0, 1.0, 1.0])
    assert rc.binned_entropy(z, n_bins=2, base=2) == 1.0
    assert rc.binned_entropy(z, n_bins=2, correction="miller-madow") == pytest.approx(math.log(2) + 1 / 8)
    labels = np.array([5, 5, 9, 9])
    p = rc.binning_information_plane(z, labels, n_bins=2, base=2)
    assert (p.H_T, p.I_XT, p.I_TY, p.n_patterns) == (1.0, 1.0, 1.0, 2)
    assert p.binning["lo"] == 0.0 and p.binning["width"] == 0.5
    # A constant array is one pattern: zero entropy.
    assert rc.binned_entropy(np.ones((10, 3))) == 0.0


def test_large_codes_and_many_columns_match_reference():
    rng = np.random.default_rng(3)
    z = rng.standard_normal((3000, 40)) * 1e3
    opts = dict(strategy="uniform", bin_size=1e-3)
    codes = _ref_codes(z, opts)
    np.testing.assert_array_equal(bin_patterns(z, **_full(opts)).ids, ref.pattern_ids(codes))
    relu = np.maximum(rng.standard_normal((3000, 8)), 0)  # many exact zeros
    for opts in (dict(strategy="quantile", n_bins=10), dict(strategy="uniform", n_bins=30, range="unit")):
        codes = _ref_codes(relu, opts)
        np.testing.assert_array_equal(bin_patterns(relu, **_full(opts)).ids, ref.pattern_ids(codes))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_bins=0), "n_bins"),
        (dict(n_bins=2.5), "n_bins"),
        (dict(strategy="equal"), "strategy"),
        (dict(range="global"), "range"),
        (dict(correction="jackknife"), "correction"),
        (dict(bin_size=-1.0), "bin_size"),
        (dict(bin_size=0.1, strategy="quantile"), "bin_size"),
        (dict(base=1.0), "base"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        rc.binned_entropy(np.arange(10.0), **kwargs)


def test_bad_arrays():
    with pytest.raises(ValueError, match=r"z: contains NaN or inf \(first at row 2\)"):
        rc.binned_entropy(np.array([0.0, 1.0, np.nan]))
    with pytest.raises(ValueError, match="z: expected a 1-D"):
        rc.binned_entropy(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="z: empty"):
        rc.binned_entropy(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="labels"):
        rc.binning_information_plane(np.zeros(5), np.zeros(4, int))
    with pytest.raises(ValueError, match="labels: must be integer-like"):
        rc.binning_information_plane(np.zeros(3), np.array([0.5, 1.0, 2.0]))
    with pytest.raises(ValueError, match="sample_ids"):
        rc.binning_information_plane(np.zeros(3), np.zeros(3, int), sample_ids=np.zeros(2, int))
    with pytest.raises(ValueError, match="y: has"):
        rc.binned_mutual_info(np.zeros(3), np.zeros(4))
