"""Sweeps: the metrics of many activation archives, resumable and fault-tolerant, in a local
process pool or on a Dask cluster (docs/spec.md §9).

:func:`sweep` measures every (file, metric) pair of a set of archives (the ``.npz`` format of
``repcompress estimate``, as :meth:`repcompress.torch.Activations.save` writes it per checkpoint
and layer) into one tidy table, written to Parquet as tasks finish; a rerun skips the tasks
already in the table. ``repcompress sweep`` is its command line. ``import repcompress`` does not
import this package, nor Dask or pyarrow (``pip install "repcompress[sweep]"``).

Python::

    >>> from repcompress.sweeps import sweep                               # doctest: +SKIP
    >>> result = sweep("runs/manifest.csv", ["cdnv", "gaussian-mi"], out="sweep-out")  # doctest: +SKIP
    >>> result.frame.pivot_table(index=["setup", "epoch"], columns="metric", values="value")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .._progress import Progress
from .._threads import check_num_threads, usable_cpus
from .._validation import shown
from ..activations import InputError
from ..estimate_options import EstimateOptions
from ..metrics import METRICS, Metric, resolve_metrics
from .inputs import SweepInput, content_hash, find_inputs, has_variances
from .run import SweepTask, run_dask, run_local, run_task, settings_hash
from .table import KEY, SWEEP_COLUMNS, SweepTable, read_table

__all__ = [
    "KEY",
    "SWEEP_COLUMNS",
    "SweepInput",
    "SweepResult",
    "SweepTable",
    "SweepTask",
    "content_hash",
    "correlation_table",
    "find_inputs",
    "read_table",
    "run_task",
    "sweep",
]


@dataclass
class SweepResult:
    """What :func:`sweep` did. ``frame``: the table of this sweep's tasks (columns
    :data:`SWEEP_COLUMNS` then the tags). ``n_tasks``: (file, metric) tasks of the sweep;
    ``n_skipped``: found in the table already; ``n_run``: computed now; ``n_failed``: tasks whose
    rows carry an error. ``paths``: the files written. ``correlations``: the table of
    :func:`correlation_table` when asked for."""

    frame: Any
    n_tasks: int
    n_skipped: int
    n_run: int
    n_failed: int
    directory: Path
    paths: list[Path] = field(default_factory=list)
    correlations: Any = None


def _count(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{name}: must be an integer >= {minimum}, got {shown(value)}")
    return value


def _metric_names(metrics: Any) -> list[str | Metric] | None:
    """The metrics as asked: None (the default set per file), or names (checked now, 'all'
    expanded per file) and :class:`Metric` objects of one's own."""
    if metrics is None:
        return None
    items = [metrics] if isinstance(metrics, (str, Metric)) else list(metrics)
    out: list[str | Metric] = []
    for item in items:
        if isinstance(item, Metric):
            out.append(item)
        else:
            out += [n if n != "all" else "all" for n in _split_names(item)]
    if not out:
        raise InputError(f"metrics: no metric named; valid names: {', '.join(METRICS)} (or 'all')")
    return out


def _split_names(item: Any) -> list[str]:
    if not isinstance(item, str):
        raise InputError(f"metrics: expected metric names or Metric objects, got {type(item).__name__} {item!r}")
    parts = [p.strip().lower().replace("_", "-") for p in item.split(",") if p.strip()]
    for part in parts:
        if part != "all":
            resolve_metrics(part, has_variances=True)  # an InputError naming an unknown metric
    return parts


def _file_metrics(asked: list[str | Metric] | None, variances: bool) -> list[Metric]:
    """The metrics measured on one file: None is the default set, 'all' every metric the file
    allows; a metric named explicitly is kept even if the file cannot give it (an error row)."""
    if asked is None:
        return [METRICS[n] for n in resolve_metrics(None, variances)]
    out: list[Metric] = []
    for item in asked:
        if isinstance(item, Metric):
            chosen = [item]
        elif item == "all":
            chosen = [METRICS[n] for n in resolve_metrics("all", variances)]
        else:
            chosen = [METRICS[item]]
        out += [m for m in chosen if all(m.name != o.name for o in out)]
    return out


def _parse_correlations(correlations: Any) -> dict[str, str | None] | None:
    """``correlations``: None, a setup column name, or a mapping ``{"setup": column, "by": column}``."""
    if correlations is None or correlations is False:
        return None
    if isinstance(correlations, str):
        return {"setup": correlations or None, "by": None}
    if isinstance(correlations, Mapping):
        unknown = set(correlations) - {"setup", "by"}
        if unknown:
            raise InputError(f"correlations: unknown key(s) {', '.join(sorted(map(str, unknown)))}; expected setup, by")
        return {"setup": correlations.get("setup"), "by": correlations.get("by")}
    raise InputError(f"correlations: expected a column name or {{'setup': ..., 'by': ...}}, got {shown(correlations)}")


