"""Bad input gets a clear error naming the file and the fix, and the previous output stays intact."""

from __future__ import annotations

import hashlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from crosswalk.config import load_config
from crosswalk.errors import SourceError
from crosswalk.pipeline import build


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture()
def previous_build(slice_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    build(load_config(slice_dir / "slice.toml"), out, progress=False)
    return out


def _cli(config: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "crosswalk.cli",
            "build",
            "--config",
            str(config),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _assert_refused(slice_dir: Path, out: Path, *expected: str) -> str:
    before = _digest(out)
    proc = _cli(slice_dir / "slice.toml", out)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    for text in expected:
        assert text in proc.stderr, proc.stderr
    assert _digest(out) == before, "a failed build must leave the previous output untouched"
    return proc.stderr


def test_missing_file(slice_dir: Path, previous_build: Path) -> None:
    (slice_dir / "hcai_slice.csv").unlink()
    _assert_refused(slice_dir, previous_build, "hcai_slice.csv", "does not exist", "Fix:")


def test_missing_column_suggests_the_close_one(slice_dir: Path, previous_build: Path) -> None:
    csv = slice_dir / "hcai_slice.csv"
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False).rename(
        columns={"DBA_CITY": "DBA_CTY"}
    )
    frame.to_csv(csv, index=False)
    _assert_refused(
        slice_dir, previous_build, "'DBA_CITY'", "fields.city", "did you mean 'DBA_CTY'?"
    )


def test_wrong_encoding_is_named_with_its_line(slice_dir: Path, previous_build: Path) -> None:
    csv = slice_dir / "hcai_slice.csv"
    text = csv.read_text(encoding="utf-8").replace("ALAMEDA", "ALAMEDA CAFÉ", 1)
    csv.write_bytes(text.encode("cp1252"))
    config = slice_dir / "slice.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace('encoding = "auto"', 'encoding = "utf-8"'),
        encoding="utf-8",
    )
    _assert_refused(slice_dir, previous_build, "not valid utf-8", "line", 'encoding = "auto"')


def test_auto_encoding_reads_cp1252(slice_dir: Path, tmp_path: Path) -> None:
    csv = slice_dir / "hcai_slice.csv"
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    frame.loc[0, "FACILITY_NAME"] = "CLÍNICA SAN JOSÉ"
    csv.write_bytes(frame.to_csv(index=False).encode("cp1252"))
    result = build(load_config(slice_dir / "slice.toml"), tmp_path / "o", progress=False)
    recs = result.linkage.records
    assert "CLÍNICA SAN JOSÉ" in set(recs["name"])
    assert [s.encoding for s in result.sources if s.name == "hcai"] == ["cp1252"]


def test_duplicated_record_ids(slice_dir: Path, previous_build: Path) -> None:
    csv = slice_dir / "hcai_slice.csv"
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    frame = pd.concat([frame, frame.iloc[[3]]], ignore_index=True)
    frame.to_csv(csv, index=False)
    dup = frame.iloc[3]["OSHPD_ID"]
    _assert_refused(slice_dir, previous_build, "more than once", dup, "unique")


def test_empty_file(slice_dir: Path, previous_build: Path) -> None:
    (slice_dir / "hcai_slice.csv").write_bytes(b"")
    _assert_refused(slice_dir, previous_build, "hcai_slice.csv", "is empty")


def test_header_only_file(slice_dir: Path, previous_build: Path) -> None:
    csv = slice_dir / "hcai_slice.csv"
    csv.write_text(csv.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    _assert_refused(slice_dir, previous_build, "no records")


def test_config_typo(slice_dir: Path, previous_build: Path) -> None:
    config = slice_dir / "slice.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace("id_column =", "id_colum =", 1), encoding="utf-8"
    )
    _assert_refused(
        slice_dir, previous_build, "unknown key 'id_colum'", "did you mean 'id_column'?"
    )


def test_problems_in_two_sources_are_reported_together(slice_dir: Path) -> None:
    (slice_dir / "hcai_slice.csv").unlink()
    config = slice_dir / "slice.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace('name = "FACNAME"', 'name = "FACNAM"'),
        encoding="utf-8",
    )
    with pytest.raises(SourceError) as info:
        build(load_config(config), slice_dir / "out", progress=False)
    assert len(info.value.problems) == 2
    # In the config's order, whichever source was read first.
    assert ["cdph" in p.where for p in info.value.problems] == [True, False]
    assert "hcai" in info.value.problems[1].where
    assert not (slice_dir / "out").exists()


