"""Id assignment against hand-made member tables: every rule of docs/releases.md."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import sqlite_utils

from crosswalk.artifact.writer import write_state
from crosswalk.errors import BuildError, ReleaseError
from crosswalk.ids import (
    IdState,
    assign_ids,
    compare_members,
    format_id,
    format_ids,
    id_array,
    load_state,
    parse_id,
    parse_ids,
)


def members(clusters: dict[int, list[str]]) -> pd.DataFrame:
    """A member table from ``{cluster: ["source:record_id", ...]}``."""
    rows = []
    for cluster, recs in clusters.items():
        for rec in recs:
            source, record_id = rec.split(":")
            rows.append((cluster, source, record_id))
    return pd.DataFrame(rows, columns=["cluster", "source", "record_id"])


def ids_by_member(state: IdState) -> dict[str, str]:
    m = state.members
    return {
        f"{s}:{r}": e for e, s, r in zip(m["entity_id"], m["source"], m["record_id"], strict=True)
    }


def member_sets(state: IdState) -> pd.Series:
    m = state.members
    return (m["source"] + ":" + m["record_id"]).groupby(m["entity_id"]).agg(frozenset)


def change_of(changes: pd.DataFrame) -> dict[str, str]:
    return dict(zip(changes["entity_id"], changes["change"], strict=True))


def retired_row(state: IdState, entity_id: str) -> dict[str, object]:
    rows = state.retired[state.retired["entity_id"] == entity_id]
    assert len(rows) == 1, f"{entity_id} not retired exactly once: {state.retired}"
    return {str(k): v for k, v in rows.iloc[0].to_dict().items()}


FIRST = {
    1: ["cdph:1", "hcai:1"],
    2: ["cdph:2"],
    3: ["cdph:3", "hcai:3", "cdph:33"],
    4: ["cdph:4"],
    5: ["cdph:5", "hcai:5"],
}


@pytest.fixture
def first() -> IdState:
    return assign_ids(members(FIRST), None).state


def test_format_and_parse_round_trip() -> None:
    for n in (1, 31, 32, 1023, 32**5 - 1, 32**5, 10**9):
        assert parse_id(format_id(n)) == n
    assert format_id(1) == "F00001"
    assert format_id(32) == "F00010"
    assert format_ids(np.array([1, 32, 32**5])) == ["F00001", "F00010", "F100000"]
    assert parse_ids(pd.Series(["F0000Z", "F00010", "F0000Z"])).tolist() == [31, 32, 31]
    for bad in ("X00001", "F", "F0000I", "F000 1"):
        with pytest.raises(ValueError):
            parse_ids(pd.Series([bad]))
        with pytest.raises(ValueError):
            parse_id(bad)


def test_id_array_is_format_ids_as_arrow_text() -> None:
    for numbers in ([], [1, 31, 32, 1234, 32**5 - 1], [7, 32**5, 3]):  # the last one widens
        got = id_array(np.array(numbers, dtype=np.int64))
        assert got.type == pa.large_string()
        assert got.to_pylist() == format_ids(np.array(numbers, dtype=np.int64))


def test_cluster_order_is_the_ids_sorted_as_text() -> None:
    groups = {c: [f"s:{c}-{i}" for i in range(c % 3 + 1)] for c in range(40, 0, -1)}
    state = IdState(counter=32**5 - 20)  # the fresh ids reach six digits
    for previous in (None, state):
        result = assign_ids(members(groups), previous)
        # pandas' default text dtype, as the records' other text columns
        assert result.state.members["entity_id"].dtype == pd.Series(["F00001"]).dtype
        ids = result.ids.take(pa.array(result.cluster_order())).to_pylist()
        assert ids == sorted(result.entity_of_cluster.values())
        if previous is not None:  # "F100000" sorts before "F0ZZZZ" as text, not as a counter
            assert min(len(i) for i in ids) == 6 < max(len(i) for i in ids)


def test_first_build_mints_in_order_of_smallest_member() -> None:
    result = assign_ids(members({7: ["hcai:9"], 3: ["cdph:2", "hcai:1"], 5: ["cdph:1"]}), None)
    # smallest members: cluster 5 -> cdph:1, cluster 3 -> cdph:2, cluster 7 -> hcai:9
    assert result.entity_of_cluster == {5: "F00001", 3: "F00002", 7: "F00003"}
    assert set(result.changes["change"]) == {"new"}
    assert result.state.counter == 3
    assert result.state.retired.empty


def test_unchanged_entities_keep_their_ids_and_report_nothing(first: IdState) -> None:
    # Same clusters, numbered differently and listed in another order.
    renumbered = {100 + k: list(reversed(v)) for k, v in reversed(FIRST.items())}
    result = assign_ids(members(renumbered), first)
    assert ids_by_member(result.state) == ids_by_member(first)
    assert result.changes.empty
    assert result.state.counter == first.counter


def test_grown_entity_keeps_id(first: IdState) -> None:
    grown = dict(FIRST)
    grown[2] = ["cdph:2", "hcai:2", "hcai:22"]
    result = assign_ids(members(grown), first)
    before = ids_by_member(first)
    assert ids_by_member(result.state)["hcai:2"] == before["cdph:2"]
    assert change_of(result.changes) == {before["cdph:2"]: "members_changed"}
    assert "+2 -0" in result.changes["details"].iloc[0]


def test_merge_survivor_has_more_members_and_the_other_redirects(first: IdState) -> None:
    before = ids_by_member(first)
    big, small = before["cdph:3"], before["cdph:2"]  # 3 members vs 1
    merged = {k: v for k, v in FIRST.items() if k not in (2, 3)}
    merged[9] = FIRST[2] + FIRST[3]
    result = assign_ids(members(merged), first)
    after = ids_by_member(result.state)
    assert after["cdph:2"] == after["cdph:3"] == big
    assert change_of(result.changes) == {big: "members_changed", small: "merged_into"}
    row = retired_row(result.state, small)
    assert row["change"] == "merged_into" and row["successor"] == big
    details = dict(zip(result.changes["entity_id"], result.changes["details"], strict=True))
    assert f"absorbed {small}" in details[big]


def test_merge_tie_goes_to_the_older_id(first: IdState) -> None:
    before = ids_by_member(first)
    older, younger = sorted([before["cdph:1"], before["cdph:5"]], key=parse_id)
    merged = {k: v for k, v in FIRST.items() if k not in (1, 5)}
    merged[9] = FIRST[5] + FIRST[1]  # both have 2 members
    result = assign_ids(members(merged), first)
    assert ids_by_member(result.state)["cdph:5"] == older
    assert retired_row(result.state, younger)["successor"] == older


def test_split_largest_part_keeps_id_others_are_new(first: IdState) -> None:
    before = ids_by_member(first)
    original = before["cdph:3"]
    split = {k: v for k, v in FIRST.items() if k != 3}
    split[30] = ["cdph:33"]
    split[31] = ["cdph:3", "hcai:3"]
    result = assign_ids(members(split), first)
    after = ids_by_member(result.state)
    assert after["cdph:3"] == after["hcai:3"] == original
    part = after["cdph:33"]
    assert part != original and parse_id(part) == first.counter + 1
    assert change_of(result.changes) == {original: "members_changed", part: "split_from"}
    assert f"from {original}" in str(result.changes.set_index("entity_id").loc[part, "details"])
    assert result.state.retired.empty


def test_entity_retires_only_when_no_member_is_left(first: IdState) -> None:
    before = ids_by_member(first)
    shrunk = {k: v for k, v in FIRST.items() if k != 4}
    shrunk[3] = ["cdph:3"]  # lost two of three members: keeps its id
    result = assign_ids(members(shrunk), first)
    after = ids_by_member(result.state)
    assert after["cdph:3"] == before["cdph:3"]
    assert change_of(result.changes) == {
        before["cdph:3"]: "members_changed",
        before["cdph:4"]: "retired",
    }
    row = retired_row(result.state, before["cdph:4"])
    assert row["change"] == "retired" and row["successor"] is None


def test_ids_are_minted_once(first: IdState) -> None:
    gone = {k: v for k, v in FIRST.items() if k != 5}
    second = assign_ids(members(gone), first).state
    # A new record gets a fresh id, above every id ever minted, never a retired one.
    third = assign_ids(members({**gone, 6: ["hcai:6"]}), second).state
    assert ids_by_member(third)["hcai:6"] == format_id(6) and third.counter == 6
    # The returning records take their own id back; the new one still gets a fresh id.
    back = assign_ids(members({**gone, 5: FIRST[5], 6: ["hcai:6"]}), second).state
    after = ids_by_member(back)
    assert after["cdph:5"] == ids_by_member(first)["cdph:5"]
    assert after["hcai:6"] == format_id(6) and back.counter == 6


def test_chain_of_merges_redirects_to_the_final_survivor(first: IdState) -> None:
    before = ids_by_member(first)
    a, b, c = before["cdph:2"], before["cdph:1"], before["cdph:3"]  # 1, 2 and 3 members
    step1 = {k: v for k, v in FIRST.items() if k not in (1, 2)}
    step1[12] = FIRST[1] + FIRST[2]  # a merges into b
    s1 = assign_ids(members(step1), first).state
    assert retired_row(s1, a)["successor"] == b
    step2 = {k: v for k, v in step1.items() if k not in (3, 12)}
    step2[123] = step1[12] + FIRST[3]  # b (3 members, older) and c (3 members): b survives
    s2 = assign_ids(members(step2), s1).state
    assert ids_by_member(s2)["cdph:3"] == b
    assert retired_row(s2, c)["successor"] == b
    step3 = {k: v for k, v in step2.items() if k not in (123, 4, 5)}
    step3[1234] = step2[123] + ["cdph:99"]
    step3[5] = FIRST[5] + FIRST[4]  # d:4 (1 member) into e:5 (2 members)
    s3 = assign_ids(members(step3), s2).state
    e = before["cdph:5"]
    # now move all of b's members into e's cluster: e has 2+1, b has 7 -> b survives, e retires
    step4 = {1: step3[1234] + step3[5]}
    s4 = assign_ids(members(step4), s3).state
    assert retired_row(s4, e)["successor"] == b
    assert retired_row(s4, before["cdph:4"])["successor"] == b  # d -> e -> b
    assert retired_row(s4, a)["successor"] == b
    # Then everything disappears: every redirect ends in a retirement.
    s5 = assign_ids(members({1: ["hcai:new"]}), s4).state
    for old in (a, b, c, before["cdph:4"], e):
        row = retired_row(s5, old)
        assert row["change"] == "retired" and row["successor"] is None, row
    assert retired_row(s5, a)["details"] == "0 of 1 members left"
    # Ids retired by a release written before retired ids kept their last members
    # follow their chain of redirects instead, and say where it ended.
    legacy = replace(s4, retired_members=s4.retired_members.iloc[0:0])
    s5 = assign_ids(members({1: ["hcai:new"]}), legacy).state
    for old in (a, c, before["cdph:4"], e):
        row = retired_row(s5, old)
        assert row["change"] == "retired" and row["successor"] is None, row
    assert "then " in str(retired_row(s5, a)["details"])


def test_entity_whose_parts_all_merge_elsewhere_redirects_to_its_largest_share() -> None:
    s0 = assign_ids(
        members({1: ["a:1", "a:2", "a:3"], 2: ["b:1", "b:2", "b:3"], 3: ["c:1", "c:2"]}), None
    ).state
    # c splits: c:1 joins a, c:2 joins b; both a and b are bigger, so c retires by merger.
    s1 = assign_ids(
        members({1: ["a:1", "a:2", "a:3", "c:1"], 2: ["b:1", "b:2", "b:3", "c:2"]}), s0
    ).state
    row = retired_row(s1, "F00003")
    assert row["change"] == "merged_into" and row["successor"] in {"F00001", "F00002"}
    assert "members went to" in str(row["details"])


def test_a_record_in_two_clusters_is_refused() -> None:
    with pytest.raises(BuildError, match="more than one cluster"):
        assign_ids(members({1: ["a:1"], 2: ["a:1"]}), None)
    # The record named is the first to repeat, in the members' order.
    rows = members({5: ["b:9", "a:2", "a:1"], 7: ["b:9", "a:1"], 9: ["a:2"]})
    with pytest.raises(BuildError, match=r"record \(b, 9\) is in more than one cluster"):
        assign_ids(rows, None)
    # Labels far apart (no small integers to count) group as np.unique groups them.
    spread = members({10**12: ["a:1", "b:1"], 3: ["a:2"], 10**15: ["b:2"]})
    result = assign_ids(spread, None)
    assert result.clusters.tolist() == [3, 10**12, 10**15]
    assert result.member_entities.tolist() == [1, 1, 0, 2]


def _reference_greedy(edges: list[tuple[int, int, int]], key: dict[int, int]) -> dict[int, int]:
    """Plain greedy matching: the definition the vectorized rounds must reproduce."""
    matched: dict[int, int] = {}
    used: set[int] = set()
    for _n, entity, cluster in sorted(edges, key=lambda t: (-t[0], t[1], key[t[2]])):
        if cluster not in matched and entity not in used:
            matched[cluster] = entity
            used.add(entity)
    return matched


@pytest.mark.parametrize("seed", range(8))
def test_random_rebuilds_match_the_plain_greedy_rule(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    records = [f"s{rng.integers(3)}:{i}" for i in range(n)]
    first_clusters = rng.integers(0, 150, n)
    m0 = pd.DataFrame(
        {
            "cluster": first_clusters,
            "source": [r.split(":")[0] for r in records],
            "record_id": [r.split(":")[1] for r in records],
        }
    )
    s0 = assign_ids(m0, None).state
    # Rebuild: drop some, add some, shuffle a fifth of the records to other clusters.
    keep = rng.random(n) > 0.05
    m1 = m0[keep].copy()
    moved = rng.random(len(m1)) < 0.2
    m1.loc[moved, "cluster"] = rng.integers(0, 170, int(moved.sum()))
    extra = pd.DataFrame(
        {
            "cluster": rng.integers(100, 200, 20),
            "source": "s9",
            "record_id": [f"x{i}" for i in range(20)],
        }
    )
    m1 = pd.concat([m1, extra], ignore_index=True)
    result = assign_ids(m1, s0)

    old_id = dict(
        zip(
            s0.members["source"] + ":" + s0.members["record_id"],
            s0.members["entity_id"],
            strict=True,
        )
    )
    m1k = m1.assign(k=m1["source"] + ":" + m1["record_id"])
    edges: dict[tuple[int, int], int] = {}
    for cluster, k in zip(m1k["cluster"], m1k["k"], strict=True):
        if k in old_id:
            pair = (parse_id(old_id[k]), int(cluster))
            edges[pair] = edges.get(pair, 0) + 1
    # Cluster order key: its smallest (source, record_id).
    firsts = m1.sort_values(["source", "record_id"]).drop_duplicates("cluster")["cluster"]
    key = {int(c): i for i, c in enumerate(firsts)}
    expected = _reference_greedy([(n, e, c) for (e, c), n in edges.items()], key)
    got = {c: parse_id(i) for c, i in result.entity_of_cluster.items() if parse_id(i) <= s0.counter}
    assert got == expected
    # Every unchanged entity keeps its id.
    before = member_sets(s0)
    after = member_sets(result.state)
    unchanged = set(before.items()) & {(e, s) for e, s in after.items()}
    same_sets = set(before.values) & set(after.values)
    assert len(unchanged) == len(same_sets)
    # Fresh ids are all above the previous counter and distinct.
    fresh = [parse_id(i) for i in result.entity_of_cluster.values() if parse_id(i) > s0.counter]
    assert sorted(fresh) == list(range(s0.counter + 1, s0.counter + 1 + len(fresh)))
    # Every previous id is live or retired, never both.
    live = set(result.entity_of_cluster.values())
    retired = set(result.state.retired["entity_id"])
    assert not live & retired
    assert set(s0.members["entity_id"]) <= live | retired
    assert set(result.state.retired["successor"].dropna()) <= live


def test_state_round_trips_through_sqlite(tmp_path: Path, first: IdState) -> None:
    gone = {k: v for k, v in FIRST.items() if k not in (4, 2)}
    gone[1] = FIRST[1] + FIRST[2]
    result = assign_ids(members(gone), first)
    path = tmp_path / "crosswalk.sqlite"
    db = sqlite_utils.Database(path)
    db.table("records").insert_all(
        [{str(k): v for k, v in r.items()} for r in result.state.members.to_dict("records")],
        pk=("source", "record_id"),
    )
    db.close()
    write_state(path, result.state)
    loaded = load_state(path)
    assert loaded is not None
    assert loaded.counter == result.state.counter
    assert ids_by_member(loaded) == ids_by_member(result.state)
    got = loaded.retired.set_index("entity_id")
    assert (
        got.loc["F00002", "change"] == "merged_into" and got.loc["F00002", "successor"] == "F00001"
    )
    assert got.loc["F00004", "change"] == "retired" and got.loc["F00004", "successor"] is None
    last = loaded.retired_members.sort_values(["entity_id", "source", "record_id"])
    assert last.values.tolist() == [["F00002", "cdph", "2"], ["F00004", "cdph", "4"]]
    # The next build sees them: F00004's record returns and takes its id back.
    back = assign_ids(members({**gone, 4: FIRST[4]}), loaded)
    assert ids_by_member(back.state)["cdph:4"] == "F00004"
    db2 = sqlite_utils.Database(path)
    assert db2.table("retired_ids").pks == ["entity_id"]
    assert {r["change"] for r in db2["changes"].rows} == {
        "members_changed",
        "merged_into",
        "retired",
    }
    # A counter lost from id_state is recovered from the largest id seen.
    db2.table("id_state").delete_where("key = 'counter'")
    db2.close()
    again = load_state(path)
    assert again is not None and again.counter == 5


def test_load_state_refuses_a_missing_or_foreign_database(tmp_path: Path) -> None:
    assert load_state(None) is None
    with pytest.raises(ReleaseError, match="does not exist"):
        load_state(tmp_path / "nope.sqlite")
    sqlite_utils.Database(tmp_path / "other.sqlite").table("x").insert({"a": 1})
    with pytest.raises(ReleaseError, match="no records table"):
        load_state(tmp_path / "other.sqlite")


# --------------------------------------------------------------------------- ids that come back


def lineage(*builds: dict[int, list[str]]) -> list[IdState]:
    """The id states of consecutive builds, each carried over from the one before."""
    states: list[IdState] = []
    for clusters in builds:
        states.append(assign_ids(members(clusters), states[-1] if states else None).state)
    return states


def test_an_id_whose_records_leave_and_return_comes_back() -> None:
    first, gone, back = lineage(FIRST, {k: v for k, v in FIRST.items() if k not in (3, 4)}, FIRST)
    before = ids_by_member(first)
    assert retired_row(gone, before["cdph:3"])["change"] == "retired"
    assert ids_by_member(back) == before
    assert back.counter == first.counter  # nothing minted
    assert back.retired.empty and back.retired_members.empty
    result = assign_ids(members(FIRST), gone)
    assert change_of(result.changes) == {before["cdph:3"]: "revived", before["cdph:4"]: "revived"}
    details = dict(zip(result.changes["entity_id"], result.changes["details"], strict=True))
    assert details[before["cdph:3"]] == "3 of 3 last members back (now 3)"


def test_retired_ids_remember_their_last_members(first: IdState) -> None:
    before = ids_by_member(first)
    merged = {k: v for k, v in FIRST.items() if k not in (2, 3, 4)}
    merged[1] = FIRST[1] + FIRST[2]  # F(cdph:2) merges into F(cdph:1)
    state = assign_ids(members(merged), first).state
    last = state.retired_members
    got = (last["source"] + ":" + last["record_id"]).groupby(last["entity_id"]).agg(frozenset)
    assert got.to_dict() == {
        before["cdph:2"]: frozenset(FIRST[2]),
        before["cdph:3"]: frozenset(FIRST[3]),
        before["cdph:4"]: frozenset(FIRST[4]),
    }


def test_a_split_back_gives_each_part_its_id_back() -> None:
    a, b = "s:1", "s:2"
    # F00001 names s:2 (minted first), F00002 names s:1: the survivor's record sorts last.
    _first, second, merged, split = lineage(
        {1: [b]}, {1: [b], 2: [a]}, {1: [a, b]}, {1: [a], 2: [b]}
    )
    assert ids_by_member(second) == {b: "F00001", a: "F00002"}
    assert retired_row(merged, "F00002")["successor"] == "F00001"  # a tie: the older id
    assert ids_by_member(split) == {b: "F00001", a: "F00002"}
    assert split.retired.empty and split.counter == 2


def test_an_entity_split_back_from_a_merger_takes_its_id_back(first: IdState) -> None:
    before = ids_by_member(first)
    big, small = before["cdph:3"], before["cdph:1"]  # 3 and 2 members
    merged = {k: v for k, v in FIRST.items() if k not in (1, 3)}
    merged[13] = FIRST[1] + FIRST[3]
    s1 = assign_ids(members(merged), first).state
    assert retired_row(s1, small)["successor"] == big
    result = assign_ids(members(FIRST), s1)
    assert ids_by_member(result.state) == before
    assert change_of(result.changes) == {big: "members_changed", small: "revived"}


def test_a_fragment_of_a_retired_id_does_not_take_it_back() -> None:
    a, b = ["a:1", "a:2", "a:3"], ["b:1", "b:2", "b:3", "b:4"]
    _first, merged = lineage({1: a, 2: b}, {1: a + b})
    assert retired_row(merged, "F00001")["successor"] == "F00002"
    # One record of F00001 leaves the merged entity, two stay: F00001 is where most of
    # its records are, inside F00002, and the lone record gets a new id.
    result = assign_ids(members({1: b + a[:2], 2: a[2:]}), merged)
    after = ids_by_member(result.state)
    assert after["a:3"] == "F00003" and after["a:1"] == "F00002"
    assert change_of(result.changes)["F00003"] == "split_from"
    assert retired_row(result.state, "F00001")["successor"] == "F00002"
    # Two of its three records leave together: they are most of F00001, which comes back.
    result = assign_ids(members({1: b + a[:1], 2: a[1:]}), merged)
    after = ids_by_member(result.state)
    assert after["a:2"] == after["a:3"] == "F00001" and after["a:1"] == "F00002"
    assert change_of(result.changes) == {"F00001": "revived", "F00002": "members_changed"}


def test_redirects_follow_the_retired_ids_records() -> None:
    _first, gone = lineage({1: ["a:1"], 2: ["b:1", "b:2"]}, {2: ["b:1", "b:2"]})
    assert retired_row(gone, "F00001")["change"] == "retired"
    # a:1 returns into F00002's entity: F00001 now redirects there.
    joined = assign_ids(members({2: ["a:1", "b:1", "b:2"]}), gone).state
    row = retired_row(joined, "F00001")
    assert row["change"] == "merged_into" and row["successor"] == "F00002"
    assert row["details"] == "into F00002; 1 of 1 members"
    # Then a:1 leaves again: no record of F00001 is left, so it redirects nowhere.
    again = assign_ids(members({2: ["b:1", "b:2"]}), joined).state
    row = retired_row(again, "F00001")
    assert row["change"] == "retired" and row["successor"] is None
    assert row["details"] == "0 of 1 members left"
    # The release an id retired in stays that of its retirement.
    kept = retired_row(joined, "F00001")
    assert kept["release"] == retired_row(gone, "F00001")["release"]


def test_an_undone_merge_stops_redirecting_to_the_survivor() -> None:
    _first, merged = lineage({1: ["a:1", "a:2"], 2: ["b:1"]}, {1: ["a:1", "a:2", "b:1"]})
    assert retired_row(merged, "F00002")["successor"] == "F00001"
    # b:1 moves to a third, live entity: F00002 follows its record, not the old survivor.
    moved = lineage(
        {1: ["a:1", "a:2"], 2: ["b:1"], 3: ["c:1", "c:2"]},
        {1: ["a:1", "a:2", "b:1"], 3: ["c:1", "c:2"]},
    )
    state = assign_ids(members({1: ["a:1", "a:2"], 3: ["c:1", "c:2", "b:1"]}), moved[1]).state
    row = retired_row(state, "F00002")
    assert row["change"] == "merged_into" and row["successor"] == "F00003"


def test_competing_retired_ids_the_one_with_most_records_wins() -> None:
    _first, gone = lineage({1: ["a:1"], 2: ["b:1", "b:2"], 3: ["c:1"]}, {3: ["c:1"]})
    assert {r for r in gone.retired["entity_id"]} == {"F00001", "F00002"}
    result = assign_ids(members({3: ["c:1"], 9: ["a:1", "b:1", "b:2"]}), gone)
    assert ids_by_member(result.state)["a:1"] == "F00002"
    row = retired_row(result.state, "F00001")
    assert row["change"] == "merged_into" and row["successor"] == "F00002"
    # On a tie the older id wins.
    tie = assign_ids(members({3: ["c:1"], 9: ["a:1", "b:1"]}), gone)
    assert ids_by_member(tie.state)["b:1"] == "F00001"
    assert retired_row(tie.state, "F00002")["successor"] == "F00001"


def test_a_live_id_is_never_taken_by_a_returning_one() -> None:
    _first, gone = lineage({1: ["a:1", "a:2", "a:3"], 2: ["b:1"]}, {2: ["b:1"]})
    result = assign_ids(members({2: ["a:1", "a:2", "a:3", "b:1"]}), gone)
    assert set(ids_by_member(result.state).values()) == {"F00002"}
    assert retired_row(result.state, "F00001")["successor"] == "F00002"


def test_compare_members_across_releases_where_records_returned_under_a_new_id() -> None:
    # Releases of an engine that did not bring ids back: F00002's record left, then
    # returned as F00003. From the first release to the third, F00002's record is in
    # F00003: it merged into it, and F00003 split from it; nothing retired.
    first, gone = lineage({1: ["a:1"], 2: ["b:1"]}, {1: ["a:1"]})
    third = pd.DataFrame(
        {"entity_id": ["F00001", "F00003"], "source": ["a", "b"], "record_id": ["1", "1"]}
    )
    changes = compare_members(first, third)
    assert changes.values.tolist() == [
        ["F00002", "merged_into", "into F00003; 1 of 1 members"],
        ["F00003", "split_from", "from F00002; 1 of 1 members"],
    ]
    # Against the second release, F00003 is new and F00002 stays retired.
    assert compare_members(gone, third).values.tolist() == [["F00003", "new", "1 members"]]


@pytest.mark.parametrize("seed", range(6))
def test_random_lineages_keep_every_redirect_true(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n = 300
    keys = pd.DataFrame({"source": [f"s{i % 3}" for i in range(n)], "record_id": range(n)})
    keys["record_id"] = keys["record_id"].astype(str)
    state: IdState | None = None
    revivals = 0
    for step in range(5):
        present = rng.random(n) > (0.0 if step == 0 else 0.15)  # records leave and return
        m = keys[present].assign(cluster=rng.integers(0, 90 + 10 * step, int(present.sum())))
        result = assign_ids(m, state)
        new = result.state
        if state is not None:
            # diff's classification of the build is the build's own.
            assert compare_members(state, new.members).values.tolist() == (
                result.changes.values.tolist()
            )
            fresh = {e for e in new.members["entity_id"] if parse_id(e) > state.counter}
            assert all(parse_id(e) == i for i, e in enumerate(sorted(fresh), state.counter + 1))
        held = member_sets(new)
        live = set(held.index)
        retired = new.retired.set_index("entity_id")
        assert not live & set(retired.index)
        last = new.retired_members
        last_sets = (
            (last["source"] + ":" + last["record_id"]).groupby(last["entity_id"]).agg(frozenset)
        )
        assert set(last_sets.index) == set(retired.index)
        for entity_id, records in last_sets.items():
            shared = {e: len(records & m) for e, m in held.items() if records & m}
            successor = retired.loc[entity_id, "successor"]
            if not shared:
                assert successor is None and retired.loc[entity_id, "change"] == "retired"
            else:
                assert shared[successor] == max(shared.values())
                assert retired.loc[entity_id, "change"] == "merged_into"
                assert successor in live
        if state is not None:
            # A revived id holds most of its last members; it took no live id's place.
            before = state.retired_members
            claimed = (
                (before["source"] + ":" + before["record_id"])
                .groupby(before["entity_id"])
                .agg(frozenset)
            )
            revived = result.changes[result.changes["change"] == "revived"]["entity_id"]
            revivals += len(revived)
            for entity_id in revived:
                shared = {e: len(claimed[entity_id] & m) for e, m in held.items()}
                assert shared[entity_id] == max(shared.values()) > 0
                assert not set(state.members["entity_id"]) & {entity_id}
        state = new
    assert revivals
