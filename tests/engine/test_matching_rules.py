"""Matching rules that generalize beyond the embedded listings: a renamed facility at its
own address, a shared phone, and the like, each on the real slice of the embedded data."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crosswalk.config import Config, load_config
from crosswalk.pipeline import Linkage, link
from crosswalk.sources import load_sources
from crosswalk.stages.block import RULE_BITS, BlockParams, block_keys, candidate_pairs
from crosswalk.stages.normalize import normalize_records

SLICE = Path(__file__).resolve().parents[1] / "data" / "slice.toml"
NEW_NAME = "ZEPHYR QUILLBY WELLNESS"  # a name no record of the slice carries


@pytest.fixture(scope="module")
def blind_slice() -> tuple[Config, pd.DataFrame]:
    config = load_config(SLICE)
    for src in config.sources:
        src.identifiers = []
    return config, load_sources(config).records


def _together(linkage: Linkage, a: str, b: str) -> bool:
    recs = linkage.records.set_index(["source", "record_id"])["cluster"]
    return bool(recs[("cdph", a)] == recs[("hcai", b)])


def _linked_at(linkage: Linkage, *, alone: bool) -> list[tuple[str, str]]:
    """Linked CDPH–HCAI pairs of the same type whose address the two records hold alone
    (``alone``), or that another record of a source holds too (not ``alone``)."""
    recs = linkage.records
    holders = recs.groupby("n_address")["source"].transform("size")
    per_source = recs.groupby(["n_address", "source"])["source"].transform("size")
    pairs = linkage.pairs[linkage.pairs["status"] == "linked"]
    out = []
    for i, j in zip(pairs["l"], pairs["r"], strict=True):
        a, b = recs.iloc[i], recs.iloc[j]
        if a["n_address"] != b["n_address"] or a["n_class"] != b["n_class"]:
            continue
        if alone and holders.iloc[i] == 2 and per_source.iloc[i] == per_source.iloc[j] == 1:
            out.append((a["record_id"], b["record_id"]))
        if not alone and per_source.iloc[i] > 1 and per_source.iloc[j] > 1:
            out.append((a["record_id"], b["record_id"]))
    return sorted(out)


def _renamed(records: pd.DataFrame, hcai_id: str) -> pd.DataFrame:
    out = records.copy()
    at = (out["source"] == "hcai") & (out["record_id"] == hcai_id)
    out.loc[at, "name"] = NEW_NAME
    return out


def test_a_facility_renamed_at_an_address_it_holds_alone_stays_linked(
    blind_slice: tuple[Config, pd.DataFrame],
) -> None:
    config, records = blind_slice
    before = link(records, config)
    pairs = _linked_at(before, alone=True)
    assert len(pairs) >= 20
    for cdph_id, hcai_id in pairs[:: max(len(pairs) // 5, 1)][:5]:
        after = link(_renamed(records, hcai_id), config)
        assert _together(after, cdph_id, hcai_id), (cdph_id, hcai_id)


def test_a_renamed_record_at_an_address_others_share_is_not_linked(
    blind_slice: tuple[Config, pd.DataFrame],
) -> None:
    config, records = blind_slice
    before = link(records, config)
    pairs = _linked_at(before, alone=False)
    assert pairs
    for cdph_id, hcai_id in pairs[:3]:
        after = link(_renamed(records, hcai_id), config)
        assert not _together(after, cdph_id, hcai_id), (cdph_id, hcai_id)


def _moved(records: pd.DataFrame, name: str, city: str) -> pd.DataFrame:
    """``records`` with one record of each source named ``name`` (made of words the slice's
    names share), the HCAI one at an address in another city, far away."""
    cdph = records[records["source"] == "cdph"].iloc[[0]].copy()
    hcai = records[records["source"] == "hcai"].iloc[[-1]].copy()
    cdph["record_id"], hcai["record_id"] = "moved-c", "moved-h"
    cdph["name"] = hcai["name"] = name
    hcai["city"], hcai["zip"] = city, "96161"
    hcai["address"] = "10100 DONNER PASS RD"
    hcai["latitude"], hcai["longitude"] = 39.33, -120.18
    return pd.concat([records, cdph, hcai], ignore_index=True)


def test_a_rare_full_name_is_a_statewide_block(blind_slice: tuple[Config, pd.DataFrame]) -> None:
    config, records = blind_slice
    settings = BlockParams.of(config.blocking)
    # Every word is common in the slice; the whole name is carried by no other record.
    name = "VALLEY HOME HEALTH CARE SERVICES"
    frame = normalize_records(_moved(records, name, "TRUCKEE"))
    pairs = candidate_pairs(frame, settings)
    c, h = (int(np.flatnonzero(frame["record_id"] == rid)[0]) for rid in ("moved-c", "moved-h"))
    found = pairs[(pairs["l"] == min(c, h)) & (pairs["r"] == max(c, h))]
    assert len(found) == 1
    assert int(found["rules"].iloc[0]) == RULE_BITS["rare_name"]
    # A name carried by more records than rare_name_max_records makes no block.
    common = frame["n_name"].value_counts()
    common = common[common > settings.rare_name_max_records].index[0]
    keys = block_keys(frame, dataclasses.replace(settings, rules=("rare_name",)))
    assert not set(keys.rows.tolist()) & set(np.flatnonzero(frame["n_name"] == common).tolist())


def _with_partner_phones(records: pd.DataFrame) -> pd.DataFrame:
    """The slice with each HCAI record given the phone of its CDPH truth partner: a
    hospital's distinct-part units carry its main number in both listings."""
    truth = pd.read_csv(SLICE.parent / "truth_slice.csv", dtype=str)
    cdph = records[records["source"] == "cdph"].set_index("record_id")["phone"]
    phone_of = dict(zip(truth["OSHPD_ID"], truth["FACID"].map(cdph), strict=True))
    out = records.copy()
    hcai = out["source"] == "hcai"
    out.loc[hcai, "phone"] = out.loc[hcai, "record_id"].map(phone_of)
    return out


