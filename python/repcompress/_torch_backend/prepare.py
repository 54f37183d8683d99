"""Validation and k-NN pre-processing on the device (docs/spec.md §0.2–§0.4, §0.8, §1.4, §8.1).

The same checks, messages and steps as ``_validation`` for numpy arrays, on tensors where they
lie: no host copy of the data. What comes to the host is O(1) or O(d) per array (a largest
magnitude, a first bad row, the column scales), the class labels (O(N) integers) and, for the
jitter, the unit normals that the core draws for the CPU path, so that both paths add the same
noise bit for bit.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _core
from .._validation import _WINDOW, _caller_stacklevel, as_samples, magnitude_exponent, make_rng
from . import is_tensor, require_torch

_EXACT_INTEGERS = 2**53


def scaled_by_power_of_two(t: Any, e: Any) -> Any:
    """t·2^(−e) (e an int, or a tensor of per-column ints), exact for normal results: two
    multiplications by powers of two that are each representable in t's dtype."""
    torch = require_torch()
    e = torch.as_tensor(e, device=t.device, dtype=torch.float64)
    half = torch.trunc(-e / 2)
    one = torch.pow(torch.tensor(2.0, dtype=torch.float64, device=t.device), half).to(t.dtype)
    two = torch.pow(torch.tensor(2.0, dtype=torch.float64, device=t.device), -e - half).to(t.dtype)
    return (t * one) * two


def samples(a: Any, name: str, device: Any) -> Any:
    """`a` as a 2-D float32/float64 tensor (N, d) on `device`, checked as ``as_samples`` checks a
    numpy array: a tensor is detached and checked where it lies (integer and boolean tensors become
    float64, with the warning beyond ±2^53; float16/bfloat16 become float64); anything else is
    checked on the host, where it already is, then sent."""
    torch = require_torch()
    if not is_tensor(a):
        return torch.from_numpy(np.ascontiguousarray(as_samples(a, name))).to(device)
    t = a.detach()
    if t.is_complex():
        raise TypeError(f"{name}: expected a numeric array, got dtype {t.dtype}")
    t = t.to(device)
    if t.dtype not in (torch.float32, torch.float64):
        if not t.is_floating_point() and t.dtype != torch.bool and t.numel():
            largest = max(abs(int(t.max())), abs(int(t.min())))
            if largest > _EXACT_INTEGERS:
                warnings.warn(
                    f"{name}: integer values beyond ±2^53 are rounded to float64 (exact for integers up to 2^53 "
                    "only), so distinct values may become equal",
                    UserWarning,
                    stacklevel=_caller_stacklevel(),
                )
        t = t.to(torch.float64)
    if t.dim() == 1:
        t = t[:, None]
    elif t.dim() != 2:
        raise ValueError(
            f"{name}: expected a 1-D (N,) or 2-D (N, d) array, got {t.dim()}-D with shape {tuple(t.shape)}"
        )
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{name}: empty input (shape {tuple(t.shape)})")
    bad = ~torch.isfinite(t).all(dim=1)
    if bool(bad.any()):
        row = int(bad.nonzero()[0, 0])
        raise ValueError(f"{name}: contains NaN or inf (first at row {row})")
    return t.contiguous()


def largest_magnitude(t: Any) -> float:
    return float(max(float(t.max()), -float(t.min())))


def scale_to_window(arrays: Sequence[Any], *, jitter: float) -> tuple[list[Any], int]:
    """``_validation.scale_to_window`` for tensors: all arrays divided by one 2^e when their largest
    magnitude lies outside the window of the dtype the estimate computes in."""
    torch = require_torch()
    float32 = jitter == 0 and all(a.dtype == torch.float32 for a in arrays)
    e = magnitude_exponent(max(largest_magnitude(a) for a in arrays), np.float32 if float32 else np.float64)
    if e == 0:
        return list(arrays), 0
    return [scaled_by_power_of_two(a, e) for a in arrays], e


