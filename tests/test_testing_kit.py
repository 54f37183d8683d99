"""repcompress.testing: each exact value against an independent route to it (a closed form, another
formula, scipy's own densities and entropies, numerical integration), each sampler against the
distribution it claims, and the hypothesis strategies' contract (docs/spec.md §10)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

import repcompress as rc
from repcompress.testing import (
    MAPS,
    CorrelatedGaussian,
    DiscreteUniformMixture,
    GaussianChannel,
    StudentT,
    Transformed,
    gaussian_entropy,
)
from repcompress.testing import strategies as rst

COV = np.array(
    [
        [1.0, 0.5, 0.2, -0.1],
        [0.5, 2.0, 0.3, 0.4],
        [0.2, 0.3, 1.5, 0.6],
        [-0.1, 0.4, 0.6, 1.0],
    ]
)


@pytest.mark.parametrize(("d", "rho"), [(1, 0.0), (1, 0.6), (3, -0.9)])
def test_isotropic_gaussian_mi_is_the_closed_form(d, rho):
    g = CorrelatedGaussian.isotropic(d, rho)
    assert g.mi == pytest.approx(-0.5 * d * math.log(1 - rho**2), rel=1e-12, abs=1e-15)
    assert g.entropy_x == pytest.approx(0.5 * d * math.log(2 * math.pi * math.e), rel=1e-12)


@pytest.mark.parametrize("dim_x", [1, 2, 3])
def test_gaussian_mi_by_the_conditional_covariance(dim_x):
    """I = ½ log det Σ_YY − ½ log det Σ_Y|X, with Σ_Y|X = Σ_YY − Σ_YX Σ_XX⁻¹ Σ_XY (another formula),
    and h(X) against scipy's multivariate normal entropy."""
    g = CorrelatedGaussian(COV, dim_x)
    a, b, c = COV[:dim_x, :dim_x], COV[:dim_x, dim_x:], COV[dim_x:, dim_x:]
    conditional = c - b.T @ np.linalg.solve(a, b)
    assert g.mi == pytest.approx(0.5 * math.log(np.linalg.det(c) / np.linalg.det(conditional)), rel=1e-12)
    assert g.entropy_x == pytest.approx(stats.multivariate_normal(cov=a).entropy(), rel=1e-12)
    assert g.entropy_y == pytest.approx(gaussian_entropy(c), rel=1e-15)


def test_gaussian_sampler_has_the_covariance():
    # entries of a sample covariance of 2·10⁵ rows have sd ≤ √(2·2·2/n) ≈ 0.0063: 6 sd allowed
    x, y = CorrelatedGaussian(COV, 2).sample(200_000, np.random.default_rng(3))
    assert np.abs(np.cov(np.hstack([x, y]).T) - COV).max() < 0.04


def test_student_t_against_scipy_densities_and_entropies():
    """The MI by entropies against a Monte Carlo of log p(x,y) − log p(x) − log p(y) with scipy's
    multivariate t density and sampler (5 standard errors), and the entropies against scipy's."""
    t = StudentT(COV[:3, :3], 1, 3.0)
    joint = stats.multivariate_t(shape=COV[:3, :3], df=3)
    assert t.entropy_x == pytest.approx(stats.t(3).entropy(), rel=1e-12)
    assert t.entropy_y == pytest.approx(stats.multivariate_t(shape=COV[1:3, 1:3], df=3).entropy(), rel=1e-12)
    s = joint.rvs(size=200_000, random_state=np.random.default_rng(11))
    ratio = (
        joint.logpdf(s) - stats.t(3).logpdf(s[:, 0]) - stats.multivariate_t(shape=COV[1:3, 1:3], df=3).logpdf(s[:, 1:])
    )
    se = ratio.std() / math.sqrt(ratio.size)
    assert abs(ratio.mean() - t.mi) < 5 * se
    # uncorrelated but dependent: the shared scale alone
    assert StudentT(np.eye(2), 1, 2.0).mi > 0.05


def test_student_t_sampler_marginal_is_the_t_distribution():
    t = StudentT(COV[:3, :3], 2, 5.0)
    _, y = t.sample(20_000, np.random.default_rng(4))
    # coordinate 2 of the joint: scale √Σ₂₂ = √1.5; KS at 1e-4 (a false alarm once in 10⁴ runs)
    assert stats.kstest(y[:, 0] / math.sqrt(1.5), stats.t(5.0).cdf).pvalue > 1e-4


