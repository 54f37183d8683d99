"""Sample-based I(X;T) of a layer after the noise with the exact data-processing bound
(repcompress.torch.layer_mutual_info, docs/spec.md §7.8), on a small digits MLP:
64 → Linear(2) → Tanh → GaussianDropout → Linear(8) → ReLU → Linear(10)."""

import math

import numpy as np
import pytest

from torch_support import require_torch

torch = require_torch()
from torch import nn  # noqa: E402

import repcompress as rc  # noqa: E402
from repcompress.torch import GaussianDropout, capture, layer_mutual_info  # noqa: E402
from repcompress.torch.layer_information import passes_by_input  # noqa: E402

N = 300
# Seeds: the data subset and the model's initialisation and training come from DATA_SEED and
# MODEL_SEED; the estimators (capture noise, Monte Carlo, jitter) from the random_state of each call.
DATA_SEED, MODEL_SEED = 123, 7


@pytest.fixture(autouse=True)
def one_torch_thread():
    # Tiny MLPs gain nothing from intra-op threads, and CI has 2 shared cores; restored afterwards.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def digits(n=N):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    rows = np.random.default_rng(DATA_SEED).permutation(y.size)[:n]
    return torch.tensor((x[rows] / 16.0).astype(np.float32)), torch.tensor(y[rows])


