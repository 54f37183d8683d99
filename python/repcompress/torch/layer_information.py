"""I(X;T) of a layer after the noise, from repeated stochastic passes, with the exact
data-processing upper bound beside every estimate (docs/spec.md §7.8).

Where Z is the output of a Gaussian noise layer itself (:class:`GaussianDropout`,
:class:`GaussianEncoder`), :func:`repcompress.gaussian_channel_mi` is exact. A layer T after it
(a Linear + ReLU, as in the paper's MLPs) has no closed form; :func:`layer_mutual_info` runs the
network k times per input with the noise on and feeds the samples to estimators that accept
repeated draws, X being the input's identity (uniform over the N inputs):

- ``"ross"``: the Ross (2014) k-NN estimator of I between continuous T and a discrete variable,
  with the sample id as the discrete variable (:func:`repcompress.mutual_info_labels`);
- ``"binned"``: the plug-in estimate on binned T with sample ids
  (:func:`repcompress.binning_information_plane`, docs/spec.md §2.4);
- ``"doe"``: the difference-of-entropies estimate (:func:`repcompress.torch.doe_mutual_info`)
  with the inputs as x and the passes as z (P, N, d).

The data-processing inequality gives an exact reference: if T depends on x only through the
noise output T₀ (a Markov chain X → T₀ → T), I(X;T) ≤ I(X;T₀), and I(X;T₀) is exact from the
noise layer's means and variances. It is reported beside every estimate, and an estimate above it
by more than three standard errors is flagged: that estimate is wrong.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from scipy.special import digamma

from .._validation import as_int, check_base, check_bool, check_choice, make_rng
from ..binning import RANGES, STRATEGIES, bin_patterns, binned_mutual_info, binning_information_plane
from ..gaussian_channel import gaussian_channel_mi
from ..knn_estimators import mutual_info_labels
from . import doe as _doe
from .capture import MAX_PASSES, _call, _model_device, _to_device, capture, is_stochastic

Estimator = Literal["ross", "binned", "doe"]
ESTIMATORS: tuple[Estimator, ...] = ("ross", "binned", "doe")
ClassWeights = Literal["empirical", "uniform"]
CLASS_WEIGHTS: tuple[ClassWeights, ...] = ("empirical", "uniform")
# An estimate above the bound by more than this many (combined) standard errors is flagged.
FLAG_STANDARD_ERRORS = 3.0
# Options of doe_mutual_info that `doe_options` may set (the others are set here).
DOE_OPTIONS = ("family", "network", "epochs", "lr", "batch_size", "n_samples", "heldout_fraction", "patience")
# The name under which the inputs are captured for DoE (not a module name: it has angle brackets).
_INPUTS = "<inputs>"


@dataclass(frozen=True)
class LayerEstimate:
    """One sample-based estimate of I(X;T) or I(X;T|Y).

    ``value`` ± ``stderr`` (None where the estimator gives none), ``settings`` (every setting used,
    its seed included), and ``exceeds_bound``: True when ``value`` lies above the data-processing
    bound by more than 3 combined standard errors (None without a bound).
    """

    estimator: str
    quantity: str
    value: float
    stderr: float | None
    settings: dict[str, Any]
    bound: float | None
    bound_stderr: float | None
    exceeds_bound: bool | None


@dataclass(frozen=True)
class DataProcessingBound:
    """The exact I(X;T₀) at the noise output T₀, an upper bound on I(X;T) for any T computed from
    T₀ alone (docs/spec.md §7.8).

    ``value`` ± ``stderr``: the paired Monte Carlo estimate of :func:`~repcompress.gaussian_channel_mi` on the
    noise layer's exact means and variances (error: its standard error only). ``pairwise_upper``:
    the KL pairwise bound, ≥ I(X;T₀) without any sampling error. ``given_labels``,
    ``given_labels_stderr``, ``given_labels_pairwise_upper``: the same for I(X;T₀|Y) with the
    chosen class weights. ``value`` is None when no bound applies; ``reason`` says why.
    """

    noise_layer: str | None
    value: float | None
    stderr: float | None
    pairwise_upper: float | None
    given_labels: float | None = None
    given_labels_stderr: float | None = None
    given_labels_pairwise_upper: float | None = None
    method: str = "gaussian_channel_mi (paired Monte Carlo) on the noise layer's exact means and variances"
    settings: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None

    def for_quantity(self, quantity: str) -> tuple[float | None, float | None]:
        if quantity == "I(X;T)":
            return self.value, self.stderr
        return self.given_labels, self.given_labels_stderr


@dataclass(frozen=True)
class LayerInformation:
    """Result of :func:`layer_mutual_info` (information in the unit of ``base``).

    Attributes
    ----------
    layer, noise_layer : str
        The measured layer and the noise layer of the bound (None when there is none).
    estimates : list of LayerEstimate
        One per estimator and quantity (I(X;T), and I(X;T|Y) with labels).
    upper_bound : DataProcessingBound
    n, n_passes : int
        Inputs, and stochastic passes per input.
    log_n : float
        log N, the ceiling of I(X;T) (uniform X over N inputs); ``log_n_given_labels`` the
        ceiling of I(X;T|Y) under the class weights, Σ_y w_y log N_y (None without labels).
    class_weights : str or None
    base : float
    """

    layer: str
    noise_layer: str | None
    estimates: list[LayerEstimate]
    upper_bound: DataProcessingBound
    n: int
    n_passes: int
    log_n: float
    log_n_given_labels: float | None
    class_weights: str | None
    base: float

    def estimate(self, estimator: str, quantity: str = "I(X;T)") -> LayerEstimate:
        """The estimate of one estimator and quantity ("I(X;T)" or "I(X;T|Y)")."""
        for e in self.estimates:
            if e.estimator == estimator and e.quantity == quantity:
                return e
        have = ", ".join(f"{e.estimator} {e.quantity}" for e in self.estimates)
        raise KeyError(f"no estimate {estimator!r} of {quantity}; computed: {have}")

    def frame(self) -> Any:
        """A tidy pandas DataFrame, one row per estimate, with the bound beside it."""
        import pandas as pd

        b = self.upper_bound
        rows = []
        for e in self.estimates:
            conditional = e.quantity != "I(X;T)"
            rows.append(
                {
                    "layer": self.layer,
                    "noise_layer": self.noise_layer,
                    "estimator": e.estimator,
                    "quantity": e.quantity,
                    "value": e.value,
                    "stderr": e.stderr,
                    "upper_bound": e.bound,
                    "upper_bound_stderr": e.bound_stderr,
                    "upper_bound_pairwise": b.given_labels_pairwise_upper if conditional else b.pairwise_upper,
                    "upper_bound_method": b.method if b.value is not None else None,
                    "exceeds_bound": e.exceeds_bound,
                    "ceiling": self.log_n_given_labels if conditional else self.log_n,
                    "n": self.n,
                    "n_passes": self.n_passes,
                    "class_weights": self.class_weights if conditional else None,
                    "settings": e.settings,
                    "note": b.reason,
                }
            )
        return pd.DataFrame(rows)

    def plot(self, *, ax: Any = None, path: Any = None, title: str | None = None) -> Any:
        """Each estimate (with ±2 standard errors where it has one) beside the data-processing bound
        (red bar, ±2 standard errors) and the ceiling log N (dashed), per quantity."""
        from ..plots import _figure, _finish

        fig, ax = _figure(ax, size=(max(5.0, 1.2 * len(self.estimates) + 2), 4.0))
        positions = np.arange(len(self.estimates))
        for x, e in zip(positions, self.estimates, strict=True):
            colour = "C3" if e.exceeds_bound else "C0"
            ax.errorbar(
                x,
                e.value,
                yerr=None if e.stderr is None else 2 * e.stderr,
                fmt="o",
                color=colour,
                capsize=3,
                zorder=3,
            )
            if e.bound is not None:
                ax.hlines(e.bound, x - 0.3, x + 0.3, color="C3", lw=2, zorder=2)
                if e.bound_stderr:
                    ax.fill_between(
                        [x - 0.3, x + 0.3],
                        e.bound - 2 * e.bound_stderr,
                        e.bound + 2 * e.bound_stderr,
                        color="C3",
                        alpha=0.2,
                        lw=0,
                    )
            ceiling = self.log_n if e.quantity == "I(X;T)" else self.log_n_given_labels
            if ceiling is not None:
                ax.hlines(ceiling, x - 0.4, x + 0.4, color="0.4", ls="--", lw=1, zorder=1)
        ax.set_xticks(positions, [f"{e.estimator}\n{e.quantity}" for e in self.estimates])
        ax.set_xlim(-0.6, len(self.estimates) - 0.4)
        unit = "nats" if self.base == math.e else f"log base {self.base:g}"
        ax.set_ylabel(f"information ({unit})")
        bound = (
            f"bound: exact I(X;T) at {self.noise_layer} (red)"
            if self.upper_bound.value is not None
            else "no data-processing bound"
        )
        ax.set_title(title or f"{self.layer}: N = {self.n}, {self.n_passes} passes; {bound}", fontsize="medium")
        return _finish(fig, path)


# -- argument checks ---------------------------------------------------------------------------


def _module_name(model: torch.nn.Module, name: Any, arg: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"{arg}: expected a module name (as in model.named_modules()), got {type(name).__name__}")
    named = dict(model.named_modules())
    if name == "" or name not in named:
        close = difflib.get_close_matches(name, [n for n in named if n], n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"{arg}: the model has no module named {name!r}{hint} (names as in model.named_modules())")
    return name


def _estimators(value: Any) -> tuple[Estimator, ...]:
    items = [value] if isinstance(value, str) else value
    try:
        items = list(items)
    except TypeError:
        raise TypeError(f"estimators: expected a name or a list of names, got {type(value).__name__}") from None
    if not items:
        raise ValueError(f"estimators: no estimator given; expected some of {', '.join(map(repr, ESTIMATORS))}")
    chosen = [check_choice(v, "estimators", ESTIMATORS) for v in items]
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"estimators: an estimator appears twice in {chosen!r}")
    return tuple(chosen)


def _doe_options(options: Any, protocol: str, base: float) -> dict[str, Any]:
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(f"doe_options: expected a dict of doe_mutual_info options, got {type(options).__name__}")
    unknown = [k for k in options if k not in DOE_OPTIONS]
    if unknown:
        raise ValueError(
            f"doe_options: {', '.join(map(repr, unknown))} cannot be set here; allowed: {', '.join(DOE_OPTIONS)}"
        )
    given = dict(options)
    # The same checks doe_mutual_info makes, now, before any capture runs (docs/spec.md §0.4).
    _doe._settings(
        protocol,
        given.get("family"),
        given.get("epochs"),
        given.get("lr"),
        given.get("batch_size"),
        given.get("n_samples"),
        given.get("heldout_fraction"),
        given.get("patience"),
        base,
        "0",
    )
    _doe._check_network(given.get("network"))
    return given


def _reiterable(loader: Any) -> Iterable:
    try:
        it = iter(loader)
    except TypeError:
        raise TypeError(
            f"loader: expected a DataLoader or an iterable of batches, got {type(loader).__name__}"
        ) from None
    if it is loader:
        raise TypeError(
            "loader: must be iterable more than once (a DataLoader or a list of batches, not an iterator or "
            "generator): one batch traces the forward order, then the capture runs over all of them"
        )
    return loader


# -- the forward order and the Markov chain ----------------------------------------------------


@dataclass
class _Trace:
    """Start and end positions of every module's forward in one eval-mode pass of one batch."""

    start: dict[str, int]
    end: dict[str, int]
    calls: dict[str, int]


