"""Formula injection: every CSV the project writes neutralizes the text cells a spreadsheet
would run, and crosswalk.sqlite and crosswalk.parquet keep the values as they are.

A real slice of the embedded listings is built, released, rebuilt and released again by the
command line, with hostile names, an address, a city and a record id in the HCAI listing.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crosswalk.artifact import schema
from crosswalk.artifact.writer import CHUNK_ROWS, formula_cells, write_csv, write_frame_csv

ROOT = Path(__file__).resolve().parents[2]
TEST_DATA = ROOT / "tests" / "data"

#: Hostile values put into the HCAI listing: (row, column, value as the file has it).
HOSTILE = [
    (0, "FACILITY_NAME", '=HYPERLINK("http://x","y")'),
    (1, "FACILITY_NAME", "+cmd|' /C calc'!A0"),
    (2, "FACILITY_NAME", "@SUM(1)"),
    (3, "FACILITY_NAME", "-2+3"),
    (4, "FACILITY_NAME", "\t=cmd"),  # stripped when read: published as '=cmd
    (5, "FACILITY_NAME", "+1 916 555 0100"),
    (6, "DBA_ADDRESS1", "'=A1+1"),  # begins with a quote already: one more quote
    (7, "DBA_CITY", "@SUM(1)"),
]
#: The crosswalk's raw value (stripped) and the CSV cell, for each of them.
EXPECTED = {
    '=HYPERLINK("http://x","y")': '\'=HYPERLINK("http://x","y")',
    "+cmd|' /C calc'!A0": "'+cmd|' /C calc'!A0",
    "@SUM(1)": "'@SUM(1)",
    "-2+3": "'-2+3",
    "=cmd": "'=cmd",
    "+1 916 555 0100": "'+1 916 555 0100",
    "'=A1+1": "''=A1+1",
}
FIELDS = {"FACILITY_NAME": "name", "DBA_ADDRESS1": "address", "DBA_CITY": "city"}
#: A record id beginning with '-': ids are text cells like any other.
ODD_ID_ROW = 8
DROPPED_ROW = 20  # left out of the second edition: its CDPH partner's entity loses a member
DANGEROUS = tuple(schema.FORMULA_STARTS)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "crosswalk.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


@dataclass
class World:
    data: Path
    build1: Path
    build2: Path
    releases: Path
    odd_id: str
    hostile_ids: list[str]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("csvinject")
    data = root / "data"
    shutil.copytree(TEST_DATA, data)
    hcai_path = data / "hcai_slice.csv"
    hcai = pd.read_csv(hcai_path, dtype=str, keep_default_na=False)
    for row, column, value in HOSTILE:
        hcai.loc[row, column] = value
    odd_id = "-" + hcai.loc[ODD_ID_ROW, "OSHPD_ID"]
    hcai.loc[ODD_ID_ROW, "OSHPD_ID"] = odd_id
    hcai.to_csv(hcai_path, index=False)
    hostile_ids = [hcai.loc[row, "OSHPD_ID"] for row, _, _ in HOSTILE]
    releases = root / "releases"
    config = str(data / "slice.toml")
    build1, build2 = root / "build1", root / "build2"
    _run("build", "--config", config, "--out", str(build1), "--quiet")
    _run("release", "--build", str(build1), "--releases", str(releases), "--version", "v1")
    hcai.drop(index=DROPPED_ROW).to_csv(hcai_path, index=False)
    _run("build", "--config", config, "--out", str(build2), "--releases", str(releases), "--quiet")
    _run("release", "--build", str(build2), "--releases", str(releases), "--version", "v2")
    return World(data, build1, build2, releases, odd_id, hostile_ids)


def _cells(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _query(db: Path, sql: str) -> pd.DataFrame:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return pd.read_sql_query(sql, conn)
    finally:
        conn.close()


def _no_cell_a_spreadsheet_runs(rows: list[dict[str, str]]) -> None:
    for row in rows:
        for column, cell in row.items():
            assert not cell.startswith(DANGEROUS), (column, cell)


@pytest.mark.parametrize("which", ["build", "release"])
def test_crosswalk_csv_neutralizes_hostile_cells(world: World, which: str) -> None:
    path = (world.build1 if which == "build" else world.releases / "v1") / "crosswalk.csv"
    rows = _cells(path)
    by_id = {(r["source"], r["record_id"]): r for r in rows}
    for (row, column, value), record_id in zip(HOSTILE, world.hostile_ids, strict=True):
        cell = by_id[("hcai", record_id)][FIELDS[column]]
        assert cell == EXPECTED[value.strip()], (row, cell)
    assert by_id[("hcai", "'" + world.odd_id)]["record_id"] == "'" + world.odd_id
    _no_cell_a_spreadsheet_runs(rows)
    # Neutralized cells are quoted, their own quotes doubled.
    text = path.read_bytes()
    assert b'"\'=HYPERLINK(""http://x"",""y"")"' in text
    assert b'"\'+1 916 555 0100"' in text
    assert b'"\'=cmd"' in text


def test_sqlite_and_parquet_keep_the_raw_values(world: World) -> None:
    records = _query(
        world.build1 / "crosswalk.sqlite",
        "SELECT source, record_id, name, address, city FROM records WHERE source = 'hcai'",
    ).set_index("record_id")
    parquet = pq.read_table(world.releases / "v1" / "crosswalk.parquet").to_pandas()
    parquet = parquet[parquet["source"] == "hcai"].set_index("record_id")
    raw = {v.strip() for _, _, v in HOSTILE}
    for (_, column, value), record_id in zip(HOSTILE, world.hostile_ids, strict=True):
        assert records.loc[record_id, FIELDS[column]] == value.strip()
        assert parquet.loc[record_id, FIELDS[column]] == value.strip()
    assert world.odd_id in records.index and world.odd_id in parquet.index
    assert raw <= set(EXPECTED)


def test_every_other_cell_is_written_as_before(world: World) -> None:
    """Byte for byte, each row without a neutralized cell is what pandas' ``to_csv`` (the
    writer's model) writes for the crosswalk's values; each neutralized row differs from it
    only in its neutralized cells."""
    path = world.build1 / "crosswalk.csv"
    columns = [c.name for c in schema.CSV_COLUMNS]
    frame = _query(
        world.build1 / "crosswalk.sqlite",
        f"SELECT {', '.join(columns)} FROM records ORDER BY source, record_id",
    )
    frame["match_probability"] = frame["match_probability"].round(6)
    expected = frame.to_csv(index=False, lineterminator="\n").splitlines()
    got = path.read_text(encoding="utf-8").splitlines()
    assert len(got) == len(expected) == len(frame) + 1
    assert got[0] == expected[0]
    hostile = frame["record_id"].isin([*world.hostile_ids, world.odd_id]).to_numpy()
    assert hostile.sum() == len(HOSTILE) + 1
    for i in np.flatnonzero(~hostile):
        assert got[i + 1] == expected[i + 1]
    for i in np.flatnonzero(hostile):
        (ours,) = csv.reader([got[i + 1]])
        (theirs,) = csv.reader([expected[i + 1]])
        for cell, raw in zip(ours, theirs, strict=True):
            assert cell == (("'" + raw) if re.match(r"'*[=+\-@\t\r\n\0]", raw) else raw)


def test_changes_csv_of_builds_and_releases_and_diff(world: World) -> None:
    """``members_changed`` details begin with '+' ("+0 -1 members (now 1)"): neutralized in
    every changes CSV, raw in the ``changes`` table."""
    raw = _query(
        world.build2 / "crosswalk.sqlite",
        "SELECT entity_id, change, details FROM changes WHERE change = 'members_changed'",
    )
    assert len(raw) and raw["details"].str.startswith("+").all()
    want = dict(zip(raw["entity_id"], "'" + raw["details"], strict=True))
    diff_csv = world.data.parent / "diff.csv"
    _run("diff", "v1", "v2", "--releases", str(world.releases), "--csv", str(diff_csv))
    stdout = _run("diff", "v1", "v2", "--releases", str(world.releases), "--csv", "-").stdout
    printed = stdout[stdout.index("entity_id,change,details\n") :]
    written = [
        world.build2 / "changes.csv",
        world.releases / "v2" / "changes.csv",
        diff_csv,
    ]
    for name, text in [*((str(p), p.read_bytes().decode()) for p in written), ("-", printed)]:
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        _no_cell_a_spreadsheet_runs(rows)
        got = {r["entity_id"]: r["details"] for r in rows if r["change"] == "members_changed"}
        assert got == want, name
    released = _query(
        world.releases / "v2" / "crosswalk.sqlite",
        "SELECT details FROM changes WHERE change = 'members_changed'",
    )
    assert released["details"].str.startswith("+").all()


def test_evaluate_errors_csv(world: World) -> None:
    """The errors CSV of ``crosswalk evaluate`` carries the records' names: neutralized."""
    truth = world.data.parent / "truth.csv"
    pd.DataFrame({"FACID": "999999999", "OSHPD_ID": world.hostile_ids}).to_csv(truth, index=False)
    errors = world.data.parent / "errors.csv"
    db = world.build1 / "crosswalk.sqlite"
    _run("evaluate", "--db", str(db), "--truth", str(truth), "--errors", str(errors), "--json")
    rows = _cells(errors)
    _no_cell_a_spreadsheet_runs(rows)
    names = {r["record_id_r"]: r["name_r"] for r in rows if r["error"] == "false_negative"}
    for (_, column, value), record_id in zip(HOSTILE, world.hostile_ids, strict=True):
        if column == "FACILITY_NAME":
            assert names[record_id] == EXPECTED[value.strip()]
    # Numbers stay numbers; the flags are written as before.
    assert {r["labelled"] for r in rows} <= {"True", "False"}
    assert all(r["match_probability"][:1] in "0123456789" for r in rows)


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+2", '"\'=1+2"'),
        ('=1+2";=1+2', '"\'=1+2"";=1+2"'),  # OWASP's examples
        ("=1+2'\" ;,=1+2", '"\'=1+2\'"" ;,=1+2"'),
        ("-", '"\'-"'),
        ("\tx", '"\'\tx"'),
        ("\rx", '"\'\rx"'),
        ("\nx", '"\'\nx"'),
        ("\0x", '"\'\0x"'),
        ("'@x", "\"''@x\""),
        ("''+x", "\"'''+x\""),
        ("'plain", "'plain"),  # a quote before an ordinary character: left as it is
        ("a=b", "a=b"),
        ("＝1+2", "＝1+2"),  # a full-width sign is not a formula
        ("é-x", "é-x"),
        ("", ""),
        (None, ""),
    ],
)
def test_the_rule_cell_by_cell(tmp_path: Path, value: str | None, cell: str) -> None:
    frame = pd.DataFrame({"t": pd.Series([value, "x"], dtype="string[pyarrow]")})
    write_frame_csv(tmp_path / "out.csv", frame)
    assert (tmp_path / "out.csv").read_bytes() == f"t\n{cell}\nx\n".encode()
    (read,) = list(csv.reader(io.StringIO(cell))) or [[""]]
    assert read == [("'" + value) if cell.startswith("\"'") else (value or "")]


