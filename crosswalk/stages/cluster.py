"""Clustering stage: scored links in, entities (clusters of records) out.

1. Links at or above the threshold, plus must-link decisions, minus
   cannot-link decisions, form a graph whose connected components are the
   candidate entities.
2. A component that breaks a constraint — more records of one source than
   the source allows (by default one), or a cannot-link pair inside — is
   rebuilt by total weight: must-links first, then the links of the pairwise
   maximum-weight matchings (:func:`_matching_ranks`), then the other links by
   falling weight, each accepted only if the merge it makes breaks no
   constraint. Refused links are *cut*, and the split is reported.

Components come from ``scipy.sparse.csgraph`` (linear time) and the
constraints are checked for all components at once with integer counts. The
components that break a constraint are rebuilt at once where they are
two-sided (links between two sources that each allow one record: the parts are
then a greedy matching, :func:`_greedy_matching`); only the others are rebuilt
one by one, edge by edge, with networkx's union-find (:func:`_rebuild`). The
matchings too are solved at once where a side holds one record, and otherwise
by batches of components (:func:`_max_weight_matching`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components, min_weight_full_bipartite_matching

from crosswalk.stages.conflicts import split_conflicts
from crosswalk.stages.kernel.codes import key_order, ranks, run_starts
from crosswalk.stages.keys import Decisions
from crosswalk.vocabulary import LINK_STATUSES

#: The statuses a link can have; ``ClusterResult.codes`` index this tuple.
STATUSES = LINK_STATUSES
LINKED, CUT, BELOW, MUST, CANNOT = STATUSES
_LINKED, _CUT, _BELOW, _MUST, _CANNOT = range(len(STATUSES))


@dataclass
class ClusterResult:
    labels: np.ndarray  # cluster label per record position
    codes: np.ndarray  # int8 status per link row, an index into STATUSES
    splits: list[dict[str, object]] = field(default_factory=list)
    decision_conflicts: list[tuple[int, int]] = field(default_factory=list)

    @property
    def status(self) -> pd.Categorical[str]:
        """Status per link row (``linked``, ``cut``, ``below_threshold``, …)."""
        return pd.Categorical.from_codes(self.codes, categories=pd.Index(list(STATUSES)))


def pair_codes(pairs: Iterable[tuple[int, int]], n: int) -> np.ndarray:
    """Sorted distinct codes ``min * n + max`` of pairs of record positions below ``n``: the
    code of a candidate pair ``(l, r)``, ``l < r``, is ``l * n + r``."""
    return np.array(sorted({min(a, b) * n + max(a, b) for a, b in pairs}), dtype="int64")


@dataclass
class LinkGraph:
    """The links as a graph: each link's status before the constraints (``codes``), and the
    edges (the links, then the must-links that were never candidates): their ends, their
    statuses, and which of them join records (linked or must-linked)."""

    must: set[tuple[int, int]]
    cannot: set[tuple[int, int]]
    n_links: int
    codes: np.ndarray  # int8 per link
    el: np.ndarray
    er: np.ndarray
    ecodes: np.ndarray  # int8 per edge
    active: np.ndarray  # bool per edge


def link_graph(
    n_records: int,
    links: pd.DataFrame,
    threshold: float,
    must_link: list[tuple[int, int]] | None = None,
    cannot_link: list[tuple[int, int]] | None = None,
) -> LinkGraph:
    """The graph :func:`cluster` takes the components of (see :class:`LinkGraph`)."""
    must = {(min(a, b), max(a, b)) for a, b in (must_link or []) if a != b}
    cannot = {(min(a, b), max(a, b)) for a, b in (cannot_link or []) if a != b}
    n_links = len(links)
    lpos = links["l"].to_numpy(dtype="int64")
    rpos = links["r"].to_numpy(dtype="int64")
    codes = np.where(links["match_probability"].to_numpy() >= threshold, _LINKED, _BELOW).astype(
        "int8"
    )
    extra_must = np.empty(0, dtype="int64")
    if must or cannot:
        link_keys = lpos * n_records + rpos
        if cannot:
            codes[np.isin(link_keys, pair_codes(cannot, n_records))] = _CANNOT
        if must:
            must_keys = pair_codes(must, n_records)
            codes[np.isin(link_keys, must_keys) & (codes != _CANNOT)] = _MUST
            # Must-link pairs that were never candidates still join.
            extra_must = must_keys[~np.isin(must_keys, link_keys)]
        del link_keys
    if len(extra_must):
        el = np.concatenate([lpos, extra_must // max(n_records, 1)])
        er = np.concatenate([rpos, extra_must % max(n_records, 1)])
        ecodes = np.concatenate([codes, np.full(len(extra_must), _MUST, dtype="int8")])
    else:  # no copies of the links' columns
        el, er, ecodes = lpos, rpos, codes
    active = (ecodes == _LINKED) | (ecodes == _MUST)
    return LinkGraph(must, cannot, n_links, codes, el, er, ecodes, active)


def records_per_source(
    labels: np.ndarray, n_comp: int, sources: np.ndarray, limits: dict[str, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each record's source as a number (the sources numbered in name order: the same
    numbers for any order of the records), each component's records per source (a
    ``n_comp`` × sources table), and each source's limit (``limits``, 1 by default;
    0 = none)."""
    src_codes, src_names = pd.factorize(pd.Series(sources), sort=True)
    n_src = max(len(src_names), 1)
    limit_of = np.array([limits.get(str(s), 1) for s in src_names], dtype="int64")
    per_source = np.bincount(labels * n_src + src_codes, minlength=n_comp * n_src).reshape(
        n_comp, n_src
    )
    return src_codes, per_source, limit_of


