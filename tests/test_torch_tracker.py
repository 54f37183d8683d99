"""CompressionTracker on a tiny model, the metric registry it uses, and the digits reproductions."""

import math

import numpy as np
import pytest

from torch_support import require_torch

torch = require_torch()
pd = pytest.importorskip("pandas")
from torch import nn  # noqa: E402

import repcompress as rc  # noqa: E402
from repcompress import metrics as m  # noqa: E402
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
    tracker = CompressionTracker({"hidden": "0", "Z": "2"}, metrics=["gaussian-mi", "cdnv", "binned"],
                                 metric_options={"binned": {"n_bins": 8}})
    for epoch in (1, 2):
        train_epoch(model, data, opt)
        new = tracker.step(model, epoch, {"train": data, "test": data[:1]})
        assert set(new.epoch) == {epoch}
        tracker.record(epoch, "accuracy", 0.5 + 0.1 * epoch, split="test")
    frame = tracker.frame
    assert list(frame.columns) == ["epoch", "layer", "split", "metric", "value", "low", "high", "unit", "settings"]
    z_train = frame[(frame.layer == "Z") & (frame.split == "train")]
    for name in ("I(X;Z)", "I(X;Z|Y)", "I(Z;Y)", "I(X;Z) lower bound", "I(X;Z) upper bound", "cdnv", "H(T)", "I(T;Y)"):
        assert (z_train.metric == name).sum() == 2, name
    # gaussian-mi only where the layer is a Gaussian channel.
    hidden = frame[frame.layer == "hidden"]
    assert not hidden.metric.str.startswith("I(X;Z").any() and (hidden.metric == "cdnv").sum() == 4
    # The values are the library's, on the captured channel moments.
    act = capture(model, data, ["2"], progress=False)
    last = z_train[(z_train.epoch == 2)].set_index("metric")
    assert last.loc["cdnv", "value"] == pytest.approx(rc.class_distance_normalized_variance(act.means["2"], act.labels))
    direct = rc.gaussian_channel_mi(act.means["2"], act.variances["2"], labels=act.labels, random_state=2)
    assert last.loc["I(X;Z)", "value"] == pytest.approx(direct.mi)
    assert last.loc["I(X;Z)", "low"] < direct.mi < last.loc["I(X;Z)", "high"]
    assert last.loc["I(X;Z|Y) upper bound", "value"] == pytest.approx(direct.given_labels.upper)
    assert (frame.metric == "accuracy").sum() == 2
    csv = tracker.to_csv(tmp_path / "t.csv")
    back = pd.read_csv(csv)
    assert len(back) == len(frame)
    paths = [tmp_path / "plane.png", tmp_path / "geo.png", tmp_path / "train.png"]
    tracker.plot_information_plane(path=paths[0])
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
    with pytest.raises(ValueError, match="not tracked"):
        CompressionTracker(["2"], metrics=["cdnv"], metric_options={"binned": {"n_bins": 3}})
    with pytest.raises(ValueError, match="every"):
        CompressionTracker(["2"], every=0)
    with pytest.raises(ValueError, match="no values for 'I\\(X;Z\\)'"):
        tracker.plot_information_plane()


def test_compute_metrics_equals_direct_calls():
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(4), 30)
    z = rng.standard_normal((120, 3)) + labels[:, None]
    v = rng.uniform(0.2, 1.0, z.shape)
    rows = {r.metric: r for r in m.compute_metrics(z, labels, "all", variances=v, seed=4)}
    assert rows["cdnv"].value == rc.class_distance_normalized_variance(z, labels)
    assert rows["silhouette"].value == rc.silhouette(z, labels)
    assert rows["twonn"].value == rc.twonn_dimension(z)
    assert rows["I(Z;Y) knn"].value == rc.mutual_info_labels(z, labels)
    assert rows["h(Z)"].value == rc.entropy(z)
    assert rows["H_bin(Z)"].value == rc.binned_entropy(z, n_bins=30)
    assert rows["nc1"].value == rc.neural_collapse(z, labels).nc1
    g = rc.gaussian_channel_mi(z, v, labels=labels, random_state=4)
    assert rows["I(X;Z|Y)"].value == g.given_labels.mi
    assert rows["I(Z;Y) upper bound"].value == g.labels.upper
    bits = {r.metric: r for r in m.compute_metrics(z, labels, ["mi-labels"], base=2)}
    assert bits["I(Z;Y) knn"].value == pytest.approx(rc.mutual_info_labels(z, labels) / math.log(2))
    assert bits["I(Z;Y) knn"].unit == "bits"
    ci = {r.metric: r for r in m.compute_metrics(z, labels, ["cdnv"], ci=30)}
    assert ci["cdnv"].low < ci["cdnv"].value < ci["cdnv"].high
    with pytest.raises(ValueError, match="needs the variances"):
        m.compute_metrics(z, labels, ["gaussian-mi"])
    with pytest.raises(ValueError, match="unknown metric"):
        m.compute_metrics(z, labels, ["nope"])


@pytest.mark.parametrize(
    "target, files",
    [
        ("dropout-digits", ["dropout_runs.csv", "dropout_training.csv", "dropout_correlations.csv",
                            "dropout_correlations.md", "dropout_mi_vs_cdnv.png", "dropout_information_planes.png",
                            "dropout_summary.md"]),
        ("ceb-digits", ["ceb_runs.csv", "ceb_training.csv", "ceb_correlations.csv", "ceb_correlations.md",
                        "ceb_mi_vs_cdnv.png", "ceb_information_planes.png", "ceb_summary.md"]),
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
    assert "Normalized-rank correlations" in capsys.readouterr().out
