"""Benchmark the binned estimators and the parallel resampling (issue 3).

Ours and the reference are timed in the same run on the same arrays (median of repeats,
alternating calls); the table reports ratios because absolute seconds are not comparable
between machines.

    python benches/bench_binning.py            # all cases
    python benches/bench_binning.py --quick    # fewer repeats
    python benches/bench_binning.py --json /tmp/out.json

Cases
  B1  binned_entropy, N = 1e5, d = 128, 30 bins (uniform, layer range) vs numpy: the same bin
      indices, then np.unique(codes, axis=0, return_counts=True). Target: >= 20x.
  B2  peak memory of binning_information_plane, N = 1e6, d = 16 (a fresh subprocess; VmHWM,
      which includes Python, numpy and the 128 MB input). Target: < 1 GB.
  B3  confidence_interval(mutual_info), N = 4000, 1-D, 200 half-samples: 2 threads vs 1
      (target >= 1.7x), and our parallel resampling vs calling the estimator once per resample.
  B4  confidence_interval(binned_mutual_info), N = 1e5, d = 8, 200 bootstrap resamples:
      2 threads vs 1.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

import repcompress as rc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "bench_binning.json"


def numpy_binned_entropy(z, n_bins=30):
    """The slow reference: all bin indices, then np.unique over rows."""
    lo, hi = z.min(), z.max()
    width = (hi - lo) / n_bins
    codes = np.clip(np.floor((z - lo) / width), 0, n_bins - 1).astype(np.int64)
    _, counts = np.unique(codes, axis=0, return_counts=True)
    p = counts / z.shape[0]
    return float(-(p * np.log(p)).sum())


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def alternate(fns, repeats):
    """Median times of several callables, called in alternation (noise hits all alike)."""
    times = [[] for _ in fns]
    for fn in fns:  # warm-up
        fn()
    for _ in range(repeats):
        for t, fn in zip(times, fns, strict=True):
            t0 = time.perf_counter()
            fn()
            t.append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def case_b1(repeats):
    rng = np.random.default_rng(1)
    z = np.tanh(rng.standard_normal((100_000, 128)))
    ours, ref = rc.binned_entropy(z), numpy_binned_entropy(z)
    assert abs(ours - ref) < 1e-10, (ours, ref)
    t_ours, t_ref = alternate([lambda: rc.binned_entropy(z), lambda: numpy_binned_entropy(z)], repeats)
    return {
        "case": "B1 binned_entropy N=1e5 d=128 30 bins",
        "ours_s": t_ours,
        "peer_s": t_ref,
        "peer": "numpy np.unique(axis=0)",
        "ratio": t_ref / t_ours,
        "target": 20.0,
    }


_B2_CHILD = textwrap.dedent(
    """
    import numpy as np, repcompress as rc

    def hwm():  # peak RSS of this process image (VmHWM starts afresh at exec, unlike ru_maxrss)
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024

    rng = np.random.default_rng(2)
    z = rng.standard_normal((1_000_000, 16))
    labels = rng.integers(0, 10, 1_000_000)
    before = hwm()
    p = rc.binning_information_plane(z, labels, n_bins=30)
    print(before, hwm(), p.n_patterns)
    """
)


def case_b2():
    out = subprocess.run([sys.executable, "-c", _B2_CHILD], capture_output=True, text=True, check=True)
    before, after, patterns = (int(v) for v in out.stdout.split())
    return {
        "case": "B2 binning_information_plane N=1e6 d=16 peak RSS",
        "peak_bytes": after,
        "before_call_bytes": before,
        "n_patterns": patterns,
        "target_bytes": 1 << 30,
        "ok": after < (1 << 30),
    }


def _scaling(label, call, repeats):
    """t(1 thread) / t(2 threads): calls on 1 and on 2 threads alternate, so that slow spells of a
    shared machine hit both; at least 15 of each, since one call is a fraction of a second."""
    before = rc.get_num_threads()

    def on(threads):
        def run():
            rc.set_num_threads(threads)
            call()

        return run

    try:
        t1, t2 = alternate([on(1), on(2)], max(15, repeats))
    finally:
        rc.set_num_threads(before)
    return {
        "case": label,
        "one_thread_s": t1,
        "two_threads_s": t2,
        "ratio": t1 / t2,
        "target": 1.7,
        "repeats": max(15, repeats),
    }


def case_b3(repeats):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(4000)
    y = 0.6 * x + 0.8 * rng.standard_normal(4000)
    call = lambda: rc.confidence_interval(rc.mutual_info, x, y, n_resamples=200, progress=False)  # noqa: E731
    scaling = _scaling("B3 CI(mutual_info) N=4000 200 half-samples: 2 threads vs 1", call, repeats)
    loop = lambda: rc.confidence_interval(  # noqa: E731
        lambda a, b: rc.mutual_info(a, b), x, y, n_resamples=200, progress=False
    )
    rc.set_num_threads(2)
    t_fast, t_loop = alternate([call, loop], repeats)
    return [
        scaling,
        {
            "case": "B3' CI(mutual_info) parallel resampling vs one call per resample (2 threads)",
            "ours_s": t_fast,
            "peer_s": t_loop,
            "peer": "Python loop over resamples",
            "ratio": t_loop / t_fast,
        },
    ]


def case_b4(repeats):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((100_000, 8))
    y = (x[:, 0] + rng.standard_normal(100_000) > 0).astype(int)
    call = lambda: rc.confidence_interval(rc.binned_mutual_info, x, y, n_bins=5, n_resamples=200, progress=False)  # noqa: E731
    return _scaling("B4 CI(binned_mutual_info) N=1e5 d=8 200 bootstraps: 2 threads vs 1", call, repeats)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = ap.parse_args()
    repeats = 3 if args.quick else 7
    rows = [case_b1(repeats), case_b2(), *case_b3(max(3, repeats // 2)), case_b4(max(3, repeats // 2))]
    print(f"{'case':<82} {'result':>30}")
    for r in rows:
        if "peak_bytes" in r:
            res = f"{r['peak_bytes'] / 2**20:.0f} MiB peak ({'ok' if r['ok'] else 'OVER'})"
        elif "one_thread_s" in r:
            res = f"{r['one_thread_s']:.2f}s / {r['two_threads_s']:.2f}s = {r['ratio']:.2f}x"
        else:
            res = f"{r['ours_s']:.3f}s vs {r['peer_s']:.3f}s = {r['ratio']:.1f}x"
        print(f"{r['case']:<82} {res:>30}")
    meta = {
        "date": datetime.date.today().isoformat(),
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"provenance": provenance(), "meta": meta, "results": rows}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
