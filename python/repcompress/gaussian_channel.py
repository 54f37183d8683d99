"""Mutual information through a Gaussian channel: noisy representations (docs/spec.md §3).

X is uniform over the N inputs of a data set and the representation is noisy by construction:
Z | X = x_i ~ N(μ_i, diag(v_i)). Then I(X;Z) is finite, 0 ≤ I(X;Z) ≤ log N, and it can be
computed from the means and variances alone:

- additive noise: v_i = σ² (``noise_variance``, a scalar or one value per dimension);
- multiplicative Gaussian dropout z = f(x)·(1 + √α ε), α = p/(1 − p) (``dropout_alpha``):
  μ_i = f(x_i), v_i = α·f(x_i)² (squared, not ``|f|``);
- Gaussian encoders (VIB/CEB) that output μ_i and σ_i (``variances`` = σ_i², N × d).

A linear layer right after the noise, Z = W·T (``transform=W``), keeps Z | x Gaussian with the full
covariance W·diag(v_i)·Wᵀ: computed exactly as well (docs/spec.md §3.14). A ReLU after the noise
makes Z | x non-Gaussian: measure at the noise output, whose I(X;T) bounds I(X;Z) from above.

References: Kolchinsky & Tracey, "Estimating mixture entropy with pairwise distances",
Entropy 19 (2017) (pairwise bounds); Goldfeld et al., "Estimating information flow in deep
neural networks", ICML 2019 (the noisy-network setting and the Monte Carlo estimate);
Adilova, Geiger & Fischer, "Information plane analysis for dropout neural networks", ICLR 2023.
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from . import _core
from ._torch_backend import is_tensor, resolve_device
from ._validation import (
    _caller_stacklevel,
    as_array,
    as_float_array,
    as_real,
    as_samples,
    check_base,
    check_choice,
    check_memory,
    class_codes,
    largest_magnitude,
    make_rng,
    shown,
)

METHODS = ("all", "mc", "bounds")
# The most Monte Carlo draws per sample: a count like the samples of one array (docs/spec.md §0.2).
MAX_DRAWS = 2**32 - 1

FLOORS = ("relative", "absolute")

# The Monte Carlo noise of an int seed s is numpy.random.SeedSequence(s, spawn_key=(NOISE_SALT,)), not
# SeedSequence(s) itself: data a caller draws with default_rng(s) then never shares its normals with
# the noise of random_state=s (docs/spec.md §3.6). The salt is an arbitrary fixed constant (the first
# word of SHA-512's initial hash value); changing it changes every Monte Carlo result.
NOISE_SALT = 0x6A09E667F3BCC908


@dataclass(frozen=True)
class ChannelInformation:
    """One information quantity with its Monte Carlo estimate and bounds (``None``: not computed).

    ``mi`` ± ``stderr`` is the paired Monte Carlo estimate; ``lower`` and ``upper`` bracket the
    exact value (Bhattacharyya and KL pairwise bounds; for I(Y;Z) the bracket of docs/spec.md §3.9);
    ``maxent_upper`` is the Gaussian maximum-entropy bound; ``ceiling`` is the largest possible
    value (Σ_y p(y)·log N_y for I(X;Z|Y), H(Y) for I(Y;Z)).
    """

    mi: float | None
    stderr: float | None
    lower: float | None
    upper: float | None
    maxent_upper: float | None
    ceiling: float


@dataclass(frozen=True)
class GaussianChannelMI:
    """Result of :func:`gaussian_channel_mi` (all in the unit chosen by ``base``).

    Attributes
    ----------
    mi, stderr : float or None
        Paired Monte Carlo estimate of I(X;Z) and its standard error (``method="bounds"``: None).
    lower, upper : float or None
        Pairwise bounds: Bhattacharyya (lower) and KL (upper) (``method="mc"``: None).
    maxent_upper : float or None
        ½ log det(2πe Cov Z) − h(Z|X); ``inf`` when Cov Z is not numerically positive definite
        (the bound is then uninformative, not wrong).
    log_n : float
        log N, the ceiling of I(X;Z).
    h_z_given_x : float
        h(Z|X) = (1/N) Σ_i ½ Σ_k log(2πe v_ik) (a differential entropy: may be negative).
    n_floored : int
        Number of (sample, coordinate) variances raised to ``min_variance``.
    n_draws : int
        Monte Carlo draws per sample.
    given_labels : ChannelInformation or None
        I(X;Z|Y), when labels were given.
    labels : ChannelInformation or None
        I(Y;Z) = I(X;Z) − I(X;Z|Y) from the same draws, with the bracket
        [I_BD(X;Z) − I_KL(X;Z|Y), I_KL(X;Z) − I_BD(X;Z|Y)] (docs/spec.md §3.9, written with the pairwise
        estimates of I instead of H: h(Z|X) cancels); ``maxent_upper`` is None.
    rank : int or None
        With ``transform=W``: the rank ρ of W that Z = W·T lives in (None without a transform).
    """

    mi: float | None
    stderr: float | None
    lower: float | None
    upper: float | None
    maxent_upper: float | None
    log_n: float
    h_z_given_x: float
    n_floored: int
    n_draws: int
    given_labels: ChannelInformation | None = None
    labels: ChannelInformation | None = None
    rank: int | None = None


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: must be an integer, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name}: must be at least 1, got {shown(value)}")
    number = int(value)
    if number > MAX_DRAWS:
        raise ValueError(f"{name}: must be at most {MAX_DRAWS}, got {shown(number)}")
    return number


def _per_dimension(value: Any, name: str, d: int, *, strictly_positive: bool) -> np.ndarray:
    """A scalar or a length-d vector of finite, non-negative (or positive) numbers, as float64 (d,).
    Numbers only: a bool, a string or a complex value is a TypeError naming the argument, and a
    value beyond the float64 range a ValueError (docs/spec.md §0.4)."""
    if isinstance(value, numbers.Number) or isinstance(value, (np.generic, str, bytes)):
        arr = np.full(d, as_real(value, name))
    else:
        arr = as_array(value, name)
        if arr.dtype.kind not in "fiu":
            raise TypeError(f"{name}: expected a number or a length-{d} array of numbers, got dtype {arr.dtype}")
        if arr.ndim == 0:
            arr = np.full(d, as_real(arr.item(), name))
        elif arr.ndim != 1 or arr.shape[0] != d:
            raise ValueError(
                f"{name}: expected a number or a length-{d} array (one per dimension), got shape {arr.shape}"
            )
        arr = np.asarray(arr, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or inf")
    bad = arr <= 0 if strictly_positive else arr < 0
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        sign = "> 0" if strictly_positive else ">= 0"
        raise ValueError(f"{name}: must be {sign}, got {arr[k]} at dimension {k}")
    return arr


def _variances(
    means: np.ndarray, variances: Any, noise_variance: Any, dropout_alpha: Any
) -> tuple[Literal["shared", "per_sample", "dropout"], np.ndarray]:
    """The kind of noise and its variances: an (N, d) array per sample, a (1, d) row of shared
    noise, or for dropout the (1, d) row of α (the variances α·μ² are formed by the caller, after
    any rescaling of the means)."""
    given = [
        name
        for name, v in (("variances", variances), ("noise_variance", noise_variance), ("dropout_alpha", dropout_alpha))
        if v is not None
    ]
    if len(given) != 1:
        what = "none" if not given else " and ".join(given)
        raise ValueError(
            f"noise: give exactly one of variances (per-sample, N × d), noise_variance (additive) or "
            f"dropout_alpha (multiplicative Gaussian dropout); got {what}"
        )
    n, d = means.shape
    if variances is not None:
        variances = as_array(variances, "variances")
        if np.ndim(variances) == 3:
            raise ValueError(
                "variances: got a 3-D array, but full covariances are not taken as such: pass per-sample diagonal "
                "variances of shape (N, d), and a linear layer after the noise as transform=W"
            )
        v = as_samples(variances, "variances")
        if v.shape != (n, d):
            raise ValueError(f"variances: has shape {v.shape} but means has shape {(n, d)}")
        v = np.array(v, dtype=np.float64, order="C")
        if (v < 0).any():
            row = int(np.flatnonzero((v < 0).any(axis=1))[0])
            raise ValueError(f"variances: must be >= 0 (first negative at row {row})")
        return "per_sample", v
    if noise_variance is not None:
        return "shared", _per_dimension(noise_variance, "noise_variance", d, strictly_positive=False)[None, :].copy()
    return "dropout", _per_dimension(dropout_alpha, "dropout_alpha", d, strictly_positive=True)[None, :].copy()


def _scale_exponent(means: np.ndarray, v: np.ndarray, dropout: bool) -> int:
    """0 when the larger of max |μ| and max √v lies in the safe window of docs/spec.md §0.8, else
    the e that brings it to about 1 (for dropout v = α·μ², so max √v = √(max α)·max |μ|; judged in
    log₂ so that neither product overflows)."""
    top = largest_magnitude(means)
    if top == 0 and (dropout or not v.max() > 0):
        return 0
    logs = [math.log2(top) if top > 0 else -math.inf]
    vmax = float(v.max())
    if vmax > 0:
        logs.append(0.5 * math.log2(vmax) + (logs[0] if dropout else 0.0))
    log_top = max(logs)
    return 0 if -400 <= log_top <= 400 else math.floor(log_top)


def _transform(value: Any, d: int) -> np.ndarray:
    """W as float64 (r, d): numeric, finite, at least one row (docs/spec.md §3.14)."""
    w = as_float_array(
        value, "transform", shape=(None, d), what=f"(r, {d}): r ≥ 1 rows, one column per dimension of means"
    )
    if w.shape[0] == 0:
        raise ValueError(f"transform: expected shape (r, {d}) with r ≥ 1, got {w.shape}")
    return w


def reduce_transform(w: np.ndarray) -> tuple[np.ndarray, float]:
    """W (r × d) reduced to its rank (docs/spec.md §3.14): with the thin SVD W = U S Vᵀ and the
    singular values above max(r, d)·ε·s_max kept (ρ of them), A = (S/s_max) Vᵀ (ρ × d, full row rank)
    and log s_max. Z = W·T = s_max·U·(A·T) with U's columns orthonormal, so I(X;Z) = I(X;A·T) and
    h(Z|X), as a density on the range of W, is h(A·T|X) + ρ log s_max. ρ = 0 (A empty, log s_max
    −inf) for a zero W. W is divided by a power of two first (exact), so that any finite W works."""
    top = largest_magnitude(w)
    if top == 0:
        return np.zeros((0, w.shape[1])), -math.inf
    e = math.frexp(top)[1]
    _, s, vt = np.linalg.svd(np.ldexp(w, -e), full_matrices=False)
    rank = int(np.count_nonzero(s > max(w.shape) * np.finfo(np.float64).eps * s[0]))
    a = np.ascontiguousarray((s[:rank] / s[0])[:, None] * vt[:rank])
    return a, math.log(s[0]) + e * math.log(2)


def noise_rng(random_state: Any) -> np.random.Generator:
    """The generator of the Monte Carlo noise (docs/spec.md §3.6): for an int seed s,
    ``default_rng(SeedSequence(s, spawn_key=(NOISE_SALT,)))``, a stream of its own that never
    coincides with ``default_rng(s)``; a Generator is used as given (and advanced); None: fresh
    entropy."""
    rng = make_rng(random_state)  # checks the argument (a negative seed is an error naming it)
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return np.random.default_rng(np.random.SeedSequence(int(random_state), spawn_key=(NOISE_SALT,)))
    return rng


def draw_noise(random_state: Any, n: int, d: int, n_draws: int) -> np.ndarray:
    """The standard-normal draws ε of the Monte Carlo estimate: an (n_draws·N) × d float64 array,
    row m·N + i for draw m of sample i, from :func:`noise_rng`. Drawn in Python so that a seed gives
    the same bits at any thread count."""
    return noise_rng(random_state).standard_normal((n_draws * n, d))


def floor_scale(means: np.ndarray, variances: np.ndarray, rows: int) -> float:
    """s² = tr Cov Z / d = (1/(N d)) Σ_ik [(μ_ik − μ̄_k)² + v_ik], the mean variance of Z per
    coordinate (docs/spec.md §3.3), with ``variances`` of ``rows`` rows (1: shared, each counted N
    times); 1 when Z is a constant. Summed after an exact power-of-two rescaling, so that it neither
    overflows nor underflows where s² itself is representable."""
    n, d = means.shape
    centred = means - means.mean(axis=0)
    top = max(float(np.abs(centred).max()), math.sqrt(float(variances.max())))
    if top == 0:
        return 1.0
    e = math.frexp(top)[1]
    total = float(np.sum(np.square(np.ldexp(centred, -e)))) + float(np.sum(np.ldexp(variances, -2 * e))) * (n // rows)
    return math.ldexp(total / (n * d), 2 * e)


def gaussian_channel_mi(
    means: Any,
    variances: Any = None,
    *,
    noise_variance: Any = None,
    dropout_alpha: Any = None,
    labels: Any = None,
    method: str = "all",
    n_draws: int = 1,
    min_variance: float = 1e-12,
    floor: str = "relative",
    random_state: Any = 0,
    base: float = math.e,
    transform: Any = None,
    device: Any = None,
) -> GaussianChannelMI:
    """Mutual information I(X;Z) through a Gaussian channel, with error bars and bounds.

    X is uniform over the N rows of ``means`` and Z | X = x_i ~ N(μ_i, diag(v_i)) (docs/spec.md §3.1).
    All quantities are exact functions of the means and variances except the Monte Carlo
    estimate, whose error is its standard error.

    - h(Z|X) = (1/N) Σ_i ½ Σ_k log(2πe v_ik).
    - **Monte Carlo, paired** (``mi``, ``stderr``): z_im = μ_i + √v_i ⊙ ε_im, m = 1..M;
      I = (1/NM) Σ_{i,m} [log p_i(z_im) − log (1/N) Σ_j p_j(z_im)]. Every term is ≤ log N, so
      the estimate never exceeds log N; stderr = sd(terms)/√(NM).
    - **Pairwise bounds** (Kolchinsky & Tracey 2017):
      I_D = −(1/N) Σ_i log (1/N) Σ_j exp(−D_ij), with
      KL_ij = ½ Σ_k [log(v_jk/v_ik) + v_ik/v_jk + (μ_ik − μ_jk)²/v_jk − 1] (``upper``) and
      BD_ij = Σ_k [(μ_ik − μ_jk)²/(4(v_ik + v_jk)) + ½ log((v_ik + v_jk)/(2√(v_ik v_jk)))]
      (``lower``). Exact, no sampling.
    - **Maximum entropy** (``maxent_upper``): I ≤ ½ log det(2πe Cov Z) − h(Z|X) with the exact
      mixture covariance Cov Z = (1/N) Σ_i (diag v_i + μ_i μ_iᵀ) − μ̄ μ̄ᵀ.
    - **With labels** (a function of the input): I(X;Z|Y) restricts every mixture to the
      sample's class (≤ Σ_y p(y) log N_y), and I(Y;Z) = I(X;Z) − I(X;Z|Y) from the same draws.

    Work is O(N² d) (O(N² M d) for the Monte Carlo part), streamed in blocks (memory O(N d) besides
    the O(N M d) Monte Carlo draws), parallel, in float64, using the matrix-product form of the
    log-densities, and the difference form for the entries where the product form could lose more
    than 1e-11 nats to cancellation (docs/spec.md §3.11). With per-sample variances the
    Bhattacharyya bound is a direct O(N² d) loop (it does not factor).

    **A linear layer after the noise** (``transform=W``, r × d): Z = W·T with T the channel above,
    so Z | x_i ~ N(W μ_i, W diag(v_i) Wᵀ) (docs/spec.md §3.14). W is reduced to its rank ρ by its
    thin SVD (singular values ≤ max(r, d)·ε·s_max dropped); every quantity above is then computed
    for the ρ-dimensional Z' = A·T with full covariances Σ_i = A diag(v_i) Aᵀ: log-densities
    −½‖L_j⁻¹(z − Aμ_j)‖² − ½ log det Σ_j, KL and Bhattacharyya divergences between full-covariance
    Gaussians, Cov Z' = mean(Σ_i) + the covariance of the A μ_i. The variance floor applies to v in
    T's coordinates, as without a transform. Z is the image of the same draws of T (z = W t_im),
    so the estimate is paired with the untransformed one and equals it for an invertible W.
    ``h_z_given_x`` is the density of Z on the range of W (ρ dimensions; 0 for ρ = 0), and a W of
    rank 0 gives I = 0 with a warning. Shared noise reuses the diagonal computation after
    whitening by Σ (O(N² M ρ)); per-sample noise costs O(N² (M ρ² + ρ³)) (KL and Bhattacharyya
    need ρ³/6 per pair) and O(N ρ²) memory.

    Parameters
    ----------
    means : array-like, shape (N, d) or (N,)
        μ_i, the noise-free representation of each input. The core works in float64: float32
        input is converted once (O(N d), negligible next to the O(N² d) work).
    variances : array-like, shape (N, d), optional
        Per-sample noise variances v_i (e.g. σ_i² of a VIB/CEB encoder).
    noise_variance : float or array-like of shape (d,), optional
        Additive noise: v_i = σ² for every sample.
    dropout_alpha : float or array-like of shape (d,), optional
        Multiplicative Gaussian dropout z = f(x)·(1 + √α ε), α = p/(1−p): v_i = α·μ_i².
        Exactly one of ``variances``, ``noise_variance``, ``dropout_alpha`` must be given.
    labels : array-like of shape (N,), optional
        Integer-like class labels (any values; only present ones count; at least 2 classes).
    method : {"all", "mc", "bounds"}
        Monte Carlo and bounds, Monte Carlo only, or bounds only.
    n_draws : int
        Monte Carlo draws per sample (M).
    min_variance : float
        The variance floor (docs/spec.md §3.3), relative to the data's scale by default: every
        variance below min_variance·s² is raised to it (``n_floored`` counts them), where
        s² = (1/(N d)) Σ_ik [(μ_ik − μ̄_k)² + v_ik] is the mean variance of Z per coordinate (trace of
        Cov Z over d, from the variances before flooring; 1 if Z is a constant). Needed where the
        noise is degenerate, e.g. dropout on units that are exactly 0 (ReLU): a zero variance makes
        I(X;Z) infinite. The default puts a floored standard deviation 10⁻⁶ below the data's, in any
        units. With ``min_variance=0`` a zero variance is an error.
    floor : {"relative", "absolute"}
        How ``min_variance`` is read. ``"relative"`` (default): times s², so that scaling all means
        and standard deviations by c floors the same entries and leaves every estimate unchanged, as
        it leaves I(X;Z). ``"absolute"``: as a variance in the data's units (the behaviour before the
        floor was relative); I(X;Z) then depends on the units wherever something is floored.
    random_state : int, numpy.random.Generator or None
        Seed of the draws ε (drawn in Python, so the result is the same at any thread count). An int
        s seeds ``numpy.random.default_rng(numpy.random.SeedSequence(s, spawn_key=(NOISE_SALT,)))``,
        a stream of its own: means generated with ``default_rng(s)`` do not share their normals with
        the noise of ``random_state=s``. A Generator is used as given (and advanced): do not pass the
        one, or a copy of the one, that generated the means. None: fresh entropy.
    base : float
        Logarithm base of every result (e: nats, 2: bits); h(Z|X) too.
    transform : array-like, shape (r, d), optional
        W of a linear layer after the noise: the information of Z = W·T instead of T (any r, any
        rank; a bias does not change any result). None: Z = T.
    device : str, torch.device or None
        Where to compute (docs/spec.md §8.1, §8.3). None: on the device of ``means`` (or of
        ``variances``) when it is a non-CPU torch tensor, in plain torch there, else on the Rust core.
        ``"cuda"``, ``"cuda:1"``, ``"cpu"`` or a ``torch.device``: the torch kernels on that device
        (numpy input is uploaded; ``"cpu"`` runs them on CPU torch). The device path gives the
        Rust core's results to ≤ 1e-10 relative (float32 input is widened to float64 on the
        device): the same noise draws (drawn by numpy on the host and uploaded), floor and
        rescaling, in blocks of rows (memory O(block · N)). Labels, ``transform`` and per-dimension
        noise parameters are small and are read on the host.

    Returns
    -------
    GaussianChannelMI

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> mu = rng.standard_normal((2000, 2))              # X ~ N(0, I_2), Z = X + N(0, I_2)
    >>> r = gaussian_channel_mi(mu, noise_variance=1.0, n_draws=4)
    >>> round(r.mi, 1), round(math.log(2), 1)            # population value (d/2) log(1 + 1)
    (0.7, 0.7)
    >>> r.lower <= r.mi <= r.upper <= r.log_n
    True
    """
    check_choice(method, "method", METHODS)
    n_draws = _positive_int(n_draws, "n_draws")
    base = check_base(base)
    min_variance = as_real(min_variance, "min_variance")
    if not (min_variance >= 0 and math.isfinite(min_variance)):
        raise ValueError(f"min_variance: must be finite and >= 0, got {min_variance}")
    arrays = {
        "means": means,
        "variances": variances,
        "noise_variance": noise_variance,
        "dropout_alpha": dropout_alpha,
        "labels": labels,
        "transform": transform,
    }
    # The data arrays decide where the call runs (docs/spec.md §8.3); the small ones (labels, the
    # transform, per-dimension noise) are read on the host wherever they lie.
    place = resolve_device({"means": means, "variances": variances}, device)
    if place is not None:
        return _on_device(place, arrays, method, n_draws, min_variance, floor, random_state, base)
    means = as_array(means, "means")
    if np.ndim(means) == 3:
        raise ValueError(f"means: expected a 1-D (N,) or 2-D (N, d) array, got 3-D with shape {np.shape(means)}")
    floor = check_choice(floor, "floor", FLOORS)
    mu = as_samples(means, "means")
    n, d = mu.shape
    if n_draws * n * d > np.iinfo(np.intp).max:
        raise ValueError(
            f"n_draws: {shown(n_draws)} draws of {n} × {d} values are more than any array can hold; "
            "the Monte Carlo estimate keeps n_draws · N · d numbers (docs/spec.md §0.5)"
        )
    rng = noise_rng(random_state)  # checked even when no draws are made (method="bounds")
    kind, v = _variances(mu, variances, noise_variance, dropout_alpha)
    w = None if transform is None else _transform(transform, d)
    mu = np.ascontiguousarray(mu, dtype=np.float64)
    shift = 0
    if floor == "relative":
        # I(X;Z) is invariant to scaling means and standard deviations together: data far from 1 in
        # magnitude are divided by a power of two first (exact), so that neither s² nor the dropout
        # variances α·μ² over- or underflow (§0.8).
        shift = _scale_exponent(mu, v, kind == "dropout")
        if shift:
            mu = np.ldexp(mu, -shift)
            v = v if kind == "dropout" else np.ldexp(v, -2 * shift)
    noise: Literal["shared", "per_sample"] = "shared" if kind == "shared" else "per_sample"
    if kind == "dropout":
        v = v * mu**2
    if not np.isfinite(v).all():
        raise ValueError("variances: dropout_alpha · means² overflows float64")
    lowest = min_variance * floor_scale(mu, v, v.shape[0]) if floor == "relative" else min_variance
    low = v < lowest
    n_floored = int(low.sum()) * (n if noise == "shared" else 1)
    if low.any():
        v = np.where(low, lowest, v)
    if not (v > 0).all():
        row = int(np.flatnonzero((v <= 0).any(axis=1))[0])
        where = "noise_variance" if noise == "shared" else f"row {row}"
        raise ValueError(
            f"min_variance: a variance is 0 ({where}) and min_variance is 0; I(X;Z) would be infinite — "
            "set min_variance > 0"
        )
    v = np.ascontiguousarray(v)
    setup = _labels_transform_draws(labels, w, rng, n, d, n_draws, method, n_floored, base)
    if setup.rank_zero is not None:
        return setup.rank_zero
    codes, a, log_scale, draws = setup.codes, setup.a, setup.log_scale, setup.draws
    if a is None:
        raw = _core.gaussian_channel_mi(mu, v, noise, draws, n_draws, method in ("all", "bounds"), codes)
        dims = d
    else:
        raw = _core.gaussian_channel_mi_linear(mu, v, noise, a, draws, n_draws, method in ("all", "bounds"), codes)
        dims = a.shape[0]

    return _result(raw, codes, n, n_floored, n_draws, dims, shift, log_scale, base, a is not None)


def _result(
    raw: Any,
    codes: np.ndarray | None,
    n: int,
    n_floored: int,
    n_draws: int,
    dims: int,
    shift: int,
    log_scale: float,
    base: float,
    transformed: bool,
) -> GaussianChannelMI:
    """The result from the raw estimates in nats (the Rust core's, or the torch backend's of the
    same shape), in the unit of ``base``, h(Z|X) scaled back by 2^shift and the transform's scale."""
    unit = math.log(base)

    def scaled(x: float | None) -> float | None:
        return None if x is None else float(x) / unit

    def quantity(e: _core.ChannelEstimate) -> ChannelInformation:
        return ChannelInformation(
            mi=scaled(e.mi),
            stderr=scaled(e.stderr),
            lower=scaled(e.bd),
            upper=scaled(e.kl),
            maxent_upper=scaled(e.maxent),
            ceiling=float(e.ceiling) / unit,
        )

    total = quantity(raw.total)
    given = labels_info = None
    if codes is not None:
        assert raw.given_labels is not None  # the core returns it whenever labels are given
        given = quantity(raw.given_labels)
        counts = np.bincount(codes)
        p = counts / n
        h_y = float(-(p * np.log(p)).sum())
        lower = upper = None
        if total.lower is not None:
            # The bounds come together (method "all" or "bounds"), for both quantities.
            assert total.upper is not None and given.lower is not None and given.upper is not None
            lower = total.lower - given.upper
            upper = total.upper - given.lower
        labels_info = ChannelInformation(
            mi=scaled(raw.labels_mi),
            stderr=scaled(raw.labels_stderr),
            lower=lower,
            upper=upper,
            maxent_upper=None,
            ceiling=h_y / unit,
        )
    return GaussianChannelMI(
        mi=total.mi,
        stderr=total.stderr,
        lower=total.lower,
        upper=total.upper,
        maxent_upper=total.maxent_upper,
        log_n=total.ceiling,
        h_z_given_x=(float(raw.h_z_given_x) + dims * (shift * math.log(2) + log_scale)) / unit,
        n_floored=n_floored,
        n_draws=n_draws,
        given_labels=given,
        labels=labels_info,
        rank=dims if transformed else None,
    )


