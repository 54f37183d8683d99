"""Thread use: after ``set_num_threads(n)`` a call computes on the process's own threads plus the n
workers of repcompress's pool, also in its linear algebra (faer's default parallelism would start
rayon's global pool, one thread per core, whatever ``set_num_threads`` says)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

# The child counts its threads (/proc/self/task) from a second Python thread while each call runs,
# and once more afterwards (the threads of a global pool, once started, never end). RAYON_NUM_THREADS
# sizes rayon's global pool, so that starting it shows even on a one-core machine.
CHILD = textwrap.dedent(
    """
    import json, os, threading, time
    import numpy as np
    import repcompress as rc
    from repcompress import _core

    def tasks():
        return len(os.listdir("/proc/self/task"))

    rc.set_num_threads(1)
    rng = np.random.default_rng(0)
    peak = [0]
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            peak[0] = max(peak[0], tasks())
            time.sleep(0.0005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    time.sleep(0.05)
    baseline = tasks()  # the main thread and the watcher; the pool starts with the first call
    # Sizes above faer's thresholds for parallel work (eigendecomposition n > 256, SVD 512 x 64).
    h = rng.standard_normal((1500, 600))
    few = _core.ClassStats.from_data(h, (np.arange(1500) % 5).astype(np.int64), 5, True)
    many = _core.ClassStats.from_data(h, (np.arange(1500) % 300).astype(np.int64), 300, True)
    calls = {
        "effective_rank": lambda: rc.effective_rank(h),
        "fisher_ratio": lambda: few.fisher_ratio(0.0),
        "nc1": lambda: many.nc1(),
    }
    out = {"baseline": baseline}
    for name, call in calls.items():
        peak[0] = 0
        call()
        time.sleep(0.01)
        out[name] = peak[0]
    stop.set()
    watcher.join()
    out["after"] = tasks()
    print(json.dumps(out))
    """
)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux's /proc/self/task")
def test_set_num_threads_bounds_the_threads_of_linear_algebra():
    env = dict(os.environ, RAYON_NUM_THREADS="4")
    env.pop("REPCOMPRESS_NUM_THREADS", None)
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    counts = json.loads(out.stdout)
    allowed = counts["baseline"] + 1  # one pool worker
    # A decomposition runs on a thread of its own while the calling thread waits (Ctrl-C need not
    # wait for it, docs/spec.md §0.7): one more thread, gone after the call.
    for name in ("effective_rank", "fisher_ratio", "nc1"):
        assert counts[name] <= allowed + 1, (name, counts)
    assert counts["after"] <= allowed, counts
