"""Difference-of-entropies (DoE) estimate of I(X;Z) with a trained density model (docs/spec.md §7).

McAllester & Stratos, "Formal limitations on the measurement of mutual information" (AISTATS 2020):

    I(X;Z) ≈ H_q(Z) − H_q(Z|X),   H_q(Z) = E[−log q(z)] ≥ h(Z),   H_q(Z|X) = E[−log q(z|x)] ≥ h(Z|X),

two cross-entropies, each an upper bound on the entropy it stands for, estimated on samples. q(z) is a
diagonal Gaussian or logistic with learned location and log-scale; q(z|x) is the same family with
location and log-variance given by a network of x. The difference of two upper bounds is not a bound:
the estimate errs high where q(z) fits Z worse than q(z|x) fits Z | x (a multimodal Z under a
unimodal q(z)), and low where the conditional network underfits.

Two protocols:

- ``"reference"``: the settings of the paper's public code (docs/spec.md §7.3): logistic
  densities, log-variances clamped to [−20, 20], a 2-layer MLP of width 128 with LayerNorm and
  dropout 0.1, AdamW at lr 1e-4, gradient norm clipped at 1, batches of 256 inputs, 4 samples of z
  per batch, 3 epochs (1 per class for I(X;Z|Y)), and the estimate read off the last sample of the
  last batch of training (a single mini-batch value, taken before that step's update).
- ``"recommended"``: a held-out split of the inputs, training to convergence with early stopping on
  the held-out cross-entropies (each density keeps the state of its own best held-out
  cross-entropy), the estimate evaluated on the whole held-out split, and the train-split estimate
  and the per-epoch learning curve reported beside it (docs/spec.md §7.4).
"""

from __future__ import annotations

import copy
import math
import numbers
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._progress import Progress
from .._validation import (
    as_int,
    as_real,
    check_base,
    check_bool,
    check_choice,
    class_codes,
    make_rng,
)

Protocol = Literal["recommended", "reference"]
Family = Literal["gauss", "logistic"]
ClassWeights = Literal["empirical", "uniform"]
PROTOCOLS: tuple[Protocol, ...] = ("recommended", "reference")
FAMILIES: tuple[Family, ...] = ("gauss", "logistic")
CLASS_WEIGHTS: tuple[ClassWeights, ...] = ("empirical", "uniform")

# The reference's numerical guards (its compute_negative_ln_prob): log-variances (log-scales for the
# logistic) are clamped to [−20, 20] and 1e-8 is added to the variance (scale).
LOG_VARIANCE_BOUNDS = (-20.0, 20.0)
VARIANCE_EPS = 1e-8

# The settings of each protocol (docs/spec.md §7.3, §7.4). `epochs` is the fixed number of epochs of
# the reference and the most epochs of the recommended protocol.
_REFERENCE = {
    "family": "logistic",
    "epochs": 3,
    "epochs_per_class": 1,
    "lr": 1e-4,
    "batch_size": 256,
    "n_samples": 4,
    "optimizer": "AdamW",
    "weight_decay": 0.01,
    "grad_clip": 1.0,
    "hidden": 128,
    "layers": 2,
    "layer_norm": True,
    "dropout": 0.1,
    "standardize": False,
    "estimate": "last sample of the last training batch, before its update (mini-batch value)",
}
_RECOMMENDED = {
    "family": "gauss",
    "epochs": 2000,
    "epochs_per_class": 2000,
    "lr": 1e-3,
    "batch_size": 256,
    "n_samples": 1,
    "optimizer": "Adam",
    "weight_decay": 0.0,
    "grad_clip": None,
    "hidden": 128,
    "layers": 2,
    "layer_norm": False,
    "dropout": 0.0,
    "standardize": True,
    "heldout_fraction": 0.2,
    "patience": 30,
    "min_delta": 1e-3,
    "estimate": "held-out split, each density at its best held-out cross-entropy",
}
# Rows per forward pass when the recommended protocol evaluates a whole split.
_EVAL_ROWS = 8192


@dataclass(frozen=True)
class DoECurve:
    """The learning curve of one DoE fit, one entry per epoch (in the unit of ``base``).

    Recommended protocol: ``train_*`` and ``heldout_*`` are the cross-entropies of the whole train
    and held-out split after each epoch (networks in eval mode). Reference protocol: ``train_*`` is
    the mean over the epoch's mini-batch values as they were trained on (training mode, before each
    update), the ``heldout_*`` arrays are NaN. ``step_mi`` is the mini-batch estimate of every
    optimizer step (H_q(Z) − H_q(Z|X) averaged over the step's samples), as the reference logs it.
    """

    epoch: np.ndarray
    train_h_z: np.ndarray
    train_h_z_given_x: np.ndarray
    heldout_h_z: np.ndarray
    heldout_h_z_given_x: np.ndarray
    step_mi: np.ndarray

    @property
    def train_mi(self) -> np.ndarray:
        return self.train_h_z - self.train_h_z_given_x

    @property
    def heldout_mi(self) -> np.ndarray:
        return self.heldout_h_z - self.heldout_h_z_given_x


