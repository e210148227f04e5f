"""End to end: `crosswalk build` on the embedded California listings, checked against the truth pairs."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from crosswalk import schema
from crosswalk.evaluate import evaluate
from crosswalk.pipeline import BuildResult


def _db(out: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{out / 'crosswalk.sqlite'}?mode=ro", uri=True)


def test_output_files_and_tables(built_crosswalk: Path) -> None:
    assert {p.name for p in built_crosswalk.iterdir()} >= {
        "crosswalk.sqlite",
        "crosswalk.csv",
        "datapackage.json",
    }
    with _db(built_crosswalk) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {t.name for t in schema.TABLES} | {"meta"} <= tables
        for table in schema.TABLES:
            cols = [r[1] for r in conn.execute(f"PRAGMA table_info([{table.name}])")]
            assert cols[: len(table.column_names)] == table.column_names
        n = dict(conn.execute("SELECT source, count(*) FROM records GROUP BY source").fetchall())
        assert n == {"cdph": 11856, "hcai": 7973}
        fks = conn.execute("PRAGMA foreign_key_list(records)").fetchall()
        assert {row[2] for row in fks} == {"entities", "sources"}
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        indexes = {r[1] for r in conn.execute("PRAGMA index_list(identifiers)")}
        assert any("scheme" in i for i in indexes)
        # One record per source per entity (the default guard against over-merging).
        worst = conn.execute(
            "SELECT max(c) FROM (SELECT count(*) c FROM records GROUP BY entity_id, source)"
        ).fetchone()[0]
        assert worst == 1
        # Every link's explanation is JSON naming each compared field.
        expl = json.loads(conn.execute("SELECT explanation FROM links LIMIT 1").fetchone()[0])
        assert {"name", "location"} <= set(expl) and "weight" in expl["name"]


def test_csv_contract_keeps_ids_as_text(built_crosswalk: Path) -> None:
    with open(built_crosswalk / "crosswalk.csv", encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = list(reader)
    assert header == [
        "entity_id",
        "source",
        "record_id",
        "name",
        "address",
        "city",
        "zip",
        "match_probability",
        "method",
    ]
    assert len(rows) == 11856 + 7973
    cdph_ids = [r[2] for r in rows if r[1] == "cdph"]
    assert any(i.startswith("0") for i in cdph_ids), "FACIDs with leading zeros must survive"
    assert {r[8] for r in rows} <= {"identifier", "fuzzy", "singleton"}


def test_datapackage_is_valid_frictionless(built_crosswalk: Path) -> None:
    from frictionless import Package, validate

    report = validate(built_crosswalk / "datapackage.json")
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])[:5]
    package = Package(built_crosswalk / "datapackage.json")
    fields = [f.name for f in package.get_resource("crosswalk").schema.fields]
    assert fields == [c.name for c in schema.CSV_COLUMNS]


def test_with_identifiers_the_truth_is_reached_and_doubtful_pairs_are_conflicts(
    built_crosswalk: Path, truth_path: Path
) -> None:
    ev = evaluate(
        built_crosswalk / "crosswalk.sqlite",
        truth_path,
        ("cdph", "FACID"),
        ("hcai", "OSHPD_ID"),
        blocking=False,
    )
    assert ev.recall >= 0.995
    assert ev.labelled_f1 >= 0.995
    with _db(built_crosswalk) as conn:
        conflicts = pd.read_sql_query(
            "SELECT record_id_l, record_id_r, details FROM conflicts WHERE kind = 'identifier_disagrees'",
            conn,
        )
    # Doubtful truth pairs: same OSHPD_ID, yet the names and the addresses both differ completely
    # and the license numbers (which confirm 98.9% of the pairs) disagree.
    truth = pd.read_csv(truth_path, dtype=str, keep_default_na=False)
    from rapidfuzz import fuzz

    name_sim = [
        fuzz.token_set_ratio(a.upper(), b.upper())
        for a, b in zip(truth.FACNAME, truth.FACILITY_NAME, strict=True)
    ]
    addr_sim = [
        fuzz.token_set_ratio(a.upper(), b.upper())
        for a, b in zip(truth.ADDRESS, truth.DBA_ADDRESS1, strict=True)
    ]
    license_differs = truth.LICENSE_NUMBER.str.lstrip("0") != truth.LICENSE_NUM.str.lstrip("0")
    doubtful = truth[(pd.Series(name_sim) < 50) & (pd.Series(addr_sim) < 50) & license_differs]
    assert len(doubtful) >= 3
    flagged = set(zip(conflicts.record_id_l, conflicts.record_id_r, strict=True)) | set(
        zip(conflicts.record_id_r, conflicts.record_id_l, strict=True)
    )
    found = sum((a, b) in flagged for a, b in zip(doubtful.FACID, doubtful.OSHPD_ID, strict=True))
    assert found == len(doubtful), (
        f"{len(doubtful) - found} doubtful identifier pairs were not flagged"
    )


def test_blind_name_and_address_matching_floor(blind_build: BuildResult, truth_path: Path) -> None:
    ev = evaluate(
        blind_build.out / "crosswalk.sqlite",
        truth_path,
        ("cdph", "FACID"),
        ("hcai", "OSHPD_ID"),
        blocking=True,
    )
    assert ev.blocking_recall is not None and ev.blocking_recall >= 0.99
    assert ev.recall >= 0.975
    assert ev.labelled_precision >= 0.99
    assert ev.labelled_f1 >= 0.985
    assert blind_build.counts["links"]["identifier"] == 0


def test_summary_counts(built_crosswalk: Path) -> None:
    with _db(built_crosswalk) as conn:
        counts = json.loads(
            conn.execute("SELECT value FROM meta WHERE key = 'counts'").fetchone()[0]
        )
    assert counts["records"] == {"cdph": 11856, "hcai": 7973}
    assert counts["identifier_agreement"]["oshpd_id"]["share"] >= 0.995
    assert counts["candidate_pairs"] > 10000
    assert sum(counts["links"].values()) > 7000


@pytest.mark.parametrize("table", [t.name for t in schema.TABLES])
def test_every_published_column_is_documented(table: str) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "data-dictionary.md").read_text(
        encoding="utf-8"
    )
    for col in schema.table(table).columns:
        assert f"`{col.name}`" in doc, f"{table}.{col.name} is missing from docs/data-dictionary.md"


def test_data_dictionary_is_generated_from_the_schema() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "data-dictionary.md"
    assert doc.read_text(encoding="utf-8") == schema.data_dictionary(), (
        "docs/data-dictionary.md is stale: run `python -m crosswalk.schema > docs/data-dictionary.md`"
    )
