"""Finding releases, naming versions and drawing the report's charts (no build needed)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from crosswalk.errors import NotFoundError, ReleaseError
from crosswalk.release import (
    PARTIAL_PREFIX,
    latest_release,
    latest_release_db,
    list_releases,
    next_version,
    resolve_release,
)
from crosswalk.report import Mark, column_chart, hbar_chart


def fake_release(root: Path, name: str, sequence: int, version: str | None = None) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "crosswalk.sqlite").write_bytes(b"")
    (d / "manifest.json").write_text(json.dumps({"version": version or name, "sequence": sequence}))
    return d


def test_latest_is_the_greatest_sequence_and_leftovers_are_ignored(tmp_path: Path) -> None:
    assert latest_release_db(tmp_path / "none") is None
    assert list_releases(tmp_path) == []
    fake_release(tmp_path, "2026-11-25", 1)
    fake_release(tmp_path, "2026-11-25.2", 2)
    fake_release(tmp_path, "2026-12-01", 10)
    fake_release(tmp_path, f"{PARTIAL_PREFIX}abc", 99)  # an interrupted release
    (tmp_path / "incomplete").mkdir()
    (tmp_path / "incomplete" / "crosswalk.sqlite").write_bytes(b"")
    assert [r.version for r in list_releases(tmp_path)] == [
        "2026-11-25",
        "2026-11-25.2",
        "2026-12-01",
    ]
    latest = latest_release(tmp_path)
    assert latest is not None and latest.sequence == 10
    assert latest_release_db(tmp_path) == tmp_path / "2026-12-01" / "crosswalk.sqlite"


def test_unreadable_manifest_is_an_error(tmp_path: Path) -> None:
    d = fake_release(tmp_path, "2026-11-25", 1)
    (d / "manifest.json").write_text("{not json")
    with pytest.raises(ReleaseError, match="not a readable release manifest"):
        list_releases(tmp_path)


def test_versions_are_dates_then_numbered_the_same_day(tmp_path: Path) -> None:
    day = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)
    assert next_version(tmp_path, day) == "2026-11-25"
    fake_release(tmp_path, "2026-11-25", 1)
    assert next_version(tmp_path, day) == "2026-11-25.2"
    fake_release(tmp_path, "2026-11-25.2", 2)
    assert next_version(tmp_path, day) == "2026-11-25.3"
    # The date is the UTC date of the publication.
    pacific = timezone(timedelta(hours=-8))
    assert next_version(tmp_path, datetime(2026, 11, 25, 18, 0, tzinfo=pacific)) == "2026-11-26"


def test_resolve_by_version_or_path(tmp_path: Path) -> None:
    d = fake_release(tmp_path, "2026-11-25", 1)
    assert resolve_release("2026-11-25", tmp_path) == d
    assert resolve_release(str(d), None) == d
    assert resolve_release(str(d / "crosswalk.sqlite"), None) == d
    with pytest.raises(NotFoundError, match="known releases"):
        resolve_release("2020-01-01", tmp_path)


def test_charts_are_well_formed_svg() -> None:
    svg = hbar_chart(["cdph,hcai", "cdph", "hcai & <x>"], [7823, 4033, 150], "Entities")
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg") and len(root.findall("{http://www.w3.org/2000/svg}rect")) == 3
    col = column_chart(
        [str(i) for i in range(60)],
        [("a", "#000", [float(i) for i in range(60)]), ("b", "#999", [1.0] * 60)],
        "Histogram",
        "x",
        "y",
        [Mark("band", 10.0, 20.0, "a band"), Mark("line", 15.0, 15.0, "a line")],
    )
    root = ET.fromstring(col)
    # the first "a" bar is 0; the band is a rect too
    assert len(root.findall("{http://www.w3.org/2000/svg}rect")) == 119 + 1
    assert sorted(e.get("data-mark") for e in root.iter() if e.get("data-mark")) == ["band", "line"]
    assert hbar_chart([], [], "empty").startswith("<p>")
