"""The metric registry: a new metric is one entry of `METRICS`, and then it is resolved, listed,
evaluated (with and without intervals) and reported with no other change."""

import json
import math

import numpy as np
import pytest

import repcompress as rc
from repcompress.cli import main
from repcompress.estimate import METRICS, estimate_arrays, resolve_metrics
from repcompress.estimate_options import EstimateOptions
from repcompress.metrics import Metric, Quantity
from repcompress.report import MetricRow


def class_spread(h, labels, *, scale=1.0, offset=0.0):
    """A toy metric: the range of the class means of the first unit, times `scale`, plus `offset`."""
    h = np.asarray(h, dtype=float).reshape(len(labels), -1)
    means = [h[labels == c, 0].mean() for c in np.unique(labels)]
    return scale * float(np.ptp(means)) + offset


def channel_rows(metric, data, options):
    """A toy row builder: two rows from one look at the variances."""
    kwargs = metric.keywords(options)
    settings = metric.settings(kwargs)
    mean_variance = float(np.mean(data.variances))
    return [
        MetricRow(metric=metric.name, quantity=q, value=v, unit=metric.unit(options), settings=settings)
        for q, v in (("mean variance", mean_variance), ("log mean variance", math.log(mean_variance)))
    ]


TOY = Metric(
    "toy-spread",
    class_spread,
    "range of the class means of the first unit (a test entry)",
    options={"ridge": "scale"},
    quantities=(Quantity("spread", note=lambda data, s: f"scale = {s['scale']:g} on {data.z.shape[0]} samples"),),
)
TOY_CHANNEL = Metric(
    "toy-channel",
    class_spread,  # the function whose settings are reported
    "mean channel variance (a test entry)",
    information=True,
    needs_labels=False,
    needs_variances=True,
    options={"seed": "offset"},
    rows=channel_rows,
)


@pytest.fixture
def registry(monkeypatch):
    """The registry with the two toy entries added, for this test only."""
    monkeypatch.setitem(METRICS, TOY.name, TOY)
    monkeypatch.setitem(METRICS, TOY_CHANNEL.name, TOY_CHANNEL)
    return METRICS


def data(seed=0, n=90):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    z = rng.standard_normal((3, 4))[labels] + 0.3 * rng.standard_normal((n, 4))
    return z, labels


def test_entry_is_resolved(registry):
    assert resolve_metrics("toy_spread", has_variances=False) == ["toy-spread"]
    assert resolve_metrics("all", has_variances=False)[-1] == "toy-spread"
    assert resolve_metrics("all", has_variances=True)[-2:] == ["toy-spread", "toy-channel"]
    with pytest.raises(ValueError, match="'toy-channel' needs per-sample variances"):
        resolve_metrics("toy-channel", has_variances=False)
    with pytest.raises(ValueError, match="did you mean 'toy-spread'"):
        resolve_metrics("toy-sprad", has_variances=False)


def test_entry_is_evaluated(registry):
    z, labels = data()
    report = estimate_arrays(z, labels, metrics=["cdnv", "toy-spread"], ridge=2.0)
    row = report.row("toy-spread")
    assert row.quantity == "spread" and row.label == "toy-spread spread"
    assert row.value == class_spread(z, labels, scale=2.0)
    assert row.settings == {"scale": 2.0, "offset": 0.0}
    assert row.note == "scale = 2 on 90 samples" and row.unit == "" and row.function == "repcompress.class_spread"
    assert report.value("cdnv") == rc.class_distance_normalized_variance(z, labels)

    with_ci = estimate_arrays(z, labels, metrics="toy-spread", ci=20, seed=4, progress=False).row("toy-spread")
    direct = rc.confidence_interval(class_spread, z, labels, n_resamples=20, random_state=4, progress=False)
    assert (with_ci.value, with_ci.low, with_ci.high) == (direct.value, direct.low, direct.high)


def test_row_builder_entry_is_evaluated(registry):
    z, labels = data(1)
    variances = np.full_like(z, 0.5)
    report = estimate_arrays(z, labels, variances, metrics="all", base=2, seed=3)
    assert [r.quantity for r in report.rows if r.metric == "toy-channel"] == ["mean variance", "log mean variance"]
    row = report.row("toy-channel", "mean variance")
    assert row.value == 0.5 and row.unit == "bits" and row.settings == {"scale": 1.0, "offset": 3}
    assert "toy-channel" not in estimate_arrays(z, labels, metrics="all").settings["metrics"]


def test_entry_is_listed_and_reachable_from_the_command_line(registry, tmp_path, capsys):
    assert main(["estimate", "--list-metrics"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed[: len(registry)]] == list(registry)
    assert any(line.startswith("toy-spread") and "repcompress.class_spread" in line for line in listed)
    z, labels = data(2)
    path = tmp_path / "acts.npz"
    np.savez(path, z=z, labels=labels)
    assert main(["estimate", str(path), "--metrics", "toy-spread", "--ridge", "3", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["results"]
    assert row["value"] == class_spread(z, labels, scale=3.0)


def test_options_are_checked_once_and_named():
    assert EstimateOptions().base == math.e
    assert EstimateOptions(seed=np.int64(3), base=2).seed == 3
    for bad, message in (
        ({"k": 0}, "k: must be an integer >= 1"),
        ({"ci": 1}, "ci: must be an integer >= 2"),
        ({"ridge": -1.0}, "ridge: must be a finite number >= 0"),
        ({"base": 1}, "base: must be positive"),
        ({"confidence": 1.0}, "confidence: must be a number in (0, 1)"),
        ({"seed": 1.5}, "seed: must be an integer"),
    ):
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            EstimateOptions(**bad)
    z, labels = data()
    with pytest.raises(TypeError, match="estimate_arrays\\(\\) got an unexpected keyword argument 'bins'"):
        estimate_arrays(z, labels, bins=3)
