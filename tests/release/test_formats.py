"""The output formats' registry (``crosswalk.formats``) says what a build and a release write.

On real builds of the test slice, through the CLI: a build and a release each write exactly
the files their registry entries name; their data packages validate with frictionless and
are one package (the release's is versioned and adds ``changes.csv``); and every table the
writer creates in ``crosswalk.sqlite`` is described by ``crosswalk.artifact.schema``.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from crosswalk import formats
from crosswalk.artifact import schema

ROOT = Path(__file__).resolve().parents[2]
SLICE = ROOT / "tests" / "data" / "slice.toml"

#: How each schema type is declared in SQLite.
DECLARED = {
    "string": "TEXT",
    "object": "TEXT",
    "integer": "INTEGER",
    "boolean": "INTEGER",
    "number": "REAL",
}


def ok(*args: str | Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "crosswalk.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr


class Outputs:
    """A first build (every id is new: it writes ``changes.csv``) and its release; then a
    build of the same listings carried over from that release (no id changed: no
    ``changes.csv``), and its release."""

    def __init__(self, root: Path) -> None:
        self.releases = root / "releases"
        self.build1, self.build2 = root / "build1", root / "build2"
        ok("build", "--config", SLICE, "--out", self.build1, "--quiet")
        ok("release", "--build", self.build1, "--releases", self.releases, "--version", "r1")
        ok(
            "build", "--config", SLICE, "--out", self.build2, "--releases", self.releases,
            "--quiet",
        )  # fmt: skip
        ok("release", "--build", self.build2, "--releases", self.releases, "--version", "r2")
        self.r1, self.r2 = self.releases / "r1", self.releases / "r2"


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Outputs:
    return Outputs(tmp_path_factory.mktemp("formats"))


def files(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def test_the_registry_names_each_file_once() -> None:
    names = [name for f in formats.FORMATS for name in f.files]
    assert len(names) == len(set(names))
    assert {f.name for f in formats.FORMATS} >= {
        "csv", "changes_csv", "sqlite", "parquet", "datapackage", "datasette", "report",
    }  # fmt: skip


def test_a_build_writes_the_files_of_its_formats(outputs: Outputs) -> None:
    always = {n for f in formats.FORMATS if f.build and f.always for n in f.files}
    every = {n for f in formats.FORMATS if f.build for n in f.files}
    assert always < every  # changes.csv is written only when ids changed
    # parquet/ is written by the Spark runner only (tests/spark)
    assert files(outputs.build1) == every - {"parquet"} == set(formats.BUILD_OUTPUTS) - {"parquet"}
    # The second build changed no id: no changes.csv.
    assert files(outputs.build2) == always == set(formats.BUILD_FILES)


def test_a_release_writes_the_files_of_its_formats(outputs: Outputs) -> None:
    wanted = [n for f in formats.FORMATS if f.release for n in f.files]
    for release in (outputs.r1, outputs.r2):
        assert files(release) == set(wanted) == set(formats.RELEASE_FILES)
        manifest = json.loads((release / "manifest.json").read_text(encoding="utf-8"))
        assert list(manifest["files"]) == [n for n in wanted if n != "manifest.json"]


@pytest.mark.parametrize("which", ["build1", "build2", "r1", "r2"])
def test_the_data_packages_validate(outputs: Outputs, which: str) -> None:
    from frictionless import validate

    report = validate(str(getattr(outputs, which) / "datapackage.json"))
    assert report.valid, report.flatten(["rowNumber", "fieldNumber", "type", "note"])


def package(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / "datapackage.json").read_text("utf-8"))
    return data


@pytest.mark.parametrize(("build", "release"), [("build1", "r1"), ("build2", "r2")])
def test_a_release_package_is_its_builds_versioned(
    outputs: Outputs, build: str, release: str
) -> None:
    built, released = package(getattr(outputs, build)), package(getattr(outputs, release))
    assert released.pop("version") == release
    # stamped when released: never before the build (both to the second, so maybe equal)
    assert released.pop("created") >= built.pop("created")
    resources = {r["name"]: r for r in released.pop("resources")}
    assert list(resources) == ["crosswalk", "changes"]
    (crosswalk,) = built.pop("resources")
    assert resources["crosswalk"] == crosswalk
    assert released == built
    changes = resources["changes"]
    assert changes["path"] == "changes.csv"
    assert [f["name"] for f in changes["schema"]["fields"]] == list(schema.CHANGE_COLUMNS)
    assert changes["schema"]["fields"][1]["constraints"]["enum"] == list(schema.CHANGE_KINDS)


def described(db: Path) -> list[str]:
    """Check every table of ``db`` against its schema definition; return their names."""
    with closing(sqlite3.connect(db)) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                "ORDER BY name"
            )
        ]
        fts = {f"{t}_fts": columns for t, columns in schema.SEARCHABLE.items()}
        shadows = tuple(f"{name}_" for name in fts)  # FTS5's own tables of an index
        checked = []
        for name in tables:
            if name.startswith(shadows):
                continue
            info = conn.execute(f"PRAGMA table_info([{name}])").fetchall()
            if name in fts:  # a full-text index of a searchable table
                assert [r[1] for r in info] == list(fts[name]), name
                checked.append(name)
                continue
            table = schema.table(name)  # KeyError: a table the schema does not describe
            assert [r[1] for r in info] == table.column_names, name
            assert [r[2] for r in info] == [DECLARED[c.type] for c in table.columns], name
            key = sorted((r[5], r[1]) for r in info if r[5])
            assert tuple(c for _, c in key) == table.primary_key, name
            assert [bool(r[3]) for r in info] == [c.required for c in table.columns], name
            checked.append(name)
    return checked


@pytest.mark.parametrize("which", ["build1", "build2", "r1", "r2"])
def test_every_table_is_described_by_the_schema(outputs: Outputs, which: str) -> None:
    names = described(getattr(outputs, which) / "crosswalk.sqlite")
    assert set(names) >= {t.name for t in schema.ALL_TABLES}
    if which.startswith("r"):
        assert set(names) >= {f"{t}_fts" for t in schema.SEARCHABLE}
