"""Fixtures of the API tests: the real crosswalk of the embedded data, served by waitress on loopback."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# This directory is named like the ``api`` package. When pytest runs as a plain
# ``pytest`` (not ``python -m pytest``), ``tests/`` is on sys.path ahead of the
# repository, and ``tests/api`` would shadow the package as a namespace package.
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if getattr(sys.modules.get("api"), "__file__", "") is None:
    del sys.modules["api"]
from api_support import (  # noqa: E402
    REVIEW_PASSWORD,
    SPEC,
    ReleasesServed,
    Served,
    serve_app,
    stop_server,
    write_release,
)

from api import ApiConfig, create_app  # noqa: E402
from crosswalk.review import ReviewStore, queue_disputes  # noqa: E402
from crosswalk.review.auth import create_reviewer, issue_token  # noqa: E402


@pytest.fixture(scope="session")
def crosswalk_db(built_crosswalk: Path) -> Path:
    """The published crosswalk.sqlite of the embedded data (built once per session)."""
    db = built_crosswalk / "crosswalk.sqlite"
    assert db.exists(), "the build wrote no crosswalk.sqlite"
    return db


@pytest.fixture(scope="session")
def served(crosswalk_db: Path) -> Iterator[Served]:
    """The API over the real build (``--db`` mode), on 127.0.0.1."""
    app = create_app(ApiConfig(db=crosswalk_db))
    app.extensions["crosswalk.registry"].latest().matcher()  # load once, before timing anything
    url, server, thread = serve_app(app)
    yield Served(url, crosswalk_db, app)
    stop_server(server, thread)


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
    stop_server(server, thread)


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


@pytest.fixture(scope="session")
def review_store(crosswalk_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A review store holding the disputes of the real build, and one admin reviewer, root."""
    path = tmp_path_factory.mktemp("review") / "review.sqlite"
    assert queue_disputes(crosswalk_db, path) > 0
    with ReviewStore(path) as store:
        create_reviewer(store, "root", "cdph", REVIEW_PASSWORD, admin=True)
    return path


@pytest.fixture(scope="session")
def bearer(review_store: Path) -> dict[str, str]:
    """An Authorization header with an API token of root."""
    with ReviewStore(review_store) as store:
        root = store.reviewer_by_name("root")
        assert root is not None
        return {"Authorization": f"Bearer {issue_token(store, root)}"}


@pytest.fixture(scope="session")
def served_review(crosswalk_db: Path, review_store: Path) -> Iterator[Served]:
    """The API over the real build with the review endpoints (``review_store``), on 127.0.0.1."""
    app = create_app(ApiConfig(db=crosswalk_db, review_store=review_store))
    url, server, thread = serve_app(app)
    yield Served(url, crosswalk_db, app)
    stop_server(server, thread)
