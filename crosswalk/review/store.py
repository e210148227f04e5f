"""The review store: reviewers, disputes and the append-only decision log.

The store is a SQLite database in WAL mode, kept apart from the published
crosswalk so that decisions survive every rebuild. Its tables:

``meta``
    Key/value settings: the schema version. The key that signs session
    cookies is not kept here (see :mod:`crosswalk.review.keys`).
``reviewers`` and ``tokens``
    Accounts (department, role, password hash, when disabled) and API tokens,
    stored only as SHA-256 hashes.
``sessions``
    Signed-in browser sessions, by the SHA-256 of the random id their cookie
    carries, with their expiry and when they were ended (sign-out, a disabled
    account, a new password, a new signing key).
``disputes``
    What the last builds raised for review, keyed by the unordered record
    pair, with a snapshot of both records, each field's contribution and the
    rest of the cluster, the priority (expected value) and the group (the two
    entities the pair lies between). Snapshots are refreshed by each build.
``events``
    The audit log. A decision records who, their department, when (UTC), the
    verdict and a comment; an undo is a new event naming the decision it
    undoes. Triggers refuse every UPDATE and DELETE on this table.
``event_pairs``
    The pairs each event covers: one, or every dispute of a group for a grouped
    decision (and its undo). Append-only like ``events``.
``login_attempts``
    Logins, kept to rate-limit password guessing.

The store file and its ``-wal`` and ``-shm`` files are created readable by
their owner only (0600).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crosswalk.errors import ReviewError

SCHEMA_VERSION = "3"
#: Versions an existing store may have that :meth:`ReviewStore._migrate` upgrades.
_UPGRADABLE = ("1", "2")

#: Verdicts a reviewer can give on a pair.
VERDICTS = ("same", "different", "unsure")
#: Account roles: a reviewer is scoped to a department; an admin sees everything.
ROLES = ("reviewer", "admin")

RecordKey = tuple[str, str]
Pair = tuple[RecordKey, RecordKey]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS reviewers (
    reviewer_id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE COLLATE NOCASE,
    department TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('reviewer', 'admin')),
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    disabled_at TEXT
);
CREATE TABLE IF NOT EXISTS tokens (
    token_id INTEGER PRIMARY KEY,
    reviewer_id INTEGER NOT NULL REFERENCES reviewers(reviewer_id),
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS disputes (
    dispute_id INTEGER PRIMARY KEY,
    pair_key TEXT NOT NULL UNIQUE,
    source_l TEXT NOT NULL,
    record_id_l TEXT NOT NULL,
    source_r TEXT NOT NULL,
    record_id_r TEXT NOT NULL,
    reasons TEXT NOT NULL,
    priority REAL NOT NULL,
    match_probability REAL,
    facility_type_l TEXT,
    facility_type_r TEXT,
    left_record TEXT NOT NULL,
    right_record TEXT NOT NULL,
    explanation TEXT NOT NULL,
    cluster TEXT NOT NULL,
    build_id TEXT,
    first_raised_at TEXT NOT NULL,
    last_raised_at TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    reopened_after INTEGER NOT NULL DEFAULT 0,
    group_key TEXT
);
CREATE INDEX IF NOT EXISTS disputes_group ON disputes(group_key);
CREATE INDEX IF NOT EXISTS disputes_source_l ON disputes(source_l);
CREATE INDEX IF NOT EXISTS disputes_source_r ON disputes(source_r);
CREATE TABLE IF NOT EXISTS events (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('decision', 'undo')),
    pair_key TEXT NOT NULL,
    source_l TEXT NOT NULL,
    record_id_l TEXT NOT NULL,
    source_r TEXT NOT NULL,
    record_id_r TEXT NOT NULL,
    dispute_id INTEGER REFERENCES disputes(dispute_id),
    reviewer_id INTEGER REFERENCES reviewers(reviewer_id),
    username TEXT NOT NULL,
    department TEXT NOT NULL,
    created_at TEXT NOT NULL,
    verdict TEXT CHECK (verdict IN ('same', 'different', 'unsure')),
    comment TEXT NOT NULL DEFAULT '',
    undoes INTEGER UNIQUE REFERENCES events(event_id),
    CHECK ((kind = 'decision' AND verdict IS NOT NULL AND undoes IS NULL)
        OR (kind = 'undo' AND verdict IS NULL AND undoes IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS events_pair ON events(pair_key);
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'the review audit log is append-only: events cannot be updated');
END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'the review audit log is append-only: events cannot be deleted');
END;
CREATE TRIGGER IF NOT EXISTS events_undo_target BEFORE INSERT ON events
WHEN NEW.kind = 'undo'
BEGIN
    SELECT RAISE(ABORT, 'an undo must name a decision of the same pair')
    WHERE NOT EXISTS (
        SELECT 1 FROM events d
        WHERE d.event_id = NEW.undoes AND d.kind = 'decision' AND d.pair_key = NEW.pair_key
    );
END;
CREATE TABLE IF NOT EXISTS event_pairs (
    event_id INTEGER NOT NULL REFERENCES events(event_id),
    pair_key TEXT NOT NULL,
    source_l TEXT NOT NULL,
    record_id_l TEXT NOT NULL,
    source_r TEXT NOT NULL,
    record_id_r TEXT NOT NULL,
    dispute_id INTEGER REFERENCES disputes(dispute_id),
    PRIMARY KEY (event_id, pair_key)
);
CREATE INDEX IF NOT EXISTS event_pairs_pair ON event_pairs(pair_key);
CREATE TRIGGER IF NOT EXISTS event_pairs_no_update BEFORE UPDATE ON event_pairs
BEGIN
    SELECT RAISE(ABORT, 'the review audit log is append-only: events cannot be updated');
END;
CREATE TRIGGER IF NOT EXISTS event_pairs_no_delete BEFORE DELETE ON event_pairs
BEGIN
    SELECT RAISE(ABORT, 'the review audit log is append-only: events cannot be deleted');
END;
CREATE TABLE IF NOT EXISTS login_attempts (
    attempt_id INTEGER PRIMARY KEY,
    username TEXT NOT NULL,
    ip TEXT NOT NULL,
    at REAL NOT NULL,
    success INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS login_attempts_key ON login_attempts(username, ip, at);
CREATE INDEX IF NOT EXISTS login_attempts_ip ON login_attempts(ip, at);
CREATE TABLE IF NOT EXISTS sessions (
    session_id INTEGER PRIMARY KEY,
    session_hash TEXT NOT NULL UNIQUE,
    reviewer_id INTEGER NOT NULL REFERENCES reviewers(reviewer_id),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX IF NOT EXISTS sessions_reviewer ON sessions(reviewer_id);
"""


