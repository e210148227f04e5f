"""Facility classes, type compatibility and comparator primitives."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz import fuzz
from rapidfuzz.distance import JaroWinkler, Levenshtein

from crosswalk.config import load_config
from crosswalk.sources import load_sources
from crosswalk.stages.block import BlockParams, candidate_pairs
from crosswalk.stages.compare import compare, compared_columns, comparisons_for
from crosswalk.stages.kernel.columns import Columns
from crosswalk.stages.model import random_pairs
from crosswalk.stages.normalize import normalize_records
from matchers.compare import (
    SIMILARITY_METHODS,
    as_texts,
    exact,
    haversine_m,
    missing,
    similarity,
    token_jaccard,
)
from matchers.facility_types import (
    FACILITY_CLASSES,
    facility_class,
    name_implied_class,
    type_compatibility,
)
from tests.matchers.strategies import any_text, name_like

PROPERTY = settings(max_examples=100, deadline=None)

# LICENSE_CATEGORY_DESC (HCAI) and FAC_FDR (CDPH) values of one facility type.
SAME_TYPE_ACROSS_PUBLISHERS = [
    ("General Acute Care Hospital", "GENERAL ACUTE CARE HOSPITAL", "general_acute_hospital"),
    ("Acute Psychiatric Hospital", "ACUTE PSYCHIATRIC HOSPITAL", "psychiatric_hospital"),
    (
        "Chemical Dep. Recovery Hospital",
        "CHEMICAL DEPENDENCY RECOVERY HOSPITAL",
        "chemical_dependency_hospital",
    ),
    ("Skilled Nursing Facility", "SKILLED NURSING FACILITY", "skilled_nursing"),
    ("ICF/Dev. Disabled", "INTERMEDIATE CARE FACILITY-DD/H/N/CN/IID", "intermediate_care"),
    ("Home Health Agency", "HOME HEALTH AGENCY", "home_health"),
    ("Hospice", "HOSPICE", "hospice"),
    ("Hospice Facility", "HOSPICE FACILITY", "hospice_facility"),
    ("Community Clinic", "PRIMARY CARE CLINIC", "primary_care_clinic"),
    ("Free Clinic", "PRIMARY CARE CLINIC", "primary_care_clinic"),
    ("Surgical Clinic", "SURGICAL CLINIC", "surgical_clinic"),
    ("Chronic Dialysis Clinic", "CHRONIC DIALYSIS CLINIC", "dialysis"),
    ("Rehabilitation Clinic", "REHABILITATION CLINIC", "rehabilitation_clinic"),
    ("Psychology Clinic", "PSYCHOLOGY CLINIC", "psychology_clinic"),
    ("Congregate Living Health Facility", "CONGREGATE LIVING HEALTH FACILITY", "congregate_living"),
    ("Alternative Birthing Center", "ALTERNATIVE BIRTHING CENTER", "alternative_birthing"),
]


def test_real_type_labels_map_to_one_class(hcai: pd.DataFrame, truth: pd.DataFrame) -> None:
    hcai_labels = set(hcai["LICENSE_CATEGORY_DESC"].dropna())
    cdph_labels = set(truth["FAC_FDR"].dropna())
    for a, b, expected in SAME_TYPE_ACROSS_PUBLISHERS:
        assert a in hcai_labels
        got = facility_class(pd.Series([a, b]))
        assert got.tolist() == [expected, expected], (a, b)
    assert {b for _, b, _ in SAME_TYPE_ACROSS_PUBLISHERS} <= cdph_labels
    # every HCAI category is classified (none falls to "other")
    classes = facility_class(hcai["LICENSE_CATEGORY_DESC"])
    assert classes.notna().all()
    assert not (classes == "other").any()


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("Home Health Agency", "home_health"),
        ("HHA", "home_health"),
        ("Short Term Hospital", "general_acute_hospital"),
        ("Critical Access Hospital", "general_acute_hospital"),
        ("ESRD", "dialysis"),
        ("End Stage Renal Disease Facility", "dialysis"),
        ("Nursing Facility", "skilled_nursing"),
        ("Skilled Nursing Facility/Nursing Facility (Dually Certified)", "skilled_nursing"),
        ("ASC", "surgical_clinic"),
        ("Ambulatory Surgical Center", "surgical_clinic"),
        ("Federally Qualified Health Center", "primary_care_clinic"),
        ("Rural Health Clinic", "primary_care_clinic"),
        ("ICF/IID", "intermediate_care"),
        ("Adult Day Health Care", "adult_day_health"),
        ("PEDIATRIC DAY HEALTH & RESPITE CARE FACILITY", "pediatric_day_health"),
        ("Correctional Treatment Center", "correctional_treatment"),
        ("Referral Agency", "referral_agency"),
        ("Psychiatric Health Facility", "psychiatric_hospital"),
        ("Inpatient Rehabilitation Facility", "rehabilitation_hospital"),
        # wordings of national hospital listings and other taxonomies
        ("PSYCHIATRIC", "psychiatric_hospital"),
        ("Psychiatric", "psychiatric_hospital"),
        ("CHILDREN", "childrens_hospital"),
        ("Childrens", "childrens_hospital"),
        ("Children's Hospital", "childrens_hospital"),
        ("REHABILITATION", "rehabilitation_hospital"),
        ("LONG TERM CARE", "long_term_care_hospital"),
        ("Long-Term Care Hospital", "long_term_care_hospital"),
        ("Hospital - Long Term", "long_term_care_hospital"),
        ("LTCH", "long_term_care_hospital"),
        ("MILITARY", "general_acute_hospital"),
        ("CRITICAL ACCESS", "general_acute_hospital"),
        ("Acute Care - Department of Defense", "general_acute_hospital"),
        ("WOMEN", "general_acute_hospital"),
        ("Post-Acute Care", "skilled_nursing"),
        ("Assisted Living Facility", "assisted_living"),
        ("Residential Care Facility for the Elderly", "assisted_living"),
        ("Community Mental Health Center", "psychology_clinic"),
        ("Urgent Care Center", "primary_care_clinic"),
        ("Womens Health Clinic", "primary_care_clinic"),
        ("OTHER", "other"),
        ("SPECIAL", "other"),
        ("Laboratory", "other"),
    ],
)
def test_publisher_labels(label: str, expected: str) -> None:
    assert facility_class(pd.Series([label]))[0] == expected


def test_missing_class_is_na() -> None:
    assert facility_class(pd.Series([None, "", "  "])).isna().all()


@PROPERTY
@given(st.lists(any_text, max_size=20))
def test_facility_class_in_vocabulary_and_idempotent(values: list[str]) -> None:
    out = facility_class(pd.Series(values, dtype=object))
    assert set(out.dropna()) <= set(FACILITY_CLASSES)
    assert out.fillna("<NA>").tolist() == facility_class(out).fillna("<NA>").tolist()


def test_type_compatibility_levels() -> None:
    a = pd.Series(["hospice", "hospice", "hospice", "skilled_nursing", None, "other"])
    b = np.array(
        ["hospice", "hospice_facility", "home_health", "intermediate_care", "hospice", "hospice"],
        dtype=object,
    )
    out = type_compatibility(a, b)
    assert out.dtype == np.int8
    assert out.tolist() == [0, 1, 2, 1, -1, -1]


@PROPERTY
@given(
    st.lists(
        st.tuples(
            st.sampled_from([*FACILITY_CLASSES, None]),
            st.sampled_from([*FACILITY_CLASSES, None]),
        ),
        max_size=30,
    )
)
def test_type_compatibility_symmetric(pairs: list[tuple[str | None, str | None]]) -> None:
    a = np.array([p[0] for p in pairs], dtype=object)
    b = np.array([p[1] for p in pairs], dtype=object)
    ab, ba = type_compatibility(a, b), type_compatibility(b, a)
    assert ab.tolist() == ba.tolist()
    assert set(ab.tolist()) <= {-1, 0, 1, 2}


def test_similarity_on_real_name_pair() -> None:
    a = ["KAISER FOUNDATION HOSPITAL SAN DIEGO HHA", None, ""]
    b = ["KAISER FOUNDATION HOSP SAN DIEGO HHA", "X", "Y"]
    for method in SIMILARITY_METHODS:
        out = similarity(a, b, method)
        assert out.dtype == np.float64
        assert 0.8 < out[0] < 1.0
        assert math.isnan(out[1]) and math.isnan(out[2])
    assert similarity(["ABC"], ["ABC"], "levenshtein")[0] == 1.0
    with pytest.raises(ValueError):
        similarity(["A"], ["B"], "nope")
    with pytest.raises(ValueError):
        similarity(["A"], ["B", "C"])


_SYMMETRIC = ("jaro_winkler", "levenshtein", "token_set", "token_sort", "ratio")


@PROPERTY
@given(
    st.lists(
        st.tuples(st.one_of(any_text, name_like), st.one_of(any_text, name_like)), max_size=15
    ),
    st.sampled_from(SIMILARITY_METHODS),
)
def test_similarity_range_and_symmetry(pairs: list[tuple[str, str]], method: str) -> None:
    a = pd.Series([p[0] for p in pairs], dtype=object)
    b = pd.Series([p[1] for p in pairs], dtype=object)
    ab = similarity(a, b, method)
    assert len(ab) == len(pairs)
    present = ~missing(a, b)
    assert np.all((ab[present] >= 0.0) & (ab[present] <= 1.0))
    assert np.isnan(ab[~present]).all()
    if method in _SYMMETRIC:
        assert np.allclose(ab, similarity(b, a, method), equal_nan=True)
    self_present = ~missing(a, a)
    assert np.all(similarity(a, a, method)[self_present] == 1.0)


_RAPIDFUZZ = {
    "jaro_winkler": lambda a, b: JaroWinkler.normalized_similarity(a, b),
    "levenshtein": lambda a, b: Levenshtein.normalized_similarity(a, b),
    "token_set": lambda a, b: fuzz.token_set_ratio(a, b) / 100,
    "token_sort": lambda a, b: fuzz.token_sort_ratio(a, b) / 100,
    "partial": lambda a, b: fuzz.partial_ratio(a, b) / 100,
    "ratio": lambda a, b: fuzz.ratio(a, b) / 100,
}

_SPACES = st.text(
    st.sampled_from(" \t\n\x0b\x0c\r\x1c\x1f\x85\xa0\u2003\u3000"), min_size=1, max_size=2
)
_SPACED = st.lists(
    st.one_of(
        st.sampled_from(["ST", "JOSEPH", "HOSP", "Ä", "b", "a", "B", "\u0100", "\U00010000"]),
        _SPACES,
    ),
    max_size=8,
).map("".join)


@PROPERTY
@given(
    st.lists(st.tuples(st.one_of(any_text, _SPACED), st.one_of(any_text, _SPACED)), max_size=15),
    st.sampled_from(SIMILARITY_METHODS),
    st.booleans(),
)
def test_similarity_is_rapidfuzz_score(
    pairs: list[tuple[str, str]], method: str, many: bool
) -> None:
    """Each method gives rapidfuzz's own score of the pair (scored once per distinct pair, and
    ``token_sort`` from words sorted once per value), on few pairs and on a large batch."""
    want = np.array([_RAPIDFUZZ[method](x, y) for x, y in pairs], dtype=np.float64)
    if many:  # past the batch sizes from which pairs are deduplicated and threads used
        copies = 25_000 // max(len(pairs), 1) + 1
        pairs, want = pairs * copies, np.tile(want, copies)
    a = [p[0] for p in pairs]
    b = [p[1] for p in pairs]
    got = similarity(a, b, method)
    present = ~missing(a, b)
    assert np.allclose(got[present], want[present], rtol=0, atol=1e-12)


def test_exact_and_missing() -> None:
    a = pd.Series(["A", None, pd.NA, "", "B"], dtype=object)
    b = pd.Series(["A", None, pd.NA, "", "C"], dtype="string")
    assert exact(a, b).tolist() == [True, False, False, False, False]
    assert missing(a, b).tolist() == [False, True, True, True, False]


def test_blank_text_is_missing_for_every_method() -> None:
    """White space alone is no value: never compared, so never scored 0 against itself."""
    a = pd.Series([" ", "\t ", "A B", " A "], dtype=object)
    assert missing(a, a).tolist() == [True, True, False, False]
    assert exact(a, a).tolist() == [False, False, True, True]
    for method in SIMILARITY_METHODS:
        assert np.isnan(similarity(a, a, method)[:2]).all(), method
        assert (similarity(a, a, method)[2:] == 1.0).all(), method


def test_token_jaccard() -> None:
    out = token_jaccard(["A B C", "A", None, "X X"], ["A B", "B", "A", "X"])
    assert out[0] == pytest.approx(2 / 3)
    assert out[1] == 0.0
    assert math.isnan(out[2])
    assert out[3] == 1.0


def test_haversine(hcai: pd.DataFrame) -> None:
    lat = pd.to_numeric(hcai["LATITUDE"], errors="coerce").head(50)
    lon = pd.to_numeric(hcai["LONGITUDE"], errors="coerce").head(50)
    zero = haversine_m(lat, lon, lat, lon)
    assert np.nanmax(zero) == 0.0
    # one degree of latitude is about 111.2 km
    d = haversine_m([37.0], [-122.0], [38.0], [-122.0])[0]
    assert 111_000 < d < 111_400
    assert math.isnan(haversine_m([None], [1.0], [2.0], [3.0])[0])
    assert math.isnan(haversine_m(["x"], [1.0], [2.0], [3.0])[0])
    # One point against several, some without coordinates: broadcast as numpy does.
    many = haversine_m([37.0], [-122.0], [38.0, None, 37.0], [-122.0, -122.0, -122.0])
    assert 111_000 < many[0] < 111_400 and math.isnan(many[1]) and many[2] == 0.0


@PROPERTY
@given(
    st.lists(st.tuples(name_like, name_like), min_size=1, max_size=30),
    st.sampled_from(SIMILARITY_METHODS),
    st.sampled_from([0.6, 0.8, 0.85, 0.92, 0.95, 0.995]),
)
def test_score_cutoff_keeps_every_score_from_the_cutoff(
    pairs: list[tuple[str, str]], method: str, cutoff: float
) -> None:
    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    full = similarity(a, b, method)
    cut = similarity(a, b, method, score_cutoff=cutoff)
    assert np.array_equal(np.isnan(full), np.isnan(cut))
    at = full >= cutoff
    assert np.array_equal(cut[at], full[at])
    assert np.all(cut[~np.isnan(full) & ~at] < cutoff)


def test_texts_taken_from_one_conversion_compare_by_code() -> None:
    t = as_texts(pd.Series(["A", "B", None, " ", "A", "C"], dtype="string"))
    left, right = t.take(np.array([0, 1, 2, 3, 4, 0])), t.take(np.array([4, 1, 2, 3, 0, 5]))
    assert left.values is right.values
    assert left.text.tolist() == ["A", "B", "", " ", "A", "A"]
    expected = [True, True, False, False, True, False]
    assert exact(left, right).tolist() == expected
    # the same values converted separately compare as text
    assert exact(as_texts(list(left.text)), as_texts(list(right.text))).tolist() == expected
    assert missing(left, right).tolist() == [False, False, True, True, False, False]


def _full_name(left: Columns, right: Columns) -> np.ndarray:
    """``name`` levels with every similarity computed on every pair, without cutoffs."""
    ln, rn = left.text("n_name"), right.text("n_name")
    lc, rc = left.text("n_core"), right.text("n_core")
    lo, ro = left.text("n_other"), right.text("n_other")
    strong = np.fmax(similarity(lc, rc, "jaro_winkler"), similarity(lc, rc, "token_sort"))
    alt = np.fmax(similarity(lo, rn, "token_sort"), similarity(ln, ro, "token_sort"))
    strong = np.fmax(strong, np.nan_to_num(alt, nan=0.0))
    subset = np.fmax(similarity(lc, rc, "token_set"), 0.0)
    level = np.full(len(ln), 6, dtype="int8")
    level[(strong >= 0.6) | (subset >= 0.8)] = 5
    level[strong >= 0.8] = 4
    level[subset >= 0.995] = 3
    level[strong >= 0.92] = 2
    level[exact(lc, rc)] = 1
    level[exact(ln, rn)] = 0
    level[ln.missing | rn.missing] = -1
    return level


def _full_location(left: Columns, right: Columns) -> np.ndarray:
    """``location`` levels with the street similarity computed on every pair, without cutoff."""
    la, ra = left.text("n_address"), right.text("n_address")
    same_zip = exact(left.text("n_zip"), right.text("n_zip"))
    same_city = exact(left.text("n_city"), right.text("n_city"))
    dist = haversine_m(
        left.number("n_lat"), left.number("n_lon"), right.number("n_lat"), right.number("n_lon")
    )
    near = np.nan_to_num(dist, nan=np.inf) <= 150.0
    region = np.where(
        np.isnan(dist),
        exact(left.text("n_zip3"), right.text("n_zip3")),
        np.nan_to_num(dist, nan=np.inf) <= 50_000.0,
    )
    same_place = same_zip | same_city
    same_number = exact(left.text("n_number"), right.text("n_number"))
    street_sim = np.nan_to_num(
        similarity(left.text("n_street"), right.text("n_street"), "jaro_winkler"), nan=0.0
    )
    same_addr = exact(la, ra)
    level = np.full(len(la), 6, dtype="int8")
    level[region] = 5
    level[same_city] = 4
    level[same_zip] = 3
    level[near | ((street_sim >= 0.95) & same_place)] = 2
    same_street_name = exact(left.text("n_street_name"), right.text("n_street_name"))
    fuzzy = same_number & ((street_sim >= 0.85) | same_street_name) & same_place
    level[fuzzy | (same_addr & ~same_place)] = 1
    level[same_addr & same_place] = 0
    level[la.missing | ra.missing] = -1
    return level


def test_cascade_gives_the_levels_of_the_full_computation(embedded_config_path: Path) -> None:
    """Names and streets are scored only where the level is still undecided, with cutoffs:
    on the embedded candidates and random pairs the levels are those of scoring every pair."""
    config = load_config(embedded_config_path)
    frame = normalize_records(load_sources(config).records.reset_index(drop=True))
    limits = {s.name: s.max_per_entity for s in config.sources}
    pairs = candidate_pairs(
        frame, BlockParams.of(config.blocking), {k: v != 1 for k, v in limits.items()}
    )
    within = frozenset(k for k, v in limits.items() if v != 1)
    rl, rr = random_pairs(frame["source"].to_numpy(), 50_000, config.model.seed, within)
    sub = frame[compared_columns(frame)]
    shared = Columns(sub).prepared(list(sub.columns))
    comparisons = comparisons_for(frame)
    for lpos, rpos in ((pairs["l"].to_numpy(), pairs["r"].to_numpy()), (rl, rr)):
        left, right = Columns(sub.iloc[lpos]), Columns(sub.iloc[rpos])
        got = compare(left, right, comparisons)
        assert np.array_equal(got["name"].to_numpy(), _full_name(left, right))
        assert np.array_equal(got["location"].to_numpy(), _full_location(left, right))
        # most levels occur: the cascade is exercised
        assert got["name"].nunique() >= 5
        assert got["location"].nunique() >= 5
        # the rows taken from one conversion of the records give the same levels
        taken = compare(shared.take(lpos), shared.take(rpos), comparisons)
        pd.testing.assert_frame_equal(taken, got)
        # a few pairs at a time (one API query) are scored without bands or distinct pairs
        few = pd.concat(
            [
                compare(
                    shared.take(lpos[i : min(i + 37, 2_000)]),
                    shared.take(rpos[i : min(i + 37, 2_000)]),
                    comparisons,
                )
                for i in range(0, 2_000, 37)
            ],
            ignore_index=True,
        )
        pd.testing.assert_frame_equal(few, got.iloc[:2_000])


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.text(alphabet="aé€ 0", max_size=3)), max_size=30),
    st.sampled_from(["string[pyarrow]", "object"]),
)
def test_unique_text_factorizes_as_pandas_does(values: list[str | None], dtype: str) -> None:
    """Arrow text is factorized by Arrow, other text by pandas: the same codes and values."""
    from matchers._text import unique_text

    series = pd.Series(values, dtype=dtype)
    codes, uniques = unique_text(series)
    want_codes, want_uniques = pd.factorize(series, use_na_sentinel=True)
    np.testing.assert_array_equal(codes, want_codes)
    assert uniques.type == pa.large_string()
    assert uniques.to_pylist() == list(want_uniques)


def test_name_implied_class_reads_the_kind_a_name_names() -> None:
    names = pd.Series(
        [
            "SUNNY HILLS HOSPITAL",
            "SUNNY HILLS MEDICAL CENTER",
            "SUNNY HILLS CONVALESCENT HOSPITAL",  # a convalescent hospital is a nursing home
            "SUNNY HILLS HOSPITAL D/P SNF",  # a hospital and a nursing unit: neither
            "SUNNY HILLS HOSPITAL RURAL HEALTH CLINIC",  # a hospital's clinic: neither
            "SUNNY HILLS NURSING CENTER",
            "SUNNY HILLS HOSPICE",
            "SUNNY HILLS FAMILY CLINIC",
            "SUNNY HILLS REHABILITATION HOSPITAL",
            "SUNNY HILLS D/P APH",
            "GENERAL WOMEN'S CHILDREN'S GROUP",  # bare wordings say nothing in a name
            "ADVENTIST HEALTH REEDLEY",
            None,
        ],
        dtype="string",
    )
    assert name_implied_class(names).astype(object).fillna("-").tolist() == [
        "general_acute_hospital",
        "general_acute_hospital",
        "skilled_nursing",
        "-",
        "-",
        "skilled_nursing",
        "hospice",
        "primary_care_clinic",
        "rehabilitation_hospital",
        "psychiatric_hospital",
        "-",
        "-",
        "-",
    ]


def test_a_type_column_is_classed_as_before_the_name_rules() -> None:
    """facility_class still reads bare wordings and the first rule wins (no clash rule)."""
    types = pd.Series(["PSYCHIATRIC", "HOSPITAL CLINIC", "CHILDREN"], dtype="string")
    assert facility_class(types).tolist() == [
        "psychiatric_hospital",
        "general_acute_hospital",
        "childrens_hospital",
    ]
