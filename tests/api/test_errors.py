"""Every error is RFC 9457 problem+json, and no input crashes or hangs a worker."""

from __future__ import annotations

import json
import socket
from typing import Any

import requests
from api_support import Served, serve_app, stop_server

from api import ApiConfig, create_app

PROBLEM = "application/problem+json"


def _problem(r: requests.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"] == PROBLEM
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    assert body["title"] and body["type"]
    assert "Traceback" not in r.text
    return body


def test_400_names_the_field(served: Served) -> None:
    body = _problem(served.get("/v1/entities", params={"limit": "many"}), 400)
    assert body["errors"] == [
        {"field": "limit", "in": "query", "detail": body["errors"][0]["detail"]}
    ]
    assert "limit" in body["detail"]
    match = _problem(served.post("/v1/match", json={"name": "X", "latitude": 200}), 400)
    assert match["errors"][0]["field"] == "latitude"
    assert match["errors"][0]["in"] == "body"
    unknown = _problem(served.post("/v1/match", json={"name": "X", "colour": "red"}), 400)
    assert unknown["errors"][0]["field"] == "colour"
    nameless = _problem(served.post("/v1/match", json={"city": "Alameda"}), 400)
    assert nameless["errors"][0]["field"] == "name"
    queries = _problem(served.get("/reconcile", params={"queries": '{"q0": {"limit": 3}}'}), 400)
    assert queries["errors"][0]["field"] == "queries.q0.query"


def test_404_and_405(served: Served) -> None:
    _problem(served.get("/v1/entities/F_NO_SUCH"), 404)
    _problem(served.get("/v1/no-such-endpoint"), 404)
    r = requests.delete(served.url + "/v1/entities/F00001", timeout=10)
    body = _problem(r, 405)
    assert "GET" in r.headers["Allow"]
    assert "DELETE" in body["detail"]
    _problem(requests.put(served.url + "/v1/match", json={}, timeout=10), 405)


def test_413_for_an_oversized_body(served: Served) -> None:
    huge = b'{"lookups": [' + b'{"scheme": "npi", "value": "1"},' * 200_000 + b"{}]}"
    assert len(huge) > ApiConfig().max_body
    r = served.post("/v1/lookup", data=huge, headers={"Content-Type": "application/json"})
    _problem(r, 413)
    form = served.post("/reconcile", data={"queries": "x" * (ApiConfig().max_body + 10)})
    _problem(form, 413)


def test_415_for_the_wrong_media_type(served: Served) -> None:
    _problem(
        served.post("/v1/lookup", data="scheme=npi", headers={"Content-Type": "text/plain"}), 415
    )
    _problem(served.post("/v1/match", data='{"name": "x"}'), 415)
    _problem(
        served.post("/reconcile", data=b"{}", headers={"Content-Type": "application/octet-stream"}),
        415,
    )


def test_hostile_bodies_get_clean_4xx(served: Served) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    r = served.post("/v1/lookup", data=deep, headers={"Content-Type": "application/json"})
    assert _problem(r, 400)["errors"][0]["field"] == "body"
    deep_object = '{"a":' * 5000 + "1" + "}" * 5000
    _problem(
        served.post("/v1/match", data=deep_object, headers={"Content-Type": "application/json"}),
        400,
    )
    deep_queries = '{"q":' * 3000 + "{}" + "}" * 3000
    _problem(served.post("/reconcile", data={"queries": deep_queries}), 400)
    bad_utf8 = b'{"name": "\xff\xfe caf\xc3"}'
    r = served.post("/v1/match", data=bad_utf8, headers={"Content-Type": "application/json"})
    assert "UTF-8" in _problem(r, 400)["detail"]
    r = served.post(
        "/reconcile",
        data=b"queries=%FF%FE",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    _problem(r, 400)
    _problem(served.post("/v1/lookup", data="{", headers={"Content-Type": "application/json"}), 400)
    _problem(
        served.post("/v1/lookup", data="NaN", headers={"Content-Type": "application/json"}), 400
    )
    _problem(served.post("/v1/lookup", data="", headers={"Content-Type": "application/json"}), 400)
    _problem(served.post("/v1/lookup", json=[1, 2]), 400)
    # the server still answers normally afterwards
    assert served.get("/healthz").status_code == 200


def test_a_declared_but_unsent_body_does_not_hang_a_worker(served: Served) -> None:
    host, port = served.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 50000000000\r\n\r\n{"
        )
        sock.settimeout(10)
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:100]
    assert served.get("/healthz").status_code == 200


def test_500_has_no_stack_trace(crosswalk_db: object, served: Served) -> None:
    """An unexpected exception in any view (here, a route added for the test) is a bare 500."""
    app = create_app(ApiConfig(db=served.db))

    @app.get("/v1/explode")
    def explode() -> str:
        raise RuntimeError("secret internal detail /etc/passwd")

    url, server, thread = serve_app(app)
    try:
        r = requests.get(url + "/v1/explode", timeout=10)
        body = _problem(r, 500)
        assert "secret" not in r.text and "RuntimeError" not in r.text
        assert set(body) <= {"type", "title", "status", "detail", "instance"}
        assert requests.get(url + "/healthz", timeout=10).status_code == 200
    finally:
        stop_server(server, thread)


def test_review_style_abort_is_rendered_as_problem_json(served: Served) -> None:
    """Blueprints that call abort(400, description=...) get the app-wide problem handler."""
    from flask import abort

    app = create_app(ApiConfig(db=served.db))

    @app.get("/v1/aborts")
    def aborts() -> str:
        abort(400, description="decision: must be one of match, non_match.")

    url, server, thread = serve_app(app)
    try:
        body = _problem(requests.get(url + "/v1/aborts", timeout=10), 400)
        assert body["detail"] == "decision: must be one of match, non_match."
    finally:
        stop_server(server, thread)


def _raw_reply(served: Served, request: bytes) -> tuple[str, dict[str, str], bytes]:
    """Send raw bytes on one connection; the status line, headers and body of the reply."""
    host, port = served.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while True:  # waitress closes the connection after its own errors
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
    return status, headers, body


def test_a_body_beyond_the_server_limit_is_refused_as_problem_json(served: Served) -> None:
    limit = 4 * ApiConfig().max_body  # waitress's own limit (see api.make_server)
    status, headers, body = _raw_reply(
        served,
        b"POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {limit + 1}\r\n\r\n".encode(),
    )
    assert status.startswith("HTTP/1.1 413"), status
    assert headers["content-type"] == PROBLEM
    problem = json.loads(body)
    assert problem["status"] == 413 and problem["title"] == "Request Entity Too Large"
    assert str(limit) in problem["detail"]
    assert problem["instance"] == "/v1/lookup"
    assert int(headers["content-length"]) == len(body)
    assert served.get("/healthz").status_code == 200


def test_a_malformed_request_is_refused_as_problem_json(served: Served) -> None:
    status, headers, body = _raw_reply(
        served, b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n"
    )
    assert status.startswith("HTTP/1.1 400"), status
    assert headers["content-type"] == PROBLEM
    assert json.loads(body)["status"] == 400


def test_headers_beyond_the_server_limit_are_refused_as_problem_json(served: Served) -> None:
    query = "x" * (256 * 1024 + 1)
    status, headers, body = _raw_reply(
        served, f"GET /v1/entities?q={query} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    )
    assert status.split()[1] == "431", status  # waitress answers as HTTP/1.0 here
    assert headers["content-type"] == PROBLEM
    assert json.loads(body)["status"] == 431
    spec = served.get("/openapi.json").json()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert "431" in operation["responses"], (method, path)
            if "requestBody" in operation:
                assert "413" in operation["responses"], (method, path)
