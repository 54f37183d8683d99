"""The torch backend of the quadratic kernels (issue 16): where the data already are on a GPU, the
estimators run there, in plain torch, with the same results as the Rust core.

The rule that chooses the backend (docs/spec.md §8.1) is :func:`resolve_device`: a CUDA (or any
non-CPU) tensor runs on its own device; numpy arrays, lists and CPU tensors run on the Rust core,
unless the call passes ``device=`` ("cpu", "cuda", "cuda:1" or a ``torch.device``), which sends
the data to that device and runs the torch kernels there — ``device="cpu"`` runs the torch kernels
on the CPU, which is how the test suite checks them everywhere.

Importing this package does not import torch; only a call that resolves to a device does.
"""

from __future__ import annotations

from typing import Any

__all__ = ["is_tensor", "require_torch", "resolve_device"]


def require_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ImportError("device=: the torch backend needs PyTorch: pip install 'repcompress[torch]'") from None
    return torch


def is_tensor(a: Any) -> bool:
    """Whether ``a`` is a torch tensor, without importing torch when it is not loaded."""
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(a, torch.Tensor)


def resolve_device(arrays: dict[str, Any], device: Any = None) -> Any:
    """The ``torch.device`` a call runs on, or None for the Rust core.

    ``arrays`` maps argument names to the call's array arguments (None entries are ignored).
    ``device=None``: the device of the tensors among them when it is not the CPU (all such tensors
    must share it); otherwise None. ``device`` given: that device (checked to exist).
    """
    tensors = {name: a for name, a in arrays.items() if a is not None and is_tensor(a)}
    if device is None:
        places = {name: t.device for name, t in tensors.items() if t.device.type != "cpu"}
        if not places:
            return None
        distinct = set(places.values())
        if len(distinct) > 1 or len(places) < len(tensors):
            where = ", ".join(f"{name} on {t.device}" for name, t in tensors.items())
            raise ValueError(f"device: the arguments lie on different devices ({where}); move them to one device")
        return next(iter(distinct))
    torch = require_torch()
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device: {device!r} is not a torch device ({exc})") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {device!r} was asked for but CUDA is not available in this torch build or machine")
    return resolved
