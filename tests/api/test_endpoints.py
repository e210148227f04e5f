"""Every /v1 endpoint over HTTP, on the real crosswalk of the embedded data."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import requests
from api_support import ReleasesServed, Served


def _an_entity_with_two_sources(served: Served) -> str:
    row = served.rows(
        "SELECT entity_id FROM entities WHERE sources = 'cdph,hcai' AND member_count = 2 "
        "ORDER BY entity_id LIMIT 1"
    )[0]
    return str(row["entity_id"])


def test_entity_has_canonical_fields_and_every_member(served: Served) -> None:
    entity_id = _an_entity_with_two_sources(served)
    r = served.get(f"/v1/entities/{entity_id}")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    doc = r.json()
    row = served.rows("SELECT * FROM entities WHERE entity_id = ?", (entity_id,))[0]
    assert doc["entity_id"] == entity_id
    assert doc["name"] == row["name"] and doc["address"] == row["address"]
    assert doc["facility_class"] == row["facility_class"]
    members = served.rows(
        "SELECT source, record_id, identifiers, method FROM records WHERE entity_id = ? "
        "ORDER BY source, record_id",
        (entity_id,),
    )
    assert [(m["source"], m["record_id"]) for m in doc["records"]] == [
        (m["source"], m["record_id"]) for m in members
    ]
    for rec, row in zip(doc["records"], members, strict=True):
        assert rec["identifiers"] == json.loads(row["identifiers"])
        assert rec["method"] == row["method"]
        assert "match_probability" in rec
    # every other department's id is listed at the top level
    for rec in doc["records"]:
        for scheme, value in rec["identifiers"].items():
            assert value in doc["identifiers"][scheme]


def test_entity_caching_etag_and_304(served: Served) -> None:
    entity_id = _an_entity_with_two_sources(served)
    first = served.get(f"/v1/entities/{entity_id}")
    etag = first.headers["ETag"]
    assert etag.startswith('"') and entity_id in etag
    assert "max-age" in first.headers["Cache-Control"]
    again = served.get(f"/v1/entities/{entity_id}", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == etag
    weak = served.get(f"/v1/entities/{entity_id}", headers={"If-None-Match": f'"x", W/{etag}'})
    assert weak.status_code == 304
    stale = served.get(f"/v1/entities/{entity_id}", headers={"If-None-Match": '"other"'})
    assert stale.status_code == 200
    other = served.get(f"/v1/entities/{entity_id}x")
    assert other.status_code == 404


def test_fast_path_and_framework_answer_identically(served: Served, crosswalk_db: object) -> None:
    """The WSGI fast path sends exactly what the Flask views send."""
    from api_support import serve_app, stop_server

    from api import ApiConfig, create_app

    slow_app = create_app(ApiConfig(db=served.db, fast_path=False))
    url, server, thread = serve_app(slow_app)
    try:
        entity_id = _an_entity_with_two_sources(served)
        value = served.rows(
            "SELECT value FROM identifiers WHERE scheme = 'oshpd_id' AND entity_id = ?",
            (entity_id,),
        )[0]["value"]
        for path in (
            f"/v1/entities/{entity_id}",
            f"/v1/lookup?scheme=oshpd_id&value={value}",
            f"/v1/entities/{entity_id}?release={served.get('/v1/release').json()['version']}",
        ):
            fast = served.get(path)
            slow = Served(url, served.db, slow_app).get(path)
            assert fast.status_code == slow.status_code == 200
            assert fast.content == slow.content
            drop = {"Date", "Content-Length", "Server"}
            assert {k: v for k, v in fast.headers.items() if k not in drop} == {
                k: v for k, v in slow.headers.items() if k not in drop
            }
            etag = fast.headers["ETag"]
            assert served.get(path, headers={"If-None-Match": etag}).status_code == 304
            assert (
                Served(url, served.db, slow_app)
                .get(path, headers={"If-None-Match": etag})
                .status_code
                == 304
            )
    finally:
        stop_server(server, thread)


def test_lookup_by_any_scheme_gives_every_other_departments_id(served: Served) -> None:
    row = served.rows(
        "SELECT i.value, i.entity_id FROM identifiers i JOIN entities e USING (entity_id) "
        "WHERE i.scheme = 'oshpd_id' AND e.sources = 'cdph,hcai' AND i.value IN "
        "(SELECT value FROM identifiers WHERE scheme = 'oshpd_id' GROUP BY value "
        " HAVING COUNT(DISTINCT entity_id) = 1) ORDER BY i.value LIMIT 1"
    )[0]
    r = served.get("/v1/lookup", params={"scheme": "oshpd_id", "value": row["value"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["found"] is True
    assert body["entity_ids"] == [row["entity_id"]]
    entity = body["entities"][0]
    assert entity["entity_id"] == row["entity_id"]
    assert row["value"] in entity["identifiers"]["oshpd_id"]
    # the same entity is found by its CDPH record id and by its license number
    cdph = next(rec for rec in entity["records"] if rec["source"] == "cdph")
    by_record = served.get("/v1/lookup", params={"source": "cdph", "record_id": cdph["record_id"]})
    assert by_record.json()["entity_ids"] == [row["entity_id"]]
    license_no = cdph["identifiers"].get("cdph_license")
    if license_no:
        by_license = served.get(
            "/v1/lookup", params={"scheme": "cdph_license", "value": license_no}
        )
        assert row["entity_id"] in by_license.json()["entity_ids"]
    assert r.headers["ETag"]
    assert (
        served.get(
            r.url[len(served.url) :], headers={"If-None-Match": r.headers["ETag"]}
        ).status_code
        == 304
    )


def test_lookup_normalizes_with_the_engines_normalizer(served: Served) -> None:
    row = served.rows(
        "SELECT value, entity_id FROM identifiers WHERE scheme = 'cdph_license' AND value LIKE '0%' "
        "ORDER BY value LIMIT 1"
    )
    if not row:
        return
    value = row[0]["value"].lstrip("0")
    r = served.get("/v1/lookup", params={"scheme": "cdph_license", "value": value})
    assert r.status_code == 200, r.text
    assert r.json()["query"]["normalized_value"] == row[0]["value"]
    assert row[0]["entity_id"] in r.json()["entity_ids"]


def test_lookup_not_found_and_bad_scheme(served: Served) -> None:
    r = served.get("/v1/lookup", params={"scheme": "oshpd_id", "value": "999999999"})
    assert r.status_code == 404
    assert r.headers["Content-Type"] == "application/problem+json"
    bad = served.get("/v1/lookup", params={"scheme": "nonsense", "value": "1"})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "scheme"
    neither = served.get("/v1/lookup")
    assert neither.status_code == 400


def test_lookup_batch(served: Served) -> None:
    rows = served.rows("SELECT source, record_id, entity_id FROM records ORDER BY rowid LIMIT 400")
    lookups = [{"source": r["source"], "record_id": r["record_id"]} for r in rows]
    ids = served.rows("SELECT scheme, value, entity_id FROM identifiers ORDER BY rowid LIMIT 600")
    lookups += [{"scheme": r["scheme"], "value": r["value"]} for r in ids]
    lookups.append({"scheme": "npi", "value": "0000000000"})
    assert len(lookups) == 1001
    too_many = served.post("/v1/lookup", json={"lookups": lookups})
    assert too_many.status_code == 413
    assert too_many.headers["Content-Type"] == "application/problem+json"
    r = served.post("/v1/lookup", json={"lookups": lookups[1:]})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 1000
    for result, row in zip(results[:399], rows[1:], strict=True):
        assert result["entity_ids"] == [row["entity_id"]]
    for result, row in zip(results[399:999], ids, strict=True):
        assert row["entity_id"] in result["entity_ids"]
    assert results[-1]["found"] is False and results[-1]["entities"] == []
    bad = served.post("/v1/lookup", json={"lookups": [{"scheme": "npi"}]})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "lookups[0].value"


def test_search_with_cursor_pagination_and_link_header(served: Served) -> None:
    county = served.rows(
        "SELECT county FROM entities WHERE county IS NOT NULL GROUP BY county "
        "HAVING COUNT(*) BETWEEN 30 AND 200 ORDER BY county LIMIT 1"
    )[0]["county"]
    expected = [
        r["entity_id"]
        for r in served.rows(
            "SELECT entity_id FROM entities WHERE lower(county) = lower(?) ORDER BY entity_id",
            (county,),
        )
    ]
    seen: list[str] = []
    path = f"/v1/entities?county={county}&limit=25"
    pages = 0
    while path:
        r = served.get(path)
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [item["entity_id"] for item in body["items"]]
        pages += 1
        assert pages < 50
        if body["next"] is None:
            assert "Link" not in r.headers
            break
        link = r.headers["Link"]
        assert link.endswith('; rel="next"')
        target = urlparse(link[1 : link.index(">")])
        assert parse_qs(target.query)["cursor"] == [body["next"]]
        path = f"{target.path}?{target.query}"
    assert seen == expected
    assert pages == -(-len(expected) // 25)


def test_search_filters(served: Served) -> None:
    r = served.get("/v1/entities", params={"q": "hospital", "source": "hcai", "type": "hospice"})
    assert r.status_code == 200
    for item in r.json()["items"]:
        assert "hcai" in item["sources"] and item["facility_class"] == "hospice"
    name = served.rows("SELECT name, entity_id FROM entities WHERE name IS NOT NULL LIMIT 1")[0]
    found = served.get("/v1/entities", params={"q": name["name"]}).json()["items"]
    assert name["entity_id"] in [i["entity_id"] for i in found]
    # a cursor is the last entity id of a page: any text goes on after it, whatever the filters
    cursor = served.get("/v1/entities", params={"limit": 1}).json()["next"]
    other = served.get("/v1/entities", params={"cursor": cursor, "county": "Alameda"})
    assert other.status_code == 200
    assert all(item["entity_id"] > cursor for item in other.json()["items"])
    beyond = served.get("/v1/entities", params={"cursor": "not-a-cursor"})
    assert beyond.status_code == 200 and beyond.json() == {
        "release": beyond.json()["release"],
        "items": [],
        "next": None,
    }
    too_long = served.get("/v1/entities", params={"cursor": "F" * 501})
    assert too_long.status_code == 400 and too_long.json()["errors"][0]["field"] == "cursor"
    assert served.get("/v1/entities", params={"limit": 0}).status_code == 400


def test_sources_release_releases_healthz(served: Served) -> None:
    sources = served.get("/v1/sources").json()["sources"]
    assert {s["name"] for s in sources} == {
        r["name"] for r in served.rows("SELECT name FROM sources")
    }
    release = served.get("/v1/release")
    meta = {r["key"]: r["value"] for r in served.rows("SELECT key, value FROM meta")}
    info = release.json()
    assert info["build_id"] == meta["build_id"]
    assert info["built_at"] == meta["built_at"]
    assert info["counts"] == json.loads(meta["counts"])
    assert release.headers["ETag"]
    listing = served.get("/v1/releases").json()
    assert listing["latest"] == info["version"] and len(listing["releases"]) == 1
    health = served.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.headers["Cache-Control"] == "no-store"


def test_root_shows_the_docs_and_openapi_lists_every_route(served: Served) -> None:
    root = served.get("/")
    assert root.status_code in (301, 302, 307, 308)
    assert root.headers["Location"].endswith("/docs")
    docs = served.get("/docs")
    assert docs.status_code == 200 and docs.headers["Content-Type"].startswith("text/html")
    assert "<script src=" not in docs.text and "https://" not in docs.text.split("<body>")[0]
    spec = served.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    for path in (
        "/v1/entities/{entity_id}",
        "/v1/lookup",
        "/v1/match",
        "/v1/entities",
        "/reconcile",
    ):
        assert path in spec["paths"], path
        assert path in docs.text
    # generated from the routes: every documented operation is a real route
    rules = {r.rule for r in served.app.url_map.iter_rules()}
    for path in spec["paths"]:
        flask_rule = path.replace("{", "<").replace("}", ">")
        assert any(
            r == flask_rule or r.replace("int:", "").replace("path:", "") == flask_rule
            for r in rules
        ), path


def test_cors_on_the_public_api(served: Served) -> None:
    r = served.get("/v1/sources", headers={"Origin": "https://example.org"})
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    pre = requests_options(served, "/v1/lookup")
    assert pre.status_code == 200
    assert "POST" in pre.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in pre.headers["Access-Control-Allow-Headers"]


def requests_options(served: Served, path: str) -> requests.Response:
    """A CORS preflight request."""
    return requests.options(
        served.url + path,
        headers={"Origin": "https://example.org", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )


def test_releases_directory_latest_by_sequence_and_pinned_versions(
    served_releases: ReleasesServed,
) -> None:
    s = served_releases
    listing = s.get("/v1/releases").json()
    assert listing["latest"] == s.latest
    assert [r["version"] for r in listing["releases"]] == [s.latest, s.older]
    newest = listing["releases"][0]
    assert newest["changes"] == {"merged_into": 1, "retired": 1}
    assert newest["sequence"] == 2 and newest["published_at"]
    assert s.get("/v1/release").json()["version"] == s.latest
    pinned = s.get("/v1/release", params={"release": s.older})
    assert pinned.json()["version"] == s.older
    assert "immutable" in pinned.headers["Cache-Control"]
    entity = s.get(f"/v1/entities/{s.live_id}", params={"release": s.older})
    assert entity.status_code == 200 and entity.json()["release"] == s.older
    assert "immutable" in entity.headers["Cache-Control"]
    latest_entity = s.get(f"/v1/entities/{s.live_id}")
    assert latest_entity.json()["release"] == s.latest
    assert latest_entity.headers["ETag"] != entity.headers["ETag"]  # the ETag names the release
    unknown = s.get("/v1/release", params={"release": "1999-01-01"})
    assert (
        unknown.status_code == 404 and unknown.headers["Content-Type"] == "application/problem+json"
    )


def test_retired_ids_redirect_or_gone(served_releases: ReleasesServed) -> None:
    s = served_releases
    moved = s.get(f"/v1/entities/{s.merged_id}")
    assert moved.status_code == 308
    assert moved.headers["Location"] == f"/v1/entities/{s.live_id}"
    assert moved.json()["successor"] == s.live_id
    gone = s.get(f"/v1/entities/{s.retired_id}")
    assert gone.status_code == 410
    assert gone.headers["Content-Type"] == "application/problem+json"
    problem = gone.json()
    assert problem["status"] == 410 and problem["change"] == "retired"
    assert "closed" in problem["detail"]
    # the older release has no retired_ids rows: an unknown id is a plain 404
    assert s.get(f"/v1/entities/{s.retired_id}", params={"release": s.older}).status_code == 404


def test_docs_page_names_the_publishers_and_extract_dates(served: Served) -> None:
    page = served.get("/docs").text
    assert "California Department of Public Health" in page and "2020-05-07" in page
    assert "Health Care Access and Information" in page and "2020-10" in page
