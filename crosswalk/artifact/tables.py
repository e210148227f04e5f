"""The published tables' shapes: what the build publishes of a linkage, its sources and
its entity ids.

The tables that do not depend on the entity ids (:class:`PreparedTables`) are made while
the ids are assigned (stages of :func:`crosswalk.plans.build_plan`);
:func:`published_tables` completes them with the ids. The columns' names and types are
the schema's (:mod:`crosswalk.artifact.schema`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from crosswalk.artifact import schema
from crosswalk.ids import IdAssignment
from crosswalk.sources import SourceInfo
from crosswalk.stages.cluster import CUT, LINKED, MUST
from crosswalk.stages.kernel.codes import dense_labels
from crosswalk.stages.survivorship import id_schemes, survivorship
from crosswalk.vocabulary import NID_PREFIX


class Linked(Protocol):
    """What the published tables read of a linkage (``crosswalk.Linkage``)."""

    #: The normalized records, positions 0..n-1, with ``cluster`` and ``entity_id``.
    records: pd.DataFrame
    #: The kept pairs, with their ``status`` and ``method``.
    pairs: pd.DataFrame
    #: Identifier columns measured to name one record per source.
    unique_schemes: list[str]
    #: The number of candidate pairs blocking found.
    candidate_pairs: int


def sources_table(info: list[SourceInfo]) -> pd.DataFrame:
    """The published ``sources`` table: each source file's provenance."""
    return pd.DataFrame(
        [
            {
                "name": s.name,
                "publisher": s.publisher,
                "title": s.title,
                "extracted": s.extracted,
                "path": Path(s.path).name,
                "sha256": s.sha256,
                "rows": s.rows,
            }
            for s in info
        ]
    )


@dataclass
class PreparedTables:
    """The published tables' contents that do not depend on the entity ids, made from a
    linkage's clusters (the stages :func:`crosswalk.plans.build_plan` adds) while the ids
    are assigned."""

    #: :func:`~crosswalk.stages.survivorship.records_table`, in (source, record_id) order.
    records: pd.DataFrame
    #: The records' positions in that order.
    by_key: np.ndarray
    #: The clusters, ascending.
    clusters: np.ndarray
    #: The ``entities`` table without ``entity_id``, one row per cluster, in ``clusters`` order.
    entities: pd.DataFrame
    #: The ``links`` table without ``entity_id``.
    links: pd.DataFrame
    #: Per link, the position of its left record where the link joins an entity, else -1.
    link_records: np.ndarray
    conflicts: pd.DataFrame


def prepare_entities(
    records: pd.DataFrame, table: pd.DataFrame, by_key: np.ndarray, *, sources: list[str]
) -> tuple[np.ndarray, pd.DataFrame]:
    """The clusters, ascending (numbered as the ids number them,
    ``IdAssignment.clusters``), and their entities, from the records table ``table``."""
    clusters, members = dense_labels(records["cluster"].to_numpy(dtype=np.int64))
    return clusters, survivorship(table, sources, members[by_key], len(clusters))


def with_entity_ids(records: pd.DataFrame, by_key: np.ndarray, linkage: Linked) -> pd.DataFrame:
    """The prepared records table (:func:`~crosswalk.stages.survivorship.records_table`)
    with its ``entity_id`` column, from the linkage's records: a new frame (sharing the
    columns), since other threads may still be reading the prepared one (the
    survivorship)."""
    out = records.copy(deep=False)
    out.insert(2, "entity_id", linkage.records["entity_id"].array.take(by_key))
    return out


