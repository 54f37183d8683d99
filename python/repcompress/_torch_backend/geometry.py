"""Geometry of class clusters (docs/spec.md §4) in plain torch (§8.4): the kernels behind the
``device=`` path of :mod:`repcompress.geometry`, computing what the Rust core computes (§4.1–§4.11)
in float64 on the tensors' device.

Class statistics: counts n_c, means μ_c and M2_c = Σ_{i∈c} ‖h_i − μ_c‖² by corrected two-pass sums
(class sums / n_c, then the centred rows, whose residual sum r_c corrects μ_c += r_c/n_c and
M2_c −= ‖r_c‖²/n_c), as the core forms them. Pair quantities over classes (CDNV, NC2's cosines, nearest class means)
run in blocks of rows of classes, ‖μ_a − μ_b‖² in the difference form (coincident means give
exactly 0, hence +inf in the CDNV, as in the core). The silhouette streams over blocks of rows: a
block's distances to all N samples, √max(‖x‖² + ‖y‖² − 2 x·y, 0) on the centred samples (Rousseeuw
1987, as scikit-learn), are summed per class by one matrix product with the N × C class indicator,
so memory is O(block · N + N · C). Blocks hold about :data:`BLOCK_VALUES` numbers; results do not
depend on them beyond rounding.

References: Galanti, György & Hutter, ICLR 2022 (CDNV); Papyan, Han & Donoho, PNAS 117 (2020)
(neural collapse); Rousseeuw, J. Comput. Appl. Math. 20 (1987) (silhouette); Roy & Vetterli,
EUSIPCO 2007 (effective rank).
"""

from __future__ import annotations

import math
from typing import Any

from . import require_torch

__all__ = [
    "BLOCK_VALUES",
    "ClassStatsT",
    "cdnv",
    "cdnv_matrix",
    "effective_rank",
    "nc1",
    "nc2",
    "nc3",
    "nearest_class_mean",
    "scatter",
    "silhouette_samples",
    "trace_ratio",
]

# Numbers in one block of a blocked computation (2^22 float64 values: 32 MiB). Tests set it tiny.
BLOCK_VALUES = 1 << 22


