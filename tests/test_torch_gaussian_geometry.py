"""The torch backend of the Gaussian channel and of the geometry metrics (docs/spec.md §8.3, §8.4)
against the Rust core: the same numbers on random and on tied data, at every block size, with the
same argument errors. Run on CPU torch everywhere and on CUDA where a device exists.

Tolerances. float64 input: ≤ 1e-10 relative (§8.3/§8.4), with an absolute floor of 1e-12 for
quantities that are differences of O(log N) terms (an estimate near 0 cannot be relative-exact:
its rounding is ~ε·log N). float32 input is widened to float64 on the device, exactly as the core
widens it, so the same 1e-10 holds (tested). The silhouette of data with coincident rows is the
exception the spec makes itself: distances come from the Gram form √max(‖x‖² + ‖y‖² − 2x·y, 0),
whose computed square is within γ_{d+2}(‖x‖² + ‖y‖² + 2|x·y|) ≤ 4γR² of the exact one (Higham 2002
§3.1, R the largest centred norm), so a distance, near 0 in particular, is within 2R√γ; the two
paths round differently, so a(i) and b(i) may differ by δ = 4R√γ each and s(i) by
3δ/(max(a_i, b_i) − δ) — the bound tested on tied data.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from torch_support import require_torch

torch = require_torch()

import repcompress as rc  # noqa: E402
from repcompress._torch_backend import gaussian as gaussian_kernels  # noqa: E402
from repcompress._torch_backend import geometry as geometry_kernels  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
REL = 1e-10
ABS = 1e-12


def close(a, b, *, rel=REL, abs_=ABS):
    """|a − b| ≤ max(rel·|a|, abs_) elementwise (None matched with None, inf with inf)."""
    if a is None or b is None:
        return a is None and b is None
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    same_inf = (np.isinf(a) & (a == b)) | (np.isnan(a) & np.isnan(b))
    ok = np.abs(a - b) <= np.maximum(rel * np.abs(a), abs_)
    return bool(np.all(ok | same_inf))


FIELDS = ("mi", "stderr", "lower", "upper", "maxent_upper", "log_n", "h_z_given_x", "ceiling")


def assert_same_channel(a, b):
    for f in FIELDS:
        if hasattr(a, f):
            assert close(getattr(a, f), getattr(b, f)), (f, getattr(a, f), getattr(b, f))
    for f in ("n_floored", "n_draws", "rank"):
        if hasattr(a, f):
            assert getattr(a, f) == getattr(b, f), f
    for f in ("given_labels", "labels"):
        x, y = getattr(a, f, None), getattr(b, f, None)
        assert (x is None) == (y is None), f
        if x is not None:
            assert_same_channel(x, y)


@pytest.fixture
def tiny_blocks(monkeypatch):
    """Blocks of a few values: every block boundary, fix-up chunk and class mask is crossed."""
    monkeypatch.setattr(gaussian_kernels, "BLOCK_VALUES", 37)
    monkeypatch.setattr(geometry_kernels, "BLOCK_VALUES", 37)


def data(seed=0, n=120, d=5):
    rng = np.random.default_rng(seed)
    mu = rng.standard_normal((n, d))
    v = rng.uniform(0.2, 2.0, (n, d))
    labels = rng.integers(0, 3, n) * 7 - 3  # ids −3, 4, 11
    return mu, v, labels


# ----------------------------------------------------------------------------------------------
# Gaussian channel
# ----------------------------------------------------------------------------------------------

NOISES = {
    "per_sample": lambda mu, v: {"variances": v},
    "shared": lambda mu, v: {"noise_variance": np.linspace(0.3, 1.5, mu.shape[1])},
    "dropout": lambda mu, v: {"dropout_alpha": 0.3},
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("noise", sorted(NOISES))
@pytest.mark.parametrize("with_labels", [False, True])
def test_channel_equals_the_rust_core_on_random_data(device, noise, with_labels):
    mu, v, labels = data(1)
    kw = dict(NOISES[noise](mu, v), labels=labels if with_labels else None, n_draws=2, random_state=5)
    host = rc.gaussian_channel_mi(mu, **kw)
    on_device = rc.gaussian_channel_mi(mu, device=device, **kw)
    assert_same_channel(host, on_device)


@pytest.mark.parametrize("device", DEVICES)
def test_channel_on_tied_data_with_floored_relu_zeros(device, tiny_blocks):
    """ReLU zeros under dropout are floored (far from the centred origin: the product form cancels
    there and the fix-ups of §3.11 run), duplicate rows and a one-sample class; tiny blocks."""
    mu, _, labels = data(2, n=60, d=4)
    mu = np.maximum(mu, 0.0)
    mu[10:20] = mu[0]  # ten duplicates of row 0
    labels = labels.copy()
    labels[5] = 99  # a class of one sample
    for method in ("all", "mc", "bounds"):
        kw = {"dropout_alpha": 0.5, "labels": labels, "method": method, "random_state": 3}
        host = rc.gaussian_channel_mi(mu, **kw)
        assert host.n_floored > 0
        assert_same_channel(host, rc.gaussian_channel_mi(mu, device=device, **kw))


@pytest.mark.parametrize("device", DEVICES)
def test_channel_with_a_transform(device):
    mu, v, labels = data(3, n=50, d=5)
    w = np.random.default_rng(4).standard_normal((3, 5))
    for noise in ("per_sample", "shared"):
        kw = dict(NOISES[noise](mu, v), labels=labels, transform=w, random_state=1)
        host = rc.gaussian_channel_mi(mu, **kw)
        on_device = rc.gaussian_channel_mi(mu, device=device, **kw)
        assert on_device.rank == host.rank == 3
        assert_same_channel(host, on_device)


def test_channel_blocks_do_not_matter(tiny_blocks):
    """Tiny blocks (37 values) against the default blocks, both on CPU torch."""
    mu, v, labels = data(4, n=70, d=3)
    tiny = rc.gaussian_channel_mi(mu, variances=v, labels=labels, device="cpu", n_draws=3)
    gaussian_kernels.BLOCK_VALUES = 1 << 22
    default = rc.gaussian_channel_mi(mu, variances=v, labels=labels, device="cpu", n_draws=3)
    assert_same_channel(default, tiny)


@pytest.mark.parametrize("device", DEVICES)
def test_channel_float32_and_tensor_inputs(device):
    """float32 means (widened on the device, as the core widens them): the same 1e-10; a tensor
    with requires_grad is read detached; a tensor selects its own device without device=."""
    mu, v, labels = data(5)
    mu32 = mu.astype(np.float32)
    host = rc.gaussian_channel_mi(mu32, variances=v, labels=labels)
    t = torch.tensor(mu32, device=device, requires_grad=True)
    assert_same_channel(host, rc.gaussian_channel_mi(t, variances=torch.as_tensor(v), labels=labels, device=device))
    if device != "cpu":
        own = rc.gaussian_channel_mi(t, variances=torch.as_tensor(v, device=device), labels=labels)
        assert_same_channel(host, own)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_channel_cuda_tensor_runs_on_its_device_without_device_argument():
    """The data decide the device; labels may lie anywhere (here a CPU tensor): read on the host."""
    mu, v, labels = data(6)
    t = torch.as_tensor(mu, device="cuda")
    host = rc.gaussian_channel_mi(mu, variances=v, labels=labels)
    assert_same_channel(host, rc.gaussian_channel_mi(t, variances=v, labels=torch.as_tensor(labels)))


def test_channel_argument_errors_on_the_device():
    mu, v, labels = data(7, n=20, d=3)
    bad = mu.copy()
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"^means: contains NaN or inf \(first at row 4\)"):
        rc.gaussian_channel_mi(torch.as_tensor(bad), variances=v, device="cpu")
    neg = v.copy()
    neg[6, 0] = -1.0
    with pytest.raises(ValueError, match=r"^variances: must be >= 0 \(first negative at row 6\)"):
        rc.gaussian_channel_mi(mu, variances=torch.as_tensor(neg), device="cpu")
    with pytest.raises(ValueError, match=r"^variances: has shape"):
        rc.gaussian_channel_mi(mu, variances=torch.as_tensor(v[:-1]), device="cpu")
    with pytest.raises(ValueError, match=r"^means: expected a 1-D"):
        rc.gaussian_channel_mi(torch.zeros(2, 3, 4), noise_variance=1.0, device="cpu")
    with pytest.raises(ValueError, match=r"^labels: need at least 2 classes"):
        rc.gaussian_channel_mi(mu, variances=v, labels=np.zeros(20), device="cpu")
    with pytest.raises(ValueError, match=r"^labels: has 19 entries"):
        rc.gaussian_channel_mi(mu, variances=v, labels=torch.as_tensor(labels[:-1]), device="cpu")
    with pytest.raises(ValueError, match=r"^min_variance: a variance is 0"):
        rc.gaussian_channel_mi(np.maximum(mu, 0), dropout_alpha=0.5, min_variance=0.0, device="cpu")
    with pytest.raises(ValueError, match=r"^noise: give exactly one"):
        rc.gaussian_channel_mi(mu, device="cpu")
    with pytest.raises(ValueError, match=r"^device: 'nowhere' is not a torch device"):
        rc.gaussian_channel_mi(mu, variances=v, device="nowhere")
    with pytest.raises(TypeError, match=r"^means: expected a numeric array"):
        rc.gaussian_channel_mi(np.array(["a", "b"]), noise_variance=1.0, device="cpu")


# ----------------------------------------------------------------------------------------------
# Geometry
# ----------------------------------------------------------------------------------------------


def geometry_data(kind, seed=0):
    rng = np.random.default_rng(seed)
    n, d, c = 150, 6, 4
    labels = rng.integers(0, c, n) * 5 + 2
    h = rng.standard_normal((n, d)) + 3 * rng.standard_normal((c, d))[(labels - 2) // 5]
    if kind == "tied":
        h = np.maximum(h, 0.0)  # ReLU zeros
        h[20:40] = h[0]  # duplicate rows
        labels = labels.copy()
        labels[7] = 1000  # a one-sample class
    return h, labels


GEOMETRY = {
    "cdnv": lambda h, y, **kw: rc.class_distance_normalized_variance(h, y, **kw),
    "cdnv_ddof1": lambda h, y, **kw: rc.class_distance_normalized_variance(h, np.where(y == 1000, 2, y), ddof=1, **kw),
    "cdnv_matrix": lambda h, y, **kw: rc.cdnv_matrix(h, y, **kw)[0],
    "trace_ratio": lambda h, y, **kw: rc.trace_ratio(h, y, **kw),
    "effective_rank": lambda h, y, **kw: rc.effective_rank(h, **kw),
    "silhouette_subset": lambda h, y, **kw: rc.silhouette(h, y, sample_size=90, random_state=4, **kw),
}


# The tied silhouette is not held to 1e-10: it is tested with its derived bound below.
GEOMETRY_CASES = [(name, kind) for name in sorted(GEOMETRY) for kind in ("random", "tied")]
GEOMETRY_CASES.remove(("silhouette_subset", "tied"))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("name", "kind"), GEOMETRY_CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_geometry_equals_the_rust_core(device, kind, name, dtype):
    h, labels = geometry_data(kind)
    h = h.astype(dtype)
    fn = GEOMETRY[name]
    assert close(fn(h, labels), fn(h, labels, device=device))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["random", "tied"])
def test_neural_collapse_and_scatter_equal_the_rust_core(device, kind, tiny_blocks):
    h, labels = geometry_data(kind, seed=1)
    rng = np.random.default_rng(2)
    codes = np.unique(labels, return_inverse=True)[1]  # ids 0..C-1 for the classifier
    w = rng.standard_normal((codes.max() + 1, h.shape[1]))
    b = rng.standard_normal(codes.max() + 1)
    host = rc.neural_collapse(h, codes, weights=w, bias=b)
    dev = rc.neural_collapse(torch.as_tensor(h), codes, weights=torch.as_tensor(w), bias=b, device=device)
    for f in ("nc1", "nc2_equinorm", "nc2_equiangular", "nc2_max_angle", "nc3", "nc4", "cdnv"):
        assert close(getattr(host, f), getattr(dev, f)), f
    logits = rng.standard_normal((h.shape[0], codes.max() + 1))
    assert (
        rc.neural_collapse(h, codes, logits=logits).nc4
        == rc.neural_collapse(h, codes, logits=torch.as_tensor(logits, device=device), device=device).nc4
    )
    s_host = rc.scatter_matrices(h, labels)
    s_dev = rc.scatter_matrices(h, labels, device=device)
    for f in ("within", "between", "total", "sigma_within", "sigma_between", "means"):
        x, y = getattr(s_host, f), getattr(s_dev, f)
        assert np.max(np.abs(x - y)) <= REL * np.max(np.abs(x)), f
    assert np.array_equal(s_host.counts, s_dev.counts) and np.array_equal(s_host.classes, s_dev.classes)


@pytest.mark.parametrize("device", DEVICES)
def test_silhouette_random_data(device, tiny_blocks):
    h, labels = geometry_data("random", seed=3)
    host = rc.silhouette_samples(h, labels)
    assert close(host, rc.silhouette_samples(torch.as_tensor(h), labels, device=device), abs_=1e-10)
    assert close(rc.silhouette(h, labels), rc.silhouette(h, labels, device=device))


@pytest.mark.parametrize("device", DEVICES)
def test_silhouette_tied_data_within_the_gram_form_bound(device):
    """Duplicate rows: distances near 0 carry the Gram form's √γ error in either path (module
    docstring); s(i) agrees within 3δ/(max(a_i, b_i) − δ), δ = 4R√γ_{d+2}."""
    h, labels = geometry_data("tied", seed=4)
    host = rc.silhouette_samples(h, labels)
    dev = rc.silhouette_samples(h, labels, device=device)
    x = h - h.mean(axis=0)
    n, d = x.shape
    u = 2.0**-53
    gamma = (d + 2) * u / (1 - (d + 2) * u)
    delta = 4 * math.sqrt(float((x * x).sum(axis=1).max())) * math.sqrt(gamma)
    dist = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2))
    ids, codes = np.unique(labels, return_inverse=True)
    sums = np.stack([dist[:, codes == c].sum(axis=1) for c in range(len(ids))], axis=1)
    sizes = np.bincount(codes)
    a = sums[np.arange(n), codes] / np.maximum(sizes[codes] - 1, 1)
    others = np.where(np.eye(len(ids), dtype=bool)[codes], np.inf, sums / sizes)
    scale = np.maximum(a, others.min(axis=1))
    bound = np.where(scale > 2 * delta, 3 * delta / np.maximum(scale - delta, delta), 2.0)
    assert np.all(np.abs(host - dev) <= bound)
    assert dev[7] == 0.0  # the one-sample class


def test_geometry_blocks_do_not_matter(tiny_blocks):
    """Tiny blocks against the default ones: tied data, but random data for the silhouette (with
    coincident rows its distances near 0 carry the Gram form's √γ rounding, which depends on the
    shape of the matrix product)."""
    cases = [(name, "random" if name.startswith("silhouette") else "tied") for name in sorted(GEOMETRY)]

    def run():
        return [GEOMETRY[name](*geometry_data(kind, seed=5), device="cpu") for name, kind in cases]

    tiny = run()
    geometry_kernels.BLOCK_VALUES = 1 << 22
    default = run()
    for (name, _), a, b in zip(cases, default, tiny, strict=True):
        assert close(a, b), name


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_geometry_cuda_tensor_runs_on_its_device():
    h, labels = geometry_data("random")
    t = torch.as_tensor(h, device="cuda")
    cpu_labels = torch.as_tensor(labels)
    assert close(rc.class_distance_normalized_variance(h, labels), rc.class_distance_normalized_variance(t, cpu_labels))
    assert close(rc.silhouette(h, labels), rc.silhouette(t, labels))


def test_geometry_argument_errors_on_the_device():
    h, labels = geometry_data("random")
    bad = h.copy()
    bad[9, 2] = np.inf
    with pytest.raises(ValueError, match=r"^h: contains NaN or inf \(first at row 9\)"):
        rc.class_distance_normalized_variance(torch.as_tensor(bad), labels, device="cpu")
    with pytest.raises(ValueError, match=r"^labels: need at least 2 classes, got 1"):
        rc.cdnv_matrix(h, np.zeros(len(h)), device="cpu")
    with pytest.raises(ValueError, match=r"^labels: a class has 1 sample\(s\); its variance with ddof=1"):
        rc.class_distance_normalized_variance(h, np.r_[labels[:-1], 77], ddof=1, device="cpu")
    with pytest.raises(ValueError, match=r"^labels: number of labels is 1"):
        rc.silhouette_samples(h, np.zeros(len(h)), device="cpu")
    with pytest.raises(ValueError, match=r"^h: all class means coincide"):
        rc.neural_collapse(np.tile(h[:1], (len(h), 1)), labels, device="cpu")
    with pytest.raises(ValueError, match=r"^h: all entries are 0"):
        rc.effective_rank(torch.zeros(5, 3), device="cpu")
    with pytest.raises(ValueError, match=r"^weights: has 2 classes but labels contain class id"):
        rc.neural_collapse(h, labels, weights=np.ones((2, h.shape[1])), device="cpu")
    with pytest.raises(ValueError, match=r"^labels: has 149 entries but h has 150 samples"):
        rc.trace_ratio(h, labels[:-1], device="cpu")
    with pytest.raises(ValueError, match=r"^sample_size: must lie in 1\.\.150"):
        rc.silhouette(h, labels, sample_size=151, device="cpu")
    cdnv_inf = rc.class_distance_normalized_variance(np.r_[h[:2], h[:2]], [0, 0, 1, 1], device="cpu")
    assert cdnv_inf == math.inf  # coincident class means


@pytest.mark.parametrize("device", DEVICES)
def test_effective_rank_of_a_rank_deficient_matrix_within_the_eigenvalue_bound(device):
    """Rank-deficient h: its zero singular values come out of the Gram matrix's eigenvalues as
    √|λ̂| with |λ̂| ≤ η = (γ_N + d u)·‖H‖²_F (the Gram product's rounding, Higham 2002 §3.5, and a
    backward-stable eigensolver's), so each is at most δ = √η in either path, at any value there.
    With S = Σ σ, the K such values change H = −Σ p log p by at most K·2(δ/S)(1 + log(S/δ)) (for
    p ≤ δ/S < 1/e, |p log p| ≤ (δ/S) log(S/δ), plus the first-order change of the others' p), and
    exp(H) by that much relative. The full-rank part agrees to 1e-10 as everywhere."""
    rng = np.random.default_rng(8)
    n, d, rank = 200, 8, 5
    h = rng.standard_normal((n, rank)) @ rng.standard_normal((rank, d))
    host = rc.effective_rank(h)
    dev = rc.effective_rank(h, device=device)
    u = 2.0**-53
    gamma = n * u / (1 - n * u)
    delta = math.sqrt((gamma + d * u) * float((h * h).sum()))
    s_total = float(np.linalg.svd(h, compute_uv=False).sum())
    k = d - rank
    bound = k * 2 * (delta / s_total) * (1 + math.log(s_total / delta))
    assert abs(host - dev) <= bound * host


def test_labels_as_tensors_are_read_on_the_host():
    """Labels are small: a label tensor (on any device) with numpy data takes the Rust path."""
    h, labels = geometry_data("random", seed=5)
    for device in DEVICES:
        as_tensor = torch.as_tensor(labels, device=device)
        assert rc.class_distance_normalized_variance(h, as_tensor) == rc.class_distance_normalized_variance(h, labels)
        assert rc.silhouette(h, as_tensor) == rc.silhouette(h, labels)
