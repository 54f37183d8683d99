"""Peer implementations that ``bench_geometry.py`` times against repcompress.

- ``cdnv_nc1_numpy``: the vectorised numpy version of the CDNV and NC1 formulas (docs/spec.md §4.2, §4.4), as one
  would write it without repcompress: class means with one matrix product against a one-hot
  matrix, centred features H − M[y], Σ_W = (H − M[y])ᵀ(H − M[y])/N, and numpy's ``pinv`` of Σ_B.
- ``twonn_sklearn``: TwoNN (Facco et al. 2017) on ``sklearn.neighbors.NearestNeighbors``, the way
  scikit-dimension does it: distinct rows, 2 nearest neighbours, μ = r₂/r₁, F = i/N, drop the top
  10 %, least-squares slope through the origin.
"""

import numpy as np
from sklearn.neighbors import NearestNeighbors


def cdnv_nc1_numpy(h, labels, n_classes, rtol=1e-10):
    n = h.shape[0]
    onehot = np.zeros((n, n_classes), dtype=h.dtype)
    onehot[np.arange(n), labels] = 1
    counts = onehot.sum(axis=0, dtype=np.float64)
    means = (onehot.T @ h).astype(np.float64) / counts[:, None]
    centred = h - means[labels].astype(h.dtype)
    var = np.bincount(labels, weights=np.einsum("ij,ij->i", centred, centred), minlength=n_classes) / counts
    sq = (means**2).sum(1)
    dist = sq[:, None] + sq[None, :] - 2 * means @ means.T
    iu = np.triu_indices(n_classes, 1)
    with np.errstate(divide="ignore"):  # the diagonal (not used) divides by 0
        cdnv = float(((var[:, None] + var[None, :]) / (2 * dist))[iu].mean())
    sigma_w = (centred.T @ centred).astype(np.float64) / n
    m = means - means.mean(axis=0)
    sigma_b = m.T @ m / n_classes
    nc1 = float(np.trace(sigma_w @ np.linalg.pinv(sigma_b, rcond=rtol)) / n_classes)
    return cdnv, nc1


def twonn_sklearn(h, discard_fraction=0.1):
    x = np.unique(h, axis=0)
    dist, _ = NearestNeighbors(n_neighbors=3).fit(x).kneighbors(x)
    mu = np.sort(dist[:, 2] / dist[:, 1])
    n = len(mu)
    keep = min(int(np.floor(n * (1 - discard_fraction))), n - 1)
    xs = np.log(mu[:keep])
    ys = -np.log(1 - np.arange(1, keep + 1) / n)
    return float(xs @ ys / (xs @ xs))
