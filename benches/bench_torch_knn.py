"""Benchmark the torch backend of the k-NN estimators (issue 16) against the Rust core.

The same arrays go to both back-ends in the same run (median of repeats); the table reports the
ratio and checks that the two estimates are equal (they must be: docs/spec.md §8.2). On a CUDA
device it also reports the peak GPU memory of the torch call.

    python benches/bench_torch_knn.py                           # CUDA if there is one, else CPU torch
    python benches/bench_torch_knn.py --device cpu --n 20000    # CPU torch vs the core
    python benches/bench_torch_knn.py --json /tmp/out.json

Cases (N from --n, default 1e5 on CUDA, 2e4 on the CPU)
  G1  mutual_info KSG-1, x 64-D + y 32-D, float64 with the default pre-processing.
      Target on an H200 at N = 1e5: < 2 s, peak GPU memory < 8 GB.
  G2  the same data in float32 with normalize=False, jitter=0 (computed in float32 on both).
  G3  entropy, Euclidean, 64-D float64, normalize=False.
"""

import argparse
import datetime
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

import repcompress as rc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "bench_torch_knn.json"


def median_time(fn, repeats, device):
    times, value = [], None
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        value = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), value


def case(name, ours, peer, repeats, device):
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    ours_s, ours_value = median_time(ours, repeats, device)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    peer_s, peer_value = median_time(peer, repeats, torch.device("cpu"))
    return {
        "case": name,
        "torch_s": ours_s,
        "core_s": peer_s,
        "ratio_torch_over_core": ours_s / peer_s,
        "equal": ours_value == peer_value,
        "torch_value": ours_value,
        "core_value": peer_value,
        "peak_gpu_bytes": peak,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = ap.parse_args()
    device = torch.device(args.device)
    n = args.n or (100_000 if device.type == "cuda" else 20_000)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 64))
    y = x[:, :32] + rng.standard_normal((n, 32))
    xd, yd = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    xd32, yd32 = xd.float(), yd.float()
    exact = {"normalize": False, "jitter": 0}
    rows = [
        case(
            f"G1 KSG-1 N={n} 64-D + 32-D float64",
            lambda: rc.mutual_info(xd, yd, device=device),
            lambda: rc.mutual_info(x, y),
            args.repeats,
            device,
        ),
        case(
            f"G2 KSG-1 N={n} 64-D + 32-D float32, no pre-processing",
            lambda: rc.mutual_info(xd32, yd32, device=device, **exact),
            lambda: rc.mutual_info(x32, y32, **exact),
            args.repeats,
            device,
        ),
        case(
            f"G3 entropy Euclidean N={n} 64-D float64",
            lambda: rc.entropy(xd, metric="euclidean", device=device),
            lambda: rc.entropy(x, metric="euclidean"),
            args.repeats,
            device,
        ),
    ]
    print(f"{'case':<58} {'torch':>9} {'core':>9} {'ratio':>7} {'equal':>6} {'peak GPU':>10}")
    for r in rows:
        peak = "" if r["peak_gpu_bytes"] is None else f"{r['peak_gpu_bytes'] / 2**30:.2f} GiB"
        print(
            f"{r['case']:<58} {r['torch_s']:>8.2f}s {r['core_s']:>8.2f}s {r['ratio_torch_over_core']:>6.2f}x "
            f"{r['equal']!s:>6} {peak:>10}"
        )
    meta = {
        "date": datetime.date.today().isoformat(),
        "machine": platform.platform(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "core_threads": rc.get_num_threads(),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"provenance": provenance(), "meta": meta, "results": rows}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
