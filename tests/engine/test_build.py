"""End to end: `crosswalk build` on the embedded California listings, checked against the truth pairs."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from crosswalk.artifact import schema
from crosswalk.artifact.sqlite_load import PAGE_SIZE
from crosswalk.config import load_config
from crosswalk.evaluate import evaluate
from crosswalk.pipeline import BuildResult, build


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
        # Every table has its indexes, built in place or moved in from a file of its own,
        # and every index holds exactly its table's rows.
        indexed = {
            (table, tuple(r[2] for r in conn.execute(f"PRAGMA index_info([{name}])")))
            for name, table in conn.execute(
                "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            )
        }
        assert indexed == {
            ("records", ("entity_id",)),
            ("identifiers", ("scheme", "value")),
            ("identifiers", ("source", "record_id")),
            ("links", ("source_l", "record_id_l")),
            ("links", ("source_r", "record_id_r")),
            ("links", ("entity_id",)),
            ("entities", ("facility_class",)),
            ("entities", ("county",)),
        }
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert not any(p.name.endswith(".stage.sqlite") for p in built_crosswalk.iterdir())
        indexes = {r[1] for r in conn.execute("PRAGMA index_list(identifiers)")}
        assert any("scheme" in i for i in indexes)
        assert conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE
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
        "docs/data-dictionary.md is stale: run `python -m crosswalk.artifact.schema > docs/data-dictionary.md`"
    )


_AWKWARD = ["a,b", 'say "hi"', "two\nlines", "cr\rhere", "", " lead", "ünï", '"', None, "x\r\n"]


def test_csv_writer_writes_what_pandas_to_csv_writes(tmp_path: Path) -> None:
    import numpy as np
    import pyarrow as pa

    from crosswalk.artifact.writer import write_frame_csv

    n = len(_AWKWARD)
    frame = pd.DataFrame(
        {
            "arrow": pd.Series(_AWKWARD, dtype="string[pyarrow]"),
            "object": pd.Series(_AWKWARD[::-1], dtype=object),
            "float": [np.nan, 0.0, -0.0, 1.0, 1e-05, 0.123456, 1e16, 0.1 + 0.2, 1 / 3, 0.999999],
            "int": np.arange(n, dtype=np.int64),
            "chunked": pd.Series(
                pd.arrays.ArrowStringArray(
                    pa.chunked_array([pa.array(_AWKWARD[:3]), pa.array(_AWKWARD[3:])])
                )
            ),
        }
    )
    for rows in (frame, frame.iloc[:0]):
        frame_path, expected = tmp_path / "ours.csv", tmp_path / "pandas.csv"
        write_frame_csv(frame_path, rows)
        rows.to_csv(expected, index=False, encoding="utf-8", lineterminator="\n")
        assert frame_path.read_bytes() == expected.read_bytes()


def test_csv_writer_quotes_a_field_of_any_chunk(tmp_path: Path) -> None:
    """A column is searched chunk by chunk for characters that need quotes: a chunk that has
    none is written as it is, one that has some quotes exactly the fields that need it."""
    import pyarrow as pa

    from crosswalk.artifact.writer import CHUNK_ROWS, _string_bytes, write_frame_csv

    n = 3 * CHUNK_ROWS
    late = ["plain"] * n
    late[CHUNK_ROWS + 1] = "a,b"
    late[n - 1] = 'say "hi"'
    frame = pd.DataFrame(
        {
            "plain": pd.Series([f"x{i}" for i in range(n)], dtype="string[pyarrow]"),
            "late": pd.Series(late, dtype="string[pyarrow]"),
        }
    )
    # The bytes searched are a chunk's own, also in an array that starts inside its buffers.
    column = pa.array(["a,b", "plain", 'say "hi"', "x"]).slice(1, 2)
    assert bytes(_string_bytes(column)) == b'plainsay "hi"'
    ours, expected = tmp_path / "ours.csv", tmp_path / "pandas.csv"
    write_frame_csv(ours, frame)
    frame.to_csv(expected, index=False, encoding="utf-8", lineterminator="\n")
    assert ours.read_bytes() == expected.read_bytes()
    assert b'"a,b"' in ours.read_bytes()


@pytest.mark.parametrize(
    "data",
    [
        b"a,b\r\n1,2\r\n",
        b'a,b\nab"c,2\n"x""y",3\n"ab"c,4\n',
        b'a,b\n"l1\nl2",2\n\n"",\n',
        "a;b\nü;é\n".encode(),
        b"a,b\n  \n1,2\n",  # pandas skips a blank-looking line: Arrow must not read this one
        b"a,b\n1\n",  # short row
        b"a,a\n1,2\n",  # repeated header name
        b"a,b,\n1,2,\n",  # empty header name
    ],
)
def test_arrow_csv_reader_reads_as_pandas_or_leaves_the_file_to_it(data: bytes) -> None:
    import io

    from crosswalk.sources import _read_csv_arrow

    sep = ";" if b";" in data else ","
    ours = _read_csv_arrow(data, sep)
    if ours is None:
        return
    expected = pd.read_csv(
        io.StringIO(data.decode()), dtype=str, keep_default_na=False, na_values=[""], sep=sep
    )
    pd.testing.assert_frame_equal(ours, expected)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "auto"])
def test_csv_byte_order_mark_is_not_part_of_the_first_column(encoding: str) -> None:
    from crosswalk.config import SourceConfig
    from crosswalk.sources import _read_csv

    src = SourceConfig(name="s", path="s.csv", id_column="id", encoding=encoding)
    frame = _read_csv(b"\xef\xbb\xbfid,name\n1,A\n", src, "test")[0]
    assert list(frame.columns) == ["id", "name"]


def test_records_are_published_in_source_and_record_id_order(
    slice_dir: Path, tmp_path: Path
) -> None:
    # HCAI's rows shuffled: the published order must not follow the file's.
    hcai = slice_dir / "hcai_slice.csv"
    rows = pd.read_csv(hcai, dtype=str, keep_default_na=False)
    rows.sample(frac=1.0, random_state=7).to_csv(hcai, index=False)
    result = build(load_config(slice_dir / "slice.toml"), tmp_path / "out", progress=False)
    with open(result.out / "crosswalk.csv", encoding="utf-8", newline="") as fh:
        keys = [(r["source"], r["record_id"]) for r in csv.DictReader(fh)]
    with sqlite3.connect(result.out / "crosswalk.sqlite") as conn:
        stored = conn.execute(
            "SELECT source, record_id, entity_id, method FROM records ORDER BY rowid"
        ).fetchall()
    assert keys == sorted(keys) == [(s, r) for s, r, _, _ in stored]
    assert len(keys) == len(set(keys)) == len(result.linkage.records)
    # Each row carries its own record's entity, and is a singleton exactly when alone in it.
    recs = result.linkage.records
    entity_of = dict(
        zip(zip(recs["source"], recs["record_id"], strict=True), recs["entity_id"], strict=True)
    )
    with open(result.out / "crosswalk.csv", encoding="utf-8", newline="") as fh:
        published = list(csv.DictReader(fh))
    size = pd.Series([r["entity_id"] for r in published]).value_counts()
    for r, (_, _, entity, method) in zip(published, stored, strict=True):
        assert r["entity_id"] == entity == entity_of[(r["source"], r["record_id"])]
        assert r["method"] == method
        assert (method == "singleton") == (size[entity] == 1)