def test_numbers_are_not_text(tmp_path: Path) -> None:
    """Numeric columns are written as numbers: a negative one keeps its sign, unquoted."""
    frame = pd.DataFrame(
        {
            "f": [-0.5, np.nan, 1.0],
            "i": np.array([-3, 0, 4], dtype=np.int64),
            "b": [True, False, True],
            "t": pd.Series(["-0.5", None, "-3"], dtype="string[pyarrow]"),
        }
    )
    write_frame_csv(tmp_path / "out.csv", frame)
    assert (tmp_path / "out.csv").read_text(encoding="utf-8") == (
        'f,i,b,t\n-0.5,-3,True,"\'-0.5"\n,0,False,\n1.0,4,True,"\'-3"\n'
    )


def test_the_rule_in_every_chunk_and_slice(tmp_path: Path) -> None:
    """Cells are looked at in every chunk of rows, in arrays that start inside their buffers
    and in columns of several Arrow chunks."""
    n = 2 * CHUNK_ROWS + 10
    values = np.array([f"v{i}" for i in range(n)], dtype=object)
    hot = [0, CHUNK_ROWS - 1, CHUNK_ROWS, CHUNK_ROWS + 7, n - 1]
    values[hot] = ["=a", "+b", "-c", "@d", '=e,"f"']
    chunked = pa.chunked_array(
        [pa.array(values[:5].tolist()), pa.array(values[5:].tolist()).slice(0)]
    )
    frame = pd.DataFrame(
        {
            "plain": pd.Series(values, dtype="string[pyarrow]"),
            "chunked": pd.Series(pd.arrays.ArrowStringArray(chunked)),
            "object": pd.Series(values, dtype=object),
        }
    )
    for part in (frame, frame.iloc[3:]):
        path = tmp_path / "out.csv"
        write_frame_csv(path, part)
        rows = _cells(path)
        assert len(rows) == len(part)
        for column in part.columns:
            got = [r[column] for r in rows]
            want = [("'" + v) if v[0] in "=+-@" else v for v in part[column]]
            assert got == want


