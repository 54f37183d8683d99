"""DoE against the exact I(X;Z) on Gaussian-dropout representations (issue 15 §1; docs/spec.md §7).

Representations Z = f(x)·(1 + √α ε) of N = 1500 digits (sklearn's 8×8 images, x/16, 64 inputs)
with f(x) = tanh(x W + b), W and b random (d = 8), α = 1 (dropout rate 0.5). The exact I(X;Z)
(X uniform over the N inputs) is `gaussian_channel_mi(f, dropout_alpha=α)`; ``model_class`` is the
value DoE with diagonal-Gaussian densities converges to with a perfect q(z|x):
½ Σ_k log(2πe Var Z_k) − h(Z|X) (docs/spec.md §7.7). Each seed draws its own n_passes noisy samples
per input and seeds the estimator; the reference protocol sees them 4 per step, the recommended
one all of them each epoch.

    python benches/doe_check.py                  # 5 seeds, 8 passes (minutes on 1 core)
    python benches/doe_check.py --seeds 2 --json out.json

Prints mean ± sd over seeds for each protocol, and writes JSON (default
benches/results/doe_check.json).
"""

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import repcompress as rc
from provenance import provenance
from repcompress.torch import doe_mutual_info

HERE = Path(__file__).resolve().parent
ALPHA = 1.0
N, D = 1500, 8


def representations():
    from sklearn.datasets import load_digits

    x, _ = load_digits(return_X_y=True)
    x = x[:N] / 16.0
    rng = np.random.default_rng(2026)
    w = rng.normal(size=(64, D)) * 0.5
    b = rng.normal(size=D) * 0.5
    return x, np.tanh(x @ w + b)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--passes", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "doe_check.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    x, f = representations()
    exact = rc.gaussian_channel_mi(f, dropout_alpha=ALPHA, n_draws=16, random_state=0)
    var_z = f.var(0) + (ALPHA * f**2).mean(0)
    model_class = 0.5 * np.log(2 * np.pi * np.e * var_z).sum() - exact.h_z_given_x
    print(f"N = {N}, d = {D}, alpha = {ALPHA}, passes = {args.passes}, log N = {np.log(N):.3f}")
    print(f"exact I(X;Z) = {exact.mi:.3f} ± {exact.stderr:.3f} (MC), bounds [{exact.lower:.3f}, {exact.upper:.3f}]")
    print(f"diagonal-Gaussian model-class value = {model_class:.3f}")

    rows = []
    for seed in range(args.seeds):
        rng = np.random.default_rng(100 + seed)
        z = f[None] * (1 + np.sqrt(ALPHA) * rng.normal(size=(args.passes, N, D)))
        for protocol in ("reference", "recommended"):
            start = time.perf_counter()
            r = doe_mutual_info(x, z, protocol=protocol, random_state=seed, progress=False)
            row = {
                "seed": seed,
                "protocol": protocol,
                "mi": r.mi,
                "train_mi": r.train_mi,
                "heldout_stderr": r.heldout_stderr,
                "epochs": r.epochs_run,
                "steps": r.n_steps,
                "seconds": time.perf_counter() - start,
            }
            rows.append(row)
            extra = "" if r.heldout_stderr is None else f" ± {r.heldout_stderr:.3f} (train {r.train_mi:.3f})"
            print(
                f"seed {seed} {protocol:<11} {r.mi:8.3f}{extra}  epochs {r.epochs_run}  {row['seconds']:.0f}s",
                flush=True,
            )

    summary = {}
    print(f"\n{'protocol':<12} {'mean':>8} {'sd':>7} {'bias':>8}   (exact {exact.mi:.3f})")
    for protocol in ("reference", "recommended"):
        values = np.array([r["mi"] for r in rows if r["protocol"] == protocol])
        mean, sd = float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else float("nan")
        summary[protocol] = {"mean": mean, "sd": sd, "bias": mean - exact.mi, "values": values.tolist()}
        print(f"{protocol:<12} {mean:8.3f} {sd:7.3f} {mean - exact.mi:+8.3f}")
    out = {
        "date": datetime.date.today().isoformat(),
        "provenance": provenance(),
        "setup": {"n": N, "d": D, "alpha": ALPHA, "passes": args.passes, "threads": args.threads},
        "exact": {"mi": exact.mi, "stderr": exact.stderr, "lower": exact.lower, "upper": exact.upper},
        "model_class": model_class,
        "runs": rows,
        "summary": summary,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
