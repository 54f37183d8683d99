"""The torch backend of the k-NN estimators (docs/spec.md §8): the same neighbour counts as the Rust
core, hence the same estimates, bit for bit.

Every test runs on CPU torch (``device="cpu"`` runs the torch kernels on the CPU) and, where a
CUDA device exists, on it too. The counts of the kernels are checked against a slow brute-force
reference written here in numpy; the estimates against the Rust path on the same (numpy) data.
"""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import repcompress as rc
from repcompress._torch_backend import knn, prepare, resolve_device
from repcompress._validation import column_std, preprocess
from strategies import dimensions, tied_arrays
from torch_support import require_torch

torch = require_torch()

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
EXACT = {"normalize": False, "jitter": 0}
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


def on(device, *arrays):
    return [torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in arrays]


def tied(rng, n, d, kind):
    """Data with ties on purpose: few distinct values, duplicated rows, ReLU zeros."""
    if kind == "integers":
        a = rng.integers(0, 3, size=(n, d)).astype(np.float64)
    elif kind == "relu":
        a = np.maximum(rng.standard_normal((n, d)), 0.0)
    else:
        a = np.round(rng.standard_normal((n, d)), 1)
    dup = rng.integers(0, n, size=(n // 4, 2))
    a[dup[:, 1]] = a[dup[:, 0]]
    return a


# ----------------------------------------------------------------------------------------------
# A slow, obviously correct reference for the kernels' counts
# ----------------------------------------------------------------------------------------------


def ref_chebyshev(a):
    """All pairwise max-norm distances, self at +inf."""
    dist = np.abs(a[:, None, :] - a[None, :, :]).max(axis=2)
    np.fill_diagonal(dist, np.inf)
    return dist


def ref_squared(a):
    """All pairwise squared Euclidean distances, summed over the columns in order, self at +inf."""
    dist = np.zeros((len(a), len(a)), a.dtype)
    for c in range(a.shape[1]):  # the core's order of summation
        gap = a[:, None, c] - a[None, :, c]
        dist = dist + gap * gap
    np.fill_diagonal(dist, np.inf)
    return dist


def ref_ksg_counts(x, y, k, variant, metric="chebyshev"):
    # Euclidean: squared distances throughout (the max of squares is the square of the max).
    ref = ref_chebyshev if metric == "chebyshev" else ref_squared
    dx, dy = ref(x), ref(y)
    joint = np.maximum(dx, dy)
    n = len(x)
    nx, ny = np.empty(n, np.int64), np.empty(n, np.int64)
    for i in range(n):
        order = np.lexsort((np.arange(n), joint[i]))  # by distance, ties to the smaller index
        eps = joint[i, order[k - 1]]
        if variant == "ksg1":
            nx[i], ny[i] = (dx[i] < eps).sum(), (dy[i] < eps).sum()
        else:
            neighbours = order[:k]
            nx[i] = (dx[i] <= dx[i, neighbours].max()).sum()
            ny[i] = (dy[i] <= dy[i, neighbours].max()).sum()
    return nx, ny


def ref_kth(a, k, metric):
    dist = ref_chebyshev(a) if metric == "chebyshev" else ref_squared(a)
    kth = np.sort(dist, axis=1)[:, k - 1]
    return np.sqrt(kth) if metric == "euclidean" else kth


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("variant", ["ksg1", "ksg2"])
@pytest.mark.parametrize("kind", ["integers", "relu", "rounded", "normal"])
@pytest.mark.parametrize("metric", ["chebyshev", "euclidean"])
def test_ksg_counts_equal_brute_force_reference(device, variant, kind, metric):
    rng = np.random.default_rng(3)
    for n, dx, dy, k in [(40, 1, 1, 1), (60, 3, 2, 4), (50, 18, 9, 10)]:
        if kind == "normal":
            x, y = rng.standard_normal((n, dx)), rng.standard_normal((n, dy))
        else:
            x, y = tied(rng, n, dx, kind), tied(rng, n, dy, kind)
        want = ref_ksg_counts(x, y, k, variant, metric)
        got = [c.cpu().numpy() for c in knn._ksg_counts(*on(device, x, y), k, variant, metric)]
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("metric", ["chebyshev", "euclidean"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kth_distances_and_counts_equal_reference(device, metric, dtype):
    rng = np.random.default_rng(4)
    for n, d, k in [(30, 1, 1), (70, 5, 3), (45, 20, 7)]:
        a = tied(rng, n, d, "rounded").astype(dtype)
        (t,) = on(device, a)
        got = knn.kth_distances([t], k, metric)
        np.testing.assert_array_equal(got, ref_kth(a, k, metric))
        if metric == "chebyshev":
            dist = ref_chebyshev(a)
            for strict in (True, False):
                want = (dist < got[:, None]).sum(1) if strict else (dist <= got[:, None]).sum(1)
                counts = knn.count_within(t, torch.from_numpy(got).to(device), strict=strict).cpu().numpy()
                np.testing.assert_array_equal(counts, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_both_max_norm_tiles_equal_the_reference(dtype):
    rng = np.random.default_rng(17)
    for d in (1, 4, 33):
        a = tied(rng, 40, d, "rounded").astype(dtype) * 0.37
        (t,) = on("cpu", a)
        want = np.abs(a[:, None, :] - a[None, :, :]).max(axis=2)
        np.testing.assert_array_equal(knn.chebyshev_tile(t[5:17], t).numpy(), want[5:17])
        np.testing.assert_array_equal(knn.chebyshev_tile_by_columns(t[5:17], t).numpy(), want[5:17])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gram_candidates_keep_every_nearest_exact_distance(device, dtype):
    # The Gram screening keeps, per query, every point whose exact distance can be among the k
    # smallest: the k smallest entries of its tile are those of the full exact tile.
    rng = np.random.default_rng(20)
    for n, d, k, offset, kind in [(300, 24, 5, 0.0, "normal"), (200, 40, 3, 3.0, "rounded"), (250, 8, 10, 0.0, "relu")]:
        a = (rng.standard_normal((n, d)) if kind == "normal" else tied(rng, n, d, kind)) + offset
        (t,) = on(device, a.astype(dtype))
        full = knn._without_self(knn.euclidean_squared_tile(t[10:60], t), 10)
        screened = knn.euclidean_nearest_tile(t, 10, 60, k, knn._squared_norms(t))
        assert int(torch.isinf(screened).sum()) > 50 * n // 2  # the screening did drop most pairs
        want = full.topk(k, dim=1, largest=False).values
        np.testing.assert_array_equal(screened.topk(k, dim=1, largest=False).values.cpu().numpy(), want.cpu().numpy())
        kept = torch.isfinite(screened)
        np.testing.assert_array_equal(screened[kept].cpu().numpy(), full[kept].cpu().numpy())


def test_blocks_cover_the_queries_in_pieces(monkeypatch):
    # Tiny tiles: several blocks of a few queries each, the result the same as in one block.
    rng = np.random.default_rng(5)
    x, y = tied(rng, 90, 3, "integers"), tied(rng, 90, 2, "relu")
    whole = [c.numpy() for c in knn._ksg_counts(*on("cpu", x, y), 3, "ksg2", "euclidean")]
    monkeypatch.setattr(knn, "TILE_BYTES", 7 * 90 * 8)
    assert knn.block_rows(90, 8) == 7
    pieces = [c.numpy() for c in knn._ksg_counts(*on("cpu", x, y), 3, "ksg2", "euclidean")]
    np.testing.assert_array_equal(whole[0], pieces[0])
    np.testing.assert_array_equal(whole[1], pieces[1])


# ----------------------------------------------------------------------------------------------
# The estimates equal the Rust path's, bit for bit
# ----------------------------------------------------------------------------------------------


def outcome(call):
    """The value of an estimate, or its error's type and message (both paths raise alike)."""
    try:
        return call()
    except ValueError as exc:
        return (type(exc).__name__, str(exc))


def every_estimate(x, y, z, labels, k, device, **options):
    """Every k-NN estimator on the same data, by the Rust path (device None) or the torch one."""
    kw = {"k": k, "device": device, **options}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # k > N/2, skipped classes
        warnings.simplefilter("ignore", RuntimeWarning)  # entropy -inf on duplicates without jitter
        return {
            "ksg1": outcome(lambda: rc.mutual_info(x, y, **kw)),
            "ksg2": outcome(lambda: rc.mutual_info(x, y, estimator="ksg2", **kw)),
            "cmi": outcome(lambda: rc.conditional_mutual_info(x, y, z, **kw)),
            "entropy_max": outcome(lambda: rc.entropy(x, **kw)),
            "entropy_euclid": outcome(lambda: rc.entropy(x, metric="euclidean", **kw)),
            "ross": outcome(lambda: rc.mutual_info_labels(x, labels, **kw)),
            "given1": outcome(lambda: rc.mutual_info_given_labels(x, y, labels, **kw)),
            "given2": outcome(lambda: rc.mutual_info_given_labels(x, y, labels, estimator="ksg2", **kw)),
            "ksg1_euclid": outcome(lambda: rc.mutual_info(x, y, metric="euclidean", **kw)),
            "ksg2_euclid": outcome(lambda: rc.mutual_info(x, y, estimator="ksg2", metric="euclidean", **kw)),
            "cmi_euclid": outcome(lambda: rc.conditional_mutual_info(x, y, z, metric="euclidean", **kw)),
            "ross_euclid": outcome(lambda: rc.mutual_info_labels(x, labels, metric="euclidean", **kw)),
            "given2_euclid": outcome(
                lambda: rc.mutual_info_given_labels(x, y, labels, estimator="ksg2", metric="euclidean", **kw)
            ),
        }


def assert_same(got, want):
    for name in want:
        a, b = got[name], want[name]
        same = a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
        assert same, (name, a, b)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_estimator_equals_rust_path_on_tied_data(device, dtype):
    rng = np.random.default_rng(6)
    shapes = [(80, 1, 1, 1, 1), (100, 3, 2, 2, 5), (70, 17, 20, 3, 10), (120, 2, 24, 1, 3)]
    for kind in ["integers", "relu", "rounded"]:
        for n, dx, dy, dz, k in shapes:
            x, y, z = (tied(rng, n, d, kind).astype(dtype) for d in (dx, dy, dz))
            labels = rng.integers(0, 4, size=n)
            labels[0] = 7  # a single-member class: dropped by Ross, skipped by the conditional MI
            for options in (EXACT, {}):
                want = every_estimate(x, y, z, labels, k, None, **options)
                got = every_estimate(*on(device, x, y, z), labels, k, device, **options)
                assert_same(got, want)


@pytest.mark.parametrize("device", DEVICES)
def test_every_estimator_equals_rust_path_on_continuous_data(device):
    rng = np.random.default_rng(7)
    for n, dx, dy, k in [(300, 2, 2, 3), (200, 33, 16, 6)]:
        x = rng.standard_normal((n, dx))
        y = x[:, :dy] + 0.5 * rng.standard_normal((n, dy))
        z = rng.standard_normal((n, 2))
        labels = rng.integers(0, 3, size=n)
        for options in (EXACT, {}, {"normalize": True, "jitter": 0}, {"normalize": False}):
            want = every_estimate(x, y, z, labels, k, None, **options)
            got = every_estimate(x, y, z, labels, k, device, **options)  # numpy data sent by device=
            assert_same(got, want)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float32_and_float64_every_k_equal_rust_path(device, dtype):
    # float32 without pre-processing is computed in float32 on both paths (docs/spec.md §1.1): the
    # tolerance is zero, as for float64.
    rng = np.random.default_rng(18)
    x = rng.standard_normal((150, 20)).astype(dtype)
    y = (x[:, :5] + rng.standard_normal((150, 5))).astype(dtype)
    for k in range(1, 11):
        for estimator in ("ksg1", "ksg2"):
            want = rc.mutual_info(x, y, k=k, estimator=estimator, **EXACT)
            assert rc.mutual_info(*on(device, x, y), k=k, estimator=estimator, device=device, **EXACT) == want
        for metric in ("chebyshev", "euclidean"):
            want = rc.entropy(x, k=k, metric=metric, **EXACT)
            assert rc.entropy(*on(device, x), k=k, metric=metric, device=device, **EXACT) == want


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_property_equal_to_rust_path(data):
    n = data.draw(st.integers(5, 40))
    k = data.draw(st.integers(1, min(10, n - 1)))
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    x, y, z = data.draw(tied_arrays(n, [data.draw(dimensions()) for _ in range(3)], dtype))
    labels = np.asarray(data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    options = data.draw(st.sampled_from([EXACT, {}]))
    assert_same(
        every_estimate(x, y, z, labels, k, "cpu", **options), every_estimate(x, y, z, labels, k, None, **options)
    )


@pytest.mark.parametrize("device", DEVICES)
def test_magnitude_far_from_one_equals_rust_path(device):
    # docs/spec.md §0.8: both paths divide by the same power of two; the entropy adds d·e·log 2.
    rng = np.random.default_rng(8)
    x, y = tied(rng, 60, 3, "rounded"), tied(rng, 60, 2, "relu")
    for scale, dtype in [(2.0**600, np.float64), (2.0**-700, np.float64), (2.0**60, np.float32)]:
        xs, ys = (x * scale).astype(dtype), (y * scale).astype(dtype)
        for options in (EXACT, {"normalize": False}, {}):
            want = every_estimate(xs, ys, ys, np.arange(60) % 3, 4, None, **options)
            got = every_estimate(*on(device, xs, ys, ys), np.arange(60) % 3, 4, device, **options)
            assert_same(got, want)


@pytest.mark.parametrize("device", DEVICES)
def test_integer_bool_and_grad_tensors_read_as_the_rust_path_reads_them(device):
    rng = np.random.default_rng(9)
    ints = rng.integers(-5, 5, size=(50, 3))
    flags = rng.random((50, 2)) < 0.5
    want = rc.mutual_info(ints, flags, **EXACT)
    assert rc.mutual_info(*on(device, ints, flags), device=device, **EXACT) == want
    leaf = torch.tensor(ints, dtype=torch.float64, device=device, requires_grad=True)
    assert rc.mutual_info(leaf, torch.tensor(flags, device=device), device=device, **EXACT) == want
    # A CPU tensor that requires grad goes to the Rust path, detached.
    assert rc.mutual_info(leaf.detach().cpu().requires_grad_(), torch.tensor(flags), **EXACT) == want


# ----------------------------------------------------------------------------------------------
# Pre-processing on the device
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_preprocessing_equals_the_hosts_bit_for_bit(device):
    rng = np.random.default_rng(10)
    for n in (1, 2, 7, 500, 1025):
        a = rng.standard_normal((n, 7)) * np.array([1, 10, 1e-3, 1e300, 1e-300, 0, 3])
        a[:, 5] = 2.5  # a constant column
        (t,) = on(device, a)
        np.testing.assert_array_equal(prepare.column_std(t).cpu().numpy(), column_std(a))
        for normalize, jitter in [(True, 0.0), (True, 1e-10), (False, 1e-3)]:
            (want,) = preprocess([a], normalize=normalize, jitter=jitter, random_state=3)
            (got,) = prepare.preprocess([t], normalize=normalize, jitter=jitter, random_state=3)
            np.testing.assert_array_equal(got.cpu().numpy(), want)
    # Without either step the data are used as given.
    (same,) = prepare.preprocess([t], normalize=False, jitter=0.0, random_state=3)
    assert same.data_ptr() == t.data_ptr()


def test_column_std_is_the_population_std():
    # The fixed pairwise order is as accurate as numpy's own (a few ulps apart at most).
    rng = np.random.default_rng(16)
    a = rng.standard_normal((3001, 5)) * 4 + 100
    np.testing.assert_array_max_ulp(column_std(a), a.std(axis=0), maxulp=8)
    assert column_std(np.array([[1.0], [3.0]]))[0] == 1.0


def test_jitter_is_the_cores_noise():
    b = np.arange(15000, dtype=np.float64).reshape(5000, 3)
    (want,) = preprocess([b], normalize=True, jitter=0.25, random_state=np.random.default_rng(12))
    (got,) = prepare.preprocess(on("cpu", b), normalize=True, jitter=0.25, random_state=np.random.default_rng(12))
    np.testing.assert_array_equal(got.numpy(), want)
    assert np.abs(got.numpy() - b / column_std(b)).max() > 0.1  # noise was added


# ----------------------------------------------------------------------------------------------
# TwoNN
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_twonn_equals_rust_path_to_the_rounding_of_the_rotation(device):
    # The core searches in principal-axis coordinates (a rotation, exact only up to rounding),
    # the device on the given ones: the ratios agree to rounding, and so do the fits.
    rng = np.random.default_rng(13)
    for n, d, f in [(400, 3, 0.1), (300, 20, 0.0), (200, 5, 0.5)]:
        h = rng.standard_normal((n, 2)) @ rng.standard_normal((2, d)) + 0.01 * rng.standard_normal((n, d))
        h = np.vstack([h, h[:10]])  # duplicates, removed by both
        want = rc.twonn_dimension(h, discard_fraction=f)
        got = rc.twonn_dimension(*on(device, h), discard_fraction=f, device=device)
        assert got == pytest.approx(want, rel=1e-12)


def test_twonn_errors_as_the_rust_path():
    with pytest.raises(ValueError, match="h: TwoNN needs at least 3 distinct points"):
        rc.twonn_dimension(torch.ones(10, 2), device="cpu")
    grid = np.stack(np.meshgrid(np.arange(6.0), np.arange(6.0)), axis=-1).reshape(-1, 2)
    with pytest.raises(ValueError, match="h: every kept ratio r2/r1 is 1"):
        rc.twonn_dimension(grid, device="cpu")


# ----------------------------------------------------------------------------------------------
# Where a call runs, and its errors and warnings
# ----------------------------------------------------------------------------------------------


def test_cpu_tensors_without_device_run_on_the_rust_core():
    x, y = on("cpu", np.arange(20.0), np.arange(20.0) ** 2)
    assert rc.mutual_info.__wrapped__(x, y).device is None
    assert isinstance(rc.mutual_info.__wrapped__(x, y).arrays[0], np.ndarray)
    job = rc.mutual_info.__wrapped__(x, y, device="cpu")
    assert job.device == torch.device("cpu")
    assert isinstance(job.arrays[0], torch.Tensor)


def test_device_argument_errors():
    x = np.arange(20.0)
    with pytest.raises(ValueError, match=r"^device: 'gpu0' is not a torch device"):
        rc.mutual_info(x, x, device="gpu0")
    with pytest.raises(ValueError, match=r"^device: "):
        rc.twonn_dimension(np.ones((5, 2)), device=3.5)
    # Tensors on two devices: a meta tensor stands for a second device without one.
    meta = torch.empty(20, device="meta")
    with pytest.raises(ValueError, match=r"^device: the arguments lie on different devices \(x on meta, y on cpu\)"):
        resolve_device({"x": meta, "y": torch.zeros(20)})
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"^device: 'cuda' was asked for but CUDA is not available"):
            rc.entropy(x, device="cuda")


@pytest.mark.parametrize("device", DEVICES)
def test_bad_tensors_raise_as_numpy_arrays_do(device):
    good = torch.zeros(10, 2, device=device)
    bad = torch.zeros(10, 2, dtype=torch.float64, device=device)
    bad[6, 1] = math.nan
    with pytest.raises(ValueError, match=r"^y: contains NaN or inf \(first at row 6\)"):
        rc.mutual_info(good, bad, device=device)
    with pytest.raises(ValueError, match=r"^x: expected a 1-D"):
        rc.entropy(torch.zeros(4, 4, 4, device=device), device=device)
    with pytest.raises(ValueError, match=r"^x: empty input"):
        rc.entropy(torch.zeros(0, 3, device=device), device=device)
    with pytest.raises(TypeError, match=r"^x: expected a numeric array"):
        rc.entropy(torch.zeros(10, 2, dtype=torch.complex64, device=device), device=device)
    with pytest.raises(ValueError, match=r"^y: has 9 samples but x has 10"):
        rc.mutual_info(good, good[:9], device=device)
    with pytest.raises(ValueError, match=r"^k: must be smaller than the number of samples"):
        rc.mutual_info(good, good, k=10, device=device)
    with pytest.raises(ValueError, match=r"^neighbors: unknown value"):
        rc.mutual_info(good, good, neighbors="ball", device=device)
    with pytest.warns(UserWarning, match=r"^x: integer values beyond"):
        rc.entropy(torch.tensor([0, 2**60, 5, 7], device=device), k=1, device=device)


@pytest.mark.parametrize("device", DEVICES)
def test_warnings_and_label_errors_as_the_rust_path(device):
    (x,) = on(device, np.repeat(np.arange(5.0), 4)[:, None])
    with pytest.warns(RuntimeWarning, match=r"^entropy: some sample has k neighbours at distance 0"):
        assert rc.entropy(x, k=2, jitter=0, device=device) == -math.inf
    labels = torch.tensor([0] * 18 + [1, 2], device=device)
    with pytest.warns(
        UserWarning, match=r"skipped 2 class\(es\) with at most k = 3 samples: np.int64\(1\) \(1 samples\)"
    ):
        rc.mutual_info_given_labels(x, x, labels, device=device)
    with pytest.raises(ValueError, match=r"^labels: every class has at most k = 3 samples"):
        rc.mutual_info_given_labels(x, x, torch.arange(20, device=device) % 10, device=device)
    with pytest.raises(ValueError, match=r"^labels: every class has a single sample"):
        rc.mutual_info_labels(x, torch.arange(20, device=device), device=device)
    with pytest.warns(UserWarning, match=r"^k: k = 15 is more than half"):
        rc.mutual_info(x, x, k=15, device=device)


@pytest.mark.parametrize("device", DEVICES)
def test_confidence_interval_on_the_device_equals_the_rust_paths(device):
    # Resamples are drawn and evaluated in the core on a host copy of the pre-processed data.
    rng = np.random.default_rng(14)
    x = rng.standard_normal((200, 3))
    y = x[:, :2] + rng.standard_normal((200, 2))
    want = rc.confidence_interval(rc.mutual_info, x, y, n_resamples=20)
    got = rc.confidence_interval(rc.mutual_info, *on(device, x, y), n_resamples=20, device=device)
    assert (got.value, got.low, got.high) == (want.value, want.low, want.high)
    np.testing.assert_array_equal(got.resamples, want.resamples)


@pytest.mark.parametrize("device", DEVICES)
def test_twonn_bootstrap_resamples_on_the_device(device):
    # A plain estimator's resamples are the rows of the same draws, taken from the tensor where it lies.
    rng = np.random.default_rng(19)
    h = rng.standard_normal((150, 2)) @ rng.standard_normal((2, 6)) + 0.05 * rng.standard_normal((150, 6))
    want = rc.confidence_interval(rc.twonn_dimension, h, n_resamples=8)
    got = rc.confidence_interval(rc.twonn_dimension, *on(device, h), n_resamples=8, device=device)
    np.testing.assert_allclose(got.resamples, want.resamples, rtol=1e-12, atol=0)
    assert got.value == pytest.approx(want.value, rel=1e-12)


@needs_cuda
def test_cuda_tensors_run_on_their_device_and_equal_the_rust_path():
    rng = np.random.default_rng(15)
    x = rng.standard_normal((500, 40))
    y = x[:, :20] + rng.standard_normal((500, 20))
    xc, yc = on("cuda", x, y)
    job = rc.mutual_info.__wrapped__(xc, yc)
    assert job.device.type == "cuda" and job.arrays[0].device.type == "cuda"
    assert rc.mutual_info(xc, yc) == rc.mutual_info(x, y)
    assert rc.mutual_info(xc.float(), yc.float(), **EXACT) == rc.mutual_info(
        x.astype(np.float32), y.astype(np.float32), **EXACT
    )
    with pytest.raises(ValueError, match=r"^device: the arguments lie on different devices"):
        rc.mutual_info(xc, torch.from_numpy(y))
