"""A facility that moved keeps its name: where no other record carries that whole name, a
differing place is no evidence against the pair (stages.model.moving_allowed)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from crosswalk.config import load_config
from crosswalk.pipeline import build

#: Van Nuys: far from the slice's 945xx (East Bay) facilities.
ELSEWHERE = {
    "DBA_ADDRESS1": "14500 Victory Blvd",
    "DBA_CITY": "Van Nuys",
    "DBA_ZIP_CODE": "91411",
    "LATITUDE": "34.1866",
    "LONGITUDE": "-118.4503",
}


def _moved_pair(slice_dir: Path) -> tuple[str, str, pd.DataFrame]:
    """A true pair of an East Bay agency whose name only its two records carry, and HCAI's
    rows with that agency moved to Van Nuys."""
    truth = pd.read_csv(slice_dir / "truth_slice.csv", dtype=str, keep_default_na=False)
    hcai = pd.read_csv(slice_dir / "hcai_slice.csv", dtype=str, keep_default_na=False)
    names = pd.concat([truth["FACNAME"], hcai["FACILITY_NAME"]]).str.upper().value_counts()
    fit = truth[
        truth["ZIP"].str.startswith("945")
        & truth["FAC_FDR"].isin(["HOSPICE", "HOME HEALTH AGENCY"])
        & (truth["FACNAME"].str.upper() == truth["FACILITY_NAME"].str.upper())
        & (truth["FACNAME"].str.upper().map(names) == 2)
    ]
    facid, oshpd = fit.iloc[0]["FACID"], fit.iloc[0]["OSHPD_ID"]
    at = hcai["OSHPD_ID"] == oshpd
    for col, value in ELSEWHERE.items():
        hcai.loc[at, col] = value
    return facid, oshpd, hcai


def _entity_of(slice_dir: Path, hcai: pd.DataFrame, out: str) -> dict[tuple[str, str], str]:
    hcai.to_csv(slice_dir / "hcai_slice.csv", index=False)
    config = load_config(slice_dir / "slice.toml")
    for src in config.sources:
        src.identifiers = []  # blind: names and places only
    recs = build(config, slice_dir / out, progress=False).linkage.records
    return dict(
        zip(zip(recs["source"], recs["record_id"], strict=True), recs["entity_id"], strict=True)
    )


def test_a_facility_that_moved_keeps_its_unique_name(slice_dir: Path) -> None:
    facid, oshpd, hcai = _moved_pair(slice_dir)
    entity = _entity_of(slice_dir, hcai, "out")
    assert entity[("cdph", facid)] == entity[("hcai", oshpd)]


@pytest.mark.parametrize("other", ["name", "type"])
def test_a_move_needs_a_name_no_other_record_carries_and_a_compatible_type(
    slice_dir: Path, other: str
) -> None:
    facid, oshpd, hcai = _moved_pair(slice_dir)
    at = hcai["OSHPD_ID"] == oshpd
    if other == "name":
        # A third record, elsewhere again, carries the same name: a chain's name.
        twin = hcai.loc[at].copy()
        twin["OSHPD_ID"] = "999999999"
        twin["DBA_ADDRESS1"], twin["DBA_CITY"], twin["DBA_ZIP_CODE"] = (
            "100 Main St",
            "Alhambra",
            "91801",
        )
        twin["LATITUDE"], twin["LONGITUDE"] = "34.0953", "-118.1270"
        hcai = pd.concat([hcai, twin], ignore_index=True)
    else:
        hcai.loc[at, "LICENSE_CATEGORY_DESC"] = "Chronic Dialysis Clinic"
    entity = _entity_of(slice_dir, hcai, "out")
    assert entity[("cdph", facid)] != entity[("hcai", oshpd)]
