"""Distributions whose mutual information and entropies are known exactly (docs/spec.md §10).

Each family is a frozen dataclass with ``sample(n, rng) -> (x, y)`` (arrays of shape (n, d_x) and
(n, d_y); ``y`` is an integer label vector for the discrete–continuous family) and exact values in
nats: ``mi`` = I(X;Y), and where they are finite and known, ``entropy_x``, ``entropy_y``.

References
----------
- Cover & Thomas, *Elements of Information Theory*, 2nd ed., §8 (Gaussian entropy and MI).
- Arellano-Valle, Contreras-Reyes & Genton (2013), "Shannon entropy and mutual information for
  multivariate skew-elliptical distributions", Scand. J. Statist. 40: the entropy of the
  multivariate Student t, from which its block MI follows.
- Czyż, Grabowski, Vogt, Beerenwinkel & Marx (2023), "Beyond Normal: on the evaluation of mutual
  information estimators", NeurIPS: MI is unchanged by invertible maps of each variable, so
  Gaussian and Student-t tasks pushed through such maps keep their exact MI.
- Gao, Kannan, Oh & Viswanath (2017), "Estimating mutual information for discrete-continuous
  mixtures", NeurIPS: the discrete X, uniform Y | X example, I = log m − (m − 1)/m · log 2, and
  their half-Gaussian, half-binary-channel mixture (:class:`DiscreteContinuousMixture`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def _rng(rng: Any) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _count(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: must be a positive integer, got {n!r}")
    return int(n)


def _logdet(matrix: np.ndarray, name: str) -> float:
    sign, value = np.linalg.slogdet(matrix)
    if sign <= 0:
        raise ValueError(f"{name}: must be symmetric positive definite")
    return float(value)


def _covariance(value: Any) -> np.ndarray:
    cov = np.array(value, dtype=np.float64)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1] or cov.shape[0] < 2:
        raise ValueError(f"covariance: expected a square matrix of size ≥ 2, got shape {cov.shape}")
    if not np.all(np.isfinite(cov)) or not np.allclose(cov, cov.T, rtol=0, atol=1e-12 * np.abs(cov).max()):
        raise ValueError("covariance: must be finite and symmetric")
    try:
        np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise ValueError("covariance: must be positive definite") from None
    return cov


def gaussian_entropy(covariance: Any) -> float:
    """h(N(μ, Σ)) = ½ log((2πe)^d det Σ) nats."""
    cov = np.atleast_2d(np.asarray(covariance, dtype=np.float64))
    return 0.5 * (cov.shape[0] * math.log(2 * math.pi * math.e) + _logdet(cov, "covariance"))


@dataclass(frozen=True)
class CorrelatedGaussian:
    """(X, Y) jointly Gaussian with covariance ``covariance`` ((d_x + d_y) square, X the first
    ``dim_x`` coordinates), mean 0.

    I(X;Y) = ½ log(det Σ_XX · det Σ_YY / det Σ); h(X) = ½ log((2πe)^{d_x} det Σ_XX).
    """

    covariance: Any
    dim_x: int
    _cov: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        cov = _covariance(self.covariance)
        if not isinstance(self.dim_x, (int, np.integer)) or not 1 <= self.dim_x < cov.shape[0]:
            raise ValueError(f"dim_x: must be between 1 and {cov.shape[0] - 1}, got {self.dim_x!r}")
        object.__setattr__(self, "_cov", cov)

    @classmethod
    def isotropic(cls, dim: int, rho: float) -> CorrelatedGaussian:
        """x ~ N(0, I_d), y = ρ x + √(1 − ρ²) ε: I = −(d/2) log(1 − ρ²)."""
        if not -1 < rho < 1:
            raise ValueError(f"rho: must lie in (-1, 1), got {rho!r}")
        eye = np.eye(dim)
        return cls(np.block([[eye, rho * eye], [rho * eye, eye]]), dim)

    @property
    def dim_y(self) -> int:
        return int(self._cov.shape[0] - self.dim_x)

    @property
    def mi(self) -> float:
        d = self.dim_x
        c = self._cov
        return 0.5 * (_logdet(c[:d, :d], "covariance") + _logdet(c[d:, d:], "covariance") - _logdet(c, "covariance"))

    @property
    def entropy_x(self) -> float:
        return gaussian_entropy(self._cov[: self.dim_x, : self.dim_x])

    @property
    def entropy_y(self) -> float:
        return gaussian_entropy(self._cov[self.dim_x :, self.dim_x :])

    def sample(self, n: int, rng: Any = None) -> tuple[np.ndarray, np.ndarray]:
        joint = _rng(rng).standard_normal((_count(n), self._cov.shape[0])) @ np.linalg.cholesky(self._cov).T
        return joint[:, : self.dim_x], joint[:, self.dim_x :]


def _t_entropy_constant(nu: float, d: int) -> float:
    """h of a standard d-dimensional Student t with ν degrees of freedom (Σ = I)."""
    from scipy.special import digamma, gammaln

    half = (nu + d) / 2
    return float(
        0.5 * d * math.log(nu * math.pi) + gammaln(nu / 2) - gammaln(half) + half * (digamma(half) - digamma(nu / 2))
    )


@dataclass(frozen=True)
class StudentT:
    """(X, Y) multivariate Student t with ``dof`` degrees of freedom and dispersion ``covariance``
    (X the first ``dim_x`` coordinates): Z = G / √(W/ν), G ~ N(0, Σ), W ~ χ²_ν.

    Its marginals are Student t with the same ν, so with h_t(ν, d) the entropy of a standard one
    and h = h_t + ½ log det Σ: I(X;Y) = I_Gauss(Σ) + h_t(ν, d_x) + h_t(ν, d_y) − h_t(ν, d_x + d_y),
    which is > 0 even for Σ = I (the shared scale W makes X and Y dependent). Needs scipy.
    """

    covariance: Any
    dim_x: int
    dof: float
    _gauss: CorrelatedGaussian = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.dof, (int, float, np.integer, np.floating)) or not 0 < self.dof < math.inf:
            raise ValueError(f"dof: must be a positive finite number, got {self.dof!r}")
        object.__setattr__(self, "_gauss", CorrelatedGaussian(self.covariance, self.dim_x))

    @property
    def dim_y(self) -> int:
        return self._gauss.dim_y

    @property
    def mi(self) -> float:
        nu, dx, dy = float(self.dof), self.dim_x, self.dim_y
        excess = _t_entropy_constant(nu, dx) + _t_entropy_constant(nu, dy) - _t_entropy_constant(nu, dx + dy)
        return self._gauss.mi + excess

    @property
    def entropy_x(self) -> float:
        return self._entropy(self.dim_x, self._gauss._cov[: self.dim_x, : self.dim_x])

    @property
    def entropy_y(self) -> float:
        return self._entropy(self.dim_y, self._gauss._cov[self.dim_x :, self.dim_x :])

    def _entropy(self, d: int, cov: np.ndarray) -> float:
        return _t_entropy_constant(float(self.dof), d) + 0.5 * _logdet(cov, "covariance")

    def sample(self, n: int, rng: Any = None) -> tuple[np.ndarray, np.ndarray]:
        generator = _rng(rng)
        x, y = self._gauss.sample(n, generator)
        scale = np.sqrt(generator.chisquare(float(self.dof), size=(x.shape[0], 1)) / float(self.dof))
        return x / scale, y / scale


#: Strictly increasing maps of the real line onto an interval (or onto itself), by name: applied to
#: each coordinate, they leave I(X;Y) unchanged (Czyż et al. 2023 use the same idea).
MAPS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda v: v,
    "cube": lambda v: v**3,
    "asinh": np.arcsinh,
    "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)),
    "half-cube": lambda v: np.abs(v) ** 1.5 * np.sign(v),
    "exp": np.exp,
}


@dataclass(frozen=True)
class Transformed:
    """A distribution with each coordinate of X pushed through ``map_x`` and of Y through ``map_y``
    (names of :data:`~repcompress.testing.MAPS`, all strictly increasing): I(X;Y) is the base's,
    entropies are not kept."""

    base: Any
    map_x: str = "identity"
    map_y: str = "identity"

    def __post_init__(self) -> None:
        for name, value in (("map_x", self.map_x), ("map_y", self.map_y)):
            if value not in MAPS:
                raise ValueError(f"{name}: unknown map {value!r}; expected one of {sorted(MAPS)}")
        if isinstance(self.base, DiscreteUniformMixture):
            raise ValueError("base: a distribution with continuous X and Y (the labels of a mixture cannot be mapped)")

    @property
    def mi(self) -> float:
        return float(self.base.mi)

    @property
    def dim_x(self) -> int:
        return int(self.base.dim_x)

    @property
    def dim_y(self) -> int:
        return int(self.base.dim_y)

    def sample(self, n: int, rng: Any = None) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.base.sample(n, rng)
        return MAPS[self.map_x](x), MAPS[self.map_y](y)


@dataclass(frozen=True)
class DiscreteUniformMixture:
    """A discrete label Y with probabilities ``weights`` and a continuous X | Y = k uniform on
    [``starts``[k], ``starts``[k] + ``widths``[k]) — discrete and continuous at once, with exact MI:
    f(x) = Σ_k w_k / l_k 1[x ∈ I_k] is piecewise constant, so
    h(X) = −Σ_segments |segment| f log f exactly, h(X|Y) = Σ_k w_k log l_k and I = h(X) − h(X|Y).
    ``sample`` returns (x of shape (n, 1), y integer labels of shape (n,)).

    :meth:`~repcompress.testing.DiscreteUniformMixture.gao` is Gao et al.'s (2017) example: Y uniform
    on {0, …, m−1}, X | Y uniform on [Y, Y + 2): I = log m − (m − 1)/m · log 2.
    """

    weights: Any
    starts: Any
    widths: Any

    def __post_init__(self) -> None:
        w = np.asarray(self.weights, dtype=np.float64)
        a = np.asarray(self.starts, dtype=np.float64)
        length = np.asarray(self.widths, dtype=np.float64)
        if w.ndim != 1 or w.size < 1 or a.shape != w.shape or length.shape != w.shape:
            raise ValueError("weights, starts, widths: must be 1-D arrays of one length")
        if not (np.all(np.isfinite(w)) and np.all(w > 0) and abs(w.sum() - 1.0) < 1e-12):
            raise ValueError("weights: must be positive and sum to 1")
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(length)) and np.all(length > 0)):
            raise ValueError("starts, widths: must be finite, widths positive")

    @classmethod
    def gao(cls, m: int) -> DiscreteUniformMixture:
        if not isinstance(m, (int, np.integer)) or m < 1:
            raise ValueError(f"m: must be a positive integer, got {m!r}")
        return cls(np.full(m, 1.0 / m), np.arange(m, dtype=np.float64), np.full(m, 2.0))

    dim_x = 1

    @property
    def entropy_x(self) -> float:
        w, a, length = (np.asarray(v, dtype=np.float64) for v in (self.weights, self.starts, self.widths))
        edges = np.unique(np.concatenate([a, a + length]))
        mids = (edges[:-1] + edges[1:]) / 2
        inside = (mids[:, None] >= a[None]) & (mids[:, None] < (a + length)[None])
        density = inside.astype(np.float64) @ (w / length)
        seg = np.diff(edges)
        used = density > 0
        return float(-np.sum(seg[used] * density[used] * np.log(density[used])))

    @property
    def entropy_y(self) -> float:
        w = np.asarray(self.weights, dtype=np.float64)
        return float(-np.sum(w * np.log(w)))

    @property
    def mi(self) -> float:
        w, length = np.asarray(self.weights, dtype=np.float64), np.asarray(self.widths, dtype=np.float64)
        return self.entropy_x - float(np.sum(w * np.log(length)))

    def sample(self, n: int, rng: Any = None) -> tuple[np.ndarray, np.ndarray]:
        generator = _rng(rng)
        w = np.asarray(self.weights, dtype=np.float64)
        y = generator.choice(w.size, size=_count(n), p=w)
        a, length = np.asarray(self.starts, dtype=np.float64), np.asarray(self.widths, dtype=np.float64)
        x = a[y] + length[y] * generator.random(y.size)
        return x[:, None], y.astype(np.int64)


@dataclass(frozen=True)
class DiscreteContinuousMixture:
    """Gao, Kannan, Oh & Viswanath's (2017, §5, and their demo) mixture: with probability
    1 − ``p_discrete`` (X, Y) is a standard bivariate Gaussian of correlation ``rho``; with
    probability ``p_discrete`` X is uniform on {−1, +1} and Y = X flipped with probability
    1 − ``beta`` (a binary symmetric channel). Both X and Y have atoms at ±1 and a continuous part.
    ``sample`` returns (x, y), each of shape (n, 1).

    Exact MI. Let C be the component (1 discrete, 0 Gaussian). C is a function of X almost surely
    (X ∈ {±1} has probability 0 under the Gaussian) and of Y likewise, so
    I(X;Y) = I(X, C; Y) = I(C; Y) + I(X; Y | C) = H(C) + Σ_c P(c) I(X; Y | C = c), since
    I(C; Y) = H(C) − H(C | Y) and H(C | Y) = 0. With I_Gauss = −½ log(1 − ρ²) and
    I_BSC = log 2 + β log β + (1 − β) log(1 − β) (X uniform, so Y uniform: log 2 − H_b(β)):

        I = h_b(p) + (1 − p) I_Gauss + p I_BSC,   h_b(p) = −p log p − (1 − p) log(1 − p).

    Defaults are the paper's: ρ = 0.9, β = 0.9, p = ½: I = 1.2925 nats.
    """

    rho: float = 0.9
    beta: float = 0.9
    p_discrete: float = 0.5

    def __post_init__(self) -> None:
        if not -1 < self.rho < 1:
            raise ValueError(f"rho: must lie in (-1, 1), got {self.rho!r}")
        if not 0 <= self.beta <= 1:
            raise ValueError(f"beta: must lie in [0, 1], got {self.beta!r}")
        if not 0 < self.p_discrete < 1:
            raise ValueError(f"p_discrete: must lie in (0, 1), got {self.p_discrete!r}")

    dim_x = 1
    dim_y = 1

    @property
    def mi(self) -> float:
        p, b = float(self.p_discrete), float(self.beta)

        def xlogx(v: float) -> float:
            return v * math.log(v) if v > 0 else 0.0

        component = -xlogx(p) - xlogx(1 - p)
        gauss = -0.5 * math.log1p(-(float(self.rho) ** 2))
        channel = math.log(2.0) + xlogx(b) + xlogx(1 - b)
        return component + (1 - p) * gauss + p * channel

    def sample(self, n: int, rng: Any = None) -> tuple[np.ndarray, np.ndarray]:
        generator = _rng(rng)
        n = _count(n)
        discrete = generator.random(n) < self.p_discrete
        g = generator.standard_normal((n, 2))
        x = g[:, 0]
        y = self.rho * g[:, 0] + math.sqrt(1 - self.rho**2) * g[:, 1]
        bit = generator.integers(0, 2, n)
        flip = generator.random(n) >= self.beta
        xd = 2.0 * bit - 1.0
        yd = np.where(flip, -xd, xd)
        x = np.where(discrete, xd, x)
        y = np.where(discrete, yd, y)
        return x[:, None], y[:, None]


@dataclass(frozen=True)
class GaussianChannel:
    """The paper's toy channel: a representation R = μ_Y + σ_z·G (class means μ_k drawn once from
    N(0, I_d) with ``seed``, Y uniform over ``n_classes``) observed through Z = R + σ_n·E.
    ``sample`` returns (R, Z); :meth:`sample_with_labels` also the class ids.

    Given the class, R and Z are jointly Gaussian, so I(R;Z|Y) = (d/2) log(1 + σ_z²/σ_n²) = ``mi``
    (and I(R;Z) itself for one class). :func:`repcompress.gaussian_channel_mi` on N sampled R with
    ``noise_variance=σ_n²`` computes the empirical I(X;Z) of X uniform over them, which approaches
    this value when it is well below its ceiling log N.
    """

    dim: int
    signal_variance: float
    noise_variance: float
    n_classes: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.dim, (int, np.integer)) or self.dim < 1:
            raise ValueError(f"dim: must be a positive integer, got {self.dim!r}")
        for name in ("signal_variance", "noise_variance"):
            value = getattr(self, name)
            if not isinstance(value, (int, float, np.floating)) or not 0 < value < math.inf:
                raise ValueError(f"{name}: must be a positive finite number, got {value!r}")
        if not isinstance(self.n_classes, (int, np.integer)) or self.n_classes < 1:
            raise ValueError(f"n_classes: must be a positive integer, got {self.n_classes!r}")

    @property
    def mi(self) -> float:
        return 0.5 * self.dim * math.log1p(self.signal_variance / self.noise_variance)

    def class_means(self) -> np.ndarray:
        if self.n_classes == 1:
            return np.zeros((1, self.dim))
        return np.random.default_rng(self.seed).standard_normal((self.n_classes, self.dim))

    def sample_with_labels(self, n: int, rng: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(R, Z, labels), labels balanced: sample i has class i mod n_classes."""
        generator = _rng(rng)
        labels = np.arange(_count(n)) % self.n_classes
        r = self.class_means()[labels] + math.sqrt(self.signal_variance) * generator.standard_normal((n, self.dim))
        z = r + math.sqrt(self.noise_variance) * generator.standard_normal((n, self.dim))
        return r, z, labels

    def sample(self, n: int, rng: Any = None) -> tuple[np.ndarray, np.ndarray]:
        r, z, _ = self.sample_with_labels(n, rng)
        return r, z
