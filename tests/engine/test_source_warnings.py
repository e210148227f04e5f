"""Input that is read but looks wrong gives a warning: printed by the build, kept in its
summary (the ``--json`` output and the published ``meta``), and the build goes on."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

HCAI = "hcai_slice.csv"


def _run_build(slice_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``crosswalk build`` of the slice into ``slice_dir/out``, through the CLI."""
    config, out = str(slice_dir / "slice.toml"), str(slice_dir / "out")
    return subprocess.run(
        [sys.executable, "-m", "crosswalk.cli", "build", "--config", config, "--out", out, *extra],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _build(slice_dir: Path) -> tuple[str, list[str]]:
    """Build the slice with the CLI: its stderr and the warnings of its summary, which
    must be those recorded in the output's meta."""
    out = slice_dir / "out"
    proc = _run_build(slice_dir, "--json")
    assert proc.returncode == 0, proc.stderr
    warnings: list[str] = json.loads(proc.stdout)["warnings"]
    with sqlite3.connect(out / "crosswalk.sqlite") as db:
        meta = db.execute("SELECT value FROM meta WHERE key = 'counts'").fetchone()[0]
    assert json.loads(meta)["warnings"] == warnings
    for text in warnings:
        assert f"crosswalk build: warning: {text}" in proc.stderr
    return proc.stderr, warnings


def _warned(slice_dir: Path, *expected: str) -> str:
    """The one warning of the build, which holds every text ``expected``."""
    _, warnings = _build(slice_dir)
    assert len(warnings) == 1, warnings
    for text in expected:
        assert text in warnings[0], warnings[0]
    return warnings[0]


def _hcai(slice_dir: Path) -> pd.DataFrame:
    return pd.read_csv(slice_dir / HCAI, dtype=str, keep_default_na=False)


def _set_in_config(slice_dir: Path, old: str, new: str) -> None:
    config = slice_dir / "slice.toml"
    text = config.read_text(encoding="utf-8")
    assert old in text
    config.write_text(text.replace(old, new, 1), encoding="utf-8")


def _db_rows(slice_dir: Path, sql: str) -> list[Any]:
    with sqlite3.connect(slice_dir / "out" / "crosswalk.sqlite") as db:
        return db.execute(sql).fetchall()


def test_the_slice_builds_without_warnings(slice_dir: Path) -> None:
    stderr, warnings = _build(slice_dir)
    assert warnings == []
    assert "warning" not in stderr


def test_zips_written_as_numbers_are_matched(slice_dir: Path) -> None:
    """'94501.0' (a ZIP column once held as numbers) is the ZIP 94501: matched and published."""
    _build(slice_dir)
    before = _db_rows(slice_dir, "SELECT source, record_id, entity_id FROM records ORDER BY 1, 2")
    frame = _hcai(slice_dir)
    frame["DBA_ZIP_CODE"] = frame["DBA_ZIP_CODE"] + ".0"
    frame.to_csv(slice_dir / HCAI, index=False)
    _build(slice_dir)
    after = _db_rows(slice_dir, "SELECT source, record_id, entity_id FROM records ORDER BY 1, 2")
    assert after == before
    zips = _db_rows(slice_dir, "SELECT DISTINCT zip FROM records WHERE source = 'hcai'")
    assert all(len(z) == 5 and z.isdigit() for (z,) in zips), zips


def test_a_repeated_column_that_is_not_read(slice_dir: Path) -> None:
    csv = slice_dir / HCAI
    lines = csv.read_text(encoding="utf-8").split("\n")
    assert lines[0].split(",")[9] == "ER_SERVICE_LEVEL_DESC"
    lines[0] = lines[0].replace("ER_SERVICE_LEVEL_DESC", "FACILITY_LEVEL_DESC")
    csv.write_text("\n".join(lines), encoding="utf-8")
    _warned(slice_dir, HCAI, "'FACILITY_LEVEL_DESC'", "2 times", "[4, 10]", "does not read")


def test_a_repeated_column_that_is_read_is_refused(slice_dir: Path) -> None:
    csv = slice_dir / HCAI
    lines = csv.read_text(encoding="utf-8").split("\n")
    lines[0] = lines[0].replace("COUNTY_CODE", "DBA_CITY")  # the config reads DBA_CITY
    csv.write_text("\n".join(lines), encoding="utf-8")
    proc = _run_build(slice_dir)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    for text in (HCAI, "'DBA_CITY'", "2 times", "ambiguous", "rename"):
        assert text in proc.stderr, proc.stderr


def test_a_misspelt_scheme(slice_dir: Path) -> None:
    _set_in_config(
        slice_dir,
        'column = "OSHPD_ID"\nscheme = "oshpd_id"\n\n[[source.identifiers]]\ncolumn = "LICENSE_NUM"',
        'column = "OSHPD_ID"\nscheme = "osphd_id"\n\n[[source.identifiers]]\ncolumn = "LICENSE_NUM"',
    )
    text = (slice_dir / "slice.toml").read_text(encoding="utf-8")
    line = text[: text.index('scheme = "osphd_id"')].count("\n") + 1
    _warned(slice_dir, f"slice.toml line {line}", "'osphd_id'", "did you mean 'oshpd_id'?")


def test_utf8_declared_as_cp1252(slice_dir: Path) -> None:
    frame = _hcai(slice_dir)
    frame.loc[3, "FACILITY_NAME"] = "HOSPITAL SAN JOSÉ"  # file line 5
    frame.to_csv(slice_dir / HCAI, index=False, encoding="utf-8")
    _set_in_config(slice_dir, 'encoding = "auto"', 'encoding = "cp1252"')
    _warned(slice_dir, HCAI, "line 5", "mojibake", "JOSÃ", 'encoding = "utf-8"')


def test_mojibake_in_a_utf8_file(slice_dir: Path) -> None:
    frame = _hcai(slice_dir)
    frame.loc[3, "FACILITY_NAME"] = "HOSPITAL SAN JOSÃ‰"  # saved after a wrong decoding
    frame.to_csv(slice_dir / HCAI, index=False, encoding="utf-8")
    _warned(slice_dir, HCAI, "line 5", "mojibake", "JOSÃ‰")


def test_sources_that_share_no_compared_field(slice_dir: Path) -> None:
    config = slice_dir / "slice.toml"
    text = config.read_text(encoding="utf-8")
    head, hcai = text.split('name = "hcai"')
    # hcai keeps its name, city and zip; cdph its name and address; no identifiers.
    hcai = "\n".join(
        line
        for line in hcai.split("\n")
        if not line.startswith(("address", "county", "latitude", "longitude", "facility_type"))
    )
    head = "\n".join(
        line
        for line in head.split("\n")
        if not line.startswith(
            ("city", "zip", "county", "phone", "latitude", "longitude", "facility_type")
        )
    )
    text = (head + 'name = "hcai"' + hcai).replace("[[source.identifiers]]", "[[source.ids]]")
    text = "\n".join(
        line
        for line in text.split("\n")
        if not line.startswith(("[[source.ids]]", "column", "scheme"))
    )
    config.write_text(text, encoding="utf-8")
    _warned(
        slice_dir,
        "sources 'cdph' and 'hcai'",
        "no compared field besides the name",
        "'cdph' feeds address",
        "'hcai' feeds city, zip",
    )


def test_nul_bytes(slice_dir: Path) -> None:
    frame = _hcai(slice_dir)
    frame.loc[3, "FACILITY_NAME"] = "ST. ROSE\x00 HOSPITAL\x00"  # file line 5
    frame.loc[8, "DBA_CITY"] = "\x00HAYWARD"
    frame.to_csv(slice_dir / HCAI, index=False)
    _warned(slice_dir, HCAI, "line 5", "3 NUL character(s)", "removed")
    names = _db_rows(slice_dir, "SELECT name FROM records WHERE name LIKE 'ST. ROSE%'")
    assert ("ST. ROSE HOSPITAL",) in names
    assert not _db_rows(slice_dir, "SELECT 1 FROM records WHERE instr(name || city, char(0))")


def test_a_dataframe_warns_as_python_does() -> None:
    """Mapping a DataFrame (``link_frames``), a warning is a Python warning."""
    import pytest

    from crosswalk.config import FieldMap, SourceConfig
    from crosswalk.sources import to_canonical

    src = SourceConfig(name="x", path="-", id_column="id", fields=FieldMap(name="name"))
    frame = pd.DataFrame([["1", "A", "p", "q"]], columns=["id", "name", "other", "other"])
    with pytest.warns(UserWarning, match=r"DataFrame 'x' column 'other'.*2 times"):
        out = to_canonical(frame, src, "DataFrame 'x'")
    assert out["name"].tolist() == ["A"]


def test_facility_types_the_vocabulary_does_not_know(slice_dir: Path) -> None:
    """Wordings that fall to 'other' are counted in a warning; those of national hospital
    listings (PSYCHIATRIC, CHILDREN, ...) are known; a config maps the rest."""
    frame = _hcai(slice_dir)
    frame.loc[0:3, "LICENSE_CATEGORY_DESC"] = "SPECIAL"
    frame.loc[4:5, "LICENSE_CATEGORY_DESC"] = "Tribal Facility"
    frame.loc[6:7, "LICENSE_CATEGORY_DESC"] = "OTHER"  # says "other" itself
    for i, known in enumerate(
        ("PSYCHIATRIC", "CHILDREN", "Childrens", "REHABILITATION", "LONG TERM CARE", "MILITARY")
    ):
        frame.loc[8 + i, "LICENSE_CATEGORY_DESC"] = known
    frame.to_csv(slice_dir / HCAI, index=False)
    text = _warned(
        slice_dir,
        f"{HCAI}) column 'LICENSE_CATEGORY_DESC'",
        f"6 of {len(frame):,} record(s)",
        "2 wording(s): 'SPECIAL' (4), 'Tribal Facility' (2)",
        "[source.facility_types]",
    )
    assert "PSYCHIATRIC" not in text and "'OTHER'" not in text
    config = slice_dir / "slice.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        + '\n[source.facility_types]\n" special " = "general_acute_hospital"\n',
        encoding="utf-8",
    )
    _warned(slice_dir, "2 of", "1 wording(s): 'Tribal Facility' (2)")
    _set_in_config(slice_dir, '" special "', '"tribal facility" = "other"\n" special "')
    assert _build(slice_dir)[1] == []
    special = frame.loc[0, "OSHPD_ID"]
    rows = _db_rows(
        slice_dir,
        "SELECT e.facility_class FROM records r JOIN entities e USING (entity_id) "
        f"WHERE r.source = 'hcai' AND r.record_id = '{special}'",
    )
    assert rows == [("general_acute_hospital",)]


def test_a_facility_type_mapped_to_no_class_is_refused(slice_dir: Path) -> None:
    config = slice_dir / "slice.toml"
    text = config.read_text(encoding="utf-8") + '\n[source.facility_types]\nSPECIAL = "hospitl"\n'
    config.write_text(text, encoding="utf-8")
    proc = _run_build(slice_dir)
    assert proc.returncode == 2
    line = text.count("\n")
    assert f"slice.toml line {line} (source[1].facility_types.SPECIAL)" in proc.stderr
    assert "'hospitl', which is not a class" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_dataframe_with_unknown_facility_types_warns() -> None:
    from crosswalk.config import SourceConfig
    from crosswalk.sources import to_canonical

    src = SourceConfig("x", "x.csv", "ID")
    src.fields.name, src.fields.facility_type = "NAME", "TYPE"
    raw = pd.DataFrame({"ID": ["1", "2", "3"], "NAME": list("abc"), "TYPE": ["SPECIAL"] * 3})
    with pytest.warns(UserWarning, match="3 of 3 record"):
        to_canonical(raw, src, "DataFrame 'x'")
