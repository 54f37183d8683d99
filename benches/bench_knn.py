"""Benchmark repcompress' k-NN mutual information against its peers.

Ours and the peer are timed in the same run, on the same arrays, alternating
calls so that noise from a shared machine hits both alike. Each timing is the
median of several repeats; the table reports ratios (peer / ours) because
absolute seconds are not comparable between machines.

    python benches/bench_knn.py              # everything (several minutes)
    python benches/bench_knn.py --quick      # fewer repeats, no N=1e6 sklearn
    python benches/bench_knn.py --cases 2,3 --threads 2 --json /tmp/out.json

See benches/README.md for what each case measures.
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
import scipy
from scipy.special import digamma

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import ksg1_neighbour_counts_ckdtree, mutual_info_ksg1_ckdtree
from provenance import provenance

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "bench_knn.json"
ALL_CASES = (1, 2, 3, 4, 5, 6)
AGREEMENT_TOL = 1e-10  # ours vs cKDTree peer on identical arrays (cases 2, 3)
# ours vs NPEET (case 6): both jitter by ~1e-10 (NPEET uniform absolute noise, ours Gaussian relative),
# which moves log eps_i by ~1e-10 / eps_i; the mean over 1e5 samples moves far less than this.
ENTROPY_AGREEMENT_TOL = 1e-6
MEMORY_TARGET_BYTES = 1 << 30


# ----------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------


def data_case1(n, seed=1):
    """1-D x, y = x + noise."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    y = x + 0.5 * rng.standard_normal(n)
    return x, y