def breaking(
    labels: np.ndarray,
    per_source: np.ndarray,
    limit_of: np.ndarray,
    cannot: Iterable[tuple[int, int]],
) -> np.ndarray:
    """Per component, whether it breaks a constraint: more records of a source than its
    limit (:func:`records_per_source`), or both records of a cannot-link decision."""
    limited = limit_of[None, :] > 0
    bad = np.asarray((limited & (per_source > limit_of[None, :])).any(axis=1), dtype=bool)
    for a, b in cannot:
        if labels[a] == labels[b]:
            bad[labels[a]] = True
    return bad


def cluster(
    n_records: int,
    sources: np.ndarray,
    limits: dict[str, int],
    links: pd.DataFrame,
    threshold: float,
    must_link: list[tuple[int, int]] | None = None,
    cannot_link: list[tuple[int, int]] | None = None,
    record_ids: pd.Series | np.ndarray | None = None,
) -> ClusterResult:
    """Cluster records ``0..n_records-1``.

    ``links`` has columns ``l``, ``r``, ``match_weight``, ``match_probability``.
    ``limits`` maps a source to the most records it may have in one entity
    (0 = no limit). Returns a label per record and a status per link.

    Every tie — links of equal weight, pairings of equal total — is broken by the
    records' keys (``sources`` and ``record_ids``), never by the order of the link rows:
    any order of the records gives the same parts. Without ``record_ids``, by the
    records' positions (the plan numbers the records in (source, record_id) order, so
    that is their keys' order too, also for a component's records renumbered
    ``0..k-1`` in that order, as a runner resolving components one by one does).
    """
    g = link_graph(n_records, links, threshold, must_link, cannot_link)
    cannot, n_links = g.cannot, g.n_links
    codes, el, er, ecodes, active = g.codes, g.el, g.er, g.ecodes, g.active
    graph = coo_matrix(
        (np.ones(int(active.sum()), dtype="int8"), (el[active], er[active])),
        shape=(n_records, n_records),
    )
    n_comp, labels = connected_components(graph, directed=False)
    del graph
    labels = labels.astype("int64")
    result = ClusterResult(labels=labels, codes=codes)

    src_codes, per_source, limit_of = records_per_source(labels, n_comp, sources, limits)
    bad = breaking(labels, per_source, limit_of, cannot)
    if not bad.any():
        return result

    # Edges of the components to rebuild, by component, then must-links first, then by
    # falling weight, then by their records' keys.
    edges = np.flatnonzero(active & bad[labels[el]])
    if not len(edges):
        return result
    edge_comp = labels[el[edges]]
    weight = np.full(len(edges), np.inf)  # must-links that were never candidates: strongest
    inner = edges < n_links
    weight[inner] = links["match_weight"].to_numpy(dtype="float64")[edges[inner]]
    # A link's worth in a matching: its weight above the threshold's (so every link the
    # threshold keeps counts, however low the threshold).
    p = min(max(threshold, 1e-12), 1 - 1e-12)
    worth = weight - float(np.log2(p / (1 - p)))
    worth[ecodes[edges] == _MUST] = np.inf
    # Only where two sources that allow one record each both hold several can the pairing
    # of largest total weight differ from taking the strongest link first (with one
    # record on a side, the matching is its strongest link).
    crossed = ((per_source >= 2) & (limit_of[None, :] == 1)).sum(axis=1) >= 2
    step = np.where(ecodes[edges] == _MUST, 0, 1)
    in_crossed = crossed[edge_comp]
    members_all = np.flatnonzero(bad[labels])
    # Each member's rank by key (only members' keys are ever compared, within a component).
    key = np.arange(n_records, dtype=np.int64)
    if record_ids is not None:
        member_keys = pd.DataFrame(
            {
                "source": pd.Series(sources).iloc[members_all].to_numpy(dtype=object),
                "record_id": pd.Series(record_ids).iloc[members_all].astype("string").array,
            }
        )
        key[members_all] = ranks(key_order(member_keys, ["source", "record_id"]))
    if in_crossed.any():
        step[in_crossed] = _matching_ranks(
            edges[in_crossed],
            worth[in_crossed],
            edge_comp[in_crossed],
            el,
            er,
            src_codes,
            limit_of,
            key,
        )
    lo_key = np.minimum(key[el[edges]], key[er[edges]])
    hi_key = np.maximum(key[el[edges]], key[er[edges]])
    edges = edges[np.lexsort((hi_key, lo_key, -weight, step, edge_comp))]
    edge_comp = labels[el[edges]]
    edge_start = run_starts(edge_comp)
    comps = edge_comp[edge_start]
    edge_end = np.append(edge_start[1:], len(edges))
    members_all = members_all[np.lexsort((key[members_all], labels[members_all]))]
    member_comp = labels[members_all]
    member_start = np.searchsorted(member_comp, comps, side="left")
    member_end = np.searchsorted(member_comp, comps, side="right")

    # Each member's part, as the position (in ``members_all``) of its part's first member:
    # parts are numbered in that order, component after component, from n_comp.
    first_of_part = np.arange(len(members_all), dtype=np.int64)
    cut = np.zeros(len(edges), dtype=bool)  # per edge in the order tried
    simple = _two_sided(edges, edge_start, el, er, ecodes, src_codes, limit_of, labels, cannot)
    _greedy_matching(edges, edge_start, simple, el, er, members_all, first_of_part, cut)
    splits: dict[int, dict[str, object]] = {}
    complex_comps = np.flatnonzero(~simple).tolist()
    if complex_comps:
        _rebuild(
            complex_comps,
            edges,
            edge_start,
            edge_end,
            members_all,
            member_start,
            member_end,
            el,
            er,
            ecodes,
            src_codes,
            limit_of,
            cannot,
            first_of_part,
            cut,
            splits,
            result,
        )
    cut_links = edges[cut]
    cut_links = cut_links[cut_links < n_links]
    codes[cut_links[codes[cut_links] == _LINKED]] = _CUT
    part_number = np.unique(first_of_part, return_inverse=True)[1].reshape(-1)
    labels[members_all] = n_comp + part_number
    # The splits, component after component: those of the two-sided ones at once.
    parts = np.bincount(
        np.repeat(np.arange(len(comps)), member_end - member_start),
        weights=(first_of_part == np.arange(len(members_all))),
        minlength=len(comps),
    ).astype(np.int64)
    n_cut = np.add.reduceat(cut.astype(np.int64), edge_start)
    cut_at = np.split(edges[cut], np.cumsum(n_cut)[:-1])
    members_list = members_all.tolist()
    for c in np.flatnonzero(simple & (n_cut > 0)).tolist():
        splits[c] = {
            "members": members_list[member_start[c] : member_end[c]],
            "parts": int(parts[c]),
            "cut_links": cut_at[c].tolist(),
        }
    result.splits.extend(splits[c] for c in sorted(splits))
    return result


