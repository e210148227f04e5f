"""Helpers of the API tests: a served app, and releases directories as the release step writes them.

Imported by its unique top-level name (pytest puts this directory on the path).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from flask import Flask

from api import make_server

#: The password of the admin reviewer ``root`` of the ``review_store`` fixture.
REVIEW_PASSWORD = "fuzz-admin-password-1"

#: The W3C Reconciliation API 0.2 schemas and examples.
SPEC = Path(__file__).resolve().parents[1] / "spec" / "reconciliation-0.2"


@dataclass
class Served:
    """A running server: its base URL and the database it serves."""

    url: str
    db: Path
    app: Flask

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(self.url + path, timeout=30, allow_redirects=False, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.post(self.url + path, timeout=60, allow_redirects=False, **kwargs)

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """Read the published database directly (what the answers must agree with)."""
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        con.row_factory = sqlite3.Row
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()


def serve_app(app: Flask) -> tuple[str, Any, threading.Thread]:
    """Run ``app`` under waitress on a free loopback port, in a background thread."""
    server = make_server(app, "127.0.0.1", 0, threads=6)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{server.effective_port}", server, thread


def stop_server(server: Any, thread: threading.Thread) -> None:
    """Stop a server started by :func:`serve_app`: its socket, open channels and workers."""
    server.close()
    for channel in list(server._map.values()):  # idle keep-alive connections
        channel.close()
    server.task_dispatcher.shutdown(timeout=5)
    thread.join(timeout=10)


def write_release(
    root: Path, version: str, db: Path, sequence: int, changes: list[tuple[str, str, str]]
) -> Path:
    """A ``releases/<version>/`` as the release step publishes it."""
    target = root / version
    target.mkdir(parents=True)
    shutil.copyfile(db, target / "crosswalk.sqlite")
    manifest = {
        "version": version,
        "sequence": sequence,
        "published_at": f"2026-11-{20 + sequence:02d}T12:00:00Z",
        "counts": {"entities": 0},
    }
    (target / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    lines = ["entity_id,change,details", *(",".join(c) for c in changes)]
    (target / "changes.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


@dataclass
class ReleasesServed(Served):
    latest: str = ""
    older: str = ""
    live_id: str = ""
    merged_id: str = ""
    retired_id: str = ""
