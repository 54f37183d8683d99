"""Peer implementations that ``bench_knn.py`` times against repcompress.

The peer here is the usual way Python users compute KSG mutual information
without repcompress: scipy's ``cKDTree`` in the max-norm, the approach taken
by NPEET and ennemi. It receives exactly the arrays our estimator receives
(no normalisation or jitter of its own), so with ``normalize=False, jitter=0``
both must agree to rounding.
"""

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import digamma


def _as_2d(a):
    a = np.asarray(a)
    return a.reshape(-1, 1) if a.ndim == 1 else a


def ksg1_neighbour_counts_ckdtree(x, y, k=3, workers=-1):
    """Return ``(eps, n_x, n_y)`` of KSG-1 computed with ``cKDTree``.

    ``eps[i]`` is the Chebyshev distance from point i to its k-th nearest
    neighbour in the joint space (i itself excluded); ``n_x[i]`` / ``n_y[i]``
    count the points j != i strictly closer than ``eps[i]`` in each marginal.
    """
    x = _as_2d(x)
    y = _as_2d(y)
    joint = np.hstack([x, y])

    # k + 1 because the query point is its own nearest neighbour (distance 0).
    # The (k+1)-th smallest distance including self is the k-th excluding self,
    # whatever order ties with duplicates come back in.
    distances, _ = cKDTree(joint).query(joint, k=[k + 1], p=np.inf, workers=workers)
    eps = distances[:, 0]

    # "Strictly closer than eps" == "within the largest float below eps".
    radius = np.nextafter(eps, 0)
    counts = []
    for marginal in (x, y):
        within = cKDTree(marginal).query_ball_point(marginal, r=radius, p=np.inf, return_length=True, workers=workers)
        n = np.asarray(within, dtype=np.int64) - 1  # the point itself is always within r >= 0
        # When eps == 0 (duplicate rows), radius is 0 too and the ball would
        # count the duplicates; nothing is strictly closer than 0.
        n[eps == 0] = 0
        counts.append(n)
    return eps, counts[0], counts[1]


def mutual_info_ksg1_ckdtree(x, y, k=3, workers=-1):
    """KSG-1 mutual information (nats) via ``scipy.spatial.cKDTree``.

    Kraskov, Stoegbauer & Grassberger, "Estimating mutual information",
    Phys. Rev. E 69, 066138 (2004), eq. (8):

        I(X;Y) = psi(k) + psi(N) - < psi(n_x + 1) + psi(n_y + 1) >

    with max-norm distances, eps_i the joint distance to the k-th neighbour
    of i and n_x, n_y the strict marginal counts (see
    ``ksg1_neighbour_counts_ckdtree``). ``x``, ``y`` are (N,) or (N, d)
    arrays, used as given.
    """
    eps, n_x, n_y = ksg1_neighbour_counts_ckdtree(x, y, k=k, workers=workers)
    n = eps.shape[0]
    return float(digamma(k) + digamma(n) - np.mean(digamma(n_x + 1) + digamma(n_y + 1)))
