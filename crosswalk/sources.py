"""Read declared department sources into one canonical batch of records.

The canonical batch has one row per source record and the columns
``source, record_id`` followed by the common facility fields of
:data:`crosswalk.config.FIELD_NAMES`, and one ``id:<scheme>`` column per
declared identifier scheme (raw values; normalization is a later stage).

Every problem found in any source is collected and reported together, each
naming the file, the row or column, and the fix.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crosswalk.config import FIELD_NAMES, Config, SourceConfig
from crosswalk.errors import Problem, SourceError
from crosswalk.internals import readahead
from crosswalk.internals.readahead import Sheet, parse_sheet
from crosswalk.internals.threads import THREADS

#: Column prefix of identifier columns in the canonical batch.
ID_PREFIX = "id:"
_AUTO_ENCODINGS = ("utf-8", "cp1252")


@dataclass(frozen=True)
class SourceInfo:
    """Provenance of one source as read: published with every build."""

    name: str
    publisher: str
    title: str
    extracted: str
    path: str
    sha256: str
    rows: int
    encoding: str


@dataclass
class LoadedSources:
    records: pd.DataFrame
    info: list[SourceInfo]


def load_sources(config: Config) -> LoadedSources:
    """Read every source of ``config``; raise one :class:`SourceError` listing all problems."""
    problems: list[Problem] = []
    frames: list[pd.DataFrame] = []
    infos: list[SourceInfo] = []
    # The sources are read and checked on threads at once (mostly Arrow's work and
    # hashing, outside the GIL); their problems and records are gathered in config order.
    workers = max(min(len(config.sources), THREADS), 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        reading = [pool.submit(read_source, src, config.base_dir) for src in config.sources]
        for done in reading:
            try:
                frame, info = done.result()
            except SourceError as exc:
                problems.extend(exc.problems)
                continue
            frames.append(frame)
            infos.append(info)
    if problems:
        raise SourceError(problems)
    schemes = sorted({c for f in frames for c in f.columns if c.startswith(ID_PREFIX)})
    records = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    for col in schemes:
        if col not in records:
            records[col] = pd.NA
    return LoadedSources(records=records, info=infos)


def read_source(src: SourceConfig, base_dir: Path) -> tuple[pd.DataFrame, SourceInfo]:
    """Read one source file into the canonical batch for that source."""
    path, data, raw, encoding = _read_file(src, base_dir)
    frame = to_canonical(raw, src, _where(src, path))
    sha256 = hashlib.sha256(data).hexdigest()
    info = SourceInfo(
        src.name, src.publisher, src.title, src.extracted, str(path), sha256, len(frame), encoding
    )
    return frame, info


def read_raw(src: SourceConfig, base_dir: Path) -> pd.DataFrame:
    """A source's file as the engine reads it, before mapping: every column as text.

    For tools that derive new editions of a listing (benchmarks, tests); raises
    :class:`SourceError` like the build does.
    """
    return _read_file(src, base_dir)[2]


def _where(src: SourceConfig, path: Path) -> str:
    return f"source {src.name!r} ({path})"


def _read_file(src: SourceConfig, base_dir: Path) -> tuple[Path, bytes, pd.DataFrame, str]:
    """The path, the bytes, the raw table and the encoding (``xlsx`` for workbooks) of a source."""
    path = src.resolved_path(base_dir)
    where = _where(src, path)
    ahead = readahead.take(path, src.format, src.sheet)
    if not path.exists():
        raise SourceError(
            [
                Problem(
                    where,
                    "the file does not exist.",
                    "check `path` in the config; relative paths are relative to the config file.",
                )
            ]
        )
    data = ahead.data if ahead is not None else path.read_bytes()
    if not data.strip():
        raise SourceError(
            [
                Problem(
                    where,
                    "the file is empty.",
                    "point `path` at a file with a header row and records.",
                )
            ]
        )
    if src.format == "xlsx":
        parsed = ahead.sheet if ahead is not None else None
        return path, data, _read_xlsx(data, src, where, parsed), "xlsx"
    raw, encoding = _read_csv(data, src, where)
    return path, data, raw, encoding


# --------------------------------------------------------------------------- readers


def decode(data: bytes, encoding: str, where: str) -> tuple[str, str]:
    """Decode bytes, detecting utf-8 (with or without BOM) or cp1252 when ``encoding`` is auto."""
    if encoding == "auto":
        if data.startswith(b"\xef\xbb\xbf"):
            return data[3:].decode("utf-8", errors="strict"), "utf-8-sig"
        for candidate in _AUTO_ENCODINGS:
            try:
                return data.decode(candidate), candidate
            except UnicodeDecodeError:
                continue
        return data.decode("latin-1"), "latin-1"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SourceError(
            [
                Problem(
                    f"{where} line {line}",
                    f"the bytes are not valid {encoding} ({exc.reason} at byte {exc.start}).",
                    'set encoding = "auto" to detect it, or name the file\'s real encoding (e.g. "cp1252").',
                )
            ]
        ) from exc
    if encoding == "utf-8-sig" or text.startswith("\ufeff"):
        text = text.removeprefix("\ufeff")
    return text, encoding


def _read_csv(data: bytes, src: SourceConfig, where: str) -> tuple[pd.DataFrame, str]:
    text, encoding = decode(data, src.encoding, where)
    # The bytes as read when they are the text's UTF-8 as it is (no byte-order mark to drop).
    plain = encoding == "utf-8" and not data.startswith(b"\xef\xbb\xbf")
    utf8 = data if plain else text.encode("utf-8")
    frame = _read_csv_arrow(utf8, src.delimiter)
    if frame is not None:
        return frame, encoding
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            sep=src.delimiter,
            skipinitialspace=False,
        )
    except pd.errors.EmptyDataError as exc:
        raise SourceError(
            [Problem(where, "the file has no header row.", "add a header row naming the columns.")]
        ) from exc
    except pd.errors.ParserError as exc:
        raise SourceError(
            [
                Problem(
                    where,
                    f"the CSV cannot be parsed: {exc}",
                    "check quoting and the `delimiter` setting at the line named.",
                )
            ]
        ) from exc
    return frame, encoding


def _read_csv_arrow(data: bytes, delimiter: str) -> pd.DataFrame | None:
    """Every column as text, read by Arrow's multi-threaded CSV reader: the table that pandas'
    reader gives (empty fields missing, quoted newlines kept), several times faster.

    ``None`` where the two readers could disagree, so that pandas reads the file and reports
    its problems: a row with a different number of fields, an empty or repeated header name
    (pandas renames them), or anything else Arrow refuses.
    """
    import pyarrow.csv as pacsv

    if len(delimiter) != 1:
        return None
    parse = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True)
    try:
        names = pacsv.open_csv(
            pa.py_buffer(data),
            parse_options=parse,
            convert_options=pacsv.ConvertOptions(strings_can_be_null=True),
        ).schema.names
        if len(set(names)) != len(names) or any(not n.strip() for n in names):
            return None
        table = pacsv.read_csv(
            pa.py_buffer(data),
            parse_options=parse,
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except (pa.ArrowException, ValueError):
        return None
    if table.column_names != names:
        return None
    return table.to_pandas()


def _read_xlsx(
    data: bytes, src: SourceConfig, where: str, parsed: Sheet | None = None
) -> pd.DataFrame:
    """Read one worksheet with calamine (a fast reader of the xlsx format), every cell as text.

    ``parsed``: the sheet already parsed from ``data`` (see :mod:`crosswalk.internals.readahead`).
    """
    got = parsed if parsed is not None else parse_sheet(data, src.sheet)
    if got.open_error is not None:
        raise SourceError(
            [
                Problem(
                    where,
                    f"the file is not a readable xlsx workbook ({got.open_error}).",
                    'export it again as .xlsx, or set format = "csv" if it is a CSV.',
                )
            ]
        ) from got.open_error
    if got.read_error is not None:
        raise SourceError(
            [
                Problem(
                    where,
                    f"sheet {got.name!r} cannot be read ({got.read_error}).",
                    "export the workbook again.",
                )
            ]
        ) from got.read_error
    if got.rows is None:
        raise SourceError(
            [
                Problem(
                    where,
                    f"no sheet named {src.sheet!r}.",
                    f"set sheet to one of {got.names}.",
                )
            ]
        )
    rows = got.rows
    sheet = got.name
    # Column by column: a column of text cells (most of a listing) is stripped in one pass;
    # only columns holding numbers or dates go through the per-cell conversion.
    width = max((len(row) for row in rows), default=0)
    columns = [
        _column_text(col) for col in zip(*(_padded(row, width) for row in rows), strict=True)
    ]
    present = np.zeros(len(rows), dtype=bool)
    for col in columns:
        present |= col.is_valid().to_numpy(zero_copy_only=False)
    kept = np.flatnonzero(present)
    if not len(kept):
        raise SourceError(
            [
                Problem(
                    where,
                    f"sheet {sheet!r} is empty.",
                    "point `sheet` at the sheet with the listing.",
                )
            ]
        )
    header, body = int(kept[0]), pa.array(kept[1:], type=pa.int64())
    names = [
        col[header].as_py() if col[header].is_valid else f"column_{i + 1}"
        for i, col in enumerate(columns)
    ]
    frame = pd.DataFrame(
        {i: pd.array(col.take(body), dtype="string") for i, col in enumerate(columns)}
    )
    frame.columns = pd.Index(names)
    return frame


def _padded(row: list[Any], width: int) -> list[Any]:
    return row if len(row) == width else [*row, *([None] * (width - len(row)))]


_TEXT_ONLY = frozenset({str})
_TEXT_OR_EMPTY = frozenset({str, type(None)})


def _column_text(values: tuple[Any, ...]) -> pa.Array:
    """The cells of one column as text (see :func:`_cell_text`), blank cells missing."""
    kinds = set(map(type, values))
    if kinds <= _TEXT_ONLY:
        texts: list[str | None] = list(map(str.strip, values))
    elif kinds <= _TEXT_OR_EMPTY:
        texts = [v.strip() if v is not None else None for v in values]
    else:
        texts = [_cell_text(v) for v in values]
    column = pa.array(texts, type=pa.string())
    return pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)


def _cell_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, datetime):
        return (
            value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
        )
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()
    return text or None


# --------------------------------------------------------------------------- mapping


def to_canonical(raw: pd.DataFrame, src: SourceConfig, where: str) -> pd.DataFrame:
    """Map a source's raw table to the canonical batch, checking its columns and record ids."""
    problems: list[Problem] = []
    raw.columns = [str(c).strip() for c in raw.columns]
    available = list(raw.columns)

    def need(column: str, role: str) -> None:
        if column not in raw.columns:
            close = difflib.get_close_matches(column, available, n=1, cutoff=0.6)
            fix = (
                f"did you mean {close[0]!r}?"
                if close
                else f"the file's columns are {available[:40]}."
            )
            problems.append(
                Problem(
                    f"{where} column {column!r}",
                    f"the column for {role} is missing from the file.",
                    f"fix `{role}` in the config: {fix}",
                )
            )

    need(src.id_column, "id_column")
    for field_name, columns in src.fields.columns().items():
        for column in columns:
            need(column, f"fields.{field_name}")
    for ident in src.identifiers:
        need(ident.column, f"identifiers ({ident.scheme})")
    if problems:
        raise SourceError(problems)
    if raw.empty:
        raise SourceError(
            [
                Problem(
                    where,
                    "the file has a header but no records.",
                    "point `path` at the full listing.",
                )
            ]
        )

    ids = raw[src.id_column].astype("string").str.strip()
    blank = ids.isna() | (ids == "")
    if blank.any():
        rows = (blank[blank].index[:5] + 2).tolist()
        problems.append(
            Problem(
                f"{where} column {src.id_column!r}",
                f"{int(blank.sum())} record(s) have no id (data rows {rows}).",
                "give every record an id, or choose another id_column.",
            )
        )
    dup = ids[~blank & ids.duplicated(keep=False)]
    if not dup.empty:
        sample = dup.drop_duplicates().head(5).tolist()
        rows = (dup.index[:6] + 2).tolist()
        problems.append(
            Problem(
                f"{where} column {src.id_column!r}",
                f"{dup.nunique()} record id(s) occur more than once, e.g. {sample} (file lines {rows}).",
                "record ids must be unique within a source: choose a unique id_column or deduplicate the file.",
            )
        )
    if problems:
        raise SourceError(problems)

    out = pd.DataFrame(index=raw.index)
    out["source"] = src.name
    out["record_id"] = ids
    for field_name in FIELD_NAMES:
        value = getattr(src.fields, field_name)
        if field_name == "other_names":
            cols = list(value)
            if cols:
                joined = pd.Series("", index=raw.index, dtype="string")
                for col in cols:
                    part = raw[col].astype("string").str.strip().fillna("")
                    sep = pd.Series(" | ", index=raw.index, dtype="string").where(
                        (joined != "") & (part != ""), ""
                    )
                    joined = joined + sep + part
                out[field_name] = joined.mask(joined == "").astype("string")
            else:
                out[field_name] = pd.Series(pd.NA, index=raw.index, dtype="string")
        elif value:
            stripped = raw[value].astype("string").str.strip()
            out[field_name] = stripped.mask(stripped == "")
        else:
            out[field_name] = pd.Series(
                src.defaults.get(field_name, pd.NA), index=raw.index, dtype="string"
            )
        if field_name in src.defaults:
            out[field_name] = out[field_name].fillna(src.defaults[field_name])
    for ident in src.identifiers:
        col = f"{ID_PREFIX}{ident.scheme}"
        stripped = raw[ident.column].astype("string").str.strip()
        values = stripped.mask(stripped == "")
        out[col] = values if col not in out else out[col].fillna(values)
    return out.reset_index(drop=True)