@dataclass(frozen=True)
class DoEResult:
    """Result of :func:`doe_mutual_info` (information in the unit of ``base``; docs/spec.md §7.5).

    Attributes
    ----------
    mi : float
        The estimate the protocol reports: H_q(Z) − H_q(Z|X), ``h_z`` − ``h_z_given_x``. Recommended:
        on the held-out split. Reference: the last sample of the last training batch.
    h_z, h_z_given_x : float
        The two cross-entropies of ``mi`` (differential entropies: may be negative).
    train_mi, train_h_z, train_h_z_given_x : float
        The same on the training split (recommended: the whole split with the reported states;
        reference: equal to ``mi``, the training batch it reports).
    heldout_mi, heldout_h_z, heldout_h_z_given_x : float or None
        The held-out values (recommended; equal to ``mi`` and its entropies); None for the reference.
    heldout_stderr : float or None
        Standard error of ``heldout_mi`` over the held-out inputs, the trained densities held fixed
        (sd of −log q(z_i) + log q(z_i|x_i) over inputs / √n_heldout): the noise of the evaluation
        alone, not of the training or the split.
    curve : DoECurve
        Per-epoch learning curve and per-step mini-batch estimates.
    protocol : str
    settings : dict
        Every setting used (family, epochs, lr, batch size, samples per step, optimizer, clipping,
        network, split, patience, seed …).
    n : int
        Inputs (rows of x); ``n_train`` and ``n_heldout`` of them in each split.
    n_passes : int
        Samples of z per input that were given.
    n_steps : int
        Optimizer steps taken.
    epochs_run : int
    best_epoch_h_z, best_epoch_h_z_given_x : int or None
        Recommended: the epoch whose state each density keeps (0: the initial state).
    converged : bool or None
        Recommended: early stopping ended the training (False: ``epochs`` ran out first).
    """

    mi: float
    h_z: float
    h_z_given_x: float
    train_mi: float
    train_h_z: float
    train_h_z_given_x: float
    heldout_mi: float | None
    heldout_h_z: float | None
    heldout_h_z_given_x: float | None
    heldout_stderr: float | None
    curve: DoECurve
    protocol: str
    settings: dict[str, Any]
    n: int
    n_train: int
    n_heldout: int
    n_passes: int
    n_steps: int
    epochs_run: int
    best_epoch_h_z: int | None = None
    best_epoch_h_z_given_x: int | None = None
    converged: bool | None = None

    def plot(self, *, ax: Any = None, path: Any = None, title: str | None = None) -> Any:
        """The learning curve: the estimate per epoch on the training (and held-out) split, the
        mini-batch estimates of the reference protocol, and the reported value (needs matplotlib,
        as :mod:`repcompress.plots`)."""
        from ..plots import _figure, _finish

        fig, ax = _figure(ax)
        c = self.curve
        if self.protocol == "reference":
            steps = np.arange(1, c.step_mi.size + 1) * (c.epoch.size / max(c.step_mi.size, 1))
            ax.plot(steps, c.step_mi, color="0.6", lw=1, label="mini-batch estimate")
            ax.plot(c.epoch, c.train_mi, marker="o", label="epoch mean (train)")
        else:
            ax.plot(c.epoch, c.train_mi, label="train")
            ax.plot(c.epoch, c.heldout_mi, label="held-out")
            if self.best_epoch_h_z_given_x:
                ax.axvline(self.best_epoch_h_z_given_x, color="0.5", ls=":", lw=1, label="best q(z|x)")
        ax.axhline(self.mi, color="k", ls="--", lw=1, label=f"reported {self.mi:.3g}")
        unit = self.settings.get("unit", "nats")
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"H_q(Z) − H_q(Z|X) ({unit})")
        ax.set_title(title or f"DoE learning curve ({self.protocol} protocol)")
        ax.legend(fontsize="small")
        return _finish(fig, path)


@dataclass(frozen=True)
class DoEGivenLabels:
    """Result of :func:`doe_mutual_info_given_labels`: I(X;Z|Y) = Σ_y w_y I(X;Z|Y=y), one DoE fit
    per class (docs/spec.md §7.6).

    ``mi``, ``train_mi`` and ``heldout_mi`` combine the per-class values with ``weights`` (None for
    ``heldout_mi`` under the reference protocol); ``per_class`` holds each class's
    :class:`DoEResult`, in ascending order of ``classes``; ``counts`` are the inputs per class.
    """

    mi: float
    train_mi: float
    heldout_mi: float | None
    class_weights: str
    weights: np.ndarray
    classes: np.ndarray
    counts: np.ndarray
    per_class: list[DoEResult] = field(repr=False)
    protocol: str = "recommended"

    def plot(self, *, path: Any = None) -> Any:
        """One learning curve per class, side by side."""
        from ..plots import _figure, _finish

        fig, axes = _figure(None, ncols=len(self.per_class))
        axes = np.atleast_1d(axes)
        for ax, value, result in zip(axes, self.classes, self.per_class, strict=True):
            result.plot(ax=ax, title=f"class {value}")
        return _finish(fig, path)


class ConditionalMLP(nn.Module):
    """The default network of q(z|x): x (flattened) → [location, log-variance], 2·d_z outputs.

    ``layers`` blocks of [LayerNorm] → Linear → ReLU → [Dropout], then a Linear output layer (the
    reference's feed-forward network with ``layer_norm=True, dropout=0.1``).
    """

    def __init__(
        self, d_in: int, d_z: int, *, hidden: int = 128, layers: int = 2, layer_norm: bool = False, dropout: float = 0.0
    ):
        super().__init__()
        d_in = as_int(d_in, "d_in", minimum=1)
        d_z = as_int(d_z, "d_z", minimum=1)
        hidden = as_int(hidden, "hidden", minimum=1)
        layers = as_int(layers, "layers", minimum=0)
        layer_norm = check_bool(layer_norm, "layer_norm")
        dropout = as_real(dropout, "dropout")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: must lie in [0, 1), got {dropout}")
        blocks: list[nn.Module] = []
        width = d_in
        for _ in range(layers):
            block: list[nn.Module] = [nn.LayerNorm(width)] if layer_norm else []
            block += [nn.Linear(width, hidden), nn.ReLU()]
            if dropout > 0:
                block.append(nn.Dropout(dropout))
            blocks.append(nn.Sequential(*block))
            width = hidden
        self.blocks = nn.Sequential(*blocks)
        self.out = nn.Linear(width, 2 * d_z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.blocks(x.flatten(1)))


