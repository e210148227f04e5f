"""A small published crosswalk, written table by table from ``crosswalk.artifact.schema``.

Unit tests of the review store use it: it is quick to build and holds one
case of every kind of dispute. The end-to-end test uses the real build.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import sqlite_utils

from crosswalk.artifact import schema

#: Accounts the tests create: alice (cdph), henry (hcai) and root (admin).
PASSWORDS = {
    "alice": "alice-correct-horse-1",
    "henry": "henry-battery-staple-2",
    "root": "root-admin-password-3",
}

CONFIG = {
    "review": {"uncertain_low": 0.2, "uncertain_high": 0.9},
    "clustering": {"large_cluster_size": 6},
}

# (source, record_id, entity_id, name, address, city, zip, facility_type, identifiers)
RECORDS: list[tuple[str, str, str, str, str, str, str, str, dict[str, str]]] = [
    ("cdph", "140000002", "E1", "ALAMEDA HOSPITAL", "2070 CLINTON AVE", "ALAMEDA", "94501",
     "GENERAL ACUTE CARE HOSPITAL", {"oshpd_id": "106010735"}),
    ("hcai", "106010735", "E1", "ALAMEDA HOSPITAL", "2070 Clinton Ave", "Alameda", "94501",
     "General Acute Care Hospital", {"oshpd_id": "106010735"}),
    ("cdph", "140000004", "E2", "ALTA BATES SUMMIT MEDICAL CENTER-ALTA BATES CAMPUS",
     "2450 ASHBY AVENUE", "BERKELEY", "94705", "GENERAL ACUTE CARE HOSPITAL", {}),
    ("hcai", "106010739", "E2", "ALTA BATES SUMMIT MED CTR - ALTA BATES CAMPUS", "2450 Ashby Ave",
     "Berkeley", "94705", "General Acute Care Hospital", {}),
    ("cdph", "140000006", "E3", "ALTA BATES SUMMIT MEDICAL CENTER-HERRICK CAMPUS",
     "2001 DWIGHT WAY", "BERKELEY", "94704", "GENERAL ACUTE CARE HOSPITAL", {}),
    ("hcai", "106010844", "E4", "HERRICK HOSPITAL", "2001 Dwight Way", "Berkeley", "94704",
     "Acute Psychiatric Hospital", {}),
    ("cdph", "140000425", "E5", "ALTA BATES SUMMIT MEDICAL CENTER", "350 HAWTHORNE AVENUE",
     "OAKLAND", "94609", "GENERAL ACUTE CARE HOSPITAL", {"oshpd_id": "106010937"}),
    ("hcai", "106010937", "E6", "SUMMIT <b>CAMPUS</b> & CLINIC", "3100 Summit St", "Oakland",
     "94609", "General Acute Care Hospital", {"oshpd_id": "106010937"}),
    ("hcai", "106014050", "E7", "VALLEY HOME HEALTH", "6851 Van Nuys Blvd", "Van Nuys", "91405",
     "Home Health Agency", {}),
    ("hcai", "106014051", "E8", "VALLEY HOME HEALTH CARE", "6851 Van Nuys Blvd", "Van Nuys",
     "91405", "Home Health Agency", {}),
] + [
    (src, f"{900000 + i}", "E9", f"DAVITA DIALYSIS UNIT {i}", "100 MAIN ST", "FRESNO", "93701",
     "CHRONIC DIALYSIS CLINIC", {})
    for i, src in enumerate(["cdph", "hcai", "cdph", "hcai", "cdph", "hcai", "cdph"])
]  # fmt: skip

# (left, right, entity_id or None, probability, method, status)
LINKS: list[tuple[tuple[str, str], tuple[str, str], str | None, float, str, str]] = [
    (("cdph", "140000002"), ("hcai", "106010735"), "E1", 0.9999, "identifier", "linked"),
    (("cdph", "140000004"), ("hcai", "106010739"), "E2", 0.62, "fuzzy", "linked"),
    (("cdph", "140000006"), ("hcai", "106010844"), None, 0.35, "fuzzy", "below_threshold"),
    (("cdph", "140000425"), ("hcai", "106010937"), None, 0.05, "identifier", "below_threshold"),
    (("hcai", "106014050"), ("hcai", "106014051"), None, 0.81, "fuzzy", "cut"),
    (("cdph", "900000"), ("hcai", "900001"), "E9", 0.97, "fuzzy", "linked"),
    (("cdph", "900002"), ("hcai", "900001"), "E9", 0.55, "fuzzy", "linked"),
    (("cdph", "900002"), ("hcai", "900003"), "E9", 0.96, "fuzzy", "linked"),
    (("cdph", "900004"), ("hcai", "900003"), "E9", 0.95, "fuzzy", "linked"),
    (("cdph", "900004"), ("hcai", "900005"), "E9", 0.94, "fuzzy", "linked"),
    (("cdph", "900006"), ("hcai", "900005"), "E9", 0.93, "fuzzy", "linked"),
]


def explanation(left: dict[str, Any], right: dict[str, Any], p: float) -> dict[str, Any]:
    """A per-field explanation shaped like the engine's."""
    out: dict[str, Any] = {}
    for i, name in enumerate(("name", "address", "city", "zip", "facility_type")):
        same = str(left[name]).lower() == str(right[name]).lower()
        weight = (3.5 - i * 0.5) if same else (-2.0 + p * 3)
        out[name] = {
            "level": "exact" if same else "fuzzy",
            "left": left[name],
            "right": right[name],
            "weight": round(weight, 2),
        }
    return out


