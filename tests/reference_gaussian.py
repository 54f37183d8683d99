"""Slow, obviously-correct dense reference for the Gaussian-channel estimator (docs/spec.md §3).

Everything is built as full N × N (or NM × N) matrices by broadcasting the formulas of docs/spec.md §3
literally over (row, column, coordinate), in float64, and reduced with scipy's ``logsumexp``.
No centring, no matrix-product form, no blocking. O(N² d) memory: small inputs only.
Results are in nats, as a dict keyed by the quantity (``mi``, ``stderr``, ``kl``, ``bd``, ...).
"""

import math

import numpy as np
from scipy.special import logsumexp


def log_densities(z, means, variances):
    """log N(z_r; μ_j, diag v_j) for every row r of z and component j: shape (R, N)."""
    diff = z[:, None, :] - means[None, :, :]
    return -0.5 * (diff**2 / variances[None, :, :] + np.log(2 * math.pi * variances[None, :, :])).sum(axis=2)


def kl_matrix(means, variances):
    """KL(p_i ‖ p_j) for all pairs: shape (N, N)."""
    vi, vj = variances[:, None, :], variances[None, :, :]
    diff = means[:, None, :] - means[None, :, :]
    return 0.5 * (np.log(vj / vi) + vi / vj + diff**2 / vj - 1).sum(axis=2)


def bhattacharyya_matrix(means, variances):
    """Bhattacharyya distance between p_i and p_j for all pairs: shape (N, N)."""
    vi, vj = variances[:, None, :], variances[None, :, :]
    diff = means[:, None, :] - means[None, :, :]
    s = vi + vj
    return (diff**2 / (4 * s) + 0.5 * np.log(s / (2 * np.sqrt(vi * vj)))).sum(axis=2)


def pairwise_estimate(divergence, groups):
    """−(1/N) Σ_i log (1/|g_i|) Σ_{j∈g_i} exp(−D_ij), g_i the group of i (all samples: one group)."""
    n = divergence.shape[0]
    total = 0.0
    for i in range(n):
        members = groups == groups[i]
        total += math.log(members.sum()) - logsumexp(-divergence[i, members])
    return total / n


def maxent_bound(means, variances):
    """½ log det(2πe Cov Z) − h(Z|X) with Cov Z = (1/N) Σ (diag v_i + μ_i μ_iᵀ) − μ̄ μ̄ᵀ."""
    d = means.shape[1]
    mean = means.mean(axis=0)
    second = (means[:, :, None] * means[:, None, :]).mean(axis=0) + np.diag(variances.mean(axis=0))
    cov = second - np.outer(mean, mean)
    sign, logdet = np.linalg.slogdet(cov)
    if sign <= 0:
        return math.inf
    h_joint = 0.5 * (d * math.log(2 * math.pi * math.e) + logdet)
    h_cond = np.mean(0.5 * np.log(2 * math.pi * math.e * variances).sum(axis=1))
    return h_joint - h_cond


def mean_and_stderr(terms):
    terms = np.asarray(terms)
    stderr = terms.std(ddof=1) / math.sqrt(terms.size) if terms.size > 1 else 0.0
    return float(terms.mean()), float(stderr)


def gaussian_channel_mi(means, variances, draws, n_draws, labels=None):
    """docs/spec.md §3.5–§3.9 literally. ``variances`` is the full N × d array (broadcast shared noise before
    calling); ``draws`` the (n_draws·N) × d standard normals (row m·N + i for sample i) or None."""
    means = np.asarray(means, dtype=np.float64)
    variances = np.asarray(variances, dtype=np.float64)
    n = means.shape[0]
    groups = np.zeros(n, dtype=np.int64) if labels is None else np.asarray(labels)
    everyone = np.zeros(n, dtype=np.int64)
    out = {"h_z_given_x": float(np.mean(0.5 * np.log(2 * math.pi * math.e * variances).sum(axis=1)))}
    sizes = np.array([np.sum(groups == g) for g in groups])
    out["ceiling"] = math.log(n)
    if labels is not None:
        out["given_labels_ceiling"] = float(np.mean(np.log(sizes)))
    if draws is not None:
        sample = np.tile(np.arange(n), n_draws)
        z = means[sample] + np.sqrt(variances[sample]) * draws
        logp = log_densities(z, means, variances)  # (NM, N)
        own = logp[np.arange(n * n_draws), sample]
        t_all = own - (logsumexp(logp, axis=1) - math.log(n))
        out["mi"], out["stderr"] = mean_and_stderr(t_all)
        if labels is not None:
            same = groups[sample][:, None] == groups[None, :]
            masked = np.where(same, logp, -np.inf)
            t_cls = own - (logsumexp(masked, axis=1) - np.log(sizes[sample]))
            out["given_labels_mi"], out["given_labels_stderr"] = mean_and_stderr(t_cls)
            out["labels_mi"], out["labels_stderr"] = mean_and_stderr(t_all - t_cls)
    kl, bd = kl_matrix(means, variances), bhattacharyya_matrix(means, variances)
    out["kl"], out["bd"] = pairwise_estimate(kl, everyone), pairwise_estimate(bd, everyone)
    out["maxent"] = maxent_bound(means, variances)
    if labels is not None:
        out["given_labels_kl"] = pairwise_estimate(kl, groups)
        out["given_labels_bd"] = pairwise_estimate(bd, groups)
        out["given_labels_maxent"] = sum(
            np.mean(groups == g) * maxent_bound(means[groups == g], variances[groups == g]) for g in np.unique(groups)
        )
    return out
