"""Input checking and pre-processing shared by every estimator (docs/spec.md §0.2–§0.4).

Every error names the argument the user passed, so that a failing call in a notebook says which
array or option is wrong and why.
"""

from __future__ import annotations

import math
import numbers
import os
import sys
import warnings
from collections.abc import Sequence
from types import FrameType
from typing import Any, TypeVar

import numpy as np

from . import _core

_NATIVE = (np.dtype(np.float32), np.dtype(np.float64))
# Integers of larger magnitude are not all exactly representable in float64.
_EXACT_INTEGERS = 2**53


def as_samples(a: Any, name: str, *, check_finite: bool = True) -> np.ndarray:
    """Returns `a` as a 2-D float32/float64 array of shape (N, d), (N,) read as (N, 1).

    float32 and float64 arrays are returned without a copy (a view when 1-D); other numeric
    inputs (lists, integers, booleans, float16) are converted once to float64, with a
    `UserWarning` naming the argument when integers beyond ±2^53 get rounded (docs/spec.md §0.2).
    ``check_finite=False`` leaves the NaN/inf check to a Rust core function that does it anyway
    (and names the first bad row), sparing one pass over the data.
    """
    try:
        arr = np.asarray(a)
    except (TypeError, ValueError) as exc:  # ragged nested lists, for instance
        raise TypeError(f"{name}: cannot be read as a numeric array ({exc})") from None
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if arr.dtype not in _NATIVE:
        if arr.dtype.kind in "iu" and arr.size and max(abs(int(arr.max())), abs(int(arr.min()))) > _EXACT_INTEGERS:
            warnings.warn(
                f"{name}: integer values beyond ±2^53 are rounded to float64 (exact for integers up to 2^53 "
                "only), so distinct values may become equal",
                UserWarning,
                stacklevel=_caller_stacklevel(),
            )
        arr = arr.astype(np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    elif arr.ndim != 2:
        raise ValueError(f"{name}: expected a 1-D (N,) or 2-D (N, d) array, got {arr.ndim}-D with shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name}: empty input (shape {arr.shape})")
    if not check_finite:
        return arr
    finite = np.isfinite(arr)
    if not finite.all():
        row = int(np.flatnonzero(~finite.all(axis=1))[0])
        raise ValueError(f"{name}: contains NaN or inf (first at row {row})")
    return arr


def _caller_stacklevel() -> int:
    """The stacklevel of `warnings.warn` that points at the first frame outside this package."""
    package = os.path.dirname(__file__)
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


# docs/spec.md §0.8: data whose largest magnitude lies outside this window (per dtype of the
# arithmetic) are computed on after scaling by a power of two. Inside it, squares and their sums
# of up to 2^64 terms neither overflow nor reach the subnormal range.
_WINDOW = {np.dtype(np.float64): (2.0**-400, 2.0**400), np.dtype(np.float32): (2.0**-20, 2.0**40)}


def largest_magnitude(a: np.ndarray) -> float:
    """max |a| (in two passes, without an |a| copy)."""
    return float(max(a.max(), -a.min()))


def magnitude_exponent(largest: float, dtype: Any = np.float64, *, low: float | None = None) -> int:
    """0 when `largest` (a largest magnitude) is 0 or lies in the window of `dtype` (its lower end
    replaced by `low` if given); else the e with largest·2^-e in [1, 2), so that data divided by
    2^e lie in the window (exactly, for normal numbers)."""
    lo, hi = _WINDOW[np.dtype(dtype)]
    if low is not None:
        lo = low
    if largest == 0 or lo <= largest <= hi:
        return 0
    return math.frexp(largest)[1] - 1


def _population_std(b: np.ndarray) -> np.ndarray:
    """√(Σ (b − mean)² / N) per column of a 2-D float64 array, both sums over the rows by the fixed
    pairwise tree of docs/spec.md §1.4 (rows i and i + ⌊m/2⌋ added until one row is left, an odd
    last row carried): in the core, in parallel, without a copy of the squared deviations. The
    order depends on N alone, so the torch back-end, which adds the same pairs, gets the same bits
    (§8.2)."""
    return _core.population_std(np.ascontiguousarray(b, dtype=np.float64))


def column_std(b: np.ndarray) -> np.ndarray:
    """Population standard deviation of each column of a float64 array (mean, then the mean of the
    squared deviations, each sum by the pairwise tree of :func:`_population_std`). Columns whose result is 0, not finite
    or outside [2^-400, 2^400] (their squares may have under- or overflowed) are computed again
    divided by a power of two that brings their largest magnitude to [1, 2), which is exact
    (docs/spec.md §0.8); all-zero columns keep 0."""
    std = _population_std(b)  # non-finite or out-of-window results are found and redone below
    lo, hi = _WINDOW[np.dtype(np.float64)]
    redo = np.flatnonzero(~((std >= lo) & (std <= hi)))
    if redo.size:
        columns = b[:, redo]
        largest = np.maximum(columns.max(axis=0), -columns.min(axis=0))
        e = np.where(largest > 0, np.frexp(largest)[1] - 1, 0)
        with np.errstate(over="ignore"):
            std[redo] = np.ldexp(_population_std(np.ldexp(columns, -e)), e)
    return std


def scale_to_window(arrays: Sequence[np.ndarray], *, jitter: float) -> tuple[list[np.ndarray], int]:
    """The arrays of one k-NN estimate without normalisation, each divided by the same power of
    two 2^e when their largest magnitude lies outside the window of the dtype the estimator
    computes in (float32 only for float32 arrays without jitter), and e (0: the arrays as given).
    Distances scale exactly, so neighbour counts do not change (docs/spec.md §0.8)."""
    computes_in = np.float32 if jitter == 0 and all(a.dtype == np.float32 for a in arrays) else np.float64
    e = magnitude_exponent(max(largest_magnitude(a) for a in arrays), computes_in)
    if e == 0:
        return list(arrays), 0
    return [np.ldexp(a, -e) for a in arrays], e


def same_length(arrays: Sequence[tuple[str, np.ndarray]]) -> int:
    """Checks that all arrays have the same number of samples; returns it."""
    (first_name, first), *rest = arrays
    n = first.shape[0]
    for name, arr in rest:
        if arr.shape[0] != n:
            raise ValueError(
                f"{name}: has {arr.shape[0]} samples but {first_name} has {n}; all arrays need the same number of rows"
            )
    return n


def check_k(k: Any, n: int, *, what: str = "the number of samples") -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k: must be an integer, got {type(k).__name__} {shown(k)}")
    k = int(k)
    if k < 1:
        raise ValueError(f"k: must be at least 1, got {shown(k)}")
    if k >= n:
        raise ValueError(f"k: must be smaller than {what} ({n}), got {shown(k)}")
    return k


_Choice = TypeVar("_Choice", bound=str)


def check_choice(value: Any, name: str, choices: Sequence[_Choice]) -> _Choice:
    """`value` if it is one of `choices` (typed as the choices' Literal), else a ValueError listing them."""
    for choice in choices:
        if isinstance(value, str) and value == choice:
            return choice
    options = ", ".join(repr(c) for c in choices)
    raise ValueError(f"{name}: unknown value {value!r}; expected one of {options}")


def shown(value: Any) -> str:
    """`value` for an error message: its repr, but an integer too long to print usefully (or at all:
    Python refuses to format integers of more than 4300 digits) by its number of digits."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and abs(int(value)) >= 10**30:
        digits = int(abs(int(value)).bit_length() * math.log10(2)) + 1
        return f"{'-' if value < 0 else ''}an integer of about {digits} digits"
    return repr(value)


def _human(nbytes: float) -> str:
    """A size as the core writes it (rust/memory.rs): "512 bytes", "1.5 MB", "80.0 GB"."""
    units = ["bytes", "kB", "MB", "GB", "TB", "PB"]
    value, unit = float(nbytes), 0
    while value >= 1000 and unit + 1 < len(units):
        value, unit = value / 1000, unit + 1
    return f"{int(nbytes)} bytes" if unit == 0 else f"{value:.1f} {units[unit]}"


def check_memory(nbytes: int, arg: str, what: str, hint: str) -> None:
    """Raises `MemoryError` naming `arg` when a buffer of `nbytes` that the caller's arguments size
    cannot be had, judged as the core judges its own (docs/spec.md §0.5): larger than the memory
    the system reports available (from 64 MiB on), since an overcommitted allocation would succeed
    and the process be killed when it is used."""
    available, check_from = _core.available_memory()
    if nbytes >= check_from and available is not None and nbytes > available:
        raise MemoryError(
            f"{arg}: {what} would take {_human(nbytes)} of memory, more than the {_human(available)} available; {hint}"
        )


def check_bool(value: Any, name: str) -> bool:
    """A real boolean (Python's or numpy's): an option such as ``normalize="yes"`` or ``clip=1``
    is refused rather than read by its truthiness (docs/spec.md §0.4)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name}: must be True or False, got {type(value).__name__} {shown(value)}")