@dataclass
class _Setup:
    """What both backends prepare alike after the variances: class codes, the reduced transform
    and its log-scale, the Monte Carlo draws; or the whole result when the transform has rank 0."""

    codes: np.ndarray | None
    a: np.ndarray | None
    log_scale: float
    draws: np.ndarray | None
    rank_zero: GaussianChannelMI | None = None


def _labels_transform_draws(
    labels: Any,
    w: Any,
    rng: np.random.Generator,
    n: int,
    d: int,
    n_draws: int,
    method: str,
    n_floored: int,
    base: float,
) -> _Setup:
    """The labels read on the host (a tensor is copied there: N integers), W reduced to its rank,
    the draws sized and made by numpy (the same on either backend)."""
    codes = None
    if labels is not None:
        codes, values = class_codes(labels, n, of="means")
        if len(values) < 2:
            raise ValueError(f"labels: need at least 2 classes, got {len(values)}")
    a = None
    log_scale = 0.0
    if w is not None:
        a, log_scale = reduce_transform(w)
        if a.shape[0] == 0:
            warnings.warn(
                "transform: has rank 0, so Z = W·T is a constant and every information quantity is 0",
                RuntimeWarning,
                stacklevel=_caller_stacklevel(),
            )
            return _Setup(codes, a, log_scale, None, _rank_zero(codes, n, method, n_draws, n_floored, base))
    draws = None
    if method in ("all", "mc"):
        check_memory(
            8 * n_draws * n * d,
            "n_draws",
            f"the {n_draws} × {n} × {d} Monte Carlo noise draws",
            "use fewer draws (the standard error shrinks like 1/√(n_draws·N)), or method='bounds'",
        )
        draws = draw_noise(rng, n, d, n_draws)
    return _Setup(codes, a, log_scale, draws)


