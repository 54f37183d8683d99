"""Every argument of every public function is checked the same way, before any computation, with a
message that starts with its name (docs/spec.md §0.4): array arguments (numeric dtype, shape,
finite values), boolean options (a real bool), numbers (no bools, no OverflowError beyond the
float64 range), integer counts (bounded), seeds (non-negative) and the thread count (§0.7).

The tables below list every parameter of every public callable; ``test_every_parameter_is_listed``
fails when one is added without being listed, so a new option cannot escape these checks.
"""

from __future__ import annotations

import inspect
import math
import os
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import repcompress as rc
from repcompress import analysis, plots
from repcompress._threads import thread_limit
from repcompress.estimate import estimate_arrays

RNG = np.random.default_rng(0)
N, D = 24, 3
H = RNG.normal(size=(N, D)) + 3.0 * np.eye(3)[np.arange(N) % 3]
LABELS = np.arange(N) % 3
X, Y, Z1 = RNG.normal(size=(N, 2)), RNG.normal(size=(N, 2)), RNG.normal(size=(N, 1))
W = RNG.normal(size=(3, D))
B = RNG.normal(size=3)
VARIANCES = RNG.uniform(0.5, 1.5, size=(N, D))


def cdnv_stats():
    return rc.ClassStatistics().update(H, LABELS)


# name -> (callable, positional arguments, keyword arguments of a valid call)
CALLS = {
    "mutual_info": (rc.mutual_info, (X, Y), {}),
    "conditional_mutual_info": (rc.conditional_mutual_info, (X, Y, Z1), {}),
    "entropy": (rc.entropy, (X,), {}),
    "mutual_info_labels": (rc.mutual_info_labels, (X, LABELS), {}),
    "mutual_info_given_labels": (rc.mutual_info_given_labels, (X, Y, LABELS), {"k": 2}),
    "mutual_info_mixed": (rc.mutual_info_mixed, (X, LABELS), {}),
    "mutual_info_matrix": (rc.mutual_info_matrix, (H,), {"progress": False}),
    "binned_entropy": (rc.binned_entropy, (H,), {}),
    "binned_mutual_info": (rc.binned_mutual_info, (H, LABELS), {}),
    "binning_information_plane": (rc.binning_information_plane, (H, LABELS), {}),
    "gaussian_channel_mi": (rc.gaussian_channel_mi, (H,), {"noise_variance": 0.5, "labels": LABELS}),
    "class_distance_normalized_variance": (rc.class_distance_normalized_variance, (H, LABELS), {}),
    "cdnv_matrix": (rc.cdnv_matrix, (H, LABELS), {}),
    "scatter_matrices": (rc.scatter_matrices, (H, LABELS), {}),
    "trace_ratio": (rc.trace_ratio, (H, LABELS), {}),
    "fisher_ratio": (rc.fisher_ratio, (H, LABELS), {}),
    "neural_collapse": (rc.neural_collapse, (H, LABELS), {"weights": W, "bias": B}),
    "calinski_harabasz": (rc.calinski_harabasz, (H, LABELS), {}),
    "davies_bouldin": (rc.davies_bouldin, (H, LABELS), {}),
    "silhouette_samples": (rc.silhouette_samples, (H, LABELS), {}),
    "silhouette": (rc.silhouette, (H, LABELS), {"sample_size": 12}),
    "twonn_dimension": (rc.twonn_dimension, (H,), {}),
    "effective_rank": (rc.effective_rank, (H,), {}),
    "ClassStatistics": (rc.ClassStatistics, (), {}),
    "ClassStatistics.update": (lambda *a, **k: rc.ClassStatistics().update(*a, **k), (H, LABELS), {}),
    "ClassStatistics.cdnv": (lambda **k: cdnv_stats().cdnv(**k), (), {}),
    "ClassStatistics.cdnv_matrix": (lambda **k: cdnv_stats().cdnv_matrix(**k), (), {}),
    "ClassStatistics.fisher_ratio": (lambda **k: cdnv_stats().fisher_ratio(**k), (), {}),
    "confidence_interval": (
        rc.confidence_interval,
        (rc.trace_ratio, H, LABELS),
        {"n_resamples": 3, "progress": False},
    ),
    "permutation_test": (rc.permutation_test, (rc.trace_ratio, H, LABELS), {"n_permutations": 2, "progress": False}),
    "set_num_threads": (lambda n: rc.set_num_threads(n), (), {"n": 2}),
    "estimate_arrays": (estimate_arrays, (H, LABELS), {"metrics": "cdnv"}),
    "normalized_ranks": (analysis.normalized_ranks, (H[:, 0],), {}),
    "rank_correlations": (analysis.rank_correlations, ({"a": H[:, 0], "b": H[:, 1]}, ["a", "b"]), {}),
}

