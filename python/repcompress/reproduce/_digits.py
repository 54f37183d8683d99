"""What the two digits reproductions share: data, training loop, run table, correlations, report.

Data: scikit-learn's bundled ``load_digits`` (1797 8×8 images, 10 classes; no download), pixel
values scaled to [0, 1], a stratified 70/30 train/test split fixed across runs. Measurements of
the representation are made on the training inputs (X uniform over them, as in the paper), with
the network's noise as the only randomness of Z | x.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..cli import arguments


def require_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ImportError(
            "this reproduction trains networks and needs PyTorch: pip install 'repcompress[torch]'"
        ) from None
    return torch


def require_plotting() -> None:
    try:
        import matplotlib  # noqa: F401
        import pandas  # noqa: F401
        import scipy  # noqa: F401
    except ImportError:
        raise ImportError(
            "the reproduction's tables and figures need pandas, scipy and matplotlib: "
            "pip install 'repcompress[torch,analysis,plot]' (or pass --no-plots for CSV only, still needing "
            "pandas/scipy)"
        ) from None


@dataclass
class Digits:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digits_split(seed: int = 0) -> Digits:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, stratify=y, random_state=seed)
    return Digits(x_tr, y_tr.astype(np.int64), x_te, y_te.astype(np.int64))


class Batches:
    """(x, y) mini-batches of in-memory tensors, reshuffled each epoch when ``shuffle`` (a
    DataLoader over a TensorDataset does the same per-index, several times slower for tiny MLPs)."""

    def __init__(self, x: Any, y: Any, batch_size: int, *, shuffle: bool = False, seed: int = 0):
        torch = require_torch()
        self.x, self.y = torch.as_tensor(x), torch.as_tensor(y)
        self.batch_size = int(batch_size)
        self.generator = torch.Generator().manual_seed(seed) if shuffle else None

    def __len__(self) -> int:
        return -(-self.y.shape[0] // self.batch_size)

    def __iter__(self) -> Any:
        torch = require_torch()
        n = self.y.shape[0]
        order = torch.randperm(n, generator=self.generator) if self.generator is not None else None
        for start in range(0, n, self.batch_size):
            if order is None:
                yield self.x[start : start + self.batch_size], self.y[start : start + self.batch_size]
            else:
                rows = order[start : start + self.batch_size]
                yield self.x[rows], self.y[rows]


def loaders(data: Digits, batch_size: int, seed: int) -> tuple[Batches, Batches, Batches]:
    """(shuffled training batches, ordered training batches for measurement, test batches)."""
    return (
        Batches(data.x_train, data.y_train, batch_size, shuffle=True, seed=seed),
        Batches(data.x_train, data.y_train, 512),
        Batches(data.x_test, data.y_test, 512),
    )


def accuracy(model: Any, loader: Any) -> float:
    """Accuracy of the eval-mode network (noise off)."""
    torch = require_torch()
    was = model.training
    model.eval()
    hits = total = 0
    with torch.no_grad():
        for x, y in loader:
            hits += int((model(x).argmax(1) == y).sum())
            total += int(y.shape[0])
    model.train(was)
    return hits / total


def pca_binned_entropy(z: np.ndarray, n_components: int = 5, n_bins: int = 10) -> float:
    """H_bin of the top principal components of z (nats): the paper's earlier geometric proxy.
    All principal components use one common bin width (the binned estimator's ``range="layer"``)."""
    import repcompress as rc

    centred = z.astype(np.float64) - z.mean(axis=0)
    _, vectors = np.linalg.eigh(centred.T @ centred)  # ascending eigenvalues
    projected = centred @ vectors[:, ::-1][:, : min(n_components, z.shape[1])]
    return rc.binned_entropy(projected, n_bins=n_bins)


# n_excluded_constant: rows left out because a column did not move within the setup (docs/spec.md §5.6).
CORRELATION_COLUMNS = ("x", "y", "r", "p", "n", "n_excluded_constant")


def correlation_outputs(runs: Any, columns: Sequence[str], out: Path, stem: str) -> Any:
    """The paper's normalized-rank correlation table (one setup) as CSV and markdown."""
    from ..analysis import rank_correlations

    table = rank_correlations(runs, list(columns), setup="setup")
    table.to_csv(out / f"{stem}_correlations.csv", index=False)
    (out / f"{stem}_correlations.md").write_text(markdown_table(table, CORRELATION_COLUMNS) + "\n")
    return table


def markdown_table(frame: Any, columns: Sequence[str], floatfmt: str = ".3g") -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, (float, np.floating)):
            return "nan" if math.isnan(v) else format(float(v), floatfmt)
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(fmt(row[c]) for c in columns) + " |")
    return "\n".join(lines)


