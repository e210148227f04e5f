"""The review queue: grouped decisions, their undo, and the upgrade of older stores."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import review_minixwalk as minixwalk
from markupsafe import escape
from review_minixwalk import PASSWORDS, csrf, review_app, sign_in

from api.review.web import PAGE_SIZE
from crosswalk.errors import ReviewError
from crosswalk.review import ReviewStore, load_constraints, queue_disputes
from crosswalk.review.auth import create_reviewer, issue_token
from crosswalk.review.disputes import (
    crossed,
    kept_instead,
    left_alone,
    next_in_line,
    runner_ups,
    type_overruled,
)
from crosswalk.review.store import SCHEMA_VERSION, Reviewer, pair_key
from crosswalk.stages.conflicts import MARGIN_BITS, decision_margins, probability_wrong
from crosswalk.stages.score import best_of_a_record

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


# ---------------------------------------------------------------------- margins


def test_decision_margins_read_ties_clear_splits_and_rivals() -> None:
    """Records 0..7 of sources a (even) and b (odd), each allowing one record per entity."""
    left = np.array([0, 0, 2, 2, 4, 6])
    right = np.array([1, 3, 1, 3, 3, 7])
    src_l = np.array(["a"] * 6, dtype=object)
    src_r = np.array(["b"] * 6, dtype=object)
    weight = np.array([15.0, 15.0, 9.0, 2.0, 1.0, -1.0])
    status = np.array(["linked", "cut", "cut", "linked", "linked", "below_threshold"], dtype=object)
    margin, rival = decision_margins(left, right, src_l, src_r, weight, status, 0.0, {"a", "b"})
    # A tie: record 0 keeps 1 and loses 3 at the same 15 bits; neither has a margin.
    assert margin[0] == 0.0 and margin[1] == 0.0
    # A split decided by 6 bits: record 1 is held by 0 at 15 bits against 2 at 9.
    assert margin[2] == 6.0 and rival[2] == 15.0
    # Linked at 2 bits while record 3's link to 0 weighs 15: a rival beats it.
    assert margin[3] == -13.0
    # Linked 1 bit above the threshold, but 14 bits behind the same rival.
    assert margin[4] == -14.0 and rival[4] == 15.0
    # Below the threshold by 1 bit, no rival: 1 bit.
    assert margin[5] == 1.0 and rival[5] == -np.inf
    assert probability_wrong(np.array([0.0]))[0] == 0.5
    assert abs(probability_wrong(np.array([MARGIN_BITS]))[0] - 0.1) < 0.001


def test_decisions_and_unlimited_sources_make_no_rivals() -> None:
    left, right = np.array([0, 0]), np.array([1, 2])
    src = np.array(["a", "a"], dtype=object)
    other = np.array(["b", "b"], dtype=object)
    status = np.array(["must_link", "cut"], dtype=object)
    weight = np.array([-5.0, 10.0])
    margin, _ = decision_margins(left, right, src, other, weight, status, 0.0, {"a", "b"})
    assert margin[0] == np.inf  # decided by a reviewer
    assert margin[1] == np.inf  # the must-link beats it by any margin
    status = np.array(["linked", "linked"], dtype=object)
    margin, rival = decision_margins(left, right, src, other, weight, status, 0.0, set())
    assert np.all(rival == -np.inf) and margin[1] == 10.0


# ---------------------------------------------------------------------- the real build

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The embedded pair built with identifiers and a fresh review store, by the CLI."""
    tmp = tmp_path_factory.mktemp("queue")
    store = tmp / "review.sqlite"
    done = subprocess.run(
        [sys.executable, "-m", "crosswalk.cli", "build", "--config", "data/sources.toml",
         "--out", str(tmp / "build"), "--review-store", str(store)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return {"db": tmp / "build" / "crosswalk.sqlite", "store": store, "tmp": tmp}


def test_clear_splits_are_published_but_not_queued(built: dict[str, Path]) -> None:
    published = _rows(built["db"], "SELECT COUNT(*) FROM conflicts WHERE kind = 'cluster_split'")
    with ReviewStore(built["store"]) as store:
        disputes = store.disputes(status="all")
    splits = [r for d in disputes for r in d.reasons if r["kind"] == "cluster_split"]
    # Every split is in the published conflicts; only those without a clear margin queue.
    assert int(published[0][0]) > 10 * max(len(splits), 1)
    assert splits and all(r["margin_bits"] < MARGIN_BITS for r in splits)
    for d in disputes:
        for r in d.reasons:
            if r["kind"] in ("uncertain", "second_candidate", "one_per_source"):
                assert r["margin_bits"] is not None and r["margin_bits"] < MARGIN_BITS


def test_queue_is_ordered_by_expected_value_with_groups_together(built: dict[str, Path]) -> None:
    with ReviewStore(built["store"]) as store:
        disputes = store.disputes(status="open")
    assert disputes
    seen: list[str] = []
    for d in disputes:
        key = d.group_key or f"dispute {d.dispute_id}"
        if seen and seen[-1] != key:
            assert key not in seen, "a group's disputes are listed together"
        seen.append(key)
    best: dict[str, float] = {}
    for d in disputes:
        key = d.group_key or f"dispute {d.dispute_id}"
        best[key] = max(best.get(key, 0.0), d.priority)
    firsts = list(dict.fromkeys(seen))
    assert [best[k] for k in firsts] == sorted((best[k] for k in firsts), reverse=True)
    # A grouped dispute lies between two entities, each of its records in one of them.
    grouped = [d for d in disputes if d.group_key]
    assert len({d.group_key for d in grouped}) < len(grouped)
    for d in grouped:
        assert {d.left["entity_id"], d.right["entity_id"]} == set(json.loads(d.group_key or ""))


def test_group_decision_in_the_web_queue_and_its_undo(built: dict[str, Path]) -> None:
    with ReviewStore(built["store"]) as store:
        if store.reviewer_by_name("root") is None:
            create_reviewer(store, "root", "cdph", PASSWORDS["root"], admin=True)
        listed = [d.group_key for d in store.disputes(status="open")]
        group = next(g for g in listed if g and listed.count(g) > 1)
        members = {d.dispute_id for d in store.disputes(status="open", group=group)}
    assert len(members) > 1
    client = review_app(built["store"], built["db"]).test_client()
    assert sign_in(client, "root").status_code == 302
    queue = client.get(f"/review/?page={listed.index(group) // PAGE_SIZE + 1}")
    assert (
        queue.status_code == 200
        and f'class="group-head" data-group="{escape(group)}"' in queue.text
    )
    response = client.post(
        "/review/groups/decision",
        data={"csrf_token": csrf(queue.text), "group": group, "verdict": "different"},
    )
    assert response.status_code == 302
    with ReviewStore(built["store"]) as store:
        events = store.events()
        assert len(events) == 1 and events[0].verdict == "different"
        assert len(events[0].pairs) == len(members)
        assert {d.dispute_id for d in store.disputes(status="decided")} == members
    page = client.get(f"/review/disputes/{min(members)}")
    assert (
        client.post(
            f"/review/events/{events[0].event_id}/undo", data={"csrf_token": csrf(page.text)}
        ).status_code
        == 302
    )
    with ReviewStore(built["store"]) as store:
        assert [e.kind for e in store.events()] == ["decision", "undo"]
        assert not store.standing_decisions()
        assert members <= {d.dispute_id for d in store.disputes(status="open")}


def test_group_decision_through_the_json_api(built: dict[str, Path]) -> None:
    with ReviewStore(built["store"]) as store:
        root = store.reviewer_by_name("root") or create_reviewer(
            store, "root", "cdph", PASSWORDS["root"], admin=True
        )
        token = issue_token(store, root)
        listed = [d for d in store.disputes(status="open") if d.group_key]
        keys = [d.group_key for d in listed]
        first = next(d for d in listed if keys.count(d.group_key) > 1)
        members = {d.dispute_id for d in store.disputes(status="open", group=first.group_key)}
        before = len(store.events())
    client = review_app(built["store"], built["db"]).test_client()
    auth = {"Authorization": f"Bearer {token}"}
    shown = client.get(f"/v1/disputes/{first.dispute_id}", headers=auth).get_json()
    assert shown["group"] == first.group_key
    response = client.post(
        f"/v1/disputes/{first.dispute_id}/decision",
        json={"verdict": "same", "group": True},
        headers=auth,
    )
    assert response.status_code == 201, response.text
    event = response.get_json()["event"]
    assert len(event["pairs"]) == len(members)
    refused = client.post(
        f"/v1/disputes/{first.dispute_id}/decision", json={"verdict": "same", "group": "yes"},
        headers=auth,
    )  # fmt: skip
    assert refused.status_code == 400 and "group" in refused.text
    undo = client.post(f"/v1/decisions/{event['event_id']}/undo", json={}, headers=auth)
    assert undo.status_code in (200, 201), undo.text
    with ReviewStore(built["store"]) as store:
        assert len(store.events()) == before + 2
        assert members <= {d.dispute_id for d in store.disputes(status="open")}


def _queue_with(tmp_path: Path, **review: float) -> list:  # type: ignore[type-arg]
    """The disputes of the small crosswalk queued with these ``[review]`` settings."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    db = minixwalk.build(tmp_path / "crosswalk.sqlite")
    conn = sqlite3.connect(db)
    config = json.loads(conn.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()[0])
    config["review"].update(review)
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'config'", (json.dumps(config),))
    conn.close()
    queue_disputes(db, tmp_path / "review.sqlite")
    with ReviewStore(tmp_path / "review.sqlite") as store:
        return store.disputes(status="all")


#: A pair under the threshold (p = 0.35) of two records that have no link at all.
BELOW = (("cdph", "140000006"), ("hcai", "106010844"))


def test_a_narrower_uncertain_band_raises_nothing_outside_it(tmp_path: Path) -> None:
    """A pair under the threshold outside the configured band is not raised as uncertain
    (it was raised with no reason): only as the best candidate of records with no link."""
    disputes = _queue_with(tmp_path, uncertain_low=0.4)
    assert disputes and all(d.reasons for d in disputes)
    assert [d.reason_kinds for d in disputes if d.pair == BELOW] == [["unlinked"]]


# ------------------------------------------------------- records left with no link at all


def test_left_alone_raises_two_unlinked_records_and_a_cut_that_orphans() -> None:
    """Records 0..5: 0-1 is linked, 2 lost 0-2 (cut) to it by 2 bits and has no other
    link; 3, 4, 5 and 6 have no link: 3-4 is the best candidate of both (-5 bits), 3-5
    is 5's only one (-8), 4-6 is 6's only one but under the reach (p < 0.001)."""
    left = np.array([0, 2, 3, 3, 4])
    right = np.array([1, 1, 4, 5, 6])
    weight = np.array([12.0, 10.0, -5.0, -8.0, -11.0])
    status = np.array(["linked", "cut", "below_threshold", "below_threshold", "below_threshold"])
    margin = np.array([2.0, 2.0, 5.0, 8.0, 11.0])
    unlinked, orphaned = left_alone(left, right, weight, status, margin, 0.0, 6.63)
    assert unlinked.tolist() == [False, False, True, True, False]
    assert orphaned.tolist() == [False, True, False, False, False]
    # Beaten by more than the orphan margin, the cut is clear; once 2 has a link, 2 is not alone.
    _, orphaned = left_alone(left, right, weight, status, margin + 5.0, 0.0, 6.63)
    assert not orphaned.any()
    status2 = np.append(status, "linked")
    _, orphaned = left_alone(
        np.append(left, 2), np.append(right, 7), np.append(weight, 3.0), status2,
        np.append(margin, 3.0), 0.0, 6.63,
    )  # fmt: skip
    assert not orphaned.any()


def test_runner_up_of_a_weak_link_and_the_links_a_decision_would_undo() -> None:
    """Record 0 (source a) is linked to 1 (b) by 1 bit: weak. Its runner-up in b is 0-2
    (-1 bit), not 0-3 (-2.5 bits); 4-5 is linked by 15 bits: strong, no runner-up."""
    left = np.array([0, 0, 0, 4, 4])
    right = np.array([1, 2, 3, 5, 6])
    src_l = np.array(["a"] * 5, dtype=object)
    src_r = np.array(["b"] * 5, dtype=object)
    weight = np.array([1.0, -1.0, -2.5, 15.0, -1.0])
    status = np.array(["linked", "below_threshold", "below_threshold", "linked", "below_threshold"])
    assert runner_ups(left, right, src_l, src_r, weight, status, 0.0, MARGIN_BITS) == [(0, 1)]
    # A decision linking 0-2 would undo 0-1 (b allows one record per entity), and none
    # when b allows several.
    assert kept_instead(left, right, src_l, src_r, status, np.array([1]), {"a", "b"}) == [(1, 0)]
    assert kept_instead(left, right, src_l, src_r, status, np.array([1]), {"a"}) == []


def test_scoring_keeps_each_records_best_candidate() -> None:
    """Pairs 0-1 (5 bits), 0-2 (-3), 3-2 (-4), 3-4 (-1): 0-2 is 2's best, 3-4 is 3's and
    4's, and 3-2 is the best of neither of its records."""
    left = np.array([0, 0, 3, 3])
    right = np.array([1, 2, 2, 4])
    weight = np.array([5.0, -3.0, -4.0, -1.0])
    assert best_of_a_record(left, right, weight, 5).tolist() == [True, True, False, True]


def test_the_build_publishes_under_the_floor_only_pairs_of_records_with_no_link(
    built: dict[str, Path],
) -> None:
    """The links under the review floor are pairs of two records that have no link, each
    the best candidate of one of them; each is in the queue as 'unlinked'."""
    conn = sqlite3.connect(built["db"])
    try:
        config = json.loads(
            conn.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()[0]
        )
        floor = min(config["review"]["uncertain_low"], config["model"]["link_threshold"])
        links = conn.execute(
            "SELECT source_l, record_id_l, source_r, record_id_r, match_weight, status, "
            "match_probability, method FROM links"
        ).fetchall()
    finally:
        conn.close()
    ends = lambda r: [(r[0], r[1]), (r[2], r[3])]  # noqa: E731
    joined = {k for r in links if r[5] in ("linked", "must_link") for k in ends(r)}
    best: dict[tuple[str, str], float] = {}
    for r in links:
        for k in ends(r):
            best[k] = max(best.get(k, -np.inf), r[4])
    under = [
        r for r in links if r[6] < floor and r[7] != "identifier" and r[5] == "below_threshold"
    ]
    assert under
    with ReviewStore(built["store"]) as store:
        kinds = {d.pair: d.reason_kinds for d in store.disputes(status="all")}
    for r in under:
        assert not set(ends(r)) & joined
        assert any(r[4] >= best[k] for k in ends(r))
        pair = tuple(sorted(ends(r)))
        assert "unlinked" in kinds[pair]  # type: ignore[index]


def test_a_cut_sharing_an_identifier_is_queued_with_the_link_kept_instead(
    built: dict[str, Path],
) -> None:
    """The one-record-per-source rule kept a link that shares no facility-unique identifier
    over one that shares one: both are queued, the cut as identifier_disagrees whatever its
    margin, the kept one as displaced by it; so is every link an identifier conflict would
    undo."""
    with ReviewStore(built["store"]) as store:
        disputes = store.disputes(status="all")
    by_pair = {d.pair: d for d in disputes}
    overruled = [
        d for d in disputes for r in d.reasons
        if r["kind"] == "identifier_disagrees" and "kept instead" in str(r.get("details"))
    ]  # fmt: skip
    assert overruled
    displaced = [r for d in disputes for r in d.reasons if r["kind"] == "displaced"]
    by = {tuple(sorted(tuple(x) for x in r["by"])) for r in displaced}
    for d in overruled:
        assert d.pair in by
    # Every displaced link is a link a decision on a queued pair would undo.
    for pair in by:
        assert pair in by_pair


# ------------------------------------------- crossed links, overruled types, next in line

#: Four records at one address (codes 0..3): two CDPH hospice records of one name (0, 1),
#: an HCAI hospice (2) and an HCAI home health agency (3), each of the four pairs scored.
CDPH, HCAI = np.array(["cdph"] * 4, dtype=object), np.array(["hcai"] * 4, dtype=object)
BOTH = frozenset({"cdph", "hcai"})


def test_crossed_links_are_two_kept_links_whose_exchange_costs_little() -> None:
    """0-2 and 1-2 tie at 12.03 bits, 0-3 and 1-3 at 3.53: the rule kept 1-2 and 0-3;
    keeping 0-2 and 1-3 instead costs nothing, so both are crossed, each naming the other."""
    left, right = np.array([0, 1, 0, 1]), np.array([2, 2, 3, 3])
    weight = np.array([12.03, 12.03, 3.53, 3.53])
    status = np.array(["cut", "linked", "linked", "cut"])
    found = crossed(left, right, CDPH, HCAI, weight, status, BOTH, MARGIN_BITS)
    assert [(i, j) for i, j, _ in found] == [(0, 3), (3, 0)]
    assert [cost for _, _, cost in found] == pytest.approx([0.0, 0.0])
    # The home health agency's pair with the second hospice record scores -6 bits: the
    # exchange costs 9.53 bits, a clear margin.
    far = np.array([12.03, 12.03, 3.53, -6.0])
    assert crossed(left, right, CDPH, HCAI, far, status, BOTH, MARGIN_BITS) == []
    # A source that allows several records per entity forces no exchange, and a must-link
    # is never exchanged.
    assert crossed(left, right, CDPH, HCAI, weight, status, {"hcai"}, MARGIN_BITS) == []
    must = np.array(["cut", "must_link", "linked", "cut"])
    assert crossed(left, right, CDPH, HCAI, weight, must, BOTH, MARGIN_BITS) == []


def test_a_cut_of_the_same_facility_type_beaten_by_another_type_is_overruled() -> None:
    """A county hospital listed twice by CDPH: 0 as a general acute care hospital under a
    shortened name, 1 under HCAI's own name but typed OTHER. HCAI's hospital 2 matches 1
    by name (13.88 bits, types unknown) and 0 only by address and type (0.16 bits, types
    the same): the cut 0-2 left 0 with no link, the name overruled the type."""
    left, right = np.array([0, 1]), np.array([2, 2])
    status = np.array(["cut", "linked"])
    same_type = np.array([True, False])
    assert type_overruled(left, right, CDPH, HCAI, status, same_type, BOTH) == [(0, 1)]
    # Both CDPH records of the hospital's type (a duplicate record): the rule's choice.
    assert type_overruled(left, right, CDPH, HCAI, status, np.array([True, True]), BOTH) == []
    # Record 0 keeps a link of its own (to HCAI's 3): it is not left alone.
    left, right = np.array([0, 1, 0]), np.array([2, 2, 3])
    status = np.array(["cut", "linked", "linked"])
    same_type = np.array([True, False, True])
    assert type_overruled(left, right, CDPH[:3], HCAI[:3], status, same_type, BOTH) == []


def test_a_record_with_no_link_is_next_in_line_after_an_unclear_link() -> None:
    """CDPH's hospice 0 ('VNA HEALTH') has no link; its candidate at its address, HCAI's
    hospice 2, -0.43 bits, is linked to CDPH's 1 by 9.44 bits, but with a margin of only
    1.91 bits over a rival: were that link undone, 0-2 would be next."""
    left, right = np.array([0, 1]), np.array([2, 2])
    status = np.array(["below_threshold", "linked"])
    margin = np.array([9.87, 1.91])
    assert next_in_line(left, right, CDPH, HCAI, status, margin, MARGIN_BITS, BOTH) == [(0, 1)]
    # A link kept with a clear margin leaves nothing in line.
    clear = np.array([9.87, 5.0])
    assert next_in_line(left, right, CDPH, HCAI, status, clear, MARGIN_BITS, BOTH) == []
    # Nor does it when the source allows several records per entity.
    assert next_in_line(left, right, CDPH, HCAI, status, margin, MARGIN_BITS, {"hcai"}) == []
    # Nor for a record that has a link of its own (0 linked to HCAI's 3).
    left, right = np.array([0, 1, 0]), np.array([2, 2, 3])
    status = np.array(["below_threshold", "linked", "linked"])
    margin = np.array([9.87, 1.91, 8.0])
    src_l, src_r = CDPH[:3], HCAI[:3]
    assert next_in_line(left, right, src_l, src_r, status, margin, MARGIN_BITS, BOTH) == []


def _case(
    src: str, rid: str, entity: str, name: str, address: str, ftype: str
) -> tuple[str, str, str, str, str, str, str, str, dict[str, str]]:
    return (src, rid, entity, name, address, "SANTA BARBARA", "93103", ftype, {})


def test_the_queue_raises_crossed_overruled_and_next_in_line_pairs(tmp_path: Path) -> None:
    """A small published crosswalk holding each case, built as the engine publishes it
    (weights in bits, the facility-type level of each link), queued by queue_disputes."""
    records = [
        # Two CDPH hospice records of one agency, an HCAI hospice and home health agency.
        _case("cdph", "070001336", "E2", "SUTTER VISITING NURSE ASSOCIATION AND HOSPICE",
              "1700 S AMPHLETT BLVD", "HOSPICE"),
        _case("cdph", "220001140", "E1", "SUTTER VISITING NURSE ASSOCIATION & HOSPICE",
              "1700 S AMPHLETT BLVD", "HOSPICE"),
        _case("hcai", "406414078", "E1", "SUTTER VISITING NURSE ASSOCIATION AND HOSPICE",
              "1700 S Amphlett Blvd", "Hospice"),
        _case("hcai", "406414051", "E2", "SUTTER VISITING NURSE ASSOCIATION AND HOSPICE",
              "1700 S Amphlett Blvd", "Home Health Agency"),
        # A county hospital listed twice by CDPH, once typed OTHER under HCAI's name.
        _case("cdph", "060000038", "E3", "LAC/OLIVE VIEW-UCLA MEDICAL CENTER",
              "14445 OLIVE VIEW DR", "GENERAL ACUTE CARE HOSPITAL"),
        _case("cdph", "060001042", "E4", "LOS ANGELES COUNTY OLIVE VIEW-UCLA MEDICAL CENTER",
              "14445 OLIVE VIEW DR", "OTHER"),
        _case("hcai", "106191231", "E4", "LOS ANGELES COUNTY OLIVE VIEW-UCLA MEDICAL CENTER",
              "14445 Olive View Dr", "General Acute Care Hospital"),
        # A hospice with no link, and the hospice its HCAI candidate is unclearly linked to.
        _case("cdph", "630014780", "E5", "VNA HEALTH", "512 E GUTIERREZ ST", "HOSPICE"),
        _case("cdph", "070001258", "E6", "VISITING NURSE AND HOSPICE CARE OF SANTA BARBARA",
              "512 E GUTIERREZ ST", "HOSPICE"),
        _case("hcai", "406424097", "E6", "VISITING NURSE & HOSPICE CARE",
              "512 E Gutierrez St", "Hospice"),
        _case("cdph", "050000095", "E7", "VISITING NURSE AND HOSPICE CARE OF SANTA BARBARA",
              "512 E GUTIERREZ ST", "HOME HEALTH AGENCY"),
        _case("hcai", "406420518", "E7", "VISITING NURSE AND HOSPICE CARE OF SANTA BARBARA",
              "512 E Gutierrez St", "Home Health Agency"),
        # A clinic listed twice by CDPH: the rule kept one with a clear margin.
        _case("cdph", "630010001", "E8", "BALDWIN PARK DIALYSIS", "14101 FRANCISQUITO AVE",
              "CHRONIC DIALYSIS CLINIC"),
        _case("cdph", "630010002", "E9", "BALDWIN PARK DIALYSIS CENTER",
              "14101 FRANCISQUITO AVE", "CHRONIC DIALYSIS CLINIC"),
        _case("hcai", "306191350", "E8", "BALDWIN PARK DIALYSIS", "14101 Francisquito Ave",
              "Chronic Dialysis Clinic"),
    ]  # fmt: skip
    # (cdph, hcai, entity, weight in bits, status, facility-type level)
    scored = [
        ("070001336", "406414078", None, 12.03, "cut", "same"),
        ("220001140", "406414078", "E1", 12.03, "linked", "same"),
        ("070001336", "406414051", "E2", 3.53, "linked", "incompatible"),
        ("220001140", "406414051", None, 3.53, "cut", "incompatible"),
        ("060000038", "106191231", None, 0.16, "cut", "same"),
        ("060001042", "106191231", "E4", 13.88, "linked", "missing"),
        ("630014780", "406424097", None, -0.43, "below_threshold", "same"),
        ("070001258", "406424097", "E6", 9.44, "linked", "same"),
        ("070001258", "406420518", None, 7.53, "cut", "incompatible"),
        ("050000095", "406420518", "E7", 16.03, "linked", "same"),
        ("630010001", "306191350", "E8", 17.61, "linked", "same"),
        ("630010002", "306191350", None, 9.0, "cut", "same"),
    ]
    links = [
        (("cdph", c), ("hcai", h), e, float(1 / (1 + 2**-w)), "fuzzy", st)
        for c, h, e, w, st, _ in scored
    ]
    config = {
        **minixwalk.CONFIG,
        "model": {"link_threshold": 0.5},
        "sources": [{"name": "cdph", "max_per_entity": 1}, {"name": "hcai", "max_per_entity": 1}],
    }
    db = minixwalk.build(tmp_path / "crosswalk.sqlite", cases=(records, links), config=config)
    conn = sqlite3.connect(db)
    with conn:
        for i, (_, _, _, w, _, level) in enumerate(scored):
            explanation = {"facility_type": {"level": level, "weight": 2.73}}
            conn.execute(
                "UPDATE links SET match_weight = ?, explanation = ? WHERE link_id = ?",
                (w, json.dumps(explanation), i + 1),
            )
    conn.close()
    store = tmp_path / "review.sqlite"
    queue_disputes(db, store)
    with ReviewStore(store) as s:
        disputes = {(d.pair[0][1], d.pair[1][1]): d for d in s.disputes(status="all", limit=1000)}

    def reason(pair: tuple[str, str], kind: str) -> dict[str, object]:
        found = [r for r in disputes[pair].reasons if r["kind"] == kind]
        assert found, f"{pair}: no {kind} in {disputes[pair].reason_kinds}"
        return found[0]

    # The exchange of the agency's two links costs nothing: both pairs not kept are crossed.
    assert reason(("220001140", "406414051"), "crossed")["with"] == [
        ["cdph", "070001336"], ["hcai", "406414078"]
    ]  # fmt: skip
    assert reason(("070001336", "406414078"), "crossed")["margin_bits"] == 0.0
    # The type overruled: the cut is queued, and so is the link a decision would undo.
    assert reason(("060000038", "106191231"), "type_overruled")["kept"] == [
        ["cdph", "060001042"], ["hcai", "106191231"]
    ]  # fmt: skip
    assert reason(("060001042", "106191231"), "displaced")["by"] == [
        ["cdph", "060000038"], ["hcai", "106191231"]
    ]  # fmt: skip
    edge = float(probability_wrong(np.array([MARGIN_BITS]))[0])
    assert disputes[("060000038", "106191231")].priority == pytest.approx(edge)
    # Next in line: right only if the unclear link is wrong and its own evidence holds.
    assert reason(("630014780", "406424097"), "next_in_line")["after"] == [
        ["cdph", "070001258"], ["hcai", "406424097"]
    ]  # fmt: skip
    unclear, own = probability_wrong(np.array([9.44 - 7.53, 0.43]))
    assert disputes[("630014780", "406424097")].priority == pytest.approx(unclear * own)
    # The clinic's duplicate record, cut with a clear margin by a link of the same type.
    assert ("630010002", "306191350") not in disputes
    assert ("630010001", "306191350") not in disputes
