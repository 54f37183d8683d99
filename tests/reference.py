"""Slow, obviously-correct brute-force references for the k-NN estimators (docs/spec.md §1).

Every function here works on arrays that are already 2-D, does no preprocessing (the tests
call the package with ``normalize=False, jitter=0``), builds full N x N distance matrices with
numpy and follows the formulas of docs/spec.md §1.5–§1.10 literally. Results are in nats
and never clipped. Speed and memory (O(N^2)) do not matter here; clarity does.

Distances are computed in the arrays' own dtype, so float32 inputs give float32 distances,
exactly as the package computes them when no preprocessing is asked for.
"""

import math

import numpy as np
from scipy.special import digamma, gammaln


def column_sums(b):
    """Σ_i b_ij of each column by the fixed pairwise tree of docs/spec.md §1.4, stated as written there:
    rows i and i + ⌊m/2⌋ are added (an odd last row carried along) until one row is left."""
    acc = b
    while acc.shape[0] > 1:
        half = acc.shape[0] // 2
        pairs = acc[:half] + acc[half : 2 * half]
        acc = pairs if acc.shape[0] % 2 == 0 else np.concatenate([pairs, acc[2 * half :]])
    return acc[0]


def population_std(b):
    """√(Σ (b − mean)² / N) per column of a float64 array, both sums by :func:`column_sums`."""
    n = b.shape[0]
    with np.errstate(over="ignore", invalid="ignore"):  # non-finite values propagate, as in the core
        dev = b - column_sums(b) / n
        return np.sqrt(column_sums(dev * dev) / n)


def chebyshev_distances(a):
    """All pairwise max-norm distances |a_i - a_j|_inf, in a's dtype, diagonal 0."""
    return np.abs(a[:, None, :] - a[None, :, :]).max(axis=-1)


def euclidean_distances(a):
    """All pairwise Euclidean distances, summing squared differences one column at a time."""
    n, d = a.shape
    squared = np.zeros((n, n), dtype=a.dtype)
    for col in range(d):
        diff = a[:, None, col] - a[None, :, col]
        squared = squared + diff * diff
    return np.sqrt(squared)


def squared_euclidean_distances(a):
    """All pairwise squared Euclidean distances, one column at a time (the core's summation order)."""
    n, d = a.shape
    squared = np.zeros((n, n), dtype=a.dtype)
    for col in range(d):
        diff = a[:, None, col] - a[None, :, col]
        squared = squared + diff * diff
    return squared


def variable_distances(a, metric):
    """The distances within one variable in the KSG estimators' comparison units: max-norm
    distances, or squared Euclidean distances for ``metric="euclidean"`` (docs/spec.md §1.1: the
    joint distance is the max over variables, and the max of squares is the square of the max, so
    every neighbour and count is the same as with the distances themselves, with no rounded square
    root in between)."""
    if metric == "chebyshev":
        return chebyshev_distances(a)
    if metric == "euclidean":
        return squared_euclidean_distances(a)
    raise ValueError(f"unknown metric {metric!r}")


def without_self(distances):
    """Copy of a distance matrix with +inf on the diagonal, so i is never its own neighbour."""
    out = distances.copy()
    np.fill_diagonal(out, np.inf)
    return out


def kth_smallest_per_row(distances, k):
    """Distance to the k-th nearest neighbour of each row (self already excluded by +inf)."""
    return np.sort(distances, axis=1)[:, k - 1]


def count_strictly_closer(distances, radius):
    """#{j : distances[i, j] < radius[i]} per row (self excluded by +inf on the diagonal)."""
    return (distances < radius[:, None]).sum(axis=1)


def count_closer_or_equal(distances, radius):
    """#{j : distances[i, j] <= radius[i]} per row (self excluded by +inf on the diagonal)."""
    return (distances <= radius[:, None]).sum(axis=1)


