"""The torch backend on a GPU against the Rust core (issue 16; docs/spec.md §8.6): equality, then time.

    python benches/bench_gpu.py                       # on CUDA: all cases at full size (a few minutes)
    python benches/bench_gpu.py --device cpu --small  # the same cases, small, on CPU torch (a trial run)
    python benches/bench_gpu.py --cases 2,3 --json /tmp/gpu.json

Cases (issue 16):
  1  KSG, N=1e5, 64-D x, 32-D y, k=3      rc.mutual_info(x, y, device=)
  2  gaussian_channel_mi, N=2e4, d=128, dropout variances, method="all"
  3  silhouette, N=5e4, d=512, 10 classes
  4  TwoNN, N=5e4, d=256 (points on a 16-D subspace)
  5  target: gaussian_channel_mi, N=5e4, d=512, dropout, method="all" — device only (< 20 s, < 8 GB)

For each case: the Rust path's value(s) and the device path's, their largest absolute and relative
difference (the k-NN cases also say whether the neighbour counts are identical: one count more or
less moves a KSG estimate by at least 1/(N(n+1)) ≥ 1/N², so |Δ| < 1/(2N²) means the same counts),
the median time of each (device: after a warm-up call, synchronised, medians of --repeats; Rust: one
call at full size, --repeats with --small), their ratio (Rust / device) and the device's peak memory
(torch.cuda.max_memory_allocated). A table on stdout, JSON under benches/results/.

Cases 1 and 4 call the k-NN functions' ``device=``, which arrives with the k-NN half of issue 16: until
then (no ``device`` in their signature) they are skipped with a note. Without CUDA the script says so
and exits 0, unless ``--device cpu`` is given.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "bench_gpu.json"
ALL_CASES = (1, 2, 3, 4, 5)

FULL = {1: {"n": 100_000}, 2: {"n": 20_000, "d": 128}, 3: {"n": 50_000, "d": 512}, 4: {"n": 50_000, "d": 256}}
FULL[5] = {"n": 50_000, "d": 512}
SMALL = {1: {"n": 2_000}, 2: {"n": 800, "d": 32}, 3: {"n": 2_000, "d": 64}, 4: {"n": 2_000, "d": 32}}
SMALL[5] = {"n": 1_500, "d": 64}


def has_device(fn: Any) -> bool:
    return "device" in inspect.signature(fn).parameters


class Clock:
    """Wall time of a call on the device, synchronised, and the device's peak memory in it."""

    def __init__(self, torch: Any, device: Any):
        self.torch, self.device = torch, device
        self.cuda = device.type == "cuda"

    def run(self, fn: Any, repeats: int) -> tuple[Any, float, int | None]:
        times, value, peak = [], None, None
        for _ in range(repeats):
            if self.cuda:
                self.torch.cuda.synchronize(self.device)
                self.torch.cuda.reset_peak_memory_stats(self.device)
            start = time.perf_counter()
            value = fn()
            if self.cuda:
                self.torch.cuda.synchronize(self.device)
            times.append(time.perf_counter() - start)
            if self.cuda:
                peak = max(peak or 0, int(self.torch.cuda.max_memory_allocated(self.device)))
        return value, statistics.median(times), peak


def host_time(fn: Any, repeats: int) -> tuple[Any, float]:
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return value, statistics.median(times)


def differences(a: dict[str, float | None], b: dict[str, float | None]) -> tuple[float, float, bool]:
    """Largest |a − b| and |a − b|/|a| over the fields both have, and whether every field is within
    the stated tolerance max(1e-10·|a|, 1e-12) (docs/spec.md §8.3: the absolute floor is for
    quantities near 0, such as the standard error when every term is log N)."""
    abs_d = rel_d = 0.0
    ok = True
    for key, x in a.items():
        y = b.get(key)
        if x is None or y is None or (math.isinf(x) and x == y):
            continue
        d = abs(x - y)
        abs_d, rel_d = max(abs_d, d), max(rel_d, d / abs(x) if x else (0.0 if d == 0 else math.inf))
        ok = ok and d <= max(1e-10 * abs(x), 1e-12)
    return abs_d, rel_d, ok


