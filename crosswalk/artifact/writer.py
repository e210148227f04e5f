"""The one writer of the published artifact: ``crosswalk.sqlite`` (the published tables,
``meta``, the id tables, and a release's version stamp and full-text search), the CSV files,
and the atomic swap of a build's output directory.

Every table is created from its definition in :mod:`crosswalk.artifact.schema`. Which files
a build and a release write is the registry :mod:`crosswalk.formats`.

Every CSV the project writes goes through :func:`write_frame_csv`, which neutralizes the
text cells a spreadsheet would run as formulas (the rule is stated in
:mod:`crosswalk.artifact.schema`).

Writing is atomic: everything is written into a fresh hidden sibling
directory, which is then swapped with the output directory (see
:func:`publish`). A build killed at any point leaves the previous output or
the new one, whole, and the next build cleans up what it left.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlite_utils

from crosswalk.artifact import schema
from crosswalk.artifact.files import (
    exchange,
    exclusive_lock,
    force_rmtree,
    fsync_dir,
    make_dir_beside,
)
from crosswalk.artifact.reader import connect
from crosswalk.artifact.sqlite_load import CACHE_KIB, PAGE_SIZE, bulk_insert
from crosswalk.errors import BuildError
from crosswalk.stages.kernel.codes import in_order, sort_order
from crosswalk.stages.kernel.text import float_text
from matchers._text import contains, where

if TYPE_CHECKING:
    from crosswalk.ids import IdState

#: Each schema type's column type in SQLite (as sqlite-utils names it) and its Arrow type,
#: which the bulk load binds to SQLite's storage classes (text, integer, real; missing
#: values and NaN as NULL, booleans as 0/1).
_TYPES: dict[str, tuple[type, pa.DataType]] = {
    "string": (str, pa.large_string()),
    "integer": (int, pa.int64()),
    "number": (float, pa.float64()),
    "boolean": (int, pa.bool_()),
    "object": (str, pa.large_string()),
}


#: Rows converted to Arrow and inserted at a time: bounds the memory of the conversion.
CHUNK_ROWS = 50_000
#: Chunks of rows converted to Arrow ahead of the bulk load.
AHEAD = 2


def create_table(
    db: sqlite_utils.Database,
    table: schema.Table,
    foreign_keys: list[tuple[str, str, str]] | None = None,
) -> None:
    """Create ``table`` from its schema definition."""
    db[table.name].create(  # type: ignore[union-attr]
        {c.name: _TYPES[c.type][0] for c in table.columns},
        pk=table.primary_key[0] if len(table.primary_key) == 1 else list(table.primary_key),
        not_null={c.name for c in table.columns if c.required},
        foreign_keys=foreign_keys or None,
    )


def table_rows(
    table: schema.Table, frame: pd.DataFrame, order: np.ndarray | None = None
) -> pa.RecordBatchReader:
    """The rows of ``frame`` for ``table``: its columns, typed by the schema, in primary-key
    order, converted to Arrow :data:`CHUNK_ROWS` rows at a time as they are read.
    ``order``: the rows' positions in primary-key order, when the caller has them.

    Rows go in key order because the key's index then grows by appends, which is much
    faster than inserting keys at random places and needs a small page cache only.
    """
    arrow_schema = pa.schema([(c.name, _TYPES[c.type][1]) for c in table.columns])
    if order is None:
        order = sort_order(frame, list(table.primary_key))
    elif in_order(order):
        order = None  # in key order already: slices, not copies
    rows = frame[list(table.column_names)]

    def convert(start: int) -> list[pa.RecordBatch]:
        part = (
            rows.iloc[start : start + CHUNK_ROWS]
            if order is None
            else rows.take(order[start : start + CHUNK_ROWS])
        )
        # A table, not a batch: a column may come in several Arrow chunks.
        return pa.Table.from_pandas(part, schema=arrow_schema, preserve_index=False).to_batches()

    def batches() -> Iterator[pa.RecordBatch]:
        # The next chunks are converted on a thread while SQLite inserts this one (the
        # insert runs outside the GIL): at most AHEAD chunks wait in memory.
        starts = iter(range(0, len(frame), CHUNK_ROWS))
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = deque(pool.submit(convert, s) for s in islice(starts, AHEAD))
            while pending:
                done = pending.popleft().result()
                for start in islice(starts, 1):
                    pending.append(pool.submit(convert, start))
                yield from done

    return pa.RecordBatchReader.from_batches(arrow_schema, batches())


#: The published tables with their foreign keys, in the order they are created.
_PUBLISHED: list[tuple[schema.Table, list[tuple[str, str, str]] | None]] = [
    (schema.SOURCES, None),
    (schema.ENTITIES, None),
    (
        schema.RECORDS,
        [("entity_id", "entities", "entity_id"), ("source", "sources", "name")],
    ),
    (schema.IDENTIFIERS, [("entity_id", "entities", "entity_id")]),
    (schema.LINKS, None),
    (schema.CONFLICTS, None),
]


#: The indexes of the published tables (besides their primary keys), by table.
_INDEXES: dict[str, list[list[str]]] = {
    "records": [["entity_id"]],
    "identifiers": [["scheme", "value"], ["source", "record_id"]],
    "links": [["source_l", "record_id_l"], ["source_r", "record_id_r"], ["entity_id"]],
    "entities": [["facility_class"], ["county"]],
}


def _open_for_writing(path: Path) -> sqlite_utils.Database:
    """The staging database at ``path``, set up for bulk work: a thrown-away copy needs
    neither journal nor sync."""
    db = sqlite_utils.Database(path)
    db.conn.execute("PRAGMA journal_mode = OFF")
    db.conn.execute("PRAGMA synchronous = OFF")
    db.conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    # Helper threads for the sorts of CREATE INDEX (a third faster on two cores).
    db.conn.execute(f"PRAGMA threads = {min(os.cpu_count() or 1, 8)}")
    return db


def _create_indexes(db: sqlite_utils.Database, tables: Iterable[str]) -> None:
    for name in tables:
        for columns in _INDEXES.get(name, []):
            db[name].create_index(columns)  # type: ignore[union-attr]


def create_database(path: Path, tables: Iterable[str] | None = None) -> None:
    """A new database at ``path`` with the published tables (by default all of them),
    empty and without their indexes."""
    wanted = None if tables is None else set(tables)
    db = sqlite_utils.Database(path)
    try:
        db.conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # before the first table
        with db.conn:
            for table, foreign_keys in _PUBLISHED:
                if wanted is None or table.name in wanted:
                    create_table(db, table, foreign_keys)
    finally:
        db.conn.close()


def load_tables(
    path: Path, frames: Mapping[str, pd.DataFrame], orders: Mapping[str, np.ndarray] | None = None
) -> None:
    """Bulk-load the rows of ``frames`` into their empty tables of the database at
    ``path``, then index them. ``orders``: a table's rows in primary-key order
    (positions), where the caller has them.

    The tables may load in any order (``records`` before the ``entities`` its foreign key
    names): foreign keys are not enforced while loading (SQLite's default)."""
    orders = orders or {}
    tables = [t for t, _ in _PUBLISHED if t.name in frames]
    bulk_insert(path, [(t.name, table_rows(t, frames[t.name], orders.get(t.name))) for t in tables])
    db = _open_for_writing(path)
    try:
        _create_indexes(db, frames)
    finally:
        db.conn.close()


def stage_tables(
    path: Path, frames: Mapping[str, pd.DataFrame], orders: Mapping[str, np.ndarray] | None = None
) -> Path:
    """Load ``frames`` into a database of their own at ``path``, indexed, for
    :func:`merge_tables`: several threads can so load tables at once. ``orders`` as for
    :func:`load_tables`. Returns ``path``."""
    create_database(path, frames)
    load_tables(path, frames, orders)
    return path


def merge_tables(path: Path, staged: Iterable[Path]) -> None:
    """Move the tables of the ``staged`` databases (see :func:`stage_tables`) into their
    empty tables of the database at ``path``, and delete the staged files.

    The tables and their indexes are defined alike on both sides, so SQLite copies the
    rows and index entries as they are, without decoding or sorting them again."""
    db = _open_for_writing(path)
    try:
        for part in staged:
            db.conn.execute("ATTACH DATABASE ? AS staged", (str(part),))
            names = [
                r[0]
                for r in db.conn.execute(
                    "SELECT name FROM staged.sqlite_master WHERE type = 'table'"
                )
            ]
            with db.conn:
                _create_indexes(db, names)  # on the empty tables: instant
                for name in names:
                    db.conn.execute(f"INSERT INTO main.[{name}] SELECT * FROM staged.[{name}]")
            db.conn.execute("DETACH DATABASE staged")
            part.unlink()
    finally:
        db.conn.close()


def finish_sqlite(path: Path, meta: dict[str, Any], source_names: list[str]) -> None:
    """Complete a database :func:`load_tables` wrote: ``meta``, the ``crosswalk_wide``
    view (a column per source of ``source_names``) and the statistics."""
    db = _open_for_writing(path)
    with db.conn:
        create_table(db, schema.META)
        db.conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [
                (k, v if isinstance(v, str) else json.dumps(v, sort_keys=True))
                for k, v in meta.items()
            ],
        )
    db.conn.execute(
        f"CREATE VIEW {schema.WIDE_VIEW} AS SELECT e.entity_id, e.name, e.city, e.zip, "
        + ", ".join(
            f"(SELECT group_concat(r.record_id, ';') FROM records r WHERE r.entity_id = e.entity_id "
            f"AND r.source = '{name}') AS [{name}]"
            for name in source_names
            if name.replace("_", "").replace("-", "").isalnum()
        )
        + " FROM entities e"
    )
    # Statistics for the query planner from a sample of each index (SQLite's advice for
    # large tables): exact ones cost a full scan of every index.
    db.conn.execute("PRAGMA analysis_limit = 1000")
    db.conn.execute("ANALYZE")
    db.conn.commit()
    db.conn.close()


