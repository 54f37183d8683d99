"""Benchmark of repcompress sweeps: throughput, overhead per task and resume cost (issue 17).

    python benches/bench_sweep.py                       # the paper's CIFAR shape: 10 checkpoints x 3 layers
    python benches/bench_sweep.py --checkpoints 1       # one checkpoint (what docs/scaling.md measured)
    python benches/bench_sweep.py --json /tmp/out.json

Workloads (synthetic; z = class mean + noise, float32, 10 classes, per-sample variances 0.5):
  paper     checkpoints x layers archives, N = 10^4, d = 256 / 384 / 512 by layer; metrics cdnv,
            nc1, gaussian-mi, mi-labels: one task per (file, metric). Swept with the local pool
            and a 2-worker Dask LocalCluster (loopback), then rerun (the resume cost: nothing to do).
  overhead  many small archives (N = 2000, d = 32) and cdnv only (a few ms per task): the cost per
            task of the engine itself, against the peer, a plain loop of estimate_file in one
            process (what a user writes without sweeps).

Per task the table gives its seconds (in its worker) and peak resident memory. The overhead per
task is (wall x workers - sum of the task seconds) / tasks: time the workers spent not computing.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance
from repcompress.estimate import estimate_file
from repcompress.sweeps import sweep

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "bench_sweep.json"
PAPER_METRICS = ["cdnv", "nc1", "gaussian-mi", "mi-labels"]
WIDTHS = (256, 384, 512)


def write_paper_archives(directory, checkpoints, layers, n, classes, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for epoch in range(checkpoints):
        for layer in range(layers):
            d = WIDTHS[layer % len(WIDTHS)]
            labels = rng.integers(0, classes, n)
            means = rng.standard_normal((classes, d)) * (1 + epoch / max(checkpoints, 1))
            z = (means[labels] + rng.standard_normal((n, d))).astype(np.float32)
            path = directory / f"epoch{epoch:03d}_layer{layer}.npz"
            np.savez(path, z=z, labels=labels, variances=np.full_like(z, 0.5))
            rows.append({"path": path.name, "setup": "bench", "epoch": epoch, "layer": f"layer{layer}", "d": d})
    manifest = directory / "manifest.json"
    manifest.write_text(json.dumps(rows))
    return manifest


def write_small_archives(directory, count, n=2000, d=32, classes=10, seed=1):
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        labels = rng.integers(0, classes, n)
        z = (rng.standard_normal((classes, d))[labels] + rng.standard_normal((n, d))).astype(np.float32)
        np.savez(directory / f"small{i:04d}.npz", z=z, labels=labels)
    return directory


def task_table(frame):
    """One row per task: its metric, seconds, peak memory (the first row of each task)."""
    return frame.drop_duplicates(["file", "task_metric"])[["file", "task_metric", "seconds", "peak_rss_bytes", "d"]]


def timed_sweep(*args, **kwargs):
    start = time.perf_counter()
    result = sweep(*args, progress=False, **kwargs)
    return result, time.perf_counter() - start


def summarize(name, result, wall, workers):
    tasks = result.frame.drop_duplicates(["file", "task_metric"])
    busy = float(tasks["seconds"].sum())
    n = len(tasks)
    return {
        "run": name,
        "tasks": n,
        "run_now": result.n_run,
        "wall_s": wall,
        "tasks_per_min": 60 * result.n_run / wall if result.n_run else None,
        "task_seconds_sum": busy,
        "overhead_per_task_s": (wall * workers - busy) / n if result.n_run else None,
        "failed": result.n_failed,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoints", type=int, default=10)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--small-files", type=int, default=60)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    runs, per_task = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        acts = tmp / "paper"
        acts.mkdir()
        start = time.perf_counter()
        manifest = write_paper_archives(acts, args.checkpoints, args.layers, args.n, args.classes)
        print(f"wrote {args.checkpoints * args.layers} archives in {time.perf_counter() - start:.1f} s", flush=True)

        local, wall = timed_sweep(manifest, PAPER_METRICS, tmp / "out-local", n_workers=args.workers)
        runs.append(summarize("paper, local pool", local, wall, args.workers))
        print(runs[-1], flush=True)
        resumed, wall = timed_sweep(manifest, PAPER_METRICS, tmp / "out-local", n_workers=args.workers)
        runs.append(summarize("paper, rerun (resume, nothing to do)", resumed, wall, args.workers))
        print(runs[-1], flush=True)

        start = time.perf_counter()
        cluster = LocalCluster(
            n_workers=args.workers, processes=True, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
        )
        client = Client(cluster)
        cluster_start = time.perf_counter() - start
        try:
            remote, wall = timed_sweep(manifest, PAPER_METRICS, tmp / "out-dask", client=client)
            runs.append(summarize("paper, Dask LocalCluster", remote, wall, args.workers))
            print(runs[-1], flush=True)
            key = ["file", "task_metric", "metric"]
            a = local.frame.sort_values(key)["value"].to_numpy()
            b = remote.frame.sort_values(key)["value"].to_numpy()
            identical = bool(np.array_equal(a, b, equal_nan=True))

            small = write_small_archives(tmp / "small", args.small_files)
            start = time.perf_counter()
            for path in sorted(small.glob("*.npz")):
                estimate_file(path, ["cdnv"])
            peer_wall = time.perf_counter() - start
            runs.append(
                {
                    "run": "overhead, peer: a loop of estimate_file",
                    "tasks": args.small_files,
                    "wall_s": peer_wall,
                    "tasks_per_min": 60 * args.small_files / peer_wall,
                }
            )
            for name, kwargs in (
                ("local pool", {"n_workers": args.workers}),
                ("Dask LocalCluster", {"client": client}),
            ):
                result, wall = timed_sweep(small, ["cdnv"], tmp / f"out-small-{name}", **kwargs)
                runs.append(summarize(f"overhead, {name}", result, wall, args.workers))
                print(runs[-1], flush=True)
        finally:
            client.close()
            cluster.close()

    tasks = task_table(local.frame)
    for (metric, d), group in tasks.groupby(["task_metric", "d"]):
        per_task[f"{metric} d={d}"] = {
            "median_s": float(statistics.median(group["seconds"])),
            "peak_rss_mib": float(group["peak_rss_bytes"].max() / 2**20),
            "count": len(group),
        }
    print()
    print(f"{'run':45} {'tasks':>6} {'wall s':>8} {'tasks/min':>10} {'overhead/task s':>16}")
    for run in runs:
        tpm = "-" if run.get("tasks_per_min") is None else f"{run['tasks_per_min']:.2f}"
        over = "-" if run.get("overhead_per_task_s") is None else f"{run['overhead_per_task_s']:.3f}"
        print(f"{run['run']:45} {run['tasks']:>6} {run['wall_s']:>8.2f} {tpm:>10} {over:>16}")
    print()
    heading = f"task (N={args.n}, 1 thread)"
    print(f"{heading:30} {'median s':>9} {'peak RSS MiB':>13}")
    for name, row in per_task.items():
        print(f"{name:30} {row['median_s']:>9.2f} {row['peak_rss_mib']:>13.0f}")
    print(f"\nDask LocalCluster start: {cluster_start:.2f} s; Dask values identical to local: {identical}")
    out = {
        "provenance": provenance(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "runs": runs,
        "per_task": per_task,
        "dask_cluster_start_s": cluster_start,
        "dask_identical_to_local": identical,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
