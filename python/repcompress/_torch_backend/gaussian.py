"""The Gaussian channel of docs/spec.md §3 in plain torch (§8.3): the same estimates as the Rust core
(rust/info/gaussian), on whatever device the tensors lie.

Z | X = x_i ~ N(μ_i, diag v_i), X uniform over the N rows. Everything quadratic streams over blocks
of rows: a block fills a rows × N matrix of log-densities (or of minus the pairwise divergences),
reduced row by row to log-sum-exps over all columns and over the row's own class (a mask on the
class codes; the Rust core sorts by class instead). Memory O(rows · N) besides the O(N d) inputs and
the O(M N d) draws; rows are chosen so that one block holds about :data:`BLOCK_VALUES` numbers.

As in the core (§3.11): log-densities and KL divergences use the matrix-product form on centred
means, log N(z; μ_j, v_j) = −½[Σ_k z_k²/v_jk − 2 Σ_k z_k μ_jk/v_jk + Σ_k μ_jk²/v_jk + Σ_k log v_jk] + c,
with one shared variance vector whitened away; where its rounding error bound
g (3 B_j + 2 Q̂⁺) (g = 2γ_m/(1 − 4γ_m), γ_m = m u/(1 − m u), Higham 2002 §3.1) can exceed 10⁻¹¹ nats
on an entry that can lie within 40 + log N of the row's own term, that entry is recomputed in the
difference form Σ_k ((μ_ik − μ_jk) + √v_ik ε_k)²/v_jk. The Bhattacharyya distance with per-sample
variances is a direct blocked loop, BD_ij = Σ_k [(μ_ik − μ_jk)²/(4 s_k) + ½ log s_k] − ¼(L_i + L_j)
− (d/2) log 2, s = v_i + v_j, L = Σ_k log v. All in float64; the sums run in torch's order, not the
core's, so results agree with it to rounding (≤ 1e-10 relative, tested), not bit for bit.

References: Kolchinsky & Tracey, Entropy 19 (2017) (pairwise bounds); Goldfeld et al., ICML 2019
(the Monte Carlo estimate); Higham, Accuracy and Stability of Numerical Algorithms (2002).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from . import require_torch

__all__ = ["BLOCK_VALUES", "ChannelRaw", "EstimateRaw", "channel_mi", "linear_channel_mi"]

LN_2PI_E = 2.8378770664093455  # ln(2πe)
# Largest error of a log-density or divergence entry (nats) for which the product form is kept.
TOLERANCE = 1e-11
# Numbers in one rows × N block (and in one chunk of the Bhattacharyya loop's rows × cols × d
# terms): 2^22 float64 values are 32 MiB. Tests set it tiny to check that blocks do not matter.
BLOCK_VALUES = 1 << 22


@dataclass
class EstimateRaw:
    """One quantity in nats, the shape of the core's ``ChannelEstimate``."""

    mi: float | None = None
    stderr: float | None = None
    kl: float | None = None
    bd: float | None = None
    maxent: float | None = None
    ceiling: float = 0.0


@dataclass
class ChannelRaw:
    """The shape of the core's result: what :func:`repcompress.gaussian_channel_mi` assembles."""

    h_z_given_x: float
    total: EstimateRaw
    given_labels: EstimateRaw | None
    labels_mi: float | None
    labels_stderr: float | None


def rounding_factor(m: int) -> float:
    """g = 2γ_m/(1 − 4γ_m), γ_m = m u/(1 − m u), u = 2⁻⁵³: the error factor of m rounded operations."""
    mu = m * (2.0**-53)
    gamma = mu / (1.0 - mu)
    return 2.0 * gamma / (1.0 - 4.0 * gamma)