def _rows(width: int) -> int:
    return max(1, BLOCK_VALUES // max(1, width))


class ClassStatsT:
    """Counts, means and M2 of the classes 0 … C − 1 of h (float64 tensors on h's device)."""

    def __init__(self, h: Any, codes: Any, n_classes: int) -> None:
        torch = require_torch()
        self.h, self.codes, self.k = h, codes, n_classes
        n, d = h.shape
        self.n, self.d = n, d
        self.counts = torch.bincount(codes, minlength=n_classes)
        size = self.counts[:, None].to(h.dtype)
        means = torch.zeros(n_classes, d, dtype=h.dtype, device=h.device).index_add_(0, codes, h) / size
        # Corrected two-pass sums (as the core): the residuals' sum folds the rounding of the first
        # pass back into the mean and M2, so that identical rows give their value exactly.
        m2 = torch.zeros(n_classes, dtype=h.dtype, device=h.device)
        rsum = torch.zeros_like(means)
        for r0 in range(0, n, _rows(d)):
            r1 = min(n, r0 + _rows(d))
            resid = h[r0:r1] - means[codes[r0:r1]]
            rsum.index_add_(0, codes[r0:r1], resid)
            m2.index_add_(0, codes[r0:r1], (resid * resid).sum(dim=1))
        self.means = means + rsum / size
        self.m2 = (m2 - (rsum * rsum).sum(dim=1) / size[:, 0]).clamp_min(0.0)

    def variances(self, ddof: int) -> Any:
        small = int(self.counts.min())
        if small <= ddof:
            raise ValueError(
                f"labels: a class has {small} sample(s); its variance with ddof={ddof} needs at least {ddof + 1}"
            )
        return self.m2 / (self.counts - ddof).to(self.m2.dtype)

    def centred_means(self) -> Any:
        """m_c = μ_c − μ_G, μ_G = Σ_c μ_c / C."""
        return self.means - (self.means / self.k).sum(dim=0)

    def grand_mean(self) -> Any:
        """μ = Σ_c (n_c / N) μ_c."""
        w = self.counts.to(self.means.dtype) / self.n
        return (self.means * w[:, None]).sum(dim=0)


def _pair_sq_dist(means: Any, a0: int, a1: int) -> Any:
    """‖μ_a − μ_b‖² for a in a0..a1 and every b, in the difference form."""
    diff = means[a0:a1, None, :] - means[None, :, :]
    return (diff * diff).sum(dim=2)


def cdnv_matrix(stats: ClassStatsT, ddof: int) -> Any:
    """C × C: (Var_a + Var_b)/(2‖μ_a − μ_b‖²), zero diagonal (§4.2)."""
    torch = require_torch()
    var = stats.variances(ddof)
    k = stats.k
    out = torch.empty(k, k, dtype=var.dtype, device=var.device)
    step = _rows(k * stats.d)
    for a0 in range(0, k, step):
        a1 = min(k, a0 + step)
        out[a0:a1] = (var[a0:a1, None] + var[None, :]) / (2.0 * _pair_sq_dist(stats.means, a0, a1))
    out.fill_diagonal_(0.0)
    return out


def cdnv(stats: ClassStatsT, ddof: int) -> float:
    """The mean of the pair values over c < c′, in blocks of rows of pairs (no C × C table)."""
    torch = require_torch()
    var = stats.variances(ddof)
    k = stats.k
    total = torch.zeros((), dtype=var.dtype, device=var.device)
    step = _rows(k * stats.d)
    cols = torch.arange(k, device=var.device)
    for a0 in range(0, k, step):
        a1 = min(k, a0 + step)
        values = (var[a0:a1, None] + var[None, :]) / (2.0 * _pair_sq_dist(stats.means, a0, a1))
        upper = cols[None, :] > torch.arange(a0, a1, device=var.device)[:, None]
        total = total + values[upper].sum()
    return float(total) / (k * (k - 1) // 2)


def nc1(stats: ClassStatsT) -> float:
    """Tr(Σ_W Σ_B⁺)/C = Σ_k u_kᵀ Σ_W u_k / s_k² over the kept directions of the thin SVD of the
    centred means (at most C − 1, s_k > max(d, C)·ε·s_max), Σ_W never formed (§4.4)."""
    torch = require_torch()
    m = stats.centred_means()
    _, s, vh = torch.linalg.svd(m, full_matrices=False)
    s_max = float(s[0]) if s.numel() else 0.0
    if math.isnan(s_max) or s_max <= 0.0:
        raise ValueError("h: all class means coincide: Σ_B = 0 and NC1 is undefined")
    tol = max(stats.d, stats.k) * 2.0**-52 * s_max
    keep = s[: stats.k - 1] > tol
    s2 = (s[: stats.k - 1][keep]) ** 2
    u = vh[: stats.k - 1][keep]
    quads = torch.zeros(u.shape[0], dtype=m.dtype, device=m.device)
    step = _rows(stats.d)
    for r0 in range(0, stats.n, step):
        r1 = min(stats.n, r0 + step)
        proj = (stats.h[r0:r1] - stats.means[stats.codes[r0:r1]]) @ u.T
        quads += (proj * proj).sum(dim=0)
    return float((quads / stats.n / s2).sum())


def nc2(stats: ClassStatsT) -> tuple[float, float, float]:
    """(equinorm, equiangular, max-angle) of the centred class means (§4.5), cosines over ordered
    pairs c ≠ c′ in blocks of rows; population standard deviations."""
    torch = require_torch()
    m = stats.centred_means()
    k = stats.k
    norms = (m * m).sum(dim=1).sqrt()
    mean_n = norms.mean()
    equinorm = float(((norms - mean_n) ** 2).mean().sqrt() / mean_n)
    shift = 1.0 / (k - 1.0)
    count = k * (k - 1)
    step = _rows(k)
    cols = torch.arange(k, device=m.device)

    def blocks() -> Any:
        for a0 in range(0, k, step):
            a1 = min(k, a0 + step)
            cos = (m[a0:a1] @ m.T) / (norms[a0:a1, None] * norms[None, :])
            off = cols[None, :] != torch.arange(a0, a1, device=m.device)[:, None]
            yield cos[off]

    total = sum_abs = 0.0
    for values in blocks():
        total += float(values.sum())
        sum_abs += float((values + shift).abs().sum())
    mean = total / count
    sq = sum(float(((values - mean) ** 2).sum()) for values in blocks())
    return equinorm, math.sqrt(sq / count), sum_abs / count


def nc3(stats: ClassStatsT, w: Any) -> float:
    """‖W̃/‖W̃‖_F − M/‖M‖_F‖²_F, W̃ the classifier rows of the present classes (§4.6)."""
    m = stats.centred_means()
    nw = float((w * w).sum().sqrt())
    if nw == 0.0:
        raise ValueError("weights: all zero: NC3 is undefined")
    nm = (m * m).sum().sqrt()
    return float(((w / nw - m / nm) ** 2).sum())


def nearest_class_mean(stats: ClassStatsT, h: Any) -> Any:
    """Index of the nearest class mean of every row (Euclidean, difference form; ties to the
    smaller index: torch.argmin returns the first minimum)."""
    torch = require_torch()
    out = torch.empty(h.shape[0], dtype=torch.int64, device=h.device)
    step = _rows(stats.k * stats.d)
    for r0 in range(0, h.shape[0], step):
        r1 = min(h.shape[0], r0 + step)
        diff = h[r0:r1, None, :] - stats.means[None, :, :]
        out[r0:r1] = (diff * diff).sum(dim=2).argmin(dim=1)
    return out


def trace_ratio(stats: ClassStatsT) -> float:
    """tr(S_W)/tr(S_B) = Σ_c M2_c / Σ_c n_c ‖μ_c − μ‖² (§4.7)."""
    mu = stats.grand_mean()
    diff = stats.means - mu
    between = float((stats.counts.to(diff.dtype) * (diff * diff).sum(dim=1)).sum())
    within = float(stats.m2.sum())
    if between == 0.0:
        return math.nan if within == 0.0 else math.inf
    return within / between


def scatter(stats: ClassStatsT) -> dict[str, Any]:
    """S_W, S_B, S_T (on its own), Σ_W = S_W/N, Σ_B = (1/C) Σ_c m_c m_cᵀ (§4.3), d × d tensors."""
    torch = require_torch()
    h, d = stats.h, stats.d
    within = torch.zeros(d, d, dtype=h.dtype, device=h.device)
    total = torch.zeros_like(within)
    centre = h.sum(dim=0) / stats.n
    step = _rows(d)
    for r0 in range(0, stats.n, step):
        r1 = min(stats.n, r0 + step)
        resid = h[r0:r1] - stats.means[stats.codes[r0:r1]]
        within += resid.T @ resid
        centred = h[r0:r1] - centre
        total += centred.T @ centred
    rows = (stats.means - stats.grand_mean()) * stats.counts.to(h.dtype).sqrt()[:, None]
    between = rows.T @ rows
    m = stats.centred_means()
    sym = [(x + x.T) / 2 for x in (within, between, total, m.T @ m / stats.k)]
    return {
        "within": sym[0],
        "between": sym[1],
        "total": sym[2],
        "sigma_within": sym[0] / stats.n,
        "sigma_between": sym[3],
    }


def silhouette_samples(h: Any, codes: Any, n_classes: int) -> Any:
    """s(i) = (b − a)/max(a, b) of every sample (§4.9); 0 in one-sample classes and where a = b = 0.
    Blocks of rows: distances to all samples (Gram form on the centred samples, self-distance 0),
    summed per class through the N × C indicator."""
    torch = require_torch()
    n, _ = h.shape
    x = h - h.sum(dim=0) / n
    norms = (x * x).sum(dim=1)
    onehot = torch.zeros(n, n_classes, dtype=h.dtype, device=h.device)
    onehot[torch.arange(n, device=h.device), codes] = 1.0
    sizes = onehot.sum(dim=0)
    out = torch.empty(n, dtype=h.dtype, device=h.device)
    step = _rows(n)
    for r0 in range(0, n, step):
        r1 = min(n, r0 + step)
        sq = norms[r0:r1, None] + norms[None, :] - 2.0 * (x[r0:r1] @ x.T)
        dist = sq.clamp_min_(0.0).sqrt_()
        ar = torch.arange(r1 - r0, device=h.device)
        dist[ar, ar + r0] = 0.0
        sums = dist @ onehot
        own = codes[r0:r1]
        own_size = sizes[own]
        a = sums[ar, own] / (own_size - 1.0)
        others = (sums / sizes[None, :]).scatter(1, own[:, None], math.inf)
        b = others.min(dim=1).values
        denom = torch.maximum(a, b)
        s = torch.where(denom > 0, (b - a) / denom, torch.zeros_like(a))
        out[r0:r1] = torch.where(own_size <= 1.0, torch.zeros_like(s), s)
    return out


def effective_rank(h: Any) -> float:
    """exp(−Σ p_k log p_k), p_k = σ_k/Σ σ, σ from the eigenvalues of the smaller Gram matrix (§4.11)."""
    torch = require_torch()
    n, d = h.shape
    gram = h.T @ h if d <= n else h @ h.T
    gram = (gram + gram.T) / 2
    s = torch.linalg.eigvalsh(gram).clamp_min(0.0).sqrt()
    total = float(s.sum())
    if math.isnan(total) or total <= 0.0:
        raise ValueError("h: all entries are 0: the effective rank is undefined")
    p = s[s > 0] / total
    return math.exp(float(-(p * p.log()).sum()))
