"""The information estimators against the exact answer, on trained digits networks (issue 15 §3).

Two networks per seed on scikit-learn's digits, built and trained as in the reproductions: the
Gaussian-dropout MLP of ``dropout-digits`` (64 → 128 → 32 (tanh) → Gaussian dropout → Linear 32 → 10,
plain cross-entropy) and the CEB network of ``ceb-digits`` (Gaussian encoder to Z ∈ R^8, linear
decoder 8 → 10, loss R + (β − 1)·CE). Each is measured on its training inputs (X uniform over them)
at two points where the truth is known:

- ``noise``: the noise output T itself. Exact: :func:`repcompress.gaussian_channel_mi` on the captured
  means and variances (paired Monte Carlo ± its standard error, with the Bhattacharyya / KL pairwise
  bounds).
- ``linear``: the Linear layer right after the noise, Z = W·T + b. Z | x is Gaussian with covariance
  W·diag(v_x)·Wᵀ and b shifts every component alike, so I(X;Z) is exact with
  ``gaussian_channel_mi(..., transform=W)``; a W of full column rank keeps I(X;Z) = I(X;T) (the
  CEB decoder, 10 × 8), the dropout head (10 × 32, rank 10) loses information. The exact I(X;T) at
  the noise output, an upper bound on I(X;Z) by data processing, is reported beside every estimate
  (``bound``).

Estimators at each point (docs/spec.md §7.9): DoE with the reference protocol and with the
recommended protocol (its held-out estimate), both from one stochastic capture of ``n_passes``
passes per input (:func:`repcompress.torch.doe_mutual_info`, ``doe_mutual_info_given_labels``), and
the sample-based Ross (sample ids as the discrete variable) and binned estimators of
:func:`repcompress.torch.layer_mutual_info`; I(X;·) and I(X;·|Y) with empirical and uniform class
weights. Bias = estimate − exact, per run; mean and sd over seeds, and how often an estimate lies
above the exact value and above its ceiling log N (Σ_y w_y log N_y for I(X;·|Y)).

Seeds: the run's seed s of network k spawns four independent streams
(``numpy.random.SeedSequence([seed, k, s])``): the data split, the model (initialisation, training
noise, batch order), the measurement noise (the stochastic passes), and the estimators (the exact
value's Monte Carlo, the k-NN jitter and DoE's training).

    repcompress reproduce estimator-check --out DIR [--quick] [--seeds 5] [--epochs 20]

Writes ``estimator_check_runs.csv`` (one row per network, seed, point, estimator, quantity and
weighting), ``estimator_check_summary.csv`` / ``.md`` (bias table), ``estimator_check.png`` (estimate
against exact) and ``summary.md`` (the numbers in sentences).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..cli import arguments
from . import _digits
from ._measure import Estimate, ceilings, doe_estimates, exact_information, sample_estimates, stochastic_capture

DESCRIPTION = "DoE (reference and recommended), Ross and binned estimates against exact I(X;Z) on digits networks"
NETWORKS = ("dropout", "ceb")
POINTS = ("noise", "linear")
POINT_TEXT = {"noise": "noise output T", "linear": "Linear layer after the noise, Z = W·T + b"}
ESTIMATORS = ("doe-reference", "doe-recommended", "ross", "binned")
# (quantity, class weights) of every estimate; "-" for I(X;Z), which has none.
QUANTITIES = (("I(X;Z)", "-"), ("I(X;Z|Y)", "empirical"), ("I(X;Z|Y)", "uniform"))
RUN_COLUMNS = (
    "network",
    "seed",
    "point",
    "layer",
    "estimator",
    "quantity",
    "class_weights",
    "estimate",
    "estimate_stderr",
    "estimate_train",
    "converged",
    "exact",
    "exact_stderr",
    "exact_lower",
    "exact_upper",
    "exact_kind",
    "bound",
    "ceiling",
    "n",
    "n_passes",
    "train_acc",
    "test_acc",
)
SUMMARY_COLUMNS = (
    "network",
    "point",
    "estimator",
    "quantity",
    "class_weights",
    "runs",
    "exact_mean",
    "estimate_mean",
    "bias_mean",
    "bias_sd",
    "frac_above_exact",
    "frac_above_bound",
    "frac_above_ceiling",
    "ceiling",
)
SUMMARY_MD_COLUMNS = (
    "network",
    "point",
    "estimator",
    "quantity",
    "class_weights",
    "exact_mean",
    "bias_mean",
    "bias_sd",
    "frac_above_exact",
    "frac_above_ceiling",
)
DEFAULT_EPOCHS = 20
# "Above" a reference means above it by more than rounding: the binned estimate and the exact value's
# ceiling both equal log N when every row is its own pattern, computed two ways (seen: 1.8e-15 apart).
ABOVE_TOLERANCE = 1e-9
DEFAULT_CEB_BETA = 10.0
DROPOUT_P = 0.5


@dataclass(frozen=True)
class Config:
    seeds: int
    epochs: int
    n_passes: int
    n_draws: int
    max_inputs: int | None
    doe_epochs: int | None  # most epochs of the recommended protocol (None: its default)
    ceb_beta: float
    seed: int


def quick_config(seed: int = 0) -> Config:
    return Config(seeds=2, epochs=2, n_passes=4, n_draws=2, max_inputs=300, doe_epochs=15, ceb_beta=10.0, seed=seed)


def default_config(seed: int = 0) -> Config:
    return Config(
        seeds=5,
        epochs=DEFAULT_EPOCHS,
        n_passes=8,
        n_draws=4,
        max_inputs=None,
        doe_epochs=None,
        ceb_beta=10.0,
        seed=seed,
    )


def stream_seeds(root: int, network: int, seed: int) -> dict[str, int]:
    """Independent seeds of the run's four random streams (see the module docstring)."""
    children = np.random.SeedSequence([root, network, seed]).spawn(4)
    names = ("split", "model", "noise", "estimators")
    return {name: int(c.generate_state(1, dtype=np.uint32)[0]) for name, c in zip(names, children, strict=True)}


