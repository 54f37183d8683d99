"""Gaussian-channel mutual information (docs/spec.md §3): analytic values, the dense reference, the
population limit and bad input."""

import math

import numpy as np
import pytest

import reference_gaussian as ref
import repcompress as rc
from repcompress.gaussian_channel import draw_noise

LOG2 = math.log(2)


def within_stderr(result, want, k=4.0):
    assert result.stderr > 0
    assert abs(result.mi - want) <= k * result.stderr, (result.mi, result.stderr, want)


# ---------------------------------------------------------------------------------------------
# Analytic values (docs/spec.md §3.12)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("a, want", [(0.25, 0.030311), (1.0, 0.336831), (2.0, 0.632720)])
def test_two_points_binary_gaussian_channel(a, want):
    # σ = 1; ±a with 20 000 draws each: stderr ≈ 0.003.
    r = rc.gaussian_channel_mi([[-a], [a]], noise_variance=1.0, n_draws=20_000, random_state=1)
    within_stderr(r, want)
    assert r.lower <= want <= r.upper <= r.log_n


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_pairwise_bounds_of_two_points(sigma):
    # D = 2a, D/σ = 2 for every σ: [0.219070, 0.566219] whatever the scale.
    a = sigma
    for kwargs in ({"noise_variance": sigma**2}, {"variances": [[sigma**2], [sigma**2]]}):
        r = rc.gaussian_channel_mi([[-a], [a]], method="bounds", **kwargs)
        assert r.lower == pytest.approx(0.219070, abs=1e-6)
        assert r.upper == pytest.approx(0.566219, abs=1e-6)
        assert r.mi is None and r.stderr is None


def test_hypercube_is_d_times_the_one_dimensional_value():
    d = 3
    cube = np.array([[1.0 if (c >> k) & 1 else -1.0 for k in range(d)] for c in range(2**d)])
    r = rc.gaussian_channel_mi(cube, noise_variance=1.0, n_draws=3000, random_state=2)
    within_stderr(r, d * 0.336831)
    assert r.lower == pytest.approx(d * 0.219070, abs=3e-6)
    assert r.upper == pytest.approx(d * 0.566219, abs=3e-6)


def test_heteroscedastic_two_variances():
    r = rc.gaussian_channel_mi([[0.0], [0.0]], variances=[[1.0], [4.0]], n_draws=20_000, random_state=3)
    within_stderr(r, 0.092733)
    assert r.upper == pytest.approx(0.235320, abs=1e-6)
    assert r.lower == pytest.approx(0.054231, abs=1e-6)
    assert r.h_z_given_x == pytest.approx(0.5 * math.log(2 * math.pi * math.e) + 0.5 * math.log(2.0), abs=1e-12)


def test_identical_means_give_zero():
    means = np.full((50, 3), 7.5)
    r = rc.gaussian_channel_mi(means, noise_variance=[0.1, 1.0, 10.0], n_draws=2)
    for v in (r.mi, r.lower, r.upper, r.maxent_upper):
        assert v == pytest.approx(0.0, abs=1e-12)


def test_far_apart_means_give_log_n():
    means = np.arange(40, dtype=float)[:, None] * [1e3, -7e2]
    for kwargs in ({"noise_variance": 0.3}, {"variances": np.full((40, 2), 0.3)}, {"dropout_alpha": 1e-8}):
        r = rc.gaussian_channel_mi(means + 1.0, **kwargs)
        for v in (r.mi, r.lower, r.upper):
            assert v == pytest.approx(math.log(40), abs=1e-12)
        assert r.maxent_upper >= math.log(40)


def test_bits():
    kw = dict(noise_variance=1.0, n_draws=5, random_state=4)
    nats = rc.gaussian_channel_mi([[-1.0], [1.0], [3.0]], **kw)
    bits = rc.gaussian_channel_mi([[-1.0], [1.0], [3.0]], base=2, **kw)
    for a, b in ((nats.mi, bits.mi), (nats.stderr, bits.stderr), (nats.upper, bits.upper), (nats.log_n, bits.log_n)):
        assert b == pytest.approx(a / LOG2, rel=1e-14)


