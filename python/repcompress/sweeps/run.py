"""Running the tasks of a sweep: one metric of one archive per task, in a local process pool or on
a Dask cluster, with bounded retries when a worker dies and a clean stop on Ctrl-C.

A task carries only the file's path and its settings; the worker reads the file itself, so data
never travel through a scheduler. What a task computes cannot fail the sweep: an unreadable file,
a metric that cannot measure the data or an exception of the metric become rows with ``value``
NaN and ``error`` set (docs/spec.md §9).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..activations import InputError, load_activations
from ..estimate_options import EstimateOptions
from ..metrics import METRICS, Metric
from ..report import json_ready
from ..tidy import metric_records

__all__ = ["SweepTask", "run_task", "settings_hash"]

_TIDY_TAGS = ("epoch", "layer", "split")
_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


@dataclass(frozen=True)
class SweepTask:
    """One task: a metric of the archive ``path`` (content ``file_hash``) with ``options``; a
    registered metric travels by its name (its functions are closures, which do not pickle), one of
    the caller's own as the object (``own_metric``). ``quantities``: every quantity measured on the
    file (to name clashes as the tracker does). ``threads``: the library's thread count in the
    worker (None: the worker's cores divided by its concurrent tasks). ``attempts``: how many
    times it has been started."""

    path: str
    file_hash: str
    metric_name: str
    options: EstimateOptions
    settings_hash: str
    quantities: tuple[str, ...] = ()
    tags: Mapping[str, Any] = field(default_factory=dict, hash=False)
    threads: int | None = None
    attempts: int = 0
    own_metric: Metric | None = None

    @property
    def metric(self) -> Metric:
        return self.own_metric if self.own_metric is not None else METRICS[self.metric_name]

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.path, self.file_hash, self.metric_name, self.settings_hash)


def settings_hash(metric: Metric, options: EstimateOptions) -> str:
    """A short hash of what decides a task's result besides the file: the metric (its name and
    function) and every estimate option (``progress`` excluded)."""
    described = {
        "metric": metric.name,
        "function": f"{metric.function.__module__}.{metric.function.__qualname__}",
        "options": {k: v for k, v in asdict(options).items() if k != "progress"},
    }
    text = json.dumps(json_ready(described), sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _reset_peak_memory() -> bool:
    """Resets the process's peak resident memory (Linux: ``clear_refs`` 5 resets VmHWM)."""
    try:
        with open(_CLEAR_REFS, "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _peak_memory(reset: bool) -> float:
    """The peak resident memory (bytes) since the reset; without one, the process's lifetime peak."""
    if reset:
        try:
            with open(_STATUS) as handle:
                for line in handle:
                    if line.startswith("VmHWM:"):
                        return float(line.split()[1]) * 1024
        except OSError:
            pass
    try:
        import resource

        return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
    except (ImportError, OSError):  # pragma: no cover - no resource module (Windows)
        return float("nan")


def _threads_for_task(requested: int | None) -> int:
    """The library's threads in this worker: as requested, else the cores shared among the tasks
    a Dask worker runs at once (one task per process in the local pool sets it explicitly)."""
    from .._threads import usable_cpus

    if requested is not None:
        return requested
    try:
        from distributed import get_worker

        slots = max(1, int(get_worker().state.nthreads))
    except (ImportError, ValueError, AttributeError):
        slots = 1
    return max(1, usable_cpus() // slots)


def run_task(task: SweepTask) -> list[dict[str, Any]]:
    """The table rows of ``task``, computed where this runs (a pool process or a Dask worker): the
    file is read here. Every failure of the file or the metric is a row with ``error`` set; only
    an interrupt or the death of the process escapes."""
    from .. import get_num_threads, set_num_threads

    threads = _threads_for_task(task.threads)
    if get_num_threads() != threads:
        set_num_threads(threads)
    reset = _reset_peak_memory()
    start = time.perf_counter()
    metric, options = task.metric, task.options
    try:
        data = load_activations(task.path)
        if metric.needs_variances and data.variances is None:
            rows = metric.failed(options, f"metrics: {metric.name!r} needs per-sample variances; the file has none")
        elif metric.needs_labels and data.n_classes < 2:
            rows = metric.failed(options, f"labels: need at least 2 classes, got {data.n_classes}")
        else:
            rows = metric.evaluate(data, options)
    except InputError as exc:
        rows = metric.failed(options, f"file: {exc}")
    except Exception as exc:  # a metric's own bug or an unforeseen error: a row, not a dead sweep
        rows = metric.failed(options, f"{type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - start
    return _task_records(task, rows, seconds, _peak_memory(reset), f"{socket.gethostname()}:{os.getpid()}")


def died(task: SweepTask, reason: str) -> list[dict[str, Any]]:
    """The rows of a task given up after its worker died ``task.attempts`` times."""
    rows = task.metric.failed(task.options, f"worker died {task.attempts} time(s) running this task ({reason})")
    return _task_records(task, rows, float("nan"), float("nan"), "")


def _task_records(task: SweepTask, rows: list[Any], seconds: float, peak: float, worker: str) -> list[dict[str, Any]]:
    """The table's records of one task's metric rows: the tidy columns, the tags, and the task's
    file, hash, settings, time, peak memory, attempts and worker."""
    tags = dict(task.tags)
    records = metric_records(
        rows,
        epoch=tags.pop("epoch", None),
        layer=tags.pop("layer", None),
        split=tags.pop("split", None),
        quantities=task.quantities or None,
    )
    for record in records:
        record.update(
            file=task.path,
            file_hash=task.file_hash,
            task_metric=task.metric.name,
            settings_hash=task.settings_hash,
            seconds=seconds,
            peak_rss_bytes=peak,
            attempts=task.attempts,
            worker=worker,
            **tags,
        )
    return records


Finished = Callable[[SweepTask, list[dict[str, Any]]], None]


def _ignore_interrupts(threads: int) -> None:
    """Pool processes leave Ctrl-C to the sweep, which stops them itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from .. import set_num_threads

    set_num_threads(threads)


def _stop_pool(executor: ProcessPoolExecutor) -> None:
    """Stops the pool now: queued tasks cancelled, running ones killed (their results are not
    wanted: the sweep is being interrupted)."""
    processes = list(getattr(executor, "_processes", {}).values())  # no public way before Python 3.14
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.kill()
    for process in processes:
        process.join(timeout=5)


def run_local(
    tasks: Iterable[SweepTask], finished: Finished, *, n_workers: int, threads: int, max_retries: int
) -> None:
    """Runs ``tasks`` in a pool of ``n_workers`` processes (spawned), each with ``threads`` library
    threads; ``finished(task, rows)`` is called in this process as each ends. At most
    ``n_workers`` tasks are in flight, so a process that dies (the pool then fails every task in
    flight) costs each of them one attempt; a task is given up (error rows) after
    ``max_retries`` retries. Ctrl-C kills the pool and raises KeyboardInterrupt."""
    queue = list(tasks)
    queue.reverse()
    context = multiprocessing.get_context("spawn")

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(n_workers, mp_context=context, initializer=_ignore_interrupts, initargs=(threads,))

    executor = new_pool()
    running: dict[Future, SweepTask] = {}
    try:
        while queue or running:
            while queue and len(running) < n_workers:
                task = queue.pop()
                task = replace(task, attempts=task.attempts + 1, threads=threads)
                running[executor.submit(run_task, task)] = task
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            broken = False
            for future in done:
                task = running.pop(future)
                try:
                    rows = future.result()
                except BrokenProcessPool:
                    broken = True
                    if task.attempts > max_retries:
                        finished(task, died(task, "its pool process was killed"))
                    else:
                        queue.append(task)
                    continue
                finished(task, rows)
            if broken:
                # Every task still in flight fails alike once the pool is broken.
                for future, task in list(running.items()):
                    try:
                        finished(task, future.result())
                    except BrokenProcessPool:
                        if task.attempts > max_retries:
                            finished(task, died(task, "its pool process was killed"))
                        else:
                            queue.append(task)
                running.clear()
                executor.shutdown(wait=True)
                executor = new_pool()
    except BaseException:
        _stop_pool(executor)
        raise
    executor.shutdown(wait=True)


def run_dask(tasks: Iterable[SweepTask], finished: Finished, *, client: Any, max_retries: int) -> None:
    """Runs ``tasks`` on the Dask cluster of ``client``: each is one Dask task that reads its file on
    its worker. The scheduler reschedules a task whose worker died (up to its
    ``distributed.scheduler.allowed-failures``); when it gives up (``KilledWorker``) the task is
    resubmitted up to ``max_retries`` times, then given up (error rows). Ctrl-C cancels what has not
    finished and raises KeyboardInterrupt."""
    from distributed import as_completed

    submitted: dict[Any, SweepTask] = {}

    def submit(task: SweepTask) -> Any:
        task = replace(task, attempts=task.attempts + 1)
        future = client.submit(run_task, task, pure=False, key=f"repcompress-sweep-{os.urandom(8).hex()}")
        submitted[future] = task
        return future

    pending = as_completed([submit(task) for task in tasks])
    try:
        for future in pending:
            task = submitted.pop(future)
            if future.status == "finished":
                finished(task, future.result())
                continue
            error = future.exception()
            if task.attempts <= max_retries:
                pending.add(submit(task))
            else:
                finished(task, died(task, f"{type(error).__name__}: {error}"))
    except BaseException:
        client.cancel(list(submitted))
        raise