def test_a_phone_several_records_share_weighs_less(
    blind_slice: tuple[Config, pd.DataFrame],
) -> None:
    config, records = blind_slice
    linkage = link(_with_partner_phones(records), config)
    recs, pairs = linkage.records, linkage.pairs
    agree = pairs[pairs["lvl:phone"] == 0]
    carried = recs["n_phone"].map(recs["n_phone"].value_counts())
    shared = carried.to_numpy()[agree["l"].to_numpy()]
    bits = agree["bits:phone"].to_numpy()
    assert (shared == 2).any() and (shared >= 4).any()
    # The pair's own two records alone: the rarest a number can be; each other record
    # that carries it lowers its weight.
    assert bits[shared >= 4].max() < bits[shared == 2].min()
    assert bits[shared >= 6].max() < bits[shared == 4].min()


# ------------------------------------------------------------------ a three-department build

DATA = Path(__file__).resolve().parents[2] / "data"
#: How the derived third listing spells what HCAI spells out.
_RESPELL = {
    r"\bHOSPITAL\b": "HOSP",
    r"\bCENTER\b": "CTR",
    r"\bMEDICAL\b": "MED",
    r"\bSAINT\b": "ST.",
    r"\bAVENUE\b|\bAve\b": "AVENUE",
    r"\bStreet\b|\bSt\b": "STREET",
    r"\bBlvd\b": "BOULEVARD",
}