def test_population_value_is_approached_as_n_grows():
    # Z = X + N(0, s_n² I_d), X ~ N(0, s_x² I_d): I = (d/2) log(1 + s_x²/s_n²) = log 2 ≈ 0.69 ≪ log N.
    # At finite N the empirical I(X;Z) of the sample differs from it by the sampling error of the
    # means (and a small downward bias). Seeds give independent samples: at each N their mean must be
    # within 4 standard errors (between-seed sd / √seeds) plus 4 MC standard errors, and that standard
    # error must shrink like 1/√N: by 4 from N = 200 to N = 3200, by more than 4/√F₀.₉₉(5, 5) = 1.2
    # allowing for the spread of the ratio of two 6-sample sds. (Comparing the two observed errors
    # instead would test noise: at N = 200 the error's own sd is ≈ 0.03, several times the error at
    # N = 3200.)
    d, truth = 2, math.log(2)
    ses = {}
    for n in (200, 3200):
        values, mc_se = [], []
        for seed in range(6):
            x = np.random.default_rng(100 + seed).standard_normal((n, d))
            r = rc.gaussian_channel_mi(x, noise_variance=1.0, n_draws=2, method="mc", random_state=seed)
            values.append(r.mi)
            mc_se.append(r.stderr)
        values = np.array(values)
        se = values.std(ddof=1) / math.sqrt(len(values)) + np.sqrt(np.mean(np.square(mc_se)) / len(values))
        assert abs(values.mean() - truth) <= 4 * se, (n, values.mean(), se)
        ses[n] = se
    assert ses[3200] < ses[200] / 1.2, ses


# ---------------------------------------------------------------------------------------------
# Equality with the dense numpy reference (same draws)
# ---------------------------------------------------------------------------------------------


def _compare(raw, want, keys):
    for key in keys:
        assert raw[key] == pytest.approx(want[key], rel=1e-9, abs=1e-10), key


@pytest.mark.parametrize("kind", ["shared", "per_sample", "dropout"])
@pytest.mark.parametrize("with_labels", [False, True])
def test_equals_dense_reference(kind, with_labels):
    rng = np.random.default_rng(11)
    n, d, m = 37, 3, 3
    means = rng.normal(scale=1.5, size=(n, d)) + 20.0
    labels = rng.integers(0, 3, n) if with_labels else None
    if kind == "shared":
        kwargs = {"noise_variance": np.array([0.5, 1.0, 2.0])}
        full = np.tile(kwargs["noise_variance"], (n, 1))
    elif kind == "per_sample":
        full = rng.uniform(0.05, 3.0, size=(n, d))
        kwargs = {"variances": full}
    else:
        kwargs = {"dropout_alpha": 0.01}
        full = 0.01 * means**2
    r = rc.gaussian_channel_mi(means, labels=labels, n_draws=m, random_state=5, **kwargs)
    draws = draw_noise(5, n, d, m)
    codes = None if labels is None else np.unique(labels, return_inverse=True)[1]
    want = ref.gaussian_channel_mi(means, full, draws, m, codes)
    assert r.mi == pytest.approx(want["mi"], rel=1e-9)
    assert r.stderr == pytest.approx(want["stderr"], rel=1e-7)
    assert r.upper == pytest.approx(want["kl"], rel=1e-9, abs=1e-10)
    assert r.lower == pytest.approx(want["bd"], rel=1e-9, abs=1e-10)
    assert r.maxent_upper == pytest.approx(want["maxent"], rel=1e-9)
    assert r.h_z_given_x == pytest.approx(want["h_z_given_x"], rel=1e-12)
    if with_labels:
        g = r.given_labels
        assert g.mi == pytest.approx(want["given_labels_mi"], rel=1e-9, abs=1e-10)
        assert g.stderr == pytest.approx(want["given_labels_stderr"], rel=1e-7)
        assert g.upper == pytest.approx(want["given_labels_kl"], rel=1e-9, abs=1e-10)
        assert g.lower == pytest.approx(want["given_labels_bd"], rel=1e-9, abs=1e-10)
        assert g.maxent_upper == pytest.approx(want["given_labels_maxent"], rel=1e-9)
        assert g.ceiling == pytest.approx(want["given_labels_ceiling"], rel=1e-12)
        assert r.labels.mi == pytest.approx(want["labels_mi"], rel=1e-9, abs=1e-10)
        assert r.labels.lower == pytest.approx(want["bd"] - want["given_labels_kl"], rel=1e-9, abs=1e-10)
        assert r.labels.upper == pytest.approx(want["kl"] - want["given_labels_bd"], rel=1e-9, abs=1e-10)


