"""Comparator primitives over aligned pairs of values, vectorized.

All functions take two aligned sequences (pandas Series, numpy arrays, lists, or
:class:`Texts` already converted by :func:`as_texts`) of equal length and return one
numpy value per pair.  Missing means ``None``, ``NaN``, ``pd.NA`` or a blank string (empty
or white space only): a blank value carries no evidence, so it is never compared.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from rapidfuzz import fuzz, process
from rapidfuzz.distance import JaroWinkler, Levenshtein

from matchers._text import STRING_DTYPE

__all__ = [
    "SIMILARITY_METHODS",
    "Texts",
    "as_texts",
    "distinct_pairs",
    "exact",
    "haversine_m",
    "missing",
    "similarity",
    "token_jaccard",
]


class Texts:
    """Values in the form the comparators read: the distinct values and each row's code.

    ``values`` holds each distinct text once (``""`` stands for a missing value), ``codes``
    the position of each row's value in it, and ``blank`` whether a distinct value is
    missing (empty or white space only). Converting a column once and passing the result
    to several comparators (or taking rows of it with :meth:`take`, which only takes
    codes) spares converting it again for every comparison. Two :class:`Texts` taken from
    one conversion share ``values``: their equality is a comparison of codes.
    """

    __slots__ = ("_derived", "_missing", "_text", "blank", "codes", "values")

    def __init__(
        self,
        values: np.ndarray,
        codes: np.ndarray,
        blank: np.ndarray,
        derived: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.values = values  # object array of distinct str
        self.codes = codes  # integer positions into values, one per row (int32 from Arrow)
        self.blank = blank  # bool, one per distinct value
        self._text: np.ndarray | None = None
        self._missing: np.ndarray | None = None
        # Forms of ``values`` computed on first use, shared by every take of one conversion.
        self._derived = {} if derived is None else derived

    @property
    def text(self) -> np.ndarray:
        """Object array of str per row, ``""`` where missing."""
        if self._text is None:
            self._text = self.values[self.codes]
        return self._text

    @property
    def missing(self) -> np.ndarray:
        """``True`` per row where the value is missing or blank."""
        if self._missing is None:
            self._missing = self.blank[self.codes]
        return self._missing

    def __len__(self) -> int:
        return len(self.codes)

    def take(self, positions: np.ndarray) -> Texts:
        """The values at ``positions``."""
        return Texts(self.values, self.codes[positions], self.blank, self._derived)

    def sorted_words(self) -> np.ndarray:
        """Each distinct value with its words in sorted order, joined by single spaces: the
        form ``token_sort`` compares. Computed once per conversion."""
        out = self._derived.get("sorted_words")
        if out is None:
            out = np.empty(len(self.values), dtype=object)
            out[:] = [" ".join(sorted(_words(v))) for v in self.values.tolist()]
            self._derived["sorted_words"] = out
        return out


ArrayLike = Texts | pd.Series | np.ndarray | Sequence[Any]

#: White space that rapidfuzz splits words on in a text of one-byte characters (code points
#: below 256): Python's, less U+0085 and U+00A0. In wider texts it splits where Python does.
_NARROW_SPACE = re.compile("[\t\n\x0b\x0c\r\x1c-\x1f ]+")


def _words(text: str) -> list[str]:
    """The words rapidfuzz's ``token_*`` scorers see in ``text``."""
    if ("\x85" in text or "\xa0" in text) and max(text) <= "\xff":
        return [w for w in _NARROW_SPACE.split(text) if w]
    return text.split()


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
#: Batches at least this large are scored once per distinct pair of values.
_DISTINCT_MIN_PAIRS = 1_000
#: Accepted ``method`` names of :func:`similarity`.
SIMILARITY_METHODS: tuple[str, ...] = tuple(_SCORERS)


