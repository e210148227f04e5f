"""Read-only access to published crosswalks: one release, or a directory of releases.

A :class:`Release` wraps one ``crosswalk.sqlite``. It opens the file read-only
(``file:...?mode=ro``), with one connection per thread (SQLite connections are
not shared across threads), and keeps the small indexes that the hot paths
need in memory: identifier to entities, and ``(source, record_id)`` to entity.
Entity documents are rendered to JSON bytes once and cached, so a lookup by id
costs a dictionary access and no SQL after the first request.

A :class:`Registry` holds the releases the service can answer from: either one
database (``--db``) or every ``releases/<version>/`` of a releases directory
(``--releases``), the latest being the one with the greatest
``manifest.json["sequence"]``. It notices a rebuilt database or a newly
published release within a few seconds, without a restart.
"""

from __future__ import annotations

import csv
import functools
import gc
import hashlib
import json
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crosswalk.artifact import DEFAULT_OUT, schema
from crosswalk.artifact.reader import connect, kv
from crosswalk.errors import CrosswalkError, NotFoundError

#: How often (seconds) the registry checks its files for a new build or release.
RESCAN_SECONDS = 2.0
#: Rendered entity documents (and lookup answers) kept per release.
ENTITY_CACHE_SIZE = 65_536
#: Seconds before loading a matcher that failed is tried again.
MATCHER_RETRY_SECONDS = 60.0
#: Longest accepted text parameter (names, addresses, ids).
MAX_TEXT = 500

_FACILITY_FIELDS = schema.API_ENTITY_FIELDS
_RECORD_FIELDS = schema.API_RECORD_FIELDS