# The functions behind CALLS whose signatures must be covered (methods and lambdas by their target).
SIGNATURES = {
    **{name: fn for name, (fn, _, _) in CALLS.items() if "." not in name and name != "set_num_threads"},
    "ClassStatistics": rc.ClassStatistics.__init__,
    "ClassStatistics.update": rc.ClassStatistics.update,
    "ClassStatistics.cdnv": rc.ClassStatistics.cdnv,
    "ClassStatistics.cdnv_matrix": rc.ClassStatistics.cdnv_matrix,
    "ClassStatistics.fisher_ratio": rc.ClassStatistics.fisher_ratio,
    "set_num_threads": rc.set_num_threads,
}

KNN = {
    "k": "int",
    "metric": "choice",
    "normalize": "bool",
    "jitter": "real",
    "random_state": "seed",
    "base": "real",
    "neighbors": "choice",
    "clip": "bool",
    "device": "exempt",  # where the call runs, checked by resolve_device (tests/test_torch_knn.py)
}
BINNING = {
    "n_bins": "int",
    "bin_size": "real",
    "strategy": "choice",
    "range": "choice",
    "correction": "choice",
    "base": "real",
}
ESTIMATE = {
    "metrics": "exempt",  # names, checked by resolve_metrics (tests/test_metrics_registry.py)
    "ci": "int",
    "confidence": "real",
    "seed": "seed",
    "base": "real",
    "k": "int",
    "n_bins": "int",
    "n_draws": "int",
    "min_variance": "real",
    "ridge": "real",
    "silhouette_sample_size": "int",
    "progress": "optional bool",
}
# The estimate options whose true bound depends on the data: beyond 2**32 - 1 the estimate refuses
# them (InputError); within it, the function that takes one refuses a value too large for the data,
# in its row of the report (docs/spec.md §6.4), under its own parameter's name.
PASSED_ON = {"k": ("mi-labels", "k"), "silhouette_sample_size": ("silhouette", "sample_size")}

