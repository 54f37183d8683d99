"""The fast estimators equal the brute-force references in reference.py.

With ``normalize=False, jitter=0`` docs/spec.md §1.12 requires identical neighbour counts, hence
results equal to floating-point rounding of the final sums (rtol = atol = 1e-12) -- for every
neighbour search method, float32 and float64, one or two threads, and data full of ties.
"""

import functools
import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reference
import repcompress as rc
from strategies import MAX_N, dimensions, labels_for, tied_arrays

NEIGHBORS = ("auto", "kdtree", "brute")
METRICS = ("chebyshev", "euclidean")
DTYPES = (np.float32, np.float64)
EXACT = {"normalize": False, "jitter": 0}

# The thread-count fixture is function scoped on purpose: it is set once per test and the same
# for every example, which is what we want.
property_settings = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(params=[1, 2], ids=lambda n: f"threads{n}")
def num_threads(request):
    before = rc.get_num_threads()
    rc.set_num_threads(request.param)
    yield request.param
    rc.set_num_threads(before)


def assert_matches(got, want):
    assert isinstance(got, float)
    if want == -math.inf:
        assert got == -math.inf
    else:
        assert math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-12), (got, want)


@st.composite
def k_and_n(draw, min_n=0):
    # n = k + 1 (the largest valid k) included.
    k = draw(st.integers(1, 8))
    n = draw(st.integers(max(k + 1, min_n), MAX_N))
    return k, n


@st.composite
def mi_case(draw, dtype, n_vars):
    k, n = draw(k_and_n())
    dims = [draw(dimensions()) for _ in range(n_vars)]
    arrays = draw(tied_arrays(n, dims, dtype))
    return k, arrays


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize("neighbors", NEIGHBORS)
@pytest.mark.parametrize("estimator", ("ksg1", "ksg2"))
@pytest.mark.parametrize("metric", METRICS)
@property_settings
@given(data=st.data())
def test_mutual_info_equals_reference(data, metric, estimator, neighbors, dtype, num_threads):
    k, (x, y) = data.draw(mi_case(dtype, 2))
    got = rc.mutual_info(x, y, k=k, estimator=estimator, metric=metric, neighbors=neighbors, **EXACT)
    want = getattr(reference, estimator)(x, y, k, metric)
    assert_matches(got, want)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize("neighbors", NEIGHBORS)
@pytest.mark.parametrize("metric", METRICS)
@property_settings
@given(data=st.data())
def test_conditional_mutual_info_equals_reference(data, metric, neighbors, dtype, num_threads):
    k, (x, y, z) = data.draw(mi_case(dtype, 3))
    got = rc.conditional_mutual_info(x, y, z, k=k, metric=metric, neighbors=neighbors, **EXACT)
    assert_matches(got, reference.cmi(x, y, z, k, metric))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize("neighbors", NEIGHBORS)
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the package warns when the result is -inf
@property_settings
@given(data=st.data())
def test_entropy_equals_reference(data, metric, neighbors, dtype, num_threads):
    k, (x,) = data.draw(mi_case(dtype, 1))
    got = rc.entropy(x, k=k, metric=metric, neighbors=neighbors, **EXACT)
    assert_matches(got, reference.entropy_kl(x, k, metric))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize("neighbors", NEIGHBORS)
@pytest.mark.parametrize("metric", METRICS)
@property_settings
@given(data=st.data())
def test_mutual_info_labels_equals_reference(data, metric, neighbors, dtype, num_threads):
    # k may exceed class sizes (k_i = min(k, N_y - 1)); singleton classes are dropped.
    k, n = data.draw(k_and_n(min_n=4))
    (x,) = data.draw(tied_arrays(n, [data.draw(dimensions())], dtype))
    labels = data.draw(labels_for(n))
    got = rc.mutual_info_labels(x, labels, k=k, metric=metric, neighbors=neighbors, **EXACT)
    assert_matches(got, reference.ross(x, labels, k, metric))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize("neighbors", NEIGHBORS)
@pytest.mark.parametrize("estimator", ("ksg1", "ksg2"))
@pytest.mark.parametrize("metric", METRICS)
@property_settings
@given(data=st.data())
def test_mutual_info_given_labels_equals_reference(data, metric, estimator, neighbors, dtype, num_threads):
    k, n = data.draw(k_and_n(min_n=0))
    n = max(n, k + 3)
    x, y = data.draw(tied_arrays(n, [data.draw(dimensions()), data.draw(dimensions())], dtype))
    # One class is guaranteed more than k members; others may be skipped (n_c <= k).
    labels = data.draw(labels_for(n, min_size_class0=k + 1))
    want, skipped = reference.given_labels(x, y, labels, k, estimator, metric)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = rc.mutual_info_given_labels(
            x, y, labels, k=k, estimator=estimator, metric=metric, neighbors=neighbors, **EXACT
        )
    assert_matches(got, want)
    user_warnings = [w for w in caught if issubclass(w.category, UserWarning)]
    assert bool(user_warnings) == bool(skipped), (skipped, [str(w.message) for w in caught])