def test_core_equals_reference_with_large_variance_ratios():
    # Dropout on values spanning many orders of magnitude, floored: the Bhattacharyya loop's
    # renormalised running product must match the reference's per-coordinate logs.
    rng = np.random.default_rng(12)
    n, d = 25, 40
    means = rng.standard_normal((n, d)) * 10.0 ** rng.integers(-8, 4, size=(n, d))
    r = rc.gaussian_channel_mi(means, dropout_alpha=0.2, min_variance=1e-14, floor="absolute", method="bounds")
    full = np.maximum(0.2 * means**2, 1e-14)
    want = ref.gaussian_channel_mi(means, full, None, 1)
    assert r.upper == pytest.approx(want["kl"], rel=1e-9)
    assert r.lower == pytest.approx(want["bd"], rel=1e-9)


def test_same_bits_at_any_thread_count():
    rng = np.random.default_rng(13)
    means, v = rng.standard_normal((700, 5)), rng.uniform(0.1, 1, (700, 5))
    labels = rng.integers(0, 4, 700)
    before = rc.get_num_threads()
    try:
        rc.set_num_threads(1)
        one = rc.gaussian_channel_mi(means, v, labels=labels, n_draws=2)
        rc.set_num_threads(2)
        two = rc.gaussian_channel_mi(means, v, labels=labels, n_draws=2)
    finally:
        rc.set_num_threads(before)
    assert one == two


def test_float32_and_lists_are_accepted():
    rng = np.random.default_rng(14)
    means = rng.standard_normal((30, 2))
    a = rc.gaussian_channel_mi(means, noise_variance=0.5)
    b = rc.gaussian_channel_mi(means.astype(np.float32).astype(np.float64), noise_variance=0.5)
    c = rc.gaussian_channel_mi(means.astype(np.float32), noise_variance=0.5)
    assert b == c
    assert abs(a.mi - c.mi) < 1e-5
    rc.gaussian_channel_mi(means.tolist(), noise_variance=0.5)


def test_floors_are_counted():
    means = np.array([[0.0, 1.0], [2.0, 0.0], [1.0, 1.0]])
    r = rc.gaussian_channel_mi(means, dropout_alpha=0.5, min_variance=1e-6)
    assert r.n_floored == 2
    r = rc.gaussian_channel_mi(means, noise_variance=[0.0, 1.0], min_variance=1e-6)
    assert r.n_floored == 3  # one dimension, every sample


def test_maxent_is_infinite_when_the_covariance_is_singular():
    # Variances floored to 1e-300 next to O(1) means: Cov Z is singular in float64.
    means = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    r = rc.gaussian_channel_mi(means, noise_variance=0.0, min_variance=1e-300, method="bounds")
    assert r.maxent_upper == math.inf or r.maxent_upper >= r.log_n
    assert r.upper == pytest.approx(math.log(3), abs=1e-12)