def write_csv(path: Path, records: pd.DataFrame) -> None:
    """Write ``crosswalk.csv``: the CSV columns of the records, probabilities to 6 decimals."""
    cols = [c.name for c in schema.CSV_COLUMNS]
    out = records[cols].assign(match_probability=records["match_probability"].round(6))
    write_frame_csv(path, out)


def write_frame_csv(target: Path | BinaryIO, frame: pd.DataFrame) -> None:
    """Write ``frame`` as CSV to the file ``target`` (a path, or a binary stream such as
    ``sys.stdout.buffer``), built column-wise by Arrow :data:`CHUNK_ROWS` rows at a time.

    It writes what ``frame.to_csv(path, index=False, lineterminator="\n")`` writes
    (minimal quoting, empty missing values, floats as ``str``, booleans as ``True`` and
    ``False``), except for the text cells a spreadsheet would run: those are neutralized
    (see :func:`formula_cells`). Numeric and boolean columns are never changed."""
    if isinstance(target, (str, os.PathLike)):
        with open(target, "wb") as fh:
            _write_rows(fh, frame)
    else:
        _write_rows(target, frame)


def _write_rows(fh: BinaryIO, frame: pd.DataFrame) -> None:
    fh.write((",".join(_csv_field(str(c)) for c in frame.columns) + "\n").encode("utf-8"))
    for start in range(0, len(frame), CHUNK_ROWS):
        part = frame.iloc[start : start + CHUNK_ROWS]
        fields = [_csv_column(part[c]) for c in frame.columns]
        lines = pc.binary_join_element_wise(*fields, ",")
        lines = pc.binary_join_element_wise(lines, "", "\n")
        for chunk in lines.chunks if isinstance(lines, pa.ChunkedArray) else [lines]:
            fh.write(_string_bytes(chunk))


