"""The output formats of the crosswalk: which files ``crosswalk build`` and ``crosswalk
release`` write, and the one writer of each.

:data:`FORMATS` is the registry: each :class:`Format` names the files it writes and
whether a build, a release or both write it. A build writes the formats with ``build``
set (:data:`BUILD_OUTPUTS`), a release those with ``release`` set (:data:`RELEASE_FILES`);
both write each format with the functions below, so a file is made one way wherever it
is made. ``crosswalk.sqlite`` itself is written by :mod:`crosswalk.artifact.writer`.
See ``docs/releases.md``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from crosswalk.artifact import schema
from crosswalk.artifact.reader import connect
from crosswalk.artifact.writer import write_csv, write_frame_csv


@dataclass(frozen=True)
class Format:
    """An output format: its name, the files it writes, and who writes them."""

    name: str
    files: tuple[str, ...]
    #: Written by ``crosswalk build`` into its output directory.
    build: bool
    #: Written by ``crosswalk release`` into the release's directory.
    release: bool
    description: str
    #: Every build writes it (else only some builds do, see the description).
    always: bool = True


SQLITE = Format(
    "sqlite",
    ("crosswalk.sqlite",),
    True,
    True,
    "Every table of the crosswalk (artifact/schema.py); a release adds full-text search "
    "and its version.",
)
CSV = Format("csv", ("crosswalk.csv",), True, True, "One row per source record.")
PARQUET = Format(
    "parquet", ("crosswalk.parquet",), False, True, "The columns of crosswalk.csv, typed."
)
DATAPACKAGE = Format(
    "datapackage",
    ("datapackage.json",),
    True,
    True,
    "Frictionless Data Package of the CSV files; a release's is versioned and adds changes.csv.",
)
DATASETTE = Format(
    "datasette",
    ("metadata.json",),
    False,
    True,
    "Datasette metadata: title, license, sources and every table's and column's description.",
)
CHANGES_CSV = Format(
    "changes_csv",
    ("changes.csv",),
    True,
    True,
    "What happened to entity ids since the previous release; a build writes it only when "
    "ids changed, a release always.",
    always=False,
)
REPORT = Format("report", ("report.html",), False, True, "A one-page HTML report of the release.")
MANIFEST = Format(
    "manifest",
    ("manifest.json",),
    False,
    True,
    "The release's version, lineage, sources, config, counts and every other file's hash.",
)

SPARK_PARQUET = Format(
    "spark_parquet",
    ("parquet",),
    True,
    False,
    "A build with --engine spark only: a directory of Parquet datasets written by Spark, "
    "records/, entities/ and links/, each a directory of part files (docs/spark.md).",
    always=False,
)

#: Every output format, in the order a release's manifest lists its files.
FORMATS = (
    SQLITE,
    CSV,
    PARQUET,
    DATAPACKAGE,
    DATASETTE,
    CHANGES_CSV,
    REPORT,
    MANIFEST,
    SPARK_PARQUET,
)

#: Every file a build writes into its output directory (``changes.csv`` when ids
#: changed). Anything else found there is someone else's: the build stops rather than
#: replace it.
BUILD_OUTPUTS = tuple(name for f in FORMATS if f.build for name in f.files)
#: Files a build directory must hold to be released.
BUILD_FILES = tuple(name for f in FORMATS if f.build and f.always for name in f.files)
#: Files of every release, in the order the manifest lists them.
RELEASE_FILES = tuple(name for f in FORMATS if f.release for name in f.files)


def by_name(name: str) -> Format:
    """The format named ``name``."""
    for f in FORMATS:
        if f.name == name:
            return f
    raise KeyError(name)


# --------------------------------------------------------------------------- csv, changes_csv


def write_crosswalk_csv(out: Path, records: pd.DataFrame) -> None:
    """``crosswalk.csv`` in the directory ``out``, from the published records."""
    write_csv(out / CSV.files[0], records)


def write_changes_csv(out: Path, changes: pd.DataFrame) -> None:
    """``changes.csv`` in the directory ``out`` (text cells a spreadsheet would run
    neutralized, as in every CSV)."""
    write_frame_csv(out / CHANGES_CSV.files[0], changes[list(schema.CHANGE_COLUMNS)])


# --------------------------------------------------------------------------- parquet

_PARQUET_TYPES = {"string": pa.string(), "number": pa.float64(), "integer": pa.int64()}


def write_parquet(db_path: Path, out: Path) -> None:
    """``crosswalk.parquet`` in ``out``: the columns of ``crosswalk.csv``, typed (ids as
    strings), read from the database at ``db_path``."""
    cols = [c.name for c in schema.CSV_COLUMNS]
    conn = connect(db_path)
    try:
        frame = pd.read_sql_query(
            f"SELECT {', '.join(f'[{c}]' for c in cols)} FROM records ORDER BY entity_id, source, record_id",
            conn,
        )
    finally:
        conn.close()
    fields = []
    arrays = []
    for c in schema.CSV_COLUMNS:
        typ = _PARQUET_TYPES[c.type]
        values = frame[c.name]
        if typ == pa.string():
            arrays.append(pa.array(values.astype("string"), type=typ, from_pandas=True))
        else:
            arrays.append(
                pa.array(pd.to_numeric(values, errors="coerce"), type=typ, from_pandas=True)
            )
        fields.append(
            pa.field(c.name, typ, nullable=not c.required, metadata={"description": c.description})
        )
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    pq.write_table(table, out / PARQUET.files[0], compression="zstd")


# --------------------------------------------------------------------------- datapackage

_LICENSE = {
    "name": "CC-BY-4.0",
    "title": "Creative Commons Attribution 4.0",
    "path": "https://creativecommons.org/licenses/by/4.0/",
}
_CROSSWALK_DESCRIPTION = "One row per source record: the canonical entity each record belongs to."


def source_titles(sources: pd.DataFrame) -> list[str]:
    """How the data package names each source of the ``sources`` table."""
    return [
        f"{r['title']} ({r['publisher']}), extract {r['extracted']}".strip()
        for r in sources.to_dict("records")
    ]


def _resource(
    name: str,
    path: str,
    description: str,
    columns: Sequence[schema.Column],
    primary_key: Sequence[str] = (),
) -> dict[str, Any]:
    """A tabular data resource: a CSV file described by schema columns."""
    fields = []
    for c in columns:
        constraints: dict[str, Any] = {"required": True} if c.required else {}
        if c.enum:
            constraints["enum"] = list(c.enum)
        fields.append(
            {
                "name": c.name,
                "type": c.type,
                "description": c.description,
                **({"constraints": constraints} if constraints else {}),
            }
        )
    return {
        "name": name,
        "path": path,
        "profile": "tabular-data-resource",
        "format": "csv",
        "mediatype": "text/csv",
        "encoding": "utf-8",
        "description": description,
        "schema": {
            "fields": fields,
            **({"primaryKey": list(primary_key)} if primary_key else {}),
        },
    }


def datapackage(
    title: str, sources: Sequence[str], created: str, version: str | None = None
) -> dict[str, Any]:
    """The Frictionless Data Package of a build (``version`` None: ``crosswalk.csv``) or
    of a release (``version`` given: ``crosswalk.csv`` and ``changes.csv``, versioned).
    ``sources``: the sources' titles (:func:`source_titles`); ``created``: when the build
    was made or the release published (ISO 8601)."""
    resources = [
        _resource(
            "crosswalk",
            CSV.files[0],
            _CROSSWALK_DESCRIPTION,
            schema.CSV_COLUMNS,
            ("source", "record_id"),
        )
    ]
    if version is not None:
        resources.append(
            _resource(
                "changes", CHANGES_CSV.files[0], schema.CHANGES.description, schema.CHANGES.columns
            )
        )
    package: dict[str, Any] = {
        "profile": "tabular-data-package",
        "name": "facility-crosswalk",
        "title": title,
        "created": created,
        "licenses": [dict(_LICENSE)],
        "sources": [{"title": t} for t in sources],
        "resources": resources,
    }
    if version is not None:
        package["version"] = version
    return package


def read_datapackage(out: Path) -> dict[str, Any]:
    """The data package of the build or release in the directory ``out``."""
    data: dict[str, Any] = json.loads((out / DATAPACKAGE.files[0]).read_text(encoding="utf-8"))
    return data


def write_datapackage(out: Path, package: dict[str, Any]) -> None:
    """``datapackage.json`` in ``out``: a build's (no ``version``) in ASCII, as builds
    always wrote it; a release's in UTF-8, as its other JSON files."""
    if "version" in package:
        write_json(out / DATAPACKAGE.files[0], package)
    else:
        (out / DATAPACKAGE.files[0]).write_text(
            json.dumps(package, indent=2) + "\n", encoding="utf-8"
        )


