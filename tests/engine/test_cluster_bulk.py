"""The clustering's bulk paths give what resolving each component on its own gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linear_sum_assignment

from crosswalk.stages.cluster import (
    SOLVE_ROWS,
    TIE,
    _max_weight_matching,
    _ranks_in_component,
    cluster,
    tie_gain,
)


def _components(
    seed: int, n: int, big: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Links of ``n`` disjoint random components (and ``big`` larger ones), with weights
    drawn from a few values (so that equal weights and equal totals abound), the tie-break
    of the clustering added: rows, columns (numbered in component then key order), gains
    and components."""
    rng = np.random.default_rng(seed)
    comp, left, right, worth = [], [], [], []
    shapes = [(int(rng.integers(1, 7)), int(rng.integers(1, 7))) for _ in range(n)]
    shapes += [(int(rng.integers(20, 60)), int(rng.integers(20, 60))) for _ in range(big)]
    for c, (n_l, n_r) in enumerate(shapes):
        for x in range(n_l):
            for y in range(n_r):
                if rng.random() < 0.7 or (n_l == 1 and y == 0):
                    comp.append(c)
                    left.append(x)
                    right.append(y)
                    worth.append(float(rng.choice([0.5, 3.0, 9.0])))
    order = np.lexsort((right, left, comp))
    comp_a, left_a, right_a = (np.asarray(v)[order] for v in (comp, left, right))
    row_of, row_rank = _ranks_in_component(comp_a, left_a)
    col_of, col_rank = _ranks_in_component(comp_a, right_a)
    gain = np.asarray(worth)[order] + 1e-6 + TIE * tie_gain(row_rank, col_rank)
    return row_of, col_of, gain, comp_a


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bulk_matching_is_the_optimal_matching_of_each_component(seed: int) -> None:
    # Components with one record on a side (solved in bulk), small ones and larger ones
    # (solved by batches of components), against one solver call over all of them (as
    # before the batches) and against linear_sum_assignment on each component alone.
    rows, cols, gain, comp = _components(seed, 400, big=8)
    assert len(np.unique(rows)) > 2 * SOLVE_ROWS  # several batches
    chosen = np.zeros(len(rows), dtype=bool)
    chosen[_max_weight_matching(rows, cols, gain, comp)] = True
    at_once = np.zeros(len(rows), dtype=bool)
    at_once[_max_weight_matching(rows, cols, gain)] = True
    assert (chosen == at_once).all()
    for c in np.unique(comp).tolist():
        at = np.flatnonzero(comp == c)
        r, k = rows[at] - rows[at].min(), cols[at] - cols[at].min()
        dense = np.zeros((int(r.max()) + 1, int(k.max()) + 1))  # 0: no link
        dense[r, k] = gain[at]
        i, j = linear_sum_assignment(dense, maximize=True)
        best = {(a, b) for a, b in zip(i.tolist(), j.tolist(), strict=True) if dense[a, b] > 0}
        got = set(zip(r[chosen[at]].tolist(), k[chosen[at]].tolist(), strict=True))
        assert gain[at][chosen[at]].sum() == pytest.approx(dense[i, j].sum(), abs=1e-9), c
        if min(dense.shape) == 1:
            assert got == best, c  # the tie-break leaves one best link
        # (With several records on each side, pairings whose tie-breaks sum alike to the
        # last bit may remain: the one call over all, above, decides between them.)


def test_equal_totals_pair_the_records_in_key_order() -> None:
    # Components of every shape whose links all weigh the same: the first keys pair with
    # each other (the first with the first, ...), in bulk as by the solver.
    comp, left, right = [], [], []
    shapes = [(1, 3), (3, 1), (2, 2), (2, 3), (3, 2), (4, 4)]
    for c, (n_l, n_r) in enumerate(shapes):
        for x in range(n_l):
            for y in range(n_r):
                comp.append(c)
                left.append(x)
                right.append(y)
    comp_a, left_a, right_a = np.array(comp), np.array(left), np.array(right)
    row_of, row_rank = _ranks_in_component(comp_a, left_a)
    col_of, col_rank = _ranks_in_component(comp_a, right_a)
    gain = 5.0 + 1e-6 + TIE * tie_gain(row_rank, col_rank)
    chosen = _max_weight_matching(row_of, col_of, gain, comp_a)
    got = sorted(
        zip(comp_a[chosen].tolist(), left_a[chosen].tolist(), right_a[chosen].tolist(), strict=True)
    )
    expected = sorted(
        (c, i, i) for c, (n_l, n_r) in enumerate(shapes) for i in range(min(n_l, n_r))
    )
    assert got == expected


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_two_sided_components_split_in_bulk_as_one_by_one(seed: int) -> None:
    # Components of two sources, each allowing one record per entity, with weights drawn
    # from a few values: split all at once (as greedy matchings, in bulk) they give the
    # parts, statuses and splits of the edge-by-edge rebuild, which a component takes when
    # it holds a cannot-link; here one between two records of one source, which can never
    # be together anyway and so changes nothing.
    rng = np.random.default_rng(seed)
    sources: list[str] = []
    rows: list[tuple[int, int, float]] = []
    cannot: list[tuple[int, int]] = []
    for _ in range(300):
        a = list(range(len(sources), len(sources) + int(rng.integers(1, 5))))
        sources += ["a"] * len(a)
        b = list(range(len(sources), len(sources) + int(rng.integers(1, 5))))
        sources += ["b"] * len(b)
        for x in a:
            for y in b:
                if rng.random() < 0.7:
                    rows.append((x, y, float(rng.choice([2.0, 9.0, 15.0]))))
        if len(a) > 1:
            cannot.append((a[0], a[1]))
        elif len(b) > 1:
            cannot.append((b[-1], b[0]))
    links = pd.DataFrame(sorted(rows), columns=["l", "r", "match_weight"])
    links["match_probability"] = 1 / (1 + 2.0 ** -links["match_weight"])
    limits = {"a": 1, "b": 1}
    bulk = cluster(len(sources), np.array(sources), limits, links, 0.5)
    one_by_one = cluster(len(sources), np.array(sources), limits, links, 0.5, cannot_link=cannot)
    assert len(bulk.splits) > 100
    assert (bulk.labels == one_by_one.labels).all()
    assert (bulk.codes == one_by_one.codes).all()
    assert bulk.splits == one_by_one.splits
    assert bulk.decision_conflicts == one_by_one.decision_conflicts == []
