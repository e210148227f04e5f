"""Phone and identifier normalization on real listings, and properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matchers.identifiers import KNOWN_SCHEMES, normalize_identifier, npi_is_valid
from matchers.phones import normalize_phone
from tests.matchers.conftest import TRUTH_PATH
from tests.matchers.strategies import any_text

PROPERTY = settings(max_examples=150, deadline=None)


def _npi_check_digit(body: str) -> str:
    """Reference (scalar, textbook) Luhn check digit of a 9-digit NPI body."""
    total = 24
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return str((10 - total % 10) % 10)


def test_phone_examples() -> None:
    raw = pd.Series(
        [
            "(510) 523-4357",
            "510.523.4357 x123",
            "+1 510-523-4357",
            "1 (510) 523-4357 ext. 4",
            5105234357,
            5105234357.0,
            "5105234357.0",
            "(510) 555-0123",
            "(510) 555-1234",
            "0105234357",
            "5101234357",
            "2222222222",
            "911-523-4357",
            "523-4357",
            "CALL 510 523 4357",
            None,
        ]
    )
    assert (
        normalize_phone(raw).fillna("<NA>").tolist()
        == ["5105234357"] * 7
        + [
            "<NA>",
            "5105551234",
        ]
        + ["<NA>"] * 7
    )


# CONTACT_PHONE_NUMBER values of the CDPH sheet, in the formats it uses.
CDPH_PHONES = [
    "(714) 622-5338",
    "707-263-6382",
    "(626)510-6770",
    "6614591900",
    "(323) 200-4525",
]
# Placeholders found in the same column: none is a phone number.
CDPH_PLACEHOLDERS = ["(000) 000-0000", "(619) 000-0000", "(999) 999-9999", "(626) 031-3088"]


def test_real_phone_formats() -> None:
    out = normalize_phone(pd.Series(CDPH_PHONES))
    assert out.str.fullmatch(r"[2-9]\d{2}[2-9]\d{6}").all()
    digits = pd.Series(CDPH_PHONES).str.replace(r"\D", "", regex=True)
    assert (out == digits).all()
    assert normalize_phone(pd.Series(CDPH_PLACEHOLDERS)).isna().all()


@PROPERTY
@given(st.lists(st.one_of(any_text, st.integers(), st.floats(), st.none()), max_size=20))
def test_phone_is_ten_digits_or_na_and_idempotent(values: list[object]) -> None:
    out = normalize_phone(pd.Series(values, dtype=object))
    assert len(out) == len(values)
    assert out.dropna().str.fullmatch(r"[2-9]\d{2}[2-9]\d{6}").all()
    assert out.fillna("<NA>").tolist() == normalize_phone(out).fillna("<NA>").tolist()


def test_identifiers_from_numeric_and_text_columns_agree() -> None:
    # the truth file read twice: once as text, once with inferred (numeric) dtypes
    text = pd.read_csv(TRUTH_PATH, dtype=str)
    numeric = pd.read_csv(TRUTH_PATH)
    assert numeric["FACID"].dtype.kind in "if"  # leading zeros are lost
    assert text["FACID"].str.startswith("0").any()
    for column, scheme in (
        ("FACID", "cdph_facid"),
        ("LICENSE_NUMBER", "cdph_license"),
        ("OSHPD_ID", "oshpd_id"),
    ):
        a = normalize_identifier(scheme, text[column])
        b = normalize_identifier(scheme, numeric[column])
        assert (a == b).fillna(False).mean() > 0.99, column
        assert a.dropna().str.fullmatch(r"\d{9}").all()
    # CDPH and HCAI license numbers of a true pair agree after normalization
    same = normalize_identifier("cdph_license", text["LICENSE_NUMBER"]) == normalize_identifier(
        "cdph_license", numeric["LICENSE_NUM"]
    )
    assert same.fillna(False).mean() > 0.95


def test_oshpd_float_and_junk() -> None:
    out = normalize_identifier(
        "oshpd_id",
        pd.Series([106010735.0, "106010735", " 106010735 ", "0", "N/A", "000000000", ""]),
    )
    assert out.fillna("<NA>").tolist() == ["106010735"] * 3 + ["<NA>"] * 4


def test_ccn_and_generic() -> None:
    ccn = normalize_identifier("ccn", pd.Series(["50001", "050001", 50001.0, "05S001", "0", "ABC"]))
    assert ccn.fillna("<NA>").tolist() == ["050001", "050001", "050001", "05S001", "<NA>", "<NA>"]
    other = normalize_identifier("medicaid", pd.Series([" ab 12-3 ", "n/a", None, "000"]))
    assert other.fillna("<NA>").tolist() == ["AB12-3", "<NA>", "<NA>", "<NA>"]
    assert set(KNOWN_SCHEMES) == {"oshpd_id", "cdph_license", "cdph_facid", "npi", "ccn"}


def test_real_npis_mostly_valid_and_known_valid_passes() -> None:
    # NPIs of the HCAI/CDPH facilities (CDPH sheet column NPI), e.g. 1578652152
    known = pd.Series(["1578652152", "1326074527", "1659783983", 1578652152, 1578652152.0])
    assert npi_is_valid(known).all()
    assert _npi_check_digit("157865215") == "2"


@PROPERTY
@given(st.integers(min_value=100_000_000, max_value=299_999_999), st.data())
def test_npi_luhn_single_digit_changes_fail(body_int: int, data: st.DataObject) -> None:
    body = str(body_int)
    npi = body + _npi_check_digit(body)
    assert npi[0] in "12"
    pos = data.draw(st.integers(min_value=0, max_value=9))
    new_digit = data.draw(st.sampled_from([d for d in "0123456789" if d != npi[pos]]))
    changed = npi[:pos] + new_digit + npi[pos + 1 :]
    valid = npi_is_valid(pd.Series([npi, changed]))
    assert valid.dtype == np.bool_
    assert valid[0]
    assert not valid[1]


@PROPERTY
@given(
    st.sampled_from([*KNOWN_SCHEMES, "medicare_id", "x"]),
    st.lists(st.one_of(any_text, st.integers(), st.floats(), st.none()), max_size=20),
)
def test_identifiers_are_idempotent(scheme: str, values: list[object]) -> None:
    out = normalize_identifier(scheme, pd.Series(values, dtype=object))
    assert len(out) == len(values)
    assert out.fillna("<NA>").tolist() == normalize_identifier(scheme, out).fillna("<NA>").tolist()
    if scheme in ("oshpd_id", "cdph_license", "cdph_facid"):
        assert out.dropna().str.fullmatch(r"\d{9}").all()
        assert not (out == "000000000").any()


@pytest.mark.parametrize("bad", ["123456789", "12345678901", "3123456789", "abcdefghij", ""])
def test_npi_rejects(bad: str) -> None:
    assert not npi_is_valid(pd.Series([bad]))[0]
