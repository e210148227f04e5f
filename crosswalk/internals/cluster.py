"""Clustering stage: scored links in, entities (clusters of records) out.

1. Links at or above the threshold, plus must-link decisions, minus
   cannot-link decisions, form a graph whose connected components are the
   candidate entities.
2. A component that breaks a constraint — more records of one source than
   the source allows (by default one), or a cannot-link pair inside — is
   rebuilt greedily from its strongest links: must-links first, then links
   by falling weight, each accepted only if the merge it makes breaks no
   constraint. Refused links are *cut*, and the split is reported.

Components come from ``scipy.sparse.csgraph`` (linear time); only the few
components that break a constraint are rebuilt edge by edge.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from networkx.utils import UnionFind
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

LINKED, CUT, BELOW, MUST, CANNOT = "linked", "cut", "below_threshold", "must_link", "cannot_link"


@dataclass
class ClusterResult:
    labels: np.ndarray  # cluster label per record position
    status: np.ndarray  # status per link row (object array of strings)
    splits: list[dict[str, object]] = field(default_factory=list)
    decision_conflicts: list[tuple[int, int]] = field(default_factory=list)


def cluster(
    n_records: int,
    sources: np.ndarray,
    limits: dict[str, int],
    links: pd.DataFrame,
    threshold: float,
    must_link: list[tuple[int, int]] | None = None,
    cannot_link: list[tuple[int, int]] | None = None,
) -> ClusterResult:
    """Cluster records ``0..n_records-1``.

    ``links`` has columns ``l``, ``r``, ``match_weight``, ``match_probability``.
    ``limits`` maps a source to the most records it may have in one entity
    (0 = no limit). Returns a label per record and a status per link.
    """
    must = {(min(a, b), max(a, b)) for a, b in (must_link or []) if a != b}
    cannot = {(min(a, b), max(a, b)) for a, b in (cannot_link or []) if a != b}
    lpos = links["l"].to_numpy(dtype="int64")
    rpos = links["r"].to_numpy(dtype="int64")
    pair_keys = list(zip(lpos.tolist(), rpos.tolist(), strict=True)) if (must or cannot) else []
    status = np.where(links["match_probability"].to_numpy() >= threshold, LINKED, BELOW).astype(
        object
    )
    if cannot:
        is_cannot = np.fromiter((k in cannot for k in pair_keys), dtype=bool, count=len(pair_keys))
        status[is_cannot] = CANNOT
    if must:
        is_must = np.fromiter((k in must for k in pair_keys), dtype=bool, count=len(pair_keys))
        status[is_must & (status != CANNOT)] = MUST
    # Must-link pairs that were never candidates still join.
    extra = sorted(must - set(pair_keys)) if must else []
    el = np.concatenate([lpos, np.array([a for a, _ in extra], dtype="int64")])
    er = np.concatenate([rpos, np.array([b for _, b in extra], dtype="int64")])
    weight = np.concatenate(
        [links["match_weight"].to_numpy(dtype="float64"), np.full(len(extra), np.inf)]
    )
    estatus = np.concatenate([status, np.array([MUST] * len(extra), dtype=object)])
    active = (estatus == LINKED) | (estatus == MUST)
    graph = coo_matrix(
        (np.ones(int(active.sum())), (el[active], er[active])), shape=(n_records, n_records)
    )
    _, labels = connected_components(graph, directed=False)
    labels = labels.astype("int64")

    src_codes, src_names = pd.factorize(pd.Series(sources))
    limit_of = np.array([limits.get(str(s), 1) for s in src_names], dtype="int64")
    # Components breaking a per-source limit.
    comp_src = pd.DataFrame({"c": labels, "s": src_codes}).value_counts()
    over = comp_src[comp_src.to_numpy() > limit_of[comp_src.index.get_level_values("s")]]
    over = over[limit_of[over.index.get_level_values("s")] > 0]
    bad = set(over.index.get_level_values("c").tolist())
    for a, b in cannot:
        if labels[a] == labels[b]:
            bad.add(int(labels[a]))
    result = ClusterResult(labels=labels, status=estatus[: len(links)].copy())
    if not bad:
        return result

    comp_edges = np.flatnonzero(active & np.isin(labels[el], list(bad)))
    by_comp: dict[int, list[int]] = defaultdict(list)
    for e in comp_edges.tolist():
        by_comp[int(labels[el[e]])].append(e)
    next_label = int(labels.max()) + 1
    partners: dict[int, set[int]] = defaultdict(set)
    for a, b in cannot:
        partners[a].add(b)
        partners[b].add(a)
    for comp, edges in sorted(by_comp.items()):
        members = np.flatnonzero(labels == comp)
        uf = UnionFind(members.tolist())
        counts: dict[int, dict[int, int]] = {int(m): {int(src_codes[m]): 1} for m in members}
        sets: dict[int, set[int]] = {int(m): {int(m)} for m in members}
        edges.sort(key=lambda e: (estatus[e] != MUST, -weight[e]))
        cut_edges: list[int] = []
        for e in edges:
            a, b = int(el[e]), int(er[e])
            ra, rb = uf[a], uf[b]
            if ra == rb:
                continue
            if any(p in sets[rb] for m in sets[ra] for p in partners.get(m, ())):
                if estatus[e] == MUST:
                    result.decision_conflicts.append((a, b))
                cut_edges.append(e)
                continue
            merged = dict(counts[ra])
            for s, k in counts[rb].items():
                merged[s] = merged.get(s, 0) + k
            too_many = any(limit_of[s] > 0 and k > limit_of[s] for s, k in merged.items())
            if too_many and estatus[e] != MUST:
                cut_edges.append(e)
                continue
            uf.union(a, b)
            root = uf[a]
            counts[root] = merged
            sets[root] = sets[ra] | sets[rb]
        for e in cut_edges:
            if e < len(links) and result.status[e] == LINKED:
                result.status[e] = CUT
        roots: dict[int, int] = {}
        for m in members.tolist():
            root = uf[m]
            if root not in roots:
                roots[root] = next_label
                next_label += 1
            result.labels[m] = roots[root]
        if cut_edges:
            result.splits.append(
                {"members": members.tolist(), "parts": len(roots), "cut_links": cut_edges}
            )
    return result
