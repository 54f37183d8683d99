"""A linear layer after the Gaussian channel: gaussian_channel_mi(..., transform=W) (docs/spec.md §3.14).

The reference below is brute force in the r coordinates of Z = W·T itself, with no reduction to the
rank: every component is scipy's multivariate normal (pseudo-determinant and pseudo-inverse on the
range of W when W is rank-deficient), all N² pairs, and the Monte Carlo points z = W·t are the images
of the very draws t of T that the library uses (``draw_noise``)."""

import math
import warnings

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

import repcompress as rc
from repcompress.gaussian_channel import draw_noise

# ----------------------------------------------------------------------------- brute-force reference


def _pinv_logpdet(c):
    """Pseudo-inverse, log pseudo-determinant and rank of a symmetric PSD matrix."""
    w, q = np.linalg.eigh(c)
    keep = w > 1e-10 * w.max()
    wk, qk = w[keep], q[:, keep]
    return (qk / wk) @ qk.T, float(np.log(wk).sum()), int(keep.sum())


def _lse_bound(div, groups):
    """−(1/N) Σ_i log (1/|g_i|) Σ_{j in g_i} exp(−D_ij)."""
    n = div.shape[0]
    return float(np.mean([math.log(len(groups[i])) - logsumexp(-div[i, groups[i]]) for i in range(n)]))


def reference(means, variances, w, eps, labels=None):
    """I(X;Z) (or I(X;Z|Y) with labels) of Z = W·T, T | x_i ~ N(μ_i, diag v_i): Monte Carlo at the
    points z = W(μ_i + √v_i ⊙ ε), KL and Bhattacharyya pairwise bounds, max-entropy bound, h(Z|X)."""
    n, _ = means.shape
    m = means @ w.T
    covs = np.einsum("ak,ik,bk->iab", w, variances, w)
    reps = eps.shape[0] // n
    z = np.einsum("ak,mik->mia", w, means[None] + np.sqrt(variances)[None] * eps.reshape(reps, n, -1))
    groups = [np.arange(n)] * n if labels is None else [np.flatnonzero(labels == labels[i]) for i in range(n)]
    # log q_j(z_mi) for all j, m, i.
    logq = np.stack(
        [multivariate_normal(m[j], covs[j], allow_singular=True).logpdf(z.reshape(-1, m.shape[1])) for j in range(n)]
    ).reshape(n, reps, n)
    terms = [
        logq[i, k, i] - logsumexp(logq[groups[i], k, i]) + math.log(len(groups[i]))
        for k in range(reps)
        for i in range(n)
    ]
    pinv, logpdet, rank = zip(*(_pinv_logpdet(c) for c in covs), strict=True)
    kl = np.empty((n, n))
    bd = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            delta = m[i] - m[j]
            kl[i, j] = 0.5 * (np.trace(pinv[j] @ covs[i]) + delta @ pinv[j] @ delta - rank[j] + logpdet[j] - logpdet[i])
            mean_pinv, mean_logpdet, _ = _pinv_logpdet(0.5 * (covs[i] + covs[j]))
            bd[i, j] = delta @ mean_pinv @ delta / 8 + 0.5 * mean_logpdet - 0.25 * (logpdet[i] + logpdet[j])
    h = float(np.mean([0.5 * (rk * math.log(2 * math.pi * math.e) + ld) for rk, ld in zip(rank, logpdet, strict=True)]))

    def maxent(idx):
        centred = m[idx] - m[idx].mean(axis=0)
        cov = covs[idx].mean(axis=0) + centred.T @ centred / len(idx)
        _, ld, _ = _pinv_logpdet(cov)
        return 0.5 * ld - 0.5 * np.mean([logpdet[i] for i in idx])

    classes = [np.arange(n)] if labels is None else [np.flatnonzero(labels == c) for c in np.unique(labels)]
    return {
        "mi": float(np.mean(terms)),
        "upper": _lse_bound(kl, groups),
        "lower": _lse_bound(bd, groups),
        "maxent_upper": float(sum(len(c) / n * maxent(c) for c in classes)),
        "h_z_given_x": h,
    }


# ------------------------------------------------------------------------------------- helpers

FIELDS = ("mi", "stderr", "lower", "upper", "maxent_upper")


def data(n, d, seed, positive=False):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(n, d)) * 1.5
    if positive:
        means = np.log1p(np.exp(means)) + 0.1  # softplus: never exactly 0 (no floored variances)
    variances = rng.uniform(0.3, 2.0, size=(n, d))
    labels = rng.integers(0, 3, size=n)
    return means, variances, labels


def assert_same(got, want, rtol, fields=FIELDS, what=""):
    for f in fields:
        a, b = getattr(got, f), getattr(want, f)
        if b is None:
            assert a is None, f"{what} {f}: {a} vs None"
            continue
        assert a == pytest.approx(b, rel=rtol, abs=rtol), f"{what} {f}: {a} vs {b}"