def prepare_links(
    recs: pd.DataFrame,
    pairs: pd.DataFrame,
    c: pd.DataFrame,
    explanations: pd.Series,
    *,
    floor: float,
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """The ``links`` table without ``entity_id``, each link's left record where it joins
    an entity (else -1), and the ``conflicts`` table, from the clustered records, their
    pairs, conflicts and the pairs' explanations."""
    # Which links to publish: kept, cut, decided, uncertain-or-better, those sharing an
    # identifier, and under the floor the pairs of two records that have no link at all
    # (scoring keeps only the best candidates of a record there: plans.reach).
    joined_at = pairs["status"].isin([LINKED, MUST]).to_numpy()
    has_link = np.zeros(len(recs), dtype=bool)
    has_link[pairs["l"].to_numpy(dtype=np.int64)[joined_at]] = True
    has_link[pairs["r"].to_numpy(dtype=np.int64)[joined_at]] = True
    alone = (
        ~has_link[pairs["l"].to_numpy(dtype=np.int64)]
        & ~has_link[pairs["r"].to_numpy(dtype=np.int64)]
    )
    publish_mask = (
        (pairs["status"] != "below_threshold")
        | (pairs["match_probability"] >= floor)
        | (pairs["method"] == "identifier")
        | pd.Series(alone, index=pairs.index)
    )
    shown = ["l", "r", "match_probability", "match_weight", "method", "status"]
    pub = pairs[shown][publish_mask].reset_index(drop=True)
    left, right = pub["l"].to_numpy(dtype=np.int64), pub["r"].to_numpy(dtype=np.int64)
    links = pd.DataFrame(
        {
            "link_id": np.arange(1, len(pub) + 1),
            "source_l": recs["source"].array.take(left),
            "record_id_l": recs["record_id"].array.take(left),
            "source_r": recs["source"].array.take(right),
            "record_id_r": recs["record_id"].array.take(right),
            "match_probability": pub["match_probability"].round(6),
            "match_weight": pub["match_weight"].round(4),
            "method": pub["method"],
            "status": pub["status"],
            "explanation": explanations[publish_mask.to_numpy()].reset_index(drop=True),
        }
    )
    joined = pub["status"].isin([LINKED, MUST]).to_numpy()
    cl, cr = c["l"].to_numpy(dtype=np.int64), c["r"].to_numpy(dtype=np.int64)
    conflicts = pd.DataFrame(
        {
            "conflict_id": np.arange(1, len(c) + 1),
            "kind": c["kind"],
            "source_l": recs["source"].array.take(cl),
            "record_id_l": recs["record_id"].array.take(cl),
            "source_r": recs["source"].array.take(cr),
            "record_id_r": recs["record_id"].array.take(cr),
            "scheme": c["scheme"],
            "match_probability": c["match_probability"],
            "details": [json.dumps(d, sort_keys=True) for d in c["details"]],
        }
    )
    return links, np.where(joined, left, -1), conflicts


def published_tables(
    linkage: Linked,
    info: list[SourceInfo],
    prepared: PreparedTables,
    assignment: IdAssignment,
    records: pd.DataFrame | None = None,
) -> dict[str, pd.DataFrame]:
    """The published tables of a linkage whose records carry entity ids (``assignment``),
    completing ``prepared`` with the ids: its frames gain their ``entity_id`` columns and
    become the tables. The ``entities`` rows are in the order of the clusters
    (:meth:`~crosswalk.ids.IdAssignment.cluster_order` sorts them by id). ``records``: the
    records table with its ids (:func:`with_entity_ids`), where the caller made it."""
    recs = linkage.records
    schemes = id_schemes(recs)
    identifiers = pd.concat(
        [
            pd.DataFrame(
                {
                    "scheme": s,
                    "value": recs[NID_PREFIX + s],
                    "source": recs["source"],
                    "record_id": recs["record_id"],
                    "entity_id": recs["entity_id"],
                }
            ).dropna(subset=["value"])
            for s in schemes
        ]
        or [pd.DataFrame(columns=schema.IDENTIFIERS.column_names)],
        ignore_index=True,
    ).drop_duplicates(subset=["scheme", "value", "source", "record_id"])
    if records is None:
        records = with_entity_ids(prepared.records, prepared.by_key, linkage)
    # The prepared entities follow the clusters, ascending, as the assignment's ids do.
    assert np.array_equal(prepared.clusters, assignment.clusters)
    # New frames sharing the prepared ones' columns: the prepared frames are not changed.
    entities = prepared.entities.copy(deep=False)
    entities.insert(0, "entity_id", pd.array(assignment.ids, dtype="str"))
    links = prepared.links.copy(deep=False)
    at = prepared.link_records
    entity = recs["entity_id"].array.take(np.where(at >= 0, at, 0))
    links.insert(5, "entity_id", pd.Series(entity).where(at >= 0))
    return {
        "records": records,
        "entities": entities,
        "identifiers": identifiers,
        "links": links,
        "conflicts": prepared.conflicts,
        "sources": sources_table(info),
    }


def summary_counts(
    linkage: Linked, tables: dict[str, pd.DataFrame], info: list[SourceInfo]
) -> dict[str, Any]:
    pairs = linkage.pairs
    kept_method = pairs["method"][pairs["status"].isin([LINKED, MUST])]
    counts: dict[str, Any] = {
        "records": {s.name: s.rows for s in info},
        "entities": len(tables["entities"]),
        "entities_by_sources": _counted(tables["entities"]["sources"]),
        "candidate_pairs": linkage.candidate_pairs,
        "links": {
            "identifier": int((kept_method == "identifier").sum()),
            "fuzzy": int((kept_method == "fuzzy").sum()),
        },
        "records_by_method": tables["records"]["method"].value_counts().to_dict(),
        "cut_links": int((pairs["status"] == CUT).sum()),
        "conflicts": tables["conflicts"]["kind"].value_counts().to_dict(),
        "identifier_agreement": identifier_agreement(linkage.records, linkage.unique_schemes),
    }
    return counts


def _counted(values: pd.Series) -> dict[str, int]:
    """Each value's count, most frequent first, ties by value: the same whatever the
    order of the rows."""
    counts = values.value_counts()
    ordered = sorted(counts.items(), key=lambda item: (-int(item[1]), str(item[0])))
    return {str(k): int(v) for k, v in ordered}


def identifier_agreement(
    records: pd.DataFrame, unique_schemes: list[str]
) -> dict[str, dict[str, float]]:
    """For each facility-unique identifier scheme carried by two or more sources: of the
    cross-source record pairs sharing a value, how many ended in the same entity. (Group
    identifiers, such as a license covering several sites, are not expected to agree.)"""
    out: dict[str, dict[str, float]] = {}
    for col in unique_schemes:
        sub = records.loc[records[col].notna(), ["source", col, "cluster"]]
        if sub["source"].nunique() < 2:
            continue
        pairs = sub.merge(sub, on=col, suffixes=("_l", "_r"))
        pairs = pairs[pairs["source_l"] < pairs["source_r"]]
        if pairs.empty:
            continue
        same = int((pairs["cluster_l"] == pairs["cluster_r"]).sum())
        out[col[len(NID_PREFIX) :]] = {
            "pairs": len(pairs),
            "same_entity": same,
            "share": round(same / len(pairs), 4),
        }
    return out