def check_optional_bool(value: Any, name: str) -> bool | None:
    """None, or a real boolean (see :func:`check_bool`)."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name}: must be True, False or None, got {type(value).__name__} {shown(value)}")


def as_real(value: Any, name: str) -> float:
    """A real number (not a bool) as a float; one beyond the float64 range (``10**400``) is a
    ValueError naming the argument, never an OverflowError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: must be a number, got {type(value).__name__}")
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"{name}: must be a finite number, got {shown(value)} (beyond the float64 range)") from None


def as_int(value: Any, name: str, *, minimum: int, maximum: int | None = None) -> int:
    """An integer (not a bool) in [minimum, maximum] as a Python int."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: must be an integer, got {type(value).__name__} {shown(value)}")
    number = int(value)
    if number < minimum:
        raise ValueError(f"{name}: must be at least {minimum}, got {shown(number)}")
    if maximum is not None and number > maximum:
        raise ValueError(f"{name}: must be at most {maximum}, got {shown(number)}")
    return number


def _real(value: Any, name: str) -> float:
    return as_real(value, name)


def check_base(base: Any) -> float:
    base = _real(base, "base")
    if not (base > 0 and base != 1 and math.isfinite(base)):
        raise ValueError(f"base: must be positive, finite and not 1, got {base}")
    return base


def check_jitter(jitter: Any) -> float:
    jitter = _real(jitter, "jitter")
    if not (jitter >= 0 and math.isfinite(jitter)):
        raise ValueError(f"jitter: must be finite and >= 0, got {jitter}")
    return jitter


def make_rng(random_state: Any, name: str = "random_state") -> np.random.Generator:
    """An int seed (>= 0, as numpy takes it), a numpy Generator (used as is), or None (fresh entropy:
    not reproducible)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None:
        return np.random.default_rng(None)
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, (bool, np.bool_)):
        if random_state < 0:
            raise ValueError(f"{name}: a seed must be a non-negative integer, got {shown(random_state)}")
        return np.random.default_rng(int(random_state))
    raise TypeError(f"{name}: expected an int, a numpy.random.Generator or None, got {type(random_state).__name__}")