def negative_log_density(z: torch.Tensor, loc: torch.Tensor, log_var: torch.Tensor, family: str) -> torch.Tensor:
    """−log q(z) per row, summed over the coordinates of a diagonal density (nats), with the
    reference's guards: ``log_var`` clamped to [−20, 20], 1e-8 added to exp(log_var).

    gauss: q = N(loc, v), v = exp(log_var): ½ Σ_k [(z_k − loc_k)²/v_k + log 2π + log v_k].
    logistic: scale s = exp(log_var) (the reference's reading of the same parameter),
    w = (z − loc)/s: Σ_k [w_k + 2 softplus(−w_k) + log s_k].
    """
    log_var = log_var.clamp(*LOG_VARIANCE_BOUNDS)
    scale = log_var.exp() + VARIANCE_EPS
    if family == "gauss":
        terms = 0.5 * ((z - loc) ** 2 / scale + math.log(2 * math.pi) + log_var)
    else:
        w = (z - loc) / scale
        terms = w + 2.0 * F.softplus(-w) + log_var
    return terms.sum(-1)


class _Marginal(nn.Module):
    def __init__(self, d_z: int, loc: torch.Tensor | None = None, log_var: torch.Tensor | None = None):
        super().__init__()
        # The reference's nn.Embedding(1, d) parameters start N(0, 1); ours are given or start so.
        self.loc = nn.Parameter(torch.randn(1, d_z) if loc is None else loc.reshape(1, d_z).clone())
        self.log_var = nn.Parameter(torch.randn(1, d_z) if log_var is None else log_var.reshape(1, d_z).clone())


@dataclass
class _Data:
    x: torch.Tensor  # (N, ...) on the device
    z: torch.Tensor  # (P, N, d_z) on the device


@contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """torch's global generators seeded with `seed` inside, restored outside (network
    initialisation and dropout draw from them)."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type="cuda"):
        torch.manual_seed(seed)
        yield


def _network_output(net: nn.Module, x: torch.Tensor, d_z: int) -> tuple[torch.Tensor, torch.Tensor]:
    out = net(x)
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape != (x.shape[0], 2 * d_z):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"network: must map a batch of x (B, ...) to (B, {2 * d_z}) = (location, log-variance) of z, "
            f"got {shape} for B = {x.shape[0]}"
        )
    return out[:, :d_z], out[:, d_z:]


def _nll_rows(
    marginal: _Marginal, net: nn.Module, x: torch.Tensor, z: torch.Tensor, family: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """−log q(z) and −log q(z|x) of each row of one batch."""
    h_z = negative_log_density(z, marginal.loc, marginal.log_var, family)
    loc, log_var = _network_output(net, x, z.shape[1])
    return h_z, negative_log_density(z, loc, log_var, family)


def _cross_entropies(
    marginal: _Marginal, net: nn.Module, x: torch.Tensor, z: torch.Tensor, family: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean −log q(z) and mean −log q(z|x) over the rows of one batch."""
    h_z, h_zx = _nll_rows(marginal, net, x, z, family)
    return h_z.mean(), h_zx.mean()


def _default_network(settings: dict[str, Any], d_in: int, d_z: int) -> nn.Module:
    return ConditionalMLP(
        d_in,
        d_z,
        hidden=settings["hidden"],
        layers=settings["layers"],
        layer_norm=settings["layer_norm"],
        dropout=settings["dropout"],
    )


def _make_network(
    template: nn.Module | None, settings: dict[str, Any], data: _Data, dtype: torch.dtype, device: torch.device
) -> nn.Module:
    if template is None:
        net = _default_network(settings, int(np.prod(data.x.shape[1:])), data.z.shape[2])
    else:
        net = copy.deepcopy(template)  # the caller's module is the initialisation, never trained itself
    return net.to(device=device, dtype=dtype)


