"""CompressionTracker on a tiny model, the metric registry it uses, and the digits reproductions."""

import math

import numpy as np
import pytest

from torch_support import require_torch

torch = require_torch()
pd = pytest.importorskip("pandas")
from torch import nn  # noqa: E402

import repcompress as rc  # noqa: E402
from repcompress.cli import main  # noqa: E402
from repcompress.torch import CompressionTracker, GaussianDropout, capture  # noqa: E402


@pytest.fixture
def setup():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    y = torch.arange(120) % 3
    x = torch.randn(120, 6, generator=g) + nn.functional.one_hot(y, 6).float() * 2
    data = [(x[i : i + 40], y[i : i + 40]) for i in range(0, 120, 40)]
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), GaussianDropout(0.5), nn.Linear(8, 3))
    return model, data


def train_epoch(model, data, opt):
    model.train()
    for xb, yb in data:
        opt.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        opt.step()


def test_tracker_two_epochs_frame_and_plots(setup, tmp_path):
    model, data = setup
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    tracker = CompressionTracker(
        {"hidden": "0", "Z": "2"},
        metrics=["gaussian-mi", "cdnv", "binned-entropy", "binned-mi-labels", "mi-labels"],
        estimate_options={"n_bins": 8},
    )
    for epoch in (1, 2):
        train_epoch(model, data, opt)
        new = tracker.step(model, epoch, {"train": data, "test": data[:1]})
        assert set(new.epoch) == {epoch}
        tracker.record(epoch, "accuracy", 0.5 + 0.1 * epoch, split="test")
    frame = tracker.frame
    assert {"epoch", "layer", "split", "metric", "value", "low", "high", "unit", "settings"} <= set(frame.columns)
    z_train = frame[(frame.layer == "Z") & (frame.split == "train")]
    for name in ("I(X;Z)", "I(X;Z|Y)", "I(Z;Y)", "cdnv", "H_bin(Z)", "I(T;Y)", "mi-labels I(Z;Y)"):
        assert (z_train.metric == name).sum() == 2, name
    assert (frame.error == "").all()
    # gaussian-mi only where the layer is a Gaussian channel; there the k-NN I(Z;Y) is told apart.
    hidden = frame[frame.layer == "hidden"]
    assert not hidden.metric.str.startswith("I(X;Z").any() and (hidden.metric == "cdnv").sum() == 4
    assert (hidden.metric == "I(Z;Y)").sum() == 4 and set(hidden[hidden.metric == "I(Z;Y)"].source) == {"mi-labels"}
    # The values are the library's, on the captured channel moments.
    act = capture(model, data, ["2"], progress=False)
    last = z_train[(z_train.epoch == 2)].set_index("metric")
    assert last.loc["cdnv", "value"] == pytest.approx(rc.class_distance_normalized_variance(act.means["2"], act.labels))
    direct = rc.gaussian_channel_mi(act.means["2"], act.variances["2"], labels=act.labels, random_state=2)
    assert last.loc["I(X;Z)", "value"] == pytest.approx(direct.mi)
    assert last.loc["I(X;Z)", "stderr"] == pytest.approx(direct.stderr)
    assert last.loc["I(X;Z|Y)", "upper_bound"] == pytest.approx(direct.given_labels.upper)
    assert last.loc["I(T;Y)", "value"] == pytest.approx(rc.binned_mutual_info(act.means["2"], act.labels, n_bins=8))
    assert last.loc["H_bin(Z)", "value"] == pytest.approx(rc.binned_entropy(act.means["2"], n_bins=8))
    assert (frame.metric == "accuracy").sum() == 2
    csv = tracker.to_csv(tmp_path / "t.csv")
    back = pd.read_csv(csv)
    assert len(back) == len(frame)
    paths = [tmp_path / "plane.png", tmp_path / "geo.png", tmp_path / "train.png"]
    tracker.plot_information_plane(path=paths[0])
    tracker.plot_information_plane(x="H_bin(Z)", y="I(T;Y)", path=tmp_path / "binned.png")
    tracker.plot_geometry_vs_information(path=paths[1])
    tracker.plot_training(metrics=["I(X;Z)", "cdnv", "accuracy"], path=paths[2])
    for p in paths:
        assert p.stat().st_size > 1000
    import matplotlib.pyplot as plt

    plt.close("all")


