"""Read declared department sources into one canonical batch of records.

The canonical batch has one row per source record and the columns
``source, record_id`` followed by the common facility fields of
:data:`crosswalk.vocabulary.FIELD_NAMES`, and one ``id:<scheme>`` column per
declared identifier scheme (raw values; normalization is a later stage).

Every problem found in any source is collected and reported together, each
naming the file, the row or column, and the fix. What is read but looks wrong (see
``docs/sources.md``) is a warning: the build goes on, and prints and records it.
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import hashlib
import io
import itertools
import math
import re
import warnings as pywarnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crosswalk import readahead
from crosswalk.config import Config, RowFilter, SourceConfig
from crosswalk.errors import Problem, SourceError
from crosswalk.readahead import Sheet, parse_sheet
from crosswalk.runners.local import THREADS, parallel
from crosswalk.stages.normalize import facility_classes
from crosswalk.vocabulary import FIELD_NAMES, ID_PREFIX

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
    #: What was read but looks wrong: the config's, then each source's, in config order.
    warnings: list[Problem] = field(default_factory=list)


def load_sources(config: Config) -> LoadedSources:
    """Read every source of ``config``; raise one :class:`SourceError` listing all problems."""
    problems: list[Problem] = []
    frames: list[pd.DataFrame] = []
    infos: list[SourceInfo] = []
    warned: list[Problem] = list(config.warnings)
    # The sources are read and checked on threads at once (mostly Arrow's work and
    # hashing, outside the GIL), through the runner's handle; their problems and records
    # are gathered in config order.
    workers = max(min(len(config.sources), THREADS), 1)
    with parallel(workers, "sources") as handle:
        reading = [handle.submit(read_source, src, config.base_dir) for src in config.sources]
        for done in reading:
            try:
                frame, info, found = done.result()
            except SourceError as exc:
                problems.extend(exc.problems)
                continue
            frames.append(frame)
            infos.append(info)
            warned.extend(found)
    if problems:
        raise SourceError(problems)
    warned.extend(unshared_field_warnings(config.sources, frames))
    schemes = sorted({c for f in frames for c in f.columns if c.startswith(ID_PREFIX)})
    records = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    for col in schemes:
        if col not in records:
            records[col] = pd.NA
    return LoadedSources(records=records, info=infos, warnings=warned)


def read_source(
    src: SourceConfig, base_dir: Path
) -> tuple[pd.DataFrame, SourceInfo, list[Problem]]:
    """Read one source file into the canonical batch for that source, with its warnings."""
    raw = _read_file(src, base_dir)
    found = list(raw.warnings)
    frame = to_canonical(raw.frame, src, _where(src, raw.path), raw.rows, found)
    sha256 = hashlib.sha256(raw.data).hexdigest()
    info = SourceInfo(
        src.name,
        src.publisher,
        src.title,
        src.extracted,
        str(raw.path),
        sha256,
        len(frame),
        raw.encoding,
    )
    return frame, info, found


def read_raw(src: SourceConfig, base_dir: Path) -> pd.DataFrame:
    """A source's file as the engine reads it, before mapping: every column as text.

    For tools that derive new editions of a listing (benchmarks, tests); raises
    :class:`SourceError` like the build does.
    """
    return _read_file(src, base_dir).frame


def _where(src: SourceConfig, path: Path) -> str:
    return f"source {src.name!r} ({path})"


#: Names the rows of a raw table at some positions (0-based, after the header) as its
#: file does, for messages: "file lines [8, 10]" for a CSV, "sheet rows [9]" for a sheet.
Rows = Callable[[Sequence[int]], str]


def _positions_only(positions: Sequence[int]) -> str:
    return f"rows at positions {[int(p) for p in positions]}"


@dataclass
class _Raw:
    """A source's file as read: its path, its bytes, its table (every column as text), the
    encoding it was decoded with (``xlsx`` for workbooks), how its rows are named, and
    what looked wrong on the way."""

    path: Path
    data: bytes
    frame: pd.DataFrame
    encoding: str
    rows: Rows
    warnings: list[Problem]


def _read_file(src: SourceConfig, base_dir: Path) -> _Raw:
    """Read a source's file (see :class:`_Raw`)."""
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
    if path.is_dir():
        listed = sorted(p.name for p in path.iterdir() if p.suffix.lower() in (".csv", ".xlsx"))
        raise SourceError(
            [
                Problem(
                    where,
                    "the path is a directory, not a file.",
                    "point `path` at the listing's file"
                    + (f", e.g. one of {listed[:5]} in it." if listed else "."),
                )
            ]
        )
    try:
        data = ahead.data if ahead is not None else path.read_bytes()
    except OSError as exc:
        raise SourceError(
            [
                Problem(
                    where,
                    f"the file cannot be read ({exc.strerror or exc}).",
                    "check that `path` names a file this user may read.",
                )
            ]
        ) from exc
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
        frame, rows = _read_xlsx(data, src, where, parsed)
        return _Raw(path, data, frame, "xlsx", rows, [])
    frame, encoding, rows, found = _read_csv(data, src, where)
    return _Raw(path, data, frame, encoding, rows, found)