def _first_batch(loader: Iterable) -> Any:
    for batch in loader:
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise TypeError("loader: every batch must be an (inputs, labels) pair")
        return batch[0]
    raise ValueError("loader: no batches (the loader is empty)")


def _in_eval(model: torch.nn.Module) -> Any:
    class _Eval:
        def __enter__(self) -> None:
            self.modes = {m: m.training for m in model.modules()}
            model.eval()

        def __exit__(self, *exc: Any) -> None:
            for m, training in self.modes.items():
                m.train(training)

    return _Eval()


def _trace(model: torch.nn.Module, inputs: Any) -> _Trace:
    counter = iter(range(1 << 62))
    start: dict[str, int] = {}
    end: dict[str, int] = {}
    calls: dict[str, int] = {}
    handles = []

    def pre(name: str) -> Any:
        def hook(module: Any, args: Any) -> None:
            start.setdefault(name, next(counter))

        return hook

    def post(name: str) -> Any:
        def hook(module: Any, args: Any, output: Any) -> None:
            calls[name] = calls.get(name, 0) + 1
            end.setdefault(name, next(counter))

        return hook

    try:
        for name, module in model.named_modules():
            if name:
                handles.append(module.register_forward_pre_hook(pre(name)))
                handles.append(module.register_forward_hook(post(name)))
        with _in_eval(model), torch.no_grad():
            _call(model, inputs)
    finally:
        for h in handles:
            h.remove()
    return _Trace(start, end, calls)