def _two_sided(
    edges: np.ndarray,
    edge_start: np.ndarray,
    el: np.ndarray,
    er: np.ndarray,
    ecodes: np.ndarray,
    src: np.ndarray,
    limit_of: np.ndarray,
    labels: np.ndarray,
    cannot: set[tuple[int, int]],
) -> np.ndarray:
    """Per component to rebuild (its ``edges`` from ``edge_start``), whether it is two-sided:
    its links all join a record of one source to one of another, both sources allowing
    one record per entity, with no must-link, no cannot-link inside and no parallel links.
    Such a component's parts are the links taken in order of trial whose records are both
    still alone: a greedy matching (:func:`_greedy_matching`)."""
    comp_of = np.repeat(np.arange(len(edge_start)), np.diff(np.append(edge_start, len(edges))))
    a, b = src[el[edges]], src[er[edges]]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    ok = (lo != hi) & (limit_of[lo] == 1) & (limit_of[hi] == 1) & (ecodes[edges] != _MUST)
    # Both ends of every link of a component from the same two sources.
    n_src = len(limit_of)
    pair = lo * n_src + hi
    ok &= pair == pair[edge_start][comp_of]
    # No parallel links (the same two records twice).
    n = len(labels)
    rec = np.minimum(el[edges], er[edges]) * n + np.maximum(el[edges], er[edges])
    order = np.lexsort((rec, comp_of))
    twice = np.zeros(len(edges), dtype=bool)
    twice[order[1:]] = (rec[order][1:] == rec[order][:-1]) & (
        comp_of[order][1:] == comp_of[order][:-1]
    )
    ok &= ~twice
    simple = np.logical_and.reduceat(ok, edge_start) if len(edges) else np.zeros(0, dtype=bool)
    if cannot:
        comp_index = {int(labels[el[edges[s]]]): i for i, s in enumerate(edge_start.tolist())}
        for x, y in cannot:
            if labels[x] == labels[y] and int(labels[x]) in comp_index:
                simple[comp_index[int(labels[x])]] = False
    return np.asarray(simple, dtype=bool)


