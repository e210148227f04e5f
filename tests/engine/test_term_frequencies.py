"""Term frequencies: agreement on a value weighs by how many *other* records carry it."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest

from crosswalk.matching import Matcher
from crosswalk.pipeline import BuildResult
from crosswalk.stages.compare import record_columns
from crosswalk.stages.model import (
    own_frequencies,
    pair_frequencies,
    record_frequencies,
    term_frequencies,
)
from crosswalk.stages.normalize import normalize_records


def _terms(values: list[str | None]) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    frame = pd.DataFrame({"v": pd.array(values, dtype="string")})
    return frame, {"v": term_frequencies(frame, "v")}


def test_the_pairs_own_records_are_not_counted() -> None:
    # A: the pair's two records only; B: the pair and one other; C: the pair and two others
    frame, tables = _terms(["A", "A", "B", "B", "B", "C", "C", "C", "C", None, "D"])
    n = len(frame)
    terms = record_frequencies(frame, tables)
    left, right = np.array([0, 2, 5, 9, 2]), np.array([1, 3, 6, 10, 10])
    freq = pair_frequencies(
        {c: t.take(left) for c, t in terms.items()},
        {c: t.take(right) for c, t in terms.items()},
        n,
    )["v"]
    # A and B: one other record at the least; C: two others; a missing side takes the
    # other's value (D: carried by its own record only); B against D: B's two other records.
    assert np.allclose(freq * n, [1, 1, 2, 1, 2])


def test_a_query_is_not_among_the_counted_records() -> None:
    frame, tables = _terms(["A", "B", "B", "B"])
    published = record_frequencies(frame, tables)
    query = record_frequencies(
        pd.DataFrame({"v": pd.array(["A", "B", "Z"], dtype="string")}), tables
    )
    freq = pair_frequencies(
        {c: t.take(np.array([0, 1, 2])) for c, t in query.items()},
        {c: t.take(np.array([0, 1, 1])) for c, t in published.items()},
        len(frame),
        left_counted=False,
    )["v"]
    # A: its one published record is the pair's own; B: two others besides the pair's;
    # Z (unknown) against B: the published record's value, its own record left out.
    assert np.allclose(freq * len(frame), [1, 2, 2])


def test_explain_scores_a_pair_as_the_build_linked_it(blind_build: BuildResult) -> None:
    """The weights ``crosswalk explain`` shows are the build's, rare names included."""
    db = blind_build.out / "crosswalk.sqlite"
    matcher = Matcher.from_sqlite(db)
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT source_l, record_id_l, source_r, record_id_r, match_weight, explanation "
            "FROM links ORDER BY link_id"
        ).fetchall()
    rare = [r for r in rows if '"level": "exact"' in r[5]][:40] + rows[-40:]
    for sl, il, sr, ir, weight, _ in rare:
        shown = matcher.explain_pair((sl, il), (sr, ir))
        assert abs(shown["match_weight"] - weight) < 1e-3, (sl, il, sr, ir)


def test_a_name_only_the_pair_carries_outweighs_a_shared_one(blind_build: BuildResult) -> None:
    """On the real listings, an exact name that no other record carries weighs more than an
    exact name that other records carry too (a chain's). The exact level agrees on the
    whole name: its frequency is the whole name's."""
    pairs = blind_build.linkage.pairs
    frame = blind_build.linkage.records
    exact = pairs[pairs["lvl:name"].to_numpy() == 0]
    counts = frame["n_name"].map(frame["n_name"].value_counts()).to_numpy()
    carried = counts[exact["l"].to_numpy()]
    bits = exact["bits:name"].to_numpy()
    assert (carried == 2).any() and (carried >= 6).any()
    assert bits[carried == 2].min() > bits[carried >= 6].max()


@pytest.mark.parametrize("converted", [False, True], ids=["factorized", "from-compared-columns"])
def test_a_builds_own_counts_equal_the_term_frequency_tables(
    blind_build: BuildResult, converted: bool
) -> None:
    frame = normalize_records(blind_build.linkage.records[["name", "address", "source"]])
    frame.loc[frame.index[:3], "n_address"] = ""  # blank counts as missing
    frame.loc[frame.index[3:5], "n_address"] = " "  # white space is a value
    columns = ["n_core", "n_address"]
    own = own_frequencies(frame, columns, record_columns(frame) if converted else None)
    looked_up = record_frequencies(frame, {c: term_frequencies(frame, c) for c in columns})
    for c in columns:
        np.testing.assert_array_equal(own[c].share, looked_up[c].share)
        # The codes differ in numbering only: equal values share a code, missing ones are -1.
        assert ((own[c].code < 0) == (looked_up[c].code < 0)).all()
        pairs = pd.DataFrame({"own": own[c].code, "table": looked_up[c].code}).drop_duplicates()
        assert pairs["own"].is_unique and pairs["table"].is_unique
