"""Confidence intervals and permutation tests (docs/spec.md §5): coverage, calibration, determinism, and
that the parallel Rust path equals evaluating the estimator on each resample."""

import functools
import inspect
import math
import typing

import numpy as np
import pytest
from scipy import stats

import repcompress as rc
from repcompress import _core, uncertainty
from repcompress._resampling import describe


def _gaussian_pair(n, rho, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    y = rho * x + math.sqrt(1 - rho**2) * rng.standard_normal(n)
    return x, y


def test_half_sampling_interval_covers_known_mi():
    # The design of docs/spec.md §5.2: N = 2000, rho = 0.6, 50 half-samples; 60 seeded repetitions.
    # Measured when this test was written: 58 of 60 intervals cover the truth (0.967); mean
    # stderr 0.0248 nats. With the half-samples drawn in Rust (per-resample xoshiro256++ streams):
    # again 58 of 60; mean stderr 0.0242 nats.
    truth = -0.5 * math.log(1 - 0.6**2)
    covered = 0
    for seed in range(60):
        x, y = _gaussian_pair(2000, 0.6, seed)
        ci = rc.confidence_interval(rc.mutual_info, x, y, n_resamples=50, random_state=seed)
        assert ci.method.startswith("half-sampling")
        assert ci.low < ci.value < ci.high
        covered += ci.low <= truth <= ci.high
    assert 0.85 <= covered / 60 <= 1.0


def test_permutation_pvalues_are_uniform_under_independence():
    pvalues = []
    for seed in range(100):
        rng = np.random.default_rng(1000 + seed)
        x, y = rng.standard_normal(150), rng.standard_normal(150)
        pvalues.append(rc.permutation_test(rc.mutual_info, x, y, n_permutations=99, random_state=seed).pvalue)
    pvalues = np.array(pvalues)
    # p-values live on the grid k/100; against the continuous uniform the KS distance gains at most 0.01.
    assert stats.kstest(pvalues, "uniform").pvalue > 0.01
    assert 0.3 < pvalues.mean() < 0.7


def test_permutation_pvalue_is_tiny_for_strong_dependence():
    x, y = _gaussian_pair(500, 0.9, 1)
    res = rc.permutation_test(rc.mutual_info, x, y, n_permutations=200)
    assert res.pvalue == 1 / 201
    assert res.null.shape == (200,) and res.null.max() < res.statistic
    labels = (x > 0).astype(int)
    assert rc.permutation_test(rc.mutual_info_labels, x, labels, n_permutations=50).pvalue == 1 / 51
    assert rc.permutation_test(rc.binned_mutual_info, x, labels, n_bins=8, n_permutations=50).pvalue == 1 / 51


def test_stratified_permutation_keeps_classes():
    # y is a function of the class: shuffling y within classes changes nothing, so every null
    # value equals the statistic and p = 1.
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, 300)
    x = rng.standard_normal(300)
    y = labels * 1.0
    res = rc.permutation_test(
        rc.mutual_info_given_labels, x, y, labels=labels, n_permutations=20, jitter=0, normalize=False
    )
    assert res.stratified
    assert np.all(res.null == res.statistic)
    assert res.pvalue == 1.0


@pytest.mark.parametrize(
    "estimator, arrays, kwargs",
    [
        (rc.mutual_info, "xy", dict(estimator="ksg2")),
        (rc.entropy, "x", {}),
        (rc.conditional_mutual_info, "xyz", {}),
        (rc.mutual_info_labels, "xl", {}),
        (rc.mutual_info_given_labels, "xyl", {}),
        (rc.mutual_info, "xy", dict(metric="euclidean")),
        (rc.entropy, "x", dict(metric="euclidean")),
        (rc.conditional_mutual_info, "xyz", dict(metric="euclidean")),
        (rc.mutual_info_labels, "xl", dict(metric="euclidean")),
        (rc.mutual_info_given_labels, "xyl", dict(estimator="ksg2", metric="euclidean")),
    ],
)
def test_parallel_resamples_equal_the_estimator_on_each_resample(estimator, arrays, kwargs):
    rng = np.random.default_rng(5)
    n = 120
    pool = {
        "x": rng.standard_normal((n, 2)),
        "y": rng.standard_normal(n),
        "z": rng.standard_normal(n),
        "l": rng.integers(0, 3, n),
    }
    args = [pool[a] for a in arrays]
    kwargs = dict(kwargs, normalize=False, jitter=0)
    fast = rc.confidence_interval(estimator, *args, n_resamples=6, random_state=3, **kwargs)
    # The same call through the generic path (an unknown callable: one call per resample).
    slow = rc.confidence_interval(lambda *a, **kw: estimator(*a, **kw), *args, n_resamples=6, random_state=3, **kwargs)
    np.testing.assert_array_equal(fast.resamples, slow.resamples)
    assert fast.value == slow.value