def test_formula_cells_reads_the_first_byte_of_each_cell() -> None:
    """The first bytes are those of the array's own cells, in an array that starts inside its
    buffers too; an empty cell (whose offset points at the next cell's bytes) and a missing
    one are never flagged; a multi-byte character is not mistaken for its bytes."""
    column = pa.array(["=a", "b", "-c", "", "@", "", None, "é", "'-x", "'x", "''=y"])
    got = formula_cells(column).tolist()
    assert got == [True, False, True, False, True, False, False, False, True, False, True]
    assert formula_cells(column.slice(1, 4)).tolist() == [False, True, False, True]
    assert formula_cells(pa.array(["=", ""])).tolist() == [True, False]
    assert formula_cells(pa.array(["", None], type=pa.string())).tolist() == [False, False]
    assert formula_cells(pa.array([], type=pa.string())).tolist() == []


def test_the_documented_phone_is_what_the_writer_writes(tmp_path: Path) -> None:
    """The data dictionary says how a phone is published; the writer writes exactly that."""
    value, cell = schema.PHONE_EXAMPLE
    frame = pd.DataFrame({"phone": pd.Series([value], dtype="string[pyarrow]")})
    write_frame_csv(tmp_path / "out.csv", frame)
    assert (tmp_path / "out.csv").read_text(encoding="utf-8") == f"phone\n{cell}\n"
    doc = (ROOT / "docs" / "data-dictionary.md").read_text(encoding="utf-8")
    assert f"`{cell}`" in doc and f"`{value}`" in doc


def test_write_csv_does_not_prefix_the_probability(tmp_path: Path) -> None:
    records = pd.DataFrame(
        {
            "entity_id": ["E1"],
            "source": ["s"],
            "record_id": ["-1"],
            "name": ["@x"],
            "address": [None],
            "city": ["c"],
            "zip": ["-"],
            "match_probability": [0.1234567],
            "method": ["fuzzy"],
        }
    )
    write_csv(tmp_path / "c.csv", records)
    assert (tmp_path / "c.csv").read_text(encoding="utf-8").splitlines()[1] == (
        'E1,s,"\'-1","\'@x",,c,"\'-",0.123457,fuzzy'
    )
