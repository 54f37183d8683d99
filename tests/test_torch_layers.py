"""GaussianDropout, the CEB head and the batch CDNV of repcompress.torch."""

import math

import pytest

from torch_support import require_torch

torch = require_torch()
from torch import nn  # noqa: E402

import repcompress as rc  # noqa: E402
from repcompress.torch import (  # noqa: E402
    CEBClassifier,
    GaussianDropout,
    batch_cdnv,
    capture,
    ceb_bounds,
    ceb_loss,
)
from repcompress.torch.layers import label_entropy  # noqa: E402


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_gaussian_dropout_noise_has_mean_one_and_variance_alpha(p):
    torch.manual_seed(0)
    layer = GaussianDropout(p).train()
    n = 400_000
    factor = layer(torch.ones(n, dtype=torch.float64)).numpy()  # z / x = 1 + √α ε
    alpha = p / (1 - p)
    assert layer.alpha == pytest.approx(alpha)
    # Standard errors: sd(mean) = √(α/n); sd(sample variance) ≈ α·√(2/n) for Gaussian noise.
    assert abs(factor.mean() - 1.0) < 5 * math.sqrt(alpha / n)
    assert abs(factor.var() - alpha) < 5 * alpha * math.sqrt(2 / n)
    # Multiplicative: noise scales with the activation; zero stays zero.
    x = torch.tensor([0.0, 2.0, -3.0], dtype=torch.float64).repeat(n // 3)
    out = layer(x).numpy().reshape(-1, 3)
    assert (out[:, 0] == 0).all()
    assert abs(out[:, 2].std() / 3.0 - math.sqrt(alpha)) < 0.02 * math.sqrt(alpha)


def test_gaussian_dropout_eval_is_identity_and_moments_are_exact():
    layer = GaussianDropout(0.5)
    x = torch.randn(10, 4)
    layer.eval()
    assert layer(x) is x
    mean, var = layer.gaussian_moments(x)
    assert torch.equal(mean, x) and torch.allclose(var, x * x)  # α = 1
    layer.train()
    assert not torch.equal(layer(x), x)
    assert torch.equal(GaussianDropout(0.0).train()(x), x)
    assert GaussianDropout.from_alpha(3.0).p == pytest.approx(0.75)
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match="p"):
            GaussianDropout(bad)


def test_batch_cdnv_equals_library_cdnv_and_ignores_absent_classes():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(60, 5, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 2, 7] * 20)  # ids 1, 3..6 absent: they must not count
    z = z + 2.0 * labels[:, None].double()
    ours = float(batch_cdnv(z, labels))
    ref = rc.class_distance_normalized_variance(z.numpy(), labels.numpy())
    assert ours == pytest.approx(ref, rel=1e-12)
    w = z.clone().requires_grad_(True)
    batch_cdnv(w, labels).backward()
    assert torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0
    assert math.isnan(float(batch_cdnv(z[:5], torch.zeros(5, dtype=torch.long))))


def test_ceb_loss_terms_match_their_definitions():
    torch.manual_seed(0)
    model = CEBClassifier(nn.Sequential(nn.Linear(4, 6), nn.ReLU()), 6, 3, 3)
    x = torch.randn(42, 4)
    y = torch.arange(42) % 3
    torch.manual_seed(5)
    out = ceb_loss(model, x, y, beta=7.0, n_samples=3)
    torch.manual_seed(5)  # the same draws, by hand
    mu, std = model.encoder.moments(model.body(x))
    z = mu + std * torch.randn((3, *mu.shape))
    log_e = torch.distributions.Normal(mu, std).log_prob(z).sum(-1)
    b = model.backward_encoder.distribution(y)
    residual = (log_e - b.log_prob(z).sum(-1)).mean()
    ce = nn.functional.cross_entropy(model.decoder(z.reshape(-1, 3)), y.repeat(3))
    out = {k: getattr(out, k).item() for k in ("loss", "residual", "cross_entropy", "I_ZY_lower")}
    residual, ce = residual.item(), ce.item()
    assert out["residual"] == pytest.approx(residual, rel=1e-6)
    assert out["cross_entropy"] == pytest.approx(ce, rel=1e-6)
    assert out["loss"] == pytest.approx(residual + 6.0 * ce, rel=1e-6)
    assert out["I_ZY_lower"] == pytest.approx(math.log(3) - ce, rel=1e-6)  # default H(Y) = log C
    # The plug-in H(Y), not log C, when the classes are unbalanced.
    y2 = torch.tensor([0] * 30 + [1] * 10)
    assert label_entropy(y2) == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))


