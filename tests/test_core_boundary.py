"""The typed boundary of the Rust core: option strings become enums once, at the call, with errors
that name the argument and list the valid values; the Gaussian channel returns a frozen object."""

from __future__ import annotations

import numpy as np
import pytest

from repcompress import _core

X = np.random.default_rng(0).standard_normal((30, 2))
VAR = np.ones((1, 2))

# (call with the option replaced, argument name, valid values)
OPTIONS = [
    (lambda v: _core.mutual_info_ksg(X, X, 3, v, "chebyshev", "auto"), "estimator", ("ksg1", "ksg2")),
    (lambda v: _core.mutual_info_ksg(X, X, 3, "ksg1", "chebyshev", v), "neighbors", ("auto", "kdtree", "brute")),
    (lambda v: _core.entropy_kl(X, 3, v, "auto"), "metric", ("chebyshev", "euclidean")),
    (lambda v: _core.Draws(v, 30, 1), "scheme", ("bootstrap", "subsample", "permutation")),
    (lambda v: _core.factorize_binned(X, v, 4, None, False), "strategy", ("uniform", "quantile")),
    (lambda v: _core.gaussian_channel_mi(X, VAR, v, None, 1, True), "noise", ("shared", "per_sample")),
    (
        lambda v: _core.knn_resamples(
            v, "", "chebyshev", [X], None, _core.Draws("bootstrap", 30, 1), 0, 1, [True], 3, "auto"
        ),
        "estimator",
        ("mutual_info", "conditional_mutual_info", "entropy", "mutual_info_labels", "mutual_info_given_labels"),
    ),
]


@pytest.mark.parametrize("call,arg,valid", OPTIONS, ids=[f"{o[1]}-{i}" for i, o in enumerate(OPTIONS)])
def test_bad_option_names_the_argument_and_lists_the_values(call, arg, valid):
    with pytest.raises(ValueError, match=rf"^{arg}: unknown value 'nope'") as bad_value:
        call("nope")
    with pytest.raises(TypeError, match=rf"^{arg}: expected a str") as not_a_str:
        call(3)
    for e in (bad_value, not_a_str):
        assert all(f"'{v}'" in str(e.value) for v in valid), str(e.value)


def test_gaussian_channel_result_is_typed_and_frozen():
    labels = np.arange(30, dtype=np.int64) % 2
    draws = np.random.default_rng(1).standard_normal((2 * 30, 2))
    r = _core.gaussian_channel_mi(X, VAR, "shared", draws, 2, True, labels)
    assert isinstance(r, _core.ChannelMI)
    assert isinstance(r.total, _core.ChannelEstimate) and isinstance(r.given_labels, _core.ChannelEstimate)
    assert all(isinstance(v, float) for v in (r.h_z_given_x, r.labels_mi, r.labels_stderr, r.total.mi, r.total.kl))
    with pytest.raises(AttributeError):
        r.h_z_given_x = 0.0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        r.total.mi = 0.0  # type: ignore[misc]
    bounds_only = _core.gaussian_channel_mi(X, VAR, "shared", None, 1, True)
    assert bounds_only.given_labels is None and bounds_only.labels_mi is None and bounds_only.total.mi is None
    assert bounds_only.total.bd <= bounds_only.total.kl <= bounds_only.total.ceiling