# --------------------------------------------------------------------------- readers

#: Byte-order marks and the encodings they announce; UTF-32's before UTF-16's, whose
#: little-endian mark begins UTF-32's.
_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
_UNICODE_NAMES = {
    "utf-32-le": "UTF-32 (little-endian)",
    "utf-32-be": "UTF-32 (big-endian)",
    "utf-8-sig": "UTF-8",
    "utf-16-le": "UTF-16 (little-endian)",
    "utf-16-be": "UTF-16 (big-endian)",
}


def decode(data: bytes, encoding: str, where: str) -> tuple[str, str]:
    """Decode bytes; return the text and the encoding it was decoded with.

    A byte-order mark decides: UTF-8, UTF-16 or UTF-32 (either byte order) with ``auto``,
    a refusal naming the file's encoding when another is declared. Without one, ``auto``
    tries UTF-8, then cp1252, then latin-1. Text that looks like UTF-16 without a mark
    (every other byte zero) is refused, naming it.
    """
    for bom, marked in _BOMS:
        if data.startswith(bom):
            if encoding == "auto" or (marked == "utf-8-sig" and encoding.startswith("utf-8")):
                codec = "utf-8" if marked == "utf-8-sig" else marked
                return _strict(data, len(bom), codec, where), marked
            raise SourceError(
                [
                    Problem(
                        where,
                        f"the file is {_UNICODE_NAMES[marked]}: it starts with that encoding's "
                        f'byte-order mark, but encoding = "{encoding}" is declared.',
                        'set encoding = "auto", which decodes it.',
                    )
                ]
            )
    wide = _utf16_without_mark(data)
    if wide is not None:
        raise SourceError(
            [
                Problem(
                    where,
                    f"the file looks like {_UNICODE_NAMES[wide]} without a byte-order mark "
                    "(every other byte is zero).",
                    "save it as UTF-8 (or as UTF-16 with its byte-order mark, which is decoded).",
                )
            ]
        )
    if encoding == "auto":
        for candidate in _AUTO_ENCODINGS:
            try:
                return data.decode(candidate), candidate
            except UnicodeDecodeError:
                continue
        return data.decode("latin-1"), "latin-1"
    return _strict(data, 0, encoding, where), encoding


def _strict(data: bytes, start: int, codec: str, where: str) -> str:
    """``data[start:]`` decoded, or a :class:`SourceError` naming the line of the first bad byte."""
    try:
        return data[start:].decode(codec)
    except UnicodeDecodeError as exc:
        bad = start + exc.start
        line = data[start:bad].decode(codec, errors="replace").count("\n") + 1
        raise SourceError(
            [
                Problem(
                    f"{where} line {line}",
                    f"the bytes are not valid {codec} ({exc.reason} at byte {bad}).",
                    'set encoding = "auto" to detect it, or name the file\'s real encoding (e.g. "cp1252").',
                )
            ]
        ) from exc


def _utf16_without_mark(data: bytes) -> str | None:
    """``utf-16-le`` or ``utf-16-be`` when the file's start reads as mostly ASCII text in
    UTF-16 (a zero byte beside each character), else ``None``."""
    head = data[:4096]
    half = len(head) // 2
    if half < 8:
        return None
    even, odd = head[0 : 2 * half : 2].count(0), head[1 : 2 * half : 2].count(0)
    if odd > 0.5 * half and even == 0:
        return "utf-16-le"
    if even > 0.5 * half and odd == 0:
        return "utf-16-be"
    return None


