"""Hypothesis strategies over the distributions of :mod:`repcompress.testing` (docs/spec.md §10).

Importing this module imports hypothesis (``pip install hypothesis``). A strategy draws the
*structure* of a task — family, dimensions, correlation, degrees of freedom, maps — so hypothesis
shrinks it to a small failing case; the sample itself comes from a numpy generator seeded by a
drawn seed, which keeps generation cheap.

Example: a property test of one's own MI estimator::

    from hypothesis import given, settings
    from repcompress.testing import strategies as rst

    @settings(max_examples=25, deadline=None)
    @given(task=rst.tasks(n=2000, max_dim=2, max_mi=1.5))
    def test_my_estimator(task):
        assert abs(my_mi(task.x, task.y) - task.mi) < 0.15
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

from .distributions import MAPS, CorrelatedGaussian, DiscreteUniformMixture, StudentT, Transformed

FAMILIES = ("gaussian", "student-t", "transformed", "mixture")


@dataclass(frozen=True)
class Task:
    """One drawn sample with its exact MI: ``x``, ``y`` (n rows), ``mi`` in nats, and the
    ``distribution`` it came from."""

    x: np.ndarray
    y: np.ndarray
    mi: float
    distribution: Any


@st.composite
def covariances(draw: Any, dim_x: int, dim_y: int, max_mi: float = 2.0) -> np.ndarray:
    """A joint covariance of (X, Y) with unit variances inside each variable's block and a
    cross-correlation whose Gaussian MI is at most ``max_mi`` nats."""
    rho = draw(st.floats(-0.95, 0.95, allow_nan=False).filter(lambda r: abs(r) > 1e-3 or r == 0.0))
    k = min(dim_x, dim_y)
    # ρ on the first k pairs gives MI = −(k/2) log(1 − ρ²); shrink ρ to respect max_mi
    limit = float(np.sqrt(1.0 - np.exp(-2.0 * max_mi / k)))
    rho = float(np.clip(rho, -limit, limit))
    cov = np.eye(dim_x + dim_y)
    for i in range(k):
        cov[i, dim_x + i] = cov[dim_x + i, i] = rho
    return cov


@st.composite
def distributions(draw: Any, families: tuple[str, ...] = FAMILIES, max_dim: int = 3, max_mi: float = 2.0) -> Any:
    """A distribution of :mod:`repcompress.testing` with exact MI ≤ ``max_mi`` nats (for the
    Student t: its Gaussian part; the shared scale adds its own positive term)."""
    family = draw(st.sampled_from(families))
    if family == "mixture":
        m = draw(st.integers(2, 8))
        return DiscreteUniformMixture.gao(m)
    dim_x = draw(st.integers(1, max_dim))
    dim_y = draw(st.integers(1, max_dim))
    cov = draw(covariances(dim_x, dim_y, max_mi))
    if family == "gaussian":
        return CorrelatedGaussian(cov, dim_x)
    if family == "student-t":
        return StudentT(cov, dim_x, float(draw(st.sampled_from((1.0, 2.0, 3.0, 5.0, 10.0)))))
    base = CorrelatedGaussian(cov, dim_x)
    maps = sorted(MAPS)
    return Transformed(base, draw(st.sampled_from(maps)), draw(st.sampled_from(maps)))


@st.composite
def tasks(
    draw: Any,
    n: int = 1000,
    families: tuple[str, ...] = FAMILIES,
    max_dim: int = 3,
    max_mi: float = 2.0,
) -> Task:
    """A sample of ``n`` rows from a drawn distribution, with its exact MI."""
    dist = draw(distributions(families, max_dim, max_mi))
    seed = draw(st.integers(0, 2**32 - 1))
    x, y = dist.sample(n, np.random.default_rng(seed))
    return Task(x, y, float(dist.mi), dist)