def column_sums(b: Any) -> Any:
    """The pairwise tree of docs/spec.md §1.4 (``_core.population_std``'s sums) on the device: the same pairs, hence the
    same bits."""
    torch = require_torch()
    acc = b
    while acc.shape[0] > 1:
        half = acc.shape[0] // 2
        pairs = acc[:half] + acc[half : 2 * half]
        acc = pairs if acc.shape[0] % 2 == 0 else torch.cat([pairs, acc[2 * half :]])
    return acc[0]


def _population_std(b: Any) -> Any:
    """√(Σ (b − mean)² / N) per column as ``_validation._population_std`` computes it; the square
    root of the d variances is taken on the host, where it is correctly rounded (torch's
    vectorised one on the CPU is not always)."""
    torch = require_torch()
    n = b.shape[0]
    dev = b - column_sums(b) / n
    dev = dev * dev
    variance = (column_sums(dev) / n).to("cpu").numpy()
    with np.errstate(over="ignore", invalid="ignore"):
        return torch.from_numpy(np.sqrt(variance)).to(b.device)


def column_std(b: Any) -> Any:
    """``_validation.column_std`` on the device, bit for bit: the population standard deviation of
    each column of a float64 tensor, with the rescue of columns whose result is 0, non-finite or
    outside [2^-400, 2^400] (divided by a power of two, recomputed, scaled back)."""
    torch = require_torch()
    out = _population_std(b)
    lo, hi = _WINDOW[np.dtype(np.float64)]
    redo = torch.nonzero(~((out >= lo) & (out <= hi))).flatten()
    if redo.numel():
        columns = b[:, redo]
        largest = torch.maximum(columns.amax(dim=0), -columns.amin(dim=0))
        e = torch.where(largest > 0, torch.frexp(largest).exponent - 1, torch.zeros_like(largest, dtype=torch.int32))
        out[redo] = scaled_by_power_of_two(_population_std(scaled_by_power_of_two(columns, e)), -e)
    return out


def preprocess(arrays: Sequence[Any], *, normalize: bool, jitter: float, random_state: Any) -> list[Any]:
    """``_validation.preprocess`` on the device: each column divided by its standard deviation
    (`normalize`), plus `jitter` standard deviations of Gaussian noise. The noise is the core's: the
    same seeds from `random_state`, the same unit normals (``_core.standardize`` of zeros gives
    exactly 0/1 + 1·ε = ε), uploaded and added as v/divisor + scale·ε, the core's two roundings."""
    torch = require_torch()
    rng = make_rng(random_state)
    if not normalize and jitter == 0:
        if len({a.dtype for a in arrays}) > 1:
            arrays = [a.to(torch.float64) for a in arrays]
        return [a.contiguous() for a in arrays]
    out = []
    for a in arrays:
        b = a.to(torch.float64)
        std = column_std(b)
        divisors = torch.ones_like(std)
        if normalize:
            nonconstant = std > 0
            divisors = torch.where(nonconstant, std, divisors)
            std = nonconstant.to(torch.float64)
        seed = int(rng.integers(0, 2**63)) if jitter > 0 else None
        value = b / divisors
        if seed is not None:
            n, d = b.shape
            normals = _core.standardize(np.zeros((n, d)), np.ones(d), np.ones(d), seed)
            value = value + (jitter * std) * torch.from_numpy(normals).to(b.device)
        out.append(value.contiguous())
    return out


def in_range(h: Any) -> tuple[Any, int]:
    """Geometry's magnitude rule (``geometry._in_range``) for a tensor: float64 data outside
    [2^-400, 2^400] divided by 2^e; float32 data as given."""
    torch = require_torch()
    if h.dtype != torch.float64:
        return h, 0
    e = magnitude_exponent(largest_magnitude(h))
    return (h, 0) if e == 0 else (scaled_by_power_of_two(h, e), e)


__all__ = ["in_range", "preprocess", "samples", "scale_to_window"]
