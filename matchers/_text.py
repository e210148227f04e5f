"""Shared machinery for the normalizers: unique-value evaluation and Arrow text kernels.

Every public normalizer in this package follows the same pattern:

1. factorize the input Series (missing values get code -1),
2. run a vectorized transformation on the *unique* values only, as a ``pyarrow``
   string array (Arrow compute kernels, RE2 regular expressions),
3. broadcast the result back with one ``take``.

Results are ``pd.StringDtype("pyarrow")`` Series that use ``pd.NA`` for missing values;
an empty result is always turned into ``pd.NA`` so that callers never see ``""``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: The dtype of every text result of this package (missing values are ``pd.NA``).
STRING_DTYPE = pd.StringDtype("pyarrow")


def as_string(s: pd.Series) -> pd.Series:
    """``s`` as Arrow-backed text (:data:`STRING_DTYPE`), cast only when it is not already."""
    return s if s.dtype == STRING_DTYPE else s.astype(STRING_DTYPE)


#: Batches of at most this many values are *small* (one API query): regular-expression
#: prefilters, which spare work on large batches, are skipped there, because compiling
#: a prefilter's pattern costs as much as the rewrite it would spare. Results are the same.
SMALL_BATCH = 32

# Typographic characters common in cp1252 / word-processor text, folded to ASCII
# before Unicode decomposition (NFKD does not decompose them).
_TYPOGRAPHIC = (
    ("[\u2018\u2019\u201a\u201b\u02bc\u0060\u00b4]", "'"),
    ("[\u201c\u201d\u201e\u201f]", '"'),
    ("[\u2010\u2011\u2012\u2013\u2014\u2015\u2212]", "-"),
    ("[\u00a0\u2000-\u200b\u202f\u205f\u3000\t\r\n\v\f]", " "),
    ("\u00df", "SS"),
    ("[\u00c6\u00e6]", "AE"),
    ("[\u0152\u0153]", "OE"),
    ("[\u00d8\u00f8]", "O"),
    ("[\u0141\u0142]", "L"),
    ("[\u0110\u0111]", "D"),
)


def _scalar_to_text(value: object) -> str | None:
    """Text form of one raw cell; ``None`` when the cell is missing.

    Integral floats lose their ``.0`` (``94501.0`` → ``"94501"``), so numeric columns
    read from spreadsheets normalize like their text counterparts.
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return None
        if math.isfinite(value) and float(value).is_integer():
            return str(int(value))
        return repr(float(value))
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def unique_text(s: pd.Series) -> tuple[np.ndarray, pa.Array]:
    """Factorize ``s`` into (codes, unique values as an Arrow ``large_string`` array).

    ``codes`` has one entry per row of ``s`` (``-1`` for missing values) and indexes
    into the returned array.
    """
    if s.dtype == STRING_DTYPE:
        # Hashed by Arrow, with no Python string per value.
        arr = pa.array(s.array)
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        encoded = pc.dictionary_encode(arr.cast(pa.large_string()))
        codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
        return np.asarray(codes, dtype=np.int64), encoded.dictionary
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    obj = np.asarray(uniques, dtype=object)
    try:
        values = pa.array(obj, type=pa.large_string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        values = pa.array([_scalar_to_text(v) for v in obj], type=pa.large_string())
    return np.asarray(codes, dtype=np.int64), values


def broadcast(codes: np.ndarray, values: pa.Array, index: pd.Index, name: object) -> pd.Series:
    """Take ``values`` at ``codes`` (``-1`` → NA) and wrap as a string Series on ``index``."""
    values = empty_to_null(values.cast(pa.large_string()))
    idx = pa.array(codes, mask=codes < 0, type=pa.int64())
    taken = pc.take(values, idx)
    arr = pd.arrays.ArrowStringArray(taken)
    return pd.Series(arr, index=index, name=name, dtype=STRING_DTYPE)


def apply_unique(s: pd.Series, fn: Callable[[pa.Array], pa.Array]) -> pd.Series:
    """Evaluate the Arrow transformation ``fn`` once per unique value of ``s``."""
    codes, uniques = unique_text(s)
    if len(uniques) == 0:  # nothing but missing values
        return pd.Series(pd.NA, index=s.index, name=s.name, dtype=STRING_DTYPE)
    return broadcast(codes, fn(uniques), s.index, s.name)


def empty_to_null(arr: pa.Array) -> pa.Array:
    """Replace empty strings by nulls."""
    if len(arr) == 0:
        return arr
    is_empty = pc.equal(arr, "")
    if not _mask_any(is_empty):
        return arr
    return pc.if_else(is_empty, pa.scalar(None, arr.type), arr)


def _mask_any(mask: pa.Array) -> bool:
    """Whether any element of the boolean ``mask`` is true (nulls are not)."""
    if isinstance(mask, pa.BooleanArray):
        return mask.true_count > 0
    return bool(pc.any(mask).as_py())


def fill_null(arr: pa.Array, value: object) -> pa.Array:
    """``pc.fill_null``, skipped when there is no null to fill."""
    return pc.fill_null(arr, value) if arr.null_count else arr


def _no_nulls(mask: pa.Array) -> pa.Array:
    """``mask`` with nulls read as false."""
    return fill_null(mask, False)


def where(arr: pa.Array, mask: pa.Array, fn: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """Apply ``fn`` only to the elements selected by the boolean ``mask``."""
    mask = _no_nulls(mask)
    if not _mask_any(mask):
        return arr
    selected = pc.filter(arr, mask)
    return pc.replace_with_mask(arr, mask, fn(selected).cast(arr.type))


def contains(arr: pa.Array, literals: str | tuple[str, ...]) -> pa.Array:
    """Boolean mask: does each value contain any of the literal substrings."""
    if isinstance(literals, str):
        literals = (literals,)
    mask = pc.match_substring(arr, pattern=literals[0])
    for lit in literals[1:]:
        mask = pc.or_(mask, pc.match_substring(arr, pattern=lit))
    return _no_nulls(mask)


def sub(
    arr: pa.Array,
    pattern: str,
    replacement: str,
    *,
    only_if: str | tuple[str, ...] | None = None,
    dense: bool = False,
) -> pa.Array:
    """RE2 regular-expression replacement of every match (``\\1`` back-references).

    Values are first tested (literal ``only_if`` substrings, else the pattern itself)
    and only matching values are rewritten, which is much cheaper when few values
    match.  ``dense=True`` skips the test for patterns that match most values.
    The prefilter never changes the result.
    """
    if dense or (only_if is None and len(arr) <= SMALL_BATCH):
        return pc.replace_substring_regex(arr, pattern=pattern, replacement=replacement)
    mask = (
        contains(arr, only_if)
        if only_if is not None
        else pc.match_substring_regex(arr, pattern=pattern)
    )
    return where(
        arr,
        mask,
        lambda a: pc.replace_substring_regex(a, pattern=pattern, replacement=replacement),
    )


def squash(arr: pa.Array) -> pa.Array:
    """Collapse runs of spaces to one and trim both ends."""
    arr = sub(arr, " {2,}", " ", only_if="  ")
    return pc.ascii_trim(arr, characters=" ")


def ascii_upper(arr: pa.Array) -> pa.Array:
    """Fold to upper-case ASCII: typographic quotes/dashes, NFKD accent stripping.

    Characters with no ASCII decomposition are dropped; control characters and
    exotic whitespace become spaces.
    """
    unusual = fill_null(pc.match_substring_regex(arr, pattern=r"[^\x20-\x7e]"), False)
    arr = where(arr, unusual, _fold_unusual)
    return pc.ascii_upper(arr)


def _fold_unusual(arr: pa.Array) -> pa.Array:
    for pattern, replacement in _TYPOGRAPHIC:
        arr = sub(arr, pattern, replacement)
    arr = pc.utf8_normalize(arr, form="NFKD")
    arr = sub(arr, r"[\x00-\x1f\x7f]", " ")
    return sub(arr, r"[^\x00-\x7f]+", "")


def token_pattern(words: Iterable[str]) -> str:
    """RE2 pattern matching any of ``words`` as a whole space-separated token."""
    return r"(?:^| )" + alternation(list(words)) + r"(?: |$)"


@dataclass(frozen=True)
class _TokenTable:
    """What :func:`map_tokens` derives from a mapping, built once per mapping."""

    items: tuple[tuple[str, str], ...]
    pattern: str  # token_pattern of the keys
    keys: pa.Array
    values: pa.Array
    #: Every key is one non-empty token, so a value holds a key exactly when one of its
    #: space-separated tokens equals it.
    single_tokens: bool


_TOKEN_TABLES: dict[int, tuple[Mapping[str, str], _TokenTable]] = {}


def _token_table(mapping: Mapping[str, str]) -> _TokenTable:
    items = tuple(mapping.items())
    hit = _TOKEN_TABLES.get(id(mapping))
    if hit is not None and hit[0] is mapping and hit[1].items == items:
        return hit[1]
    if len(_TOKEN_TABLES) >= 64:
        _TOKEN_TABLES.clear()
    table = _TokenTable(
        items,
        token_pattern(mapping),
        pa.array([k for k, _ in items], type=pa.large_string()),
        pa.array([v for _, v in items], type=pa.large_string()),
        all(k and " " not in k for k, _ in items),
    )
    _TOKEN_TABLES[id(mapping)] = (mapping, table)
    return table


def map_tokens(arr: pa.Array, mapping: Mapping[str, str]) -> pa.Array:
    """Replace whole space-separated tokens by ``mapping`` (vectorized, no Python loop).

    Tokens mapped to ``""`` disappear.  The input must already be space-normalized
    (single spaces, trimmed); the output is too.  Only values containing a key are
    rebuilt: found with the keys' regular expression; a small batch
    (:data:`SMALL_BATCH`) of single-word keys is looked up token by token whole, which
    leaves the values without a key as they are.
    """
    if len(arr) == 0 or not mapping:
        return arr
    table = _token_table(mapping)
    if len(arr) <= SMALL_BATCH and table.single_tokens:
        return _map_tokens_all(arr, table)
    mask = pc.match_substring_regex(arr, pattern=table.pattern)
    return where(arr, mask, lambda a: _map_tokens_all(a, table))


def _typed(values: pa.Array, like: pa.Array) -> pa.Array:
    return values if values.type == like.type else values.cast(like.type)


def _map_tokens_all(arr: pa.Array, table: _TokenTable) -> pa.Array:
    valid = pc.is_valid(arr)
    lists = pc.split_pattern(fill_null(arr, ""), pattern=" ")
    flat = pc.list_flatten(lists)
    keys = _typed(table.keys, flat)
    vals = _typed(table.values, flat)
    pos = pc.index_in(flat, value_set=keys)
    if pos.null_count == len(pos):
        return arr
    mapped = pc.if_else(pc.is_null(pos), flat, pc.take(vals, pos))
    keep = np.asarray(pc.greater(pc.binary_length(mapped), 0).to_numpy(zero_copy_only=False))
    cum = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
    offsets = np.asarray(lists.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
    offsets = offsets - offsets[0]
    new_offsets = pa.array(cum[offsets].astype(np.int32))
    kept = pc.filter(mapped, pa.array(keep))
    rebuilt = pa.ListArray.from_arrays(new_offsets, kept)
    out = pc.binary_join(rebuilt, pa.scalar(" ", type=flat.type))
    return pc.if_else(valid, out, pa.scalar(None, out.type))


def to_series(arr: pa.Array, index: pd.Index | None = None) -> pd.Series:
    """Wrap an Arrow string array as a ``STRING_DTYPE`` Series."""
    arr = pd.arrays.ArrowStringArray(arr.cast(pa.large_string()))
    return pd.Series(arr, index=index, dtype=STRING_DTYPE)


def alternation(words: list[str] | tuple[str, ...] | Mapping[str, str]) -> str:
    """A non-capturing RE2 alternation of literal ``words``, longest first."""
    ordered = sorted(set(words), key=lambda w: (-len(w), w))
    return "(?:" + "|".join(_re2_escape(w) for w in ordered) + ")"


def _re2_escape(word: str) -> str:
    return "".join("\\" + ch if not ch.isalnum() and ch != " " else ch for ch in word)
