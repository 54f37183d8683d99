"""repcompress.torch.capture: equal to a manual forward pass, hooks and modes restored, errors."""

import subprocess
import sys

import numpy as np
import pytest

from torch_support import require_torch

torch = require_torch()
from torch import nn  # noqa: E402

import repcompress as rc  # noqa: E402
from repcompress.torch import GaussianDropout, GaussianEncoder, capture  # noqa: E402


def batches(x, y, size):
    return [(x[i : i + size], y[i : i + size]) for i in range(0, len(y), size)]


@pytest.fixture
def model():
    torch.manual_seed(0)
    # ReLU(inplace=True) after the dropout overwrites the dropout's output tensor in place: capture
    # must have copied it before.
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), GaussianDropout(0.3), nn.ReLU(inplace=True), nn.Linear(8, 3))


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(50, 5, generator=g)
    y = torch.randint(0, 3, (50,), generator=g)
    return x, y


def no_hooks(model):
    return all(not m._forward_hooks for m in model.modules())


def test_import_repcompress_does_not_import_torch():
    code = "import sys, repcompress; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_capture_equals_manual_forward_per_batch(model, data):
    x, y = data
    loader = batches(x, y, 16)
    act = capture(model, loader, ["0", "2", "4"], progress=False)
    model.eval()
    with torch.no_grad():
        expected = {"0": [], "2": [], "4": []}
        for xb, _ in loader:
            h0 = model[0](xb)
            h2 = torch.tanh(h0)
            expected["0"].append(h0)
            expected["2"].append(h2.clone())
            expected["4"].append(model[4](torch.relu(h2)))
    for name, parts in expected.items():
        assert act[name].dtype == np.float32
        np.testing.assert_array_equal(act[name], torch.cat(parts).numpy())
    np.testing.assert_array_equal(act.labels, y.numpy())
    np.testing.assert_array_equal(act.sample_ids, np.arange(50))
    assert act.shapes == {"0": (8,), "2": (8,), "4": (3,)}
    # The Gaussian-dropout layer records the exact channel: mean = its input, variance = α·mean².
    np.testing.assert_array_equal(act.means["2"], act["2"])
    np.testing.assert_allclose(act.variances["2"], (0.3 / 0.7) * act["2"].astype(np.float64) ** 2, rtol=1e-6)
    assert set(act.means) == {"2"}
    assert no_hooks(model)


def test_modes_restored_and_model_not_left_in_eval(model, data):
    x, y = data
    model.train()
    model[4].eval()
    capture(model, batches(x, y, 20), ["2"], progress=False)
    assert model.training and model[2].training and not model[4].training
    capture(model, batches(x, y, 20), ["2"], stochastic=True, n_passes=2, progress=False)
    assert model.training and model[2].training and not model[4].training


def test_hooks_removed_and_modes_restored_when_forward_raises(model, data):
    x, y = data

    class Boom(nn.Module):
        def __init__(self):
            super().__init__()
            self.calls = 0

        def forward(self, h):
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("boom")
            return h

    net = nn.Sequential(model, Boom())
    net.train()
    with pytest.raises(RuntimeError, match="boom"):
        capture(net, batches(x, y, 16), ["0.0", "0.2"], progress=False)
    assert no_hooks(net)
    assert all(m.training for m in net.modules())


def test_max_samples_cuts_the_last_batch(model, data):
    x, y = data
    act = capture(model, batches(x, y, 16), ["4"], max_samples=21, progress=False)
    assert act["4"].shape == (21, 3)
    np.testing.assert_array_equal(act.labels, y[:21].numpy())
    model.eval()
    with torch.no_grad():  # the same batches as capture ran: 16 inputs, then the first 5 of the next
        expected = torch.cat([model(x[:16]), model(x[16:21])]).numpy()
    np.testing.assert_array_equal(act["4"], expected)


def test_stochastic_passes_keep_noise_and_ids(model, data):
    x, y = data
    torch.manual_seed(3)
    act = capture(model, batches(x, y, 16), ["0", "2"], stochastic=True, n_passes=3, progress=False)
    assert act["2"].shape == (150, 8) and act.n_passes == 3 and act.n_inputs == 50
    # Rows of one batch: pass 1, pass 2, pass 3 of the same 16 inputs.
    np.testing.assert_array_equal(act.sample_ids[:48], np.tile(np.arange(16), 3))
    np.testing.assert_array_equal(act.labels[:48], np.tile(y[:16].numpy(), 3))
    # Deterministic layer: identical across passes; the dropout output: not.
    np.testing.assert_array_equal(act["0"][:16], act["0"][16:32])
    assert not np.array_equal(act["2"][:16], act["2"][16:32])
    # The recorded channel means are the clean activations, the same in every pass.
    np.testing.assert_array_equal(act.means["2"][:16], act.means["2"][16:32])
    first = act.first_pass()
    assert first["2"].shape == (50, 8)
    np.testing.assert_array_equal(first.sample_ids, np.arange(50))


def test_deterministic_capture_has_no_noise(model, data):
    x, y = data
    a = capture(model, batches(x, y, 16), ["2"], progress=False)
    b = capture(model, batches(x, y, 16), ["2"], progress=False)
    np.testing.assert_array_equal(a["2"], b["2"])


def test_callables_dicts_modules_and_float64(model, data):
    x, y = data
    act = capture(
        model,
        batches(x, y, 16),
        {"inputs": lambda inp, out: inp, "probs": lambda inp, out: out.softmax(-1), "first": model[0]},
        dtype=np.float64,
        progress=False,
    )
    assert act["inputs"].dtype == np.float64
    np.testing.assert_array_equal(act["inputs"], x.numpy().astype(np.float64))
    np.testing.assert_allclose(act["probs"].sum(1), 1.0, rtol=1e-6)
    act2 = capture(model, batches(x, y, 16), [model[0]], progress=False)
    assert act2.names == ["0"]


