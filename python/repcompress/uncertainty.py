"""Confidence intervals and permutation tests for any estimator of the package (SPEC §5).

One mechanism serves every estimator: estimators built on a *job* (all Rust-backed estimators)
evaluate all resamples in one parallel call into Rust; any other estimator — a declared plain
function or your own callable — is called once per resample. Resamples are drawn in Python from
``random_state``, so the same seed gives the same result at any thread count.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Callable

import numpy as np

from . import _core
from ._progress import Progress
from ._resampling import Call
from ._validation import make_rng

CI_METHODS = ("auto", "subsample", "bootstrap")

# Index entries generated per chunk of resamples (bounds memory; the draws do not depend on it).
_CHUNK_ENTRIES = 8_000_000


@dataclass(frozen=True)
class ConfidenceInterval:
    """An estimate with its interval. ``method`` says how the interval was made; ``resamples`` holds
    the estimates on the resamples; ``bias`` is the bootstrap's bias estimate (mean of the
    resamples minus the estimate; NaN for half-sampling, whose resamples are smaller)."""

    value: float
    low: float
    high: float
    stderr: float
    bias: float
    confidence: float
    method: str
    n_resamples: int
    resamples: np.ndarray

    def __repr__(self) -> str:
        return (
            f"ConfidenceInterval(value={self.value:.6g}, low={self.low:.6g}, high={self.high:.6g}, "
            f"stderr={self.stderr:.3g}, confidence={self.confidence}, method={self.method!r}, "
            f"n_resamples={self.n_resamples})"
        )


@dataclass(frozen=True)
class PermutationTest:
    """``pvalue`` = (1 + #{null ≥ statistic}) / (1 + n_permutations)."""

    statistic: float
    pvalue: float
    null: np.ndarray
    n_permutations: int
    stratified: bool

    def __repr__(self) -> str:
        return (
            f"PermutationTest(statistic={self.statistic:.6g}, pvalue={self.pvalue:.4g}, "
            f"n_permutations={self.n_permutations}, stratified={self.stratified})"
        )


def _check_count(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: must be at least {minimum}, got {value}")
    return int(value)


def _in_chunks(
    call: Call, count: int, m: int, draw: Callable[[], list], label: str, progress: bool | None
) -> np.ndarray:
    """Evaluates `count` resamples, each drawn by `draw()` (one index array or None per slot),
    in chunks: one parallel Rust call per chunk."""
    threads = _core.get_num_threads()
    chunk = max(4 * threads, min(_CHUNK_ENTRIES // max(m, 1), max(4 * threads, math.ceil(count / 10))))
    out = np.empty(count, dtype=np.float64)
    bar = Progress(count, label, progress)
    try:
        for start in range(0, count, chunk):
            size = min(chunk, count - start)
            draws = [draw() for _ in range(size)]
            rows: list = []
            for s in range(call.slots):
                same = next((t for t in range(s) if draws[0][t] is draws[0][s]), None)
                if draws[0][s] is None:
                    rows.append(None)
                elif same is not None:  # every input resampled alike: one array, converted once
                    rows.append(rows[same])
                else:
                    rows.append(np.stack([d[s] for d in draws]))
            out[start : start + size] = call.resamples(rows)
            bar.update(size)
    finally:
        bar.close()
    return out


def confidence_interval(
    estimator: Callable[..., float],
    /,
    *arrays: Any,
    n_resamples: int = 200,
    confidence: float = 0.95,
    method: str = "auto",
    random_state: Any = 0,
    progress: bool | None = None,
    **kwargs: Any,
) -> ConfidenceInterval:
    """A confidence interval for ``estimator(*arrays, **kwargs)``, from resamples of the rows.

    ``method``:

    - ``"subsample"`` (half-sampling; ``"auto"`` for the k-NN estimators and for callables the
      package does not know): each resample draws m = ⌊N/2⌋ rows *without* replacement. For
      m = N/2, Var(θ_m − θ_N) ≈ Var(θ_N) (the finite-population factor (1 − m/N)/m equals 1/N),
      so stderr = sd(θ_m)·√(m/(N − m)) and the interval is θ_N ± z·stderr. Resampling *with*
      replacement is invalid for k-NN estimators: the duplicate rows it creates sit at distance 0.
    - ``"bootstrap"`` (``"auto"`` for plug-in (binned) and moment-based quantities): N rows drawn
      with replacement; stderr = sd of the bootstrap estimates θ*_b; the interval is the basic
      (reverse-percentile) one, [2θ_N − q_{1−α/2}(θ*), 2θ_N − q_{α/2}(θ*)], which carries the
      bootstrap's bias correction: plug-in entropies and MI are biased by the number of occupied
      bins, and an interval that lies away from the estimate says so. Refused for k-NN estimators.

    The geometry metrics declare their scheme: bootstrap for the moment-based ones (CDNV, trace
    and Fisher ratios, Calinski–Harabasz, Davies–Bouldin, effective rank), half-sampling for the
    distance-based ones (silhouette, TwoNN), where duplicate rows would sit at distance 0.

    Resamples of the Rust estimators run in parallel inside Rust; pre-processing (normalisation,
    jitter, binning edges) is done once on the whole sample. No interval covers an estimator's
    own bias at small N (k-NN estimators are biased towards 0 for strong dependence).

    Parameters
    ----------
    estimator : callable
        Any estimator of the package (or ``functools.partial`` of one), or your own function of
        row-aligned arrays returning a float.
    *arrays : the estimator's positional arrays; ``**kwargs`` are passed on to it (the estimator
        is positional-only, so an estimator option named ``estimator`` passes through).
    n_resamples : int, at least 2.
    confidence : float in (0, 1).
    random_state : int, numpy Generator or None — draws the resamples (the estimator's own
        ``random_state``, for jitter, can be given with ``functools.partial``).
    progress : bool or None — a progress bar on stderr (None: only for calls longer than 2 s).

    Examples
    --------
    >>> import numpy as np, repcompress
    >>> rng = np.random.default_rng(1)
    >>> x = rng.standard_normal(2000); y = 0.6 * x + 0.8 * rng.standard_normal(2000)
    >>> ci = repcompress.confidence_interval(repcompress.mutual_info, x, y, n_resamples=50)
    >>> ci.low < -0.5 * np.log(1 - 0.6**2) < ci.high
    True
    """
    n_resamples = _check_count(n_resamples, "n_resamples", 2)
    if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real) or not 0 < confidence < 1:
        raise ValueError(f"confidence: must be a number in (0, 1), got {confidence!r}")
    if method not in CI_METHODS:
        raise ValueError(f"method: unknown value {method!r}; expected one of {', '.join(map(repr, CI_METHODS))}")
    call = Call(estimator, arrays, kwargs)
    scheme = call.scheme or "subsample"
    if method == "auto":
        method = scheme
    elif method == "bootstrap" and scheme == "subsample" and call.job is not None:
        raise ValueError(
            "method: the bootstrap is invalid for k-NN estimators (resampling with replacement creates "
            "duplicate rows at distance 0); use 'subsample' (half-sampling without replacement)"
        )
    n = call.n
    rng = make_rng(random_state)
    value = call.value()
    if method == "subsample":
        m = n // 2
        if m < 2:
            raise ValueError(f"arrays: half-sampling needs at least 4 rows, got {n}")

        def draw() -> list:
            rows = np.sort(rng.permutation(n)[:m])
            return [rows] * call.slots

    else:
        m = n

        def draw() -> list:
            # Unsorted: sorting N indices per resample cost more than the locality it buys.
            rows = rng.integers(0, n, size=n)
            return [rows] * call.slots

    estimates = _in_chunks(call, n_resamples, m, draw, "confidence_interval", progress)
    finite = estimates[np.isfinite(estimates)]
    bias = float("nan")
    if finite.size < 2:
        raise ValueError("estimator: fewer than 2 resamples gave a finite estimate; no interval can be formed")
    alpha = 1.0 - confidence
    if method == "subsample":
        stderr = float(np.std(finite, ddof=1) * math.sqrt(m / (n - m)))
        z = NormalDist().inv_cdf(1.0 - alpha / 2.0)
        low, high = value - z * stderr, value + z * stderr
        label = "half-sampling (normal interval)"
    else:
        stderr = float(np.std(finite, ddof=1))
        q_low, q_high = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
        low, high = 2.0 * value - q_high, 2.0 * value - q_low
        bias = float(finite.mean() - value)
        label = "bootstrap (basic interval)"
    return ConfidenceInterval(
        value=value,
        low=float(low),
        high=float(high),
        stderr=stderr,
        bias=bias,
        confidence=float(confidence),
        method=label,
        n_resamples=n_resamples,
        resamples=estimates,
    )


def permutation_test(
    estimator: Callable[..., float],
    x: Any,
    y: Any,
    /,
    *,
    n_permutations: int = 200,
    random_state: Any = 0,
    progress: bool | None = None,
    **kwargs: Any,
) -> PermutationTest:
    """Tests independence by recomputing ``estimator(x, y, **kwargs)`` with y's rows shuffled.

        pvalue = (1 + #{null ≥ statistic}) / (1 + n_permutations),

    which is exact (valid at any n) under the null hypothesis of exchangeability. For
    ``mutual_info_given_labels`` (I(X;Y|L), discrete L) y is shuffled within each class, which
    tests conditional independence; for ``conditional_mutual_info`` with continuous z a plain
    shuffle would test something else and is refused. Pre-processing (normalisation, jitter,
    binning) is done once, so the shuffled rows carry their own jitter.

    Returns the statistic, the p-value and the null sample. Resamples of the Rust estimators
    are evaluated in parallel inside Rust; the same seed gives the same result at any thread count.
    """
    n_permutations = _check_count(n_permutations, "n_permutations", 1)
    call = Call(estimator, (x, y), kwargs)
    slot = call.permute_slot
    if slot is None:
        raise ValueError(
            "estimator: no valid permutation test for this estimator (it measures no dependence between "
            "x and y, or shuffling y would also break its dependence on a continuous conditioning variable)"
        )
    n = call.n
    rng = make_rng(random_state)
    statistic = call.value()
    strata = call.strata
    if strata is not None:
        members = [np.flatnonzero(strata == c) for c in np.unique(strata)]

        def shuffle() -> np.ndarray:
            perm = np.arange(n)
            for idx in members:
                perm[idx] = idx[rng.permutation(idx.size)]
            return perm

    else:

        def shuffle() -> np.ndarray:
            return rng.permutation(n)

    def draw() -> list:
        rows: list = [None] * call.slots
        rows[slot] = shuffle()
        return rows

    null = _in_chunks(call, n_permutations, n, draw, "permutation_test", progress)
    pvalue = (1.0 + float(np.count_nonzero(null >= statistic))) / (1.0 + n_permutations)
    return PermutationTest(
        statistic=statistic, pvalue=pvalue, null=null, n_permutations=n_permutations, stratified=strata is not None
    )


__all__ = ["ConfidenceInterval", "PermutationTest", "confidence_interval", "permutation_test"]
