"""Layers built for measurement: Z | x is a diagonal Gaussian, so I(X;Z) is finite and exact.

- :class:`GaussianDropout`: z = f(x)·(1 + √α ε), ε ~ N(0, I), α = p/(1 − p) (a variance):
  E[z | x] = f(x), Var[z | x] = α f(x)² (Srivastava et al. 2014; Kingma et al. 2015).
- :class:`GaussianEncoder` / :class:`BackwardEncoder` / :class:`CEBClassifier` /
  :func:`ceb_loss`: the Conditional Entropy Bottleneck (Fischer, Entropy 22, 2020).
- :func:`batch_cdnv`: the CDNV of a batch as a differentiable tensor (Galanti et al. 2022), used
  by the paper as a regulariser CE − λ·tanh(β·CDNV).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._validation import as_int, as_real


def _finite(value: Any, name: str) -> float:
    number = as_real(value, name)
    if not math.isfinite(number):
        raise ValueError(f"{name}: must be finite, got {number}")
    return number


def _min_std(min_std: Any) -> float:
    """The floor added to every standard deviation: a positive, finite number (NaN would make every
    σ NaN, and training fail far from the cause)."""
    value = as_real(min_std, "min_std")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"min_std: must be positive and finite, got {value}")
    return value


def _entropy_of_labels(value: Any, name: str, n_classes: int) -> float:
    """An H(Y) in nats for labels over ``n_classes`` classes: 0 ≤ H(Y) ≤ log C."""
    h = _finite(value, name)
    top = math.log(n_classes)
    if not 0.0 <= h <= top * (1.0 + 1e-12):
        raise ValueError(
            f"{name}: must lie in [0, log {n_classes}] = [0, {top:.6g}] nats (H(Y) over {n_classes} classes), got {h}"
        )
    return h


class GaussianDropout(nn.Module):
    """Multiplicative Gaussian noise: z = x·(1 + √α ε), ε ~ N(0, I), α = p/(1 − p).

    In training mode (or under ``capture(..., stochastic=True)``) every call draws fresh noise
    with mean 1 and variance α; in eval mode it is the identity. ``gaussian_moments(x)`` gives the
    exact channel, E[z|x] = x and Var[z|x] = α x² — squared, not ``|x|`` — which
    :func:`repcompress.torch.capture` records so :func:`repcompress.gaussian_channel_mi` needs no
    sampling. For a finite I(X;Z), keep the input away from exact zeros (softplus or tanh before
    it, not ReLU), or give ``gaussian_channel_mi`` a ``min_variance``.

    Parameters
    ----------
    p : float in [0, 1)
        The dropout rate whose Bernoulli noise has the same variance: α = p/(1 − p).
    """

    repcompress_stochastic = True

    def __init__(self, p: float = 0.5):
        super().__init__()
        p = as_real(p, "p")
        if not 0.0 <= p < 1.0:
            raise ValueError(f"p: must lie in [0, 1), got {p}")
        self.p = p
        self.alpha = p / (1.0 - p)

    @classmethod
    def from_alpha(cls, alpha: float) -> GaussianDropout:
        """The layer with noise variance ``alpha`` (p = α/(1 + α))."""
        alpha = as_real(alpha, "alpha")
        if not (alpha >= 0.0 and math.isfinite(alpha)):
            raise ValueError(f"alpha: must be a finite number ≥ 0, got {alpha}")
        return cls(alpha / (1.0 + alpha))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.alpha == 0.0:
            return x
        return x * (1.0 + math.sqrt(self.alpha) * torch.randn_like(x))

    def gaussian_moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(E[z | x], Var[z | x]) = (x, α x²)."""
        return x, self.alpha * x * x

    def extra_repr(self) -> str:
        return f"p={self.p:.4g}, alpha={self.alpha:.4g}"


