"""``repcompress demo``: KSG mutual information of correlated Gaussians against the truth."""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from .arguments import count, seed

DESCRIPTION = "estimate MI of correlated Gaussians and compare with the truth"
# The fewest samples the demo can estimate from: KSG's k = 3 neighbours need N >= 4, and
# mutual_info_labels needs a class with two samples among its 4 classes, which N >= 5 guarantees.
MIN_SAMPLES = 5


def correlated_gaussians(n: int, d: int, rho: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """x, y ∈ R^d with coordinate pairs of correlation rho: I(X;Y) = −(d/2)·log(1 − rho²) nats."""
    x = rng.standard_normal((n, d))
    y = rho * x + math.sqrt(1 - rho * rho) * rng.standard_normal((n, d))
    return x, y


def run_demo(n: int, seed: int) -> int:
    import repcompress as rc
    from repcompress._validation import as_int

    n = as_int(n, "n", minimum=MIN_SAMPLES)
    seed = as_int(seed, "seed", minimum=0)
    rng = np.random.default_rng(seed)
    print(
        f"repcompress {rc.__version__} — KSG mutual information on correlated Gaussians, N = {n}, "
        f"{rc.get_num_threads()} thread(s)"
    )
    header = f"{'d':>3} {'rho':>5} {'truth':>8} {'ksg1':>8} {'ksg2':>8} {'ksg1 err':>9} {'time':>7}"
    print(header)
    print("-" * len(header))
    worst = 0.0
    for d in (1, 2, 4):
        for rho in (0.0, 0.5, 0.9):
            x, y = correlated_gaussians(n, d, rho, rng)
            truth = -0.5 * d * math.log(1 - rho * rho)
            t0 = time.perf_counter()
            ksg1 = rc.mutual_info(x, y, estimator="ksg1")
            elapsed = time.perf_counter() - t0
            ksg2 = rc.mutual_info(x, y, estimator="ksg2")
            worst = max(worst, abs(ksg1 - truth))
            print(f"{d:>3} {rho:>5.1f} {truth:>8.4f} {ksg1:>8.4f} {ksg2:>8.4f} {ksg1 - truth:>+9.4f} {elapsed:>6.2f}s")
    z = rng.standard_normal((n, 2))
    labels = rng.integers(0, 4, n)
    z[:, 0] += 10 * labels
    counts = np.bincount(labels)
    counts = counts[counts > 0]  # a class no sample drew (small --n) is no class (docs/spec.md §0.3)
    h_labels = -float(np.sum(counts / n * np.log(counts / n)))
    print(
        f"\nI(Z; labels) for 4 well-separated classes: {rc.mutual_info_labels(z, labels):.4f} "
        f"(H(labels) = {h_labels:.4f})"
    )
    print(f"largest |KSG-1 error|: {worst:.4f} nats (KSG is biased down at high correlation and dimension)")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--n", type=count(MIN_SAMPLES), default=20_000, help=f"samples per case, at least {MIN_SAMPLES} (default 20000)"
    )
    parser.add_argument("--seed", type=seed, default=0, help="seed of the data (a non-negative integer; default 0)")


def run(args: argparse.Namespace) -> int:
    return run_demo(args.n, args.seed)
