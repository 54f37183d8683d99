"""The paper's correlation analysis: normalised ranks per setup, pooled Pearson (docs/spec.md §5.6)."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from repcompress.analysis import normalized_ranks, rank_correlations


def test_hand_computed_example():
    # Two setups on different scales. Within setup A the values of "mi" are 10, 30, 20 -> ranks
    # 1, 3, 2 -> scaled 0, 1, 0.5; "cdnv" 0.3, 0.1, 0.2 -> ranks 3, 1, 2 -> 1, 0, 0.5.
    # Setup B: mi 5, 6 -> 0, 1; cdnv 7, 9 -> 0, 1.
    table = pd.DataFrame(
        {
            "setup": ["A", "A", "A", "B", "B"],
            "mi": [10.0, 30.0, 20.0, 5.0, 6.0],
            "cdnv": [0.3, 0.1, 0.2, 7.0, 9.0],
        }
    )
    out = rank_correlations(table, ["mi", "cdnv"], setup="setup")
    # Pooled: mi = (0, 1, .5, 0, 1), cdnv = (1, 0, .5, 0, 1). Means 0.5 and 0.5; deviations
    # (-.5, .5, 0, -.5, .5) and (.5, -.5, 0, -.5, .5): covariance sum = -.25 - .25 + 0 + .25 + .25 = 0.
    assert out.loc[0, "r"] == pytest.approx(0.0, abs=1e-15)
    assert out.loc[0, "n"] == 5
    # Without setups the raw ranks of all 5 rows are used instead.
    pooled = rank_correlations(table, ["mi", "cdnv"])
    mi_r = np.array([3, 5, 4, 1, 2]) / 1.0
    cd_r = np.array([3, 1, 2, 4, 5]) / 1.0
    # By hand: deviations from the mean rank 3 are (0, 2, 1, -2, -1) and (0, -2, -1, 1, 2);
    # products sum to 0 - 4 - 1 - 2 - 2 = -9, squares to 10 each: r = -0.9.
    r = np.corrcoef(mi_r, cd_r)[0, 1]
    assert r == pytest.approx(-0.9)
    assert pooled.loc[0, "r"] == pytest.approx(-0.9)
    # p-value of Pearson r = -0.9 with n = 5: t = r sqrt(3)/sqrt(1 - r^2), two-sided.
    t = -0.9 * math.sqrt(3) / math.sqrt(1 - 0.81)
    assert pooled.loc[0, "p"] == pytest.approx(2 * stats.t.sf(abs(t), 3))


def test_ties_constants_and_nan():
    np.testing.assert_allclose(normalized_ranks([2.0, 2.0, 5.0, 1.0]), [0.5, 0.5, 1.0, 0.0])
    np.testing.assert_allclose(normalized_ranks([4.0, 4.0]), [0.5, 0.5])
    got = normalized_ranks([1.0, np.nan, 3.0])
    assert got[0] == 0 and np.isnan(got[1]) and got[2] == 1
    table = {"a": [1.0, 2.0, np.nan, 4.0, 5.0], "b": [2.0, 1.0, 3.0, 5.0, 4.0], "c": [1.0] * 5}
    with pytest.warns(UserWarning, match="'c' over the whole table"):
        out = rank_correlations(table, ["a", "b", "c"], method="spearman")
    assert list(zip(out.x, out.y, strict=True)) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert out.loc[0, "n"] == 4 and out.loc[0, "n_excluded_constant"] == 0
    assert out.loc[0, "r"] == pytest.approx(stats.spearmanr([1, 2, 4, 5], [2, 1, 5, 4])[0])
    assert np.isnan(out.loc[1, "r"]) and np.isnan(out.loc[1, "p"])
    # The constant column carries no order: its rows are left out (row 2 already was, for the NaN).
    assert list(out.n) == [4, 0, 0] and list(out.n_excluded_constant) == [0, 4, 5]


def _paper_normalized_ranks(df, setup, columns):
    """The paper's per-setup scaling, written independently: pandas average ranks, min-max scaled;
    a column with a single value in a setup gives 0/0 = NaN there."""
    out = {}
    for c in columns:
        ranks = df.groupby(setup, sort=False)[c].rank(method="average")
        lo = ranks.groupby(df[setup], sort=False).transform("min")
        hi = ranks.groupby(df[setup], sort=False).transform("max")
        out[c] = ((ranks - lo) / (hi - lo).where(hi > lo)).to_numpy()
    return out


def test_a_column_constant_within_a_setup_is_left_out_pairwise():
    # Setup A: 6 runs; "c" does not move in A. Setup B: 5 runs. Setup C: a single run (every
    # column constant there). "a" and "b" are correlated; "c" is noise.
    rng = np.random.default_rng(11)
    a = rng.standard_normal(12)
    table = pd.DataFrame(
        {
            "setup": ["A"] * 6 + ["B"] * 5 + ["C"],
            "a": a,
            "b": a + 0.5 * rng.standard_normal(12),
            "c": np.r_[np.full(6, 3.0), rng.standard_normal(6)],
        }
    )
    with pytest.warns(
        UserWarning, match=r"'a' in setup\(s\) \['C'\]; 'b' in setup\(s\) \['C'\]; 'c' in setup\(s\) \['A', 'C'\]"
    ):
        out = rank_correlations(table, ["a", "b", "c"], setup="setup")
    # Pairwise: (a, b) loses the single run of C only; (a, c) and (b, c) lose A and C.
    assert list(out.n) == [11, 5, 5] and list(out.n_excluded_constant) == [1, 7, 7]
    ranks = _paper_normalized_ranks(table, "setup", ["a", "b", "c"])
    for _, row in out.iterrows():
        x, y = ranks[row.x], ranks[row.y]
        keep = ~(np.isnan(x) | np.isnan(y))
        assert int(keep.sum()) == row.n
        ref = stats.pearsonr(x[keep], y[keep])
        assert row.r == pytest.approx(ref[0], rel=1e-12) and row.p == pytest.approx(ref[1], rel=1e-12)
    # Counting the constant rows at the mid-rank 0.5 (the former behaviour) gives another n and p.
    mid = {c: np.where(np.isnan(v), 0.5, v) for c, v in ranks.items()}
    inflated = stats.pearsonr(mid["a"], mid["b"])
    assert inflated[1] != pytest.approx(out.loc[0, "p"])


def test_no_warning_and_nothing_excluded_without_constant_columns():
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"s": np.repeat([0, 1], 8), "a": rng.standard_normal(16), "b": rng.standard_normal(16)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = rank_correlations(df, ["a", "b"], setup="s")
    assert out.loc[0, "n"] == 16 and out.loc[0, "n_excluded_constant"] == 0


@settings(max_examples=60)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),
            st.one_of(st.integers(0, 3).map(float), st.just(math.nan)),
            st.one_of(st.integers(0, 3).map(float), st.just(math.nan)),
            st.integers(0, 2).map(float),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_normalized_rank_equals_the_paper_computation(rows):
    # Few distinct values: ties, constant columns within setups, single-run setups and NaN are common.
    df = pd.DataFrame(rows, columns=["s", "a", "b", "c"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = rank_correlations(df, ["a", "b", "c"], setup="s")
    ranks = _paper_normalized_ranks(df, "s", ["a", "b", "c"])
    for _, row in out.iterrows():
        x, y = ranks[row.x], ranks[row.y]
        keep = ~(np.isnan(x) | np.isnan(y))
        present = ~(df[row.x].isna() | df[row.y].isna()).to_numpy()
        assert row.n == int(keep.sum()) and row.n_excluded_constant == int(present.sum() - keep.sum())
        if keep.sum() >= 3 and np.ptp(x[keep]) > 0 and np.ptp(y[keep]) > 0:
            ref = stats.pearsonr(x[keep], y[keep])
            assert row.r == pytest.approx(ref[0], rel=1e-9, abs=1e-12)
            assert row.p == pytest.approx(ref[1], rel=1e-9, abs=1e-12)
        else:
            assert math.isnan(row.r) and math.isnan(row.p)


def test_spearman_and_kendall_agree_with_scipy():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.standard_normal((40, 3)), columns=["u", "v", "w"])
    df["v"] += df["u"]
    for method, fn in (("spearman", stats.spearmanr), ("kendall", stats.kendalltau)):
        out = rank_correlations(df, ["u", "v", "w"], method=method)
        res = fn(df["u"], df["v"])
        assert out.loc[0, "r"] == pytest.approx(res[0]) and out.loc[0, "p"] == pytest.approx(res[1])


def test_normalized_rank_is_invariant_to_monotone_maps_within_setups():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"s": np.repeat([0, 1, 2], 10), "a": rng.standard_normal(30), "b": rng.standard_normal(30)})
    base = rank_correlations(df, ["a", "b"], setup="s")
    df2 = df.copy()
    df2.loc[df.s == 1, "a"] = np.exp(df2.loc[df.s == 1, "a"]) * 100  # another scale in one setup
    assert rank_correlations(df2, ["a", "b"], setup="s").loc[0, "r"] == pytest.approx(base.loc[0, "r"])


def test_bad_input():
    df = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    with pytest.raises(ValueError, match="method"):
        rank_correlations(df, ["a", "a2"], method="pearson")
    with pytest.raises(ValueError, match="not in the table"):
        rank_correlations(df, ["a", "zz"])
    with pytest.raises(ValueError, match="at least 2"):
        rank_correlations(df, ["a"])
    with pytest.raises(TypeError, match="not numeric"):
        rank_correlations(df, ["a", "b"])
