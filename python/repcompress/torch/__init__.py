"""PyTorch side of repcompress: activation capture, noisy layers built for measurement, the CEB
head, and a training-time tracker.

Importing this module imports torch (``pip install "repcompress[torch]"``); ``import repcompress``
alone never does.

- :func:`capture` runs a model over a data loader and returns the activations of named layers as
  numpy arrays (plus labels, sample ids and, for Gaussian-channel layers, the exact means and
  variances of Z | x).
- :class:`GaussianDropout` (z = f(x)·(1 + √α ε), α = p/(1 − p)) and :class:`GaussianEncoder`
  make Z | x a diagonal Gaussian, so :func:`repcompress.gaussian_channel_mi` applies exactly.
- :class:`CEBClassifier` and :func:`ceb_loss`: the Conditional Entropy Bottleneck (Fischer 2020)
  with its variational bounds on I(X;Z|Y) and I(Z;Y); :func:`label_entropy` gives the training
  set's H(Y) the I(Z;Y) bound needs (``CEBClassifier(..., label_entropy=label_entropy(y_train))``).
- :func:`batch_cdnv`: the differentiable CDNV of a batch (the paper's collapse regulariser).
- :func:`doe_mutual_info` / :func:`doe_mutual_info_given_labels`: the difference-of-entropies
  estimate of I(X;Z) and I(X;Z|Y) with a trained density model (McAllester & Stratos 2020), under
  the paper's reference protocol or a recommended one with a held-out split and early stopping.
- :func:`layer_mutual_info`: I(X;T) and I(X;T|Y) of a layer after the noise from repeated
  stochastic passes (Ross k-NN, binned, DoE), with the exact data-processing upper bound I(X;T₀)
  of the noise layer beside every estimate.
- :class:`CompressionTracker`: information and geometry metrics per layer during training, in a
  tidy pandas DataFrame, with plots.
"""

from __future__ import annotations

try:
    import torch as _torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "repcompress.torch needs PyTorch: pip install 'repcompress[torch]' (or install torch yourself)"
    ) from exc

from .capture import Activations, capture
from .doe import (
    ConditionalMLP,
    DoECurve,
    DoEGivenLabels,
    DoEResult,
    doe_mutual_info,
    doe_mutual_info_given_labels,
)
from .layer_information import DataProcessingBound, LayerEstimate, LayerInformation, layer_mutual_info
from .layers import (
    BackwardEncoder,
    CEBClassifier,
    CEBLoss,
    GaussianDropout,
    GaussianEncoder,
    batch_cdnv,
    ceb_bounds,
    ceb_loss,
    label_entropy,
)
from .tracker import CompressionTracker

__all__ = [
    "Activations",
    "BackwardEncoder",
    "CEBClassifier",
    "CEBLoss",
    "CompressionTracker",
    "ConditionalMLP",
    "DataProcessingBound",
    "DoECurve",
    "DoEGivenLabels",
    "DoEResult",
    "GaussianDropout",
    "GaussianEncoder",
    "LayerEstimate",
    "LayerInformation",
    "batch_cdnv",
    "capture",
    "ceb_bounds",
    "ceb_loss",
    "doe_mutual_info",
    "doe_mutual_info_given_labels",
    "label_entropy",
    "layer_mutual_info",
]
