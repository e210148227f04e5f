"""When /reconcile says ``match: true``, and what a query by name alone finds (real build, real server)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from api_support import Served

from api.reconcile import (
    MATCH_FLOOR_PROBABILITY,
    MATCH_MARGIN_BITS,
    MATCH_PROBABILITY,
    required_margin,
)

Validate = Callable[[str, Any], None]


def _reconcile(served: Served, queries: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    keys = list(queries)
    for i in range(0, len(keys), 50):
        part = {k: queries[k] for k in keys[i : i + 50]}
        r = served.post("/reconcile", data={"queries": json.dumps(part)})
        assert r.status_code == 200, r.text
        out.update(r.json())
    return out


def _weight(candidate: dict[str, Any]) -> float:
    return next(f["value"] for f in candidate["features"] if f["id"] == "match_weight")


def _full_query(row: Any, limit: int) -> dict[str, Any]:
    return {
        "query": row["name"],
        "limit": limit,
        "properties": [
            {"pid": p, "v": row[p]} for p in ("address", "city", "zip") if row[p] is not None
        ],
    }


def test_a_clear_top_is_matched_though_its_runner_up_scores_above_50(served: Served) -> None:
    """A hospital's own distinct-part unit scores high too; a margin of weight decides."""
    rows = served.rows(
        "SELECT name, address, city, zip, entity_id FROM records WHERE source = 'hcai' "
        "AND facility_type LIKE '%Hospital%' AND address IS NOT NULL AND zip IS NOT NULL "
        "ORDER BY record_id"
    )
    answers = _reconcile(served, {f"q{i}": _full_query(r, 3) for i, r in enumerate(rows)})
    close = []  # runner-up above 50, top well clear of it
    for i, row in enumerate(rows):
        result = answers[f"q{i}"]["result"]
        if len(result) < 2 or result[1]["score"] < 50:
            continue
        margin = _weight(result[0]) - _weight(result[1])
        assert result[0]["match"] == (
            result[0]["score"] >= 100 * MATCH_FLOOR_PROBABILITY
            and margin >= required_margin(_weight(result[0]))
        ), (row["name"], result[:2])
        if result[0]["match"]:
            close.append(result[0]["id"] == row["entity_id"])
    assert len(close) >= 20
    assert all(close)  # each of them is the right entity


def test_the_margin_grows_as_the_top_score_falls() -> None:
    """From a score of 90 up, 3 bits; below it, also the bits the top lacks of 90."""
    at_90 = math.log2(MATCH_PROBABILITY / (1 - MATCH_PROBABILITY))
    assert required_margin(at_90 + 5) == MATCH_MARGIN_BITS
    assert required_margin(at_90) == MATCH_MARGIN_BITS
    assert required_margin(0.0) == pytest.approx(MATCH_MARGIN_BITS + at_90)  # a score of 50


def test_a_top_under_90_is_matched_only_by_the_larger_margin(served: Served) -> None:
    """HCAI's hospitals by name and city alone: tops between 50 and 90 are matched when
    their margin makes up what they lack of 90, and those matched are the right entity."""
    rows = served.rows(
        "SELECT name, city, entity_id FROM records WHERE source = 'hcai' "
        "AND facility_type LIKE '%Hospital%' AND city IS NOT NULL ORDER BY record_id"
    )
    queries = {
        f"q{i}": {"query": r["name"], "limit": 2, "properties": [{"pid": "city", "v": r["city"]}]}
        for i, r in enumerate(rows)
    }
    answers = _reconcile(served, queries)
    low = []
    for i, row in enumerate(rows):
        result = answers[f"q{i}"]["result"]
        if not result or not 50 <= result[0]["score"] < 100 * MATCH_PROBABILITY:
            continue
        margin = _weight(result[0]) - _weight(result[1]) if len(result) > 1 else math.inf
        assert result[0]["match"] == (
            len(result) > 1 and margin >= required_margin(_weight(result[0]))
        ), (row["name"], result[:2])
        if result[0]["match"]:
            low.append(result[0]["id"] == row["entity_id"])
    assert len(low) >= 5
    assert all(low)


