"""Compression metrics of saved activations: ``repcompress estimate FILE.npz`` and its Python API.

The file is a NumPy ``.npz`` archive (``numpy.savez``) with the keys

- ``z``: activations, shape (N, d). A 1-D ``z`` is one unit, read as (N, 1); more dimensions
  (a convolutional layer's (N, C, H, W)) are flattened to (N, C·H·W), and the output says so.
- ``labels``: (N,) integer class ids (any values; integer-valued floats are accepted).
- ``variances`` (optional): the same shape as ``z``, per-sample, per-unit variances of a Gaussian
  channel Z | x_i ~ N(z_i, diag(variances_i)) (SPEC §3): ``z`` then holds the channel means
  (a VIB/CEB encoder's μ and σ², or f(x) and α·f(x)² for Gaussian dropout), and the geometric
  metrics are computed on those means.

Every metric has a short name and is one function of the package, called with its own defaults
unless an option says otherwise; the settings each call used are reported with its value.
Dimensionless unless marked (information: nats, or bits with ``--base 2``):

- ``cdnv``: :func:`~repcompress.class_distance_normalized_variance`
- ``nc1``, ``nc2`` (equinorm, equiangular, max-angle): :func:`~repcompress.neural_collapse`
- ``trace-ratio``: :func:`~repcompress.trace_ratio`; ``fisher-ratio``: :func:`~repcompress.fisher_ratio`
  (``--ridge``)
- ``calinski-harabasz``, ``davies-bouldin``, ``silhouette`` (``--silhouette-sample-size``): the
  clustering indices of :mod:`repcompress.geometry`
- ``twonn``: :func:`~repcompress.twonn_dimension`; ``effective-rank``: :func:`~repcompress.effective_rank`
- ``binned-entropy``: H_bin(Z) by :func:`~repcompress.binned_entropy` (``--n-bins``), information
- ``binned-mi-labels``: I(T;Y) of the binned patterns by :func:`~repcompress.binned_mutual_info`
  (``--n-bins``), information (with ``binned-entropy`` = I(X;T): the binned information plane)
- ``mi-labels``: I(Z;Y) by :func:`~repcompress.mutual_info_labels` (``--k``), information
- ``entropy``: h(Z) by :func:`~repcompress.entropy` (``--k``), information
- ``gaussian-mi`` (needs ``variances``): I(X;Z), I(X;Z|Y) and I(Z;Y) by
  :func:`~repcompress.gaussian_channel_mi`, each ± its Monte Carlo standard error and with the
  Bhattacharyya (lower) and KL (upper) pairwise bounds (``--n-draws``, ``--min-variance``),
  information

Without ``--metrics`` the default set is the geometric metrics (``cdnv nc1 trace-ratio
calinski-harabasz davies-bouldin silhouette twonn effective-rank``) and ``gaussian-mi`` when the
file has ``variances``, else ``mi-labels``. ``--metrics all`` is every metric (``gaussian-mi`` only
with ``variances``).

``--ci N`` adds confidence intervals (``low``, ``high``) from N resamples through
:func:`repcompress.confidence_interval`, with the scheme each estimator declares: the bootstrap
(basic interval) for moment-based and plug-in metrics, half-sampling without replacement for
k-NN and distance-based ones. A basic bootstrap interval may lie away from the value, even beyond
a bound such as log N: it carries the bootstrap's bias correction, and a plug-in or ratio metric
far from it is biased (see :func:`repcompress.confidence_interval`). ``gaussian-mi`` is an exact function of the N inputs' means and
variances except for its Monte Carlo draws, so its interval is value ± z·stderr (Monte Carlo
error); resampling the inputs would change the quantity (it is capped at log N).

Command line::

    repcompress estimate acts.npz                        # default metrics, a table
    repcompress estimate acts.npz --metrics cdnv,silhouette,mi-labels --ci 200 --base 2
    repcompress estimate acts.npz --metrics all --json > acts.json
    repcompress estimate --list-metrics

Exit status: 0 on success; 2 for a file or option that cannot be used (the message names the
problem); 1 when a metric failed on these data (its row carries the error, the others are
reported).

Python::

    >>> import numpy as np
    >>> from repcompress.estimate import estimate_arrays, estimate_file
    >>> rng = np.random.default_rng(0)
    >>> labels = rng.integers(0, 4, 400)
    >>> z = rng.standard_normal((4, 8))[labels] + 0.5 * rng.standard_normal((400, 8))
    >>> report = estimate_arrays(z, labels, metrics=["cdnv", "mi-labels"], base=2)
    >>> [(row.metric, row.quantity, row.unit) for row in report.rows]
    [('cdnv', 'cdnv', ''), ('mi-labels', 'I(Z;Y)', 'bits')]
    >>> import repcompress as rc
    >>> report.value("cdnv") == rc.class_distance_normalized_variance(z, labels)
    True

``estimate_file("acts.npz", ...)`` takes the same options; ``report.to_json()`` and
``report.format_table()`` give what the command prints.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import inspect
import json
import math
import numbers
import sys
import warnings
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any, Callable, Iterable

import numpy as np

from ._resampling import declare_resampling
from .binning import binned_entropy, binned_mutual_info
from .gaussian_channel import gaussian_channel_mi
from .geometry import (
    calinski_harabasz,
    class_distance_normalized_variance,
    davies_bouldin,
    effective_rank,
    fisher_ratio,
    neural_collapse,
    silhouette,
    trace_ratio,
    twonn_dimension,
)
from .knn_estimators import entropy, mutual_info_labels
from .uncertainty import confidence_interval

__all__ = [
    "Activations",
    "DEFAULT_GEOMETRY",
    "EstimateReport",
    "InputError",
    "METRICS",
    "Metric",
    "MetricRow",
    "check_activations",
    "estimate_arrays",
    "estimate_file",
    "load_activations",
    "resolve_metrics",
]


class InputError(ValueError):
    """A file, array or option that cannot be used; raised before any metric is computed."""


# ----------------------------------------------------------------------------------------------
# The metrics
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """A metric the command knows: its short name, the package function and what it measures."""

    name: str
    function: Callable[..., Any]
    summary: str
    information: bool = False
    needs_labels: bool = True
    needs_variances: bool = False


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "cdnv",
            class_distance_normalized_variance,
            "class-distance normalised variance, mean over class pairs (Galanti et al. 2022); smaller = more collapsed",
        ),
        Metric("nc1", neural_collapse, "NC1 = Tr(Σ_W Σ_B⁺)/C (Papyan et al. 2020); smaller = more collapsed"),
        Metric(
            "nc2",
            neural_collapse,
            "NC2: equinorm, equiangularity and max-angle of the centred class means; 0 = simplex ETF",
        ),
        Metric(
            "trace-ratio", trace_ratio, "tr S_W / tr S_B, within- over between-class scatter; smaller = more collapsed"
        ),
        Metric("fisher-ratio", fisher_ratio, "tr(S_W⁻¹ S_B); larger = better separated (--ridge when S_W is singular)"),
        Metric(
            "calinski-harabasz",
            calinski_harabasz,
            "Calinski–Harabasz index, as scikit-learn; higher = better separated",
        ),
        Metric("davies-bouldin", davies_bouldin, "Davies–Bouldin index, as scikit-learn; lower = better separated"),
        Metric(
            "silhouette",
            silhouette,
            "mean silhouette (Euclidean, exact, O(N²) time; --silhouette-sample-size); higher = better separated",
        ),
        Metric("twonn", twonn_dimension, "intrinsic dimension by TwoNN (Facco et al. 2017)", needs_labels=False),
        Metric(
            "effective-rank",
            effective_rank,
            "effective rank (Roy & Vetterli 2007) of z as given, not centred",
            needs_labels=False,
        ),
        Metric(
            "binned-entropy",
            binned_entropy,
            "H_bin(Z), plug-in entropy of the binned activation patterns (--n-bins)",
            information=True,
            needs_labels=False,
        ),
        Metric(
            "binned-mi-labels",
            binned_mutual_info,
            "I(T;Y), plug-in mutual information of the binned patterns T and the labels: the information plane's "
            "I(T;Y) (--n-bins); I(X;T) = H_bin(Z) for a deterministic layer",
            information=True,
        ),
        Metric("mi-labels", mutual_info_labels, "I(Z;Y) by k-NN (Ross 2014) (--k)", information=True),
        Metric(
            "entropy",
            entropy,
            "h(Z), Kozachenko–Leonenko differential entropy (--k); depends on the scale of z",
            information=True,
            needs_labels=False,
        ),
        Metric(
            "gaussian-mi",
            gaussian_channel_mi,
            "I(X;Z), I(X;Z|Y), I(Z;Y) of the Gaussian channel Z|x_i ~ N(z_i, diag(variances_i)): paired Monte Carlo "
            "± stderr, Bhattacharyya/KL pairwise bounds (--n-draws, --min-variance); needs 'variances'",
            information=True,
            needs_variances=True,
        ),
    )
}

DEFAULT_GEOMETRY = (
    "cdnv",
    "nc1",
    "trace-ratio",
    "calinski-harabasz",
    "davies-bouldin",
    "silhouette",
    "twonn",
    "effective-rank",
)


def resolve_metrics(metrics: str | Iterable[str] | None, has_variances: bool) -> list[str]:
    """Metric names in order, duplicates removed: ``None`` gives the default set, ``"all"`` every
    metric the data allow; names may be comma-separated and use ``_`` for ``-``."""
    if metrics is None:
        return [*DEFAULT_GEOMETRY, "gaussian-mi" if has_variances else "mi-labels"]
    if isinstance(metrics, str):
        metrics = [metrics]
    names: list[str] = []
    for item in metrics:
        if not isinstance(item, str):
            raise InputError(f"metrics: expected metric names, got {type(item).__name__} {item!r}")
        names += [part.strip().lower().replace("_", "-") for part in item.split(",") if part.strip()]
    if not names:
        raise InputError(f"metrics: no metric named; valid names: {', '.join(METRICS)} (or 'all')")
    out: list[str] = []
    for name in names:
        if name == "all":
            chosen = [m for m in METRICS if has_variances or not METRICS[m].needs_variances]
        elif name in METRICS:
            if METRICS[name].needs_variances and not has_variances:
                raise InputError(
                    f"metrics: {name!r} needs per-sample variances, but the data have none "
                    "(save them under the key 'variances', same shape as z)"
                )
            chosen = [name]
        else:
            close = difflib.get_close_matches(name, METRICS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InputError(f"metrics: unknown metric {name!r}{hint}; valid names: {', '.join(METRICS)} (or 'all')")
        out += [m for m in chosen if m not in out]
    return out


def _neural_collapse_field(name: str) -> Callable[[Any, Any], float]:
    """One field of :func:`neural_collapse` as a scalar estimator (moment-based: bootstrap)."""

    @declare_resampling(arrays=("h", "labels"), scheme="bootstrap")
    def value(h: Any, labels: Any) -> float:
        return float(getattr(neural_collapse(h, labels), name))

    value.__name__ = value.__qualname__ = f"neural_collapse_{name}"
    return value


_NEURAL_COLLAPSE = {
    name: _neural_collapse_field(name) for name in ("nc1", "nc2_equinorm", "nc2_equiangular", "nc2_max_angle")
}


# ----------------------------------------------------------------------------------------------
# Input
# ----------------------------------------------------------------------------------------------


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
    z = np.asarray(z)
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

    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
        notes.append(f"labels have shape ({n}, 1): read as ({n},)")
    if labels.ndim != 1:
        raise InputError(f"labels: expected a 1-D array of N class ids, got shape {labels.shape}")
    if labels.shape[0] != n:
        raise InputError(f"labels: has {labels.shape[0]} entries but z has {n} samples")
    if labels.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(labels) | (labels != np.round(labels)))
        if bad.size:
            raise InputError(
                f"labels: must be integer class ids, got {labels[bad[0]].item()!r} at sample {int(bad[0])}"
            )
    elif labels.dtype.kind not in "iub":
        raise InputError(f"labels: must be integer class ids, got dtype {labels.dtype}")

    if variances is not None:
        variances = np.asarray(variances)
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


def load_activations(path: str | Path) -> Activations:
    """Reads ``z``, ``labels`` and optional ``variances`` from an ``.npz`` archive (no pickles) and
    checks them with :func:`check_activations`; other keys are ignored (a note lists them)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: cannot be read as an .npz archive ({exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise InputError(
            f"{path}: is a single .npy array, not an .npz archive with keys 'z' and 'labels' "
            "(save with numpy.savez(path, z=..., labels=...))"
        )
    with archive:
        keys = list(archive.files)
        missing = [key for key in ("z", "labels") if key not in keys]
        if missing:
            raise InputError(
                f"{path}: missing key {' and '.join(map(repr, missing))}; the archive has "
                f"{', '.join(map(repr, keys)) or 'no arrays'} (expected 'z', 'labels' and optional 'variances')"
            )
        try:
            arrays = {key: archive[key] for key in ("z", "labels", "variances") if key in keys}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise InputError(f"{path}: cannot read its arrays ({exc})") from None
    data = check_activations(arrays["z"], arrays["labels"], arrays.get("variances"))
    ignored = [key for key in keys if key not in ("z", "labels", "variances")]
    if ignored:
        data = Activations(
            data.z, data.labels, data.variances, data.shape, data.notes + (f"keys ignored: {', '.join(ignored)}",)
        )
    return data


# ----------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------


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


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars and arrays to Python, NaN and ±inf to None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
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
        return _plain({"data": self.data, "settings": self.settings, "results": rows})

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
            cells = [cell.rjust(w) if ra else cell.ljust(w) for cell, w, ra in zip(r, widths, right)]
            lines.append("  ".join([*cells, r[-1]]).rstrip())
        for row in self.rows:
            if row.error is not None:
                lines.append(f"# error ({row.label}): {row.error}")
            for message in row.warnings:
                lines.append(f"# warning ({row.label}): {message}")
        for note in d["notes"]:
            lines.append(f"# note: {note}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scalar:
    """One scalar quantity: ``estimator(*arrays, **kwargs)``; ``function`` is the package function
    whose settings are reported."""

    metric: str
    quantity: str
    estimator: Callable[..., float]
    function: Callable[..., Any]
    arrays: tuple[str, ...]
    kwargs: dict
    note: str = ""


# Array-valued or data parameters: not settings.
_DATA_PARAMETERS = {"labels", "weights", "bias", "logits", "variances", "noise_variance", "dropout_alpha", "sample_ids"}


def _settings(function: Callable[..., Any], kwargs: dict) -> dict:
    """Every option of `function` as called: its defaults overlaid with `kwargs`."""
    out = {}
    for name, p in inspect.signature(function).parameters.items():
        if p.default is inspect.Parameter.empty or name in _DATA_PARAMETERS:
            continue
        out[name] = kwargs.get(name, p.default)
    return out


def _given(**options: Any) -> dict:
    return {name: value for name, value in options.items() if value is not None}


def unit_name(base: float) -> str:
    """ "nats" for base e, "bits" for 2, "hartleys" for 10, else "log-base-<b> units"."""
    names = {math.e: "nats", 2.0: "bits", 10.0: "hartleys"}
    return names.get(float(base), f"log-base-{base:g} units")


def _entropy_of_labels(labels: np.ndarray, base: float) -> float:
    _, counts = np.unique(labels, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum() / math.log(base))


def _scalars(name: str, data: Activations, options: dict) -> list[_Scalar]:
    seed, base = options["seed"], options["base"]
    zl = ("z", "labels")
    if name == "cdnv":
        return [_Scalar(name, name, class_distance_normalized_variance, class_distance_normalized_variance, zl, {})]
    if name == "nc1":
        return [_Scalar(name, name, _NEURAL_COLLAPSE["nc1"], neural_collapse, zl, {})]
    if name == "nc2":
        return [
            _Scalar(name, quantity, _NEURAL_COLLAPSE[f"nc2_{field_}"], neural_collapse, zl, {})
            for quantity, field_ in (
                ("equinorm", "equinorm"),
                ("equiangular", "equiangular"),
                ("max-angle", "max_angle"),
            )
        ]
    if name == "trace-ratio":
        return [_Scalar(name, name, trace_ratio, trace_ratio, zl, {})]
    if name == "fisher-ratio":
        return [_Scalar(name, name, fisher_ratio, fisher_ratio, zl, _given(ridge=options["ridge"]))]
    if name == "calinski-harabasz":
        return [_Scalar(name, name, calinski_harabasz, calinski_harabasz, zl, {})]
    if name == "davies-bouldin":
        return [_Scalar(name, name, davies_bouldin, davies_bouldin, zl, {})]
    if name == "silhouette":
        kwargs = {"random_state": seed, **_given(sample_size=options["silhouette_sample_size"])}
        note = f"on {kwargs['sample_size']} random samples" if "sample_size" in kwargs else ""
        return [_Scalar(name, name, silhouette, silhouette, zl, kwargs, note)]
    if name == "twonn":
        return [_Scalar(name, name, twonn_dimension, twonn_dimension, ("z",), {})]
    if name == "effective-rank":
        return [_Scalar(name, name, effective_rank, effective_rank, ("z",), {}, "of z as given (not centred)")]
    if name == "binned-entropy":
        kwargs = {"base": base, **_given(n_bins=options["n_bins"])}
        s = _settings(binned_entropy, kwargs)
        ceiling = math.log(data.z.shape[0]) / math.log(base)
        note = f"{s['n_bins']} {s['strategy']} bins over the {s['range']}; ≤ log N = {ceiling:.4g}"
        return [_Scalar(name, "H_bin(Z)", binned_entropy, binned_entropy, ("z",), kwargs, note)]
    if name == "binned-mi-labels":
        kwargs = {"base": base, **_given(n_bins=options["n_bins"])}
        s = _settings(binned_mutual_info, kwargs)
        note = f"{s['n_bins']} {s['strategy']} bins over the {s['range']}; ≤ H(Y) = {_entropy_of_labels(data.labels, base):.4g}"
        return [_Scalar(name, "I(T;Y)", binned_mutual_info, binned_mutual_info, zl, kwargs, note)]
    if name == "mi-labels":
        kwargs = {"random_state": seed, "base": base, **_given(k=options["k"])}
        s = _settings(mutual_info_labels, kwargs)
        note = f"k = {s['k']}; ≤ H(Y) = {_entropy_of_labels(data.labels, base):.4g}"
        return [_Scalar(name, "I(Z;Y)", mutual_info_labels, mutual_info_labels, zl, kwargs, note)]
    if name == "entropy":
        kwargs = {"random_state": seed, "base": base, **_given(k=options["k"])}
        s = _settings(entropy, kwargs)
        note = f"k = {s['k']}, {s['metric']} balls; differential, depends on the scale of z"
        return [_Scalar(name, "h(Z)", entropy, entropy, ("z",), kwargs, note)]
    raise AssertionError(f"no scalar plan for metric {name!r}")  # pragma: no cover — METRICS and this agree


def _evaluate_scalar(q: _Scalar, data: Activations, options: dict, unit: str) -> MetricRow:
    arrays = [getattr(data, a) for a in q.arrays]
    settings = _settings(q.function, q.kwargs)
    row = dict(
        metric=q.metric,
        quantity=q.quantity,
        unit=unit,
        note=q.note,
        function=f"repcompress.{q.function.__name__}",
        settings=settings,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if options["ci"] is None:
                value = float(q.estimator(*arrays, **q.kwargs))
                interval = {}
            else:
                ci = confidence_interval(
                    functools.partial(q.estimator, **q.kwargs),
                    *arrays,
                    n_resamples=options["ci"],
                    confidence=options["confidence"],
                    random_state=options["seed"],
                    progress=options["progress"],
                )
                value = ci.value
                interval = dict(
                    stderr=ci.stderr,
                    low=ci.low,
                    high=ci.high,
                    interval=f"{ci.method}, {100 * ci.confidence:g} %, {ci.n_resamples} resamples",
                    extra={} if math.isnan(ci.bias) else {"bootstrap_bias": ci.bias},
                )
            error = None
        except (ValueError, TypeError, ArithmeticError, np.linalg.LinAlgError) as exc:
            value, interval, error = math.nan, {}, str(exc)
    messages = tuple(dict.fromkeys(str(w.message) for w in caught))
    return MetricRow(value=value, error=error, warnings=messages, **interval, **row)


def _evaluate_gaussian(data: Activations, options: dict, unit: str) -> list[MetricRow]:
    kwargs = {
        "random_state": options["seed"],
        "base": options["base"],
        **_given(n_draws=options["n_draws"], min_variance=options["min_variance"]),
    }
    settings = _settings(gaussian_channel_mi, kwargs)
    common = dict(metric="gaussian-mi", unit=unit, function="repcompress.gaussian_channel_mi", settings=settings)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            r = gaussian_channel_mi(data.z, data.variances, labels=data.labels, **kwargs)
        except (ValueError, TypeError, ArithmeticError, np.linalg.LinAlgError) as exc:
            return [
                MetricRow(quantity=q, value=math.nan, error=str(exc), **common)
                for q in ("I(X;Z)", "I(X;Z|Y)", "I(Z;Y)")
            ]
    messages = tuple(dict.fromkeys(str(w.message) for w in caught))
    draws = f"paired Monte Carlo, {r.n_draws} draw(s) per sample"
    floored = f"; {r.n_floored} variances raised to min_variance = {settings['min_variance']:g}" if r.n_floored else ""
    parts = [
        (
            "I(X;Z)",
            r.mi,
            r.stderr,
            r.lower,
            r.upper,
            r.log_n,
            "log N",
            {
                "maxent_upper": r.maxent_upper,
                "ceiling": r.log_n,
                "h_z_given_x": r.h_z_given_x,
                "n_floored": r.n_floored,
                "n_draws": r.n_draws,
            },
        ),
        (
            "I(X;Z|Y)",
            r.given_labels.mi,
            r.given_labels.stderr,
            r.given_labels.lower,
            r.given_labels.upper,
            r.given_labels.ceiling,
            "Σ p(y) log N_y",
            {"maxent_upper": r.given_labels.maxent_upper, "ceiling": r.given_labels.ceiling},
        ),
        (
            "I(Z;Y)",
            r.labels.mi,
            r.labels.stderr,
            r.labels.lower,
            r.labels.upper,
            r.labels.ceiling,
            "H(Y)",
            {"ceiling": r.labels.ceiling},
        ),
    ]
    z_score = NormalDist().inv_cdf(0.5 + options["confidence"] / 2.0)
    rows = []
    for quantity, mi, stderr, lower, upper, ceiling, ceiling_name, extra in parts:
        what = draws if quantity != "I(Z;Y)" else "I(X;Z) − I(X;Z|Y), same draws"
        note = f"{what}; bounds [{lower:.4g}, {upper:.4g}]; ≤ {ceiling_name} = {ceiling:.4g}"
        interval = {}
        if options["ci"] is not None:
            interval = dict(
                low=mi - z_score * stderr,
                high=mi + z_score * stderr,
                interval=f"Monte Carlo standard error (normal), {100 * options['confidence']:g} %",
            )
        rows.append(
            MetricRow(
                quantity=quantity,
                value=mi,
                stderr=stderr,
                lower_bound=lower,
                upper_bound=upper,
                note=note + (floored if quantity == "I(X;Z)" else ""),
                extra=extra,
                warnings=messages,
                **interval,
                **common,
            )
        )
    return rows


def _positive_int_or_none(value: Any, name: str, minimum: int = 1) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InputError(f"{name}: must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _nonnegative_or_none(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (math.isfinite(value) and value >= 0):
        raise InputError(f"{name}: must be a finite number >= 0, got {value!r}")
    return float(value)


def estimate_arrays(
    z: Any,
    labels: Any,
    variances: Any = None,
    metrics: str | Iterable[str] | None = None,
    *,
    ci: int | None = None,
    confidence: float = 0.95,
    seed: int = 0,
    base: float = math.e,
    k: int | None = None,
    n_bins: int | None = None,
    n_draws: int | None = None,
    min_variance: float | None = None,
    ridge: float | None = None,
    silhouette_sample_size: int | None = None,
    progress: bool | None = None,
) -> EstimateReport:
    """Estimates ``metrics`` (names of :data:`METRICS`; None: the default set) of activations ``z``
    with class ``labels`` and optional Gaussian-channel ``variances``; see the module docstring.

    ``ci``: number of resamples for confidence intervals (None: none); ``confidence``: their level.
    ``seed``: ``random_state`` of every estimator that draws random numbers (k-NN jitter, the Monte
    Carlo draws, silhouette sub-sampling) and of the resampling. ``base``: of the information
    metrics (e: nats, 2: bits). ``k``, ``n_bins``, ``n_draws``, ``min_variance``, ``ridge``,
    ``silhouette_sample_size``: passed to the functions that take them; None keeps each function's
    default. ``progress``: progress bars of the resampling on stderr (None: only for long calls).

    Raises :class:`InputError` for unusable arrays or options before computing anything; a metric
    that fails on these data gives a row with ``value`` NaN and ``error`` set.
    """
    return _estimate(
        check_activations(z, labels, variances),
        metrics,
        None,
        ci=ci,
        confidence=confidence,
        seed=seed,
        base=base,
        k=k,
        n_bins=n_bins,
        n_draws=n_draws,
        min_variance=min_variance,
        ridge=ridge,
        silhouette_sample_size=silhouette_sample_size,
        progress=progress,
    )


def estimate_file(path: str | Path, metrics: str | Iterable[str] | None = None, **options: Any) -> EstimateReport:
    """:func:`estimate_arrays` on the arrays of an ``.npz`` file (read by :func:`load_activations`);
    ``options`` as for :func:`estimate_arrays`."""
    return _estimate(load_activations(path), metrics, str(path), **options)


def _estimate(
    data: Activations,
    metrics: str | Iterable[str] | None,
    path: str | None,
    *,
    ci: int | None = None,
    confidence: float = 0.95,
    seed: int = 0,
    base: float = math.e,
    k: int | None = None,
    n_bins: int | None = None,
    n_draws: int | None = None,
    min_variance: float | None = None,
    ridge: float | None = None,
    silhouette_sample_size: int | None = None,
    progress: bool | None = None,
) -> EstimateReport:
    from . import __version__, get_num_threads
    from ._validation import check_base

    names = resolve_metrics(metrics, data.variances is not None)
    if data.n_classes < 2:
        needing = [m for m in names if METRICS[m].needs_labels]
        if needing:
            raise InputError(f"labels: {', '.join(needing)} need at least 2 classes, got {data.n_classes}")
    try:
        base = check_base(base)
    except (TypeError, ValueError) as exc:
        raise InputError(str(exc)) from None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise InputError(f"seed: must be an integer, got {seed!r}")
    if isinstance(confidence, bool) or not (isinstance(confidence, numbers.Real) and 0 < confidence < 1):
        raise InputError(f"confidence: must be a number in (0, 1), got {confidence!r}")
    options = {
        "ci": _positive_int_or_none(ci, "ci", 2),
        "confidence": float(confidence),
        "seed": int(seed),
        "base": base,
        "k": _positive_int_or_none(k, "k"),
        "n_bins": _positive_int_or_none(n_bins, "n_bins"),
        "n_draws": _positive_int_or_none(n_draws, "n_draws"),
        "min_variance": _nonnegative_or_none(min_variance, "min_variance"),
        "ridge": _nonnegative_or_none(ridge, "ridge"),
        "silhouette_sample_size": _positive_int_or_none(silhouette_sample_size, "silhouette_sample_size"),
        "progress": progress,
    }
    information_unit = unit_name(base)
    rows: list[MetricRow] = []
    for name in names:
        unit = information_unit if METRICS[name].information else ""
        if name == "gaussian-mi":
            rows += _evaluate_gaussian(data, options, unit)
        else:
            rows += [_evaluate_scalar(q, data, options, unit) for q in _scalars(name, data, options)]
    _, counts = np.unique(data.labels, return_counts=True)
    notes = list(data.notes)
    if data.variances is not None:
        notes.append(
            "variances given: z holds the channel means; the geometric metrics are computed on them (noise-free)"
        )
    described = {
        "path": path,
        "z_shape": list(data.shape),
        "n_samples": int(data.z.shape[0]),
        "n_units": int(data.z.shape[1]),
        "z_dtype": str(data.z.dtype),
        "n_classes": int(counts.size),
        "smallest_class": int(counts.min()),
        "variances": data.variances is not None,
        "notes": notes,
    }
    settings = {
        "repcompress": __version__,
        "metrics": names,
        "base": base,
        "unit": information_unit,
        "seed": int(seed),
        "threads": get_num_threads(),
        "ci": None if options["ci"] is None else {"n_resamples": options["ci"], "confidence": options["confidence"]},
        "options": {
            key: options[key] for key in ("k", "n_bins", "n_draws", "min_variance", "ridge", "silhouette_sample_size")
        },
    }
    return EstimateReport(rows=rows, data=described, settings=settings)


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------

DESCRIPTION = "compression metrics of activations saved as arrays (.npz with z, labels, optional variances)"


def _count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _nonnegative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _base(text: str) -> float:
    if text.strip().lower() == "e":
        return math.e
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'e', got {text!r}") from None
    if not (math.isfinite(value) and value > 0 and value != 1):
        raise argparse.ArgumentTypeError(f"must be positive, finite and not 1, got {text}")
    return value


def _confidence(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie in (0, 1), got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file",
        nargs="?",
        metavar="FILE.npz",
        help="archive with arrays 'z' (N, ...), 'labels' (N,) and optional 'variances' (shape of z)",
    )
    parser.add_argument(
        "--metrics",
        nargs="+",
        metavar="NAME",
        help="metric names, space- or comma-separated, or 'all' (see --list-metrics; FILE.npz may "
        "follow); default: the geometric metrics and gaussian-mi with variances, else mi-labels",
    )
    parser.add_argument("--list-metrics", action="store_true", help="list the metric names and exit")
    parser.add_argument(
        "--json", action="store_true", help="print JSON (values, intervals, settings) instead of a table"
    )
    parser.add_argument("--ci", type=_count(2), metavar="N", help="confidence intervals from N resamples")
    parser.add_argument(
        "--confidence", type=_confidence, default=0.95, metavar="P", help="confidence level (default 0.95)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, metavar="S", help="random_state of the estimators and resampling (default 0)"
    )
    parser.add_argument(
        "--threads",
        type=_count(1),
        metavar="T",
        help="worker threads (default: all cores; results do not depend on it)",
    )
    parser.add_argument(
        "--base",
        type=_base,
        default=math.e,
        metavar="B",
        help="logarithm base of information metrics: e (nats, default) or 2 (bits)",
    )

    def default(function: Callable[..., Any], name: str) -> Any:
        return inspect.signature(function).parameters[name].default

    options = parser.add_argument_group("metric options (default: each function's own)")
    options.add_argument(
        "--k", type=_count(1), help=f"neighbours of mi-labels and entropy (default {default(mutual_info_labels, 'k')})"
    )
    options.add_argument(
        "--n-bins",
        type=_count(1),
        metavar="B",
        help=f"bins of binned-entropy (default {default(binned_entropy, 'n_bins')})",
    )
    options.add_argument(
        "--n-draws",
        type=_count(1),
        metavar="M",
        help=f"Monte Carlo draws per sample of gaussian-mi (default {default(gaussian_channel_mi, 'n_draws')})",
    )
    options.add_argument(
        "--min-variance",
        type=_nonnegative,
        metavar="V",
        help=f"variance floor of gaussian-mi (default {default(gaussian_channel_mi, 'min_variance'):g})",
    )
    options.add_argument(
        "--ridge",
        type=_nonnegative,
        metavar="R",
        help=f"ridge of fisher-ratio (default {default(fisher_ratio, 'ridge'):g})",
    )
    options.add_argument(
        "--silhouette-sample-size",
        type=_count(1),
        metavar="M",
        help="silhouette on M random samples instead of all (default: all; O(N²) time)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")


def list_metrics() -> str:
    width = max(map(len, METRICS))
    lines = [f"{name.ljust(width)}  repcompress.{m.function.__name__}: {m.summary}" for name, m in METRICS.items()]
    lines.append(f"{'all'.ljust(width)}  every metric above (gaussian-mi only when the file has variances)")
    lines.append(f"default: {' '.join(DEFAULT_GEOMETRY)}, and gaussian-mi with variances, else mi-labels")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.list_metrics:
        print(list_metrics())
        return 0
    metrics = args.metrics
    path = args.file
    if path is None and metrics and metrics[-1].endswith(".npz"):
        # `--metrics a b FILE.npz`: argparse gave the file to --metrics; no metric name ends in .npz.
        path, metrics = metrics[-1], metrics[:-1]
    if path is None:
        print("repcompress estimate: error: FILE.npz is required (or --list-metrics)", file=sys.stderr)
        return 2
    from . import get_num_threads, set_num_threads

    threads_before = get_num_threads()
    try:
        if args.threads is not None:
            set_num_threads(args.threads)
        report = estimate_file(
            path,
            metrics,
            ci=args.ci,
            confidence=args.confidence,
            seed=args.seed,
            base=args.base,
            k=args.k,
            n_bins=args.n_bins,
            n_draws=args.n_draws,
            min_variance=args.min_variance,
            ridge=args.ridge,
            silhouette_sample_size=args.silhouette_sample_size,
            progress=False if args.no_progress else None,
        )
    except InputError as exc:
        print(f"repcompress estimate: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.threads is not None:
            set_num_threads(threads_before)
    print(report.to_json() if args.json else report.format_table())
    if report.failed:
        names = ", ".join(dict.fromkeys(row.label for row in report.failed))
        print(
            f"repcompress estimate: {len(report.failed)} result(s) failed: {names} (see the error in each row)",
            file=sys.stderr,
        )
        return 1
    return 0
