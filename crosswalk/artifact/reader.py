"""The one way to open a published ``crosswalk.sqlite`` for reading.

:func:`connect` opens it read-only through a ``file:`` URI whose path is quoted, so
that a ``#``, ``?`` or ``%`` in a folder name is part of the path (unquoted, SQLite
would read ``dir#1/crosswalk.sqlite`` as the file ``dir`` and create it read-write).
A release never changes once published, so its readers pass ``immutable=True``: SQLite
then takes no locks. A ``--db`` that a build can rewrite in place is read with locking.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from crosswalk.errors import NotFoundError


def uri(path: str | Path, *, immutable: bool = False) -> str:
    """The read-only ``file:`` URI of ``path`` (absolute, quoted)."""
    text = "file:" + quote(str(Path(path).resolve())) + "?mode=ro"
    return text + "&immutable=1" if immutable else text


def connect(path: str | Path, *, immutable: bool = False, **kwargs: Any) -> sqlite3.Connection:
    """A read-only connection to the SQLite file ``path``.

    ``immutable``: the file is a release and never changes (no locks are taken).
    Other keyword arguments go to :func:`sqlite3.connect`. Raises
    :class:`~crosswalk.errors.NotFoundError` when there is no file at ``path``.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(
            f"{path} does not exist. Fix: run `crosswalk build` first, or check the path."
        )
    return sqlite3.connect(uri(path, immutable=immutable), uri=True, **kwargs)


def tables(conn: sqlite3.Connection) -> set[str]:
    """The names of the tables of ``conn``'s database."""
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def kv(conn: sqlite3.Connection, table: str) -> dict[str, Any]:
    """A ``key, value`` table (``meta``, ``id_state``) as a dict, values as stored;
    empty when the database has no such table."""
    if table not in tables(conn):
        return {}
    return {str(k): v for k, v in conn.execute(f"SELECT key, value FROM [{table}]")}


def meta(conn: sqlite3.Connection) -> dict[str, Any]:
    """The ``meta`` table, each value decoded from JSON (kept as text when it is not JSON)."""
    out: dict[str, Any] = {}
    for k, v in kv(conn, "meta").items():
        try:
            out[k] = json.loads(v)
        except (TypeError, ValueError):
            out[k] = v
    return out