def ksg1(x, y, k, metric="chebyshev"):
    """KSG-1 (Kraskov 2004, eq. 8).

    eps_i = joint (max) distance to the k-th neighbour; n_x, n_y strict counts;
    I = psi(k) + psi(N) - mean[psi(n_x + 1) + psi(n_y + 1)].
    """
    n = x.shape[0]
    dx = without_self(variable_distances(x, metric))
    dy = without_self(variable_distances(y, metric))
    joint = np.maximum(dx, dy)
    eps = kth_smallest_per_row(joint, k)
    n_x = count_strictly_closer(dx, eps)
    n_y = count_strictly_closer(dy, eps)
    return float(digamma(k) + digamma(n) - np.mean(digamma(n_x + 1) + digamma(n_y + 1)))


def ksg2_neighbour_indices(joint_row, k):
    """Indices of the k joint nearest neighbours, ordered by (distance, index)."""
    # np.lexsort sorts by the last key first: distance, then index to break ties.
    order = np.lexsort((np.arange(joint_row.shape[0]), joint_row))
    return order[:k]


def ksg2(x, y, k, metric="chebyshev"):
    """KSG-2 (Kraskov 2004, eq. 9).

    The k joint neighbours of i are taken in (distance, index) order; eps_x(i) is the largest
    x-distance among them, n_x(i) = #{j != i : |x_j - x_i| <= eps_x(i)}, same for y;
    I = psi(k) - 1/k + psi(N) - mean[psi(n_x) + psi(n_y)].
    """
    n = x.shape[0]
    dx = without_self(variable_distances(x, metric))
    dy = without_self(variable_distances(y, metric))
    joint = np.maximum(dx, dy)
    eps_x = np.empty(n, dtype=dx.dtype)
    eps_y = np.empty(n, dtype=dy.dtype)
    for i in range(n):
        neighbours = ksg2_neighbour_indices(joint[i], k)
        eps_x[i] = dx[i, neighbours].max()
        eps_y[i] = dy[i, neighbours].max()
    n_x = count_closer_or_equal(dx, eps_x)
    n_y = count_closer_or_equal(dy, eps_y)
    return float(digamma(k) - 1.0 / k + digamma(n) - np.mean(digamma(n_x) + digamma(n_y)))


def cmi(x, y, z, k, metric="chebyshev"):
    """Conditional MI I(X;Y|Z), Frenzel & Pompe (2007).

    eps_i from the joint (x, y, z) max-distance; strict counts n_xz, n_yz, n_z;
    I = psi(k) - mean[psi(n_xz + 1) + psi(n_yz + 1) - psi(n_z + 1)].
    """
    dx = without_self(variable_distances(x, metric))
    dy = without_self(variable_distances(y, metric))
    dz = without_self(variable_distances(z, metric))
    dxz = np.maximum(dx, dz)
    dyz = np.maximum(dy, dz)
    joint = np.maximum(dxz, dy)
    eps = kth_smallest_per_row(joint, k)
    n_xz = count_strictly_closer(dxz, eps)
    n_yz = count_strictly_closer(dyz, eps)
    n_z = count_strictly_closer(dz, eps)
    return float(digamma(k) - np.mean(digamma(n_xz + 1) + digamma(n_yz + 1) - digamma(n_z + 1)))


def log_unit_ball_volume(d, metric):
    """log c_d: volume of the unit ball of the norm (radius = eps, not the diameter)."""
    if metric == "chebyshev":
        return d * math.log(2.0)
    if metric == "euclidean":
        return (d / 2.0) * math.log(math.pi) - float(gammaln(d / 2.0 + 1.0))
    raise ValueError(f"unknown metric {metric!r}")


def entropy_kl(x, k, metric):
    """Kozachenko-Leonenko entropy.

    H = psi(N) - psi(k) + log c_d + (d/N) sum_i log eps_i; -inf if some eps_i == 0.
    """
    n, d = x.shape
    if metric == "chebyshev":
        distances = chebyshev_distances(x)
    elif metric == "euclidean":
        distances = euclidean_distances(x)
    else:
        raise ValueError(f"unknown metric {metric!r}")
    eps = kth_smallest_per_row(without_self(distances), k)
    if np.any(eps == 0):
        return -math.inf
    log_eps = np.log(eps.astype(np.float64))
    return float(digamma(n) - digamma(k) + log_unit_ball_volume(d, metric) + d * np.mean(log_eps))


