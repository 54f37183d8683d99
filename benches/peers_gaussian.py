"""numpy peers that ``bench_gaussian.py`` times against ``repcompress.gaussian_channel_mi``.

Both compute what ``method="all"`` computes (paired Monte Carlo I(X;Z) with its standard error,
the KL and Bhattacharyya pairwise bounds, the maximum-entropy bound) from the same means,
variances and draws, in float64, streaming over blocks of rows so that N = 5000 fits in memory:

- ``straightforward``: the formulas of docs/spec.md §3.6–§3.8 broadcast over (row, column, coordinate) blocks,
  reduced with ``scipy.special.logsumexp`` — what one writes first.
- ``matrix_product``: log-densities and KL divergences as matrix products (BLAS) of
  [z², z] with [1/v, −2μ/v]; with one shared variance vector the Bhattacharyya distance is KL/4
  from the same product, otherwise (per-sample variances) it is not separable and is broadcast.
"""

import math

import numpy as np
from scipy.special import logsumexp

BLOCK_ELEMENTS = 1 << 24  # values per broadcast (rows, N, d) block: 128 MB of float64


def _rows(n, d):
    return max(1, BLOCK_ELEMENTS // (n * d))


def _paired(own, lse, n):
    terms = own - lse + math.log(n)
    return float(terms.mean()), float(terms.std(ddof=1) / math.sqrt(terms.size))


def _maxent(means, variances):
    centred = means - means.mean(axis=0)
    cov = centred.T @ centred / len(means) + np.diag(variances.mean(axis=0))
    sign, logdet = np.linalg.slogdet(cov)
    return math.inf if sign <= 0 else 0.5 * (logdet - np.log(variances).sum(axis=1).mean())


def straightforward(means, variances, draws):
    """``variances``: N × d (shared noise broadcast); ``draws``: N × d standard normals (one draw)."""
    n, d = means.shape
    z = means + np.sqrt(variances) * draws
    log_v = np.log(variances)
    rows = _rows(n, d)
    lse, kl_lse, bd_lse = np.empty(n), np.empty(n), np.empty(n)
    for a in range(0, n, rows):
        b = min(n, a + rows)
        diff = z[a:b, None, :] - means[None, :, :]
        logp = -0.5 * (diff**2 / variances[None] + log_v[None]).sum(axis=2)
        lse[a:b] = logsumexp(logp, axis=1)
        vi, vj = variances[a:b, None, :], variances[None, :, :]
        dmu = means[a:b, None, :] - means[None, :, :]
        kl = 0.5 * (np.log(vj / vi) + vi / vj + dmu**2 / vj - 1).sum(axis=2)
        kl_lse[a:b] = logsumexp(-kl, axis=1)
        s = vi + vj
        bd = (dmu**2 / (4 * s) + 0.5 * np.log(s / (2 * np.sqrt(vi * vj)))).sum(axis=2)
        bd_lse[a:b] = logsumexp(-bd, axis=1)
    own = -0.5 * (draws**2 + log_v).sum(axis=1)
    mi, stderr = _paired(own, lse, n)
    return {
        "mi": mi,
        "stderr": stderr,
        "upper": float(np.mean(math.log(n) - kl_lse)),
        "lower": float(np.mean(math.log(n) - bd_lse)),
        "maxent_upper": _maxent(means, variances),
    }


def matrix_product(means, variances, draws, shared=False):
    """Same result through BLAS matrix products; ``shared=True`` when every row of ``variances``
    is the same (additive noise), which makes the Bhattacharyya distance KL/4."""
    n, d = means.shape
    means = means - means.mean(axis=0)  # the result does not depend on it; limits cancellation
    z = means + np.sqrt(variances) * draws
    log_v = np.log(variances)
    w = 1.0 / variances
    cols = np.hstack([w, -2.0 * means * w])  # N × 2d
    quad = (means**2 * w).sum(axis=1)
    log_det = log_v.sum(axis=1)
    q_mc = np.hstack([z**2, z])
    q_kl = np.hstack([variances + means**2, means])
    rows = max(1, (1 << 22) // n)
    lse, kl_lse, bd_lse = np.empty(n), np.empty(n), np.empty(n)
    for a in range(0, n, rows):
        b = min(n, a + rows)
        logp = -0.5 * np.maximum(q_mc[a:b] @ cols.T + quad, 0.0) - 0.5 * log_det
        idx = np.arange(a, b)
        logp[idx - a, idx] = -0.5 * ((draws[a:b] ** 2).sum(axis=1) + log_det[a:b])
        lse[a:b] = logsumexp(logp, axis=1)
        kl = np.maximum(0.5 * (q_kl[a:b] @ cols.T + quad + log_det - log_det[a:b, None] - d), 0.0)
        kl[idx - a, idx] = 0.0
        kl_lse[a:b] = logsumexp(-kl, axis=1)
        if shared:
            bd_lse[a:b] = logsumexp(-0.25 * kl, axis=1)
    if not shared:
        brow = _rows(n, d)
        for a in range(0, n, brow):
            b = min(n, a + brow)
            vi, vj = variances[a:b, None, :], variances[None, :, :]
            s = vi + vj
            dmu = means[a:b, None, :] - means[None, :, :]
            bd = (dmu**2 / (4 * s) + 0.5 * np.log(s / (2 * np.sqrt(vi * vj)))).sum(axis=2)
            bd_lse[a:b] = logsumexp(-bd, axis=1)
    own = -0.5 * ((draws**2).sum(axis=1) + log_det)
    mi, stderr = _paired(own, lse, n)
    return {
        "mi": mi,
        "stderr": stderr,
        "upper": float(np.mean(math.log(n) - kl_lse)),
        "lower": float(np.mean(math.log(n) - bd_lse)),
        "maxent_upper": _maxent(means, variances),
    }


def full_covariance(means, variances, w, draws):
    """The numpy peer of ``gaussian_channel_mi(..., transform=w)`` for a W (r × d) of full row rank:
    Z = W·T, components N(W μ_i, C_i = W diag(v_i) Wᵀ), everything in Z's r coordinates with batched
    numpy linear algebra over blocks of rows: Cholesky factors and their inverses per sample,
    log-densities ½‖L_j⁻¹(z − m_j)‖², KL with tr(C_j⁻¹ C_i) as one matrix product, Bhattacharyya
    with a batched Cholesky of (C_i + C_j)/2 per pair. ``draws``: N × d standard normals of T (one
    draw), z_i = W(μ_i + √v_i ⊙ ε_i). Returns mi, stderr, upper, lower, maxent_upper."""
    n, _ = means.shape
    r = w.shape[0]
    m = means @ w.T
    covs = np.einsum("ak,ik,bk->iab", w, variances, w)
    chol = np.linalg.cholesky(covs)
    inv = np.linalg.inv(chol)
    logdet = 2 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    z = (means + np.sqrt(variances) * draws) @ w.T
    rows = max(1, BLOCK_ELEMENTS // (n * r * r))
    own = np.empty(n)
    lse = np.empty(n)
    kl_lse = np.empty(n)
    bd_lse = np.empty(n)
    precision = np.einsum("jca,jcb->jab", inv, inv).reshape(n, r * r)
    traces = covs.reshape(n, r * r)
    for a in range(0, n, rows):
        b = min(n, a + rows)
        delta = z[a:b, None, :] - m[None, :, :]
        y = np.einsum("jab,ijb->ija", inv, delta)
        logq = -0.5 * ((y**2).sum(axis=2) + logdet[None, :])
        own[a:b] = logq[np.arange(b - a), np.arange(a, b)]
        lse[a:b] = logsumexp(logq, axis=1)
        dm = m[a:b, None, :] - m[None, :, :]
        quad = (np.einsum("jab,ijb->ija", inv, dm) ** 2).sum(axis=2)
        kl = 0.5 * (traces[a:b] @ precision.T + quad - r + logdet[None, :] - logdet[a:b, None])
        kl_lse[a:b] = logsumexp(-np.maximum(kl, 0.0), axis=1)
        mean_chol = np.linalg.cholesky(0.5 * (covs[a:b, None] + covs[None, :]))
        yb = np.linalg.solve(mean_chol, dm[..., None])[..., 0]
        half_logdet = np.log(np.diagonal(mean_chol, axis1=2, axis2=3)).sum(axis=2)
        bd = 0.125 * (yb**2).sum(axis=2) + half_logdet - 0.25 * (logdet[a:b, None] + logdet[None, :])
        bd_lse[a:b] = logsumexp(-np.maximum(bd, 0.0), axis=1)
    mi, stderr = _paired(own, lse, n)
    centred = m - m.mean(axis=0)
    sign, total_logdet = np.linalg.slogdet(covs.mean(axis=0) + centred.T @ centred / n)
    return {
        "mi": mi,
        "stderr": stderr,
        "upper": float(np.mean(math.log(n) - kl_lse)),
        "lower": float(np.mean(math.log(n) - bd_lse)),
        "maxent_upper": math.inf if sign <= 0 else 0.5 * (total_logdet - logdet.mean()),
    }
