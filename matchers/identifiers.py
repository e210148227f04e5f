"""Identifier normalization per scheme, with validity checks.

Every function returns ``string[pyarrow]`` Series with ``pd.NA`` for missing or invalid
values, and is idempotent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from matchers._text import apply_unique, sub

__all__ = ["KNOWN_SCHEMES", "normalize_identifier", "npi_is_valid"]

#: Schemes with a dedicated normalizer; any other scheme name gets the generic one.
KNOWN_SCHEMES: tuple[str, ...] = ("oshpd_id", "cdph_license", "cdph_facid", "npi", "ccn")

# (width, minimum significant digits) of the zero-padded numeric schemes: a value is
# accepted when, without leading zeros, it has between ``min`` and ``width`` digits.
_PADDED: dict[str, tuple[int, int]] = {
    "oshpd_id": (9, 6),
    "cdph_license": (9, 6),
    "cdph_facid": (9, 6),
}

_NULL = pa.scalar(None, pa.large_string())


def _strip_numeric(arr: pa.Array) -> pa.Array:
    """Upper-case, drop whitespace and separators, and a float ``.0`` tail."""
    arr = pc.utf8_upper(pc.utf8_trim_whitespace(arr))
    arr = sub(arr, r"[\s\-_./]+$", "")
    arr = sub(arr, r"^(\d+)\.0+$", r"\1")
    return sub(arr, r"[\s\-]", "")


def _padded_arrow(arr: pa.Array, width: int, min_digits: int) -> pa.Array:
    arr = _strip_numeric(arr)
    significant = sub(arr, r"^0+", "")
    n = pc.utf8_length(significant)
    ok = pc.and_(
        pc.match_substring_regex(arr, pattern=r"^\d+$"),
        pc.and_(pc.greater_equal(n, min_digits), pc.less_equal(n, width)),
    )
    padded = pc.utf8_lpad(significant, width=width, padding="0")
    return pc.if_else(ok, padded, _NULL)


def _npi_arrow(arr: pa.Array) -> pa.Array:
    arr = _strip_numeric(arr)
    ok = pc.match_substring_regex(arr, pattern=r"^[12]\d{9}$")
    arr = pc.if_else(ok, arr, _NULL)
    valid = _luhn_ok(arr)
    return pc.if_else(pa.array(valid), arr, _NULL)


def _luhn_ok(arr: pa.Array) -> np.ndarray:
    """NPI check digit test (ISO/IEC 7812 Luhn with the ``80840`` prefix) per value.

    Values that are not exactly 10 digits are reported invalid.
    """
    text = pc.fill_null(arr, "").to_numpy(zero_copy_only=False).astype(object)
    n = len(text)
    result = np.zeros(n, dtype=bool)
    is10 = np.fromiter((len(t) == 10 and t.isdigit() for t in text), dtype=bool, count=n)
    if not is10.any():
        return result
    joined = "".join(text[is10]).encode("ascii")
    digits = (np.frombuffer(joined, dtype=np.uint8) - ord("0")).reshape(-1, 10).astype(np.int64)
    body = digits[:, :9]
    # from the right of the 9-digit body, every other digit starting with the last is doubled
    doubled = body[:, 0::2] * 2
    doubled = doubled // 10 + doubled % 10
    total = 24 + doubled.sum(axis=1) + body[:, 1::2].sum(axis=1)
    check = (10 - total % 10) % 10
    result[is10] = check == digits[:, 9]
    return result


def _ccn_arrow(arr: pa.Array) -> pa.Array:
    arr = _strip_numeric(arr)
    numeric = pc.match_substring_regex(arr, pattern=r"^\d+$")
    significant = sub(arr, r"^0+", "")
    n = pc.utf8_length(significant)
    num_ok = pc.and_(numeric, pc.and_(pc.greater_equal(n, 4), pc.less_equal(n, 6)))
    padded = pc.utf8_lpad(significant, width=6, padding="0")
    alnum_ok = pc.and_(
        pc.invert(numeric), pc.match_substring_regex(arr, pattern=r"^\d{2}[0-9A-Z]{4}$")
    )
    return pc.if_else(num_ok, padded, pc.if_else(alnum_ok, arr, _NULL))


def _generic_arrow(arr: pa.Array) -> pa.Array:
    arr = pc.utf8_upper(arr)
    arr = sub(arr, r"^\s*(\d+)\.0+\s*$", r"\1")
    arr = sub(arr, r"[^0-9A-Z\-]+", "")
    arr = sub(arr, r"^-+|-+$", "")
    junk = pc.match_substring_regex(arr, pattern=r"^(?:|0+|NA|NONE|NULL|UNKNOWN|N-A)$")
    return pc.if_else(junk, _NULL, arr)


def normalize_identifier(scheme: str, s: pd.Series) -> pd.Series:
    """Normalize identifiers of one ``scheme``; ``pd.NA`` when missing or invalid.

    * ``oshpd_id``, ``cdph_license``, ``cdph_facid``: 9 digits, zero-padded on the left;
      the value must be all digits with 6-9 significant digits (``"0"``, ``"N/A"``,
      ``"000000000"`` are invalid); ``106010735.0`` works.
    * ``npi``: 10 digits starting with 1 or 2 whose check digit passes (Luhn, prefix 80840).
    * ``ccn``: 6 characters; numeric CCNs are zero-padded (4-6 significant digits), the
      alphanumeric form must be two digits followed by four letters/digits.
    * anything else: upper-cased, everything except letters, digits and ``-`` removed;
      empty, all-zero and ``NA``/``NONE``/``NULL``/``UNKNOWN`` are invalid.
    """
    if scheme in _PADDED:
        width, min_digits = _PADDED[scheme]
        return apply_unique(s, lambda arr: _padded_arrow(arr, width, min_digits))
    if scheme == "npi":
        return apply_unique(s, _npi_arrow)
    if scheme == "ccn":
        return apply_unique(s, _ccn_arrow)
    return apply_unique(s, _generic_arrow)


def npi_is_valid(s: pd.Series) -> np.ndarray:
    """Boolean array: is each value a valid NPI (10 digits, leading 1/2, check digit)."""
    return np.asarray(normalize_identifier("npi", s).notna().to_numpy(), dtype=bool)
