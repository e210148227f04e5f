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
