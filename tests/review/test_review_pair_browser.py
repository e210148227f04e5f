"""The pair page's waterfall in a real Chromium: a real build of the real-data slice,
its review store, the real server. The steward opens a dispute from the queue and
reads the weight from the prior, bar after bar, to the match weight."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from review_minixwalk import PASSWORDS
from test_review_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, _free_port
from test_review_pair_page import build

from crosswalk.review import ReviewStore
from crosswalk.review.auth import create_reviewer

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "crosswalk.cli"]

pytestmark = [pytest.mark.browser]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make browser).")
    tmp = tmp_path_factory.mktemp("pair-browser")
    store = tmp / "review.sqlite"
    db = build(tmp / "build", store)
    with ReviewStore(store) as s:
        create_reviewer(s, "root", "cdph", PASSWORDS["root"], admin=True)
    port = _free_port()
    log = (tmp / "serve.log").open("w")
    proc = subprocess.Popen(
        [*CLI, "serve", "--db", str(db), "--review-store", str(store),
         "--secret-key-file", str(tmp / "keys" / "session.key"), "--port", str(port)],
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
            if proc.poll() is not None:
                pytest.fail("the server exited: " + (tmp / "serve.log").read_text())
            time.sleep(0.25)
        else:
            pytest.fail("the server did not start: " + (tmp / "serve.log").read_text())
        yield {"base": base, "store": store}
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def _edges(box: dict[str, float], bits: float) -> tuple[float, float]:
    """Where a bar of ``bits`` starts and ends on the page (a negative one runs leftwards)."""
    left, right = box["x"], box["x"] + box["width"]
    return (left, right) if bits >= 0 else (right, left)


def test_the_waterfall_reads_from_the_prior_to_the_weight(server: dict[str, Any]) -> None:
    from playwright.sync_api import expect, sync_playwright

    base = server["base"]
    with ReviewStore(server["store"]) as s:
        scored = [
            d
            for d in s.disputes(status="open", limit=10_000)
            if (d.explanation.get("link") or {}).get("match_weight") is not None
        ]
    # The pair with the most fields pulling either way.
    dispute = max(
        scored, key=lambda d: sum(abs(f["weight"]) > 0 for f in d.explanation["fields"].values())
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            page.goto(f"{base}/review/")
            page.fill("#username", "root")
            page.fill("#password", PASSWORDS["root"])
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", name="Disputes")).to_be_visible()
            page.locator(
                f'table.queue a[href^="/review/disputes/{dispute.dispute_id}"]'
            ).first.click()
            expect(
                page.get_by_role("heading", name=f"Dispute {dispute.dispute_id}")
            ).to_be_visible()
            waterfall = page.locator("table.waterfall")
            expect(waterfall).to_be_visible()
            steps = waterfall.locator("tr.step")
            n = steps.count()
            assert n == 1 + len(dispute.explanation["fields"])
            # The prior is the first bar, and starts at zero.
            expect(steps.first.locator("th")).to_have_text("Prior")
            bits = [float(steps.nth(i).get_attribute("data-bits") or "nan") for i in range(n)]
            total = waterfall.locator("tr.total")
            weight = float(total.get_attribute("data-weight") or "nan")
            assert weight == pytest.approx(dispute.explanation["link"]["match_weight"], abs=1e-4)
            assert sum(bits) == pytest.approx(weight, abs=0.01), "the bars add up to the weight"
            # Drawn as a waterfall: each bar starts where the one before it ends, the
            # first at zero, and the weight's bar runs from zero to where the last ends.
            zero = steps.first.locator("line.zero").bounding_box()
            assert zero is not None
            at = zero["x"]
            for i in range(n):
                box = steps.nth(i).locator("rect").bounding_box()
                assert box is not None
                start, end = _edges(box, bits[i])
                assert start == pytest.approx(at, abs=2.5), (
                    f"bar {i} does not start where {i - 1} ends"
                )
                at = end if abs(bits[i]) > 0.05 else at
            box = total.locator("rect").bounding_box()
            assert box is not None
            start, end = _edges(box, weight)
            assert start == pytest.approx(zero["x"], abs=2.5)
            assert end == pytest.approx(at, abs=2.5)
            page.locator("section.contrib").screenshot(path=str(ARTIFACTS / "review-waterfall.png"))
        finally:
            browser.close()
    assert (ARTIFACTS / "review-waterfall.png").stat().st_size > 5_000
