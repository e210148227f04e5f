"""POST /v1/match resolves a name and address with the engine's own matcher."""

from __future__ import annotations

from api_support import Served


def test_match_ranks_the_right_entity_first_with_an_explanation(served: Served) -> None:
    rows = served.rows(
        "SELECT name, address, city, zip, entity_id FROM records WHERE source = 'hcai' "
        "AND name IS NOT NULL AND address IS NOT NULL AND zip IS NOT NULL ORDER BY record_id LIMIT 400"
    )[::40]
    assert len(rows) == 10
    for row in rows:
        body = {k: row[k] for k in ("name", "address", "city", "zip")}
        r = served.post("/v1/match", json={**body, "limit": 3})
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["query"]["name"] == row["name"]
        candidates = answer["candidates"]
        assert 1 <= len(candidates) <= 3
        top = candidates[0]
        assert top["entity_id"] == row["entity_id"], (row["name"], candidates[:2])
        assert top["entity"]["entity_id"] == row["entity_id"]
        assert 0.0 <= top["match_probability"] <= 1.0
        probabilities = [c["match_probability"] for c in candidates]
        assert probabilities == sorted(probabilities, reverse=True)
        assert len({c["entity_id"] for c in candidates}) == len(candidates)
        explanation = top["explanation"]
        assert "name" in explanation
        for detail in explanation.values():
            assert {"level", "left", "right", "weight"} <= set(detail)


def test_match_uses_identifiers_and_answers_from_a_pinned_release(served: Served) -> None:
    row = served.rows(
        "SELECT r.name, r.city, r.entity_id, i.value FROM records r JOIN identifiers i "
        "ON i.source = r.source AND i.record_id = r.record_id AND i.scheme = 'oshpd_id' "
        "WHERE r.source = 'hcai' AND r.name IS NOT NULL ORDER BY r.record_id LIMIT 1"
    )[0]
    version = served.get("/v1/release").json()["version"]
    r = served.post(
        f"/v1/match?release={version}",
        json={"name": row["name"], "city": row["city"], "identifiers": {"oshpd_id": row["value"]}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["release"] == version
    assert r.json()["candidates"][0]["entity_id"] == row["entity_id"]
    assert served.post("/v1/match?release=nope", json={"name": "x"}).status_code == 404


def test_match_with_nothing_similar_is_an_empty_list(served: Served) -> None:
    r = served.post("/v1/match", json={"name": "Qwxzvbnm Jkplmn", "zip": "00000"})
    assert r.status_code == 200
    assert r.json()["candidates"] == []


def test_a_query_without_a_type_is_compared_by_the_type_its_name_implies(served: Served) -> None:
    """A hospital's name without a facility type: the facility-type comparison reads the
    class the name implies, and the explanation says where it came from."""
    row = served.rows(
        "SELECT name, city, entity_id FROM entities WHERE facility_class = "
        "'general_acute_hospital' AND name LIKE '% HOSPITAL' AND name NOT LIKE '%CONVALESCENT%' "
        "AND city IS NOT NULL ORDER BY entity_id LIMIT 1"
    )[0]
    r = served.post("/v1/match", json={"name": row["name"], "city": row["city"], "limit": 1})
    assert r.status_code == 200, r.text
    detail = r.json()["candidates"][0]["explanation"]["facility_type"]
    assert detail["level"] == "same"
    assert detail["left"] == "general_acute_hospital (from the name)"
    assert detail["weight"] > 0
    # a type given is compared as given
    r = served.post(
        "/v1/match",
        json={"name": row["name"], "city": row["city"], "facility_type": "Hospice", "limit": 1},
    )
    detail = r.json()["candidates"][0]["explanation"]["facility_type"]
    assert detail["left"] == "Hospice" and detail["level"] == "incompatible"


def test_a_query_batch_normalizes_the_same_with_its_columns_made_beforehand(
    served: Served,
) -> None:
    """The matcher creates a query's normalized columns empty before normalizing it (pandas
    replaces columns faster than it appends them); the normalized queries are the same as
    when the normalizer appends them, one at a time and in a batch, for 300 real records."""
    import pandas as pd

    from crosswalk.matching import _normalized, query_frame

    matcher = served.app.extensions["crosswalk.registry"].latest().matcher()
    fields = ("name", "address", "city", "zip", "phone", "facility_type")
    rows = served.rows(
        f"SELECT {', '.join(fields)} FROM records ORDER BY (rowid * 7919) % 100003 LIMIT 300"
    )
    queries = [{k: row[k] for k in fields if row[k] is not None} for row in rows]
    for batch in [queries, *([q] for q in queries[:100])]:
        appended = _normalized(query_frame(batch, matcher.schemes), matcher.rules)
        made = _normalized(query_frame(batch, matcher.schemes, matcher._added), matcher.rules)
        pd.testing.assert_frame_equal(made, appended)