#: Gives every event written before ``event_pairs`` existed the one pair it named.
_BACKFILL_EVENT_PAIRS = """
INSERT INTO event_pairs (event_id, pair_key, source_l, record_id_l, source_r, record_id_r,
                         dispute_id)
SELECT e.event_id, e.pair_key, e.source_l, e.record_id_l, e.source_r, e.record_id_r,
       e.dispute_id
FROM events e WHERE NOT EXISTS (SELECT 1 FROM event_pairs p WHERE p.event_id = e.event_id);
"""


def utcnow(at: float | None = None) -> str:
    """The current time (or the POSIX time ``at``) as a UTC ISO 8601 string with microseconds."""
    when = datetime.now(UTC) if at is None else datetime.fromtimestamp(at, UTC)
    return when.isoformat(timespec="microseconds").replace("+00:00", "Z")


def canonical_pair(a: RecordKey, b: RecordKey) -> Pair:
    """The pair ``(a, b)`` in a fixed order, so that (a, b) and (b, a) are one pair."""
    a = (str(a[0]), str(a[1]))
    b = (str(b[0]), str(b[1]))
    return (a, b) if a <= b else (b, a)


def pair_key(a: RecordKey, b: RecordKey) -> str:
    """A text key for the unordered pair of records ``a`` and ``b``."""
    left, right = canonical_pair(a, b)
    return json.dumps([list(left), list(right)], ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class Reviewer:
    """An account of the review store."""

    reviewer_id: int
    username: str
    department: str
    role: str
    created_at: str
    disabled_at: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def may_see(self, source_l: str, source_r: str) -> bool:
        """Whether this reviewer may see and decide a dispute between these sources."""
        return self.is_admin or self.department in (source_l, source_r)


@dataclass(frozen=True)
class Token:
    """An API token as listed: its id and owner, never its hash."""

    token_id: int
    username: str
    created_at: str
    revoked_at: str | None


@dataclass(frozen=True)
class Event:
    """One entry of the audit log: a decision or the undo of one."""

    event_id: int
    kind: str
    pair: Pair
    dispute_id: int | None
    username: str
    department: str
    created_at: str
    verdict: str | None
    comment: str
    undoes: int | None
    undone_by: int | None = None
    #: Every pair the event covers (a grouped decision covers several), ``pair`` first.
    pairs: tuple[Pair, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "kind": self.kind,
            "dispute_id": self.dispute_id,
            "left": {"source": self.pair[0][0], "record_id": self.pair[0][1]},
            "right": {"source": self.pair[1][0], "record_id": self.pair[1][1]},
            "username": self.username,
            "department": self.department,
            "created_at": self.created_at,
            "verdict": self.verdict,
            "comment": self.comment,
            "undoes": self.undoes,
            "undone_by": self.undone_by,
            "pairs": [
                {
                    "left": {"source": p[0][0], "record_id": p[0][1]},
                    "right": {"source": p[1][0], "record_id": p[1][1]},
                }
                for p in (self.pairs or (self.pair,))
            ],
        }


def _create_private(path: Path) -> None:
    """Create ``path`` as an empty file readable by its owner only (SQLite gives the
    ``-wal`` and ``-shm`` files it creates later the same mode)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass  # created meanwhile by another process
    except OSError as exc:
        raise ReviewError(f"{path}: cannot create the review store ({exc}).") from exc


def _event(row: sqlite3.Row, pairs: Sequence[Pair] = ()) -> Event:
    keys = row.keys()
    pair: Pair = ((row["source_l"], row["record_id_l"]), (row["source_r"], row["record_id_r"]))
    return Event(
        event_id=row["event_id"],
        kind=row["kind"],
        pair=pair,
        dispute_id=row["dispute_id"],
        username=row["username"],
        department=row["department"],
        created_at=row["created_at"],
        verdict=row["verdict"],
        comment=row["comment"],
        undoes=row["undoes"],
        undone_by=row["undone_by"] if "undone_by" in keys else None,
        pairs=tuple(pairs) or (pair,),
    )


def _reviewer(row: sqlite3.Row) -> Reviewer:
    return Reviewer(
        reviewer_id=row["reviewer_id"],
        username=row["username"],
        department=row["department"],
        role=row["role"],
        created_at=row["created_at"],
        disabled_at=row["disabled_at"],
    )


#: Events with the id of the undo that cancelled them, if any.
_EVENTS_SQL = """
SELECT e.*, u.event_id AS undone_by
FROM events e LEFT JOIN events u ON u.undoes = e.event_id
"""

#: Each event once per pair it covers, with that pair's columns.
_EVENT_PAIRS_SQL = """
SELECT e.event_id, e.kind, p.pair_key, p.source_l, p.record_id_l, p.source_r, p.record_id_r,
       COALESCE(p.dispute_id, e.dispute_id) AS dispute_id, e.reviewer_id, e.username,
       e.department, e.created_at, e.verdict, e.comment, e.undoes
FROM event_pairs p JOIN events e ON e.event_id = p.event_id
"""

#: Decisions still in force, one row per pair: the latest decision covering the pair
#: that was not undone.
STANDING_SQL = f"""
SELECT e.* FROM ({_EVENT_PAIRS_SQL}) e
WHERE e.kind = 'decision'
  AND NOT EXISTS (SELECT 1 FROM events u WHERE u.undoes = e.event_id)
  AND e.event_id = (
      SELECT MAX(d.event_id) FROM event_pairs dp JOIN events d ON d.event_id = dp.event_id
      WHERE dp.pair_key = e.pair_key AND d.kind = 'decision'
        AND NOT EXISTS (SELECT 1 FROM events u2 WHERE u2.undoes = d.event_id)
  )
"""


class ReviewStore:
    """A connection to the review store at ``path``, created on first use.

    Open one per thread (or per request): SQLite connections are not shared
    between threads. Use as a context manager to close it.
    """

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if not self.path.exists():
            if not create:
                raise ReviewError(
                    f"{self.path}: the review store does not exist. "
                    "Fix: create it with 'crosswalk reviewers add', or check the path."
                )
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _create_private(self.path)
        try:
            self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
        except sqlite3.Error as exc:
            raise ReviewError(f"{self.path}: cannot open the review store ({exc}).") from exc
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA busy_timeout = 10000")
        self.conn.execute("PRAGMA foreign_keys = ON")
        mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise ReviewError(f"{self.path}: the review store could not be put in WAL mode.")
        self._migrate()

    # ------------------------------------------------------------------ plumbing

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> ReviewStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, taken immediately so that writers queue up."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    def _version(self) -> str | None:
        try:
            row = self.conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
        except sqlite3.OperationalError:
            return None
        return None if row is None else str(row[0])

    def _migrate(self) -> None:
        """Create the schema, or upgrade an older store in place.

        Version 1 kept the session-signing key in ``meta.secret_key``, where
        anyone who could read the file could sign a session. Upgrading adds the
        ``sessions`` table and deletes that key, in one transaction; the key is
        not carried over (anyone who read the store may know it), and sessions
        signed with it end, as every session without a ``sessions`` row does.

        Version 2 kept one pair per event. Upgrading adds ``event_pairs`` (the
        pairs each event covers, so that one decision can cover a group of
        disputes) with one row for each existing event, its own pair, and the
        disputes' ``group_key``; every decision keeps its pair, verdict and order.
        """
        version = self._version()
        if version == SCHEMA_VERSION:
            return
        if version is not None and version not in _UPGRADABLE:
            raise ReviewError(
                f"{self.path}: review store schema version {version} is not supported "
                f"(expected {SCHEMA_VERSION}). Fix: use the crosswalk version that wrote it."
            )
        # executescript commits any open transaction itself, so the script
        # carries its own BEGIN/COMMIT; every statement is idempotent.
        upgrading = version is not None
        if upgrading:  # the deleted key's bytes are overwritten, not left in free pages
            self.conn.execute("PRAGMA secure_delete = ON")
        columns = {r[1] for r in self.conn.execute("PRAGMA table_info(disputes)").fetchall()}
        add_group = "ALTER TABLE disputes ADD COLUMN group_key TEXT;" if columns else ""
        if "group_key" in columns:
            add_group = ""
        self.conn.executescript(
            "BEGIN IMMEDIATE;"
            + add_group
            + _SCHEMA
            + _BACKFILL_EVENT_PAIRS
            + "DELETE FROM meta WHERE key = 'secret_key';"
            + "INSERT INTO meta (key, value) VALUES ('schema_version', "
            + f"'{SCHEMA_VERSION}') ON CONFLICT (key) DO UPDATE SET value = excluded.value;"
            + "COMMIT;"
        )
        if upgrading:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.conn.execute("PRAGMA secure_delete = OFF")

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # ------------------------------------------------------------------ reviewers

    def add_reviewer(
        self, username: str, department: str, password_hash: str, *, role: str = "reviewer"
    ) -> Reviewer:
        """Create an account. The password must already be hashed."""
        username = username.strip()
        department = department.strip()
        if not username or any(c.isspace() for c in username):
            raise ReviewError(
                f"invalid username {username!r}: use a non-empty name without spaces."
            )
        if not department:
            raise ReviewError("a reviewer needs a department (the source name, e.g. cdph).")
        if role not in ROLES:
            raise ReviewError(f"invalid role {role!r}: use one of {', '.join(ROLES)}.")
        try:
            with self.transaction() as conn:
                conn.execute(
                    "INSERT INTO reviewers (username, department, role, password_hash, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (username, department, role, password_hash, utcnow()),
                )
        except sqlite3.IntegrityError as exc:
            raise ReviewError(
                f"a reviewer named {username!r} already exists. Fix: choose another username."
            ) from exc
        reviewer = self.reviewer_by_name(username)
        assert reviewer is not None
        return reviewer

    def reviewer_by_name(self, username: str) -> Reviewer | None:
        row = self.conn.execute(
            "SELECT * FROM reviewers WHERE username = ?", (username.strip(),)
        ).fetchone()
        return None if row is None else _reviewer(row)

    def reviewer_by_id(self, reviewer_id: int) -> Reviewer | None:
        row = self.conn.execute(
            "SELECT * FROM reviewers WHERE reviewer_id = ?", (reviewer_id,)
        ).fetchone()
        return None if row is None else _reviewer(row)

    def password_hash(self, username: str) -> str | None:
        row = self.conn.execute(
            "SELECT password_hash FROM reviewers WHERE username = ? AND disabled_at IS NULL",
            (username.strip(),),
        ).fetchone()
        return None if row is None else str(row[0])

    def reviewers(self) -> list[tuple[Reviewer, int]]:
        """Every account with its number of live tokens."""
        rows = self.conn.execute(
            "SELECT r.*, (SELECT COUNT(*) FROM tokens t WHERE t.reviewer_id = r.reviewer_id "
            "AND t.revoked_at IS NULL) AS tokens FROM reviewers r ORDER BY r.department, r.username"
        ).fetchall()
        return [(_reviewer(r), int(r["tokens"])) for r in rows]

    def add_token(self, reviewer_id: int, token_hash: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO tokens (reviewer_id, token_hash, created_at) VALUES (?, ?, ?)",
                (reviewer_id, token_hash, utcnow()),
            )

    def set_disabled(self, username: str, disabled: bool) -> Reviewer:
        """Disable an account (its sessions end, its tokens stop working) or enable it
        again (its tokens not revoked work again; ended sessions stay ended)."""
        reviewer = self._existing(username)
        with self.transaction() as conn:
            now = utcnow()
            conn.execute(
                "UPDATE reviewers SET disabled_at = ? WHERE reviewer_id = ?",
                (now if disabled else None, reviewer.reviewer_id),
            )
            if disabled:
                self._end_sessions(conn, now, reviewer.reviewer_id)
        changed = self.reviewer_by_id(reviewer.reviewer_id)
        assert changed is not None
        return changed

    def set_password_hash(self, username: str, password_hash: str) -> int:
        """Replace an account's password hash and end its sessions; return how many ended."""
        reviewer = self._existing(username)
        with self.transaction() as conn:
            conn.execute(
                "UPDATE reviewers SET password_hash = ? WHERE reviewer_id = ?",
                (password_hash, reviewer.reviewer_id),
            )
            return self._end_sessions(conn, utcnow(), reviewer.reviewer_id)

    def _existing(self, username: str) -> Reviewer:
        reviewer = self.reviewer_by_name(username)
        if reviewer is None:
            raise ReviewError(
                f"no reviewer named {username!r} in {self.path}. "
                "Fix: check 'crosswalk reviewers list', or create it with 'crosswalk reviewers add'."
            )
        return reviewer

    def tokens(self, username: str | None = None) -> list[Token]:
        """API tokens (of ``username`` if given), oldest first, without their hashes."""
        sql = (
            "SELECT t.token_id, r.username, t.created_at, t.revoked_at FROM tokens t "
            "JOIN reviewers r ON r.reviewer_id = t.reviewer_id"
        )
        params: tuple[Any, ...] = ()
        if username is not None:
            sql += " WHERE r.reviewer_id = ?"
            params = (self._existing(username).reviewer_id,)
        rows = self.conn.execute(sql + " ORDER BY t.token_id", params).fetchall()
        return [Token(*r) for r in rows]

    def revoke_token(self, token_id: int) -> Token:
        """Revoke API token ``token_id`` (revoking it again changes nothing)."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL",
                (utcnow(), token_id),
            )
        found = [t for t in self.tokens() if t.token_id == token_id]
        if not found:
            raise ReviewError(
                f"there is no token {token_id} in {self.path}. "
                "Fix: list the token ids with 'crosswalk reviewers tokens'."
            )
        return found[0]

    def reviewer_by_token_hash(self, token_hash: str) -> Reviewer | None:
        row = self.conn.execute(
            "SELECT r.* FROM tokens t JOIN reviewers r ON r.reviewer_id = t.reviewer_id "
            "WHERE t.token_hash = ? AND t.revoked_at IS NULL AND r.disabled_at IS NULL",
            (token_hash,),
        ).fetchone()
        return None if row is None else _reviewer(row)

    # ------------------------------------------------------------------ sessions

    def add_session(self, reviewer_id: int, session_hash: str, expires_at: float) -> None:
        """Record a signed-in session by the hash of its id, live until ``expires_at``
        (sessions that expired a day ago or more are deleted meanwhile)."""
        with self.transaction() as conn:
            conn.execute(
                "DELETE FROM sessions WHERE expires_at < ?", (utcnow(time.time() - 86400),)
            )
            conn.execute(
                "INSERT INTO sessions (session_hash, reviewer_id, created_at, expires_at) "
                "VALUES (?, ?, ?, ?)",
                (session_hash, reviewer_id, utcnow(), utcnow(expires_at)),
            )

    def reviewer_by_session_hash(self, session_hash: str) -> Reviewer | None:
        """The enabled reviewer of a live session (not ended, not expired), if any."""
        row = self.conn.execute(
            "SELECT r.* FROM sessions s JOIN reviewers r ON r.reviewer_id = s.reviewer_id "
            "WHERE s.session_hash = ? AND s.revoked_at IS NULL AND s.expires_at > ? "
            "AND r.disabled_at IS NULL",
            (session_hash, utcnow()),
        ).fetchone()
        return None if row is None else _reviewer(row)

    def end_session(self, session_hash: str) -> None:
        """End one session (sign-out)."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE sessions SET revoked_at = ? WHERE session_hash = ? AND revoked_at IS NULL",
                (utcnow(), session_hash),
            )

    def end_sessions(self, reviewer_id: int | None = None) -> int:
        """End every live session (of ``reviewer_id`` if given); return how many ended."""
        with self.transaction() as conn:
            return self._end_sessions(conn, utcnow(), reviewer_id)

    @staticmethod
    def _end_sessions(conn: sqlite3.Connection, now: str, reviewer_id: int | None) -> int:
        sql = "UPDATE sessions SET revoked_at = ? WHERE revoked_at IS NULL AND expires_at > ?"
        params: tuple[Any, ...] = (now, now)
        if reviewer_id is not None:
            sql += " AND reviewer_id = ?"
            params += (reviewer_id,)
        return conn.execute(sql, params).rowcount

    # ------------------------------------------------------------------ logins

    def record_login(self, username: str, ip: str, at: float, success: bool) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO login_attempts (username, ip, at, success) VALUES (?, ?, ?, ?)",
                (username.strip().lower(), ip, at, int(success)),
            )

    def failures_for_username(self, username: str, since: float) -> list[float]:
        """Times of failed logins for ``username``, from any address, after ``since`` and
        after its last successful one, oldest first."""
        name = username.strip().lower()
        rows = self.conn.execute(
            "SELECT at FROM login_attempts WHERE username = ? AND at > ? AND success = 0 "
            "AND at > COALESCE((SELECT MAX(at) FROM login_attempts WHERE username = ? "
            "AND success = 1), 0) ORDER BY at",
            (name, since, name),
        ).fetchall()
        return [float(r[0]) for r in rows]

    def failures_from_address(self, ip: str, since: float) -> list[float]:
        """Times of failed logins from ``ip``, for any username, after ``since``, oldest first.

        A success from the address does not reset the count: an account of one's
        own must not buy more guesses at the others'."""
        rows = self.conn.execute(
            "SELECT at FROM login_attempts WHERE ip = ? AND at > ? AND success = 0 ORDER BY at",
            (ip, since),
        ).fetchall()
        return [float(r[0]) for r in rows]

    # ------------------------------------------------------------------ events

    def events(self, pair: Pair | None = None) -> list[Event]:
        """The audit log, oldest first; only the events covering ``pair`` if given."""
        if pair is None:
            rows = self.conn.execute(_EVENTS_SQL + " ORDER BY e.event_id").fetchall()
        else:
            rows = self.conn.execute(
                _EVENTS_SQL + " WHERE e.event_id IN "
                "(SELECT event_id FROM event_pairs WHERE pair_key = ?) ORDER BY e.event_id",
                (pair_key(*pair),),
            ).fetchall()
        pairs = self._pairs_of([int(r["event_id"]) for r in rows])
        return [_event(r, pairs.get(int(r["event_id"]), ())) for r in rows]

    def event(self, event_id: int) -> Event | None:
        row = self.conn.execute(_EVENTS_SQL + " WHERE e.event_id = ?", (event_id,)).fetchone()
        return None if row is None else _event(row, self._pairs_of([event_id]).get(event_id, ()))

    def _pairs_of(self, event_ids: list[int]) -> dict[int, list[Pair]]:
        """The pairs each event covers, the event's own pair first."""
        out: dict[int, list[Pair]] = {}
        for start in range(0, len(event_ids), 500):
            part = event_ids[start : start + 500]
            rows = self.conn.execute(
                "SELECT p.event_id, p.source_l, p.record_id_l, p.source_r, p.record_id_r "
                "FROM event_pairs p JOIN events e ON e.event_id = p.event_id "
                f"WHERE p.event_id IN ({','.join('?' * len(part))}) "
                "ORDER BY p.event_id, p.pair_key != e.pair_key, p.pair_key",
                part,
            ).fetchall()
            for r in rows:
                out.setdefault(int(r[0]), []).append(((r[1], r[2]), (r[3], r[4])))
        return out

    def standing_decisions(self) -> list[Event]:
        """The decision in force for each pair: its latest decision not undone."""
        rows = self.conn.execute(STANDING_SQL + " ORDER BY e.event_id").fetchall()
        return [_event(r) for r in rows]

    def standing_decision(self, pair: Pair) -> Event | None:
        row = self.conn.execute(STANDING_SQL + " AND e.pair_key = ?", (pair_key(*pair),)).fetchone()
        return None if row is None else _event(row)

    def decide(
        self,
        reviewer: Reviewer,
        pair: Pair,
        verdict: str,
        comment: str = "",
        *,
        dispute_id: int | None = None,
    ) -> Event:
        """Append a decision on ``pair`` by ``reviewer``."""
        return self.decide_pairs(reviewer, [(pair, dispute_id)], verdict, comment)

    def decide_pairs(
        self,
        reviewer: Reviewer,
        pairs: Sequence[tuple[Pair, int | None]],
        verdict: str,
        comment: str = "",
    ) -> Event:
        """Append one decision by ``reviewer`` covering every pair of ``pairs`` (each with
        its dispute id, or None): the verdict binds each pair, and one undo undoes them all."""
        if verdict not in VERDICTS:
            raise ReviewError(f"invalid verdict {verdict!r}: use one of {', '.join(VERDICTS)}.")
        if not pairs:
            raise ReviewError("a decision needs at least one pair of records.")
        covered: dict[str, tuple[Pair, int | None]] = {}
        for pair, dispute_id in pairs:
            left, right = canonical_pair(*pair)
            if not reviewer.may_see(left[0], right[0]):
                raise ReviewError(
                    f"{reviewer.username} ({reviewer.department}) may not decide a pair of "
                    f"{left[0]} and {right[0]}."
                )
            covered.setdefault(pair_key(left, right), ((left, right), dispute_id))
        with self.transaction() as conn:
            event_id = self._append(conn, "decision", reviewer, covered, verdict, comment, None)
        event = self.event(event_id)
        assert event is not None
        return event

    @staticmethod
    def _append(
        conn: sqlite3.Connection,
        kind: str,
        reviewer: Reviewer,
        covered: dict[str, tuple[Pair, int | None]],
        verdict: str | None,
        comment: str,
        undoes: int | None,
    ) -> int:
        """Insert one event covering the ``covered`` pairs (by key; the first is the
        event's own pair) and its ``event_pairs`` rows; return its id."""
        first_key, ((first_l, first_r), first_dispute) = next(iter(covered.items()))
        cur = conn.execute(
            "INSERT INTO events (kind, pair_key, source_l, record_id_l, source_r, record_id_r, "
            "dispute_id, reviewer_id, username, department, created_at, verdict, comment, "
            "undoes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                kind, first_key, *first_l, *first_r, first_dispute, reviewer.reviewer_id,
                reviewer.username, reviewer.department, utcnow(), verdict, comment, undoes,
            ),
        )  # fmt: skip
        event_id = int(cur.lastrowid or 0)
        conn.executemany(
            "INSERT INTO event_pairs (event_id, pair_key, source_l, record_id_l, source_r, "
            "record_id_r, dispute_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(event_id, k, *lp, *rp, d) for k, ((lp, rp), d) in covered.items()],
        )
        return event_id

    def undo(self, reviewer: Reviewer, event_id: int, comment: str = "") -> Event:
        """Append an undo of decision ``event_id`` by ``reviewer``: one event that undoes
        the decision on every pair it covers."""
        target = self.event(event_id)
        if target is None or target.kind != "decision":
            raise ReviewError(f"there is no decision {event_id} to undo.")
        if target.undone_by is not None:
            raise ReviewError(f"decision {event_id} was already undone (event {target.undone_by}).")
        for left, right in target.pairs:
            if not reviewer.may_see(left[0], right[0]):
                raise ReviewError(
                    f"{reviewer.username} ({reviewer.department}) may not undo a decision on "
                    f"{left[0]} and {right[0]}."
                )
        dispute_of = dict(
            self.conn.execute(
                "SELECT pair_key, dispute_id FROM event_pairs WHERE event_id = ?", (event_id,)
            ).fetchall()
        )
        covered = {pair_key(*p): (p, dispute_of.get(pair_key(*p))) for p in target.pairs}
        try:
            with self.transaction() as conn:
                new_id = self._append(conn, "undo", reviewer, covered, None, comment, event_id)
        except sqlite3.IntegrityError as exc:
            raise ReviewError(f"decision {event_id} was already undone.") from exc
        event = self.event(new_id)
        assert event is not None
        return event

    # ------------------------------------------------------------------ disputes

    def max_event_id(self) -> int:
        return int(self.conn.execute("SELECT COALESCE(MAX(event_id), 0) FROM events").fetchone()[0])

    def dispute(self, dispute_id: int) -> Dispute | None:
        row = self.conn.execute(_DISPUTES_SQL + " WHERE d.dispute_id = ?", (dispute_id,)).fetchone()
        return None if row is None else Dispute.from_row(row)

    def disputes(
        self,
        *,
        reviewer: Reviewer | None = None,
        department: str | None = None,
        reason: str | None = None,
        facility_type: str | None = None,
        status: str | None = "open",
        exclude: Sequence[int] = (),
        limit: int | None = None,
        offset: int = 0,
        group: str | None = None,
    ) -> list[Dispute]:
        """Disputes visible to ``reviewer`` (everything if None) matching the filters (and
        of the group ``group``, if given), most pressing first (see
        :func:`crosswalk.review.disputes.expected_value`)."""
        where, params = _filters(reviewer, department, reason, facility_type, status, exclude)
        if group is not None:
            where += (" AND " if where else "WHERE ") + "d.group_key = ?"
            params.append(group)
        # A group's disputes side by side, at the place of its most pressing one.
        sql = (
            "SELECT * FROM (SELECT d.*, MAX(d.priority) OVER (PARTITION BY "
            "COALESCE(d.group_key, 'dispute ' || d.dispute_id)) AS group_priority "
            f"FROM ({_DISPUTES_SQL}) d {where}) d ORDER BY d.group_priority DESC, "
            "COALESCE(d.group_key, ''), d.priority DESC, d.dispute_id"
        )
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [limit, offset]
        return [Dispute.from_row(r) for r in self.conn.execute(sql, params).fetchall()]

    def count_disputes(
        self,
        *,
        reviewer: Reviewer | None = None,
        department: str | None = None,
        reason: str | None = None,
        facility_type: str | None = None,
        status: str | None = "open",
    ) -> int:
        where, params = _filters(reviewer, department, reason, facility_type, status, ())
        sql = f"SELECT COUNT(*) FROM ({_DISPUTES_SQL}) d {where}"
        return int(self.conn.execute(sql, params).fetchone()[0])

    def facets(self, reviewer: Reviewer | None = None) -> dict[str, list[str]]:
        """Values to filter by among the active disputes ``reviewer`` can see."""
        where, params = _filters(reviewer, None, None, None, None, ())
        rows = self.conn.execute(
            f"SELECT d.source_l, d.source_r, d.reasons, d.facility_type_l, d.facility_type_r "
            f"FROM ({_DISPUTES_SQL}) d {where}",
            params,
        ).fetchall()
        departments: set[str] = set()
        reasons: set[str] = set()
        types: set[str] = set()
        for r in rows:
            departments.update((r[0], r[1]))
            reasons.update(x["kind"] for x in json.loads(r[2]))
            types.update(t for t in (r[3], r[4]) if t)
        if reviewer is not None and not reviewer.is_admin:
            departments = {reviewer.department}
        # One entry per facility type, however each source capitalizes it (HOSPICE and
        # Hospice): the one in mixed case where there is one. The filter ignores case.
        spellings: dict[str, list[str]] = {}
        for t in types:
            spellings.setdefault(t.casefold(), []).append(t)
        return {
            "department": sorted(departments),
            "reason": sorted(reasons),
            "facility_type": sorted(
                (min(v, key=lambda t: (t.isupper(), t)) for v in spellings.values()),
                key=str.casefold,
            ),
        }


