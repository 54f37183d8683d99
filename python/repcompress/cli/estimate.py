"""``repcompress estimate FILE.npz``: the command line of :mod:`repcompress.estimate`.

The archive format is documented in :mod:`repcompress.activations`, the metrics and their options
in :mod:`repcompress.metrics`, the exit status in :mod:`repcompress.estimate`.
"""

from __future__ import annotations

import argparse
import inspect
import math
import sys
from collections.abc import Callable
from typing import Any

from ..binning import binned_entropy
from ..estimate import InputError, estimate_file
from ..estimate_options import EstimateOptions
from ..gaussian_channel import gaussian_channel_mi
from ..geometry import fisher_ratio
from ..knn_estimators import mutual_info_labels
from ..metrics import DEFAULT_GEOMETRY, METRICS
from .arguments import base, confidence, count, nonnegative, seed, threads

DESCRIPTION = "compression metrics of activations saved as arrays (.npz with z, labels, optional variances)"


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
    add_estimate_options(parser)
    parser.add_argument(
        "--threads",
        type=threads,
        metavar="T",
        help="worker threads (default: all cores; results do not depend on it)",
    )


def add_estimate_options(parser: argparse.ArgumentParser) -> None:
    """The options of one estimate (``--ci`` ... ``--silhouette-sample-size``, ``--no-progress``),
    stored under the names of :class:`~repcompress.estimate_options.EstimateOptions`; shared with
    ``repcompress sweep``."""
    parser.add_argument("--ci", type=count(2), metavar="N", help="confidence intervals from N resamples")
    parser.add_argument(
        "--confidence", type=confidence, default=0.95, metavar="P", help="confidence level (default 0.95)"
    )
    parser.add_argument(
        "--seed",
        type=seed,
        default=0,
        metavar="S",
        help="random_state of the estimators and resampling, a non-negative integer (default 0)",
    )
    parser.add_argument(
        "--base",
        type=base,
        default=math.e,
        metavar="B",
        help="logarithm base of information metrics: e (nats, default) or 2 (bits)",
    )

    def default(function: Callable[..., Any], name: str) -> Any:
        return inspect.signature(function).parameters[name].default

    options = parser.add_argument_group("metric options (default: each function's own)")
    options.add_argument(
        "--k", type=count(1), help=f"neighbours of mi-labels and entropy (default {default(mutual_info_labels, 'k')})"
    )
    options.add_argument(
        "--n-bins",
        type=count(1),
        metavar="B",
        help=f"bins of binned-entropy (default {default(binned_entropy, 'n_bins')})",
    )
    options.add_argument(
        "--n-draws",
        type=count(1),
        metavar="M",
        help=f"Monte Carlo draws per sample of gaussian-mi (default {default(gaussian_channel_mi, 'n_draws')})",
    )
    options.add_argument(
        "--min-variance",
        type=nonnegative,
        metavar="V",
        help=(
            "variance floor of gaussian-mi, relative to the mean variance of Z per coordinate "
            f"(default {default(gaussian_channel_mi, 'min_variance'):g})"
        ),
    )
    options.add_argument(
        "--ridge",
        type=nonnegative,
        metavar="R",
        help=f"ridge of fisher-ratio (default {default(fisher_ratio, 'ridge'):g})",
    )
    options.add_argument(
        "--silhouette-sample-size",
        type=count(1),
        metavar="M",
        help="silhouette on M random samples instead of all (default: all; O(N²) time)",
    )
    parser.add_argument(
        "--no-progress",
        dest="progress",
        action="store_const",
        const=False,
        default=None,
        help="no progress bars on stderr",
    )


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
    from .. import get_num_threads, set_num_threads

    threads_before = get_num_threads()
    try:
        if args.threads is not None:
            set_num_threads(args.threads)
        # The option flags are stored under the names of the estimate options.
        options = {name: getattr(args, name) for name in EstimateOptions.names()}
        report = estimate_file(path, metrics, **options)
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
