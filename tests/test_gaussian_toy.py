"""The toy reproduction (`repcompress reproduce toy`) at reduced size: files, CSV contents and the
two claims of its summary."""

import csv
import math

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
        assert c["cdnv_analytic_trace"] == pytest.approx(2 * c["cdnv_analytic_notebook"])
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
