"""Our parallel calls right after another library's parallel work: NumPy's OpenBLAS threads.

OpenBLAS keeps its worker threads spinning for a while after a parallel matrix product before they
sleep. A repcompress call made in that window shares the cores with them: on 2 cores its time
doubled (benches/README.md, "Other libraries' thread pools"). This script measures it: the median
time of one estimate
- back to back (the previous call was the same estimate),
- right after a NumPy 300 x 300 matrix product,
- right after the same product under ``threadpoolctl.threadpool_limits(1, "blas")``,
- after a 0.3 s sleep, and after 0.3 s of single-threaded NumPy work (as when estimates alternate
  with a single-threaded peer, or with other work of a training loop).

    python benches/bench_thread_pools.py [--repeats 9] [--json FILE]

The last two conditions measure the placement of the pool's workers (docs/spec.md §0.7): run it
once as it is and once with ``REPCOMPRESS_PIN_THREADS=0`` to compare pinned and unpinned workers;
the output says which CPUs each worker may use.

The estimates: ``entropy`` of a 4-D Gaussian and ``mutual_info`` of 1-D x and y, N = 10^5, k = 3
(the data of bench_knn.py's cases 6 and 1), on the library's default threads.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_knn import data_case1, data_case6


def median_ms(estimate: Callable[[], float], before: Callable[[], object], repeats: int) -> float:
    """Median wall time (ms) of `estimate()` over `repeats` calls, each right after `before()`."""
    times = []
    for _ in range(repeats):
        before()
        start = time.perf_counter()
        estimate()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def worker_cpus() -> dict[str, str]:
    """Each pool worker's allowed CPUs as /proc lists them (Linux; empty elsewhere)."""
    out = {}
    task = Path("/proc/self/task")
    if not task.is_dir():
        return out
    for t in task.iterdir():
        try:
            name = (t / "comm").read_text().strip()
            if name.startswith("repcompress-"):
                status = (t / "status").read_text().splitlines()
                out[name] = next(
                    line.split(":", 1)[1].strip() for line in status if line.startswith("Cpus_allowed_list")
                )
        except OSError:  # the thread ended while being read
            continue
    return dict(sorted(out.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9, help="calls per condition (median)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    from threadpoolctl import threadpool_info, threadpool_limits

    import repcompress as rc

    a = np.random.default_rng(1).standard_normal((300, 300))

    def product():
        return a @ a

    def product_one_thread():
        with threadpool_limits(1, user_api="blas"):
            return a @ a

    def nothing():
        return None

    big = np.random.default_rng(2).standard_normal(200_000)

    def single_threaded_work(seconds=0.3):
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            np.sort(big)

    conditions = {
        "back to back": nothing,
        "after a NumPy product": product,
        "after a product limited to 1 BLAS thread": product_one_thread,
        "after a 0.3 s sleep": lambda: time.sleep(0.3),
        "after 0.3 s of single-threaded NumPy work": single_threaded_work,
    }
    x6 = data_case6()
    x1, y1 = data_case1(100_000)
    estimates = {
        "entropy, 4-D, N=1e5": lambda: rc.entropy(x6, k=3),
        "mutual_info, 1-D/1-D, N=1e5": lambda: rc.mutual_info(x1, y1, k=3),
    }
    blas = [
        {key: pool.get(key) for key in ("internal_api", "num_threads", "version")}
        for pool in threadpool_info()
        if pool.get("user_api") == "blas"
    ]
    results = []
    for name, estimate in estimates.items():
        for _ in range(2):  # warm-up: imports, first-touch of the data
            estimate()
        if not results:
            placement = worker_cpus()
            print(f"repcompress threads: {rc.get_num_threads()} (allowed CPUs: {placement}); BLAS pools: {blas}")
        for condition, before in conditions.items():
            ms = median_ms(estimate, before, args.repeats)
            results.append({"estimate": name, "condition": condition, "median_ms": round(ms, 2)})
            print(f"{name:30s}  {condition:42s}  {ms:7.1f} ms")
    if args.json:
        payload = {
            "threads": rc.get_num_threads(),
            "worker_cpus": placement,
            "pin_env": os.environ.get("REPCOMPRESS_PIN_THREADS"),
            "blas": blas,
            "repeats": args.repeats,
            "platform": platform.platform(),
            "results": results,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
