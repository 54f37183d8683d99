"""rc.mutual_info_matrix (docs/spec.md §1.15): every entry equals the pairwise rc.mutual_info call
with the same options, bit for bit (jitter included), the matrix is symmetric with a NaN diagonal,
and bad groups are refused naming the argument."""

from __future__ import annotations

import math

import numpy as np
import pytest

import repcompress as rc


def _columns(seed, n=400, p=5):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, p))
    base[:, 1] += 0.8 * base[:, 0]
    base[:, 3] = np.round(base[:, 3])  # ties: jitter has work to do
    base[:, 4] = np.maximum(base[:, 4] + 0.5 * base[:, 2], 0.0)  # ReLU zeros
    return base


def _pairwise(x, groups, **options):
    g = len(groups)
    out = np.full((g, g), np.nan)
    for a in range(g):
        for b in range(a + 1, g):
            out[a, b] = out[b, a] = rc.mutual_info(x[:, groups[a]], x[:, groups[b]], **options)
    return out


def _same_bits(got, want):
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    assert (got[ok].view(np.int64) == want[ok].view(np.int64)).all(), np.argwhere(got != want)


OPTIONS = [
    {},
    {"estimator": "ksg2", "k": 5},
    {"jitter": 0.0},
    {"normalize": False},
    {"normalize": False, "jitter": 0.0, "neighbors": "brute"},
    {"jitter": 1e-3, "random_state": 17, "base": 2.0, "clip": True},
    {"neighbors": "kdtree", "k": 2},
    {"metric": "euclidean"},
    {"metric": "euclidean", "estimator": "ksg2", "jitter": 0.0},
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "defaults")
def test_entries_equal_pairwise_calls_bit_for_bit(options):
    x = _columns(1)
    groups = [[j] for j in range(x.shape[1])]
    got = rc.mutual_info_matrix(x, progress=False, **options)
    _same_bits(got, _pairwise(x, groups, **options))
    assert np.isnan(np.diag(got)).all()
    _same_bits(got, got.T)


def test_groups_are_multivariate_variables():
    x = _columns(2, p=6)
    groups = [[0, 1], [2], [3, 4, 5], [1, 3]]  # overlapping groups are allowed
    for options in ({}, {"jitter": 0.0, "normalize": False}, {"estimator": "ksg2"}, {"metric": "euclidean"}):
        got = rc.mutual_info_matrix(x, groups=groups, progress=False, **options)
        assert got.shape == (4, 4)
        _same_bits(got, _pairwise(x, groups, **options))


def test_a_generator_is_advanced_as_one_pairwise_call_advances_it():
    x = _columns(3)
    got = rc.mutual_info_matrix(x, random_state=np.random.default_rng(5), jitter=1e-2, progress=False)
    want = _pairwise(x, [[j] for j in range(5)], random_state=5, jitter=1e-2)
    _same_bits(got, want)


def test_data_far_from_unit_magnitude():
    # Without normalisation the whole matrix is divided by one power of two (docs/spec.md §0.8)
    # where each pairwise call divides by its pair's own: no count changes, so the entries agree.
    x = _columns(4)
    x[:, 0] *= 2.0**600
    x[:, 2] *= 2.0**-500
    for jitter in (0.0, 1e-10):
        got = rc.mutual_info_matrix(x, normalize=False, jitter=jitter, progress=False)
        _same_bits(got, _pairwise(x, [[j] for j in range(5)], normalize=False, jitter=jitter))


def test_float32_without_preprocessing_stays_float32():
    x = _columns(5).astype(np.float32)
    got = rc.mutual_info_matrix(x, normalize=False, jitter=0.0, progress=False)
    _same_bits(got, _pairwise(x, [[j] for j in range(5)], normalize=False, jitter=0.0))


def test_batches_and_threads_do_not_change_the_result():
    x = _columns(6, p=9)
    one_call = rc.mutual_info_matrix(x, progress=False)
    with_bar = rc.mutual_info_matrix(x, progress=True)  # several calls into the core
    _same_bits(one_call, with_bar)
    before = rc.get_num_threads()
    try:
        rc.set_num_threads(1)
        _same_bits(rc.mutual_info_matrix(x, progress=False), one_call)
    finally:
        rc.set_num_threads(before)