def estimator_seeds(seeds: dict[str, int]) -> tuple[int, list[int]]:
    """From the estimators' stream: the seed of the exact values' Monte Carlo, and one DoE seed per
    measurement point and protocol (point-major: noise/reference, noise/recommended, linear/…)."""
    values = [int(s) for s in np.random.default_rng(seeds["estimators"]).integers(0, 2**32, size=1 + 2 * len(POINTS))]
    return values[0], values[1:]


# -- networks --------------------------------------------------------------------------------------


@dataclass
class Trained:
    model: Any
    noise: str  # module name of the noise layer T
    linear: str  # module name of the Linear layer right after it
    weight: np.ndarray  # its W
    train_acc: float
    test_acc: float


def train_network(network: str, data: _digits.Digits, model_seed: int, epochs: int, ceb_beta: float) -> Trained:
    torch = _digits.require_torch()
    import torch.nn.functional as F

    from ..torch import ceb_loss, label_entropy
    from . import ceb_digits, dropout_digits

    shuffled, train_eval, test = _digits.loaders(data, batch_size=64, seed=model_seed)
    if network == "dropout":
        model = dropout_digits.build_model(DROPOUT_P, model_seed)
        _digits.train_epochs(model, shuffled, epochs, lambda x, y: F.cross_entropy(model(x), y))
        noise, linear, weight = "4", "5", model[5].weight
    else:
        model = ceb_digits.build_model(model_seed, label_entropy=label_entropy(data.y_train))
        _digits.train_epochs(model, shuffled, epochs, lambda x, y: ceb_loss(model, x, y, ceb_beta).loss)
        noise, linear, weight = "encoder", "decoder", model.decoder.weight
    with torch.no_grad():
        w = weight.detach().cpu().numpy().astype(np.float64)
    return Trained(model, noise, linear, w, _digits.accuracy(model, train_eval), _digits.accuracy(model, test))


