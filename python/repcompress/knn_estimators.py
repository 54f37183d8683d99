"""k-nearest-neighbour estimators of entropy and mutual information (docs/spec.md §1).

Distances inside each variable are the max-norm (Chebyshev, the default) or, with
``metric="euclidean"``, the Euclidean norm; the joint distance of (x, y) is the max of the two.
Neighbours of sample i never include i. Results are in nats (``base=2``: bits)
and are never clipped at 0 unless ``clip=True``: a negative value is an honest estimate of a
quantity near 0, and clipping biases averages.

Pre-processing (docs/spec.md §1.4): ``normalize=True`` divides each column by its standard deviation;
``jitter`` then adds Gaussian noise of that many standard deviations per column, drawn from
``random_state``, to break ties (ReLU zeros and quantised activations are the main way these
estimators go wrong). With ``normalize=False, jitter=0`` the arrays are used exactly as given and
the result equals a brute-force O(N²) evaluation of the formula (identical neighbour counts).
Data of any magnitude work (docs/spec.md §0.8): far from 1 they are divided by a power of two 2^e,
which changes no neighbour count (the entropy then adds d·e·log 2).

``neighbors`` picks the exact neighbour search: ``"kdtree"``, ``"brute"`` (a blocked scan of
direct coordinate differences) or ``"auto"`` (a sorted array for one dimension, a k-d tree up to
16 dimensions; above, for the Euclidean metric, candidates chosen through matrix products under a
proven rounding bound and decided on exact distances, else the blocked scan); all give identical
results.

``device`` chooses where an estimate runs (docs/spec.md §8.1): CUDA tensors run on their device,
in plain torch (``_torch_backend.knn``: blocked brute force with the same distances, tie rules and
sums, hence the same results, docs/spec.md §8.2); numpy arrays and CPU tensors run on the Rust core
unless ``device=`` sends them to a device.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar, get_args

import numpy as np

from . import _core
from ._progress import Progress
from ._resampling import Scheme, register_estimator
from ._torch_backend import is_tensor, resolve_device
from ._validation import (
    _caller_stacklevel,
    as_samples,
    check_base,
    check_bool,
    check_choice,
    check_jitter,
    check_k,
    check_memory,
    check_optional_bool,
    class_codes,
    largest_magnitude,
    magnitude_exponent,
    make_rng,
    preprocess,
    preprocess_one,
    same_length,
    scale_to_window,
)

if TYPE_CHECKING:
    from ._core import _KnnEstimator

Neighbors = Literal["auto", "kdtree", "brute"]
KsgVariant = Literal["ksg1", "ksg2"]
Metric = Literal["chebyshev", "euclidean"]
EntropyMetric = Metric
NEIGHBOR_METHODS: tuple[Neighbors, ...] = get_args(Neighbors)
KSG_ESTIMATORS: tuple[KsgVariant, ...] = get_args(KsgVariant)
METRICS: tuple[Metric, ...] = get_args(Metric)
ENTROPY_METRICS = METRICS
# The job's estimator-specific option: the KSG variant, or none.
_Option = TypeVar("_Option", bound=str | None)


def _finish(value: float, base: float, clip: bool) -> float:
    if clip:
        value = max(0.0, value)
    return float(value / math.log(base))


def _common(
    k: Any, n: int, neighbors: Any, jitter: Any, base: Any, normalize: Any, clip: Any = False
) -> tuple[int, Neighbors, float, float, bool, bool]:
    """The options every k-NN estimator takes, checked before any pre-processing (docs/spec.md §0.4)."""
    method = check_choice(neighbors, "neighbors", NEIGHBOR_METHODS)
    k = check_k(k, n)
    if k > n / 2:
        # docs/spec.md §1.1: the neighbourhood is then most of the sample, not a local one.
        warnings.warn(
            f"k: k = {k} is more than half the number of samples ({n}); the k-th neighbour distance is then "
            "a global scale, not a local one, so the estimate is strongly biased, and the search costs about "
            "N² log k operations. k from 2 to 10 is usual.",
            UserWarning,
            stacklevel=_caller_stacklevel(),
        )
    checked = k, method, check_jitter(jitter), check_base(base)
    return (*checked, check_bool(normalize, "normalize"), check_bool(clip, "clip"))


def _samples(a: Any, name: str, place: Any) -> Any:
    """A sample argument checked and shaped (N, d) where the call runs (docs/spec.md §8.1): a numpy
    array for the Rust core (a CPU tensor is read through numpy, detached from autograd first),
    a tensor on `place` for the torch backend."""
    if place is None:
        return as_samples(a.detach() if is_tensor(a) else a, name)
    from ._torch_backend import prepare

    return prepare.samples(a, name, place)


def _prepared(
    arrays: list[Any], *, normalize: bool, jitter: float, random_state: Any, place: Any = None
) -> tuple[list, int]:
    """The pre-processing of docs/spec.md §1.4, and the exponent e of the power of two the arrays
    were divided by (docs/spec.md §0.8). Normalised columns need none (their standard deviations
    are computed safely at any magnitude, and dividing by them removes the scale); without
    normalisation, arrays far from 1 in magnitude are divided by one common 2^e. On the torch
    backend (`place` a device) the same steps run on the device."""
    if place is not None:
        from ._torch_backend import prepare

        e = 0
        if not normalize:
            arrays, e = prepare.scale_to_window(arrays, jitter=jitter)
        return prepare.preprocess(arrays, normalize=normalize, jitter=jitter, random_state=random_state), e
    e = 0
    if not normalize:
        arrays, e = scale_to_window(arrays, jitter=jitter)
    return preprocess(arrays, normalize=normalize, jitter=jitter, random_state=random_state), e


class _KnnJob(Generic[_Option]):
    """A validated, pre-processed k-NN estimate: `run()` on the sample, `run_resamples(...)` on
    many resamples, drawn and evaluated in parallel in Rust (see `_resampling`). Resampling
    slots: the point arrays in order, then the labels when the estimator takes them.

    `device` None: the arrays are numpy and `run()` calls the Rust core. A torch device: the
    arrays are tensors there and `run()` calls the torch kernels of the same name
    (docs/spec.md §8.2); resamples are still drawn and evaluated in the core (docs/spec.md §5.1),
    on a host copy of the pre-processed arrays made once, so that they are the very resamples the
    CPU path evaluates."""

    scheme: ClassVar[Scheme] = "subsample"
    name: ClassVar[_KnnEstimator]
    option: _Option
    permute_slot: int | None = 1
    strata: np.ndarray | None = None
    shift: float = 0.0  # added to every estimate (the entropy's change of scale)

    def __init__(
        self,
        arrays: list[Any],  # numpy arrays, or tensors on `device`
        labels: np.ndarray | None,
        *,
        option: _Option,
        metric: Metric = "chebyshev",
        k: int,
        neighbors: Neighbors,
        base: float,
        clip: bool,
        device: Any = None,
    ):
        self.device = device
        self.metric = metric
        self._host: list[np.ndarray] | None = None
        self.arrays = arrays
        self.labels = labels
        self.option = option
        self.k = k
        self.neighbors = neighbors
        self.base = base
        self.clip = clip
        self.n = arrays[0].shape[0]
        self.slots = len(arrays) + (labels is not None)

    @property
    def core(self) -> Any:
        """The module whose functions compute the estimate: the Rust core or the torch kernels."""
        if self.device is None:
            return _core
        from ._torch_backend import knn

        return knn

    def host_arrays(self) -> list[np.ndarray]:
        """The pre-processed arrays on the host (a copy, made once, for the torch backend)."""
        if self.device is None:
            return self.arrays
        if self._host is None:
            self._host = [np.ascontiguousarray(a.to("cpu").numpy()) for a in self.arrays]
        return self._host

    def run_resamples(self, draws: Any, start: int, count: int, picked: tuple[bool, ...]) -> np.ndarray:
        values = _core.knn_resamples(
            self.name,
            "" if self.option is None else str(self.option),
            self.metric,
            self.host_arrays(),
            self.labels,
            draws,
            start,
            count,
            list(picked),
            self.k,
            self.neighbors,
        )
        out = np.asarray(values, dtype=np.float64)
        if self.shift:
            out = out + self.shift
        if self.clip:
            out = np.maximum(out, 0.0)
        return out / math.log(self.base)


class _MutualInfoJob(_KnnJob[KsgVariant]):
    name = "mutual_info"

    def run(self) -> float:
        xs, ys = self.arrays
        value = self.core.mutual_info_ksg(xs, ys, self.k, self.option, self.metric, self.neighbors)
        return _finish(value, self.base, self.clip)


class _ConditionalMutualInfoJob(_KnnJob[None]):
    name = "conditional_mutual_info"
    # Shuffling y alone would also break its dependence on z: no plain permutation test.
    permute_slot = None

    def run(self) -> float:
        xs, ys, zs = self.arrays
        value = self.core.conditional_mutual_info_ksg(xs, ys, zs, self.k, self.metric, self.neighbors)
        return _finish(value, self.base, self.clip)


class _EntropyJob(_KnnJob[None]):
    name = "entropy"
    permute_slot = None

    def run(self) -> float:
        value = self.core.entropy_kl(self.arrays[0], self.k, self.metric, self.neighbors)
        if self.shift:
            value += self.shift
        if value == -math.inf:
            warnings.warn(
                "entropy: some sample has k neighbours at distance 0 (duplicate rows); the estimate is -inf. "
                "Use jitter > 0 to break ties.",
                RuntimeWarning,
                stacklevel=3,
            )
        return float(value / math.log(self.base))


class _MutualInfoLabelsJob(_KnnJob[None]):
    name = "mutual_info_labels"
    labels: np.ndarray  # the class codes (given: this estimator takes labels)

    def run(self) -> float:
        return _finish(
            self.core.mutual_info_ross(self.arrays[0], self.labels, self.k, self.metric, self.neighbors),
            self.base,
            self.clip,
        )


class _MutualInfoGivenLabelsJob(_KnnJob[KsgVariant]):
    name = "mutual_info_given_labels"
    labels: np.ndarray  # the class codes (given: this estimator takes labels)

    def __init__(self, arrays: list[Any], codes: np.ndarray, values: np.ndarray, **common: Any):
        super().__init__(arrays, codes, **common)
        self.values = values
        # A permutation test of I(X;Y|L) shuffles y within each class.
        self.strata = codes

    def run(self) -> float:
        xs, ys = self.arrays
        value, skipped = self.core.mutual_info_given_labels_ksg(
            xs, ys, self.labels, self.k, self.option, self.metric, self.neighbors
        )
        if skipped:
            shown = ", ".join(f"{self.values[c]!r} ({m} samples)" for c, m in skipped[:10])
            warnings.warn(
                f"mutual_info_given_labels: skipped {len(skipped)} class(es) with at most k = {self.k} samples: "
                f"{shown}; the remaining classes' weights were renormalised",
                UserWarning,
                stacklevel=3,
            )
        return _finish(value, self.base, self.clip)


# Each estimator below is written as the builder of its job: the body validates and pre-processes
# the arguments and returns the job; @register_estimator makes the public function, which runs the
# job and returns its float (its signature says -> float), and hands the builder to resampling.
@register_estimator(arrays=("x", "y"))
def mutual_info(
    x: Any,
    y: Any,
    *,
    k: int = 3,
    estimator: str = "ksg1",
    metric: str = "chebyshev",
    normalize: bool = True,
    jitter: float = 1e-10,
    random_state: Any = 0,
    base: float = math.e,
    neighbors: str = "auto",
    clip: bool = False,
    device: Any = None,
) -> _MutualInfoJob:
    """Mutual information I(X;Y) between two continuous, possibly multivariate, variables.

    Kraskov, Stögbauer & Grassberger (2004), with ψ the digamma function and ε_i the distance
    from sample i to its k-th nearest neighbour in the joint space, the joint distance being the
    larger of the x and y distances, each measured with ``metric``:

    - ``"ksg1"`` (eq. 8): n_x(i) = #{j ≠ i : ‖x_j − x_i‖ < ε_i} (strict), n_y likewise;
      I = ψ(k) + ψ(N) − ⟨ψ(n_x + 1) + ψ(n_y + 1)⟩.
    - ``"ksg2"`` (eq. 9): ε_x(i), ε_y(i) are the largest x and y distances among the k joint
      neighbours (ties in the neighbour set go to the smaller index);
      n_x(i) = #{j ≠ i : ‖x_j − x_i‖ ≤ ε_x(i)}; I = ψ(k) − 1/k + ψ(N) − ⟨ψ(n_x) + ψ(n_y)⟩.

    Parameters
    ----------
    x, y : array-like, shape (N,) or (N, d)
        Samples, row i of x paired with row i of y.
    k : int
        Number of neighbours (1 ≤ k < N). Larger k: less variance, more bias.
    estimator : {"ksg1", "ksg2"}
    metric : {"chebyshev", "euclidean"}
        The norm inside each variable (docs/spec.md §1.1): the max-norm (Kraskov et al.'s
        choice) or the Euclidean norm; the joint distance is the max of the two either way.
        For one-dimensional x and y the two coincide. Neither is better everywhere
        (docs/spec.md §1.13 has the measurement): the Euclidean norm is less biased on
        high-dimensional variables with Gaussian-like dependence, the max-norm on low-dimensional
        and heavy-tailed ones. Both are exact: every back-end, and the torch backend, count the
        same neighbours as a brute-force evaluation.
    normalize, jitter, random_state : see the module docstring.
    base : float
        Logarithm base of the result (e for nats, 2 for bits).
    neighbors : {"auto", "kdtree", "brute"}
        The Rust core's neighbour search (all give identical results). Checked, and not used, on
        the torch backend, which always runs its blocked brute force.
    clip : bool
        Return max(0, I) instead of the raw estimate.
    device : None, str or torch.device
        Where the estimate runs (docs/spec.md §8.1). None: on the device of the tensors passed
        when that is not the CPU (a CUDA tensor runs there, float32 or float64 as given, with no
        host copy), else on the Rust core. Given (``"cuda"``, ``"cuda:1"``, ``"cpu"``, a
        ``torch.device``): the data go to that device and the torch kernels run there
        (``"cpu"`` runs them on the CPU). Both back-ends count the same neighbours, so the
        estimates are equal (docs/spec.md §8.2). Needs PyTorch.

    Returns
    -------
    float

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal(5000); y = 0.8 * x + 0.6 * rng.standard_normal(5000)
    >>> round(mutual_info(x, y), 2)  # truth: -0.5 log(1 - 0.8²) = 0.51
    0.51
    """
    variant = check_choice(estimator, "estimator", KSG_ESTIMATORS)
    norm = check_choice(metric, "metric", METRICS)
    place = resolve_device({"x": x, "y": y}, device)
    xs, ys = _samples(x, "x", place), _samples(y, "y", place)
    n = same_length([("x", xs), ("y", ys)])
    k, neighbors, jitter, base, normalize, clip = _common(k, n, neighbors, jitter, base, normalize, clip)
    (xs, ys), _ = _prepared([xs, ys], normalize=normalize, jitter=jitter, random_state=random_state, place=place)
    return _MutualInfoJob(
        [xs, ys], None, option=variant, metric=norm, k=k, neighbors=neighbors, base=base, clip=clip, device=place
    )


@register_estimator(arrays=("x", "y", "z"))
def conditional_mutual_info(
    x: Any,
    y: Any,
    z: Any,
    *,
    k: int = 3,
    metric: str = "chebyshev",
    normalize: bool = True,
    jitter: float = 1e-10,
    random_state: Any = 0,
    base: float = math.e,
    neighbors: str = "auto",
    clip: bool = False,
    device: Any = None,
) -> _ConditionalMutualInfoJob:
    """Conditional mutual information I(X;Y|Z) for continuous Z (Frenzel & Pompe 2007).

    ε_i is the distance to the k-th neighbour in the joint (x, y, z) space (the largest of the
    three variables' distances, each in ``metric``); n_xz, n_yz and n_z count the samples j ≠ i
    strictly closer than ε_i in the (x, z), (y, z) and z spaces:

        I(X;Y|Z) = ψ(k) − ⟨ψ(n_xz + 1) + ψ(n_yz + 1) − ψ(n_z + 1)⟩.

    Parameters are as for :func:`mutual_info` (``metric`` and ``device`` included); z is an array
    of N rows like x and y.
    """
    norm = check_choice(metric, "metric", METRICS)
    place = resolve_device({"x": x, "y": y, "z": z}, device)
    xs, ys, zs = _samples(x, "x", place), _samples(y, "y", place), _samples(z, "z", place)
    n = same_length([("x", xs), ("y", ys), ("z", zs)])
    k, neighbors, jitter, base, normalize, clip = _common(k, n, neighbors, jitter, base, normalize, clip)
    arrays, _ = _prepared([xs, ys, zs], normalize=normalize, jitter=jitter, random_state=random_state, place=place)
    return _ConditionalMutualInfoJob(
        arrays, None, option=None, metric=norm, k=k, neighbors=neighbors, base=base, clip=clip, device=place
    )


@register_estimator(arrays=("x",))
def entropy(
    x: Any,
    *,
    k: int = 3,
    metric: str = "chebyshev",
    normalize: bool = False,
    jitter: float = 1e-10,
    random_state: Any = 0,
    base: float = math.e,
    neighbors: str = "auto",
    device: Any = None,
) -> _EntropyJob:
    """Differential entropy h(X) by the Kozachenko–Leonenko k-NN estimator.

        H = ψ(N) − ψ(k) + log c_d + (d/N) Σ_i log ε_i,

    ε_i the distance from sample i to its k-th neighbour and c_d the volume of the unit ball of
    the norm: 2^d for ``"chebyshev"``, π^{d/2}/Γ(d/2 + 1) for ``"euclidean"``. Differential
    entropy depends on scale, so ``normalize`` is off by default (with it on, the result is the
    entropy of the standardised variables). If k samples coincide with sample i (ε_i = 0, e.g.
    duplicate rows with ``jitter=0``) the estimate is −∞ and a warning says so.
    Reference: Kozachenko & Leonenko (1987); Kraskov et al. (2004), eq. 20.

    ``device`` (None, a device string or a ``torch.device``) chooses where the estimate runs, as
    for :func:`mutual_info` (docs/spec.md §8.1).
    """
    norm = check_choice(metric, "metric", METRICS)
    place = resolve_device({"x": x}, device)
    xs = _samples(x, "x", place)
    k, neighbors, jitter, base, normalize, _ = _common(k, xs.shape[0], neighbors, jitter, base, normalize)
    arrays, e = _prepared([xs], normalize=normalize, jitter=jitter, random_state=random_state, place=place)
    job = _EntropyJob(
        arrays, None, option=None, metric=norm, k=k, neighbors=neighbors, base=base, clip=False, device=place
    )
    # Computed on x/2^e: h(x) = h(x/2^e) + d·e·log 2 (docs/spec.md §0.8).
    job.shift = xs.shape[1] * e * math.log(2.0)
    return job


@register_estimator(arrays=("x", "labels"))
def mutual_info_labels(
    x: Any,
    labels: Any,
    *,
    k: int = 3,
    metric: str = "chebyshev",
    normalize: bool = True,
    jitter: float = 1e-10,
    random_state: Any = 0,
    base: float = math.e,
    neighbors: str = "auto",
    clip: bool = False,
    device: Any = None,
) -> _MutualInfoLabelsJob:
    """Mutual information I(X;Y) between continuous X (e.g. a representation Z) and class labels Y.

    Ross (2014), as scikit-learn's ``mutual_info_classif`` computes it for one feature, extended
    to multivariate x with the max-norm (``metric="euclidean"``: the Euclidean norm; for one
    feature the two coincide). Samples of classes with a single member are dropped
    (N is reduced accordingly). For the others, with N_y the size of their class,
    k_i = min(k, N_y − 1), r_i the distance to the k_i-th neighbour within the class and
    m_i the number of samples of the whole (kept) set strictly closer than r_i, counting i itself:

        I = ψ(N) + ⟨ψ(k_i)⟩ − ⟨ψ(N_{y_i})⟩ − ⟨ψ(m_i)⟩.

    For well-separated classes the estimate approaches H(Y). ``labels`` are integer-like values
    of any range (re-indexed internally; absent ids are not classes).
    (One difference from scikit-learn: when r_i = 0 — k_i duplicates of x_i within its class —
    scikit-learn also counts i's duplicates in m_i; here m_i = 1, as the formula says.)

    ``device`` (None, a device string or a ``torch.device``) chooses where the estimate runs, as
    for :func:`mutual_info` (docs/spec.md §8.1).
    Labels given as a tensor are read on the host (O(N) integers).
    """
    norm = check_choice(metric, "metric", METRICS)
    place = resolve_device({"x": x, "labels": labels}, device)
    xs = _samples(x, "x", place)
    n = xs.shape[0]
    codes, _ = class_codes(labels, n)
    k, neighbors, jitter, base, normalize, clip = _common(k, n, neighbors, jitter, base, normalize, clip)
    arrays, _ = _prepared([xs], normalize=normalize, jitter=jitter, random_state=random_state, place=place)
    return _MutualInfoLabelsJob(
        arrays, codes, option=None, metric=norm, k=k, neighbors=neighbors, base=base, clip=clip, device=place
    )


@register_estimator(arrays=("x", "y", "labels"))
def mutual_info_given_labels(
    x: Any,
    y: Any,
    labels: Any,
    *,
    k: int = 3,
    estimator: str = "ksg1",
    metric: str = "chebyshev",
    normalize: bool = True,
    jitter: float = 1e-10,
    random_state: Any = 0,
    base: float = math.e,
    neighbors: str = "auto",
    clip: bool = False,
    device: Any = None,
) -> _MutualInfoGivenLabelsJob:
    """Mutual information conditional on discrete labels: I(X;Y | L) = Σ_c p(c) I(X;Y | L = c).

    Each term is the KSG estimate (``estimator``, ``metric`` as for :func:`mutual_info`) on the
    samples of class c. Classes with at most
    k samples cannot be estimated: they are skipped with a warning and the weights p(c) are
    renormalised over the classes kept. Pre-processing is applied once to the whole x and y, before
    splitting by class. This is I(X;Z|Y) of the paper when x is the input, y the representation
    and the labels are the classes.

    ``device`` (None, a device string or a ``torch.device``) chooses where the estimate runs, as
    for :func:`mutual_info` (docs/spec.md §8.1).
    Labels given as a tensor are read on the host (O(N) integers).
    """
    variant = check_choice(estimator, "estimator", KSG_ESTIMATORS)
    norm = check_choice(metric, "metric", METRICS)
    place = resolve_device({"x": x, "y": y, "labels": labels}, device)
    xs, ys = _samples(x, "x", place), _samples(y, "y", place)
    n = same_length([("x", xs), ("y", ys)])
    codes, values = class_codes(labels, n)
    k, neighbors, jitter, base, normalize, clip = _common(k, n, neighbors, jitter, base, normalize, clip)
    arrays, _ = _prepared([xs, ys], normalize=normalize, jitter=jitter, random_state=random_state, place=place)
    return _MutualInfoGivenLabelsJob(
        arrays,
        codes,
        values,
        option=variant,
        metric=norm,
        k=k,
        neighbors=neighbors,
        base=base,
        clip=clip,
        device=place,
    )


class _MutualInfoMixedJob(_KnnJob[None]):
    name = "mutual_info_mixed"

    def run(self) -> float:
        xs, ys = self.arrays
        return _finish(_core.mutual_info_mixed(xs, ys, self.k, self.neighbors), self.base, self.clip)


@register_estimator(arrays=("x", "y"))
def mutual_info_mixed(
    x: Any,
    y: Any,
    *,
    k: int = 3,
    normalize: bool = True,
    base: float = math.e,
    neighbors: str = "auto",
    clip: bool = False,
) -> _MutualInfoMixedJob:
    """Mutual information I(X;Y) between variables that may be discrete, continuous or a mixture of
    both (docs/spec.md §1.14): class labels next to continuous features, ReLU activations with
    exact zeros, quantised values.

    Gao, Kannan, Oh & Viswanath (2017), "Estimating mutual information for discrete-continuous
    mixtures", NeurIPS, in the form of KSG-1. With ρ_i the max-norm distance from (x_i, y_i) to its
    k-th nearest joint neighbour and ψ the digamma function:

    - ρ_i > 0 (i in the continuous part): k̃_i = k, n_x,i = #{j ≠ i : ‖x_j − x_i‖∞ < ρ_i} (strict,
      as KSG-1), n_y,i likewise;
    - ρ_i = 0 (i on an atom shared with at least k others): k̃_i, n_x,i, n_y,i are the numbers of
      other samples at distance 0 in the joint, x and y spaces (the paper's zero-distance rule);

        I = ⟨ψ(k̃_i)⟩ + ψ(N) − ⟨ψ(n_x,i + 1)⟩ − ⟨ψ(n_y,i + 1)⟩.

    On data without ties this is KSG-1; on purely discrete data it is the plug-in MI up to O(1/n)
    per atom. The paper's Algorithm 1 writes log N − log(n_x,i + 1) − log(n_y,i + 1) with
    inclusive counts, a form whose consistency proof lets k grow with N. At a fixed small k that
    form is biased where one variable is discrete and the other continuous (the main use here):
    the marginal count of the continuous variable then stays O(k) as N grows, so neither
    log(n + 1) − ψ(n + 1) nor the extra boundary sample of an inclusive count fades. Measured on
    the paper's own example (Y uniform on 4 values, X | Y uniform on [Y, Y + 2), I = 0.866 nats;
    N = 2000, k = 3, 5 seeds): 0.545 for Algorithm 1, 0.640 for ψ with inclusive counts, 0.869
    for the form used here. The authors' released code also uses ψ and strict counts when ρ_i > 0.

    There is no ``jitter``: jitter breaks ties, which is exactly what must not happen here (the
    atoms — equal values — are the discrete part of the distribution that k̃_i counts; with noise
    every ρ_i > 0 and the estimate is KSG-1's on the noisy data, which then depends on the noise's
    scale: plain KSG-1 without noise is badly wrong on atoms, +9.9 nats on a 4 × 4 discrete
    channel, docs/spec.md §1.14). ``normalize`` is safe: dividing a column by its standard
    deviation maps equal values to equal values, so no atom is split or merged, and the result no
    longer depends on the units of each column (the max-norm ball is not scale-invariant). With
    ``normalize=False`` the arrays are used as given and the result equals a brute-force evaluation
    of the formula (identical counts).

    Parameters
    ----------
    x, y : array-like, shape (N,) or (N, d)
        Samples, row i of x paired with row i of y. Discrete values (labels) are given as numbers:
        equal values are one atom; their distances to other values matter to the counts only
        where continuous samples lie between them.
    k : int
        Number of neighbours (1 ≤ k < N).
    normalize : bool
        Divide each column by its standard deviation first (constant columns unchanged).
    base : float
        Logarithm base of the result (e for nats, 2 for bits).
    neighbors : {"auto", "kdtree", "brute"}
        The neighbour search (all give identical results).
    clip : bool
        Return max(0, I) instead of the raw estimate.

    Returns
    -------
    float

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 4, 4000); x = y + 2 * rng.random(4000)  # X | Y uniform on [Y, Y + 2)
    >>> round(mutual_info_mixed(x, y), 2)  # truth: log 4 − (3/4) log 2 = 0.87
    0.85
    """
    xs, ys = as_samples(x, "x"), as_samples(y, "y")
    n = same_length([("x", xs), ("y", ys)])
    k, neighbors, _, base, normalize, clip = _common(k, n, neighbors, 0.0, base, normalize, clip)
    (xs, ys), _ = _prepared([xs, ys], normalize=normalize, jitter=0.0, random_state=0)
    return _MutualInfoMixedJob([xs, ys], None, option=None, k=k, neighbors=neighbors, base=base, clip=clip)


def _column_groups(groups: Any, p: int) -> list[list[int]]:
    """The variables of :func:`mutual_info_matrix`: one per column of x, or the given groups of
    column indices (each non-empty, no repeated column, at least two groups)."""
    if groups is None:
        if p < 2:
            raise ValueError(f"x: needs at least 2 columns for pairs, got {p}")
        return [[j] for j in range(p)]
    if isinstance(groups, (str, bytes)) or not hasattr(groups, "__iter__"):
        raise TypeError(f"groups: expected a list of lists of column indices, got {type(groups).__name__}")
    out: list[list[int]] = []
    for g, group in enumerate(groups):
        if isinstance(group, (str, bytes)) or not hasattr(group, "__iter__"):
            raise TypeError(f"groups: group {g} must be a list of column indices, got {type(group).__name__}")
        cols = []
        for c in group:
            if isinstance(c, (bool, np.bool_)) or not isinstance(c, (int, np.integer)):
                raise TypeError(f"groups: group {g} holds {c!r}, not an integer column index")
            if not 0 <= int(c) < p:
                raise ValueError(f"groups: group {g} names column {int(c)}, but x has {p} columns")
            cols.append(int(c))
        if not cols:
            raise ValueError(f"groups: group {g} is empty")
        if len(set(cols)) != len(cols):
            raise ValueError(f"groups: group {g} names a column twice: {cols}")
        out.append(cols)
    if len(out) < 2:
        raise ValueError(f"groups: needs at least 2 groups for pairs, got {len(out)}")
    return out


# Pairs per call into the core after the first: sized to take about this long, so a progress bar
# stays alive and Ctrl-C is seen between calls too (the values do not depend on the batching).
_PAIR_BATCH_SECONDS = 0.5


def mutual_info_matrix(
    x: Any,
    *,
    groups: Any = None,
    k: int = 3,
    estimator: str = "ksg1",
    metric: str = "chebyshev",
    normalize: bool = True,
    jitter: float = 1e-10,
    random_state: Any = 0,
    base: float = math.e,
    neighbors: str = "auto",
    clip: bool = False,
    progress: bool | None = None,
) -> np.ndarray:
    """KSG mutual information between every pair of columns of x (or of column groups), in one
    parallel computation in the core (docs/spec.md §1.15).

    Entry (a, b), a < b, is exactly ``mutual_info(x[:, A], x[:, B], ...)`` with the same options,
    bit for bit, where A and B are column a and b (or ``groups[a]`` and ``groups[b]``): the same
    pre-processing (normalisation per column; with ``jitter``, variable a gets the noise a pairwise
    call gives its x and variable b the noise it gives its y, both seeds drawn once from
    ``random_state`` as that call draws them) and the same core function. The matrix is symmetric:
    entry (b, a) is entry (a, b). The diagonal is NaN: I(X;X) of a continuous variable is infinite,
    not a number an estimator should report, and a 0 there would read as independence.

    With an int ``random_state`` every entry equals the pairwise call with that seed; a
    ``numpy.random.Generator`` is advanced once, by the two seeds, as one pairwise call would advance it.
    Without normalisation, data far from unit magnitude are divided by the power of two each pair's
    call would use (docs/spec.md §0.8), so that holds there too.

    Parameters
    ----------
    x : array-like, shape (N, p)
        Samples of p variables (columns).
    groups : list of lists of int, optional
        Variables made of several columns: the matrix is over the groups, (len(groups), len(groups)).
        Groups may overlap; none may be empty or repeat a column.
    k, estimator, metric, normalize, jitter, random_state, base, neighbors, clip
        As for :func:`mutual_info`.
    progress : bool or None
        Progress bar over the pairs (docs/spec.md §0.9): True always, False never, None after 2 s.

    Returns
    -------
    numpy.ndarray of float64, shape (p, p) (or (len(groups), len(groups)))

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = rng.standard_normal(3000); b = 0.8 * a + 0.6 * rng.standard_normal(3000)
    >>> m = mutual_info_matrix(np.column_stack([a, b, rng.standard_normal(3000)]))
    >>> np.round(m, 2)  # I(a;b) = -0.5 log(1 - 0.64) = 0.51
    array([[  nan,  0.52, -0.01],
           [ 0.52,   nan,  0.  ],
           [-0.01,  0.  ,   nan]])
    """
    variant = check_choice(estimator, "estimator", KSG_ESTIMATORS)
    norm = check_choice(metric, "metric", METRICS)
    xs = as_samples(x, "x")
    n, p = xs.shape
    variables = _column_groups(groups, p)
    show = check_optional_bool(progress, "progress")
    k, neighbors, jitter, base, normalize, clip = _common(k, n, neighbors, jitter, base, normalize, clip)
    g = len(variables)
    total = g * (g - 1) // 2
    check_memory(8 * g * g, "groups" if groups is not None else "x", f"the {g} × {g} matrix", "use fewer variables")
    # The seeds a pairwise call draws, x's then y's (docs/spec.md §1.4).
    rng = make_rng(random_state)
    seed_x = int(rng.integers(0, 2**63)) if jitter > 0 else None
    seed_y = int(rng.integers(0, 2**63)) if jitter > 0 else None
    raws = [np.ascontiguousarray(xs[:, cols]) for cols in variables]
    rows, cols = np.triu_indices(g, 1)
    # Without normalisation a pairwise call divides both arrays by the power of two 2^e of their
    # larger magnitude (docs/spec.md §0.8); e grows with the magnitude, so the pair's e is the
    # larger of the two variables' own. Each variable is prepared once per e its pairs need.
    if normalize:
        own_e = np.zeros(g, dtype=np.int64)
    else:
        computes_in = np.float32 if jitter == 0 and xs.dtype == np.float32 else np.float64
        own_e = np.array([magnitude_exponent(largest_magnitude(r), computes_in) for r in raws], dtype=np.int64)
    pair_e = np.maximum(own_e[rows], own_e[cols])
    as_x: list[np.ndarray] = []
    as_y: list[np.ndarray] = []

    def versions(side: np.ndarray, e: np.ndarray, seed: int | None, out: list[np.ndarray]) -> np.ndarray:
        """The index into `out` of each pair's variable on one side (`side`, scaled by 2^-`e`),
        prepared as a pairwise call would prepare it."""
        keys, where = np.unique(np.stack([side, e]), axis=1, return_inverse=True)
        for v, e in keys.T:
            raw = raws[v] if e == 0 else np.ldexp(raws[v], -int(e))
            out.append(preprocess_one(raw, normalize=normalize, jitter=jitter, seed=seed))
        return np.ascontiguousarray(where.reshape(-1), dtype=np.int64)

    if jitter > 0:
        first = versions(rows, pair_e, seed_x, as_x)
        second = versions(cols, pair_e, seed_y, as_y)
    else:
        # Without noise the two roles are the same array: prepare each (variable, e) once.
        both = versions(np.concatenate([rows, cols]), np.concatenate([pair_e, pair_e]), None, as_x)
        as_y = as_x
        first, second = both[: rows.size], both[rows.size :]
    values = np.empty(total, dtype=np.float64)
    threads = _core.get_num_threads()
    bar = Progress(total, "mutual_info_matrix", show)
    try:
        start, size = 0, (total if show is False else min(total, 2 * threads))
        while start < total:
            count = min(size, total - start)
            t0 = time.perf_counter()
            values[start : start + count] = _core.mutual_info_pairs(
                as_x, as_y, first[start : start + count], second[start : start + count], k, variant, norm, neighbors
            )
            took = time.perf_counter() - t0
            bar.update(count)
            start += count
            size = max(threads, int(count * _PAIR_BATCH_SECONDS / took) if took > 0 else 16 * count)
    finally:
        bar.close()
    if clip:
        values = np.where(values > 0.0, values, 0.0)  # max(0, v) as _finish takes it
    values = values / math.log(base)
    out = np.full((g, g), np.nan)
    out[rows, cols] = values
    out[cols, rows] = values
    return out
