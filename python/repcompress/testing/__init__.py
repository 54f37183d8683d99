"""Distributions with known mutual information and entropy, for testing estimators
(docs/spec.md §10).

- :class:`CorrelatedGaussian` — (X, Y) Gaussian with any covariance; ``.isotropic(d, ρ)``.
- :class:`StudentT` — the multivariate Student t: heavy tails, and MI > 0 even when uncorrelated.
- :class:`Transformed` — any of the above with each coordinate pushed through a strictly
  increasing map (MI unchanged: Czyż et al., "Beyond Normal", NeurIPS 2023).
- :class:`DiscreteUniformMixture` — a discrete Y and a continuous X | Y, exact MI (Gao et al.'s
  example: ``.gao(m)``).
- :class:`DiscreteContinuousMixture` — Gao et al.'s mixture of a Gaussian and a binary channel:
  both X and Y discrete and continuous at once, exact MI.
- :class:`GaussianChannel` — the paper's toy channel R → Z = R + noise, per class.
- :func:`gaussian_entropy`.
- :mod:`repcompress.testing.strategies` — hypothesis strategies over them (imports hypothesis).

Each has ``sample(n, rng) -> (x, y)`` and the exact ``mi`` in nats (and ``entropy_x`` /
``entropy_y`` where known). Student t needs scipy.
"""

from __future__ import annotations

from .distributions import (
    MAPS,
    CorrelatedGaussian,
    DiscreteContinuousMixture,
    DiscreteUniformMixture,
    GaussianChannel,
    StudentT,
    Transformed,
    gaussian_entropy,
)

__all__ = [
    "MAPS",
    "CorrelatedGaussian",
    "DiscreteContinuousMixture",
    "DiscreteUniformMixture",
    "GaussianChannel",
    "StudentT",
    "Transformed",
    "gaussian_entropy",
]