def test_tracker_every_and_errors(setup):
    model, data = setup
    tracker = CompressionTracker(["2"], metrics="cdnv", every=2)
    assert tracker.step(model, 1, data).empty
    assert not tracker.step(model, 2, data).empty
    with pytest.raises(ValueError, match="unknown metric 'cdvn'"):
        CompressionTracker(["2"], metrics=["cdvn"])
    with pytest.raises(ValueError, match="estimate_options: unknown bins"):
        CompressionTracker(["2"], metrics=["cdnv"], estimate_options={"bins": 3})
    with pytest.raises(ValueError, match="every"):
        CompressionTracker(["2"], every=0)
    with pytest.raises(ValueError, match="no values for 'I\\(X;Z\\)'"):
        tracker.plot_information_plane()


def test_tracker_records_failures_without_stopping_training(setup):
    model, data = setup
    # fisher-ratio needs an invertible S_W; a constant layer has S_W = 0.
    tracker = CompressionTracker({"const": lambda x, out: torch.ones(x.shape[0], 4)}, metrics=["fisher-ratio"])
    with pytest.warns(RuntimeWarning, match="fisher-ratio of layer 'const' failed"):
        rows = tracker.step(model, 1, data)
    assert np.isnan(rows.value.iloc[0]) and rows.error.iloc[0]


@pytest.mark.parametrize(
    "target, files",
    [
        (
            "dropout-digits",
            [
                "dropout_runs.csv",
                "dropout_training.csv",
                "dropout_correlations.csv",
                "dropout_correlations.md",
                "dropout_mi_vs_cdnv.png",
                "dropout_information_planes.png",
                "dropout_summary.md",
            ],
        ),
        (
            "ceb-digits",
            [
                "ceb_runs.csv",
                "ceb_training.csv",
                "ceb_correlations.csv",
                "ceb_correlations.md",
                "ceb_mi_vs_cdnv.png",
                "ceb_information_planes.png",
                "ceb_summary.md",
            ],
        ),
    ],
)
def test_reproduction_quick_end_to_end(target, files, tmp_path, capsys):
    out = tmp_path / target
    assert main(["reproduce", target, "--quick", "--out", str(out), "--no-progress"]) == 0
    for name in files:
        assert (out / name).stat().st_size > 0, name
    runs = pd.read_csv(out / files[0])
    assert len(runs) == 9  # 3 sweep values × 3 seeds
    assert (runs.I_XZ <= runs.log_N + 1e-9).all()
    assert (runs.I_XZ_given_Y_lower <= runs.I_XZ_given_Y_upper).all()
    corr = pd.read_csv(out / files[2])
    assert {"x", "y", "r", "p", "n"} <= set(corr.columns) and len(corr) > 0
    if target == "ceb-digits":
        # The CEB bound lies above the exact I(X;Z|Y) up to Monte Carlo error.
        assert (runs.I_XZ_given_Y_ceb >= runs.I_XZ_given_Y - 4 * runs.I_XZ_given_Y_stderr).all()
        # The I(Z;Y) bound uses the training set's H(Y) (digits: nearly balanced, just below log 10).
        from repcompress.reproduce._digits import load_digits_split
        from repcompress.torch import label_entropy

        assert (runs.H_Y == label_entropy(load_digits_split().y_train)).all()
        assert (runs.H_Y < math.log(10)).all()
    assert "Normalized-rank correlations" in capsys.readouterr().out


