"""Figures for tidy metric tables (``epoch, layer, split, metric, value, low, high``), as kept by
:class:`repcompress.torch.CompressionTracker`, and for tables of runs.

Needs matplotlib (``pip install "repcompress[plot]"``). Every function draws into ``ax`` (or a
new figure), returns the figure, and writes it to ``path`` when given.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._validation import check_bool


def _pyplot() -> Any:
    # The backend is left to matplotlib: inline in notebooks, Agg on a machine without a display.
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'repcompress[plot]'") from None
    return plt


def _figure(ax: Any, ncols: int = 1, size: tuple[float, float] = (5.0, 4.0)) -> tuple[Any, Any]:
    plt = _pyplot()
    if ax is not None:
        return ax.figure, ax
    fig, axes = plt.subplots(1, ncols, figsize=(size[0] * ncols, size[1]), squeeze=False)
    return fig, axes[0, 0] if ncols == 1 else axes[0]


def _finish(fig: Any, path: Any) -> Any:
    if path is not None:
        fig.tight_layout()
        fig.savefig(Path(path), dpi=120)
    return fig


def wide(frame: Any, metrics: Sequence[str], *, split: str | None = None) -> Any:
    """One row per (epoch, layer[, split]) and one column per metric, from the tidy table."""
    rows = frame[frame.metric.isin(list(metrics))]
    if split is not None:
        rows = rows[rows.split == split]
    missing = [m for m in metrics if m not in set(rows.metric)]
    if missing:
        known = ", ".join(sorted(set(frame.metric)))
        raise ValueError(f"metrics: no values for {', '.join(map(repr, missing))} (the table has: {known})")
    keys = [k for k in ("epoch", "layer", "split") if k in rows.columns]
    return rows.pivot_table(index=keys, columns="metric", values="value", aggfunc="mean").reset_index()


def information_plane(
    frame: Any, *, x: str = "I(X;Z)", y: str = "I(Z;Y)", split: str | None = "train", ax: Any = None, path: Any = None
) -> Any:
    """The information plane: ``x`` against ``y`` per layer, one point per epoch, coloured by
    epoch (a line joins each layer's trajectory)."""
    table = wide(frame, [x, y], split=split)
    fig, ax = _figure(ax)
    markers = "osD^v<>p*h"
    points = None
    for i, (layer, part) in enumerate(table.groupby("layer", sort=False)):
        part = part.sort_values("epoch")
        ax.plot(part[x], part[y], color="0.7", lw=1, zorder=1)
        points = ax.scatter(
            part[x],
            part[y],
            c=part["epoch"],
            cmap="viridis",
            marker=markers[i % len(markers)],
            label=str(layer),
            zorder=2,
            edgecolors="k",
            linewidths=0.3,
        )
    if points is not None:
        fig.colorbar(points, ax=ax, label="epoch")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title("information plane" + (f" ({split})" if split else ""))
    if table.layer.nunique() > 1:
        ax.legend(title="layer", fontsize="small")
    return _finish(fig, path)


def geometry_vs_information(
    frame: Any,
    *,
    geometry: str = "cdnv",
    information: str = "I(X;Z)",
    split: str | None = "train",
    ax: Any = None,
    path: Any = None,
    log_geometry: bool = True,
) -> Any:
    """A geometric metric (default CDNV) against an information quantity, per layer, coloured by
    epoch: does lower information go with tighter classes?"""
    log_geometry = check_bool(log_geometry, "log_geometry")
    table = wide(frame, [geometry, information], split=split)
    fig, ax = _figure(ax)
    points = None
    for layer, part in table.groupby("layer", sort=False):
        points = ax.scatter(
            part[information],
            part[geometry],
            c=part["epoch"],
            cmap="viridis",
            label=str(layer),
            edgecolors="k",
            linewidths=0.3,
        )
    if points is not None:
        fig.colorbar(points, ax=ax, label="epoch")
    if log_geometry and (table[geometry] > 0).all():
        ax.set_yscale("log")
    ax.set_xlabel(information)
    ax.set_ylabel(geometry)
    ax.set_title(f"{geometry} vs {information}")
    return _finish(fig, path)


def training_curves(frame: Any, *, metrics: Sequence[str] | None = None, path: Any = None) -> Any:
    """Every metric against epoch, one panel per metric, one line per (layer, split), with the
    confidence band where ``low``/``high`` are known."""
    plt = _pyplot()
    names = list(dict.fromkeys(frame.metric)) if metrics is None else list(metrics)
    if not names:
        raise ValueError("frame: no metrics to plot")
    cols = min(3, len(names))
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):  # the grid may have spare axes
        part = frame[frame.metric == name]
        if part.empty:
            raise ValueError(f"metrics: no values for {name!r}")
        for (layer, split), line in part.groupby(["layer", "split"], sort=False):
            line = line.groupby("epoch", as_index=False)[["value", "low", "high"]].mean().sort_values("epoch")
            label = f"{layer} ({split})" if layer else str(split)
            ax.plot(line.epoch, line.value, marker="o", ms=3, label=label)
            if line.low.notna().any():
                ax.fill_between(line.epoch, line.low, line.high, alpha=0.2)
        ax.set_title(name)
        ax.set_xlabel("epoch")
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize="small")
    return _finish(fig, path)


def scatter_by(
    x: Any,
    y: Any,
    c: Any,
    *,
    xlabel: str,
    ylabel: str,
    clabel: str,
    ax: Any = None,
    path: Any = None,
    title: str | None = None,
    log_y: bool = False,
    cmap: str = "coolwarm",
) -> Any:
    """A scatter of runs coloured by a sweep parameter (λ, β)."""
    log_y = check_bool(log_y, "log_y")
    fig, ax = _figure(ax)
    points = ax.scatter(np.asarray(x), np.asarray(y), c=np.asarray(c), cmap=cmap, edgecolors="k", linewidths=0.3)
    fig.colorbar(points, ax=ax, label=clabel)
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return _finish(fig, path)


__all__ = ["geometry_vs_information", "information_plane", "scatter_by", "training_curves", "wide"]