# name -> {parameter: kind}; "array" parameters are the data, "exempt" ones are checked elsewhere.
PARAMETERS = {
    "mutual_info": {"x": "array", "y": "array", "estimator": "choice", **KNN},
    "conditional_mutual_info": {"x": "array", "y": "array", "z": "array", **KNN},
    "entropy": {"x": "array", **{k: v for k, v in KNN.items() if k != "clip"}},
    "mutual_info_labels": {"x": "array", "labels": "array", **KNN},
    "mutual_info_given_labels": {"x": "array", "y": "array", "labels": "array", "estimator": "choice", **KNN},
    # No jitter (it would destroy the atoms), hence no random_state; no device (the core only); the
    # max-norm only.
    "mutual_info_mixed": {
        "x": "array",
        "y": "array",
        **{k: v for k, v in KNN.items() if k not in ("jitter", "random_state", "device", "metric")},
    },
    "mutual_info_matrix": {
        "x": "array",
        "groups": "exempt",  # lists of column indices, checked by _column_groups (tests/test_mi_matrix.py)
        "estimator": "choice",
        **{k: v for k, v in KNN.items() if k != "device"},
        "progress": "optional bool",
    },
    "binned_entropy": {"z": "array", **BINNING},
    "binned_mutual_info": {"x": "array", "y": "array", **BINNING},
    "binning_information_plane": {"z": "array", "labels": "array", "sample_ids": "array", **BINNING},
    "gaussian_channel_mi": {
        "means": "array",
        "variances": "array",
        "noise_variance": "number or array",
        "dropout_alpha": "number or array",
        "labels": "array",
        "method": "choice",
        "n_draws": "int",
        "min_variance": "real",
        "floor": "choice",
        "random_state": "seed",
        "base": "real",
        "transform": "array",
        "device": "exempt",  # docs/spec.md §8.1 (tests/test_torch_gaussian_geometry.py)
    },
    "class_distance_normalized_variance": {"h": "array", "labels": "array", "ddof": "int", "device": "exempt"},
    "cdnv_matrix": {"h": "array", "labels": "array", "ddof": "int", "device": "exempt"},
    "scatter_matrices": {"h": "array", "labels": "array", "device": "exempt"},
    "trace_ratio": {"h": "array", "labels": "array", "device": "exempt"},
    "fisher_ratio": {"h": "array", "labels": "array", "ridge": "real"},
    "neural_collapse": {
        "h": "array",
        "labels": "array",
        "weights": "array",
        "bias": "array",
        "logits": "array",
        "device": "exempt",
    },
    "calinski_harabasz": {"h": "array", "labels": "array"},
    "davies_bouldin": {"h": "array", "labels": "array"},
    "silhouette_samples": {"h": "array", "labels": "array", "device": "exempt"},
    "silhouette": {
        "h": "array",
        "labels": "array",
        "sample_size": "int",
        "random_state": "seed",
        "device": "exempt",
    },
    "twonn_dimension": {"h": "array", "discard_fraction": "real", "device": "exempt"},
    "effective_rank": {"h": "array", "device": "exempt"},
    "ClassStatistics": {"self": "exempt", "second_moments": "bool"},
    "ClassStatistics.update": {"self": "exempt", "h": "array", "labels": "array"},
    "ClassStatistics.cdnv": {"self": "exempt", "ddof": "int"},
    "ClassStatistics.cdnv_matrix": {"self": "exempt", "ddof": "int"},
    "ClassStatistics.fisher_ratio": {"self": "exempt", "ridge": "real"},
    "confidence_interval": {
        "estimator": "exempt",  # any callable (tests/test_uncertainty.py)
        "arrays": "exempt",  # the estimator's own, checked by it
        "kwargs": "exempt",
        "n_resamples": "int",
        "confidence": "real",
        "method": "choice",
        "random_state": "seed",
        "progress": "optional bool",
    },
    "permutation_test": {
        "estimator": "exempt",
        "x": "exempt",
        "y": "exempt",
        "kwargs": "exempt",
        "n_permutations": "int",
        "random_state": "seed",
        "progress": "optional bool",
    },
    "set_num_threads": {"n": "int"},
    "estimate_arrays": {"z": "array", "labels": "array", "variances": "array", **ESTIMATE},
    "normalized_ranks": {"values": "array"},
    "rank_correlations": {"table": "exempt", "columns": "exempt", "setup": "exempt", "method": "choice"},
}

# Public callables that take no options beyond the ones above, or none at all: listed so that the
# completeness test knows them.
NOT_CALLED = {"get_num_threads", "ChannelInformation", "GaussianChannelMI", "InformationPlanePoint"}
NOT_CALLED |= {"NeuralCollapse", "ScatterMatrices", "ConfidenceInterval", "PermutationTest"}


def test_every_parameter_is_listed():
    for name in rc.__all__:
        assert name in SIGNATURES or name in NOT_CALLED, f"{name}: add it to CALLS and PARAMETERS"
    for name, fn in SIGNATURES.items():
        params = set(inspect.signature(fn).parameters)
        assert params == set(PARAMETERS[name]), (name, params ^ set(PARAMETERS[name]))


def invoke(name, **overrides):
    fn, args, kwargs = CALLS[name]
    if name == "gaussian_channel_mi" and {"variances", "dropout_alpha"} & set(overrides):
        kwargs = {k: v for k, v in kwargs.items() if k != "noise_variance"}  # exactly one noise
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **{**kwargs, **overrides})


