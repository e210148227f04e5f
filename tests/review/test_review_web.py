"""The review UI and JSON endpoints through Flask's test client: access, CSRF,
throttling, scoping and inert rendering of what reviewers type."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from review_minixwalk import PASSWORDS, review_app
from review_minixwalk import csrf as _csrf
from review_minixwalk import sign_in as _login

from crosswalk.review import ReviewStore, load_constraints

HCAI_ONLY = 3  # dispute ids in the small crosswalk (see test_review_store)
CDPH_HCAI = 1


@pytest.fixture
def app(store_path: Path, mini_db: Path) -> Any:
    return review_app(store_path, mini_db)


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


def _dispute_ids(store: ReviewStore) -> dict[tuple[str, str], int]:
    return {(d.pair[0][0], d.pair[1][0]): d.dispute_id for d in store.disputes(status="all")}


def test_queue_requires_login_and_sets_safe_cookie(client: Any) -> None:
    response = client.get("/review/")
    assert response.status_code == 302 and "/review/login" in response.headers["Location"]
    page = client.get("/review/login")
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    response = _login(client)
    assert response.status_code == 302
    queue = client.get("/review/")
    assert queue.status_code == 200
    assert "left to review" in queue.text and "California Department of Public Health" in queue.text
    assert "2020-05-07" in queue.text  # extract date in the footer


def test_login_and_forms_refuse_missing_or_wrong_csrf(client: Any, store: ReviewStore) -> None:
    client.get("/review/login")
    for data in ({}, {"csrf_token": "forged"}):
        response = client.post(
            "/review/login", data={"username": "alice", "password": PASSWORDS["alice"], **data}
        )
        assert response.status_code == 400 and "CSRF" in response.text
    assert _login(client).status_code == 302
    for data in ({}, {"csrf_token": "forged" * 8}):
        response = client.post(
            f"/review/disputes/{CDPH_HCAI}/decision", data={"verdict": "same", **data}
        )
        assert response.status_code == 400
    assert store.events() == []
    page = client.get(f"/review/disputes/{CDPH_HCAI}")
    ok = client.post(
        f"/review/disputes/{CDPH_HCAI}/decision",
        data={"verdict": "same", "csrf_token": _csrf(page.text)},
    )
    assert ok.status_code == 302 and len(store.events()) == 1


def test_login_throttled_after_repeated_failures(client: Any) -> None:
    for _ in range(5):
        assert _login(client, "alice", "not the password!").status_code == 401
    throttled = _login(client, "alice")  # even the right password is refused now
    assert throttled.status_code == 429
    assert 0 < int(throttled.headers["Retry-After"]) <= 301
    assert client.get("/review/").status_code == 302  # not signed in


def test_reviewer_refused_other_department_by_url_and_api(
    client: Any, store: ReviewStore, tokens: dict[str, str]
) -> None:
    _login(client)
    assert client.get(f"/review/disputes/{HCAI_ONLY}").status_code == 403
    page = client.get(f"/review/disputes/{CDPH_HCAI}")
    refused = client.post(
        f"/review/disputes/{HCAI_ONLY}/decision",
        data={"verdict": "same", "csrf_token": _csrf(page.text)},
    )
    assert refused.status_code == 403
    alice = {"Authorization": f"Bearer {tokens['alice']}"}
    assert client.get(f"/v1/disputes/{HCAI_ONLY}", headers=alice).status_code == 403
    assert (
        client.post(
            f"/v1/disputes/{HCAI_ONLY}/decision", json={"verdict": "same"}, headers=alice
        ).status_code
        == 403
    )
    listed = client.get("/v1/disputes?status=all", headers=alice).get_json()
    assert listed["total"] == 4 and all(
        "cdph" in (d["left"]["source"], d["right"]["source"]) for d in listed["disputes"]
    )
    root = {"Authorization": f"Bearer {tokens['root']}"}
    assert client.get("/v1/disputes?status=all", headers=root).get_json()["total"] == 5
    assert client.get(f"/v1/disputes/{HCAI_ONLY}", headers=root).status_code == 200
    assert store.events() == []


def test_api_requires_a_valid_token(client: Any, tokens: dict[str, str]) -> None:
    missing = client.get("/v1/disputes")
    assert missing.status_code == 401 and "Bearer" in missing.headers["WWW-Authenticate"]
    assert (
        client.get("/v1/disputes", headers={"Authorization": "Bearer cwr_nope"}).status_code == 401
    )
    # A signed-in browser session does not authenticate the JSON API.
    _login(client)
    assert client.get("/v1/disputes").status_code == 401


def test_api_decide_and_undo_bind_constraints(
    client: Any, store_path: Path, tokens: dict[str, str]
) -> None:
    auth = {"Authorization": f"Bearer {tokens['alice']}"}
    bad = client.post(f"/v1/disputes/{CDPH_HCAI}/decision", json={"verdict": "maybe"}, headers=auth)
    assert bad.status_code == 400
    made = client.post(
        f"/v1/disputes/{CDPH_HCAI}/decision",
        json={"verdict": "different", "comment": "two campuses"},
        headers=auth,
    )
    assert made.status_code == 201
    body = made.get_json()
    assert body["dispute"]["status"] == "decided" and body["event"]["department"] == "cdph"
    assert load_constraints(store_path).cannot_link == [
        (("cdph", "140000004"), ("hcai", "106010739"))
    ]
    undone = client.post(f"/v1/decisions/{body['event']['event_id']}/undo", headers=auth)
    assert (
        undone.status_code == 201
        and undone.get_json()["event"]["undoes"] == body["event"]["event_id"]
    )
    assert not load_constraints(store_path)
    again = client.post(f"/v1/decisions/{body['event']['event_id']}/undo", headers=auth)
    assert again.status_code == 409  # already undone: a conflict with its state
    detail = client.get(f"/v1/disputes/{CDPH_HCAI}", headers=auth).get_json()
    assert [e["kind"] for e in detail["history"]] == ["decision", "undo"]
    assert detail["explanation"]["fields"]["name"]["weight"] is not None


HOSTILE = "Robert'); DROP TABLE events;-- <script>alert(1)</script> <b>bold</b> \" & ' %_"


def test_comments_stored_verbatim_and_rendered_inert(
    client: Any, store: ReviewStore, tokens: dict[str, str]
) -> None:
    _login(client)
    page = client.get(f"/review/disputes/{CDPH_HCAI}")
    client.post(
        f"/review/disputes/{CDPH_HCAI}/decision",
        data={"verdict": "unsure", "comment": HOSTILE, "csrf_token": _csrf(page.text)},
    )
    (event,) = store.events()
    assert event.comment == HOSTILE  # stored verbatim; the events table survived
    html = client.get(f"/review/disputes/{CDPH_HCAI}").text
    assert "<script>alert(1)</script>" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # Filters with SQL metacharacters are parameters, not SQL.
    response = client.get("/review/", query_string={"reason": "x' OR '1'='1", "facility_type": "%"})
    assert response.status_code == 200 and "No disputes match" in response.text
    api = client.get(
        "/v1/disputes",
        query_string={"status": "all", "department": "cdph' OR 1=1 --"},
        headers={"Authorization": f"Bearer {tokens['alice']}"},
    ).get_json()
    assert api["total"] == 0
    # A record value with markup (the small crosswalk has one) is escaped too.
    hcai = client.get("/review/?status=all").text
    assert "SUMMIT &lt;b&gt;CAMPUS&lt;/b&gt; &amp; CLINIC" in hcai


def test_pair_page_highlights_differences_and_skip_moves_on(
    client: Any, store: ReviewStore
) -> None:
    _login(client)
    html = client.get(f"/review/disputes/{CDPH_HCAI}").text
    # "MEDICAL CENTER" vs "MED CTR", "AVENUE" vs "Ave": the same to the engine, not marked
    assert re.search(r'<tr class="same">\s*<th scope="row">Name</th>', html)
    assert re.search(r'<tr class="same">\s*<th scope="row">Address</th>', html)
    assert "How the weight adds up" in html
    # the prior, then the five fields of the explanation
    assert html.count('class="step"') == 6
    first = client.get("/review/next")
    page = client.get(first.headers["Location"])
    dispute_id = int(re.search(r"/review/disputes/(\d+)", first.headers["Location"]).group(1))
    skipped = client.post(
        f"/review/disputes/{dispute_id}/decision",
        data={"verdict": "skip", "csrf_token": _csrf(page.text)},
    )
    assert f"/review/disputes/{dispute_id}" not in skipped.headers["Location"]
    assert store.events() == []


def test_review_disabled_without_store(mini_db: Path) -> None:
    import flask

    import api.review

    app = flask.Flask("no-review")
    api.review.register(app)
    client = app.test_client()
    assert client.get("/v1/disputes").status_code == 503
    assert client.get("/review/login").status_code == 503