def pick(table: Any, x: str, y: str) -> Any:
    """The row of a correlation table for the unordered pair (x, y)."""
    hit = table[((table.x == x) & (table.y == y)) | ((table.x == y) & (table.y == x))]
    return hit.iloc[0]


def add_common_arguments(parser: argparse.ArgumentParser, default_epochs: int) -> None:
    parser.add_argument("--out", type=arguments.output_directory, required=True, help="output directory (created)")
    parser.add_argument("--quick", action="store_true", help="a smaller sweep for a smoke run (well under 2 minutes)")
    parser.add_argument(
        "--seeds", type=arguments.count(1), default=None, help="seeds per sweep value (default 5; --quick 3)"
    )
    parser.add_argument(
        "--epochs", type=arguments.count(1), default=None, help=f"training epochs (default {default_epochs})"
    )
    parser.add_argument(
        "--track-every", type=arguments.count(1), default=None, help="epochs between tracker measurements"
    )
    add_run_arguments(parser)
    parser.add_argument(
        "--measure-at",
        choices=("noise", "paper"),
        default="noise",
        help="noise: Z is the noise output, measured exactly (default); paper: Z where the paper measures it, with "
        "its DoE estimate, sample-based estimates, the exact value at the noise output, and CDNV clean and noisy",
    )


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of how a reproduction runs and reports, shared by every digits command."""
    parser.add_argument("--no-plots", action="store_true", help="CSV and markdown only (no matplotlib needed)")
    parser.add_argument(
        "--threads",
        type=arguments.threads,
        default=None,
        help="repcompress threads (default: all cores) and torch threads (default: 1)",
    )
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)


def set_threads(threads: int | None) -> None:
    """repcompress uses ``threads`` (default: all cores); torch uses ``threads`` or 1. The MLPs
    here are too small to gain from intra-op threads, and torch's OpenMP threads waiting on a busy
    machine made a run 10x slower in a measurement on 2 cores."""
    import repcompress as rc

    torch = require_torch()
    if threads is not None:
        rc.set_num_threads(threads)
    torch.set_num_threads(threads or 1)


class Timer:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.start


def train_epochs(
    model: Any,
    loader: Any,
    epochs: int,
    loss_fn: Callable[[Any, Any], Any],
    *,
    lr: float = 1e-3,
    on_epoch: Callable[[int], None] | None = None,
) -> None:
    """Adam on ``loss_fn(x, y)`` for ``epochs`` epochs; ``on_epoch(epoch)`` after each (1-based)."""
    torch = require_torch()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for epoch in range(1, epochs + 1):
        model.train()
        for x, y in loader:
            opt.zero_grad()
            loss = loss_fn(x, y)
            loss.backward()
            opt.step()
        if on_epoch is not None:
            on_epoch(epoch)


def sweep(
    values: Sequence[float], seeds: int, one_run: Callable[[float, int], tuple[dict, Any]], label: str, progress: bool
) -> tuple[Any, Any]:
    """Runs ``one_run(value, seed)`` over the sweep × seeds: (table of runs, concatenated tracker tables)."""
    import pandas as pd

    from .._progress import Progress

    rows, frames = [], []
    bar = Progress(len(values) * seeds, label, show=progress, after=0.0)
    try:
        for value in values:
            for seed in range(seeds):
                row, frame = one_run(value, seed)
                rows.append(row)
                frames.append(frame)
                bar.update(1)
    finally:
        bar.close()
    return pd.DataFrame(rows), pd.concat(frames, ignore_index=True)


def information_planes(training: Any, column: str, symbol: str, path: Path, title: str) -> Path:
    """One information plane per sweep value (first seed), coloured by epoch; I(Z;Y) from 0 to
    its largest value, so a saturated I(Z;Y) looks flat rather than Monte Carlo noise looking
    like a trajectory."""
    from .. import plots as rplots

    plt = rplots._pyplot()
    values = sorted(training[column].unique())
    cols = min(4, len(values))
    rows = -(-len(values) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.8 * cols, 3.3 * rows), squeeze=False)
    top = float(training.loc[training.metric == "I(Z;Y)", "value"].max())
    for ax, value in zip(axes.flat, values, strict=False):  # the grid may have spare axes
        part = training[(training[column] == value) & (training["seed"] == training["seed"].min())]
        rplots.information_plane(part, x="I(X;Z)", y="I(Z;Y)", ax=ax)
        ax.set_ylim(0.0, 1.05 * top)
        ax.set_title(f"{symbol} = {value:g}")
    for ax in list(axes.flat)[len(values) :]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def summary_markdown(
    title: str, intro: str, runs: Any, column: str, means_of: Sequence[str], corr: Any, closing: str
) -> str:
    by = runs.groupby(column)[list(means_of)].mean().reset_index()
    lines = [
        f"# {title}",
        "",
        intro,
        "",
        "## Means over seeds",
        "",
        markdown_table(by, list(by.columns)),
        "",
        "## Normalized-rank correlations across runs (the paper's analysis)",
        "",
        markdown_table(corr, CORRELATION_COLUMNS),
        "",
        closing,
    ]
    return "\n".join(lines) + "\n"


def track_schedule(epochs: int, track_every: int | None) -> tuple[int, Callable[[int], bool]]:
    every = track_every or max(1, epochs // 5)
    return every, lambda epoch: epoch % every == 0 or epoch == epochs or epoch == 1


def run_target(args: argparse.Namespace, summary_name: str, work: Callable[[], dict]) -> int:
    """The command-line side of a digits reproduction: checks (all before the output directory is
    made, docs/spec.md §6.4), threads, run, print the summary."""
    try:
        require_torch()
        if not args.no_plots:
            require_plotting()
    except ImportError as exc:
        raise arguments.CommandLineError(str(exc)) from None
    arguments.prepare_output_directory(args.out)
    set_threads(args.threads)
    try:
        result = work()
    except OSError as exc:  # the disk filled up, the directory was removed meanwhile
        raise arguments.CommandLineError(
            f"--out: cannot write the results to {args.out} ({exc.strerror or exc})"
        ) from None
    print((args.out / summary_name).read_text())
    print("wrote: " + ", ".join(str(p) for p in result["files"]))
    return 0


def channel_columns(mi: Any) -> dict:
    """The run-table columns of a :class:`repcompress.GaussianChannelMI` with labels."""
    g = mi.given_labels
    return {
        "I_XZ": mi.mi,
        "I_XZ_stderr": mi.stderr,
        "I_XZ_lower": mi.lower,
        "I_XZ_upper": mi.upper,
        "I_XZ_given_Y": g.mi,
        "I_XZ_given_Y_stderr": g.stderr,
        "I_XZ_given_Y_lower": g.lower,
        "I_XZ_given_Y_upper": g.upper,
        "I_ZY": mi.labels.mi,
        "log_N": mi.log_n,
        "n_floored": mi.n_floored,
    }


def tagged(frame: Any, **columns: Any) -> Any:
    """The tracker's table with the run's sweep value and seed as leading columns."""
    for name, value in reversed(list(columns.items())):
        frame.insert(0, name, value)
    return frame