def test_mixture_against_numerical_integration():
    mix = DiscreteUniformMixture([0.2, 0.5, 0.3], [0.0, 0.5, 3.0], [1.0, 2.0, 0.5])

    def density(v):
        return 0.2 * (0 <= v < 1) / 1.0 + 0.5 * (0.5 <= v < 2.5) / 2.0 + 0.3 * (3.0 <= v < 3.5) / 0.5

    def integrand(v):
        f = density(v)
        return -f * math.log(f) if f > 0 else 0.0

    pieces = [(0.0, 0.5), (0.5, 1.0), (1.0, 2.5), (2.5, 3.0), (3.0, 3.5)]
    h_x = sum(integrate.quad(integrand, lo, hi)[0] for lo, hi in pieces)
    h_x_given_y = 0.2 * math.log(1.0) + 0.5 * math.log(2.0) + 0.3 * math.log(0.5)
    assert mix.entropy_x == pytest.approx(h_x, rel=1e-10)
    assert mix.mi == pytest.approx(h_x - h_x_given_y, rel=1e-10)
    assert mix.entropy_y == pytest.approx(stats.entropy([0.2, 0.5, 0.3]), rel=1e-12)
    x, y = mix.sample(50_000, np.random.default_rng(5))
    # class frequencies and the class-wise ranges
    assert np.abs(np.bincount(y) / y.size - [0.2, 0.5, 0.3]).max() < 0.01  # sd ≤ 0.0023: over 4 sd
    assert x[y == 2].min() >= 3.0 and x[y == 2].max() < 3.5


@pytest.mark.parametrize("m", [1, 2, 5, 9])
def test_gao_example_is_the_papers_closed_form(m):
    assert DiscreteUniformMixture.gao(m).mi == pytest.approx(math.log(m) - (m - 1) / m * math.log(2), abs=1e-12)


def test_transformed_keeps_the_mi_and_maps_are_strictly_increasing():
    grid = np.linspace(-30, 30, 20_001)
    for name, f in MAPS.items():
        with np.errstate(over="ignore"):
            values = f(grid)
        finite = np.isfinite(values)
        assert np.all(np.diff(values[finite]) > 0) or name == "sigmoid", name
        if name == "sigmoid":  # saturates to 1.0 in float64 beyond ~37; strictly increasing where resolvable
            assert np.all(np.diff(values[np.abs(grid) < 15]) > 0)
    base = CorrelatedGaussian(COV, 2)
    t = Transformed(base, "cube", "asinh")
    assert t.mi == base.mi and (t.dim_x, t.dim_y) == (2, 2)
    x, y = t.sample(10, np.random.default_rng(1))
    bx, by = base.sample(10, np.random.default_rng(1))
    np.testing.assert_array_equal(x, bx**3)
    np.testing.assert_array_equal(y, np.arcsinh(by))


def test_gaussian_channel_is_the_gaussian_of_its_covariance():
    ch = GaussianChannel(dim=2, signal_variance=1.5, noise_variance=0.5, n_classes=3, seed=2)
    s, n = 1.5, 0.5
    per_class = np.block([[s * np.eye(2), s * np.eye(2)], [s * np.eye(2), (s + n) * np.eye(2)]])
    assert ch.mi == pytest.approx(CorrelatedGaussian(per_class, 2).mi, rel=1e-12)
    r, z, labels = ch.sample_with_labels(90_000, np.random.default_rng(6))
    centred_r = r - ch.class_means()[labels]
    centred_z = z - ch.class_means()[labels]
    assert np.abs(np.cov(np.hstack([centred_r, centred_z]).T) - per_class).max() < 0.05
    assert np.array_equal(np.bincount(labels), [30_000] * 3)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: CorrelatedGaussian(np.eye(3), 3), "dim_x"),
        (lambda: CorrelatedGaussian([[1.0, 2.0], [2.0, 1.0]], 1), "covariance: must be positive definite"),
        (lambda: CorrelatedGaussian.isotropic(2, 1.0), "rho"),
        (lambda: StudentT(np.eye(2), 1, 0.0), "dof"),
        (lambda: Transformed(CorrelatedGaussian(np.eye(2), 1), "square"), "map_x: unknown map 'square'"),
        (lambda: DiscreteUniformMixture([0.5, 0.6], [0, 1], [1, 1]), "weights"),
        (lambda: GaussianChannel(0, 1.0, 1.0), "dim"),
        (lambda: CorrelatedGaussian(np.eye(2), 1).sample(0), "n: must be a positive integer"),
    ],
)
def test_bad_parameters_name_themselves(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@settings(max_examples=30, deadline=None)
@given(dist=rst.distributions(max_dim=3, max_mi=1.0))
def test_strategy_draws_valid_distributions(dist):
    assert math.isfinite(dist.mi) and dist.mi >= -1e-12
    if isinstance(dist, CorrelatedGaussian):
        assert dist.mi <= 1.0 + 1e-9
    x, y = dist.sample(7, np.random.default_rng(0))
    assert x.shape[0] == y.shape[0] == 7 and np.all(np.isfinite(x))


@settings(max_examples=12, deadline=None)
@given(task=rst.tasks(n=3000, families=("gaussian",), max_dim=2, max_mi=1.0), k=st.sampled_from([3, 5]))
def test_ksg_on_drawn_gaussian_tasks(task, k):
    """The README's property test, on repcompress's own KSG: Gaussian tasks with d ≤ 2 and I ≤ 1 nat,
    N = 3000. The measured error at N = 4000 is |bias| ≤ 0.02 with sd ≤ 0.024 in these cells
    (tests/test_statistics.py), so 0.15 nats is over 5 sd at N = 3000."""
    estimate = rc.mutual_info(task.x, task.y, k=k)
    assert abs(estimate - task.mi) < 0.15
