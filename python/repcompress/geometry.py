"""Geometric compression of representations (docs/spec.md §4): how tightly classes cluster.

Notation: h_i is the representation of sample i (a row of ``h``), y_i its label, n_c the size of
class c, μ_c its mean, N the number of samples, C the number of classes *present in the data*,
μ = (1/N) Σ_i h_i the mean of all samples and μ_G = (1/C) Σ_c μ_c the unweighted mean of the class
means. Distances are Euclidean; everything is computed in float64 whatever the input dtype
(float32 and float64 C-contiguous arrays are read in place, never copied, except float64 data
whose largest magnitude lies outside [2^-400, 2^400]: they are computed on in a copy divided by a
power of two, where squares neither overflow nor underflow; docs/spec.md §0.8).

Labels may be any integers (or integer-valued floats). Class ids that no sample carries are not
classes. The reference code of Adilova et al. counts ids absent from a batch as empty classes
with mean 0 in its batch CDNV, which mixes a fictitious class at the origin into the average; we
do not. Results that list classes (matrices, means, counts) are ordered by ascending class id and
return the ids alongside.

Conventions for degenerate input: fewer than 2 classes raises ``ValueError``; coincident class
means give ``inf`` in ratios with their distance in the denominator (``nan`` when the numerator is
0 too); ``ddof=1`` with a one-sample class raises.

References: Galanti, György & Hutter, ICLR 2022 (CDNV); Papyan, Han & Donoho, PNAS 117 (2020)
(neural collapse); Caliński & Harabasz (1974); Davies & Bouldin (1979); Rousseeuw (1987)
(silhouette); Facco, d'Errico, Rodriguez & Laio, Sci. Rep. 7 (2017) (TwoNN); Roy & Vetterli,
EUSIPCO 2007 (effective rank).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _core
from ._resampling import declare_resampling
from ._torch_backend import resolve_device
from ._validation import (
    as_float_array,
    as_real,
    as_samples,
    check_bool,
    class_codes,
    largest_magnitude,
    magnitude_exponent,
    make_rng,
    shown,
)

__all__ = [
    "ClassStatistics",
    "NeuralCollapse",
    "ScatterMatrices",
    "calinski_harabasz",
    "cdnv_matrix",
    "class_distance_normalized_variance",
    "davies_bouldin",
    "effective_rank",
    "fisher_ratio",
    "neural_collapse",
    "scatter_matrices",
    "silhouette",
    "silhouette_samples",
    "trace_ratio",
    "twonn_dimension",
]


# ----------------------------------------------------------------------------------------------
# Input handling
# ----------------------------------------------------------------------------------------------


def _samples(h: Any) -> np.ndarray:
    return np.ascontiguousarray(as_samples(h, "h"))


def _in_range(hs: np.ndarray, *, low: float | None = None) -> tuple[np.ndarray, int]:
    """`hs` and 0, or, when its largest magnitude lies outside [2^-400, 2^400] (`low`: another lower
    end), a float64 copy divided by the power of two 2^e that brings it to [1, 2), and e
    (docs/spec.md §0.8). Everything here is computed in float64, where the squares of data inside
    that range neither overflow nor lose bits; float32 data always lie inside it."""
    if hs.dtype != np.float64 and low is None:
        return hs, 0
    e = magnitude_exponent(largest_magnitude(hs), low=low)
    return (hs, 0) if e == 0 else (np.ascontiguousarray(np.ldexp(hs, -e, dtype=np.float64)), e)


def _ldexp(value: float, e: int) -> float:
    """value·2^e, inf where that overflows (math.ldexp raises)."""
    with np.errstate(over="ignore"):
        return float(np.ldexp(value, e))


def _unscaled(matrix: np.ndarray, e: int, what: str) -> np.ndarray:
    """`matrix`, computed on data divided by 2^e, times 2^e (a ValueError if that overflows)."""
    if e == 0:
        return matrix
    with np.errstate(over="ignore"):
        out = np.ldexp(matrix, e)
    if not np.isfinite(out).all():
        raise ValueError(f"h: its {what} overflow float64 (the data's magnitude is about 2^{e})")
    return out


def _labels(labels: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    return class_codes(labels, n, of="h")


def _prepare(h: Any, labels: Any, *, min_classes: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    hs = _samples(h)
    codes, ids = _labels(labels, hs.shape[0])
    if len(ids) < min_classes:
        raise ValueError(f"labels: need at least {min_classes} classes, got {len(ids)}")
    return hs, codes, ids


def _ddof(ddof: Any) -> int:
    if isinstance(ddof, (bool, np.bool_)) or not isinstance(ddof, numbers.Integral) or ddof not in (0, 1):
        raise ValueError(f"ddof: must be 0 or 1, got {shown(ddof)}")
    return int(ddof)


def _stats(h: Any, labels: Any, *, second_moments: bool) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, int]:
    """Class statistics of h divided by 2^e (see `_in_range`), h so divided, codes, ids and e."""
    hs, codes, ids = _prepare(h, labels)
    hs, e = _in_range(hs)
    return _core.ClassStats.from_data(hs, codes, len(ids), second_moments), hs, codes, ids, e


def _on_device(h: Any, labels: Any, device: Any, *, min_classes: int = 2) -> tuple[Any, Any, np.ndarray, int] | None:
    """For the torch backend (docs/spec.md §8.4): None when the call runs on the Rust core, else h
    as a float64 tensor on its device divided by 2^e (§0.8), the class codes there, the class ids
    and e. Checked as :func:`_prepare` checks: h on the device, the labels on the host."""
    place = resolve_device({"h": h}, device)  # labels are read on the host wherever they lie
    if place is None:
        return None
    import torch

    from ._torch_backend.device_inputs import device_samples, largest_magnitude_t

    ht = device_samples(h, "h", place)
    codes, ids = class_codes(labels, ht.shape[0], of="h")
    if len(ids) < min_classes:
        raise ValueError(f"labels: need at least {min_classes} classes, got {len(ids)}")
    e = magnitude_exponent(largest_magnitude_t(ht))
    if e:
        half = -e // 2
        ht = ht * (2.0**half) * (2.0 ** (-e - half))
    return ht, torch.as_tensor(codes, device=place), ids, e


def _device_stats(h: Any, labels: Any, device: Any) -> tuple[Any, np.ndarray, int] | None:
    """Class statistics on the device (see :func:`_on_device`), the ids and e; None: Rust core."""
    found = _on_device(h, labels, device)
    if found is None:
        return None
    from ._torch_backend import geometry as kernels

    ht, codes, ids, e = found
    return kernels.ClassStatsT(ht, codes, len(ids)), ids, e


# ----------------------------------------------------------------------------------------------
# CDNV and scatter matrices
# ----------------------------------------------------------------------------------------------


@declare_resampling(arrays=("h", "labels"), scheme="bootstrap")
def class_distance_normalized_variance(h: Any, labels: Any, *, ddof: int = 0, device: Any = None) -> float:
    """Class-distance normalised variance (CDNV), averaged over pairs of classes.

    Galanti, György & Hutter (ICLR 2022): with Var_c = (1/(n_c − ddof)) Σ_{i∈c} ‖h_i − μ_c‖² (the
    trace of the class covariance, squared units of h),

        CDNV = mean over unordered pairs c < c' of (Var_c + Var_c') / (2 ‖μ_c − μ_c'‖²).

    Dimensionless; smaller means more collapsed. Invariant to translating, rotating and uniformly
    scaling h. Only classes present in ``labels`` count (the paper's batch code also counts absent
    ids as empty classes at the origin; we do not). The mean over ordered pairs, as the paper's code
    takes it, is the same number. Coincident class means give ``inf``.

    Parameters
    ----------
    h : array-like (N, d) or (N,)
    labels : array-like (N,), integer-like class ids
    ddof : {0, 1}
        1 gives the unbiased class variance; every class then needs 2 samples.
    device : str, torch.device or None
        Where to compute (docs/spec.md §8.1, §8.4). None: on the device of ``h`` when it is a
        non-CPU torch tensor (plain torch there), else on the Rust core. ``"cuda"``, ``"cpu"``, … or
        a ``torch.device``: the torch kernels on that device (``"cpu"``: on CPU torch). Same result
        to ≤ 1e-10 relative, float32 widened to float64 on the device; labels are read on the host.
    """
    ddof = _ddof(ddof)
    on_device = _device_stats(h, labels, device)
    if on_device is not None:
        from ._torch_backend import geometry as kernels

        return kernels.cdnv(on_device[0], ddof)
    stats, *_ = _stats(h, labels, second_moments=False)
    return float(stats.cdnv(ddof))


def cdnv_matrix(h: Any, labels: Any, *, ddof: int = 0, device: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """The CDNV of every pair of classes: (C × C symmetric matrix with zero diagonal, class ids).

    Entry (c, c') is (Var_c + Var_c') / (2 ‖μ_c − μ_c'‖²); see
    :func:`class_distance_normalized_variance`. Rows follow ascending class id. With ``device``
    (or h a tensor on a non-CPU device; docs/spec.md §8.4) it is computed there and returned as a
    numpy array like the Rust path's.
    """
    ddof = _ddof(ddof)
    on_device = _device_stats(h, labels, device)
    if on_device is not None:
        from ._torch_backend import geometry as kernels

        return kernels.cdnv_matrix(on_device[0], ddof).cpu().numpy(), on_device[1]
    stats, _, _, ids, _ = _stats(h, labels, second_moments=False)
    return np.asarray(stats.cdnv_matrix(ddof)), ids


@dataclass(frozen=True)
class ScatterMatrices:
    """Scatter matrices (all d × d, float64) and class summaries, classes by ascending id.

    within  S_W = Σ_i (h_i − μ_{y_i})(h_i − μ_{y_i})ᵀ
    between S_B = Σ_c n_c (μ_c − μ)(μ_c − μ)ᵀ
    total   S_T = Σ_i (h_i − μ)(h_i − μ)ᵀ  (= S_W + S_B; computed on its own)
    sigma_within  Σ_W = S_W / N                                (Papyan et al.)
    sigma_between Σ_B = (1/C) Σ_c (μ_c − μ_G)(μ_c − μ_G)ᵀ     (Papyan et al.; unweighted)
    """

    within: np.ndarray
    between: np.ndarray
    total: np.ndarray
    sigma_within: np.ndarray
    sigma_between: np.ndarray
    means: np.ndarray
    counts: np.ndarray
    classes: np.ndarray


def scatter_matrices(h: Any, labels: Any, *, device: Any = None) -> ScatterMatrices:
    """Within-, between- and total-class scatter matrices; see :class:`ScatterMatrices`.

    Memory O(d²); the data are read twice (means, then centred products) in float64. With
    ``device`` (or h a tensor on a non-CPU device; docs/spec.md §8.4) the matrices are computed
    there and returned as numpy arrays (d × d), like the Rust path's.
    """
    on_device = _device_stats(h, labels, device)
    if on_device is not None:
        from ._torch_backend import geometry as kernels

        st, ids, e = on_device
        mats = {k: _unscaled(v.cpu().numpy(), 2 * e, "scatter matrices") for k, v in kernels.scatter(st).items()}
        return ScatterMatrices(
            **mats,
            means=_unscaled(st.means.cpu().numpy(), e, "class means"),
            counts=st.counts.cpu().numpy().astype(np.int64),
            classes=ids,
        )
    stats, hs, codes, ids, e = _stats(h, labels, second_moments=True)
    one = _core.ClassStats.from_data(hs, np.zeros_like(codes), 1, True)
    return _scatter_from(stats, ids, np.asarray(one.within()), e)


def _scatter_from(stats: Any, ids: np.ndarray, total: np.ndarray | None, e: int) -> ScatterMatrices:
    """The scatter matrices of statistics of data divided by 2^e, scaled back (squared units)."""
    within = np.asarray(stats.within())
    between = np.asarray(stats.between())
    total = within + between if total is None else total
    sigma_within = within / stats.n_samples
    sigma_between = np.asarray(stats.between_unweighted())
    within, between, total, sigma_within, sigma_between = (
        _unscaled(m, 2 * e, "scatter matrices") for m in (within, between, total, sigma_within, sigma_between)
    )
    return ScatterMatrices(
        within=within,
        between=between,
        total=total,
        sigma_within=sigma_within,
        sigma_between=sigma_between,
        means=_unscaled(np.asarray(stats.means()), e, "class means"),
        counts=np.asarray(stats.counts(), dtype=np.int64),
        classes=ids,
    )


@declare_resampling(arrays=("h", "labels"), scheme="bootstrap")
def trace_ratio(h: Any, labels: Any, *, device: Any = None) -> float:
    """tr(S_W) / tr(S_B): within-class over between-class scatter (class-size weighted).

    tr(S_W) = Σ_c Σ_{i∈c} ‖h_i − μ_c‖², tr(S_B) = Σ_c n_c ‖μ_c − μ‖². Needs no d × d matrix.
    ``inf`` when every class mean coincides. ``device``: where to compute (docs/spec.md §8.4), as
    in :func:`class_distance_normalized_variance`.
    """
    on_device = _device_stats(h, labels, device)
    if on_device is not None:
        from ._torch_backend import geometry as kernels

        return kernels.trace_ratio(on_device[0])
    stats, *_ = _stats(h, labels, second_moments=False)
    return float(stats.trace_ratio())


@declare_resampling(arrays=("h", "labels"), scheme="bootstrap")
def fisher_ratio(h: Any, labels: Any, *, ridge: float = 0.0) -> float:
    """Fisher's criterion tr((S_W + ridge·N·I)⁻¹ S_B).

    ``ridge`` is added to the within-class covariance S_W/N, so it is in squared units of h. With
    ``ridge=0`` a singular S_W (fewer samples than dimensions per class, or a direction constant
    inside every class: smallest eigenvalue ≤ d·ε·largest) raises ``ValueError``; pass a small
    ridge then. Invariant to any invertible linear map of h when ``ridge=0``.
    """
    ridge = _nonnegative(ridge, "ridge")
    stats, *_, e = _stats(h, labels, second_moments=True)
    return _representable_fisher(float(stats.fisher_ratio(_ridge_scaled(ridge, e))))


def _representable_fisher(value: float) -> float:
    """Fisher's ratio, or a ValueError where it exceeds float64 (docs/spec.md §0.8). With a ridge
    the ratio has the units of 1/ridge: S_B of data ~1e155 over ridge·N ~ 1 is ~1e310."""
    if math.isinf(value):
        raise ValueError(
            "ridge: Fisher's ratio tr((S_W + ridge·N·I)⁻¹ S_B) exceeds float64 (S_B is more than ~1e308 times "
            "S_W + ridge·N·I); rescale h, or pass a ridge in proportion to h's squared scale"
        )
    return value


def _ridge_scaled(ridge: float, e: int) -> float:
    """`ridge` (squared units of h) for data divided by 2^e. Kept positive: a ridge below the
    smallest float64 for the scaled data stays the smallest, negligible unless S_W is singular."""
    scaled = _ldexp(ridge, -2 * e) if e else ridge
    return max(scaled, math.ulp(0.0)) if ridge > 0 else scaled


def _nonnegative(value: Any, name: str) -> float:
    value = as_real(value, name)
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"{name}: must be finite and >= 0, got {value}")
    return value


# ----------------------------------------------------------------------------------------------
# Neural collapse
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NeuralCollapse:
    """Neural-collapse metrics (Papyan, Han & Donoho 2020); see :func:`neural_collapse`."""

    nc1: float
    nc2_equinorm: float
    nc2_equiangular: float
    nc2_max_angle: float
    nc3: float | None
    nc4: float | None
    cdnv: float


def neural_collapse(
    h: Any, labels: Any, *, weights: Any = None, bias: Any = None, logits: Any = None, device: Any = None
) -> NeuralCollapse:
    """Neural collapse NC1–NC4 and the CDNV of penultimate-layer features ``h``.

    - **NC1** = Tr(Σ_W Σ_B⁺)/C with Σ_W = (1/N) Σ_i (h_i − μ_{y_i})(h_i − μ_{y_i})ᵀ and
      Σ_B = (1/C) Σ_c (μ_c − μ_G)(μ_c − μ_G)ᵀ. The pseudo-inverse keeps at most the top C − 1
      eigen-directions of Σ_B (the centred means sum to 0) and drops directions whose singular
      value in the centred-mean matrix is ≤ max(d, C)·ε·(largest), ε the float64 machine epsilon
      (numpy's ``matrix_rank`` tolerance). Computed without forming Σ_W: with u_k, s_k² from the
      SVD of the centred means, NC1 = Σ_k u_kᵀ Σ_W u_k / s_k², and u_kᵀ Σ_W u_k comes from the
      projections of the centred samples (N·d·C work, no N × d copy).
    - **NC2**: with m_c = μ_c − μ_G, equinorm = std_c ‖m_c‖ / mean_c ‖m_c‖; equiangular = std over
      c ≠ c' of cos(m_c, m_c'); max-angle = mean over c ≠ c' of ``|cos(m_c, m_c') + 1/(C − 1)|``.
      Standard deviations are population ones (ddof = 0, numpy's default).
    - **NC3** (with ``weights`` W, shape (K, d), row k the classifier of class id k):
      ‖Wᵀ/‖W‖_F − M/‖M‖_F‖²_F over the present classes, M the d × C matrix of the m_c.
    - **NC4** (with ``logits`` (N, K), or ``weights`` and optional ``bias`` (K,), logits = h Wᵀ + b):
      the fraction of samples whose nearest class mean (Euclidean) is not the classifier's argmax.
      For NC3/NC4 the labels must be class ids in 0..K−1 (the classifier's column indices).
    - **cdnv**: :func:`class_distance_normalized_variance` with ddof = 0.

    All but NC4 are invariant to translating, rotating and uniformly scaling h.

    ``device`` (docs/spec.md §8.1, §8.4): None computes on the device of ``h`` when it is a non-CPU
    torch tensor, else on the Rust core; a device name or ``torch.device`` runs the torch kernels
    there. The classifier's ``weights`` and ``bias`` (K × d) are checked on the host; ``logits``
    (N × K) given as a tensor are checked and reduced on the device.
    """
    place = resolve_device({"h": h, "logits": logits}, device)  # labels, weights, bias: read on the host
    if place is not None:
        return _neural_collapse_device(place, h, labels, weights, bias, logits)
    original, codes, ids = _prepare(h, labels)
    # Every check before any computation (docs/spec.md §0.4): the classifier's arrays included.
    w, b, lg = _classifier(original, ids, weights, bias, logits)
    hs, _ = _in_range(original)  # every metric but NC4's logits is invariant to the scale
    stats = _core.ClassStats.from_data(hs, codes, len(ids), False)
    nc1 = float(_core.nc1_from_data(hs, codes, len(ids), stats))
    equinorm, equiangular, max_angle = stats.nc2()
    nc3 = nc4 = None
    # With a classifier the ids were checked to lie in 0..K-1: floats and booleans index as integers.
    class_ids = ids.astype(np.int64) if w is not None or lg is not None else ids
    if w is not None:
        nc3 = float(stats.nc3(np.ascontiguousarray(w[class_ids], dtype=np.float64)))
    if lg is None and w is not None:
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported just below
            lg = original @ w.T.astype(original.dtype, copy=False)
            if b is not None:
                lg = lg + b
        finite = np.isfinite(lg)
        if not finite.all():
            row = int(np.flatnonzero(~finite.all(axis=1))[0])
            given = "weights and bias" if b is not None else "weights"
            raise ValueError(
                f"weights: the logits h Wᵀ{' + b' if b is not None else ''} overflow to inf or NaN "
                f"(first at row {row}); the {given} are too large for h's dtype {original.dtype}"
            )
    if lg is not None:
        predicted = np.argmax(lg, axis=1)
        nearest = class_ids[np.asarray(_core.nearest_class_mean(hs, stats), dtype=np.int64)]
        nc4 = float(np.mean(predicted != nearest))
    return NeuralCollapse(
        nc1=nc1,
        nc2_equinorm=float(equinorm),
        nc2_equiangular=float(equiangular),
        nc2_max_angle=float(max_angle),
        nc3=nc3,
        nc4=nc4,
        cdnv=float(stats.cdnv(0)),
    )


def _neural_collapse_device(place: Any, h: Any, labels: Any, weights: Any, bias: Any, logits: Any) -> NeuralCollapse:
    """:func:`neural_collapse` with the torch kernels on ``place`` (docs/spec.md §8.4)."""
    import torch

    from ._torch_backend import geometry as kernels
    from ._torch_backend import is_tensor
    from ._torch_backend.device_inputs import device_samples

    found = _on_device(h, labels, place)
    assert found is not None
    hs, codes, ids, _ = found
    n, d = hs.shape
    host = {}
    for name, value in (("weights", weights), ("bias", bias)):
        host[name] = value.detach().cpu().numpy() if is_tensor(value) else value
    lg_t = None
    if logits is not None and is_tensor(logits):
        lg_t = logits.detach().to(place)
        if lg_t.ndim != 2 or lg_t.shape[0] != n:
            raise ValueError(f"logits: expected shape (N, K) with N = {n}, got {tuple(lg_t.shape)}")
        device_samples(lg_t, "logits", place)  # numeric and finite, checked on the device
        if lg_t.shape[1] == 0:
            raise ValueError(f"logits: empty (shape {tuple(lg_t.shape)})")
        _ids_fit(ids, lg_t.shape[1], "logits")
        logits = None
    w, b, lg = _classifier(np.empty((n, d)), ids, host["weights"], host["bias"], logits)
    if lg is not None:
        lg_t = torch.as_tensor(np.ascontiguousarray(lg), device=place)
    stats = kernels.ClassStatsT(hs, codes, len(ids))
    nc1 = kernels.nc1(stats)
    equinorm, equiangular, max_angle = kernels.nc2(stats)
    nc3 = nc4 = None
    class_ids = ids.astype(np.int64) if w is not None or lg_t is not None else ids
    if w is not None:
        nc3 = kernels.nc3(stats, torch.as_tensor(np.ascontiguousarray(w[class_ids]), device=place))
    if lg_t is None and w is not None:
        # The logits h Wᵀ + b in h's own dtype, as the host path forms them.
        original = h.detach().to(place) if is_tensor(h) else torch.as_tensor(np.asarray(h), device=place)
        if original.ndim == 1:
            original = original[:, None]
        if not original.dtype.is_floating_point:
            original = original.to(torch.float64)
        lg_t = original @ torch.as_tensor(w, device=place).to(original.dtype).T
        if b is not None:
            lg_t = lg_t + torch.as_tensor(b, device=place).to(original.dtype)
        finite = torch.isfinite(lg_t).all(dim=1)
        if not bool(finite.all()):
            row = int(torch.nonzero(~finite)[0, 0])
            given = "weights and bias" if b is not None else "weights"
            raise ValueError(
                f"weights: the logits h Wᵀ{' + b' if b is not None else ''} overflow to inf or NaN "
                f"(first at row {row}); the {given} are too large for h's dtype {original.dtype}"
            )
    if lg_t is not None:
        predicted = lg_t.argmax(dim=1)
        nearest = torch.as_tensor(class_ids, device=place)[kernels.nearest_class_mean(stats, hs)]
        nc4 = float((predicted != nearest).to(torch.float64).mean())
    return NeuralCollapse(
        nc1=nc1,
        nc2_equinorm=equinorm,
        nc2_equiangular=equiangular,
        nc2_max_angle=max_angle,
        nc3=nc3,
        nc4=nc4,
        cdnv=kernels.cdnv(stats, 0),
    )


def _ids_fit(ids: np.ndarray, k: int, name: str) -> None:
    """With a classifier of k classes the labels must be its class ids 0..k-1 (docs/spec.md §4.6)."""
    low, high = ids.min().item(), ids.max().item()
    if low < 0 or high >= k:
        bad = high if high >= k else low
        raise ValueError(
            f"{name}: has {k} classes but labels contain class id {bad!r}; "
            f"with a classifier the labels must be ids in 0..{k - 1}"
        )


def _classifier(
    hs: np.ndarray, ids: np.ndarray, weights: Any, bias: Any, logits: Any
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Checks the classifier arguments of :func:`neural_collapse` (docs/spec.md §4.6): ``weights``
    (K, d), ``bias`` (K,) (only with weights), ``logits`` (N, K'), each numeric and finite, and the
    labels the classifier's ids. Returns (weights as float64, bias as float64, logits as given)."""
    n, d = hs.shape
    w = b = lg = None
    if weights is not None:
        w = as_float_array(weights, "weights", shape=(None, d), what=f"(K, {d}) (one row per class)")
        if w.shape[0] == 0:
            raise ValueError(f"weights: empty (shape {w.shape})")
        _ids_fit(ids, w.shape[0], "weights")
    if bias is not None:
        if w is None:
            raise ValueError("bias: given without weights")
        b = as_float_array(bias, "bias", shape=(w.shape[0],), what=f"({w.shape[0]},) (one per row of weights)")
    if logits is not None:
        as_float_array(logits, "logits", shape=(n, None), what=f"(N, K) with N = {n}")
        lg = np.asarray(logits)  # read as given: the argmax of float32 logits in float32
        if lg.shape[1] == 0:
            raise ValueError(f"logits: empty (shape {lg.shape})")
        _ids_fit(ids, lg.shape[1], "logits")
    return w, b, lg


# ----------------------------------------------------------------------------------------------
# Clustering indices (as scikit-learn defines them)
# ----------------------------------------------------------------------------------------------


def _check_n_labels(n_labels: int, n: int) -> None:
    if not 1 < n_labels < n:
        raise ValueError(
            f"labels: number of labels is {n_labels}; valid values are 2 to n_samples - 1 = {n - 1} (inclusive)"
        )


@declare_resampling(arrays=("h", "labels"), scheme="bootstrap")
def calinski_harabasz(h: Any, labels: Any) -> float:
    """Calinski–Harabasz index [tr(S_B)/(C − 1)] / [tr(S_W)/(N − C)], as
    ``sklearn.metrics.calinski_harabasz_score`` (1.0 when tr(S_W) = 0; 2 ≤ C ≤ N − 1 required).
    Higher means better separated clusters."""
    hs, codes, ids = _prepare(h, labels, min_classes=1)
    _check_n_labels(len(ids), hs.shape[0])
    hs, _ = _in_range(hs)
    return float(_core.ClassStats.from_data(hs, codes, len(ids), False).calinski_harabasz())


@declare_resampling(arrays=("h", "labels"), scheme="bootstrap")
def davies_bouldin(h: Any, labels: Any) -> float:
    """Davies–Bouldin index, as ``sklearn.metrics.davies_bouldin_score``:
    mean over classes of max_{c' ≠ c} (s_c + s_c') / ‖μ_c − μ_c'‖ with s_c the mean Euclidean
    distance of class c to its centroid. 0 when all s_c, or all centroid distances, are within
    1e-8 of 0; coincident centroids contribute 0 (scikit-learn's conventions). Lower is better."""
    hs, codes, ids = _prepare(h, labels, min_classes=1)
    _check_n_labels(len(ids), hs.shape[0])
    # Data of magnitude below 1 are brought to [1, 2) too, so that the 1e-8 tolerance is relative
    # to the data's scale there (scikit-learn's absolute one makes the index of any data below
    # ~1e-8 zero); the ratios themselves do not change under a power of two.
    hs, _ = _in_range(hs, low=1.0)
    return float(_core.ClassStats.from_data(hs, codes, len(ids), False).davies_bouldin())


def silhouette_samples(h: Any, labels: Any, *, device: Any = None) -> np.ndarray:
    """Silhouette coefficient of every sample (Rousseeuw 1987), as
    ``sklearn.metrics.silhouette_samples`` with the Euclidean metric.

    a(i) = mean distance to the other members of its class, b(i) = smallest mean distance to
    another class, s(i) = (b − a)/max(a, b); 0 for members of one-sample classes (and when
    a = b = 0). Exact, parallel over blocks of rows, O(N·C) extra memory (never N × N).

    ``device`` (docs/spec.md §8.1, §8.4): where to compute, as in
    :func:`class_distance_normalized_variance`; on a device the N values come back as a numpy
    array, like the Rust path's. Blocks of rows there too: O(block · N + N · C) memory.
    """
    found = _on_device(h, labels, device, min_classes=1)
    if found is not None:
        from ._torch_backend import geometry as kernels

        ht, codes_t, ids, _ = found
        _check_n_labels(len(ids), ht.shape[0])
        return kernels.silhouette_samples(ht, codes_t, len(ids)).cpu().numpy()
    hs, codes, ids = _prepare(h, labels, min_classes=1)
    _check_n_labels(len(ids), hs.shape[0])
    hs, _ = _in_range(hs)
    return np.asarray(_core.silhouette_samples(hs, codes, len(ids)))


@declare_resampling(arrays=("h", "labels"), scheme="subsample")
def silhouette(
    h: Any, labels: Any, *, sample_size: int | None = None, random_state: Any = 0, device: Any = None
) -> float:
    """Mean silhouette coefficient, as ``sklearn.metrics.silhouette_score`` (Euclidean); see
    :func:`silhouette_samples`. With ``sample_size``, the mean over a random subset of that many
    samples drawn without replacement from ``random_state`` (an int seed or a
    ``numpy.random.Generator``: ``rng.permutation(N)[:sample_size]``; scikit-learn draws from a
    legacy ``RandomState`` instead, so its subsets differ). ``device``: where to compute
    (docs/spec.md §8.1, §8.4), as in :func:`silhouette_samples`; the subset is drawn on the host
    (N indices) and gathered on the device."""
    place = resolve_device({"h": h}, device)
    if place is not None:
        return _silhouette_device(place, h, labels, sample_size, random_state)
    hs = _samples(h)
    codes, ids = _labels(labels, hs.shape[0])
    rng = make_rng(random_state)  # checked even when unused (no sample_size)
    if sample_size is not None:
        if isinstance(sample_size, (bool, np.bool_)) or not isinstance(sample_size, numbers.Integral):
            raise TypeError(f"sample_size: must be an integer or None, got {type(sample_size).__name__}")
        if not 1 <= sample_size <= hs.shape[0]:
            raise ValueError(f"sample_size: must lie in 1..{hs.shape[0]}, got {shown(sample_size)}")
        idx = rng.permutation(hs.shape[0])[: int(sample_size)]
        hs = np.ascontiguousarray(hs[idx])
        codes, ids = class_codes(codes[idx], len(idx))
    _check_n_labels(len(ids), hs.shape[0])
    hs, _ = _in_range(hs)
    return float(np.mean(_core.silhouette_samples(hs, codes, len(ids))))


def _silhouette_device(place: Any, h: Any, labels: Any, sample_size: Any, random_state: Any) -> float:
    """:func:`silhouette` with the torch kernels on ``place`` (the same checks, subset and order)."""
    import torch

    from ._torch_backend import geometry as kernels
    from ._torch_backend.device_inputs import device_samples

    ht = device_samples(h, "h", place)
    n = ht.shape[0]
    codes, ids = class_codes(labels, n, of="h")
    rng = make_rng(random_state)
    if sample_size is not None:
        if isinstance(sample_size, (bool, np.bool_)) or not isinstance(sample_size, numbers.Integral):
            raise TypeError(f"sample_size: must be an integer or None, got {type(sample_size).__name__}")
        if not 1 <= int(sample_size) <= n:
            raise ValueError(f"sample_size: must lie in 1..{n}, got {shown(sample_size)}")
        idx = rng.permutation(n)[: int(sample_size)]
        ht = ht[torch.as_tensor(idx, device=place)]
        codes, ids = class_codes(codes[idx], len(idx))
    _check_n_labels(len(ids), ht.shape[0])
    e = magnitude_exponent(float(ht.abs().max()))
    if e:
        half = -e // 2
        ht = ht * (2.0**half) * (2.0 ** (-e - half))
    s = kernels.silhouette_samples(ht, torch.as_tensor(codes, device=place), len(ids))
    return float(s.sum()) / s.numel()


# ----------------------------------------------------------------------------------------------
# Intrinsic dimension
# ----------------------------------------------------------------------------------------------


@declare_resampling(arrays=("h",), scheme="subsample")
def twonn_dimension(h: Any, *, discard_fraction: float = 0.1, device: Any = None) -> float:
    """Intrinsic dimension by TwoNN (Facco, d'Errico, Rodriguez & Laio, Sci. Rep. 7, 2017).

    Duplicate rows are removed first (r₁ = 0 would make the ratio infinite). For each remaining
    point, μ_i = r₂/r₁ from its two nearest neighbours (Euclidean, exact, on the neighbour engine's
    k-d tree in principal-axis coordinates). With μ sorted ascending and the empirical CDF
    F(μ_(i)) = i/N' (N' distinct points), the largest ⌈N'·discard_fraction⌉ ratios are dropped
    (always at least the largest, where F = 1), and d is the least-squares slope through the origin
    of −log(1 − F(μ_(i))) against log μ_(i) — Facco et al.'s fit, as scikit-dimension does it.
    Extra memory: one float64 copy of the distinct points.

    ``device`` (None, ``"cuda"``, ``"cpu"``, a ``torch.device``) chooses where it runs
    (docs/spec.md §8.1): a CUDA tensor runs on its device by default. The torch kernels search
    r₁, r₂ by blocked brute force on the given coordinates (no rotation to principal axes), so
    the dimension equals the core's up to the rounding of the distances (docs/spec.md §8.2).
    """
    from ._torch_backend import is_tensor, resolve_device

    if isinstance(discard_fraction, (bool, np.bool_)) or not isinstance(discard_fraction, numbers.Real):
        raise TypeError(f"discard_fraction: must be a number, got {type(discard_fraction).__name__}")
    if not 0 <= discard_fraction < 1:
        raise ValueError(f"discard_fraction: must lie in [0, 1), got {shown(discard_fraction)}")
    place = resolve_device({"h": h}, device)
    if place is not None:
        from ._torch_backend import knn, prepare

        on_device, _ = prepare.in_range(prepare.samples(h, "h", place))
        dim, _, _ = knn.twonn(on_device, float(discard_fraction))
        return float(dim)
    dim, _, _ = _core.twonn(_in_range(_samples(h.detach() if is_tensor(h) else h))[0], float(discard_fraction))
    return float(dim)


@declare_resampling(arrays=("h",), scheme="bootstrap")
def effective_rank(h: Any, *, device: Any = None) -> float:
    """Effective rank (Roy & Vetterli, EUSIPCO 2007): exp(−Σ_k p_k log p_k), p_k = σ_k / Σ_j σ_j
    over the singular values σ of ``h`` **as given** (not centred, as Roy & Vetterli define it for
    a matrix; pass ``h - h.mean(0)`` for the effective rank of the covariance structure).
    Between 1 and min(N, d). Singular values from the eigenvalues of the smaller Gram matrix
    (d × d or N × N) in float64; all-zero h raises. ``device``: where to compute (docs/spec.md
    §8.1, §8.4), as in :func:`class_distance_normalized_variance` (torch's eigvalsh there)."""
    place = resolve_device({"h": h}, device)
    if place is not None:
        from ._torch_backend import geometry as kernels
        from ._torch_backend.device_inputs import device_samples, largest_magnitude_t

        ht = device_samples(h, "h", place)
        e = magnitude_exponent(largest_magnitude_t(ht))
        if e:
            half = -e // 2
            ht = ht * (2.0**half) * (2.0 ** (-e - half))
        return kernels.effective_rank(ht)
    return float(_core.effective_rank(_in_range(_samples(h))[0]))


# ----------------------------------------------------------------------------------------------
# Streaming
# ----------------------------------------------------------------------------------------------


class ClassStatistics:
    """Class statistics accumulated over batches in float64, for the metrics that need only class
    counts, means and second moments — without ever holding the dataset.

    ``update(h, labels)`` adds a batch, ``merge(other)`` adds another accumulator (e.g. from another
    process); the metrics then equal the one-shot functions on the concatenated data (up to
    rounding). Memory: C × d for the means, plus one d × d matrix (S_W) when ``second_moments``
    (needed by NC1, the Fisher ratio and ``scatter_matrices``). Batches are merged with Chan et
    al.'s pairwise update on centred sums, so large offsets do not cost accuracy.

    Davies–Bouldin and the silhouette need distances to the final centroids or between all
    samples, so they are not available here.
    """

    def __init__(self, *, second_moments: bool = True) -> None:
        self.second_moments = check_bool(second_moments, "second_moments")
        self._core: Any = None
        self._code_of: dict[Any, int] = {}
        self._ids: list[Any] = []
        # The core holds the statistics of the data divided by 2^_exp (docs/spec.md §0.8), chosen
        # from the largest magnitude seen so far (0 while that lies in [2^-400, 2^400]).
        self._exp = 0
        self._largest = 0.0

    def _rescale_for(self, largest: float) -> int:
        """Updates the scale for data whose largest magnitude is `largest`: when the largest so far
        would leave the safe range at the current scale, the accumulated statistics are rescaled
        to a new one. Returns the scale's exponent."""
        largest = max(self._largest, largest)
        if magnitude_exponent(_ldexp(largest, -self._exp)) != 0:
            exp = magnitude_exponent(largest)
            if self._core is not None:
                self._core.scale_by_power_of_two(self._exp - exp)
            self._exp = exp
        self._largest = largest
        return self._exp

    def _codes_for(self, values: np.ndarray) -> np.ndarray:
        out = np.empty(len(values), dtype=np.int64)
        for j, v in enumerate(values.tolist()):
            code = self._code_of.get(v)
            if code is None:
                code = self._code_of[v] = len(self._ids)
                self._ids.append(v)
            out[j] = code
        return out

    def update(self, h: Any, labels: Any) -> ClassStatistics:
        hs = _samples(h)
        local, values = _labels(labels, hs.shape[0])
        codes = np.ascontiguousarray(self._codes_for(values)[local])
        if self._core is None:
            self._core = _core.ClassStats(hs.shape[1], self.second_moments)
        elif hs.shape[1] != self._core.dim:
            raise ValueError(f"h: has {hs.shape[1]} columns but earlier batches had {self._core.dim}")
        exp = self._rescale_for(largest_magnitude(hs))
        if exp:
            hs = np.ascontiguousarray(np.ldexp(hs, -exp, dtype=np.float64))
        self._core.update(hs, codes, len(self._ids))
        return self

    def merge(self, other: ClassStatistics) -> ClassStatistics:
        if not isinstance(other, ClassStatistics):
            raise TypeError(f"other: expected ClassStatistics, got {type(other).__name__}")
        if other._core is None:
            return self
        if self.second_moments and not other.second_moments:
            raise ValueError("other: keeps no second moments (second_moments=False) but this accumulator does")
        theirs = other._core.copy() if other is self else other._core
        their_exp = other._exp
        exp = self._rescale_for(other._largest)
        if their_exp != exp:
            theirs = theirs.copy() if theirs is other._core else theirs
            theirs.scale_by_power_of_two(their_exp - exp)
        mapping = self._codes_for(np.asarray(other._ids)).astype(np.uint32).tolist() if other._ids else []
        if self._core is None:
            self._core = _core.ClassStats(theirs.dim, self.second_moments)
        self._core.merge(theirs, mapping)
        return self

    # -- summaries (classes by ascending id) --

    def _ready(self, need_second: bool = False) -> tuple[Any, np.ndarray, np.ndarray]:
        if self._core is None:
            raise ValueError("labels: no data yet (call update first)")
        if need_second and not self.second_moments:
            raise ValueError("second_moments: this metric needs ClassStatistics(second_moments=True)")
        present = np.asarray(self._core.present(), dtype=np.int64)
        ids = np.asarray(self._ids)[present]
        return self._core, ids, np.argsort(ids, kind="stable")

    @property
    def n_samples(self) -> int:
        return 0 if self._core is None else int(self._core.n_samples)

    @property
    def classes(self) -> np.ndarray:
        _, ids, order = self._ready()
        return ids[order]

    @property
    def counts(self) -> np.ndarray:
        core, _, order = self._ready()
        return np.asarray(core.counts(), dtype=np.int64)[order]

    @property
    def means(self) -> np.ndarray:
        core, _, order = self._ready()
        return _unscaled(np.asarray(core.means()), self._exp, "class means")[order]

    def _classes_ok(self) -> Any:
        core, ids, _ = self._ready()
        if len(ids) < 2:
            raise ValueError(f"labels: need at least 2 classes, got {len(ids)}")
        return core

    def cdnv(self, *, ddof: int = 0) -> float:
        """See :func:`class_distance_normalized_variance`."""
        ddof = _ddof(ddof)
        return float(self._classes_ok().cdnv(ddof))

    def cdnv_matrix(self, *, ddof: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """See :func:`cdnv_matrix`."""
        ddof = _ddof(ddof)
        core = self._classes_ok()
        _, ids, order = self._ready()
        m = np.asarray(core.cdnv_matrix(ddof))
        return m[np.ix_(order, order)], ids[order]

    def nc1(self) -> float:
        """NC1 as in :func:`neural_collapse`, from the accumulated S_W."""
        self._ready(need_second=True)
        return float(self._classes_ok().nc1())

    def nc2(self) -> tuple[float, float, float]:
        """(equinorm, equiangular, max-angle) as in :func:`neural_collapse`."""
        return tuple(float(v) for v in self._classes_ok().nc2())  # type: ignore[return-value]

    def trace_ratio(self) -> float:
        """See :func:`trace_ratio`."""
        return float(self._classes_ok().trace_ratio())

    def fisher_ratio(self, *, ridge: float = 0.0) -> float:
        """See :func:`fisher_ratio`."""
        ridge = _nonnegative(ridge, "ridge")
        self._ready(need_second=True)
        return _representable_fisher(float(self._classes_ok().fisher_ratio(_ridge_scaled(ridge, self._exp))))

    def calinski_harabasz(self) -> float:
        """See :func:`calinski_harabasz`."""
        core, ids, _ = self._ready()
        _check_n_labels(len(ids), self.n_samples)
        return float(core.calinski_harabasz())

    def scatter_matrices(self) -> ScatterMatrices:
        """See :func:`scatter_matrices`; S_T here is S_W + S_B (no separate pass over the data)."""
        core, ids, order = self._ready(need_second=True)
        self._classes_ok()
        s = _scatter_from(core, ids, None, self._exp)
        return ScatterMatrices(
            within=s.within,
            between=s.between,
            total=s.total,
            sigma_within=s.sigma_within,
            sigma_between=s.sigma_between,
            means=s.means[order],
            counts=s.counts[order],
            classes=ids[order],
        )