@pytest.fixture(scope="module")
def mlp():
    """The MLP trained for 20 epochs (0.1 s): the noise layer is "2" (2 units, tanh before it, so
    no exact zeros), "3"/"4" the Linear+ReLU after it, "0"/"1" before it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x, y = digits()
        torch.manual_seed(MODEL_SEED)
        model = nn.Sequential(
            nn.Linear(64, 2), nn.Tanh(), GaussianDropout(0.3), nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 10)
        )
        opt = torch.optim.Adam(model.parameters(), 1e-2)
        for _ in range(20):
            for s in range(0, N, 100):
                opt.zero_grad()
                nn.functional.cross_entropy(model(x[s : s + 100]), y[s : s + 100]).backward()
                opt.step()
        model.eval()
        batches = [(x[s : s + 128], y[s : s + 128]) for s in range(0, N, 128)]  # 128, 128, 44
        return model, batches
    finally:
        torch.set_num_threads(threads)


def exact(model, batches, **kw):
    act = capture(model, batches, ["2"], progress=False, dtype=np.float64)
    return act, rc.gaussian_channel_mi(act.means["2"], act.variances["2"], labels=act.labels, **kw)


def test_ross_at_the_noise_layer_agrees_with_the_exact_value(mlp):
    # X uniform over the N inputs, P = 64 passes each: Ross's estimator with the sample id as the
    # discrete variable is consistent as P grows (N fixed), so at the noise output it must agree
    # with the exact I(X;T) of the Gaussian channel. Measured over random_state 0–11 (exact value
    # 1.619 ± 0.005 with 256 draws): Ross − exact = +0.012 ± 0.010 (mean ± sd; range −0.003 …
    # +0.031) for I(X;T) and −0.010 ± 0.007 for I(X;T|Y) (0.866); at P = 32 the bias is −0.013
    # and −0.032. Tolerance: 0.05 nats (the measured bias plus 4 sd of the capture noise) plus 4
    # Monte Carlo standard errors of the exact value.
    model, batches = mlp
    r = layer_mutual_info(model, batches, "2", n_passes=64, n_draws=64, estimators="ross", random_state=3)
    b = r.upper_bound
    assert r.noise_layer == "2" and b.noise_layer == "2"
    assert b.stderr < 0.01 and b.given_labels_stderr < 0.01
    ross, ross_y = r.estimate("ross"), r.estimate("ross", "I(X;T|Y)")
    assert abs(ross.value - b.value) <= 0.05 + 4 * b.stderr
    assert abs(ross_y.value - b.given_labels) <= 0.05 + 4 * b.given_labels_stderr
    assert not ross.exceeds_bound and not ross_y.exceeds_bound
    # Far from the ceiling here (the test would be void near log N, where Ross saturates). Ross's
    # ceiling ψ(NP) − ψ(P) = log N + 1/(2P) + O(1/P²) lies slightly above log N.
    assert b.value < math.log(N) - 3
    assert ross.settings["ceiling"] == pytest.approx(math.log(N) + 1 / 128, abs=1e-4)


def test_later_layer_estimates_obey_the_bound_and_the_ceilings(mlp):
    # T = ReLU(Linear(noise)): data processing gives I(X;T) ≤ I(X;T₀). Measured Ross at layer "4"
    # (P = 64, random_state 0–11): 0.063 ± 0.009 below the exact I(X;T₀).
    model, batches = mlp
    r = layer_mutual_info(model, batches, "4", n_passes=64, n_draws=16, random_state=5)
    assert r.noise_layer == "2" and r.n == N and r.n_passes == 64
    b = r.upper_bound
    ross = r.estimate("ross")
    assert ross.bound == b.value and ross.bound_stderr == b.stderr
    assert ross.value < b.value and not ross.exceeds_bound
    assert ross.value <= ross.settings["ceiling"]
    # Ross's ceiling ψ(NP) − ψ(P) (a sample's k-th in-input neighbour at best beats every other row).
    from scipy.special import digamma

    assert ross.settings["ceiling"] == pytest.approx(digamma(N * 64) - digamma(64), rel=1e-12)
    binned = r.estimate("binned")
    # Plug-in: 0 ≤ I ≤ log N whatever the bins; with 30 bins per unit over 8 units nearly every
    # row of a ReLU layer is its own pattern, so the estimate sits far above the bound: the flag
    # must say so (the bound is 1.6 nats, log N = 5.7).
    assert 0 <= binned.value <= math.log(N) + 1e-12
    assert binned.value > b.value + 1 and binned.exceeds_bound
    # The same bins give I(X;T|Y) = I(X;T) − I(T;Y) with empirical weights (Y a function of X).
    cond = r.estimate("binned", "I(X;T|Y)")
    assert cond.value == pytest.approx(binned.value - binned.settings["I_TY"], abs=1e-9)
    assert r.log_n == pytest.approx(math.log(N))


def test_the_upper_bound_is_gaussian_channel_mi_of_the_noise_layer(mlp):
    model, batches = mlp
    for layer in ("2", "3", "4", "5"):
        r = layer_mutual_info(model, batches, layer, n_passes=2, estimators="ross", n_draws=3, random_state=11)
        b = r.upper_bound
        act, ref = exact(model, batches, n_draws=3, random_state=b.settings["random_state"])
        assert r.noise_layer == "2"
        assert (b.value, b.stderr, b.pairwise_upper) == (ref.mi, ref.stderr, ref.upper)
        assert (b.given_labels, b.given_labels_stderr, b.given_labels_pairwise_upper) == (
            ref.given_labels.mi,
            ref.given_labels.stderr,
            ref.given_labels.upper,
        )
        assert r.estimate("ross", "I(X;T|Y)").bound == ref.given_labels.mi
    # Uniform class weights: the uniform mean of the exact per-class values (each class its own
    # seed, settings["random_state"] + 1 + class index).
    r = layer_mutual_info(
        model, batches, "4", n_passes=2, estimators="ross", class_weights="uniform", n_draws=3, random_state=11
    )
    seed = r.upper_bound.settings["random_state"]
    per = []
    for c, value in enumerate(np.unique(act.labels)):
        rows = act.labels == value
        per.append(
            rc.gaussian_channel_mi(
                act.means["2"][rows], act.variances["2"][rows], n_draws=3, random_state=seed + 1 + c
            ).mi
        )
    assert r.upper_bound.given_labels == pytest.approx(np.mean(per), rel=1e-12)
    counts = np.bincount(act.labels)
    assert r.log_n_given_labels == pytest.approx(np.mean(np.log(counts)), rel=1e-12)


def test_auto_detection_and_the_layers_without_a_bound(mlp):
    model, batches = mlp
    assert layer_mutual_info(model, batches, "3", n_passes=2, estimators="ross", noise_layer="2").noise_layer == "2"
    for layer in ("0", "1"):  # before the noise: nothing bounds them
        r = layer_mutual_info(model, batches, layer, n_passes=2, estimators="ross")
        assert r.noise_layer is None and r.upper_bound.value is None
        assert "no Gaussian noise layer" in r.upper_bound.reason
        assert r.estimate("ross").bound is None and r.estimate("ross").exceeds_bound is None
        assert r.frame()["note"].str.contains("no Gaussian noise layer").all()


class Skip(nn.Module):
    """T = ReLU(Linear(noise(h))) + h: depends on x around the noise (no Markov chain)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(64, 4), nn.Tanh())
        self.noise = GaussianDropout(0.3)
        self.after = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
        self.out = nn.Identity()

    def forward(self, x):
        h = self.body(x)
        return self.out(self.after(self.noise(h)) + h)