def measure(trained: Trained, loader: Any, seeds: dict[str, int], config: Config) -> list[dict]:
    """Every estimate at both points of one trained network, beside the exact values."""
    from ..torch import capture

    act = capture(trained.model, loader, {"T": trained.noise}, dtype=np.float64, progress=False)
    means, variances, labels = act.means["T"], act.variances["T"], act.labels
    exact_seed, doe_seeds = estimator_seeds(seeds)
    at_noise = exact_information(means, variances, labels, transform=None, n_draws=config.n_draws, seed=exact_seed)
    at_linear = exact_information(
        means, variances, labels, transform=trained.weight, n_draws=config.n_draws, seed=exact_seed
    )
    rank = int(np.linalg.matrix_rank(trained.weight))
    linear_kind = f"exact (transform=W, rank {rank} of {means.shape[1]})"
    ceiling = ceilings(labels)
    sampled = stochastic_capture(
        trained.model, loader, [trained.noise, trained.linear], config.n_passes, seeds["noise"] + 1
    )
    if not np.array_equal(sampled["labels"], labels):
        raise RuntimeError("the stochastic capture saw the inputs in another order than the exact one")
    rows = []
    for p, (point, layer, exact, kind) in enumerate(
        (
            ("noise", trained.noise, at_noise, "exact"),
            ("linear", trained.linear, at_linear, linear_kind),
        )
    ):
        z = sampled["layers"][layer]
        estimates: dict[tuple[str, str, str], Estimate] = {}
        for protocol, doe_seed in zip(("reference", "recommended"), doe_seeds[2 * p : 2 * p + 2], strict=True):
            for key, value in doe_estimates(sampled["x"], z, labels, protocol, doe_seed, config.doe_epochs).items():
                name = (f"doe-{protocol}", *key)  # a name, not a subscript: `d[a, *b]` needs Python 3.11
                estimates[name] = value
        # layer_mutual_info seeds its own passes and jitter from one seed of the noise stream.
        sample = sample_estimates(trained.model, loader, layer, trained.noise, config.n_passes, seeds["noise"] + 2 + p)
        estimates.update(sample["estimates"])
        for estimator in ESTIMATORS:
            for key in QUANTITIES:
                name = (estimator, *key)
                e, x = estimates[name], exact[key]
                rows.append(
                    {
                        "point": point,
                        "layer": layer,
                        "estimator": estimator,
                        "quantity": key[0],
                        "class_weights": key[1],
                        "estimate": e.value,
                        "estimate_stderr": math.nan if e.stderr is None else e.stderr,
                        "estimate_train": math.nan if e.train is None else e.train,
                        "converged": "" if e.converged is None else e.converged,
                        "exact": x.value,
                        "exact_stderr": x.stderr,
                        "exact_lower": x.lower,
                        "exact_upper": x.upper,
                        "exact_kind": kind,
                        "bound": at_noise[key].value,
                        "ceiling": ceiling[key],
                        "n": labels.size,
                        "n_passes": config.n_passes,
                    }
                )
    return rows


# -- tables, figure, summary -----------------------------------------------------------------------


def above(values: Any, reference: Any) -> Any:
    """values > reference by more than rounding (``ABOVE_TOLERANCE`` nats)."""
    return values > reference + ABOVE_TOLERANCE


