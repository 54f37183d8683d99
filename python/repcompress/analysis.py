"""Correlations across runs, as the paper analyses them (docs/spec.md §5.6).

Needs pandas and scipy (``pip install "repcompress[analysis]"``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np

from ._validation import _caller_stacklevel, as_array

METHODS = ("normalized-rank", "spearman", "kendall")


def _require():
    try:
        import pandas as pd
        from scipy import stats
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError('repcompress.analysis needs pandas and scipy: pip install "repcompress[analysis]"') from exc
    return pd, stats


def normalized_ranks(values: Any) -> np.ndarray:
    """Ranks (ties get their average rank) min-max scaled to [0, 1]; NaN stays NaN.

    A column with a single distinct (non-NaN) value carries no order: every entry becomes 0.5.
    """
    _, stats = _require()
    arr = as_array(values, "values")
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"values: expected a numeric array, got dtype {arr.dtype}")
    v = np.asarray(arr, dtype=np.float64)
    out = np.full(v.shape, np.nan)
    ok = ~np.isnan(v)
    if not ok.any():
        return out
    r = stats.rankdata(v[ok])
    lo, hi = r.min(), r.max()
    out[ok] = 0.5 if hi == lo else (r - lo) / (hi - lo)
    return out


def rank_correlations(
    table: Any,
    columns: Sequence[str],
    *,
    setup: str | None = None,
    method: str = "normalized-rank",
) -> Any:
    """Correlation, with p-value, between every pair of ``columns`` of a table of runs.

    ``method="normalized-rank"`` (the paper's): within each experimental setup (the groups of the
    ``setup`` column; the whole table if None) every quantity is replaced by its ranks (ties:
    average rank) min-max scaled to [0, 1]; the setups are concatenated and the Pearson
    correlation r is computed with its two-sided p-value. This lets runs from setups with
    different scales (β sweeps of CEB, λ sweeps of dropout networks) be pooled.
    ``"spearman"`` and ``"kendall"``: the plain rank correlations over all rows (``setup`` is
    ignored, so the whole table is one setup), from scipy.

    A column that takes a single value within a setup (a setup of one run, or a quantity a sweep
    does not move) carries no order there: its min-max scaling is 0/0, NaN in the paper's code.
    Its rows of that setup are left out of every pair with that column (pairwise: the other
    pairs keep them), counted in ``n_excluded_constant``, and a ``UserWarning`` names the column
    and the setups. Counting them at the mid-rank 0.5 instead would add rows that carry no
    evidence, inflating ``n`` and shrinking ``p``. Rows with NaN in either column of a pair are
    left out of that pair too. ``n`` is the number of rows used; a pair with fewer than 3 of
    them, or a column constant over them, gives r = p = NaN.

    Parameters
    ----------
    table : pandas DataFrame, or anything ``pandas.DataFrame(table)`` accepts (a dict of columns).
    columns : the numeric columns to correlate (at least 2).

    Returns
    -------
    pandas.DataFrame with columns ``x, y, r, p, n, n_excluded_constant, method``, one row per
    unordered pair, in the order of ``columns`` (docs/spec.md §5.6).
    """
    pd, stats = _require()
    if method not in METHODS:
        raise ValueError(f"method: unknown value {method!r}; expected one of {', '.join(map(repr, METHODS))}")
    try:
        df = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"table: cannot be read as a table of runs ({exc})") from None
    if isinstance(columns, str):
        raise TypeError(f"columns: expected a list of column names, got the string {columns!r}")
    columns = list(columns)
    if len(columns) < 2:
        raise ValueError(f"columns: need at least 2 columns to correlate, got {len(columns)}")
    if len(set(columns)) != len(columns):
        raise ValueError("columns: the same column is named twice")
    missing = [c for c in columns + ([setup] if setup is not None else []) if c not in df.columns]
    if missing:
        raise ValueError(f"columns: not in the table: {missing}; it has {list(df.columns)}")
    data = {}
    for c in columns:
        try:
            data[c] = pd.to_numeric(df[c], errors="raise").to_numpy(dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"columns: {c!r} is not numeric ({exc})") from None
    by_setup = method == "normalized-rank" and setup is not None
    groups = (
        [(name, np.asarray(idx)) for name, idx in df.groupby(setup, sort=False).indices.items()]
        if by_setup
        else [(None, np.arange(len(df)))]
    )
    # constant[c][i]: row i has a value of c, and that value is the only one c takes in row i's setup.
    constant = {c: np.zeros(len(df), dtype=bool) for c in columns}
    constant_setups: dict[str, list[Any]] = {}
    for c in columns:
        for name, g in groups:
            values = data[c][g]
            present = ~np.isnan(values)
            if present.any() and np.ptp(values[present]) == 0:
                constant[c][g[present]] = True
                constant_setups.setdefault(c, []).append(name)
    if method == "normalized-rank":
        data = {c: np.concatenate([normalized_ranks(data[c][g]) for _, g in groups]) for c in columns}
        order = np.concatenate([g for _, g in groups])
        constant = {c: constant[c][order] for c in columns}
    rows = []
    excluded_any: set[str] = set()
    for a, b in combinations(columns, 2):
        va, vb = data[a], data[b]
        present = ~(np.isnan(va) | np.isnan(vb))
        flat = present & (constant[a] | constant[b])
        ok = present & ~flat
        n = int(ok.sum())
        if flat.any():
            excluded_any.update(c for c in (a, b) if (present & constant[c]).any())
        r = p = float("nan")
        if n >= 3 and np.ptp(va[ok]) > 0 and np.ptp(vb[ok]) > 0:
            if method == "normalized-rank":
                res = stats.pearsonr(va[ok], vb[ok])
            elif method == "spearman":
                res = stats.spearmanr(va[ok], vb[ok])
            else:
                res = stats.kendalltau(va[ok], vb[ok])
            r, p = float(res[0]), float(res[1])
        rows.append({"x": a, "y": b, "r": r, "p": p, "n": n, "n_excluded_constant": int(flat.sum()), "method": method})
    if excluded_any:
        shown = "; ".join(
            f"{c!r} " + (f"in setup(s) {constant_setups[c]}" if by_setup else "over the whole table")
            for c in columns
            if c in excluded_any
        )
        warnings.warn(
            f"rank_correlations: a column with a single value carries no order: {shown}; those rows are left "
            "out of the pairs with that column (see n_excluded_constant)",
            UserWarning,
            stacklevel=_caller_stacklevel(),
        )
    return pd.DataFrame(rows, columns=["x", "y", "r", "p", "n", "n_excluded_constant", "method"])


__all__ = ["normalized_ranks", "rank_correlations"]
