"""Finite input gives the right answer, or a clear error, at any magnitude (docs/spec.md §0.8).

Scale-invariant quantities take the same value on x and on x times 2^±500, 1e±155 or 1e±300 (where
squares over- or underflow float64), entropies gain d log |a|, binning is invariant to powers of
two, the silhouette to translation, and integers that float64 rounds are announced.
"""

import math
import warnings

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from sklearn import metrics as skm

import repcompress as rc
from repcompress.binning import bin_patterns
from strategies import tied_arrays

SCALES = [2.0**500, 2.0**-500, 1e155, 1e-155, 1e300, 1e-300]
SCALE_IDS = ["2^500", "2^-500", "1e155", "1e-155", "1e300", "1e-300"]
REL = 1e-9


def close(a, b, rel=REL):
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


def knn_data(seed=0, n=300):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2))
    y = x + 0.5 * rng.standard_normal((n, 2))
    z = x[:, :1] + rng.standard_normal((n, 1))
    labels = rng.integers(0, 3, n)
    return x, y, z, labels


def class_data(seed=1, n=300, d=6, k=4):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    return rng.standard_normal((k, d))[labels] * 2 + rng.standard_normal((n, d)), labels


# ------------------------------------------------------------------------------ k-NN estimators


def knn_estimates(x, y, z, labels, s):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # classes with n_c <= k in mutual_info_given_labels
        return {
            "ksg1": rc.mutual_info(x * s, y),
            "ksg2": rc.mutual_info(x * s, y, estimator="ksg2"),
            "cmi": rc.conditional_mutual_info(x * s, y, z * s),
            "ross": rc.mutual_info_labels(x * s, labels),
            "given_labels": rc.mutual_info_given_labels(x * s, y, labels),
            "ksg1_raw": rc.mutual_info(x * s, y * s, normalize=False, jitter=0),
            "cmi_raw": rc.conditional_mutual_info(x * s, y * s, z * s, normalize=False, jitter=0),
            "ross_raw": rc.mutual_info_labels(x * s, labels, normalize=False, jitter=0),
        }


@pytest.mark.parametrize("scale", SCALES, ids=SCALE_IDS)
def test_knn_mutual_informations_do_not_depend_on_the_scale(scale):
    x, y, z, labels = knn_data()
    before = knn_estimates(x, y, z, labels, 1.0)
    after = knn_estimates(x, y, z, labels, scale)
    for name in before:
        assert close(after[name], before[name]), (name, before[name], after[name])
    # Before the fix the column standard deviation overflowed: I came out as 7.8e-16.
    assert after["ksg1"] > 1.0


@pytest.mark.parametrize("metric", ("chebyshev", "euclidean"))
@pytest.mark.parametrize("scale", SCALES, ids=SCALE_IDS)
def test_entropy_gains_d_log_of_the_scale(scale, metric):
    x, *_ = knn_data()
    d = x.shape[1]
    for options in ({}, {"jitter": 0}, {"normalize": True}):
        before = rc.entropy(x, metric=metric, **options)
        after = rc.entropy(x * scale, metric=metric, **options)
        shift = 0.0 if options.get("normalize") else d * math.log(scale)
        assert math.isclose(after - shift, before, rel_tol=REL, abs_tol=REL * abs(shift)), (options, before, after)


@pytest.mark.parametrize("exponent", (-100, 100))
def test_knn_float32_at_the_ends_of_its_range(exponent):
    # Without pre-processing float32 data are searched in float32, whose squares overflow at 2^64.
    x, y, *_ = knn_data()
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    xs, ys = np.ldexp(x32, exponent), np.ldexp(y32, exponent)
    assert xs.dtype == np.float32 and np.array_equal(np.ldexp(xs, -exponent), x32)  # exact
    raw = {"normalize": False, "jitter": 0}
    for metric in ("chebyshev", "euclidean"):
        before = rc.entropy(x32, metric=metric, **raw)
        after = rc.entropy(xs, metric=metric, **raw)
        assert close(after - 2 * exponent * math.log(2.0), before), (metric, before, after)
    assert rc.mutual_info(xs, ys, **raw) == rc.mutual_info(x32, y32, **raw)