#: The first bytes of a zip archive (an xlsx workbook is one) and of an OLE2 compound
#: document (an Excel 97-2003 .xls workbook).
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _not_a_workbook(data: bytes, where: str) -> None:
    """Refuse a workbook declared as a CSV, saying what it is and how to declare it."""
    if data.startswith(_ZIP_MAGIC):
        found = (
            "the file is a workbook (an .xlsx file, or another zip archive), not a CSV.",
            'declare format = "xlsx" for this source (and `sheet` for a sheet other than '
            "the first), or point `path` at a CSV export.",
        )
    elif data.startswith(_OLE_MAGIC):
        found = (
            "the file is an Excel 97-2003 workbook (.xls), not a CSV.",
            'save it as .xlsx and declare format = "xlsx", or export the sheet as CSV.',
        )
    else:
        return
    raise SourceError([Problem(where, *found)])


#: What UTF-8 text becomes when decoded as cp1252 or latin-1: the lead byte of a
#: two-byte sequence as "Â" or "Ã" before a continuation byte ("Ã©" for "é", "Ã‰" for
#: "É"), and the punctuation's three bytes begun by "â€" ("â€™" for "’").
_MOJIBAKE = re.compile(
    "[\u00c2\u00c3][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192"
    "\u02c6\u02dc\u2013-\u2026\u2030\u2039\u203a\u20ac\u2122]|\u00e2\u20ac"
)
_SINGLE_BYTE = ("cp1252", "latin-1")


def _checked_text(
    data: bytes, text: str, declared: str, encoding: str, delimiter: str, where: str
) -> tuple[str, list[Problem]]:
    """The decoded text without NUL characters, and warnings for those and for mojibake.

    Each check is one pass of C code over the text; the mojibake pattern runs only when a
    character it begins with is there."""
    found: list[Problem] = []
    nul = text.count("\x00") if "\x00" in text else 0
    if nul:
        first = text.count("\n", 0, text.index("\x00")) + 1
        found.append(
            Problem(
                f"{where} line {first}",
                f"the text holds {nul:,} NUL character(s), the first on this line; "
                "they were removed.",
                "export the file again: a NUL is not text (a file in another encoding, "
                "or a damaged one, shows them).",
            )
        )
        text = text.replace("\x00", "")
    if not text.isascii() and any(c in text for c in ("\u00c2", "\u00c3", "\u00e2\u20ac")):
        hits = sum(1 for _ in _MOJIBAKE.finditer(text))
        match = _MOJIBAKE.search(text)
        if match is not None:
            line = text.count("\n", 0, match.start()) + 1
            sample = _around(text, match.start(), match.end(), delimiter)
            if encoding in _SINGLE_BYTE and _is_utf8(data):
                found.append(
                    Problem(
                        f"{where} line {line}",
                        f"{hits:,} place(s) read as mojibake, e.g. {sample!r}: the file is "
                        f'UTF-8, but encoding = "{declared}" is declared.',
                        'declare encoding = "utf-8" (or "auto").',
                    )
                )
            else:
                found.append(
                    Problem(
                        f"{where} line {line}",
                        f"{hits:,} place(s) look like UTF-8 text that was decoded as cp1252 "
                        f"before the file was written (mojibake), e.g. {sample!r}; they are "
                        "read as written.",
                        "ask the publisher for a clean export, or correct the file.",
                    )
                )
    return text, found


