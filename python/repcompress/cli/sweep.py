"""``repcompress sweep INPUT ... --out DIR``: the command line of :func:`repcompress.sweeps.sweep`.

Exit status: 0 when every task succeeded; 1 when some task's rows carry an error (the others are
in the table); 2 for inputs or options that cannot be used (one line on stderr, nothing run);
130 after Ctrl-C (what finished is in the table; rerunning resumes).
"""

from __future__ import annotations

import argparse
import sys

from ..activations import InputError
from ..estimate_options import EstimateOptions
from .arguments import CommandLineError, count, output_directory, threads
from .estimate import add_estimate_options

DESCRIPTION = (
    "the metrics of many activation archives (globs, directories or a CSV/JSON manifest with tags) into one "
    "Parquet table; resumable, locally or on a Dask cluster"
)


def correlations(text: str) -> dict[str, str | None]:
    """``setup=COLUMN[,by=COLUMN]``."""
    out: dict[str, str | None] = {"setup": None, "by": None}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or name not in out or not value:
            raise argparse.ArgumentTypeError(f"expected setup=COLUMN[,by=COLUMN], got {text!r}")
        out[name] = value
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="archives (.npz with z, labels, optional variances): globs (quote them), directories (every *.npz "
        "below) or manifests (.csv/.json: a 'path' and tags such as setup, seed, epoch, layer, split per row)",
    )
    parser.add_argument("--out", type=output_directory, required=True, metavar="DIR", help="output directory")
    parser.add_argument(
        "--metrics",
        nargs="+",
        metavar="NAME",
        help="metric names as for 'repcompress estimate' (see its --list-metrics), or 'all'; default: each "
        "file's default set",
    )
    add_estimate_options(parser)
    engine = parser.add_argument_group("execution")
    engine.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on the Dask cluster of this scheduler (tcp://HOST:PORT); default: a local process pool",
    )
    engine.add_argument(
        "--workers", type=threads, metavar="W", help="processes of the local pool (default: the usable cores)"
    )
    engine.add_argument(
        "--threads",
        type=threads,
        metavar="T",
        help="library threads per task (default: cores / workers locally, a Dask worker's cores / its threads)",
    )
    engine.add_argument(
        "--max-retries",
        type=count(0),
        default=2,
        metavar="R",
        help="restarts of a task whose worker died before it is given up as an error row (default 2)",
    )
    engine.add_argument("--retry-errors", action="store_true", help="rerun tasks whose rows in the table carry errors")
    parser.add_argument("--csv", action="store_true", help="also write DIR/table.csv")
    parser.add_argument(
        "--correlations",
        type=correlations,
        metavar="setup=COL[,by=COL]",
        help="after the sweep, the paper's normalized-rank correlations between the quantities, runs grouped by "
        "the setup column (one table per value of 'by'), into DIR/correlations.csv",
    )


def run(args: argparse.Namespace) -> int:
    from ..sweeps import sweep

    options = {name: getattr(args, name) for name in EstimateOptions.names() if name != "progress"}
    try:
        result = sweep(
            args.inputs,
            args.metrics,
            args.out,
            scheduler=args.scheduler,
            n_workers=args.workers,
            threads_per_task=args.threads,
            max_retries=args.max_retries,
            retry_errors=args.retry_errors,
            csv=args.csv,
            correlations=args.correlations,
            progress=args.progress,
            **options,
        )
    except InputError as exc:
        raise CommandLineError(str(exc)) from None
    except KeyboardInterrupt:
        print(
            f"repcompress sweep: interrupted; the finished tasks are in {args.out} (run the same command to resume)",
            file=sys.stderr,
        )
        return 130
    print(
        f"{result.n_tasks} tasks: {result.n_run} run, {result.n_skipped} already in the table, "
        f"{result.n_failed} with errors; table: {', '.join(map(str, result.paths))}"
    )
    if result.correlations is not None:
        print(result.correlations.to_string(index=False))
    return 1 if result.n_failed else 0
