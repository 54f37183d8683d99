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
