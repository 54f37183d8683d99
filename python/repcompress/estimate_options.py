"""The options of one estimate (:func:`repcompress.estimate.estimate_arrays`,
``repcompress estimate``), declared once and checked once."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from ._validation import as_real, check_base, check_optional_bool, shown
from .activations import InputError
from .binning import MAX_BINS
from .uncertainty import MAX_RESAMPLES

__all__ = ["EstimateOptions"]


def _positive_int_or_none(value: Any, name: str, minimum: int = 1, maximum: int | None = None) -> int | None:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InputError(f"{name}: must be an integer >= {minimum}, got {shown(value)}")
    number = int(value)
    if maximum is not None and number > maximum:
        raise InputError(f"{name}: must be at most {maximum}, got {shown(number)}")
    return number


def _nonnegative_or_none(value: Any, name: str) -> float | None:
    if value is None:
        return None
    try:
        number = as_real(value, name)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number >= 0):
        raise InputError(f"{name}: must be a finite number >= 0, got {shown(value)}")
    return number


# The largest k, n_draws and silhouette_sample_size: counts of samples (or of draws per sample),
# like the samples of one array (docs/spec.md §0.2). Within it, the function that takes the option
# refuses a value too large for the data, in its row.
MAX_COUNT = 2**32 - 1

# Marks the options passed on to the metrics' functions (None: the function's own default).
_METRIC_OPTION = {"metric_option": True}


@dataclass(frozen=True, kw_only=True)
class EstimateOptions:
    """The options of one estimate, as :func:`repcompress.estimate.estimate_arrays` documents them,
    checked once on construction (:class:`~repcompress.activations.InputError` naming the option) and held normalised
    (``seed`` an int, ``base`` and ``confidence`` floats).

    ``ci``, ``confidence``, ``seed``, ``base`` and ``progress`` concern the whole run; the others
    (:meth:`metric_options`) are passed to the metric functions that take them, None keeping
    each function's default."""

    ci: int | None = None
    confidence: float = 0.95
    seed: int = 0
    base: float = math.e
    k: int | None = field(default=None, metadata=_METRIC_OPTION)
    n_bins: int | None = field(default=None, metadata=_METRIC_OPTION)
    n_draws: int | None = field(default=None, metadata=_METRIC_OPTION)
    min_variance: float | None = field(default=None, metadata=_METRIC_OPTION)
    ridge: float | None = field(default=None, metadata=_METRIC_OPTION)
    silhouette_sample_size: int | None = field(default=None, metadata=_METRIC_OPTION)
    progress: bool | None = None

    def __post_init__(self) -> None:
        try:
            base = check_base(self.base)
        except (TypeError, ValueError) as exc:
            raise InputError(str(exc)) from None
        seed, confidence = self.seed, self.confidence
        if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
            raise InputError(f"seed: must be an integer, got {shown(seed)}")
        if seed < 0:
            # It is every estimator's random_state, a numpy seed (docs/spec.md §0.6).
            raise InputError(f"seed: must be a non-negative integer, got {shown(seed)}")
        if isinstance(confidence, (bool, np.bool_)) or not (
            isinstance(confidence, numbers.Real) and 0 < confidence < 1
        ):
            raise InputError(f"confidence: must be a number in (0, 1), got {shown(confidence)}")
        try:
            progress = check_optional_bool(self.progress, "progress")
        except TypeError as exc:
            raise InputError(str(exc)) from None
        checked = {
            "ci": _positive_int_or_none(self.ci, "ci", 2, MAX_RESAMPLES),
            "confidence": float(confidence),
            "seed": int(seed),
            "base": base,
            "k": _positive_int_or_none(self.k, "k", 1, MAX_COUNT),
            "n_bins": _positive_int_or_none(self.n_bins, "n_bins", 1, MAX_BINS),
            "n_draws": _positive_int_or_none(self.n_draws, "n_draws", 1, MAX_COUNT),
            "min_variance": _nonnegative_or_none(self.min_variance, "min_variance"),
            "ridge": _nonnegative_or_none(self.ridge, "ridge"),
            "silhouette_sample_size": _positive_int_or_none(
                self.silhouette_sample_size, "silhouette_sample_size", 1, MAX_COUNT
            ),
            "progress": progress,
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every option, in the order of :func:`~repcompress.estimate.estimate_arrays`'s signature."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def metric_options(cls) -> tuple[str, ...]:
        """The options passed on to the metrics' functions."""
        return tuple(f.name for f in fields(cls) if f.metadata.get("metric_option"))

    @classmethod
    def check_names(cls, function: str, keywords: Iterable[str]) -> None:
        """A TypeError for a keyword that is no option, as Python raises for ``function``."""
        known = cls.names()
        for name in keywords:
            if name not in known:
                raise TypeError(f"{function}() got an unexpected keyword argument {name!r}")
