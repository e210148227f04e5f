"""Dated, immutable releases of the crosswalk, and differences between them.

A release is a directory ``releases/<version>/`` holding ``crosswalk.sqlite``
(Datasette-ready: full-text search on names, ``metadata.json``),
``crosswalk.csv``, ``crosswalk.parquet``, ``datapackage.json``,
``changes.csv``, ``report.html`` and ``manifest.json``. See
``docs/releases.md``.

Publishing is atomic: the release is written under a hidden directory inside
the releases directory, every file is synced, made read-only, and the
finished directory is renamed into place. A crash at any point leaves the
releases directory as it was (plus a hidden leftover, removed by the next
release). An existing release is never changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sqlite3
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlite_utils

from crosswalk import __version__, formats
from crosswalk.artifact.files import exclusive_lock, force_rmtree, fsync_dir
from crosswalk.artifact.reader import connect, kv, meta
from crosswalk.artifact.schema import CHANGE_COLUMNS, CHANGE_KINDS, MEMBER_COLUMNS, SOURCES
from crosswalk.artifact.writer import copy_sqlite, make_searchable, stamp_version
from crosswalk.errors import NotFoundError, ReleaseError
from crosswalk.formats import BUILD_FILES, RELEASE_FILES
from crosswalk.ids import compare_members, load_state

#: Prefix of the hidden directories a release is written in before it is renamed into place.
PARTIAL_PREFIX = ".partial-"
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class ReleaseInfo:
    """A published release: its directory and manifest."""

    version: str
    path: Path
    sequence: int
    manifest: dict[str, Any]

    @property
    def db(self) -> Path:
        """The release's ``crosswalk.sqlite``."""
        return self.path / "crosswalk.sqlite"

    @property
    def previous(self) -> str | None:
        """Version of the release before this one, if any."""
        value = self.manifest.get("previous")
        return str(value) if value else None


# --------------------------------------------------------------------------- finding releases


