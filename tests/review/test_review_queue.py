"""The review queue: grouped decisions, their undo, and the upgrade of older stores."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from crosswalk.errors import ReviewError
from crosswalk.review import ReviewStore, load_constraints
from crosswalk.review.store import SCHEMA_VERSION, Reviewer, pair_key

DATA = Path(__file__).parent / "data"


def _reviewer(store: ReviewStore, name: str) -> Reviewer:
    reviewer = store.reviewer_by_name(name)
    assert reviewer is not None
    return reviewer


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return [tuple(r) for r in conn.execute(sql).fetchall()]
    finally:
        conn.close()


@pytest.fixture
def v2_store(tmp_path: Path) -> Path:
    """A store written by the code of schema version 2 (dumped by that code with
    ``iterdump``): the small crosswalk's disputes, two accounts, and decisions on three
    pairs, one of them changed and the change undone."""
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript((DATA / "review_store_v2.sql").read_text())
    conn.close()
    return path


def test_version_2_store_upgrades_without_losing_a_decision(v2_store: Path) -> None:
    events_before = _rows(v2_store, "SELECT * FROM events ORDER BY event_id")
    disputes_before = _rows(v2_store, "SELECT dispute_id, pair_key FROM disputes")
    assert _rows(v2_store, "SELECT value FROM meta WHERE key = 'schema_version'") == [("2",)]
    with ReviewStore(v2_store) as store:
        assert store.get_meta("schema_version") == SCHEMA_VERSION == "3"
        standing = {pair_key(*e.pair): (e.event_id, e.verdict) for e in store.standing_decisions()}
        history = [(e.event_id, e.kind, e.verdict, e.comment, e.undoes) for e in store.events()]
        statuses = {d.dispute_id: d.status for d in store.disputes(status="all")}
    # Nothing of the log changed, and each event covers the pair it named.
    assert _rows(v2_store, "SELECT * FROM events ORDER BY event_id") == events_before
    assert _rows(v2_store, "SELECT dispute_id, pair_key FROM disputes") == disputes_before
    assert _rows(
        v2_store, "SELECT event_id, pair_key, dispute_id FROM event_pairs ORDER BY event_id"
    ) == [(e[0], e[2], e[7]) for e in events_before]
    assert [h[:3] for h in history] == [
        (1, "decision", "same"),
        (2, "decision", "different"),
        (3, "decision", "same"),
        (4, "undo", None),
        (5, "decision", "unsure"),
    ]
    # The decisions in force are those of before: the undone change leaves 'different'.
    by_id = {e[0]: e[2] for e in events_before}
    assert standing == {by_id[1]: (1, "same"), by_id[2]: (2, "different"), by_id[5]: (5, "unsure")}
    assert sorted(statuses.values()).count("decided") == 2
    constraints = load_constraints(v2_store)
    assert [pair_key(*p) for p in constraints.must_link] == [by_id[1]]
    assert [pair_key(*p) for p in constraints.cannot_link] == [by_id[2]]
    # The upgraded log goes on: an old decision is undone as before, once.
    with ReviewStore(v2_store) as store:
        root = _reviewer(store, "root")
        undo = store.undo(root, 2, "reopen")
        assert undo.undoes == 2 and undo.pairs == store.event(2).pairs  # type: ignore[union-attr]
        assert {pair_key(*e.pair) for e in store.standing_decisions()} == {by_id[1], by_id[5]}
        with pytest.raises(ReviewError, match="already undone"):
            store.undo(root, 2)


def test_upgrade_is_refused_by_triggers_for_edits(v2_store: Path) -> None:
    """The pairs an event covers are part of the append-only log."""
    with ReviewStore(v2_store) as store:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            store.conn.execute("UPDATE event_pairs SET pair_key = 'x'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            store.conn.execute("DELETE FROM event_pairs")


def test_grouped_decision_is_one_event_and_one_undo(store: ReviewStore) -> None:
    root = _reviewer(store, "root")
    open_disputes = store.disputes(status="open")
    first, second = open_disputes[0], open_disputes[1]
    before = len(store.events())
    event = store.decide_pairs(
        root, [(first.pair, first.dispute_id), (second.pair, second.dispute_id)], "different"
    )
    # One event covering both pairs, binding each.
    assert len(store.events()) == before + 1
    assert set(event.pairs) == {first.pair, second.pair} and event.pair == event.pairs[0]
    assert {e.event_id for e in store.events(first.pair)} == {event.event_id}
    assert {e.event_id for e in store.events(second.pair)} == {event.event_id}
    decided = {d.dispute_id for d in store.disputes(status="decided")}
    assert {first.dispute_id, second.dispute_id} <= decided
    cannot = {pair_key(*p) for p in load_constraints(store.path).cannot_link}
    assert cannot == {pair_key(*first.pair), pair_key(*second.pair)}
    # One undo undoes it on every pair.
    undo = store.undo(root, event.event_id, "too quick")
    assert len(store.events()) == before + 2 and set(undo.pairs) == set(event.pairs)
    assert not store.standing_decisions()
    still_open = {d.dispute_id for d in store.disputes(status="open")}
    assert {first.dispute_id, second.dispute_id} <= still_open


def test_grouped_decision_is_scoped_to_every_pair(store: ReviewStore) -> None:
    """A reviewer may not decide a group holding a pair outside their department."""
    alice = _reviewer(store, "alice")
    disputes = store.disputes(status="open")
    theirs = next(d for d in disputes if "cdph" in d.sources)
    not_theirs = next(d for d in disputes if "cdph" not in d.sources)
    with pytest.raises(ReviewError, match="may not decide"):
        store.decide_pairs(
            alice,
            [(theirs.pair, theirs.dispute_id), (not_theirs.pair, not_theirs.dispute_id)],
            "same",
        )
    assert not store.events()
