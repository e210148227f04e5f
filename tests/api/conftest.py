"""Fixtures of the API tests: the real crosswalk of the embedded data, served by waitress on loopback."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import waitress
from flask import Flask

from api import ApiConfig, create_app

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


@pytest.fixture(scope="session")
def crosswalk_db(built_crosswalk: Path) -> Path:
    """The published crosswalk.sqlite of the embedded data (built once per session)."""
    db = built_crosswalk / "crosswalk.sqlite"
    assert db.exists(), "the build wrote no crosswalk.sqlite"
    return db


def serve_app(app: Flask) -> tuple[str, Any, threading.Thread]:
    """Run ``app`` under waitress on a free loopback port, in a background thread."""
    server: Any = waitress.create_server(
        app, host="127.0.0.1", port=0, threads=6, asyncore_use_poll=True, ident="crosswalk"
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{server.effective_port}", server, thread


@pytest.fixture(scope="session")
def served(crosswalk_db: Path) -> Iterator[Served]:
    """The API over the real build (``--db`` mode), on 127.0.0.1."""
    app = create_app(ApiConfig(db=crosswalk_db))
    app.extensions["crosswalk.registry"].latest().matcher()  # load once, before timing anything
    url, server, thread = serve_app(app)
    yield Served(url, crosswalk_db, app)
    server.close()
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


@pytest.fixture(scope="session")
def served_releases(
    crosswalk_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ReleasesServed]:
    """The API over a releases directory of two releases (``--releases`` mode).

    The newer release records two retired ids: one merged into a live entity
    (answers 308) and one retired outright (answers 410). Its version sorts
    *before* the older one by name, so only ``sequence`` can pick it as latest.
    """
    root = tmp_path_factory.mktemp("releases")
    write_release(root, "2026-11-b", crosswalk_db, 1, [("F00001", "new", "")])
    newer = write_release(
        root,
        "2026-11-a",
        crosswalk_db,
        2,
        [("FZZZZ1", "merged_into", "merged"), ("FZZZZ2", "retired", "closed")],
    )
    con = sqlite3.connect(newer / "crosswalk.sqlite")
    live = con.execute("SELECT entity_id FROM entities ORDER BY entity_id LIMIT 1").fetchone()[0]
    con.execute("DROP TABLE IF EXISTS retired_ids")
    con.execute(
        "CREATE TABLE retired_ids (entity_id TEXT PRIMARY KEY, change TEXT, successor TEXT, "
        "release TEXT, details TEXT)"
    )
    con.executemany(
        "INSERT INTO retired_ids VALUES (?, ?, ?, ?, ?)",
        [
            ("FZZZZ1", "merged_into", "FZZZZ0", "2026-11-a", "merged with a neighbour"),
            ("FZZZZ0", "merged_into", live, "2026-11-a", "merged again"),
            ("FZZZZ2", "retired", None, "2026-11-a", "the facility closed"),
        ],
    )
    con.commit()
    con.close()
    app = create_app({"releases": str(root)})
    url, server, thread = serve_app(app)
    yield ReleasesServed(
        url,
        newer / "crosswalk.sqlite",
        app,
        latest="2026-11-a",
        older="2026-11-b",
        live_id=live,
        merged_id="FZZZZ1",
        retired_id="FZZZZ2",
    )
    server.close()
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def spec_validator() -> Any:
    """``validate(schema_name, instance)`` against the W3C Reconciliation 0.2 schemas (Draft 7)."""
    from jsonschema import Draft7Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    resources = []
    for path in sorted((SPEC / "schemas").glob("*.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        uri = str(contents.get("$id", path.name)).rstrip("#")
        resources.append((uri, Resource.from_contents(contents, default_specification=DRAFT7)))
    registry: Registry[Any] = Registry().with_resources(resources)

    def validate(name: str, instance: Any) -> None:
        schema = json.loads((SPEC / "schemas" / f"{name}.json").read_text(encoding="utf-8"))
        validator = Draft7Validator(schema, registry=registry)
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
        assert not errors, f"{name}: " + "; ".join(
            f"{list(e.path)}: {e.message}" for e in errors[:5]
        )

    return validate