def _depends_only_on(model: torch.nn.Module, inputs: Any, noise: str, layer: str) -> bool | None:
    """Whether `layer`'s output depends on the input only through `noise`'s output, on one batch:
    the noise output is replaced by the first input's for every input (eval mode, no noise), and
    the layer's rows must then all equal the first. None when the batch has a single input."""
    modules = dict(model.named_modules())
    seen: dict[str, torch.Tensor] = {}

    def same_row(module: Any, args: Any, output: Any) -> Any:
        if isinstance(output, torch.Tensor) and output.dim() > 0:
            return output[:1].expand_as(output).clone()
        return output

    def keep(module: Any, args: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor):
            seen["out"] = output.detach()

    handles = [modules[noise].register_forward_hook(same_row)]
    handles.append(modules[layer].register_forward_hook(keep))
    try:
        with _in_eval(model), torch.no_grad():
            _call(model, inputs)
    finally:
        for h in handles:
            h.remove()
    out = seen.get("out")
    if out is None or out.dim() == 0 or out.shape[0] < 2:
        return None
    out = out.reshape(out.shape[0], -1).to(torch.float64)
    scale = float(out.abs().max()) if out.numel() else 0.0
    # Rows computed from identical rows may differ in the last bits (batched kernels).
    return bool(torch.all((out - out[:1]).abs() <= 1e-5 * scale + 1e-12))