def correlated_gaussians(n, dx, dy, rho, seed):
    """x ~ N(0, I_dx); y_j = rho * x_j + sqrt(1 - rho^2) * noise_j for j < min(dx, dy)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dx))
    y = np.sqrt(1.0 - rho**2) * rng.standard_normal((n, dy))
    shared = min(dx, dy)
    y[:, :shared] += rho * x[:, :shared]
    return x, y


def data_case2(n=100_000):
    return correlated_gaussians(n, 4, 4, rho=0.6, seed=2)


def data_case3(n=10_000):
    return correlated_gaussians(n, 64, 32, rho=0.3, seed=3)


def data_case6(n=100_000):
    """4-D standard Gaussian."""
    return np.random.default_rng(6).standard_normal((n, 4))


# ----------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------


class Timer:
    """Collects repeated timings of one callable.

    A first call faster than ``warmup_below_s`` is treated as warm-up and
    discarded (thread pools, page faults); a slower first call is kept, since
    warm-up cannot dominate it and repeating it is expensive. Stops after
    ``repeats`` kept timings or once ``budget_s`` seconds have been spent
    (always at least one kept timing).
    """

    def __init__(self, fn, repeats, budget_s, warmup_below_s=1.0, setup=None):
        self.fn = fn
        self.setup = setup  # run before each call, outside the timed region
        self.repeats = repeats
        self.budget_s = budget_s
        self.warmup_below_s = warmup_below_s
        self.times = []
        self.spent = 0.0
        self.value = None
        self._first = True

    def done(self):
        return len(self.times) >= self.repeats or (bool(self.times) and self.spent >= self.budget_s)

    def step(self):
        if self.setup is not None:
            self.setup()
        t0 = time.perf_counter()
        self.value = self.fn()
        dt = time.perf_counter() - t0
        self.spent += dt
        if self._first:
            self._first = False
            if dt < self.warmup_below_s:
                return
        self.times.append(dt)

    @property
    def median(self):
        return statistics.median(self.times)


def measure(*fns, repeats, budget_s, setups=None):
    """Time several callables, interleaving their calls. Returns the Timers."""
    setups = setups or [None] * len(fns)
    timers = [Timer(fn, repeats, budget_s, setup=setup) for fn, setup in zip(fns, setups, strict=True)]
    while not all(t.done() for t in timers):
        for t in timers:
            if not t.done():
                t.step()
    return timers


# ----------------------------------------------------------------------------
# Reference check of the peer
# ----------------------------------------------------------------------------


def ksg1_bruteforce(x, y, k):
    """KSG-1 (Kraskov 2004 eq. 8) from full Chebyshev distance matrices. O(N^2) memory."""
    x = x.reshape(len(x), -1)
    y = y.reshape(len(y), -1)
    dist_x = np.abs(x[:, None, :] - x[None, :, :]).max(axis=2)
    dist_y = np.abs(y[:, None, :] - y[None, :, :]).max(axis=2)
    dist_joint = np.maximum(dist_x, dist_y)
    n = len(x)
    off_diagonal = ~np.eye(n, dtype=bool)
    eps = np.array([np.sort(dist_joint[i][off_diagonal[i]])[k - 1] for i in range(n)])
    n_x = ((dist_x < eps[:, None]) & off_diagonal).sum(axis=1)
    n_y = ((dist_y < eps[:, None]) & off_diagonal).sum(axis=1)
    value = digamma(k) + digamma(n) - np.mean(digamma(n_x + 1) + digamma(n_y + 1))
    return eps, n_x, n_y, float(value)


def check_peer_against_bruteforce():
    """The cKDTree peer must reproduce brute-force KSG-1 exactly (N=200), ties included."""
    rng = np.random.default_rng(0)
    problems = []
    base_x = rng.standard_normal((200, 2))
    base_y = base_x[:, :1] + rng.standard_normal((200, 1))
    datasets = {
        "continuous 2-D/1-D": (base_x, base_y),
        "continuous 1-D/1-D": (base_x[:, 0].copy(), base_y[:, 0].copy()),
        # Rounding creates equal distances and duplicate rows (eps == 0).
        "rounded (ties, duplicates)": (np.round(base_x, 0), np.round(base_y, 0)),
    }
    for name, (x, y) in datasets.items():
        for k in (1, 3, 5):
            eps_b, nx_b, ny_b, value_b = ksg1_bruteforce(x, y, k)
            eps_p, nx_p, ny_p = ksg1_neighbour_counts_ckdtree(x, y, k=k)
            value_p = mutual_info_ksg1_ckdtree(x, y, k=k)
            same = (
                np.array_equal(eps_b, eps_p)
                and np.array_equal(nx_b, nx_p)
                and np.array_equal(ny_b, ny_p)
                and value_b == value_p
            )
            if not same:
                problems.append(f"{name}, k={k}: brute {value_b!r} vs peer {value_p!r}")
    return problems


# ----------------------------------------------------------------------------
# Cases
# ----------------------------------------------------------------------------


def pass_fail(ok):
    return "PASS" if ok else "FAIL"


def speed_row(case, ours_t, peer_t, threads, target=None, note=""):
    row = {
        "case": case,
        "ours_s": ours_t.median if ours_t else None,
        "peer_s": peer_t.median if peer_t else None,
        "ours_repeats": len(ours_t.times) if ours_t else 0,
        "peer_repeats": len(peer_t.times) if peer_t else 0,
        "ours_value": ours_t.value if ours_t else None,
        "peer_value": peer_t.value if peer_t else None,
        "threads": threads,
        "target": target,
        "note": note,
    }
    if ours_t and peer_t:
        row["ratio"] = peer_t.median / ours_t.median
        if target is not None:
            row["status"] = pass_fail(row["ratio"] >= target)
    return row


def case1(rc, cfg):
    from sklearn.feature_selection import mutual_info_regression

    rows = []
    for n, size, target in ((100_000, "1e5", 20.0), (1_000_000, "1e6", 30.0)):
        x, y = data_case1(n)
        label = f"1: N={size} 1-D/1-D k=3 vs sklearn"

        # Both are timed within this iteration: they bind this iteration's x and y.
        def ours(x=x, y=y):
            return rc.mutual_info(x, y, k=3)

        def peer(x=x, y=y):
            return float(mutual_info_regression(x[:, None], y, n_neighbors=3, random_state=0)[0])

        skip_peer = cfg.quick and n >= 1_000_000
        if skip_peer:
            (ours_t,) = measure(ours, repeats=cfg.repeats, budget_s=cfg.budget_s)
            peer_t = None
        else:
            ours_t, peer_t = measure(ours, peer, repeats=cfg.repeats, budget_s=cfg.budget_s)
        threads = f"ours {rc.get_num_threads()}, sklearn 1"
        note = "sklearn skipped (--quick)" if skip_peer else ""
        rows.append(speed_row(label, ours_t, peer_t, threads, target, note))
    return rows


def case2(rc, cfg):
    x, y = data_case2()
    label = "2: N=1e5 4-D/4-D k=3 vs cKDTree"

    def ours_raw():
        return rc.mutual_info(x, y, k=3, normalize=False, jitter=0)

    def ours_default():
        return rc.mutual_info(x, y, k=3)

    def peer():
        return mutual_info_ksg1_ckdtree(x, y, k=3, workers=cfg.peer_workers)

    raw_t, default_t, peer_t = measure(ours_raw, ours_default, peer, repeats=cfg.repeats, budget_s=cfg.budget_s)
    threads = f"ours {rc.get_num_threads()}, cKDTree {cfg.peer_workers_label}"
    rows = [
        speed_row(label + " (ours normalize=False, jitter=0)", raw_t, peer_t, threads, 10.0),
        speed_row(
            label + " (ours defaults)",
            default_t,
            peer_t,
            threads,
            None,
            "informational: ours also normalizes and jitters",
        ),
    ]
    return rows, agreement("2: N=1e5 4-D/4-D", raw_t.value, peer_t.value)


def case3(rc, cfg):
    x, y = data_case3()
    label = "3: N=1e4 64-D/32-D k=3 vs cKDTree (ours auto)"

    def ours():
        return rc.mutual_info(x, y, k=3, normalize=False, jitter=0)

    def peer():
        return mutual_info_ksg1_ckdtree(x, y, k=3, workers=cfg.peer_workers)

    ours_t, peer_t = measure(ours, peer, repeats=cfg.repeats, budget_s=cfg.budget_s)
    threads = f"ours {rc.get_num_threads()}, cKDTree {cfg.peer_workers_label}"
    rows = [speed_row(label, ours_t, peer_t, threads, 30.0, "normalize=False, jitter=0")]
    return rows, agreement("3: N=1e4 64-D/32-D", ours_t.value, peer_t.value)


def case6(rc, cfg):
    """Kozachenko-Leonenko entropy (max-norm) in 4-D against NPEET's, which adds 1e-10 uniform noise
    and queries scikit-learn's KDTree (chebyshev metric), single-threaded."""
    from npeet_plus.estimators import entropy as npeet_entropy

    x = data_case6()
    label = "6: N=1e5 4-D entropy k=3 vs NPEET"

    def ours():
        return rc.entropy(x, k=3)

    def peer():
        return float(npeet_entropy(x, k=3, base=np.e))

    np.random.seed(0)  # NPEET draws its noise from numpy's global generator
    ours_t, peer_t = measure(ours, peer, repeats=cfg.repeats, budget_s=cfg.budget_s)
    threads = f"ours {rc.get_num_threads()}, NPEET 1"
    rows = [speed_row(label, ours_t, peer_t, threads, 15.0, "both defaults (jitter 1e-10)")]
    return rows, agreement("6: N=1e5 4-D entropy vs NPEET", ours_t.value, peer_t.value, ENTROPY_AGREEMENT_TOL)