def test_a_split_with_one_class_fails_only_its_label_metrics(setup):
    # One split with a single class used to raise from step() and discard the rows of every split.
    model, data = setup
    x, _ = data[0]
    one_class = [(x, torch.zeros(x.shape[0], dtype=torch.long))]
    metrics = ["gaussian-mi", "cdnv", "nc2", "binned-entropy", "effective-rank"]
    tracker = CompressionTracker({"Z": "2"}, metrics=metrics)
    with pytest.warns(RuntimeWarning) as caught:
        rows = tracker.step(model, 1, {"train": data, "one": one_class, "test": data[:2]})
    messages = [str(w.message) for w in caught]
    assert any(
        "cdnv of layer 'Z' failed at epoch 1 on split 'one': labels: need at least 2 classes" in m for m in messages
    )
    assert len(tracker.frame) == len(rows)
    for split in ("train", "test"):  # the other splits keep every row, with values
        part = rows[rows.split == split]
        assert len(part) == 9 and (part.error == "").all() and part.value.notna().all(), split
    one = rows[rows.split == "one"].set_index("metric")
    assert len(one) == 9
    label_metrics = ["I(X;Z)", "I(X;Z|Y)", "I(Z;Y)", "cdnv", "equinorm", "equiangular", "max-angle"]
    assert one.loc[label_metrics, "value"].isna().all()
    assert (one.loc[label_metrics, "error"] == "labels: need at least 2 classes, got 1").all()
    # Metrics of z alone are measured on that split as on any other.
    act = capture(model, one_class, ["2"], progress=False)
    assert one.loc["H_bin(Z)", "value"] == rc.binned_entropy(act.means["2"])
    assert one.loc["effective-rank", "value"] == rc.effective_rank(act.means["2"])
    assert (one.loc[["H_bin(Z)", "effective-rank"], "error"] == "").all()


def test_activations_that_overflowed_fail_their_rows_not_the_step(setup):
    model, data = setup
    layers = {"bad": lambda x, out: torch.full((x.shape[0], 2), float("nan")), "good": "0"}
    tracker = CompressionTracker(layers, metrics=["cdnv", "effective-rank"])
    with pytest.warns(RuntimeWarning, match="of layer 'bad' failed at epoch 3 on split 'train': z: contains NaN"):
        rows = tracker.step(model, 3, data)
    bad, good = rows[rows.layer == "bad"], rows[rows.layer == "good"]
    assert len(bad) == 2 and bad.value.isna().all() and bad.error.str.startswith("z: contains NaN").all()
    assert len(good) == 2 and good.value.notna().all() and (good.error == "").all()


def test_tracker_checks_its_options_when_made():
    # ci, base, seed and the estimate options were checked at the first measurement, epochs into
    # training (base=10**400 raised OverflowError); stochastic/progress were read by truthiness.
    cases = [
        ({"ci": 1}, "ci", ValueError),
        ({"base": 10**400}, "base", ValueError),
        ({"base": 1}, "base", ValueError),
        ({"seed": -1}, "seed", ValueError),
        ({"seed": True}, "seed", ValueError),
        ({"estimate_options": {"k": 0}}, "k", ValueError),
        ({"estimate_options": {"ridge": 10**400}}, "ridge", ValueError),
        ({"stochastic": "yes"}, "stochastic", TypeError),
        ({"progress": "no"}, "progress", TypeError),
        ({"n_passes": 0}, "n_passes", ValueError),
        ({"max_samples": 0}, "max_samples", ValueError),
    ]
    for kwargs, name, exception in cases:
        with pytest.raises(exception) as info:
            CompressionTracker(["2"], metrics=["cdnv"], **kwargs)
        assert str(info.value).startswith(f"{name}:"), (kwargs, info.value)


def test_tracker_record_and_step_name_their_arguments(setup):
    model, data = setup
    tracker = CompressionTracker(["2"], metrics=["cdnv"])
    tracker.record(1, "loss", torch.tensor(0.5), low=np.float32(0.25))
    assert tracker.frame.value.iloc[0] == 0.5 and tracker.frame.low.iloc[0] == 0.25
    for bad, exception in [(10**400, ValueError), ("0.5", TypeError), (torch.ones(3), TypeError)]:
        with pytest.raises(exception, match=r"^value:"):
            tracker.record(1, "loss", bad)
    for epoch, exception in [(-1, ValueError), (1.5, TypeError), (True, TypeError)]:
        with pytest.raises(exception, match=r"^epoch:"):
            tracker.step(model, epoch, data)
    with pytest.raises(ValueError, match=r"^device:"):
        capture(model, data, ["2"], device="no such device", progress=False)
