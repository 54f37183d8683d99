"""The tidy table of metric rows shared by the training-time tracker and sweeps: one row per
(epoch, layer, split, quantity), the columns :data:`COLUMNS` (docs/spec.md §6.4, §9)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .activations import Activations, InputError, check_activations
from .estimate import evaluate_metrics
from .estimate_options import EstimateOptions
from .metrics import METRICS
from .report import MetricRow, json_ready

__all__ = ["COLUMNS", "measure_arrays", "metric_records"]

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


def measure_arrays(
    z: Any, labels: Any, variances: Any, names: Sequence[str], options: EstimateOptions, *, device: Any = None
) -> list[MetricRow]:
    """The rows of the metrics ``names`` on these arrays, as the training-time tracker records them:
    data a metric cannot measure (a split with one class, activations that overflowed to NaN) fail
    that metric's rows (``value`` NaN, ``error`` set), never the call (docs/spec.md §6.4). A
    module-level function, so that it can run in another process or on a Dask worker. ``device``:
    ``z`` and ``variances`` are tensors kept there and the metrics that can compute there do
    (docs/spec.md §8.5)."""
    try:
        data = check_activations(z, labels, variances) if device is None else _device_activations(z, labels, variances)
    except InputError as exc:
        return [row for name in names for row in METRICS[name].failed(options, str(exc))]
    return evaluate_metrics(data, names, options, device=device)


def _device_activations(z: Any, labels: Any, variances: Any) -> Any:
    """:func:`check_activations` for tensors that stay on their device (docs/spec.md §8.5): z and
    the variances are checked there (finite; variances ≥ 0, the first bad sample named), the
    labels on the host (N integers) by the host checks themselves."""
    import torch

    n = z.shape[0]
    checked = check_activations(np.zeros((n, 1)), labels)
    for name, t in (("z", z), ("variances", variances)):
        if t is None:
            continue
        bad = ~torch.isfinite(t).all(dim=1)
        if bool(bad.any()):
            raise InputError(f"{name}: contains NaN or inf (first at sample {int(torch.nonzero(bad)[0, 0])})")
    if variances is not None:
        negative = (variances < 0).any(dim=1)
        if bool(negative.any()):
            raise InputError(f"variances: must be >= 0 (first negative at sample {int(torch.nonzero(negative)[0, 0])})")
    return Activations(z=z, labels=checked.labels, variances=variances, shape=tuple(z.shape), notes=checked.notes)