def _quoted_characters() -> str:
    """The characters that make Python's csv writer (which pandas uses) quote a field under
    minimal quoting with ``"\\n"`` line endings: whether a lone carriage return does varies
    between Python versions."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(["a\rb"])
    return ',"\n' + ("\r" if out.getvalue().startswith('"') else "")


_QUOTED = _quoted_characters()

#: For each first byte of a cell, what a cell that begins with it is: 0 ordinary, 1 a cell a
#: spreadsheet would run (:data:`schema.FORMULA_STARTS`), 2 a cell that begins with
#: :data:`schema.TEXT_PREFIX`. These characters are ASCII, and in UTF-8 no other character
#: begins with an ASCII byte: the first byte tells.
_FIRST_BYTE = np.zeros(256, dtype=np.uint8)
_FIRST_BYTE[[ord(c) for c in schema.FORMULA_STARTS]] = 1
_FIRST_BYTE[ord(schema.TEXT_PREFIX)] = 2
#: A cell that begins with the prefix (once or more), then a character that runs (RE2).
_PREFIXED_FORMULA = (
    f"^(?:\\x{ord(schema.TEXT_PREFIX):02x})+["
    + "".join(f"\\x{ord(c):02x}" for c in schema.FORMULA_STARTS)
    + "]"
)


def formula_cells(column: pa.Array) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Which cells of the string array ``column`` are neutralized in a CSV: those that begin
    with a character of :data:`schema.FORMULA_STARTS` (a spreadsheet would run them), and
    those that begin with :data:`schema.TEXT_PREFIX` (once or more) before such a character,
    so that the rule can be undone: strip the first prefix of a cell that begins so.

    Vectorized on the array's buffers: a gather of the cells' first bytes and a table
    look-up tell most columns at once that no cell is concerned; a regular expression
    looks only at the rare cells that begin with the prefix."""
    n = len(column)
    _, offsets_buf, data = column.buffers()
    if n == 0 or data is None or data.size == 0:
        return np.zeros(n, dtype=bool)
    offsets = np.frombuffer(offsets_buf, dtype=np.int32, count=n + 1, offset=4 * column.offset)
    # An empty cell's "first byte" is its successor's (or, at the end, the last byte): the
    # look-up may flag it, the check of the cells' lengths below clears it.
    first = np.frombuffer(data, dtype=np.uint8).take(offsets[:-1], mode="clip")
    kind = _FIRST_BYTE.take(first)
    if not kind.any():
        return np.zeros(n, dtype=bool)
    kind[offsets[1:] == offsets[:-1]] = 0
    if column.null_count:
        kind[~column.is_valid().to_numpy(zero_copy_only=False)] = 0
    runs = kind == 1
    prefixed = np.flatnonzero(kind == 2)
    if len(prefixed):
        found = pc.match_substring_regex(column.take(prefixed), _PREFIXED_FORMULA)
        runs[prefixed] = pc.fill_null(found, False).to_numpy(zero_copy_only=False)
    return runs


