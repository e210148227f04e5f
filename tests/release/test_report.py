"""The release report as an analyst reads it: counts written out, the link threshold and the
borderline band marked on the match weights, no log axis."""

from __future__ import annotations

import re
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from crosswalk import build, load_config
from crosswalk.release import publish_release
from crosswalk.stages.kernel.model import probability_bits

SLICE = Path(__file__).resolve().parents[1] / "data" / "slice.toml"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    build(load_config(SLICE), root / "out", progress=False)
    return publish_release(root / "out", root / "releases", version="v1").path


def _figures(release: Path) -> dict[str, ET.Element]:
    """The report's charts, by their section's heading."""
    text = (release / "report.html").read_text(encoding="utf-8")
    found = {}
    for heading, svg in re.findall(
        r"<h2>([^<]+)</h2>\s*(?:<figure>)?\s*(<svg.*?</svg>)", text, re.S
    ):
        found[heading] = ET.fromstring(svg)
    return found


def _texts(svg: ET.Element) -> list[str]:
    return [t.text or "" for t in svg.iter(f"{SVG}text")]


def test_cluster_sizes_show_every_count_on_a_linear_axis(release: Path) -> None:
    svg = _figures(release)["Cluster sizes"]
    with sqlite3.connect(release / "crosswalk.sqlite") as conn:
        sizes = conn.execute(
            "SELECT member_count, count(*) FROM entities GROUP BY member_count"
        ).fetchall()
    texts = _texts(svg)
    for size, n in sizes:
        assert f"{n:,}" in texts, (size, n, texts)
    assert "log" not in ET.tostring(svg, encoding="unicode")
    text = (release / "report.html").read_text(encoding="utf-8")
    assert "log scale" not in text


def test_match_weights_mark_the_threshold_and_the_borderline_band(release: Path) -> None:
    svg = _figures(release)["Match weights"]
    marks = {m.get("data-mark"): m for m in svg.iter() if m.get("data-mark")}
    assert set(marks) == {"threshold", "borderline"}, marks
    line, band = marks["threshold"], marks["borderline"]
    x = float(line.get("x1") or 0)
    lo, hi = float(band.get("x") or 0), float(band.get("x") or 0) + float(band.get("width") or 0)
    assert lo < x < hi  # the threshold (p 0.5) lies inside the band (p 0.2 to 0.9)
    label = " ".join(_texts(svg))
    assert "threshold" in label and "borderline" in label
    assert f"{probability_bits(0.5):.1f}" in label or "0.5" in label
    # Every column's count is written out: the sum of its bars (kept and not kept).
    totals: dict[str, int] = {}
    for rect in svg.iter(f"{SVG}rect"):
        title = rect.find(f"{SVG}title")
        if title is not None and title.text:
            label, count = title.text.rsplit(": ", 1)
            column = label.split(" · ")[0]
            totals[column] = totals.get(column, 0) + int(count.replace(",", ""))
    with sqlite3.connect(release / "crosswalk.sqlite") as conn:
        (pairs,) = conn.execute("SELECT count(*) FROM links").fetchone()
    assert sum(totals.values()) == pairs
    texts = _texts(svg)
    for column, total in totals.items():
        assert f"{total:,}" in texts, (column, total)


def test_datasette_describes_the_wide_view(release: Path) -> None:
    import json

    tables = json.loads((release / "metadata.json").read_text(encoding="utf-8"))["databases"][
        "crosswalk"
    ]["tables"]
    wide = tables["crosswalk_wide"]
    assert "one row per entity" in wide["description"].lower()
    with sqlite3.connect(release / "crosswalk.sqlite") as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(crosswalk_wide)")]
    assert set(wide["columns"]) == set(columns), (wide["columns"], columns)
    assert all(wide["columns"].values())