def test_bootstrap_path_equals_generic_path_for_plug_in_estimators():
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((300, 2)), rng.integers(0, 3, 300)
    # Fixed-width bins do not depend on the data's range, so fitting the binning once (fast path)
    # or per resample (generic path) gives the same patterns.
    for correction in (None, "miller-madow"):
        fast = rc.confidence_interval(rc.binned_mutual_info, x, y, bin_size=0.5, correction=correction, n_resamples=8)
        assert fast.method.startswith("bootstrap")
        slow = rc.confidence_interval(
            # A plain callable (the generic path), bound to this iteration's correction.
            lambda a, b, correction=correction: rc.binned_mutual_info(a, b, bin_size=0.5, correction=correction),
            x,
            y,
            n_resamples=8,
            method="bootstrap",
        )
        assert fast.value == slow.value
        np.testing.assert_allclose(fast.resamples, slow.resamples, rtol=0, atol=1e-13)
        fast_h = rc.confidence_interval(rc.binned_entropy, x, bin_size=0.5, correction=correction, n_resamples=8)
        slow_h = rc.confidence_interval(
            lambda a, correction=correction: rc.binned_entropy(a, bin_size=0.5, correction=correction),
            x,
            n_resamples=8,
            method="bootstrap",
        )
        np.testing.assert_allclose(fast_h.resamples, slow_h.resamples, rtol=0, atol=1e-13)
    for n_threads in (1, 2):
        rc.set_num_threads(n_threads)
        again = rc.confidence_interval(rc.binned_entropy, x, n_bins=5, n_resamples=30)
        if n_threads == 1:
            first = again
    np.testing.assert_array_equal(first.resamples, again.resamples)


def test_same_seed_same_result_at_any_thread_count():
    x, y = _gaussian_pair(400, 0.5, 3)
    before = rc.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            rc.set_num_threads(threads)
            results.append(rc.confidence_interval(rc.mutual_info, x, y, n_resamples=20, random_state=9))
            results.append(rc.permutation_test(rc.mutual_info, x, y, n_permutations=20, random_state=9))
    finally:
        rc.set_num_threads(before)
    for a in results[2::2]:
        np.testing.assert_array_equal(a.resamples, results[0].resamples)
    for a in results[3::2]:
        np.testing.assert_array_equal(a.null, results[1].null)


def test_any_callable_and_partials():
    rng = np.random.default_rng(4)
    a = rng.standard_normal(400) + 3.0
    ci = rc.confidence_interval(np.mean, a, n_resamples=300, method="bootstrap")
    assert ci.low < 3.0 < ci.high
    assert ci.stderr == pytest.approx(1 / math.sqrt(400), rel=0.25)
    partial = functools.partial(rc.mutual_info, k=5, random_state=2)
    x, y = _gaussian_pair(300, 0.5, 0)
    ci = rc.confidence_interval(partial, x, y, n_resamples=10)
    assert ci.value == rc.mutual_info(x, y, k=5, random_state=2)
    assert ci.method.startswith("half-sampling")
    fn, info, _, kwargs = describe(partial)
    assert fn is rc.mutual_info and info is not None and kwargs == {"k": 5, "random_state": 2}


def test_jobs_take_the_estimators_signatures():
    for fn in (
        rc.mutual_info,
        rc.conditional_mutual_info,
        rc.entropy,
        rc.mutual_info_labels,
        rc.mutual_info_given_labels,
        rc.binned_entropy,
        rc.binned_mutual_info,
    ):
        _, info, _, _ = describe(fn)
        want = inspect.signature(fn)
        got = inspect.signature(info.job)
        assert [(p.name, p.default, p.kind) for p in got.parameters.values()] == [
            (p.name, p.default, p.kind) for p in want.parameters.values()
        ], fn.__name__


def test_estimators_show_their_public_signature():
    # The decorated estimator runs the job its body builds; what it shows is the public function.
    for fn in (
        rc.mutual_info,
        rc.conditional_mutual_info,
        rc.entropy,
        rc.mutual_info_labels,
        rc.mutual_info_given_labels,
        rc.binned_entropy,
        rc.binned_mutual_info,
    ):
        _, info, _, _ = describe(fn)
        assert fn.__wrapped__ is info.job, fn.__name__
        assert inspect.signature(fn).return_annotation == "float", fn.__name__
        assert typing.get_type_hints(fn)["return"] is float, fn.__name__
        assert fn.__doc__ and fn.__doc__ == info.job.__doc__, fn.__name__
        assert fn.__module__ == info.job.__module__ and fn.__qualname__ == fn.__name__ == info.job.__name__