def test_no_bound_around_a_skip_connection_or_after_other_noise(mlp):
    _, batches = mlp
    torch.manual_seed(MODEL_SEED)
    skip = Skip()
    r = layer_mutual_info(skip, batches, "out", n_passes=2, estimators="ross")
    assert r.upper_bound.value is None and "other than through the noise layer 'noise'" in r.upper_bound.reason
    # Inside the skip, the chain holds.
    assert layer_mutual_info(skip, batches, "after", n_passes=2, estimators="ross").noise_layer == "noise"
    # Dropout before the Gaussian layer: its output given x is no longer Gaussian.
    torch.manual_seed(MODEL_SEED)
    noisy = nn.Sequential(nn.Linear(64, 4), nn.Dropout(0.2), nn.Tanh(), GaussianDropout(0.3), nn.Linear(4, 4))
    r = layer_mutual_info(noisy, batches, "4", n_passes=2, estimators="ross")
    assert r.upper_bound.value is None and "'1' runs before the noise layer '3'" in r.upper_bound.reason
    # Two Gaussian layers: the bound comes from the first, whose output given x is Gaussian (the
    # second's noise is independent of X and keeps the chain).
    torch.manual_seed(MODEL_SEED)
    twice = nn.Sequential(nn.Linear(64, 4), nn.Tanh(), GaussianDropout(0.3), nn.Linear(4, 4), GaussianDropout(0.3))
    r = layer_mutual_info(twice, batches, "4", n_passes=2, estimators="ross")
    assert r.noise_layer == "2" and r.upper_bound.value is not None


def test_every_input_has_exactly_n_passes_aligned_rows(mlp):
    model, batches = mlp  # batches of 128, 128, 44: passes of one batch follow each other
    act = capture(model, batches, ["2", "4"], stochastic=True, n_passes=5, progress=False, dtype=np.float64)
    grid = passes_by_input(act.sample_ids, 5)
    assert grid.shape == (N, 5)
    assert (act.sample_ids[grid] == np.arange(N)[:, None]).all()
    assert (np.diff(grid, axis=1) > 0).all()  # each input's passes in the order they were drawn
    # Pass p of input i: the exact means of the noise layer are those of input i in every pass,
    # while the noisy outputs differ between passes.
    means = act.means["2"][grid]
    assert (means == means[:, :1]).all()
    assert (act["2"][grid][:, 1:] != act["2"][grid][:, :1]).any(axis=(1, 2)).all()
    with pytest.raises(ValueError, match="exactly 5 rows"):
        passes_by_input(act.sample_ids[:-1], 5)
    # The function on a cut data set: max_samples inputs, each with its passes.
    r = layer_mutual_info(model, batches, "4", n_passes=3, max_samples=200, estimators="ross")
    assert r.n == 200 and r.n_passes == 3 and r.log_n == pytest.approx(math.log(200))


