"""Training-time tracking of information and geometry metrics per layer."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import metrics as _metrics
from .capture import capture

COLUMNS = ("epoch", "layer", "split", "metric", "value", "low", "high", "unit", "settings")


def _pandas() -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("CompressionTracker keeps a pandas DataFrame: pip install 'repcompress[analysis]'") from None
    return pd


class CompressionTracker:
    """Measures chosen metrics of chosen layers during training, into a tidy table.

    Call :meth:`step` from any training loop; every ``every``-th epoch it captures the layers
    (:func:`repcompress.torch.capture`) and computes the metrics of each
    (:func:`repcompress.metrics.compute_metrics`): Gaussian-channel layers
    (:class:`GaussianDropout`, :class:`GaussianEncoder`) are measured through their exact means
    and variances, every other layer through its activations. The table :attr:`frame` has one row
    per (epoch, layer, split, metric): ``value``, ``low``/``high`` (95 % interval where known),
    ``unit`` and the estimator ``settings`` used.

    Parameters
    ----------
    layers : names, modules or callables, or a dict ``{name: spec}`` (as for ``capture``).
    metrics : names from :data:`repcompress.metrics.METRICS` (``"gaussian-mi"``, ``"cdnv"``,
        ``"binned"``, ``"mi-labels"``, ``"silhouette"``, ...); ``"gaussian-mi"`` is computed only
        for Gaussian-channel layers.
    every : measure every ``every``-th epoch (epochs counted as the caller passes them).
    metric_options : ``{metric: {option: value}}`` passed to the metric's function.
    ci : resamples for a confidence interval of scalar metrics (0: none).
    base : unit of information metrics (e.g. 2 for bits).
    stochastic, n_passes, max_samples, device : passed to ``capture``.

    Example
    -------
    >>> tracker = CompressionTracker({"Z": "dropout"}, metrics=["gaussian-mi", "cdnv"], every=5)
    >>> for epoch in range(1, 51):
    ...     train_one_epoch(model)                                       # doctest: +SKIP
    ...     tracker.step(model, epoch, {"train": train_loader, "test": test_loader})  # doctest: +SKIP
    >>> tracker.plot_information_plane(path="plane.png")                 # doctest: +SKIP
    """

    def __init__(
        self,
        layers: Any,
        metrics: Sequence[str] | str = ("gaussian-mi", "cdnv"),
        every: int = 1,
        *,
        metric_options: Mapping[str, Mapping[str, Any]] | None = None,
        ci: int = 0,
        base: float = math.e,
        random_state: int = 0,
        stochastic: bool = False,
        n_passes: int = 1,
        max_samples: int | None = None,
        device: Any = None,
        progress: bool | None = False,
    ):
        if isinstance(every, bool) or not isinstance(every, numbers.Integral) or every < 1:
            raise ValueError(f"every: must be a positive integer, got {every!r}")
        self.metrics = [m.name for m in _metrics.resolve(metrics)]
        self.metric_options = {k: dict(v) for k, v in (metric_options or {}).items()}
        unknown = set(self.metric_options) - set(self.metrics)
        if unknown:
            raise ValueError(f"metric_options: given for metrics not tracked: {', '.join(sorted(unknown))}")
        self.layers = layers
        self.every = int(every)
        self.ci = int(ci)
        self.base = float(base)
        self.random_state = int(random_state)
        self.capture_options = {"stochastic": stochastic, "n_passes": n_passes, "max_samples": max_samples,
                                "device": device, "progress": progress}
        self._rows: list[dict] = []

    def due(self, epoch: int) -> bool:
        """Whether :meth:`step` measures at this epoch."""
        return epoch % self.every == 0

    def step(self, model: Any, epoch: int, data: Any, *, split: str = "train") -> Any:
        """Measures now if ``epoch`` is due; returns the new rows (a DataFrame, empty if not due).

        ``data``: a loader of ``(inputs, labels)`` batches, or a dict ``{split: loader}``. The
        metrics are computed on the data as captured (X uniform over these inputs).
        """
        pd = _pandas()
        if not self.due(epoch):
            return pd.DataFrame(columns=list(COLUMNS))
        splits = dict(data) if isinstance(data, Mapping) else {split: data}
        new: list[dict] = []
        for split_name, loader in splits.items():
            acts = capture(model, loader, self.layers, **self.capture_options)
            for layer in acts.names:
                new.extend(self._measure(acts, layer, epoch, split_name))
        self._rows.extend(new)
        return pd.DataFrame(new, columns=list(COLUMNS))

    def _measure(self, acts: Any, layer: str, epoch: int, split: str) -> list[dict]:
        channel = layer in acts.variances
        names = [m for m in self.metrics if channel or not _metrics.available()[m].needs_variances]
        if not names:
            return []
        z = acts.means[layer] if channel else acts[layer]
        variances = acts.variances[layer] if channel else None
        labels = acts.labels
        if acts.n_passes > 1 and channel:
            # Exact channel moments do not depend on the pass: measure one row per input.
            keep = np.unique(acts.sample_ids, return_index=True)[1]
            z, variances, labels = z[keep], variances[keep], labels[keep]
        options = {k: v for k, v in self.metric_options.items() if k in names}
        values = _metrics.compute_metrics(z, labels, names, variances=variances, options=options, ci=self.ci,
                                          seed=self.random_state + int(epoch), base=self.base)
        return [{"epoch": epoch, "layer": layer, "split": split, **v.as_dict()} for v in values]

    def record(self, epoch: int, metric: str, value: float, *, split: str = "train", layer: str = "",
               low: float = math.nan, high: float = math.nan, unit: str = "") -> None:
        """Adds a number of your own (loss, accuracy) to the table, e.g.
        ``tracker.record(epoch, "accuracy", acc, split="test")``."""
        self._rows.append({"epoch": epoch, "layer": layer, "split": split, "metric": metric, "value": float(value),
                           "low": float(low), "high": float(high), "unit": unit, "settings": ""})

    @property
    def frame(self) -> Any:
        """The tidy table: columns epoch, layer, split, metric, value, low, high, unit, settings."""
        return _pandas().DataFrame(self._rows, columns=list(COLUMNS))

    def to_csv(self, path: Any) -> Path:
        path = Path(path)
        self.frame.to_csv(path, index=False)
        return path

    def to_parquet(self, path: Any) -> Path:
        """Needs a parquet engine (pyarrow or fastparquet)."""
        path = Path(path)
        self.frame.to_parquet(path, index=False)
        return path

    def plot_information_plane(self, *, x: str = "I(X;Z)", y: str = "I(Z;Y)", split: str | None = "train",
                               ax: Any = None, path: Any = None) -> Any:
        """I(X;Z) against I(Z;Y) per layer, coloured by epoch (:func:`repcompress.plots.information_plane`)."""
        from ..plots import information_plane

        return information_plane(self.frame, x=x, y=y, split=split, ax=ax, path=path)

    def plot_geometry_vs_information(self, *, geometry: str = "cdnv", information: str = "I(X;Z)",
                                     split: str | None = "train", ax: Any = None, path: Any = None) -> Any:
        """CDNV (or another geometric metric) against I(X;Z), coloured by epoch."""
        from ..plots import geometry_vs_information

        return geometry_vs_information(self.frame, geometry=geometry, information=information, split=split, ax=ax,
                                       path=path)

    def plot_training(self, *, metrics: Iterable[str] | None = None, path: Any = None) -> Any:
        """Every metric against epoch, one panel each (:func:`repcompress.plots.training_curves`)."""
        from ..plots import training_curves

        return training_curves(self.frame, metrics=None if metrics is None else list(metrics), path=path)