# ---------------------------------------------------------------------------------------------
# Cancellation of the matrix-product form (docs/spec.md §3.11)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("c", [1.0, 1e2, 1e4, 1e6])
def test_product_form_does_not_cancel_at_any_scale(c):
    # Variances spanning twelve decades plus the scale (floored ReLU zeros, given explicitly; no
    # floor applied) and shared noise with a coordinate whose whitened means are 10⁷ apart: the
    # estimates equal the dense difference-form reference on the same draws. At c = 10⁴ the
    # matrix-product form alone put the KL "upper" bound below the Bhattacharyya "lower" one.
    rng = np.random.default_rng(21)
    n, m = 300, 2
    means = np.maximum(rng.standard_normal((n, 4)), 0) * c
    full = np.maximum(means**2, 1e-12)
    r = rc.gaussian_channel_mi(means, full, min_variance=0.0, n_draws=m, random_state=5)
    want = ref.gaussian_channel_mi(means, full, draw_noise(5, n, 4, m), m)
    for got, key in ((r.mi, "mi"), (r.upper, "kl"), (r.lower, "bd")):
        assert got == pytest.approx(want[key], rel=1e-9), key
    assert r.stderr == pytest.approx(want["stderr"], rel=1e-7)
    shared = np.c_[rng.integers(0, 2, 200) * 1e4 * c, rng.standard_normal((200, 2)) * c]
    noise = np.array([1e-6, 1.0, 1.0]) * c**2
    r = rc.gaussian_channel_mi(shared, noise_variance=noise, n_draws=m, random_state=6)
    want = ref.gaussian_channel_mi(shared, np.tile(noise, (200, 1)), draw_noise(6, 200, 3, m), m)
    for got, key in ((r.mi, "mi"), (r.upper, "kl"), (r.lower, "bd")):
        assert got == pytest.approx(want[key], rel=1e-9), key


# ---------------------------------------------------------------------------------------------
# Scale: I(X;Z) is invariant to scaling all means and standard deviations by one c > 0
# (docs/spec.md §3.3, §3.10, §3.11)
# ---------------------------------------------------------------------------------------------


def _scaled_channels():
    """Channels whose variances span many decades down to the floor, at scale 1."""
    rng = np.random.default_rng(21)
    relu = np.maximum(rng.standard_normal((300, 4)), 0)  # issue 14: dropout on ReLU, zeros floored
    spread = rng.standard_normal((200, 3))
    v = 10.0 ** rng.uniform(-13, 0, size=(200, 3))  # from below the floor up to 1
    v[::7, 1] = 0.0
    mixed = np.c_[rng.integers(0, 3, 150) * 5.0, rng.standard_normal(150)]  # a discrete coordinate
    return {
        "relu dropout": (relu, {"dropout_alpha": 1.0}),
        "per-sample variances down to the floor": (spread, {"variances": v}),
        "shared noise, one dimension noiseless": (mixed, {"noise_variance": [0.0, 0.5]}),
    }


@pytest.mark.parametrize("c", [1e-6, 1e-4, 1e-2, 1e2, 1e4, 1e6])
@pytest.mark.parametrize("case", list(_scaled_channels()))
def test_invariant_to_scaling_means_and_standard_deviations(case, c):
    # The floor is relative to the data's scale, so the same entries are floored at every scale and
    # the channel is exactly the scaled one: the Monte Carlo terms (same draws) are equal up to
    # rounding, so the estimates must agree within the standard error of their difference,
    # 4·√(se₁² + se_c²) (what the test may demand of two honest estimates, here far more than
    # needed), and the exact pairwise bounds to 1e-9 relative (each log-density and divergence is
    # accurate to 1e-11 nats, docs/spec.md §3.11). The bounds must stay ordered around the estimate.
    means, noise = _scaled_channels()[case]
    scaled = {k: v if k == "dropout_alpha" else np.asarray(v) * c**2 for k, v in noise.items()}
    kw = dict(n_draws=8, random_state=77)
    one = rc.gaussian_channel_mi(means, **noise, **kw)
    r = rc.gaussian_channel_mi(means * c, **scaled, **kw)
    assert r.n_floored == one.n_floored
    assert abs(r.mi - one.mi) <= 4 * math.hypot(r.stderr, one.stderr)
    assert r.lower == pytest.approx(one.lower, rel=1e-9, abs=1e-10)
    assert r.upper == pytest.approx(one.upper, rel=1e-9, abs=1e-10)
    assert r.maxent_upper == pytest.approx(one.maxent_upper, rel=1e-9)
    se4 = 4 * r.stderr
    assert 0 <= r.lower <= r.upper <= r.log_n + 1e-12
    assert r.lower <= r.mi + se4 and r.mi - se4 <= r.upper and r.mi <= r.log_n


