"""rc.mutual_info_mixed, Gao, Kannan, Oh & Viswanath's (2017) estimator for discrete–continuous
mixtures (docs/spec.md §1.14): exact against the brute-force reference (tests/reference.py,
identical counts) on data full of atoms and ties, and statistically against exact MI."""

from __future__ import annotations

import math

import numpy as np
import pytest

import repcompress as rc
from reference import mixed, mixed_counts
from repcompress import _core
from repcompress.testing import DiscreteContinuousMixture, DiscreteUniformMixture


def _data(kind, seed, n=300):
    """(x, y) with many exact ties: purely discrete, purely continuous, or mixed."""
    rng = np.random.default_rng(seed)
    if kind == "discrete":
        x = rng.integers(0, 4, (n, 1)).astype(np.float64)
        y = (x + rng.integers(0, 2, (n, 1))) % 3
        return x, y
    if kind == "continuous":
        x = rng.standard_normal((n, 2))
        return x, x[:, :1] + 0.5 * rng.standard_normal((n, 1))
    if kind == "mixed":
        # ReLU-like: exact zeros in x, a discrete label and a continuous column in y.
        h = rng.standard_normal((n, 2))
        x = np.maximum(h, 0.0)
        label = (h[:, :1] > 0.3).astype(np.float64)
        y = np.hstack([label, np.where(rng.random((n, 1)) < 0.5, 0.0, h[:, 1:] + rng.standard_normal((n, 1)))])
        return x, y
    if kind == "grid":
        # Quantised values: a coarse grid, so both atoms and equal non-zero distances abound.
        x = np.round(rng.standard_normal((n, 1)) * 2) / 2
        y = np.round((x + rng.standard_normal((n, 1))) * 2) / 2
        return x, y
    raise AssertionError(kind)


KINDS = ("discrete", "continuous", "mixed", "grid")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("k", (1, 3, 8))
@pytest.mark.parametrize("neighbors", ("auto", "kdtree", "brute"))
def test_counts_and_value_equal_the_reference(kind, k, neighbors):
    for seed in range(3):
        x, y = _data(kind, seed)
        want_k, want_x, want_y = mixed_counts(x, y, k)
        got_k, got_x, got_y = _core.mixed_counts(x, y, k, neighbors)
        np.testing.assert_array_equal(got_k, want_k)
        np.testing.assert_array_equal(got_x, want_x)
        np.testing.assert_array_equal(got_y, want_y)
        got = rc.mutual_info_mixed(x, y, k=k, normalize=False, neighbors=neighbors)
        assert abs(got - mixed(x, y, k)) <= 1e-12, (kind, k, seed)


def test_float32_counts_in_float32():
    x, y = _data("mixed", 7)
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    assert abs(rc.mutual_info_mixed(x32, y32, normalize=False) - mixed(x32, y32, 3)) <= 1e-12


def test_atoms_need_the_zero_distance_count():
    # Purely discrete data: every rho_i is 0, so every k~_i is the atom's size minus one; plain
    # k would give another value (the reference is checked to take this branch).
    x, y = _data("discrete", 1)
    k_tilde, _, _ = mixed_counts(x, y, 3)
    assert (k_tilde > 3).all()
    assert abs(rc.mutual_info_mixed(x, y, normalize=False) - mixed(x, y, 3)) <= 1e-12


def test_normalisation_keeps_atoms_and_removes_units():
    # Dividing a column by its standard deviation maps equal values to equal values: the atoms'
    # counts stay, and the estimate no longer depends on each column's unit. A power of two
    # scales every distance exactly, so the unnormalised estimate does not change either.
    x, y = _data("mixed", 3)
    assert rc.mutual_info_mixed(x * 8.0, y, normalize=False) != rc.mutual_info_mixed(x, y, normalize=False)
    assert rc.mutual_info_mixed(x * 8.0, y / 4.0) == rc.mutual_info_mixed(x, y)
    k_plain = mixed_counts(x, y, 3)[0]
    scaled = [x / x.std(axis=0), y / y.std(axis=0)]
    np.testing.assert_array_equal(mixed_counts(*scaled, 3)[0] > 3, k_plain > 3)


# Statistical checks against exact MI. Spread measured over 40 independent data seeds
# (10_000 + s, s < 40; N = 4000, k = 3, default normalize; the estimator itself draws nothing), and
# the tests below use other data seeds. Tolerance as in tests/test_statistics.py: a single estimate
# lies within |bias| + 4 sd of the truth unless the estimator changed (probability of a false
# alarm under normality about 6e-5).
N = 4000
# case -> (bias, sd) of mutual_info_mixed, measured as above.
MIXED_SPREAD = {
    "gao4": (-0.0017, 0.0063),
    "discrete_channel": (-0.0058, 0.0161),
    # The paper's Gaussian + binary-channel mixture: a known finite-N underestimate of 7 sd (the
    # atoms at ±1 sit inside the Gaussian's bulk, so continuous samples near them count the atoms in
    # their marginal balls); it shrinks with N (−0.186 at N = 2000, 5 seeds).
    "paper_mixture": (-0.1414, 0.0190),
}


def _discrete_channel(n, rng):
    """X uniform on {0, 1, 2, 3}; Y = X with probability 0.7, else one of the other three uniformly:
    I = log 4 − H(0.7, 0.1, 0.1, 0.1) = 0.4458 nats."""
    x = rng.integers(0, 4, n)
    keep = rng.random(n) < 0.7
    other = (x + rng.integers(1, 4, n)) % 4
    return x.astype(np.float64), np.where(keep, x, other).astype(np.float64)