def _is_whole_build(folder: Path) -> bool:
    """True when ``folder`` holds the files of one finished build, written together."""
    names = {p.name for p in folder.iterdir()}
    if not {"crosswalk.sqlite", "crosswalk.csv", "datapackage.json"} <= names:
        return False
    with sqlite3.connect(folder / "crosswalk.sqlite") as db:
        if db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            return False
        built_at = db.execute("SELECT value FROM meta WHERE key = 'built_at'").fetchone()[0]
        rows = db.execute("SELECT count(*) FROM records").fetchone()[0]
    package = json.loads((folder / "datapackage.json").read_text(encoding="utf-8"))
    csv_rows = len((folder / "crosswalk.csv").read_text(encoding="utf-8").splitlines()) - 1
    return bool(built_at == package["created"] and csv_rows == rows)


def test_a_killed_build_leaves_the_previous_output(slice_dir: Path, previous_build: Path) -> None:
    """Kill the build while it writes its output: the previous build must stay whole."""
    before = _digest(previous_build)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crosswalk.cli",
            "build",
            "--config",
            str(slice_dir / "slice.toml"),
            "--out",
            str(previous_build),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    staging = previous_build.parent
    deadline = time.monotonic() + 120
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if any(staging.glob(f".{previous_build.name}.tmp-*/crosswalk.sqlite")):
                break
            time.sleep(0.002)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the build ended before it could be killed mid-write"
    after = _digest(previous_build)
    # Killed before its final rename, the build leaves the previous output byte for byte;
    # killed in the instant after it, the output is the new build, complete.
    assert after == before or (after.keys() == before.keys() and _is_whole_build(previous_build))
    assert _is_whole_build(previous_build)
    # The next build clears the killed build's staging directory.
    build(load_config(slice_dir / "slice.toml"), previous_build, progress=False)
    assert not list(staging.glob(f".{previous_build.name}.tmp-*"))
    assert _is_whole_build(previous_build)


def test_a_file_that_is_not_a_workbook(slice_dir: Path, previous_build: Path) -> None:
    (slice_dir / "cdph_slice.xlsx").write_bytes(b"FACID,FACNAME\n1,A\n")
    _assert_refused(
        slice_dir,
        previous_build,
        "cdph_slice.xlsx",
        "not a readable xlsx workbook",
        'format = "csv"',
    )


def test_a_sheet_that_does_not_exist(slice_dir: Path, previous_build: Path) -> None:
    config = slice_dir / "slice.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            'sheet = "HEALTH_FAC_LOCATION_20200507"', 'sheet = "Sheet1"'
        ),
        encoding="utf-8",
    )
    _assert_refused(
        slice_dir, previous_build, "no sheet named 'Sheet1'", "HEALTH_FAC_LOCATION_20200507"
    )


def _set_in_config(slice_dir: Path, old: str, new: str) -> None:
    config = slice_dir / "slice.toml"
    text = config.read_text(encoding="utf-8")
    assert old in text
    config.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_a_directory_as_the_path(slice_dir: Path, previous_build: Path) -> None:
    csv = slice_dir / "hcai_slice.csv"
    csv.unlink()
    csv.mkdir()
    _assert_refused(
        slice_dir, previous_build, "source 'hcai'", "hcai_slice.csv", "is a directory", "`path`"
    )


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-32"])
def test_a_unicode_file_with_a_byte_order_mark_is_decoded(
    slice_dir: Path, tmp_path: Path, codec: str
) -> None:
    csv = slice_dir / "hcai_slice.csv"
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    frame.loc[0, "FACILITY_NAME"] = "CLÍNICA SAN JOSÉ"
    text = frame.to_csv(index=False)
    # Python's utf-16 and utf-32 codecs write a byte-order mark; the -be codec does not.
    data = text.encode(codec) if codec != "utf-16-be" else b"\xfe\xff" + text.encode(codec)
    csv.write_bytes(data)
    result = build(load_config(slice_dir / "slice.toml"), tmp_path / "o", progress=False)
    names = result.linkage.records.loc[lambda r: r["source"] == "hcai", "name"]
    assert names.tolist() == frame["FACILITY_NAME"].tolist()
    expected = {"utf-16": "utf-16-le", "utf-16-be": "utf-16-be", "utf-32": "utf-32-le"}[codec]
    assert [s.encoding for s in result.sources if s.name == "hcai"] == [expected]