def list_releases(releases_dir: Path) -> list[ReleaseInfo]:
    """Every complete release in ``releases_dir``, oldest (lowest sequence) first.

    A directory counts as a release when it holds ``manifest.json`` and
    ``crosswalk.sqlite``; hidden directories (leftovers of interrupted
    releases) never do.
    """
    root = Path(releases_dir)
    if not root.is_dir():
        return []
    found: list[ReleaseInfo] = []
    for sub in root.iterdir():
        if sub.name.startswith(".") or not sub.is_dir():
            continue
        manifest_path = sub / "manifest.json"
        if not manifest_path.is_file() or not (sub / "crosswalk.sqlite").is_file():
            continue
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            sequence = int(manifest["sequence"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ReleaseError(
                f"{manifest_path}: not a readable release manifest ({exc}). "
                "Fix: restore the release from a copy; releases are never edited."
            ) from exc
        found.append(ReleaseInfo(str(manifest.get("version") or sub.name), sub, sequence, manifest))
    return sorted(found, key=lambda r: (r.sequence, r.version))


def latest_release(releases_dir: Path) -> ReleaseInfo | None:
    """The release with the greatest sequence, or ``None`` when there is none."""
    releases = list_releases(releases_dir)
    return releases[-1] if releases else None


def latest_release_db(releases_dir: Path) -> Path | None:
    """``crosswalk.sqlite`` of the latest release (the build carries its ids over), or ``None``."""
    latest = latest_release(releases_dir)
    return latest.db if latest else None


def resolve_release(ref: str | Path, releases_dir: Path | None = None) -> Path:
    """The directory of a release named by version (inside ``releases_dir``) or by path.

    A path may name the release directory or its ``crosswalk.sqlite``.
    """
    path = Path(ref)
    if path.is_file() and path.name == "crosswalk.sqlite":
        return path.parent
    if path.is_dir() and (path / "crosswalk.sqlite").is_file():
        return path
    if releases_dir is not None:
        for info in list_releases(releases_dir):
            if info.version == str(ref):
                return info.path
    where = f" in {releases_dir}" if releases_dir is not None else ""
    known = [r.version for r in list_releases(releases_dir)] if releases_dir is not None else []
    raise NotFoundError(
        f"no release {str(ref)!r}{where}"
        + (f"; known releases: {known}" if known else "")
        + ". Fix: give a version of the releases directory or the path of a release directory."
    )


def next_version(releases_dir: Path, when: datetime) -> str:
    """The default version of a release published at ``when``: ``YYYY-MM-DD``, then ``.2``, ``.3``..."""
    base = when.astimezone(UTC).date().isoformat()
    root = Path(releases_dir)
    taken = {p.name for p in root.iterdir()} if root.is_dir() else set()
    taken |= {r.version for r in list_releases(root)}
    if base not in taken:
        return base
    n = 2
    while f"{base}.{n}" in taken:
        n += 1
    return f"{base}.{n}"


# --------------------------------------------------------------------------- publishing


def publish_release(
    build_dir: Path,
    releases_dir: Path,
    *,
    version: str | None = None,
    now: datetime | None = None,
    on_step: Callable[[str], None] | None = None,
) -> ReleaseInfo:
    """Publish the build in ``build_dir`` as a new release in ``releases_dir``.

    ``on_step`` is called with the name of each finished step (``copied``,
    ``searchable``, ``exports``, ``report``, ``manifest``, ``synced``) before
    the final rename; an exception it raises aborts the release like a crash.
    """
    build_dir = Path(build_dir)
    releases_dir = Path(releases_dir)
    step = on_step or (lambda _name: None)
    for name in BUILD_FILES:
        if not (build_dir / name).is_file():
            raise ReleaseError(
                f"{build_dir / name} does not exist; {build_dir} is not a finished build. "
                "Fix: run `crosswalk build --out DIR` first and release that DIR."
            )
    build_meta = _read_kv(build_dir / "crosswalk.sqlite", "meta")
    build_ids = _read_kv(build_dir / "crosswalk.sqlite", "id_state")
    releases_dir.mkdir(parents=True, exist_ok=True)
    published = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)

    with _lock(releases_dir):
        _remove_leftovers(releases_dir)
        previous = latest_release(releases_dir)
        version = version or next_version(releases_dir, published)
        if not _VERSION_RE.match(version):
            raise ReleaseError(
                f"version {version!r} is not a plain name. Fix: use letters, digits, '.', '-' or "
                "'_', starting with a letter or digit, e.g. 2026-11-25."
            )
        final = releases_dir / version
        if final.exists() or any(r.version == version for r in list_releases(releases_dir)):
            raise ReleaseError(
                f"release {version!r} already exists in {releases_dir}; a release is never changed. "
                "Fix: choose another --version, or omit it to get the next free one."
            )
        _check_lineage(build_dir, build_meta, build_ids, previous, releases_dir)
        sequence = (previous.sequence + 1) if previous else 1
        partial = Path(tempfile.mkdtemp(prefix=PARTIAL_PREFIX, dir=releases_dir))
        try:
            out = partial / version
            out.mkdir()
            _write_release(build_dir, out, version, sequence, previous, published, build_meta, step)
            step("synced")
            os.rename(out, final)
            fsync_dir(releases_dir)
        except BaseException:
            force_rmtree(partial)
            raise
        force_rmtree(partial)
    info = latest_release(releases_dir)
    assert info is not None and info.version == version
    return info


def _write_release(
    build_dir: Path,
    out: Path,
    version: str,
    sequence: int,
    previous: ReleaseInfo | None,
    published: datetime,
    build_meta: dict[str, Any],
    step: Callable[[str], None],
) -> None:
    (sqlite,) = formats.SQLITE.files
    (csv,) = formats.CSV.files
    db_path = out / sqlite
    copy_sqlite(build_dir / sqlite, db_path)
    shutil.copyfile(build_dir / csv, out / csv)
    step("copied")

    db = sqlite_utils.Database(db_path)
    try:
        stamp_version(db, version)
        make_searchable(db)
        changes = _changes_of(db, build_dir)
        sources = pd.read_sql_query(
            f"SELECT {', '.join(SOURCES.column_names)} FROM sources ORDER BY name",
            db.conn,
        )
        db.conn.execute("PRAGMA journal_mode = DELETE")
        db.conn.commit()
        db.conn.execute("VACUUM")
    finally:
        db.close()
    step("searchable")

    formats.write_changes_csv(out, changes)
    formats.write_parquet(db_path, out)
    # The build's data package, versioned, with changes.csv added: its title and sources
    # are the build's.
    build_package = formats.read_datapackage(build_dir)
    package = formats.datapackage(
        str(build_package.get("title") or ""),
        [str(s.get("title") or "") for s in build_package.get("sources") or []],
        published.isoformat(),
        version,
    )
    formats.write_datapackage(out, package)
    formats.write_datasette_metadata(out, formats.datasette_metadata(package, sources, version))
    step("exports")

    counts = (
        dict(build_meta.get("counts") or {}) if isinstance(build_meta.get("counts"), dict) else {}
    )
    counts["changes"] = {k: int((changes["change"] == k).sum()) for k in CHANGE_KINDS}
    manifest: dict[str, Any] = {
        "version": version,
        "sequence": sequence,
        "published_at": published.isoformat(),
        "previous": previous.version if previous else None,
        "build_id": build_meta.get("build_id"),
        "built_at": build_meta.get("built_at"),
        "engine_version": build_meta.get("engine_version") or __version__,
        "sources": [
            {
                "name": r["name"],
                "publisher": r["publisher"],
                "title": r["title"],
                "extracted": r["extracted"],
                "file": Path(str(r["path"] or "")).name,
                "sha256": r["sha256"],
                "rows": int(r["rows"]),
            }
            for r in sources.to_dict("records")
        ],
        "config": build_meta.get("config"),
        "counts": counts,
    }
    formats.write_report(out, db_path, manifest, changes)
    step("report")

    manifest["files"] = {
        name: {"bytes": (out / name).stat().st_size, "sha256": _sha256(out / name)}
        for name in RELEASE_FILES
        if name not in formats.MANIFEST.files
    }
    formats.write_manifest(out, manifest)
    step("manifest")

    for name in RELEASE_FILES:
        path = out / name
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())
        path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    out.chmod(
        stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
    )
    fsync_dir(out)