def ross(x, labels, k, metric="chebyshev"):
    """MI between continuous x and discrete labels (Ross 2014).

    Points of singleton classes are dropped first. For each remaining i: N_y = its class size,
    k_i = min(k, N_y - 1), r_i = distance to the k_i-th neighbour inside its class,
    m_i = #{j != i : |x_j - x_i| < r_i} + 1 over the remaining points;
    I = psi(N) + mean psi(k_i) - mean psi(N_y) - mean psi(m_i).
    """
    labels = np.asarray(labels)
    _, class_index, class_sizes = np.unique(labels, return_inverse=True, return_counts=True)
    keep = class_sizes[class_index] > 1
    x = x[keep]
    class_index = class_index[keep]
    n = x.shape[0]
    size_of_class = class_sizes[class_index]
    k_i = np.minimum(k, size_of_class - 1)

    distances = without_self(variable_distances(x, metric))
    r = np.empty(n, dtype=distances.dtype)
    for i in range(n):
        same_class = class_index == class_index[i]
        r[i] = np.sort(distances[i, same_class])[k_i[i] - 1]
    m = count_strictly_closer(distances, r) + 1
    return float(digamma(n) + np.mean(digamma(k_i)) - np.mean(digamma(size_of_class)) - np.mean(digamma(m)))


def given_labels(x, y, labels, k, estimator, metric="chebyshev"):
    """I(X;Y | labels) = sum_c w_c I_c with I_c the KSG estimate inside class c.

    Classes with n_c <= k are skipped; w_c = n_c / (sum of the kept n_c).
    Returns (value, skipped_classes); value is None when no class is kept.
    """
    ksg = {"ksg1": ksg1, "ksg2": ksg2}[estimator]
    labels = np.asarray(labels)
    values, weights, skipped = [], [], []
    for c in np.unique(labels):
        members = labels == c
        n_c = int(members.sum())
        if n_c <= k:
            skipped.append(c)
            continue
        values.append(ksg(x[members], y[members], k, metric))
        weights.append(n_c)
    if not weights:
        return None, skipped
    weights = np.asarray(weights, dtype=np.float64)
    return float(np.sum(weights / weights.sum() * np.asarray(values))), skipped


def mixed_counts(x, y, k):
    """The per-sample quantities of the mixed estimator (docs/spec.md §1.14): rho_i the joint k-th
    neighbour distance. rho_i > 0: k~_i = k, n_x and n_y strict counts within rho_i (as KSG-1).
    rho_i = 0 (an atom): k~_i, n_x, n_y the numbers of other samples at distance 0 in the joint,
    x and y spaces."""
    dx = without_self(chebyshev_distances(x))
    dy = without_self(chebyshev_distances(y))
    joint = np.maximum(dx, dy)
    rho = kth_smallest_per_row(joint, k)
    atom = rho == 0
    k_tilde = np.where(atom, (joint == 0).sum(axis=1), k)
    n_x = np.where(atom, (dx == 0).sum(axis=1), count_strictly_closer(dx, rho))
    n_y = np.where(atom, (dy == 0).sum(axis=1), count_strictly_closer(dy, rho))
    return k_tilde, n_x, n_y


def mixed(x, y, k):
    """Gao, Kannan, Oh & Viswanath (2017) in the KSG-1 form of docs/spec.md §1.14:
    I = mean[psi(k~_i) + psi(N) - psi(n_x + 1) - psi(n_y + 1)]."""
    n = x.shape[0]
    k_tilde, n_x, n_y = mixed_counts(x, y, k)
    return float(np.mean(digamma(k_tilde) + digamma(n) - digamma(n_x + 1) - digamma(n_y + 1)))
