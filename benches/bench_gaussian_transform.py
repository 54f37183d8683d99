"""Benchmark gaussian_channel_mi(..., transform=W), a Linear layer after the noise (docs/spec.md §3.14),
against the batched-numpy peer ``peers_gaussian.full_covariance``.

Ours and the peer are timed in the same run, on the same arrays and the same draws of T, calls
interleaved; each timing is the median of several repeats (bench_knn.measure); the table reports the
ratio peer / ours and the largest difference of the four quantities (mi, upper, lower, maxent_upper).

    python benches/bench_gaussian_transform.py              # N = 2000, d = 32 dropout, r = 10
    python benches/bench_gaussian_transform.py --quick      # fewer repeats
    python benches/bench_gaussian_transform.py --json out.json --threads 2
"""

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import repcompress as rc
from bench_knn import measure
from peers_gaussian import full_covariance
from provenance import provenance
from repcompress.gaussian_channel import draw_noise

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "results" / "bench_gaussian_transform.json"
SEED = 3


def dropout_case(n, d, r, seed=SEED):
    """Gaussian dropout (α = 0.25) on softplus units (never exactly 0, nothing floored), then a
    random r × d Linear layer (full row rank)."""
    rng = np.random.default_rng(seed)
    means = np.log1p(np.exp(rng.standard_normal((n, d))))
    w = rng.standard_normal((r, d)) / np.sqrt(d)
    return means, 0.25, w


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    if args.threads:
        rc.set_num_threads(args.threads)
    threads = rc.get_num_threads()
    n, d, r = 2000, 32, 10
    repeats = args.repeats or (3 if args.quick else 5)
    budget = 20.0 if args.quick else 120.0
    means, alpha, w = dropout_case(n, d, r)
    draws = draw_noise(SEED, n, d, 1)

    def ours():
        return rc.gaussian_channel_mi(means, dropout_alpha=alpha, transform=w, random_state=SEED)

    def peer():
        return full_covariance(means, alpha * means**2, w, draws)

    t_ours, t_peer = measure(ours, peer, repeats=repeats, budget_s=budget)
    keys = ("mi", "upper", "lower", "maxent_upper")
    diff = max(abs(getattr(t_ours.value, k) - t_peer.value[k]) for k in keys)
    row = {
        "case": f"dropout N={n} d={d} r={r} method=all vs numpy full_covariance",
        "ours_s": t_ours.median,
        "peer_s": t_peer.median,
        "ratio": t_peer.median / t_ours.median,
        "reps": f"{len(t_ours.times)}/{len(t_peer.times)}",
        "threads": threads,
        "max_abs_diff": diff,
        "ours": {k: getattr(t_ours.value, k) for k in keys},
        "peer": {k: t_peer.value[k] for k in keys},
    }
    header = f"{'case':<62} {'ours (s)':>9} {'peer (s)':>9} {'ratio':>8} {'reps o/p':>8} {'max |diff|':>10}"
    print(header)
    print("-" * len(header))
    print(
        f"{row['case']:<62} {row['ours_s']:>9.3f} {row['peer_s']:>9.3f} {row['ratio']:>7.1f}x "
        f"{row['reps']:>8} {diff:>10.1e}"
    )
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
                "timing": [row],
            },
            indent=2,
            default=str,
        )
    )
    print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
