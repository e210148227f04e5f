"""Read-ahead of a build's source files.

A build first loads its modules (pandas, Arrow, SciPy: most of a second), then reads
its sources. :func:`start` reads each source file, and opens and parses each workbook,
on a background thread meanwhile; parsing a workbook does not hold the interpreter
lock, so the two overlap. :func:`take` hands a source what was read ahead if the file
on disk is still the one that was read, and ``None`` otherwise: the source is then read
as usual, and every error is reported where it always is.

This module imports nothing heavy, so that a command can start the read-ahead before it
loads the engine.
"""

from __future__ import annotations

import io
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crosswalk.config import Config

__all__ = ["Ahead", "Sheet", "parse_sheet", "start", "take"]


@dataclass(frozen=True)
class Sheet:
    """One worksheet of a workbook as calamine parses it, or where parsing stopped."""

    names: list[str]  # the workbook's sheet names
    name: str  # the sheet asked for (the first when none was named)
    rows: list[list[Any]] | None  # None: no such sheet, or an error below
    open_error: Exception | None = None  # the bytes are not a readable workbook
    read_error: Exception | None = None  # the sheet cannot be read


def parse_sheet(data: bytes, sheet: str | None) -> Sheet:
    """Parse the sheet named ``sheet`` (the first sheet when ``None``) of an xlsx workbook."""
    from python_calamine import CalamineError, CalamineWorkbook

    try:
        wb = CalamineWorkbook.from_filelike(io.BytesIO(data))
    except (CalamineError, OSError, ValueError) as exc:
        return Sheet([], sheet or "", None, open_error=exc)
    names = [str(n) for n in wb.sheet_names]
    name = sheet if sheet is not None else (names[0] if names else "")
    if name not in names:
        return Sheet(names, name, None)
    try:
        rows = wb.get_sheet_by_name(name).to_python(skip_empty_area=False)
    except CalamineError as exc:
        return Sheet(names, name, None, read_error=exc)
    return Sheet(names, name, rows)


@dataclass(frozen=True)
class Ahead:
    """A source file read ahead: its bytes, and its sheet for a workbook."""

    stamp: tuple[int, int]  # (modification time in ns, size) of the file when read
    data: bytes
    sheet: Sheet | None


_Key = tuple[Path, str, "str | None"]
_pending: dict[_Key, Future[Ahead]] = {}
_lock = threading.Lock()


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_size


def _read(path: Path, fmt: str, sheet: str | None) -> Ahead:
    stamp = _stamp(path)
    data = path.read_bytes()
    parsed = parse_sheet(data, sheet) if fmt == "xlsx" and data.strip() else None
    return Ahead(stamp, data, parsed)


def _fill(future: Future[Ahead], key: _Key) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        future.set_result(_read(*key))
    except BaseException as exc:  # handed over to take(), which falls back to a plain read
        future.set_exception(exc)


def start(config: Config) -> None:
    """Start reading every source of ``config``, one background thread per source."""
    for src in config.sources:
        key: _Key = (src.resolved_path(config.base_dir), src.format, src.sheet)
        future: Future[Ahead] = Future()
        with _lock:
            _pending[key] = future
        # A daemon thread: a build that stops early (a bad config) does not wait for it.
        threading.Thread(
            target=_fill, args=(future, key), name="crosswalk-readahead", daemon=True
        ).start()


def take(path: Path, fmt: str, sheet: str | None) -> Ahead | None:
    """What was read ahead of this source, if the file is unchanged since; else ``None``."""
    with _lock:
        future = _pending.pop((path, fmt, sheet), None)
    if future is None:
        return None
    try:
        ahead = future.result()
        return ahead if _stamp(path) == ahead.stamp else None
    except Exception:
        return None