def as_array(a: Any, name: str) -> np.ndarray:
    """``numpy.asarray(a)``, with a TypeError naming the argument when it cannot be read as an array
    (ragged nested lists, for instance)."""
    try:
        return np.asarray(a)
    except (TypeError, ValueError, OverflowError) as exc:
        raise TypeError(f"{name}: cannot be read as a numeric array ({exc})") from None


def as_float_array(
    a: Any, name: str, *, shape: tuple[int | None, ...], what: str, allow_bool: bool = True
) -> np.ndarray:
    """An auxiliary array argument (a classifier's weights, a bias, logits, per-dimension
    variances) as float64, with the checks every array argument gets (docs/spec.md §0.2, §0.4):
    numeric dtype (TypeError), the expected shape (`shape`, None for any length; `what` says it in
    the message), finite values (ValueError with the first bad row or entry)."""
    arr = as_array(a, name)
    kinds = "fiub" if allow_bool else "fiu"
    if arr.dtype.kind not in kinds:
        raise TypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    fits = arr.ndim == len(shape) and all(want in (None, got) for got, want in zip(arr.shape, shape, strict=True))
    if not fits:
        raise ValueError(f"{name}: expected shape {what}, got {arr.shape}")
    arr = np.asarray(arr, dtype=np.float64)
    finite = np.isfinite(arr)
    if not finite.all():
        where = np.argwhere(~finite)[0]
        at = f"row {int(where[0])}" if arr.ndim == 2 else f"entry {int(where[0])}" if arr.ndim == 1 else "it"
        raise ValueError(f"{name}: contains NaN or inf (first at {at})")
    return arr


