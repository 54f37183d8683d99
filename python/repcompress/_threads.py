"""The size of the package's thread pool (docs/spec.md §0.7), checked before it reaches the core.

The core starts one OS thread per worker when a call first needs the pool, so the number must be
bounded: ``set_num_threads(10**6)`` would try to start a million threads and exhaust the process
table of the machine. The limit is :func:`thread_limit`: the larger of 1024 and 4 × the usable CPUs.

- 1024, a fixed floor, keeps scripts portable: ``set_num_threads(64)`` works on a laptop as on the
  server it was written for (results do not depend on the count, docs/spec.md §0.6), and 1024
  threads are far below any system's limits (Linux's default ``threads-max`` is in the hundreds of
  thousands, a user's ``ulimit -u`` usually 4096 or more).
- 4 × the usable CPUs lets the largest machines (hundreds of cores) oversubscribe a little, never
  by more: threads beyond the cores only take turns.

The environment variables ``REPCOMPRESS_NUM_THREADS`` and ``RAYON_NUM_THREADS`` are read by the core
whenever no count was set. A value above the limit there would start that many threads at the
first call (or, past the system's limits, make every call fail with "cannot start the thread
pool"), so :func:`check_environment` clamps it to the limit, with a warning, when the package is
imported; a value set after the import is not checked.
"""

from __future__ import annotations

import numbers
import os
import re
import warnings
from typing import Any

import numpy as np

from . import _core
from ._validation import shown

ENVIRONMENT = ("REPCOMPRESS_NUM_THREADS", "RAYON_NUM_THREADS")
_FLOOR = 1024
# How the core reads the variables: Rust's `str::trim` then `usize` parsing (an optional '+', digits).
_DIGITS = re.compile(r"\+?[0-9]+")
_USIZE_MAX = 2**64 - 1


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except OSError:  # pragma: no cover - an OS that lists the call but refuses it
            pass
    return max(1, os.cpu_count() or 1)


def thread_limit() -> int:
    """The largest thread count accepted: max(1024, 4 × the usable CPUs)."""
    return max(_FLOOR, 4 * usable_cpus())


def check_num_threads(n: Any, name: str = "n") -> int:
    """`n` as a thread count, 1 ≤ n ≤ :func:`thread_limit`; a ValueError or TypeError naming `name`."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral):
        raise TypeError(f"{name}: must be an integer, got {type(n).__name__}")
    count = int(n)
    if count < 1:
        raise ValueError(f"{name}: the number of threads must be at least 1, got {shown(count)}")
    limit = thread_limit()
    if count > limit:
        raise ValueError(
            f"{name}: at most {limit} threads (4 × the {usable_cpus()} usable CPUs, at least 1024), got {shown(count)}"
        )
    return count


def set_num_threads(n: int) -> None:
    """Sets the number of worker threads of every later call (default: ``REPCOMPRESS_NUM_THREADS``,
    else ``RAYON_NUM_THREADS``, else all cores), at most ``thread_limit()`` (max(1024, 4 × the
    usable CPUs)). Results do not depend on it (docs/spec.md §0.7). On Linux a pool of one worker
    per usable CPU runs worker i on the i-th CPU (``REPCOMPRESS_PIN_THREADS=0`` turns this off);
    a smaller pool is left to the OS."""
    _core.set_num_threads(check_num_threads(n))


def get_num_threads() -> int:
    """The number of worker threads the next call will use."""
    return _core.get_num_threads()


def _from_environment() -> tuple[str, int] | None:
    """The variable the core would take its count from, and the count, as the core parses it."""
    for name in ENVIRONMENT:
        text = os.environ.get(name)
        if text is None or not _DIGITS.fullmatch(text.strip()):
            continue
        value = int(text.strip())
        if 0 < value <= _USIZE_MAX:
            return name, value
    return None


def check_environment() -> None:
    """Clamps an oversized thread count from the environment to :func:`thread_limit`, with a
    RuntimeWarning (called once, when the package is imported)."""
    found = _from_environment()
    if found is None:
        return
    name, value = found
    limit = thread_limit()
    if value > limit:
        warnings.warn(
            f"{name}={value} is more threads than repcompress starts (at most {limit}: 4 × the {usable_cpus()} "
            f"usable CPUs, at least 1024); using {limit}",
            RuntimeWarning,
            stacklevel=3,
        )
        _core.set_num_threads(limit)