def test_knn_entropy_resamples_carry_the_scale():
    x, *_ = knn_data(n=200)
    kwargs = dict(n_resamples=5, random_state=3, progress=False)
    before = rc.confidence_interval(rc.entropy, x, **kwargs)
    after = rc.confidence_interval(rc.entropy, x * 2.0**600, **kwargs)
    shift = 2 * 600 * math.log(2.0)
    assert math.isclose(after.value - shift, before.value, abs_tol=1e-9 * shift)
    assert math.isclose(after.low - shift, before.low, abs_tol=1e-9 * shift)


# ------------------------------------------------------------------------------------- geometry


def geometry(h, labels):
    """Every scale-invariant geometric quantity, one-shot and accumulated."""
    nc = rc.neural_collapse(h, labels, weights=np.eye(4, h.shape[1]))
    acc = rc.ClassStatistics()
    acc.update(h[:100], labels[:100]).update(h[100:200], labels[100:200])
    other = rc.ClassStatistics().update(h[200:], labels[200:])
    acc.merge(other)
    out = {
        "cdnv": rc.class_distance_normalized_variance(h, labels),
        "cdnv1": rc.class_distance_normalized_variance(h, labels, ddof=1),
        "trace_ratio": rc.trace_ratio(h, labels),
        "fisher_ratio": rc.fisher_ratio(h, labels),
        "calinski_harabasz": rc.calinski_harabasz(h, labels),
        "davies_bouldin": rc.davies_bouldin(h, labels),
        "silhouette": rc.silhouette(h, labels),
        "twonn": rc.twonn_dimension(h),
        "effective_rank": rc.effective_rank(h),
        "nc1": nc.nc1,
        "nc2_equinorm": nc.nc2_equinorm,
        "nc2_equiangular": nc.nc2_equiangular,
        "nc2_max_angle": nc.nc2_max_angle,
        "nc3": nc.nc3,
        "nc4": nc.nc4,
        "nc_cdnv": nc.cdnv,
        "acc_cdnv": acc.cdnv(),
        "acc_nc1": acc.nc1(),
        "acc_nc2": acc.nc2()[1],
        "acc_trace_ratio": acc.trace_ratio(),
        "acc_fisher_ratio": acc.fisher_ratio(),
        "acc_calinski_harabasz": acc.calinski_harabasz(),
    }
    m, _ = rc.cdnv_matrix(h, labels)
    out.update({f"cdnv_matrix{i}": v for i, v in enumerate(m.ravel())})
    out.update({f"silhouette_sample{i}": v for i, v in enumerate(rc.silhouette_samples(h, labels)[:20])})
    return out


@pytest.mark.parametrize("scale", SCALES, ids=SCALE_IDS)
def test_geometry_does_not_depend_on_the_scale(scale):
    h, labels = class_data()
    before = geometry(h, labels)
    after = geometry(h * scale, labels)
    for name in before:
        assert close(after[name], before[name]), (name, before[name], after[name])


@pytest.mark.parametrize("exponent", (-100, 100))
def test_geometry_of_float32_at_the_ends_of_its_range(exponent):
    h, labels = class_data()
    h32 = h.astype(np.float32)
    scaled = np.ldexp(h32, exponent)
    assert scaled.dtype == np.float32 and np.array_equal(np.ldexp(scaled, -exponent), h32)  # exact
    before, after = geometry(h32, labels), geometry(scaled, labels)
    for name in before:
        assert close(after[name], before[name]), (name, before[name], after[name])