def build(
    path: Path,
    *,
    build_id: str = "test-build-1",
    cases: tuple[list[Any], list[Any]] | None = None,
    config: dict[str, Any] | None = None,
) -> Path:
    """Write the small crosswalk to ``path`` and return it: by default :data:`RECORDS`
    and :data:`LINKS` with :data:`CONFIG`, else the ``(records, links)`` of ``cases``
    (shaped as those) with ``config``."""
    record_rows, link_rows = cases if cases is not None else (RECORDS, LINKS)
    db = sqlite_utils.Database(path, recreate=True)
    records = []
    for src, rid, eid, name, addr, city, zip_, ftype, ids in record_rows:
        records.append(
            {
                "source": src, "record_id": rid, "entity_id": eid, "name": name,
                "address": addr, "city": city, "state": "CA", "zip": zip_,
                "county": "ALAMEDA", "phone": "(510) 555-0100", "facility_type": ftype,
                "latitude": 37.8, "longitude": -122.2, "other_names": "",
                "identifiers": json.dumps(ids), "match_probability": None,
                "method": "fuzzy",
            }
        )  # fmt: skip
    by_key = {(r["source"], r["record_id"]): r for r in records}
    db["records"].insert_all(records, pk=("source", "record_id"))
    db["identifiers"].insert_all(
        (
            {
                "scheme": scheme, "value": value, "source": r["source"],
                "record_id": r["record_id"], "entity_id": r["entity_id"],
            }
            for r in records
            for scheme, value in json.loads(r["identifiers"]).items()
        ),
        pk=("scheme", "value", "source", "record_id"),
    )  # fmt: skip
    members: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        members.setdefault(r["entity_id"], []).append(r)
    db["entities"].insert_all(
        (
            {
                "entity_id": eid, "name": ms[0]["name"], "address": ms[0]["address"],
                "city": ms[0]["city"], "state": "CA", "zip": ms[0]["zip"], "county": "ALAMEDA",
                "facility_type": ms[0]["facility_type"], "latitude": 37.8,
                "longitude": -122.2, "facility_class": "hospital", "member_count": len(ms),
                "sources": ",".join(sorted({m["source"] for m in ms})),
                "method": "fuzzy" if len(ms) > 1 else "singleton",
            }
            for eid, ms in members.items()
        ),
        pk="entity_id",
    )  # fmt: skip
    db["links"].insert_all(
        (
            {
                "link_id": i + 1, "source_l": a[0], "record_id_l": a[1], "source_r": b[0],
                "record_id_r": b[1], "entity_id": eid, "match_probability": p,
                "match_weight": round((p - 0.5) * 20, 3), "method": method, "status": status,
                "explanation": json.dumps(explanation(by_key[a], by_key[b], p)),
            }
            for i, (a, b, eid, p, method, status) in enumerate(link_rows)
        ),
        pk="link_id",
    )  # fmt: skip
    db["conflicts"].insert_all(
        [
            {
                "conflict_id": 1, "kind": "identifier_disagrees", "source_l": "cdph",
                "record_id_l": "140000425", "source_r": "hcai", "record_id_r": "106010937",
                "scheme": "oshpd_id", "match_probability": 0.05,
                "details": json.dumps({"value": "106010937"}),
            },
        ],
        pk="conflict_id",
    )  # fmt: skip
    db["sources"].insert_all(
        [
            {"name": "cdph", "publisher": "California Department of Public Health (CDPH)",
             "title": "Licensed and Certified Healthcare Facility Listing",
             "extracted": "2020-05-07", "path": "cdph.xlsx", "sha256": "0" * 64, "rows": 8},
            {"name": "hcai", "publisher": "Department of Health Care Access and Information (HCAI)",
             "title": "Licensed Healthcare Facility Listing", "extracted": "2020-10",
             "path": "hcai.csv", "sha256": "1" * 64, "rows": 9},
        ],
        pk="name",
    )  # fmt: skip
    db["meta"].insert_all(
        [
            {"key": "build_id", "value": build_id},
            {"key": "config", "value": json.dumps(CONFIG if config is None else config)},
        ],
        pk="key",
    )
    for t in schema.TABLES:
        assert set(db[t.name].columns_dict) <= set(t.column_names), t.name
    db.close()
    return path


def review_app(store: Path, crosswalk_db: Path) -> Any:
    """A Flask app serving the review workflow over ``store``.

    The service's own app factory is used when it takes a review store;
    otherwise a bare Flask app gets the review blueprints, as the factory would.
    """
    import flask

    import api
    import api.review

    factory = getattr(api, "create_app", None)
    if factory is not None:
        return factory({"db": crosswalk_db, "review_store": store})
    app = flask.Flask("review-test")
    app.config.update(REVIEW_STORE=str(store), CROSSWALK_DB=str(crosswalk_db), TESTING=True)
    api.review.register(app)
    return app


def csrf(html: str) -> str:
    """The CSRF token of a review page's form."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def sign_in(client: Any, name: str = "alice", password: str | None = None) -> Any:
    """Sign in through the review login form with a Flask test client."""
    page = client.get("/review/login")
    return client.post(
        "/review/login",
        data={
            "username": name,
            "password": password or PASSWORDS[name],
            "csrf_token": csrf(page.text),
        },
    )
