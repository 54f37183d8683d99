"""The report of a digits reproduction at the paper's measurement point (docs/spec.md §7.10).

Every information measure of the run table (the exact value at the noise output T, and at the
paper's Z the DoE estimate under the reference protocol and the sample-based Ross and binned
estimates; I(X;·), I(X;·|Y) with empirical and with uniform class weights) is correlated, by the
paper's normalized-rank correlation across runs, with every geometry measure (CDNV of Z and of T,
clean and noisy), the generalization gap and the sweep parameter. The summary then says, for the
paper's two questions (does lower information go with tighter classes? with a smaller gap?),
which measures answer alike and which do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _digits
from ._measure import PAPER_ESTIMATORS, SUFFIX

QUANTITY_TEXT = {"": "I(X;·)", "_given_Y": "I(X;·|Y) empirical", "_given_Y_uniform": "I(X;·|Y) uniform"}
ESTIMATOR_TEXT = {"exact": "exact", "doe": "DoE (reference)", "ross": "Ross", "binned": "binned", "ceb": "CEB bound"}
GEOMETRY = (
    ("cdnv_noisy", "CDNV of Z, noisy (paper)"),
    ("cdnv_clean", "CDNV of Z, clean"),
    ("cdnv_T_noisy", "CDNV of T, noisy"),
    ("cdnv_T_clean", "CDNV of T, clean"),
)
CONCLUSION_COLUMNS = ("information", "point", "estimator", "quantity", "against", "r", "p", "n")
# A correlation counts as a finding when p < this (the paper's level).
SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class Measure:
    column: str
    point: str  # "T" (noise output) or "Z" (the paper's representation)
    estimator: str
    quantity: str  # a SUFFIX value

    @property
    def label(self) -> str:
        return f"{ESTIMATOR_TEXT[self.estimator]} {QUANTITY_TEXT[self.quantity]} at {self.point}"


def information_measures(runs: Any, z_is_t: bool) -> list[Measure]:
    """The information columns of a paper-point run table (``z_is_t``: Z is the noise output)."""
    z_point = "T = Z" if z_is_t else "Z"
    out = [Measure(f"I_XT{s}", "T = Z" if z_is_t else "T", "exact", s) for s in SUFFIX.values()]
    out += [Measure(f"I_XZ{s}_{e}", z_point, e, s) for e in PAPER_ESTIMATORS for s in SUFFIX.values()]
    if "I_XZ_given_Y_ceb" in runs:
        out.append(Measure("I_XZ_given_Y_ceb", z_point, "ceb", "_given_Y"))
    return out


def conclusions(runs: Any, setting: str, z_is_t: bool) -> Any:
    """One row per (information measure, other quantity): the paper's normalized-rank r, its p and n."""
    import pandas as pd

    from ..analysis import rank_correlations

    measures = information_measures(runs, z_is_t)
    others = [(c, text) for c, text in GEOMETRY if c in runs] + [("gap", "generalization gap"), (setting, setting)]
    columns = [m.column for m in measures] + [c for c, _ in others]
    table = rank_correlations(runs, columns, setup="setup")
    rows = []
    for m in measures:
        for column, text in others:
            hit = _digits.pick(table, m.column, column)
            rows.append(
                {
                    "information": m.column,
                    "point": m.point,
                    "estimator": ESTIMATOR_TEXT[m.estimator],
                    "quantity": QUANTITY_TEXT[m.quantity],
                    "against": text,
                    "r": float(hit.r),
                    "p": float(hit.p),
                    "n": int(hit.n),
                }
            )
    return pd.DataFrame(rows, columns=list(CONCLUSION_COLUMNS))


def verdict(r: float, p: float) -> str:
    if not p < SIGNIFICANCE:  # NaN too
        return "no significant relation"
    return "positive" if r > 0 else "negative"


def dependence_text(table: Any, against: str, z_is_t: bool = False) -> str:
    """Which information measures agree on the sign and significance of their relation with ``against``."""
    part = table[table.against == against]
    groups: dict[str, list[str]] = {}
    for _, row in part.iterrows():
        label = f"{row.estimator} {row.quantity} at {row.point}"
        groups.setdefault(verdict(row.r, row.p), []).append(f"{label} (r = {row.r:+.2f})")
    if len(groups) == 1:
        (only,) = groups
        return f"All {len(part)} information measures agree with {against}: {only}."
    parts = [f"{v} for {len(items)}: " + "; ".join(items) for v, items in sorted(groups.items())]
    on = "the estimator" if z_is_t else "the measurement point or the estimator"
    return f"The answer with {against} depends on {on} — " + " | ".join(parts) + "."


