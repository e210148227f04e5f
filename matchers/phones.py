"""Telephone-number normalization (North American Numbering Plan)."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from matchers._text import apply_unique, sub

__all__ = ["normalize_phone"]

_EXTENSION_RE = r"(?i)\s*(?:,|;)?\s*(?:x|ext|extn|extension|ex|#)\.?\s*:?\s*\d{1,6}\s*$"
# NANP: area code and exchange start with 2-9; area code is not N11; 555-0100..555-0199
# is reserved for fiction.
_INVALID_RE = r"^[01]|^\d11|^\d{3}[01]|^\d{3}55501\d\d$"
_SAME_DIGIT_RE = "^(?:" + "|".join(f"{d}{{10}}" for d in range(10)) + ")$"


def _phone_arrow(arr: pa.Array) -> pa.Array:
    arr = sub(arr, _EXTENSION_RE, "")
    arr = sub(arr, r"^\s*(\+?\d+)\.0+\s*$", r"\1")  # numeric cells read as text
    # letters other than the extension mark make the value not a phone number
    has_letters = pc.match_substring_regex(arr, pattern=r"[A-Za-z]")
    digits = sub(arr, r"\D", "")
    digits = sub(digits, r"^1(\d{10})$", r"\1")
    ok_len = pc.equal(pc.utf8_length(digits), 10)
    valid = pc.and_(ok_len, pc.invert(has_letters))
    invalid = pc.match_substring_regex(digits, pattern=_INVALID_RE)
    same = pc.match_substring_regex(digits, pattern=_SAME_DIGIT_RE)
    valid = pc.and_(valid, pc.invert(pc.or_(invalid, same)))
    return pc.if_else(valid, digits, pa.scalar(None, digits.type))


def normalize_phone(s: pd.Series) -> pd.Series:
    """Ten-digit NANP number as text (``"(510) 555-1234 x12"`` → ``"5105551234"``).

    A leading country code ``1``/``+1`` and a trailing extension (``x123``, ``ext. 4``,
    ``#4``) are dropped.  ``pd.NA`` when missing or invalid: not 10 digits, letters in
    the number, area code or exchange starting with 0/1, N11 area code, one repeated
    digit, or a 555-01xx fictional number.  Numeric inputs (``5105551234.0``) work.
    Idempotent.
    """
    return apply_unique(s, _phone_arrow)
