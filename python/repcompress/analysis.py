"""Correlations across runs, as the paper analyses them (docs/spec.md §5.6).

Needs pandas and scipy (``pip install "repcompress[analysis]"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np

from ._validation import as_array

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
    ignored), from scipy.

    Rows with NaN in either column of a pair are left out of that pair (``n`` says how many
    rows were used). A pair with fewer than 3 rows, or a constant column, gives r = p = NaN.

    Parameters
    ----------
    table : pandas DataFrame, or anything ``pandas.DataFrame(table)`` accepts (a dict of columns).
    columns : the numeric columns to correlate (at least 2).

    Returns
    -------
    pandas.DataFrame with columns ``x, y, r, p, n, method``, one row per unordered pair, in the
    order of ``columns``.
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
    if method == "normalized-rank":
        groups = (
            [np.arange(len(df))]
            if setup is None
            else [np.asarray(idx) for idx in df.groupby(setup, sort=False).indices.values()]
        )
        data = {c: np.concatenate([normalized_ranks(data[c][g]) for g in groups]) for c in columns}
    rows = []
    for a, b in combinations(columns, 2):
        va, vb = data[a], data[b]
        ok = ~(np.isnan(va) | np.isnan(vb))
        n = int(ok.sum())
        r = p = float("nan")
        if n >= 3 and np.ptp(va[ok]) > 0 and np.ptp(vb[ok]) > 0:
            if method == "normalized-rank":
                res = stats.pearsonr(va[ok], vb[ok])
            elif method == "spearman":
                res = stats.spearmanr(va[ok], vb[ok])
            else:
                res = stats.kendalltau(va[ok], vb[ok])
            r, p = float(res[0]), float(res[1])
        rows.append({"x": a, "y": b, "r": r, "p": p, "n": n, "method": method})
    return pd.DataFrame(rows, columns=["x", "y", "r", "p", "n", "method"])


__all__ = ["normalized_ranks", "rank_correlations"]