def _greedy_matching(
    edges: np.ndarray,
    edge_start: np.ndarray,
    simple: np.ndarray,
    el: np.ndarray,
    er: np.ndarray,
    members_all: np.ndarray,
    first_of_part: np.ndarray,
    cut: np.ndarray,
) -> None:
    """The parts of the two-sided components (``simple``; see :func:`_two_sided`), all at
    once: each link, in order of trial, joins its two records if both are still alone,
    and is cut otherwise. Taken by rounds: a link that comes first among the links left at
    both its records joins them, and the links left at a joined record are cut (this is
    the sequential result: the links taken are the same). Writes each member's part
    (``first_of_part``, by position in ``members_all``) and the cut links (``cut``, by
    position in ``edges``)."""
    comp_of = np.repeat(np.arange(len(edge_start)), np.diff(np.append(edge_start, len(edges))))
    at = np.flatnonzero(simple[comp_of])
    if not len(at):
        return
    # Records numbered by their position among the members.
    where = np.argsort(members_all, kind="stable")
    ends = np.stack([el[edges[at]], er[edges[at]]])
    ends = where[np.searchsorted(members_all[where], ends)]
    taken = np.zeros(len(at), dtype=bool)
    joined = np.zeros(len(members_all), dtype=bool)
    left = np.arange(len(at))
    first = np.full(len(members_all), len(at), dtype=np.int64)
    while len(left):
        x, y = ends[0, left], ends[1, left]
        first[x] = len(at)
        first[y] = len(at)
        np.minimum.at(first, x, left)
        np.minimum.at(first, y, left)
        win = left[(first[x] == left) & (first[y] == left)]
        taken[win] = True
        joined[ends[:, win].reshape(-1)] = True
        left = left[~(joined[ends[0, left]] | joined[ends[1, left]])]
    cut[at[~taken]] = True
    x, y = ends[0, taken], ends[1, taken]
    first_of_part[x] = first_of_part[y] = np.minimum(x, y)