def test_bad_requests():
    x, y = _gaussian_pair(50, 0.5, 0)
    with pytest.raises(ValueError, match="bootstrap is invalid for k-NN"):
        rc.confidence_interval(rc.mutual_info, x, y, method="bootstrap")
    with pytest.raises(ValueError, match="n_resamples"):
        rc.confidence_interval(rc.mutual_info, x, y, n_resamples=1)
    with pytest.raises(ValueError, match="confidence"):
        rc.confidence_interval(rc.mutual_info, x, y, confidence=1.0)
    with pytest.raises(ValueError, match="method"):
        rc.confidence_interval(rc.mutual_info, x, y, method="jackknife")
    with pytest.raises(ValueError, match="no valid permutation test"):
        rc.permutation_test(rc.conditional_mutual_info, x, y, z=x + y)
    with pytest.raises(ValueError, match=r"k: k must be smaller than the number of samples \(25\)"):
        rc.confidence_interval(rc.mutual_info, x, y, k=30)
    with pytest.raises(ValueError, match="y: has"):
        rc.permutation_test(rc.mutual_info, x, y[:-1])
    with pytest.raises(TypeError, match="n_permutations"):
        rc.permutation_test(rc.mutual_info, x, y, n_permutations=2.5)


def test_geometry_metrics_resample_with_their_declared_scheme():
    rng = np.random.default_rng(8)
    labels = rng.integers(0, 3, 300)
    h = rng.standard_normal((3, 5))[labels] * 3 + rng.standard_normal((300, 5))
    ci = rc.confidence_interval(rc.class_distance_normalized_variance, h, labels, n_resamples=40)
    assert ci.method.startswith("bootstrap") and ci.low < ci.value < ci.high
    # Rows are resampled together with their labels: the generic path equals direct calls on the
    # rows the call draws (one 64-bit seed from random_state=0, then resample b from (seed, b)).
    seed = int(np.random.default_rng(0).integers(0, 2**64, dtype=np.uint64))
    first = _core.Draws("bootstrap", 300, seed).rows(0, 1)[0]
    assert ci.resamples[0] == rc.class_distance_normalized_variance(h[first], labels[first])
    sil = rc.confidence_interval(rc.silhouette, h, labels=labels, n_resamples=10)
    assert sil.method.startswith("half-sampling")
    rows = _core.Draws("subsample", 300, seed).rows(0, 1)[0]
    assert sil.resamples[0] == rc.silhouette(h[rows], labels[rows])


def test_drawn_rows_are_valid_resamples_and_do_not_depend_on_the_batch():
    n = 301
    boot = _core.Draws("bootstrap", n, 12)
    rows = boot.rows(0, 50)
    assert rows.shape == (50, n) and rows.min() >= 0 and rows.max() < n
    # Each row appears Binomial(N, 1/N) times per resample: mean 1, variance (1 - 1/N).
    counts = np.stack([np.bincount(r, minlength=n) for r in rows])
    assert abs(counts.mean() - 1) < 1e-12 and 0.9 < counts.var() < 1.1
    half = _core.Draws("subsample", n, 12).rows(0, 50)
    assert half.shape == (50, 150)
    assert np.all(np.diff(half, axis=1) > 0) and half.min() >= 0 and half.max() < n
    perm = _core.Draws("permutation", n, 12).rows(0, 5)
    assert np.all(np.sort(perm, axis=1) == np.arange(n))
    strata = np.arange(n) % 4
    kept = _core.Draws("permutation", n, 12, strata).rows(0, 5)
    assert np.all(strata[kept] == strata) and np.all(np.sort(kept, axis=1) == np.arange(n))
    assert np.any(kept != np.arange(n))
    # Resample b depends on (seed, b) only: any batch gives the same rows.
    for scheme in ("bootstrap", "subsample", "permutation"):
        draws = _core.Draws(scheme, n, 99)
        whole = draws.rows(0, 20)
        np.testing.assert_array_equal(np.concatenate([draws.rows(0, 3), draws.rows(3, 1), draws.rows(4, 16)]), whole)
        assert not np.array_equal(_core.Draws(scheme, n, 100).rows(0, 20), whole)
    with pytest.raises(ValueError, match="scheme"):
        _core.Draws("jackknife", n, 1)
    with pytest.raises(ValueError, match="strata"):
        _core.Draws("bootstrap", n, 1, strata)


