"""One-dimensional KSG-1 and Ross agree with scikit-learn's private helpers to 1e-12.

scikit-learn clips both estimates at 0, so we compare with ``clip=True``; no preprocessing
(``normalize=False, jitter=0``) so both sides see the same arrays. Data are continuous (no ties):
scikit-learn implements strict counts with ``nextafter(eps, 0)`` and an inclusive radius query,
which equals the strict count only when there are no exact ties at distance 0.
"""

import numpy as np
import pytest
from sklearn.feature_selection._mutual_info import _compute_mi_cc, _compute_mi_cd

import repcompress as rc

EXACT = {"normalize": False, "jitter": 0, "clip": True}
SEEDS = (0, 1, 2, 3, 4)


def dependent_pair(seed, n=500):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = np.sin(2.0 * x) + 0.5 * x + rng.normal(scale=0.4 + 0.2 * seed, size=n)
    return x, y


@pytest.mark.parametrize("k", (1, 3, 5, 10))
@pytest.mark.parametrize("seed", SEEDS)
def test_ksg1_equals_sklearn_compute_mi_cc(seed, k):
    x, y = dependent_pair(seed)
    expected = _compute_mi_cc(x, y, n_neighbors=k)
    assert expected > 0.05  # dependent data: the comparison is not just 0 == 0
    got = rc.mutual_info(x, y, k=k, estimator="ksg1", **EXACT)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_ksg1_equals_sklearn_for_independent_data(seed):
    # Mostly clipped to 0 on both sides; checks that clip=True agrees with scikit-learn there too.
    rng = np.random.default_rng(100 + seed)
    x, y = rng.normal(size=500), rng.uniform(size=500)
    expected = _compute_mi_cc(x, y, n_neighbors=3)
    got = rc.mutual_info(x, y, k=3, estimator="ksg1", **EXACT)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)


def labelled_sample(seed, n=500):
    """Continuous x, labels of unequal sizes (all > 2 * 10 members) plus two singleton classes.

    scikit-learn finds the within-class radius with ``NearestNeighbors()``, which switches to its
    brute-force path when ``n_neighbors >= class_size // 2``; that path computes Euclidean
    distances as sqrt(a^2 + b^2 - 2ab), which is not exact, so for small classes scikit-learn's
    radius is off by rounding and agreement to 1e-12 is not expected on continuous data.
    Here every non-singleton class is large enough (> 2k for k <= 10) for its k-d tree path.
    """
    rng = np.random.default_rng(seed)
    sizes = {-3: n // 2, 0: n // 4, 7: n // 8, 42: n - n // 2 - n // 4 - n // 8 - 2}
    sizes.update({100: 1, 101: 1})  # two singleton classes (dropped by both)
    labels = rng.permutation(np.repeat(list(sizes), list(sizes.values())))
    x = rng.normal(size=n) + 0.8 * (labels % 5)
    return x, labels


def quantized_labelled_sample(seed, n=500):
    """Distinct x on a 2**-10 grid, with tiny classes (sizes 1, 1, 2, 3, 4 and 6).

    On this grid every square and product is exact in float64, so scikit-learn's brute-force
    distances (used for small classes) are exact too and 1e-12 agreement is a fair demand.
    Values are distinct, so no radius is 0 (scikit-learn's nextafter(0, 0) trick differs there).
    """
    rng = np.random.default_rng(seed)
    x = rng.choice(np.arange(-(2**12), 2**12), size=n, replace=False) / 1024.0
    noisy = x + rng.normal(scale=0.7, size=n)
    labels = np.digitize(noisy, [-2.0, 0.0, 1.5]) * 10 - 5  # ids -5, 5, 15, 25
    sizes = {100: 1, 101: 1, 102: 2, 103: 3, 104: 4, 105: 6}
    start = 0
    for label, size in sizes.items():
        labels[start : start + size] = label
        start += size
    return x, labels


@pytest.mark.parametrize("k", (1, 3, 5, 10))
@pytest.mark.parametrize("seed", SEEDS)
def test_ross_equals_sklearn_compute_mi_cd(seed, k):
    x, labels = labelled_sample(seed)
    expected = _compute_mi_cd(x, labels, n_neighbors=k)
    assert expected > 0.05
    got = rc.mutual_info_labels(x, labels, k=k, **EXACT)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("k", (1, 3, 5, 10))
@pytest.mark.parametrize("seed", SEEDS)
def test_ross_equals_sklearn_with_singletons_and_classes_smaller_than_k(seed, k):
    x, labels = quantized_labelled_sample(seed)
    expected = _compute_mi_cd(x, labels, n_neighbors=k)
    assert expected > 0.05
    got = rc.mutual_info_labels(x, labels, k=k, **EXACT)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_ross_equals_sklearn_for_independent_labels(seed):
    rng = np.random.default_rng(200 + seed)
    x = rng.normal(size=500)
    labels = rng.integers(0, 3, size=500)
    expected = _compute_mi_cd(x, labels, n_neighbors=3)
    got = rc.mutual_info_labels(x, labels, k=3, **EXACT)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)
