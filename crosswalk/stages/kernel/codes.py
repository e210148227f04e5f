"""Integer codes of tuples (the blocking keys' and the comparison vectors' shared packing),
and the order of rows by key columns."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from matchers._text import as_string, unique_text

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
    if _in_key_order(table, key):
        return None
    order = _leading_groups_order(table, key)
    if order is None:
        order = pc.sort_indices(table, sort_keys=[(k, "ascending") for k in key]).to_numpy()
    if in_order(order):
        return None
    return np.asarray(order, dtype=np.int64)


def in_order(order: np.ndarray) -> bool:
    """Whether the positions ``order`` leave the rows where they are (the identity)."""
    return bool(np.array_equal(order, np.arange(len(order))))


def _in_key_order(table: pa.Table, key: list[str]) -> bool:
    """Whether the rows of ``table`` are in ``key`` order already, told in one pass
    (each row against the next) without sorting; False where a key has missing values."""
    if any(table.column(k).null_count for k in key):
        return False
    n = table.num_rows
    ahead = pa.array(np.zeros(n - 1, dtype=bool))  # row i < row i + 1 on the keys so far
    tied = pa.array(np.ones(n - 1, dtype=bool))  # row i == row i + 1 on the keys so far
    for k in key:
        col = table.column(k)
        a, b = col.slice(0, n - 1), col.slice(1)
        ahead = pc.or_(ahead, pc.and_(tied, pc.less(a, b)))
        tied = pc.and_(tied, pc.equal(a, b))
    # In order: every row is before or tied with the next (a stable sort keeps ties).
    return bool(pc.all(pc.or_(ahead, tied)).as_py())


#: A leading text key with at most this many distinct values is sorted by groups.
_FEW_GROUPS = 64


def _leading_groups_order(table: pa.Table, key: list[str]) -> np.ndarray | None:
    """The order of ``table`` by ``key`` when the first key is text with a few distinct
    values and no missing ones (a source name): each group's rows sorted by the other keys,
    the groups in order (``None`` otherwise). Arrow sorts one key several times faster than
    it compares rows key by key."""
    first = table.column(key[0])
    text = pa.types.is_string(first.type) or pa.types.is_large_string(first.type)
    if len(key) < 2 or not text or first.null_count:
        return None
    if pc.count_distinct(first.slice(0, 10_000)).as_py() > _FEW_GROUPS:  # a cheap first look
        return None
    encoded = pc.dictionary_encode(first).combine_chunks()
    if len(encoded.dictionary) > _FEW_GROUPS:
        return None
    rest = table.select(key[1:])
    if len(encoded.dictionary) == 1:
        return pc.sort_indices(rest, sort_keys=[(k, "ascending") for k in key[1:]]).to_numpy()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    parts = []
    for group in pc.sort_indices(encoded.dictionary).to_numpy():
        at = np.flatnonzero(codes == group)
        within = pc.sort_indices(rest.take(at), sort_keys=[(k, "ascending") for k in key[1:]])
        parts.append(at[within.to_numpy()])
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


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


def sorted_codes(values: pd.Series) -> tuple[np.ndarray, pa.Array]:
    """Codes of text values numbered in sorted (code point) order (``-1`` where missing),
    and the sorted distinct values: ``pd.factorize(values, sort=True)``, sorted by Arrow
    (only the distinct values are sorted) and without a Python string per value."""
    return renumbered_in_order(*unique_text(as_string(values)))


def renumbered_in_order(codes: np.ndarray, distinct: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """``codes`` into the values ``distinct`` renumbered so that they follow the values'
    sorted (code point) order (``-1`` stays ``-1``), and the values in that order."""
    order = pc.sort_indices(distinct)
    code_of = np.append(ranks(order.to_numpy()), -1)  # -1 (missing) stays -1
    return code_of[codes], distinct.take(order)


def dense_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct integer ``labels``, ascending, and each row's position among them:
    ``np.unique(labels, return_inverse=True)``, by counting where the labels are small
    non-negative integers (as clustering numbers its clusters)."""
    if not len(labels):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high > 4 * len(labels) + 1024:
        found, inverse = np.unique(labels, return_inverse=True)
        return found.astype(np.int64), inverse.reshape(-1).astype(np.int64)
    found = np.flatnonzero(np.bincount(labels, minlength=high + 1))
    position = np.full(high + 1, -1, dtype=np.int64)
    position[found] = np.arange(len(found), dtype=np.int64)
    return found.astype(np.int64), position[labels]