def _rank_zero(
    codes: np.ndarray | None, n: int, method: str, n_draws: int, n_floored: int, base: float
) -> GaussianChannelMI:
    """The result for a transform of rank 0: Z is a constant, every quantity is 0 (h(Z|X) too, a
    density on a 0-dimensional range)."""
    unit = math.log(base)
    mc = 0.0 if method in ("all", "mc") else None
    bounds = 0.0 if method in ("all", "bounds") else None

    def zero(ceiling: float, maxent: bool = True) -> ChannelInformation:
        return ChannelInformation(mc, mc, bounds, bounds, bounds if maxent else None, ceiling / unit)

    given = labels_info = None
    if codes is not None:
        counts = np.bincount(codes)
        p = counts / n
        given = zero(float((p * np.log(counts)).sum()))
        labels_info = zero(float(-(p * np.log(p)).sum()), maxent=False)
    return GaussianChannelMI(
        mi=mc,
        stderr=mc,
        lower=bounds,
        upper=bounds,
        maxent_upper=bounds,
        log_n=math.log(n) / unit,
        h_z_given_x=0.0,
        n_floored=n_floored,
        n_draws=n_draws,
        given_labels=given,
        labels=labels_info,
        rank=0,
    )


# ----------------------------------------------------------------------------------------------
# The torch backend (docs/spec.md §8.3)
# ----------------------------------------------------------------------------------------------