def summarise(runs: Any) -> Any:
    """Bias (estimate − exact) mean and sd over seeds per network, point, estimator, quantity and
    weighting, and the fractions of runs above the exact value, the bound I(X;T) and the ceiling."""
    import pandas as pd

    keys = ["network", "point", "estimator", "quantity", "class_weights"]
    rows = []
    for key, part in runs.groupby(keys, sort=False):
        bias = part["estimate"] - part["exact"]
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "runs": len(part),
                "exact_mean": float(part["exact"].mean()),
                "estimate_mean": float(part["estimate"].mean()),
                "bias_mean": float(bias.mean()),
                "bias_sd": float(bias.std(ddof=1)) if len(part) > 1 else math.nan,
                "frac_above_exact": float((bias > ABOVE_TOLERANCE).mean()),
                "frac_above_bound": float(above(part["estimate"], part["bound"]).mean()),
                "frac_above_ceiling": float(above(part["estimate"], part["ceiling"]).mean()),
                "ceiling": float(part["ceiling"].mean()),
            }
        )
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def figure(runs: Any, path: Path) -> Path:
    """Estimate against exact, one panel per measurement point (columns) and quantity (rows:
    I(X;Z), I(X;Z|Y) with empirical weights); identity and ceiling lines."""
    from .. import plots as rplots

    plt = rplots._pyplot()
    rows = (("I(X;Z)", "-"), ("I(X;Z|Y)", "empirical"))
    fig, axes = plt.subplots(len(rows), len(POINTS), figsize=(5.2 * len(POINTS), 4.4 * len(rows)), squeeze=False)
    markers = {"dropout": "o", "ceb": "s"}
    for r, (quantity, weighting) in enumerate(rows):
        for c, point in enumerate(POINTS):
            ax = axes[r][c]
            part = runs[(runs.point == point) & (runs.quantity == quantity) & (runs.class_weights == weighting)]
            for i, estimator in enumerate(ESTIMATORS):
                for network in NETWORKS:
                    sel = part[(part.estimator == estimator) & (part.network == network)]
                    ax.scatter(
                        sel["exact"],
                        sel["estimate"],
                        marker=markers[network],
                        s=28,
                        color=f"C{i}",
                        label=f"{estimator}, {network}",
                    )
            # x spans the exact values and the ceiling (the estimates far above them extend only y)
            lo = min(float(part["estimate"].min()), float(part["exact"].min()), 0.0)
            hi = 1.1 * max(float(part["exact"].max()), float(part["ceiling"].max()))
            ax.plot([lo, hi], [lo, hi], color="0.3", lw=1, label="estimate = exact")
            ax.set_xlim(lo, hi)
            ax.axhline(float(part["ceiling"].mean()), color="C3", ls="--", lw=1, label="ceiling (log N)")
            ax.set_xlabel(f"exact {quantity} [nats]")
            ax.set_ylabel(f"estimate [nats]{'' if weighting == '-' else ', ' + weighting + ' weights'}")
            ax.set_title(f"{POINT_TEXT[point]}: {quantity}", fontsize="medium")
    axes[0][0].legend(fontsize="x-small", ncol=2)
    fig.suptitle("Estimators against the exact information on digits networks (one point per run)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _fmt(v: float) -> str:
    return "nan" if math.isnan(v) else f"{v:+.2f}"


def summary_text(runs: Any, summary: Any, config: Config, seconds: float, accuracies: Any) -> str:
    """The summary: setting, table, and sentences built from the numbers only."""
    n = int(runs["n"].iloc[0])
    kinds = runs.loc[runs.point == "linear"].groupby("network")["exact_kind"].first()
    lines = [
        "# Estimator check: sample-based and DoE estimates against the exact information",
        "",
        f"{config.seeds} seeds × {len(NETWORKS)} networks (Gaussian-dropout MLP, p = {DROPOUT_P}; CEB, β = "
        f"{config.ceb_beta:g}), {config.epochs} training epochs, measured on N = {n} training inputs "
        f"(log N = {math.log(n):.3f} nats) with {config.n_passes} stochastic passes per input; exact values "
        f"by gaussian_channel_mi with {config.n_draws} Monte Carlo draws per input; {seconds:.0f} s. "
        "Bias = estimate − exact (nats), mean ± sd over seeds.",
        "",
        "Test accuracy (mean over seeds): "
        + "; ".join(f"{net} {acc:.3f}" for net, acc in accuracies.items())
        + ". Exact value after the Linear layer: "
        + "; ".join(f"{net}: {kind}" for net, kind in kinds.items())
        + ".",
        "",
        "## Bias per estimator",
        "",
        _digits.markdown_table(summary, list(SUMMARY_MD_COLUMNS)),
        "",
        "## In words (computed from the table)",
        "",
    ]
    for (network, point), part in summary.groupby(["network", "point"], sort=False):
        for key in QUANTITIES:
            cell = part[(part.quantity == key[0]) & (part.class_weights == key[1])]
            label = key[0] if key[1] == "-" else f"{key[0]} ({key[1]} weights)"
            order = cell.assign(abs_bias=cell["bias_mean"].abs()).sort_values("abs_bias")
            best, worst = order.iloc[0], order.iloc[-1]
            lines.append(
                f"- {network}, {POINT_TEXT[point]}, {label} (exact {best.exact_mean:.2f} nats): closest "
                f"{best.estimator} ({_fmt(best.bias_mean)} ± {best.bias_sd:.2f}), farthest {worst.estimator} "
                f"({_fmt(worst.bias_mean)} ± {worst.bias_sd:.2f}); above the ceiling: "
                + ", ".join(f"{r.estimator} {r.frac_above_ceiling:.0%}" for r in cell.itertuples())
                + "."
            )
    rec = runs[runs.estimator == "doe-recommended"]
    converged = rec["converged"].astype(str) == "True"
    lines += [
        "",
        f"Recommended DoE: early stopping ended {int(converged.sum())} of {len(rec)} estimates (all the fits "
        "of an estimate); the others stopped at the epoch cap"
        + (f" ({config.doe_epochs} epochs)." if config.doe_epochs is not None else " of the protocol."),
    ]
    lines += ["", "## Over all cells", ""]
    for estimator in ESTIMATORS:
        part = runs[runs.estimator == estimator]
        bias = part["estimate"] - part["exact"]
        lines.append(
            f"- {estimator}: of {len(part)} estimates, bias from {bias.min():+.2f} to "
            f"{bias.max():+.2f} nats (median {bias.median():+.2f}), "
            f"{(bias > ABOVE_TOLERANCE).mean():.0%} above the exact value, "
            f"{above(part['estimate'], part['bound']).mean():.0%} above the bound I(X;T) at the noise output and "
            f"{above(part['estimate'], part['ceiling']).mean():.0%} above the ceiling."
        )
    return "\n".join(lines) + "\n"


# -- the run ---------------------------------------------------------------------------------------


def measurement_loader(data: _digits.Digits, max_inputs: int | None) -> Any:
    n = len(data.y_train) if max_inputs is None else min(max_inputs, len(data.y_train))
    return _digits.Batches(data.x_train[:n], data.y_train[:n], 512)


def run_estimator_check(out: Path, config: Config, *, plots_on: bool = True, progress: bool = True) -> dict:
    import pandas as pd

    from .._progress import Progress

    timer = _digits.Timer()
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    accuracy: dict[str, list[float]] = {net: [] for net in NETWORKS}
    bar = Progress(len(NETWORKS) * config.seeds, "estimator-check runs", show=progress, after=0.0)
    try:
        for k, network in enumerate(NETWORKS):
            for seed in range(config.seeds):
                seeds = stream_seeds(config.seed, k, seed)
                data = _digits.load_digits_split(seeds["split"])
                trained = train_network(network, data, seeds["model"], config.epochs, config.ceb_beta)
                accuracy[network].append(trained.test_acc)
                for row in measure(trained, measurement_loader(data, config.max_inputs), seeds, config):
                    rows.append(
                        {
                            "network": network,
                            "seed": seed,
                            **row,
                            "train_acc": trained.train_acc,
                            "test_acc": trained.test_acc,
                        }
                    )
                bar.update(1)
    finally:
        bar.close()
    runs = pd.DataFrame(rows, columns=list(RUN_COLUMNS))
    summary = summarise(runs)
    runs.to_csv(out / "estimator_check_runs.csv", index=False)
    summary.to_csv(out / "estimator_check_summary.csv", index=False)
    (out / "estimator_check_summary.md").write_text(_digits.markdown_table(summary, list(SUMMARY_COLUMNS)) + "\n")
    written = [
        out / n for n in ("estimator_check_runs.csv", "estimator_check_summary.csv", "estimator_check_summary.md")
    ]
    if plots_on:
        written.append(figure(runs, out / "estimator_check.png"))
    seconds = timer()
    text = summary_text(runs, summary, config, seconds, {net: float(np.mean(a)) for net, a in accuracy.items()})
    (out / "summary.md").write_text(text)
    written.append(out / "summary.md")
    return {"runs": runs, "summary": summary, "files": written, "seconds": seconds}


def _beta(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 1):
        raise argparse.ArgumentTypeError(f"must be a finite number > 1, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=arguments.output_directory, required=True, help="output directory (created)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2 seeds, 2 epochs, 300 inputs, 4 passes, recommended DoE ≤ 15 epochs (a smoke run, seconds)",
    )
    parser.add_argument("--seeds", type=arguments.count(2), default=None, help="seeds per network (default 5)")
    parser.add_argument(
        "--epochs", type=arguments.count(1), default=None, help=f"training epochs (default {DEFAULT_EPOCHS})"
    )
    parser.add_argument(
        "--passes", type=arguments.count(2), default=None, help="stochastic passes per input (default 8)"
    )
    parser.add_argument(
        "--max-inputs", type=arguments.count(20), default=None, help="measure on the first training inputs only"
    )
    parser.add_argument(
        "--doe-epochs", type=arguments.count(1), default=None, help="most epochs of the recommended DoE protocol"
    )
    parser.add_argument(
        "--ceb-beta", type=_beta, default=None, help=f"β of the CEB loss (default {DEFAULT_CEB_BETA:g})"
    )
    parser.add_argument("--seed", type=arguments.seed, default=0, help="root seed of every stream (default 0)")
    _digits.add_run_arguments(parser)


def config_from(args: argparse.Namespace) -> Config:
    base = quick_config(args.seed) if args.quick else default_config(args.seed)
    given = {
        "seeds": args.seeds,
        "epochs": args.epochs,
        "n_passes": args.passes,
        "max_inputs": args.max_inputs,
        "doe_epochs": args.doe_epochs,
        "ceb_beta": args.ceb_beta,
    }
    return Config(**{**base.__dict__, **{k: v for k, v in given.items() if v is not None}})


def run(args: argparse.Namespace) -> int:
    config = config_from(args)
    return _digits.run_target(
        args,
        "summary.md",
        lambda: run_estimator_check(args.out, config, plots_on=not args.no_plots, progress=args.progress),
    )