#: Disputes with their status derived from the audit log: ``open`` (no decision
#: in force, or a decision older than the build that reopened it), ``unsure``,
#: or ``decided``.
_DISPUTES_SQL = f"""
SELECT d.*,
       s.event_id AS decision_event_id, s.verdict AS decision_verdict,
       s.username AS decision_username, s.created_at AS decision_at,
       CASE
         WHEN s.event_id IS NULL OR s.event_id <= d.reopened_after THEN 'open'
         WHEN s.verdict = 'unsure' THEN 'unsure'
         ELSE 'decided'
       END AS status
FROM disputes d LEFT JOIN ({STANDING_SQL}) s ON s.pair_key = d.pair_key
"""


def _filters(
    reviewer: Reviewer | None,
    department: str | None,
    reason: str | None,
    facility_type: str | None,
    status: str | None,
    exclude: Sequence[int],
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if reviewer is not None and not reviewer.is_admin:
        clauses.append("(d.source_l = ? OR d.source_r = ?)")
        params += [reviewer.department, reviewer.department]
    if department:
        clauses.append("(d.source_l = ? OR d.source_r = ?)")
        params += [department, department]
    if reason:
        clauses.append(
            "EXISTS (SELECT 1 FROM json_each(d.reasons) j WHERE json_extract(j.value, '$.kind') = ?)"
        )
        params.append(reason)
    if facility_type:
        clauses.append(
            "(d.facility_type_l = ? COLLATE NOCASE OR d.facility_type_r = ? COLLATE NOCASE)"
        )
        params += [facility_type, facility_type]
    if status == "open":
        clauses.append("d.status = 'open' AND d.active = 1")
    elif status == "unsure":
        clauses.append("d.status = 'unsure' AND d.active = 1")
    elif status == "decided":
        clauses.append("d.status = 'decided'")
    elif status == "all" or status is None:
        clauses.append("(d.active = 1 OR d.status != 'open')")
    else:
        raise ReviewError(f"invalid status {status!r}: use open, unsure, decided or all.")
    if exclude:
        clauses.append(f"d.dispute_id NOT IN ({','.join('?' * len(exclude))})")
        params += [int(x) for x in exclude]
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    return where, params


@dataclass(frozen=True)
class Dispute:
    """A pair of records raised for review, with the evidence a reviewer needs."""

    dispute_id: int
    pair: Pair
    reasons: list[dict[str, Any]]
    priority: float
    match_probability: float | None
    left: dict[str, Any]
    right: dict[str, Any]
    explanation: dict[str, Any]
    cluster: list[dict[str, Any]]
    build_id: str | None
    first_raised_at: str
    last_raised_at: str
    active: bool
    status: str
    decision_event_id: int | None
    decision_verdict: str | None
    decision_username: str | None
    decision_at: str | None
    #: The disputes between the same two entities share it: one decision settles them.
    group_key: str | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Dispute:
        return cls(
            dispute_id=row["dispute_id"],
            pair=((row["source_l"], row["record_id_l"]), (row["source_r"], row["record_id_r"])),
            reasons=json.loads(row["reasons"]),
            priority=row["priority"],
            match_probability=row["match_probability"],
            left=json.loads(row["left_record"]),
            right=json.loads(row["right_record"]),
            explanation=json.loads(row["explanation"]),
            cluster=json.loads(row["cluster"]),
            build_id=row["build_id"],
            first_raised_at=row["first_raised_at"],
            last_raised_at=row["last_raised_at"],
            active=bool(row["active"]),
            status=row["status"],
            decision_event_id=row["decision_event_id"],
            decision_verdict=row["decision_verdict"],
            decision_username=row["decision_username"],
            decision_at=row["decision_at"],
            group_key=row["group_key"],
        )

    @property
    def sources(self) -> tuple[str, str]:
        return (self.pair[0][0], self.pair[1][0])

    @property
    def reason_kinds(self) -> list[str]:
        return [r["kind"] for r in self.reasons]

    def to_json(self, *, detail: bool = False) -> dict[str, Any]:
        """The dispute as the JSON API shows it."""
        out: dict[str, Any] = {
            "dispute_id": self.dispute_id,
            "status": self.status,
            "left": {"source": self.pair[0][0], "record_id": self.pair[0][1]},
            "right": {"source": self.pair[1][0], "record_id": self.pair[1][1]},
            "reasons": self.reasons,
            "match_probability": self.match_probability,
            "priority": self.priority,
            "group": self.group_key,
            "decision": None
            if self.decision_event_id is None
            else {
                "event_id": self.decision_event_id,
                "verdict": self.decision_verdict,
                "username": self.decision_username,
                "created_at": self.decision_at,
            },
            "build_id": self.build_id,
            "first_raised_at": self.first_raised_at,
            "last_raised_at": self.last_raised_at,
        }
        if detail:
            out["left"]["record"] = self.left
            out["right"]["record"] = self.right
            out["explanation"] = self.explanation
            out["cluster"] = self.cluster
        else:
            out["left"]["name"] = self.left.get("name")
            out["right"]["name"] = self.right.get("name")
        return out
