"""The tidy table of metric rows shared by the training-time tracker and sweeps: one row per
(epoch, layer, split, quantity), the columns :data:`COLUMNS` (docs/spec.md §6.4, §9)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

from .report import MetricRow, json_ready

__all__ = ["COLUMNS", "metric_records"]

COLUMNS = (
    "epoch",
    "layer",
    "split",
    "metric",
    "value",
    "low",
    "high",
    "stderr",
    "lower_bound",
    "upper_bound",
    "unit",
    "source",
    "settings",
    "error",
)


def metric_records(
    rows: Sequence[MetricRow], *, epoch: Any, layer: Any, split: Any, quantities: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """``rows`` as records of :data:`COLUMNS`. ``metric`` is the row's quantity; when two metrics of
    one measurement give the same quantity (``quantities``: all of them, default those of ``rows``;
    ``mi-labels`` and ``gaussian-mi`` both give I(Z;Y)) the one that is not ``gaussian-mi`` is
    prefixed with its metric name."""
    names = [row.quantity for row in rows] if quantities is None else list(quantities)
    out = []
    for row in rows:
        clash = names.count(row.quantity) > 1 and row.metric != "gaussian-mi"
        out.append(
            {
                "epoch": epoch,
                "layer": layer,
                "split": split,
                "metric": row.label if clash else row.quantity,
                "value": row.value,
                "low": _nan(row.low),
                "high": _nan(row.high),
                "stderr": _nan(row.stderr),
                "lower_bound": _nan(row.lower_bound),
                "upper_bound": _nan(row.upper_bound),
                "unit": row.unit,
                "source": row.metric,
                "settings": json.dumps(json_ready(row.settings), sort_keys=True),
                "error": row.error or "",
            }
        )
    return out


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)