DISCRETE_CHANNEL_MI = math.log(4) + 0.7 * math.log(0.7) + 3 * 0.1 * math.log(0.1)


def test_discrete_labels_and_continuous_features():
    # Gao et al.'s example: Y uniform on {0, 1, 2, 3}, X | Y uniform on [Y, Y + 2):
    # I = log 4 − (3/4) log 2 = 0.8664 nats (repcompress.testing.DiscreteUniformMixture.gao).
    mixture = DiscreteUniformMixture.gao(4)
    x, y = mixture.sample(N, np.random.default_rng(71))
    bias, sd = MIXED_SPREAD["gao4"]
    estimate = rc.mutual_info_mixed(x, y)
    assert abs(estimate - mixture.mi) <= abs(bias) + 4 * sd, (estimate, mixture.mi)


def test_purely_discrete_data():
    # Every sample sits on an atom (16 joint atoms of ~N/40 to ~N/6 samples): the estimate is the
    # plug-in MI with ψ for log, its error O(1/atom size) plus the plug-in's own spread.
    x, y = _discrete_channel(N, np.random.default_rng(72))
    bias, sd = MIXED_SPREAD["discrete_channel"]
    estimate = rc.mutual_info_mixed(x, y)
    assert abs(estimate - DISCRETE_CHANNEL_MI) <= abs(bias) + 4 * sd, (estimate, DISCRETE_CHANNEL_MI)


def test_the_papers_mixture_is_underestimated_no_more_than_measured():
    mixture = DiscreteContinuousMixture()
    assert abs(mixture.mi - 1.2924) < 1e-4  # h_b(½) + ½(−½ log 0.19) + ½(log 2 − H_b(0.9))
    x, y = mixture.sample(N, np.random.default_rng(73))
    bias, sd = MIXED_SPREAD["paper_mixture"]
    estimate = rc.mutual_info_mixed(x, y)
    assert abs(estimate - (mixture.mi + bias)) <= 4 * sd, (estimate, mixture.mi)


def test_plain_ksg_is_badly_wrong_on_atoms_where_the_mixed_estimator_is_right():
    # KSG-1 on the raw data (no tie-breaking jitter): on an atom ε_i = 0, the strict counts are 0
    # and every such sample contributes ψ(k) + ψ(N) − 2ψ(1) ≈ ψ(N). Measured over 20 seeds (the
    # seeds of MIXED_SPREAD): +9.93 nats too high on the discrete channel, +4.51 on the paper's
    # mixture; far outside the mixed estimator's tolerance. (With the default jitter of 1e-10 KSG-1
    # splits each atom into a tiny cloud and, on these examples, lands on the mixed estimate's mean;
    # the mixed estimator needs no noise and no scale for it.)
    x, y = _discrete_channel(N, np.random.default_rng(74))
    plain = rc.mutual_info(x, y, jitter=0.0)
    mixed_estimate = rc.mutual_info_mixed(x, y)
    bias, sd = MIXED_SPREAD["discrete_channel"]
    assert abs(mixed_estimate - DISCRETE_CHANNEL_MI) <= abs(bias) + 4 * sd
    assert plain - DISCRETE_CHANNEL_MI > 5.0, plain
    mixture = DiscreteContinuousMixture()
    x, y = mixture.sample(N, np.random.default_rng(75))
    assert rc.mutual_info(x, y, jitter=0.0) - mixture.mi > 2.0
    bias, sd = MIXED_SPREAD["paper_mixture"]
    assert abs(rc.mutual_info_mixed(x, y) - (mixture.mi + bias)) <= 4 * sd


def test_confidence_interval_by_half_sampling_in_the_core():
    x, y = _discrete_channel(2000, np.random.default_rng(76))
    x = x + (np.random.default_rng(77).random(2000) < 0.5) * np.random.default_rng(78).standard_normal(2000)
    ci = rc.confidence_interval(rc.mutual_info_mixed, x, y, n_resamples=30, normalize=False, progress=False)
    assert ci.method.startswith("half-sampling")
    assert ci.low < ci.value < ci.high
    assert ci.value == rc.mutual_info_mixed(x, y, normalize=False)
    # Resample b is the estimator on the rows the call draws (one 64-bit seed from random_state=0).
    seed = int(np.random.default_rng(0).integers(0, 2**64, dtype=np.uint64))
    rows = _core.Draws("subsample", 2000, seed).rows(0, 3)
    for b in range(3):
        assert ci.resamples[b] == rc.mutual_info_mixed(x[rows[b]], y[rows[b]], normalize=False)
    with pytest.raises(ValueError, match="bootstrap"):
        rc.confidence_interval(rc.mutual_info_mixed, x, y, method="bootstrap", n_resamples=5)


def test_bad_input_names_the_argument():
    x, y = _data("mixed", 0)
    with pytest.raises(ValueError, match=r"^y: has 10 samples but x has 300"):
        rc.mutual_info_mixed(x, y[:10])
    with pytest.raises(ValueError, match=r"^k: must be smaller"):
        rc.mutual_info_mixed(x[:5], y[:5], k=5)
    with pytest.raises(ValueError, match=r"^x: contains NaN"):
        rc.mutual_info_mixed(np.full(10, np.nan), np.zeros(10))
    with pytest.raises(TypeError, match="jitter"):
        rc.mutual_info_mixed(x, y, jitter=1e-10)  # atoms must not be split: no jitter option
    with pytest.raises(TypeError, match="device"):
        rc.mutual_info_mixed(x, y, device="cpu")  # the core only
