"""The service refuses what /openapi.json forbids, and accepts what it allows.

Each case is one that schemathesis found answered otherwise; bench/fuzz_api.py
runs schemathesis with every check for as long as asked.
"""

from __future__ import annotations

import json
from typing import Any

from api_support import Served

PROBLEM = "application/problem+json"


def _problem(r: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"] == PROBLEM
    body: dict[str, Any] = r.json()
    if field is not None:
        assert body["errors"][0]["field"] == field, body
    return body


def _parameter(served: Served, path: str, method: str, name: str) -> dict[str, Any]:
    spec = served.get("/openapi.json").json()
    for param in spec["paths"][path][method]["parameters"]:
        if param["name"] == name:
            found: dict[str, Any] = param
            return found
    raise AssertionError(f"{method} {path} documents no parameter {name}")


def test_a_reason_outside_the_documented_enum_is_a_400(
    served_review: Served, bearer: dict[str, str]
) -> None:
    served = served_review
    enum = _parameter(served, "/v1/disputes", "get", "reason")["schema"]["enum"]
    _problem(served.get("/v1/disputes?reason=AAA", headers=bearer), 400, "reason")
    _problem(served.get("/v1/disputes?reason=", headers=bearer), 400, "reason")
    for reason in enum:
        assert served.get(f"/v1/disputes?reason={reason}", headers=bearer).status_code == 200


def test_an_empty_integer_parameter_is_a_400(served_review: Served, bearer: dict[str, str]) -> None:
    served = served_review
    _problem(served.get("/v1/entities?limit="), 400, "limit")
    _problem(served.get("/v1/disputes?limit=", headers=bearer), 400, "limit")
    _problem(served.get("/v1/disputes?offset=", headers=bearer), 400, "offset")
    _problem(served.get("/reconcile/suggest/entity?prefix=ala&cursor="), 400, "cursor")
    _problem(served.get("/reconcile/propose_properties?limit="), 400, "limit")
    for text in ("1.5", " 2", "+3", "1_000", "٣"):  # int() takes the last four; the spec does not
        _problem(served.get("/v1/entities", params={"limit": text}), 400, "limit")


def test_the_suggest_cursor_bound_is_documented(served: Served) -> None:
    schema = _parameter(served, "/reconcile/suggest/type", "get", "cursor")["schema"]
    top = schema["maximum"]
    assert served.get(f"/reconcile/suggest/type?prefix=h&cursor={top}").status_code == 200
    _problem(served.get(f"/reconcile/suggest/type?prefix=h&cursor={top + 1}"), 400, "cursor")


def test_a_post_to_reconcile_without_queries_or_extend_is_a_400(served: Served) -> None:
    _problem(served.post("/reconcile"), 400, "queries")
    _problem(served.post("/reconcile", data={"other": "1"}), 400, "queries")
    schema = served.get("/openapi.json").json()["paths"]["/reconcile"]["post"]["requestBody"]
    form = schema["content"]["application/x-www-form-urlencoded"]["schema"]
    assert form["anyOf"] == [{"required": ["queries"]}, {"required": ["extend"]}]
    assert served.get("/reconcile").status_code == 200  # the manifest stays a GET


def test_blank_but_present_values_are_looked_up(served: Served) -> None:
    """A value the spec allows (not empty) is looked up, and is not found: 404, not 400."""
    _problem(served.get("/reconcile/preview?id="), 400, "id")
    _problem(served.get("/reconcile/preview?id=%20"), 404)
    _problem(served.get("/v1/sources?release="), 400, "release")
    _problem(served.get("/v1/sources?release=%09"), 404)


def test_lookup_takes_one_pair_as_documented(served: Served) -> None:
    param = _parameter(served, "/v1/lookup", "get", "lookup")
    assert param["style"] == "form" and param["explode"] is True and param["required"] is True
    schema = param["schema"]
    schemes = [r["scheme"] for r in served.rows("SELECT DISTINCT scheme FROM identifiers")]
    assert sorted(schema["properties"]["scheme"]["enum"]) == sorted(schemes)
    assert len(schema["anyOf"]) == 2
    _problem(served.get("/v1/lookup?value=106010735"), 400, "scheme")
    both = served.get("/v1/lookup?scheme=oshpd_id&value=106010735&source=hcai&record_id=106010735")
    assert "not both" in _problem(both, 400, "scheme")["detail"]
    blank = served.post("/v1/lookup", json={"lookups": [{"source": "hcai", "record_id": "\x1d"}]})
    assert blank.status_code == 200 and blank.json()["results"][0]["found"] is False
    _problem(served.get("/v1/lookup?scheme=oshpd_id&value=%20"), 404)
    batch = served.post(
        "/v1/lookup",
        json={"lookups": [{"source": "hcai", "record_id": "106010735", "value": "1"}]},
    )
    _problem(batch, 400, "lookups[0].value")


def test_match_refuses_members_the_spec_does_not_list(served: Served) -> None:
    spec = served.get("/openapi.json").json()
    assert spec["components"]["schemas"]["MatchQuery"]["additionalProperties"] is False
    _problem(served.post("/v1/match", json={"name": "Alameda", "colour": "red"}), 400, "colour")
    # the documented pattern asks for a letter or digit in A-Z, 0-9, and so does the service
    pattern = spec["components"]["schemas"]["MatchQuery"]["properties"]["name"]["pattern"]
    assert pattern == "[A-Za-z0-9]"
    _problem(served.post("/v1/match", json={"name": "Ωμέγα"}), 400, "name")
    assert served.post("/v1/match", json={"name": "Ωμέγα 2"}).status_code == 200
    long_scheme = served.post(
        "/v1/match", json={"name": "Alameda", "identifiers": {"x" * 200: "1"}}
    )
    assert long_scheme.status_code == 200


def test_undo_answers_404_and_409_as_documented(
    served_review: Served, bearer: dict[str, str]
) -> None:
    served = served_review
    spec = served.get("/openapi.json").json()
    documented = spec["paths"]["/v1/decisions/{event_id}/undo"]["post"]["responses"]
    assert {"404", "409"} <= set(documented)
    _problem(served.post("/v1/decisions/999999/undo", headers=bearer), 404)
    made = served.post("/v1/disputes/3/decision", json={"verdict": "unsure"}, headers=bearer)
    event_id = made.json()["event"]["event_id"]
    assert served.post(f"/v1/decisions/{event_id}/undo", headers=bearer).status_code == 201
    _problem(served.post(f"/v1/decisions/{event_id}/undo", headers=bearer), 409)


def test_reconcile_query_members_given_as_null_are_refused(served: Served) -> None:
    """The spec types every member of a query: null is none of its types."""
    for member in ("query", "properties", "type", "limit", "type_strict"):
        query = {"query": "Alameda Hospital", "properties": [{"pid": "city", "v": "Alameda"}]}
        query[member] = None
        r = served.get("/reconcile", params={"queries": json.dumps({"q0": query})})
        _problem(r, 400, f"queries.q0.{member}")


def test_text_parameters_document_that_they_refuse_nul(served: Served) -> None:
    for name in ("q", "source", "type", "county", "cursor"):
        pattern = _parameter(served, "/v1/entities", "get", name)["schema"]["pattern"]
        assert pattern == "^[^\\u0000]*$"
        _problem(served.get("/v1/entities", params={name: "a\x00b"}), 400, name)


def test_an_invalid_extend_beside_queries_is_refused(served: Served) -> None:
    queries = json.dumps({"q0": {"query": "Alameda Hospital"}})
    r = served.get("/reconcile", params={"queries": queries, "extend": '{"ids": 1}'})
    _problem(r, 400, "extend.ids")


def test_match_members_given_as_null_are_documented_as_absent(served: Served) -> None:
    schema = served.get("/openapi.json").json()["components"]["schemas"]["MatchQuery"]
    optional = [name for name in schema["properties"] if name not in ("name", "limit")]
    assert all(schema["properties"][name]["nullable"] is True for name in optional)
    nulls = dict.fromkeys(optional)
    assert served.post("/v1/match", json={"name": "Alameda Hospital", **nulls}).status_code == 200
    assert "nullable" not in schema["properties"]["name"]
    _problem(served.post("/v1/match", json={"name": None}), 400, "name")
    _problem(served.post("/v1/match", json={"name": "Alameda", "limit": None}), 400, "limit")


def test_a_lookup_member_given_as_null_is_refused(served: Served) -> None:
    """A member present as null is present (the spec's `not required`), and not a string."""
    item = {"scheme": None, "source": "hcai", "record_id": "106010735"}
    _problem(served.post("/v1/lookup", json={"lookups": [item]}), 400, "lookups[0].scheme")