def _rebuild(
    comps: list[int],
    edges: np.ndarray,
    edge_start: np.ndarray,
    edge_end: np.ndarray,
    members_all: np.ndarray,
    member_start: np.ndarray,
    member_end: np.ndarray,
    el: np.ndarray,
    er: np.ndarray,
    ecodes: np.ndarray,
    src_codes: np.ndarray,
    limit_of: np.ndarray,
    cannot: set[tuple[int, int]],
    first_of_part: np.ndarray,
    cut: np.ndarray,
    splits: dict[int, dict[str, object]],
    result: ClusterResult,
) -> None:
    """The parts of the components ``comps`` (indexes of the components to rebuild), one by
    one: each link, in order of trial, is accepted if the merge it makes breaks no
    constraint (a must-link always is). Writes each member's part (``first_of_part``), the
    cut links (``cut``), the splits and the decision conflicts."""
    from networkx.utils import UnionFind  # only builds with such a component need it

    partners: dict[int, set[int]] = {}
    for a, b in cannot:
        partners.setdefault(a, set()).add(b)
        partners.setdefault(b, set()).add(a)
    el_list, er_list = el.tolist(), er.tolist()
    is_must = (ecodes == _MUST).tolist()
    src_list = src_codes.tolist()
    limit_list = limit_of.tolist()
    for c in comps:
        members = members_all[member_start[c] : member_end[c]].tolist()
        uf = UnionFind(members)
        counts: dict[int, dict[int, int]] = {m: {src_list[m]: 1} for m in members}
        sets: dict[int, set[int]] = {m: {m} for m in members} if partners else {}
        cut_edges: list[int] = []
        for i in range(int(edge_start[c]), int(edge_end[c])):
            e = int(edges[i])
            a, b = el_list[e], er_list[e]
            ra, rb = uf[a], uf[b]
            if ra == rb:
                continue
            edge_must = is_must[e]
            if partners and any(p in sets[rb] for m in sets[ra] for p in partners.get(m, ())):
                if edge_must:
                    result.decision_conflicts.append((a, b))
                cut_edges.append(e)
                cut[i] = True
                continue
            merged = dict(counts[ra])
            for s, k in counts[rb].items():
                merged[s] = merged.get(s, 0) + k
            too_many = any(limit_list[s] > 0 and k > limit_list[s] for s, k in merged.items())
            if too_many and not edge_must:
                cut_edges.append(e)
                cut[i] = True
                continue
            uf.union(a, b)
            root = uf[a]
            counts[root] = merged
            if partners:
                sets[root] = sets[ra] | sets[rb]
        roots: dict[int, int] = {}
        for i, m in enumerate(members, start=int(member_start[c])):
            first_of_part[i] = roots.setdefault(uf[m], i)
        if cut_edges:
            splits[c] = {"members": members, "parts": len(roots), "cut_links": cut_edges}


#: The components of a matching go to the solver in groups of about this many rows: its
#: work grows with the square of its rows (one call over every component of 1M records
#: per side took most of the clustering's time).
SOLVE_ROWS = 256


