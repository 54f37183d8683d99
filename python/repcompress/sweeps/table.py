"""The table of a sweep on disk: Parquet parts written atomically, merged on reading.

A sweep's output directory holds ``parts/part-*.parquet``: every flush of finished tasks is one
part, written under a hidden temporary name and renamed into place (``os.replace`` is atomic on
POSIX and Windows), so a crash at any moment leaves only whole parts. The reader concatenates the
parts and keeps, per task key ``(file, file_hash, task_metric, settings_hash)``, the rows of the
last part that has it (a task written twice, by a compaction cut short, is counted once).
``table.parquet`` (and ``table.csv`` on request) is the merged table of the last sweep, replaced
atomically too.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..tidy import COLUMNS

__all__ = ["KEY", "SWEEP_COLUMNS", "SweepTable", "read_table"]

# The columns a sweep adds to the tidy table of repcompress.tidy.COLUMNS (tags come after them).
SWEEP_COLUMNS = (
    *COLUMNS,
    "file",
    "file_hash",
    "task_metric",
    "settings_hash",
    "seconds",
    "peak_rss_bytes",
    "attempts",
    "worker",
)
# A task: one metric of one file's content under one set of settings.
KEY = ("file", "file_hash", "task_metric", "settings_hash")


def _pandas() -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("repcompress sweeps keep a pandas table: pip install 'repcompress[sweep]'") from None
    return pd


def _parquet_ready(frame: Any) -> Any:
    """Object columns (tags) that mix types become strings, which Parquet can store."""
    pd = _pandas()
    frame = frame.copy()
    for name in frame.columns:
        column = frame[name]
        if column.dtype == object:
            kinds = {type(v) for v in column if v is not None and not (isinstance(v, float) and v != v)}
            if len(kinds) > 1 or (kinds and not kinds <= {str, bool}):
                numeric = pd.to_numeric(column, errors="coerce")
                if kinds <= {int, float} and numeric.notna().sum() == column.notna().sum():
                    frame[name] = numeric
                else:
                    frame[name] = column.map(lambda v: None if v is None else str(v))
    return frame


def _atomic_write(frame: Any, target: Path, kind: str = "parquet") -> None:
    """Writes ``frame`` to a hidden temporary file next to ``target`` and renames it into place."""
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        if kind == "parquet":
            _parquet_ready(frame).to_parquet(temporary, index=False)
        else:
            frame.to_csv(temporary, index=False)
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


class SweepTable:
    """The parts of the table in ``directory`` (made if missing); see the module docstring."""

    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory)
        self.parts = self.directory / "parts"
        self.parts.mkdir(parents=True, exist_ok=True)

    def append(self, records: Sequence[dict[str, Any]], columns: Sequence[str]) -> Path | None:
        """Writes ``records`` as one new part (atomically); None when there are none."""
        if not records:
            return None
        frame = _pandas().DataFrame(list(records), columns=list(columns))
        target = self.parts / f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
        _atomic_write(frame, target)
        return target

    def part_files(self) -> list[Path]:
        """The finished parts, oldest first (names start with their creation time)."""
        return sorted(p for p in self.parts.glob("part-*.parquet") if p.is_file())

    def read(self) -> Any:
        """Every task's rows, from the last part that holds the task (an empty table if none)."""
        pd = _pandas()
        frames = []
        for order, part in enumerate(self.part_files()):
            frame = pd.read_parquet(part)
            frame["_part"] = order
            frames.append(frame)
        if not frames:
            return pd.DataFrame(columns=list(SWEEP_COLUMNS))
        table = pd.concat(frames, ignore_index=True, sort=False)
        last = table.groupby(list(KEY), sort=False, dropna=False)["_part"].transform("max")
        return table[table["_part"] == last].drop(columns="_part").reset_index(drop=True)

    def done_keys(self, *, include_errors: bool = True) -> set[tuple[str, ...]]:
        """The keys of the tasks in the table; without ``include_errors`` only those whose rows all
        succeeded."""
        table = self.read()
        if table.empty:
            return set()
        if not include_errors:
            failed = table["error"].fillna("").astype(str) != ""
            bad = set(map(tuple, table.loc[failed, list(KEY)].astype(str).itertuples(index=False)))
        else:
            bad = set()
        keys = set(map(tuple, table[list(KEY)].astype(str).itertuples(index=False)))
        return {k for k in keys if k not in bad}

    def compact(self) -> None:
        """Replaces the parts by one (the merged rows): written first, the old parts removed after,
        so a crash in between leaves duplicates that :meth:`read` counts once."""
        old = self.part_files()
        if len(old) < 2:
            return
        merged = self.read()
        self.append(merged.to_dict("records"), list(merged.columns))
        for part in old:
            part.unlink(missing_ok=True)

    def write_merged(self, frame: Any, *, csv: bool = False) -> list[Path]:
        """``frame`` as ``table.parquet`` (and ``table.csv``) in the directory, each replaced atomically."""
        written = [self.directory / "table.parquet"]
        _atomic_write(frame, written[0])
        if csv:
            written.append(self.directory / "table.csv")
            _atomic_write(frame, written[1], kind="csv")
        return written


def read_table(directory: str | os.PathLike[str], keys: Iterable[tuple[str, ...]] | None = None) -> Any:
    """The table of the sweep in ``directory`` from its parts (what survived a crash included): one
    set of rows per task; with ``keys``, only those tasks."""
    path = Path(directory)
    if not (path / "parts").is_dir():
        raise ValueError(f"directory: {path} holds no sweep table (no parts/ folder)")
    table = SweepTable(path).read()
    if keys is not None and not table.empty:
        wanted = set(keys)
        mask = [tuple(map(str, k)) in wanted for k in table[list(KEY)].itertuples(index=False)]
        table = table[mask].reset_index(drop=True)
    return table
