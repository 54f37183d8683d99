"""Slow, obviously-correct numpy references for the geometric metrics (docs/spec.md §4).

Each function follows its formula literally with explicit loops over classes and pairs; inputs
are converted to float64. Speed and memory do not matter here.
"""

import numpy as np


def classes_of(labels):
    """The distinct class ids present, ascending, and for each the boolean mask of its rows."""
    ids = np.unique(labels)
    return ids, [labels == c for c in ids]


def class_means(h, labels):
    h = np.asarray(h, dtype=np.float64)
    _, masks = classes_of(labels)
    return np.array([h[m].mean(axis=0) for m in masks])


def class_variances(h, labels, ddof=0):
    """Var_c = (1/(n_c - ddof)) sum_{i in c} ||h_i - mu_c||^2."""
    h = np.asarray(h, dtype=np.float64)
    out = []
    for m in classes_of(labels)[1]:
        x = h[m]
        mu = x.mean(axis=0)
        out.append(sum(float(np.dot(r - mu, r - mu)) for r in x) / (len(x) - ddof))
    return np.array(out)


def cdnv_pairs(h, labels, ddof=0):
    """C x C matrix of (Var_c + Var_c') / (2 ||mu_c - mu_c'||^2), zero diagonal."""
    mu = class_means(h, labels)
    var = class_variances(h, labels, ddof)
    k = len(mu)
    out = np.zeros((k, k))
    for a in range(k):
        for b in range(k):
            if a != b:
                diff = mu[a] - mu[b]
                out[a, b] = (var[a] + var[b]) / (2.0 * float(np.dot(diff, diff)))
    return out


def cdnv(h, labels, ddof=0):
    """Mean over unordered pairs c < c'."""
    m = cdnv_pairs(h, labels, ddof)
    k = len(m)
    vals = [m[a, b] for a in range(k) for b in range(a + 1, k)]
    return float(np.mean(vals))


def cdnv_paper_vectorised(h, labels, n_classes):
    """The vectorised batch formula of the paper's code (classes 0..n_classes-1, ordered pairs):
    per-class mean and variance via one-hot masks, then the mean over off-diagonal entries."""
    h = np.asarray(h, dtype=np.float64)
    onehot = np.eye(n_classes)[labels]  # N x C
    counts = onehot.sum(axis=0)
    means = onehot.T @ h / counts[:, None]
    var = (onehot * ((h[:, None, :] - means[None]) ** 2).sum(-1)).sum(0) / counts
    dist = ((means[:, None, :] - means[None, :, :]) ** 2).sum(-1)
    ratio = (var[:, None] + var[None, :]) / (2.0 * dist + np.eye(n_classes))
    off = ~np.eye(n_classes, dtype=bool)
    return float(ratio[off].mean())


def scatter(h, labels):
    """(S_W, S_B, S_T) with class-size weighting, by explicit sums of outer products."""
    h = np.asarray(h, dtype=np.float64)
    mu = h.mean(axis=0)
    d = h.shape[1]
    sw, sb, st = np.zeros((d, d)), np.zeros((d, d)), np.zeros((d, d))
    for m in classes_of(labels)[1]:
        x = h[m]
        mc = x.mean(axis=0)
        sw += (x - mc).T @ (x - mc)
        sb += len(x) * np.outer(mc - mu, mc - mu)
    st = (h - mu).T @ (h - mu)
    return sw, sb, st


def nc1_pinv(h, labels, rtol=1e-10):
    """Tr(Sigma_W pinv(Sigma_B)) / C with numpy's pinv (relative cutoff rtol)."""
    h = np.asarray(h, dtype=np.float64)
    mu = class_means(h, labels)
    k = len(mu)
    sw = scatter(h, labels)[0] / len(h)
    m = mu - mu.mean(axis=0)
    sb = m.T @ m / k
    return float(np.trace(sw @ np.linalg.pinv(sb, rcond=rtol)) / k)


def nc2(h, labels):
    mu = class_means(h, labels)
    m = mu - mu.mean(axis=0)
    norms = np.linalg.norm(m, axis=1)
    k = len(m)
    cos = [float(m[a] @ m[b] / (norms[a] * norms[b])) for a in range(k) for b in range(k) if a != b]
    return norms.std() / norms.mean(), float(np.std(cos)), float(np.mean(np.abs(np.array(cos) + 1.0 / (k - 1))))


def fisher(h, labels, ridge=0.0):
    sw, sb, _ = scatter(h, labels)
    return float(np.trace(np.linalg.solve(sw + ridge * len(h) * np.eye(sw.shape[0]), sb)))


def twonn_direct(h, discard_fraction=0.1):
    """TwoNN with full distance matrices: distinct rows, mu = r2/r1, F = i/N, fit through 0."""
    x = np.unique(np.asarray(h, dtype=np.float64), axis=0)
    dist = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(dist, np.inf)
    r = np.sort(dist, axis=1)[:, :2]
    mu = np.sort(r[:, 1] / r[:, 0])
    n = len(mu)
    keep = min(int(np.floor(n * (1 - discard_fraction))), n - 1)
    xs = np.log(mu[:keep])
    ys = -np.log(1 - np.arange(1, keep + 1) / n)
    return float(xs @ ys / (xs @ xs))


def effective_rank(h):
    s = np.linalg.svd(np.asarray(h, dtype=np.float64), compute_uv=False)
    p = s / s.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))
