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


# The child sizes the pool to `threads`, runs one estimate (which starts the pool) and reports the
# CPUs each pool worker may run on, read from /proc (the workers are named repcompress-<i>).
PLACEMENT_CHILD = textwrap.dedent(
    """
    import json, os, sys, time
    import numpy as np
    import repcompress as rc

    def cpus(path):
        for line in open(path + "/status"):
            if line.startswith("Cpus_allowed_list:"):
                spec = line.split(":", 1)[1].strip()
        out = set()
        for part in spec.split(","):
            lo, _, hi = part.partition("-")
            out.update(range(int(lo), int(hi or lo) + 1))
        return sorted(out)

    threads, expect = int(sys.argv[1]), sys.argv[2]
    rc.set_num_threads(threads)
    rc.entropy(np.random.default_rng(0).standard_normal((2000, 3)), k=3)

    def workers():
        out = {}
        for tid in os.listdir("/proc/self/task"):
            path = f"/proc/self/task/{tid}"
            name = open(path + "/comm").read().strip()
            if name.startswith("repcompress-"):
                out[name] = cpus(path)
        return out

    # A worker names itself, then places itself, when it first runs, which may be after the call
    # returned: wait (30 s at most) for the placement the parent expects, then read once more.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        seen = workers()
        if len(seen) == threads and all((len(c) == 1) == (expect == "pinned") for c in seen.values()):
            break
        time.sleep(0.01)
    time.sleep(0.1)
    print(json.dumps({"process": sorted(os.sched_getaffinity(0)), "workers": workers()}))
    """
)


def worker_placement(threads, expect, pin=None):
    env = dict(os.environ)
    env.pop("REPCOMPRESS_PIN_THREADS", None)
    if pin is not None:
        env["REPCOMPRESS_PIN_THREADS"] = pin
    args = [sys.executable, "-c", PLACEMENT_CHILD, str(threads), expect]
    out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux's /proc/self/task")
def test_a_pool_of_one_worker_per_cpu_has_each_worker_on_its_own_cpu():
    """docs/spec.md §0.7: with one worker per usable CPU (the default) worker i runs on the i-th
    CPU; a smaller pool, or REPCOMPRESS_PIN_THREADS=0, leaves the workers on all of them."""
    process = sorted(os.sched_getaffinity(0))
    n = len(process)
    full = worker_placement(n, "pinned" if n >= 2 else "free")
    assert full["process"] == process
    names = [f"repcompress-{i}" for i in range(n)]
    assert sorted(full["workers"]) == sorted(names), full
    if n >= 2:
        assert [full["workers"][name] for name in names] == [[c] for c in process], full
    else:
        assert full["workers"] == {"repcompress-0": process}, full
    for placement in (worker_placement(n, "free", pin="0"), worker_placement(n + 1, "free")):
        assert placement["workers"], placement
        assert all(cpus == process for cpus in placement["workers"].values()), placement
