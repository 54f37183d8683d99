"""Bad input raises ValueError/TypeError naming the argument; every accepted form gives the same
result as the canonical C-contiguous float64 array.
"""

import math
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import repcompress as rc

N = 20
RNG = np.random.default_rng(0)
VALID = {
    "x": RNG.normal(size=(N, 2)),
    "y": RNG.normal(size=(N, 2)),
    "z": RNG.normal(size=(N, 1)),
    "labels": np.tile([3, 7], N // 2),
}

# name -> (function, its positional array arguments, the string options it takes)
FUNCTIONS = {
    "mutual_info": (rc.mutual_info, ("x", "y"), ("estimator", "neighbors")),
    "conditional_mutual_info": (rc.conditional_mutual_info, ("x", "y", "z"), ("neighbors",)),
    "entropy": (rc.entropy, ("x",), ("metric", "neighbors")),
    "mutual_info_labels": (rc.mutual_info_labels, ("x", "labels"), ("neighbors",)),
    "mutual_info_given_labels": (
        rc.mutual_info_given_labels,
        ("x", "y", "labels"),
        ("estimator", "neighbors"),
    ),
}
ALL = sorted(FUNCTIONS)


def call(name, replace=None, **kwargs):
    """Calls function `name` on the valid arrays, with some of them replaced."""
    function, arg_names, _ = FUNCTIONS[name]
    arrays = dict(VALID, **(replace or {}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return function(*(arrays[a] for a in arg_names), **kwargs)


def names(pattern):
    """Regex matching the argument name as a word (e.g. "x" but not the x in "max")."""
    return rf"\b{re.escape(pattern)}\b"


def cases(kind):
    """(function, argument) pairs for every array argument (kind="arrays": data arrays only)."""
    out = []
    for name in ALL:
        for arg in FUNCTIONS[name][1]:
            if kind == "arrays" and arg == "labels":
                continue
            out.append((name, arg))
    return out


def case_id(case):
    return f"{case[0]}-{case[1]}"


ARRAY_CASES = cases("arrays")
EVERY_ARG_CASES = cases("all")
LABEL_FUNCTIONS = [n for n in ALL if "labels" in FUNCTIONS[n][1]]


# ------------------------------------------------------------------------------ ValueError


@pytest.mark.parametrize("bad", (np.nan, np.inf, -np.inf), ids=("nan", "inf", "-inf"))
@pytest.mark.parametrize("case", ARRAY_CASES, ids=case_id)
def test_non_finite_values_name_argument_and_row(case, bad):
    name, arg = case
    a = VALID[arg].copy()
    a[7, -1] = bad
    a[12, 0] = bad
    with pytest.raises(ValueError, match=names(arg)) as info:
        call(name, {arg: a})
    assert re.search(r"\brow 7\b", str(info.value)), str(info.value)


@pytest.mark.parametrize("bad", (np.nan, np.inf), ids=("nan", "inf"))
@pytest.mark.parametrize("name", LABEL_FUNCTIONS)
def test_non_finite_labels(name, bad):
    labels = VALID["labels"].astype(float)
    labels[4] = bad
    with pytest.raises(ValueError, match=names("labels")):
        call(name, {"labels": labels})


@pytest.mark.parametrize("case", [c for c in EVERY_ARG_CASES if c[1] != "x"], ids=case_id)
def test_length_mismatch(case):
    name, arg = case
    with pytest.raises(ValueError, match=names(arg)):
        call(name, {arg: VALID[arg][:-1]})


@pytest.mark.parametrize("name", [n for n in ALL if len(FUNCTIONS[n][1]) > 1])
def test_x_shorter_than_the_others(name):
    with pytest.raises(ValueError, match=r"\bx\b|\by\b|\bz\b|\blabels\b"):
        call(name, {"x": VALID["x"][:-1]})


@pytest.mark.parametrize("name", ALL)
def test_no_samples(name):
    empty = {a: VALID[a][:0] for a in FUNCTIONS[name][1]}
    with pytest.raises(ValueError, match=names("x")):
        call(name, empty)


@pytest.mark.parametrize("case", ARRAY_CASES, ids=case_id)
def test_no_columns(case):
    name, arg = case
    with pytest.raises(ValueError, match=names(arg)):
        call(name, {arg: np.empty((N, 0))})


@pytest.mark.parametrize(
    "shape_maker",
    (lambda a: np.float64(1.5), lambda a: np.array(1.5), lambda a: a[:, :, None]),
    ids=("numpy-scalar", "0-d", "3-d"),
)
@pytest.mark.parametrize("case", ARRAY_CASES, ids=case_id)
def test_wrong_ndim(case, shape_maker):
    name, arg = case
    with pytest.raises(ValueError, match=names(arg)):
        call(name, {arg: shape_maker(VALID[arg])})


@pytest.mark.parametrize(
    "shape_maker",
    (lambda ids: np.array(3), lambda ids: ids[:, None], lambda ids: np.stack([ids, ids], axis=1)),
    ids=("0-d", "(N,1)", "(N,2)"),
)
@pytest.mark.parametrize("name", LABEL_FUNCTIONS)
def test_labels_not_1d(name, shape_maker):
    with pytest.raises(ValueError, match=names("labels")):
        call(name, {"labels": shape_maker(VALID["labels"])})


@pytest.mark.parametrize("k", (0, -1, N, N + 5), ids=("k0", "k-1", "kN", "kN+5"))
@pytest.mark.parametrize("name", ALL)
def test_k_out_of_range(name, k):
    with pytest.raises(ValueError, match=names("k")):
        call(name, k=k)


@pytest.mark.parametrize("name", ALL)
def test_k_just_below_n_is_accepted(name):
    if name == "mutual_info_given_labels":
        k = N // 2 - 1  # each of the two classes has N/2 members and needs more than k
    else:
        k = N - 1
    assert isinstance(call(name, k=k), float)


@pytest.mark.parametrize("name,option", [(n, o) for n in ALL for o in FUNCTIONS[n][2]], ids=lambda v: v)
def test_unknown_option_string(name, option):
    for bad in ("no-such-option", "KSG1" if option == "estimator" else ""):
        with pytest.raises(ValueError, match=names(option)):
            call(name, **{option: bad})


@pytest.mark.parametrize("name", LABEL_FUNCTIONS)
def test_labels_not_integer_like(name):
    labels = VALID["labels"].astype(float)
    labels[3] = 0.5
    with pytest.raises(ValueError, match=names("labels")):
        call(name, {"labels": labels})


@pytest.mark.parametrize("name", ALL)
def test_fewer_than_two_samples(name):
    one = {a: VALID[a][:1] for a in FUNCTIONS[name][1]}
    # With one sample, every k >= 1 is also >= N; either argument may be blamed.
    with pytest.raises(ValueError, match=r"\bx\b|\bk\b|sample"):
        call(name, one, k=1)


@pytest.mark.parametrize("name", LABEL_FUNCTIONS)
def test_no_class_kept(name):
    # mutual_info_given_labels: every class has <= k members -> error naming labels (or k).
    # mutual_info_labels: only singleton classes -> nothing left after dropping them.
    if name == "mutual_info_given_labels":
        labels, k = np.arange(N) % 10, 3  # ten classes of two
    else:
        labels, k = np.arange(N), 3  # all singletons
    with pytest.raises(ValueError, match=r"\blabels\b|\bk\b|\bclass"):
        call(name, {"labels": labels}, k=k)


# ------------------------------------------------------------------------------- TypeError


NON_NUMERIC = {
    "strings": lambda a: a.astype(str),
    "objects": lambda a: a.astype(object),
    "complex": lambda a: a.astype(complex),
}


@pytest.mark.parametrize("kind", sorted(NON_NUMERIC))
@pytest.mark.parametrize("case", EVERY_ARG_CASES, ids=case_id)
def test_non_numeric_dtype(case, kind):
    name, arg = case
    with pytest.raises(TypeError, match=names(arg)):
        call(name, {arg: NON_NUMERIC[kind](VALID[arg])})


@pytest.mark.parametrize("k", (2.5, 3.0, "3", None), ids=("2.5", "3.0", "str", "None"))
@pytest.mark.parametrize("name", ALL)
def test_k_not_an_int(name, k):
    with pytest.raises(TypeError, match=names("k")):
        call(name, k=k)


@pytest.mark.parametrize("random_state", ("0", 1.5, [0]), ids=("str", "float", "list"))
@pytest.mark.parametrize("name", ALL)
def test_random_state_of_wrong_type(name, random_state):
    with pytest.raises(TypeError, match=names("random_state")):
        call(name, random_state=random_state)


# --------------------------------------------------------------------- accepted input forms


def canonical(name, **kwargs):
    return call(name, **kwargs)


@pytest.mark.parametrize("name", ALL)
def test_lists_are_accepted(name):
    as_lists = {a: VALID[a].tolist() for a in FUNCTIONS[name][1]}
    assert call(name, as_lists) == canonical(name)


@pytest.mark.parametrize("name", ALL)
def test_one_dimensional_equals_column(name):
    columns = {a: VALID[a][:, :1] for a in FUNCTIONS[name][1] if a != "labels"}
    flat = {a: v[:, 0] for a, v in columns.items()}
    flat_lists = {a: v.tolist() for a, v in flat.items()}
    expected = call(name, columns)
    assert call(name, flat) == expected
    assert call(name, flat_lists) == expected


@pytest.mark.parametrize("dtype", (np.int64, np.int32, np.uint8, np.bool_, np.float16))
@pytest.mark.parametrize("name", ALL)
def test_other_numeric_dtypes_equal_float64(name, dtype):
    # Integer-valued data (many ties): the default jitter breaks them; conversion to float64
    # happens once, so the result equals passing the float64 copy.
    def convert(v):
        return (v > 0) if dtype is np.bool_ else (np.abs(v) * 3).astype(dtype)

    ints = {a: convert(VALID[a]) for a in FUNCTIONS[name][1] if a != "labels"}
    as_float = {a: v.astype(np.float64) for a, v in ints.items()}
    assert call(name, ints) == call(name, as_float)


@pytest.mark.parametrize("name", ALL)
def test_float32_is_accepted(name):
    float32 = {a: VALID[a].astype(np.float32) for a in FUNCTIONS[name][1] if a != "labels"}
    as_float64 = {a: v.astype(np.float64) for a, v in float32.items()}
    # With the default preprocessing the computation runs in float64.
    got = call(name, float32)
    assert isinstance(got, float)
    assert got == pytest.approx(call(name, as_float64), rel=1e-12, abs=1e-12)
    exact = {"normalize": False, "jitter": 0}
    assert isinstance(call(name, float32, **exact), float)


def layouts(a):
    """The same values as `a` in other memory layouts."""
    fortran = np.asfortranarray(a)
    padded = np.zeros((a.shape[0] * 2, a.shape[1] * 3) if a.ndim == 2 else (a.shape[0] * 2,))
    if a.ndim == 2:
        padded = padded.astype(a.dtype)
        padded[::2, 1::3] = a
        strided = padded[::2, 1::3]
    else:
        padded = padded.astype(a.dtype)
        padded[::2] = a
        strided = padded[::2]
    negative_stride = np.ascontiguousarray(a[::-1])[::-1]
    return {"fortran": fortran, "strided": strided, "negative_stride": negative_stride}


@pytest.mark.parametrize("layout", ("fortran", "strided", "negative_stride"))
@pytest.mark.parametrize("name", ALL)
def test_memory_layout_does_not_matter(name, layout):
    for dtype in (np.float64, np.float32):
        contiguous = {a: (VALID[a].astype(dtype) if a != "labels" else VALID[a]) for a in FUNCTIONS[name][1]}
        other = {a: layouts(v)[layout] for a, v in contiguous.items()}
        for a, v in other.items():
            assert np.array_equal(v, contiguous[a])
            if (v.ndim == 2 and v.shape[1] > 1) or layout != "fortran":
                assert not v.flags.c_contiguous
        for kwargs in ({}, {"normalize": False, "jitter": 0}):
            expected = call(name, contiguous, **kwargs)
            assert call(name, other, **kwargs) == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("name", LABEL_FUNCTIONS)
def test_label_values_do_not_matter(name):
    # Re-indexed internally: any integer ids, float ids that are integers, or booleans.
    codes = VALID["labels"] == 7
    expected = call(name, {"labels": codes.astype(np.int64)})
    for labels in (
        np.where(codes, -5, 1000),
        np.where(codes, 2.0, -3.0),
        codes,
        np.where(codes, 1, 0).astype(np.uint8),
        np.where(codes, 1, 0).tolist(),
    ):
        assert call(name, {"labels": labels}) == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_random_state_int_and_generator(name):
    with_int = call(name, random_state=5)
    assert call(name, random_state=5) == with_int  # deterministic
    assert call(name, random_state=np.random.default_rng(5)) == with_int
    assert call(name, random_state=np.int64(5)) == with_int


# ------------------------------------------------------------------ no panics, no torch


@st.composite
def garbage_call(draw):
    name = draw(st.sampled_from(ALL))
    _, arg_names, _ = FUNCTIONS[name]
    n = draw(st.integers(0, 8))
    arrays = {}
    for a in arg_names:
        rows = n if draw(st.integers(0, 5)) else draw(st.integers(0, 8))
        if a == "labels":
            arrays[a] = np.asarray(draw(st.lists(st.integers(-3, 3), min_size=rows, max_size=rows)))
            continue
        shape = draw(st.sampled_from([(rows,), (rows, 1), (rows, 2), (rows, 0), (rows, 2, 1), ()]))
        values = draw(
            st.lists(
                st.one_of(
                    st.floats(-1e6, 1e6),
                    st.sampled_from([math.nan, math.inf, -math.inf]),
                    st.integers(-5, 5),
                ),
                min_size=int(np.prod(shape)),
                max_size=int(np.prod(shape)),
            )
        )
        arrays[a] = np.asarray(values, dtype=np.float64).reshape(shape)
    kwargs = {"k": draw(st.one_of(st.integers(-2, 10), st.just(2.5)))}
    if draw(st.booleans()):
        kwargs.update(normalize=False, jitter=0)
    return name, arrays, kwargs


@given(garbage_call())
def test_garbage_never_panics(case):
    # Either a float or a ValueError/TypeError: never a Rust panic (pyo3's PanicException
    # derives from BaseException, so it would escape this `except`) nor any other exception.
    name, arrays, kwargs = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = call(name, arrays, **kwargs)
        except (ValueError, TypeError):
            return
    assert isinstance(result, float)
    assert not math.isnan(result)


def test_import_does_not_import_torch():
    # Make any attempt to import torch fail loudly, then import the package.
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ImportError('torch import attempted')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import repcompress\n"
        "assert 'torch' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