def _find_noise_layer(
    model: torch.nn.Module, trace: _Trace, layer: str, noise_layer: str | None
) -> tuple[str | None, str | None]:
    """(noise layer, None) or (None, the reason there is none)."""
    modules = dict(model.named_modules())
    if trace.calls.get(layer, 0) == 0:
        raise ValueError(f"layer: {layer!r} did not run in the forward pass")
    if trace.calls[layer] > 1:
        raise ValueError(f"layer: {layer!r} ran {trace.calls[layer]} times in one forward pass (a shared module)")
    gaussian = [n for n in trace.end if hasattr(modules[n], "gaussian_moments")]

    def noise_before(candidate: str) -> list[str]:
        """Stochastic modules whose forward ends before `candidate`'s starts."""
        return [
            n
            for n, m in modules.items()
            if n and n != candidate and is_stochastic(m) and n in trace.end and trace.end[n] < trace.start[candidate]
        ]

    if noise_layer is not None:
        if not hasattr(modules[noise_layer], "gaussian_moments"):
            raise ValueError(
                f"noise_layer: {noise_layer!r} ({type(modules[noise_layer]).__name__}) has no exact Gaussian "
                "moments; expected a GaussianDropout, a GaussianEncoder or a module with gaussian_moments()"
            )
        if noise_layer not in trace.end:
            raise ValueError(f"noise_layer: {noise_layer!r} did not run in the forward pass")
        if trace.end[noise_layer] > trace.end[layer]:
            raise ValueError(f"noise_layer: {noise_layer!r} runs after layer {layer!r}; it cannot bound it")
        chosen = noise_layer
    else:
        before = [n for n in gaussian if trace.end[n] <= trace.end[layer]]
        if not before:
            return None, (
                f"no Gaussian noise layer (GaussianDropout, GaussianEncoder or a module with gaussian_moments) "
                f"runs before {layer!r}, so there is no exact I(X;T) to bound it with"
            )
        # The last one whose output given x is Gaussian, i.e. with no other noise before it: later
        # noise is independent of X and keeps the chain X → T₀ → T.
        exact = [n for n in before if not noise_before(n)]
        chosen = max(exact or before, key=lambda n: trace.end[n])
    if trace.calls[chosen] > 1:
        return None, f"the noise layer {chosen!r} runs {trace.calls[chosen]} times per forward pass"
    earlier = noise_before(chosen)
    if earlier:
        return None, (
            f"the stochastic layer {earlier[0]!r} runs before the noise layer {chosen!r}, so its output given x is "
            "not Gaussian and I(X;T) there is not exact"
        )
    return chosen, None


# -- estimates ------------------------------------------------------------------------------------


def _weights(counts: np.ndarray, class_weights: str) -> np.ndarray:
    return counts / counts.sum() if class_weights == "empirical" else np.full(counts.size, 1.0 / counts.size)