class GaussianEncoder(nn.Module):
    """e(z | x) = N(μ(x), diag σ(x)²) with [μ, s] = W x + b and σ = softplus(s) + ``min_std``.

    Training mode returns a reparameterised sample μ + σ ε; eval mode returns μ.
    ``gaussian_moments(x)`` = (μ, σ²), recorded by :func:`repcompress.torch.capture`.
    """

    repcompress_stochastic = True

    def __init__(self, in_features: int, out_features: int, *, min_std: float = 1e-5):
        super().__init__()
        in_features = as_int(in_features, "in_features", minimum=1)
        self.out_features = as_int(out_features, "out_features", minimum=1)
        self.min_std = _min_std(min_std)
        self.linear = nn.Linear(in_features, 2 * self.out_features)

    def moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, σ)."""
        mu, s = self.linear(x).chunk(2, dim=-1)
        return mu, F.softplus(s) + self.min_std

    def gaussian_moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, std = self.moments(x)
        return mu, std * std

    def distribution(self, x: torch.Tensor) -> torch.distributions.Normal:
        mu, std = self.moments(x)
        return torch.distributions.Normal(mu, std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu, std = self.moments(x)
        if not self.training:
            return mu
        return mu + std * torch.randn_like(mu)


class BackwardEncoder(nn.Module):
    """b(z | y) = N(m_y, diag s_y²): one learned diagonal Gaussian per class (CEB's backward
    encoder; with one-hot input it is exactly what a linear layer on one-hot labels gives)."""

    def __init__(self, n_classes: int, out_features: int, *, min_std: float = 1e-5):
        super().__init__()
        n_classes = as_int(n_classes, "n_classes", minimum=1)
        out_features = as_int(out_features, "out_features", minimum=1)
        min_std = _min_std(min_std)
        self.loc = nn.Parameter(torch.randn(n_classes, out_features))
        self.raw_scale = nn.Parameter(torch.zeros(n_classes, out_features))
        self.min_std = float(min_std)

    def distribution(self, y: torch.Tensor) -> torch.distributions.Normal:
        return torch.distributions.Normal(self.loc[y], F.softplus(self.raw_scale[y]) + self.min_std)


class CEBClassifier(nn.Module):
    """body → :class:`GaussianEncoder` (Z) → decoder (logits), with a :class:`BackwardEncoder`.

    ``forward(x)`` returns logits (from a sample of Z in training mode, from μ in eval mode). The
    representation to measure is the encoder: ``capture(model, data, ["encoder"])`` records μ and
    σ² per sample, and ``gaussian_channel_mi(means, variances, labels=...)`` gives the exact
    empirical I(X;Z) and I(X;Z|Y) to compare with the bounds of :func:`ceb_loss`.

    ``label_entropy`` is H(Y) of the training labels in nats, given once here and used by
    :func:`ceb_loss` for its bound I(Z;Y) ≥ H(Y) − CE: ``label_entropy=label_entropy(y_train)``
    (the function of this module). The default is log ``n_classes``, the paper's choice, exact
    when the training classes are balanced and too high otherwise (then the bound overstates
    I(Z;Y) by log C − H(Y)). Stored as the attribute ``label_entropy`` (a float, not in the
    ``state_dict``).
    """

    def __init__(
        self,
        body: nn.Module | None,
        in_features: int,
        latent_dim: int,
        n_classes: int,
        *,
        decoder: nn.Module | None = None,
        min_std: float = 1e-5,
        label_entropy: float | None = None,
    ):
        super().__init__()
        # Checked under this class's names before the parts, which would name them otherwise.
        in_features = as_int(in_features, "in_features", minimum=1)
        latent_dim = as_int(latent_dim, "latent_dim", minimum=1)
        n_classes = as_int(n_classes, "n_classes", minimum=1)
        min_std = _min_std(min_std)
        self.label_entropy = (
            math.log(n_classes)
            if label_entropy is None
            else _entropy_of_labels(label_entropy, "label_entropy", n_classes)
        )
        self.body = body if body is not None else nn.Identity()
        self.encoder = GaussianEncoder(in_features, latent_dim, min_std=min_std)
        self.backward_encoder = BackwardEncoder(n_classes, latent_dim, min_std=min_std)
        self.decoder = decoder if decoder is not None else nn.Linear(latent_dim, n_classes)
        self.n_classes = int(n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(self.body(x)))


@dataclass
class CEBLoss:
    """What :func:`ceb_loss` returns (scalar tensors; only ``loss`` carries gradients you need).

    ``loss`` = residual + (β − 1)·cross_entropy; ``residual`` = E[log e(z|x) − log b(z|y)] ≥
    I(X;Z|Y) (the CEB upper bound); ``I_ZY_lower`` = H(Y) − cross_entropy ≤ I(Z;Y), in nats, with
    H(Y) the training set's label entropy (``CEBClassifier.label_entropy``).
    """

    loss: torch.Tensor
    cross_entropy: torch.Tensor
    residual: torch.Tensor
    I_ZY_lower: torch.Tensor


def label_entropy(labels: Any) -> float:
    """H(Y) = −Σ_y p(y) log p(y) in nats of the empirical label distribution (the plug-in entropy).

    Meant for the whole training set, once: ``CEBClassifier(..., label_entropy=label_entropy(y_train))``.
    On a batch it is biased low by about (C − 1)/(2·batch size) nats (Miller 1955)."""
    arr = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    _, counts = np.unique(arr, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def ceb_loss(
    model: CEBClassifier, x: torch.Tensor, y: torch.Tensor, beta: float, *, n_samples: int = 1, h_y: float | None = None
) -> CEBLoss:
    """The CEB objective and its bounds on one batch (Fischer 2020).

    With e(z|x) the encoder, b(z|y) the backward encoder and c(y|z) the decoder:

        I(X;Z|Y) ≤ R = E[log e(z|x) − log b(z|y)],   I(Z;Y) ≥ H(Y) − E[−log c(y|z)],

    and the loss is R + (β − 1)·CE, i.e. min I(X;Z) − β·I(Z;Y) (I(X;Z) = I(X;Z|Y) + I(Z;Y) when
    Z depends on Y only through X), the information-bottleneck β the paper sweeps (1000 … 2).
    H(Y) is the training set's label entropy, given once as ``CEBClassifier(...,
    label_entropy=...)`` (default log C, the paper's choice; see :class:`CEBClassifier`), or
    ``h_y`` for this call. The batch's own label entropy is never used: it is biased low (by
    about (C − 1)/(2·batch size) nats, 0.07 for a batch of 64 over 10 balanced classes) and moves
    from batch to batch. Expectations use ``n_samples`` reparameterised draws of z per input.
    """
    n_samples = as_int(n_samples, "n_samples", minimum=1)
    beta = _finite(beta, "beta")
    h = model.label_entropy if h_y is None else _entropy_of_labels(h_y, "h_y", model.n_classes)
    mu, std = model.encoder.moments(model.body(x))
    z = mu + std * torch.randn((n_samples, *mu.shape), dtype=mu.dtype, device=mu.device)
    log_e = torch.distributions.Normal(mu, std).log_prob(z).sum(-1)
    log_b = model.backward_encoder.distribution(y).log_prob(z).sum(-1)
    residual = (log_e - log_b).mean()
    logits = model.decoder(z.reshape(-1, z.shape[-1]))
    ce = F.cross_entropy(logits, y.repeat(n_samples))
    return CEBLoss(loss=residual + (beta - 1.0) * ce, cross_entropy=ce, residual=residual, I_ZY_lower=h - ce)


def ceb_bounds(
    model: CEBClassifier, data: Iterable, *, n_samples: int = 8, h_y: float | None = None, device: Any = None
) -> dict[str, float]:
    """The CEB bounds over a whole data set (nats): ``I_XZ_given_Y_upper`` (= the residual R),
    ``I_ZY_lower`` (= H(Y) − CE), ``cross_entropy`` and ``h_y``: the label entropy of the whole
    data set unless given (on the training set, the training set's; the model's
    ``label_entropy`` is not used here). Evaluated without gradients; the model's mode is left as
    it was."""
    n_samples = as_int(n_samples, "n_samples", minimum=1)
    h_y = None if h_y is None else _entropy_of_labels(h_y, "h_y", model.n_classes)
    if device is None:
        device = next(model.parameters()).device
    total = {"residual": 0.0, "cross_entropy": 0.0}
    labels = []
    n = 0
    with torch.no_grad():
        for x, y in data:
            x, y = x.to(device), y.to(device)
            out = ceb_loss(model, x, y, beta=1.0, n_samples=n_samples, h_y=0.0)
            total["residual"] += float(out.residual) * y.shape[0]
            total["cross_entropy"] += float(out.cross_entropy) * y.shape[0]
            labels.append(y.cpu().numpy())
            n += y.shape[0]
    if n == 0:
        raise ValueError("data: no batches (the loader is empty)")
    h = label_entropy(np.concatenate(labels)) if h_y is None else float(h_y)
    ce = total["cross_entropy"] / n
    return {"I_XZ_given_Y_upper": total["residual"] / n, "I_ZY_lower": h - ce, "cross_entropy": ce, "h_y": h}


def batch_cdnv(z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """CDNV of a batch, differentiable: mean over pairs c < c' of present classes of
    (Var_c + Var_c') / (2 ‖μ_c − μ_c'‖²), Var_c = mean ‖z_i − μ_c‖² (the same number as
    :func:`repcompress.class_distance_normalized_variance`). Classes absent from the batch do
    not count (the paper's code counts them as empty classes at the origin). NaN when the batch
    holds fewer than two classes."""
    z = z.reshape(z.shape[0], -1)
    classes, codes = torch.unique(labels, return_inverse=True)
    c = classes.shape[0]
    if c < 2:
        return torch.full((), float("nan"), dtype=z.dtype, device=z.device)
    counts = torch.bincount(codes, minlength=c).to(z.dtype)
    means = torch.zeros(c, z.shape[1], dtype=z.dtype, device=z.device).index_add(0, codes, z) / counts[:, None]
    sq = ((z - means[codes]) ** 2).sum(1)
    var = torch.zeros(c, dtype=z.dtype, device=z.device).index_add(0, codes, sq) / counts
    i, j = torch.triu_indices(c, c, offset=1, device=z.device)
    dist2 = ((means[i] - means[j]) ** 2).sum(1)
    return ((var[i] + var[j]) / (2.0 * dist2)).mean()