def check_labels(labels: Any, n: int, name: str = "labels", *, of: str = "x") -> np.ndarray:
    """Checks class labels of the n samples of the array named `of`: a 1-D array of n integer-like
    values (integers, booleans, or floats that are whole numbers). Returns it as an array.
    Labels are small (N integers): a torch tensor on any device is copied to the host here."""
    from ._torch_backend import is_tensor

    if is_tensor(labels):
        labels = labels.detach().cpu().numpy()
    try:
        arr = np.asarray(labels)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: cannot be read as an array ({exc})") from None
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of class labels, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"{name}: has {arr.shape[0]} entries but {of} has {n} samples")
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr)
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            raise ValueError(f"{name}: contains NaN or inf (first at row {row})")
        bad = np.flatnonzero(arr != np.round(arr))
        if bad.size:
            raise ValueError(f"{name}: must be integer-like, got {arr[bad[0]].item()!r} at row {int(bad[0])}")
    elif arr.dtype.kind not in "iub":
        raise TypeError(f"{name}: must be integer-like, got dtype {arr.dtype}")
    return arr


def class_codes(labels: Any, n: int, name: str = "labels", *, of: str = "x") -> tuple[np.ndarray, np.ndarray]:
    """Re-indexes integer-like labels (checked by :func:`check_labels`) to codes 0..C-1 (only
    present values count as classes).

    Returns (codes as int64, the distinct label values in code order).
    """
    arr = check_labels(labels, n, name, of=of)
    values, codes = np.unique(arr, return_inverse=True)
    return np.ascontiguousarray(codes.reshape(-1), dtype=np.int64), values


def preprocess(arrays: Sequence[np.ndarray], *, normalize: bool, jitter: float, random_state: Any) -> list[np.ndarray]:
    """The k-NN pre-processing of docs/spec.md §1.4, applied to each variable.

    `normalize`: each column is divided by its standard deviation (constant columns are left
    unchanged). `jitter`: each column then gets Gaussian noise of `jitter` standard deviations
    (of the column as it is after normalisation; constant columns get none): for the arrays in
    order, a 63-bit seed is drawn from `random_state`, and the core adds the noise in parallel
    from xoshiro256++ streams of that seed (ziggurat normals, `_core.standardize`), the same
    at any thread count. Without either step the arrays are passed through in
    their own dtype (float32 stays float32); with either, the result is a float64 copy, since a
    1e-10 jitter is below float32 resolution. Standard deviations are safe at any magnitude
    (:func:`column_std`).
    """
    rng = make_rng(random_state)
    if not normalize and jitter == 0:
        if len({a.dtype for a in arrays}) > 1:
            arrays = [a.astype(np.float64) for a in arrays]
        return [np.ascontiguousarray(a) for a in arrays]
    return [
        preprocess_one(a, normalize=normalize, jitter=jitter, seed=int(rng.integers(0, 2**63)) if jitter > 0 else None)
        for a in arrays
    ]


def preprocess_one(a: np.ndarray, *, normalize: bool, jitter: float, seed: int | None) -> np.ndarray:
    """One variable of :func:`preprocess`, its jitter seed (None: no jitter) already drawn: a new
    float64 array with each column divided by its standard deviation (`normalize`) and `jitter`
    standard deviations of noise from `seed` added. `mutual_info_matrix` pre-processes each
    variable with the seeds a pairwise call would draw, through this same function."""
    if not normalize and jitter == 0:
        return np.ascontiguousarray(a)
    b = np.ascontiguousarray(a, dtype=np.float64)
    std = column_std(b)
    divisors = np.ones_like(std)
    if normalize:
        nonconstant = std > 0
        divisors = np.where(nonconstant, std, 1.0)
        std = nonconstant.astype(np.float64)
    # One parallel pass into a new array: b / divisors, plus the noise when seeded.
    flat = b.reshape(b.shape[0], -1)
    scales = np.ascontiguousarray(jitter * std, dtype=np.float64).reshape(-1)
    return _core.standardize(flat, np.ascontiguousarray(divisors).reshape(-1), scales, seed).reshape(b.shape)