def assert_all_same(got, want, rtol):
    assert_same(got, want, rtol)
    for part in ("given_labels", "labels"):
        if getattr(want, part) is not None:
            assert_same(getattr(got, part), getattr(want, part), rtol, (*FIELDS, "ceiling"), what=part)


# -------------------------------------------------------------- (1) invertible W: no change in I


@pytest.mark.parametrize("noise", ["variances", "dropout_alpha", "noise_variance"])
def test_square_invertible_transform_changes_no_information(noise):
    means, variances, labels = data(60, 4, 1, positive=True)
    kwargs = {
        "variances": {"variances": variances},
        "dropout_alpha": {"dropout_alpha": 0.4},
        "noise_variance": {"noise_variance": [0.5, 1.0, 2.0, 0.7]},
    }[noise]
    w = np.random.default_rng(2).normal(size=(4, 4)) + 2 * np.eye(4)
    plain = rc.gaussian_channel_mi(means, labels=labels, n_draws=3, **kwargs)
    linear = rc.gaussian_channel_mi(means, labels=labels, n_draws=3, transform=w, **kwargs)
    # Z = W·t is the image of the same draws t, and every Monte Carlo term is invariant to an
    # invertible map of z: the estimate is the same number, not merely within its error.
    assert_all_same(linear, plain, 1e-9)
    assert linear.rank == 4 and plain.rank is None
    assert linear.h_z_given_x == pytest.approx(plain.h_z_given_x + math.log(abs(np.linalg.det(w))), rel=1e-12)


# ------------------------------------------------------------ (2) rank-deficient W vs brute force


@pytest.mark.parametrize(
    "shape, rank, noise",
    [((2, 5), 2, "variances"), ((6, 4), 2, "dropout_alpha"), ((3, 5), 3, "noise_variance"), ((6, 4), 2, "variances")],
)
@pytest.mark.parametrize("with_labels", [False, True])
def test_transform_against_brute_force_reference(shape, rank, noise, with_labels):
    r, d = shape
    n, reps = 45, 2
    means, variances, labels = data(n, d, 3, positive=True)
    rng = np.random.default_rng(4)
    w = rng.normal(size=(r, rank)) @ rng.normal(size=(rank, d))  # rank `rank` (r × d)
    kwargs = {"variances": {"variances": variances}, "dropout_alpha": {"dropout_alpha": 0.3}}.get(
        noise, {"noise_variance": 0.8}
    )
    v = {"variances": variances, "dropout_alpha": 0.3 * means**2}.get(noise, np.full((n, d), 0.8))
    got = rc.gaussian_channel_mi(
        means, n_draws=reps, random_state=5, transform=w, labels=labels if with_labels else None, **kwargs
    )
    eps = draw_noise(5, n, d, reps)
    want = reference(means, v, w, eps, labels if with_labels else None)
    part = got.given_labels if with_labels else got
    for f in ("mi", "upper", "lower", "maxent_upper"):
        assert getattr(part, f) == pytest.approx(want[f], abs=1e-10, rel=1e-10), f
    assert got.h_z_given_x == pytest.approx(want["h_z_given_x"], abs=1e-10, rel=1e-10)
    assert got.rank == rank and got.n_floored == 0
    assert 0 <= got.lower <= got.upper <= got.log_n
    assert got.lower <= got.mi + 4 * got.stderr and got.mi - 4 * got.stderr <= got.upper


def test_labels_quantities_follow_from_the_same_draws():
    means, variances, labels = data(50, 5, 6)
    w = np.random.default_rng(7).normal(size=(3, 5))
    r = rc.gaussian_channel_mi(means, variances, labels=labels, transform=w, n_draws=2)
    assert r.labels.mi == pytest.approx(r.mi - r.given_labels.mi, abs=1e-12)
    assert r.labels.lower == pytest.approx(r.lower - r.given_labels.upper)
    assert r.labels.upper == pytest.approx(r.upper - r.given_labels.lower)


# ------------------------------------------------------------ (3) shared noise = full covariance


def test_shared_noise_equals_the_full_covariance_path():
    means, _, labels = data(70, 5, 8)
    sigma2 = np.array([0.4, 1.0, 2.5, 0.9, 1.3])
    w = np.random.default_rng(9).normal(size=(3, 5))
    shared = rc.gaussian_channel_mi(means, noise_variance=sigma2, labels=labels, transform=w, n_draws=2)
    full = rc.gaussian_channel_mi(means, np.tile(sigma2, (70, 1)), labels=labels, transform=w, n_draws=2)
    assert_all_same(full, shared, 1e-9)
    assert full.h_z_given_x == pytest.approx(shared.h_z_given_x, rel=1e-12)


# ---------------------------------------------------------------------------- (4) invariances