def _two_ways(run, monkeypatch):
    """`run()` at 1 and 2 threads, and in batches of a few resamples (4 × threads each)."""
    before = rc.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            rc.set_num_threads(threads)
            results.append(run())
        with monkeypatch.context() as mp:
            mp.setattr(uncertainty, "_CHUNK_ENTRIES", 1)
            mp.setattr(uncertainty, "_BATCH_SECONDS", 0.0)
            results.append(run())
    finally:
        rc.set_num_threads(before)
    return results


def test_same_seed_same_bits_at_any_thread_count_and_batching(monkeypatch):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((400, 3))
    y = (x[:, 0] + rng.standard_normal(400) > 0).astype(int)
    labels = rng.integers(0, 3, 400)
    cases = [
        lambda: rc.confidence_interval(rc.binned_mutual_info, x, y, n_bins=4, n_resamples=30, random_state=5).resamples,
        lambda: rc.confidence_interval(rc.binned_entropy, x, n_bins=4, n_resamples=30, random_state=5).resamples,
        lambda: rc.confidence_interval(rc.entropy, x, n_resamples=30, random_state=5).resamples,
        lambda: rc.permutation_test(rc.binned_mutual_info, x, y, n_bins=4, n_permutations=30, random_state=5).null,
        lambda: (
            rc.permutation_test(
                rc.mutual_info_given_labels, x[:, 0], x[:, 1], labels=labels, n_permutations=30, random_state=5
            ).null
        ),
        # The generic path (one call per resample) with rows drawn in Rust.
        lambda: rc.confidence_interval(lambda a: float(np.mean(a)), x[:, 0], n_resamples=30, random_state=5).resamples,
    ]
    for case in cases:
        first, *others = _two_ways(case, monkeypatch)
        assert first.shape == (30,) and np.unique(first).size > 1
        for other in others:
            np.testing.assert_array_equal(other, first)


def test_generic_and_rust_paths_draw_the_same_resamples():
    rng = np.random.default_rng(11)
    x, y = rng.standard_normal(200), rng.standard_normal(200)
    seen = []

    def recording(a, b):
        seen.append((a.copy(), b.copy()))
        return rc.mutual_info(a, b)

    # Permutation test: the generic path shuffles the second array with the same shuffles.
    fast = rc.permutation_test(rc.mutual_info, x, y, n_permutations=12, random_state=4)
    slow = rc.permutation_test(recording, x, y, n_permutations=12, random_state=4)
    np.testing.assert_array_equal(fast.null, slow.null)
    seed = int(np.random.default_rng(4).integers(0, 2**64, dtype=np.uint64))
    shuffles = _core.Draws("permutation", 200, seed).rows(0, 12)
    for (a, b), perm in zip(seen[1:], shuffles, strict=True):
        np.testing.assert_array_equal(a, x)
        np.testing.assert_array_equal(b, y[perm])
    # Half-samples: the generic path is called on exactly the drawn rows, in order.
    seen.clear()
    rc.confidence_interval(recording, x, y, n_resamples=7, random_state=4)
    halves = _core.Draws("subsample", 200, seed).rows(0, 7)
    assert len(seen) == 8
    for (a, b), rows in zip(seen[1:], halves, strict=True):
        np.testing.assert_array_equal(a, x[rows])
        np.testing.assert_array_equal(b, y[rows])


def test_different_seeds_draw_different_resamples():
    x, y = _gaussian_pair(300, 0.5, 2)
    a = rc.confidence_interval(rc.mutual_info, x, y, n_resamples=10, random_state=1)
    b = rc.confidence_interval(rc.mutual_info, x, y, n_resamples=10, random_state=2)
    assert not np.any(a.resamples == b.resamples)
    # A Generator is advanced by each call: two calls with it draw different resamples.
    gen = np.random.default_rng(1)
    c = rc.confidence_interval(rc.binned_mutual_info, x, y, n_bins=4, n_resamples=10, random_state=gen)
    d = rc.confidence_interval(rc.binned_mutual_info, x, y, n_bins=4, n_resamples=10, random_state=gen)
    assert not np.array_equal(c.resamples, d.resamples)
    p = rc.permutation_test(rc.mutual_info, x, y, n_permutations=10, random_state=1)
    q = rc.permutation_test(rc.mutual_info, x, y, n_permutations=10, random_state=2)
    assert not np.any(p.null == q.null)
