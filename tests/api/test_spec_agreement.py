"""The service refuses what /openapi.json forbids, and accepts what it allows.

Each case is one that schemathesis found answered otherwise; bench/fuzz_api.py
runs schemathesis with every check for as long as asked.
"""

from __future__ import annotations

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
    for reason in enum:
        assert served.get(f"/v1/disputes?reason={reason}", headers=bearer).status_code == 200
