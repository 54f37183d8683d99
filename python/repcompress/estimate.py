"""Compression metrics of saved activations: ``repcompress estimate FILE.npz`` and its Python API.

The input is activations ``z`` (N, d), class ``labels`` (N,) and optional per-sample
``variances`` of a Gaussian channel, in a NumPy ``.npz`` archive or as arrays: the format, and how
``z`` is reshaped, are documented in :mod:`repcompress.activations`. The metrics (``cdnv``,
``nc1``, ``nc2``, ``trace-ratio``, ``fisher-ratio``, ``calinski-harabasz``, ``davies-bouldin``,
``silhouette``, ``twonn``, ``effective-rank``, ``binned-entropy``, ``binned-mi-labels``,
``mi-labels``, ``entropy``, ``gaussian-mi``), the default set and the confidence intervals of
``--ci`` are documented in :mod:`repcompress.metrics`, whose registry :data:`~repcompress.metrics.METRICS` defines
them; the report (:class:`MetricRow`, :class:`EstimateReport`) is in :mod:`repcompress.report`.

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

import inspect
from collections.abc import Callable, Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from .activations import Activations, InputError, check_activations, load_activations
from .estimate_options import EstimateOptions
from .metrics import DEFAULT_GEOMETRY, METRICS, Metric, resolve_metrics
from .report import EstimateReport, MetricRow, unit_name

__all__ = [
    "DEFAULT_GEOMETRY",
    "METRICS",
    "Activations",
    "EstimateReport",
    "InputError",
    "Metric",
    "MetricRow",
    "check_activations",
    "estimate_arrays",
    "estimate_file",
    "load_activations",
    "resolve_metrics",
]


_F = TypeVar("_F", bound=Callable[..., Any])


def _with_option_parameters(function: _F) -> _F:
    """Shows ``function(..., **options)`` with the keyword-only parameters of
    :class:`EstimateOptions` in its signature (names, defaults and types are written there once)."""
    signature = inspect.signature(function)
    kept = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    options = [
        inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=f.type)
        for f in fields(EstimateOptions)
    ]
    target: Any = function  # typeshed declares no __signature__ on functions
    target.__signature__ = signature.replace(parameters=[*kept, *options])
    return function


@_with_option_parameters
def estimate_arrays(
    z: Any,
    labels: Any,
    variances: Any = None,
    metrics: str | Iterable[str] | None = None,
    **options: Any,
) -> EstimateReport:
    """Estimates ``metrics`` (names of :data:`~repcompress.metrics.METRICS`; None: the default set) of activations ``z``
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
    EstimateOptions.check_names("estimate_arrays", options)
    return _estimate(check_activations(z, labels, variances), metrics, None, options)


def estimate_file(path: str | Path, metrics: str | Iterable[str] | None = None, **options: Any) -> EstimateReport:
    """:func:`estimate_arrays` on the arrays of an ``.npz`` file (read by :func:`load_activations`);
    ``options`` as for :func:`estimate_arrays`."""
    data = load_activations(path)
    EstimateOptions.check_names("estimate_file", options)
    return _estimate(data, metrics, str(path), options)


def _estimate(
    data: Activations, metrics: str | Iterable[str] | None, path: str | None, keywords: dict[str, Any]
) -> EstimateReport:
    from . import __version__, get_num_threads

    names = resolve_metrics(metrics, data.variances is not None)
    if data.n_classes < 2:
        needing = [m for m in names if METRICS[m].needs_labels]
        if needing:
            raise InputError(f"labels: {', '.join(needing)} need at least 2 classes, got {data.n_classes}")
    options = EstimateOptions(**keywords)
    rows = evaluate_metrics(data, names, options)
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
        "base": options.base,
        "unit": unit_name(options.base),
        "seed": options.seed,
        "threads": get_num_threads(),
        "ci": None if options.ci is None else {"n_resamples": options.ci, "confidence": options.confidence},
        "options": {name: getattr(options, name) for name in EstimateOptions.metric_options()},
    }
    return EstimateReport(rows=rows, data=described, settings=settings)


def evaluate_metrics(
    data: Activations, names: Iterable[str], options: EstimateOptions, *, device: Any = None
) -> list[MetricRow]:
    """The rows of the metrics ``names`` on ``data``. A metric that needs labels gives its rows with
    ``value`` NaN and the error when the data have fewer than 2 classes: :func:`estimate_arrays`
    refuses such data before (InputError); the training-time tracker records them
    (docs/spec.md §6.4).

    ``device`` (docs/spec.md §8.5): ``data.z`` and ``data.variances`` may be tensors on it; the
    metrics whose functions take ``device=`` compute there (without ``ci``: resampling works on
    numpy arrays), the others get numpy copies of the data, made once."""
    rows: list[MetricRow] = []
    host: list[Activations] = []

    def on_host() -> Activations:
        if not host:
            host.append(_host_activations(data))
        return host[0]

    for name in names:
        metric = METRICS[name]
        if metric.needs_labels and data.n_classes < 2:
            rows += metric.failed(options, f"labels: need at least 2 classes, got {data.n_classes}")
        elif device is not None and options.ci is None and metric.takes_device():
            rows += metric.evaluate(data, options, device=device)
        else:
            rows += metric.evaluate(on_host() if device is not None else data, options)
    return rows


def _host_activations(data: Activations) -> Activations:
    """``data`` with tensors copied to numpy arrays."""

    def host(a: Any) -> Any:
        return a.detach().cpu().numpy() if hasattr(a, "detach") else a

    return Activations(
        z=host(data.z), labels=data.labels, variances=host(data.variances), shape=data.shape, notes=data.notes
    )


# The command line of `repcompress estimate` lives in repcompress.cli.estimate; its names stay
# reachable from here without this module importing the command line.
_COMMAND_LINE = ("DESCRIPTION", "add_arguments", "list_metrics", "run")


def __getattr__(name: str) -> Any:
    if name in _COMMAND_LINE:
        from .cli import estimate as command_line

        return getattr(command_line, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