def test_a_byte_order_mark_that_contradicts_the_declared_encoding(
    slice_dir: Path, previous_build: Path
) -> None:
    csv = slice_dir / "hcai_slice.csv"
    csv.write_bytes(csv.read_text(encoding="utf-8").encode("utf-16"))
    _set_in_config(slice_dir, 'encoding = "auto"', 'encoding = "cp1252"')
    _assert_refused(
        slice_dir,
        previous_build,
        "hcai_slice.csv",
        "UTF-16",
        "byte-order mark",
        'encoding = "cp1252"',
        'encoding = "auto"',
    )


def test_utf16_without_a_byte_order_mark_is_named(slice_dir: Path, previous_build: Path) -> None:
    csv = slice_dir / "hcai_slice.csv"
    csv.write_bytes(csv.read_text(encoding="utf-8").encode("utf-16-le"))
    _assert_refused(slice_dir, previous_build, "hcai_slice.csv", "UTF-16", "UTF-8")


def test_an_xlsx_workbook_declared_as_csv(slice_dir: Path, previous_build: Path) -> None:
    _set_in_config(slice_dir, 'path = "hcai_slice.csv"', 'path = "cdph_slice.xlsx"')
    _assert_refused(
        slice_dir, previous_build, "source 'hcai'", "cdph_slice.xlsx", "workbook", 'format = "xlsx"'
    )


def test_an_xls_workbook_declared_as_csv(slice_dir: Path, previous_build: Path) -> None:
    # The first bytes of every Excel 97-2003 file (an OLE2 compound document).
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
    (slice_dir / "hcai_slice.csv").write_bytes(ole)
    _assert_refused(slice_dir, previous_build, "hcai_slice.csv", ".xls", "workbook", ".xlsx")


def _with_a_multiline_name(slice_dir: Path) -> pd.DataFrame:
    """The hcai slice with a quoted name of three lines in its second record (file lines 3-5)."""
    csv = slice_dir / "hcai_slice.csv"
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    frame.loc[1, "FACILITY_NAME"] = "FAIRMONT\nHOSPITAL\nSAN LEANDRO"
    return frame


def test_a_record_without_id_is_named_by_its_file_line(
    slice_dir: Path, previous_build: Path
) -> None:
    frame = _with_a_multiline_name(slice_dir)
    frame.loc[4, "OSHPD_ID"] = ""  # the fifth record: file line 8 (header, 2, 3-5, 6, 7, 8)
    frame.to_csv(slice_dir / "hcai_slice.csv", index=False)
    stderr = _assert_refused(slice_dir, previous_build, "have no id (file lines [8])")
    assert "data rows" not in stderr


def test_repeated_ids_are_named_by_their_file_lines(slice_dir: Path, previous_build: Path) -> None:
    frame = _with_a_multiline_name(slice_dir)
    frame.loc[6, "OSHPD_ID"] = frame.loc[2, "OSHPD_ID"]  # file lines 6 and 10
    frame.to_csv(slice_dir / "hcai_slice.csv", index=False)
    _assert_refused(slice_dir, previous_build, "file lines [6, 10]")


def test_a_row_with_an_extra_field_is_named_by_its_file_line(
    slice_dir: Path, previous_build: Path
) -> None:
    csv = slice_dir / "hcai_slice.csv"
    _with_a_multiline_name(slice_dir).to_csv(csv, index=False)
    lines = csv.read_text(encoding="utf-8").split("\n")
    lines[9] += ",EXTRA"  # file line 10: the seventh record
    csv.write_text("\n".join(lines), encoding="utf-8")
    _assert_refused(slice_dir, previous_build, "file line 10", "18 fields", "17")


def test_a_blank_id_in_a_workbook_is_named_by_its_sheet_row(
    slice_dir: Path, previous_build: Path
) -> None:
    import openpyxl

    book = slice_dir / "cdph_slice.xlsx"
    wb = openpyxl.load_workbook(book)
    ws = wb["HEALTH_FAC_LOCATION_20200507"]
    ws.insert_rows(1, amount=2)  # two blank rows above the header: it is now row 3
    assert ws.cell(row=3, column=1).value == "FACID"
    ws.cell(row=9, column=1).value = None  # the sixth record
    wb.save(book)
    _assert_refused(slice_dir, previous_build, "cdph_slice.xlsx", "have no id (sheet rows [9])")
