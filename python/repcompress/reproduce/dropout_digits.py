"""Gaussian-dropout networks on digits, trained towards or against class collapse (the paper's λ sweep).

Adilova, Petzka, Fischer & Geiger (ECML PKDD 2026), Gaussian-dropout experiments, at laptop scale:
an MLP 64 → 128 (ReLU) → 32 (tanh) → Gaussian dropout → 10 on scikit-learn's digits. The
representation Z is the dropout output, z = f(x)·(1 + √α ε), α = p/(1 − p), so Z | x is exactly
N(f(x), α f(x)²) and the library computes I(X;Z), I(X;Z|Y) and I(Z;Y) *exactly* up to a Monte Carlo
standard error, with pairwise bounds (:func:`repcompress.gaussian_channel_mi`) — where the paper
trains a neural (DoE) estimator. tanh keeps f(x) away from exact zeros, so no variance floor is
needed (the count of floored coordinates is reported anyway).

Training loss: CE − λ·tanh(β·CDNV_batch), with the batch CDNV of the noisy Z over the classes
present in the batch (:func:`repcompress.torch.batch_cdnv`): λ > 0 pushes against collapse,
λ < 0 towards it. Per run: train/test accuracy, generalization gap (train − test), I(X;Z) and
I(X;Z|Y) with bounds, I(Z;Y), the CDNV of the clean representation f(x) on the training inputs,
and the binned entropy of its 5-D PCA projection (an earlier geometric proxy of the paper).
Across runs: the paper's normalized-rank correlations (MI–CDNV, MI–gap, CDNV–gap, each with λ).

    repcompress reproduce dropout-digits --out DIR [--quick] [--seeds 5] [--epochs 40]

Writes ``dropout_runs.csv``, ``dropout_training.csv`` (the tracker's table: metrics per epoch),
``dropout_correlations.csv`` / ``.md``, ``dropout_mi_vs_cdnv.png``,
``dropout_information_planes.png`` and ``dropout_summary.md``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from . import _digits, _measure, _paper_report

DESCRIPTION = "Gaussian-dropout MLPs on digits over a λ sweep (CE − λ·tanh(β·CDNV)): MI vs collapse"
LAMBDAS = (-5.0, -2.0, -0.5, 0.0, 0.5, 2.0, 5.0)
QUICK_LAMBDAS = (-5.0, 0.0, 5.0)
DEFAULT_EPOCHS = 40
CORRELATE = ("lambda", "I_XZ", "I_XZ_given_Y", "cdnv", "gap", "test_acc", "h_bin_pca5")


def build_model(p: float, seed: int, measure_at: str = "noise") -> Any:
    """The MLP; ``measure_at="paper"`` adds the paper's Linear(32, 32) + ReLU after the noise, whose
    output is then Z (modules "5", "6"; the head becomes "7")."""
    torch = _digits.require_torch()
    from torch import nn

    from ..torch import GaussianDropout

    torch.manual_seed(seed)
    body = [nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 32), nn.Tanh(), GaussianDropout(p)]
    after = [nn.Linear(32, 32), nn.ReLU()] if measure_at == "paper" else []
    return nn.Sequential(*body, *after, nn.Linear(32, 10))


# Module names of the noise output T and of the representation Z at each measurement point.
NOISE_LAYER = "4"
Z_LAYER = {"noise": "4", "paper": "6"}


def one_run(
    data: _digits.Digits,
    lam: float,
    seed: int,
    *,
    epochs: int,
    p: float,
    beta: float,
    track_every: int | None,
    n_draws: int,
    measure_at: str = "noise",
    n_passes: int = 4,
) -> tuple[dict, Any]:
    torch = _digits.require_torch()
    import torch.nn.functional as F

    import repcompress as rc

    from ..torch import CompressionTracker, batch_cdnv, capture

    timer = _digits.Timer()
    model = build_model(p, seed, measure_at)
    shuffled, train_eval, test = _digits.loaders(data, batch_size=64, seed=seed)
    cut = int(Z_LAYER[measure_at]) + 1
    representation = model[:cut]  # up to and including Z
    head = model[cut]

    def loss_fn(x: Any, y: Any) -> Any:
        z = representation(x)
        loss = F.cross_entropy(head(z), y)
        if lam != 0.0:
            # A batch with one class has no CDNV; it then adds nothing (the paper maps NaN to 0).
            loss = loss - lam * torch.tanh(beta * torch.nan_to_num(batch_cdnv(z, y), nan=0.0))
        return loss

    # The tracker follows the exact information at the noise output (Z itself at measure_at="noise").
    tracked = "Z" if measure_at == "noise" else "T"
    tracker = CompressionTracker(
        {tracked: NOISE_LAYER}, metrics=["gaussian-mi", "cdnv"], seed=seed, estimate_options={"n_draws": n_draws}
    )
    _, due = _digits.track_schedule(epochs, track_every)

    def on_epoch(epoch: int) -> None:
        if due(epoch):
            tracker.step(model, epoch, train_eval)
            tracker.record(epoch, "accuracy", _digits.accuracy(model, test), split="test")

    _digits.train_epochs(model, shuffled, epochs, loss_fn, on_epoch=on_epoch)
    train_acc, test_acc = _digits.accuracy(model, train_eval), _digits.accuracy(model, test)
    row: dict[str, Any] = {
        "setup": "dropout-digits-mlp",
        "lambda": lam,
        "seed": seed,
        "p": p,
        "alpha": p / (1 - p),
        "beta": beta,
        "epochs": epochs,
        "train_acc": train_acc,
        "test_acc": test_acc,
        "gap": train_acc - test_acc,
    }
    if measure_at == "noise":
        act = capture(model, train_eval, {"Z": NOISE_LAYER}, progress=False)
        mi = rc.gaussian_channel_mi(
            act.means["Z"], act.variances["Z"], labels=act.labels, n_draws=n_draws, random_state=seed
        )
        row.update(_digits.channel_columns(mi))
        row["cdnv"] = rc.class_distance_normalized_variance(act.means["Z"], act.labels)
        row["h_bin_pca5"] = _digits.pca_binned_entropy(act.means["Z"])
    else:
        row.update(
            _measure.paper_point(
                model,
                train_eval,
                noise=NOISE_LAYER,
                layer=Z_LAYER["paper"],
                n_passes=n_passes,
                n_draws=n_draws,
                seeds=_measure.paper_seeds(seed),
            )
        )
    row["seconds"] = timer()
    frame = _digits.tagged(tracker.frame, **{"lambda": lam, "seed": seed})
    return row, frame


def plots(runs: Any, training: Any, out: Path) -> list[Path]:
    from .. import plots as rplots

    plt = rplots._pyplot()
    path = out / "dropout_mi_vs_cdnv.png"
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4))
    for ax, key, label in ((axes[0], "I_XZ", "I(X;Z) [nats]"), (axes[1], "I_XZ_given_Y", "I(X;Z|Y) [nats]")):
        rplots.scatter_by(
            runs[key],
            runs["cdnv"],
            runs["lambda"],
            xlabel=label,
            ylabel="CDNV (train, clean f(x))",
            clabel="λ",
            ax=ax,
            log_y=True,
            title=f"CDNV vs {label.split(' ')[0]}",
        )
    fig.suptitle("Gaussian-dropout MLPs on digits: one point per run")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    planes = _digits.information_planes(
        training,
        "lambda",
        "λ",
        out / "dropout_information_planes.png",
        "information planes of Z (first seed), coloured by epoch",
    )
    return [path, planes]


def run_dropout_digits(
    out: Path,
    *,
    quick: bool = False,
    seeds: int | None = None,
    epochs: int | None = None,
    track_every: int | None = None,
    plots_on: bool = True,
    progress: bool = True,
    p: float = 0.5,
    beta: float = 5.0,
    n_draws: int = 2,
    measure_at: str = "noise",
    n_passes: int = 4,
) -> dict:
    timer = _digits.Timer()
    lambdas = QUICK_LAMBDAS if quick else LAMBDAS
    seeds = seeds or (3 if quick else 5)
    epochs = epochs or (15 if quick else DEFAULT_EPOCHS)
    out.mkdir(parents=True, exist_ok=True)
    data = _digits.load_digits_split()
    runs, training = _digits.sweep(
        lambdas,
        seeds,
        lambda lam, seed: one_run(
            data,
            lam,
            seed,
            epochs=epochs,
            p=p,
            beta=beta,
            track_every=track_every,
            n_draws=n_draws,
            measure_at=measure_at,
            n_passes=n_passes,
        ),
        "dropout-digits runs",
        progress,
    )
    if measure_at == "paper":
        return paper_report(
            runs, training, out, lambdas, seeds, epochs, p, beta, n_passes, n_draws, plots_on, len(data.y_train), timer
        )
    runs.to_csv(out / "dropout_runs.csv", index=False)
    training.to_csv(out / "dropout_training.csv", index=False)
    corr = _digits.correlation_outputs(runs, CORRELATE, out, "dropout")
    written = [
        out / n
        for n in ("dropout_runs.csv", "dropout_training.csv", "dropout_correlations.csv", "dropout_correlations.md")
    ]
    if plots_on:
        written += plots(runs, training, out)
    mi_cdnv = _digits.pick(corr, "I_XZ", "cdnv")
    intro = (
        f"{len(runs)} runs ({len(lambdas)} values of λ × {seeds} seeds), {epochs} epochs, dropout p = {p} "
        f"(α = {p / (1 - p):.3g}), β = {beta}, N_train = {len(data.y_train)}; {timer():.0f} s. Loss "
        "CE − λ·tanh(β·CDNV_batch). Information in nats, exact through the Gaussian channel at the dropout output "
        f"(Monte Carlo, {n_draws} draws per input; log N = {runs['log_N'].iloc[0]:.3f}); CDNV of the clean f(x) on "
        "the training inputs."
    )
    closing = (
        f"I(X;Z) vs CDNV: r = {mi_cdnv.r:+.2f} (p = {mi_cdnv.p:.2g}). A positive r means lower information went "
        "with tighter classes in this setup; the paper finds the relation unreliable across setups and sometimes "
        "reversed, so read this as one setup's answer, not a law."
    )
    text = _digits.summary_markdown(
        "Gaussian-dropout MLPs on digits: information vs geometric compression",
        intro,
        runs,
        "lambda",
        ["train_acc", "test_acc", "gap", "I_XZ", "I_XZ_given_Y", "I_ZY", "cdnv"],
        corr,
        closing,
    )
    (out / "dropout_summary.md").write_text(text)
    written.append(out / "dropout_summary.md")
    return {"runs": runs, "training": training, "correlations": corr, "files": written, "seconds": timer()}


def paper_report(
    runs: Any,
    training: Any,
    out: Path,
    lambdas: tuple[float, ...],
    seeds: int,
    epochs: int,
    p: float,
    beta: float,
    n_passes: int,
    n_draws: int,
    plots_on: bool,
    n_train: int,
    timer: _digits.Timer,
) -> dict:
    """Tables, figures and summary of a ``--measure-at paper`` run (docs/spec.md §7.10)."""
    stem = "dropout_paper"
    runs.to_csv(out / f"{stem}_runs.csv", index=False)
    training.to_csv(out / f"{stem}_training.csv", index=False)
    written = [out / f"{stem}_runs.csv", out / f"{stem}_training.csv"]
    if plots_on:
        written.append(
            _digits.information_planes(
                training,
                "lambda",
                "λ",
                out / f"{stem}_information_planes.png",
                "information planes of the noise output T (first seed, exact MI), coloured by epoch",
            )
        )
    intro = (
        f"{len(runs)} runs ({len(lambdas)} values of λ × {seeds} seeds), {epochs} epochs, dropout p = {p}, "
        f"β = {beta}. The paper's MLP: the Gaussian-dropout output T is followed by Linear(32, 32) + ReLU, whose "
        "output is Z (the paper's representation, regularised by CE − λ·tanh(β·CDNV_batch(Z))). Exact values at T "
        f"({n_draws} Monte Carlo draws per input); at Z, {n_passes} stochastic passes per input feed DoE under the "
        "paper's reference protocol and the Ross and binned estimators; CDNV of Z and of T with the noise off "
        f"(clean) and on one noisy pass (noisy, the paper's). N_train = {n_train}; "
        f"{timer():.0f} s."
    )
    files, table = _paper_report.report(
        runs,
        out,
        stem=stem,
        setting="lambda",
        setting_label="λ",
        z_is_t=False,
        plots_on=plots_on,
        title="Gaussian-dropout MLPs on digits, measured where the paper measures",
        intro=intro,
        means_of=["test_acc", "gap", "I_XT", "I_XZ_doe", "I_XZ_ross", "I_XZ_binned", "cdnv_noisy", "cdnv_clean"],
    )
    return {"runs": runs, "training": training, "conclusions": table, "files": written + files, "seconds": timer()}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _digits.add_common_arguments(parser, DEFAULT_EPOCHS)
    parser.add_argument(
        "--p", type=_rate, default=0.5, help="Gaussian dropout rate in [0, 1), α = p/(1−p) (default 0.5)"
    )
    parser.add_argument(
        "--beta", type=_finite, default=5.0, help="β of the regulariser tanh(β·CDNV), finite (default 5)"
    )


def _rate(text: str) -> float:
    value = _finite(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1), got {text}")
    return value


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text}")
    return value


def run(args: argparse.Namespace) -> int:
    return _digits.run_target(
        args,
        "dropout_summary.md" if args.measure_at == "noise" else "dropout_paper_summary.md",
        lambda: run_dropout_digits(
            args.out,
            quick=args.quick,
            seeds=args.seeds,
            epochs=args.epochs,
            track_every=args.track_every,
            plots_on=not args.no_plots,
            progress=args.progress,
            p=args.p,
            beta=args.beta,
            measure_at=args.measure_at,
        ),
    )