def _rows(n: int, width: int = 1) -> int:
    """Rows per block so that rows × n × width ≈ BLOCK_VALUES (at least 1)."""
    return max(1, BLOCK_VALUES // max(1, n * width))


def _lse(torch: Any, x: Any, same: Any | None) -> tuple[Any, Any | None]:
    """Row log-sum-exps of x over all columns and, with ``same`` (rows × N booleans), over the row's
    own class (torch.logsumexp subtracts the row maximum first)."""
    all_ = torch.logsumexp(x, dim=1)
    cls = None if same is None else torch.logsumexp(x.masked_fill(~same, -math.inf), dim=1)
    return all_, cls


def _mean_sd(torch: Any, t: Any) -> tuple[float, float]:
    """The mean of t and its standard error sd(t; ddof=1)/√len (0 for one term), as the core."""
    n = t.numel()
    mean = t.sum() / n
    ss = ((t - mean) ** 2).sum()
    stderr = math.sqrt(float(ss) / (n - 1)) / math.sqrt(n) if n > 1 else 0.0
    return float(mean), stderr


class _OnlineLse:
    """Row log-sum-exps accumulated over tiles of columns: per row the running maximum m and
    Σ exp(x − m) (rescaled when m grows), over all columns and, optionally, over the row's class."""

    def __init__(self, torch: Any, n: int, dtype: Any, device: Any, *, classes: bool) -> None:
        self.torch = torch
        self.parts = [self._empty(n, dtype, device)] + ([self._empty(n, dtype, device)] if classes else [])

    def _empty(self, n: int, dtype: Any, device: Any) -> list[Any]:
        t = self.torch
        return [t.full((n,), -math.inf, dtype=dtype, device=device), t.zeros(n, dtype=dtype, device=device)]

    def add(self, r0: int, r1: int, tile: Any, same: Any | None) -> None:
        """Rows r0..r1 gain the columns of ``tile`` (rows × cols); the class part only those of
        ``same``."""
        torch = self.torch
        tiles = (tile,) if same is None else (tile, tile.masked_fill(~same, -math.inf))
        for part, x in zip(self.parts, tiles, strict=True):
            m, total = part[0][r0:r1], part[1][r0:r1]
            new = torch.maximum(m, x.max(dim=1).values)
            # A row with no column yet (m = −inf) and none in this tile keeps m = −inf, sum 0.
            safe = torch.where(torch.isinf(new), torch.zeros_like(new), new)
            total = total * (m - safe).exp() + (x - safe[:, None]).exp().sum(dim=1)
            part[0][r0:r1], part[1][r0:r1] = new, total

    def result(self) -> tuple[Any, Any | None]:
        # Every row has its own column (D_ii = 0) in both parts, so m is finite here.
        out = [m + total.log() for m, total in self.parts]
        return out[0], (out[1] if len(out) > 1 else None)


class _Channel:
    """Centred (shared noise: whitened) means and what the kernels share."""

    def __init__(self, torch: Any, mu: Any, v: Any, shared: bool, codes: Any | None) -> None:
        self.torch = torch
        n, d = mu.shape
        self.n, self.d = n, d
        self.shared = shared
        self.codes = codes
        mu = mu - mu.sum(dim=0) / n
        if shared:
            self.mu = mu * (1.0 / v[0].sqrt())
            self.var = None
            self.log_det = torch.zeros(n, dtype=mu.dtype, device=mu.device)
            self.shared_log_det = float(v[0].log().sum())
            self.norms = (self.mu * self.mu).sum(dim=1)
            self.g = rounding_factor(d + 8)
        else:
            self.mu = mu
            self.var = v
            self.log_det = v.log().sum(dim=1)
            self.w = 1.0 / v
            # Column features [w_j, −2 μ_j w_j] and B_j = Σ_k μ_jk² w_jk.
            self.cols = torch.cat([self.w, -2.0 * mu * self.w], dim=1)
            self.quad = (mu * mu * self.w).sum(dim=1)
            self.g = rounding_factor(2 * d + 8)
            cancel = 1.5 * self.g * self.quad
            self.prone = cancel > TOLERANCE
            self.cancel = cancel.masked_fill(~self.prone, -math.inf)
            self.any_prone = bool(self.prone.any())
        self.relevance = 40.0 + math.log(n)
        self.class_log_n = None
        if codes is not None:
            counts = torch.bincount(codes).to(mu.dtype)
            self.class_log_n = counts.log()[codes]

    def same(self, rows: Any) -> Any | None:
        """rows × N: whether column j is in the class of each row's sample."""
        return None if self.codes is None else self.codes[rows][:, None] == self.codes[None, :]

    def _recompute(self, hits: Any, value: Any) -> Any:
        """Runs ``value(r, j)`` over the hit (row, column) pairs in chunks of BLOCK_VALUES numbers."""
        torch = self.torch
        step = max(1, BLOCK_VALUES // self.d)
        parts = [value(hits[a : a + step, 0], hits[a : a + step, 1]) for a in range(0, hits.shape[0], step)]
        return torch.cat(parts) if parts else torch.zeros(0, dtype=self.mu.dtype, device=self.mu.device)

    # -- Monte Carlo (§3.6) --

    def mc(self, draws: Any, n_draws: int) -> tuple[Any, Any, Any | None]:
        """Per draw row r = m·N + i: the own term log p_i(z_r) (constants dropped) and the row's
        log-sum-exps over all components and over its class."""
        torch = self.torch
        n = self.n
        n_rows = n * n_draws
        own_all = torch.empty(n_rows, dtype=self.mu.dtype, device=self.mu.device)
        lse_all = torch.empty_like(own_all)
        lse_cls = None if self.codes is None else torch.empty_like(own_all)
        step = _rows(n)
        for r0 in range(0, n_rows, step):
            r1 = min(n_rows, r0 + step)
            rows = torch.arange(r0, r1, device=self.mu.device)
            i = rows % n
            eps = draws[r0:r1]
            buf, own = self._mc_block(i, eps)
            buf[torch.arange(r1 - r0, device=buf.device), i] = own
            a, c = _lse(torch, buf, self.same(i))
            own_all[r0:r1], lse_all[r0:r1] = own, a
            if lse_cls is not None:
                lse_cls[r0:r1] = c
        return own_all, lse_all, lse_cls

    def _mc_block(self, i: Any, eps: Any) -> tuple[Any, Any]:
        torch = self.torch
        mu_i = self.mu[i]
        if self.shared:
            own = -0.5 * (eps * eps).sum(dim=1)
            z = mu_i + eps
            zn = (z * z).sum(dim=1)
            buf = -0.5 * (-2.0 * (z @ self.mu.T) + zn[:, None] + self.norms[None, :]).clamp_min(0.0)
            err = 0.5 * self.g * (zn[:, None] + self.norms[None, :])
            hit = (err > TOLERANCE) & (buf + err >= (own - self.relevance)[:, None])
            hit[torch.arange(len(i), device=hit.device), i] = False
            hits = torch.nonzero(hit)
            if hits.numel():

                def diff(r: Any, j: Any) -> Any:
                    dz = (mu_i[r] - self.mu[j]) + eps[r]
                    return -0.5 * (dz * dz).sum(dim=1)

                buf[hits[:, 0], hits[:, 1]] = self._recompute(hits, diff)
            return buf, own
        assert self.var is not None
        v_i = self.var[i]
        own = -0.5 * ((eps * eps).sum(dim=1) + self.log_det[i])
        z = mu_i + v_i.sqrt() * eps
        q = torch.cat([z * z, z], dim=1)
        buf = -0.5 * ((q @ self.cols.T + self.quad[None, :]).clamp_min(0.0) + self.log_det[None, :])
        if self.any_prone:
            lj = self.log_det[None, :]
            err = self.cancel[None, :] + self.g * (-2.0 * buf - lj).clamp_min(0.0)
            hit = self.prone[None, :] & (buf + err >= (own - self.relevance)[:, None])
            hit[torch.arange(len(i), device=hit.device), i] = False
            hits = torch.nonzero(hit)
            if hits.numel():
                noise = v_i.sqrt() * eps

                def diff(r: Any, j: Any) -> Any:
                    dz = (mu_i[r] - self.mu[j]) + noise[r]
                    return -0.5 * ((dz * dz * self.w[j]).sum(dim=1) + self.log_det[j])

                buf[hits[:, 0], hits[:, 1]] = self._recompute(hits, diff)
        return buf, own

    # -- Pairwise bounds (§3.7) --

    def pairwise(self) -> tuple[tuple[Any, Any | None], tuple[Any, Any | None]]:
        """Row log-sum-exps of −KL and of −BD (over all, over the class)."""
        torch = self.torch
        n = self.n
        dev = self.mu.device
        out = [torch.empty(n, dtype=self.mu.dtype, device=dev) for _ in range(2)]
        cls = None if self.codes is None else [torch.empty(n, dtype=self.mu.dtype, device=dev) for _ in range(2)]
        step = _rows(n)
        for r0 in range(0, n, step):
            r1 = min(n, r0 + step)
            i = torch.arange(r0, r1, device=dev)
            same = self.same(i)
            pairs: list[tuple[Any, int]]
            if self.shared:
                x = self._distance_block(i)
                pairs = [(0.5 * x, 0), (0.125 * x, 1)]
            else:
                pairs = [(self._kl_block(i), 0)]
            for x, at in pairs:
                a, c = _lse(torch, x, same)
                out[at][r0:r1] = a
                if cls is not None:
                    cls[at][r0:r1] = c
        if not self.shared:
            bd_all, bd_cls = self._bd_rows()
            out[1] = bd_all
            if cls is not None:
                cls[1] = bd_cls
        kl_cls = None if cls is None else cls[0]
        bd_cls = None if cls is None else cls[1]
        return (out[0], kl_cls), (out[1], bd_cls)

    def _bd_rows(self) -> tuple[Any, Any | None]:
        """Row log-sum-exps of −BD with per-sample variances. BD is symmetric, so each tile (I, J),
        J ≥ I, of square blocks of samples is computed once and feeds both its rows (over the
        columns J) and, transposed, the rows of J (over the columns I): half the elementwise work
        of the direct loop. The loop is elementwise (rows × cols × d terms, not a matrix product),
        bound by memory traffic and kernel launches on a GPU: tiles of about 4·BLOCK_VALUES terms
        (128 MiB per temporary at the default), two temporaries updated in place. The rows'
        log-sum-exps are accumulated online (running maximum and sum of exponentials below it),
        over all columns and over the row's class."""
        torch = self.torch
        n, d = self.n, self.d
        assert self.var is not None
        dev, dtype = self.mu.device, self.mu.dtype
        side = max(1, math.isqrt(max(1, 4 * BLOCK_VALUES // d)))
        acc = _OnlineLse(torch, n, dtype, dev, classes=self.codes is not None)
        half_d_ln2 = 0.5 * d * math.log(2.0)
        for a0 in range(0, n, side):
            a1 = min(n, a0 + side)
            for b0 in range(a0, n, side):
                b1 = min(n, b0 + side)
                s = self.var[a0:a1, None, :] + self.var[None, b0:b1, :]
                dm = self.mu[a0:a1, None, :] - self.mu[None, b0:b1, :]
                quad = dm.square_().div_(s).sum(dim=2)
                bd = 0.25 * quad + 0.5 * s.log_().sum(dim=2)
                bd = bd - 0.25 * (self.log_det[a0:a1, None] + self.log_det[None, b0:b1]) - half_d_ln2
                tile = -bd.clamp_min(0.0)
                if a0 == b0:
                    tile.fill_diagonal_(0.0)
                same = None if self.codes is None else self.codes[a0:a1, None] == self.codes[None, b0:b1]
                acc.add(a0, a1, tile, same)
                if b0 != a0:
                    acc.add(b0, b1, tile.T, None if same is None else same.T)
        return acc.result()

    def _distance_block(self, i: Any) -> Any:
        """−‖μ_i − μ_j‖² (whitened), the product form fixed where it matters (§3.11)."""
        torch = self.torch
        ni = self.norms[i]
        x = -(-2.0 * (self.mu[i] @ self.mu.T) + ni[:, None] + self.norms[None, :]).clamp_min(0.0)
        ar = torch.arange(len(i), device=x.device)
        x[ar, i] = 0.0
        err = self.g * (ni[:, None] + self.norms[None, :])
        hit = (0.5 * err > TOLERANCE) & (0.125 * (-x - err) <= self.relevance)
        hit[ar, i] = False
        hits = torch.nonzero(hit)
        if hits.numel():
            mu_i = self.mu[i]

            def diff(r: Any, j: Any) -> Any:
                dm = mu_i[r] - self.mu[j]
                return -(dm * dm).sum(dim=1)

            x[hits[:, 0], hits[:, 1]] = self._recompute(hits, diff)
        return x

    def _kl_block(self, i: Any) -> Any:
        """−KL(i‖j) = −max(0, ½[Σ (v_i + μ_i²) w_j − 2 Σ μ_i μ_j w_j + B_j + L_j − L_i − d])."""
        torch = self.torch
        assert self.var is not None
        mu_i, v_i = self.mu[i], self.var[i]
        li = self.log_det[i] + self.d
        q = torch.cat([v_i + mu_i * mu_i, mu_i], dim=1)
        x = -(0.5 * (q @ self.cols.T + self.quad[None, :] + self.log_det[None, :] - li[:, None])).clamp_min(0.0)
        ar = torch.arange(len(i), device=x.device)
        x[ar, i] = 0.0
        if self.any_prone:
            err = self.cancel[None, :] + self.g * (li[:, None] - 2.0 * x - self.log_det[None, :]).clamp_min(0.0)
            hit = self.prone[None, :] & (x + err >= -self.relevance)
            hit[ar, i] = False
            hits = torch.nonzero(hit)
            if hits.numel():

                def diff(r: Any, j: Any) -> Any:
                    dm = mu_i[r] - self.mu[j]
                    s = ((v_i[r] + dm * dm) * self.w[j]).sum(dim=1)
                    return -(0.5 * (s + self.log_det[j] - li[r])).clamp_min(0.0)

                x[hits[:, 0], hits[:, 1]] = self._recompute(hits, diff)
        return x

    # -- Maximum-entropy bound (§3.8) --

    def maxent(self, members: Any | None) -> float:
        """½ log det Cov Z − mean ½ L_i over the given samples (all when None); +inf when the
        covariance is not numerically positive definite."""
        torch = self.torch
        mu = self.mu if members is None else self.mu[members]
        m, d = mu.shape
        if self.var is None:
            mean_var = torch.ones(d, dtype=mu.dtype, device=mu.device)
            mean_l = 0.0
        else:
            var = self.var if members is None else self.var[members]
            mean_var = var.sum(dim=0) / m
            ld = self.log_det if members is None else self.log_det[members]
            mean_l = float(ld.sum()) / m
        x = (mu - mu.sum(dim=0) / m) * (1.0 / mean_var.sqrt())
        # S Cov S = I + XᵀX/m, factored on the smaller side (Sylvester: det(I + XᵀX/m) = det(I + XXᵀ/m)).
        gram = (x @ x.T if d > m else x.T @ x) * (1.0 / m)
        gram.diagonal().add_(1.0)
        chol, info = torch.linalg.cholesky_ex(gram)
        if int(info) != 0:
            return math.inf
        log_det = float(2.0 * chol.diagonal().log().sum())
        if not math.isfinite(log_det):
            return math.inf
        return 0.5 * (log_det + float(mean_var.log().sum()) - mean_l)


def channel_mi(
    mu: Any, v: Any, shared: bool, draws: Any | None, n_draws: int, bounds: bool, codes: Any | None
) -> ChannelRaw:
    """The diagonal channel: ``mu`` (N, d) and ``v`` ((1, d) shared or (N, d), all > 0) float64
    tensors on one device, ``draws`` the (n_draws·N, d) standard normals there (or None),
    ``codes`` class codes 0 … C − 1 there (int64) or None. Everything in nats."""
    torch = require_torch()
    ch = _Channel(torch, mu, v, shared, codes)
    n, d = ch.n, ch.d
    mean_log_det = ch.shared_log_det if shared else float(ch.log_det.sum()) / n
    h = 0.5 * (d * LN_2PI_E + mean_log_det)
    return _assemble(torch, ch, h, draws, n_draws, bounds)


def _assemble(torch: Any, ch: Any, h: float, draws: Any | None, n_draws: int, bounds: bool) -> ChannelRaw:
    """The estimates from the row reductions of ``ch`` (the diagonal or the full channel)."""
    n = ch.n
    log_n = math.log(n)
    total = EstimateRaw(ceiling=log_n)
    given = None
    if ch.codes is not None:
        given = EstimateRaw(ceiling=float(ch.class_log_n.sum()) / n)
    labels_mi = labels_stderr = None
    if draws is not None:
        own, lse_all, lse_cls = ch.mc(draws, n_draws)
        t_all = own - lse_all + log_n
        total.mi, total.stderr = _mean_sd(torch, t_all)
        if given is not None:
            t_cls = own - lse_cls + ch.class_log_n.repeat(n_draws)
            given.mi, given.stderr = _mean_sd(torch, t_cls)
            labels_mi, labels_stderr = _mean_sd(torch, t_all - t_cls)
    if bounds:
        (kl_all, kl_cls), (bd_all, bd_cls) = ch.pairwise()
        total.kl = float((log_n - kl_all).sum()) / n
        total.bd = float((log_n - bd_all).sum()) / n
        total.maxent = ch.maxent(None)
        if given is not None:
            given.kl = float((ch.class_log_n - kl_cls).sum()) / n
            given.bd = float((ch.class_log_n - bd_cls).sum()) / n
            counts = torch.bincount(ch.codes).tolist()
            given.maxent = sum(c / n * ch.maxent(torch.nonzero(ch.codes == y)[:, 0]) for y, c in enumerate(counts))
    return ChannelRaw(h, total, given, labels_mi, labels_stderr)


def linear_channel_mi(
    mu: Any, v: Any, shared: bool, a: Any, draws: Any | None, n_draws: int, bounds: bool, codes: Any | None
) -> ChannelRaw:
    """Z' = A·T (docs/spec.md §3.14) with A (ρ × d) of full row rank: whitened by the mean noise
    covariance Σ̄ = A diag(v̄) Aᵀ = L̄ L̄ᵀ, B = L̄⁻¹ A. Shared noise is then the diagonal channel with
    unit variances, means B μ_i and draws B(√v ⊙ ε); per-sample noise runs the full-covariance
    kernels of :class:`_FullChannel`. h(Z'|X) gains log det L̄."""
    torch = require_torch()
    n = mu.shape[0]
    mean_var = v[0] if shared else v.sum(dim=0) / n
    cov = (a * mean_var[None, :]) @ a.T
    chol, info = torch.linalg.cholesky_ex(cov)
    if int(info) != 0:
        raise ValueError(
            "transform: A·diag(v̄)·Aᵀ (the mean noise covariance after the transform) is not numerically positive "
            "definite: the transform's rows are nearly dependent"
        )
    b = torch.linalg.solve_triangular(chol, a, upper=False)
    log_det_white = float(chol.diagonal().log().sum())
    if shared:
        m = mu @ b.T
        u = None if draws is None else (draws * v[0].sqrt()) @ b.T
        ones = torch.ones(1, b.shape[0], dtype=mu.dtype, device=mu.device)
        raw = channel_mi(m, ones, True, u, n_draws, bounds, codes)
        raw.h_z_given_x += log_det_white
        return raw
    full = _FullChannel(torch, mu, v, b, codes)
    h = 0.5 * (full.rho * LN_2PI_E + float(full.log_det.sum()) / n) + log_det_white
    return _assemble(torch, full, h, draws, n_draws, bounds)


class _FullChannel:
    """Per-sample noise after the transform: components N(m_j, Σ_j), Σ_j = B diag(v_j) Bᵀ = L_j L_jᵀ,
    K_j = L_j⁻¹, everything in the difference form (§3.14):
    log q_j(z) = −½‖K_j(z − m_j)‖² − ½ log det Σ_j,
    KL(i‖j) = ½[‖K_j L_i‖²_F + ‖K_j Δ‖² − ρ + log det Σ_j − log det Σ_i],
    BD(i, j) = ⅛ Δᵀ Σ̄_ij⁻¹ Δ + ½ log det Σ̄_ij − ¼(log det Σ_i + log det Σ_j), Σ̄_ij = (Σ_i + Σ_j)/2."""

    def __init__(self, torch: Any, mu: Any, v: Any, b: Any, codes: Any | None) -> None:
        self.torch = torch
        n = mu.shape[0]
        self.n, self.rho = n, b.shape[0]
        self.b, self.v = b, v
        self.codes = codes
        m = mu @ b.T
        self.m = m - m.sum(dim=0) / n
        self.sigma = torch.einsum("rk,nk,ck->nrc", b, v, b)
        self.chol, info = torch.linalg.cholesky_ex(self.sigma)
        if bool((info != 0).any()):
            raise ValueError(
                "transform: a component covariance W·diag(v_i)·Wᵀ is not numerically positive definite "
                "(variances floored far below the transform's conditioning); raise min_variance"
            )
        eye = torch.eye(self.rho, dtype=mu.dtype, device=mu.device)
        self.inv = torch.linalg.solve_triangular(self.chol, eye.expand(n, -1, -1), upper=False)
        self.log_det = 2.0 * self.chol.diagonal(dim1=1, dim2=2).log().sum(dim=1)
        self.class_log_n = None
        if codes is not None:
            self.class_log_n = torch.bincount(codes).to(mu.dtype).log()[codes]

    def same(self, rows: Any) -> Any | None:
        return None if self.codes is None else self.codes[rows][:, None] == self.codes[None, :]

    def _steps(self, width: int) -> int:
        return _rows(self.n, width)

    def mc(self, draws: Any, n_draws: int) -> tuple[Any, Any, Any | None]:
        torch = self.torch
        n = self.n
        n_rows = n * n_draws
        dev = self.m.device
        own_all = torch.empty(n_rows, dtype=self.m.dtype, device=dev)
        lse_all = torch.empty_like(own_all)
        lse_cls = None if self.codes is None else torch.empty_like(own_all)
        step = self._steps(self.rho)
        for r0 in range(0, n_rows, step):
            r1 = min(n_rows, r0 + step)
            i = torch.arange(r0, r1, device=dev) % n
            u = (draws[r0:r1] * self.v[i].sqrt()) @ self.b.T
            z = self.m[i] + u
            diff = z[:, None, :] - self.m[None, :, :]
            y = torch.einsum("jab,rjb->rja", self.inv, diff)
            buf = -0.5 * ((y * y).sum(dim=2) + self.log_det[None, :])
            own_y = torch.einsum("rab,rb->ra", self.inv[i], u)
            own = -0.5 * ((own_y * own_y).sum(dim=1) + self.log_det[i])
            buf[torch.arange(r1 - r0, device=dev), i] = own
            a, c = _lse(torch, buf, self.same(i))
            own_all[r0:r1], lse_all[r0:r1] = own, a
            if lse_cls is not None:
                lse_cls[r0:r1] = c
        return own_all, lse_all, lse_cls

    def pairwise(self) -> tuple[tuple[Any, Any | None], tuple[Any, Any | None]]:
        torch = self.torch
        n, rho = self.n, self.rho
        dev = self.m.device
        out = [torch.empty(n, dtype=self.m.dtype, device=dev) for _ in range(2)]
        cls = None if self.codes is None else [torch.empty(n, dtype=self.m.dtype, device=dev) for _ in range(2)]
        step = self._steps(rho * rho)
        ld = self.log_det
        for r0 in range(0, n, step):
            r1 = min(n, r0 + step)
            i = torch.arange(r0, r1, device=dev)
            ar = torch.arange(r1 - r0, device=dev)
            delta = self.m[i][:, None, :] - self.m[None, :, :]
            kd = torch.einsum("jab,rjb->rja", self.inv, delta)
            kl_ = torch.einsum("jab,rbc->rjac", self.inv, self.chol[i])
            kl = 0.5 * ((kl_ * kl_).sum(dim=(2, 3)) + (kd * kd).sum(dim=2) - rho + ld[None, :] - ld[i][:, None])
            kl = -kl.clamp_min(0.0)
            kl[ar, i] = 0.0
            mean = 0.5 * (self.sigma[i][:, None, :, :] + self.sigma[None, :, :, :])
            lbar, info = torch.linalg.cholesky_ex(mean)
            if bool((info != 0).any()):
                raise ValueError(
                    "transform: a mean covariance (Σ_i + Σ_j)/2 is not numerically positive definite; raise "
                    "min_variance"
                )
            sol = torch.linalg.solve_triangular(lbar, delta[..., None], upper=False)[..., 0]
            log_det_mean = 2.0 * lbar.diagonal(dim1=2, dim2=3).log().sum(dim=2)
            bd = 0.125 * (sol * sol).sum(dim=2) + 0.5 * log_det_mean - 0.25 * (ld[i][:, None] + ld[None, :])
            bd = -bd.clamp_min(0.0)
            bd[ar, i] = 0.0
            same = self.same(i)
            for at, x in enumerate((kl, bd)):
                a, c = _lse(torch, x, same)
                out[at][r0:r1] = a
                if cls is not None:
                    cls[at][r0:r1] = c
        return (out[0], None if cls is None else cls[0]), (out[1], None if cls is None else cls[1])

    def maxent(self, members: Any | None) -> float:
        """½ log det Cov Z' − mean ½ log det Σ_i, Cov Z' = mean(Σ_i) + the covariance of the m_i."""
        torch = self.torch
        m = self.m if members is None else self.m[members]
        sigma = self.sigma if members is None else self.sigma[members]
        ld = self.log_det if members is None else self.log_det[members]
        k = m.shape[0]
        centred = m - m.sum(dim=0) / k
        cov = sigma.sum(dim=0) / k + centred.T @ centred / k
        chol, info = torch.linalg.cholesky_ex(cov)
        if int(info) != 0:
            return math.inf
        log_det = float(2.0 * chol.diagonal().log().sum())
        if not math.isfinite(log_det):
            return math.inf
        return 0.5 * (log_det - float(ld.sum()) / k)