def test_conv_outputs_are_flattened_per_sample():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    x = torch.randn(10, 1, 4, 4)
    y = torch.arange(10) % 2
    act = capture(net, batches(x, y, 4), ["0"], progress=False)
    assert act.shapes["0"] == (2, 4, 4) and act["0"].shape == (10, 32)
    net.eval()
    with torch.no_grad():
        np.testing.assert_array_equal(act["0"], net[0](x).reshape(10, -1).numpy())


def test_dataloader_and_gaussian_encoder_moments():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6), GaussianEncoder(6, 2))
    x = torch.randn(30, 4)
    y = torch.arange(30) % 3
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=7)
    act = capture(net, loader, ["1"], device="cpu", progress=False)
    with torch.no_grad():
        mu, std = net[1].moments(net[0](x))
    np.testing.assert_allclose(act.means["1"], mu.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(act.variances["1"], (std**2).numpy(), rtol=1e-5)
    np.testing.assert_allclose(act["1"], mu.numpy(), rtol=1e-6, atol=1e-7)  # eval mode: the mean


def test_save_writes_an_estimate_file(model, data, tmp_path):
    x, y = data
    act = capture(model, batches(x, y, 16), ["2", "4"], progress=False)
    act.save(tmp_path / "z.npz", "2")
    with np.load(tmp_path / "z.npz") as f:
        assert set(f.files) == {"z", "labels", "variances"}
        np.testing.assert_array_equal(f["variances"], act.variances["2"])
    act.save(tmp_path / "logits.npz", "4")
    with np.load(tmp_path / "logits.npz") as f:
        assert set(f.files) == {"z", "labels"}
    # What `repcompress estimate` reads: the channel layer gets the exact Gaussian-channel MI.
    from repcompress.estimate import estimate_file

    report = estimate_file(tmp_path / "z.npz", ["gaussian-mi", "cdnv"])
    direct = rc.gaussian_channel_mi(act.means["2"], act.variances["2"], labels=act.labels)
    assert report.value("gaussian-mi", "I(X;Z|Y)") == direct.given_labels.mi


def test_errors(model, data):
    x, y = data
    loader = batches(x, y, 16)
    with pytest.raises(ValueError, match=r"no module named '3x'.*did you mean"):
        capture(model, loader, ["3x"], progress=False)
    with pytest.raises(ValueError, match="empty"):
        capture(model, [], ["0"], progress=False)
    with pytest.raises(ValueError, match="stochastic=True"):
        capture(model, loader, ["0"], n_passes=2, progress=False)
    with pytest.raises(ValueError, match="max_samples"):
        capture(model, loader, ["0"], max_samples=0, progress=False)
    with pytest.raises(TypeError, match="dtype"):
        capture(model, loader, ["0"], dtype=np.int32, progress=False)
    with pytest.raises(ValueError, match="appears twice"):
        capture(model, loader, ["0", "0"], progress=False)
    with pytest.raises(TypeError, match="integer class ids"):
        capture(model, [(x, y.float())], ["0"], progress=False)
    with pytest.raises(TypeError, match=r"\(inputs, labels\) pair"):
        capture(model, [x], ["0"], progress=False)
    with pytest.raises(ValueError, match="same shape"):
        capture(model, loader, {"bad": lambda inp, out: out[:, : 1 + inp.shape[0] % 3]}, progress=False)
    with pytest.raises(RuntimeError, match="did not run"):

        class Partly(nn.Module):
            def __init__(self):
                super().__init__()
                self.used, self.unused = nn.Linear(5, 3), nn.Linear(5, 3)

            def forward(self, inp):
                return self.used(inp)

        capture(Partly(), loader, ["unused"], progress=False)
    with pytest.warns(RuntimeWarning, match="no dropout-type layer"):
        capture(nn.Sequential(nn.Linear(5, 2)), loader, ["0"], stochastic=True, progress=False)
    with pytest.raises(TypeError, match="not a tensor"):
        capture(model, loader, {"pair": lambda inp, out: (out, out)}, progress=False)
    with pytest.raises(ValueError, match="rows for a batch"):
        capture(model, loader, {"pooled": lambda inp, out: out.mean(0, keepdim=True)}, progress=False)
    assert no_hooks(model)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_capture_on_cuda_equals_manual_forward(model, data):
    """The CUDA path: batches moved to the device, activations back through pinned buffers with
    non-blocking copies that overlap the next batch's forward."""
    x, y = data
    net = model.to("cuda")
    loader = batches(x, y, 16)
    act = capture(net, loader, ["0", "2"], progress=False)
    net.eval()
    with torch.no_grad():
        expected = torch.cat([net[0](xb.cuda()) for xb, _ in loader]).cpu().numpy()
        clean = torch.cat([torch.tanh(net[0](xb.cuda())) for xb, _ in loader]).cpu().numpy()
    np.testing.assert_array_equal(act["0"], expected)
    np.testing.assert_array_equal(act["2"], clean)  # copied before the in-place ReLU
    np.testing.assert_array_equal(act.means["2"], clean)
    noisy = capture(net, loader, ["2"], stochastic=True, n_passes=2, dtype=np.float64, progress=False)
    assert noisy["2"].shape == (100, 8) and noisy["2"].dtype == np.float64
    assert not np.array_equal(noisy["2"][:16], noisy["2"][16:32])
    with pytest.raises(ValueError, match="move it first"):
        capture(net, loader, ["0"], device="cpu", progress=False)
    assert no_hooks(net)