def _fit_reference(
    data: _Data,
    settings: dict[str, Any],
    template: nn.Module | None,
    epochs: int,
    seeds: tuple[int, int],
    device: torch.device,
    bar: Progress,
) -> dict[str, Any]:
    init_seed, order_seed = seeds
    family = settings["family"]
    n, p, d_z = data.x.shape[0], data.z.shape[0], data.z.shape[2]
    order = np.random.default_rng(order_seed)
    with _seeded(init_seed, device):
        marginal = _Marginal(d_z).to(device=device, dtype=data.z.dtype)
        net = _make_network(template, settings, data, data.z.dtype, device)
        params = list(marginal.parameters()) + list(net.parameters())
        opt = torch.optim.AdamW(params, lr=settings["lr"], weight_decay=settings["weight_decay"])
        marginal.train()
        net.train()
        step_mi: list[float] = []
        epoch_h = np.zeros((epochs, 2))
        last = (float("nan"), float("nan"))
        batch, samples = settings["batch_size"], settings["n_samples"]
        for epoch in range(epochs):
            # The reference's DataLoader(shuffle=True, drop_last=False): a fresh order each epoch.
            perm = order.permutation(n)
            sums, count = np.zeros(2), 0
            for start in range(0, n, batch):
                rows = perm[start : start + batch]
                idx = torch.as_tensor(rows, device=device)
                xb = data.x[idx]
                # Each input's `samples` draws are distinct passes where there are enough: a random
                # offset per input, then consecutive passes.
                offset = order.integers(0, p, size=rows.size)
                terms = []
                for s in range(samples):
                    passes = torch.as_tensor((offset + s) % p, device=device)
                    terms.append(_cross_entropies(marginal, net, xb, data.z[passes, idx], family))
                h_z = torch.stack([t[0] for t in terms])
                h_zx = torch.stack([t[1] for t in terms])
                # The reference backpropagates H_q(Z) + H_q(Z|X) (each density its own
                # cross-entropy) and reports H_q(Z|X) − H_q(Z) = −I as the loss value.
                loss = (h_z + h_zx).mean()
                opt.zero_grad()
                loss.backward()
                if settings["grad_clip"] is not None:
                    torch.nn.utils.clip_grad_norm_(params, settings["grad_clip"])
                opt.step()
                values = torch.stack([h_z.detach(), h_zx.detach()], 1).cpu().numpy().astype(np.float64)
                step_mi.append(float((values[:, 0] - values[:, 1]).mean()))
                sums += values.mean(0)
                count += 1
                last = (float(values[-1, 0]), float(values[-1, 1]))  # the reference's `loss`
            epoch_h[epoch] = sums / count
            bar.update()
    nan = np.full(epochs, np.nan)
    return {
        "h": last,
        "train_h": last,
        "heldout_h": None,
        "curve": (np.arange(1, epochs + 1), epoch_h[:, 0], epoch_h[:, 1], nan, nan, np.array(step_mi)),
        "n_steps": len(step_mi),
        "epochs_run": epochs,
        "n_train": n,
        "n_heldout": 0,
        "shift": 0.0,
    }


def _split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    n_held = round(fraction * n)
    return np.sort(perm[n_held:]), np.sort(perm[:n_held])


def _min_inputs(fraction: float) -> int:
    """The fewest inputs whose split leaves at least 2 inputs on each side."""
    n = 4
    while round(fraction * n) < 2 or n - round(fraction * n) < 2:
        n += 1
    return n


