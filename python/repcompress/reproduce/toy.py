"""The paper's toy example: information follows the variance *ratio*, collapse the variance *sum*.

Adilova, Petzka, Fischer & Geiger (ECML PKDD 2026), toy notebook. K classes in 2-D with class
means μ_c ~ N(0, I_2); input i of class y_i has the representation r_i ~ N(μ_{y_i}, σ_z² I_2);
the noisy representation is Z = r_i + N(0, σ_n² I_2). Over the 5 × 5 grid σ_z², σ_n² ∈
{1, 0.1, 0.01, 0.001, 0.0001}:

1. the population value I(X;Z|Y) = log(1 + σ_z²/σ_n²) (nats);
2. the empirical I(X;Z|Y) of the N sampled inputs from :func:`repcompress.gaussian_channel_mi`
   (X uniform over the inputs, Z | x_i ~ N(r_i, σ_n² I)), with its pairwise bounds; it is capped
   at Σ_y p(y) log N_y, so it follows the population value only while σ_z²/σ_n² ≪ N_y;
3. the class-distance normalised variance CDNV (Galanti et al. 2022; docs/spec.md §4.2), trace-based, of a
   sampled Z, and the notebook's analytic collapse value (σ_z² + σ_n²)·mean_{c<c'} 1/‖μ_c − μ_c'‖²,
   which uses the per-coordinate variance and is therefore half the trace-based CDNV in 2-D.

Each run (seed) draws its class means and standard-normal noise once and scales them for every
cell (common random numbers), so differences between cells are not sampling noise.

Across runs, I(X;Z|Y) (bounded by log N_y) is summarised by its mean; CDNV by its median and
interquartile range. CDNV has 1/‖μ_c − μ_c'‖² in it, which is heavy-tailed over draws of the class
means (for 2-D Gaussian means E[1/‖Δμ‖²] is infinite): one run whose sampled class means nearly
coincide can give a CDNV tens of times the analytic value in a cell where the other runs agree
within 2-fold, and a mean over runs (or a maximum over single runs) would report that run. Ratios between cells
(mirrored cells, cells of a diagonal) and between sampled and analytic CDNV are formed within each
run, where the class means are shared, and then summarised over runs the same way.

    repcompress reproduce toy --out DIR [--runs 5] [--n 1000] [--classes 10] [--no-plots]

Writes ``toy_runs.csv`` (one row per run and cell), ``toy_cells.csv`` (per cell over runs: means
of the information columns, medians and quartiles of the CDNV columns),
``toy_mi.png``, ``toy_cdnv.png`` (matplotlib) and ``toy_summary.md``.
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path

import numpy as np

from .._progress import Progress
from ..cli import arguments
from ..cli.arguments import CommandLineError

DESCRIPTION = "the paper's toy example: MI follows the variance ratio, collapse the variance sum"
GRID = (1.0, 0.1, 0.01, 0.001, 0.0001)
FIELDS = (
    "run",
    "sigma_z2",
    "sigma_n2",
    "ratio",
    "sum",
    "mi_analytic",
    "mi",
    "mi_stderr",
    "mi_lower",
    "mi_upper",
    "mi_ceiling",
    "cdnv",
    "cdnv_analytic_trace",
    "cdnv_analytic_notebook",
)


def mean_inverse_sq_distance(class_means: np.ndarray) -> float:
    iu = np.triu_indices(len(class_means), 1)
    dist2 = ((class_means[:, None, :] - class_means[None, :, :]) ** 2).sum(axis=2)[iu]
    return float(np.mean(1.0 / dist2))


def simulate(
    runs: int,
    n: int,
    classes: int,
    d: int = 2,
    n_draws: int = 2,
    seed: int = 0,
    grid: tuple[float, ...] = GRID,
    progress: bool = True,
) -> list[dict]:
    """One row per (run, σ_z², σ_n²)."""
    import repcompress as rc

    labels = np.arange(n) % classes  # balanced: N_y = N / K
    _, counts = np.unique(labels, return_counts=True)
    ceiling = float(np.sum(counts / n * np.log(counts)))
    bar = Progress(runs * len(grid) ** 2, "toy cells", show=progress)
    try:
        rows = []
        for run in range(runs):
            rng = np.random.default_rng([seed, run])
            class_means = rng.standard_normal((classes, d))
            within = rng.standard_normal((n, d))  # r_i = μ_y + σ_z · within_i
            noise = rng.standard_normal((n, d))  # a sampled Z = r_i + σ_n · noise_i (for the CDNV)
            inv_dist = mean_inverse_sq_distance(class_means)
            for sz2 in grid:
                r = class_means[labels] + math.sqrt(sz2) * within
                for sn2 in grid:
                    res = rc.gaussian_channel_mi(
                        r,
                        noise_variance=sn2,
                        labels=labels,
                        n_draws=n_draws,
                        random_state=np.random.default_rng([seed, run, 1]),
                    )
                    g = res.given_labels
                    assert g is not None  # labels were given
                    z = r + math.sqrt(sn2) * noise
                    rows.append(
                        {
                            "run": run,
                            "sigma_z2": sz2,
                            "sigma_n2": sn2,
                            "ratio": sz2 / sn2,
                            "sum": sz2 + sn2,
                            "mi_analytic": math.log1p(sz2 / sn2),
                            "mi": g.mi,
                            "mi_stderr": g.stderr,
                            "mi_lower": g.lower,
                            "mi_upper": g.upper,
                            "mi_ceiling": ceiling,
                            "cdnv": rc.class_distance_normalized_variance(z, labels),
                            "cdnv_analytic_trace": d * (sz2 + sn2) * inv_dist,
                            "cdnv_analytic_notebook": (sz2 + sn2) * inv_dist,
                        }
                    )
                    bar.update()
    finally:
        bar.close()
    return rows


MEAN_FIELDS = ("mi_analytic", "mi", "mi_stderr", "mi_lower", "mi_upper", "mi_ceiling")


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    """Median and the first and third quartiles (numpy's linear interpolation between order statistics)."""
    q1, median, q3 = np.percentile(np.asarray(values, dtype=np.float64), [25.0, 50.0, 75.0])
    return float(median), float(q1), float(q3)


def _by_cell(rows: list[dict]) -> dict[tuple[float, float], dict[int, dict]]:
    """(σ_z², σ_n²) → run → row."""
    cells: dict[tuple[float, float], dict[int, dict]] = {}
    for row in rows:
        cells.setdefault((row["sigma_z2"], row["sigma_n2"]), {})[row["run"]] = row
    return cells


def summarise_cells(rows: list[dict]) -> list[dict]:
    """One row per cell, over its runs: the mean of the information columns (bounded, so the mean is
    stable), ``mi_sd_runs``, and for CDNV the median with first and third quartiles (``cdnv_median``,
    ``cdnv_q1``, ``cdnv_q3``), the medians of the two analytic values, and the median and quartiles
    of ``cdnv_to_analytic`` = sampled / analytic trace-based CDNV, formed per run (same class means)."""
    out = []
    for (sz2, sn2), runs in _by_cell(rows).items():
        group = list(runs.values())
        cell: dict[str, float] = {"sigma_z2": sz2, "sigma_n2": sn2, "ratio": sz2 / sn2, "sum": sz2 + sn2}
        cell.update({k: float(np.mean([g[k] for g in group])) for k in MEAN_FIELDS})
        cell["mi_sd_runs"] = float(np.std([g["mi"] for g in group], ddof=1)) if len(group) > 1 else 0.0
        cell["cdnv_median"], cell["cdnv_q1"], cell["cdnv_q3"] = _quartiles([g["cdnv"] for g in group])
        cell["cdnv_analytic_trace_median"] = _quartiles([g["cdnv_analytic_trace"] for g in group])[0]
        cell["cdnv_analytic_notebook_median"] = _quartiles([g["cdnv_analytic_notebook"] for g in group])[0]
        to_analytic = [g["cdnv"] / g["cdnv_analytic_trace"] for g in group]
        cell["cdnv_to_analytic_median"], cell["cdnv_to_analytic_q1"], cell["cdnv_to_analytic_q3"] = _quartiles(
            to_analytic
        )
        cell["cdnv_to_analytic_max_run"] = float(np.max(to_analytic))
        cell["runs"] = len(group)
        out.append(cell)
    return out


def mirrored_cdnv_folds(rows: list[dict], grid: tuple[float, ...] = GRID) -> list[dict]:
    """For each pair of cells mirrored across the diagonal ((a, b) and (b, a): the same sum, reciprocal
    ratios, the same analytic CDNV): the fold max/min of their sampled CDNV within each run, summarised
    over runs by the median, quartiles and the largest single run."""
    cells = _by_cell(rows)
    out = []
    for a in grid:
        for b in grid:
            if not (a > b and (a, b) in cells and (b, a) in cells):
                continue
            upper, lower = cells[(a, b)], cells[(b, a)]
            folds = [
                max(upper[r]["cdnv"], lower[r]["cdnv"]) / min(upper[r]["cdnv"], lower[r]["cdnv"])
                for r in sorted(upper.keys() & lower.keys())
            ]
            median, q1, q3 = _quartiles(folds)
            out.append({"cells": ((a, b), (b, a)), "median": median, "q1": q1, "q3": q3, "max_run": max(folds)})
    return out


def diagonal_cdnv_folds(rows: list[dict]) -> list[dict]:
    """For each diagonal of the grid (cells of one ratio σ_z²/σ_n²): the fold max/min of the sampled
    CDNV along it within each run, summarised over runs by the median and quartiles."""
    per_run: dict[tuple[int, int], list[float]] = {}
    for row in rows:
        per_run.setdefault((round(math.log10(row["ratio"])), row["run"]), []).append(row["cdnv"])
    diagonals: dict[int, list[float]] = {}
    for (k, _), values in per_run.items():
        diagonals.setdefault(k, []).append(max(values) / min(values))
    out = []
    for k in sorted(diagonals):
        median, q1, q3 = _quartiles(diagonals[k])
        out.append({"ratio": 10.0**k, "median": median, "q1": q1, "q3": q3})
    return out


def write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(rows)


def _matrix(cells: list[dict], key: str, grid: tuple[float, ...]) -> np.ndarray:
    index = {v: i for i, v in enumerate(grid)}
    m = np.full((len(grid), len(grid)), np.nan)
    for c in cells:
        m[index[c["sigma_z2"]], index[c["sigma_n2"]]] = c[key]
    return m


def plot(cells: list[dict], out: Path, grid: tuple[float, ...]) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError(
            "the toy reproduction's PNG heatmaps need matplotlib: pip install 'repcompress[plot]' "
            "(or pass --no-plots for CSV and markdown only)"
        ) from None

    labels = [f"{v:g}" for v in grid]

    def heat(ax, m, title, fmt, log=False):
        shown = np.log10(m) if log else m
        im = ax.imshow(shown, cmap="viridis")
        ax.set_xticks(range(len(grid)), labels)
        ax.set_yticks(range(len(grid)), labels)
        ax.set_xlabel("σ_n² (noise)")
        ax.set_ylabel("σ_z² (within-class)")
        ax.set_title(title, fontsize=9)
        for i in range(len(grid)):
            for j in range(len(grid)):
                light = im.norm(shown[i, j]) > 0.6  # dark text on the light end of the colour map
                ax.text(j, i, format(m[i, j], fmt), ha="center", va="center", fontsize=7, color="k" if light else "w")
        ax.figure.colorbar(im, ax=ax, shrink=0.8, label="log10" if log else "nats")

    paths = []
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    ceiling = cells[0]["mi_ceiling"]
    heat(axes[0], _matrix(cells, "mi_analytic", grid), "analytic I(X;Z|Y) = log(1 + σ_z²/σ_n²)", ".2f")
    heat(
        axes[1],
        _matrix(cells, "mi", grid),
        f"empirical I(X;Z|Y) (Monte Carlo; cap Σp(y)log N_y = {ceiling:.2f})",
        ".2f",
    )
    heat(
        axes[2],
        _matrix(cells, "mi", grid) - _matrix(cells, "mi_analytic", grid),
        "empirical − analytic (saturation where ratio ≳ N_y)",
        ".2f",
    )
    fig.tight_layout()
    paths.append(out / "toy_mi.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    heat(
        axes[0],
        _matrix(cells, "cdnv_median", grid),
        "CDNV of sampled Z (trace-based, docs/spec.md §4.2), median over runs",
        ".1e",
        log=True,
    )
    heat(
        axes[1],
        _matrix(cells, "cdnv_analytic_notebook_median", grid),
        "notebook's analytic collapse (σ_z²+σ_n²)·mean 1/‖Δμ‖² (= ½ trace CDNV in 2-D), median",
        ".1e",
        log=True,
    )
    fig.tight_layout()
    paths.append(out / "toy_cdnv.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def findings(rows: list[dict]) -> dict:
    """The numbers the summary states, from the per-run rows: information from the cell means, CDNV
    from medians over runs of per-cell values and of within-run ratios (see the module docstring)."""
    cells = summarise_cells(rows)
    ratio = np.array([c["ratio"] for c in cells])
    total = np.array([c["sum"] for c in cells])
    mi = np.array([c["mi"] for c in cells])
    cdnv = np.array([c["cdnv_median"] for c in cells])
    log_ratio = np.round(np.log10(ratio)).astype(int)
    by = {(c["sigma_z2"], c["sigma_n2"]): c for c in cells}
    # Cells on one diagonal share the ratio; cells mirrored across it share the sum.
    mirrored = mirrored_cdnv_folds(rows)
    widest_pair = max(mirrored, key=lambda m: m["median"])
    diagonal = max(diagonal_cdnv_folds(rows), key=lambda d: d["median"])
    off_analytic = max(cells, key=lambda c: abs(math.log(c["cdnv_to_analytic_median"])))
    per_ratio = []
    for k in sorted(set(log_ratio)):
        sel = [c for c, lr in zip(cells, log_ratio, strict=True) if lr == k]
        per_ratio.append(
            {
                "ratio": 10.0**k,
                "cells": len(sel),
                "analytic": sel[0]["mi_analytic"],
                "mi": float(np.mean([c["mi"] for c in sel])),
                "stderr": float(np.mean([c["mi_stderr"] for c in sel])),
                "lower": float(np.mean([c["mi_lower"] for c in sel])),
                "upper": float(np.mean([c["mi_upper"] for c in sel])),
            }
        )
    return {
        "ceiling": cells[0]["mi_ceiling"],
        "mi_range": float(np.ptp(mi)),
        "mi_max_spread_same_ratio": max(float(np.ptp(mi[log_ratio == k])) for k in np.unique(log_ratio)),
        # Medians over runs of the within-run fold along a diagonal; the widest diagonal.
        "cdnv_max_fold_same_ratio": diagonal["median"],
        "cdnv_fold_same_ratio_iqr": (diagonal["q1"], diagonal["q3"]),
        "cdnv_fold_same_ratio_at": diagonal["ratio"],
        "mi_max_diff_same_sum": max(
            abs(by[m["cells"][0]]["mi"] - by[m["cells"][1]]["mi"]) for m in mirrored if m["cells"][0] in by
        ),
        # Medians over runs of the within-run fold of mirrored cells; the widest pair and its quartiles.
        "cdnv_max_fold_same_sum": widest_pair["median"],
        "cdnv_fold_same_sum_iqr": (widest_pair["q1"], widest_pair["q3"]),
        "cdnv_fold_same_sum_at": widest_pair["cells"][0],
        "cdnv_max_fold_same_sum_single_run": max(m["max_run"] for m in mirrored),
        "n_mirrored": len(mirrored),
        # Sampled / analytic CDNV, per run, median over runs: the range over cells, the cell furthest off.
        "cdnv_to_analytic_range": (
            min(c["cdnv_to_analytic_median"] for c in cells),
            max(c["cdnv_to_analytic_median"] for c in cells),
        ),
        "cdnv_to_analytic_worst_cell": (off_analytic["sigma_z2"], off_analytic["sigma_n2"]),
        "cdnv_to_analytic_worst": (
            off_analytic["cdnv_to_analytic_median"],
            off_analytic["cdnv_to_analytic_q1"],
            off_analytic["cdnv_to_analytic_q3"],
        ),
        "cdnv_to_analytic_max_run": max(c["cdnv_to_analytic_max_run"] for c in cells),
        "spearman_mi_log_ratio": _spearman(mi, np.log(ratio)),
        "spearman_mi_log_sum": _spearman(mi, np.log(total)),
        "spearman_cdnv_log_sum": _spearman(cdnv, np.log(total)),
        "spearman_cdnv_log_ratio": _spearman(cdnv, np.log(ratio)),
        "cdnv_range_log10": float(np.ptp(np.log10(cdnv))),
        "per_ratio": per_ratio,
    }


def _iqr(quartiles: tuple[float, ...]) -> str:
    return f"{quartiles[0]:.3g}–{quartiles[1]:.3g}"


def _pair(cell: tuple[float, float]) -> str:
    return f"({cell[0]:g}, {cell[1]:g})"


def summary_markdown(cells: list[dict], f: dict, runs: int, n: int, classes: int, seconds: float) -> str:
    by = {(c["sigma_z2"], c["sigma_n2"]): c for c in cells}
    a, b = by[(1.0, 0.01)], by[(0.01, 0.0001)]  # same ratio 100, sums 100× apart
    m1, m2 = by[(1.0, 0.01)], by[(0.01, 1.0)]  # same sum, ratios 100 and 0.01
    p, q = by[(0.01, 0.01)], by[(0.01, 0.0001)]  # less noise: MI up, CDNV down
    table = "\n".join(
        f"| {r['ratio']:g} | {r['cells']} | {r['analytic']:.3f} | {r['mi']:.3f} ± {r['stderr']:.3f} | "
        f"[{r['lower']:.3f}, {r['upper']:.3f}] | {min(r['analytic'], f['ceiling']) - r['mi']:+.3f} |"
        for r in f["per_ratio"]
    )
    lo, hi = f["cdnv_to_analytic_range"]
    worst = f["cdnv_to_analytic_worst"]
    return f"""# The paper's toy example, reproduced

{classes} classes in 2-D, N = {n} inputs ({n // classes} per class), {runs} seeded runs per cell,
5 × 5 grid σ_z², σ_n² ∈ {{1, 0.1, 0.01, 0.001, 0.0001}}; {seconds:.1f} s. Empirical I(X;Z|Y) from
`repcompress.gaussian_channel_mi` (paired Monte Carlo, nats, mean over runs); CDNV trace-based
from a sampled Z, median over runs (its 1/‖Δμ‖² is heavy-tailed over draws of the class means, so
a mean would follow the one run whose means nearly coincide). Ratios of CDNV are formed within
each run, where the class means are shared, and given as the median over runs with the
interquartile range. Files: `toy_runs.csv`, `toy_cells.csv`, `toy_mi.png`, `toy_cdnv.png`.

**Mutual information follows the variance ratio σ_z²/σ_n².** Across the grid the empirical
I(X;Z|Y) spans {f["mi_range"]:.2f} nats; among cells with the same ratio (a diagonal of the grid) it
differs by at most {f["mi_max_spread_same_ratio"]:.2g} nats (within a class the class mean is a
translation and the estimate is invariant to scaling means and noise together), while CDNV differs
along a diagonal by a median factor of up to {f["cdnv_max_fold_same_ratio"]:.3g} (ratio
{f["cdnv_fold_same_ratio_at"]:g}; interquartile range over runs {_iqr(f["cdnv_fold_same_ratio_iqr"])}). Example,
ratio 100: (σ_z², σ_n²) = (1, 0.01) gives I = {a["mi"]:.3f}, CDNV = {a["cdnv_median"]:.3g}; (0.01, 0.0001)
gives I = {b["mi"]:.3f}, CDNV = {b["cdnv_median"]:.3g}. Rank correlation of I with log(ratio):
{f["spearman_mi_log_ratio"]:+.3f}; with log(sum): {f["spearman_mi_log_sum"]:+.3f}.

**Collapse follows the variance sum σ_z² + σ_n².** CDNV spans {f["cdnv_range_log10"]:.1f} orders of
magnitude; its rank correlation with log(sum) is {f["spearman_cdnv_log_sum"]:+.3f}, with log(ratio)
{f["spearman_cdnv_log_ratio"]:+.3f}. The {f["n_mirrored"]} pairs of cells mirrored across the diagonal share
the sum but have reciprocal ratios: their analytic CDNV is identical, and the sampled one differs
by a median factor over runs of at most {f["cdnv_max_fold_same_sum"]:.2f} (pair
{_pair(f["cdnv_fold_same_sum_at"])}, interquartile range {_iqr(f["cdnv_fold_same_sum_iqr"])}; sampling noise of the
class means, largest where the sum is near 1; the largest single run
{f["cdnv_max_fold_same_sum_single_run"]:.3g}), against up to {f["cdnv_max_fold_same_ratio"]:.3g} along a
diagonal; their I(X;Z|Y) differs by up to {f["mi_max_diff_same_sum"]:.2f} nats. Example: (1, 0.01) and
(0.01, 1): CDNV {m1["cdnv_median"]:.3g} and {m2["cdnv_median"]:.3g}; I = {m1["mi"]:.3f} and {m2["mi"]:.3f} nats.

**They can move in opposite directions.** Lowering the noise from σ_n² = 0.01 to 0.0001 at
σ_z² = 0.01 raises I(X;Z|Y) from {p["mi"]:.3f} to {q["mi"]:.3f} nats (less information compression)
while CDNV falls from {p["cdnv_median"]:.3g} to {q["cdnv_median"]:.3g} (more geometric collapse).

**Where the estimate follows log(1 + σ_z²/σ_n²), and where it saturates.** The empirical value
can never exceed Σ_y p(y) log N_y = {f["ceiling"]:.3f} nats. Per ratio (mean over the cells of a
diagonal; ± the Monte Carlo standard error; bracket = Bhattacharyya and KL pairwise bounds;
last column: min(analytic, cap) − empirical):

| σ_z²/σ_n² | cells | analytic | empirical | bounds | shortfall |
|---|---|---|---|---|---|
{table}

Up to a ratio of about 1 the estimate follows the population value; from ratio 10 on it falls
increasingly short, and once the ratio reaches N_y it approaches the cap log N_y instead of
log(1 + ratio): {n // classes} sampled inputs per class cannot carry more than log N_y nats,
however small the noise.

CDNV columns: `cdnv` is the trace-based CDNV of the sampled Z (docs/spec.md §4.2);
`cdnv_analytic_trace` = 2(σ_z² + σ_n²)·mean 1/‖μ_c − μ_c'‖² is its analytic value with the true
class means; `cdnv_analytic_notebook` = (σ_z² + σ_n²)·mean 1/‖μ_c − μ_c'‖² is the notebook's value,
which uses the per-coordinate variance: half the trace-based one in 2-D. `toy_cells.csv` holds
their medians over runs, the quartiles of `cdnv`, and those of `cdnv_to_analytic`, the sampled
over the analytic trace-based CDNV within a run. Its median over runs lies between {lo:.3g} and
{hi:.3g} across the cells, furthest from 1 at {_pair(f["cdnv_to_analytic_worst_cell"])}: median {worst[0]:.3g},
interquartile range {_iqr(worst[1:])}. Where σ_z² + σ_n² is near 1 the empirical class means of
{n // classes} points move enough to change the closest pair's 1/‖Δμ‖², and single runs depart further:
up to {f["cdnv_to_analytic_max_run"]:.3g} times the analytic value.
"""


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CommandLineError(
            "the toy reproduction's PNG heatmaps need matplotlib: pip install 'repcompress[plot]' "
            "(or pass --no-plots for CSV and markdown only)"
        ) from None


def run_toy(
    out: Path,
    runs: int = 5,
    n: int = 1000,
    classes: int = 10,
    seed: int = 0,
    plots: bool = True,
    progress: bool = True,
    grid: tuple[float, ...] = GRID,
) -> dict:
    if plots:  # fail before the work, not after it
        try:
            _require_matplotlib()
        except CommandLineError as exc:
            raise RuntimeError(str(exc)) from None
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = simulate(runs, n, classes, seed=seed, grid=grid, progress=progress)
    cells = summarise_cells(rows)
    write_csv(out / "toy_runs.csv", rows)
    write_csv(out / "toy_cells.csv", cells)
    files = [out / "toy_runs.csv", out / "toy_cells.csv"]
    if plots:
        files += plot(cells, out, grid)
    f = findings(rows)
    seconds = time.perf_counter() - t0
    if len(grid) == len(GRID):
        (out / "toy_summary.md").write_text(summary_markdown(cells, f, runs, n, classes, seconds))
        files.append(out / "toy_summary.md")
    return {"files": files, "findings": f, "seconds": seconds, "cells": cells}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=arguments.output_directory, required=True, help="output directory (created if needed)"
    )
    parser.add_argument("--runs", type=arguments.count(1), default=5, help="seeded runs per cell (default 5)")
    parser.add_argument(
        "--n", type=arguments.count(4), default=1000, help="inputs per run, at least 2 × classes (default 1000)"
    )
    parser.add_argument("--classes", type=arguments.count(2), default=10, help="classes K (default 10)")
    parser.add_argument("--seed", type=arguments.seed, default=0, help="a non-negative integer (default 0)")
    parser.add_argument("--no-plots", action="store_true", help="CSV and markdown only (no matplotlib needed)")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    # Every check before the output directory is made (docs/spec.md §6.4).
    if args.n < 2 * args.classes:
        raise CommandLineError(f"--n: need at least 2 inputs per class (2 × {args.classes}), got {args.n}")
    if not args.no_plots:
        _require_matplotlib()
    arguments.prepare_output_directory(args.out)
    try:
        result = run_toy(
            args.out,
            runs=args.runs,
            n=args.n,
            classes=args.classes,
            seed=args.seed,
            plots=not args.no_plots,
            progress=not args.no_progress,
        )
    except OSError as exc:  # the disk filled up, the directory was removed meanwhile
        raise CommandLineError(f"--out: cannot write the results to {args.out} ({exc.strerror or exc})") from None
    print(f"toy example: {result['seconds']:.1f} s; wrote")
    for path in result["files"]:
        print(f"  {path}")
    return 0