def _csv_field(text: str) -> str:
    if any(ch in text for ch in _QUOTED):
        return '"' + text.replace('"', '""') + '"'
    return text


def _quote(fields: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise('"', pc.replace_substring(fields, '"', '""'), '"', "")


def _csv_column(values: pd.Series) -> pa.Array:
    """One column as CSV field text: missing values empty, quoted where the text needs it,
    and the cells a spreadsheet would run (:func:`formula_cells`) prefixed and quoted."""
    if pd.api.types.is_float_dtype(values.dtype):
        arr = values.to_numpy(dtype=np.float64)
        return pc.if_else(pa.array(np.isnan(arr)), "", float_text(arr))
    if pd.api.types.is_integer_dtype(values.dtype) and not pd.api.types.is_extension_array_dtype(
        values.dtype
    ):
        return pa.array(values.to_numpy().astype(str).tolist(), type=pa.string())
    if values.dtype == np.bool_:
        return pc.if_else(pa.array(values.to_numpy()), "True", "False")
    column = pa.array(values, type=pa.string(), from_pandas=True)
    if isinstance(column, pa.ChunkedArray):  # a chunk of CHUNK_ROWS rows at most
        column = column.combine_chunks()
    # Most columns hold no such character at all: one search of their bytes tells. Else
    # literal searches, one per character, are faster than one regular expression, and
    # the few fields that need quotes are quoted alone.
    text = bytes(_string_bytes(column))
    quoted = (
        contains(column, tuple(_QUOTED))
        if any(ch.encode("utf-8") in text for ch in _QUOTED)
        else None
    )
    runs = formula_cells(column)
    if runs.any():
        neutral = pa.array(runs)
        column = where(
            column, neutral, lambda some: pc.binary_join_element_wise(schema.TEXT_PREFIX, some, "")
        )
        quoted = neutral if quoted is None else pc.or_(quoted, neutral)
    if quoted is not None:
        column = where(column, quoted, _quote)
    return pc.fill_null(column, "")


def _string_bytes(strings: pa.Array) -> memoryview:
    """The concatenated UTF-8 bytes of a string array, without a copy (with the bytes
    under its null values, if any: none where Arrow or pandas made the array)."""
    if len(strings) == 0:
        return memoryview(b"")
    _, offsets_buf, data = strings.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)
    return memoryview(data)[offsets[strings.offset] : offsets[strings.offset + len(strings)]]