def _around(text: str, start: int, end: int, delimiter: str) -> str:
    """The text of ``text[start:end]``'s field (at most 20 characters either side), for a message."""
    left = max(text.rfind("\n", 0, start), text.rfind(delimiter, 0, start), start - 21) + 1
    ends = [i for i in (text.find("\n", end), text.find(delimiter, end)) if i >= 0]
    return text[left : min([*ends, end + 20])].strip('"')


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _read_csv(
    data: bytes, src: SourceConfig, where: str
) -> tuple[pd.DataFrame, str, Rows, list[Problem]]:
    """The table, the encoding, the rows' file lines and the warnings of a CSV source."""
    _not_a_workbook(data, where)
    text, encoding = decode(data, src.encoding, where)
    text, found = _checked_text(data, text, src.encoding, encoding, src.delimiter, where)
    # Title rows above the header: the table starts at header_row, and lines are named as
    # the file numbers them.
    above = src.header_row - 1
    if above:
        text = _below_title_rows(text, above, where)

    def rows(positions: Sequence[int]) -> str:
        return f"file lines {[above + n for n in _record_lines(text, src.delimiter, positions)]}"

    # The bytes as read when they are the text's UTF-8 as it is (no mark or NUL dropped).
    plain = encoding == "utf-8" and not found and not above
    utf8 = data if plain else text.encode("utf-8")
    frame = _read_csv_arrow(utf8, src.delimiter)
    if frame is not None:
        return frame, encoding, rows, found
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
        ragged = _first_long_record(text, src.delimiter)
        raise SourceError(
            [
                Problem(where, f"the CSV cannot be parsed: {exc}", _PARSE_FIX)
                if ragged is None
                else Problem(
                    f"{where} line {above + ragged[0]}",
                    f"the record starting on file line {above + ragged[0]} has {ragged[1]} fields; "
                    f"the header has {ragged[2]}.",
                    _PARSE_FIX,
                )
            ]
        ) from exc
    # pandas renames a repeated header name ("NAME", "NAME.1"): the names as written, so
    # that the mapping can tell.
    header = _header(text, src.delimiter)
    if header is not None and len(header) == len(frame.columns):
        frame.columns = pd.Index(header)
    return frame, encoding, rows, found


_PARSE_FIX = "check quoting and the `delimiter` setting at the line named."


def _below_title_rows(text: str, above: int, where: str) -> str:
    """The text from file line ``above + 1`` on (the header row), or a :class:`SourceError`
    when the file has no such line."""
    at = 0
    for _ in range(above):
        nl = text.find("\n", at)
        if nl < 0:
            at = -1
            break
        at = nl + 1
    if at < 0 or not text[at:].strip():
        lines = text.count("\n") + (0 if text.endswith("\n") else 1)
        raise SourceError(
            [
                Problem(
                    where,
                    f"header_row = {above + 1}, but the file has {lines} line(s) and none "
                    "below them.",
                    "set header_row to the file line holding the column names (1 for the first).",
                )
            ]
        )
    return text[at:]


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """The CSV's records, each with the file line it starts on, skipping blank lines as
    the readers do; stops at what the csv module cannot read."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    start = 1
    with contextlib.suppress(csv.Error):
        for fields in reader:
            if fields:
                yield start, fields
            start = reader.line_num + 1


def _record_lines(text: str, delimiter: str, positions: Sequence[int]) -> list[int]:
    """The file line each record at ``positions`` (0-based, after the header) starts on.

    Read again, only up to the last record asked for, and only for a message: a quoted
    field may hold line breaks, so a record's position does not give its line."""
    wanted = [int(p) for p in positions]
    found: dict[int, int] = {}
    if len(delimiter) == 1 and wanted:
        records = itertools.islice(_records(text, delimiter), 1, max(wanted) + 2)
        asked = set(wanted)
        found = {i: line for i, (line, _) in enumerate(records) if i in asked}
    # A delimiter of several characters is a pattern pandas reads: one line per record.
    return [found.get(p, p + 2) for p in wanted]


def _header(text: str, delimiter: str) -> list[str] | None:
    if len(delimiter) != 1:
        return None
    first = next(_records(text, delimiter), None)
    return first[1] if first is not None else None


