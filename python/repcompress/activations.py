"""Activations saved for ``repcompress estimate``: the ``.npz`` archive, read and checked.

The file is a NumPy ``.npz`` archive (``numpy.savez``) with the keys

- ``z``: activations, shape (N, d). A 1-D ``z`` is one unit, read as (N, 1); more dimensions
  (a convolutional layer's (N, C, H, W)) are flattened to (N, C·H·W), and the output says so.
- ``labels``: (N,) integer class ids (any values; integer-valued floats are accepted).
- ``variances`` (optional): the same shape as ``z``, per-sample, per-unit variances of a Gaussian
  channel Z | x_i ~ N(z_i, diag(variances_i)) (docs/spec.md §3.1): ``z`` then holds the channel means
  (a VIB/CEB encoder's μ and σ², or f(x) and α·f(x)² for Gaussian dropout), and the geometric
  metrics are computed on those means.

:func:`load_activations` reads such a file (no pickles), :func:`check_activations` checks arrays
given directly; both raise :class:`InputError` naming the array and the problem.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._validation import as_array, check_labels

__all__ = ["Activations", "InputError", "check_activations", "load_activations"]


class InputError(ValueError):
    """A file, array or option that cannot be used; raised before any metric is computed."""


@dataclass(frozen=True)
class Activations:
    """Validated input: ``z`` (N, d), ``labels`` (N,), ``variances`` (N, d) or None; ``shape`` is
    z's shape as given; ``notes`` say how it was read (reshaped, flattened)."""

    z: np.ndarray
    labels: np.ndarray
    variances: np.ndarray | None
    shape: tuple[int, ...]
    notes: tuple[str, ...] = ()

    @property
    def n_classes(self) -> int:
        return int(np.unique(self.labels).size)


def _array(a: Any, name: str) -> np.ndarray:
    try:
        return as_array(a, name)
    except TypeError as exc:
        raise InputError(str(exc)) from None


def _numeric(arr: np.ndarray, name: str) -> None:
    if arr.dtype.kind not in "fiub":
        raise InputError(f"{name}: expected a numeric array, got dtype {arr.dtype}")


def _first_nonfinite(arr: np.ndarray) -> int | None:
    if arr.dtype.kind != "f":
        return None
    bad = ~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)
    return int(np.flatnonzero(bad)[0]) if bad.any() else None


def check_activations(z: Any, labels: Any, variances: Any = None) -> Activations:
    """Validates and shapes the arrays as the module docstring describes; raises :class:`InputError`
    naming the array and the problem."""
    notes: list[str] = []
    z = _array(z, "z")
    _numeric(z, "z")
    shape = tuple(int(s) for s in z.shape)
    if z.ndim == 0:
        raise InputError(f"z: expected an array of N samples, got a scalar {z!r}")
    n = shape[0]
    if n == 0 or z.size == 0:
        raise InputError(f"z: empty (shape {shape})")
    if z.ndim == 1:
        z = z.reshape(-1, 1)
        notes.append(f"z is 1-D: read as {n} samples of one unit, shape ({n}, 1)")
    elif z.ndim > 2:
        z = z.reshape(n, -1)
        notes.append(
            f"z has shape {shape}: each sample's {' × '.join(map(str, shape[1:]))} values flattened to "
            f"{z.shape[1]} units, shape {z.shape}"
        )
    row = _first_nonfinite(z)
    if row is not None:
        raise InputError(f"z: contains NaN or inf (first at sample {row})")

    labels = _array(labels, "labels")
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
        notes.append(f"labels have shape ({n}, 1): read as ({n},)")
    try:
        labels = check_labels(labels, n, of="z")
    except (TypeError, ValueError) as exc:
        raise InputError(str(exc)) from None
    if labels.dtype.kind == "f":
        # Whole-number floats are class ids: hold them as integers, so that every metric takes them
        # as categories (a float array given to binned_mutual_info would be binned, merging classes).
        # Any whole float below 2^63 in magnitude converts exactly; larger ids become their rank.
        if np.abs(labels).max() < 2.0**63:
            labels = labels.astype(np.int64)
        else:
            labels = np.unique(labels, return_inverse=True)[1].reshape(-1).astype(np.int64)
        notes.append("labels are whole-number floats: read as integer class ids")

    if variances is not None:
        variances = _array(variances, "variances")
        _numeric(variances, "variances")
        if variances.shape != shape:
            raise InputError(f"variances: has shape {variances.shape} but z has shape {shape}; they must match")
        variances = variances.reshape(z.shape)
        row = _first_nonfinite(variances)
        if row is not None:
            raise InputError(f"variances: contains NaN or inf (first at sample {row})")
        negative = (variances < 0).any(axis=1)
        if negative.any():
            raise InputError(f"variances: must be >= 0 (first negative at sample {int(np.flatnonzero(negative)[0])})")
    return Activations(z=z, labels=labels, variances=variances, shape=shape, notes=tuple(notes))