@pytest.mark.parametrize("exponent", (-500, 500, -1000))
def test_quantities_with_units_are_scaled_back_or_an_error(exponent):
    h, labels = class_data()
    scale = 2.0**exponent
    one, scaled = rc.scatter_matrices(h, labels), rc.scatter_matrices(h * scale, labels)
    np.testing.assert_array_equal(scaled.means, one.means * scale)
    for name in ("within", "between", "total", "sigma_within", "sigma_between"):
        want = getattr(one, name) * scale * scale
        np.testing.assert_allclose(getattr(scaled, name), want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
    acc = rc.ClassStatistics().update(h * scale, labels)
    np.testing.assert_allclose(acc.means, one.means * scale, rtol=1e-12)
    # ridge is in squared units of h.
    if exponent != -1000:  # where ridge·scale² is a normal number
        assert close(
            rc.fisher_ratio(h * scale, labels, ridge=0.5 * scale * scale), rc.fisher_ratio(h, labels, ridge=0.5)
        )
    # Entries beyond float64 are an error; the dimensionless quantities are still there.
    for call in (
        lambda: rc.scatter_matrices(h * 1e300, labels),
        lambda: rc.ClassStatistics().update(h * 1e300, labels).scatter_matrices(),
    ):
        with pytest.raises(ValueError, match=r"^h: its scatter matrices overflow float64"):
            call()
    assert close(rc.trace_ratio(h * 1e300, labels), rc.trace_ratio(h, labels))
    # Fisher's ratio has the units of 1/ridge: with S_W = 0 (one sample per class), S_B of data
    # ~1e300 over a ridge of 1 is beyond float64 (found by the fuzz: it came out inf), an error
    # naming ridge, from either entry point.
    points, ids = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]), np.arange(3)
    assert np.isfinite(rc.fisher_ratio(points, ids, ridge=1.0))
    for call in (
        lambda: rc.fisher_ratio(points * 1e300, ids, ridge=1.0),
        lambda: rc.ClassStatistics().update(points * 1e300, ids).fisher_ratio(ridge=1.0),
    ):
        with pytest.raises(ValueError, match=r"^ridge: Fisher's ratio .* exceeds float64"):
            call()


def test_class_statistics_batches_of_very_different_magnitudes():
    # A batch far above the earlier ones rescales what was accumulated; the merge of accumulators
    # kept at different scales matches the one-shot values.
    h, labels = class_data()
    big = 2.0**700
    h2 = h.copy()
    h2[150:] *= big
    acc = rc.ClassStatistics().update(h2[:150], labels[:150]).update(h2[150:], labels[150:])
    first = rc.ClassStatistics().update(h2[:150], labels[:150])
    second = rc.ClassStatistics().update(h2[150:], labels[150:])
    merged = first.merge(second)
    for stats in (acc, merged):
        assert close(stats.cdnv(), rc.class_distance_normalized_variance(h2, labels))
        assert close(stats.trace_ratio(), rc.trace_ratio(h2, labels))
        means = np.array([h2[labels == c].mean(axis=0) for c in range(4)])
        np.testing.assert_allclose(stats.means, means, rtol=1e-12)


def test_davies_bouldin_of_small_data_is_not_zero():
    # scikit-learn's absolute 1e-8 tolerance makes its index of any data below ~1e-8 zero.
    h, labels = class_data()
    assert skm.davies_bouldin_score(h * 1e-10, labels) == 0.0
    assert close(rc.davies_bouldin(h * 1e-10, labels), rc.davies_bouldin(h, labels))
    assert rc.davies_bouldin(h, labels) == pytest.approx(skm.davies_bouldin_score(h, labels), rel=1e-10)


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


# -------------------------------------------------------------------------------------- binning


def test_bins_over_a_range_beyond_float64():
    # (hi - lo) overflowed: the width was inf and every value but the maximum fell into bin 0.
    assert rc.binned_entropy(np.array([-1e308, 0.0, 1e308]), n_bins=3) == pytest.approx(math.log(3), rel=1e-15)
    p = bin_patterns(np.array([-1e308, 0.0, 1e308]), **_options(n_bins=3))
    assert p.binning["lo"] == -1e308 and p.binning["width"] == pytest.approx(1e308 / 1.5)
    # A quantile between neighbours 3.4e308 apart: numpy's edge is -inf, which merged the two halves.
    z = np.array([-1.7e308, 1.7e308, -1.7e308, 1.7e308])
    assert rc.binned_entropy(z, n_bins=2, strategy="quantile") == pytest.approx(math.log(2), rel=1e-15)
    p = bin_patterns(z, **_options(n_bins=2, strategy="quantile"))
    assert p.binning["edges"].tolist() == [[0.0]]


