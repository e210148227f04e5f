"""Sources as they come: a row filter, title rows above the header (csv and xlsx), and
record ids that lost their leading zeros; each bad value a clear error."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from crosswalk.config import RowFilter

HCAI = "hcai_slice.csv"
CDPH = "cdph_slice.xlsx"
SHEET = "HEALTH_FAC_LOCATION_20200507"


def _build(slice_dir: Path) -> subprocess.CompletedProcess[str]:
    config, out = str(slice_dir / "slice.toml"), str(slice_dir / "out")
    command = ["build", "--config", config, "--out", out, "--quiet", "--json"]
    return subprocess.run(
        [sys.executable, "-m", "crosswalk.cli", *command],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _built(slice_dir: Path) -> None:
    proc = _build(slice_dir)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["warnings"] == []


def _refused(slice_dir: Path, *expected: str) -> str:
    proc = _build(slice_dir)
    assert proc.returncode == 2, proc.stdout
    assert "Traceback" not in proc.stderr
    for text in expected:
        assert text in proc.stderr, proc.stderr
    return proc.stderr


def _ids(slice_dir: Path, source: str) -> list[str]:
    with sqlite3.connect(slice_dir / "out" / "crosswalk.sqlite") as db:
        rows = db.execute("SELECT record_id FROM records WHERE source = ?", (source,)).fetchall()
    return sorted(r[0] for r in rows)


def _set(slice_dir: Path, source: str, line: str) -> None:
    """Add ``line`` to the ``[[source]]`` table named ``source`` (after its name)."""
    config = slice_dir / "slice.toml"
    text = config.read_text(encoding="utf-8")
    named = f'name = "{source}"\n'
    assert named in text
    config.write_text(text.replace(named, named + line + "\n", 1), encoding="utf-8")


def _line_of(slice_dir: Path, text: str) -> int:
    config = (slice_dir / "slice.toml").read_text(encoding="utf-8")
    return config[: config.index(text)].count("\n") + 1


def _hcai(slice_dir: Path) -> pd.DataFrame:
    return pd.read_csv(slice_dir / HCAI, dtype=str, keep_default_na=False)


def test_a_row_filter_keeps_one_state_of_a_national_file(slice_dir: Path) -> None:
    frame = _hcai(slice_dir)
    ca = frame["OSHPD_ID"].tolist()
    other = frame.head(40).copy()
    other["OSHPD_ID"] = other["OSHPD_ID"].str.replace("^.", "9", regex=True)
    national = pd.concat([frame.assign(STATE="CA"), other.assign(STATE="NV")], ignore_index=True)
    national.loc[national.index[:3], "STATE"] = " CA "  # spaces around a cell do not count
    national.to_csv(slice_dir / HCAI, index=False)
    _set(slice_dir, "hcai", "filter = ['STATE == \"CA\"', '`DBA_CITY` != \"Nowhere\"']")
    _built(slice_dir)
    assert _ids(slice_dir, "hcai") == sorted(ca)


@pytest.mark.parametrize(
    ("condition", "kept"),
    [
        ('STATE == "CA"', ["1", "3"]),
        ('STATE != "CA"', ["2", "4"]),
        ('STATE in ["NV", "OR"]', ["2"]),
        ("STATE not in ['CA', 'NV']", ["4"]),
        ('STATE != ""', ["1", "2", "3"]),
    ],
)
def test_filter_conditions(condition: str, kept: list[str]) -> None:
    from crosswalk.config import SourceConfig
    from crosswalk.sources import to_canonical

    raw = pd.DataFrame(
        {"ID": ["1", "2", "3", "4"], "NAME": list("abcd"), "STATE": ["CA", "NV", "CA", None]}
    )
    src = SourceConfig("x", "x.csv", "ID", filter=[condition])
    src.fields.name = "NAME"
    assert to_canonical(raw, src, "x").record_id.tolist() == kept


def test_title_rows_above_a_csv_header(slice_dir: Path) -> None:
    body = (slice_dir / HCAI).read_text(encoding="utf-8")
    title = "Licensed Healthcare Facility Listing\nExtracted 2020-10,,\n"
    (slice_dir / HCAI).write_text(title + body, encoding="utf-8")
    _set(slice_dir, "hcai", "header_row = 3")
    _built(slice_dir)
    assert _ids(slice_dir, "hcai") == sorted(_hcai_ids(body))
    # rows are still named as the file numbers its lines
    lines = (title + body).split("\n")
    lines[5] = "," + lines[5].split(",", 1)[1]  # file line 6 loses its id
    (slice_dir / HCAI).write_text("\n".join(lines), encoding="utf-8")
    _refused(slice_dir, "1 record(s) have no id (file lines [6])")


def _hcai_ids(body: str) -> list[str]:
    return [line.split(",", 1)[0] for line in body.splitlines()[1:] if line]


def test_title_rows_above_a_sheet_header_and_ids_that_lost_their_zeros(
    slice_dir: Path,
) -> None:
    """A workbook with two title rows and a blank row above its header, its FACID column
    saved as numbers (010000096 became 10000096): read with header_row and id_width."""
    book = openpyxl.load_workbook(slice_dir / CDPH)
    sheet = book[SHEET]
    column = next(c for c in sheet[1] if c.value == "FACID").column
    ids = [str(sheet.cell(row=r, column=column).value) for r in range(2, sheet.max_row + 1)]
    assert any(i.startswith("0") for i in ids)
    for r in range(2, sheet.max_row + 1):
        cell = sheet.cell(row=r, column=column)
        cell.value = int(str(cell.value))
    sheet.insert_rows(1, amount=3)
    sheet["A1"] = "Licensed and Certified Healthcare Facility Listing"
    sheet["A2"] = "Extract of 2020-05-07"
    book.save(slice_dir / CDPH)
    _set(slice_dir, "cdph", "header_row = 4\nid_width = 9")
    _built(slice_dir)
    assert _ids(slice_dir, "cdph") == sorted(ids)
    # without id_width the ids are read as written: they no longer pair with the truth's
    config = slice_dir / "slice.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("id_width = 9\n", ""))
    _built(slice_dir)
    assert _ids(slice_dir, "cdph") == sorted(str(int(i)) for i in ids)


def test_a_sheet_header_row_that_is_blank_or_past_the_end(slice_dir: Path) -> None:
    _set(slice_dir, "cdph", "header_row = 100000")
    _refused(slice_dir, f"sheet '{SHEET}' row 100000", "past its end")


def test_a_csv_header_row_past_the_end(slice_dir: Path) -> None:
    _set(slice_dir, "hcai", "header_row = 100000")
    _refused(slice_dir, f"{HCAI})", "header_row = 100000, but the file has")


def test_bad_option_values_name_their_line(slice_dir: Path) -> None:
    _set(slice_dir, "hcai", "header_row = 0\nid_width = -2\nfilter = 'STATE = \"CA\"'")
    stderr = _refused(
        slice_dir,
        "3 problem(s) in the configuration",
        "header_row must be at least 1, not 0",
        "id_width must be at least 0, not -2",
        "filter 'STATE = \"CA\"' cannot be read",
        'COLUMN == "VALUE"',
    )
    for key in ("header_row", "id_width", "filter"):
        assert f"slice.toml line {_line_of(slice_dir, key + ' =')} (source[1].{key}" in stderr


def test_a_filter_on_a_missing_column_or_keeping_nothing(slice_dir: Path) -> None:
    _set(slice_dir, "hcai", "filter = 'DBA_CTY == \"NOWHERE\"'")
    _refused(
        slice_dir, "column 'DBA_CTY': the column for filter is missing", "did you mean 'DBA_CITY'?"
    )
    config = slice_dir / "slice.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("DBA_CTY", "DBA_CITY"))
    # no record is in that city
    _refused(slice_dir, "the filter keeps none of the", "DBA_CITY in ['NOWHERE']")


@pytest.mark.parametrize(
    "text",
    ["STATE == CA", 'STATE in "CA"', 'STATE == ["CA"]', "__import__('os')", 'A == "x" or 1'],
)
def test_filter_syntax_is_never_evaluated(text: str) -> None:
    with pytest.raises(ValueError):
        RowFilter.parse(text)
