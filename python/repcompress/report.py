"""The report of ``repcompress estimate``: one row per estimated quantity, as JSON or a table."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["EstimateReport", "MetricRow", "json_ready", "unit_name"]


def unit_name(base: float) -> str:
    """ "nats" for base e, "bits" for 2, "hartleys" for 10, else "log-base-<b> units"."""
    names = {math.e: "nats", 2.0: "bits", 10.0: "hartleys"}
    return names.get(float(base), f"log-base-{base:g} units")


@dataclass(frozen=True)
class MetricRow:
    """One estimated quantity.

    ``metric`` is the short name asked for; ``quantity`` what this row holds (the metric name
    itself, or e.g. ``"I(X;Z|Y)"`` for ``gaussian-mi``). ``value`` is NaN when the metric failed
    (``error`` says why). ``stderr``: Monte Carlo standard error (``gaussian-mi``) or the
    resampling standard error (with ``ci``). ``low``, ``high``: the confidence interval, made as
    ``interval`` says. ``lower_bound``, ``upper_bound``: bounds that bracket the exact value
    (``gaussian-mi``'s Bhattacharyya and KL pairwise bounds). ``unit``: ``"nats"``, ``"bits"``, …,
    or ``""`` for a dimensionless metric. ``function`` and ``settings``: the package function and
    every option it was called with. ``extra``: further numbers the function returned.
    """

    metric: str
    quantity: str
    value: float
    unit: str
    note: str = ""
    stderr: float | None = None
    low: float | None = None
    high: float | None = None
    interval: str | None = None
    lower_bound: float | None = None
    upper_bound: float | None = None
    function: str = ""
    settings: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    error: str | None = None

    @property
    def label(self) -> str:
        """The row's name in the table: ``cdnv``, ``nc2 equinorm``, ``gaussian-mi I(X;Z)``."""
        return self.metric if self.quantity == self.metric else f"{self.metric} {self.quantity}"


def json_ready(value: Any) -> Any:
    """JSON-ready: numpy scalars and arrays to Python, NaN and ±inf to None."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.6g}"


@dataclass(frozen=True)
class EstimateReport:
    """Rows of :class:`MetricRow`, what the data were (``data``) and the run's ``settings``."""

    rows: list[MetricRow]
    data: dict
    settings: dict

    @property
    def failed(self) -> list[MetricRow]:
        return [row for row in self.rows if row.error is not None]

    def row(self, metric: str, quantity: str | None = None) -> MetricRow:
        """The row of ``metric`` (and ``quantity``, for metrics with several rows)."""
        for row in self.rows:
            if row.metric == metric and (quantity is None or row.quantity == quantity):
                return row
        raise KeyError(f"no row for metric {metric!r}" + (f", quantity {quantity!r}" if quantity else ""))

    def value(self, metric: str, quantity: str | None = None) -> float:
        return self.row(metric, quantity).value

    def to_dict(self) -> dict:
        """Plain Python (JSON-ready): NaN and ±inf become None."""
        rows = []
        for row in self.rows:
            entry = asdict(row)
            if isinstance(row.value, float) and math.isinf(row.value):
                entry["note"] = f"{row.note}; value is {row.value}".lstrip("; ")
            rows.append(entry)
        return json_ready({"data": self.data, "settings": self.settings, "results": rows})

    def to_json(self, indent: int | None = 2) -> str:
        """Strict JSON (no NaN or Infinity literals: non-finite numbers are null)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False, ensure_ascii=False)

    def format_table(self) -> str:
        """An aligned table (metric, value, stderr, low, high, unit, note) under a header saying what
        the data and settings were; warnings, errors and notes on the data follow it."""
        d, s = self.data, self.settings
        source = d.get("path") or "arrays"
        shape = tuple(d["z_shape"])
        read_as = f" (z of shape {shape}, reshaped)" if shape != (d["n_samples"], d["n_units"]) else ""
        base = "e" if s["base"] == math.e else f"{s['base']:g}"
        lines = [
            f"# repcompress {s['repcompress']} estimate {source}",
            f"# N = {d['n_samples']} samples, d = {d['n_units']} units{read_as}, C = {d['n_classes']} classes "
            f"(smallest {d['smallest_class']}), variances: {'yes' if d['variances'] else 'no'}",
            f"# information in {s['unit']} (base {base}); seed {s['seed']}; {s['threads']} thread(s)",
        ]
        if s["ci"] is not None:
            lines.append(
                f"# low, high: {100 * s['ci']['confidence']:g} % confidence intervals from "
                f"{s['ci']['n_resamples']} resamples (method in each note)"
            )
        header = ("metric", "value", "stderr", "low", "high", "unit", "note")
        body = []
        for row in self.rows:
            note = row.note
            if row.interval:
                method = row.interval.split(" (")[0]  # "bootstrap", "half-sampling", "Monte Carlo standard error"
                note = f"{note}; CI: {method}" if note else f"CI: {method}"
            if row.error is not None:
                note = "error (below)"
            elif row.warnings:
                note = f"{note}; warning (below)"
            body.append(
                (
                    row.label,
                    _number(row.value),
                    _number(row.stderr),
                    _number(row.low),
                    _number(row.high),
                    row.unit or "-",
                    note,
                )
            )
        widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header) - 1)]
        right = (False, True, True, True, True, False)
        for r in [header, *body]:
            cells = [cell.rjust(w) if ra else cell.ljust(w) for cell, w, ra in zip(r[:-1], widths, right, strict=True)]
            lines.append("  ".join([*cells, r[-1]]).rstrip())
        for row in self.rows:
            if row.error is not None:
                lines.append(f"# error ({row.label}): {row.error}")
            for message in row.warnings:
                lines.append(f"# warning ({row.label}): {message}")
        for note in d["notes"]:
            lines.append(f"# note: {note}")
        return "\n".join(lines)