def channel_fields(r: Any) -> dict[str, float | None]:
    out = {f: getattr(r, f) for f in ("mi", "stderr", "lower", "upper", "maxent_upper", "h_z_given_x")}
    out["n_floored"] = float(r.n_floored)
    return out


def data_ksg(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 64))
    y = x[:, :32] @ rng.standard_normal((32, 32)) * 0.3 + rng.standard_normal((n, 32))
    return x, y


def data_channel(n: int, d: int, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    h = rng.standard_normal((10, d))[labels] + rng.standard_normal((n, d))
    return np.tanh(h), labels  # dropout after tanh: no unit exactly 0 (docs/spec.md §3.4)


def data_silhouette(n: int, d: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    return 1.5 * rng.standard_normal((10, d))[labels] + rng.standard_normal((n, d)), labels


def data_twonn(n: int, d: int, seed: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frame = np.linalg.qr(rng.standard_normal((d, 16)))[0]
    return np.ascontiguousarray(rng.standard_normal((n, 16)) @ frame.T)


def run_case(case: int, rc: Any, clock: Clock, device: Any, sizes: dict, repeats: int) -> dict[str, Any]:
    size = sizes[case]
    row: dict[str, Any] = {"case": case, "sizes": size}
    host_repeats = repeats if sizes is SMALL else 1
    if case in (1, 4):
        fn = rc.mutual_info if case == 1 else rc.twonn_dimension
        if not has_device(fn):
            row["skipped"] = f"rc.{fn.__name__} has no device= yet (the k-NN half of issue 16)"
            return row
    if case == 1:
        x, y = data_ksg(size["n"])
        row["what"] = f"KSG N={size['n']} 64-D x, 32-D y, k=3"
        dev, t_dev, peak = clock.run(lambda: rc.mutual_info(x, y, k=3, device=device), repeats)
        ref, t_ref = host_time(lambda: rc.mutual_info(x, y, k=3), host_repeats)
        d = abs(float(ref) - float(dev))
        row["values"] = {"rust": float(ref), "device": float(dev)}
        row["max_abs"], row["max_rel"], row["within_tolerance"] = differences({"I": float(ref)}, {"I": float(dev)})
        row["counts_identical"] = d < 0.5 / size["n"] ** 2
    elif case in (2, 5):
        h, labels = data_channel(size["n"], size["d"])
        row["what"] = f"gaussian_channel_mi N={size['n']} d={size['d']} dropout, labels, method=all"
        call = {"dropout_alpha": 0.25, "labels": labels, "method": "all"}
        dev, t_dev, peak = clock.run(lambda: rc.gaussian_channel_mi(h, device=device, **call), repeats)
        if case == 5:
            row["values"] = {"device": channel_fields(dev)}
            if device.type == "cuda" and sizes is FULL:  # the targets are for this size on a GPU
                row["targets"] = {"seconds": 20.0, "peak_bytes": 8 * 10**9}
            t_ref = None
        else:
            ref, t_ref = host_time(lambda: rc.gaussian_channel_mi(h, **call), host_repeats)
            row["values"] = {"rust": channel_fields(ref), "device": channel_fields(dev)}
            row["max_abs"], row["max_rel"], row["within_tolerance"] = differences(
                channel_fields(ref), channel_fields(dev)
            )
    elif case == 3:
        h, labels = data_silhouette(size["n"], size["d"])
        row["what"] = f"silhouette N={size['n']} d={size['d']} C=10"
        dev, t_dev, peak = clock.run(lambda: rc.silhouette(h, labels, device=device), repeats)
        ref, t_ref = host_time(lambda: rc.silhouette(h, labels), host_repeats)
        row["values"] = {"rust": ref, "device": dev}
        row["max_abs"], row["max_rel"], row["within_tolerance"] = differences({"s": ref}, {"s": dev})
    else:
        h = data_twonn(size["n"], size["d"])
        row["what"] = f"TwoNN N={size['n']} d={size['d']} (16-D subspace)"
        dev, t_dev, peak = clock.run(lambda: rc.twonn_dimension(h, device=device), repeats)
        ref, t_ref = host_time(lambda: rc.twonn_dimension(h), host_repeats)
        row["values"] = {"rust": ref, "device": dev}
        row["max_abs"], row["max_rel"], row["within_tolerance"] = differences({"d": ref}, {"d": dev})
    row["seconds_device"], row["seconds_rust"], row["peak_bytes"] = t_dev, t_ref, peak
    row["ratio_rust_over_device"] = None if t_ref is None else t_ref / t_dev
    return row


def fmt(x: Any, spec: str) -> str:
    return "—" if x is None else format(x, spec)


def print_table(rows: list[dict[str, Any]]) -> None:
    head = f"{'case':<66} {'max abs':>9} {'max rel':>9} {'device s':>9} {'rust s':>9} {'ratio':>7} {'peak MiB':>9}"
    print(head)
    print("-" * len(head))
    for r in rows:
        if "skipped" in r:
            print(f"{r['case']}: skipped — {r['skipped']}")
            continue
        peak = None if r["peak_bytes"] is None else r["peak_bytes"] / 2**20
        what = f"{r['case']}: {r['what']}"
        print(
            f"{what:<66} {fmt(r.get('max_abs'), '9.2e')} {fmt(r.get('max_rel'), '9.2e')} "
            f"{r['seconds_device']:9.3f} {fmt(r['seconds_rust'], '9.3f')} "
            f"{fmt(r['ratio_rust_over_device'], '7.2f')} {fmt(peak, '9.1f')}"
        )
        if "within_tolerance" in r:
            print(f"   every value within max(1e-10·|rust|, 1e-12) of the Rust path: {r['within_tolerance']}")
        if "counts_identical" in r:
            print(f"   neighbour counts identical: {r['counts_identical']}")
        if "targets" in r:
            fast = r["seconds_device"] < r["targets"]["seconds"]
            small = r["peak_bytes"] is None or r["peak_bytes"] < r["targets"]["peak_bytes"]
            print(f"   targets: < 20 s {'PASS' if fast else 'FAIL'}; peak < 8 GB {'PASS' if small else 'FAIL'}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", help="torch device of the device path (default cuda)")
    ap.add_argument("--small", action="store_true", help="small sizes (for a trial run, e.g. on CPU torch)")
    ap.add_argument("--cases", default=",".join(map(str, ALL_CASES)), help="comma-separated case numbers")
    ap.add_argument("--repeats", type=int, default=3, help="timed device calls per case (median)")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"output JSON (default {DEFAULT_JSON})")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    import torch

    import repcompress as rc

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("bench_gpu: no CUDA device here (torch.cuda.is_available() is False); nothing to measure.")
        print("           Run it on a CUDA machine, or try it with --device cpu --small.")
        return 0
    cases = [int(c) for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(cases) - set(ALL_CASES))
    if unknown:
        ap.error(f"--cases: unknown {unknown}; expected some of {list(ALL_CASES)}")
    sizes = SMALL if args.small else FULL
    clock = Clock(torch, device)
    # Warm-up on the device (context, kernels, cuBLAS handles): not timed.
    warm, warm_labels = data_channel(64, 8)
    rc.gaussian_channel_mi(warm, dropout_alpha=0.25, labels=warm_labels, device=device)
    rc.silhouette(warm, warm_labels, device=device)
    startup = time.perf_counter() - start
    print(
        f"bench_gpu on {device} ({'small' if args.small else 'full'} sizes); torch start-up + warm-up {startup:.1f} s"
    )
    rows = [run_case(c, rc, clock, device, sizes, args.repeats) for c in cases]
    print_table(rows)
    total = time.perf_counter() - start
    print(f"total {total:.1f} s")
    out = {
        "provenance": provenance(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU torch",
        "torch": torch.__version__,
        "sizes": "small" if args.small else "full",
        "startup_seconds": startup,
        "total_seconds": total,
        "cases": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2, default=float) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