# --------------------------------------------------------------------------- id tables


def create_statement(table: schema.Table) -> str:
    """``CREATE TABLE`` of an id table, from its definition: every column ``TEXT``, ``NOT
    NULL`` where required, and its primary key."""
    single = table.primary_key[0] if len(table.primary_key) == 1 else None
    columns = [
        f"{c.name} {_SQL_TYPES[c.type]}"
        + (" PRIMARY KEY" if c.name == single else " NOT NULL" if c.required else "")
        for c in table.columns
    ]
    if len(table.primary_key) > 1:
        columns.append(f"PRIMARY KEY ({', '.join(table.primary_key)})")
    return f"CREATE TABLE {table.name} ({', '.join(columns)})" + (
        " WITHOUT ROWID" if table.without_rowid else ""
    )


#: Each schema type's declared SQLite type (what :func:`create_table` declares too).
_SQL_TYPES = {
    "string": "TEXT",
    "object": "TEXT",
    "integer": "INTEGER",
    "boolean": "INTEGER",
    "number": "REAL",
}


def write_state(path: Path, state: IdState) -> None:
    """Write the id tables (:data:`schema.ID_TABLES`: ``retired_ids``, ``retired_members``,
    ``changes`` and ``id_state``) into the crosswalk database at ``path`` (bulk-loaded, see
    :func:`crosswalk.artifact.sqlite_load.bulk_insert`).

    For a database being built (a build's staging copy, not yet published): existing
    tables of these names are replaced, and the load runs without a rollback journal.
    The database must not be open for writing elsewhere. The ``release`` column of ids
    retired by this build stays empty until ``crosswalk release`` publishes the build
    and fills in its version (:func:`stamp_version`).
    """
    from crosswalk.ids import PREFIX

    with closing(sqlite3.connect(path)) as conn, conn:
        for t in schema.ID_TABLES:
            conn.execute(f"DROP TABLE IF EXISTS [{t.name}]")
        for t in (schema.RETIRED_IDS, schema.CHANGES, schema.ID_STATE, schema.RETIRED_MEMBERS):
            conn.execute(create_statement(t))
    kv = {"counter": str(state.counter), "prefix": PREFIX}
    if state.previous_release:
        kv["previous_release"] = state.previous_release
    if state.release:
        kv["release"] = state.release
    id_state = pd.DataFrame(sorted(kv.items()), columns=schema.ID_STATE.column_names)
    bulk_insert(
        path,
        [
            (schema.RETIRED_IDS.name, _text_rows(state.retired, schema.RETIRED_IDS)),
            (
                schema.RETIRED_MEMBERS.name,
                _text_rows(state.retired_members, schema.RETIRED_MEMBERS),
            ),
            (schema.CHANGES.name, _text_rows(state.changes, schema.CHANGES)),
            (schema.ID_STATE.name, _text_rows(id_state, schema.ID_STATE)),
        ],
    )


