"""Arguments of the torch kernels, checked where they lie (docs/spec.md §8.3–§8.4).

Sample arrays are checked on the device, as §0.2 and §0.4 check them on the host: numeric dtype,
1-D read as (N, 1), not empty, finite (the first bad row is found on the device; only that index
comes back). Class labels are moved to the host: they are N small integers, and their re-coding to
0 … C − 1 (numpy's ``unique``) is the host's, so that the codes are those of the Rust path.
"""

from __future__ import annotations

from typing import Any

from . import require_torch

__all__ = ["device_samples", "largest_magnitude_t"]


def device_samples(a: Any, name: str, device: Any) -> Any:
    """An (N, d) float64 tensor on ``device`` from ``a``: checked by the k-NN backend's
    :func:`~repcompress._torch_backend.prepare.samples` (the same checks as ``as_samples`` on the
    host, on the device for tensors), then widened: every kernel of the Gaussian channel and the
    geometry computes in float64, as the Rust core does (§0.2)."""
    from . import prepare

    return prepare.samples(a, name, device).to(require_torch().float64).contiguous()


def largest_magnitude_t(t: Any) -> float:
    """max |t| of a tensor, as a Python float (one scalar comes back from the device)."""
    return float(t.abs().max()) if t.numel() else 0.0
