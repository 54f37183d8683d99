"""`repcompress reproduce estimator-check`: the estimators against the exact information on trained
digits networks (issue 15 §3). The quick run end to end: its files and columns, its exact values
recomputed with gaussian_channel_mi on the same captures, its summary recomputed from its CSV; the
bias table on a hand-made table; the per-class uniform weighting; argument errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")
pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

import repcompress as rc  # noqa: E402
from repcompress.cli import main  # noqa: E402
from repcompress.reproduce import _digits, _measure, estimator_check  # noqa: E402


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("estimator-check")
    code = main(["reproduce", "estimator-check", "--quick", "--out", str(out), "--no-progress", "--threads", "2"])
    assert code == 0
    return out


def test_quick_run_writes_every_file_with_its_columns(quick):
    names = sorted(p.name for p in quick.iterdir())
    assert names == [
        "estimator_check.png",
        "estimator_check_runs.csv",
        "estimator_check_summary.csv",
        "estimator_check_summary.md",
        "summary.md",
    ]
    runs = pd.read_csv(quick / "estimator_check_runs.csv", keep_default_na=False, na_values=[""])
    assert list(runs.columns) == list(estimator_check.RUN_COLUMNS)
    # 2 networks × 2 seeds × 2 points × 4 estimators × 3 (quantity, weighting)
    assert len(runs) == 2 * 2 * 2 * 4 * 3
    assert set(runs.estimator) == set(estimator_check.ESTIMATORS)
    assert set(runs.point) == {"noise", "linear"}
    assert set(zip(runs.quantity, runs.class_weights, strict=True)) == set(estimator_check.QUANTITIES)
    assert runs["estimate"].notna().all() and runs["exact"].notna().all() and runs["exact_stderr"].gt(0).all()
    assert (runs.n == 300).all() and (runs.n_passes == 4).all()
    # every exact value lies between its pairwise bounds up to its Monte Carlo error
    slack = 5 * runs["exact_stderr"]
    assert (runs["exact_lower"] - slack <= runs["exact"]).all() and (runs["exact"] <= runs["exact_upper"] + slack).all()
    # held-out standard errors only for the recommended protocol
    assert runs.loc[runs.estimator == "doe-recommended", "estimate_stderr"].notna().all()
    assert runs.loc[runs.estimator != "doe-recommended", "estimate_stderr"].isna().all()
    assert runs["ceiling"].iloc[0] == pytest.approx(math.log(300))
    assert runs.loc[runs.estimator == "doe-recommended", "converged"].isin([True, False]).all()
    assert runs.loc[runs.estimator != "doe-recommended", "converged"].isna().all()
    summary = pd.read_csv(quick / "estimator_check_summary.csv", keep_default_na=False, na_values=[""])
    assert list(summary.columns) == list(estimator_check.SUMMARY_COLUMNS)
    assert len(summary) == 2 * 2 * 4 * 3 and (summary.runs == 2).all()


def test_exact_values_are_gaussian_channel_mi_on_the_same_captures(quick):
    from repcompress.torch import capture

    runs = pd.read_csv(quick / "estimator_check_runs.csv", keep_default_na=False, na_values=[""])
    config = estimator_check.quick_config()
    for k, network in enumerate(estimator_check.NETWORKS):
        seed = 1  # the second seed: the streams of a later run, not only the first
        seeds = estimator_check.stream_seeds(config.seed, k, seed)
        data = _digits.load_digits_split(seeds["split"])
        trained = estimator_check.train_network(network, data, seeds["model"], config.epochs, config.ceb_beta)
        loader = estimator_check.measurement_loader(data, config.max_inputs)
        act = capture(trained.model, loader, {"T": trained.noise}, dtype=np.float64, progress=False)
        exact_seed, _ = estimator_check.estimator_seeds(seeds)
        options = {"labels": act.labels, "n_draws": config.n_draws, "random_state": exact_seed}
        at_t = rc.gaussian_channel_mi(act.means["T"], act.variances["T"], **options)
        at_z = rc.gaussian_channel_mi(act.means["T"], act.variances["T"], transform=trained.weight, **options)
        mine = runs[(runs.network == network) & (runs.seed == seed) & (runs.estimator == "ross")]
        for point, mi in (("noise", at_t), ("linear", at_z)):
            for quantity, weights, expected in (
                ("I(X;Z)", "-", mi),
                ("I(X;Z|Y)", "empirical", mi.given_labels),
            ):
                row = mine[(mine.point == point) & (mine.quantity == quantity) & (mine.class_weights == weights)]
                assert len(row) == 1
                got = row.iloc[0]
                np.testing.assert_allclose(
                    [got.exact, got.exact_stderr, got.exact_lower, got.exact_upper],
                    [expected.mi, expected.stderr, expected.lower, expected.upper],
                    rtol=1e-12,
                )
                assert got.bound == pytest.approx((at_t if quantity == "I(X;Z)" else at_t.given_labels).mi, rel=1e-12)
        # uniform weights: the mean of per-class values on each class's rows
        per = [
            rc.gaussian_channel_mi(
                act.means["T"][act.labels == c], act.variances["T"][act.labels == c], n_draws=2, random_state=exact_seed
            ).mi
            for c in np.unique(act.labels)
        ]
        row = mine[(mine.point == "noise") & (mine.class_weights == "uniform")].iloc[0]
        assert row.exact == pytest.approx(float(np.mean(per)), rel=1e-12)
        # data processing, draw by draw: Z = W·T is measured on the images of T's own draws
        assert at_z.mi <= at_t.mi + 1e-9 and at_z.upper <= at_t.upper + 1e-9
        if np.linalg.matrix_rank(trained.weight) == trained.weight.shape[1]:  # CEB's 10 × 8 decoder
            assert at_z.mi == pytest.approx(at_t.mi, rel=1e-8)


def test_summary_numbers_are_those_of_the_csv(quick):
    runs = pd.read_csv(quick / "estimator_check_runs.csv", keep_default_na=False, na_values=[""])
    summary = pd.read_csv(quick / "estimator_check_summary.csv", keep_default_na=False, na_values=[""])
    keys = ["network", "point", "estimator", "quantity", "class_weights"]
    for _, row in summary.iterrows():
        part = runs
        for key in keys:
            part = part[part[key] == row[key]]
        bias = part["estimate"] - part["exact"]
        assert len(part) == row.runs
        assert row.bias_mean == pytest.approx(bias.mean(), rel=1e-12, abs=1e-12)
        assert row.bias_sd == pytest.approx(bias.std(ddof=1), rel=1e-12, abs=1e-12)
        tol = estimator_check.ABOVE_TOLERANCE
        assert row.frac_above_exact == (part["estimate"] > part["exact"] + tol).mean()
        assert row.frac_above_ceiling == (part["estimate"] > part["ceiling"] + tol).mean()
        assert row.frac_above_bound == (part["estimate"] > part["bound"] + tol).mean()
    text = (quick / "summary.md").read_text()
    # the table in summary.md is the summary CSV's
    assert _digits.markdown_table(summary, list(estimator_check.SUMMARY_MD_COLUMNS)) in text
    # a sentence: the closest estimator of one cell and its bias, from the CSV
    cell = summary[(summary.network == "dropout") & (summary.point == "noise") & (summary.quantity == "I(X;Z)")]
    best = cell.loc[cell.bias_mean.abs().idxmin()]
    assert f"closest {best.estimator} ({best.bias_mean:+.2f} ± {best.bias_sd:.2f})" in text
    for estimator in estimator_check.ESTIMATORS:
        part = runs[runs.estimator == estimator]
        bias = part["estimate"] - part["exact"]
        assert f"- {estimator}: of {len(part)} estimates" in text
        assert f"bias from {bias.min():+.2f} to {bias.max():+.2f} nats (median {bias.median():+.2f})" in text
    assert "N = 300" in text and "2 seeds" in text
    rec = runs[runs.estimator == "doe-recommended"]
    assert f"early stopping ended {int(rec.converged.astype(bool).sum())} of {len(rec)} estimates" in text


def test_summarise_on_a_known_table():
    rows = []
    # the last ceiling equals its estimate up to rounding: not above it
    for seed, (estimate, exact, ceiling) in enumerate([(3.0, 2.0, 2.0), (1.0, 2.0, 4.0), (5.0, 2.0, 5.0 - 1e-12)]):
        rows.append(
            {
                "network": "n",
                "point": "noise",
                "estimator": "e",
                "quantity": "I(X;Z)",
                "class_weights": "-",
                "seed": seed,
                "estimate": estimate,
                "exact": exact,
                "bound": 2.5,
                "ceiling": ceiling,
            }
        )
    s = estimator_check.summarise(pd.DataFrame(rows)).iloc[0]
    assert s.runs == 3 and s.bias_mean == pytest.approx(1.0) and s.bias_sd == pytest.approx(2.0)
    assert s.frac_above_exact == pytest.approx(2 / 3) and s.frac_above_bound == pytest.approx(2 / 3)
    assert s.frac_above_ceiling == pytest.approx(1 / 3) and s.exact_mean == 2.0 and s.estimate_mean == 3.0


def test_uniform_weights_equal_empirical_ones_on_balanced_classes():
    # the pairwise bounds are exact functions of the moments: with equal class sizes the uniform
    # mean of per-class bounds is the empirical-weight bound of one call
    rng = np.random.default_rng(3)
    means = rng.normal(size=(60, 3))
    variances = rng.uniform(0.1, 1.0, size=(60, 3))
    labels = np.repeat(np.arange(3), 20)
    ex = _measure.exact_information(means, variances, labels, transform=None, n_draws=2, seed=5)
    emp, uni = ex[("I(X;Z|Y)", "empirical")], ex[("I(X;Z|Y)", "uniform")]
    assert uni.lower == pytest.approx(emp.lower, rel=1e-10) and uni.upper == pytest.approx(emp.upper, rel=1e-10)
    assert abs(uni.value - emp.value) < 5 * math.hypot(uni.stderr, emp.stderr)
    c = _measure.ceilings(np.array([0, 0, 0, 1]))
    assert c[("I(X;Z)", "-")] == pytest.approx(math.log(4))
    assert c[("I(X;Z|Y)", "empirical")] == pytest.approx(0.75 * math.log(3))
    assert c[("I(X;Z|Y)", "uniform")] == pytest.approx(0.5 * math.log(3))


def test_streams_are_distinct():
    seen = set()
    for k in range(2):
        for seed in range(5):
            s = estimator_check.stream_seeds(0, k, seed)
            assert len(set(s.values())) == 4
            seen.update(s.values())
    assert len(seen) == 40
    assert estimator_check.stream_seeds(0, 1, 2) == estimator_check.stream_seeds(0, 1, 2)
    assert estimator_check.stream_seeds(1, 1, 2) != estimator_check.stream_seeds(0, 1, 2)


def _failure(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--seeds", "1"], "argument --seeds: must be at least 2"),
        (["--passes", "1"], "argument --passes: must be at least 2"),
        (["--epochs", "0"], "argument --epochs: must be at least 1"),
        (["--max-inputs", "5"], "argument --max-inputs: must be at least 20"),
        (["--doe-epochs", "0"], "argument --doe-epochs: must be at least 1"),
        (["--ceb-beta", "1"], "argument --ceb-beta: must be a finite number > 1"),
        (["--ceb-beta", "nan"], "argument --ceb-beta: must be a finite number > 1"),
        (["--ceb-beta", "x"], "argument --ceb-beta: expected a number"),
        (["--seed", "-1"], "argument --seed: must be a non-negative integer"),
        (["--threads", "0"], "argument --threads: must be at least 1"),
    ],
)
def test_argument_errors_are_one_line_before_anything_is_made(tmp_path, capsys, options, message):
    out = tmp_path / "never-made"
    code, stdout, err = _failure(capsys, "reproduce", "estimator-check", "--out", out, *options)
    assert code == 2 and stdout == ""
    assert "Traceback" not in err and err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_output_path_errors(tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    for out, message in ((a_file, "exists and is not a directory"), ("", "got an empty path")):
        code, _, err = _failure(capsys, "reproduce", "estimator-check", "--quick", "--out", out)
        assert code == 2 and message in err, err