def agreement(case, ours_value, peer_value, tol=AGREEMENT_TOL):
    diff = abs(ours_value - peer_value)
    return {
        "case": case,
        "ours": ours_value,
        "peer": peer_value,
        "abs_diff": diff,
        "tol": tol,
        "status": pass_fail(diff <= tol * max(1.0, abs(peer_value))),
    }


def case4(rc, cfg):
    """Thread scaling of ours: median time with 1 thread over median with 2."""
    rows = []
    x1, y1 = data_case1(100_000)
    x6, y6 = data_case1(1_000_000)
    x2, y2 = data_case2()
    workloads = [
        ("4: scaling, case 1 N=1e5", lambda: rc.mutual_info(x1, y1, k=3)),
        ("4: scaling, case 1 N=1e6", lambda: rc.mutual_info(x6, y6, k=3)),
        ("4: scaling, case 2 N=1e5 4-D/4-D", lambda: rc.mutual_info(x2, y2, k=3, normalize=False, jitter=0)),
    ]
    original = rc.get_num_threads()
    try:
        for label, fn in workloads:
            # Interleaved, so the pool is resized before every call; that happens in the
            # untimed setup (the pool itself is started lazily inside the timed call).
            t1, t2 = measure(
                fn,
                fn,
                repeats=cfg.repeats,
                budget_s=cfg.budget_s,
                setups=[lambda: rc.set_num_threads(1), lambda: rc.set_num_threads(2)],
            )
            ratio = t1.median / t2.median
            rows.append(
                {
                    "case": label,
                    "t1_s": t1.median,
                    "t2_s": t2.median,
                    "t1_repeats": len(t1.times),
                    "t2_repeats": len(t2.times),
                    "ratio": ratio,
                    "threads": "1 vs 2",
                    "target": 1.7,
                    "status": pass_fail(ratio >= 1.7),
                    "note": "" if (os.cpu_count() or 1) >= 2 else "fewer than 2 CPUs: meaningless",
                }
            )
    finally:
        rc.set_num_threads(original)
    return rows


