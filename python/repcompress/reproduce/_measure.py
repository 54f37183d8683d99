"""Measurements of a trained noisy network shared by the reproductions (docs/spec.md §7.9, §7.10).

- :func:`exact_information`: the exact I(X;T), I(X;T|Y) with empirical and with uniform class
  weights at a Gaussian noise layer T (optionally through a Linear map W), Monte Carlo ± standard
  error with the pairwise bounds.
- :func:`doe_estimates`, :func:`sample_estimates`: DoE, Ross and binned estimates of the same
  three quantities at any layer, from stochastic passes.
- :func:`stochastic_capture`: the inputs and ``n_passes`` noisy passes of named layers, by input.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _digits

# -- the exact values ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exact:
    value: float
    stderr: float
    lower: float
    upper: float


def exact_information(
    means: np.ndarray,
    variances: np.ndarray,
    labels: np.ndarray,
    *,
    transform: np.ndarray | None,
    n_draws: int,
    seed: int,
) -> dict[tuple[str, str], Exact]:
    """Exact I(X;Z), I(X;Z|Y) (empirical weights, from the same call) and I(X;Z|Y) with uniform
    weights (the mean of per-class calls on each class's rows) of Z | x ~ N(W μ_x, W diag(v_x) Wᵀ)
    (W the identity when ``transform`` is None): Monte Carlo ± stderr, BD lower and KL upper bounds.
    The uniform bounds are the means of the per-class bounds; its stderr combines theirs."""
    import repcompress as rc

    options: dict[str, Any] = {"n_draws": n_draws, "random_state": seed}
    if transform is not None:
        options["transform"] = transform
    mi = rc.gaussian_channel_mi(means, variances, labels=labels, **options)
    if mi.given_labels is None:
        raise RuntimeError("gaussian_channel_mi gave no I(X;Z|Y) with labels")
    per = [
        _exact(rc.gaussian_channel_mi(means[labels == c], variances[labels == c], **options)) for c in np.unique(labels)
    ]
    return {
        ("I(X;Z)", "-"): _exact(mi),
        ("I(X;Z|Y)", "empirical"): _exact(mi.given_labels),
        ("I(X;Z|Y)", "uniform"): Exact(
            float(np.mean([p.value for p in per])),
            float(math.sqrt(sum(p.stderr**2 for p in per)) / len(per)),
            float(np.mean([p.lower for p in per])),
            float(np.mean([p.upper for p in per])),
        ),
    }


def _exact(info: Any) -> Exact:
    """The Monte Carlo estimate ± stderr and the BD/KL bounds of a ChannelInformation (method "all")."""
    values = (info.mi, info.stderr, info.lower, info.upper)
    if any(v is None for v in values):
        raise RuntimeError("gaussian_channel_mi gave no Monte Carlo estimate or no pairwise bounds")
    return Exact(*(float(v) for v in values))


def ceilings(labels: np.ndarray) -> dict[tuple[str, str], float]:
    """log N for I(X;·), Σ_y w_y log N_y for I(X;·|Y) under each weighting (nats)."""
    _, counts = np.unique(labels, return_counts=True)
    return {
        ("I(X;Z)", "-"): math.log(labels.size),
        ("I(X;Z|Y)", "empirical"): float((counts / counts.sum()) @ np.log(counts)),
        ("I(X;Z|Y)", "uniform"): float(np.mean(np.log(counts))),
    }


# -- the estimates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    value: float
    stderr: float | None = None
    train: float | None = None
    converged: bool | None = None  # recommended DoE: early stopping ended every fit of this estimate


def doe_estimates(
    x: np.ndarray, z: np.ndarray, labels: np.ndarray, protocol: str, seed: int, doe_epochs: int | None
) -> dict[tuple[str, str], Estimate]:
    """DoE I(X;Z) and I(X;Z|Y) (both weightings from the same per-class fits) under ``protocol``."""
    from ..torch import doe_mutual_info, doe_mutual_info_given_labels

    options: dict[str, Any] = {"protocol": protocol, "progress": False}
    if protocol == "recommended" and doe_epochs is not None:
        options["epochs"] = doe_epochs
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        # whether each fit converged is a column of the run table (`converged`), not a warning per class
        warnings.filterwarnings("ignore", message=r".*may not have converged", category=RuntimeWarning)
        r = doe_mutual_info(x, z, random_state=rng, **options)
        g = doe_mutual_info_given_labels(x, z, labels, class_weights="empirical", random_state=rng, **options)
    given_converged = None if r.converged is None else all(bool(c.converged) for c in g.per_class)
    values = np.array([c.mi for c in g.per_class])
    trains = np.array([c.train_mi for c in g.per_class])
    errors = [c.heldout_stderr for c in g.per_class]
    out = {("I(X;Z)", "-"): Estimate(r.mi, r.heldout_stderr, r.train_mi, r.converged)}
    for weighting, w in (("empirical", g.weights), ("uniform", np.full(values.size, 1.0 / values.size))):
        stderr = (
            None
            if any(e is None for e in errors)
            else float(math.sqrt(float(w**2 @ np.square(np.asarray(errors, dtype=float)))))
        )
        out[("I(X;Z|Y)", weighting)] = Estimate(float(w @ values), stderr, float(w @ trains), given_converged)
    return out


def sample_estimates(model: Any, loader: Any, layer: str, noise: str, n_passes: int, seed: int) -> dict:
    """Ross and binned I(X;·) and I(X;·|Y) by :func:`layer_mutual_info` (empirical weights), and
    I(X;·|Y) with uniform weights from the same per-class values; also its data-processing bound."""
    from ..torch import layer_mutual_info

    info = layer_mutual_info(
        model,
        loader,
        layer,
        noise_layer=noise,
        n_passes=n_passes,
        estimators=("ross", "binned"),
        class_weights="empirical",
        random_state=seed,
        progress=False,
    )
    out: dict[tuple[str, str, str], Estimate] = {}
    for name in ("ross", "binned"):
        out[(name, "I(X;Z)", "-")] = Estimate(info.estimate(name, "I(X;T)").value)
        given = info.estimate(name, "I(X;T|Y)")
        out[(name, "I(X;Z|Y)", "empirical")] = Estimate(given.value)
        out[(name, "I(X;Z|Y)", "uniform")] = Estimate(float(np.mean(given.settings["per_class"])))
    return {"estimates": out, "bound": info.upper_bound}


def stochastic_capture(model: Any, loader: Any, layers: Sequence[str], n_passes: int, seed: int) -> dict:
    """``n_passes`` noisy passes of every input: x (N, 64), each layer as (P, N, d), and the labels."""
    torch = _digits.require_torch()

    from ..torch import capture
    from ..torch.layer_information import passes_by_input

    specs: dict[str, Any] = {"<x>": lambda inputs, outputs: inputs}
    specs.update({name: name for name in layers})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        act = capture(model, loader, specs, n_passes=n_passes, stochastic=True, dtype=np.float64, progress=False)
    grid = passes_by_input(act.sample_ids, n_passes)
    first = grid[:, 0]
    return {
        "x": act.layers["<x>"][first],
        "layers": {name: act.layers[name][grid.T] for name in layers},
        "labels": act.labels[first],
    }


# -- the paper's measurement point -----------------------------------------------------------------

# Column suffix of each (quantity, class weights) key of the functions above.
SUFFIX = {("I(X;Z)", "-"): "", ("I(X;Z|Y)", "empirical"): "_given_Y", ("I(X;Z|Y)", "uniform"): "_given_Y_uniform"}
# The estimates made at the paper's point Z, in the order of the run table.
PAPER_ESTIMATORS = ("doe", "ross", "binned")


def paper_point(
    model: Any, loader: Any, *, noise: str, layer: str, n_passes: int, n_draws: int, seeds: Sequence[int]
) -> dict[str, float]:
    """The paper's measurements of one trained network at its representation Z (module ``layer``,
    at or after the Gaussian noise layer ``noise``), as run-table columns (docs/spec.md §7.10):

    - ``I_XT``, ``I_XT_given_Y``, ``I_XT_given_Y_uniform`` (and ``*_stderr``): the exact values at
      the noise output T (Monte Carlo, ``n_draws`` per input) — I(X;Z) itself when Z = T, else an
      upper bound on it by data processing;
    - ``I_XZ{suffix}_{estimator}`` for the DoE estimate under the paper's reference protocol and the
      sample-based Ross and binned estimates, each of I(X;Z), I(X;Z|Y) with empirical and with
      uniform class weights (the paper's), from ``n_passes`` stochastic passes per input;
    - ``cdnv_clean``: CDNV of Z with the noise off (the clean representation), and ``cdnv_noisy``:
      CDNV of one noisy pass per input, as the paper computes it; when Z is after T, the same two
      at T (``cdnv_T_clean``, ``cdnv_T_noisy``).

    ``seeds``: four seeds, for the exact value's Monte Carlo, the stochastic passes DoE sees, DoE's
    training, and the sample-based estimates' passes and jitter.
    """
    import repcompress as rc

    from ..torch import capture

    exact_seed, pass_seed, doe_seed, sample_seed = seeds
    act = capture(model, loader, {"T": noise, "Z": layer}, dtype=np.float64, progress=False)
    labels = act.labels
    exact = exact_information(
        act.means["T"], act.variances["T"], labels, transform=None, n_draws=n_draws, seed=exact_seed
    )
    sampled = stochastic_capture(model, loader, list(dict.fromkeys([noise, layer])), n_passes, pass_seed)
    if not np.array_equal(sampled["labels"], labels):
        raise RuntimeError("the stochastic capture saw the inputs in another order than the clean one")
    z = sampled["layers"][layer]
    estimates = {
        ("doe", *key): e for key, e in doe_estimates(sampled["x"], z, labels, "reference", doe_seed, None).items()
    }
    estimates.update(sample_estimates(model, loader, layer, noise, n_passes, sample_seed)["estimates"])
    row: dict[str, float] = {}
    for key, suffix in SUFFIX.items():
        row[f"I_XT{suffix}"] = exact[key].value
        row[f"I_XT{suffix}_stderr"] = exact[key].stderr
    for estimator in PAPER_ESTIMATORS:
        for key, suffix in SUFFIX.items():
            name = (estimator, *key)  # a name, not a subscript: `d[a, *b]` needs Python 3.11
            row[f"I_XZ{suffix}_{estimator}"] = estimates[name].value
    row["cdnv_clean"] = rc.class_distance_normalized_variance(act.layers["Z"], labels)
    row["cdnv_noisy"] = rc.class_distance_normalized_variance(z[0], labels)
    if layer != noise:  # the geometry at T too, to see whether a conclusion depends on the point
        row["cdnv_T_clean"] = rc.class_distance_normalized_variance(act.means["T"], labels)
        row["cdnv_T_noisy"] = rc.class_distance_normalized_variance(sampled["layers"][noise][0], labels)
    row["log_N"] = math.log(labels.size)
    return row


def paper_seeds(seed: int) -> list[int]:
    """The four seeds :func:`paper_point` takes, for the run with (model) seed ``seed``: spawned from
    ``SeedSequence([seed, 15])`` so that no stream repeats the model's ``torch.manual_seed(seed)``."""
    children = np.random.SeedSequence([seed, 15]).spawn(4)
    return [int(c.generate_state(1, dtype=np.uint32)[0]) for c in children]
