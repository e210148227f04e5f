"""Integer codes of tuples (the blocking keys' and the comparison vectors' shared packing),
and the order of rows by key columns."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: Codes stay below this bound, inside int64.
_LIMIT = 2**62


def pack(columns: Iterable[tuple[np.ndarray, int]], n: int) -> np.ndarray:
    """One non-negative int64 per row of ``n``, equal exactly when the rows' tuples are equal.

    Each column is an int64 array of values in ``[0, base)`` with its ``base``. The columns
    are packed in mixed radix; where the next column would take the code past int64, the
    code so far is renumbered (factorized) first.
    """
    code = np.zeros(n, dtype="int64")
    span = 1
    for values, base in columns:
        base = max(base, 1)
        if span > _LIMIT // base:
            code = pd.factorize(code)[0].astype("int64")
            span = int(code.max()) + 1 if n else 1
        code = code * base + values
        span *= base
    return code


def run_starts(values: np.ndarray) -> np.ndarray:
    """Positions where a run of equal consecutive ``values`` starts (int64; empty for none)."""
    if not len(values):
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(np.concatenate([[True], values[1:] != values[:-1]]))


def sort_order(frame: pd.DataFrame, key: list[str]) -> np.ndarray | None:
    """Positions of ``frame``'s rows sorted by the ``key`` columns, ascending and stable
    (``None`` when they are in that order already).

    Text sorts by code point, as SQLite's default BINARY collation sorts UTF-8; numbers
    numerically. Sorted by Arrow: no Python object per value.
    """
    if len(frame) < 2 or not key:
        return None
    if len(key) == 1 and frame[key[0]].is_monotonic_increasing:
        return None
    table = pa.table({k: pa.Array.from_pandas(frame[k]) for k in key})
    order = pc.sort_indices(table, sort_keys=[(k, "ascending") for k in key]).to_numpy()
    if np.array_equal(order, np.arange(len(order))):
        return None
    return np.asarray(order, dtype=np.int64)


def key_order(frame: pd.DataFrame, key: list[str]) -> np.ndarray:
    """Positions of ``frame``'s rows sorted by the ``key`` columns, as :func:`sort_order`
    sorts them, also when they are in that order already."""
    order = sort_order(frame, key)
    return np.arange(len(frame), dtype=np.int64) if order is None else order


def ranks(order: np.ndarray) -> np.ndarray:
    """Each row's position in ``order`` (the inverse permutation)."""
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    return rank
