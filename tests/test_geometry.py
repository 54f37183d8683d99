"""Geometric metrics against scikit-learn and the slow numpy references (docs/spec.md §4)."""

import numpy as np
import pytest
from sklearn import metrics as skm

import reference_geometry as ref
import repcompress as rc


def random_data(seed, n=300, d=5, k=4):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.integers(0, k, n)


def clustered_data(seed, n=400, d=8, k=6, spread=0.5, offset=0.0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    centres = rng.normal(scale=3.0, size=(k, d)) + offset
    return centres[labels] + spread * rng.normal(size=(n, d)), labels


CASES = [random_data(s) for s in range(3)] + [clustered_data(s) for s in range(3)] + [clustered_data(9, k=2, d=3)]


# ---------------------------------------------------------------- scikit-learn agreement


@pytest.mark.parametrize("case", range(len(CASES)))
def test_clustering_indices_equal_sklearn(case):
    h, y = CASES[case]
    ids = np.array([-7, 3, 10, 11, 40, 1000])[y]  # arbitrary ids
    assert rc.calinski_harabasz(h, ids) == pytest.approx(skm.calinski_harabasz_score(h, y), rel=1e-10)
    assert rc.davies_bouldin(h, ids) == pytest.approx(skm.davies_bouldin_score(h, y), rel=1e-10)
    assert rc.silhouette(h, ids) == pytest.approx(skm.silhouette_score(h, y), rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(rc.silhouette_samples(h, ids), skm.silhouette_samples(h, y), rtol=1e-10, atol=1e-12)


def test_silhouette_with_singletons_duplicates_and_float32():
    h, y = clustered_data(5, n=257, d=4, k=3)
    y = y.copy()
    y[[3, 17]] = [5, 6]  # two singleton classes: their silhouette is 0
    h[20:30] = h[40]  # duplicate rows, distance 0
    s = rc.silhouette_samples(h, y)
    assert s[3] == 0 and s[17] == 0
    np.testing.assert_allclose(s, skm.silhouette_samples(h, y), rtol=1e-10, atol=1e-12)
    h32 = h.astype(np.float32)
    # scikit-learn computes float32 distances in float64 chunks, as we do.
    assert rc.silhouette(h32, y) == pytest.approx(skm.silhouette_score(h32, y), rel=1e-6)


def test_silhouette_sample_size_uses_the_drawn_subset():
    h, y = clustered_data(2, n=500)
    idx = np.random.default_rng(4).permutation(500)[:120]
    assert rc.silhouette(h, y, sample_size=120, random_state=4) == pytest.approx(
        skm.silhouette_score(h[idx], y[idx]), rel=1e-10
    )
    assert rc.silhouette(h, y, sample_size=120, random_state=np.random.default_rng(4)) == rc.silhouette(
        h, y, sample_size=120, random_state=4
    )


@pytest.mark.parametrize("n", (1100, 1300))
def test_silhouette_spans_many_blocks(n):
    # 5 and 6 blocks of 256 samples (odd and even counts for the round-robin schedule of tile
    # pairs), uneven classes; the result must not depend on the thread count, to the bit.
    h, y = clustered_data(7, n=n, d=3, k=7, spread=2.0)
    np.testing.assert_allclose(rc.silhouette_samples(h, y), skm.silhouette_samples(h, y), rtol=1e-10, atol=1e-12)
    before = rc.get_num_threads()
    try:
        rc.set_num_threads(1)
        one = rc.silhouette_samples(h, y)
        rc.set_num_threads(2)
        two = rc.silhouette_samples(h, y)
    finally:
        rc.set_num_threads(before)
    np.testing.assert_array_equal(one, two)


def test_davies_bouldin_degenerate_cases_follow_sklearn():
    h = np.array([[0.0, 0], [0, 0], [1, 1], [1, 1]])
    y = np.array([0, 0, 1, 1])
    assert rc.davies_bouldin(h, y) == skm.davies_bouldin_score(h, y) == 0.0
    assert rc.calinski_harabasz(h, y) == skm.calinski_harabasz_score(h, y) == 1.0


# ---------------------------------------------------------------- references


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("ddof", (0, 1))
def test_cdnv_equals_reference(case, ddof):
    h, y = CASES[case]
    assert rc.class_distance_normalized_variance(h, y, ddof=ddof) == pytest.approx(ref.cdnv(h, y, ddof), rel=1e-10)
    m, ids = rc.cdnv_matrix(h, y, ddof=ddof)
    np.testing.assert_allclose(m, ref.cdnv_pairs(h, y, ddof), rtol=1e-10)
    np.testing.assert_array_equal(ids, np.unique(y))


@pytest.mark.parametrize("case", range(len(CASES)))
def test_cdnv_equals_paper_vectorised_formula_when_all_classes_present(case):
    h, y = CASES[case]
    k = y.max() + 1
    assert len(np.unique(y)) == k
    assert rc.class_distance_normalized_variance(h, y) == pytest.approx(ref.cdnv_paper_vectorised(h, y, k), rel=1e-10)


def test_absent_class_ids_do_not_count():
    h, y = clustered_data(1, k=3)
    # Ids 0, 5, 9 present; the paper's batch code with n_classes=10 would count 7 empty classes.
    ids = np.array([0, 5, 9])[y]
    assert rc.class_distance_normalized_variance(h, ids) == pytest.approx(ref.cdnv(h, y), rel=1e-12)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_neural_collapse_equals_references(case):
    h, y = CASES[case]
    nc = rc.neural_collapse(h, y)
    assert nc.nc1 == pytest.approx(ref.nc1_pinv(h, y), rel=1e-9)
    e, a, m = ref.nc2(h, y)
    assert nc.nc2_equinorm == pytest.approx(e, rel=1e-10)
    assert nc.nc2_equiangular == pytest.approx(a, rel=1e-9, abs=1e-12)
    assert nc.nc2_max_angle == pytest.approx(m, rel=1e-10, abs=1e-12)
    assert nc.cdnv == pytest.approx(ref.cdnv(h, y), rel=1e-10)
    assert nc.nc3 is None and nc.nc4 is None


def test_nc1_when_d_is_smaller_than_c_minus_1():
    # Σ_B has rank d < C - 1: the pseudo-inverse keeps d directions.
    h, y = clustered_data(3, n=500, d=3, k=8)
    assert rc.neural_collapse(h, y).nc1 == pytest.approx(ref.nc1_pinv(h, y), rel=1e-9)


def test_nc3_nc4_from_weights_and_logits():
    h, y = clustered_data(6, n=300, d=5, k=4)
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(4, 5)), rng.normal(size=4)
    mu = ref.class_means(h, y)
    m = mu - mu.mean(0)
    nc3 = np.sum((w.T / np.linalg.norm(w) - m.T / np.linalg.norm(m)) ** 2)
    logits = h @ w.T + b
    ncc = np.argmin(((h[:, None, :] - mu[None]) ** 2).sum(-1), axis=1)
    nc4 = np.mean(np.argmax(logits, 1) != ncc)
    got = rc.neural_collapse(h, y, weights=w, bias=b)
    assert got.nc3 == pytest.approx(nc3, rel=1e-10)
    assert got.nc4 == pytest.approx(nc4)
    assert rc.neural_collapse(h, y, logits=logits).nc4 == pytest.approx(nc4)
    # A classifier that is the nearest-class-mean rule has NC4 = 0.
    ncc_logits = -((h[:, None, :] - mu[None]) ** 2).sum(-1)
    assert rc.neural_collapse(h, y, logits=ncc_logits).nc4 == 0.0


@pytest.mark.parametrize("case", range(len(CASES)))
def test_scatter_trace_and_fisher_equal_references(case):
    h, y = CASES[case]
    sw, sb, st = ref.scatter(h, y)
    s = rc.scatter_matrices(h, y)
    for got, want in ((s.within, sw), (s.between, sb), (s.total, st)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * np.abs(want).max())
    np.testing.assert_allclose(s.sigma_within, sw / len(h), rtol=1e-10, atol=1e-12 * np.abs(sw).max())
    mu = ref.class_means(h, y)
    m = mu - mu.mean(0)
    np.testing.assert_allclose(s.sigma_between, m.T @ m / len(mu), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(s.counts, np.bincount(y))
    assert rc.trace_ratio(h, y) == pytest.approx(np.trace(sw) / np.trace(sb), rel=1e-10)
    assert rc.fisher_ratio(h, y) == pytest.approx(ref.fisher(h, y), rel=1e-9)
    assert rc.fisher_ratio(h, y, ridge=0.3) == pytest.approx(ref.fisher(h, y, 0.3), rel=1e-9)


def test_fisher_ratio_singular_within_scatter_needs_ridge():
    h, y = clustered_data(0, n=40, d=8, k=2)
    h[:, 3] = 1.0  # constant direction
    with pytest.raises(ValueError, match="ridge"):
        rc.fisher_ratio(h, y)
    assert np.isfinite(rc.fisher_ratio(h, y, ridge=1e-3))


# ---------------------------------------------------------------- intrinsic dimension


@pytest.mark.parametrize("d", (2, 5, 10))
def test_twonn_recovers_the_dimension_of_a_linear_subspace(d):
    rng = np.random.default_rng(d)
    n, big = 4000, 40
    basis = np.linalg.qr(rng.normal(size=(big, d)))[0]  # orthonormal d-frame in 40 dims
    # Gaussian coordinates in the subspace: a uniform cube would add the boundary bias TwoNN is
    # known to have at d = 10 and N = 4000 (points near faces see too few neighbours), ~ -11 %.
    h = rng.normal(size=(n, d)) @ basis.T + 5.0
    est = rc.twonn_dimension(h)
    assert abs(est - d) <= 0.1 * d, est


def test_twonn_equals_direct_reference_and_ignores_duplicates():
    rng = np.random.default_rng(3)
    h = rng.normal(size=(300, 3))
    h = np.vstack([h, h[:40]])  # duplicates are removed first
    assert rc.twonn_dimension(h) == pytest.approx(ref.twonn_direct(h), rel=1e-9)
    assert rc.twonn_dimension(h, discard_fraction=0.0) == pytest.approx(ref.twonn_direct(h, 0.0), rel=1e-9)
    assert rc.twonn_dimension(h.astype(np.float32)) == pytest.approx(ref.twonn_direct(h.astype(np.float32)), rel=1e-4)


def test_twonn_on_a_subspace_equals_direct_reference():
    # Points in a 3-D subspace of 12-D: the search drops the 9 empty principal directions.
    rng = np.random.default_rng(8)
    frame = np.linalg.qr(rng.normal(size=(12, 3)))[0]
    h = rng.normal(size=(400, 3)) @ frame.T + 2.0
    assert rc.twonn_dimension(h) == pytest.approx(ref.twonn_direct(h), rel=1e-9)


@pytest.mark.parametrize("shape", ((50, 7), (7, 50), (200, 200)))
def test_effective_rank_equals_reference(shape):
    rng = np.random.default_rng(1)
    h = rng.normal(size=shape) * np.linspace(0.1, 3, shape[1])
    assert rc.effective_rank(h) == pytest.approx(ref.effective_rank(h), rel=1e-10)
    assert rc.effective_rank(np.eye(6)) == pytest.approx(6.0, rel=1e-12)
    assert rc.effective_rank(np.outer(np.arange(1, 20), np.arange(1, 5))) == pytest.approx(1.0, abs=1e-6)


# ---------------------------------------------------------------- input handling


def test_float32_is_read_without_a_copy(monkeypatch):
    # docs/spec.md §0.2: C-contiguous float32 reaches the core as it is (no N × d copy, no float64 cast).
    h, y = clustered_data(1)
    h32 = np.ascontiguousarray(h, dtype=np.float32)
    seen = []
    real = rc.geometry._core.nc1_from_data
    monkeypatch.setattr(rc.geometry._core, "nc1_from_data", lambda a, *rest: (seen.append(a), real(a, *rest))[1])
    rc.neural_collapse(h32, y)
    assert (seen and seen[0] is h32) or np.shares_memory(seen[0], h32)
    assert rc.neural_collapse(h32, y).nc1 == pytest.approx(ref.nc1_pinv(h32, y), rel=1e-6)


@pytest.mark.parametrize(
    "call",
    [
        lambda h, y: rc.class_distance_normalized_variance(h, y),
        lambda h, y: rc.neural_collapse(h, y),
        lambda h, y: rc.trace_ratio(h, y),
        lambda h, y: rc.fisher_ratio(h, y),
        lambda h, y: rc.scatter_matrices(h, y),
        lambda h, y: rc.calinski_harabasz(h, y),
        lambda h, y: rc.davies_bouldin(h, y),
        lambda h, y: rc.silhouette(h, y),
    ],
)
def test_bad_input_raises_naming_the_argument(call):
    h, y = clustered_data(0, n=30, d=3, k=3)
    with pytest.raises(ValueError, match=r"^labels: .*(at least 2 classes|number of labels is 1)"):
        call(h, np.zeros(30, dtype=int))
    with pytest.raises(ValueError, match=r"^labels: has 29 entries but h has 30"):
        call(h, y[:29])
    bad = h.copy()
    bad[7, 1] = np.nan
    with pytest.raises(ValueError, match=r"^h: contains NaN or inf \(first at row 7\)"):
        call(bad, y)
    with pytest.raises(ValueError, match=r"^h: expected a 1-D"):
        call(h.reshape(30, 3, 1), y)
    with pytest.raises(ValueError, match=r"^labels: must be integer-like"):
        call(h, y + 0.5)


def test_degenerate_values_are_documented_not_silent():
    h = np.array([[0.0], [1.0], [0.0], [1.0]])
    y = np.array([0, 0, 1, 1])  # coincident class means
    assert rc.class_distance_normalized_variance(h, y) == np.inf
    assert rc.trace_ratio(h, y) == np.inf
    with pytest.raises(ValueError, match="coincide"):
        rc.neural_collapse(h, y)
    with pytest.raises(ValueError, match=r"^labels: .*ddof=1"):
        rc.class_distance_normalized_variance(np.arange(5.0), [0, 0, 1, 1, 2], ddof=1)
    with pytest.raises(ValueError, match=r"^ddof"):
        rc.class_distance_normalized_variance(np.arange(4.0), [0, 0, 1, 1], ddof=2)
    with pytest.raises(ValueError, match=r"^labels: number of labels is 4"):
        rc.silhouette(np.arange(4.0), [0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"^discard_fraction"):
        rc.twonn_dimension(np.random.default_rng(0).normal(size=(20, 2)), discard_fraction=1.0)
    with pytest.raises(ValueError, match=r"^h: TwoNN needs at least 3 distinct"):
        rc.twonn_dimension(np.array([[0.0, 1], [0, 1], [2, 2]]))
    with pytest.raises(ValueError, match=r"^h: all entries are 0"):
        rc.effective_rank(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"^weights: has 2 classes but labels contain class id 2"):
        rc.neural_collapse(*clustered_data(0, n=30, d=3, k=3), weights=np.ones((2, 3)))


def test_streaming_errors():
    s = rc.ClassStatistics(second_moments=False)
    with pytest.raises(ValueError, match="no data"):
        s.cdnv()
    s.update(np.ones((3, 2)), [0, 1, 1])
    with pytest.raises(ValueError, match=r"^h: has 3 columns but earlier batches had 2"):
        s.update(np.ones((3, 3)), [0, 1, 1])
    with pytest.raises(ValueError, match="second_moments"):
        s.nc1()