_NPY_MAGIC = b"\x93NUMPY"
# Deflate cannot expand data more than 1032-fold (its longest match, 258 bytes, costs at least two
# bits); a member that claims more than this of its compressed size is damaged or crafted.
_DEFLATE_MAX_RATIO = 1032


def _check_sizes(path: Path, archive: zipfile.ZipFile | None, keys: Sequence[str]) -> None:
    """Refuses (InputError, docs/spec.md §6.1) an archive whose members claim more data than it
    holds, before numpy allocates what a member's .npy header describes: the header's shape and
    dtype must account for exactly the member's size, the member's compressed size must fit in the
    file, and its size must be reachable from its compressed size."""
    if archive is None:  # pragma: no cover - numpy opens every .npz as a zip archive
        return
    on_disk = path.stat().st_size
    members = set(archive.namelist())
    for key in keys:
        name = key if key in members else f"{key}.npy"
        info = archive.getinfo(name)
        damaged = f"{path}: unusable: the array {key!r}"
        if info.compress_size > on_disk:
            raise InputError(f"{damaged} claims {info.compress_size} bytes but the file has {on_disk}; it is damaged")
        if (info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size) or (
            info.compress_type == zipfile.ZIP_DEFLATED
            and info.file_size > _DEFLATE_MAX_RATIO * info.compress_size + 1024
        ):
            raise InputError(
                f"{damaged} claims {info.file_size} bytes, more than its {info.compress_size} stored bytes can hold; "
                "it is damaged"
            )
        with archive.open(name) as member:
            if member.read(len(_NPY_MAGIC)) != _NPY_MAGIC:
                continue  # not an .npy member: numpy returns its bytes, which are refused as non-numeric
        with archive.open(name) as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(member)
            elif version in ((2, 0), (3, 0)):
                # Version 3 differs from 2 only in the header's text encoding, not in shape or dtype.
                shape, _, dtype = np.lib.format.read_array_header_2_0(member)
            else:
                continue  # numpy refuses the version itself
            header = member.tell()
        if dtype.hasobject:
            continue  # pickled objects: numpy refuses them (allow_pickle=False)
        claimed = math.prod(shape) * dtype.itemsize
        if claimed != info.file_size - header:
            raise InputError(
                f"{damaged} has a header claiming shape {shape} of {dtype} ({claimed} bytes) but the archive holds "
                f"{info.file_size - header} bytes of data for it; the file is damaged or was not written by "
                "numpy.savez"
            )


def load_activations(path: str | Path) -> Activations:
    """Reads ``z``, ``labels`` and optional ``variances`` from an ``.npz`` archive (no pickles) and
    checks them with :func:`check_activations`; other keys are ignored (a note lists them)."""
    try:
        path = Path(path)
    except TypeError:
        raise InputError(f"path: expected a file name, got {type(path).__name__}") from None
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    try:
        with path.open("rb") as f:
            single = f.read(len(_NPY_MAGIC)) == _NPY_MAGIC
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc})") from None
    if single:  # refused before numpy reads (and allocates) the array its header describes
        raise InputError(
            f"{path}: is a single .npy array, not an .npz archive with keys 'z' and 'labels' "
            "(save with numpy.savez(path, z=..., labels=...))"
        )
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: cannot be read as an .npz archive ({exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise InputError(f"{path}: cannot be read as an .npz archive (numpy read it as {type(archive).__name__})")
    with archive:
        keys = list(archive.files)
        missing = [key for key in ("z", "labels") if key not in keys]
        if missing:
            raise InputError(
                f"{path}: missing key {' and '.join(map(repr, missing))}; the archive has "
                f"{', '.join(map(repr, keys)) or 'no arrays'} (expected 'z', 'labels' and optional 'variances')"
            )
        wanted = [key for key in ("z", "labels", "variances") if key in keys]
        try:
            _check_sizes(path, archive.zip, wanted)
            arrays = {key: archive[key] for key in wanted}
        except InputError:
            raise
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise InputError(f"{path}: cannot read its arrays ({exc})") from None
    data = check_activations(arrays["z"], arrays["labels"], arrays.get("variances"))
    ignored = [key for key in keys if key not in ("z", "labels", "variances")]
    if ignored:
        data = Activations(
            data.z, data.labels, data.variances, data.shape, (*data.notes, f"keys ignored: {', '.join(ignored)}")
        )
    return data
