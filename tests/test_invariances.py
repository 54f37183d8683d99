"""Invariances that hold exactly (up to rounding of the final sums) with normalize=False, jitter=0.

- symmetry: I(X;Y) = I(Y;X) (KSG-1, KSG-2), I(X;Y|Z) = I(Y;X|Z), and the same for the
  label-conditional MI;
- permuting the samples (the same permutation applied to every array and to the labels). This
  holds with ties for every estimator except KSG-2, whose neighbour set breaks ties in the joint
  distance by sample index; KSG-2 is checked on tie-free continuous draws;
- translation: adding constants to the data. Values are multiples of 2**-6 (or 0.5) and the
  constants integers, so every difference, and hence every distance, is unchanged bit for bit;
- scaling every variable by the same power of two scales all distances exactly: MI and CMI do
  not change, entropy gains d log 2.
"""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import repcompress as rc
from strategies import MAX_N, dimensions, labels_for, tied_arrays

EXACT = {"normalize": False, "jitter": 0}
EXACT_VALUES = ("grid", "dyadic")  # translation by integers keeps these exact


def assert_same(a, b):
    if a == -math.inf or b == -math.inf:
        assert a == b
    else:
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12), (a, b)


@st.composite
def case(draw, n_vars, *, continuous_only=False, modes=None, min_n=0, with_labels=False):
    k = draw(st.integers(1, 6))
    # Labels need k + 1 members in one class and two in another.
    n = draw(st.integers(max(k + 3 if with_labels else k + 2, min_n), MAX_N))
    dims = [draw(dimensions()) for _ in range(n_vars)]
    kwargs = {"continuous_only": continuous_only}
    if modes is not None:
        kwargs["modes"] = modes
    arrays = draw(tied_arrays(n, dims, np.float64, **kwargs))
    labels = draw(labels_for(n, min_size_class0=k + 1)) if with_labels else None
    return k, arrays, labels


def given_labels_quiet(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # classes with n_c <= k are skipped
        return rc.mutual_info_given_labels(*args, **kwargs)


# ------------------------------------------------------------------------------------ symmetry


@pytest.mark.parametrize("estimator", ("ksg1", "ksg2"))
@given(data=st.data())
def test_mutual_info_is_symmetric_continuous(data, estimator):
    k, (x, y), _ = data.draw(case(2, continuous_only=True))
    forward = rc.mutual_info(x, y, k=k, estimator=estimator, **EXACT)
    assert_same(forward, rc.mutual_info(y, x, k=k, estimator=estimator, **EXACT))


@pytest.mark.parametrize("estimator", ("ksg1", "ksg2"))
@given(data=st.data())
def test_mutual_info_is_symmetric_with_ties(data, estimator):
    # The joint distance max(|dx|, |dy|) and the (distance, index) order do not depend on
    # which variable comes first, so symmetry holds with ties too.
    k, (x, y), _ = data.draw(case(2))
    forward = rc.mutual_info(x, y, k=k, estimator=estimator, **EXACT)
    assert_same(forward, rc.mutual_info(y, x, k=k, estimator=estimator, **EXACT))


@given(data=st.data())
def test_conditional_mutual_info_is_symmetric_in_x_and_y(data):
    k, (x, y, z), _ = data.draw(case(3))
    forward = rc.conditional_mutual_info(x, y, z, k=k, **EXACT)
    assert_same(forward, rc.conditional_mutual_info(y, x, z, k=k, **EXACT))


@pytest.mark.parametrize("estimator", ("ksg1", "ksg2"))
@given(data=st.data())
def test_mutual_info_given_labels_is_symmetric(data, estimator):
    k, (x, y), labels = data.draw(case(2, with_labels=True))
    forward = given_labels_quiet(x, y, labels, k=k, estimator=estimator, **EXACT)
    assert_same(forward, given_labels_quiet(y, x, labels, k=k, estimator=estimator, **EXACT))


# --------------------------------------------------------------------------------- permutation


def all_tie_safe_estimates(k, arrays, labels, options=EXACT):
    """Estimators whose value does not depend on the order of the samples, even with ties."""
    x, y, z = arrays
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # entropy warns when it returns -inf
        return {
            "ksg1": rc.mutual_info(x, y, k=k, estimator="ksg1", **options),
            "cmi": rc.conditional_mutual_info(x, y, z, k=k, **options),
            "entropy_chebyshev": rc.entropy(x, k=k, metric="chebyshev", **options),
            "entropy_euclidean": rc.entropy(x, k=k, metric="euclidean", **options),
            "ross": rc.mutual_info_labels(x, labels, k=k, **options),
            "given_labels_ksg1": given_labels_quiet(x, y, labels, k=k, estimator="ksg1", **options),
        }


@given(data=st.data())
def test_permuting_samples_changes_nothing(data):
    k, arrays, labels = data.draw(case(3, min_n=4, with_labels=True))
    permutation = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).permutation(labels.size)
    before = all_tie_safe_estimates(k, arrays, labels)
    after = all_tie_safe_estimates(k, [a[permutation] for a in arrays], labels[permutation])
    for name in before:
        assert_same(before[name], after[name])