def _host(value: Any) -> Any:
    """A small argument (labels, a transform, per-dimension noise) as a host array."""
    return value.detach().cpu().numpy() if is_tensor(value) else value


def _ldexp_t(t: Any, e: int) -> Any:
    """t·2^e for a float64 tensor, exact for normal results: in two steps, since 2^e alone may not
    be a float64 (e = ±1074)."""
    half = e // 2
    return t * (2.0**half) * (2.0 ** (e - half))


def _on_device(
    place: Any,
    arrays: dict[str, Any],
    method: str,
    n_draws: int,
    min_variance: float,
    floor: str,
    random_state: Any,
    base: float,
) -> GaussianChannelMI:
    """:func:`gaussian_channel_mi` with the torch kernels on ``place``: the same checks, floor,
    rescaling and draws as the host path, each step on the device."""
    import torch

    from ._torch_backend import gaussian as kernels
    from ._torch_backend.device_inputs import device_samples, largest_magnitude_t

    means = arrays["means"]
    if (is_tensor(means) and means.ndim == 3) or (not is_tensor(means) and np.ndim(means) == 3):
        raise ValueError(f"means: expected a 1-D (N,) or 2-D (N, d) array, got 3-D with shape {tuple(means.shape)}")
    floor = check_choice(floor, "floor", FLOORS)
    mu = device_samples(means, "means", place)
    n, d = mu.shape
    if n_draws * n * d > np.iinfo(np.intp).max:
        raise ValueError(
            f"n_draws: {shown(n_draws)} draws of {n} × {d} values are more than any array can hold; "
            "the Monte Carlo estimate keeps n_draws · N · d numbers (docs/spec.md §0.5)"
        )
    rng = noise_rng(random_state)
    variances = arrays["variances"]
    given = [k for k in ("variances", "noise_variance", "dropout_alpha") if arrays[k] is not None]
    if variances is not None and len(given) == 1:
        if (is_tensor(variances) and variances.ndim == 3) or (not is_tensor(variances) and np.ndim(variances) == 3):
            _variances(np.zeros((n, d)), np.zeros((1, 1, 1)), None, None)  # the host path's message
        v = device_samples(variances, "variances", place)
        if tuple(v.shape) != (n, d):
            raise ValueError(f"variances: has shape {tuple(v.shape)} but means has shape {(n, d)}")
        negative = (v < 0).any(dim=1)
        if bool(negative.any()):
            row = int(torch.nonzero(negative)[0, 0])
            raise ValueError(f"variances: must be >= 0 (first negative at row {row})")
        kind: str = "per_sample"
    else:
        # Shared noise or dropout: d numbers, checked on the host (the host path's checks).
        kind, host_v = _variances(
            np.zeros((n, d)), None, _host(arrays["noise_variance"]), _host(arrays["dropout_alpha"])
        )
        v = torch.as_tensor(host_v, device=place)
    w = None if arrays["transform"] is None else _transform(_host(arrays["transform"]), d)
    shift = 0
    if floor == "relative":
        top = largest_magnitude_t(mu)
        shift = 0
        if not (top == 0 and (kind == "dropout" or not float(v.max()) > 0)):
            logs = [math.log2(top) if top > 0 else -math.inf]
            vmax = float(v.max())
            if vmax > 0:
                logs.append(0.5 * math.log2(vmax) + (logs[0] if kind == "dropout" else 0.0))
            log_top = max(logs)
            shift = 0 if -400 <= log_top <= 400 else math.floor(log_top)
        if shift:
            mu = _ldexp_t(mu, -shift)
            v = v if kind == "dropout" else _ldexp_t(v, -2 * shift)
    shared = kind == "shared"
    if kind == "dropout":
        v = v * mu**2
    if not bool(torch.isfinite(v).all()):
        raise ValueError("variances: dropout_alpha · means² overflows float64")
    if floor == "relative":
        centred = mu - mu.mean(dim=0)
        top = max(largest_magnitude_t(centred), math.sqrt(float(v.max())))
        if top == 0:
            scale = 1.0
        else:
            e = math.frexp(top)[1]
            total = float((_ldexp_t(centred, -e) ** 2).sum()) + float(_ldexp_t(v, -2 * e).sum()) * (n // v.shape[0])
            scale = math.ldexp(total / (n * d), 2 * e)
        lowest = min_variance * scale
    else:
        lowest = min_variance
    low = v < lowest
    n_floored = int(low.sum()) * (n if shared else 1)
    if bool(low.any()):
        v = torch.where(low, torch.full_like(v, lowest), v)
    nonpositive = (v <= 0).any(dim=1)
    if bool(nonpositive.any()):
        row = int(torch.nonzero(nonpositive)[0, 0])
        where = "noise_variance" if shared else f"row {row}"
        raise ValueError(
            f"min_variance: a variance is 0 ({where}) and min_variance is 0; I(X;Z) would be infinite — "
            "set min_variance > 0"
        )
    setup = _labels_transform_draws(arrays["labels"], w, rng, n, d, n_draws, method, n_floored, base)
    if setup.rank_zero is not None:
        return setup.rank_zero
    codes, a, log_scale = setup.codes, setup.a, setup.log_scale
    draws = None if setup.draws is None else torch.as_tensor(setup.draws, device=place)
    codes_t = None if codes is None else torch.as_tensor(codes, device=place)
    bounds = method in ("all", "bounds")
    if a is None:
        raw = kernels.channel_mi(mu, v, shared, draws, n_draws, bounds, codes_t)
        dims = d
    else:
        a_t = torch.as_tensor(a, device=place)
        raw = kernels.linear_channel_mi(mu, v, shared, a_t, draws, n_draws, bounds, codes_t)
        dims = a.shape[0]
    return _result(raw, codes, n, n_floored, n_draws, dims, shift, log_scale, base, a is not None)