MEMORY_CHILD = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np
    import repcompress as rc

    def current_rss_bytes():
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        try:
            import psutil
            return psutil.Process().memory_info().rss
        except ImportError:
            return None

    def peak_rss_bytes():
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB

    if len(sys.argv) > 1:
        rc.set_num_threads(int(sys.argv[1]))
    n = 1_000_000
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, 2))
    y = 0.6 * x + 0.8 * rng.standard_normal((n, 2))
    after_data = current_rss_bytes()
    peak_before_call = peak_rss_bytes()
    if after_data is None:  # no way to read the current RSS: the peak so far bounds it
        after_data = peak_before_call
    value = rc.mutual_info(x, y, k=3)
    print(json.dumps({
        "rss_after_data": after_data,
        "peak_before_call": peak_before_call,
        "peak_total": peak_rss_bytes(),
        "value": value,
        "threads": rc.get_num_threads(),
    }))
    """
)


def case5(cfg):
    """Peak RSS of a fresh process running one N=1e6, 2-D/2-D mutual_info."""
    command = [sys.executable, "-c", MEMORY_CHILD]
    if cfg.threads is not None:
        command.append(str(cfg.threads))
    proc = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        return {"case": "5: memory N=1e6 2-D/2-D", "error": proc.stderr.strip()[-2000:]}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    delta = out["peak_total"] - out["rss_after_data"]
    return {
        "case": "5: memory N=1e6 2-D/2-D (defaults, k=3)",
        "peak_minus_after_data_bytes": delta,
        "peak_total_bytes": out["peak_total"],
        "rss_after_data_bytes": out["rss_after_data"],
        "peak_before_call_bytes": out["peak_before_call"],
        "value": out["value"],
        "threads": out["threads"],
        "target_bytes": MEMORY_TARGET_BYTES,
        "status": pass_fail(out["peak_total"] < MEMORY_TARGET_BYTES),
    }


# ----------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------


def fmt_s(v):
    return "-" if v is None else f"{v:.4f}"


def print_table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    print()


def print_report(speed, scaling, agreements, memory):
    if speed:
        print_table(
            ["case", "ours (s)", "peer (s)", "ratio (peer/ours)", "target", "", "reps o/p", "threads", "note"],
            [
                [
                    r["case"],
                    fmt_s(r["ours_s"]),
                    fmt_s(r["peer_s"]),
                    f"{r['ratio']:.2f}x" if "ratio" in r else "-",
                    f">= {r['target']:g}x" if r["target"] is not None else "-",
                    r.get("status", ""),
                    f"{r['ours_repeats']}/{r['peer_repeats']}",
                    r["threads"],
                    r["note"],
                ]
                for r in speed
            ],
        )
    if scaling:
        print_table(
            ["case", "1 thread (s)", "2 threads (s)", "ratio (t1/t2)", "target", "", "reps", "note"],
            [
                [
                    r["case"],
                    fmt_s(r["t1_s"]),
                    fmt_s(r["t2_s"]),
                    f"{r['ratio']:.2f}x",
                    f">= {r['target']:g}x",
                    r["status"],
                    f"{r['t1_repeats']}/{r['t2_repeats']}",
                    r["note"],
                ]
                for r in scaling
            ],
        )
    if agreements:
        print_table(
            ["sanity: ours vs peer", "ours (nats)", "peer (nats)", "|diff|", "tol", ""],
            [
                [
                    a["case"],
                    f"{a['ours']:.15g}",
                    f"{a['peer']:.15g}",
                    f"{a['abs_diff']:.3e}",
                    f"{a['tol']:g}",
                    a["status"],
                ]
                for a in agreements
            ],
        )
    if memory:
        if "error" in memory:
            print(f"{memory['case']}: child process failed:\n{memory['error']}\n")
        else:
            mib = 1 << 20
            print(
                f"{memory['case']}: peak RSS - RSS after data = "
                f"{memory['peak_minus_after_data_bytes'] / mib:.1f} MiB; "
                f"total peak RSS = {memory['peak_total_bytes'] / mib:.1f} MiB "
                f"(RSS after data {memory['rss_after_data_bytes'] / mib:.1f} MiB); "
                f"target total peak < {memory['target_bytes'] / mib:.0f} MiB {memory['status']}; "
                f"threads {memory['threads']}\n"
            )


def environment_info(rc):
    import sklearn

    return {
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "sklearn": sklearn.__version__,
        "repcompress": getattr(rc, "__version__", None),
        "repcompress_threads": rc.get_num_threads(),
    }


# ----------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--quick", action="store_true", help="fewer repeats and skip the N=1e6 sklearn peer (~30 s per call)"
    )
    p.add_argument(
        "--cases",
        default=",".join(map(str, ALL_CASES)),
        help="comma-separated case numbers out of 1,2,3,4,5,6 (default: all)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for ours (rc.set_num_threads) and workers for the cKDTree peer in "
        "cases 1-3 and 5; default: ours' default, cKDTree workers=-1 (all cores). "
        "Case 4 always compares 1 vs 2 threads.",
    )
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"output JSON (default {DEFAULT_JSON})")
    p.add_argument("--repeats", type=int, default=None, help="override the number of repeats per timing")
    args = p.parse_args(argv)
    try:
        args.cases = sorted({int(c) for c in args.cases.split(",") if c.strip()})
    except ValueError:
        p.error("--cases takes comma-separated integers, e.g. 1,2,5")
    if not set(args.cases) <= set(ALL_CASES):
        p.error(f"--cases must be among {ALL_CASES}")
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be >= 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    import repcompress as rc

    args.repeats = args.repeats or (3 if args.quick else 7)
    args.budget_s = 10.0 if args.quick else 60.0  # per timed callable and case
    if args.threads is not None:
        rc.set_num_threads(args.threads)
        args.peer_workers = args.threads
        args.peer_workers_label = str(args.threads)
    else:
        args.peer_workers = -1
        usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        args.peer_workers_label = f"all ({usable})"

    env = environment_info(rc)
    print(
        f"repcompress {env['repcompress']}, numpy {env['numpy']}, scipy {env['scipy']}, "
        f"sklearn {env['sklearn']}, {env['usable_cpus']} usable CPUs, "
        f"ours threads {env['repcompress_threads']}, repeats <= {args.repeats}"
        f"{' (quick)' if args.quick else ''}\n"
    )

    peer_check = None
    if {2, 3} & set(args.cases):
        problems = check_peer_against_bruteforce()
        peer_check = "PASS" if not problems else "FAIL: " + "; ".join(problems)
        print(f"cKDTree peer vs brute-force KSG-1 (N=200, k=1,3,5, incl. ties/duplicates): {peer_check}\n")

    speed, scaling, agreements, memory = [], [], [], None
    for case in args.cases:
        print(f"running case {case} ...", flush=True)
        if case == 1:
            speed += case1(rc, args)
        elif case == 2:
            rows, agree = case2(rc, args)
            speed += rows
            agreements.append(agree)
        elif case == 3:
            rows, agree = case3(rc, args)
            speed += rows
            agreements.append(agree)
        elif case == 4:
            scaling += case4(rc, args)
        elif case == 5:
            memory = case5(args)
        elif case == 6:
            rows, agree = case6(rc, args)
            speed += rows
            agreements.append(agree)
    print()
    print_report(speed, scaling, agreements, memory)

    result = {
        "provenance": provenance(),
        "environment": env,
        "args": {
            "quick": args.quick,
            "cases": args.cases,
            "threads": args.threads,
            "repeats": args.repeats,
            "budget_s": args.budget_s,
        },
        "peer_bruteforce_check": peer_check,
        "speed": speed,
        "thread_scaling": scaling,
        "agreement": agreements,
        "memory": memory,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