def correlation_table(frame: Any, *, setup: str | None = None, by: str | None = None) -> Any:
    """The paper's normalized-rank correlations (:func:`repcompress.analysis.rank_correlations`,
    docs/spec.md §5.6) between the quantities of a sweep's table: one row per file (its tags kept),
    one column per quantity (``metric``), rows with an error left out; ``setup`` groups the runs of
    one setup (a tag column), ``by`` computes one table per value of a column (e.g. ``layer``),
    named in a first column of that name."""
    import pandas as pd

    from ..analysis import rank_correlations

    ok = frame[frame["error"].fillna("").astype(str) == ""]
    for name, value in (("setup", setup), ("by", by)):
        if value is not None and value not in frame.columns:
            raise InputError(f"correlations: {name} column {value!r} is not in the table")
    index = ["file"] + [c for c in (setup, by) if c is not None and c != "file"]
    wide = ok.pivot_table(index=index, columns="metric", values="value", aggfunc="first").reset_index()
    quantities = [c for c in wide.columns if c not in index]
    groups = [(None, wide)] if by is None else list(wide.groupby(by, sort=False))
    tables = []
    for value, group in groups:
        table = rank_correlations(group, quantities, setup=setup)
        if by is not None:
            table.insert(0, by, value)
        tables.append(table)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def sweep(
    inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    metrics: str | Metric | Sequence[str | Metric] | None = None,
    out: str | os.PathLike[str] = "sweep-out",
    *,
    client: Any = None,
    scheduler: str | None = None,
    n_workers: int | None = None,
    threads_per_task: int | None = None,
    max_retries: int = 2,
    retry_errors: bool = False,
    csv: bool = False,
    correlations: str | Mapping[str, str | None] | None = None,
    flush_every: int = 16,
    progress: bool | None = None,
    **options: Any,
) -> SweepResult:
    """Measures ``metrics`` of every archive of ``inputs`` into the table in the directory ``out``.

    One task per (file, metric): the worker reads the file and computes the metric as
    ``repcompress estimate`` does (the same names and options, ``options`` being those of
    :func:`repcompress.estimate.estimate_arrays`: ``ci``, ``confidence``, ``seed``, ``base``,
    ``k``, ...). Its rows are the columns of ``CompressionTracker.frame`` (``epoch``, ``layer``
    and ``split`` from the tags), then ``file``, ``file_hash`` (BLAKE2b of the bytes),
    ``task_metric``, ``settings_hash``, ``seconds`` and ``peak_rss_bytes`` of the task (the
    worker process's peak resident memory during the task, its baseline included; Linux; elsewhere
    its lifetime peak), ``attempts``, ``worker`` and the remaining tags.

    Parameters
    ----------
    inputs : globs, directories (every ``*.npz`` below) or manifests (``.csv``/``.json``: a ``path``
        per row, the other columns tags such as setup, lambda, seed, epoch, layer, split).
    metrics : names of :data:`repcompress.metrics.METRICS` (``"all"``: every metric a file
        allows), or :class:`~repcompress.metrics.Metric` objects of one's own (their function must
        be importable on the workers); None: each file's default set, as ``repcompress estimate``.
    out : the output directory: ``parts/`` (the table as it grows), ``table.parquet``,
        ``table.csv`` (with ``csv``), ``correlations.csv`` (with ``correlations``), ``hashes.json``.
    client, scheduler : a ``distributed.Client``, or the address of a Dask scheduler
        (``tcp://HOST:PORT``) to connect to; neither: a local pool of ``n_workers`` processes
        (default: the usable cores) with ``threads_per_task`` library threads each (default:
        cores // workers, at least 1). On Dask each task uses the worker's cores divided by its
        threads (``threads_per_task`` overrides).
    max_retries : times a task whose worker died is started again before it is given up (its rows
        then carry the error).
    retry_errors : also rerun tasks whose rows in the table carry an error.
    correlations : after the sweep, the normalized-rank correlations between the quantities
        (:func:`correlation_table`): a setup column, or ``{"setup": column, "by": column}``.
    flush_every : finished tasks per part written (a part is also written every 30 s, and at the end).
    progress : a progress bar on stderr (None: once the sweep has run for 2 s).

    Returns
    -------
    SweepResult

    Raises :class:`~repcompress.activations.InputError` (a ``ValueError`` naming the argument) for
    inputs that match nothing, unknown metrics or options, before anything runs. A file that
    cannot be read, a metric that fails on its data or raises, and a task whose worker died more
    than ``max_retries`` times give rows with ``value`` NaN and ``error`` set; the sweep goes on.
    Ctrl-C stops the workers, writes what finished and raises ``KeyboardInterrupt``; rerunning
    computes only the tasks not in the table (and files whose content or settings changed).
    """
    EstimateOptions.check_names("sweep", options)
    estimate_options = EstimateOptions(**{**options, "progress": False})
    asked = _metric_names(metrics)
    if client is not None and scheduler is not None:
        raise InputError("scheduler: give a client or a scheduler address, not both")
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
        raise InputError(f"scheduler: expected an address such as tcp://host:8786, got {shown(scheduler)}")
    try:
        workers = usable_cpus() if n_workers is None else check_num_threads(n_workers, "n_workers")
        threads = None if threads_per_task is None else check_num_threads(threads_per_task, "threads_per_task")
    except (TypeError, ValueError) as exc:
        raise InputError(str(exc)) from None
    max_retries = _count(max_retries, "max_retries", 0)
    flush_every = _count(flush_every, "flush_every", 1)
    for name, flag in (("retry_errors", retry_errors), ("csv", csv)):
        if not isinstance(flag, bool):
            raise InputError(f"{name}: must be True or False, got {shown(flag)}")
    wanted_correlations = _parse_correlations(correlations)
    if out is None or not str(out).strip():
        raise InputError("out: an output directory is required, got an empty path")
    directory = Path(out)
    if directory.exists() and not directory.is_dir():
        raise InputError(f"out: {directory} exists and is not a directory")

    files = find_inputs(inputs)
    reserved = set(SWEEP_COLUMNS) - {"epoch", "layer", "split"}
    for item in files:
        clash = reserved & set(item.tags)
        if clash:
            raise InputError(f"inputs: tag(s) {', '.join(sorted(clash))} of {item.path} are names of table columns")

    table = SweepTable(directory)
    hashes_path = directory / "hashes.json"
    try:
        cache = json.loads(hashes_path.read_text()) if hashes_path.is_file() else {}
    except (OSError, ValueError):
        cache = {}
    tasks: list[SweepTask] = []
    for item in files:
        file_hash = content_hash(item.path, cache)
        chosen = _file_metrics(asked, has_variances(item.path))
        quantities = tuple(q.name or m.name for m in chosen for q in m.quantities)
        for metric in chosen:
            tasks.append(
                SweepTask(
                    path=item.path,
                    file_hash=file_hash,
                    metric_name=metric.name,
                    own_metric=None if METRICS.get(metric.name) is metric else metric,
                    options=estimate_options,
                    settings_hash=settings_hash(metric, estimate_options),
                    quantities=quantities,
                    tags=dict(item.tags),
                )
            )
    _write_json(hashes_path, cache)
    done = table.done_keys(include_errors=not retry_errors)
    todo = [task for task in tasks if task.key not in done]

    bar = Progress(len(todo), "sweep", show=progress)
    batch: list[dict[str, Any]] = []
    state = {"tasks_in_batch": 0, "last": _now(), "failed": 0}

    def flush() -> None:
        table.append(batch, _columns(batch))
        batch.clear()
        state["tasks_in_batch"] = 0
        state["last"] = _now()

    def finished(task: SweepTask, rows: list[dict[str, Any]]) -> None:
        batch.extend(rows)
        state["tasks_in_batch"] += 1
        bar.update()
        if state["tasks_in_batch"] >= flush_every or _now() - state["last"] > 30:
            flush()

    try:
        if todo:
            if client is not None or scheduler is not None:
                own = client is None
                if own:
                    from distributed import Client

                    client = Client(scheduler)
                try:
                    todo = [replace(task, threads=threads) for task in todo]
                    run_dask(todo, finished, client=client, max_retries=max_retries)
                finally:
                    if own:
                        client.close()
            else:
                # One task per process, the cores shared among the processes: no oversubscription.
                processes = min(workers, len(todo))
                per_task = max(1, usable_cpus() // processes) if threads is None else threads
                run_local(todo, finished, n_workers=processes, threads=per_task, max_retries=max_retries)
    finally:
        # Whatever finished is kept, also on Ctrl-C or an error of the engine itself.
        flush()
        bar.close()
    table.compact()
    frame = read_table(directory, [tuple(map(str, t.key)) for t in tasks])
    frame = _ordered(frame, tasks)
    paths = table.write_merged(frame, csv=csv)
    result = SweepResult(
        frame=frame,
        n_tasks=len(tasks),
        n_skipped=len(tasks) - len(todo),
        n_run=len(todo),
        n_failed=_failed_tasks(frame),
        directory=directory,
        paths=paths,
    )
    if wanted_correlations is not None:
        result.correlations = correlation_table(frame, **wanted_correlations)
        target = directory / "correlations.csv"
        result.correlations.to_csv(target, index=False)
        result.paths.append(target)
    return result


def _now() -> float:
    import time

    return time.monotonic()


def _columns(records: list[dict[str, Any]]) -> list[str]:
    tags = dict.fromkeys(k for r in records for k in r if k not in SWEEP_COLUMNS)
    return [*SWEEP_COLUMNS, *tags]


def _ordered(frame: Any, tasks: list[SweepTask]) -> Any:
    """The rows in the order of the tasks (files as found, metrics as asked), whatever order they
    finished in."""
    if frame.empty:
        return frame
    order = {tuple(map(str, t.key)): i for i, t in enumerate(tasks)}
    position = [order.get(tuple(map(str, k)), math.inf) for k in frame[list(KEY)].itertuples(index=False)]
    frame = frame.assign(_order=position).sort_values("_order", kind="stable")
    return frame.drop(columns="_order").reset_index(drop=True)


def _failed_tasks(frame: Any) -> int:
    if frame.empty:
        return 0
    failed = frame[frame["error"].fillna("").astype(str) != ""]
    return int(failed[list(KEY)].drop_duplicates().shape[0])


def _write_json(path: Path, value: Any) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(value))
    os.replace(temporary, path)