def test_a_hospital_is_told_from_its_unit_of_another_class_by_its_name(served: Served) -> None:
    """A hospital and a unit of another class (a skilled nursing unit, a clinic) under the
    hospital's name at its address: the name (... HOSPITAL, ... MEDICAL CENTER) implies a
    hospital, so the hospital is the top candidate and matched (they tied before)."""
    pairs = served.rows(
        "SELECT h.entity_id, h.name, h.address, h.city, h.zip FROM entities h "
        "JOIN entities u ON u.name = h.name AND u.address = h.address AND u.zip = h.zip "
        "WHERE h.facility_class = 'general_acute_hospital' "
        "AND u.facility_class IN ('skilled_nursing', 'primary_care_clinic', 'dialysis', "
        "'home_health', 'hospice', 'intermediate_care') "
        "AND (h.name LIKE '%HOSPITAL%' OR h.name LIKE '%MEDICAL CENTER%') "
        "AND h.name NOT LIKE '%CLINIC%' AND h.city IS NOT NULL ORDER BY h.entity_id"
    )
    assert len(pairs) >= 5
    answers = _reconcile(served, {f"q{i}": _full_query(p, 3) for i, p in enumerate(pairs)})
    for i, pair in enumerate(pairs):
        result = answers[f"q{i}"]["result"]
        assert result[0]["id"] == pair["entity_id"], (pair["name"], result[:2])
        assert result[0]["match"], (pair["name"], result[:2])


def test_a_tie_is_never_matched_even_when_one_candidate_is_asked_for(served: Served) -> None:
    """Two entities with one name at one address, of one class: their scores tie, so neither
    is a match. (Of two classes, the type the name implies tells them apart.)"""
    twins = served.rows(
        "SELECT name, address, city, zip, COUNT(*) AS n FROM entities "
        "WHERE name IS NOT NULL AND address IS NOT NULL AND city IS NOT NULL AND zip IS NOT NULL "
        "GROUP BY name, address, city, zip, facility_class HAVING n >= 2 ORDER BY name LIMIT 40"
    )
    assert len(twins) >= 20
    for limit in (1, 3):
        answers = _reconcile(served, {f"q{i}": _full_query(t, limit) for i, t in enumerate(twins)})
        for i, twin in enumerate(twins):
            result = answers[f"q{i}"]["result"]
            assert len(result) >= min(limit, 2), twin["name"]
            assert not any(c["match"] for c in result), (twin["name"], limit, result[:2])
    # asked for 3, both twins are there with the same score
    for i, twin in enumerate(twins):
        scores = [c["score"] for c in answers[f"q{i}"]["result"] if c["name"] == twin["name"]]
        assert any(scores.count(x) >= 2 for x in scores), (twin["name"], scores)


def test_a_name_alone_finds_the_entity(served: Served, spec_validator: Validate) -> None:
    """Exact published names, no city nor ZIP: the entity is among the top 3 candidates."""
    entities = served.rows(
        "SELECT e.entity_id, e.name, (SELECT COUNT(*) FROM entities o WHERE o.name = e.name) "
        "AS sharing FROM entities e WHERE e.name IS NOT NULL ORDER BY (e.rowid * 7919) % 100003 "
        "LIMIT 300"
    )
    queries = {f"q{i}": {"query": e["name"], "limit": 3} for i, e in enumerate(entities)}
    answers = _reconcile(served, queries)
    spec_validator("reconciliation-result-batch", answers)
    found = few = 0
    for i, e in enumerate(entities):
        result = answers[f"q{i}"]["result"]
        assert result, e["name"]  # every name gets candidates
        assert not result[0]["match"]  # a name alone never decides
        if e["sharing"] <= 3:
            few += 1
            found += e["entity_id"] in [c["id"] for c in result]
    assert few >= 250
    assert found >= 0.95 * few


def test_match_finds_candidates_for_a_name_alone(served: Served) -> None:
    rows = served.rows(
        "SELECT entity_id, name FROM entities WHERE name IS NOT NULL "
        "ORDER BY (rowid * 7919) % 100003 LIMIT 40"
    )
    for row in rows:
        r = served.post("/v1/match", json={"name": row["name"], "limit": 3})
        assert r.status_code == 200, r.text
        assert r.json()["candidates"], row["name"]