def dumps(obj: Any) -> bytes:
    """Serialize ``obj`` as compact UTF-8 JSON, the encoding of every API body."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _build_hint(db: Path) -> str:
    """How to make the crosswalk ``db`` names: a build writes ``crosswalk.sqlite`` into its
    ``--out``, a directory of its own (never the current one, which holds other files)."""
    out = db.parent
    if db.name != "crosswalk.sqlite" or out in (Path(), Path(out.anchor)):
        return (
            f"run `crosswalk build --config data/sources.toml --out {DEFAULT_OUT}/` and serve "
            f"--db {DEFAULT_OUT}/crosswalk.sqlite, or pass the right --db."
        )
    return (
        f"run `crosswalk build --config data/sources.toml --out {out}/` first, or pass the "
        "right --db."
    )


def _connect(path: Path) -> sqlite3.Connection:
    con = connect(path, check_same_thread=True)
    con.row_factory = sqlite3.Row
    return con


def _load_json(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


@dataclass(frozen=True)
class Retired:
    """An entity id that no longer names an entity, and what became of it."""

    entity_id: str
    change: str
    successor: str | None
    release: str | None
    details: str | None


@dataclass
class Release:
    """One published crosswalk, opened read-only."""

    path: Path
    #: The release's version; empty means "from the database's meta table, else its build id".
    version: str
    manifest: dict[str, Any] = field(default_factory=dict)
    changes_path: Path | None = None

    def __post_init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._matcher: Any = None
        self._matcher_failure: tuple[float, str] | None = None
        con = self.connection()
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        missing = [t.name for t in schema.TABLES if t.name not in tables]
        if missing:
            raise CrosswalkError(
                f"{self.path} is not a published crosswalk: tables {missing} are missing. "
                f"Fix: run `crosswalk build --config data/sources.toml --out {DEFAULT_OUT}/` and serve its "
                "crosswalk.sqlite."
            )
        self.has_retired = "retired_ids" in tables
        self.meta: dict[str, str] = (
            {str(k): str(v) for k, v in con.execute("SELECT key, value FROM meta")}
            if "meta" in tables
            else {}
        )
        self.build_id: str = (
            self.meta.get("build_id")
            or self.manifest.get("build_id")
            or (f"{self.path.stat().st_mtime_ns:x}")
        )
        if not self.version:
            # `crosswalk release` records its version in the id state (which the next build's
            # ids carry on from); a build has none and goes by its build id.
            self.version = str(kv(con, schema.ID_STATE.name).get("release") or self.build_id)
        tag = hashlib.sha256(f"{self.version}\x1f{self.build_id}".encode()).hexdigest()[:20]
        self._etag_prefix = f'"{tag}-'
        self.entity_json = functools.lru_cache(maxsize=ENTITY_CACHE_SIZE)(self._render_entity)
        self.lookup_json = functools.lru_cache(maxsize=ENTITY_CACHE_SIZE)(self._render_lookup)
        self._by_identifier: dict[tuple[str, str], tuple[str, ...]] | None = None
        self._by_record: dict[tuple[str, str], str] | None = None

    # ------------------------------------------------------------------ connections

    def connection(self) -> sqlite3.Connection:
        """This thread's read-only connection to the release's database."""
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            con = _connect(self.path)
            self._local.con = con
        return con

    def query(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[sqlite3.Row]:
        """Run a read query on this thread's connection."""
        return self.connection().execute(sql, params).fetchall()

    # ------------------------------------------------------------------ metadata

    @property
    def built_at(self) -> str | None:
        return self.meta.get("built_at") or self.manifest.get("built_at")

    @property
    def published_at(self) -> str | None:
        value = self.manifest.get("published_at")
        return str(value) if value is not None else None

    @property
    def counts(self) -> dict[str, Any]:
        counts = self.manifest.get("counts")
        if isinstance(counts, dict):
            return counts
        parsed = _load_json(self.meta.get("counts"), {})
        return parsed if isinstance(parsed, dict) else {}

    @property
    def sequence(self) -> int | None:
        value = self.manifest.get("sequence")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def etag(self, key: str) -> str:
        """A strong ETag for the representation of ``key`` in this release."""
        if key.isalnum() and len(key) <= 64:
            return f'{self._etag_prefix}{key}"'
        return (
            f'{self._etag_prefix}{hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()}"'
        )

    def config(self) -> dict[str, Any]:
        cfg = _load_json(self.meta.get("config"), {})
        return cfg if isinstance(cfg, dict) else {}

    def id_columns(self) -> dict[str, str]:
        """Source name to the column its record ids come from, per the build config."""
        out: dict[str, str] = {}
        sources = self.config().get("sources") or self.config().get("source") or []
        if isinstance(sources, list):
            for src in sources:
                if isinstance(src, dict) and src.get("name") and src.get("id_column"):
                    out[str(src["name"])] = str(src["id_column"])
        return out

    def change_counts(self) -> dict[str, int]:
        """Number of entity ids per kind of change, from the release's ``changes.csv``."""
        if self.changes_path is None or not self.changes_path.exists():
            return {}
        counts: Counter[str] = Counter()
        with self.changes_path.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                counts[row.get("change") or "unknown"] += 1
        return dict(sorted(counts.items()))

    def sources(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.query("SELECT * FROM sources ORDER BY name")]

    @functools.cached_property
    def schemes(self) -> list[str]:
        """Identifier schemes present in the release, sorted."""
        return [r[0] for r in self.query("SELECT DISTINCT scheme FROM identifiers ORDER BY scheme")]

    @functools.cached_property
    def source_names(self) -> list[str]:
        return [r[0] for r in self.query("SELECT name FROM sources ORDER BY name")]

    @functools.cached_property
    def facility_classes(self) -> list[tuple[str, int]]:
        """Facility classes with their number of entities, most common first."""
        rows = self.query(
            "SELECT facility_class, COUNT(*) FROM entities WHERE facility_class IS NOT NULL "
            "AND facility_class != '' GROUP BY facility_class ORDER BY COUNT(*) DESC, facility_class"
        )
        return [(str(r[0]), int(r[1])) for r in rows]

    # ------------------------------------------------------------------ indexes

    def _indexes(self) -> tuple[dict[tuple[str, str], tuple[str, ...]], dict[tuple[str, str], str]]:
        by_id, by_record = self._by_identifier, self._by_record
        if by_id is not None and by_record is not None:
            return by_id, by_record
        with self._lock:
            if self._by_identifier is None or self._by_record is None:
                ids: dict[tuple[str, str], list[str]] = {}
                for scheme, value, entity_id in self.query(
                    "SELECT scheme, value, entity_id FROM identifiers ORDER BY entity_id"
                ):
                    bucket = ids.setdefault((str(scheme), str(value)), [])
                    if entity_id not in bucket:
                        bucket.append(str(entity_id))
                self._by_identifier = {k: tuple(v) for k, v in ids.items()}
                self._by_record = {
                    (str(s), str(r)): str(e)
                    for s, r, e in self.query("SELECT source, record_id, entity_id FROM records")
                }
            return self._by_identifier, self._by_record

    def warm(self) -> None:
        """Load the in-memory indexes now rather than on the first request."""
        self._indexes()
        _ = self.schemes, self.source_names, self.facility_classes

    def entities_by_identifier(self, scheme: str, value: str) -> tuple[str, ...]:
        return self._indexes()[0].get((scheme, value), ())

    def entity_by_record(self, source: str, record_id: str) -> str | None:
        return self._indexes()[1].get((source, record_id))

    # ------------------------------------------------------------------ entities

    def _render_entity(self, entity_id: str) -> bytes | None:
        doc = self.entity_document(entity_id)
        return None if doc is None else dumps(doc)

    def result_json(self, query: dict[str, Any], ids: list[str] | tuple[str, ...]) -> bytes:
        """The JSON of one lookup result: the query, and the entities found."""
        docs = [d for d in (self.entity_json(e) for e in ids) if d is not None]
        return b"".join(
            (
                b'{"query":',
                dumps(query),
                b',"found":',
                b"true" if docs else b"false",
                b',"entity_ids":',
                dumps(list(ids)),
                b',"entities":[',
                b",".join(docs),
                b"]}",
            )
        )

    def lookup_etag(self, query: dict[str, Any], ids: list[str] | tuple[str, ...]) -> str:
        """ETag of a lookup answer: the release, the entities found and the query."""
        return self.etag("\x1f".join((*ids, *(f"{k}={v}" for k, v in query.items()))))

    def _render_lookup(self, scheme: str, value: str) -> tuple[bytes, str] | None:
        """A found lookup by identifier, rendered once: (body, ETag); None otherwise."""
        if (
            scheme not in self.schemes
            or not value
            or value != value.strip()
            or len(value) > MAX_TEXT
        ):
            return None
        ids = self.entities_by_identifier(scheme, value)
        if not ids:
            return None
        query = {"scheme": scheme, "value": value}
        return self.result_json(query, ids), self.lookup_etag(query, ids)

    def entity_document(self, entity_id: str) -> dict[str, Any] | None:
        """The entity with every member record, or ``None`` when there is no such entity."""
        rows = self.query("SELECT * FROM entities WHERE entity_id = ?", (entity_id,))
        if not rows:
            return None
        doc = entity_summary(rows[0])
        doc["latitude"] = rows[0]["latitude"]
        doc["longitude"] = rows[0]["longitude"]
        records = []
        identifiers: dict[str, set[str]] = {}
        for r in self.query(
            "SELECT * FROM records WHERE entity_id = ? ORDER BY source, record_id", (entity_id,)
        ):
            rec_ids = _load_json(r["identifiers"], {})
            rec_ids = rec_ids if isinstance(rec_ids, dict) else {}
            for scheme_name, value in rec_ids.items():
                identifiers.setdefault(str(scheme_name), set()).add(str(value))
            other = r["other_names"]
            records.append(
                {
                    "source": r["source"],
                    "record_id": r["record_id"],
                    **{k: r[k] for k in _RECORD_FIELDS},
                    "other_names": [n for n in str(other).split(" | ") if n] if other else [],
                    "identifiers": {str(k): str(v) for k, v in sorted(rec_ids.items())},
                    "method": r["method"],
                    "match_probability": r["match_probability"],
                }
            )
        doc["identifiers"] = {k: sorted(v) for k, v in sorted(identifiers.items())}
        doc["records"] = records
        doc["release"] = self.version
        return doc

    def retired(self, entity_id: str) -> Retired | None:
        """What became of a retired entity id, if the release records it."""
        if not self.has_retired:
            return None
        rows = self.query(
            "SELECT entity_id, change, successor, release, details FROM retired_ids "
            "WHERE entity_id = ?",
            (entity_id,),
        )
        if not rows:
            return None
        r = rows[0]
        return Retired(str(r[0]), str(r[1]), r[2] or None, r[3], r[4])

    # ------------------------------------------------------------------ matching

    def matcher(self) -> Any:
        """The engine's matcher over this release (loaded once, on first use).

        A release the matcher cannot load raises :class:`MatchingUnavailable`;
        the failure is remembered for a minute rather than retried per request.
        """
        if self._matcher is None:
            with self._lock:
                if self._matcher is None:
                    failed = self._matcher_failure
                    if failed is not None and time.monotonic() - failed[0] < MATCHER_RETRY_SECONDS:
                        raise MatchingUnavailable(failed[1])
                    try:
                        from crosswalk.matching import Matcher  # the engine's one implementation

                        self._matcher = Matcher.from_sqlite(self.path)
                        # The matcher's arrays and frames live as long as the release: keep
                        # them out of the garbage collector's full passes, which would
                        # otherwise walk them all and stall a request now and then.
                        gc.collect()
                        gc.freeze()
                    except Exception as exc:
                        message = (
                            f"matching is unavailable for release {self.version!r}: {exc}".strip()
                        )
                        self._matcher_failure = (time.monotonic(), message)
                        raise MatchingUnavailable(message) from exc
        return self._matcher


