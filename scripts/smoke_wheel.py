"""Smoke test of an installed repcompress wheel: one estimator of each public module, each against a
value known without the package. scripts/build-dist runs it in a fresh virtual environment holding
only the wheel and its dependencies, with no Rust toolchain on PATH.

The checks are exact where the quantity is (plug-in entropies of equal counts, CDNV of a constructed
sample); for the k-NN estimate of correlated Gaussians the bound (0.1 nats at N = 2000) is a smoke
bound, several standard deviations of KSG there: a build that loads but computes garbage misses it
by far more, and the statistical tests proper are in tests/.

    python scripts/smoke_wheel.py
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

import repcompress as rc


def check(name: str, got: float, want: float, tolerance: float) -> None:
    status = "ok" if abs(got - want) <= tolerance else "FAILED"
    print(f"  {name:<58} {got:12.6f}  expected {want:.6f} ± {tolerance:g}  {status}")
    if status != "ok":
        raise SystemExit(f"smoke test failed: {name} = {got}, expected {want} ± {tolerance}")


def main() -> None:
    location = Path(rc._core.__file__)
    print(f"repcompress {rc.__version__}, extension {location.name} in {location.parent}")
    rng = np.random.default_rng(0)

    # repcompress.knn_estimators: KSG on correlated Gaussians, truth −½ log(1 − ρ²) per dimension.
    n, rho = 2000, 0.8
    x = rng.standard_normal((n, 1))
    y = rho * x + math.sqrt(1 - rho**2) * rng.standard_normal((n, 1))
    truth = -0.5 * math.log(1 - rho**2)
    check("knn_estimators.mutual_info (KSG-1, ρ = 0.8)", rc.mutual_info(x, y), truth, 0.1)

    # repcompress.binning: 4 equally frequent categories, plug-in entropy log 4 exactly.
    labels = np.repeat(np.arange(4), 500)
    rng.shuffle(labels)
    check("binning.binned_entropy (4 equal categories)", rc.binned_entropy(labels), math.log(4), 1e-12)
    check(
        "binning.binned_mutual_info (labels with themselves)", rc.binned_mutual_info(labels, labels), math.log(4), 1e-12
    )

    # repcompress.gaussian_channel: 4 means 100·√2 standard deviations apart, the channel loses
    # nothing: I(X;Z) = log N up to terms of order e^(−2500), far below double precision (the
    # Monte Carlo estimate and the Bhattacharyya bound alike).
    means = 100.0 * np.eye(4)
    result = rc.gaussian_channel_mi(means, np.ones((4, 4)), random_state=0)
    assert result.mi is not None and result.lower is not None and result.upper is not None
    check("gaussian_channel.gaussian_channel_mi (separated means)", result.mi, math.log(4), 1e-9)
    check("gaussian_channel.gaussian_channel_mi lower bound", result.lower, math.log(4), 1e-9)

    # repcompress.geometry: classes {−1 ± s} and {1 ± s} on a line: Var_c = s², distance 2,
    # CDNV = 2 s² / (2 · 4) = s² / 4.
    s = 0.5
    h = np.array([-1 - s, -1 + s, 1 - s, 1 + s])
    check(
        "geometry.class_distance_normalized_variance",
        rc.class_distance_normalized_variance(h, [0, 0, 1, 1]),
        s**2 / 4,
        1e-15,
    )

    # repcompress.uncertainty: the interval brackets the estimate of the whole sample.
    ci = rc.confidence_interval(rc.mutual_info, x, y, n_resamples=20, progress=False)
    brackets = ci.low <= ci.value <= ci.high and ci.value == rc.mutual_info(x, y)
    print(
        f"  {'uncertainty.confidence_interval (20 half-samples)':<58} {ci.value:12.6f}  [{ci.low:.6f}, {ci.high:.6f}]"
    )
    if not brackets:
        raise SystemExit(f"smoke test failed: {ci} does not bracket the sample's estimate")
    print("smoke test passed")


if __name__ == "__main__":
    main()
