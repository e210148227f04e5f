"""A small batch (one API query) skips prefilters and looks tokens up instead of
compiling regular expressions: its results must be those of a large batch."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

from matchers._text import SMALL_BATCH
from matchers.addresses import address_parts, normalize_city, parse_addresses, zip5
from matchers.names import name_core, normalize_name

NAMES = [
    "St. Joseph's Hosp & Med Ctr, A California Corporation",
    "ST JOHNS REGIONAL MED CTR",
    "THE ST MARY HOME HEALTH AGENCY INC",
    "A S HOME CARE L L C",
    "ACME HLTH SVCS DBA SUNRISE HOME HEALTH",
    "GOLDEN STATE SNF AKA GOLDEN HOME",
    "Ñandú Clínica – “Sur”",
    "HOMEHEALTH CARE OF THE VALLEY, LP",
    "FIRST CHOICE HOSPICE CO",
    "MT DIABLO POSTACUTE",
    "  ",
    "!!!",
]
ADDRESSES = [
    "1234 N MAIN STREET SUITE 200",
    "27200 Calaroga Ave",
    "PO BOX 12",
    "P.O. Drawer 7",
    "SUITE 5, 1234 MAIN ST",
    "3376 N CA 59",
    "1 STATE HWY 99",
    "ONE MEDICAL PLAZA 2ND FLOOR",
    "TWENTY FIRST STREET",
    "4201 & 4211 W 24 ST #B",
    "12 COUNTY RD 5",
    "I-5 & GRAPEVINE RD",
    "",
]


def _many(values: list[str]) -> list[str]:
    """``values`` and variants of them: more distinct values than a small batch holds."""
    out = [*values, *(v.lower() for v in values), *(v + " X" for v in values)]
    assert len(set(out)) > SMALL_BATCH
    return out


@pytest.mark.parametrize(
    "normalizer", [normalize_name, name_core, normalize_city, zip5], ids=lambda f: f.__name__
)
def test_small_batches_give_the_large_batch_results(
    normalizer: Callable[[pd.Series], pd.Series],
) -> None:
    values = _many([*NAMES, "94501-1234", "2134", "City of Los Angeles"])
    whole = normalizer(pd.Series(values, dtype="string"))
    for i, v in enumerate(values):
        one = normalizer(pd.Series([v], dtype="string"))
        assert one.iloc[0] is pd.NA if whole.iloc[i] is pd.NA else one.iloc[0] == whole.iloc[i]


def test_small_address_batches_give_the_large_batch_results() -> None:
    values = _many(ADDRESSES)
    whole = parse_addresses(pd.Series(values, dtype="string"))
    for i, v in enumerate(values):
        one = parse_addresses(pd.Series([v], dtype="string"))
        assert one.iloc[0].equals(whole.iloc[i]), v
    parts = address_parts(pd.Series(values, dtype="string"), ("street", "unit"))
    assert list(parts) == ["street", "unit"]
    assert parts["street"].equals(whole["street"]) and parts["unit"].equals(whole["unit"])
