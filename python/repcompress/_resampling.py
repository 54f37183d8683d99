"""How an estimator is evaluated on resamples: one mechanism for every estimator (docs/spec.md §5.1).

The resamples of a call are a ``_core.Draws``: resample b draws its rows inside Rust with its own
generator, seeded from the call's 64-bit seed and b, so resample b is the same whichever thread
draws it and however the resamples are split into batches.

An estimator made by :func:`register_estimator` is built from a *job*, which the estimator's own
body returns: an object that holds its inputs, validated and pre-processed once, and evaluates the
estimate on the sample (``run()``) or on many resamples at once (``run_resamples(draws, start,
count, picked)``: the resamples ``start .. start + count - 1`` of ``draws``, drawn and evaluated
in parallel inside Rust, no Python call per resample). ``picked`` has one flag per resampling slot
(the row-aligned inputs, in the job's order): whether that input takes the drawn rows or is used
as it is. A job also says

- ``scheme``: the resampling that is valid for it by default ("subsample" for k-NN estimators,
  whose estimates break on the duplicate rows a bootstrap creates; "bootstrap" for plug-in and
  moment-based quantities);
- ``n``: the number of rows; ``slots``: how many row-aligned inputs it has;
- ``permute_slot``: which slot a permutation test shuffles (None: no test of dependence);
- ``strata``: class codes within which that shuffle stays (conditional tests), or None.

Estimators without a job (plain functions) can still declare their row-aligned parameters and
scheme with :func:`declare_resampling`; they are then evaluated by calling them once per
resample, on the rows of the same ``Draws`` (``draws.rows(start, count)``, drawn in parallel in
Rust), so that every path sees the same resamples for the same seed. Any other callable is
treated as an estimator whose positional arrays are row-aligned.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, ParamSpec, Protocol

import numpy as np

from ._torch_backend import is_tensor
from ._validation import as_array

_ATTR = "__repcompress_estimator__"

# How the rows of a resample are drawn (docs/spec.md §5.1).
Scheme = Literal["bootstrap", "subsample", "permutation"]


@dataclass(frozen=True)
class EstimatorInfo:
    """What the resampling machinery knows about an estimator."""

    arrays: tuple[str, ...]
    scheme: Scheme | None = None
    job: Callable[..., Any] | None = None


class Job(Protocol):
    """A validated, pre-processed estimate (see the module docstring)."""

    @property
    def scheme(self) -> Scheme: ...
    @property
    def n(self) -> int: ...
    @property
    def slots(self) -> int: ...
    @property
    def permute_slot(self) -> int | None: ...
    @property
    def strata(self) -> np.ndarray | None: ...
    def run(self) -> float: ...
    def run_resamples(self, draws: Any, start: int, count: int, picked: tuple[bool, ...]) -> np.ndarray: ...


P = ParamSpec("P")


def register_estimator(*, arrays: tuple[str, ...]) -> Callable[[Callable[P, Job]], Callable[P, float]]:
    """Makes a public estimator of a job builder: a function with the estimator's signature and
    docstring whose body validates and pre-processes its arguments and returns the :class:`Job`.

    The decorated function takes the same arguments, runs the job and returns its float (its
    ``__signature__`` says ``-> float``; ``__wrapped__`` is the builder). The builder is what
    resampling calls (``job``), so the estimator's parameters are written once, in its signature.
    ``arrays``: the row-aligned parameters, in the job's slot order.
    """

    def wrap(build: Callable[P, Job]) -> Callable[P, float]:
        @functools.wraps(build)
        def estimate(*args: P.args, **kwargs: P.kwargs) -> float:
            return build(*args, **kwargs).run()

        signature = inspect.signature(build)
        # Annotations are strings where the module postpones their evaluation (PEP 563).
        returns = "float" if isinstance(signature.return_annotation, str) else float
        function: Any = estimate  # typeshed declares no __signature__ on functions
        function.__signature__ = signature.replace(return_annotation=returns)
        function.__annotations__ = {**build.__annotations__, "return": returns}
        setattr(estimate, _ATTR, EstimatorInfo(arrays=arrays, job=build))
        return estimate

    return wrap


def declare_resampling(*, arrays: tuple[str, ...], scheme: Scheme) -> Callable[[Callable], Callable]:
    """Declares which parameters of a plain estimator are row-aligned, and its valid scheme."""

    def mark(fn: Callable) -> Callable:
        setattr(fn, _ATTR, EstimatorInfo(arrays=arrays, scheme=scheme))
        return fn

    return mark


def describe(estimator: Callable) -> tuple[Callable, EstimatorInfo | None, tuple, dict]:
    """(the underlying function, its info, positional and keyword arguments bound by partial)."""
    args: tuple = ()
    kwargs: dict = {}
    fn = estimator
    while isinstance(fn, functools.partial):
        args = fn.args + args
        kwargs = {**fn.keywords, **kwargs}
        fn = fn.func
    if not callable(fn):
        raise TypeError(f"estimator: must be callable, got {type(fn).__name__}")
    return fn, getattr(fn, _ATTR, None), args, kwargs


def _one_number(result: Any) -> float:
    """An estimator's result as a float, or a TypeError naming `estimator` when it is not one number
    (an interval or a permutation test is of a scalar estimate)."""
    shape = np.shape(result)
    if shape != () and shape != (1,):
        raise TypeError(
            f"estimator: returned an array of shape {shape}, not one number; intervals and permutation "
            "tests are of scalar estimates (for mutual_info_matrix, resample one entry: "
            "confidence_interval(mutual_info, x[:, a], x[:, b]))"
        )
    return float(np.asarray(result).reshape(()) if shape == (1,) else result)


class Call:
    """One estimator call, bound to its arguments, that can be re-evaluated on resampled rows."""

    def __init__(self, estimator: Callable, arrays: tuple, kwargs: dict):
        fn, info, pre_args, pre_kwargs = describe(estimator)
        self.fn = fn
        self.info = info
        self.args = pre_args + tuple(arrays)
        self.kwargs = {**pre_kwargs, **kwargs}
        self.job = info.job(*self.args, **self.kwargs) if info is not None and info.job is not None else None
        if self.job is not None:
            self.n = self.job.n
            self.slots = self.job.slots
            self.scheme = self.job.scheme
            return
        self.scheme = info.scheme if info is not None else None
        # Row-aligned arguments: the declared ones (by name), else every positional array (by index).
        bound: inspect.BoundArguments | None
        try:
            bound = inspect.signature(fn).bind(*self.args, **self.kwargs)
        except (TypeError, ValueError):
            bound = None
        self.aligned: list[str] | list[int]
        self.bound: inspect.BoundArguments | None
        if info is not None and bound is not None:
            self.aligned = [name for name in info.arrays if name in bound.arguments]
            self.bound = bound
        else:
            self.aligned = list(range(len(self.args)))
            self.bound = None
        if not self.aligned:
            raise ValueError("estimator: no row-aligned array arguments to resample")
        for key in self.aligned:
            if self._get(key).ndim == 0:
                raise ValueError(f"{self._name(key)}: expected an array of rows to resample, got a scalar")
        first = self._get(self.aligned[0])
        self.n = len(first)
        for name in self.aligned[1:]:
            if len(self._get(name)) != self.n:
                raise ValueError(f"{name}: has {len(self._get(name))} rows but the first array has {self.n}")
        self.slots = len(self.aligned)

    @staticmethod
    def _name(key: Any) -> str:
        """A row-aligned argument as the user passed it: its name, or its place among the arrays."""
        return key if isinstance(key, str) else f"arrays[{key}]"

    def _get(self, key: Any) -> Any:
        value = self.bound.arguments[key] if self.bound is not None else self.args[key]
        if is_tensor(value):
            # Resampled where it lies: a tensor's rows are taken on its device (docs/spec.md §8.2).
            return value.detach()
        return as_array(value, self._name(key))

    def value(self) -> float:
        if self.job is not None:
            return float(self.job.run())
        return _one_number(self.fn(*self.args, **self.kwargs))

    def resamples(self, draws: Any, start: int, count: int, picked: tuple[bool, ...]) -> Any:
        """Estimates on resamples `start .. start + count - 1` of `draws` (a `_core.Draws`);
        `picked[s]`: whether slot s takes the drawn rows (otherwise it is used as it is)."""
        if self.job is not None:
            return np.asarray(self.job.run_resamples(draws, start, count, picked), dtype=np.float64)
        rows = draws.rows(start, count)
        out = np.empty(count, dtype=np.float64)
        for i in range(count):
            picked_rows: dict[Any, Any] = {
                key: self._get(key)[rows[i]] for key, p in zip(self.aligned, picked, strict=True) if p
            }
            if self.bound is not None:
                arguments = dict(self.bound.arguments)
                arguments.update(picked_rows)
                call = inspect.BoundArguments(self.bound.signature, arguments)
                out[i] = _one_number(self.fn(*call.args, **call.kwargs))
            else:
                args = list(self.args)
                for key, value in picked_rows.items():
                    args[key] = value
                out[i] = _one_number(self.fn(*args, **self.kwargs))
        return out

    @property
    def permute_slot(self) -> int | None:
        if self.job is not None:
            return self.job.permute_slot
        return 1 if self.slots >= 2 else None

    @property
    def strata(self) -> Any:
        return self.job.strata if self.job is not None else None
