"""Survivorship: the published ``records`` in (source, record_id) order with how each joined
its entity, and each entity's canonical values chosen among its members."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa

from crosswalk.stages.cluster import LINKED, MUST
from crosswalk.stages.kernel.codes import pack, run_starts
from crosswalk.stages.kernel.text import json_objects
from crosswalk.vocabulary import ENTITY_FIELDS, NID_PREFIX, RECORD_METHODS


class LinkedRecords(Protocol):
    """What :func:`records_table` reads of a linkage (``crosswalk.Linkage``)."""

    #: The normalized records, positions 0..n-1.
    records: pd.DataFrame
    #: The kept pairs: l, r, match_probability, status, method.
    pairs: pd.DataFrame


def id_schemes(recs: pd.DataFrame) -> list[str]:
    return sorted(c[len(NID_PREFIX) :] for c in recs.columns if c.startswith(NID_PREFIX))


def record_columns_in_key_order(frame: pd.DataFrame, by_key: np.ndarray) -> pd.DataFrame:
    """The columns of the published ``records`` table that the linkage does not decide
    (each record's fields and identifiers), with ``n_class`` for the survivorship, for
    normalized records ``frame`` taken in (source, record_id) order (``by_key``)."""
    wanted = [
        "source",
        "record_id",
        "name",
        "address",
        "city",
        "n_state",
        "n_zip",
        "zip",
        "county",
        "phone",
        "facility_type",
        "n_lat",
        "n_lon",
        "other_names",
        "n_class",
        *(c for c in frame.columns if c.startswith(NID_PREFIX)),
    ]
    recs = frame[wanted].take(by_key)  # only the columns taken below
    out = pd.DataFrame(
        {
            "source": recs["source"],
            "record_id": recs["record_id"],
            "name": recs["name"],
            "address": recs["address"],
            "city": recs["city"],
            "state": recs["n_state"],
            "zip": recs["n_zip"].fillna(recs["zip"]),
            "county": recs["county"],
            "phone": recs["phone"],
            "facility_type": recs["facility_type"],
            "latitude": recs["n_lat"],
            "longitude": recs["n_lon"],
            "other_names": recs["other_names"],
            "identifiers": json_objects(recs, id_schemes(recs)),
            "n_class": recs["n_class"],
        }
    )
    return out.reset_index(drop=True)


def records_table(
    linkage: LinkedRecords, by_key: np.ndarray, columns: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The published ``records`` table in (source, record_id) order (``by_key``), without
    its ``entity_id`` column, with ``n_class`` and ``n_method`` (a position in
    :data:`RECORD_METHODS`) for the survivorship: each record's fields,
    identifiers and strongest link. ``columns``: its
    :func:`record_columns_in_key_order`, where the caller has them."""
    if columns is None:
        columns = record_columns_in_key_order(linkage.records, by_key)
    rec_prob, method = strongest_links(linkage.pairs, len(linkage.records))
    records = columns.copy(deep=False)
    records["match_probability"] = rec_prob[by_key]
    codes = method[by_key]
    names = pa.array(RECORD_METHODS, type=pa.large_string())
    records["method"] = pd.arrays.ArrowStringArray(names.take(pa.array(codes)))
    records["n_method"] = codes  # for the survivorship: the strongest method is the least
    return records


def strongest_links(
    pairs: pd.DataFrame, n: int
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Per record position: the probability of its strongest kept link (NaN without one) and
    how it joined its entity, as a position in :data:`RECORD_METHODS` (identifier when a kept
    link is by identifier, else fuzzy or singleton)."""
    kept = pairs["status"].isin([LINKED, MUST]).to_numpy()
    ends = np.concatenate([pairs["l"].to_numpy()[kept], pairs["r"].to_numpy()[kept]])
    p = pairs["match_probability"].to_numpy(dtype=np.float64)[kept]
    by_id = (pairs["method"] == "identifier").to_numpy(dtype=bool, na_value=False)[kept]
    rec_prob = np.full(n, np.nan)
    np.fmax.at(rec_prob, ends, np.concatenate([p, p]))
    method = np.full(n, RECORD_METHODS.index("singleton"), dtype=np.int8)
    method[ends] = RECORD_METHODS.index("fuzzy")
    method[ends[np.concatenate([by_id, by_id])]] = RECORD_METHODS.index("identifier")
    return rec_prob, method


def survivorship(
    records: pd.DataFrame, source_order: list[str], entity_codes: np.ndarray, n_ent: int
) -> pd.DataFrame:
    """Canonical values per entity: for each field, the first non-empty value among its members,
    taking members in the configured source order, then the most complete record first, then
    by (source, record id). ``records`` are in (source, record_id) order; ``entity_codes``:
    each record's entity, numbered ``0..n_ent-1``: the rows of the result (without the
    entity id)."""
    fields = [*ENTITY_FIELDS, "n_class"]
    # The members' order as integer keys: entity, source rank, fewest missing fields, then
    # (source, record id); the same lexicographic string order as sorting the text.
    source_codes, source_names = pd.factorize(records["source"])
    rank_of = {s: i for i, s in enumerate(source_order)}
    source_rank = np.array(
        [rank_of.get(s, len(source_order)) for s in source_names], dtype=np.int64
    )
    rank = source_rank[source_codes]
    present = {f: records[f].notna().to_numpy() for f in fields}
    filled = np.sum(list(present.values()), axis=0) if fields else np.zeros(len(records))
    order = np.lexsort((np.arange(len(records)), -filled, rank, entity_codes))
    ent = entity_codes[order]
    # First non-empty value per field in that order: one vectorized pass per field.
    out = pd.DataFrame(index=pd.RangeIndex(n_ent))
    for f in fields:
        at = order[present[f][order]]  # members with a value, in order
        starts = run_starts(entity_codes[at])
        source_pos = np.full(n_ent, -1, dtype=np.int64)
        source_pos[entity_codes[at[starts]]] = at[starts]
        values = records[f].array.take(source_pos, allow_fill=True)
        out["facility_class" if f == "n_class" else f] = values
    size = np.bincount(ent, minlength=n_ent)
    # Sources held, as a sorted comma-separated list: one text per distinct set of sources.
    by_name = sorted(range(len(source_names)), key=lambda i: str(source_names[i]))
    holds = np.zeros((n_ent, len(by_name)), dtype=bool)
    for column, code in enumerate(by_name):
        holds[entity_codes[source_codes == code], column] = True
    _, first, which = np.unique(
        pack(((holds[:, j].astype(np.int64), 2) for j in range(len(by_name))), n_ent),
        return_index=True,
        return_inverse=True,
    )
    set_text = [
        ",".join(str(source_names[by_name[j]]) for j in np.flatnonzero(holds[i])) for i in first
    ]
    srcs = pd.Series(np.asarray(set_text, dtype=object)[which.reshape(-1)])
    # The strongest way a member joined (identifier, then fuzzy, then singleton).
    best = np.full(n_ent, len(RECORD_METHODS) - 1, dtype=np.int8)
    np.minimum.at(best, entity_codes, records["n_method"].to_numpy())
    out["member_count"] = size
    out["sources"] = srcs.to_numpy()
    out["method"] = np.array(RECORD_METHODS, dtype=object)[best]
    return out


@dataclass
class _Linked:
    """What :func:`records_table` reads of a linkage, from the plan's datasets."""

    records: pd.DataFrame
    pairs: pd.DataFrame


def records_table_of(
    records: pd.DataFrame, pairs: pd.DataFrame, by_key: np.ndarray, columns: pd.DataFrame
) -> pd.DataFrame:
    """The plan's records-table stage: :func:`records_table` of the clustered ``records``
    and their ``pairs``."""
    return records_table(_Linked(records, pairs), by_key, columns)
