"""The review store: append-only log, undo, constraints, secrets."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from review_minixwalk import PASSWORDS

from crosswalk.errors import ReviewError
from crosswalk.review import ReviewStore, load_constraints, queue_disputes
from crosswalk.review.auth import login, reviewer_for_token
from crosswalk.review.store import canonical_pair

CDPH_HCAI = (("hcai", "106010739"), ("cdph", "140000004"))


def _reviewer(store: ReviewStore, name: str):  # type: ignore[no-untyped-def]
    r = store.reviewer_by_name(name)
    assert r is not None
    return r


def test_store_is_wal(store: ReviewStore) -> None:
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_decisions_become_constraints_latest_not_undone_wins(
    store: ReviewStore, store_path: Path
) -> None:
    alice = _reviewer(store, "alice")
    first = store.decide(alice, CDPH_HCAI, "same", "same building")
    assert load_constraints(store_path).must_link == [canonical_pair(*CDPH_HCAI)]
    second = store.decide(alice, CDPH_HCAI, "different", "two campuses")
    got = load_constraints(store_path)
    assert got.must_link == [] and got.cannot_link == [canonical_pair(*CDPH_HCAI)]
    assert got.labelled_pairs() == [(canonical_pair(*CDPH_HCAI), False)]
    store.undo(alice, second.event_id, "misclick")
    assert load_constraints(store_path).must_link == [canonical_pair(*CDPH_HCAI)]
    store.undo(alice, first.event_id)
    assert not load_constraints(store_path)
    store.decide(alice, CDPH_HCAI, "unsure")
    got = load_constraints(store_path)
    assert not got and got.unsure == [canonical_pair(*CDPH_HCAI)]
    kinds = [(e.kind, e.verdict, e.undoes) for e in store.events(canonical_pair(*CDPH_HCAI))]
    assert kinds == [
        ("decision", "same", None),
        ("decision", "different", None),
        ("undo", None, second.event_id),
        ("undo", None, first.event_id),
        ("decision", "unsure", None),
    ]


def test_events_are_append_only(store: ReviewStore) -> None:
    event = store.decide(_reviewer(store, "alice"), CDPH_HCAI, "same", "x")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.conn.execute("UPDATE events SET verdict = 'different'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.conn.execute("DELETE FROM events WHERE event_id = ?", (event.event_id,))
    # An undo cannot be undone twice, nor name another pair's decision.
    store.undo(_reviewer(store, "alice"), event.event_id)
    with pytest.raises(ReviewError, match="already undone"):
        store.undo(_reviewer(store, "alice"), event.event_id)
    with pytest.raises(sqlite3.DatabaseError, match="same pair"):
        store.conn.execute(
            "INSERT INTO events (kind, pair_key, source_l, record_id_l, source_r, record_id_r, "
            "username, department, created_at, undoes) "
            "VALUES ('undo', 'x', 'a', '1', 'b', '2', 'u', 'd', 'now', ?)",
            (event.event_id,),
        )
    assert [e.event_id for e in store.events()] == [event.event_id, event.event_id + 1]


def test_scoping_refuses_other_department(store: ReviewStore) -> None:
    hcai_only = (("hcai", "106014050"), ("hcai", "106014051"))
    with pytest.raises(ReviewError, match="may not decide"):
        store.decide(_reviewer(store, "alice"), hcai_only, "same")
    store.decide(_reviewer(store, "root"), hcai_only, "same")  # admins decide anything
    alice_sees = store.disputes(reviewer=_reviewer(store, "alice"), status="all")
    assert alice_sees and all("cdph" in d.sources for d in alice_sees)
    assert len(store.disputes(reviewer=_reviewer(store, "root"), status="all")) == 5


def test_settled_dispute_not_raised_again(
    store: ReviewStore, mini_db: Path, store_path: Path
) -> None:
    open_before = store.count_disputes(status="open")
    store.decide(_reviewer(store, "alice"), CDPH_HCAI, "different")
    assert store.count_disputes(status="open") == open_before - 1
    assert queue_disputes(mini_db, store_path) == open_before - 1
    assert store.count_disputes(status="all") == 5  # one row per pair, across builds


def test_no_plaintext_secrets_in_the_file(
    store: ReviewStore, store_path: Path, tokens: dict[str, str]
) -> None:
    for name, password in PASSWORDS.items():
        assert login(store, name, password, "127.0.0.1").reviewer is not None
        r = reviewer_for_token(store, tokens[name])
        assert r is not None and r.username == name
    store.conn.execute("PRAGMA wal_checkpoint(FULL)")
    raw = b"".join(
        p.read_bytes() for p in store_path.parent.iterdir() if p.name.startswith("review.sqlite")
    )
    for secret in [*PASSWORDS.values(), *tokens.values()]:
        assert secret.encode() not in raw
    assert b"scrypt:" in raw  # the hashes are there instead


def test_login_throttled_per_username(store: ReviewStore) -> None:
    for _ in range(5):
        result = login(store, "alice", "wrong password!", "10.0.0.1")
        assert result.reviewer is None and result.retry_after == 0
    throttled = login(store, "alice", PASSWORDS["alice"], "10.0.0.1")
    assert throttled.reviewer is None and 0 < throttled.retry_after <= 301
    # Another address does not reset the username's count; another username may sign in.
    assert login(store, "alice", PASSWORDS["alice"], "10.0.0.2").retry_after > 0
    assert login(store, "henry", PASSWORDS["henry"], "10.0.0.1").reviewer is not None
    # Refused attempts are not counted: the window is not prolonged by them.
    assert store.conn.execute("SELECT COUNT(*) FROM login_attempts").fetchone()[0] == 6
