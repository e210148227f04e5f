"""End to end, the grouped queue: the real build, the real server, Debian's Chromium.

The embedded pair is built with identifiers and a review store. An admin signs in,
finds on the queue a group (the disputes between the same two entities), decides it
with one click, sees every dispute of the group leave the queue, undoes the decision
from the history of one of its pairs, and finds the whole group open again. The store
holds one decision and one undo, each covering every pair of the group; the next build
with the store binds every pair of a grouped decision. Screenshot: tests/artifacts/.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from test_review_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, CLI, ROOT, _free_port, _run

from api.review.web import PAGE_SIZE
from crosswalk.review import ReviewStore, load_constraints
from crosswalk.review.store import pair_key

PASSWORD = "admin-steward-password-2020"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The build with identifiers, its review store with an admin, and the server."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make browser).")
    tmp = tmp_path_factory.mktemp("review-groups")
    config = ROOT / "data" / "sources.toml"
    store = tmp / "review.sqlite"
    _run("build", "--config", str(config), "--out", str(tmp / "build1"),
         "--review-store", str(store))  # fmt: skip
    _run(
        "reviewers", "add", "--store", str(store), "--config", str(config),
        "--department", "cdph", "--username", "steward", "--admin", "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
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
        yield {"tmp": tmp, "config": config, "store": store, "base": base}
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def test_a_grouped_decision_and_its_undo(served: dict[str, Any]) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, store, tmp = served["base"], served["store"], served["tmp"]
    with ReviewStore(store) as s:
        listed = s.disputes(status="open")
    keys = [d.group_key for d in listed]
    position, group = next((i, k) for i, k in enumerate(keys) if k and keys.count(k) > 1)
    members = [d for d in listed if d.group_key == group]
    page_no = position // PAGE_SIZE + 1
    quoted = json.dumps(group)  # a CSS string: the key holds double quotes
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            page.goto(f"{base}/review/")
            page.fill("#username", "steward")
            page.fill("#password", PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", name="Disputes")).to_be_visible()
            left_before = int(page.locator("#left-count strong").inner_text())

            # The group is one row with one decision for all its disputes, listed beneath it.
            page.goto(f"{base}/review/?page={page_no}")
            head = page.locator(f"tr.group-head[data-group={quoted}]")
            expect(head).to_have_count(1)
            expect(head).to_contain_text(f"{len(members)} disputes between the same two entities")
            expect(page.locator(f"tr.grouped[data-group={quoted}]")).to_have_count(len(members))
            page.screenshot(path=str(ARTIFACTS / "review-queue-groups.png"), full_page=False)
            head.get_by_role("button", name=re.compile(r"^Different \(all")).click()
            expect(page.locator(".flash")).to_contain_text(
                f"{len(members)} disputes of one group: recorded 'different'"
            )
            left_after = int(page.locator("#left-count strong").inner_text())
            assert left_after == left_before - len(members)

            # Undo from the history of one of its pairs: the whole group opens again.
            page.goto(f"{base}/review/disputes/{members[-1].dispute_id}")
            history = page.locator(".history li.event.decision")
            expect(history.first).to_contain_text("different")
            history.first.get_by_role("button", name="Undo").click()
            expect(page.locator(".flash")).to_contain_text("undone")
            page.goto(f"{base}/review/")
            assert int(page.locator("#left-count strong").inner_text()) == left_before
            page.goto(f"{base}/review/?page={page_no}")
            expect(page.locator(f"tr.group-head[data-group={quoted}]")).to_have_count(1)

            # Decide it again, 'same' this time, for the next build.
            head = page.locator(f"tr.group-head[data-group={quoted}]")
            head.get_by_role("button", name=re.compile(r"^Same facility \(all")).click()
            expect(page.locator(".flash")).to_contain_text("recorded 'same'")
        finally:
            browser.close()

    wanted = {pair_key(*d.pair) for d in members}
    with ReviewStore(store) as s:
        events = s.events()
    assert [(e.kind, e.verdict) for e in events] == [
        ("decision", "different"),
        ("undo", None),
        ("decision", "same"),
    ]
    for e in events:
        assert {pair_key(*p) for p in e.pairs} == wanted, "one event covers the whole group"
    assert {pair_key(*p) for p in load_constraints(store).must_link} == wanted

    # The next build binds every pair of the grouped decision.
    _run("build", "--config", str(served["config"]), "--out", str(tmp / "build2"),
         "--review-store", str(store))  # fmt: skip
    db2 = tmp / "build2" / "crosswalk.sqlite"
    conn = sqlite3.connect(db2)
    try:
        for d in members:
            (sl, il), (sr, ir) = d.pair
            a = conn.execute(
                "SELECT entity_id FROM records WHERE source = ? AND record_id = ?", (sl, il)
            ).fetchone()[0]
            b = conn.execute(
                "SELECT entity_id FROM records WHERE source = ? AND record_id = ?", (sr, ir)
            ).fetchone()[0]
            assert a == b, f"'same' on the group did not join {d.pair}"
    finally:
        conn.close()
    assert (ARTIFACTS / "review-queue-groups.png").stat().st_size > 10_000