def test_doe_gets_inputs_and_passes_and_is_reported_beside_the_bound(mlp):
    # The reference protocol (3 epochs) is only a fast check that x and z (P, N, d) reach DoE; its
    # accuracy is the subject of tests/test_doe.py.
    model, batches = mlp
    r = layer_mutual_info(model, batches, "4", n_passes=4, estimators="doe", doe_protocol="reference", progress=False)
    doe, doe_y = r.estimate("doe"), r.estimate("doe", "I(X;T|Y)")
    assert math.isfinite(doe.value) and math.isfinite(doe_y.value)
    assert doe.stderr is None and doe.bound == r.upper_bound.value
    assert doe.settings["n_samples"] == 4 and doe.settings["epochs"] == 3


def test_frame_and_plot(mlp, tmp_path):
    pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    model, batches = mlp
    r = layer_mutual_info(model, batches, "4", n_passes=4, class_weights="uniform")
    frame = r.frame()
    assert list(frame.estimator) == ["ross", "ross", "binned", "binned"]
    assert list(frame.quantity) == ["I(X;T)", "I(X;T|Y)"] * 2
    assert (frame.upper_bound.iloc[[0, 2]] == r.upper_bound.value).all()
    assert (frame.class_weights.iloc[[1, 3]] == "uniform").all()
    assert set(frame.columns) >= {"value", "stderr", "upper_bound_stderr", "upper_bound_method", "exceeds_bound"}
    fig = r.plot(path=tmp_path / "layer.png")
    assert (tmp_path / "layer.png").stat().st_size > 0
    import matplotlib.pyplot as plt

    plt.close(fig)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"layer": "7"}, ValueError, "layer: the model has no module named '7'"),
        ({"layer": 4}, TypeError, "layer: expected a module name"),
        ({"n_passes": 1}, ValueError, "n_passes: at least 2"),
        ({"n_passes": True}, TypeError, "n_passes"),
        ({"estimators": ("ksg",)}, ValueError, "estimators: unknown value 'ksg'"),
        ({"estimators": ()}, ValueError, "estimators: no estimator"),
        ({"estimators": ("ross", "ross")}, ValueError, "estimators: an estimator appears twice"),
        ({"class_weights": "paper"}, ValueError, "class_weights: unknown value"),
        ({"labels": "yes"}, TypeError, "labels: must be True or False"),
        ({"noise_layer": "1"}, ValueError, "noise_layer: '1' \\(Tanh\\) has no exact Gaussian moments"),
        ({"noise_layer": "nope"}, ValueError, "noise_layer: the model has no module"),
        ({"layer": "1", "noise_layer": "2"}, ValueError, "noise_layer: '2' runs after layer '1'"),
        ({"doe_options": {"epochs": 3}}, ValueError, "doe_options: given, but 'doe' is not among"),
        ({"estimators": "doe", "doe_options": {"x": 1}}, ValueError, "doe_options: 'x' cannot be set"),
        ({"estimators": "doe", "doe_options": {"lr": -1.0}}, ValueError, "lr: must be positive"),
        ({"k": 0}, ValueError, "k: must be at least 1"),
        ({"n_bins": 0}, ValueError, "n_bins: must be at least 1"),
        ({"min_variance": -1.0}, ValueError, "min_variance"),
        ({"random_state": -1}, ValueError, "random_state"),
    ],
)
def test_argument_errors(mlp, kwargs, error, message):
    model, batches = mlp
    args = {"layer": "4", **kwargs}
    layer = args.pop("layer")
    with pytest.raises(error, match=message):
        layer_mutual_info(model, batches, layer, **args)


def test_loader_and_label_errors(mlp):
    model, batches = mlp
    with pytest.raises(TypeError, match="loader: must be iterable more than once"):
        layer_mutual_info(model, iter(batches), "4")
    with pytest.raises(ValueError, match="loader: no batches"):
        layer_mutual_info(model, [], "4")
    one_class = [(x, torch.zeros_like(y)) for x, y in batches]
    with pytest.raises(ValueError, match="labels: the data have 1 class"):
        layer_mutual_info(model, one_class, "4", n_passes=2)
    assert layer_mutual_info(model, one_class, "4", n_passes=2, labels=False).log_n_given_labels is None
    with pytest.raises(TypeError, match="'doe' needs the loader's inputs as one tensor"):
        layer_mutual_info(model, [((x,), y) for x, y in batches], "4", estimators="doe")