def _max_weight_matching(
    rows: np.ndarray, cols: np.ndarray, worth: np.ndarray, comp: np.ndarray | None = None
) -> np.ndarray:
    """Positions of the links (``rows[i]``–``cols[i]``, each worth ``worth[i] > 0``) that
    make the matching of largest total worth, exactly: a full minimum-cost matching
    (``scipy.sparse.csgraph.min_weight_full_bipartite_matching``, loaded with the
    components' module; ``scipy.optimize`` would take half a second to import) in which
    each row may instead take a column of its own, worth nothing.

    ``comp``: each link's component, where the links are a disjoint union of components
    whose rows are numbered in component order (a component's rows, and its columns,
    are consecutive numbers). The components are then matched apart, with the costs of
    one call over them all: where a side holds one record, the matching is its link of
    least cost, for all such components at once; the others go to the solver in groups
    of about :data:`SOLVE_ROWS` rows."""
    n_cols = int(cols.max()) + 1
    # Of parallel links, the most worth.
    order = np.lexsort((-worth, cols, rows))
    first = order[np.concatenate([[True], np.diff(rows[order] * n_cols + cols[order]) != 0])]
    top = float(worth.max()) + 1.0  # costs stay positive: a zero would read as no link
    r, c, cost = rows[first], cols[first], top - worth[first]
    g = np.zeros(len(first), dtype=np.int64) if comp is None else comp[first]
    start = run_starts(g)  # g ascends with the rows
    n_r = np.maximum.reduceat(r, start) - np.minimum.reduceat(r, start) + 1
    n_c = np.maximum.reduceat(c, start) - np.minimum.reduceat(c, start) + 1
    group = np.repeat(np.arange(len(start)), np.diff(np.append(start, len(g))))
    chosen = np.zeros(len(first), dtype=bool)
    # One record on a side: its link of least cost.
    single = ((n_r == 1) | (n_c == 1))[group]
    at = np.flatnonzero(single)
    if len(at):
        at = at[np.lexsort((cost[at], group[at]))]
        chosen[at[run_starts(group[at])]] = True
    # The others, by batches of whole components of about SOLVE_ROWS rows in all, their
    # rows and columns numbered from 0 in each batch.
    at = np.flatnonzero(~single)
    if not len(at):
        return first[chosen]
    row = np.concatenate([[0], np.cumsum(np.diff(r[at]) != 0)])  # r[at] ascends
    col = np.unique(c[at], return_inverse=True)[1].reshape(-1)
    solved_rows = np.where((n_r == 1) | (n_c == 1), 0, n_r)
    batch = (np.cumsum(solved_rows) - solved_rows)[group[at]] // SOLVE_ROWS
    bounds = np.append(run_starts(batch), len(at))
    for s, e in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        rr, cc = row[s:e] - row[s], col[s:e] - col[s:e].min()
        nr, nc = int(rr[-1]) + 1, int(cc.max()) + 1
        graph = csr_matrix(
            (
                np.concatenate([cost[at[s:e]], np.full(nr, top)]),
                (np.concatenate([rr, np.arange(nr)]), np.concatenate([cc, nc + np.arange(nr)])),
            ),
            shape=(nr, nc + nr),
        )
        match = min_weight_full_bipartite_matching(graph)[1]  # the column of each row
        chosen[at[s:e]] = match[rr] == cc
    return first[chosen]


#: The most that the tie-break among pairings of equal total adds to a record's links.
TIE = 1e-7


def tie_gain(row: np.ndarray, col: np.ndarray) -> np.ndarray:
    """A link's share of the tie-break, from its records' precedences (fractions in (0, 1)):
    their product (which the pairing of each side in key order makes largest), then,
    for pairings whose products sum alike, the left record's precedence, then the
    right one's (at most 1 + 2**-10 + 2**-20)."""
    return row * col + row / 1024 + col / 1048576


