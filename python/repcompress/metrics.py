"""Named metrics of one representation: the vocabulary of :class:`repcompress.torch.CompressionTracker`
and ``repcompress estimate``.

A representation is ``z`` (N, d), integer ``labels`` (N,) and, for a Gaussian channel
Z | x_i ~ N(z_i, diag v_i) (SPEC §3), optional per-sample ``variances`` (N, d). Each metric maps
it to one or more :class:`MetricValue` rows (a metric such as ``gaussian-mi`` yields several
quantities); ``low``/``high`` are a 95 % interval where one is known (Monte Carlo standard error,
or resampling with ``ci=n``), else NaN. Settings that change a value are recorded in
``settings``.

>>> import numpy as np, repcompress.metrics as m
>>> rng = np.random.default_rng(0)
>>> labels = np.repeat(np.arange(3), 50); z = rng.standard_normal((150, 4)) + 3 * labels[:, None]
>>> [r.metric for r in m.compute_metrics(z, labels, ["cdnv", "binned"])]
['cdnv', 'H(T)', 'I(T;Y)']
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

_Z95 = NormalDist().inv_cdf(0.975)


@dataclass(frozen=True)
class MetricValue:
    """One number: ``metric`` names the quantity (``"I(X;Z|Y)"``, ``"cdnv"``, ...)."""

    metric: str
    value: float
    low: float = math.nan
    high: float = math.nan
    unit: str = ""
    settings: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # "information" or "geometry"
    description: str
    compute: Callable[..., list[MetricValue]]
    needs_variances: bool = False
    defaults: dict = field(default_factory=dict)


def _unit(base: float) -> str:
    if base == math.e:
        return "nats"
    if base == 2:
        return "bits"
    return f"log base {base:g}"


def _settings(options: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(options.items()))


def _scalar(fn: Callable[..., float], name: str, *, uses_labels: bool = True) -> Callable[..., list[MetricValue]]:
    """A metric that is one call of a library function f(z, labels, **options) -> float; ``ci``
    resamples it with :func:`repcompress.confidence_interval` (the function's own scheme)."""

    def compute(z: np.ndarray, labels: np.ndarray, variances: Any, options: dict, ci: int, seed: int,
                base: float) -> list[MetricValue]:
        from .uncertainty import confidence_interval

        args = (z, labels) if uses_labels else (z,)
        unit = _unit(base) if "base" in options else ""
        if ci:
            res = confidence_interval(fn, *args, n_resamples=ci, random_state=seed, progress=False, **options)
            return [MetricValue(name, res.value, res.low, res.high, unit, _settings({**options, "ci": res.method}))]
        return [MetricValue(name, float(fn(*args, **options)), unit=unit, settings=_settings(options))]

    return compute


def _gaussian_mi(z: np.ndarray, labels: np.ndarray, variances: Any, options: dict, ci: int, seed: int,
                 base: float) -> list[MetricValue]:
    from .gaussian_channel import gaussian_channel_mi

    res = gaussian_channel_mi(z, variances, labels=labels, random_state=seed, base=base, **options)
    unit = _unit(base)
    settings = _settings({**options, "n_floored": res.n_floored})
    rows = []
    for name, q in (("I(X;Z)", res), ("I(X;Z|Y)", res.given_labels), ("I(Z;Y)", res.labels)):
        rows.append(MetricValue(name, q.mi, q.mi - _Z95 * q.stderr, q.mi + _Z95 * q.stderr, unit, settings))
        rows.append(MetricValue(f"{name} lower bound", q.lower, unit=unit, settings=settings))
        rows.append(MetricValue(f"{name} upper bound", q.upper, unit=unit, settings=settings))
    return rows


def _binned(z: np.ndarray, labels: np.ndarray, variances: Any, options: dict, ci: int, seed: int,
            base: float) -> list[MetricValue]:
    from .binning import binning_information_plane

    point = binning_information_plane(z, labels, base=base, **options)
    settings = _settings({**options, "n_patterns": point.n_patterns})
    unit = _unit(base)
    # Without sample ids I(X;T) = H(T): the binned map is deterministic.
    return [MetricValue("H(T)", point.H_T, unit=unit, settings=settings),
            MetricValue("I(T;Y)", point.I_TY, unit=unit, settings=settings)]


def _nc1(z: np.ndarray, labels: np.ndarray, variances: Any, options: dict, ci: int, seed: int,
         base: float) -> list[MetricValue]:
    from .geometry import neural_collapse

    nc = neural_collapse(z, labels)
    return [MetricValue("nc1", nc.nc1), MetricValue("nc2 equinorm", nc.nc2_equinorm),
            MetricValue("nc2 equiangular", nc.nc2_equiangular), MetricValue("nc2 max-angle", nc.nc2_max_angle)]


def _registry() -> dict[str, Metric]:
    from . import geometry as g
    from .binning import binned_entropy
    from .knn_estimators import entropy, mutual_info_labels

    metrics = [
        Metric("gaussian-mi", "information",
               "I(X;Z), I(X;Z|Y), I(Z;Y) through the Gaussian channel Z|x ~ N(z, diag variances), Monte Carlo "
               "± 95 % and pairwise bounds (gaussian_channel_mi)", _gaussian_mi, needs_variances=True,
               defaults={"n_draws": 1, "min_variance": 1e-12}),
        Metric("mi-labels", "information", "I(Z;Y), k-NN (Ross) estimate (mutual_info_labels)",
               _scalar(mutual_info_labels, "I(Z;Y) knn"), defaults={"k": 3}),
        Metric("binned", "information", "H(T) = I(X;T) and I(T;Y) of the binned representation "
               "(binning_information_plane)", _binned, defaults={"n_bins": 30}),
        Metric("entropy", "information", "differential entropy h(Z), Kozachenko–Leonenko (entropy)",
               _scalar(entropy, "h(Z)", uses_labels=False), defaults={"k": 3}),
        Metric("cdnv", "geometry", "class-distance normalised variance (Galanti et al. 2022)",
               _scalar(g.class_distance_normalized_variance, "cdnv")),
        Metric("nc1", "geometry", "neural collapse NC1 = Tr(Σ_W Σ_B⁺)/C and NC2 (Papyan et al. 2020)", _nc1),
        Metric("trace-ratio", "geometry", "tr(S_W)/tr(S_B)", _scalar(g.trace_ratio, "trace-ratio")),
        Metric("fisher-ratio", "geometry", "tr(S_W⁻¹ S_B)", _scalar(g.fisher_ratio, "fisher-ratio")),
        Metric("calinski-harabasz", "geometry", "Calinski–Harabasz index",
               _scalar(g.calinski_harabasz, "calinski-harabasz")),
        Metric("davies-bouldin", "geometry", "Davies–Bouldin index", _scalar(g.davies_bouldin, "davies-bouldin")),
        Metric("silhouette", "geometry", "mean silhouette (Euclidean, exact)", _scalar(g.silhouette, "silhouette")),
        Metric("twonn", "geometry", "intrinsic dimension, TwoNN (Facco et al. 2017)",
               _scalar(g.twonn_dimension, "twonn", uses_labels=False)),
        Metric("effective-rank", "geometry", "effective rank (Roy & Vetterli 2007)",
               _scalar(g.effective_rank, "effective-rank", uses_labels=False)),
        Metric("binned-entropy", "geometry", "binned entropy H_bin(Z) (binned_entropy)",
               _scalar(binned_entropy, "H_bin(Z)", uses_labels=False), defaults={"n_bins": 30}),
    ]
    return {m.name: m for m in metrics}


METRICS: dict[str, Metric] = {}


def available() -> dict[str, Metric]:
    """Every metric by name."""
    if not METRICS:
        METRICS.update(_registry())
    return METRICS


def resolve(names: Sequence[str] | str) -> list[Metric]:
    """Metrics by name (``"all"`` for every one), with a clear error for unknown names."""
    table = available()
    if isinstance(names, str):
        names = list(table) if names == "all" else [names]
    out = []
    for name in names:
        if name not in table:
            raise ValueError(f"metrics: unknown metric {name!r}; choose from {', '.join(table)}")
        if table[name] not in out:
            out.append(table[name])
    if not out:
        raise ValueError("metrics: no metric chosen")
    return out


def compute_metrics(
    z: Any,
    labels: Any,
    metrics: Sequence[str] | str,
    *,
    variances: Any = None,
    options: dict[str, dict] | None = None,
    ci: int = 0,
    seed: int = 0,
    base: float = math.e,
) -> list[MetricValue]:
    """Every chosen metric of one representation.

    ``options`` maps a metric name to keyword arguments of its function (e.g.
    ``{"gaussian-mi": {"n_draws": 4}, "binned": {"n_bins": 10}}``); ``ci`` > 0 resamples scalar
    metrics that many times for a 95 % interval; ``base`` sets the unit of information metrics.
    A metric that needs ``variances`` raises when they are missing.
    """
    options = dict(options or {})
    chosen = resolve(metrics)
    unknown = set(options) - {m.name for m in chosen}
    if unknown:
        raise ValueError(f"options: given for metrics not chosen: {', '.join(sorted(unknown))}")
    z = np.asarray(z)
    labels = np.asarray(labels)
    rows: list[MetricValue] = []
    for metric in chosen:
        if metric.needs_variances and variances is None:
            raise ValueError(
                f"metrics: {metric.name!r} needs the variances of the Gaussian channel (a GaussianDropout or "
                "GaussianEncoder layer, or `variances` in the file)"
            )
        opts = {**metric.defaults, **options.get(metric.name, {})}
        if metric.kind == "information" and metric.compute is not _gaussian_mi and metric.compute is not _binned:
            opts.setdefault("base", base)
        rows.extend(metric.compute(z, labels, variances, opts, int(ci), int(seed), float(base)))
    return rows


__all__ = ["METRICS", "Metric", "MetricValue", "available", "compute_metrics", "resolve"]
