"""Binned (plug-in) information estimators, as the information-plane literature uses them (docs/spec.md §2).

A sample's binned pattern is its row of bin indices; entropies are plug-in entropies of the
patterns' frequencies. Results depend on the binning, so every choice is a parameter and is
reported back (Shwartz-Ziv & Tishby 2017; Saxe et al. 2018):

- ``strategy="uniform"``: ``n_bins`` equal-width bins over [min, max] of the whole array
  (``range="layer"``, the default) or of each column (``range="unit"``); bin index
  ⌊(v − lo)/w⌋ with w = (hi − lo)/n_bins, the maximum going to the last bin. With ``bin_size``
  instead, fixed-width bins anchored at 0: index ⌊v / bin_size⌋ (Saxe et al.'s convention;
  ``n_bins`` and ``range`` are then unused).
- ``strategy="quantile"``: equal-mass (adaptive) bins per column; the ``n_bins − 1`` edges are
  the column's quantiles at b/n_bins (numpy's default ``quantile``), index = #{edges ≤ v}.
  Tied values (ReLU zeros) share a bin, so bins need not hold equal mass.
- ``correction="miller-madow"`` adds (m − 1)/(2N) to every entropy (m distinct patterns among
  N samples); mutual informations are combinations of corrected entropies.

Rows are hashed in Rust, in parallel; the N × d matrix of bin indices is built only when its
codes fit a byte (packed, one byte per value), and a hash collision can never merge two different
patterns (every row is compared with its pattern's first row). Float32 input is binned in float64
arithmetic; a column whose range overflows float64, or whose bins are narrower than 2^-900, is
binned after an exact power-of-two scaling, so the bins are those of exact arithmetic at any
magnitude (docs/spec.md §2.1).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from . import _core
from ._resampling import Scheme, register_estimator
from ._validation import as_array, as_real, as_samples, check_base, check_choice, class_codes, shown

STRATEGIES = ("uniform", "quantile")
RANGES = ("layer", "unit")
CORRECTIONS = (None, "miller-madow")


@dataclass(frozen=True)
class Patterns:
    """Row patterns of one variable: `ids[i]` in 0..`n_patterns`, in order of first appearance."""

    ids: np.ndarray
    n_patterns: int
    binning: dict = field(default_factory=dict)


# The most bins per column (docs/spec.md §0.4): bin codes are 32-bit in the core.
MAX_BINS = 2**31


def _check_n_bins(n_bins: Any) -> int:
    if isinstance(n_bins, (bool, np.bool_)) or not isinstance(n_bins, numbers.Integral):
        raise TypeError(f"n_bins: must be an integer, got {type(n_bins).__name__} {shown(n_bins)}")
    count = int(n_bins)
    if count < 1:
        raise ValueError(f"n_bins: must be at least 1, got {shown(count)}")
    if count > MAX_BINS:
        raise ValueError(f"n_bins: at most 2^31, got {shown(count)}")
    return count


def _check_bin_size(bin_size: Any, strategy: str) -> float | None:
    if bin_size is None:
        return None
    if isinstance(bin_size, (bool, np.bool_)) or not isinstance(bin_size, numbers.Real):
        raise TypeError(f"bin_size: must be a number or None, got {type(bin_size).__name__}")
    size = as_real(bin_size, "bin_size")
    if not (size > 0 and math.isfinite(size)):
        raise ValueError(f"bin_size: must be positive and finite, got {bin_size}")
    if strategy != "uniform":
        raise ValueError("bin_size: only applies to strategy='uniform' (quantile bins are equal-mass)")
    return size


def _binning_options(n_bins: Any, bin_size: Any, strategy: Any, range: Any, correction: Any) -> dict:
    check_choice(strategy, "strategy", STRATEGIES)
    check_choice(range, "range", RANGES)
    if not (correction is None or (isinstance(correction, str) and correction in CORRECTIONS)):
        raise ValueError(f"correction: unknown value {correction!r}; expected None or 'miller-madow'")
    n_bins = _check_n_bins(n_bins)
    bin_size = _check_bin_size(bin_size, strategy)
    return {"strategy": strategy, "n_bins": n_bins, "bin_size": bin_size, "range": range, "correction": correction}


def bin_patterns(z: Any, name: str = "z", **options: Any) -> Patterns:
    """The binned row patterns of a continuous array (see the module docstring for the options)."""
    zs = np.ascontiguousarray(as_samples(z, name, check_finite=False))
    strategy, bin_size, rng = options["strategy"], options["bin_size"], options["range"]
    try:
        ids, m, rules = _core.factorize_binned(zs, strategy, options["n_bins"], bin_size, rng == "unit")
    except ValueError as exc:
        raise ValueError(str(exc).replace("x:", f"{name}:", 1)) from None
    binning = dict(options)
    if bin_size is not None:
        binning.update(n_bins=None, range=None)
    elif strategy == "uniform":
        lo, width = rules[:, 0], rules[:, 1]
        if rng == "layer":
            binning.update(lo=float(lo[0]), width=float(width[0]))
        else:
            binning.update(lo=lo.copy(), width=width.copy())
    else:
        binning.update(range="unit", edges=rules.copy())
    return Patterns(ids, int(m), binning)


def category_patterns(values: Any, name: str) -> Patterns:
    """Each distinct row of an integer (or boolean) array is one category."""
    arr = as_array(values, name)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 1-D or 2-D array, got {arr.ndim}-D with shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name}: empty input (shape {arr.shape})")
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 8 and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name}: integer values above 2^63 - 1 are not supported")
    ids, m = _core.factorize_integers(np.ascontiguousarray(arr, dtype=np.int64))
    return Patterns(ids, int(m), {"strategy": "categories"})


def _is_categorical(a: Any) -> bool:
    return np.asarray(a).dtype.kind in "iub"


def _patterns(a: Any, name: str, options: dict) -> Patterns:
    return category_patterns(a, name) if _is_categorical(a) else bin_patterns(a, name, **options)


def _entropy(ids: np.ndarray, n_ids: int, correction: str | None) -> float:
    table = _core.plugin_entropy_resamples([(ids, n_ids)])
    return float(_corrected(table[:, 0], table[:, 1], ids.shape[0], correction)[0])


def _corrected(h: np.ndarray, m: np.ndarray, n: int, correction: str | None) -> np.ndarray:
    """Miller–Madow: H + (m − 1)/(2N)."""
    if correction == "miller-madow":
        return h + (np.asarray(m, dtype=np.float64) - 1.0) / (2.0 * n)
    return h


def _mutual_info_from_table(table: np.ndarray, n: int, correction: str | None) -> np.ndarray:
    """I = H(A) + H(B) − H(A,B) from rows (h_a, m_a, h_b, m_b, h_ab, m_ab) of entropies and counts."""
    ha = _corrected(table[:, 0], table[:, 1], n, correction)
    hb = _corrected(table[:, 2], table[:, 3], n, correction)
    hab = _corrected(table[:, 4], table[:, 5], n, correction)
    return ha + hb - hab


class _BinnedEntropyJob:
    """Patterns found once; the entropy of the sample or of resamples of it (bootstrap)."""

    scheme: ClassVar[Scheme] = "bootstrap"
    slots = 1
    permute_slot = None
    strata = None

    def __init__(self, patterns: Patterns, correction: str | None, base: float):
        self.patterns = patterns
        self.correction = correction
        self.base = base
        self.n = patterns.ids.shape[0]

    def run(self) -> float:
        p = self.patterns
        return _entropy(p.ids, p.n_patterns, self.correction) / math.log(self.base)

    def run_resamples(self, draws: Any, start: int, count: int, picked: tuple[bool, ...]) -> np.ndarray:
        p = self.patterns
        table = _core.plugin_entropy_resamples([(p.ids, p.n_patterns)], draws, start, count)
        return _corrected(table[:, 0], table[:, 1], draws.m, self.correction) / math.log(self.base)


class _BinnedMutualInfoJob:
    """Patterns of x and y found once (binning fitted on the whole sample); I(X;Y) of the sample,
    of bootstrap resamples, or with y permuted."""

    scheme: ClassVar[Scheme] = "bootstrap"
    slots = 2
    permute_slot = 1
    strata = None

    def __init__(self, px: Patterns, py: Patterns, correction: str | None, base: float):
        self.px = px
        self.py = py
        self.correction = correction
        self.base = base
        self.n = px.ids.shape[0]
        self.pairs: tuple[np.ndarray, int] | None = None

    def _tables(self) -> list:
        """x, y and the pairs' ids with their numbers: H(X,Y) is the entropy of the pairs' ids, so
        the sample or a resample is one counting pass over its rows (pairs found once per job)."""
        px, py = self.px, self.py
        if self.pairs is None:
            self.pairs = _core.factorize_pairs(px.ids, px.n_patterns, py.ids, py.n_patterns)
        return [(px.ids, px.n_patterns), (py.ids, py.n_patterns), self.pairs]

    def run(self) -> float:
        return float(self._finish(_core.plugin_entropy_resamples(self._tables()), self.n)[0])

    def run_resamples(self, draws: Any, start: int, count: int, picked: tuple[bool, ...]) -> np.ndarray:
        px, py = self.px, self.py
        if all(picked):
            table = _core.plugin_entropy_resamples(self._tables(), draws, start, count)
        else:
            # One variable shuffled (a permutation test); I is symmetric, so the kept one goes first.
            kept, drawn = (px, py) if picked[1] else (py, px)
            table = _core.plugin_mi_resamples(
                kept.ids, kept.n_patterns, drawn.ids, drawn.n_patterns, draws, start, count
            )
        return self._finish(table, draws.m)

    def _finish(self, table: np.ndarray, n_rows: int) -> np.ndarray:
        return _mutual_info_from_table(table, n_rows, self.correction) / math.log(self.base)


# Each estimator below is written as the builder of its job: the body validates and pre-processes
# the arguments and returns the job; @register_estimator makes the public function, which runs the
# job and returns its float (its signature says -> float), and hands the builder to resampling.
@register_estimator(arrays=("z",))
def binned_entropy(
    z: Any,
    *,
    n_bins: int = 30,
    bin_size: float | None = None,
    strategy: str = "uniform",
    range: str = "layer",
    correction: str | None = None,
    base: float = math.e,
) -> _BinnedEntropyJob:
    """Plug-in entropy H(T) of the binned patterns of z (nats; ``base=2``: bits).

        H(T) = −Σ_t p(t) log p(t),  p(t) = (number of rows with pattern t)/N,

    plus (m − 1)/(2N) with ``correction="miller-madow"`` (m distinct patterns). Always
    0 ≤ H(T) ≤ log N without correction. Binning options: see :mod:`repcompress.binning`.

    For a deterministic network and inputs X uniform over N distinct samples, I(X;T) = H(T).

    >>> import numpy as np
    >>> round(binned_entropy(np.array([0.0, 0.0, 1.0, 1.0]), n_bins=2, base=2), 6)
    1.0
    """
    options = _binning_options(n_bins, bin_size, strategy, range, correction)
    base = check_base(base)
    return _BinnedEntropyJob(bin_patterns(z, "z", **options), correction, base)


@register_estimator(arrays=("x", "y"))
def binned_mutual_info(
    x: Any,
    y: Any,
    *,
    n_bins: int = 30,
    bin_size: float | None = None,
    strategy: str = "uniform",
    range: str = "layer",
    correction: str | None = None,
    base: float = math.e,
) -> _BinnedMutualInfoJob:
    """Plug-in mutual information between two binned (or discrete) variables.

        I(X;Y) = H(X) + H(Y) − H(X,Y)

    over the patterns of x and of y. An integer or boolean array is taken as categories (each
    distinct row one value) and is not binned; a float array is binned with the options (see
    :mod:`repcompress.binning`), each variable on its own range. Always 0 ≤ I ≤ min(H(X), H(Y))
    without correction; with ``correction="miller-madow"`` each entropy is corrected.
    """
    options = _binning_options(n_bins, bin_size, strategy, range, correction)
    base = check_base(base)
    x, y = as_array(x, "x"), as_array(y, "y")
    if x.shape[:1] != y.shape[:1]:
        raise ValueError(
            f"y: has {y.shape[:1]} samples but x has {x.shape[:1]}; all arrays need the same number of rows"
        )
    return _BinnedMutualInfoJob(_patterns(x, "x", options), _patterns(y, "y", options), correction, base)


@dataclass(frozen=True)
class InformationPlanePoint:
    """One point of the information plane from binned activations (entropies in units of `base`).

    ``H_T`` entropy of the patterns; ``I_XT`` = H(T) (deterministic) or H(T) − H(T|X) (with
    ``sample_ids``); ``I_TY`` = H(T) − Σ_y p(y) H(T | Y = y); ``n_patterns`` distinct patterns
    among ``n_samples`` rows; ``binning`` the options and fitted ranges/edges used.
    """

    H_T: float
    I_XT: float
    I_TY: float
    n_patterns: int
    n_samples: int
    base: float
    binning: dict

    def as_dict(self) -> dict:
        return {
            "H_T": self.H_T,
            "I_XT": self.I_XT,
            "I_TY": self.I_TY,
            "n_patterns": self.n_patterns,
            "n_samples": self.n_samples,
        }


def binning_information_plane(
    z: Any,
    labels: Any,
    *,
    sample_ids: Any = None,
    n_bins: int = 30,
    bin_size: float | None = None,
    strategy: str = "uniform",
    range: str = "layer",
    correction: str | None = None,
    base: float = math.e,
) -> InformationPlanePoint:
    """I(X;T) and I(T;Y) of a layer's binned activations T (Shwartz-Ziv & Tishby 2017; docs/spec.md §2.4).

    X is taken uniform over the inputs. Without ``sample_ids`` every row is a distinct input
    passed once through a deterministic network, so H(T|X) = 0 and I(X;T) = H(T). With repeated
    stochastic passes, ``sample_ids[i]`` names the input row i came from and

        I(X;T) = H(T) − H(T|X),   H(T|X) = Σ_x p(x) H(T | X = x),

    with p(x) the fraction of rows of input x. Always

        I(T;Y) = H(T) − Σ_y p(y) H(T | Y = y),   0 ≤ I(T;Y) ≤ min(H(T), H(Y)),  H(T) ≤ log N.

    (computed as H(T) + H(Y) − H(T,Y), which is the same number). With
    ``correction="miller-madow"`` every entropy gets (m − 1)/(2N); the identities above still hold
    term by term. Labels and sample ids may be any integers.
    """
    options = _binning_options(n_bins, bin_size, strategy, range, correction)
    base = check_base(base)
    pt = bin_patterns(z, "z", **options)
    n = pt.ids.shape[0]
    ly, _ = class_codes(labels, n, "labels", of="z")
    py = category_patterns(ly, "labels")
    log_base = math.log(base)
    ty = _core.plugin_mi_resamples(pt.ids, pt.n_patterns, py.ids, py.n_patterns)
    h_t = float(_corrected(ty[:, 0], ty[:, 1], n, correction)[0])
    i_ty = float(_mutual_info_from_table(ty, n, correction)[0])
    if sample_ids is None:
        i_xt = h_t
    else:
        sx, _ = class_codes(sample_ids, n, "sample_ids", of="z")
        px = category_patterns(sx, "sample_ids")
        tx = _core.plugin_mi_resamples(pt.ids, pt.n_patterns, px.ids, px.n_patterns)
        i_xt = float(_mutual_info_from_table(tx, n, correction)[0])
    return InformationPlanePoint(
        H_T=h_t / log_base,
        I_XT=i_xt / log_base,
        I_TY=i_ty / log_base,
        n_patterns=pt.n_patterns,
        n_samples=n,
        base=base,
        binning=pt.binning,
    )


__all__ = [
    "InformationPlanePoint",
    "binned_entropy",
    "binned_mutual_info",
    "binning_information_plane",
]
