"""Numbers written as words, read as digits: the one table names, streets and cities share.

``NINTH`` → ``9TH``, ``TWENTY-FIRST`` / ``TWENTY FIRST`` → ``21ST``, ``FIFTEEN`` → ``15``,
``TWENTY NINE`` / ``TWENTYNINE`` → ``29`` (1 to 99). One-word numbers are tokens of the
callers' token maps (:data:`NUMBER_WORDS`); compounds are joined into one word and mapped
first (:func:`compound_numbers`), only in the values that hold a tens word.
"""

from __future__ import annotations

import pyarrow as pa

from matchers._text import alternation, contains, fill_null, map_tokens, sub, where

UNITS = ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE")
TEENS = (
    "TEN",
    "ELEVEN",
    "TWELVE",
    "THIRTEEN",
    "FOURTEEN",
    "FIFTEEN",
    "SIXTEEN",
    "SEVENTEEN",
    "EIGHTEEN",
    "NINETEEN",
)
TENS = ("", "", "TWENTY", "THIRTY", "FORTY", "FIFTY", "SIXTY", "SEVENTY", "EIGHTY", "NINETY")
ORD_UNITS = (
    "",
    "FIRST",
    "SECOND",
    "THIRD",
    "FOURTH",
    "FIFTH",
    "SIXTH",
    "SEVENTH",
    "EIGHTH",
    "NINTH",
)
ORD_TEENS = (
    "TENTH",
    "ELEVENTH",
    "TWELFTH",
    "THIRTEENTH",
    "FOURTEENTH",
    "FIFTEENTH",
    "SIXTEENTH",
    "SEVENTEENTH",
    "EIGHTEENTH",
    "NINETEENTH",
)
ORD_TENS = (
    "",
    "",
    "TWENTIETH",
    "THIRTIETH",
    "FORTIETH",
    "FIFTIETH",
    "SIXTIETH",
    "SEVENTIETH",
    "EIGHTIETH",
    "NINETIETH",
)


def ordinal(n: int) -> str:
    """``n`` with its ordinal suffix: 1ST, 2ND, 3RD, 4TH, 11TH, 21ST."""
    if 10 <= n % 100 <= 20:
        return f"{n}TH"
    return f"{n}" + {1: "ST", 2: "ND", 3: "RD"}.get(n % 10, "TH")


def _simple_words() -> dict[str, str]:
    out = {word: str(i) for i, word in enumerate(UNITS) if i}
    out.update({word: str(10 + i) for i, word in enumerate(TEENS)})
    out.update({TENS[t]: str(10 * t) for t in range(2, 10)})
    out.update({ORD_UNITS[i]: ordinal(i) for i in range(1, 10)})
    out.update({ORD_TEENS[i]: ordinal(10 + i) for i in range(10)})
    out.update({ORD_TENS[t]: ordinal(10 * t) for t in range(2, 10)})
    return out


def _compound_words() -> dict[str, str]:
    out = {}
    for t in range(2, 10):
        for u in range(1, 10):
            out[TENS[t] + UNITS[u]] = str(10 * t + u)
            out[TENS[t] + ORD_UNITS[u]] = ordinal(10 * t + u)
    return out


#: One-word numbers: ``NINE`` → ``9``, ``FIFTEEN`` → ``15``, ``NINTH`` → ``9TH``,
#: ``TWENTIETH`` → ``20TH``.
NUMBER_WORDS = _simple_words()
#: Of them, the cardinals (1 to 90).
CARDINAL_WORDS = {k: v for k, v in NUMBER_WORDS.items() if v.isdigit()}
#: Of them, the ordinals (1ST to 90TH).
ORDINAL_WORDS = {k: v for k, v in NUMBER_WORDS.items() if not v.isdigit()}
#: Compounds, once joined: ``TWENTYNINE`` → ``29``, ``TWENTYFIRST`` → ``21ST``.
COMPOUND_WORDS = _compound_words()
#: A tens word followed by a unit word, cardinal or ordinal (``TWENTY NINE``,
#: ``TWENTY FIRST``; a hyphen reads as a space by then): replaced by ``\1\2``.
COMPOUND_RE = (
    r"\b(" + alternation(TENS[2:]) + r") (" + alternation(UNITS[1:] + ORD_UNITS[1:]) + r")\b"
)
#: Values without one of these need no compound joined (a cheap literal test).
COMPOUND_HINT = tuple(f"{tens} " for tens in TENS[2:])


def compound_numbers(arr: pa.Array) -> pa.Array:
    """Compound number words as digits (``TWENTY NINE``, ``TWENTYNINE`` → ``29``;
    ``TWENTY FIRST`` → ``21ST``), the values that may hold one only."""
    joined = sub(arr, COMPOUND_RE, r"\1\2", only_if=COMPOUND_HINT)
    maybe = fill_null(contains(joined, tuple(t for t in TENS[2:])), False)
    return where(joined, maybe, lambda a: map_tokens(a, COMPOUND_WORDS))