def _bound(
    means: np.ndarray,
    variances: np.ndarray,
    labels: np.ndarray | None,
    codes: np.ndarray | None,
    class_weights: str | None,
    noise: str,
    n_draws: int,
    min_variance: float,
    seed: int,
    base: float,
) -> DataProcessingBound:
    options: dict[str, Any] = {"n_draws": n_draws, "min_variance": min_variance, "base": base}
    settings = {**options, "random_state": seed, "floor": "relative"}
    whole = gaussian_channel_mi(
        means, variances, labels=labels if class_weights == "empirical" else None, random_state=seed, **options
    )
    assert whole.mi is not None and whole.stderr is not None
    given: tuple[float | None, float | None, float | None] = (None, None, None)
    if labels is not None and class_weights == "empirical":
        g = whole.given_labels
        assert g is not None
        given = (g.mi, g.stderr, g.upper)
    elif labels is not None and codes is not None:
        # I(X;T|Y) ≤ I(X;T₀|Y) holds class by class, so for any weights w_y the weighted sum of the
        # per-class exact values bounds the same weighted sum of estimates. A class of one input
        # carries no information about X (I = 0 exactly).
        counts = np.bincount(codes)
        w = _weights(counts, "uniform")
        parts = np.zeros((counts.size, 3))  # value, stderr, pairwise upper per class
        for c in np.arange(counts.size):
            rows = np.flatnonzero(codes == c)
            if rows.size >= 2:
                r = gaussian_channel_mi(means[rows], variances[rows], random_state=seed + 1 + int(c), **options)
                parts[c] = (r.mi, r.stderr, r.upper)
        values, errors, uppers = parts.T
        given = (float(w @ values), float(math.sqrt(w**2 @ np.square(errors))), float(w @ uppers))
        settings["random_state_per_class"] = f"{seed} + 1 + class index"
    return DataProcessingBound(
        noise_layer=noise,
        value=whole.mi,
        stderr=whole.stderr,
        pairwise_upper=whole.upper,
        given_labels=given[0],
        given_labels_stderr=given[1],
        given_labels_pairwise_upper=given[2],
        method=(
            f"gaussian_channel_mi on the exact means and variances of {noise!r} (paired Monte Carlo, "
            f"n_draws={n_draws}; pairwise KL upper bound alongside)"
        ),
        settings=settings,
    )


def _ross(
    t: np.ndarray, ids: np.ndarray, k: int, seed: int, base: float
) -> float:  # the sample id is the "class" of Ross's estimator
    return float(mutual_info_labels(t, ids, k=k, random_state=seed, base=base))


def _by_class(per_class: Sequence[float], counts: np.ndarray, class_weights: str) -> float:  # Σ_y w_y I(X;T | Y = y)
    return float(_weights(counts, class_weights) @ np.asarray(per_class, dtype=float))


def _flag(value: float, stderr: float | None, bound: float | None, bound_stderr: float | None) -> bool | None:
    if bound is None:
        return None
    se = math.sqrt((stderr or 0.0) ** 2 + (bound_stderr or 0.0) ** 2)
    return bool(value > bound + FLAG_STANDARD_ERRORS * se)


def passes_by_input(sample_ids: Any, n_passes: int) -> np.ndarray:
    """(N, n_passes) row indices: row ``grid[i, p]`` of a capture is pass p of input i (passes in
    the order they were drawn). A ValueError unless the ids are 0 … N − 1, each exactly
    ``n_passes`` times."""
    ids = np.asarray(sample_ids)
    if ids.ndim != 1 or ids.dtype.kind not in "iu" or ids.size == 0:
        raise ValueError("sample_ids: expected a non-empty 1-D integer array")
    counts = np.bincount(ids) if ids.min() >= 0 else np.array([-1])
    if counts.size * n_passes != ids.size or not np.all(counts == n_passes):
        raise ValueError(f"sample_ids: every input must have exactly {n_passes} rows (ids 0 … N − 1)")
    return np.argsort(ids, kind="stable").reshape(counts.size, n_passes)


def _seed_of(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**63))


