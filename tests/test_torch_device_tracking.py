"""capture(..., keep_on_device=True) and the tracker's device path (docs/spec.md §8.5): the same
activations as tensors, and the same table as the Rust path (≤ 1e-10 relative), on CPU torch
everywhere and on CUDA where a device exists."""

import numpy as np
import pytest

from torch_support import require_torch

torch = require_torch()
pd = pytest.importorskip("pandas")
from torch import nn  # noqa: E402

import repcompress as rc  # noqa: E402
from repcompress.torch import CompressionTracker, GaussianDropout, capture  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def make(device="cpu"):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    y = torch.arange(90) % 3
    x = torch.randn(90, 6, generator=g) + nn.functional.one_hot(y, 6).float() * 2
    data = [(x[i : i + 30], y[i : i + 30]) for i in range(0, 90, 30)]
    # Five hidden units from six inputs: full column rank (the effective rank of a rank-deficient
    # layer agrees only to O(√ε), tests/test_torch_gaussian_geometry.py).
    model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), GaussianDropout(0.5), nn.ReLU(inplace=True), nn.Linear(5, 3))
    return model.to(device), data


@pytest.mark.parametrize("device", DEVICES)
def test_keep_on_device_holds_the_same_values_as_tensors(device):
    model, data = make(device)
    host = capture(model, data, ["0", "2"], progress=False, dtype=np.float64)
    kept = capture(model, data, ["0", "2"], progress=False, dtype=np.float64, keep_on_device=True)
    assert kept.on_device and not host.on_device
    for name in ("0", "2"):
        t = kept.layers[name]
        assert isinstance(t, torch.Tensor) and t.device.type == device and t.dtype == torch.float64
        assert np.array_equal(t.cpu().numpy(), host.layers[name])
    # The in-place ReLU after the dropout did not change what was kept.
    assert np.array_equal(kept.means["2"].cpu().numpy(), host.means["2"])
    assert np.array_equal(kept.variances["2"].cpu().numpy(), host.variances["2"])
    assert np.array_equal(kept.labels, host.labels) and isinstance(kept.labels, np.ndarray)
    # A metric on the kept tensors runs on their device and equals the host path.
    direct = rc.gaussian_channel_mi(host.means["2"], host.variances["2"], labels=host.labels)
    on_device = rc.gaussian_channel_mi(kept.means["2"], kept.variances["2"], labels=kept.labels, device=device)
    assert on_device.mi == pytest.approx(direct.mi, rel=1e-10)


def test_keep_on_device_first_pass_save_and_option_check(tmp_path):
    model, data = make()
    kept = capture(model, data, ["2"], progress=False, stochastic=True, n_passes=2, keep_on_device=True)
    host = capture(model, data, ["2"], progress=False, stochastic=True, n_passes=2)
    first = kept.first_pass()
    assert isinstance(first.layers["2"], torch.Tensor) and first.layers["2"].shape[0] == 90
    assert np.array_equal(first.means["2"].numpy(), host.first_pass().means["2"])
    kept.save(tmp_path / "z.npz", "2")
    assert np.array_equal(np.load(tmp_path / "z.npz")["z"], host.means["2"])
    with pytest.raises(TypeError, match=r"^keep_on_device: must be True or False"):
        capture(model, data, ["2"], keep_on_device="yes")


METRICS = ["gaussian-mi", "cdnv", "nc1", "nc2", "trace-ratio", "silhouette", "effective-rank", "binned-entropy"]


def frames(metrics_device, model_device="cpu", **options):
    model, data = make(model_device)
    tracker = CompressionTracker(
        {"hidden": "0", "Z": "2"},
        metrics=METRICS,
        estimate_options={"n_bins": 8},
        metrics_device=metrics_device,
        **options,
    )
    tracker.step(model, 1, {"train": data, "test": data[:2]})
    return tracker.frame


@pytest.mark.parametrize("device", DEVICES)
def test_tracker_frame_on_the_device_equals_the_rust_path(device):
    rust = frames(None)
    torch_path = frames(device)
    assert list(rust.columns) == list(torch_path.columns) and len(rust) == len(torch_path) > 20
    text = [c for c in rust.columns if c not in ("value", "low", "high", "stderr", "lower_bound", "upper_bound")]
    assert rust[text].equals(torch_path[text])  # metrics, settings, errors: identical
    for column in ("value", "low", "high", "stderr", "lower_bound", "upper_bound"):
        a, b = rust[column].to_numpy(float), torch_path[column].to_numpy(float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), column
        ok = ~np.isnan(a)
        assert np.all(np.abs(a[ok] - b[ok]) <= 1e-10 * np.abs(a[ok]) + 1e-12), column
    assert (rust.error == "").all()


def test_tracker_device_path_is_really_taken(monkeypatch):
    """The device path calls the metric functions with device= and tensors, the host path with
    numpy arrays and no device."""
    import dataclasses
    import inspect

    from repcompress import metrics as metrics_module

    seen = []
    original = metrics_module.METRICS["cdnv"].function

    def spy(h, labels, **kw):
        seen.append((type(h).__name__, kw.get("device")))
        return original(h, labels, **kw)

    spy.__signature__ = inspect.signature(original)
    spy.__name__ = original.__name__
    spied = dataclasses.replace(metrics_module.METRICS["cdnv"], function=spy)
    monkeypatch.setitem(metrics_module.METRICS, "cdnv", spied)
    model, data = make()
    CompressionTracker({"Z": "2"}, metrics=["cdnv"], metrics_device="cpu").step(model, 1, data)
    CompressionTracker({"Z": "2"}, metrics=["cdnv"]).step(model, 1, data)
    assert seen == [("Tensor", torch.device("cpu")), ("ndarray", None)]


def test_tracker_metrics_device_is_checked_when_made():
    with pytest.raises(ValueError, match=r"^device: 'nowhere' is not a torch device"):
        CompressionTracker({"Z": "2"}, metrics=["cdnv"], metrics_device="nowhere")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_tracker_uses_the_gpu_when_the_model_is_there():
    """A model on the GPU: the tracker's default is the device path there (the same frame as asking
    for it), and that equals the Rust path on the same activations (test above, on CUDA)."""
    auto = frames(None, model_device="cuda")
    asked = frames("cuda", model_device="cuda")
    assert auto.equals(asked)
