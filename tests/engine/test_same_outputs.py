"""The comparison of ``bench/same_outputs.py`` on small real SQLite files (no builds)."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pytest
from bench_scripts import load

so = load("same_outputs")

CONFIG = {"model": {"seed": 1}, "blocking": {"window": 6}}


def _db(path: Path, changes: dict[str, object] | None = None) -> Path:
    """A small output-like file: ``meta`` (key/value), ``facilities``, ``links``, an index."""
    c = {
        "name": "ALPHA",
        "beds": 2,
        "weight": 0.1 + 0.2,
        "extra_row": False,
        "built_at": "2026-01-01T00:00:00+00:00",
        "config": CONFIG,
        **(changes or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    con.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;"
        "CREATE TABLE facilities (entity_id TEXT, name TEXT, beds);"
        "CREATE TABLE links (l INTEGER, r INTEGER, weight REAL);"
        "CREATE INDEX links_l ON links (l);"
    )
    con.executemany(
        "INSERT INTO meta VALUES (?, ?)",
        [
            ("build_id", str(path)),
            ("built_at", c["built_at"]),
            ("config", json.dumps(c["config"])),
            ("engine_version", "0.1.0"),
        ],
    )
    con.executemany(
        "INSERT INTO facilities VALUES (?, ?, ?)",
        [("e1", c["name"], 1), ("e2", "BETA", c["beds"])],
    )
    con.executemany("INSERT INTO links VALUES (?, ?, ?)", [(1, 2, c["weight"]), (3, 4, -1.5)])
    if c["extra_row"]:
        con.execute("INSERT INTO links VALUES (5, 6, 0.0)")
    con.commit()
    con.close()
    return path


def _pair(tmp_path: Path, **changes: object) -> list[str]:
    a = _db(tmp_path / "before" / "crosswalk.sqlite")
    b = _db(tmp_path / "after" / "crosswalk.sqlite", changes)
    return list(so.compare_sqlite(a, b))


def test_identical_files_have_no_difference(tmp_path: Path) -> None:
    assert _pair(tmp_path) == []


def test_a_differing_value_names_table_rowid_column_and_both_values(tmp_path: Path) -> None:
    assert _pair(tmp_path, name="ALPHA HOSPITAL") == [
        "table facilities: rowid 1 column name: before 'ALPHA' (text), "
        "after 'ALPHA HOSPITAL' (text)"
    ]


def test_a_differing_type_is_a_difference(tmp_path: Path) -> None:
    assert _pair(tmp_path, beds=2.0) == [
        "table facilities: rowid 2 column beds: before 2 (integer), "
        "after 2.0 (real, 0x1.0000000000000p+1)"
    ]


def test_an_extra_row_is_a_difference(tmp_path: Path) -> None:
    assert _pair(tmp_path, extra_row=True) == [
        "table links: rowid 3 only after: l=5 (integer), r=6 (integer), weight=0.0 (real, 0x0.0p+0)"
    ]


def test_floats_are_compared_bit_for_bit(tmp_path: Path) -> None:
    w = 0.1 + 0.2
    last_bit = math.nextafter(w, 1.0)
    assert last_bit != w and f"{last_bit:.15g}" == f"{w:.15g}"
    assert _pair(tmp_path, weight=last_bit) == [
        f"table links: rowid 1 column weight: before {w!r} (real, {w.hex()}), "
        f"after {last_bit!r} (real, {last_bit.hex()})"
    ]


def test_build_id_and_built_at_are_ignored(tmp_path: Path) -> None:
    # build_id differs already: each file's is its own path.
    assert _pair(tmp_path, built_at="2027-06-30T12:00:00+00:00") == []


def test_a_comparisons_key_on_one_side_of_the_config_is_ignored(tmp_path: Path) -> None:
    assert _pair(tmp_path, config={**CONFIG, "comparisons": [{"name": "name"}]}) == []
    [line] = _pair(tmp_path / "seed", config={**CONFIG, "model": {"seed": 2}})
    assert line.startswith("table meta: rowid 3 column value:")


def test_only_the_four_real_differences_are_reported(tmp_path: Path) -> None:
    found = _pair(
        tmp_path,
        name="ALPHA HOSPITAL",
        beds=2.0,
        extra_row=True,
        weight=math.nextafter(0.1 + 0.2, 1.0),
        built_at="2027-06-30T12:00:00+00:00",
    )
    assert [line.split(":")[0] + ":" + line.split(":")[1] for line in found] == [
        "table facilities: rowid 1 column name",
        "table facilities: rowid 2 column beds",
        "table links: rowid 1 column weight",
        "table links: rowid 3 only after",
    ]


def test_past_the_rows_shown_the_count_of_differing_rows(tmp_path: Path) -> None:
    a = _db(tmp_path / "before" / "crosswalk.sqlite")
    b = _db(tmp_path / "after" / "crosswalk.sqlite")
    with sqlite3.connect(b) as con:
        con.executemany("INSERT INTO links VALUES (?, ?, 0.0)", [(i, i) for i in range(10)])
    con.close()
    found = so.compare_sqlite(a, b)
    assert len(found) == so.ROWS_SHOWN + 1
    assert found[-1] == "table links: 10 differing rows in all"


ALONE: dict[str, dict[str, object]] = {
    "value": {"name": "ALPHA HOSPITAL"},
    "type": {"beds": 2.0},
    "extra_row": {"extra_row": True},
    "float": {"weight": math.nextafter(0.1 + 0.2, 1.0)},
    "built_at": {"built_at": "2027-06-30T12:00:00+00:00"},
}


@pytest.mark.parametrize("case", list(ALONE))
def test_each_difference_alone(tmp_path: Path, case: str) -> None:
    assert len(_pair(tmp_path, **ALONE[case])) == (0 if case == "built_at" else 1)


def test_a_schema_difference_is_reported(tmp_path: Path) -> None:
    a = _db(tmp_path / "before" / "crosswalk.sqlite")
    b = _db(tmp_path / "after" / "crosswalk.sqlite")
    with sqlite3.connect(b) as con:
        con.execute("CREATE INDEX links_r ON links (r)")
    con.close()
    assert so.compare_sqlite(a, b) == ["schema: before only [], after only [('index', 'links_r')]"]


def test_the_read_only_connection_quotes_the_path(tmp_path: Path) -> None:
    a = _db(tmp_path / "dir#1" / "a?b%c" / "crosswalk.sqlite")
    b = _db(tmp_path / "plain" / "crosswalk.sqlite", {"name": "OTHER"})
    assert len(so.compare_sqlite(a, b)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir#1", "plain"]
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        so.connect_ro(a).execute("CREATE TABLE t (x)")


def test_json_files_without_their_times(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "datapackage.json", tmp_path / "b" / "datapackage.json"
    for path, created, size in ((a, "2026-01-01", 1.5), (b, "2027-01-01", 1.5)):
        path.parent.mkdir()
        path.write_text(json.dumps({"created": created, "resources": [{"bytes": size}]}))
    assert so.compare_json(a, b) == []
    b.write_text(json.dumps({"created": "x", "resources": [{"bytes": 1}]}))
    assert so.compare_json(a, b) == [
        "datapackage.json.resources[0].bytes: before 1.5 (float), after 1 (int)"
    ]
