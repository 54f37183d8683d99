"""Confidence intervals and permutation tests for any estimator of the package (docs/spec.md §5).

One mechanism serves every estimator: estimators built on a *job* (all Rust-backed estimators)
draw and evaluate all resamples in parallel calls into Rust; any other estimator — a declared plain
function or your own callable — is called once per resample, on the same rows, drawn in Rust.

How resamples are drawn: one 64-bit seed is taken from ``random_state`` per call; resample b then
has its own generator (xoshiro256++ seeded by SplitMix64 from the seed and b), so resample b's rows
depend on the seed and b alone — never on the thread count or on how the resamples are batched —
and the same seed gives the same bits at any thread count. Bootstrap rows are uniform integers in
[0, N) (Lemire's multiply-and-reject, free of modulo bias), half-samples ⌊N/2⌋ distinct rows
(Floyd's algorithm, ascending), permutations Fisher–Yates shuffles (within each class for a
stratified test). The plug-in estimators count bootstrap rows as they are drawn, without storing
them.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Literal

import numpy as np

from . import _core
from ._progress import Progress
from ._resampling import Call, Scheme
from ._validation import as_int, check_choice, check_optional_bool, make_rng, shown

CI_METHODS: tuple[Literal["auto", "subsample", "bootstrap"], ...] = ("auto", "subsample", "bootstrap")

# Row indices per batch of resamples: bounds the index table of the estimators called once per
# resample (the Rust jobs draw rows one resample at a time); the draws do not depend on it.
_CHUNK_ENTRIES = 8_000_000
# After the first batch, batches are sized to take about this long: few calls into Rust (each has
# its own set-up and thread hand-offs), yet a live progress bar. The draws do not depend on it.
_BATCH_SECONDS = 0.5


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


# The most resamples of one call: the count of one array of estimates, like the samples of one
# array (docs/spec.md §0.2). More is a ValueError naming the option, not numpy's "Maximum allowed
# dimension exceeded".
MAX_RESAMPLES = 2**32 - 1


def _check_count(value: Any, name: str, minimum: int) -> int:
    return as_int(value, name, minimum=minimum, maximum=MAX_RESAMPLES)


def _draws(scheme: Scheme, n: int, random_state: Any, strata: Any = None) -> Any:
    """The resamples of one call: a single 64-bit seed taken from `random_state` seeds them all."""
    seed = int(make_rng(random_state).integers(0, 2**64, dtype=np.uint64))
    if strata is not None:
        strata = np.ascontiguousarray(strata, dtype=np.int64)
    return _core.Draws(scheme, n, seed, strata)


def _in_chunks(
    call: Call, count: int, draws: Any, picked: tuple[bool, ...], label: str, progress: bool | None
) -> np.ndarray:
    """Evaluates resamples 0 .. count - 1 of `draws` in batches (one parallel Rust call each, which
    also draws the rows); the results do not depend on the batching."""
    threads = _core.get_num_threads()
    m = draws.m
    first = max(4 * threads, min(_CHUNK_ENTRIES // max(m, 1), max(4 * threads, math.ceil(count / 10))))
    # Only the estimators called once per resample hold a batch's index table.
    most = count if call.job is not None else max(4 * threads, _CHUNK_ENTRIES // max(m, 1))
    if progress is False:
        # No bar to keep alive (and Ctrl-C is honoured inside Rust): as few calls as possible.
        first = most
    out = np.empty(count, dtype=np.float64)
    bar = Progress(count, label, progress)
    try:
        start, size = 0, first
        while start < count:
            size = min(size, count - start)
            began = time.perf_counter()
            out[start : start + size] = call.resamples(draws, start, size, picked)
            took = time.perf_counter() - began
            bar.update(size)
            start += size
            size = max(first, min(most, int(size * _BATCH_SECONDS / max(took, 1e-6))))
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

    Resamples are drawn inside Rust, in parallel, from one 64-bit seed taken from
    ``random_state``: resample b uses its own generator seeded from (seed, b) (xoshiro256++ via
    SplitMix64), so the result is bit-identical at any thread count. Bootstrap rows are uniform in
    [0, N) without modulo bias (Lemire's method); half-samples are ⌊N/2⌋ distinct rows, every
    subset equally likely (Floyd's algorithm). Resamples of the Rust estimators are also evaluated
    in parallel inside Rust (the plug-in estimators count bootstrap rows as they are drawn); other
    estimators are called once per resample on the same rows. Pre-processing (normalisation,
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
    random_state : int, numpy Generator or None — one 64-bit seed is drawn from it, and all
        resamples derive from that seed (the estimator's own ``random_state``, for jitter, can be
        given with ``functools.partial``).
    progress : bool or None — a tqdm progress bar (a widget in Jupyter; None: only for calls longer than 2 s).

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
    if isinstance(confidence, (bool, np.bool_)) or not isinstance(confidence, numbers.Real) or not 0 < confidence < 1:
        raise ValueError(f"confidence: must be a number in (0, 1), got {shown(confidence)}")
    chosen = check_choice(method, "method", CI_METHODS)
    progress = check_optional_bool(progress, "progress")
    rng = make_rng(random_state)
    call = Call(estimator, arrays, kwargs)
    scheme: Scheme = call.scheme or "subsample"
    if chosen == "auto":
        chosen = scheme
    elif chosen == "bootstrap" and scheme == "subsample" and call.job is not None:
        raise ValueError(
            "method: the bootstrap is invalid for k-NN estimators (resampling with replacement creates "
            "duplicate rows at distance 0); use 'subsample' (half-sampling without replacement)"
        )
    n = call.n
    if chosen == "subsample" and n // 2 < 2:
        raise ValueError(f"arrays: half-sampling needs at least 4 rows, got {n}")
    draws = _draws(chosen, n, rng)
    value = call.value()
    m = draws.m
    estimates = _in_chunks(call, n_resamples, draws, (True,) * call.slots, "confidence_interval", progress)
    finite = estimates[np.isfinite(estimates)]
    bias = float("nan")
    if finite.size < 2:
        raise ValueError("estimator: fewer than 2 resamples gave a finite estimate; no interval can be formed")
    alpha = 1.0 - confidence
    if chosen == "subsample":
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

    Returns the statistic, the p-value and the null sample. The shuffles are drawn inside Rust
    like :func:`confidence_interval`'s resamples (one seed from ``random_state``; shuffle b a
    Fisher–Yates shuffle by its own generator seeded from (seed, b), within each class when
    stratified), so the same seed gives the same result at any thread count. Resamples of the
    Rust estimators are evaluated in parallel inside Rust; other estimators are called once per
    shuffle, on the same shuffles.
    """
    n_permutations = _check_count(n_permutations, "n_permutations", 1)
    progress = check_optional_bool(progress, "progress")
    rng = make_rng(random_state)
    call = Call(estimator, (x, y), kwargs)
    slot = call.permute_slot
    if slot is None:
        raise ValueError(
            "estimator: no valid permutation test for this estimator (it measures no dependence between "
            "x and y, or shuffling y would also break its dependence on a continuous conditioning variable)"
        )
    draws = _draws("permutation", call.n, rng, call.strata)
    statistic = call.value()
    picked = tuple(s == slot for s in range(call.slots))
    null = _in_chunks(call, n_permutations, draws, picked, "permutation_test", progress)
    pvalue = (1.0 + float(np.count_nonzero(null >= statistic))) / (1.0 + n_permutations)
    return PermutationTest(
        statistic=statistic, pvalue=pvalue, null=null, n_permutations=n_permutations, stratified=call.strata is not None
    )


__all__ = ["ConfidenceInterval", "PermutationTest", "confidence_interval", "permutation_test"]