def _ranks_in_component(comp: np.ndarray, key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per link end (its component ``comp``, its record's ``key``): a number for its record,
    in (component, key) order, and its record's precedence among its component's
    records on that side, ``(count - i) / (count + 1)`` for the ``i``-th of ``count``
    from 0 (a fraction in (0, 1), largest for the first key)."""
    # (component, key) packed in one int64: both are below the number of records.
    base = int(key.max()) + 1 if len(key) else 1
    pairs, number = np.unique(comp.astype(np.int64) * base + key, return_inverse=True)
    number = number.reshape(-1)
    pair_comp = pairs // base
    first = np.searchsorted(pair_comp, pair_comp, side="left")
    count = np.searchsorted(pair_comp, pair_comp, side="right") - first
    rank = (count - (np.arange(len(pairs)) - first)) / (count + 1)
    return number, rank[number]


def _matching_ranks(
    edges: np.ndarray,
    worth: np.ndarray,
    comp: np.ndarray,
    el: np.ndarray,
    er: np.ndarray,
    src: np.ndarray,
    limit_of: np.ndarray,
    key: np.ndarray,
) -> np.ndarray:
    """Per link of the components to rebuild (``edges``; ``worth``: each one's weight above
    the threshold, infinite for a must-link; ``comp``: its component), the rank of the
    step that tries it: 0 for a must-link, then 1, 2, … for the pairwise matchings of its
    component by falling total, and the largest for the other links.

    For each pair of sources that may each hold one record of an entity, the matching of
    their records of largest total worth is found, for every component at once (they are
    disjoint: one matching of their union is each one's, :func:`_max_weight_matching`).
    With two such sources, the split is then that maximum-weight matching exactly; with
    more, it is a heuristic: the heaviest pairwise matchings decide first.

    Ties are broken by the records' keys (``key``: each record's rank in (source,
    record_id) order), so that the matching is one, whatever the solver: among pairings
    of equal total, the one pairing the records of each side in key order (the first
    with the first, …; with fewer on one side, the first keys) is chosen: each link gains
    :data:`TIE` times :func:`tie_gain` of its two records' precedences (a fraction in
    (0, 1) that falls with the record's key among its component's records of its
    source, :func:`_ranks_in_component`), far below any difference of weights that is
    not a tie. Equal totals of two pairwise matchings are ordered by the sources' names.
    """
    must = ~np.isfinite(worth)
    a, b = src[el[edges]], src[er[edges]]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    one_each = (limit_of[lo] == 1) & (limit_of[hi] == 1) & (lo != hi) & ~must
    n_src = len(limit_of)
    pair = np.where(one_each, lo * n_src + hi, -1)
    chosen = np.zeros(len(edges), dtype=bool)
    for p in np.unique(pair[one_each]).tolist():
        at = np.flatnonzero(pair == p)
        left = key[np.where(a[at] == p // n_src, el[edges[at]], er[edges[at]])]
        right = key[np.where(a[at] == p // n_src, er[edges[at]], el[edges[at]])]
        row_of, row_rank = _ranks_in_component(comp[at], left)
        col_of, col_rank = _ranks_in_component(comp[at], right)
        # A link of no worth still beats none; equal pairings go by the records' keys.
        gain = np.maximum(worth[at], 0.0) + 1e-6 + TIE * tie_gain(row_rank, col_rank)
        chosen[at[_max_weight_matching(row_of, col_of, gain, comp[at])]] = True
    # Each component's matchings, heaviest first.
    at = np.flatnonzero(chosen)
    groups, group_of = np.unique(comp[at] * (n_src * n_src) + pair[at], return_inverse=True)
    total = np.bincount(group_of, weights=worth[at], minlength=len(groups))
    by_total = np.lexsort((-total, groups // (n_src * n_src)))
    comp_of_group = groups[by_total] // (n_src * n_src)  # ascending
    first_of_comp = np.searchsorted(comp_of_group, comp_of_group, side="left")
    step = np.empty(len(groups), dtype=np.int64)
    step[by_total] = np.arange(len(groups)) - first_of_comp + 1
    ranks = np.full(len(edges), n_src * n_src + 1, dtype=np.int64)
    ranks[must] = 0
    ranks[at] = step[group_of]
    return ranks


def cluster_records(
    scored: pd.DataFrame,
    frame: pd.DataFrame,
    conflicts: pd.DataFrame,
    decisions: Decisions,
    *,
    limits: dict[str, int],
    threshold: float,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The pairs with their ``status``, the records with their ``cluster``, and the
    conflicts with the clusters' splits: new frames sharing their inputs' columns.
    Ties are broken by the records' (source, record_id) keys, whatever their order."""
    result = cluster(
        len(frame),
        frame["source"].to_numpy(),
        limits,
        scored,
        threshold,
        must_link=decisions.must,
        cannot_link=decisions.cannot,
        record_ids=frame["record_id"],
    )
    return cluster_outputs(result, scored, frame, conflicts)


def cluster_outputs(
    result: ClusterResult, scored: pd.DataFrame, frame: pd.DataFrame, conflicts: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The outputs of :func:`cluster_records` from the clustering's ``result`` (however a
    runner computed it)."""
    pairs = scored.assign(status=result.status)
    records = frame.assign(cluster=result.labels)
    conflicts = pd.concat(
        [conflicts, split_conflicts(result.splits, result.decision_conflicts, pairs, records)],
        ignore_index=True,
    )
    return pairs, records, conflicts
