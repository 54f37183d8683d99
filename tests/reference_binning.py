"""Slow, obviously-correct numpy references for the binned estimators (docs/spec.md §2).

Bin indices are computed for the whole N × d array, and patterns are found with
``np.unique(codes, axis=0)``: exactly what the Rust core avoids doing.
"""

import numpy as np


def bin_codes(z, *, strategy="uniform", n_bins=30, bin_size=None, per_unit=False):
    z = np.asarray(z, dtype=np.float64)
    if z.ndim == 1:
        z = z[:, None]
    if bin_size is not None:
        return np.floor(z / bin_size).astype(np.int64)
    if strategy == "uniform":
        if per_unit:
            lo, hi = z.min(axis=0), z.max(axis=0)
        else:
            lo, hi = np.full(z.shape[1], z.min()), np.full(z.shape[1], z.max())
        width = (hi - lo) / n_bins
        with np.errstate(divide="ignore", invalid="ignore"):
            raw = np.floor((z - lo) / width)
        codes = np.where(width > 0, np.clip(raw, 0, n_bins - 1), 0)
        return codes.astype(np.int64)
    qs = np.arange(1, n_bins) / n_bins
    codes = np.empty(z.shape, dtype=np.int64)
    for j in range(z.shape[1]):
        edges = np.quantile(z[:, j], qs)
        codes[:, j] = np.searchsorted(edges, z[:, j], side="right")
    return codes


def pattern_ids(codes):
    """Pattern ids in order of first appearance, from np.unique over rows."""
    codes = np.asarray(codes)
    if codes.ndim == 1:
        codes = codes[:, None]
    _, first, inverse = np.unique(codes, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first)] = np.arange(first.size)
    return rank[inverse]


def entropy(codes, correction=None):
    codes = np.asarray(codes)
    if codes.ndim == 1:
        codes = codes[:, None]
    _, counts = np.unique(codes, axis=0, return_counts=True)
    n = codes.shape[0]
    p = counts / n
    h = float(-(p * np.log(p)).sum())
    if correction == "miller-madow":
        h += (counts.size - 1) / (2 * n)
    return h


def mutual_info(a, b, correction=None):
    a = np.asarray(a).reshape(len(a), -1)
    b = np.asarray(b).reshape(len(b), -1)
    return entropy(a, correction) + entropy(b, correction) - entropy(np.hstack([a, b]), correction)


def conditional_entropy(t_codes, given):
    """Σ_g p(g) H(T | G = g), literally."""
    given = np.asarray(given)
    n = given.shape[0]
    total = 0.0
    for g in np.unique(given):
        rows = given == g
        total += rows.sum() / n * entropy(np.asarray(t_codes)[rows])
    return total
