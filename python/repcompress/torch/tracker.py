"""Training-time tracking of information and geometry metrics per layer."""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import as_int, check_bool, check_optional_bool, shown
from ..estimate_options import EstimateOptions
from ..metrics import METRICS, resolve_metrics
from ..report import MetricRow
from ..tidy import COLUMNS, measure_arrays, metric_records
from .capture import capture, check_capture_options

# Options of repcompress.estimate.estimate_arrays a tracker passes on: those of the metric
# functions, and the level of its intervals (ci, seed, base and progress are its own parameters).
ESTIMATE_OPTIONS = (*EstimateOptions.metric_options(), "confidence")


def _pandas() -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("CompressionTracker keeps a pandas DataFrame: pip install 'repcompress[analysis]'") from None
    return pd


class CompressionTracker:
    """Measures chosen metrics of chosen layers during training, into a tidy table.

    Call :meth:`step` from any training loop; every ``every``-th epoch it captures the layers
    (:func:`repcompress.torch.capture`) and computes the metrics of each with
    :func:`repcompress.estimate.estimate_arrays` (the metrics of ``repcompress estimate``):
    Gaussian-channel layers (:class:`GaussianDropout`, :class:`GaussianEncoder`) are measured
    through their exact means and variances, every other layer through its activations. The table
    :attr:`frame` has one row per (epoch, layer, split, metric): ``value``, ``low``/``high`` (the
    interval, with ``ci``; for ``gaussian-mi`` the Monte Carlo interval), ``stderr``,
    ``lower_bound``/``upper_bound`` (``gaussian-mi``'s pairwise bounds), ``unit``, ``source`` (the
    metric asked for), the estimator ``settings`` (JSON) and ``error`` (a metric that failed on
    these data gives NaN and a warning, and training goes on: a split with a single class fails the
    metrics that need labels, activations with NaN or inf every metric of that layer and split, and
    the other metrics, layers and splits keep their rows; docs/spec.md §6.4). Every option is checked
    when the tracker is made.

    ``metric`` is the quantity: ``"cdnv"``, ``"I(X;Z)"``, ``"I(X;Z|Y)"``, ``"I(Z;Y)"``
    (``gaussian-mi``), ``"H_bin(Z)"`` (``binned-entropy``), ``"I(T;Y)"`` (``binned-mi-labels``),
    ``"nc2 equinorm"``, ...; when two metrics give the same quantity (``mi-labels`` and
    ``gaussian-mi`` both give I(Z;Y)) the other one is prefixed with its metric name.

    Parameters
    ----------
    layers : names, modules or callables, or a dict ``{name: spec}`` (as for ``capture``).
    metrics : names from :data:`repcompress.metrics.METRICS`; ``"gaussian-mi"`` is computed only
        for Gaussian-channel layers, the others for every layer.
    every : measure every ``every``-th epoch (epochs counted as the caller passes them).
    ci : resamples for confidence intervals (None: none); ``seed`` + epoch seeds each step.
    base : unit of information metrics (e.g. 2 for bits).
    estimate_options : ``k``, ``n_bins``, ``n_draws``, ``min_variance``, ``ridge``,
        ``silhouette_sample_size``, ``confidence`` for :func:`repcompress.estimate.estimate_arrays`.
    stochastic, n_passes, max_samples, device, progress : passed to ``capture``.
    metrics_device : where the metrics compute (docs/spec.md §8.5). None (default): on the device
        the batches run on when it is not the CPU — the model's device unless ``device`` says
        otherwise — with the activations kept there (``capture(..., keep_on_device=True)``), else on
        the Rust core as before. ``"cpu"``, ``"cuda"``, … or a ``torch.device``: the torch kernels
        there (``"cpu"`` runs them on CPU torch). Metrics whose functions take no ``device=`` (the
        binned ones, Fisher ratio, Calinski–Harabasz, Davies–Bouldin, and any metric with ``ci``,
        whose resampling works on numpy arrays) get a numpy copy of the activations, made once per
        layer and split. The table is the same either way (to ≤ 1e-10 relative); its settings do
        not record the device. With an
        ``executor`` the activations travel to it as numpy arrays and ``metrics_device`` must be None.
    executor : None (measure in :meth:`step`), or a ``concurrent.futures`` executor or a
        ``distributed.Client``: :meth:`step` captures the layers and submits their metrics to it,
        returning at once, so that training does not wait for them; :attr:`frame` holds the
        measurements that have finished (in the order they were made), :meth:`wait` blocks for the
        rest. The rows are those a tracker without executor gives; an exception of the executor
        itself (a worker that died) is raised by :attr:`frame` or :meth:`wait`. Prefer processes
        (``ProcessPoolExecutor``, Dask workers with one thread): Python's warning capture, which
        keeps each row's warnings, is process-wide, so measurements running in threads of this
        process may lose their warnings or take each other's.

    Examples
    --------
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
        ci: int | None = None,
        base: float = math.e,
        seed: int = 0,
        estimate_options: Mapping[str, Any] | None = None,
        stochastic: bool = False,
        n_passes: int = 1,
        max_samples: int | None = None,
        device: Any = None,
        progress: bool | None = False,
        metrics_device: Any = None,
        executor: Any = None,
    ):
        if not _positive_integer(every):
            raise ValueError(f"every: must be a positive integer, got {shown(every)}")
        self.metrics = resolve_metrics(metrics, has_variances=True)
        self.estimate_options = dict(estimate_options or {})
        unknown = set(self.estimate_options) - set(ESTIMATE_OPTIONS)
        if unknown:
            raise ValueError(
                f"estimate_options: unknown {', '.join(sorted(unknown))}; "
                f"expected some of {', '.join(ESTIMATE_OPTIONS)}"
            )
        # Every option checked now, not at the first measurement epochs into training: the estimate's
        # (InputError naming it) and the capture's.
        options = EstimateOptions(ci=ci, seed=seed, base=base, **self.estimate_options)
        stochastic, progress = check_bool(stochastic, "stochastic"), check_optional_bool(progress, "progress")
        check_capture_options(n_passes, stochastic, max_samples, progress)
        self.layers = layers
        self.every = int(every)
        self.ci = options.ci
        self.base = options.base
        self.seed = options.seed
        self.capture_options = {
            "stochastic": stochastic,
            "n_passes": n_passes,
            "max_samples": max_samples,
            "device": device,
            "progress": progress,
        }
        if executor is not None and not callable(getattr(executor, "submit", None)):
            raise TypeError(
                "executor: expected a concurrent.futures executor or a distributed.Client, "
                f"got {type(executor).__name__}"
            )
        self.executor = executor
        if metrics_device is not None and executor is not None:
            raise ValueError(
                "metrics_device: the metrics of an executor run where it runs them, on numpy copies; "
                "give metrics_device or executor, not both"
            )
        self.metrics_device = metrics_device
        if metrics_device is not None:
            from .._torch_backend import resolve_device

            resolve_device({}, metrics_device)  # checked now: a ValueError naming device
        # Finished rows (lists of records) and measurements still running (_Pending), in order.
        self._entries: list[list[dict] | _Pending] = []
        self._warned: set = set()

    def due(self, epoch: int) -> bool:
        """Whether :meth:`step` measures at this epoch."""
        return as_int(epoch, "epoch", minimum=0) % self.every == 0

    def step(self, model: Any, epoch: int, data: Any, *, split: str = "train") -> Any:
        """Measures now if ``epoch`` is due; returns the new rows (a DataFrame, empty if not due, and
        empty with an ``executor``: the rows then come to :attr:`frame` when computed).

        ``data``: a loader of ``(inputs, labels)`` batches, or a dict ``{split: loader}``. The
        metrics are computed on the data as captured (X uniform over these inputs).
        """
        pd = _pandas()
        if not self.due(epoch):
            return pd.DataFrame(columns=list(COLUMNS))
        splits = dict(data) if isinstance(data, Mapping) else {split: data}
        new: list[dict] = []
        place = self._metrics_place(model)
        for split_name, loader in splits.items():
            acts = capture(model, loader, self.layers, keep_on_device=place is not None, **self.capture_options)
            for layer in acts.names:
                measured = self._measure(acts, layer, epoch, split_name, place)
                if isinstance(measured, _Pending):
                    self._entries.append(measured)
                else:
                    self._entries.append(measured)
                    new.extend(measured)
        return pd.DataFrame(new, columns=list(COLUMNS))

    def _metrics_place(self, model: Any) -> Any:
        """The torch.device the metrics compute on, or None for the Rust core (see ``metrics_device``)."""
        import torch

        from .._torch_backend import resolve_device
        from .capture import _model_device

        if self.executor is not None:  # the activations travel to the executor as numpy arrays
            return None
        if self.metrics_device is not None:
            return resolve_device({}, self.metrics_device)
        run = self.capture_options["device"]
        place = _model_device(model) if run is None else torch.device(run)
        return None if place.type == "cpu" else place

    def _measure(self, acts: Any, layer: str, epoch: int, split: str, place: Any = None) -> list[dict] | _Pending:
        channel = layer in acts.variances
        names = [m for m in self.metrics if channel or not METRICS[m].needs_variances]
        if not names:
            return []
        z = acts.means[layer] if channel else acts[layer]
        variances = acts.variances[layer] if channel else None
        labels = acts.labels
        if acts.n_passes > 1 and variances is not None:
            # Exact channel moments do not depend on the pass: measure one row per input.
            keep = np.unique(acts.sample_ids, return_index=True)[1]
            if place is not None:
                import torch

                rows = torch.as_tensor(keep, device=z.device)
                z, variances, labels = z[rows], variances[rows], labels[keep]
            else:
                z, variances, labels = z[keep], variances[keep], labels[keep]
        options = EstimateOptions(
            ci=self.ci, seed=self.seed + int(epoch), base=self.base, progress=False, **self.estimate_options
        )
        # What estimate_arrays computes, but data a metric cannot measure (a split with one class,
        # activations that overflowed to NaN) fail that metric's rows, not the step: the other
        # metrics, layers and splits keep their rows (docs/spec.md §6.4).
        if self.executor is not None:
            future = self.executor.submit(measure_arrays, z, labels, variances, names, options)
            return _Pending(future, epoch, layer, split)
        return self._records(measure_arrays(z, labels, variances, names, options, device=place), epoch, layer, split)

    def _records(self, rows: list[MetricRow], epoch: int, layer: str, split: str) -> list[dict]:
        """The table's records of one measurement, warning once per layer, split and quantity that failed."""
        for row in rows:
            if row.error is not None and (layer, split, row.label) not in self._warned:
                self._warned.add((layer, split, row.label))
                warnings.warn(
                    f"CompressionTracker: {row.label} of layer {layer!r} failed at epoch {epoch} on split {split!r}: "
                    f"{row.error}",
                    RuntimeWarning,
                    stacklevel=4,
                )
        return metric_records(rows, epoch=epoch, layer=layer, split=split)

    def record(
        self,
        epoch: int,
        metric: str,
        value: float,
        *,
        split: str = "train",
        layer: str = "",
        low: float = math.nan,
        high: float = math.nan,
        unit: str = "",
    ) -> None:
        """Adds a number of your own (loss, accuracy, a bound) to the table, e.g.
        ``tracker.record(epoch, "accuracy", acc, split="test")``; ``value``, ``low`` and ``high`` may
        be numbers or one-element tensors."""
        values = {name: _number(v, name) for name, v in (("value", value), ("low", low), ("high", high))}
        record = [
            {
                "epoch": epoch,
                "layer": layer,
                "split": split,
                "metric": metric,
                **values,
                "stderr": math.nan,
                "lower_bound": math.nan,
                "upper_bound": math.nan,
                "unit": unit,
                "source": "record",
                "settings": "",
                "error": "",
            }
        ]
        self._entries.append(record)

    def _gather(self, block: bool) -> list[dict]:
        """The finished records in order; measurements submitted to the executor that have finished
        (or all of them, with ``block``) become records, with their warnings, in this thread."""
        rows: list[dict] = []
        for index, entry in enumerate(self._entries):
            if isinstance(entry, _Pending):
                if not (block or entry.future.done()):
                    continue
                entry = self._records(entry.future.result(), entry.epoch, entry.layer, entry.split)
                self._entries[index] = entry
            rows.extend(entry)
        return rows

    @property
    def frame(self) -> Any:
        """The tidy table, one row per (epoch, layer, split, metric); columns as ``COLUMNS``.
        With an ``executor``: the measurements that have finished."""
        return _pandas().DataFrame(self._gather(block=False), columns=list(COLUMNS))

    def wait(self) -> Any:
        """Waits for every measurement submitted to the ``executor``; returns :attr:`frame`."""
        return _pandas().DataFrame(self._gather(block=True), columns=list(COLUMNS))

    def to_csv(self, path: Any) -> Path:
        path = Path(path)
        self.frame.to_csv(path, index=False)
        return path

    def to_parquet(self, path: Any) -> Path:
        """Needs a parquet engine (pyarrow or fastparquet)."""
        path = Path(path)
        self.frame.to_parquet(path, index=False)
        return path

    def plot_information_plane(
        self, *, x: str = "I(X;Z)", y: str = "I(Z;Y)", split: str | None = "train", ax: Any = None, path: Any = None
    ) -> Any:
        """I(X;Z) against I(Z;Y) per layer, coloured by epoch (:func:`repcompress.plots.information_plane`);
        for a binned plane: ``x="H_bin(Z)", y="I(T;Y)"``."""
        from ..plots import information_plane

        return information_plane(self.frame, x=x, y=y, split=split, ax=ax, path=path)

    def plot_geometry_vs_information(
        self,
        *,
        geometry: str = "cdnv",
        information: str = "I(X;Z)",
        split: str | None = "train",
        ax: Any = None,
        path: Any = None,
    ) -> Any:
        """CDNV (or another geometric metric) against I(X;Z), coloured by epoch."""
        from ..plots import geometry_vs_information

        return geometry_vs_information(
            self.frame, geometry=geometry, information=information, split=split, ax=ax, path=path
        )

    def plot_training(self, *, metrics: Iterable[str] | None = None, path: Any = None) -> Any:
        """Every metric against epoch, one panel each (:func:`repcompress.plots.training_curves`)."""
        from ..plots import training_curves

        return training_curves(self.frame, metrics=None if metrics is None else list(metrics), path=path)


def _number(value: Any, name: str) -> float:
    """``float(value)`` (a number, a numpy scalar, a one-element tensor), with the errors naming it."""
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise TypeError(f"{name}: must be a number, got {type(value).__name__}")
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"{name}: must be a finite number, got {shown(value)} (beyond the float64 range)") from None
    except (TypeError, ValueError, RuntimeError) as exc:  # RuntimeError: a tensor of several elements
        raise TypeError(f"{name}: must be a number, got {type(value).__name__} ({exc})") from None


def _positive_integer(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 1


class _Pending:
    """A measurement submitted to the executor: its future (of a list of MetricRow) and where it was made."""

    def __init__(self, future: Any, epoch: int, layer: str, split: str):
        self.future, self.epoch, self.layer, self.split = future, epoch, layer, split