class MatchingUnavailable(CrosswalkError):
    """The engine's matcher cannot be loaded for a release (e.g. built by an older engine)."""


def entity_summary(row: sqlite3.Row) -> dict[str, Any]:
    """The short form of an entity (search results, reconciliation)."""
    sources = row["sources"]
    return {
        "entity_id": row["entity_id"],
        **{k: row[k] for k in _FACILITY_FIELDS},
        "facility_class": row["facility_class"],
        "member_count": row["member_count"],
        "sources": [s for s in str(sources).split(",") if s] if sources else [],
        "method": row["method"],
    }


# ---------------------------------------------------------------------- registry


def _file_key(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class Registry:
    """The releases a running service answers from, kept fresh on disk changes."""

    def __init__(self, *, db: Path | None = None, releases: Path | None = None) -> None:
        if (db is None) == (releases is None):
            raise CrosswalkError(
                "give exactly one of a crosswalk database or a releases directory."
            )
        self.db = db
        self.releases_dir = releases
        self._lock = threading.Lock()
        self._checked = 0.0
        self._releases: dict[str, Release] = {}
        self._keys: dict[str, tuple[int, int, int] | None] = {}
        self._latest: str = ""
        self._scan(initial=True)

    # -- scanning

    def _scan(self, initial: bool = False) -> None:
        if self.db is not None:
            self._scan_db(self.db, initial)
        else:
            assert self.releases_dir is not None
            self._scan_dir(self.releases_dir, initial)
        self._checked = time.monotonic()

    def _scan_db(self, db: Path, initial: bool) -> None:
        key = _file_key(db)
        if key is None:
            if initial:
                raise CrosswalkError(f"no crosswalk database at {db}. Fix: {_build_hint(db)}")
            return  # being rebuilt: keep serving the open one
        if key == self._keys.get("db"):
            return
        try:
            release = Release(db, "")
        except (sqlite3.Error, CrosswalkError):
            if initial:
                raise
            return
        self._releases = {release.version: release}
        self._keys = {"db": key}
        self._latest = release.version

    def _scan_dir(self, root: Path, initial: bool) -> None:
        if not root.is_dir():
            if initial:
                raise CrosswalkError(
                    f"no releases directory at {root}. Fix: publish one with `crosswalk release`, "
                    "or serve a single build with --db."
                )
            return
        found: dict[str, Release] = {}
        keys: dict[str, tuple[int, int, int] | None] = {}
        for sub in sorted(p for p in root.iterdir() if p.is_dir()):
            if sub.name.startswith("."):
                continue  # leftovers of an interrupted release are never served
            db = sub / "crosswalk.sqlite"
            key = _file_key(db)
            manifest_key = _file_key(sub / "manifest.json")
            if key is None or manifest_key is None:
                continue  # not a complete release
            combined = (key[0], key[1] ^ manifest_key[1], key[2])
            if self._keys.get(sub.name) == combined and sub.name in self._releases:
                found[sub.name] = self._releases[sub.name]
                keys[sub.name] = combined
                continue
            manifest = _load_json((sub / "manifest.json").read_text(encoding="utf-8"), {})
            manifest = manifest if isinstance(manifest, dict) else {}
            version = str(manifest.get("version") or sub.name)
            try:
                found[version] = Release(db, version, manifest, sub / "changes.csv")
            except (sqlite3.Error, CrosswalkError):
                continue  # half-written or foreign: skip it
            keys[sub.name] = combined
        if not found:
            if initial:
                raise CrosswalkError(
                    f"the releases directory {root} holds no release (no <version>/crosswalk.sqlite). "
                    "Fix: publish one with `crosswalk release`, or serve a build with --db."
                )
            return
        self._releases = found
        self._keys = keys
        self._latest = max(found.values(), key=_release_order).version

    def _maybe_rescan(self) -> None:
        if time.monotonic() - self._checked < RESCAN_SECONDS:
            return
        if self._lock.acquire(blocking=False):
            try:
                self._scan()
            finally:
                self._lock.release()

    # -- access

    def get(self, version: str | None = None) -> Release:
        """The release named ``version``, or the latest one."""
        self._maybe_rescan()
        releases = self._releases
        if not version:
            return releases[self._latest]
        release = releases.get(version)
        if release is None:
            raise NotFoundError(f"no release {version!r}; known releases: {sorted(releases)}.")
        return release

    def latest(self) -> Release:
        return self.get(None)

    def __iter__(self) -> Iterator[Release]:
        self._maybe_rescan()
        return iter(sorted(self._releases.values(), key=_release_order, reverse=True))

    def warm(self) -> None:
        """Load the latest release's indexes (and, if available, its matcher)."""
        latest = self.latest()
        latest.warm()


def _release_order(release: Release) -> tuple[int, int, list[tuple[int, str]]]:
    """Sort key: the manifest's ``sequence`` first, then the version name, numbers as numbers."""
    seq = release.sequence
    natural = [
        (int(part), "") if part.isdigit() else (-1, part)
        for part in re.split(r"(\d+)", release.version)
        if part
    ]
    return (0 if seq is None else 1, seq if seq is not None else 0, natural)