@pytest.mark.parametrize("c", [1e-300, 1e-200, 1e155, 1e300])
def test_dropout_at_the_ends_of_float64(c):
    # Found by the fuzz: with the relative floor, means far outside the safe window (docs/spec.md
    # §0.8) are divided by a power of two before the dropout variances α·μ² are formed. Before,
    # at 1e-200 every α·μ² underflowed to 0 and was floored (5.53 nats instead of 3.61), at 1e155
    # it overflowed (a ValueError); the same draws now give the same numbers as at scale 1, up
    # to the rounding of mu·c, and H(Z|X) moves by d·log c.
    mu = np.maximum(np.random.default_rng(21).standard_normal((300, 4)), 0)
    kw = dict(dropout_alpha=1.0, n_draws=2, random_state=77)
    one, r = rc.gaussian_channel_mi(mu, **kw), rc.gaussian_channel_mi(mu * c, **kw)
    assert r.n_floored == one.n_floored
    for key in ("mi", "stderr", "lower", "upper", "maxent_upper"):
        assert getattr(r, key) == pytest.approx(getattr(one, key), rel=1e-9), key
    assert r.h_z_given_x == pytest.approx(one.h_z_given_x + 4 * np.log(c), rel=1e-12)
    # Unit noise on means of 1e155: s² = tr Cov Z / d is ~1e310, beyond float64 (it raised
    # OverflowError); the floor min_variance·s² is not, and the estimate is the exact log 2.
    far = np.array([[1.25e155], [-1.32e155]])
    assert rc.gaussian_channel_mi(far, noise_variance=1.0, method="bounds").lower == pytest.approx(np.log(2))


def test_absolute_floor_is_still_available():
    # floor="absolute" reads min_variance in the data's units (the earlier behaviour): scaling the
    # data then changes what is floored, hence I(X;Z); the relative default does not.
    mu = np.maximum(np.random.default_rng(21).standard_normal((300, 4)), 0)
    kw = dict(dropout_alpha=1.0, method="bounds")
    small = rc.gaussian_channel_mi(mu * 1e-4, floor="absolute", **kw)
    one = rc.gaussian_channel_mi(mu, floor="absolute", **kw)
    assert (small.n_floored, one.n_floored) == (591, 586)
    assert small.upper < one.upper - 0.05
    rel = rc.gaussian_channel_mi(mu * 1e-4, **kw)
    assert rel.n_floored == 586 and rel.upper == pytest.approx(one.upper, rel=1e-5)
    with pytest.raises(ValueError, match="floor: unknown value"):
        rc.gaussian_channel_mi(mu, floor="data", **kw)


# ---------------------------------------------------------------------------------------------
# The Monte Carlo noise stream (docs/spec.md §3.6, §0.6)
# ---------------------------------------------------------------------------------------------


def test_noise_stream_is_not_the_callers_default_rng_stream():
    # An int seed is salted: the noise of random_state=s is not default_rng(s)'s normals. A
    # Generator is used as given.
    for s in (0, 1, 7, 2**40):
        data = np.random.default_rng(s).standard_normal((50, 3))
        eps = draw_noise(s, 50, 3, 1)
        assert np.abs(np.corrcoef(data.ravel(), eps.ravel())[0, 1]) < 0.3
        assert not np.isin(data, eps).any()
    g = np.random.default_rng(5)
    assert np.array_equal(draw_noise(g, 10, 2, 1), np.random.default_rng(5).standard_normal((10, 2)))
    assert not np.array_equal(draw_noise(g, 10, 2, 1), np.random.default_rng(5).standard_normal((10, 2)))


def test_data_from_the_same_seed_gives_an_ordinary_estimate():
    # The README's example, smaller: means drawn with default_rng(1) and random_state=1. With the
    # noise taken from default_rng(1) itself, draw 0 of sample i was ε = μ_i (z = 2μ_i) and the
    # estimate came out 3.63 against 2.71 nats at N = 5000. Now seed 1 is one seed among others: it
    # must lie within 4 standard errors of their mean (whose own standard error is included).
    mu = np.random.default_rng(1).standard_normal((1000, 8))
    runs = [
        rc.gaussian_channel_mi(mu, noise_variance=1.0, n_draws=2, method="mc", random_state=s) for s in (1, 2, 3, 4, 5)
    ]
    others = np.array([r.mi for r in runs[1:]])
    se = math.hypot(runs[0].stderr, np.mean([r.stderr for r in runs[1:]]) / math.sqrt(len(others)))
    assert abs(runs[0].mi - others.mean()) <= 4 * se, (runs[0].mi, others)