def _check_lineage(
    build_dir: Path,
    meta: dict[str, Any],
    id_state: dict[str, Any],
    previous: ReleaseInfo | None,
    releases_dir: Path,
) -> None:
    """Refuse a build whose ids were not carried over from the latest release."""
    if previous is None:
        return
    if meta.get("build_id") and meta.get("build_id") == previous.manifest.get("build_id"):
        raise ReleaseError(
            f"the build in {build_dir} is already published as release {previous.version!r}. "
            "Fix: rebuild with --releases to publish changed inputs."
        )
    carried = id_state.get("previous_release")
    if str(carried or "") != previous.version:
        got = f"release {carried!r}" if carried else "no release"
        raise ReleaseError(
            f"the build in {build_dir} carried its ids over from {got}, but the latest release in "
            f"{releases_dir} is {previous.version!r}; publishing it would break id stability. "
            f"Fix: rebuild with `crosswalk build --releases {releases_dir}` and release again."
        )


def _read_kv(db_path: Path, table: str) -> dict[str, Any]:
    """A build's ``meta`` (values decoded from JSON) or another key/value table."""
    conn = connect(db_path)
    try:
        return meta(conn) if table == "meta" else kv(conn, table)
    except sqlite3.DatabaseError as exc:
        raise ReleaseError(f"{db_path}: not a readable crosswalk database ({exc}).") from exc
    finally:
        conn.close()


def _changes_of(db: sqlite_utils.Database, build_dir: Path) -> pd.DataFrame:
    if db["changes"].exists():
        frame = pd.read_sql_query(
            f"SELECT {', '.join(CHANGE_COLUMNS)} FROM changes ORDER BY entity_id, change", db.conn
        )
    elif (build_dir / formats.CHANGES_CSV.files[0]).is_file():
        frame = pd.read_csv(
            build_dir / formats.CHANGES_CSV.files[0], dtype=str, keep_default_na=False
        )
    else:
        frame = pd.DataFrame(columns=list(CHANGE_COLUMNS))
    return frame[list(CHANGE_COLUMNS)].fillna("").astype(str)


# --------------------------------------------------------------------------- diff


def read_members(db_path: Path) -> pd.DataFrame:
    """``entity_id, source, record_id`` of every record of a release (which never changes)."""
    conn = connect(db_path, immutable=True)
    try:
        return pd.read_sql_query(f"SELECT {', '.join(MEMBER_COLUMNS)} FROM records", conn).astype(
            str
        )
    finally:
        conn.close()


def diff_releases(a: Path, b: Path) -> pd.DataFrame:
    """What happened to entity ids between release ``a`` and a later release ``b``.

    Columns ``entity_id, change, details`` as in ``changes.csv``. ``b``'s entities are
    compared with ``a``'s directly, by their members, and classified as a build carried
    over from ``a`` classifies its changes (:func:`crosswalk.ids.compare_members`): ids
    of ``a`` missing from ``b`` are ``merged_into`` the entity of ``b`` holding most of
    their records, or ``retired`` when none is left; ids of ``b`` that ``a`` lists as
    retired are ``revived``; other ids of ``b`` not in ``a`` are ``split_from`` when they
    hold records that were in ``a``, else ``new``; ids in both are ``members_changed``
    when their member sets differ. For consecutive releases this is ``b``'s
    ``changes.csv``.
    """
    previous = load_state(resolve_release(a) / "crosswalk.sqlite")
    assert previous is not None
    changes = compare_members(previous, read_members(resolve_release(b) / "crosswalk.sqlite"))
    return changes[list(CHANGE_COLUMNS)].astype(object)


def summarize(changes: pd.DataFrame) -> dict[str, int]:
    """Number of entity ids per change kind (every kind present, zero or not)."""
    return {k: int((changes["change"] == k).sum()) for k in CHANGE_KINDS}


# --------------------------------------------------------------------------- helpers


def _lock(releases_dir: Path) -> contextlib.AbstractContextManager[None]:
    """An exclusive lock on the releases directory for the duration of a release."""
    busy = ReleaseError(
        f"another release is being published in {releases_dir}. Fix: wait for it and retry."
    )
    return exclusive_lock(releases_dir / ".lock", busy)


def _remove_leftovers(releases_dir: Path) -> None:
    """Remove hidden directories of interrupted releases (the caller holds the lock)."""
    for stale in releases_dir.glob(f"{PARTIAL_PREFIX}*"):
        if stale.is_dir():
            force_rmtree(stale)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