def test_scaling_and_rotations():
    means, variances, labels = data(40, 5, 10)
    rng = np.random.default_rng(11)
    w = rng.normal(size=(3, 5))
    base = rc.gaussian_channel_mi(means, variances, labels=labels, transform=w, n_draws=2)
    for c in (1e-3, 7.0):
        # (W/c, c·μ, c²·v): the same Z, draw for draw; h(Z|X) too.
        same = rc.gaussian_channel_mi(c * means, c**2 * variances, labels=labels, transform=w / c, n_draws=2)
        assert_all_same(same, base, 1e-9)
        assert same.h_z_given_x == pytest.approx(base.h_z_given_x, rel=1e-9, abs=1e-9)
        # c·W scales Z: no information changes, h(Z|X) moves by ρ log c.
        scaled = rc.gaussian_channel_mi(means, variances, labels=labels, transform=c * w, n_draws=2)
        assert_all_same(scaled, base, 1e-9)
        assert scaled.h_z_given_x == pytest.approx(base.h_z_given_x + 3 * math.log(c), rel=1e-9)
    # An orthogonal map of Z (and of the rows of W) changes nothing, h(Z|X) included; nor do extra
    # rows that repeat others (the rank stays 3), nor translating the means.
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rotated = rc.gaussian_channel_mi(means, variances, labels=labels, transform=q @ w, n_draws=2)
    assert_all_same(rotated, base, 1e-9)
    assert rotated.h_z_given_x == pytest.approx(base.h_z_given_x, rel=1e-9)
    repeated = rc.gaussian_channel_mi(means + 3.0, variances, labels=labels, transform=np.vstack([w, w[:1]]), n_draws=2)
    assert repeated.rank == 3
    assert_all_same(repeated, base, 1e-9)


def test_permuting_the_samples_leaves_the_bounds():
    means, variances, labels = data(40, 4, 12)
    w = np.random.default_rng(13).normal(size=(2, 4))
    perm = np.random.default_rng(14).permutation(40)
    a = rc.gaussian_channel_mi(means, variances, labels=labels, transform=w, method="bounds")
    b = rc.gaussian_channel_mi(means[perm], variances[perm], labels=labels[perm], transform=w, method="bounds")
    for f in ("lower", "upper", "maxent_upper"):
        assert getattr(b, f) == pytest.approx(getattr(a, f), rel=1e-12)
        assert getattr(b.given_labels, f) == pytest.approx(getattr(a.given_labels, f), rel=1e-12)


def test_data_processing_against_the_noise_output():
    # I(X;W·T) ≤ I(X;T) for the exact quantities; the paired Monte Carlo estimates (same draws of T)
    # and the pairwise bounds, which obey it too here, show it.
    means, variances, _ = data(80, 6, 15)
    w = np.random.default_rng(16).normal(size=(2, 6))
    t = rc.gaussian_channel_mi(means, variances, n_draws=4)
    z = rc.gaussian_channel_mi(means, variances, transform=w, n_draws=4)
    assert z.mi < t.mi and z.upper < t.upper and z.lower < t.lower


def test_huge_and_tiny_transforms():
    means, variances, _ = data(30, 3, 17)
    w = np.random.default_rng(18).normal(size=(2, 3))
    base = rc.gaussian_channel_mi(means, variances, transform=w)
    for c in (2.0**900, 2.0**-900):
        r = rc.gaussian_channel_mi(means, variances, transform=w * c)
        assert_same(r, base, 1e-9)
        assert r.h_z_given_x == pytest.approx(base.h_z_given_x + 2 * math.log(c), rel=1e-9)


# --------------------------------------------------------------------------- (5) argument errors


@pytest.mark.parametrize(
    "w, error",
    [
        (np.ones((2, 4)), ValueError),  # d = 3
        (np.ones(3), ValueError),  # 1-D
        (np.ones((1, 2, 3)), ValueError),
        (np.ones((0, 3)), ValueError),
        (np.array([[1.0, np.nan, 0.0]]), ValueError),
        (np.array([[1.0, 0.0, np.inf]]), ValueError),
        (np.ones((2, 3)).astype(str), TypeError),
        (np.ones((2, 3), complex), TypeError),
        ([[1.0, 2.0, 3.0], [1.0]], TypeError),
    ],
)
def test_bad_transforms_are_named(w, error):
    means, variances, _ = data(10, 3, 19)
    with pytest.raises(error, match=r"^transform: "):
        rc.gaussian_channel_mi(means, variances, transform=w)


def test_rank_zero_is_zero_with_a_warning():
    means, variances, labels = data(12, 3, 20)
    with pytest.warns(RuntimeWarning, match="^transform: has rank 0"):
        r = rc.gaussian_channel_mi(means, variances, labels=labels, transform=np.zeros((2, 3)))
    assert (r.mi, r.stderr, r.lower, r.upper, r.maxent_upper, r.rank) == (0.0, 0.0, 0.0, 0.0, 0.0, 0)
    assert r.given_labels.upper == 0.0 and r.labels.mi == 0.0
    assert r.labels.ceiling == pytest.approx(rc.gaussian_channel_mi(means, variances, labels=labels).labels.ceiling)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rc.gaussian_channel_mi(means, variances, transform=np.eye(3)[:1] * 1e-300)  # tiny, not zero: rank 1
