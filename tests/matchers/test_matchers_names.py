"""Facility-name normalization on real listings, and its properties."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from matchers.names import (
    GENERIC_WORDS,
    explode_tokens,
    name_core,
    name_tokens,
    normalize_name,
)
from tests.matchers.strategies import any_text, name_like

PROPERTY = settings(max_examples=150, deadline=None)


def _same(a: pd.Series, b: pd.Series) -> pd.Series:
    return (a == b).fillna(False).astype(bool)


# Pairs copied from the truth file (CDPH FACNAME, HCAI FACILITY_NAME of one facility).
TRUE_NAME_PAIRS = [
    ("SEBASTIAN HOSPICE CARE INC", "SEBASTIAN HOSPICE CARE, INC."),
    ("PARKWAY HILLS NURSING & REHABILITATION", "PARKWAY HILLS NURSING AND REHABILITATION"),
    ("KAISER FOUNDATION HOSPITAL SAN DIEGO HHA", "KAISER FOUNDATION HOSP SAN DIEGO HHA"),
    (
        "COMPREHENSIVE COMMUNITY HEALTH CTR INC-N HOLLYWOOD",
        "COMPREHENSIVE COMMUNITY HEALTH CTR., INC-N HOLLYWOOD",
    ),
    (
        "PLANNED PARENTHOOD MAR MONTE B STREET HEALTH CENTER",
        "PLANNED PARENTHOOD MAR MONTE B STREET HEALTH CTR.",
    ),
    ("AL SHIFA CLINIC", "AL-SHIFA CLINIC"),
    ("TRI-CARE HOME HEALTH SERVICES, INC.", "TRI - CARE HOME HEALTH SERVICES, INC."),
    ("ARCADIA HOME HEALTH SERVICES-BRANCH", "ARCADIA HOME HEALTH SERVICE - BRANCH"),
    ("G.T.S. HOME HEALTH SERVICES, INC.", "G.T.S. HOME HEALTH SERVICES, INC"),
    ("MAJESTIC HOSPICE & HOME HEALTH LLC", "MAJESTIC HOSPICE & HOME HEALTH, LLC"),
    ("CLOVIS COMMUNITY MEDICAL  CENTER", "CLOVIS COMMUNITY MEDICAL CENTER"),
    (
        "LIFELONG BROOKSIDE COMMUNITY HEALTH CENTER-SAN PABLO",
        "LIFELONG BROOKSIDE COMMUNITY HEALTH CENTER SAN PABLO",
    ),
]


def test_true_pairs_from_truth_file_normalize_equal(truth: pd.DataFrame) -> None:
    left = pd.Series([a for a, _ in TRUE_NAME_PAIRS])
    right = pd.Series([b for _, b in TRUE_NAME_PAIRS])
    assert (left.str.upper() != right.str.upper()).all()
    # the literals really are rows of the truth file
    rows = set(zip(truth["FACNAME"], truth["FACILITY_NAME"], strict=True))
    assert all(pair in rows for pair in TRUE_NAME_PAIRS)
    a, b = normalize_name(left), normalize_name(right)
    assert list(a) == list(b)


def test_core_drops_generic_words_of_real_pair(truth: pd.DataFrame) -> None:
    row = truth[truth["FACNAME"] == "KAWEAH DELTA SKILLED NURSING CENTER"].iloc[0]
    assert row["FACILITY_NAME"] == "KAWEAH DELTA SKILLED NURSING FACILITY"
    core = name_core(pd.Series([row["FACNAME"], row["FACILITY_NAME"]]))
    assert core[0] == core[1]
    assert "VINEYARD" in name_core(pd.Series(["VINEYARD POST ACUTE CARE"]))[0]
    assert (
        name_core(pd.Series(["VINEYARD POST ACUTE"]))[0]
        == name_core(pd.Series(["VINEYARD POST ACUTE CARE"]))[0]
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ST. JOSEPH'S HOSPITAL", "SAINT JOSEPHS HOSPITAL"),
        ("St Joseph Hosp", "SAINT JOSEPH HOSPITAL"),
        ("MOUNT ST. MARY'S MED CTR", "MOUNT SAINT MARYS MEDICAL CENTER"),
        ("Mt. Diablo Clinic", "MOUNT DIABLO CLINIC"),
        ("ACME LLC DBA SUNRISE HOSPICE", "SUNRISE HOSPICE"),
        ("Acme Holdings, L.L.C. d/b/a Sunrise Hospice", "SUNRISE HOSPICE"),
        ("SUNRISE HOSPICE AKA ACME", "SUNRISE HOSPICE"),
        ("Café Médical Ctr, A Medical Corporation", "CAFE MEDICAL CENTER"),
        ("ONE HEALTH CLINIC", "1 HEALTH CLINIC"),
        ("First Street Clinic", "1ST STREET CLINIC"),
        ("Ninth Street Clinic", "9TH STREET CLINIC"),
        ("Thirteenth Avenue Clinic", "13TH AVENUE CLINIC"),
        ("Twenty-First Century Home Health", "21ST CENTURY HOME HEALTH"),
        ("TWENTY FIRST CENTURY HOME HEALTH", "21ST CENTURY HOME HEALTH"),
        ("Twenty Nine Palms Clinic", "29 PALMS CLINIC"),
        ("Fifteen Mile Clinic", "15 MILE CLINIC"),
        ("Acme Home Health Co.", "ACME HOME HEALTH"),
        ("Valley SNF", "VALLEY SKILLED NURSING FACILITY"),
        ("Valley Rehab & Conv Hosp", "VALLEY REHABILITATION AND CONVALESCENT HOSPITAL"),
    ],
)
def test_rules(raw: str, expected: str) -> None:
    assert normalize_name(pd.Series([raw]))[0] == expected


def test_missing_values_become_na() -> None:
    out = normalize_name(pd.Series([None, float("nan"), pd.NA, "", "  ", "...", "SUNRISE"]))
    assert out.isna().tolist() == [True] * 6 + [False]
    assert str(out.dtype) == "string"


def test_only_legal_words_keep_a_name() -> None:
    assert normalize_name(pd.Series(["Inc."]))[0] == "INC"


def test_index_and_name_preserved() -> None:
    s = pd.Series(["a", "b", "a"], index=[10, 5, 7], name="facname")
    out = normalize_name(s)
    assert out.index.tolist() == [10, 5, 7]
    assert out.name == "facname"
    assert out[10] == out[7]


def test_real_names_normalize_to_tokens(hcai: pd.DataFrame) -> None:
    out = normalize_name(hcai["FACILITY_NAME"])
    present = out.dropna()
    assert len(present) == hcai["FACILITY_NAME"].notna().sum()
    assert present.str.fullmatch(r"[A-Z0-9]+( [A-Z0-9]+)*").all()


def test_explode_tokens_matches_name_tokens(hcai: pd.DataFrame) -> None:
    names = hcai["FACILITY_NAME"].head(500)
    exploded = explode_tokens(names)
    assert list(exploded.columns) == ["row", "token"]
    lists = name_tokens(names)
    expected = {(i, tok) for i, toks in enumerate(lists) for tok in toks}
    assert set(zip(exploded["row"], exploded["token"], strict=True)) == expected
    core = explode_tokens(names, core=True)
    assert not set(core["token"]) & (GENERIC_WORDS - set(name_core(names).str.split().explode()))


@PROPERTY
@given(st.lists(st.one_of(any_text, name_like), max_size=20))
# Real names that a second normalization changed: a legal phrase with an abbreviation
# (CDPH's business name), and a split word making a joined one.
@example(["GOOD SAMARITAN HOSP, A CALIF LIMITED PARTNERSHIP", "ROYAL HOMEHEALTH CARE, INC."])
def test_normalize_name_is_idempotent(values: list[str]) -> None:
    s = pd.Series(values, dtype=object)
    once = normalize_name(s)
    assert len(once) == len(s)
    twice = normalize_name(once)
    assert once.fillna("<NA>").tolist() == twice.fillna("<NA>").tolist()
    present = once.dropna()
    assert present.str.fullmatch(r"[A-Z0-9]+( [A-Z0-9]+)*").all()


@PROPERTY
@given(st.lists(st.one_of(any_text, name_like), max_size=20))
def test_name_core_is_idempotent_and_never_empty(values: list[str]) -> None:
    s = pd.Series(values, dtype=object)
    core = name_core(s)
    assert core.fillna("<NA>").tolist() == name_core(core).fillna("<NA>").tolist()
    # raw and normalized inputs give the same core
    assert core.fillna("<NA>").tolist() == name_core(normalize_name(s)).fillna("<NA>").tolist()
    assert (core.isna() == normalize_name(s).isna()).all()


@PROPERTY
@given(st.lists(st.one_of(any_text, name_like), max_size=20))
@example(["GOOD SAMARITAN HOSP, A CALIF LIMITED PARTNERSHIP", "ROYAL HOMEHEALTH CARE, INC."])
def test_name_and_core_in_one_pass(values: list[str]) -> None:
    """The build normalizes each distinct name once for its name and its core."""
    from matchers.names import name_and_core

    s = pd.Series(values, dtype=object)
    name, core = name_and_core(s)
    pd.testing.assert_series_equal(name, normalize_name(s))
    pd.testing.assert_series_equal(core, name_core(normalize_name(s)))