def as_texts(values: ArrayLike) -> Texts:
    """``values`` converted once for the comparators (see :class:`Texts`)."""
    if isinstance(values, Texts):
        return values
    s = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values, dtype=object))
    if not (isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow"):
        s = s.astype(STRING_DTYPE)
    # Arrow hashes the values; only the distinct ones become Python strings. (Straight
    # Arrow calls: pandas' own would cost more than the work on the few values of a query.)
    arr = pa.array(s.array)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    encoded = pc.dictionary_encode(arr)
    distinct = encoded.dictionary
    n = len(distinct)
    text = np.empty(n + 1, dtype=object)
    text[:n] = distinct.to_numpy(zero_copy_only=False)
    text[n] = ""  # missing values
    codes = pc.fill_null(encoded.indices, n).to_numpy(zero_copy_only=False)
    blank = np.empty(n + 1, dtype=bool)
    blank[:n] = pc.utf8_is_space(distinct).to_numpy(zero_copy_only=False)
    blank[n] = True
    return Texts(text, codes, blank | (text == ""))


def _check_lengths(a: np.ndarray, b: np.ndarray) -> None:
    if len(a) != len(b):
        raise ValueError(f"length mismatch: {len(a)} != {len(b)}")


def missing(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """``True`` where either side is missing or blank."""
    ta, tb = as_texts(a), as_texts(b)
    _check_lengths(ta.codes, tb.codes)
    return ta.missing | tb.missing


def exact(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """``True`` where both sides are present and equal (as text); missing never equals."""
    ta, tb = as_texts(a), as_texts(b)
    _check_lengths(ta.codes, tb.codes)
    present = ~(ta.missing | tb.missing)
    if ta.values is tb.values:  # one conversion: equal values have equal codes
        return (ta.codes == tb.codes) & present
    return (ta.text == tb.text) & present


def distinct_pairs(a: Texts, b: Texts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (left value, right value) pairs of aligned ``a``/``b``: their positions
    in ``a.values`` and in ``b.values``, and per row the index of its pair among them."""
    _check_lengths(a.codes, b.codes)
    n = len(b.values)
    inverse, distinct = pd.factorize(a.codes.astype(np.int64) * n + b.codes)
    distinct = np.asarray(distinct, dtype=np.int64)
    return distinct // n, distinct % n, np.asarray(inverse, dtype=np.int64)


def similarity(
    a: ArrayLike,
    b: ArrayLike,
    method: str = "jaro_winkler",
    score_cutoff: float | None = None,
) -> np.ndarray:
    """String similarity in ``[0, 1]`` per pair; ``nan`` where either side is missing.

    ``method``: ``"jaro_winkler"``, ``"levenshtein"`` (normalized similarity),
    ``"token_set"``, ``"token_sort"``, ``"partial"``, ``"ratio"`` (rapidfuzz ``fuzz``
    scores divided by 100).  Computed with ``rapidfuzz.process.cpdist`` (on all cores
    for large batches), once per distinct pair of values.
    All methods except ``"jaro_winkler"`` (prefix weighting is symmetric too) and
    ``"partial"`` are symmetric; ``partial`` is symmetric up to rapidfuzz's alignment.

    ``score_cutoff`` (in ``[0, 1]``): a similarity below it may read as ``0`` (rapidfuzz
    gives up on such a pair early); one at or above it is exact. For a caller that only
    compares the similarity with thresholds at or above the cutoff.
    """
    if method not in _SCORERS:
        raise ValueError(
            f"unknown similarity method {method!r}; expected one of {SIMILARITY_METHODS}"
        )
    ta, tb = as_texts(a), as_texts(b)
    _check_lengths(ta.codes, tb.codes)
    out = np.full(len(ta), np.nan, dtype=np.float64)
    ok = ~(ta.missing | tb.missing)
    if not ok.any():
        return out
    if int(ok.sum()) >= _DISTINCT_MIN_PAIRS:
        # Each distinct (left value, right value) pair is scored once.
        at = np.flatnonzero(ok)
        left, right, inverse = distinct_pairs(ta.take(at), tb.take(at))
    else:  # a few pairs (one API query): finding the distinct ones would cost more
        left, right = ta.codes[ok], tb.codes[ok]
        inverse = np.arange(len(left))
    scorer, divisor = _SCORERS[method]
    left_values, right_values = ta.values, tb.values
    if method == "token_sort":
        # rapidfuzz's token_sort_ratio is the ratio of the two word-sorted strings: sort the
        # words of each distinct value once instead of in every pair.
        scorer = fuzz.ratio
        left_values, right_values = ta.sorted_words(), tb.sorted_words()
    kwargs: dict[str, Any] = {}
    if score_cutoff is not None and score_cutoff > 0.0:
        # Somewhat below the cutoff: rapidfuzz's early exits round (a Jaro-Winkler of
        # exactly 0.6 reads as 0 under the cutoff 0.6); the margin keeps such scores exact.
        kwargs["score_cutoff"] = max(score_cutoff - 0.01, 0.0) * divisor
    scores = process.cpdist(
        left_values[left].tolist(),
        right_values[right].tolist(),
        scorer=scorer,
        # Threads pay off on large batches only; a handful of pairs (one API query)
        # would spend more starting them than scoring.
        workers=-1 if len(left) >= _PARALLEL_MIN_PAIRS else 1,
        dtype=np.float64,
        **kwargs,
    )
    scores = np.clip(np.asarray(scores, dtype=np.float64) / divisor, 0.0, 1.0)
    out[ok] = scores[inverse]
    return out


def token_jaccard(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Jaccard index of the whitespace-token sets of each pair; ``nan`` if either missing.

    Vectorized with pandas: tokens are exploded to (pair, token) rows, intersections
    counted with one merge.
    """
    texts_a, texts_b = as_texts(a), as_texts(b)
    _check_lengths(texts_a.codes, texts_b.codes)
    ta, tb = texts_a.text, texts_b.text
    n = len(ta)
    out = np.full(n, np.nan, dtype=np.float64)
    ok = ~(texts_a.missing | texts_b.missing)
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
    coords = list(np.broadcast_arrays(*coords))
    present = ~np.isnan(coords[0])
    for c in coords[1:]:
        present &= ~np.isnan(c)
    if not present.all():
        # The trigonometry only where every coordinate is given (listings often have none).
        out = np.full(len(present), np.nan, dtype=np.float64)
        if present.any():
            out[present] = haversine_m(*(c[present] for c in coords))
        return out
    la1, lo1, la2, lo2 = (np.radians(c) for c in coords)
    dlat = la2 - la1
    dlon = lo2 - lo1
    h = np.sin(dlat / 2.0) ** 2 + np.cos(la1) * np.cos(la2) * np.sin(dlon / 2.0) ** 2
    return 2.0 * 6_371_008.8 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