def _text_rows(frame: pd.DataFrame, table: schema.Table) -> pa.RecordBatchReader:
    """The columns of ``table`` from ``frame`` as Arrow text (missing values as null)."""
    arrow_schema = pa.schema([(c, pa.large_string()) for c in table.column_names])
    rows = pa.Table.from_pandas(
        frame[table.column_names], schema=arrow_schema, preserve_index=False
    )
    return pa.RecordBatchReader.from_batches(arrow_schema, rows.to_batches())


# --------------------------------------------------------------------------- a release's copy


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database (the online backup API)."""
    src = connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def stamp_version(db: sqlite_utils.Database, version: str) -> None:
    """Record the version in the release's id state and on the ids it retires."""
    if not db[schema.ID_STATE.name].exists():
        db.execute(create_statement(schema.ID_STATE))
    db.execute("INSERT OR REPLACE INTO id_state (key, value) VALUES ('release', ?)", [version])
    if db[schema.RETIRED_IDS.name].exists():
        db.execute("UPDATE retired_ids SET release = ? WHERE release IS NULL", [version])
    else:
        db.execute(create_statement(schema.RETIRED_IDS))
    db.conn.commit()


def make_searchable(db: sqlite_utils.Database) -> None:
    """Full-text search (FTS5, for Datasette and the API) on the columns
    :data:`schema.SEARCHABLE` names: entity and record names."""
    for name, wanted in schema.SEARCHABLE.items():
        columns = [c for c in wanted if c in db[name].columns_dict]
        if columns:
            db[name].enable_fts(columns, replace=True)  # type: ignore[union-attr]
    db.conn.commit()


# --------------------------------------------------------------------------- publishing a build


#: The files SQLite keeps beside ``crosswalk.sqlite`` while it writes to it: the build's
#: own (its journal), or those of a program that wrote to the published database.
_SQLITE_COMPANIONS = ("crosswalk.sqlite-journal", "crosswalk.sqlite-wal", "crosswalk.sqlite-shm")
#: An environment variable that, set to anything but "" or "0", turns off the atomic
#: exchange: publishing then swaps with two renames, as where the system cannot exchange.
NO_EXCHANGE_VARIABLE = "CROSSWALK_NO_RENAME_EXCHANGE"


def publish(out: Path, write: Any) -> None:
    """Call ``write(tmpdir)`` to fill a fresh directory, then swap it in place of ``out``.

    All of it runs under an exclusive lock on the hidden file ``.NAME.lock`` beside
    ``out`` (another build into ``out`` stops at once with a :class:`BuildError`). It
    first puts back or removes what interrupted builds left (:func:`_recover`), and
    refuses to replace a directory holding anything but a build's files
    (:data:`crosswalk.formats.BUILD_OUTPUTS`). The swap is
    one atomic exchange of the two directories where the system can (Linux's
    ``renameat2``), else two renames that the next build recovers from if killed
    between them: ``out`` holds the previous build or the new one, whole, at every
    instant but that one."""
    out = out.resolve()
    parent = out.parent
    parent.mkdir(parents=True, exist_ok=True)
    lock = parent / f".{out.name}.lock"
    busy = BuildError(
        f"another build is writing {out} (it holds the lock {lock}). "
        "Fix: wait for it to finish and build again, or choose another --out."
    )
    with exclusive_lock(lock, busy):
        _recover(out)
        _check_replaceable(out)
        tmp = make_dir_beside(parent, f".{out.name}.tmp-")
        try:
            write(tmp)
            for name in os.listdir(tmp):
                _fsync_tree(tmp / name)
            fsync_dir(tmp)
            _check_replaceable(out)  # again: a file may have appeared while writing
            _swap(tmp, out)
        except BaseException:
            force_rmtree(tmp)  # the new build, or the old one once swapped out
            raise