def test_fixed_width_bins_past_two_to_the_63():
    # Indices near 1e19 saturated at 2^63 - 1: all four values shared one bin.
    assert rc.binned_entropy(np.array([1e7, 2e7, 3e7, 4e7]), bin_size=1e-12) == pytest.approx(math.log(4), rel=1e-15)
    z = np.array([-3e7, 1e7, 2e7, 1e7, -3e7])
    assert bin_patterns(z, **_options(bin_size=1e-12)).ids.tolist() == [0, 1, 2, 1, 0]


def test_fixed_width_indices_beyond_float64_are_an_error():
    with pytest.raises(ValueError, match=r"^bin_size: .* overflow float64"):
        rc.binned_entropy(np.array([1e300, 1.0]), bin_size=1e-10)


def test_quantile_bins_are_capped():
    z = np.random.default_rng(0).standard_normal((100, 2))
    with pytest.raises(ValueError, match=r"^n_bins: quantile bins .* got 5000"):
        rc.binned_entropy(z, n_bins=5000, strategy="quantile")
    # Up to max(N, 1024) bins are fine; uniform bins store no edges.
    assert rc.binned_entropy(z, n_bins=1024, strategy="quantile") == pytest.approx(math.log(100))
    assert rc.binned_entropy(z, n_bins=5000) == pytest.approx(math.log(100))


def _options(**opts):
    return dict(dict(n_bins=30, bin_size=None, strategy="uniform", range="layer", correction=None), **opts)


BINNINGS = [
    dict(n_bins=1),
    dict(n_bins=3),
    dict(n_bins=30),
    dict(n_bins=5, range="unit"),
    dict(bin_size=0.25),
    dict(strategy="quantile", n_bins=4),
    dict(strategy="quantile", n_bins=7),
]


@given(
    data=st.integers(5, 60).flatmap(lambda n: tied_arrays(n, [3], np.float64)),
    which=st.sampled_from(range(len(BINNINGS))),
    where=st.floats(0, 1),
    end=st.sampled_from(["low", "high", "between"]),
    sign=st.sampled_from([1.0, -1.0]),
)
def test_binning_is_invariant_to_powers_of_two(data, which, where, end, sign):
    # Every exponent that keeps the data exact (normal numbers, below the largest float64),
    # with the extremes drawn on purpose: ranges that overflow, widths in the subnormal range.
    (z,) = data
    z = z * sign
    nonzero = np.abs(z[z != 0])
    assume(nonzero.size > 0)
    opts = BINNINGS[which]
    # v = m·2^E with m in [0.5, 1): v·2^e is normal for E + e ≥ -1021 and finite for E + e ≤ 1024.
    low = -1021 - math.frexp(nonzero.min())[1]
    high = 1024 - math.frexp(nonzero.max())[1]
    if "bin_size" in opts:  # bin_size·2^e too
        low = max(low, -1021 - math.frexp(opts["bin_size"])[1])
        high = min(high, 1024 - math.frexp(opts["bin_size"])[1])
    exponent = {"low": low, "high": high, "between": round(low + where * (high - low))}[end]
    scaled = np.ldexp(z, exponent)
    assert np.array_equal(np.ldexp(scaled, -exponent), z)  # the premise: an exact scaling
    scaled_opts = dict(opts, bin_size=math.ldexp(opts["bin_size"], exponent)) if "bin_size" in opts else opts
    want = bin_patterns(z, **_options(**opts)).ids
    got = bin_patterns(scaled, **_options(**scaled_opts)).ids
    np.testing.assert_array_equal(got, want)


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
        rc.entropy(np.array([2**53, -(2**53), 0, 5]), k=1, jitter=0)  # exact: no warning
        rc.entropy(np.array([True, False, True, False]), k=1, jitter=1e-10)
