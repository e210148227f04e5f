"""End to end: the real build, the real server, Debian's Chromium.

The embedded CDPH and HCAI listings are built with a third, small department
listing derived from HCAI's Santa Barbara County rows (names abbreviated,
some house numbers off by ten). With two departments every dispute involves
both, so a reviewer could never meet another department's dispute; the third
one gives HCAI-vs-county disputes that a CDPH reviewer must be refused.

The test logs in as a CDPH reviewer, filters the queue, decides three
disputes (one with a keyboard shortcut), is refused a county-HCAI dispute by
URL and through the JSON API, undoes one decision, rebuilds with the review
store, and checks that the new crosswalk follows the decisions that stand.
Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import csv
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from crosswalk.review import ReviewStore, load_constraints

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "cdph-steward-password-2020"
CLI = [sys.executable, "-m", "crosswalk.cli"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]

_ABBREVIATIONS = [
    ("MEDICAL CENTER", "MED CTR"),
    ("CARE CENTER", "CARE CTR"),
    ("HOSPITAL", "HOSP"),
    ("COMMUNITY", "COMM"),
    ("HEALTH", "HLTH"),
    (", LLC", ""),
    (", INC", ""),
]

_COUNTY_SOURCE = """
[[source]]
name = "county"
publisher = "Test listing derived from HCAI's Santa Barbara County rows (tests/review)"
title = "County facility sites (test data)"
extracted = "2020-10"
path = "county.csv"
id_column = "SITE_NO"

[source.fields]
name = "SITE_NAME"
address = "STREET"
city = "CITY"
zip = "ZIP"
facility_type = "CATEGORY"

