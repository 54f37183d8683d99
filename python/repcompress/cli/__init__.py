"""The `repcompress` command line.

repcompress --version                   the installed version (the package metadata's)
repcompress demo [--n N] [--seed S]    estimate MI of correlated Gaussians, print estimate vs truth
repcompress reproduce toy --out DIR     the paper's toy example (CSV, PNG heatmaps, summary)
repcompress estimate FILE.npz [--metrics NAME ...] [--ci N] [--base 2] [--json]
                                        metrics of saved activations (keys z, labels, optional
                                        variances): a table, or JSON for machines
repcompress estimate --list-metrics     the metric names (cdnv, nc1, silhouette, mi-labels, gaussian-mi, ...)
repcompress sweep INPUT ... --out DIR   the metrics of many archives into one resumable Parquet table,
                                        locally or on a Dask cluster (--scheduler tcp://HOST:PORT)
"""

from __future__ import annotations

import sys

from .. import __version__
from . import demo as demo_command
from . import estimate as estimate_command
from . import sweep as sweep_command
from .arguments import CommandLineError, Parser, fail
from .demo import correlated_gaussians, run_demo

__all__ = ["correlated_gaussians", "main", "run_demo"]


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit status. Every failure is one line on stderr and
    status 2 (docs/spec.md §6.4); ``--help`` and argparse's usage errors exit through SystemExit."""
    parser = Parser(prog="repcompress", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"repcompress {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help=demo_command.DESCRIPTION)
    demo_command.add_arguments(demo)
    from ..reproduce import TARGETS, target

    reproduce = sub.add_parser("reproduce", help="reproduce one of the paper's experiments at laptop scale")
    targets = reproduce.add_subparsers(dest="target", required=True)
    for name in TARGETS:
        module = target(name)
        target_parser = targets.add_parser(name, help=module.DESCRIPTION)
        module.add_arguments(target_parser)
        target_parser.set_defaults(run_target=module.run)
    estimate = sub.add_parser("estimate", help=estimate_command.DESCRIPTION, description=estimate_command.DESCRIPTION)
    estimate_command.add_arguments(estimate)
    sweep = sub.add_parser("sweep", help=sweep_command.DESCRIPTION, description=sweep_command.DESCRIPTION)
    sweep_command.add_arguments(sweep)
    args = parser.parse_args(argv)
    command = args.command if args.command != "reproduce" else f"reproduce {args.target}"
    try:
        if args.command == "demo":
            return demo_command.run(args)
        if args.command == "reproduce":
            return args.run_target(args)
        if args.command == "estimate":
            return estimate_command.run(args)
        if args.command == "sweep":
            return sweep_command.run(args)
    except CommandLineError as exc:
        return fail(command, str(exc))
    return 2


if __name__ == "__main__":
    sys.exit(main())