def test_ceb_loss_uses_the_training_label_entropy_not_the_batch_one():
    # A balanced training set of 10 classes; a batch of 64 is at best 4 × 7 + 6 × 6, whose plug-in
    # entropy lies below log 10. The bound must use the training set's H(Y) exactly.
    torch.manual_seed(0)
    y_train = torch.arange(1000) % 10
    h_train = label_entropy(y_train)
    assert h_train == pytest.approx(math.log(10), rel=1e-15)
    y = torch.tensor([0, 1, 2, 3] * 7 + [4, 5, 6, 7, 8, 9] * 6)
    h_batch = -(4 * 7 / 64 * math.log(7 / 64) + 6 * 6 / 64 * math.log(6 / 64))
    assert label_entropy(y) == pytest.approx(h_batch, rel=1e-14)
    assert math.log(10) - h_batch == pytest.approx(0.002902, abs=1e-6)  # what the batch entropy would lose
    # float64 throughout, so that H(Y) − CE is exact to rounding and the comparisons can be tight.
    x = torch.randn(64, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for given in (None, h_train):  # the default log C, and the training set's value given once
        model = CEBClassifier(None, 5, 3, 10, label_entropy=given).double()
        torch.manual_seed(7)
        out = ceb_loss(model, x, y, beta=3.0)
        ce = out.cross_entropy.item()
        assert out.I_ZY_lower.item() == pytest.approx(math.log(10) - ce, rel=1e-12, abs=1e-12)
        assert out.I_ZY_lower.item() - (h_batch - ce) == pytest.approx(math.log(10) - h_batch, rel=1e-9)
    # Unbalanced training labels: H(Y) below log C, given once, used for every batch.
    y_skewed = torch.tensor([0] * 700 + [1] * 200 + [2] * 100)
    h_skewed = label_entropy(y_skewed)
    model = CEBClassifier(None, 5, 3, 3, label_entropy=h_skewed).double()
    assert model.label_entropy == h_skewed
    for batch in (y_skewed[:64], y_skewed[-64:], torch.arange(64) % 3):  # batch entropies 0, 0, log 3
        out = ceb_loss(model, x, batch, beta=3.0)
        assert out.I_ZY_lower.item() == pytest.approx(h_skewed - out.cross_entropy.item(), rel=1e-12, abs=1e-12)
    # h_y overrides the model's value for one call.
    out = ceb_loss(model, x, y_skewed[:64], beta=3.0, h_y=0.25)
    assert out.I_ZY_lower.item() == pytest.approx(0.25 - out.cross_entropy.item(), rel=1e-12, abs=1e-12)


def test_label_entropy_must_be_an_entropy_over_the_classes():
    for bad in (math.nan, math.inf, -0.1, math.log(3) + 1e-6, 10**400):
        _named("label_entropy", ValueError, CEBClassifier, None, 4, 2, 3, label_entropy=bad)
    _named("label_entropy", TypeError, CEBClassifier, None, 4, 2, 3, label_entropy=True)
    assert CEBClassifier(None, 4, 2, 3, label_entropy=math.log(3)).label_entropy == math.log(3)
    assert CEBClassifier(None, 4, 2, 3, label_entropy=0).label_entropy == 0.0
    model = CEBClassifier(None, 4, 2, 3)
    x, y = torch.randn(12, 4), torch.arange(12) % 3
    _named("h_y", ValueError, ceb_loss, model, x, y, 2.0, h_y=-1.0)
    _named("h_y", ValueError, ceb_loss, model, x, y, 2.0, h_y=math.log(4))


def test_ceb_bound_lies_above_the_exact_conditional_information():
    """R = E[log e(z|x) − log b(z|y)] = I(X;Z|Y) + E_y KL(p(z|y) ‖ b(z|y)) ≥ I(X;Z|Y), with
    I(X;Z|Y) the exact empirical value of the training inputs (X uniform over them)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    y = torch.arange(300) % 3
    x = torch.randn(300, 4, generator=g) + 1.5 * nn.functional.one_hot(y, 4).float()
    data = [(x[i : i + 50], y[i : i + 50]) for i in range(0, 300, 50)]
    model = CEBClassifier(nn.Sequential(nn.Linear(4, 16), nn.ReLU()), 16, 2, 3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):
        for xb, yb in data:
            opt.zero_grad()
            ceb_loss(model, xb, yb, beta=5.0).loss.backward()
            opt.step()
    bounds = ceb_bounds(model, data, n_samples=64)
    act = capture(model, data, ["encoder"], progress=False)
    exact = rc.gaussian_channel_mi(act.means["encoder"], act.variances["encoder"], labels=act.labels, n_draws=16)
    given = exact.given_labels
    assert bounds["h_y"] == pytest.approx(math.log(3))
    # Monte Carlo error of R: 64 draws per input over 300 inputs; allow 4 standard errors of the exact MC.
    assert bounds["I_XZ_given_Y_upper"] >= given.mi - 4 * given.stderr
    assert bounds["I_XZ_given_Y_upper"] >= given.lower  # the Bhattacharyya bound is a true lower bound
    assert bounds["I_ZY_lower"] <= exact.labels.upper + 0.05


def test_ceb_forward_samples_in_training_and_uses_the_mean_in_eval():
    torch.manual_seed(0)
    model = CEBClassifier(None, 4, 2, 3)
    x = torch.randn(5, 4)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))


# ---------------------------------------------------------------------- option types (§0.4)


def _named(option, exceptions, fn, *args, **kwargs):
    with pytest.raises(exceptions) as info:
        fn(*args, **kwargs)
    assert not isinstance(info.value, OverflowError)
    assert str(info.value).startswith(f"{option}:"), str(info.value)


@pytest.mark.parametrize("make", ["GaussianEncoder", "BackwardEncoder", "CEBClassifier"])
def test_min_std_must_be_a_positive_finite_number(make):
    # GaussianEncoder(min_std=nan) was accepted (every σ then NaN); BackwardEncoder checked nothing.
    from repcompress.torch import BackwardEncoder, GaussianEncoder

    build = {
        "GaussianEncoder": lambda **k: GaussianEncoder(4, 2, **k),
        "BackwardEncoder": lambda **k: BackwardEncoder(3, 2, **k),
        "CEBClassifier": lambda **k: CEBClassifier(None, 4, 2, 3, **k),
    }[make]
    for bad in (math.nan, math.inf, 0.0, -1e-5, 10**400):
        _named("min_std", ValueError, build, min_std=bad)
    for bad in (True, "1e-5", None):
        _named("min_std", TypeError, build, min_std=bad)
    assert build(min_std=1e-3) is not None


def test_layer_sizes_and_rates_are_checked_by_name():
    from repcompress.torch import BackwardEncoder, GaussianEncoder

    _named("in_features", TypeError, GaussianEncoder, 2.5, 2)
    _named("out_features", TypeError, GaussianEncoder, 4, True)
    _named("out_features", ValueError, GaussianEncoder, 4, 0)
    _named("n_classes", ValueError, BackwardEncoder, 0, 2)
    _named("latent_dim", TypeError, CEBClassifier, None, 4, 2.0, 3)
    for bad in (True, "0.5"):
        _named("p", TypeError, GaussianDropout, bad)
    for bad in (10**400, math.nan):
        _named("p", ValueError, GaussianDropout, bad)
    _named("alpha", ValueError, GaussianDropout.from_alpha, 10**400)
    _named("alpha", TypeError, GaussianDropout.from_alpha, True)


def test_ceb_loss_options_are_checked_by_name():
    torch.manual_seed(0)
    model = CEBClassifier(None, 4, 2, 3)
    x, y = torch.randn(12, 4), torch.arange(12) % 3
    for bad in (math.nan, math.inf, 10**400):
        _named("beta", ValueError, ceb_loss, model, x, y, bad)
        _named("h_y", ValueError, ceb_loss, model, x, y, 2.0, h_y=bad)
    _named("beta", TypeError, ceb_loss, model, x, y, True)
    for bad in (0, 2.5, True):
        _named("n_samples", (TypeError, ValueError), ceb_loss, model, x, y, 2.0, n_samples=bad)
        _named("n_samples", (TypeError, ValueError), ceb_bounds, model, [(x, y)], n_samples=bad)
    _named("h_y", ValueError, ceb_bounds, model, [(x, y)], h_y=math.nan)


def test_capture_options_are_checked_by_name():
    model = nn.Sequential(nn.Linear(3, 2))
    data = [(torch.randn(4, 3), torch.arange(4) % 2)]
    for option, bad, exception in [
        ("stochastic", "yes", TypeError),
        ("stochastic", 1, TypeError),
        ("progress", "no", TypeError),
        ("dtype", "no such dtype", TypeError),
        ("n_passes", 2**64, ValueError),
        ("max_samples", 2.5, ValueError),
    ]:
        _named(option, exception, capture, model, data, ["0"], **{option: bad})
