"""The metrics of ``repcompress estimate``: one registry, :data:`METRICS`, one entry per metric.

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
far from it is biased (see :func:`repcompress.confidence_interval`). ``gaussian-mi`` is an exact
function of the N inputs' means and variances except for its Monte Carlo draws, so its interval
is value ± z·stderr (Monte Carlo error); resampling the inputs would change the quantity (it is
capped at log N).

Adding a metric is adding one :class:`Metric` entry to :data:`METRICS`: the entry says what the
metric needs (labels, variances), which estimate options it takes (each a field of
:class:`~repcompress.estimate_options.EstimateOptions` mapped to a parameter of its function),
its unit kind, its summary, and the quantities it reports (each a scalar estimator with its row's
name and note), or a function that builds its rows itself. Name resolution, ``--metrics all``,
``--list-metrics``, the evaluation (with or without intervals) and the report then need no
change.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

from ._resampling import declare_resampling
from .activations import Activations, InputError
from .binning import binned_entropy, binned_mutual_info
from .estimate_options import EstimateOptions
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
from .report import MetricRow, unit_name
from .uncertainty import confidence_interval

__all__ = [
    "DEFAULT_GEOMETRY",
    "METRICS",
    "Metric",
    "Quantity",
    "resolve_metrics",
]


# ----------------------------------------------------------------------------------------------
# The registry
# ----------------------------------------------------------------------------------------------

# Array-valued or data parameters: not settings.
# Where a function computes (docs/spec.md §8.1) is not a setting of its estimate: left out of the
# settings, so that a table does not depend on it.
_PLACEMENT = {"device"}
_DATA_PARAMETERS = {"labels", "weights", "bias", "logits", "variances", "noise_variance", "dropout_alpha", "sample_ids"}

# What a metric's function raises on data it cannot measure: the metric's row carries the error.
# MemoryError: a buffer these data need cannot be allocated (docs/spec.md §0.5); the others go on.
_METRIC_FAILURES = (ValueError, TypeError, ArithmeticError, MemoryError, np.linalg.LinAlgError)

Note = Callable[[Activations, Mapping[str, Any]], str]


@dataclass(frozen=True)
class Quantity:
    """One scalar a metric reports, a row of the report: ``estimator(*arrays, **kwargs)`` on the
    metric's arrays with the metric's options (resampled for ``ci``).

    ``name``: the row's quantity (None: the metric's name). ``estimator``: None for the metric's
    function. ``note``: text, or a function of the data and the settings the function is called
    with (every option, defaults included) that gives it."""

    name: str | None = None
    estimator: Callable[..., float] | None = None
    note: str | Note = ""


# rows(metric, data, options) or, for the device path (docs/spec.md §8.5), with device=.
RowBuilder = Callable[..., list[MetricRow]]


@dataclass(frozen=True)
class Metric:
    """A metric the command knows: its short name, the package function and what it measures.

    ``information``: the unit kind (True: information, in units of ``base``; False:
    dimensionless). ``needs_labels``: the function takes ``(z, labels)`` (else ``(z,)``), and the
    data need two classes. ``needs_variances``: only for data with per-sample variances.
    ``options``: the fields of :class:`~repcompress.estimate_options.EstimateOptions` the metric
    takes, each mapped to the parameter of ``function`` it sets. ``quantities``: the scalars it
    reports (by default one, the function's value, named after the metric). ``rows``: instead of
    evaluating ``quantities``, a function ``rows(metric, data, options)`` that builds the metric's
    rows itself (for quantities that come from one call, with their own error bars); its
    ``quantities`` then only name those rows.
    """

    name: str
    function: Callable[..., Any]
    summary: str
    information: bool = False
    needs_labels: bool = True
    needs_variances: bool = False
    options: Mapping[str, str] = field(default_factory=dict, hash=False)
    quantities: tuple[Quantity, ...] = (Quantity(),)
    rows: RowBuilder | None = None

    def arrays(self, data: Activations) -> tuple[np.ndarray, ...]:
        """The positional arrays of the metric's function."""
        return (data.z, data.labels) if self.needs_labels else (data.z,)

    def keywords(self, options: EstimateOptions) -> dict[str, Any]:
        """The function's keyword arguments from the options it takes (those not None)."""
        out = {}
        for option, parameter in self.options.items():
            value = getattr(options, option)
            if value is not None:
                out[parameter] = value
        return out

    def settings(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Every option of the function as called: its defaults overlaid with ``kwargs``."""
        out = {}
        for name, p in inspect.signature(self.function).parameters.items():
            if p.default is inspect.Parameter.empty or name in _DATA_PARAMETERS or name in _PLACEMENT:
                continue
            out[name] = kwargs.get(name, p.default)
        return out

    def unit(self, options: EstimateOptions) -> str:
        return unit_name(options.base) if self.information else ""

    def failed(self, options: EstimateOptions, error: str) -> list[MetricRow]:
        """The metric's rows when it cannot be computed on the data at all (``error`` says why):
        one per quantity, with ``value`` NaN."""
        settings = self.settings(self.keywords(options))
        return [
            MetricRow(
                metric=self.name,
                quantity=q.name or self.name,
                value=math.nan,
                unit=self.unit(options),
                function=f"repcompress.{self.function.__name__}",
                settings=dict(settings),
                error=error,
            )
            for q in self.quantities
        ]

    def takes_device(self) -> bool:
        """Whether every function the metric calls takes ``device=`` (docs/spec.md §8.5)."""
        functions = (
            [self.function] if self.rows is not None else [q.estimator or self.function for q in self.quantities]
        )
        return all("device" in inspect.signature(f).parameters for f in functions)

    def evaluate(self, data: Activations, options: EstimateOptions, *, device: Any = None) -> list[MetricRow]:
        """The metric's rows on ``data``; a failure on these data is a row with its error. With
        ``device`` (only for a metric that :meth:`takes_device`) the functions get ``device=`` and the
        data may be tensors on it; the settings do not record it."""
        if self.rows is not None:
            return self.rows(self, data, options) if device is None else self.rows(self, data, options, device=device)
        kwargs = self.keywords(options)
        settings = self.settings(kwargs)
        planned = [
            (q.name or self.name, q.estimator or self.function, q.note(data, settings) if callable(q.note) else q.note)
            for q in self.quantities
        ]
        call = kwargs if device is None else {**kwargs, "device": device}
        return [
            self._evaluate_scalar(quantity, estimator, note, data, options, call, settings)
            for quantity, estimator, note in planned
        ]

    def _evaluate_scalar(
        self,
        quantity: str,
        estimator: Callable[..., float],
        note: str,
        data: Activations,
        options: EstimateOptions,
        kwargs: dict[str, Any],
        settings: dict[str, Any],
    ) -> MetricRow:
        arrays = self.arrays(data)
        value, error = math.nan, None
        stderr = low = high = None
        interval: str | None = None
        extra: dict[str, Any] = {}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                if options.ci is None:
                    value = float(estimator(*arrays, **kwargs))
                else:
                    ci = confidence_interval(
                        functools.partial(estimator, **kwargs),
                        *arrays,
                        n_resamples=options.ci,
                        confidence=options.confidence,
                        random_state=options.seed,
                        progress=options.progress,
                    )
                    value, stderr, low, high = ci.value, ci.stderr, ci.low, ci.high
                    interval = f"{ci.method}, {100 * ci.confidence:g} %, {ci.n_resamples} resamples"
                    extra = {} if math.isnan(ci.bias) else {"bootstrap_bias": ci.bias}
            except _METRIC_FAILURES as exc:
                value, error = math.nan, str(exc)
                stderr = low = high = interval = None
                extra = {}
        return MetricRow(
            metric=self.name,
            quantity=quantity,
            value=value,
            unit=self.unit(options),
            note=note,
            stderr=stderr,
            low=low,
            high=high,
            interval=interval,
            function=f"repcompress.{self.function.__name__}",
            settings=dict(settings),  # each row its own, as the quantities are evaluated one by one
            extra=extra,
            warnings=_messages(caught),
            error=error,
        )


def _messages(caught: list[warnings.WarningMessage]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(w.message) for w in caught))


# ----------------------------------------------------------------------------------------------
# How the metrics are computed
# ----------------------------------------------------------------------------------------------


def _neural_collapse_field(name: str) -> Callable[[Any, Any], float]:
    """One field of :func:`neural_collapse` as a scalar estimator (moment-based: bootstrap)."""

    @declare_resampling(arrays=("h", "labels"), scheme="bootstrap")
    def value(h: Any, labels: Any, device: Any = None) -> float:
        return float(getattr(neural_collapse(h, labels, device=device), name))

    value.__name__ = value.__qualname__ = f"neural_collapse_{name}"
    return value


def _entropy_of_labels(labels: np.ndarray, base: float) -> float:
    _, counts = np.unique(labels, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum() / math.log(base))


def _bins(s: Mapping[str, Any]) -> str:
    return f"{s['n_bins']} {s['strategy']} bins over the {s['range']}"


def _binned_entropy_note(data: Activations, s: Mapping[str, Any]) -> str:
    ceiling = math.log(data.z.shape[0]) / math.log(s["base"])
    return f"{_bins(s)}; ≤ log N = {ceiling:.4g}"


def _binned_mi_labels_note(data: Activations, s: Mapping[str, Any]) -> str:
    return f"{_bins(s)}; ≤ H(Y) = {_entropy_of_labels(data.labels, s['base']):.4g}"


def _mi_labels_note(data: Activations, s: Mapping[str, Any]) -> str:
    return f"k = {s['k']}; ≤ H(Y) = {_entropy_of_labels(data.labels, s['base']):.4g}"


def _entropy_note(data: Activations, s: Mapping[str, Any]) -> str:
    return f"k = {s['k']}, {s['metric']} balls; differential, depends on the scale of z"


def _silhouette_note(data: Activations, s: Mapping[str, Any]) -> str:
    return "" if s["sample_size"] is None else f"on {s['sample_size']} random samples"


def _gaussian_channel_rows(
    metric: Metric, data: Activations, options: EstimateOptions, *, device: Any = None
) -> list[MetricRow]:
    """I(X;Z), I(X;Z|Y) and I(Z;Y) from one call, each with its Monte Carlo standard error, its
    pairwise bounds and its ceiling; with ``ci``, the interval is value ± z·stderr. ``device``: where
    the call computes (docs/spec.md §8.5), not recorded in the settings."""
    kwargs = metric.keywords(options)
    settings = metric.settings(kwargs)
    unit = metric.unit(options)
    function = f"repcompress.{metric.function.__name__}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            placed = kwargs if device is None else {**kwargs, "device": device}
            r = metric.function(data.z, data.variances, labels=data.labels, **placed)
        except _METRIC_FAILURES as exc:
            return metric.failed(options, str(exc))
    messages = _messages(caught)
    draws = f"paired Monte Carlo, {r.n_draws} draw(s) per sample"
    floor = (
        f"{settings['min_variance']:g} × the mean variance per coordinate"
        if settings.get("floor") == "relative"
        else f"{settings['min_variance']:g}"
    )
    floored = f"; {r.n_floored} variances raised to the floor min_variance = {floor}" if r.n_floored else ""
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
    z_score = NormalDist().inv_cdf(0.5 + options.confidence / 2.0)
    rows = []
    for quantity, mi, stderr, lower, upper, ceiling, ceiling_name, extra in parts:
        what = draws if quantity != "I(Z;Y)" else "I(X;Z) − I(X;Z|Y), same draws"
        note = f"{what}; bounds [{lower:.4g}, {upper:.4g}]; ≤ {ceiling_name} = {ceiling:.4g}"
        low = high = interval = None
        if options.ci is not None:
            low, high = mi - z_score * stderr, mi + z_score * stderr
            interval = f"Monte Carlo standard error (normal), {100 * options.confidence:g} %"
        rows.append(
            MetricRow(
                metric=metric.name,
                quantity=quantity,
                value=mi,
                unit=unit,
                note=note + (floored if quantity == "I(X;Z)" else ""),
                stderr=stderr,
                low=low,
                high=high,
                interval=interval,
                lower_bound=lower,
                upper_bound=upper,
                function=function,
                settings=settings,
                extra=extra,
                warnings=messages,
            )
        )
    return rows


_SEED = {"seed": "random_state"}
_BASE = {"base": "base"}

#: The registry: metric name → :class:`Metric`.
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "cdnv",
            class_distance_normalized_variance,
            "class-distance normalised variance, mean over class pairs (Galanti et al. 2022); smaller = more collapsed",
        ),
        Metric(
            "nc1",
            neural_collapse,
            "NC1 = Tr(Σ_W Σ_B⁺)/C (Papyan et al. 2020); smaller = more collapsed",
            quantities=(Quantity(estimator=_neural_collapse_field("nc1")),),
        ),
        Metric(
            "nc2",
            neural_collapse,
            "NC2: equinorm, equiangularity and max-angle of the centred class means; 0 = simplex ETF",
            quantities=(
                Quantity("equinorm", _neural_collapse_field("nc2_equinorm")),
                Quantity("equiangular", _neural_collapse_field("nc2_equiangular")),
                Quantity("max-angle", _neural_collapse_field("nc2_max_angle")),
            ),
        ),
        Metric(
            "trace-ratio", trace_ratio, "tr S_W / tr S_B, within- over between-class scatter; smaller = more collapsed"
        ),
        Metric(
            "fisher-ratio",
            fisher_ratio,
            "tr(S_W⁻¹ S_B); larger = better separated (--ridge when S_W is singular)",
            options={"ridge": "ridge"},
        ),
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
            options={**_SEED, "silhouette_sample_size": "sample_size"},
            quantities=(Quantity(note=_silhouette_note),),
        ),
        Metric("twonn", twonn_dimension, "intrinsic dimension by TwoNN (Facco et al. 2017)", needs_labels=False),
        Metric(
            "effective-rank",
            effective_rank,
            "effective rank (Roy & Vetterli 2007) of z as given, not centred",
            needs_labels=False,
            quantities=(Quantity(note="of z as given (not centred)"),),
        ),
        Metric(
            "binned-entropy",
            binned_entropy,
            "H_bin(Z), plug-in entropy of the binned activation patterns (--n-bins)",
            information=True,
            needs_labels=False,
            options={**_BASE, "n_bins": "n_bins"},
            quantities=(Quantity("H_bin(Z)", note=_binned_entropy_note),),
        ),
        Metric(
            "binned-mi-labels",
            binned_mutual_info,
            "I(T;Y), plug-in mutual information of the binned patterns T and the labels: the information plane's "
            "I(T;Y) (--n-bins); I(X;T) = H_bin(Z) for a deterministic layer",
            information=True,
            options={**_BASE, "n_bins": "n_bins"},
            quantities=(Quantity("I(T;Y)", note=_binned_mi_labels_note),),
        ),
        Metric(
            "mi-labels",
            mutual_info_labels,
            "I(Z;Y) by k-NN (Ross 2014) (--k)",
            information=True,
            options={**_SEED, **_BASE, "k": "k"},
            quantities=(Quantity("I(Z;Y)", note=_mi_labels_note),),
        ),
        Metric(
            "entropy",
            entropy,
            "h(Z), Kozachenko–Leonenko differential entropy (--k); depends on the scale of z",
            information=True,
            needs_labels=False,
            options={**_SEED, **_BASE, "k": "k"},
            quantities=(Quantity("h(Z)", note=_entropy_note),),
        ),
        Metric(
            "gaussian-mi",
            gaussian_channel_mi,
            "I(X;Z), I(X;Z|Y), I(Z;Y) of the Gaussian channel Z|x_i ~ N(z_i, diag(variances_i)): paired Monte Carlo "
            "± stderr, Bhattacharyya/KL pairwise bounds (--n-draws, --min-variance); needs 'variances'",
            information=True,
            needs_variances=True,
            options={**_SEED, **_BASE, "n_draws": "n_draws", "min_variance": "min_variance"},
            quantities=(Quantity("I(X;Z)"), Quantity("I(X;Z|Y)"), Quantity("I(Z;Y)")),
            rows=_gaussian_channel_rows,
        ),
    )
}

#: The geometric metrics of the default set (``resolve_metrics(None, ...)``).
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