def test_known_dependence_shows_in_the_right_cells():
    # Columns 0, 1: Gaussian with rho = 0.8, I = −½ log(0.36) = 0.511; column 2 independent.
    # KSG-1 at N = 4000, k = 3 (tests/test_statistics.py, KSG_SPREAD (1, 0.6) and (1, 0.0)):
    # sd about 0.014 and 0.012, tolerance |bias| + 4 sd as there.
    rng = np.random.default_rng(8)
    a = rng.standard_normal(4000)
    x = np.column_stack([a, 0.8 * a + 0.6 * rng.standard_normal(4000), rng.standard_normal(4000)])
    m = rc.mutual_info_matrix(x, progress=False)
    assert abs(m[0, 1] - (-0.5 * math.log(0.36))) <= 0.0004 + 4 * 0.0135
    assert abs(m[0, 2]) <= 0.0022 + 4 * 0.0116
    assert abs(m[1, 2]) <= 0.0022 + 4 * 0.0116


@pytest.mark.parametrize(
    "groups, error, message",
    [
        ("ab", TypeError, "groups: expected a list"),
        ([[0], "1"], TypeError, "groups: group 1 must be a list"),
        ([[0], [1.5]], TypeError, "groups: group 1 holds 1.5"),
        ([[0], [True]], TypeError, "groups: group 1 holds True"),
        ([[0], [7]], ValueError, "groups: group 1 names column 7, but x has 5 columns"),
        ([[0], [-1]], ValueError, "groups: group 1 names column -1"),
        ([[0], []], ValueError, "groups: group 1 is empty"),
        ([[0, 0], [1]], ValueError, "groups: group 0 names a column twice"),
        ([[0, 1]], ValueError, "groups: needs at least 2 groups"),
    ],
)
def test_bad_groups_are_refused_naming_the_argument(groups, error, message):
    with pytest.raises(error, match=r"^" + message.replace("(", r"\(").replace(".", r"\.")):
        rc.mutual_info_matrix(_columns(0, n=50), groups=groups)


def test_other_bad_input():
    with pytest.raises(ValueError, match=r"^x: needs at least 2 columns"):
        rc.mutual_info_matrix(np.zeros((10, 1)))
    with pytest.raises(ValueError, match=r"^k: must be smaller"):
        rc.mutual_info_matrix(_columns(0, n=10), k=10)
    with pytest.raises(ValueError, match=r"^estimator: unknown value"):
        rc.mutual_info_matrix(_columns(0, n=50), estimator="ksg3")
    with pytest.raises(TypeError, match=r"^progress: "):
        rc.mutual_info_matrix(_columns(0, n=50), progress="yes")
    with pytest.raises(TypeError, match="device"):
        rc.mutual_info_matrix(_columns(0, n=50), device="cpu")  # the core only: no half-done device=


def test_huge_outputs_are_a_memory_error_naming_the_argument():
    # 200000 columns: a 200000 × 200000 float64 matrix (320 GB), refused before any work.
    wide = np.zeros((3, 200_000))
    with pytest.raises(MemoryError, match=r"^x: the 200000 × 200000 matrix"):
        rc.mutual_info_matrix(wide, k=1)


def test_intervals_of_the_matrix_are_refused_with_a_way_out():
    # confidence_interval is of one number: a matrix gets a TypeError naming the estimator and the
    # per-entry call, not numpy's conversion error.
    x = _columns(0, n=60)
    with pytest.raises(TypeError, match=r"^estimator: returned an array of shape \(5, 5\), not one number"):
        rc.confidence_interval(rc.mutual_info_matrix, x, n_resamples=4, progress=False)
    entry = rc.confidence_interval(rc.mutual_info, x[:, 0], x[:, 1], n_resamples=4)
    assert entry.value == rc.mutual_info_matrix(x, progress=False)[0, 1]
