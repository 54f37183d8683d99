"""Exact k-NN estimators in plain torch (docs/spec.md §8.2): blocked brute force on the device.

The functions here answer the same questions as the Rust core's neighbour engine — k-th neighbour
distances excluding the point itself, strict and inclusive radius counts, KSG-2's neighbour set,
the two nearest neighbours of TwoNN — and have the signatures of the ``_core`` functions they
replace (``neighbors`` is accepted and ignored: every back-end gives the same answers). Inputs are
tensors already validated and pre-processed on their device.

Exactness. A block of B query rows is compared with all N points at once: a B × N tile of
distances, never an N × N matrix (B is chosen so that one tile takes at most ``TILE_BYTES``).

- Max-norm: ``torch.cdist(p=inf)`` takes max_k |a_k − b_k|. Each |a_k − b_k| is one correctly
  rounded subtraction and the max is exact in any order, so these are the distances the Rust core
  computes, bit for bit, in float32 and in float64; the joint distance of (x, y) is the max of the
  two variables' tiles, again exact.
- Euclidean: the squared distance is summed over the coordinates in their order, one coordinate
  at a time (Σ_k (a_k − b_k)² left to right, a separate multiply and add, no fused multiply-add),
  which is how the core computes the distance it decides on (``rust/knn/metric.rs``).
- Every decision is a comparison of such computed distances: strict ``<``, inclusive ``≤``
  (docs/spec.md §1.2), ties in KSG-2's neighbour set to the smaller index (§1.3).

The counts come back to the host (O(N) integers) and are turned into estimates exactly as the core
does it: ψ of each distinct count, weighted by its tally, summed in ascending order with Neumaier
compensation (``rust/special.rs``), so equal counts give bit-identical estimates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from . import require_torch

# The largest tile of distances a block of queries holds (the kernels keep a few such tiles:
# distances per variable, their max, masks), so memory is O(block · N), never O(N²).
TILE_BYTES = 256 * 2**20


def block_rows(n: int, itemsize: int) -> int:
    """Queries per block: a B × n tile of `itemsize`-byte distances within TILE_BYTES."""
    return max(1, min(n, TILE_BYTES // max(1, n * itemsize)))


# ----------------------------------------------------------------------------------------------
# Estimates from counts, in the core's order of operations (rust/special.rs)
# ----------------------------------------------------------------------------------------------


def digamma(x: float) -> float:
    """ψ(x) for x > 0, the core's evaluation step for step: the recurrence ψ(x) = ψ(x+1) − 1/x up
    to x ≥ 10, then the asymptotic series (Abramowitz & Stegun 6.3.18)."""
    if x != x or x <= 0.0:
        return math.nan
    shift = 0.0
    while x < 10.0:
        shift -= 1.0 / x
        x += 1.0
    inv2 = 1.0 / (x * x)
    series = inv2 * (
        1.0 / 12.0
        - inv2
        * (
            1.0 / 120.0
            - inv2
            * (1.0 / 252.0 - inv2 * (1.0 / 240.0 - inv2 * (1.0 / 132.0 - inv2 * (691.0 / 32760.0 - inv2 / 12.0))))
        )
    )
    return shift + math.log(x) - 0.5 / x - series


def neumaier_sum(terms: Iterable[float]) -> float:
    """The terms' sum in their order with Neumaier's compensation, as the core adds them."""
    total, comp = 0.0, 0.0
    for term in terms:
        t = total + term
        comp += (total - t) + term if abs(total) >= abs(term) else (term - t) + total
        total = t
    return total + comp


def mean_digamma_counts(counts: np.ndarray, offset: float) -> float:
    """⟨ψ(c + offset)⟩ over integer counts c: Σ_v #{c = v}·ψ(v + offset) over the distinct values v
    in ascending order, Neumaier-compensated, divided by the number of counts."""
    if counts.size == 0:
        return math.nan
    tally = np.bincount(counts.astype(np.int64, copy=False))
    values = np.flatnonzero(tally)
    total = neumaier_sum(float(tally[v]) * digamma(float(v) + offset) for v in values.tolist())
    return total / counts.size


def ln_gamma_half_integer(m: int) -> float:
    """ln Γ(m/2) for a positive integer m, summed as the core sums it."""
    if m % 2 == 0:
        acc = 0.0
        for i in range(1, m // 2):
            acc += math.log(float(i))
        return acc
    acc = 0.5 * math.log(math.pi)
    for j in range(1, m // 2 + 1):
        acc += math.log(float(j) - 0.5)
    return acc


def _host_counts(t: Any) -> np.ndarray:
    return t.to("cpu").numpy().astype(np.int64, copy=False)


# ----------------------------------------------------------------------------------------------
# Distance tiles
# ----------------------------------------------------------------------------------------------


def chebyshev_tile(q: Any, p: Any) -> Any:
    """max_k |q_ik − p_jk| for every query row i and point j: a (B, N) tile in the data's dtype.

    On the CPU ``torch.cdist(p=inf)`` (a vectorised loop over the pairs); elsewhere one pass per
    coordinate, |q_k − p_k| folded into the tile by max (bandwidth-bound elementwise kernels, where
    cdist's CUDA kernel spends a thread block on every pair). Both take the same |a − b| and the
    max is exact in any order, so the tiles are identical."""
    torch = require_torch()
    if q.device.type == "cpu":
        return torch.cdist(q, p, p=math.inf)
    return chebyshev_tile_by_columns(q, p)


def chebyshev_tile_by_columns(q: Any, p: Any) -> Any:
    """The max-norm tile of :func:`chebyshev_tile`, one coordinate at a time."""
    torch = require_torch()
    acc = (q[:, :1] - p[:, 0].unsqueeze(0)).abs_()
    for c in range(1, q.shape[1]):
        torch.maximum(acc, (q[:, c : c + 1] - p[:, c].unsqueeze(0)).abs_(), out=acc)
    return acc


def euclidean_squared_tile(q: Any, p: Any) -> Any:
    """Σ_k (q_ik − p_jk)², summed over k in order with a separate multiply and add per term: the
    squared distance the core decides on, bit for bit."""
    torch = require_torch()
    acc = torch.zeros((q.shape[0], p.shape[0]), dtype=q.dtype, device=q.device)
    for c in range(q.shape[1]):
        gap = q[:, c : c + 1] - p[:, c].unsqueeze(0)
        acc += gap * gap
    return acc


def _squared_norms(points: Any) -> Any:
    """‖p‖² of every row, in float64 (any order of summation: only the Gram screening uses them)."""
    wide = points.to(require_torch().float64)
    return (wide * wide).sum(dim=1)


def euclidean_nearest_tile(points: Any, start: int, stop: int, k: int, norms: Any) -> Any:
    """A (B, N) tile for queries start..stop that holds the exact squared distance (as
    :func:`euclidean_squared_tile` computes it) of every point that can be among a query's k
    nearest, and +inf elsewhere (the query itself included): its k smallest entries per row are
    the exact ones.

    Candidates come from the Gram form G = ‖q‖² + ‖p‖² − 2 q·p (float64 matrix product, any order
    of summation). With S = ‖q‖² + ‖p‖², the computed G and the exact computed distance D both lie
    within (γ-bounds after Higham, Accuracy and Stability §3.1) (2d + 10)·u₆₄·S and (d + 3)·u·S
    (u the data's unit roundoff) of ‖q − p‖², plus underflow; ``slack`` is twice their sum. So
    D ∈ [G − slack, G + slack]: t, the k-th smallest G + slack of the row, is at least the k-th
    smallest D, and every point with D ≤ t has G − slack ≤ t. Those candidates get their D. Where
    the bound is loose (d·u > 2⁻¹⁰, or more than a quarter of the tile are candidates, e.g. data
    far from the origin relative to their spread) every pair gets its D."""
    torch = require_torch()
    q, d = points[start:stop], points.shape[1]
    u = 2.0**-53 if points.dtype == torch.float64 else 2.0**-24
    if (d + 4) * u > 2.0**-10:
        return _without_self(euclidean_squared_tile(q, points), start)
    wide = torch.float64
    total = norms[start:stop, None] + norms[None, :]
    gram = total - 2.0 * (q.to(wide) @ points.to(wide).T)
    tiny = 8.0 * (d + 2) * (2.0**-1074 if points.dtype == torch.float64 else 2.0**-149)
    slack = total * (2.0 * ((2 * d + 10) * 2.0**-53 + (d + 3) * u)) + tiny
    upper = _without_self(gram + slack, start)
    reach = upper.kthvalue(k, dim=1, keepdim=True).values
    candidates = (gram - slack) <= reach
    rows = torch.arange(stop - start, device=points.device)
    candidates[rows, rows + start] = False
    if not bool(torch.isfinite(reach).all()) or int(candidates.sum()) > candidates.numel() // 4:
        return _without_self(euclidean_squared_tile(q, points), start)
    at_row, at_col = candidates.nonzero(as_tuple=True)
    exact = torch.full(candidates.shape, math.inf, dtype=points.dtype, device=points.device)
    step = max(1, TILE_BYTES // (2 * d * points.element_size()))
    for lo in range(0, at_row.numel(), step):
        r, c = at_row[lo : lo + step], at_col[lo : lo + step]
        gap = points[r + start] - points[c]
        acc = gap[:, 0] * gap[:, 0]
        for column in range(1, d):
            acc += gap[:, column] * gap[:, column]
        exact[r, c] = acc
    return exact


def _without_self(tile: Any, start: int) -> Any:
    """The tile with each query's distance to itself set to +inf (the neighbours of i never
    include i), in place."""
    torch = require_torch()
    rows = torch.arange(tile.shape[0], device=tile.device)
    tile[rows, rows + start] = math.inf
    return tile


def _blocks(n: int, itemsize: int) -> Iterable[tuple[int, int]]:
    step = block_rows(n, itemsize)
    for start in range(0, n, step):
        yield start, min(n, start + step)


def _tiles(parts: Sequence[Any], start: int, stop: int, metric: str = "chebyshev") -> list[Any]:
    """Each variable's tile for queries start..stop, self excluded: max-norm distances, or with
    ``metric="euclidean"`` squared Euclidean distances (the comparison units of the core's
    Euclidean-within-variables search, ``rust/knn/grouped.rs``: the max of squares is the square
    of the max, and no decision rests on a rounded square root)."""
    if metric == "euclidean":
        return [_without_self(euclidean_squared_tile(p[start:stop], p), start) for p in parts]
    return [_without_self(chebyshev_tile(p[start:stop], p), start) for p in parts]


def _joint(tiles: Sequence[Any]) -> Any:
    torch = require_torch()
    out = tiles[0]
    for t in tiles[1:]:
        out = torch.maximum(out, t)
    return out


def _over_blocks(n: int, itemsize: int, body: Callable[[int, int], tuple[Any, ...]]) -> list[Any]:
    """Runs `body(start, stop)` over the query blocks and concatenates its outputs."""
    torch = require_torch()
    pieces = [body(start, stop) for start, stop in _blocks(n, itemsize)]
    return [torch.cat([piece[i] for piece in pieces]) for i in range(len(pieces[0]))]


# ----------------------------------------------------------------------------------------------
# Neighbour primitives
# ----------------------------------------------------------------------------------------------


def kth_distances(parts: Sequence[Any], k: int, metric: str = "chebyshev") -> np.ndarray:
    """ε_i, the distance from i to its k-th neighbour (j ≠ i), in the joint max-norm space of
    `parts` (``"chebyshev"``) or, for one part, the Euclidean norm (the square root of the
    ordered sum of squares, as the core finishes it), as a host array (O(N))."""
    n, itemsize = parts[0].shape[0], parts[0].element_size()
    norms = _squared_norms(parts[0]) if metric == "euclidean" else None

    def body(start: int, stop: int) -> tuple[Any, ...]:
        if metric == "euclidean":
            tile = euclidean_nearest_tile(parts[0], start, stop, k, norms)
        else:
            tile = _joint(_tiles(parts, start, stop))
        return (tile.kthvalue(k, dim=1).values,)

    (eps,) = _over_blocks(n, itemsize, body)
    host = eps.to("cpu").numpy()
    return host_sqrt(host) if metric == "euclidean" else host


def host_sqrt(a: np.ndarray) -> np.ndarray:
    """√a rounded once, as the core's ``sqrt``, taken on the host: torch's vectorised square root on
    the CPU is not always correctly rounded (1 ulp off, float32 and float64 alike), numpy's is."""
    return np.sqrt(a)


def count_within(points: Any, radii: Any, *, strict: bool) -> Any:
    """#{j ≠ i : ‖p_j − p_i‖∞ < r_i} (strict) or ≤ r_i (inclusive), as int64."""
    n, itemsize = points.shape[0], points.element_size()

    def body(start: int, stop: int) -> tuple[Any, ...]:
        (tile,) = _tiles([points], start, stop)
        r = radii[start:stop, None]
        return (((tile < r) if strict else (tile <= r)).sum(dim=1),)

    (counts,) = _over_blocks(n, itemsize, body)
    return counts


def _ksg_counts(x: Any, y: Any, k: int, variant: str, metric: str) -> tuple[Any, Any]:
    """n_x, n_y of KSG-1 (strict, within the joint ε_i) or KSG-2 (inclusive, within the x and y
    extents of the k joint neighbours, ties in the neighbour set to the smaller index). A query's
    counts need only its own radius, so each block is settled from its own tiles."""
    torch = require_torch()
    n, itemsize = x.shape[0], x.element_size()

    def body(start: int, stop: int) -> tuple[Any, ...]:
        dx, dy = _tiles([x, y], start, stop, metric)
        joint = torch.maximum(dx, dy)
        eps = joint.kthvalue(k, dim=1).values[:, None]
        if variant == "ksg1":
            return (dx < eps).sum(dim=1), (dy < eps).sum(dim=1)
        # The k neighbours: all closer than ε_i, then the ties at ε_i in order of index.
        closer = joint < eps
        tied = joint == eps
        room = k - closer.sum(dim=1, keepdim=True)
        chosen = closer | (tied & (tied.cumsum(dim=1) <= room))
        ex = torch.where(chosen, dx, torch.zeros((), dtype=dx.dtype, device=dx.device)).amax(dim=1, keepdim=True)
        ey = torch.where(chosen, dy, torch.zeros((), dtype=dy.dtype, device=dy.device)).amax(dim=1, keepdim=True)
        return (dx <= ex).sum(dim=1), (dy <= ey).sum(dim=1)

    nx, ny = _over_blocks(n, itemsize, body)
    return nx, ny


# ----------------------------------------------------------------------------------------------
# Estimators (the signatures of their ``_core`` counterparts)
# ----------------------------------------------------------------------------------------------


def mutual_info_ksg(x: Any, y: Any, k: int, estimator: str, metric: str, neighbors: str = "auto") -> float:
    """KSG mutual information in nats (docs/spec.md §1.5, §1.6) on the device, ``metric`` inside
    each variable."""
    n = x.shape[0]
    nx, ny = (_host_counts(c) for c in _ksg_counts(x, y, k, estimator, metric))
    if estimator == "ksg1":
        return digamma(float(k)) + digamma(float(n)) - mean_digamma_counts(nx, 1.0) - mean_digamma_counts(ny, 1.0)
    return (
        digamma(float(k))
        - 1.0 / float(k)
        + digamma(float(n))
        - mean_digamma_counts(nx, 0.0)
        - mean_digamma_counts(ny, 0.0)
    )


def conditional_mutual_info_ksg(x: Any, y: Any, z: Any, k: int, metric: str, neighbors: str = "auto") -> float:
    """Frenzel–Pompe I(X;Y|Z) in nats (docs/spec.md §1.7) on the device."""
    torch = require_torch()
    n, itemsize = x.shape[0], x.element_size()

    def body(start: int, stop: int) -> tuple[Any, ...]:
        dx, dy, dz = _tiles([x, y, z], start, stop, metric)
        dxz, dyz = torch.maximum(dx, dz), torch.maximum(dy, dz)
        eps = torch.maximum(dxz, dy).kthvalue(k, dim=1).values[:, None]
        return (dxz < eps).sum(dim=1), (dyz < eps).sum(dim=1), (dz < eps).sum(dim=1)

    nxz, nyz, nz = (_host_counts(c) for c in _over_blocks(n, itemsize, body))
    return (
        digamma(float(k)) - mean_digamma_counts(nxz, 1.0) - mean_digamma_counts(nyz, 1.0) + mean_digamma_counts(nz, 1.0)
    )


def entropy_kl(x: Any, k: int, metric: str, neighbors: str = "auto") -> float:
    """Kozachenko–Leonenko h(X) in nats (docs/spec.md §1.8) on the device; Σ log ε_i is summed on
    the host in sample order, as the core sums it."""
    n, d = x.shape
    eps = kth_distances([x], k, metric)
    if metric == "chebyshev":
        log_cd = float(d) * math.log(2.0)
    else:
        log_cd = 0.5 * float(d) * math.log(math.pi) - ln_gamma_half_integer(d + 2)
    sum_log = 0.0
    for e in eps.tolist():
        sum_log += math.log(e) if e > 0 else -math.inf
    return digamma(float(n)) - digamma(float(k)) + log_cd + float(d) * sum_log / float(n)


def mutual_info_ross(x: Any, labels: Any, k: int, metric: str, neighbors: str = "auto") -> float:
    """Ross's I(X;Y) with discrete labels in nats (docs/spec.md §1.9) on the device. ``labels``:
    class codes 0..C−1 as a numpy array (they are O(N) and needed on the host for the sums)."""
    torch = require_torch()
    n, itemsize = x.shape[0], x.element_size()
    codes = np.asarray(labels, dtype=np.int64)
    sizes = np.bincount(codes)
    size_of = sizes[codes]
    kept = size_of > 1
    if not kept.any():
        raise ValueError("labels: every class has a single sample; at least one class needs two")
    k_of = np.where(kept, np.minimum(k, size_of - 1), 0)
    k_max = int(k_of.max())
    codes_t = torch.from_numpy(codes).to(x.device)
    kept_t = torch.from_numpy(kept).to(x.device)
    # k_i − 1, the column of the sorted within-class distances that holds r_i (0 for dropped rows).
    pick = torch.from_numpy(np.maximum(k_of - 1, 0)).to(x.device)

    def body(start: int, stop: int) -> tuple[Any, ...]:
        (tile,) = _tiles([x], start, stop, metric)
        same = codes_t[start:stop, None] == codes_t[None, :]
        within = torch.where(same, tile, torch.full((), math.inf, dtype=tile.dtype, device=tile.device))
        nearest = within.topk(k_max, dim=1, largest=False, sorted=True).values
        r = nearest.gather(1, pick[start:stop, None])
        return (((tile < r) & kept_t[None, :]).sum(dim=1),)

    (m,) = _over_blocks(n, itemsize, body)
    m_kept = _host_counts(m)[kept]
    return (
        digamma(float(int(kept.sum())))
        + mean_digamma_counts(k_of[kept], 0.0)
        - mean_digamma_counts(size_of[kept], 0.0)
        - mean_digamma_counts(m_kept, 1.0)
    )


def mutual_info_given_labels_ksg(
    x: Any, y: Any, labels: Any, k: int, estimator: str, metric: str, neighbors: str = "auto"
) -> tuple[float, list[tuple[int, int]]]:
    """I(X;Y | L) = Σ_c p(c) I(X;Y | L = c) in nats (docs/spec.md §1.10) on the device: KSG on each
    class's rows, classes with at most k samples skipped and returned as (class, size)."""
    torch = require_torch()
    codes = np.asarray(labels, dtype=np.int64)
    total, weight, skipped = 0.0, 0, []
    for c, size in enumerate(np.bincount(codes).tolist()):
        if size == 0:
            continue
        if size <= k:
            skipped.append((c, size))
            continue
        rows = torch.from_numpy(np.flatnonzero(codes == c)).to(x.device)
        total += float(size) * mutual_info_ksg(x.index_select(0, rows), y.index_select(0, rows), k, estimator, metric)
        weight += size
    if weight == 0:
        raise ValueError(f"labels: every class has at most k = {k} samples; no class can be estimated")
    return total / float(weight), skipped


def two_nearest_distances(points: Any) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances from each point to its nearest and second-nearest other point (host
    arrays)."""
    n, itemsize = points.shape[0], points.element_size()
    norms = _squared_norms(points)

    def body(start: int, stop: int) -> tuple[Any, ...]:
        tile = euclidean_nearest_tile(points, start, stop, 2, norms)
        two = tile.topk(2, dim=1, largest=False, sorted=True).values
        return two[:, 0], two[:, 1]

    r1, r2 = _over_blocks(n, itemsize, body)
    return host_sqrt(r1.to("cpu").numpy()), host_sqrt(r2.to("cpu").numpy())


def twonn(h: Any, discard_fraction: float) -> tuple[float, int, int]:
    """TwoNN (docs/spec.md §4.10) on the device: duplicate rows removed (−0.0 = 0.0), r₁, r₂ by
    exact Euclidean distances on the given coordinates, the fit of μ = r₂/r₁ on the host as the
    core fits it. Returns (dimension, distinct points, ratios fitted)."""
    torch = require_torch()
    if not 0.0 <= discard_fraction < 1.0:
        raise ValueError(f"discard_fraction: must lie in [0, 1), got {discard_fraction}")
    distinct = torch.unique(h.to(torch.float64) + 0.0, dim=0)
    n = distinct.shape[0]
    if n < 3:
        raise ValueError(f"h: TwoNN needs at least 3 distinct points, got {n}")
    r1, r2 = two_nearest_distances(distinct)
    mu = np.sort(r2 / r1)
    n_keep = min(math.floor(n * (1.0 - discard_fraction)), n - 1)
    if n_keep < 1:
        raise ValueError("discard_fraction: discards every point")
    sxy, sxx = 0.0, 0.0
    for i, m in enumerate(mu[:n_keep].tolist()):
        lx = math.log(m)
        ly = -math.log(1.0 - float(i + 1) / float(n))
        sxy += lx * ly
        sxx += lx * lx
    if sxx == 0.0:
        raise ValueError(
            "h: every kept ratio r2/r1 is 1 (equidistant neighbours, e.g. a regular grid): TwoNN is undefined"
        )
    return sxy / sxx, n, n_keep
