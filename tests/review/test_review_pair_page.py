"""The pair page as a steward reads it, on a real build of the real-data slice (the
CLI's build, its review store, the Flask app): the waterfall from the prior to the
weight, differences marked between normalized values, the distance, the facility-type
filter and the decisions the model learned from."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from review_minixwalk import PASSWORDS, review_app, sign_in

from crosswalk.review import ReviewStore
from crosswalk.review.auth import create_reviewer
from crosswalk.review.store import Dispute

ROOT = Path(__file__).resolve().parents[2]
SLICE = ROOT / "tests" / "data" / "slice.toml"


def build(out: Path, store: Path) -> Path:
    """Build the slice with the real CLI, raising its disputes into ``store``; every
    decision with less than 100 bits to spare is queued, so that the queue holds pairs of
    every kind the page shows."""
    text = SLICE.read_text(encoding="utf-8").replace('path = "', f'path = "{SLICE.parent}/')
    config = out.parent / "slice.toml"
    config.write_text(text + "\n[review]\nclear_margin_bits = 100\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "crosswalk.cli", "build", "--config", str(config),
         "--out", str(out), "--review-store", str(store)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out / "crosswalk.sqlite"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("pair-page")
    store = tmp / "review.sqlite"
    db = build(tmp / "build", store)
    with ReviewStore(store) as s:
        create_reviewer(s, "root", "cdph", PASSWORDS["root"], admin=True)
    return {"tmp": tmp, "db": db, "store": store}


@pytest.fixture
def client(built: dict[str, Path]) -> Any:
    client = review_app(built["store"], built["db"]).test_client()
    sign_in(client, "root")
    return client


def disputes(store: Path) -> list[Dispute]:
    with ReviewStore(store) as s:
        return s.disputes(status="all", limit=10_000)


def row(html: str, label: str) -> tuple[str, str]:
    """The class and the cells of the comparison row ``label``."""
    found = re.search(
        rf'<tr class="(\w+)">\s*<th scope="row">{re.escape(label)}</th>(.*?)</tr>', html, re.S
    )
    assert found, f"no row {label}"
    return found.group(1), found.group(2)


def test_the_waterfall_starts_with_the_prior_and_adds_up_to_the_weight(
    built: dict[str, Path], client: Any
) -> None:
    conn = sqlite3.connect(built["db"])
    model = json.loads(conn.execute("SELECT value FROM meta WHERE key = 'model'").fetchone()[0])
    conn.close()
    checked = 0
    for d in disputes(built["store"]):
        link = d.explanation.get("link")
        if not link or link.get("match_weight") is None:
            continue
        html = client.get(f"/review/disputes/{d.dispute_id}").text
        steps = re.findall(r'<tr class="step" data-bits="([^"]+)" data-term="([^"]+)"', html)
        assert steps[0][1] == "prior", "the prior is the first bar"
        assert float(steps[0][0]) == pytest.approx(model["prior_bits"], abs=1e-3)
        assert [t for _, t in steps[1:]] == list(d.explanation["fields"])
        weight = float(re.search(r'<tr class="total" data-weight="([^"]+)"', html).group(1))
        assert weight == pytest.approx(link["match_weight"], abs=1e-4)
        assert sum(float(b) for b, _ in steps) == pytest.approx(weight, abs=0.01)
        checked += 1
    assert checked >= 20


def test_differences_are_marked_between_normalized_values(
    built: dict[str, Path], client: Any
) -> None:
    # CDPH writes 7777 NORRIS CANYON ROAD where HCAI writes 7777 Norris Canyon Rd.
    d = next(
        d
        for d in disputes(built["store"])
        if d.left.get("address", "").upper() == "7777 NORRIS CANYON ROAD"
        and d.right.get("address", "").upper() == "7777 NORRIS CANYON RD"
    )
    html = client.get(f"/review/disputes/{d.dispute_id}").text
    kind, cells = row(html, "Address")
    assert kind == "same" and "<mark>" not in cells
    # A real difference is marked, between the normalized values, with the listed value.
    different = [d for d in disputes(built["store"]) if d.left.get("name") and d.right.get("name")]
    marked = 0
    for d in different[:15]:
        html = client.get(f"/review/disputes/{d.dispute_id}").text
        kind, cells = row(html, "Name")
        if kind == "differs":
            assert "<mark>" in cells
            marked += 1
    assert marked > 0


def test_the_distance_between_the_records_is_shown(built: dict[str, Path], client: Any) -> None:
    d = disputes(built["store"])[0]
    html = client.get(f"/review/disputes/{d.dispute_id}").text
    found = re.search(r'<span id="distance">([\d.,]+) (m|km)</span>', html)
    assert found, "no distance on the pair page"
    from math import asin, cos, radians, sin, sqrt

    lat1, lon1, lat2, lon2 = (
        radians(float(r[k])) for r in (d.left, d.right) for k in ("latitude", "longitude")
    )
    h = sin((lat2 - lat1) / 2) ** 2 + cos(lat1) * cos(lat2) * sin((lon2 - lon1) / 2) ** 2
    metres = 2 * 6_371_008.8 * asin(sqrt(h))
    shown = float(found.group(1)) * (1000 if found.group(2) == "km" else 1)
    assert shown == pytest.approx(metres, abs=1 if metres < 1000 else 100)


def test_the_facility_type_filter_lists_each_type_once(built: dict[str, Path], client: Any) -> None:
    html = client.get("/review/").text
    select = re.search(r'<select name="facility_type">(.*?)</select>', html, re.S).group(1)
    options = [unescape(v) for v in re.findall(r'<option value="([^"]*)"', select) if v]
    assert len({o.casefold() for o in options}) == len(options), options
    hospice = next(o for o in options if o.casefold() == "hospice")
    # The one entry finds the disputes of either capitalization.
    expected = [
        d.dispute_id
        for d in disputes(built["store"])
        if "hospice"
        in {str(t).casefold() for t in (d.left.get("facility_type"), d.right.get("facility_type"))}
    ]
    assert expected
    shown: set[int] = set()
    for page in range(1, len(expected) + 2):  # every page of the filtered queue
        listed = client.get(
            "/review/", query_string={"facility_type": hospice, "status": "all", "page": page}
        ).text
        found = {int(x) for x in re.findall(r'href="/review/disputes/(\d+)', listed)}
        if not found - shown:
            break
        shown |= found
    assert shown == set(expected)


def test_two_records_alone_in_their_entity_are_not_called_singletons(
    built: dict[str, Path], client: Any
) -> None:
    d = next(
        d
        for d in disputes(built["store"])
        if d.left.get("entity_id") == d.right.get("entity_id") and not d.cluster
    )
    html = client.get(f"/review/disputes/{d.dispute_id}").text
    assert "each record&#39;s entity holds only itself" not in html
    assert "each record's entity holds only itself" not in html
    assert f"entity {d.left['entity_id']} holds only these two records" in html


def test_the_queue_shows_the_decisions_the_model_learned_from(
    built: dict[str, Path], client: Any
) -> None:
    assert "learned from" not in client.get("/review/").text
    tmp, store = built["tmp"], built["tmp"] / "decided.sqlite"
    store.write_bytes(built["store"].read_bytes())
    with ReviewStore(store) as s:
        root = s.reviewer_by_name("root")
        assert root is not None
        picked = s.disputes(status="open", limit=3)
        for d, verdict in zip(picked, ("same", "different", "unsure"), strict=True):
            s.decide(root, d.pair, verdict, "", dispute_id=d.dispute_id)
    db = build(tmp / "decided", store)
    decided = review_app(store, db).test_client()
    sign_in(decided, "root")
    text = re.sub(r"\s+", " ", decided.get("/review/").text)
    assert "The model has learned from <strong>2</strong> decisions" in text