def _third_department(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """A third listing derived from HCAI's: every third record, re-spelled, with ids of its
    own, and the HCAI record each one was derived from."""
    hcai = pd.read_csv(DATA / "hcai_current_healthcare_facility_listing_2020-10.csv", dtype=str)
    part = hcai.iloc[::3].reset_index(drop=True)
    third = pd.DataFrame(
        {
            "LIC": [f"T{i:05d}" for i in range(len(part))],
            "NAME": part["FACILITY_NAME"].str.upper().replace(_RESPELL, regex=True),
            "STREET": part["DBA_ADDRESS1"].replace(_RESPELL, regex=True).str.upper(),
            "TOWN": part["DBA_CITY"].str.upper(),
            "POSTAL": part["DBA_ZIP_CODE"],
            "KIND": part["LICENSE_CATEGORY_DESC"],
        }
    )
    path = tmp_path / "third.csv"
    third.to_csv(path, index=False)
    return path, pd.DataFrame({"third": third["LIC"], "hcai": part["OSHPD_ID"]})


def _three_department_config(tmp_path: Path, third: Path) -> Config:
    config = load_config(DATA / "sources.toml")
    for src in config.sources:
        src.identifiers = []
        src.path = str(DATA / src.path)
    text = (
        '[[source]]\nname = "third"\npath = "PATH"\nformat = "csv"\nid_column = "LIC"\n'
        'max_per_entity = 1\n\n[source.fields]\nname = "NAME"\naddress = "STREET"\n'
        'city = "TOWN"\nzip = "POSTAL"\nfacility_type = "KIND"\n\n'
        '[source.defaults]\nstate = "CA"\n'
    ).replace("PATH", str(third))
    (tmp_path / "third.toml").write_text(text)
    config.sources.append(load_config(tmp_path / "third.toml").sources[0])
    return config


def test_a_three_department_build_keeps_one_record_per_source_and_no_chains(
    tmp_path: Path,
) -> None:
    third, origin = _third_department(tmp_path)
    config = _three_department_config(tmp_path, third)
    linkage = link(load_sources(config).records, config)
    recs = linkage.records
    # No entity holds two records of one source.
    assert not recs.duplicated(["cluster", "source"]).any()
    # No chain joins different facilities: an entity that holds a derived record and an
    # HCAI record holds the one it was derived from, or one that HCAI lists twice (the
    # same name at the same address: nothing tells the two apart).
    cluster = recs.set_index(["source", "record_id"])["cluster"]
    of_third = cluster.loc["third"].reindex(origin["third"]).to_numpy()
    hcai = recs[recs["source"] == "hcai"]
    partner = hcai.set_index("cluster")["record_id"].reindex(of_third).to_numpy()
    joined = pd.notna(partner)
    assert joined.mean() > 0.97
    facility = hcai.set_index("record_id")[["n_name", "n_address", "n_city"]]
    got = facility.loc[partner[joined]].to_numpy()
    want = facility.loc[origin["hcai"].to_numpy()[joined]].to_numpy()
    assert (got == want).all(axis=1).all()
    # Swaps between such duplicates are rare: which of two identical records pairs with
    # which is a tie.
    assert (partner[joined] != origin["hcai"].to_numpy()[joined]).mean() < 0.01


def test_an_exact_name_weighs_by_the_whole_names_frequency(
    blind_slice: tuple[Config, pd.DataFrame],
) -> None:
    """Agreeing on DIAMOND HOME HEALTH, carried by the pair alone, is as rare as agreement
    gets, though other records' names share its core (DIAMOND HOSPICE)."""
    config, records = blind_slice
    linkage = link(records, config)
    recs, pairs = linkage.records, linkage.pairs
    exact = pairs[pairs["lvl:name"] == 0]
    whole = recs["n_name"].map(recs["n_name"].value_counts()).to_numpy()[exact["l"]]
    core = recs["n_core"].map(recs["n_core"].value_counts()).to_numpy()[exact["l"]]
    bits = exact["bits:name"].to_numpy()
    alone = whole == 2
    assert (alone & (core > 2)).any()
    assert np.allclose(bits[alone & (core > 2)], bits[alone & (core == 2)].max())
    # A whole name that two other records carry too weighs less (one other is floored).
    assert bits[whole > 3].max() < bits[alone].min()