def options_of(*kinds):
    return [
        pytest.param(name, option, id=f"{name}-{option}")
        for name, params in PARAMETERS.items()
        for option, kind in params.items()
        if kind in kinds
    ]


def raises_naming(option, exceptions, fn, /, *args, **kwargs):
    """`fn(*args, **kwargs)` raises one of `exceptions` (never OverflowError) with a message starting
    `option:`."""
    with pytest.raises(exceptions) as info:
        fn(*args, **kwargs)
    assert not isinstance(info.value, OverflowError), info.value
    assert str(info.value).startswith(f"{option}:"), str(info.value)
    return info.value


def test_valid_calls_run():
    for name in CALLS:
        invoke(name)


# ---------------------------------------------------------------------------------- options


@pytest.mark.parametrize("name, option", options_of("bool", "optional bool"))
def test_bool_options_need_a_bool(name, option):
    # "yes" and 1 were read by their truthiness; None means "off" nowhere but where it is documented.
    bad = ["yes", 1, 0.0, np.array([True])]
    if PARAMETERS[name][option] == "bool":
        bad.append(None)
    expected = ValueError if name == "estimate_arrays" else TypeError  # InputError, a ValueError (§6.4)
    for value in bad:
        raises_naming(option, expected, invoke, name, **{option: value})
    for value in (True, False, np.True_, np.False_):  # numpy booleans are booleans
        invoke(name, **{option: value})


@pytest.mark.parametrize("option", sorted(PASSED_ON))
def test_estimate_options_with_bounds_of_the_data(option):
    metric, parameter = PASSED_ON[option]
    for value in (True, -1, 2.5, 2**32, 10**5000):
        raises_naming(option, ValueError, estimate_arrays, H, LABELS, VARIANCES, metrics=metric, **{option: value})
    report = estimate_arrays(H, LABELS, VARIANCES, metrics=metric, **{option: 2**32 - 1})
    assert report.failed and all(row.error.startswith(f"{parameter}:") for row in report.failed)


@pytest.mark.parametrize("name, option", options_of("real", "int", "number or array"))
def test_numbers_refuse_bools(name, option):
    for value in (True, np.True_):
        raises_naming(option, (TypeError, ValueError), invoke, name, **{option: value})


@pytest.mark.parametrize("name, option", options_of("real", "int", "number or array", "seed"))
def test_numbers_beyond_float64_are_a_value_error_naming_the_option(name, option):
    # 10**400 raised OverflowError (base, jitter, ridge, min_variance, noise_variance, ...) and
    # 2**64 numpy's "Maximum allowed dimension exceeded" (n_draws, n_resamples); a value of more
    # than 4300 digits cannot even be printed by Python.
    values = [10**400, -(10**400), 10**5000]
    if PARAMETERS[name][option] == "int":
        values.append(2**64)
    for value in values:
        if PARAMETERS[name][option] == "seed" and value > 0:
            continue  # any non-negative integer seeds numpy
        raises_naming(option, ValueError, invoke, name, **{option: value})


@pytest.mark.parametrize("name, option", options_of("real", "number or array"))
def test_numbers_refuse_strings(name, option):
    raises_naming(option, (TypeError, ValueError), invoke, name, **{option: "1"})


@pytest.mark.parametrize("name, option", options_of("seed"))
def test_negative_seeds_name_the_argument(name, option):
    # numpy said "expected non-negative integer", without the argument's name.
    raises_naming(option, ValueError, invoke, name, **{option: -1})


@pytest.mark.parametrize("name, option", options_of("choice"))
def test_unknown_choices_name_the_option(name, option):
    raises_naming(option, ValueError, invoke, name, **{option: "no such option"})
    raises_naming(option, (TypeError, ValueError), invoke, name, **{option: ["not", "hashable"]})


