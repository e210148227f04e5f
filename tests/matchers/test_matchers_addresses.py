"""Address parsing, city, ZIP and state normalization on real listings, and properties."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from matchers import addresses
from matchers.addresses import (
    ADDRESS_COLUMNS,
    normalize_city,
    normalize_state,
    parse_addresses,
    zip5,
)
from tests.matchers.conftest import HCAI_PATH
from tests.matchers.strategies import address_like, any_text

PROPERTY = settings(max_examples=150, deadline=None)

# Pairs copied from the truth file (CDPH ADDRESS, HCAI DBA_ADDRESS1 of one facility).
TRUE_ADDRESS_PAIRS = [
    ("1800 N. CALIFORNIA STREET", "1800 N CALIFORNIA ST"),
    ("89 PUTNAM WAY", "89 PUTNAM WAY."),
    ("151 KALMUS DRIVE", "151 Kalmus Dr"),
    ("1525 4TH AVENUE", "1525 4th Ave"),
    ("3376 N STATE HIGHWAY 59", "3376 N CA 59"),
    ("590 S INDIAN HILL BLVD", "590 S. INDIAN HILL BOULEVARD"),
    ("1111 N. BRAND BLVD., SUITE 314", "1111 N Brand Blvd"),
    ("1700 MOUNT VERNON AVE", "1700 MOUNT VERNON AVENUE"),
    ("10200 TRINITY PARKWAY", "10200 Trinity Pky"),
    ("4201 & 4211 E LA PALMA AVE", "4201 E La Palma Ave"),
    ("11051 NORTH O'MELVENY AVE", "11051 N Omelveny Ave"),
    ("3620 M.L.K. JR. BLVD.", "3620 Martin Luther King Jr Blvd"),
    ("4711 HIGHWAY166", "4711 Highway 166"),
    ("38883 CALIFORNIA 299", "38883 State Highway 299"),
    ("3505 CAMINO DEL RIO S", "3505 Cam Del Rio S"),
]


def test_true_pairs_from_truth_file_agree(truth: pd.DataFrame) -> None:
    rows = set(zip(truth["ADDRESS"], truth["DBA_ADDRESS1"], strict=True))
    # all but the last three pairs are verbatim rows of the truth file
    assert all(pair in rows for pair in TRUE_ADDRESS_PAIRS if "O'MELVENY" not in pair[0])
    left = parse_addresses(pd.Series([a for a, _ in TRUE_ADDRESS_PAIRS]))
    right = parse_addresses(pd.Series([b for _, b in TRUE_ADDRESS_PAIRS]))
    assert left["address_norm"].tolist() == right["address_norm"].tolist()


def test_street_name_bridges_missing_suffix(truth: pd.DataFrame) -> None:
    row = truth[truth["ADDRESS"] == "4300 VON KARMAN"].iloc[0]
    assert row["DBA_ADDRESS1"] == "4300 Von Karman Ave"
    parsed = parse_addresses(pd.Series([row["ADDRESS"], row["DBA_ADDRESS1"]]))
    assert parsed["address_norm"][0] != parsed["address_norm"][1]
    assert parsed["street_name"][0] == parsed["street_name"][1] == "VON KARMAN"


@pytest.mark.parametrize(
    ("raw", "number", "street", "unit", "unit_id", "po_box"),
    [
        ("1234 N. MAIN ST., SUITE 200", "1234", "N MAIN ST", "STE 200", "200", None),
        ("1234 N Main St #200", "1234", "N MAIN ST", "# 200", "200", None),
        ("1234 MAIN ST BLDG B", "1234", "MAIN ST", "BLDG B", "B", None),
        ("1234-A Main Street", "1234", "MAIN ST", None, None, None),
        ("1234 1/2 Main Street", "1234", "MAIN ST", None, None, None),
        ("ONE MEDICAL PLAZA", "1", "MEDICAL PLZ", None, None, None),
        ("PO BOX 12", None, None, None, None, "12"),
        ("P.O. Box 557", None, None, None, None, "557"),
        ("1234 HWY 99", "1234", "HWY 99", None, None, None),
        ("12345 STATE ROUTE 1", "12345", "HWY 1", None, None, None),
        ("12345 US Highway 101 South", "12345", "HWY 101 S", None, None, None),
        ("100 Interstate 5", "100", "I 5", None, None, None),
        ("2070 Clinton Ave", "2070", "CLINTON AVE", None, None, None),
        ("2070 CLINTON AVENUE", "2070", "CLINTON AVE", None, None, None),
        ("500 First Street, 2nd Floor", "500", "1ST ST", "FL 2", "2", None),
        ("7400 24 STREET", "7400", "24TH ST", None, None, None),
        ("12 SAINT MARYS STREET", "12", "ST MARYS ST", None, None, None),
        ("Suite 5, 1234 Main St", "1234", "MAIN ST", "STE 5", "5", None),
        ("Kaiser Bldg, 4867 Sunset Blvd", "4867", "SUNSET BLVD", None, None, None),
    ],
)
def test_parse_examples(
    raw: str,
    number: str | None,
    street: str | None,
    unit: str | None,
    unit_id: str | None,
    po_box: str | None,
) -> None:
    row = parse_addresses(pd.Series([raw])).iloc[0]
    got = {k: (None if pd.isna(row[k]) else row[k]) for k in ADDRESS_COLUMNS}
    assert (got["street_number"], got["street"], got["unit"], got["unit_id"], got["po_box"]) == (
        number,
        street,
        unit,
        unit_id,
        po_box,
    )
    expected_norm = " ".join(p for p in (number, street) if p) or (
        f"PO BOX {po_box}" if po_box else None
    )
    assert got["address_norm"] == expected_norm
    assert got["address_full"] == " ".join(p for p in (expected_norm, unit) if p)


def test_missing_addresses() -> None:
    out = parse_addresses(pd.Series([None, "", "   ", float("nan")], index=[3, 4, 5, 6]))
    assert list(out.columns) == list(ADDRESS_COLUMNS)
    assert out.index.tolist() == [3, 4, 5, 6]
    assert out.isna().all().all()
    assert parse_addresses(pd.Series([], dtype=object)).shape == (0, len(ADDRESS_COLUMNS))


def test_real_addresses_mostly_have_numbers(hcai: pd.DataFrame) -> None:
    parsed = parse_addresses(hcai["DBA_ADDRESS1"])
    assert parsed["street_number"].notna().mean() > 0.97
    assert parsed["street_number"].dropna().str.fullmatch(r"\d+").all()


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(any_text, address_like), max_size=20))
# a state code before a route number that only the first pass makes (a number word, a
# separator, a long directional): the second pass read a route the first did not
@example(["0MD/ONE"])
@example(["3376 CA-59"])
@example(["3376 NORTH CA 59"])
# a box numbered in words, read as a box only on a second pass
@example(["BOX ONE", "BOX#ONE", "PO BOX/TWO"])
def test_parse_addresses_is_a_fixed_point(values: list[str]) -> None:
    s = pd.Series(values, dtype=object)
    once = parse_addresses(s)
    assert len(once) == len(s)
    assert list(once.columns) == list(ADDRESS_COLUMNS)
    for col in ("address_full", "address_norm"):
        again = parse_addresses(once[col])
        assert once[col].fillna("<NA>").tolist() == again[col].fillna("<NA>").tolist(), col
    assert once["street_number"].dropna().str.fullmatch(r"\d+").all()
    assert not (once["address_norm"] == "").any()


#: Text after a house number: the words the rules act on, glued on or after a space.
_numbered = st.tuples(
    st.from_regex(r"\A[0-9]{1,6}\Z"),
    st.sampled_from(["", " ", "  ", "-", "'", "/", "&", " & ", "#"]),
    st.one_of(any_text, address_like),
).map("".join)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(_numbered, address_like, any_text), max_size=25))
@example(["1'2 MAIN ST", "12 MAIN ST", "3-4 OAK", "5/6 ELM", "7 & 9 PINE AVE", "10#2 ELM"])
def test_addresses_of_one_street_parse_as_each_would_alone(values: list[str]) -> None:
    """The rest after a house number is parsed once for all the numbers it follows: the
    result is exactly that of parsing every value whole."""
    raw = pa.array(sorted(set(values)), type=pa.large_string())
    by_street = addresses._parse_by_street(raw)
    whole = addresses._parse_arrow(raw)
    for col in ADDRESS_COLUMNS:
        assert by_street[col].to_pylist() == whole[col].to_pylist(), col


def test_real_addresses_parse_as_each_would_alone(hcai: pd.DataFrame) -> None:
    numbers = [str(n) for n in range(1, 40)]
    raw = pa.array(
        sorted({f"{n} {a}" for n in numbers for a in hcai["DBA_ADDRESS1"].dropna()[:200]})
        + sorted(set(hcai["DBA_ADDRESS1"].dropna())),
        type=pa.large_string(),
    )
    by_street = addresses._parse_by_street(raw)
    whole = addresses._parse_arrow(raw)
    for col in ADDRESS_COLUMNS:
        assert by_street[col].equals(whole[col]), col


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("St. Helena", "SAINT HELENA"),
        ("Mt. Shasta", "MOUNT SHASTA"),
        ("Ft Bragg", "FORT BRAGG"),
        ("N Hollywood", "North Hollywood"),
        ("So. San Francisco", "SOUTH SAN FRANCISCO"),
        ("La Cañada Flintridge", "LA CANADA FLINTRIDGE"),
        ("Culver", "CULVER CITY"),
        ("Daly City", "DALY"),
        ("Twentynine Palms", "29 PALMS"),
        ("Twenty-Nine Palms", "29 Palms"),
    ],
)
def test_city_variants_agree(a: str, b: str) -> None:
    out = normalize_city(pd.Series([a, b]))
    assert out[0] == out[1]


def test_real_city_pairs_agree_more_after_normalization(truth: pd.DataFrame) -> None:
    raw = (truth["CITY"].str.upper() == truth["DBA_CITY"].str.upper()).mean()
    norm = (normalize_city(truth["CITY"]) == normalize_city(truth["DBA_CITY"])).fillna(False).mean()
    assert norm >= raw


@PROPERTY
@given(st.lists(any_text, max_size=20))
def test_city_and_state_are_idempotent(values: list[str]) -> None:
    s = pd.Series(values, dtype=object)
    for fn in (normalize_city, normalize_state):
        once = fn(s)
        assert once.fillna("<NA>").tolist() == fn(once).fillna("<NA>").tolist()
    assert normalize_state(s).dropna().str.fullmatch(r"[A-Z]{2}").all()


def test_zip5_examples() -> None:
    values = pd.Series(
        ["94501", "94501-1234", 94501, 94501.0, "945011234", "2134", "0", "00000", "abc", None]
    )
    assert zip5(values).fillna("<NA>").tolist() == [
        "94501",
        "94501",
        "94501",
        "94501",
        "94501",
        "02134",
        "<NA>",
        "<NA>",
        "<NA>",
        "<NA>",
    ]


def test_zip5_numeric_and_text_columns_agree(hcai: pd.DataFrame) -> None:
    # the same listing read with inferred (numeric) dtypes
    numeric = pd.read_csv(HCAI_PATH, usecols=["DBA_ZIP_CODE"])["DBA_ZIP_CODE"]
    assert numeric.dtype.kind in "if"
    text = hcai["DBA_ZIP_CODE"]
    assert (zip5(numeric) == zip5(text)).fillna(False).all()
    assert zip5(text).notna().mean() > 0.99


@PROPERTY
@given(
    st.lists(
        st.one_of(
            any_text,
            st.integers(min_value=-10, max_value=10**10),
            st.floats(allow_nan=True),
            st.none(),
        ),
        max_size=20,
    )
)
def test_zip5_is_five_digits_or_na(values: list[object]) -> None:
    out = zip5(pd.Series(values, dtype=object))
    assert len(out) == len(values)
    assert out.dropna().str.fullmatch(r"\d{5}").all()
    assert out.fillna("<NA>").tolist() == zip5(out).fillna("<NA>").tolist()


def test_state_names_and_codes() -> None:
    out = normalize_state(pd.Series(["California", "CA", "Calif.", "ca", " new york ", "XX", None]))
    assert out.tolist() == ["CA", "CA", "CA", "CA", "NY", pd.NA, pd.NA]


def test_route_intersection_is_not_given_a_house_number(hcai: pd.DataFrame) -> None:
    value = "CA-162 & Biggar Ln"
    assert value in set(hcai["DBA_ADDRESS1"])
    row = parse_addresses(pd.Series([value])).iloc[0]
    assert pd.isna(row["street_number"])
    assert "162" in row["address_norm"]


def test_zip5_reads_numbers_written_as_text() -> None:
    """A ZIP column once held as numbers is written "94501.0" in a CSV."""
    values = pd.Series(["94501.0", "94501.00", "945011234.0", "2134.0", "94501.5", "9.0"])
    assert zip5(values).fillna("<NA>").tolist() == [
        "94501",
        "94501",
        "94501",
        "02134",
        "<NA>",
        "<NA>",
    ]


@pytest.mark.parametrize("address", ["0 MOUNT 0", "12 COURT 5", "7 KEY 2", "9 PRAIRIE 4"])
def test_a_street_word_that_abbreviates_to_a_state_code_is_no_route(address: str) -> None:
    # MOUNT -> MT, COURT -> CT, KEY -> KY, PRAIRIE -> PR: the abbreviation, normalized
    # again, is the same address, not a state route (0 MT 0 -> 0 HWY 0)
    once = parse_addresses(pd.Series([address], dtype=object))["address_full"]
    again = parse_addresses(once)["address_full"]
    assert again.tolist() == once.tolist()
    assert "HWY" not in once.iloc[0]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("100 NINTH ST", "100 9th St"),
        ("12 TWENTY-FIRST AVE", "12 21st Ave"),
        ("72250 TWENTYNINE PALMS HWY", "72250 29 Palms Hwy"),
        ("72250 TWENTY NINE PALMS HWY", "72250 29 Palms Hwy"),
        ("5 FIFTEEN MILE RD", "5 15 Mile Rd"),
    ],
)
def test_spelled_out_numbers_in_streets_read_as_digits(a: str, b: str) -> None:
    parsed = parse_addresses(pd.Series([a, b]))
    assert parsed["address_norm"][0] == parsed["address_norm"][1]