def _standardizer(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Column means and standard deviations of t (rows × columns), constant columns scaled by 1."""
    t = t.to(torch.float64)
    mean = t.mean(0)
    std = t.std(0, unbiased=False)
    return mean, torch.where(std > 0, std, torch.ones_like(std))


def _per_input(marginal: _Marginal, net: nn.Module, x: torch.Tensor, z: torch.Tensor, family: str) -> np.ndarray:
    """Per input of one split (eval mode, no gradients): [−log q(z), −log q(z|x)] averaged over the
    passes, as float64 (n, 2)."""
    p, n = z.shape[0], z.shape[1]
    chunk = max(1, _EVAL_ROWS // p)
    out = []
    with torch.no_grad():
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            xb = x[start:stop].repeat(p, *([1] * (x.ndim - 1)))  # pass-major, as z below
            zb = z[:, start:stop].reshape(-1, z.shape[2])
            h_z, h_zx = _nll_rows(marginal, net, xb, zb, family)
            rows = torch.stack([h_z, h_zx], 1).to(torch.float64).reshape(p, stop - start, 2).mean(0)
            out.append(rows.cpu().numpy())
    return np.concatenate(out)


def _fit_recommended(
    data: _Data,
    settings: dict[str, Any],
    template: nn.Module | None,
    epochs: int,
    seeds: tuple[int, int, int],
    device: torch.device,
    bar: Progress,
) -> dict[str, Any]:
    split_seed, init_seed, order_seed = seeds
    family = settings["family"]
    n, p, d_z = data.x.shape[0], data.z.shape[0], data.z.shape[2]
    train_rows, held_rows = _split(n, settings["heldout_fraction"], split_seed)
    tr = torch.as_tensor(train_rows, device=device)
    he = torch.as_tensor(held_rows, device=device)
    dtype = data.z.dtype
    # Standardise z with the training split's moments: an affine map of each coordinate moves both
    # cross-entropies by the same Σ_k log s_k (added back below), so I is unchanged, and the
    # optimiser sees unit-scale targets. x is standardised for the default network only.
    z_mean, z_std = _standardizer(data.z[:, tr].reshape(-1, d_z))
    shift = float(torch.log(z_std).sum())
    z = ((data.z.to(torch.float64) - z_mean) / z_std).to(dtype)
    x = data.x
    if template is None:
        flat = x.reshape(n, -1)
        x_mean, x_std = _standardizer(flat[tr])
        x = ((flat.to(torch.float64) - x_mean) / x_std).to(dtype)
    x_train, z_train, x_held, z_held = x[tr], z[:, tr], x[he], z[:, he]
    n_train = train_rows.size
    order = np.random.default_rng(order_seed)
    with _seeded(init_seed, device):
        # q(z) starts at the moments of the standardised training z (for the Gaussian its maximum
        # likelihood fit; the logistic with the same variance has scale √3/π).
        start_log = 0.0 if family == "gauss" else math.log(math.sqrt(3) / math.pi)
        marginal = _Marginal(
            d_z, torch.zeros(d_z, dtype=dtype, device=device), torch.full((d_z,), start_log, dtype=dtype, device=device)
        ).to(device)
        net = _make_network(template, settings, _Data(x, z), dtype, device)
        params = list(marginal.parameters()) + list(net.parameters())
        opt = torch.optim.Adam(params, lr=settings["lr"], weight_decay=settings["weight_decay"])

        def evaluate() -> tuple[np.ndarray, np.ndarray]:
            """Per-input cross-entropies of the train and held-out split."""
            marginal.eval()
            net.eval()
            result = (
                _per_input(marginal, net, x_train, z_train, family),
                _per_input(marginal, net, x_held, z_held, family),
            )
            marginal.train()
            net.train()
            return result

        train_rows_h, held_rows_h = evaluate()
        train_h, held_h = train_rows_h.mean(0), held_rows_h.mean(0)
        best = [float(held_h[0]), float(held_h[1])]
        best_epoch = [0, 0]
        best_state = [copy.deepcopy(marginal.state_dict()), copy.deepcopy(net.state_dict())]
        since = [0, 0]
        curve_train, curve_held, step_mi = [], [], []
        batch, min_delta, patience = settings["batch_size"], settings["min_delta"], settings["patience"]
        n_pairs = p * n_train
        converged = False
        epochs_run = 0
        for epoch in range(1, epochs + 1):
            # One epoch: every (pass, training input) pair once, in a fresh order.
            perm = torch.as_tensor(order.permutation(n_pairs), device=device)
            for start in range(0, n_pairs, batch):
                pairs = perm[start : start + batch]
                passes, rows = pairs // n_train, pairs % n_train
                h_z, h_zx = _cross_entropies(marginal, net, x_train[rows], z_train[passes, rows], family)
                loss = h_z + h_zx
                opt.zero_grad()
                loss.backward()
                if settings["grad_clip"] is not None:
                    torch.nn.utils.clip_grad_norm_(params, settings["grad_clip"])
                opt.step()
                step_mi.append(float(h_z.detach() - h_zx.detach()))
            epochs_run = epoch
            train_rows_h, held_rows_h = evaluate()
            train_h, held_h = train_rows_h.mean(0), held_rows_h.mean(0)
            curve_train.append(train_h)
            curve_held.append(held_h)
            # Each density keeps its own best held-out state: the two cross-entropies share no
            # parameter, so the smallest held-out value of each is its tightest bound.
            for k, module in enumerate((marginal, net)):
                value = float(held_h[k])
                if value < best[k] - min_delta:
                    since[k] = 0
                else:
                    since[k] += 1
                if value < best[k]:
                    best[k], best_epoch[k] = value, epoch
                    best_state[k] = copy.deepcopy(module.state_dict())
            bar.update()
            if min(since) >= patience:
                converged = True
                break
        marginal.load_state_dict(best_state[0])
        net.load_state_dict(best_state[1])
        train_rows_h, held_rows_h = evaluate()
        train_h, held_h = train_rows_h.mean(0), held_rows_h.mean(0)
        # The held-out estimate is a mean over held-out inputs of −log q(z) + log q(z|x) (each input's
        # passes averaged first): its standard error over the split, the densities held fixed.
        held_t = held_rows_h[:, 0] - held_rows_h[:, 1]
        stderr = float(held_t.std(ddof=1) / math.sqrt(held_t.size))
    ct, ch = np.array(curve_train).reshape(-1, 2), np.array(curve_held).reshape(-1, 2)
    return {
        "h": (float(held_h[0]), float(held_h[1])),
        "train_h": (float(train_h[0]), float(train_h[1])),
        "heldout_h": (float(held_h[0]), float(held_h[1])),
        "curve": (np.arange(1, epochs_run + 1), ct[:, 0], ct[:, 1], ch[:, 0], ch[:, 1], np.array(step_mi)),
        "n_steps": len(step_mi),
        "epochs_run": epochs_run,
        "n_train": n_train,
        "n_heldout": held_rows.size,
        "shift": shift,
        "best_epoch": best_epoch,
        "converged": converged,
        "stderr": stderr,
    }


# ---------------------------------------------------------------------------------------------
# Arguments


def _device_of(x: Any, z: Any, device: Any) -> torch.device:
    if device is not None:
        try:
            return torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"device: not a torch device: {device!r} ({exc})") from None
    devices = {t.device for t in (x, z) if isinstance(t, torch.Tensor)}
    if len(devices) > 1:
        raise ValueError(f"device: x and z are on different devices ({', '.join(map(str, devices))}); pass device=")
    return devices.pop() if devices else torch.device("cpu")


def _as_tensor(a: Any, name: str, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        t = a.detach()
        if not (
            t.is_floating_point()
            or t.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8, torch.bool)
        ):
            raise TypeError(f"{name}: expected a numeric tensor, got dtype {t.dtype}")
    else:
        try:
            arr = np.asarray(a)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name}: cannot be read as a numeric array ({exc})") from None
        if arr.dtype.kind not in "fiub":
            raise TypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float64))
    if t.numel() == 0:
        raise ValueError(f"{name}: empty input (shape {tuple(t.shape)})")
    t = t.to(device=device, dtype=dtype)
    finite = torch.isfinite(t)
    if not bool(finite.all()):
        # The first bad input row (z of shape (P, N, d): the row of the input, in any pass).
        per_row = finite.reshape(t.shape[0], -1).all(1) if t.ndim != 3 else finite.all(2).all(0)
        row = int(torch.nonzero(~per_row)[0, 0])
        raise ValueError(f"{name}: contains NaN or inf (first at row {row})")
    return t


def _check_inputs(x: Any, z: Any, device: torch.device, dtype: torch.dtype, default_network: bool) -> _Data:
    xt = _as_tensor(x, "x", device, dtype)
    zt = _as_tensor(z, "z", device, dtype)
    if xt.ndim < 2 or (default_network and xt.ndim != 2):
        need = "(N, d_x)" if default_network else "(N, ...) with a batch dimension first"
        raise ValueError(f"x: expected shape {need}, got {tuple(xt.shape)}")
    if zt.ndim == 2:
        zt = zt.unsqueeze(0)
    elif zt.ndim != 3:
        raise ValueError(f"z: expected (N, d_z) or repeated samples (n_passes, N, d_z), got shape {tuple(zt.shape)}")
    if zt.shape[1] != xt.shape[0]:
        raise ValueError(
            f"z: has {zt.shape[1]} samples per pass but x has {xt.shape[0]}; z[p, i] must be a sample of Z | x[i]"
        )
    return _Data(xt, zt)


def _optional(value: Any, check: Any) -> Any:
    return None if value is None else check(value)


def _settings(
    protocol: str,
    family: Any,
    epochs: Any,
    lr: Any,
    batch_size: Any,
    n_samples: Any,
    heldout_fraction: Any,
    patience: Any,
    base: float,
    seed_text: str,
) -> dict[str, Any]:
    def positive(value: Any, name: str) -> float:
        number = as_real(value, name)
        if not (number > 0 and math.isfinite(number)):
            raise ValueError(f"{name}: must be positive and finite, got {number}")
        return number

    def fraction(value: Any) -> float:
        number = as_real(value, "heldout_fraction")
        if not 0 < number < 1:
            raise ValueError(f"heldout_fraction: must lie in (0, 1), got {number}")
        return number

    settings = dict(_REFERENCE if protocol == "reference" else _RECOMMENDED)
    given = {
        "family": _optional(family, lambda v: check_choice(v, "family", FAMILIES)),
        "epochs": _optional(epochs, lambda v: as_int(v, "epochs", minimum=1, maximum=2**32 - 1)),
        "lr": _optional(lr, lambda v: positive(v, "lr")),
        "batch_size": _optional(batch_size, lambda v: as_int(v, "batch_size", minimum=1, maximum=2**32 - 1)),
        "n_samples": _optional(n_samples, lambda v: as_int(v, "n_samples", minimum=1, maximum=2**32 - 1)),
        "heldout_fraction": _optional(heldout_fraction, fraction),
        "patience": _optional(patience, lambda v: as_int(v, "patience", minimum=1, maximum=2**32 - 1)),
    }
    for name in ("heldout_fraction", "patience"):
        if given[name] is not None and protocol == "reference":
            raise ValueError(
                f"{name}: applies to protocol='recommended' only (the reference trains a fixed number of "
                "epochs on all inputs)"
            )
    if given["n_samples"] is not None and protocol == "recommended":
        raise ValueError(
            "n_samples: applies to protocol='reference' only (the recommended protocol trains on every given pass)"
        )
    for name, value in given.items():
        if value is not None:
            settings[name] = value
            if name == "epochs":
                settings["epochs_per_class"] = value
    settings["log_variance_bounds"] = LOG_VARIANCE_BOUNDS
    settings["variance_eps"] = VARIANCE_EPS
    settings["unit"] = "nats" if base == math.e else f"log base {base:g}"
    settings["random_state"] = seed_text
    return settings


def _check_network(network: Any) -> nn.Module | None:
    if network is None or isinstance(network, nn.Module):
        return network
    raise TypeError(
        f"network: expected a torch.nn.Module mapping x to (location, log-variance) of z, got {type(network).__name__}"
    )


def _seeds(rng: np.random.Generator) -> tuple[int, int, int]:
    """Seeds of the three streams of one fit: the data split, the initialisation (and dropout) of
    the networks, and the order of the batches (and the passes drawn)."""
    a, b, c = (int(s) for s in rng.integers(0, 2**63, size=3))
    return a, b, c


def _seed_text(random_state: Any) -> str:
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return str(int(random_state))
    return "Generator" if isinstance(random_state, np.random.Generator) else "None"


def _result(
    fit: dict[str, Any], settings: dict[str, Any], protocol: str, n: int, n_passes: int, scale: float
) -> DoEResult:
    shift = fit["shift"]

    def unit(h: tuple[float, float]) -> tuple[float, float, float]:
        h_z, h_zx = (h[0] + shift) / scale, (h[1] + shift) / scale
        return h_z - h_zx, h_z, h_zx

    mi, h_z, h_zx = unit(fit["h"])
    t_mi, t_z, t_zx = unit(fit["train_h"])
    held = unit(fit["heldout_h"]) if fit["heldout_h"] is not None else (None, None, None)
    epoch, tz, tzx, hz, hzx, step = fit["curve"]
    curve = DoECurve(
        epoch=epoch,
        train_h_z=(tz + shift) / scale,
        train_h_z_given_x=(tzx + shift) / scale,
        heldout_h_z=(hz + shift) / scale,
        heldout_h_z_given_x=(hzx + shift) / scale,
        step_mi=step / scale,
    )
    best = fit.get("best_epoch", [None, None])
    return DoEResult(
        mi=mi,
        h_z=h_z,
        h_z_given_x=h_zx,
        train_mi=t_mi,
        train_h_z=t_z,
        train_h_z_given_x=t_zx,
        heldout_mi=held[0],
        heldout_h_z=held[1],
        heldout_h_z_given_x=held[2],
        heldout_stderr=None if fit.get("stderr") is None else fit["stderr"] / scale,
        curve=curve,
        protocol=protocol,
        settings=dict(settings),
        n=n,
        n_train=fit["n_train"],
        n_heldout=fit["n_heldout"],
        n_passes=n_passes,
        n_steps=fit["n_steps"],
        epochs_run=fit["epochs_run"],
        best_epoch_h_z=best[0],
        best_epoch_h_z_given_x=best[1],
        converged=fit.get("converged"),
    )


def _fit(
    data: _Data,
    settings: dict[str, Any],
    protocol: str,
    template: nn.Module | None,
    epochs: int,
    seeds: tuple[int, int, int],
    device: torch.device,
    progress: bool,
    label: str,
    scale: float,
) -> DoEResult:
    bar = Progress(epochs, label, None if progress else False, after=1.0)
    try:
        if protocol == "reference":
            fit = _fit_reference(data, settings, template, epochs, seeds[1:], device, bar)
        else:
            fit = _fit_recommended(data, settings, template, epochs, seeds, device, bar)
    finally:
        bar.close()
    if fit.get("converged") is False:
        warnings.warn(
            f"{label}: the held-out cross-entropies still improved after epochs={epochs}; "
            "the estimate may not have converged (pass a larger epochs=)",
            RuntimeWarning,
            stacklevel=3,
        )
    return _result(fit, settings, protocol, data.x.shape[0], data.z.shape[0], scale)


def _common(
    x: Any,
    z: Any,
    protocol: Any,
    family: Any,
    network: Any,
    epochs: Any,
    lr: Any,
    batch_size: Any,
    n_samples: Any,
    heldout_fraction: Any,
    patience: Any,
    device: Any,
    random_state: Any,
    progress: Any,
    base: Any,
) -> tuple[_Data, dict[str, Any], str, nn.Module | None, torch.device, np.random.Generator, bool, float]:
    protocol = check_choice(protocol, "protocol", PROTOCOLS)
    base = check_base(base)
    progress = check_bool(progress, "progress")
    template = _check_network(network)
    settings = _settings(
        protocol, family, epochs, lr, batch_size, n_samples, heldout_fraction, patience, base, _seed_text(random_state)
    )
    rng = make_rng(random_state)  # drawn from only once every argument is checked
    run_device = _device_of(x, z, device)
    dtype = torch.float32
    if template is not None:
        settings["network"] = type(template).__name__
        for param in template.parameters():
            dtype = param.dtype if param.is_floating_point() else dtype
            break
    else:
        settings["network"] = (
            f"ConditionalMLP(hidden={settings['hidden']}, layers={settings['layers']}, "
            f"layer_norm={settings['layer_norm']}, dropout={settings['dropout']})"
        )
    data = _check_inputs(x, z, run_device, dtype, template is None)
    return data, settings, protocol, template, run_device, rng, progress, math.log(base)


def doe_mutual_info(
    x: Any,
    z: Any,
    *,
    protocol: Literal["recommended", "reference"] = "recommended",
    family: Literal["gauss", "logistic"] | None = None,
    network: nn.Module | None = None,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    n_samples: int | None = None,
    heldout_fraction: float | None = None,
    patience: int | None = None,
    device: Any = None,
    random_state: Any = 0,
    progress: bool = True,
    base: float = math.e,
) -> DoEResult:
    """I(X;Z) ≈ H_q(Z) − H_q(Z|X), the difference-of-entropies estimate (McAllester & Stratos
    2020), in nats (``base=2``: bits). docs/spec.md §7.

    q(z) is a diagonal density (location and log-scale learned), q(z|x) the same family with
    location and log-variance from ``network(x)``; both are trained by minimising their
    cross-entropies on samples (x_i, z_i), and the difference of the two is the estimate. It is
    not a bound: q(z) too simple for Z (a multimodal Z under a Gaussian q(z)) pushes it up, an
    underfitting q(z|x) pulls it down (§7.7).

    Parameters
    ----------
    x : array or tensor (N, d_x) (any (N, ...) with a ``network`` that takes it)
        The inputs.
    z : array or tensor (N, d_z), or (n_passes, N, d_z)
        Samples of Z | x_i: one per input, or repeated stochastic passes (``z[p, i]`` drawn given
        ``x[i]``), e.g. ``capture(..., stochastic=True, n_passes=k)`` reshaped to (k, N, d_z).
    protocol : "recommended" (default) or "reference"
        The settings (§7.3, §7.4); ``result.settings`` lists them.
    family : "gauss" or "logistic"
        Of both densities (default: the protocol's: logistic for the reference, Gaussian for the
        recommended protocol).
    network : torch.nn.Module, optional
        Maps a batch of x (B, ...) to (B, 2·d_z): location and log-variance of q(z|x). Deep-copied:
        its parameters as passed are the initialisation and the module itself is not changed.
        Default: :class:`ConditionalMLP` (2 hidden layers of 128; the reference's has LayerNorm and
        dropout 0.1).
    epochs, lr, batch_size : override the protocol's (the reference: exactly 3 epochs; the
        recommended protocol: at most 2000, with early stopping).
    n_samples : reference only: samples of z per input and step (default 4).
    heldout_fraction, patience : recommended only: the fraction of inputs held out (0.2) and the
        epochs without an improvement of 1e-3 nats of both held-out cross-entropies before
        stopping (30).
    device : where to train (default: the device of x and z if tensors, else CPU).
    random_state : int ≥ 0, numpy Generator or None
        Seeds three streams: the held-out split, the initialisation (and dropout) of the networks,
        and the order of batches and passes (§7.2). Same seed, same result on CPU. torch's global
        generator is left as it was.
    progress : a progress bar over epochs on stderr once a fit runs for more than a second.
    base : the unit (§0.1).

    Returns
    -------
    DoEResult
    """
    data, settings, chosen, template, run_device, rng, progress, scale = _common(
        x,
        z,
        protocol,
        family,
        network,
        epochs,
        lr,
        batch_size,
        n_samples,
        heldout_fraction,
        patience,
        device,
        random_state,
        progress,
        base,
    )
    n = data.x.shape[0]
    if chosen == "recommended" and n < _min_inputs(settings["heldout_fraction"]):
        raise ValueError(
            f"x: {n} inputs are too few for the recommended protocol: heldout_fraction="
            f"{settings['heldout_fraction']:g} needs at least {_min_inputs(settings['heldout_fraction'])} "
            "(2 on each side of the split)"
        )
    if n < 2:
        raise ValueError(f"x: needs at least 2 inputs, got {n}")
    seeds = _seeds(rng)
    return _fit(data, settings, chosen, template, settings["epochs"], seeds, run_device, progress, "DoE", scale)


def doe_mutual_info_given_labels(
    x: Any,
    z: Any,
    labels: Any,
    *,
    class_weights: Literal["empirical", "uniform"] = "empirical",
    protocol: Literal["recommended", "reference"] = "recommended",
    family: Literal["gauss", "logistic"] | None = None,
    network: nn.Module | None = None,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    n_samples: int | None = None,
    heldout_fraction: float | None = None,
    patience: int | None = None,
    device: Any = None,
    random_state: Any = 0,
    progress: bool = True,
    base: float = math.e,
) -> DoEGivenLabels:
    """I(X;Z|Y) = Σ_y w_y I(X;Z|Y=y), one DoE fit (:func:`doe_mutual_info`) per class on that
    class's inputs, fresh densities each (docs/spec.md §7.6).

    ``class_weights="empirical"`` (default): w_y = N_y/N, the definition of I(X;Z|Y) under the
    empirical distribution (what :func:`repcompress.gaussian_channel_mi` computes);
    ``"uniform"``: w_y = 1/C, the unweighted class mean the paper reports. The two agree on
    balanced classes.

    ``labels``: one integer-like label per input (docs/spec.md §0.3), at least 2 classes. The
    reference protocol trains 1 epoch per class, as the reference does (``epochs`` overrides it);
    every class needs at least 2 inputs (recommended: enough for 2 on each side of its split).
    The class fits draw their seeds one after another from ``random_state``. Other parameters as
    :func:`doe_mutual_info`.
    """
    weighting = check_choice(class_weights, "class_weights", CLASS_WEIGHTS)
    data, settings, chosen, template, run_device, rng, progress, scale = _common(
        x,
        z,
        protocol,
        family,
        network,
        epochs,
        lr,
        batch_size,
        n_samples,
        heldout_fraction,
        patience,
        device,
        random_state,
        progress,
        base,
    )
    n = data.x.shape[0]
    codes, values = class_codes(labels, n, "labels", of="x")
    if values.size < 2:
        raise ValueError(f"labels: I(X;Z|Y) needs at least 2 classes, got {values.size}")
    counts = np.bincount(codes, minlength=values.size)
    need = 2 if chosen == "reference" else _min_inputs(settings["heldout_fraction"])
    small = np.flatnonzero(counts < need)
    if small.size:
        c = int(small[0])
        raise ValueError(
            f"labels: class {values[c].item()!r} has {counts[c]} input(s); the {chosen} protocol needs at least "
            f"{need} per class"
            + ("" if chosen == "reference" else f" (heldout_fraction={settings['heldout_fraction']:g})")
        )
    per_class = []
    codes_t = torch.as_tensor(codes, device=run_device)
    for c in range(values.size):
        rows = torch.nonzero(codes_t == c)[:, 0]
        subset = _Data(data.x[rows], data.z[:, rows])
        seeds = _seeds(rng)
        label = f"DoE class {values[c].item()!r}"
        per_class.append(
            _fit(
                subset,
                settings,
                chosen,
                template,
                settings["epochs_per_class"],
                seeds,
                run_device,
                progress,
                label,
                scale,
            )
        )
    weights = counts / counts.sum() if weighting == "empirical" else np.full(values.size, 1.0 / values.size)
    heldout_values = [r.heldout_mi for r in per_class]
    mi = float(np.dot(weights, [r.mi for r in per_class]))
    train_mi = float(np.dot(weights, [r.train_mi for r in per_class]))
    heldout = None if chosen == "reference" else float(np.dot(weights, np.array(heldout_values, dtype=float)))
    return DoEGivenLabels(
        mi=mi,
        train_mi=train_mi,
        heldout_mi=heldout,
        class_weights=weighting,
        weights=weights,
        classes=values,
        counts=counts,
        per_class=per_class,
        protocol=chosen,
    )


__all__ = [
    "ConditionalMLP",
    "DoECurve",
    "DoEGivenLabels",
    "DoEResult",
    "doe_mutual_info",
    "doe_mutual_info_given_labels",
    "negative_log_density",
]