def _fsync_tree(path: Path) -> None:
    """Flush a written file to disk, or every file and directory under a written directory
    (the Spark runner's ``parquet/``)."""
    if path.is_dir():
        for root, _, names in os.walk(path):
            for name in names:
                _fsync_tree(Path(root, name))
            fsync_dir(Path(root))
        return
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _hidden(out: Path, kind: str) -> list[Path]:
    """The directories beside ``out`` named ``.NAME.<kind>-*``."""
    prefix = f".{out.name}.{kind}-"
    return [p for p in out.parent.iterdir() if p.name.startswith(prefix) and p.is_dir()]


def _recover(out: Path) -> None:
    """Put back or remove what interrupted builds left beside ``out`` (under the lock).

    Only a whole previous build is ever named ``.NAME.old-*``: the two-rename swap sets
    the previous build aside under that name, renames the new one into place, then
    renames the previous one to a ``.NAME.tmp-*`` name to remove it. So when ``out`` is
    missing, the newest ``.NAME.old-*`` goes back in its place; every other one, and
    every ``.NAME.tmp-*`` (a build being written, or an old one being removed), is
    removed."""
    olds = sorted(_hidden(out, "old"), key=lambda p: p.stat().st_ctime_ns)
    if olds and not os.path.lexists(out):
        os.rename(olds.pop(), out)
        fsync_dir(out.parent)
    for stale in olds + _hidden(out, "tmp"):
        force_rmtree(stale)


def _check_replaceable(out: Path) -> None:
    """Refuse to replace ``out`` unless it is missing or holds a build's files only."""
    if os.path.lexists(out) and not out.is_dir():
        raise BuildError(f"{out} exists and is not a directory. Fix: choose another --out.")
    if not out.exists():
        return
    from crosswalk.formats import BUILD_OUTPUTS  # the registry writes through this module

    names = sorted(os.listdir(out))
    foreign = [
        name + ("/" if (out / name).is_dir() else "")
        for name in names
        if name not in BUILD_OUTPUTS and name not in _SQLITE_COMPANIONS
    ]
    if foreign:
        shown = ", ".join(foreign[:10]) + (
            f" and {len(foreign) - 10} more" if len(foreign) > 10 else ""
        )
        raise BuildError(
            f"{out} holds {len(foreign)} file(s) that a build does not write: {shown}. "
            "A build replaces the whole directory, so they would be lost; refusing to "
            f"replace it. Fix: move them out of {out}, or choose another --out."
        )
    if names and "crosswalk.sqlite" not in names:
        raise BuildError(
            f"{out} is not empty and holds no crosswalk build; refusing to replace it. "
            "Fix: choose an empty or new directory for --out."
        )


def _swap(tmp: Path, out: Path) -> None:
    """Put the finished build ``tmp`` in place of ``out``; remove the previous build."""
    parent = out.parent
    if not os.path.lexists(out):
        os.rename(tmp, out)
        fsync_dir(parent)
        return
    if os.environ.get(NO_EXCHANGE_VARIABLE, "") in ("", "0") and exchange(tmp, out):
        fsync_dir(parent)
        force_rmtree(tmp)  # the previous build now
        return
    old = parent / f".{out.name}.old-{os.getpid()}"
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(old, out)
        raise
    fsync_dir(parent)
    os.rename(old, tmp)  # a partly removed build never bears an .old- name
    force_rmtree(tmp)