@pytest.mark.parametrize("case", ["shared noise", "relu dropout"])
def test_reported_stderr_matches_the_spread_over_seeds(case):
    # 40 seeds on fixed data (drawn with seed 7, one of the 40): the estimates are independent and
    # nearly normal (means of N·M independent terms), so with the true sd σ, (K − 1)·S²/σ² ~ χ²(K − 1)
    # for their sample sd S, K = 40. The reported stderr estimates σ from N·M = 800 terms (its own
    # relative error, ≈ 1/√(2·800·40) for the mean over seeds, is negligible). S over the mean
    # reported stderr must lie in the central 99.9 % range of √(χ²(39)/39), [0.65, 1.38].
    from scipy.stats import chi2

    rng = np.random.default_rng(7)
    if case == "shared noise":
        means, noise = rng.standard_normal((400, 3)), {"noise_variance": 0.5}
    else:
        means, noise = np.maximum(rng.standard_normal((400, 3)), 0), {"dropout_alpha": 0.5}
    k = 40
    runs = [rc.gaussian_channel_mi(means, n_draws=2, method="mc", random_state=s, **noise) for s in range(k)]
    spread = np.std([r.mi for r in runs], ddof=1)
    ratio = spread / np.mean([r.stderr for r in runs])
    low, high = (math.sqrt(chi2.ppf(q, k - 1) / (k - 1)) for q in (0.0005, 0.9995))
    assert low <= ratio <= high, (ratio, low, high)


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------

MEANS = np.zeros((4, 2))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({}, "exactly one of"),
        ({"noise_variance": 1.0, "dropout_alpha": 0.1}, "noise_variance and dropout_alpha"),
        ({"variances": np.ones((4, 2, 2))}, "a linear layer after the noise as transform=W"),
        ({"variances": np.ones((3, 2))}, "variances: has shape"),
        ({"variances": -np.ones((4, 2))}, "variances: must be >= 0"),
        ({"variances": np.full((4, 2), np.nan)}, r"variances: contains NaN or inf \(first at row 0\)"),
        ({"noise_variance": [1.0, 2.0, 3.0]}, "noise_variance: expected a number or a length-2"),
        ({"noise_variance": -1.0}, "noise_variance: must be >= 0"),
        ({"dropout_alpha": 0.0}, "dropout_alpha: must be > 0"),
        ({"noise_variance": 1.0, "n_draws": 0}, "n_draws: must be at least 1"),
        ({"noise_variance": 1.0, "method": "exact"}, "method: unknown value"),
        ({"noise_variance": 1.0, "min_variance": -1.0}, "min_variance: must be finite and >= 0"),
        ({"noise_variance": 0.0, "min_variance": 0.0}, "min_variance: a variance is 0"),
        ({"noise_variance": 1.0, "labels": [0, 0, 0, 0]}, "labels: need at least 2 classes"),
        ({"noise_variance": 1.0, "labels": [0, 1, 0]}, "labels: has 3 entries"),
        ({"noise_variance": 1.0, "base": 1.0}, "base:"),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rc.gaussian_channel_mi(MEANS, **kwargs)


def test_bad_means():
    bad = np.zeros((4, 2))
    bad[2, 1] = np.inf
    with pytest.raises(ValueError, match=r"means: contains NaN or inf \(first at row 2\)"):
        rc.gaussian_channel_mi(bad, noise_variance=1.0)
    with pytest.raises(ValueError, match="means: expected a 1-D"):
        rc.gaussian_channel_mi(np.zeros((2, 2, 2)), noise_variance=1.0)
    with pytest.raises(ValueError, match="means: empty input"):
        rc.gaussian_channel_mi(np.zeros((0, 2)), noise_variance=1.0)
    with pytest.raises(TypeError, match="n_draws"):
        rc.gaussian_channel_mi(MEANS, noise_variance=1.0, n_draws=2.5)
