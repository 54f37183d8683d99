"""Hypothesis strategies for k-NN estimator tests: small data sets with ties on purpose.

The structure of a data set (sizes, dimensions, how values are drawn, which rows are duplicated,
which columns are constant) is drawn by hypothesis, so it shrinks well; the values themselves come
from a numpy generator seeded by a hypothesis-drawn seed, which keeps example generation cheap.
All values are finite and bounded.
"""

import numpy as np
from hypothesis import strategies as st

MAX_N = 60

# How the values of a column are drawn.
#  "grid":     integers 0..4 times 0.5: exactly representable, so many exactly equal distances.
#  "decimal":  integers 0..9 times 0.1: distances that are equal on paper but round differently
#              (0.3 - 0.2 != 0.2 - 0.1), which stresses strict/inclusive boundaries.
#  "dyadic":   integers -512..511 divided by 64: many distinct values, few ties, and every value
#              stays exact when an integer is added (for translation tests).
#  "normal":   continuous Gaussian draws at a random scale (no ties).
VALUE_KINDS = ("grid", "decimal", "dyadic", "normal")


def _column(rng, kind, n, scale):
    if kind == "grid":
        return rng.integers(0, 5, size=n) * 0.5
    if kind == "decimal":
        return rng.integers(0, 10, size=n) * 0.1
    if kind == "dyadic":
        return rng.integers(-512, 512, size=n) / 64.0
    return rng.normal(scale=scale, size=n)


@st.composite
def dimensions(draw):
    """Mostly 1..4 columns; sometimes 9..18, on both sides of the dimension (16) above which
    "auto" takes the brute-force path (joint spaces of two such variables always exceed it)."""
    if draw(st.integers(0, 5)) == 0:
        return draw(st.integers(9, 18))
    return draw(st.integers(1, 4))


@st.composite
def tied_arrays(draw, n, dims, dtype, continuous_only=False, modes=("grid", "decimal", "dyadic", "normal", "mixed")):
    """A list of arrays of shapes (n, d) for d in dims, with ties on purpose.

    Ties come from grid-valued columns, duplicated rows (of the whole sample or of a single
    variable) and constant columns. ``continuous_only`` gives tie-free Gaussian columns;
    ``modes`` restricts how values are drawn (``"mixed"``: each column its own kind).
    """
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    total = sum(dims)
    if continuous_only:
        kinds = ["normal"] * total
    else:
        mode = draw(st.sampled_from(modes))
        if mode == "mixed":
            kinds = [VALUE_KINDS[i] for i in rng.integers(0, len(VALUE_KINDS), size=total)]
        else:
            kinds = [mode] * total
    scale = draw(st.sampled_from((1.0, 1e-3, 100.0)))
    columns = [_column(rng, kind, n, scale) for kind in kinds]
    joint = np.stack(columns, axis=1)

    if not continuous_only:
        # Duplicate whole samples: identical rows in every variable (zero joint distance).
        n_dup = draw(st.integers(0, n // 3))
        for _ in range(n_dup):
            src, dst = rng.integers(0, n, size=2)
            joint[dst] = joint[src]
        # Constant columns.
        if draw(st.booleans()):
            for col in np.flatnonzero(rng.random(total) < 0.3):
                joint[:, col] = joint[0, col]

    arrays = np.split(joint, np.cumsum(dims)[:-1], axis=1)
    arrays = [np.ascontiguousarray(a) for a in arrays]
    if not continuous_only:
        # Duplicate rows inside a single variable only (ties in a marginal, not in the joint).
        for a in arrays:
            if draw(st.booleans()):
                for _ in range(int(rng.integers(1, n // 3 + 2))):
                    src, dst = rng.integers(0, n, size=2)
                    a[dst] = a[src]
    return [a.astype(dtype) for a in arrays]


@st.composite
def labels_for(draw, n, *, min_size_class0=2, singletons=True):
    """Integer labels for n samples with arbitrary ids, some singleton classes, unequal sizes.

    Class 0 (before relabelling) gets at least ``min_size_class0`` members and class 1 at least
    two, so there are always two classes with more than one member.
    """
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_classes = draw(st.integers(2, 5))
    probs = rng.dirichlet(np.ones(n_classes))
    labels = rng.choice(n_classes, size=n, p=probs)
    n_singletons = draw(st.integers(0, 3)) if singletons else 0
    for s in range(n_singletons):
        labels[rng.integers(0, n)] = n_classes + s
    forced = [*range(min_size_class0), min_size_class0, min_size_class0 + 1]
    labels[forced[:min_size_class0]] = 0
    labels[forced[min_size_class0:]] = 1
    # Class ids need not be 0..C-1: relabel through arbitrary distinct integers.
    ids = rng.choice(np.arange(-50, 1000), size=labels.max() + 1, replace=False)
    return ids[labels]
