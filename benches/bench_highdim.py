"""Benchmark repcompress' exact Euclidean k-NN above 16 dimensions (the Gram-form search) against BLAS brute force.

    python benches/bench_highdim.py            # all cases (a few minutes)
    python benches/bench_highdim.py --quick    # fewer repeats
    python benches/bench_highdim.py --cases 1 --json /tmp/out.json

Data: h standard normal, N = 2e4, d = 64, float64 (full rank: every principal direction is kept, so
the neighbour engine searches all 64 coordinates). Cases (targets from issue 19):
  1  TwoNN: rc.twonn_dimension(h) vs dadapy's 2NN (Data(h).compute_id_2NN()) (>= 3x), and vs the
     scikit-learn NearestNeighbors TwoNN of peers_geometry.twonn_sklearn (>= 2x; values agree to 1e-6)
  2  Kozachenko-Leonenko entropy, k=2, Euclidean: rc.entropy(h, k=2, metric="euclidean") vs
     sklearn.neighbors.NearestNeighbors(n_neighbors=3).fit(h).kneighbors(h) alone (>= 1x): the
     peer only finds the neighbours (BLAS brute force), ours also evaluates the estimate

dadapy's 2NN discards the largest ratios differently (its own fraction and fit), so its value is
reported, not compared. Ratios are peer time / our time, medians of interleaved repeats (see
bench_knn.py's Timer).
"""

import argparse
import functools
import json
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_knn import environment_info, fmt_s, measure, print_table, speed_row
from peers_geometry import twonn_sklearn
from provenance import provenance

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "bench_highdim.json"
ALL_CASES = (1, 2)


def data_gaussian(n=20_000, d=64, seed=19):
    return np.random.default_rng(seed).standard_normal((n, d))


def close(a, b, rel):
    return abs(a - b) <= rel * max(abs(a), abs(b))


def twonn_dadapy(h):
    from dadapy import Data

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(Data(h, verbose=False).compute_id_2NN()[0])


def sklearn_kneighbors(h, k):
    from sklearn.neighbors import NearestNeighbors

    dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(h).kneighbors(h)
    return dist


def case1(rc, cfg):
    h = data_gaussian()
    o, pd, ps = measure(
        functools.partial(rc.twonn_dimension, h),
        functools.partial(twonn_dadapy, h),
        functools.partial(twonn_sklearn, h),
        repeats=cfg.repeats,
        budget_s=cfg.budget_s,
    )
    agree = close(o.value, ps.value, 1e-6)
    return [
        speed_row(
            "1: TwoNN N=2e4 d=64 Gaussian vs dadapy 2NN",
            o,
            pd,
            rc.get_num_threads(),
            3.0,
            f"d_hat ours {o.value:.6f}, dadapy {pd.value:.6f} (its own discard rule)",
        ),
        speed_row(
            "1: TwoNN N=2e4 d=64 Gaussian vs sklearn NN TwoNN",
            o,
            ps,
            rc.get_num_threads(),
            2.0,
            f"d_hat ours {o.value:.9f}, sklearn {ps.value:.9f}; agree to 1e-6: {agree}",
        ),
    ]


def case2(rc, cfg):
    h = data_gaussian()
    k = 2
    o, p = measure(
        lambda: float(rc.entropy(h, k=k, metric="euclidean")),
        functools.partial(sklearn_kneighbors, h, k),
        repeats=cfg.repeats,
        budget_s=cfg.budget_s,
    )
    # The estimate from the peer's k-th distances (BLAS, rounded differently) against ours with jitter=0.
    from scipy.special import digamma, gammaln

    n, d = h.shape
    log_cd = d / 2 * np.log(np.pi) - gammaln(d / 2 + 1)
    peer_h = float(digamma(n) - digamma(k) + log_cd + d * np.mean(np.log(p.value[:, k])))
    exact_h = float(rc.entropy(h, k=k, metric="euclidean", jitter=0.0))
    agree = close(exact_h, peer_h, 1e-9)
    return [
        speed_row(
            "2: entropy k=2 euclidean N=2e4 d=64 vs sklearn kneighbors",
            o,
            p,
            rc.get_num_threads(),
            1.0,
            f"h ours {o.value:.6f} (jitter 1e-10); jitter=0 {exact_h:.9f} vs from sklearn's distances "
            f"{peer_h:.9f}, agree to 1e-9: {agree}",
        )
    ]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--cases", default=",".join(map(str, ALL_CASES)))
    ap.add_argument("--threads", type=int, default=None, help="threads for ours (default: ours' default)")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    ap.add_argument("--repeats", type=int, default=None)
    args = ap.parse_args(argv)
    args.cases = sorted({int(c) for c in args.cases.split(",") if c.strip()})
    import repcompress as rc

    if args.threads:
        rc.set_num_threads(args.threads)
    args.repeats = args.repeats or (3 if args.quick else 7)
    args.budget_s = 30.0 if args.quick else 90.0
    env = environment_info(rc)
    print(
        f"repcompress {env['repcompress']}, numpy {env['numpy']}, sklearn {env['sklearn']}, "
        f"{env['usable_cpus']} usable CPUs, ours threads {env['repcompress_threads']}, repeats <= {args.repeats}\n"
    )
    speed = []
    for case in args.cases:
        print(f"running case {case} ...", flush=True)
        speed += (case1 if case == 1 else case2)(rc, args)
    print()
    print_table(
        ["case", "ours (s)", "peer (s)", "ratio (peer/ours)", "target", "", "reps o/p", "note"],
        [
            [
                r["case"],
                fmt_s(r["ours_s"]),
                fmt_s(r["peer_s"]),
                f"{r['ratio']:.2f}x" if "ratio" in r else "-",
                f">= {r['target']:g}x" if r["target"] is not None else "-",
                r.get("status", ""),
                f"{r['ours_repeats']}/{r['peer_repeats']}",
                r["note"],
            ]
            for r in speed
        ],
    )
    for r in speed:  # the peers' arrays are not JSON
        if not isinstance(r.get("peer_value"), float):
            r["peer_value"] = None
    result = {
        "provenance": provenance(),
        "environment": env,
        "args": {"quick": args.quick, "cases": args.cases, "threads": args.threads, "repeats": args.repeats},
        "speed": speed,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