# --------------------------------------------------------------------------- datasette

_DEFAULT_DESCRIPTION = (
    "Canonical health facilities of California linked across department listings: one entity per "
    "facility, with every source record, identifier and scored link. Entity ids are stable across "
    "releases; retired ids are listed in retired_ids."
)


def datasette_metadata(
    package: dict[str, Any], sources: pd.DataFrame, version: str
) -> dict[str, Any]:
    """Datasette ``metadata.json``: title, description, license, sources and column descriptions.

    Table and column descriptions come from :mod:`crosswalk.artifact.schema`, so they
    match the data dictionary.
    """
    licenses = package.get("licenses") or []
    lic = licenses[0] if licenses else {}
    source_text = "; ".join(
        f"{r['publisher'] or r['name']}: {r['title'] or r['name']} (extract {r['extracted'] or 'undated'})"
        for r in sources.to_dict("records")
    )
    tables: dict[str, Any] = {
        t.name: {
            "description": t.description,
            "columns": {c.name: c.description for c in t.columns},
        }
        for t in (*schema.TABLES, *schema.ID_TABLES, schema.META)
    }
    tables[schema.WIDE_VIEW] = {
        "description": schema.WIDE_VIEW_DESCRIPTION,
        "columns": schema.wide_view_columns([str(n) for n in sources["name"]]),
    }
    title = str(package.get("title") or "Facility crosswalk")
    return {
        "title": f"{title} — release {version}",
        "description": _DEFAULT_DESCRIPTION,
        "license": lic.get("name") or lic.get("title") or "",
        "license_url": lic.get("path") or "",
        "source": source_text,
        "databases": {"crosswalk": {"tables": tables}},
    }


def write_datasette_metadata(out: Path, metadata: dict[str, Any]) -> None:
    """``metadata.json`` in ``out``."""
    write_json(out / DATASETTE.files[0], metadata)


# --------------------------------------------------------------------------- report, manifest


def write_report(out: Path, db_path: Path, manifest: dict[str, Any], changes: pd.DataFrame) -> None:
    """``report.html`` in ``out``: the release of the database at ``db_path``."""
    from crosswalk.report import render_report

    (out / REPORT.files[0]).write_text(render_report(db_path, manifest, changes), encoding="utf-8")


def write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    """``manifest.json`` in ``out``."""
    write_json(out / MANIFEST.files[0], manifest)


def write_json(path: Path, data: Any) -> None:
    """A JSON file of a release: indented, UTF-8, ending with a line feed."""
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
