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
