"""Arguments of the torch kernels, checked where they lie (docs/spec.md §8.3–§8.4).

Sample arrays are checked on the device, as §0.2 and §0.4 check them on the host: numeric dtype,
1-D read as (N, 1), not empty, finite (the first bad row is found on the device; only that index
comes back). Class labels are moved to the host: they are N small integers, and their re-coding to
0 … C − 1 (numpy's ``unique``) is the host's, so that the codes are those of the Rust path.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import is_tensor, require_torch

__all__ = ["device_samples", "largest_magnitude_t", "to_device"]


def to_device(a: Any, name: str, device: Any) -> Any:
    """``a`` as a tensor on ``device``: a tensor is detached (no autograd graph is kept) and moved
    only if it lies elsewhere; anything else goes through numpy first (its checks of dtypes)."""
    torch = require_torch()
    if is_tensor(a):
        t = a.detach()
        return t if t.device == device else t.to(device)
    try:
        arr = np.asarray(a)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: cannot be read as a numeric array ({exc})") from None
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if arr.dtype.kind != "f" or arr.dtype.itemsize < 4:
        arr = arr.astype(np.float64)
    return torch.as_tensor(np.ascontiguousarray(arr), device=device)


def device_samples(a: Any, name: str, device: Any, *, dtype: Any = None) -> Any:
    """An (N, d) float64 tensor on ``device`` from ``a`` (§0.2: 1-D read as (N, 1); 0-D and ≥ 3-D
    refused; empty refused; NaN or inf refused with the first bad row). float32 is widened on the
    device: every torch kernel computes in float64, as the Rust core does (§0.2)."""
    torch = require_torch()
    t = to_device(a, name, device)
    if t.dtype.is_complex or not (t.dtype.is_floating_point or t.dtype in _INTEGER_TYPES(torch)):
        raise TypeError(f"{name}: expected a numeric array, got dtype {t.dtype}")
    if t.ndim == 1:
        t = t[:, None]
    elif t.ndim != 2:
        raise ValueError(f"{name}: expected a 1-D (N,) or 2-D (N, d) array, got {t.ndim}-D with shape {tuple(t.shape)}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{name}: empty input (shape {tuple(t.shape)})")
    t = t.to(torch.float64 if dtype is None else dtype)
    bad = ~torch.isfinite(t).all(dim=1)
    if bool(bad.any()):
        row = int(torch.nonzero(bad)[0, 0])
        raise ValueError(f"{name}: contains NaN or inf (first at row {row})")
    return t.contiguous()


def _INTEGER_TYPES(torch: Any) -> tuple[Any, ...]:
    return (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def largest_magnitude_t(t: Any) -> float:
    """max |t| of a tensor, as a Python float (one scalar comes back from the device)."""
    return float(t.abs().max()) if t.numel() else 0.0