@given(data=st.data())
def test_permuting_samples_ksg2_continuous(data):
    k, (x, y), labels = data.draw(case(2, continuous_only=True, with_labels=True))
    permutation = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).permutation(labels.size)
    assert_same(
        rc.mutual_info(x, y, k=k, estimator="ksg2", **EXACT),
        rc.mutual_info(x[permutation], y[permutation], k=k, estimator="ksg2", **EXACT),
    )
    assert_same(
        given_labels_quiet(x, y, labels, k=k, estimator="ksg2", **EXACT),
        given_labels_quiet(x[permutation], y[permutation], labels[permutation], k=k, estimator="ksg2", **EXACT),
    )


# ------------------------------------------------------------------------- translation, scale


def all_estimates(k, arrays, labels, options=EXACT):
    x, y, _ = arrays
    estimates = all_tie_safe_estimates(k, arrays, labels, options)
    estimates["ksg2"] = rc.mutual_info(x, y, k=k, estimator="ksg2", **options)
    estimates["given_labels_ksg2"] = given_labels_quiet(x, y, labels, k=k, estimator="ksg2", **options)
    return estimates


@given(data=st.data())
def test_translation_changes_nothing(data):
    k, arrays, labels = data.draw(case(3, modes=EXACT_VALUES, min_n=4, with_labels=True))
    # One integer per column, different for every variable.
    integer_shifts = st.integers(-1000, 1000)
    shifted = [
        a + np.asarray(data.draw(st.lists(integer_shifts, min_size=a.shape[1], max_size=a.shape[1]))) for a in arrays
    ]
    for a, b in zip(arrays, shifted, strict=True):  # the premise: differences are unchanged bit for bit
        assert np.array_equal(a[:, None, :] - a[None, :, :], b[:, None, :] - b[None, :, :])
    before = all_estimates(k, arrays, labels)
    after = all_estimates(k, shifted, labels)
    for name in before:
        assert_same(before[name], after[name])


@given(data=st.data())
def test_power_of_two_scaling(data):
    k, arrays, labels = data.draw(case(3, min_n=4, with_labels=True))
    exponent = data.draw(st.integers(-4, 4))
    factor = 2.0**exponent
    scaled = [a * factor for a in arrays]
    before = all_estimates(k, arrays, labels)
    after = all_estimates(k, scaled, labels)
    d = arrays[0].shape[1]
    for name in before:
        if name.startswith("entropy") and before[name] != -math.inf:
            assert_same(before[name] + d * exponent * math.log(2.0), after[name])
        else:
            assert_same(before[name], after[name])


# ------------------------------------------------------------------------------ thread count


@pytest.fixture
def restore_threads():
    before = rc.get_num_threads()
    yield
    rc.set_num_threads(before)


def test_thread_count_does_not_change_the_bits(restore_threads):
    # docs/spec.md §0.6: the same seed gives the same bits regardless of thread count -- with the
    # default preprocessing (normalize, jitter from random_state) and without it.
    rng = np.random.default_rng(31)
    n = 2500
    x = np.round(rng.normal(size=(n, 2)), 1)  # rounded: ties without jitter
    y = x + np.round(rng.normal(size=(n, 2)), 1)
    z = np.round(x[:, :1] + rng.normal(size=(n, 1)), 1)
    labels = rng.integers(0, 5, size=n)
    results = {}
    for threads in (1, 2, 3):
        rc.set_num_threads(threads)
        assert rc.get_num_threads() == threads
        for options in ({}, EXACT):
            results[threads, bool(options)] = all_estimates(3, [x, y, z], labels, options)
    for exact in (False, True):
        assert results[2, exact] == results[1, exact]
        assert results[3, exact] == results[1, exact]
