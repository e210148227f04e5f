"""Numbers written as words, read as digits: the one table names, streets and cities share.

``NINTH`` → ``9TH``, ``TWENTY-FIRST`` / ``TWENTY FIRST`` → ``21ST``, ``FIFTEEN`` → ``15``,
``TWENTY NINE`` / ``TWENTYNINE`` → ``29`` (1 to 99). A compound is first joined into one
word (:data:`COMPOUND_RE`, replaced by ``\\1\\2``), then mapped as a token.
"""

from __future__ import annotations

from matchers._text import alternation

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


def _ordinal_words() -> dict[str, str]:
    out: dict[str, str] = {}
    for i in range(1, 10):
        out[ORD_UNITS[i]] = ordinal(i)
    for i in range(10):
        out[ORD_TEENS[i]] = ordinal(10 + i)
    for t in range(2, 10):
        out[ORD_TENS[t]] = ordinal(10 * t)
        for u in range(1, 10):
            out[TENS[t] + ORD_UNITS[u]] = ordinal(10 * t + u)  # joined by COMPOUND_RE
    return out


def _cardinal_words() -> dict[str, str]:
    out = {word: str(i) for i, word in enumerate(UNITS) if i}
    out.update({word: str(10 + i) for i, word in enumerate(TEENS)})
    for t in range(2, 10):
        out[TENS[t]] = str(10 * t)
        for u in range(1, 10):
            out[TENS[t] + UNITS[u]] = str(10 * t + u)  # joined by COMPOUND_RE
    return out


#: Ordinal words (1ST to 99TH), compounds joined: ``TWENTYFIRST`` → ``21ST``.
ORDINAL_WORDS = _ordinal_words()
#: Cardinal words (1 to 99), compounds joined: ``TWENTYNINE`` → ``29``.
CARDINAL_WORDS = _cardinal_words()
#: Both, as one token map.
NUMBER_WORDS = {**CARDINAL_WORDS, **ORDINAL_WORDS}
#: A tens word followed by a unit word, cardinal or ordinal (``TWENTY NINE``,
#: ``TWENTY FIRST``; a hyphen reads as a space by then): replaced by ``\1\2``.
COMPOUND_RE = (
    r"\b(" + alternation(TENS[2:]) + r") (" + alternation(UNITS[1:] + ORD_UNITS[1:]) + r")\b"
)
#: Every tens word ends so: values without it need no compound joined.
COMPOUND_HINT = "TY "