def layer_mutual_info(
    model: torch.nn.Module,
    loader: Iterable,
    layer: str,
    *,
    noise_layer: str | None = None,
    n_passes: int = 8,
    estimators: str | Sequence[str] = ("ross", "binned"),
    labels: bool = True,
    class_weights: Literal["empirical", "uniform"] = "empirical",
    k: int = 3,
    n_bins: int = 30,
    strategy: str = "uniform",
    range: str = "layer",
    doe_protocol: Literal["recommended", "reference"] = "recommended",
    doe_options: Mapping[str, Any] | None = None,
    n_draws: int = 4,
    min_variance: float = 1e-12,
    max_samples: int | None = None,
    random_state: Any = 0,
    progress: bool = True,
    base: float = math.e,
) -> LayerInformation:
    """I(X;T) (and I(X;T|Y)) of a layer T after a stochastic noise layer, estimated from repeated
    stochastic passes, with the exact data-processing upper bound beside every estimate
    (docs/spec.md §7.8). X is the identity of the input, uniform over the N inputs the loader yields.

    The network runs ``n_passes`` times per batch with its noise on
    (``capture(..., stochastic=True, n_passes=n_passes)``), so every input has ``n_passes`` samples
    of T. Estimators (``estimators``), with their known biases:

    - ``"ross"``: :func:`repcompress.mutual_info_labels` (Ross 2014, k-NN) on T with the sample id
      as the discrete variable: N "classes" of P = n_passes samples each, k_i = min(k, P − 1). Its
      largest value is ψ(NP) − ψ(P) ≈ log N + 1/(2P) (reached when the P samples of every input are each
      other's nearest neighbours); like every k-NN estimator it underestimates large informations
      (its error grows with e^I, Gao et al. 2015), and with few passes the within-input distances
      are noisy. Ties (ReLU zeros) are broken by its jitter.
      I(X;T|Y) = Σ_y w_y Î(X;T|Y=y), each term on the rows of class y.
    - ``"binned"``: :func:`repcompress.binning_information_plane` with ``sample_ids`` (plug-in,
      ``n_bins`` (default 30) equal-width bins over the layer's range, as Shwartz-Ziv & Tishby 2017
      and docs/spec.md §2.1). Depends on the bin size and not only on T: with n_bins^d cells far
      more than the N·P rows nearly every row is its own pattern and the estimate saturates at
      log N whatever the truth; with coarse bins it tends to H(T) of the binned means. Binned
      I(X;T|Y) uses the same bins: Σ_y w_y Î(X;T|Y=y) (with empirical weights it equals
      I(X;T) − I(T;Y) of the same bins).
    - ``"doe"``: :func:`repcompress.torch.doe_mutual_info` with the loader's inputs as x (they
      must come as one tensor per batch) and z of shape (P, N, d) (``doe_protocol``, ``doe_options``
      passed through; I(X;T|Y) by :func:`doe_mutual_info_given_labels` with ``class_weights``).
      Not a bound: q(z) too simple inflates it, an underfitted q(z|x) deflates it (§7.7).
      Its ``stderr`` is the held-out evaluation error (None under the reference protocol).

    **Upper bound.** The noise layer T₀ is ``noise_layer`` or, by default, the last module with
    exact Gaussian moments (:class:`GaussianDropout`, :class:`GaussianEncoder`, any module with
    ``gaussian_moments``) whose forward ends at or before the layer's, in the forward order of one
    eval-mode pass of the first batch (the layer itself when it is such a module). If T depends on x
    only through T₀ — checked on that batch by giving every input the first input's T₀ and
    requiring identical rows of T — then I(X;T) ≤ I(X;T₀) and I(X;T|Y) ≤ I(X;T₀|Y) (data
    processing; later noise is independent of X and keeps the chain). I(X;T₀) is
    :func:`repcompress.gaussian_channel_mi` on the exact means and variances that
    :func:`capture` records for T₀ (``n_draws``, ``min_variance``), its Monte Carlo standard error,
    and its pairwise KL bound (an upper bound with no sampling error). With uniform class weights
    the conditional bound is the uniform mean of per-class exact values. No bound (``value`` None,
    ``reason`` set) when no such layer runs before T, when a stochastic layer runs before T₀
    (T₀ | x is then not Gaussian), or when T depends on x around T₀ (a skip connection). An
    estimate is flagged (``exceeds_bound``) when it lies above the bound by more than 3 standard
    errors (its own and the bound's, combined).

    Parameters
    ----------
    model : torch.nn.Module, on the device to run on (CPU or CUDA).
    loader : a DataLoader or list of ``(inputs, labels)`` batches, iterated twice (one batch
        traces the forward order); with shuffling the sample ids follow the capture's order.
    layer, noise_layer : module names as in ``model.named_modules()``.
    n_passes : int ≥ 2, stochastic passes per input.
    estimators : some of "ross", "binned", "doe".
    labels : bool — also estimate I(X;T|Y) with the loader's labels (≥ 2 classes).
    class_weights : "empirical" (w_y = N_y/N, the definition) or "uniform" (w_y = 1/C, the paper's).
    k : neighbours of the Ross estimator. n_bins, strategy, range : the binning (docs/spec.md §2.1).
    n_draws, min_variance : of :func:`~repcompress.gaussian_channel_mi` for the bound.
    max_samples : use the first inputs only.
    random_state : int ≥ 0, Generator or None — seeds, drawn one after another, for the network's
        noise during the capture (torch's global generators are left as they were), the Monte Carlo
        of the bound, the k-NN jitter and DoE; each is recorded in the settings.
    progress : progress bars for the capture and DoE.
    base : the unit (docs/spec.md §0.1).

    Returns
    -------
    LayerInformation
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    layer = _module_name(model, layer, "layer")
    if noise_layer is not None:
        noise_layer = _module_name(model, noise_layer, "noise_layer")
    if isinstance(n_passes, numbers.Integral) and not isinstance(n_passes, (bool, np.bool_)) and n_passes < 2:
        raise ValueError(
            f"n_passes: at least 2 passes per input are needed to see the noise of T given x, got {int(n_passes)}"
        )
    passes = as_int(n_passes, "n_passes", minimum=2, maximum=MAX_PASSES)
    chosen = _estimators(estimators)
    with_labels = check_bool(labels, "labels")
    weighting = check_choice(class_weights, "class_weights", CLASS_WEIGHTS)
    k = as_int(k, "k", minimum=1)
    n_bins = as_int(n_bins, "n_bins", minimum=1, maximum=2**31)
    strategy = check_choice(strategy, "strategy", STRATEGIES)
    bin_range = check_choice(range, "range", RANGES)
    protocol = check_choice(doe_protocol, "doe_protocol", _doe.PROTOCOLS)
    base = check_base(base)
    doe_kwargs = _doe_options(doe_options, protocol, base)
    if doe_options is not None and "doe" not in chosen:
        raise ValueError("doe_options: given, but 'doe' is not among the estimators")
    n_draws = as_int(n_draws, "n_draws", minimum=1, maximum=2**32 - 1)
    if isinstance(min_variance, (bool, np.bool_)) or not isinstance(min_variance, numbers.Real):
        raise TypeError(f"min_variance: must be a number, got {type(min_variance).__name__}")
    if not (float(min_variance) >= 0 and math.isfinite(float(min_variance))):
        raise ValueError(f"min_variance: must be finite and >= 0, got {min_variance!r}")
    if max_samples is not None:
        max_samples = as_int(max_samples, "max_samples", minimum=2)
    show = check_bool(progress, "progress")
    loader = _reiterable(loader)
    rng = make_rng(random_state)
    seeds = {name: _seed_of(rng) for name in ("capture", "bound", "ross", "doe")}

    inputs = _first_batch(loader)
    device = _model_device(model)
    probe = _to_device(inputs, device)
    trace = _trace(model, probe)
    noise, reason = _find_noise_layer(model, trace, layer, noise_layer)
    if noise is not None and noise != layer and _depends_only_on(model, probe, noise, layer) is False:
        noise, reason = (
            None,
            (
                f"{layer!r} depends on the input other than through the noise layer {noise!r} (a skip connection?), "
                "so the data-processing inequality does not apply"
            ),
        )

    specs: dict[str, Any] = {layer: layer}
    if noise is not None:
        specs[noise] = noise
    if "doe" in chosen:

        def the_inputs(batch_inputs: Any, outputs: Any) -> Any:
            if not isinstance(batch_inputs, torch.Tensor):
                raise TypeError(
                    f"estimators: 'doe' needs the loader's inputs as one tensor per batch (x of the density "
                    f"model), got {type(batch_inputs).__name__}"
                )
            return batch_inputs

        specs[_INPUTS] = the_inputs
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seeds["capture"])
        act = capture(
            model,
            loader,
            specs,
            n_passes=passes,
            stochastic=True,
            max_samples=max_samples,
            dtype=np.float64,
            progress=None if show else False,
        )

    ids = act.sample_ids
    # grid[i, p]: the row of pass p of input i (rows of one input in the order they were drawn).
    grid = passes_by_input(ids, passes)
    n = grid.shape[0]
    first = grid[:, 0]
    label_rows = act.labels
    codes: np.ndarray | None = None
    values: np.ndarray | None = None
    if with_labels:
        values, codes = np.unique(label_rows[first], return_inverse=True)
        if values.size < 2:
            raise ValueError(
                f"labels: the data have {values.size} class; I(X;T|Y) needs at least 2 (pass labels=False)"
            )

    if noise is not None:
        means = act.means[noise][first]
        variances = act.variances[noise][first]
        spread = np.abs(act.means[noise][grid] - means[:, None, :]).max() if passes > 1 else 0.0
        if spread > 1e-6 * max(float(np.abs(means).max()), 1e-300):
            bound = DataProcessingBound(
                noise_layer=None,
                value=None,
                stderr=None,
                pairwise_upper=None,
                reason=(
                    f"the means of the noise layer {noise!r} differ between passes of one input (noise before it), "
                    "so its output given x is not Gaussian"
                ),
            )
            noise = None
        else:
            bound = _bound(
                means,
                variances,
                label_rows[first] if with_labels else None,
                codes,
                weighting if with_labels else None,
                noise,
                n_draws,
                float(min_variance),
                seeds["bound"],
                base,
            )
    else:
        bound = DataProcessingBound(noise_layer=None, value=None, stderr=None, pairwise_upper=None, reason=reason)

    t = act.layers[layer]
    estimates: list[LayerEstimate] = []
    class_counts = np.bincount(codes) if codes is not None else None
    row_codes = codes[ids] if codes is not None else None  # ids index the inputs in `first` order

    def add(estimator: str, quantity: str, value: float, stderr: float | None, settings: dict[str, Any]) -> None:
        b, b_se = bound.for_quantity(quantity)
        estimates.append(
            LayerEstimate(estimator, quantity, float(value), stderr, settings, b, b_se, _flag(value, stderr, b, b_se))
        )

    for estimator in chosen:
        if estimator == "ross":
            settings = {
                "function": "mutual_info_labels(T, sample_ids)",
                "k": k,
                "k_used": min(k, passes - 1),
                "normalize": True,
                "jitter": 1e-10,
                "random_state": seeds["ross"],
                "ceiling": float((digamma(n * passes) - digamma(passes)) / math.log(base)),
            }
            add("ross", "I(X;T)", _ross(t, ids, k, seeds["ross"], base), None, settings)
            if row_codes is not None and class_counts is not None:
                per = []
                for c in np.arange(class_counts.size):
                    rows = np.flatnonzero(row_codes == c)
                    per.append(_ross(t[rows], ids[rows], k, seeds["ross"], base) if class_counts[c] > 1 else 0.0)
                add("ross", "I(X;T|Y)", _by_class(per, class_counts, weighting), None, {**settings, "per_class": per})
        elif estimator == "binned":
            point = binning_information_plane(
                t, label_rows, sample_ids=ids, n_bins=n_bins, strategy=strategy, range=bin_range, base=base
            )
            settings = {
                "function": "binning_information_plane(T, labels, sample_ids=sample_ids)",
                "n_bins": n_bins,
                "strategy": strategy,
                "range": bin_range,
                "n_patterns": point.n_patterns,
                "n_rows": point.n_samples,
                "H_T": point.H_T,
                "I_TY": point.I_TY,
            }
            add("binned", "I(X;T)", point.I_XT, None, settings)
            if row_codes is not None and class_counts is not None:
                patterns = bin_patterns(t, "T", n_bins=n_bins, bin_size=None, strategy=strategy, range=bin_range)
                per = []
                for c in np.arange(class_counts.size):
                    rows = np.flatnonzero(row_codes == c)
                    per.append(float(binned_mutual_info(patterns.ids[rows].astype(np.int64), ids[rows], base=base)))
                add(
                    "binned",
                    "I(X;T|Y)",
                    _by_class(per, class_counts, weighting),
                    None,
                    {**settings, "bins": "those of I(X;T)", "per_class": per},
                )
        else:
            x = act.layers[_INPUTS][first]
            z = t[grid.T]  # (P, N, d): z[p, i] is pass p of input i
            doe_rng = np.random.default_rng(seeds["doe"])
            r = _doe.doe_mutual_info(
                x, z, protocol=protocol, device=device, random_state=doe_rng, progress=show, base=base, **doe_kwargs
            )
            settings = {**r.settings, "random_state": seeds["doe"], "train_mi": r.train_mi}
            add("doe", "I(X;T)", r.mi, r.heldout_stderr, settings)
            if codes is not None:
                g = _doe.doe_mutual_info_given_labels(
                    x,
                    z,
                    codes,
                    class_weights=weighting,
                    protocol=protocol,
                    device=device,
                    random_state=doe_rng,
                    progress=show,
                    base=base,
                    **doe_kwargs,
                )
                errors = [c.heldout_stderr for c in g.per_class]
                stderr = (
                    None
                    if any(e is None for e in errors)
                    else float(math.sqrt(float(g.weights**2 @ np.square(np.asarray(errors, dtype=float)))))
                )
                add("doe", "I(X;T|Y)", g.mi, stderr, {**settings, "train_mi": g.train_mi})

    log_n = math.log(n) / math.log(base)
    log_n_y = None
    if class_counts is not None:
        log_n_y = float(_weights(class_counts, weighting) @ np.log(class_counts)) / math.log(base)
    return LayerInformation(
        layer=layer,
        noise_layer=noise,
        estimates=estimates,
        upper_bound=bound,
        n=n,
        n_passes=passes,
        log_n=log_n,
        log_n_given_labels=log_n_y,
        class_weights=weighting if with_labels else None,
        base=base,
    )


__all__ = ["DataProcessingBound", "LayerEstimate", "LayerInformation", "layer_mutual_info", "passes_by_input"]
