"""Benchmark repcompress.gaussian_channel_mi against numpy peers (benches/peers_gaussian.py).

Ours and the peers are timed in the same run, on the same arrays and the same draws, calls
interleaved; each timing is the median of several repeats (see bench_knn.Timer); the table
reports ratios peer / ours. Peak memory of one call at N = 20000, d = 128 is measured in a fresh
subprocess.

    python benches/bench_gaussian.py            # N = 5000, d = 64 and the memory cases (minutes)
    python benches/bench_gaussian.py --quick    # N = 2000, fewer repeats, additive memory case only
    python benches/bench_gaussian.py --json out.json --threads 2
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import repcompress as rc
from bench_knn import measure
from peers_gaussian import matrix_product, straightforward
from provenance import provenance
from repcompress.gaussian_channel import draw_noise

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "results" / "bench_gaussian.json"
AGREEMENT_TOL = 1e-8  # relative to max(1, |value|), ours vs each peer on identical inputs
TARGETS = {"straightforward": 20.0, "matrix_product": 1.5}
MEMORY_TARGET_BYTES = 1 << 30
SEED = 3


def channel(kind, n, d, seed=SEED):
    """Means and keyword arguments for ours; the full N × d variance array for the peers."""
    rng = np.random.default_rng(seed)
    if kind == "additive":
        means = rng.standard_normal((n, d))
        noise = rng.uniform(0.2, 1.0, d)
        return means, {"noise_variance": noise}, np.tile(noise, (n, 1)), True
    # Gaussian dropout on softplus units (never exactly 0), α = p/(1−p) with p = 0.2.
    means = np.log1p(np.exp(rng.standard_normal((n, d))))
    alpha = 0.25
    return means, {"dropout_alpha": alpha}, alpha * means**2, False


def agreement(ours, peer):
    worst = 0.0
    for key in ("mi", "upper", "lower", "maxent_upper"):
        a, b = getattr(ours, key), peer[key]
        worst = max(worst, abs(a - b) / max(1.0, abs(a)))
    return worst


def timing_case(kind, n, d, repeats, budget_s, threads):
    means, kwargs, full, shared = channel(kind, n, d)
    draws = draw_noise(SEED, n, d, 1)
    ours_fn = lambda: rc.gaussian_channel_mi(means, method="all", random_state=SEED, **kwargs)  # noqa: E731
    peers = {
        "straightforward": lambda: straightforward(means, full, draws),
        "matrix_product": lambda: matrix_product(means, full, draws, shared=shared),
    }
    timers = measure(ours_fn, *peers.values(), repeats=repeats, budget_s=budget_s)
    ours_t = timers[0]
    rows = []
    for (name, _), t in zip(peers.items(), timers[1:], strict=True):
        ratio = t.median / ours_t.median
        rows.append(
            {
                "case": f"{kind} N={n} d={d} method=all vs numpy {name}",
                "ours_s": ours_t.median,
                "peer_s": t.median,
                "ratio": ratio,
                "target": TARGETS[name],
                "pass": ratio >= TARGETS[name],
                "reps": f"{len(ours_t.times)}/{len(t.times)}",
                "threads": threads,
                "agreement": agreement(ours_t.value, t.value),
                "ours_value": ours_t.value.mi,
                "peer_value": t.value["mi"],
            }
        )
    return rows


MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, time
    import numpy as np
    sys.path.insert(0, {here!r})
    from bench_gaussian import channel
    import repcompress as rc
    if {threads} > 0:
        rc.set_num_threads({threads})
    means, kwargs, full, shared = channel({kind!r}, {n}, {d})
    del full
    def status(key):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    before = status("VmRSS")
    t0 = time.perf_counter()
    r = rc.gaussian_channel_mi(means, method={method!r}, **kwargs)
    seconds = time.perf_counter() - t0
    # VmHWM belongs to this process image; ru_maxrss would also count the parent's RSS at fork
    # time (it survives exec), which is large right after the peers ran.
    peak = status("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({{"before": before, "peak": peak, "seconds": seconds, "mi": r.mi, "upper": r.upper}}))
    """
)


def memory_case(kind, n, d, method, threads):
    script = MEMORY_SCRIPT.format(here=str(HERE), threads=threads or 0, kind=kind, n=n, d=d, method=method)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    m = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "case": f"memory {kind} N={n} d={d} method={method}",
        "peak_bytes": m["peak"],
        "added_bytes": m["peak"] - m["before"],
        "seconds": m["seconds"],
        "pass": m["peak"] < MEMORY_TARGET_BYTES,
        "mi": m["mi"],
        "upper": m["upper"],
    }


def print_tables(timing, memory):
    header = f"{'case':<62} {'ours (s)':>9} {'peer (s)':>9} {'ratio':>8}  {'target':<10} {'reps o/p':>8} {'agree':>9}"
    print(header)
    print("-" * len(header))
    for r in timing:
        mark = "PASS" if r["pass"] else "FAIL"
        print(
            f"{r['case']:<62} {r['ours_s']:>9.3f} {r['peer_s']:>9.3f} {r['ratio']:>7.1f}x  "
            f">= {r['target']:g}x {mark:<4} {r['reps']:>8} {r['agreement']:>9.1e}"
        )
    print()
    for m in memory:
        mark = "PASS" if m["pass"] else "FAIL"
        print(
            f"{m['case']}: total peak RSS {m['peak_bytes'] / 2**20:.1f} MiB (call added "
            f"{m['added_bytes'] / 2**20:.1f} MiB), {m['seconds']:.1f} s; target < 1024 MiB {mark}"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument(
        "--memory-only", action="store_true", help="only the memory cases; replaces them in an existing --json file"
    )
    args = parser.parse_args(argv)
    if args.threads:
        rc.set_num_threads(args.threads)
    threads = rc.get_num_threads()
    n, d = (2000, 64) if args.quick else (5000, 64)
    repeats = args.repeats or (3 if args.quick else 5)
    budget = 10.0 if args.quick else 120.0
    timing = []
    if args.memory_only and args.json.exists():
        timing = json.loads(args.json.read_text())["timing"]
    elif not args.memory_only:
        for kind in ("additive", "dropout"):
            timing += timing_case(kind, n, d, repeats, budget, threads)
    memory = []
    if not args.skip_memory:
        memory.append(memory_case("additive", 20_000, 128, "all", args.threads))
        if not args.quick:
            memory.append(memory_case("dropout", 20_000, 128, "mc", args.threads))
            memory.append(memory_case("dropout", 20_000, 128, "all", args.threads))
    print_tables(timing, memory)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "provenance": provenance(),
                "date": datetime.datetime.now().isoformat(timespec="seconds"),
                "environment": {
                    "python": platform.python_version(),
                    "numpy": np.__version__,
                    "cpus": os.cpu_count(),
                    "threads": threads,
                    "machine": platform.machine(),
                },
                "args": {k: str(v) for k, v in vars(args).items()},
                "timing": timing,
                "memory": memory,
            },
            indent=2,
            default=str,
        )
    )
    print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