def _first_long_record(text: str, delimiter: str) -> tuple[int, int, int] | None:
    """(file line, fields, the header's fields) of the first record with more fields
    than the header (which pandas refuses), or ``None``."""
    if len(delimiter) != 1:
        return None
    records = _records(text, delimiter)
    header = next(records, None)
    if header is None:
        return None
    width = len(header[1])
    for line, fields in records:
        if len(fields) > width:
            return line, len(fields), width
    return None


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
) -> tuple[pd.DataFrame, Rows]:
    """Read one worksheet with calamine (a fast reader of the xlsx format), every cell as
    text; with how its rows are named (their rows in the sheet: blank rows are skipped).

    ``parsed``: the sheet already parsed from ``data`` (see :mod:`crosswalk.readahead`).
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
    if src.header_row > 1:
        # the header row as the sheet numbers it; the rows above are titles
        header = src.header_row - 1
        if header >= len(rows) or not present[header]:
            raise SourceError(
                [
                    Problem(
                        f"{where} sheet {sheet!r} row {src.header_row}",
                        f"header_row = {src.header_row}, but that row of the sheet is "
                        + ("blank." if header < len(rows) else f"past its end ({len(rows)} rows)."),
                        "set header_row to the sheet row holding the column names.",
                    )
                ]
            )
        kept = kept[kept >= header]
    header, body = int(kept[0]), pa.array(kept[1:], type=pa.int64())
    names = [
        col[header].as_py() if col[header].is_valid else f"column_{i + 1}"
        for i, col in enumerate(columns)
    ]
    frame = pd.DataFrame(
        {i: pd.array(col.take(body), dtype="string") for i, col in enumerate(columns)}
    )
    frame.columns = pd.Index(names)
    sheet_rows = kept[1:] + 1

    def named(positions: Sequence[int]) -> str:
        return f"sheet rows {[int(sheet_rows[p]) for p in positions]}"

    return frame, named


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


def to_canonical(
    raw: pd.DataFrame,
    src: SourceConfig,
    where: str,
    rows: Rows = _positions_only,
    warnings: list[Problem] | None = None,
) -> pd.DataFrame:
    """Map a source's raw table to the canonical batch, checking its columns and record ids.

    ``rows`` names rows in messages (as the file does: see :data:`Rows`). What looks wrong
    but is read is added to ``warnings``, or, without that list, issued as Python
    warnings."""
    problems: list[Problem] = []
    found: list[Problem] = []
    raw.columns = [str(c).strip() for c in raw.columns]
    available = list(dict.fromkeys(raw.columns))

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
    filters = src.row_filters()
    for cond in filters:
        need(cond.column, "filter")
    _repeated_columns(raw.columns, src, where, problems, found)
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

    if filters:
        raw, rows = _filtered(raw, filters, rows, where)
    ids = raw[src.id_column].astype("string").str.strip()
    if src.id_width:
        # ids that lost their leading zeros (a column once held as numbers)
        ids = ids.where(~ids.str.fullmatch(r"[0-9]+").fillna(False), ids.str.zfill(src.id_width))
    blank = (ids.isna() | (ids == "")).to_numpy(dtype=bool)
    if blank.any():
        problems.append(
            Problem(
                f"{where} column {src.id_column!r}",
                f"{int(blank.sum())} record(s) have no id ({rows(np.flatnonzero(blank)[:5].tolist())}).",
                "give every record an id, or choose another id_column.",
            )
        )
    repeated = np.flatnonzero(~blank & ids.duplicated(keep=False).to_numpy(dtype=bool))
    if len(repeated):
        dup = ids.iloc[repeated]
        sample = dup.drop_duplicates().head(5).tolist()
        problems.append(
            Problem(
                f"{where} column {src.id_column!r}",
                f"{dup.nunique()} record id(s) occur more than once, e.g. {sample} "
                f"({rows(repeated[:6].tolist())}).",
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
    found.extend(unknown_type_warnings(out, src, where))
    if warnings is not None:
        warnings.extend(found)
    else:
        for problem in found:
            pywarnings.warn(str(problem), stacklevel=2)
    return out.reset_index(drop=True)


def _filtered(
    raw: pd.DataFrame, filters: Sequence[RowFilter], rows: Rows, where: str
) -> tuple[pd.DataFrame, Rows]:
    """The records that meet every condition, and how they are named (as the file names
    them); a :class:`SourceError` when none does."""
    keep = np.ones(len(raw), dtype=bool)
    for cond in filters:
        value = raw[cond.column].astype("string").str.strip().fillna("")
        hit = value.isin(cond.values).to_numpy(dtype=bool)
        keep &= hit if cond.keep else ~hit
    if not keep.any():
        conds = "; ".join(
            f"{c.column} {'in' if c.keep else 'not in'} {list(c.values)}" for c in filters
        )
        raise SourceError(
            [
                Problem(
                    where,
                    f"the filter keeps none of the {len(raw):,} records ({conds}).",
                    "check the filter's column and values (compared with each cell as written, "
                    "spaces around it removed, case counting).",
                )
            ]
        )
    at = np.flatnonzero(keep)

    def named(positions: Sequence[int]) -> str:
        return rows([int(at[p]) for p in positions])

    return raw.iloc[at].reset_index(drop=True), named


def _repeated_columns(
    names: pd.Index, src: SourceConfig, where: str, problems: list[Problem], found: list[Problem]
) -> None:
    """A header name written twice or more: a problem when the config reads that column
    (which one it means is ambiguous), a warning otherwise (nothing is read from it)."""
    used = {src.id_column, *(c for cs in src.fields.columns().values() for c in cs)}
    used |= {ident.column for ident in src.identifiers}
    for name in names[names.duplicated()].unique():
        at = [i + 1 for i, n in enumerate(names) if n == name]
        counted = f"the header names column {name!r} {len(at)} times (columns {at})"
        if name in used:
            problems.append(
                Problem(
                    f"{where} column {name!r}",
                    f"{counted}, and the config reads it: which one it means is ambiguous.",
                    "rename the columns in the file so that each name is written once.",
                )
            )
        else:
            found.append(
                Problem(
                    f"{where} column {name!r}",
                    f"{counted}; the config does not read it.",
                    "rename the columns in the file so that each name is written once.",
                )
            )


def unknown_type_warnings(frame: pd.DataFrame, src: SourceConfig, where: str) -> list[Problem]:
    """A warning when records of a source have a facility-type wording that neither the
    common vocabulary nor the source's ``facility_types`` map knows: they are read as
    ``other``, which adds no evidence. With the count, and the commonest wordings. A
    wording that says "other" itself, or that the config maps, is no surprise."""
    if "facility_type" not in frame or not frame["facility_type"].notna().any():
        return []
    wording = frame["facility_type"].astype("string")
    mapping = src.rules().facility_types
    said = wording.str.strip().str.upper()
    expected = said.isin([k for k, _ in mapping] + ["OTHER"])  # mapped, or "other" itself
    unknown = ((facility_classes(wording, mapping) == "other") & ~expected).fillna(False)
    n = int(unknown.sum())
    if not n:
        return []
    counts = wording[unknown.to_numpy(dtype=bool)].value_counts()
    shown = ", ".join(f"{w!r} ({c:,})" for w, c in counts.head(5).items())
    more = f" and {len(counts) - 5:,} more" if len(counts) > 5 else ""
    column = src.fields.facility_type
    first = str(counts.index[0]).strip()
    return [
        Problem(
            f"{where} column {column!r}" if column else f"{where} (defaults.facility_type)",
            f"{n:,} of {len(frame):,} record(s) ({n / len(frame):.0%}) have a facility type the "
            f"common vocabulary does not know, in {len(counts):,} wording(s): {shown}{more}. "
            "They are read as 'other', which adds no evidence for or against a link.",
            "map each wording to a class under [source.facility_types] of "
            f'{src.name!r}, e.g. "{first}" = "general_acute_hospital" (the classes are '
            'listed in docs/sources.md, "Facility types").',
        )
    ]


#: The fields a record is compared on besides its name (see ``crosswalk.stages.compare``),
#: each with the columns of the canonical batch that feed it.
_COMPARED_FIELDS = {
    "address": ("address",),
    "city": ("city",),
    "zip": ("zip",),
    "latitude and longitude": ("latitude", "longitude"),
    "phone": ("phone",),
    "facility_type": ("facility_type",),
}


def unshared_field_warnings(
    sources: Sequence[SourceConfig], frames: Sequence[pd.DataFrame]
) -> list[Problem]:
    """A warning for each two sources with no compared field besides the name that both
    carry (a value in at least one record each): a name alone links no records, so every
    record of the two would stay apart. ``frames``: the sources' canonical batches."""
    fed: dict[str, list[str]] = {}
    for src, frame in zip(sources, frames, strict=True):
        fed[src.name] = [
            name
            for name, cols in _COMPARED_FIELDS.items()
            if all(frame[c].notna().any() for c in cols)
        ] + [
            f"identifier {c[len(ID_PREFIX) :]!r}"
            for c in frame.columns
            if c.startswith(ID_PREFIX) and frame[c].notna().any()
        ]
    out = []
    for a, b in itertools.combinations(sources, 2):
        if set(fed[a.name]) & set(fed[b.name]):
            continue

        def feeds(name: str) -> str:
            return f"{name!r} feeds " + (", ".join(fed[name]) if fed[name] else "nothing else")

        out.append(
            Problem(
                f"sources {a.name!r} and {b.name!r}",
                "they share no compared field besides the name "
                f"({feeds(a.name)}; {feeds(b.name)}): a name alone links no records, so "
                "every record of the two will stay apart.",
                "map a field both listings carry (address, city, zip, phone, latitude and "
                "longitude, facility_type) under [source.fields], or an identifier scheme "
                "both declare.",
            )
        )
    return out