@pytest.mark.parametrize("threads", [1, 2])
def test_population_std_is_the_pairwise_tree_bit_for_bit(threads):
    # The core's fused, parallel sums against the NumPy statement of the tree (the torch back-end's
    # too), bit for bit: row counts odd and even, a single row, levels small enough to run serially
    # and large enough to run in parallel blocks (more than 2^14 values per level), magnitudes up to
    # overflow of the squares, and non-finite values, which propagate as in IEEE arithmetic.
    from repcompress._validation import _population_std

    before = rc.get_num_threads()
    rc.set_num_threads(threads)
    try:
        rng = np.random.default_rng(30)
        for n, d in [(1, 3), (2, 1), (3, 2), (5, 4), (64, 1), (4097, 3), (70001, 3), (131072, 2)]:
            a = rng.standard_normal((n, d)) * rng.choice([1e-3, 1.0, 1e5], size=d) + rng.standard_normal(d)
            np.testing.assert_array_equal(_population_std(a), reference.population_std(a))
        a = rng.standard_normal((40001, 4))
        a[:, 1] *= 1e200  # the squares overflow to inf
        a[7, 2] = np.nan
        a[9, 3] = -np.inf
        got, want = _population_std(a), reference.population_std(a)
        np.testing.assert_array_equal(got, want)
        assert np.isinf(got[1]) and np.isnan(got[2]) and np.isnan(got[3])
    finally:
        rc.set_num_threads(before)


