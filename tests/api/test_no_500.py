"""Inputs that once answered 500: lone surrogates in JSON strings, integers beyond SQLite's range.

The real app over the real build of the embedded data, with a review store
holding that build's disputes and one admin reviewer (token and password).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from api_support import REVIEW_PASSWORD as PASSWORD

from api import create_app
from crosswalk.review import ReviewStore

PROBLEM = "application/problem+json"
#: One past SQLite's largest integer (and Python's sqlite3 refuses it with OverflowError).
HUGE = 2**63
LONE = '"\\ud800"'  # a JSON string holding one unpaired UTF-16 surrogate


@pytest.fixture(scope="module")
def app(crosswalk_db: Path, review_store: Path) -> Any:
    return create_app({"db": crosswalk_db, "review_store": review_store})


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


def _sign_in(client: Any) -> str:
    """Sign the admin in to the review pages; the session's CSRF token."""
    token = re.compile(r'name="csrf_token" value="([^"]+)"')
    found = token.search(client.get("/review/login").text)
    assert found is not None
    signed = client.post(
        "/review/login",
        data={"username": "root", "password": PASSWORD, "csrf_token": found.group(1)},
    )
    assert signed.status_code == 302
    found = token.search(client.get("/review/disputes/2").text)
    assert found is not None
    return found.group(1)


@pytest.fixture(scope="module")
def decision_id(app: Any, bearer: dict[str, str]) -> int:
    r = app.test_client().post(
        "/v1/disputes/1/decision", json={"verdict": "unsure"}, headers=bearer
    )
    assert r.status_code == 201, r.text
    event_id: int = r.get_json()["event"]["event_id"]
    return event_id


def _problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True)[:300])
    assert r.headers["Content-Type"] == PROBLEM
    body: dict[str, Any] = r.get_json()
    assert body["status"] == status
    return body


# (method, path, body, the field the 400 must name); the body's lone surrogate is LONE
SURROGATE_FIELDS = [
    ("POST", "/v1/match", '{"name": %s}', "name"),
    ("POST", "/v1/match", '{"name": "Alameda Hospital", "city": %s}', "city"),
    ("POST", "/v1/match", '{"name": "Alameda Hospital", "address": %s}', "address"),
    (
        "POST",
        "/v1/match",
        '{"name": "Alameda Hospital", "identifiers": {"oshpd_id": %s}}',
        "identifiers.oshpd_id",
    ),
    (
        "POST",
        "/v1/lookup",
        '{"lookups": [{"scheme": "oshpd_id", "value": %s}]}',
        "lookups[0].value",
    ),
    (
        "POST",
        "/v1/lookup",
        '{"lookups": [{"source": "hcai", "record_id": %s}]}',
        "lookups[0].record_id",
    ),
    (
        "GET",
        "/reconcile?queries=",
        '{"q0": {"query": "Alameda Hospital", "properties": [{"pid": "city", "v": %s}]}}',
        "queries.q0.properties[0].v",
    ),
    ("GET", "/reconcile?extend=", '{"ids": [%s], "properties": [{"id": "name"}]}', "extend.ids[0]"),
    (
        "POST",
        "/v1/disputes/1/decision",
        '{"verdict": "unsure", "comment": %s}',
        "comment",
    ),
]


@pytest.mark.parametrize(("method", "path", "template", "field"), SURROGATE_FIELDS)
def test_a_lone_surrogate_is_a_400_naming_the_field(
    client: Any, bearer: dict[str, str], method: str, path: str, template: str, field: str
) -> None:
    text = template % LONE
    if method == "GET":
        r = client.get(path + text, headers=bearer)
    else:
        r = client.post(path, data=text, content_type="application/json", headers=bearer)
    body = _problem(r, 400)
    assert body["errors"][0]["field"] == field
    assert "surrogate" in body["detail"]


def test_a_lone_surrogate_in_a_json_key_or_the_undo_comment_is_a_400(
    client: Any, bearer: dict[str, str], decision_id: int
) -> None:
    r = client.post(
        f"/v1/decisions/{decision_id}/undo",
        data='{"comment": ' + LONE + "}",
        content_type="application/json",
        headers=bearer,
    )
    assert _problem(r, 400)["errors"][0]["field"] == "comment"
    key = client.post(
        "/v1/match", data='{"name": "x", ' + LONE + ': "y"}', content_type="application/json"
    )
    assert "surrogate" in _problem(key, 400)["detail"]
    # a surrogate pair is one character, and is accepted
    pair = client.post(
        "/v1/match",
        data='{"name": "Alameda Hospital \\ud83c\\udfe5"}',
        content_type="application/json",
    )
    assert pair.status_code == 200, pair.text


def test_a_lone_surrogate_in_a_reconcile_form_post_is_a_400(client: Any) -> None:
    queries = json.dumps({"q0": {"query": "x", "properties": [{"pid": "zip", "v": "\ud800"}]}})
    r = client.post("/reconcile", data={"queries": queries})
    assert _problem(r, 400)["errors"][0]["field"] == "queries.q0.properties[0].v"


def test_the_review_form_keeps_a_comment_of_undecodable_bytes_without_500(
    client: Any, review_store: Path
) -> None:
    """A form carries bytes, not JSON escapes: the UTF-8 of a lone surrogate is replaced, not kept."""
    csrf = _sign_in(client)
    r = client.post(
        "/review/disputes/2/decision",
        data=f"verdict=unsure&comment=%ED%A0%80&csrf_token={csrf}",
        content_type="application/x-www-form-urlencoded",
    )
    assert r.status_code == 302, r.text[:300]
    with ReviewStore(review_store) as store:
        comments = [e.comment for e in store.events() if e.dispute_id == 2]
    assert comments and "\ud800" not in comments[-1]


# ---------------------------------------------------------------------- integers beyond 2^63 - 1


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/v1/disputes/{HUGE}"),
        ("POST", f"/v1/disputes/{HUGE}/decision"),
        ("POST", f"/v1/decisions/{HUGE}/undo"),
        ("GET", f"/v1/disputes/{10**40}"),
    ],
)
def test_an_id_beyond_sqlite_is_a_404(
    client: Any, bearer: dict[str, str], method: str, path: str
) -> None:
    r = client.open(path, method=method, json={"verdict": "same"}, headers=bearer)
    _problem(r, 404)


def test_an_offset_beyond_sqlite_is_a_400_naming_it(client: Any, bearer: dict[str, str]) -> None:
    r = client.get(f"/v1/disputes?offset={HUGE}", headers=bearer)
    assert _problem(r, 400)["errors"][0]["field"] == "offset"
    largest = client.get(f"/v1/disputes?offset={HUGE - 1}", headers=bearer)
    assert largest.status_code == 200 and largest.get_json()["disputes"] == []


def test_review_pages_with_huge_ids_and_pages_answer_4xx(client: Any) -> None:
    csrf = _sign_in(client)
    assert client.get(f"/review/disputes/{HUGE}").status_code == 404
    undo = client.post(f"/review/events/{HUGE}/undo", data={"csrf_token": csrf})
    assert undo.status_code == 404
    huge_page = client.get(f"/review/?page={HUGE}")
    assert huge_page.status_code == 400 and "page" in huge_page.text
    assert client.get("/review/?page=2").status_code == 200