[source.defaults]
state = "CA"
"""


def _write_config(where: Path) -> Path:
    """The embedded config plus the derived county listing."""
    hcai = ROOT / "data" / "hcai_current_healthcare_facility_listing_2020-10.csv"
    with hcai.open(encoding="cp1252", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["COUNTY_NAME"] == "Santa Barbara"]
    with (where / "county.csv").open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(["SITE_NO", "SITE_NAME", "STREET", "CITY", "ZIP", "CATEGORY"])
        for i, r in enumerate(rows):
            name = r["FACILITY_NAME"].upper()
            for long, short in _ABBREVIATIONS:
                name = name.replace(long, short)
            if i % 3 == 1:
                name = " ".join(name.split()[:2])
            street = r["DBA_ADDRESS1"]
            number = re.match(r"(\d+)(.*)", street)
            if i % 4 == 2 and number:
                street = f"{int(number.group(1)) + 10}{number.group(2)}"
            out.writerow(
                [
                    f"SB{i:04d}",
                    name,
                    street,
                    r["DBA_CITY"],
                    r["DBA_ZIP_CODE"],
                    r["LICENSE_CATEGORY_DESC"],
                ]
            )
    text = (ROOT / "data" / "sources.toml").read_text(encoding="utf-8")
    text = text.replace('path = "', f'path = "{ROOT / "data"}/')
    config = where / "sources.toml"
    config.write_text(text + _COUNTY_SOURCE, encoding="utf-8")
    return config


def _run(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [*CLI, *args], input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=240
    )
    assert done.returncode == 0, f"crosswalk {args[0]} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The first build, its review store with a CDPH reviewer, and the server."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make browser).")
    tmp = tmp_path_factory.mktemp("review-e2e")
    config = _write_config(tmp)
    store = tmp / "review.sqlite"
    _run(
        "build", "--config", str(config), "--out", str(tmp / "build1"), "--review-store", str(store)
    )
    added = _run(
        "reviewers", "add", "--store", str(store), "--config", str(config),
        "--department", "cdph", "--username", "alice", "--password-stdin", "--token",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    token = re.search(r"^token: (\S+)$", added, re.M)
    assert token, added
    port = _free_port()
    log = (tmp / "serve.log").open("w")
    server = subprocess.Popen(
        [*CLI, "serve", "--db", str(tmp / "build1" / "crosswalk.sqlite"),
         "--review-store", str(store), "--secret-key-file", str(tmp / "keys" / "session.key"),
         "--port", str(port), "--threads", "4"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if requests.get(f"{base}/review/login", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if server.poll() is not None:
                pytest.fail("the server exited: " + (tmp / "serve.log").read_text())
            time.sleep(0.25)
        else:
            pytest.fail("the server did not start: " + (tmp / "serve.log").read_text())
        yield {"tmp": tmp, "config": config, "store": store, "base": base, "token": token.group(1)}
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def _entities(db: Path, keys: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    conn = sqlite3.connect(db)
    try:
        return {
            k: conn.execute(
                "SELECT entity_id FROM records WHERE source = ? AND record_id = ?", k
            ).fetchone()[0]
            for k in keys
        }
    finally:
        conn.close()


def _members(db: Path, entity_id: str) -> int:
    """The number of members of ``entity_id``."""
    conn = sqlite3.connect(db)
    try:
        return int(
            conn.execute(
                "SELECT member_count FROM entities WHERE entity_id = ?", (entity_id,)
            ).fetchone()[0]
        )
    finally:
        conn.close()


def _pick(store: Path, db: Path) -> dict[str, Any]:
    """Disputes to decide: a linked pair to split, an unlinked pair to join (of
    singletons if there is one), a third to decide and undo, and a county-HCAI
    dispute that CDPH may not see."""
    with ReviewStore(store) as s:
        mine = [d for d in s.disputes(status="open") if "cdph" in d.sources]
        foreign = next(d for d in s.disputes(status="open") if "cdph" not in d.sources)
    uncertain = [d for d in mine if "uncertain" in d.reason_kinds]

    def together(d: Any) -> bool:
        return bool(d.left.get("entity_id") == d.right.get("entity_id"))

    def singletons(d: Any) -> int:
        return sum(
            _members(db, e) == 1 for e in (d.left.get("entity_id"), d.right.get("entity_id")) if e
        )

    linked = next(d for d in uncertain if together(d))
    apart = sorted((d for d in uncertain if not together(d)), key=lambda d: -singletons(d))
    unlinked = apart[0]
    third = next(d for d in mine if d.dispute_id not in (linked.dispute_id, unlinked.dispute_id))
    return {"linked": linked, "unlinked": unlinked, "third": third, "foreign": foreign}


def _link_status(db: Path, pair: Any) -> str | None:
    (sl, il), (sr, ir) = pair
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(
            "SELECT status FROM links WHERE (source_l, record_id_l, source_r, record_id_r) IN "
            "(VALUES (?, ?, ?, ?), (?, ?, ?, ?))",
            (sl, il, sr, ir, sr, ir, sl, il),
        ).fetchone()
    finally:
        conn.close()
    return None if row is None else str(row[0])


def test_cdph_reviewer_decides_and_the_next_build_follows(world: dict[str, Any]) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, store, tmp = world["base"], world["store"], world["tmp"]
    db1 = tmp / "build1" / "crosswalk.sqlite"
    picked = _pick(store, db1)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            # Log in as the CDPH reviewer.
            page.goto(f"{base}/review/")
            expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            page.fill("#username", "alice")
            page.fill("#password", PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", name="Disputes")).to_be_visible()
            left_before = int(page.locator("#left-count strong").inner_text())
            assert left_before > 0

            # Filter the queue: CDPH records, uncertain pairs.
            page.select_option("select[name=department]", "cdph")
            page.select_option("select[name=reason]", "uncertain")
            page.get_by_role("button", name="Filter").click()
            expect(page).to_have_url(re.compile(r"reason=uncertain"))
            rows = page.locator("table.queue tbody tr")
            assert rows.count() > 0
            badges = page.locator("table.queue tbody tr td:nth-child(2)").all_inner_texts()
            assert all("Uncertain" in b for b in badges)
            page.screenshot(path=str(ARTIFACTS / "review-queue.png"), full_page=False)
            query = "?department=cdph&reason=uncertain"

            # 1. 'different' on a linked pair, with the keyboard shortcut.
            linked = picked["linked"]
            page.goto(f"{base}/review/disputes/{linked.dispute_id}{query}")
            expect(page.get_by_role("heading", name=f"Dispute {linked.dispute_id}")).to_be_visible()
            assert page.locator(".compare tbody tr").count() >= 4
            page.screenshot(path=str(ARTIFACTS / "review-pair.png"), full_page=True)
            page.keyboard.press("d")
            page.wait_for_url(re.compile(rf"/review/disputes/(?!{linked.dispute_id}\b)\d+"))
            expect(page.locator(".flash")).to_contain_text(
                f"Dispute {linked.dispute_id}: recorded 'different'"
            )

            # 2. 'same' on an unlinked pair, with a comment, by button.
            unlinked = picked["unlinked"]
            page.goto(f"{base}/review/disputes/{unlinked.dispute_id}{query}")
            page.fill("#comment", "Same licence file; the address moved in 2019.")
            page.get_by_role("button", name="Same facility").click()
            expect(page.locator(".flash")).to_contain_text(
                f"Dispute {unlinked.dispute_id}: recorded 'same'"
            )

            # 3. 'different' on another pair, undone below.
            third = picked["third"]
            page.goto(f"{base}/review/disputes/{third.dispute_id}{query}")
            page.get_by_role("button", name="Different").click()
            expect(page.locator(".flash")).to_contain_text(
                f"Dispute {third.dispute_id}: recorded 'different'"
            )

            # Refused another department's dispute by URL ...
            foreign = picked["foreign"]
            refused = page.goto(f"{base}/review/disputes/{foreign.dispute_id}")
            assert refused is not None and refused.status == 403
            expect(page.locator("h1")).to_contain_text("403")
            page.screenshot(path=str(ARTIFACTS / "review-refused.png"))

            # ... and through the JSON API.
            auth = {"Authorization": f"Bearer {world['token']}"}
            api = requests.get(f"{base}/v1/disputes/{foreign.dispute_id}", headers=auth, timeout=10)
            assert api.status_code == 403
            assert api.headers["Content-Type"].startswith("application/problem+json")
            api = requests.post(
                f"{base}/v1/disputes/{foreign.dispute_id}/decision",
                json={"verdict": "same"}, headers=auth, timeout=10,
            )  # fmt: skip
            assert api.status_code == 403
            listed = requests.get(
                f"{base}/v1/disputes?status=all&limit=200", headers=auth, timeout=10
            )
            assert listed.status_code == 200
            assert all(
                "cdph" in (d["left"]["source"], d["right"]["source"])
                for d in listed.json()["disputes"]
            )

            # Undo the third decision from its history.
            page.goto(f"{base}/review/disputes/{third.dispute_id}")
            history = page.locator(".history li.event.decision")
            expect(history.first).to_contain_text("different")
            history.first.get_by_role("button", name="Undo").click()
            expect(page.locator(".flash")).to_contain_text("undone")
            expect(page.locator(".history li.event.undo")).to_have_count(1)
            expect(page.locator(".history li.event.decision.undone")).to_have_count(1)

            # The queue counts what is left.
            page.goto(f"{base}/review/")
            left_after = int(page.locator("#left-count strong").inner_text())
            assert left_after == left_before - 2
        finally:
            browser.close()

    # The store holds exactly what happened, and the constraints in force.
    with ReviewStore(store) as s:
        kinds = [(e.kind, e.verdict, e.username, e.department) for e in s.events()]
    assert kinds == [
        ("decision", "different", "alice", "cdph"),
        ("decision", "same", "alice", "cdph"),
        ("decision", "different", "alice", "cdph"),
        ("undo", None, "alice", "cdph"),
    ]
    constraints = load_constraints(store)
    assert constraints.cannot_link == [linked.pair]
    assert constraints.must_link == [unlinked.pair]

    # The next build follows the decisions that stand.
    _run("build", "--config", str(world["config"]), "--out", str(tmp / "build2"),
         "--review-store", str(store))  # fmt: skip
    db2 = tmp / "build2" / "crosswalk.sqlite"
    before = _entities(db1, [*linked.pair, *unlinked.pair])
    after = _entities(db2, [*linked.pair, *unlinked.pair])
    assert before[linked.pair[0]] == before[linked.pair[1]]
    assert after[linked.pair[0]] != after[linked.pair[1]], "'different' did not split the pair"
    assert before[unlinked.pair[0]] != before[unlinked.pair[1]]
    assert after[unlinked.pair[0]] == after[unlinked.pair[1]], "'same' did not join the pair"
    assert _link_status(db2, linked.pair) == "cannot_link"
    assert _link_status(db2, unlinked.pair) == "must_link"
    assert _link_status(db2, third.pair) != "cannot_link", "an undone decision still binds"
    # Settled disputes are not raised again.
    with ReviewStore(store) as s:
        for d in (linked, unlinked):
            now = s.dispute(d.dispute_id)
            assert now is not None and now.status == "decided"
        assert s.standing_decision(third.pair) is None
    for name in ("review-queue.png", "review-pair.png"):
        assert (ARTIFACTS / name).stat().st_size > 10_000, name
