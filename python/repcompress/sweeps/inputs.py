"""What a sweep measures: activation archives found from globs, directories or a manifest, each
with its tags, and the content hash that tells a changed file from one already measured."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..activations import InputError

__all__ = ["SweepInput", "content_hash", "find_inputs", "has_variances"]

MANIFEST_SUFFIXES = (".csv", ".json")


@dataclass(frozen=True)
class SweepInput:
    """One activation archive of a sweep: its ``path`` (absolute) and ``tags`` (setup, λ, seed,
    epoch, layer, split, ... from a manifest; empty otherwise)."""

    path: str
    tags: Mapping[str, Any] = field(default_factory=dict, hash=False)


def _manifest_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a CSV (a ``path`` column and tag columns) or JSON (a list of objects with
    ``path``) manifest; relative paths are read from the manifest's directory."""
    try:
        if path.suffix.lower() == ".csv":
            import pandas as pd

            table = pd.read_csv(path)
            rows = [{str(k): _plain(v) for k, v in record.items()} for record in table.to_dict("records")]
        else:
            rows = json.loads(path.read_text())
    except (OSError, ValueError, ImportError) as exc:
        raise InputError(f"inputs: cannot read the manifest {path} ({exc})") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise InputError(f"inputs: the manifest {path} must be a list of objects, each with a 'path'")
    for number, row in enumerate(rows, 1):
        if not isinstance(row.get("path"), str) or not row["path"]:
            raise InputError(f"inputs: entry {number} of the manifest {path} has no 'path'")
    return rows


def _plain(value: Any) -> Any:
    """numpy scalars of a CSV row as Python numbers (JSON- and parquet-friendly)."""
    return value.item() if hasattr(value, "item") else value


def find_inputs(inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[SweepInput]:
    """The archives named by ``inputs``: each item a glob (``runs/*/epoch*.npz``; ``**`` recurses),
    a directory (every ``*.npz`` under it, recursively) or a manifest (``.csv``/``.json``: a
    ``path`` and tags per row). Files are sorted within each item, duplicates dropped (first wins).

    Raises :class:`~repcompress.activations.InputError` naming ``inputs`` when an item matches
    nothing (a manifest's missing files are kept: they become error rows of the sweep) or a
    manifest cannot be read."""
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    if not items:
        raise InputError("inputs: no file, directory, glob or manifest given")
    found: dict[str, SweepInput] = {}
    for item in items:
        if not isinstance(item, (str, os.PathLike)):
            raise InputError(f"inputs: expected paths, globs or manifests, got {type(item).__name__}")
        text = os.fspath(item)
        path = Path(text)
        if path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
            for row in _manifest_rows(path):
                target = Path(row["path"])
                target = target if target.is_absolute() else path.parent / target
                tags = {k: v for k, v in row.items() if k != "path"}
                found.setdefault(str(target.resolve()), SweepInput(str(target.resolve()), tags))
            continue
        if path.is_dir():
            matches = sorted(str(p) for p in path.rglob("*.npz") if p.is_file())
        elif path.is_file():
            matches = [text]
        else:
            matches = sorted(p for p in glob.glob(text, recursive=True) if Path(p).is_file())
        if not matches:
            raise InputError(f"inputs: {text!r} matches no file")
        for match in matches:
            resolved = str(Path(match).resolve())
            found.setdefault(resolved, SweepInput(resolved, {}))
    return list(found.values())


def content_hash(path: str | os.PathLike[str], cache: dict[str, Any] | None = None) -> str:
    """The BLAKE2b (128-bit) hash of the file's bytes, in hex; ``"missing"`` for a file that cannot
    be read. ``cache`` (path → [size, mtime_ns, hash]) skips hashing a file whose size and
    modification time are unchanged, and is updated."""
    try:
        stat = os.stat(path)
    except OSError:
        return "missing"
    key = os.fspath(path)
    if cache is not None:
        known = cache.get(key)
        if known is not None and known[0] == stat.st_size and known[1] == stat.st_mtime_ns:
            return str(known[2])
    digest = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return "missing"
    value = digest.hexdigest()
    if cache is not None:
        cache[key] = [stat.st_size, stat.st_mtime_ns, value]
    return value


def has_variances(path: str | os.PathLike[str]) -> bool:
    """Whether the archive lists a ``variances`` member (its zip directory only; False for a file
    that is no readable zip: its tasks then fail with the reader's message)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return "variances.npy" in archive.namelist()
    except (OSError, zipfile.BadZipFile, ValueError):
        return False