def geometry_text(table: Any) -> str:
    """Whether the exact I(X;·)'s relation with the class geometry depends on which CDNV is taken."""
    part = table[(table.information == "I_XT") & table.against.str.startswith("CDNV")]
    verdicts = {row.against: (verdict(row.r, row.p), row.r) for _, row in part.iterrows()}
    listed = "; ".join(f"{a}: {v} (r = {r:+.2f})" for a, (v, r) in verdicts.items())
    if len({v for v, _ in verdicts.values()}) == 1:
        return f"The exact I(X;·) relates alike to every CDNV — {listed}."
    return f"The exact I(X;·) relates differently to the CDNV depending on where and how it is taken — {listed}."


def pivot_markdown(table: Any) -> str:
    """Measures as rows, the other quantities as columns, cells "r (p)"."""
    against = list(dict.fromkeys(table.against))
    lines = ["| information | " + " | ".join(against) + " |", "|---|" + "---|" * len(against)]
    for _, part in table.groupby("information", sort=False):
        first = part.iloc[0]
        cells = {row.against: f"{row.r:+.2f} ({row.p:.2g})" for _, row in part.iterrows()}
        label = f"{first.estimator} {first.quantity} at {first.point}"
        lines.append(f"| {label} | " + " | ".join(cells.get(a, "") for a in against) + " |")
    return "\n".join(lines)


def write(table: Any, out: Path, stem: str) -> list[Path]:
    csv, md = out / f"{stem}_conclusions.csv", out / f"{stem}_conclusions.md"
    table.to_csv(csv, index=False)
    md.write_text(pivot_markdown(table) + "\n")
    return [csv, md]


def figure(runs: Any, setting: str, setting_label: str, z_is_t: bool, path: Path, title: str) -> Path:
    """I(X;·) by each measure against the paper's CDNV (Z, noisy), one panel per measure."""
    from .. import plots as rplots

    plt = rplots._pyplot()
    measures = [m for m in information_measures(runs, z_is_t) if m.quantity == ""]
    fig, axes = plt.subplots(1, len(measures), figsize=(4.2 * len(measures), 3.8), squeeze=False)
    for ax, m in zip(axes[0], measures, strict=True):
        rplots.scatter_by(
            runs[m.column],
            runs["cdnv_noisy"],
            runs[setting],
            xlabel=f"{m.label} [nats]",
            ylabel="CDNV of Z, noisy",
            clabel=setting_label,
            ax=ax,
            log_y=True,
            title=ESTIMATOR_TEXT[m.estimator],
        )
        ax.axvline(float(runs["log_N"].iloc[0]), color="0.5", lw=1, ls=":", label="log N")
        ax.legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def summary_section(table: Any, runs: Any, z_is_t: bool) -> str:
    """The markdown section of the summary: the pivot table and what depends on what."""
    log_n = float(runs["log_N"].iloc[0])
    above = [
        f"{m.label}: {int((runs[m.column] > log_n + 1e-9).sum())}/{len(runs)} runs above log N = {log_n:.3f}"
        for m in information_measures(runs, z_is_t)
        if m.quantity == "" and m.estimator != "exact"
    ]
    bound = "" if z_is_t else " (an upper bound on I(X;Z) by data processing)"
    lines = [
        "## At the paper's measurement point",
        "",
        f"Exact values at the noise output T{bound}; estimates at Z from stochastic passes. "
        "Normalized-rank r (p) across runs of each information measure with each quantity:",
        "",
        pivot_markdown(table),
        "",
        "Estimates of I(X;·) above their ceiling log N (impossible for the true value): " + "; ".join(above) + ".",
        "",
        dependence_text(table, "CDNV of Z, noisy (paper)", z_is_t),
        "",
        dependence_text(table, "generalization gap", z_is_t),
        "",
        geometry_text(table),
    ]
    return "\n".join(lines) + "\n"


def report(
    runs: Any,
    out: Path,
    *,
    stem: str,
    setting: str,
    setting_label: str,
    z_is_t: bool,
    plots_on: bool,
    title: str,
    intro: str,
    means_of: list[str],
) -> tuple[list[Path], Any]:
    """The conclusions table (CSV, markdown), the figure and ``{stem}_summary.md`` of a paper-point
    run: (files written, the conclusions table)."""
    table = conclusions(runs, setting, z_is_t)
    written = write(table, out, stem)
    if plots_on:
        written.append(figure(runs, setting, setting_label, z_is_t, out / f"{stem}_mi_vs_cdnv.png", title))
    by = runs.groupby(setting)[means_of].mean().reset_index()
    text = "\n".join(
        [f"# {title}", "", intro, "", "## Means over seeds", "", _digits.markdown_table(by, list(by.columns)), ""]
    )
    summary = out / f"{stem}_summary.md"
    summary.write_text(text + "\n" + summary_section(table, runs, z_is_t))
    return [*written, summary], table