def test_nan_options_are_refused():
    for name, option in [("gaussian_channel_mi", "min_variance"), ("fisher_ratio", "ridge")]:
        raises_naming(option, ValueError, invoke, name, **{option: math.nan})
    raises_naming("discard_fraction", ValueError, invoke, "twonn_dimension", discard_fraction=math.nan)
    for option in ("noise_variance", "dropout_alpha"):
        kwargs = {"noise_variance": None, option: math.nan}
        raises_naming(option, ValueError, invoke, "gaussian_channel_mi", **kwargs)


@pytest.mark.parametrize("option", ["noise_variance", "dropout_alpha"])
def test_per_dimension_noise_is_numbers(option):
    def noise(value):
        return {"noise_variance": None, option: value}

    for bad in ([True] * D, ["1"] * D, np.ones(D, complex), [[1.0], [1.0, 2.0]]):
        raises_naming(option, TypeError, invoke, "gaussian_channel_mi", **noise(bad))
    raises_naming(option, ValueError, invoke, "gaussian_channel_mi", **noise(np.ones(D + 1)))
    # A number, a numpy number, a length-d list and a 0-d array are the same channel.
    same = (0.5, np.float32(0.5), [0.5] * D, np.array(0.5))
    values = [invoke("gaussian_channel_mi", **noise(v)) for v in same]
    assert all(v == values[0] for v in values)


def test_options_are_checked_even_where_unused():
    # random_state draws nothing without sample_size / with method="bounds", but is still an argument.
    raises_naming("random_state", TypeError, rc.silhouette, H, LABELS, random_state="x")
    bounds_only = {"noise_variance": 1.0, "method": "bounds", "random_state": -1}
    raises_naming("random_state", ValueError, rc.gaussian_channel_mi, H, **bounds_only)


def test_checks_run_before_the_computation():
    # ddof and ridge were checked only after the class statistics were computed.
    stats = rc.ClassStatistics()
    with pytest.raises(ValueError, match=r"^ddof:"):
        rc.class_distance_normalized_variance(np.ones((3, 2)), [0, 0, 0], ddof=5)  # one class: ddof first
    with pytest.raises(ValueError, match=r"^ddof:"):
        stats.cdnv(ddof=5)  # no data yet: ddof first
    with pytest.raises(ValueError, match=r"^ridge:"):
        stats.fisher_ratio(ridge=-1.0)


# ------------------------------------------------------------------------------- the pool


def test_set_num_threads_is_bounded():
    before = rc.get_num_threads()
    limit = thread_limit()
    assert limit >= 1024
    try:
        for n in (limit + 1, 10**6, 2**63, 2**64, 10**400):  # 2**64 was an OverflowError
            error = raises_naming("n", ValueError, rc.set_num_threads, n)
            assert f"at most {limit}" in str(error)
        raises_naming("n", ValueError, rc.set_num_threads, 0)
        for bad in (True, 2.0, "2", None):
            raises_naming("n", TypeError, rc.set_num_threads, bad)
        assert rc.get_num_threads() == before  # nothing was set
        rc.set_num_threads(np.int64(3))
        assert rc.get_num_threads() == 3
    finally:
        rc.set_num_threads(before)


