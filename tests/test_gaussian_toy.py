"""The toy reproduction (`repcompress reproduce toy`) at reduced size: files, CSV contents and the
two claims of its summary."""

import csv
import math

import numpy as np
import pytest

from repcompress.cli import main
from repcompress.reproduce import toy


def test_cli_writes_every_file(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    rc = main(["reproduce", "toy", "--out", str(tmp_path), "--runs", "1", "--n", "200", "--no-progress"])
    assert rc == 0
    for name in ("toy_runs.csv", "toy_cells.csv", "toy_mi.png", "toy_cdnv.png", "toy_summary.md"):
        assert (tmp_path / name).stat().st_size > 0, name
    with (tmp_path / "toy_cells.csv").open() as f:
        cells = list(csv.DictReader(f))
    assert len(cells) == 25
    summary = (tmp_path / "toy_summary.md").read_text()
    assert "follows the variance ratio" in summary and "follows the variance sum" in summary


def test_numbers_follow_ratio_and_sum(tmp_path):
    result = toy.run_toy(tmp_path, runs=2, n=200, classes=10, plots=False, progress=False)
    f = result["findings"]
    cells = result["cells"]
    ceiling = math.log(20)  # 20 inputs per class
    assert f["ceiling"] == pytest.approx(ceiling)
    for c in cells:
        assert c["mi_analytic"] == pytest.approx(math.log1p(c["sigma_z2"] / c["sigma_n2"]))
        assert c["cdnv_analytic_trace_median"] == pytest.approx(2 * c["cdnv_analytic_notebook_median"])
        assert c["cdnv_q1"] <= c["cdnv_median"] <= c["cdnv_q3"]
        assert c["mi"] <= ceiling + 1e-12
        # Far below the cap the estimate follows the population value (4 standard errors of the
        # mean over runs and draws; this cell's estimate is exactly ratio-invariant, see summary).
        if c["ratio"] <= 0.01:
            assert abs(c["mi"] - c["mi_analytic"]) <= 4 * max(c["mi_stderr"], c["mi_sd_runs"]) + 1e-3
    # Same ratio: MI identical (exact invariance); CDNV orders of magnitude apart.
    assert f["mi_max_spread_same_ratio"] < 1e-9
    assert f["cdnv_max_fold_same_ratio"] > 100
    # Largest ratio: saturated near the cap, far below log(1 + 1e4).
    top = next(c for c in cells if c["ratio"] == pytest.approx(1e4))
    assert ceiling - 0.1 < top["mi"] <= ceiling
    assert f["spearman_cdnv_log_sum"] > 0.9 and abs(f["spearman_mi_log_sum"]) < 0.3


def test_missing_matplotlib_is_a_clear_error(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("no matplotlib")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(RuntimeError, match="need matplotlib"):
        toy.run_toy(tmp_path, runs=1, n=40, plots=True, progress=False)


# ---------------------------------------------------------------- summaries over runs (issue 15)


def _row(run, sz2, sn2, cdnv, analytic=None):
    """A toy_runs.csv row with the given sampled CDNV; the information columns follow the population value."""
    mi = min(math.log1p(sz2 / sn2), math.log(100))
    analytic = 2 * (sz2 + sn2) if analytic is None else analytic
    return {
        "run": run,
        "sigma_z2": sz2,
        "sigma_n2": sn2,
        "ratio": sz2 / sn2,
        "sum": sz2 + sn2,
        "mi_analytic": math.log1p(sz2 / sn2),
        "mi": mi,
        "mi_stderr": 0.01,
        "mi_lower": mi - 0.1,
        "mi_upper": mi + 0.1,
        "mi_ceiling": math.log(100),
        "cdnv": cdnv,
        "cdnv_analytic_trace": analytic,
        "cdnv_analytic_notebook": analytic / 2,
    }


def test_cell_summary_takes_medians_and_quartiles_of_cdnv_not_means():
    # Five runs of one cell, one of them an outlier (its sampled class means nearly coincide).
    sampled = [1.0, 1.1, 0.9, 1.05, 100.0]
    analytic = [1.0, 1.0, 1.0, 1.0, 2.0]
    rows = [_row(r, 1.0, 1.0, c, a) for r, (c, a) in enumerate(zip(sampled, analytic, strict=True))]
    (cell,) = toy.summarise_cells(rows)
    # Sorted 0.9, 1.0, 1.05, 1.1, 100: median the 3rd, quartiles the 2nd and 4th (linear interpolation).
    assert (cell["cdnv_median"], cell["cdnv_q1"], cell["cdnv_q3"]) == (1.05, 1.0, 1.1)
    assert cell["cdnv_analytic_trace_median"] == 1.0 and cell["cdnv_analytic_notebook_median"] == 0.5
    # Sampled / analytic within each run: 1, 1.1, 0.9, 1.05, 50.
    assert (cell["cdnv_to_analytic_median"], cell["cdnv_to_analytic_q1"], cell["cdnv_to_analytic_q3"]) == (
        1.05,
        1.0,
        1.1,
    )
    assert cell["cdnv_to_analytic_max_run"] == 50.0
    assert "cdnv" not in cell  # no mean of CDNV over runs: it would be 20.8, set by the outlier
    assert cell["mi"] == pytest.approx(math.log(2)) and cell["runs"] == 5


def _grid_rows(outlier_fold):
    """5 runs over the full grid. Within run r, the cell above the diagonal has folds[r] times the
    CDNV of its mirror; pair (1, 0.0001) has ``outlier_fold`` instead in run 4."""
    folds = [1.1, 1.2, 1.3, 1.25, 1.15]
    rows = []
    for run in range(5):
        for a in toy.GRID:
            for b in toy.GRID:
                base = 2 * (a + b) * (1 + 0.3 * run)  # runs differ in scale: ratios of means would mix them
                fold = outlier_fold if (a, b, run) == (1.0, 0.0001, 4) else folds[run]
                rows.append(_row(run, a, b, base * fold if a > b else base))
    return rows


def test_mirrored_cells_are_compared_within_runs_and_summarised_by_median_and_iqr():
    rows = _grid_rows(outlier_fold=50.0)
    pairs = {m["cells"]: m for m in toy.mirrored_cdnv_folds(rows)}
    assert len(pairs) == 10
    # Every other pair: folds 1.1, 1.2, 1.3, 1.25, 1.15 -> median 1.2, quartiles 1.15 and 1.25.
    plain = pairs[((1.0, 0.1), (0.1, 1.0))]
    assert (plain["median"], plain["q1"], plain["q3"], plain["max_run"]) == pytest.approx((1.2, 1.15, 1.25, 1.3))
    # The outlier pair: folds 1.1, 1.2, 1.3, 1.25, 50 -> median 1.25, quartiles 1.2 and 1.3.
    odd = pairs[((1.0, 0.0001), (0.0001, 1.0))]
    assert (odd["median"], odd["q1"], odd["q3"], odd["max_run"]) == pytest.approx((1.25, 1.2, 1.3, 50.0))
    f = toy.findings(rows)
    assert f["cdnv_max_fold_same_sum"] == pytest.approx(1.25)
    assert f["cdnv_fold_same_sum_iqr"] == pytest.approx((1.2, 1.3))
    assert f["cdnv_fold_same_sum_at"] == (1.0, 0.0001)
    assert f["cdnv_max_fold_same_sum_single_run"] == pytest.approx(50.0)
    # What a ratio of means over runs would have said for the outlier pair (the former summary):
    up = [r["cdnv"] for r in rows if (r["sigma_z2"], r["sigma_n2"]) == (1.0, 0.0001)]
    down = [r["cdnv"] for r in rows if (r["sigma_z2"], r["sigma_n2"]) == (0.0001, 1.0)]
    assert sum(up) / sum(down) > 5


def test_summary_sentence_is_written_from_the_robust_numbers():
    rows = _grid_rows(outlier_fold=50.0)
    cells = toy.summarise_cells(rows)
    f = toy.findings(rows)
    text = " ".join(toy.summary_markdown(cells, f, runs=5, n=1000, classes=10, seconds=1.0).split())
    assert (
        "differs by a median factor over runs of at most 1.25 (pair (1, 0.0001), interquartile range 1.2–1.3;" in text
    )
    assert "the largest single run 50)" in text
    # Sampled / analytic within a run: the run scale (1 + 0.3 r) times the fold above the diagonal.
    ratios = np.array([r["cdnv"] / r["cdnv_analytic_trace"] for r in rows])
    assert f["cdnv_to_analytic_max_run"] == pytest.approx(ratios.max())
    assert f"up to {ratios.max():.3g} times the analytic value" in text
