"""`reproduce dropout-digits / ceb-digits --measure-at paper` (issue 15 §4): the paper's MLP with Z after
a Linear + ReLU that follows the noise, its measurements recomputed independently from captures of the
same trained network, the conclusions table recomputed from the run table, and the summary's
statements checked against hand-made tables."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

import repcompress as rc  # noqa: E402
from repcompress.analysis import rank_correlations  # noqa: E402
from repcompress.cli import main  # noqa: E402
from repcompress.reproduce import _digits, _measure, _paper_report, dropout_digits  # noqa: E402
from repcompress.torch import GaussianDropout, capture  # noqa: E402


def test_the_paper_model_puts_a_linear_and_relu_after_the_noise():
    noise = dropout_digits.build_model(0.5, 0)
    paper = dropout_digits.build_model(0.5, 0, "paper")
    assert isinstance(paper[4], GaussianDropout)
    assert isinstance(paper[5], torch.nn.Linear) and (paper[5].in_features, paper[5].out_features) == (32, 32)
    assert isinstance(paper[6], torch.nn.ReLU) and dropout_digits.Z_LAYER["paper"] == "6"
    assert len(paper) == len(noise) + 2
    # the same seed gives the same layers up to the noise: only the measurement point differs
    for a, b in zip(noise[:5].parameters(), paper[:5].parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.fixture(scope="module")
def trained():
    """A briefly trained paper-point dropout MLP on a part of digits, and its measurement loader."""
    data = _digits.load_digits_split()
    model = dropout_digits.build_model(0.5, 3, "paper")
    shuffled, _, _ = _digits.loaders(data, batch_size=64, seed=3)
    torch.set_num_threads(1)
    _digits.train_epochs(model, shuffled, 2, lambda x, y: torch.nn.functional.cross_entropy(model(x), y))
    keep = np.arange(300)
    loader = _digits.Batches(data.x_train[keep], data.y_train[keep], 128)
    return model, loader


def test_paper_point_values_recomputed_from_captures(trained):
    model, loader = trained
    seeds = _measure.paper_seeds(3)
    row = _measure.paper_point(model, loader, noise="4", layer="6", n_passes=2, n_draws=2, seeds=seeds)
    act = capture(model, loader, {"T": "4", "Z": "6"}, dtype=np.float64, progress=False)
    labels = act.labels
    # the exact value at T is gaussian_channel_mi with the first seed
    mi = rc.gaussian_channel_mi(act.means["T"], act.variances["T"], labels=labels, n_draws=2, random_state=seeds[0])
    assert row["I_XT"] == mi.mi and row["I_XT_given_Y"] == mi.given_labels.mi
    assert row["I_XT_stderr"] == mi.stderr
    # uniform class weights: the plain mean of per-class values
    per = [
        rc.gaussian_channel_mi(
            act.means["T"][labels == c], act.variances["T"][labels == c], n_draws=2, random_state=seeds[0]
        ).mi
        for c in np.unique(labels)
    ]
    assert row["I_XT_given_Y_uniform"] == pytest.approx(np.mean(per), rel=1e-12)
    # clean CDNVs: of Z and of T with the noise off
    assert row["cdnv_clean"] == rc.class_distance_normalized_variance(act.layers["Z"], labels)
    assert row["cdnv_T_clean"] == rc.class_distance_normalized_variance(act.means["T"], labels)
    # noisy CDNVs: one noisy pass, with the noise visibly on (Z is not its clean value)
    sampled = _measure.stochastic_capture(model, loader, ["4", "6"], 2, seeds[1])
    assert row["cdnv_noisy"] == rc.class_distance_normalized_variance(sampled["layers"]["6"][0], labels)
    assert row["cdnv_T_noisy"] == rc.class_distance_normalized_variance(sampled["layers"]["4"][0], labels)
    assert not np.allclose(sampled["layers"]["6"][0], act.layers["Z"])
    assert row["log_N"] == math.log(300)
    for estimator in _measure.PAPER_ESTIMATORS:
        for suffix in _measure.SUFFIX.values():
            assert math.isfinite(row[f"I_XZ{suffix}_{estimator}"])
    # sample-based estimates at Z recomputed through layer_mutual_info with the same seed
    sample = _measure.sample_estimates(model, loader, "6", "4", 2, seeds[3])["estimates"]
    assert row["I_XZ_ross"] == sample[("ross", "I(X;Z)", "-")].value
    assert row["I_XZ_given_Y_uniform_binned"] == sample[("binned", "I(X;Z|Y)", "uniform")].value


def runs_table(rng, n=12):
    """Hand-made paper-point runs: exact I(X;T) falls with lambda, the DoE estimate rises with it."""
    lam = np.repeat(np.array([-1.0, 0.0, 1.0, 2.0]), n // 4)
    base = lam + 0.01 * rng.standard_normal(n)
    table = {"setup": "s", "lambda": lam, "gap": rng.standard_normal(n), "log_N": math.log(100.0)}
    for suffix in _measure.SUFFIX.values():
        table[f"I_XT{suffix}"] = 5.0 - base
        table[f"I_XZ{suffix}_doe"] = 6.0 + base
        table[f"I_XZ{suffix}_ross"] = 2.0 - base
        table[f"I_XZ{suffix}_binned"] = np.tile([1.0, 3.0, 2.0], n // 3)  # the same order within every lambda
    table["cdnv_noisy"] = np.exp(base)
    table["cdnv_clean"] = np.exp(base + 0.05 * rng.standard_normal(n))
    return pd.DataFrame(table)


def test_conclusions_are_the_papers_correlations_of_each_pair():
    runs = runs_table(np.random.default_rng(11))
    table = _paper_report.conclusions(runs, "lambda", z_is_t=False)
    measures = _paper_report.information_measures(runs, z_is_t=False)
    assert len(table) == len(measures) * 4  # two CDNVs, the gap, lambda
    for _, row in table.iterrows():
        other = {"CDNV of Z, noisy (paper)": "cdnv_noisy", "CDNV of Z, clean": "cdnv_clean"}.get(row.against)
        other = other or ("gap" if row.against == "generalization gap" else row.against)
        direct = rank_correlations(runs, [row.information, other], setup="setup").iloc[0]
        assert row.r == pytest.approx(direct.r, rel=1e-12) and row.n == direct.n
    exact = table[(table.information == "I_XT") & (table.against == "CDNV of Z, noisy (paper)")].iloc[0]
    doe = table[(table.information == "I_XZ_doe") & (table.against == "CDNV of Z, noisy (paper)")].iloc[0]
    assert exact.r < -0.9 and doe.r > 0.9 and exact.p < 0.05 and doe.p < 0.05


def test_the_summary_says_when_a_conclusion_depends_on_the_estimator():
    runs = runs_table(np.random.default_rng(12))
    table = _paper_report.conclusions(runs, "lambda", z_is_t=False)
    text = _paper_report.dependence_text(table, "CDNV of Z, noisy (paper)")
    assert text.startswith("The answer with CDNV of Z, noisy (paper) depends")
    assert "negative for 6" in text and "positive for 3" in text  # exact and Ross (3 each) vs DoE (3)
    agree = _paper_report.dependence_text(table[table.estimator != "DoE (reference)"].assign(r=-0.9, p=0.001), "lambda")
    assert agree.startswith("All 9 information measures agree with lambda: negative")
    section = _paper_report.summary_section(table, runs, z_is_t=False)
    assert "DoE (reference) I(X;·) at Z: 12/12 runs above log N" in section
    assert "The exact I(X;·) relates alike to every CDNV — CDNV of Z, noisy (paper): negative" in section
    # a clean CDNV that moves against the noisy one: the geometry's answer depends on it
    flipped = _paper_report.conclusions(runs.assign(cdnv_clean=-runs["cdnv_clean"]), "lambda", z_is_t=False)
    text = _paper_report.geometry_text(flipped)
    assert text.startswith("The exact I(X;·) relates differently") and "CDNV of Z, clean: positive" in text
    assert "depends on the estimator —" in _paper_report.dependence_text(table, "lambda", z_is_t=True)


@pytest.fixture(scope="module")
def quick_paper(tmp_path_factory):
    out = tmp_path_factory.mktemp("dropout-paper")
    args = ["--out", str(out), "--quick", "--seeds", "2", "--epochs", "2", "--no-progress", "--threads", "2"]
    assert main(["reproduce", "dropout-digits", *args, "--measure-at", "paper"]) == 0
    return out


def test_the_paper_point_run_writes_its_files_and_a_consistent_summary(quick_paper, capsys):
    names = sorted(p.name for p in quick_paper.iterdir())
    stems = ("runs.csv", "training.csv", "information_planes.png", "conclusions.csv", "conclusions.md")
    expected = sorted(
        [f"dropout_paper_{s}" for s in stems] + ["dropout_paper_mi_vs_cdnv.png", "dropout_paper_summary.md"]
    )
    assert names == expected
    runs = pd.read_csv(quick_paper / "dropout_paper_runs.csv")
    assert len(runs) == 6 and set(runs["lambda"]) == {-5.0, 0.0, 5.0}
    table = pd.read_csv(quick_paper / "dropout_paper_conclusions.csv")
    again = _paper_report.conclusions(runs, "lambda", z_is_t=False)
    np.testing.assert_allclose(table["r"], again["r"], rtol=1e-12, equal_nan=True)
    summary = (quick_paper / "dropout_paper_summary.md").read_text()
    assert "## At the paper's measurement point" in summary
    assert _paper_report.dependence_text(again, "generalization gap") in summary
    assert _paper_report.geometry_text(again) in summary


def test_ceb_paper_point_is_the_noise_output_measured_twice_alike():
    """In the paper's CEB network Z is the encoder's sample: the paper-point exact value I_XT and the
    noise-mode exact I_XZ are the same quantity from independent Monte Carlo streams, so they agree
    within 5 combined standard errors (a 5-sigma band: a false alarm about once in 2 million runs)."""
    from repcompress.reproduce import ceb_digits

    data = _digits.load_digits_split()
    row, _ = ceb_digits.one_run(data, 10.0, 1, epochs=1, track_every=None, n_draws=2, n_samples=4, measure_at="paper")
    for paper, noise in (("I_XT", "I_XZ"), ("I_XT_given_Y", "I_XZ_given_Y")):
        band = 5 * math.hypot(row[f"{paper}_stderr"], row[f"{noise}_stderr"])
        assert abs(row[paper] - row[noise]) < band
    assert row["cdnv_clean"] == row["cdnv"] and "cdnv_T_clean" not in row
    assert math.isfinite(row["I_XZ_given_Y_ceb"]) and math.isfinite(row["I_XZ_doe"])


def test_measure_at_accepts_only_its_two_points(tmp_path, capsys):
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "ceb-digits", "--out", str(out), "--quick", "--measure-at", "layer3"])
    assert exc.value.code == 2 and not out.exists()
    assert "invalid choice: 'layer3'" in capsys.readouterr().err