def normalized(a):
    """The pre-processing of docs/spec.md §1.4 with normalize=True, jitter=0: float64, each column divided by its
    population standard deviation (ddof 0, both sums by the fixed pairwise tree of ``reference.column_sums``), constant
    columns unchanged."""
    a = a.astype(np.float64)
    std = reference.population_std(a)
    return a / np.where(std > 0, std, 1.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@property_settings
@given(data=st.data())
def test_normalize_without_jitter_equals_reference_on_normalized_data(data, dtype):
    # Normalisation is per variable and per column, over the whole sample (also for the
    # label-conditional estimator: once, before splitting into classes).
    k, n = data.draw(k_and_n(min_n=0))
    n = max(n, k + 3)
    arrays = data.draw(tied_arrays(n, [data.draw(dimensions()) for _ in range(3)], dtype))
    x, y, z = arrays
    xn, yn, zn = (normalized(a) for a in arrays)
    labels = data.draw(labels_for(n, min_size_class0=k + 1))
    options = {"normalize": True, "jitter": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        got = {
            "ksg1": rc.mutual_info(x, y, k=k, **options),
            "ksg2": rc.mutual_info(x, y, k=k, estimator="ksg2", **options),
            "cmi": rc.conditional_mutual_info(x, y, z, k=k, **options),
            "ross": rc.mutual_info_labels(x, labels, k=k, **options),
            "given_labels": rc.mutual_info_given_labels(x, y, labels, k=k, **options),
        }
        warnings.simplefilter("ignore", RuntimeWarning)  # entropy warns when it returns -inf
        got["entropy"] = rc.entropy(x, k=k, metric="euclidean", **options)
    assert_matches(got["entropy"], reference.entropy_kl(xn, k, "euclidean"))
    assert_matches(got["ksg1"], reference.ksg1(xn, yn, k))
    assert_matches(got["ksg2"], reference.ksg2(xn, yn, k))
    assert_matches(got["cmi"], reference.cmi(xn, yn, zn, k))
    assert_matches(got["ross"], reference.ross(xn, labels, k))
    assert_matches(got["given_labels"], reference.given_labels(xn, yn, labels, k, "ksg1")[0])


# ---------------------------------------------------------------------------------------------
# Deterministic, larger arrays: deep enough k-d trees, blocked brute-force scans with several
# blocks, and thread splits that small hypothesis examples do not reach.


def medium_tied_data(n, dims, seed, dtype=np.float64):
    """Arrays of shapes (n, d) for d in dims with ties on purpose.

    Column kinds cycle through a coarse grid (0.5 steps), a 0.1-grid (equal-on-paper distances
    that round differently) and continuous values; 10 % of the rows duplicate another row.
    The last array always starts with a continuous column so that its entropy is finite.
    """
    rng = np.random.default_rng(seed)
    total = sum(dims)
    kinds = np.arange(total) % 3
    kinds[sum(dims[:-1])] = 2
    grid = rng.integers(0, 8, size=(n, total)) * 0.5
    decimal = rng.integers(0, 30, size=(n, total)) * 0.1
    normal = rng.normal(size=(n, total))
    data = np.where(kinds == 0, grid, np.where(kinds == 1, decimal, normal))
    dup = rng.integers(0, n, size=(n // 10, 2))
    data[dup[:, 1]] = data[dup[:, 0]]
    data = data.astype(dtype)
    return [np.ascontiguousarray(a) for a in np.split(data, np.cumsum(dims)[:-1], axis=1)]


def all_estimators(x, y, z, w, labels, k, neighbors):
    """Every estimator on the same arrays, as a dict name -> value (entropy of w)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return {
            "ksg1": rc.mutual_info(x, y, k=k, estimator="ksg1", neighbors=neighbors, **EXACT),
            "ksg2": rc.mutual_info(x, y, k=k, estimator="ksg2", neighbors=neighbors, **EXACT),
            "cmi": rc.conditional_mutual_info(x, y, z, k=k, neighbors=neighbors, **EXACT),
            "entropy_chebyshev": rc.entropy(w, k=k, metric="chebyshev", neighbors=neighbors, **EXACT),
            "entropy_euclidean": rc.entropy(w, k=k, metric="euclidean", neighbors=neighbors, **EXACT),
            "ross": rc.mutual_info_labels(x, labels, k=k, neighbors=neighbors, **EXACT),
            "given_labels_ksg1": rc.mutual_info_given_labels(
                x, y, labels, k=k, estimator="ksg1", neighbors=neighbors, **EXACT
            ),
            "given_labels_ksg2": rc.mutual_info_given_labels(
                x, y, labels, k=k, estimator="ksg2", neighbors=neighbors, **EXACT
            ),
        }


def test_neighbor_methods_identical_on_medium_array():
    n, d, k = 3000, 3, 4
    x, y, z, w = medium_tied_data(n, [d, d, d, d], seed=20240601)
    labels = np.random.default_rng(7).integers(0, 4, size=n)
    results = {nb: all_estimators(x, y, z, w, labels, k, nb) for nb in NEIGHBORS}
    for name, value in results["auto"].items():
        assert math.isfinite(value), name
        for nb in ("kdtree", "brute"):
            other = results[nb][name]
            assert math.isclose(other, value, rel_tol=1e-12, abs_tol=1e-12), (name, nb, other, value)


@functools.cache
def medium_case(d, dtype):
    """Arrays, labels and reference values for the medium test (cached: the reference is slow)."""
    n, k = 700, 5
    x, y, z, w = medium_tied_data(n, [d, d, d, max(d, 2)], seed=99 + d, dtype=dtype)
    # Class 3 is tiny (skipped by the given-labels estimator, k_i < k for Ross).
    labels = np.random.default_rng(3).choice(4, size=n, p=[0.5, 0.3, 0.194, 0.006])
    want = {
        "ksg1": reference.ksg1(x, y, k),
        "ksg2": reference.ksg2(x, y, k),
        "cmi": reference.cmi(x, y, z, k),
        "entropy_chebyshev": reference.entropy_kl(w, k, "chebyshev"),
        "entropy_euclidean": reference.entropy_kl(w, k, "euclidean"),
        "ross": reference.ross(x, labels, k),
        "given_labels_ksg1": reference.given_labels(x, y, labels, k, "ksg1")[0],
        "given_labels_ksg2": reference.given_labels(x, y, labels, k, "ksg2")[0],
    }
    return (x, y, z, w, labels, k), want


# d = 1: the sorted-array path of "auto"; d = 3: k-d trees; d = 17: above the k-d tree limit (16).
@pytest.mark.parametrize("d", (1, 3, 17))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize("neighbors", NEIGHBORS)
def test_medium_array_equals_reference(neighbors, dtype, d, num_threads):
    (x, y, z, w, labels, k), want = medium_case(d, dtype)
    got = all_estimators(x, y, z, w, labels, k, neighbors)
    for name, value in want.items():
        assert math.isfinite(value), name
        assert_matches(got[name], value)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@property_settings
@given(data=st.data())
def test_high_dimensional_euclidean_kth_distances_equal_reference(data, dtype, num_threads):
    # Above 16 dimensions "auto" takes the Gram-form search for the Euclidean metric; its
    # distances must be the direct sums of squared differences, bit for bit, also far from the
    # origin (where the Gram form cancels) and with ties and duplicate rows.
    k, n = data.draw(k_and_n())
    d = data.draw(st.integers(17, 48))
    (x,) = data.draw(tied_arrays(n, [d], dtype))
    offset = data.draw(st.sampled_from((0.0, 1e3, -1e6)))
    x = np.ascontiguousarray(x.astype(np.float64) + offset, dtype=dtype)
    got = rc._core.knn_kth_distances(x, k, "euclidean", "auto")
    want = reference.kth_smallest_per_row(reference.without_self(reference.euclidean_distances(x)), k)
    assert got.dtype == x.dtype
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(rc._core.knn_kth_distances(x, k, "euclidean", "brute"), want)