@pytest.mark.parametrize("variable", ["REPCOMPRESS_NUM_THREADS", "RAYON_NUM_THREADS"])
def test_an_oversized_thread_count_in_the_environment_is_clamped(variable):
    code = textwrap.dedent(
        """
        import warnings
        warnings.simplefilter("always")
        with warnings.catch_warnings(record=True) as caught:
            import repcompress as rc
        from repcompress._threads import thread_limit
        print(rc.get_num_threads() == thread_limit(), [str(w.message) for w in caught])
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("REPCOMPRESS_NUM_THREADS", "RAYON_NUM_THREADS")}
    env[variable] = "1000000"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("True"), out.stdout
    assert f"{variable}=1000000 is more threads than repcompress starts" in out.stdout
    env[variable] = "3"  # within the limit: the core's own reading, untouched
    small = subprocess.run(
        [sys.executable, "-c", "import repcompress as rc; print(rc.get_num_threads())"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert small.stdout.strip() == "3", small.stderr


# -------------------------------------------------------------------------- array arguments


# (function, array argument, valid value): every array argument of the public functions.
ARRAYS = [
    ("binned_entropy", "z", H),
    ("binned_mutual_info", "x", H),
    ("binned_mutual_info", "y", H),
    ("binning_information_plane", "z", H),
    ("binning_information_plane", "labels", LABELS),
    ("binning_information_plane", "sample_ids", np.arange(N)),
    ("gaussian_channel_mi", "means", H),
    ("gaussian_channel_mi", "labels", LABELS),
    ("class_distance_normalized_variance", "h", H),
    ("class_distance_normalized_variance", "labels", LABELS),
    ("neural_collapse", "h", H),
    ("neural_collapse", "labels", LABELS),
    ("neural_collapse", "weights", W),
    ("neural_collapse", "bias", B),
    ("silhouette", "h", H),
    ("twonn_dimension", "h", H),
    ("effective_rank", "h", H),
    ("ClassStatistics.update", "h", H),
    ("ClassStatistics.update", "labels", LABELS),
    ("estimate_arrays", "z", H),
    ("estimate_arrays", "labels", LABELS),
]


def call_with(name, argument, value, **extra):
    fn, args, kwargs = CALLS[name]
    args = list(args)
    sig = [p for p in inspect.signature(SIGNATURES[name]).parameters if p != "self"]
    if argument in sig[: len(args)]:
        args[sig.index(argument)] = value
    else:
        kwargs = {**kwargs, argument: value}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **{**kwargs, **extra})


@pytest.mark.parametrize("name, argument, valid", ARRAYS, ids=[f"{n}-{a}" for n, a, _ in ARRAYS])
def test_array_arguments_are_checked_and_named(name, argument, valid):
    def bad(value, exceptions):
        raises_naming(argument, exceptions, call_with, name, argument, value)

    bad(np.asarray(valid).astype(str), (TypeError, ValueError))
    bad(np.asarray(valid).astype(complex), (TypeError, ValueError))
    bad([[1.0], [1.0, 2.0]], (TypeError, ValueError))  # ragged
    if argument in ("h", "z", "means") or (name, argument) == ("binned_mutual_info", "x"):
        return  # the first array: a length mismatch is named on the array that differs from it
    bad(np.asarray(valid)[:-1], ValueError)
    if np.asarray(valid).dtype.kind == "f":
        for value in (np.nan, np.inf):
            fixed = np.array(valid, dtype=np.float64)
            fixed.reshape(fixed.shape[0], -1)[1, 0] = value
            bad(fixed, ValueError)


# ------------------------------------------------------------------- neural_collapse (§4.6)


@pytest.mark.parametrize("argument", ["weights", "bias", "logits"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_classifier_arrays_must_be_finite(argument, value):
    # NaN in the bias gave NaN logits, and NC4 was computed from their argmax.
    arrays = {"weights": W.copy(), "bias": B.copy(), "logits": H[:, :3].copy()}
    arrays[argument].reshape(arrays[argument].shape[0], -1)[1, 0] = value
    kwargs = (
        {"logits": arrays["logits"]} if argument == "logits" else {"weights": arrays["weights"], "bias": arrays["bias"]}
    )
    error = raises_naming(argument, ValueError, rc.neural_collapse, H, LABELS, **kwargs)
    assert "NaN or inf" in str(error) and "1" in str(error)


def test_classifier_arrays_shapes_and_dtypes():
    cases = [
        ({"weights": W[:, :2]}, "weights", ValueError),
        ({"weights": W[0]}, "weights", ValueError),
        ({"weights": W, "bias": B[:2]}, "bias", ValueError),
        ({"weights": W, "bias": B[None]}, "bias", ValueError),
        ({"weights": W.astype(str)}, "weights", TypeError),
        ({"weights": W, "bias": ["a", "b", "c"]}, "bias", TypeError),
        ({"weights": W.astype(complex)}, "weights", TypeError),
        ({"logits": H[:-1, :3]}, "logits", ValueError),
        ({"logits": np.ones((N, 3), complex)}, "logits", TypeError),
        ({"logits": [[1.0], [1.0, 2.0]]}, "logits", TypeError),
        ({"bias": B}, "bias", ValueError),
        ({"bias": B, "logits": H[:, :3]}, "bias", ValueError),  # was silently ignored
        ({"weights": np.full((3, D), 1e308)}, "weights", ValueError),  # logits overflow to inf
    ]
    for kwargs, name, exception in cases:
        raises_naming(name, exception, rc.neural_collapse, H, LABELS, **kwargs)


def test_classifier_labels_may_be_whole_floats_or_booleans():
    # Whole-number float labels raised IndexError with weights=; booleans indexed rows as a mask.
    expected = rc.neural_collapse(H, LABELS, weights=W, bias=B)
    assert rc.neural_collapse(H, LABELS.astype(np.float64), weights=W, bias=B) == expected
    assert rc.neural_collapse(H, LABELS.astype(np.float32), logits=H[:, :3]) == rc.neural_collapse(
        H, LABELS, logits=H[:, :3]
    )
    two = LABELS % 2
    as_bool = rc.neural_collapse(H, two.astype(bool), weights=W[:2], bias=B[:2])
    assert as_bool == rc.neural_collapse(H, two, weights=W[:2], bias=B[:2])
    assert rc.neural_collapse(H, two.astype(bool), weights=W) == rc.neural_collapse(H, two, weights=W)
    with pytest.raises(ValueError, match=r"^weights: has 1 classes but labels contain class id True"):
        rc.neural_collapse(H, two.astype(bool), weights=W[:1])
    with pytest.raises(ValueError, match=r"^logits: has 3 classes but labels contain class id 3\.0"):
        rc.neural_collapse(H, LABELS + 1.0, logits=H[:, :3])


def test_classifier_checks_come_before_the_computation():
    # The statistics of 10**6 rows would take a while; the bad bias is refused at once.
    big = np.zeros((10**6, 2))
    big[::2, 0] = 1.0
    labels = np.arange(10**6) % 2
    with pytest.raises(ValueError, match=r"^bias:"):
        rc.neural_collapse(big, labels, weights=np.ones((2, 2)), bias=[np.nan, 0.0])


def test_other_public_arguments_name_themselves():
    raises_naming("values", TypeError, analysis.normalized_ranks, ["a", "b"])
    raises_naming("columns", TypeError, analysis.rank_correlations, {"a": [1.0], "b": [2.0]}, "ab")
    raises_naming("table", TypeError, analysis.rank_correlations, 3, ["a", "b"])
    pytest.importorskip("matplotlib")
    frame = {"epoch": [1], "layer": ["l"], "split": ["train"], "metric": ["cdnv"], "value": [1.0]}
    import pandas as pd

    with pytest.raises(TypeError, match=r"^log_geometry:"):
        plots.geometry_vs_information(pd.DataFrame(frame), log_geometry="no")
    with pytest.raises(TypeError, match=r"^log_y:"):
        plots.scatter_by([1], [1], [1], xlabel="", ylabel="", clabel="", log_y="no")


def test_error_messages_print_huge_integers_shortly():
    # Python refuses str() of an integer of more than 4300 digits: the message must not need it.
    for call in (
        lambda: rc.mutual_info(X, Y, k=10**5000),
        lambda: rc.binned_entropy(H, n_bins=10**5000),
        lambda: rc.silhouette(H, LABELS, sample_size=10**5000),
        lambda: rc.twonn_dimension(H, discard_fraction=10**5000),
    ):
        with pytest.raises(ValueError, match=re.escape("an integer of about 5001 digits")):
            call()


def test_resampled_arrays_of_a_plain_callable_are_named():
    def mean_of(a, b):
        return float(np.mean(a) + np.mean(b))

    raises_naming("arrays[1]", ValueError, rc.confidence_interval, mean_of, H[:, 0], 3.0, n_resamples=3)
    raises_naming("arrays[0]", TypeError, rc.confidence_interval, mean_of, [[1.0], [1.0, 2.0]], H[:2, 0])


def test_an_archive_path_of_the_wrong_type_is_named():
    from repcompress.estimate import estimate_file

    raises_naming("path", ValueError, estimate_file, 3)
