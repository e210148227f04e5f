"""Comparator primitives over aligned pairs of values, vectorized.

All functions take two aligned sequences (pandas Series, numpy arrays, lists, or
:class:`Texts` already converted by :func:`as_texts`) of equal length and return one
numpy value per pair.  Missing means ``None``, ``NaN``, ``pd.NA`` or a blank string (empty
or white space only): a blank value carries no evidence, so it is never compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process
from rapidfuzz.distance import JaroWinkler, Levenshtein

from matchers._text import STRING_DTYPE

__all__ = [
    "SIMILARITY_METHODS",
    "Texts",
    "as_texts",
    "exact",
    "haversine_m",
    "missing",
    "similarity",
    "token_jaccard",
]


@dataclass(frozen=True)
class Texts:
    """Values in the form the comparators read: text (``""`` when missing) and the missing mask.

    Converting a column once and passing the result to several comparators (or taking
    rows of it with :meth:`take`) spares converting it again for every comparison.
    """

    text: np.ndarray  # object array of str, "" where missing
    missing: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.text)

    def take(self, positions: np.ndarray) -> Texts:
        """The values at ``positions``."""
        return Texts(self.text[positions], self.missing[positions])


ArrayLike = Texts | pd.Series | np.ndarray | Sequence[Any]

# method -> (scorer, divisor that brings the score to [0, 1])
_SCORERS: dict[str, tuple[Any, float]] = {
    "jaro_winkler": (JaroWinkler.normalized_similarity, 1.0),
    "levenshtein": (Levenshtein.normalized_similarity, 1.0),
    "token_set": (fuzz.token_set_ratio, 100.0),
    "token_sort": (fuzz.token_sort_ratio, 100.0),
    "partial": (fuzz.partial_ratio, 100.0),
    "ratio": (fuzz.ratio, 100.0),
}
#: Batches at least this large are scored on all cores.
_PARALLEL_MIN_PAIRS = 20_000
#: Accepted ``method`` names of :func:`similarity`.
SIMILARITY_METHODS: tuple[str, ...] = tuple(_SCORERS)


def as_texts(values: ArrayLike) -> Texts:
    """``values`` converted once for the comparators (see :class:`Texts`)."""
    return values if isinstance(values, Texts) else Texts(*_as_text(values))


def _as_text(values: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(object array of str with "" for missing, boolean missing mask)."""
    if isinstance(values, Texts):
        return values.text, values.missing
    s = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values, dtype=object))
    if not isinstance(s.dtype, pd.StringDtype):
        s = s.astype(STRING_DTYPE)
    text = s.to_numpy(dtype=object, na_value="")
    blank = s.str.isspace().to_numpy(dtype=bool, na_value=False)
    return text, np.asarray(text == "", dtype=bool) | blank


def _check_lengths(a: np.ndarray, b: np.ndarray) -> None:
    if len(a) != len(b):
        raise ValueError(f"length mismatch: {len(a)} != {len(b)}")


def missing(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """``True`` where either side is missing or blank."""
    ta, ma = _as_text(a)
    tb, mb = _as_text(b)
    _check_lengths(ta, tb)
    return ma | mb


def exact(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """``True`` where both sides are present and equal (as text); missing never equals."""
    ta, ma = _as_text(a)
    tb, mb = _as_text(b)
    _check_lengths(ta, tb)
    return (ta == tb) & ~(ma | mb)


def similarity(a: ArrayLike, b: ArrayLike, method: str = "jaro_winkler") -> np.ndarray:
    """String similarity in ``[0, 1]`` per pair; ``nan`` where either side is missing.

    ``method``: ``"jaro_winkler"``, ``"levenshtein"`` (normalized similarity),
    ``"token_set"``, ``"token_sort"``, ``"partial"``, ``"ratio"`` (rapidfuzz ``fuzz``
    scores divided by 100).  Computed with ``rapidfuzz.process.cpdist`` on all cores.
    All methods except ``"jaro_winkler"`` (prefix weighting is symmetric too) and
    ``"partial"`` are symmetric; ``partial`` is symmetric up to rapidfuzz's alignment.
    """
    if method not in _SCORERS:
        raise ValueError(
            f"unknown similarity method {method!r}; expected one of {SIMILARITY_METHODS}"
        )
    ta, ma = _as_text(a)
    tb, mb = _as_text(b)
    _check_lengths(ta, tb)
    out = np.full(len(ta), np.nan, dtype=np.float64)
    ok = ~(ma | mb)
    if ok.any():
        scorer, divisor = _SCORERS[method]
        scores = process.cpdist(
            ta[ok].tolist(),
            tb[ok].tolist(),
            scorer=scorer,
            # Threads pay off on large batches only; a handful of pairs (one API query)
            # would spend more starting them than scoring.
            workers=-1 if int(ok.sum()) >= _PARALLEL_MIN_PAIRS else 1,
            dtype=np.float64,
        )
        out[ok] = np.clip(np.asarray(scores, dtype=np.float64) / divisor, 0.0, 1.0)
    return out


def token_jaccard(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Jaccard index of the whitespace-token sets of each pair; ``nan`` if either missing.

    Vectorized with pandas: tokens are exploded to (pair, token) rows, intersections
    counted with one merge.
    """
    ta, ma = _as_text(a)
    tb, mb = _as_text(b)
    _check_lengths(ta, tb)
    n = len(ta)
    out = np.full(n, np.nan, dtype=np.float64)
    ok = ~(ma | mb)
    if not ok.any():
        return out

    def exploded(text: np.ndarray) -> pd.DataFrame:
        tok = pd.Series(text).str.split().explode()
        df = pd.DataFrame({"pair": tok.index.to_numpy(), "token": tok.to_numpy()})
        return df.dropna().drop_duplicates()

    ea, eb = exploded(ta), exploded(tb)
    size_a = np.bincount(ea["pair"].to_numpy(dtype=np.int64), minlength=n)
    size_b = np.bincount(eb["pair"].to_numpy(dtype=np.int64), minlength=n)
    inter = ea.merge(eb, on=["pair", "token"], how="inner")
    size_i = np.bincount(inter["pair"].to_numpy(dtype=np.int64), minlength=n)
    union = size_a + size_b - size_i
    with np.errstate(invalid="ignore", divide="ignore"):
        jac = np.where(union > 0, size_i / np.maximum(union, 1), np.nan)
    out[ok] = jac[ok]
    return out


def haversine_m(lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike) -> np.ndarray:
    """Great-circle distance in metres (mean Earth radius 6,371,008.8 m).

    ``nan`` where any coordinate is missing or not numeric.
    """
    coords = [
        x
        if isinstance(x, np.ndarray) and x.dtype == np.float64
        else pd.to_numeric(pd.Series(np.asarray(x, dtype=object)), errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        for x in (lat1, lon1, lat2, lon2)
    ]
    la1, lo1, la2, lo2 = (np.radians(c) for c in coords)
    dlat = la2 - la1
    dlon = lo2 - lo1
    h = np.sin(dlat / 2.0) ** 2 + np.cos(la1) * np.cos(la2) * np.sin(dlon / 2.0) ** 2
    return 2.0 * 6_371_008.8 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
