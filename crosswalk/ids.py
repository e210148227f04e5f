"""Canonical entity ids that survive rebuilds.

An id is opaque: the prefix ``F`` and a Crockford base32 counter of at least
five digits, e.g. ``F00001`` (``docs/releases.md``). The first build mints one
id per cluster. Every later build matches its clusters to the previous
release's entities by their members, the ``(source, record_id)`` pairs:

* An entity whose members are unchanged, or have only grown, keeps its id.
* Two or more entities that merge keep the id of the one contributing the most
  members to the merged cluster (on a tie, the older id: the smaller counter).
  The other ids retire with a redirect (``merged_into``) to the survivor.
* An entity that splits keeps its id on its largest part; the other parts get
  new ids (``split_from``).
* An entity retires (``retired``) only when none of its members is left.
* A retired id remembers its last members (the records it held when it
  retired). When most of them are in a cluster that no live id keeps, that
  cluster takes the id back (``revived``) instead of a new id; when several
  retired ids could, the one with the most records there wins (on a tie, the
  older id).
* A retired id redirects to the entity that holds most of its last members
  now, recomputed at every build, or to nothing when none is left.
* An id is minted once: the counter is persisted with every release, and an
  id names no other entity than the one it comes back to.

All of the rules for live ids are one rule: every (previous entity, new
cluster) pair that shares members is an edge weighted by the number of shared
members, and ids go to clusters by a greedy maximum matching over the edges
in a strict order (more shared members first, then the older id, then a
cluster that no retired id would take back before one that one would, then
the cluster's smallest member). The matching is computed with whole-table
pandas operations in rounds of "locally dominant" edges, which gives exactly
the greedy result. Review decisions need no special case: they change
clusters, and the clusters are matched like any other.
"""

from __future__ import annotations

import json
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crosswalk.artifact.reader import connect
from crosswalk.artifact.schema import CHANGE_COLUMNS, MEMBER_COLUMNS, RETIRED_COLUMNS
from crosswalk.errors import BuildError, ReleaseError
from crosswalk.stages.kernel.codes import dense_labels, key_order, ranks, sort_order

#: Prefix of every entity id.
PREFIX = "F"
#: Minimum number of base32 digits after the prefix.
WIDTH = 5
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32, in ASCII order
_VALUE = {ch: i for i, ch in enumerate(_ALPHABET)}


def format_id(n: int, prefix: str = PREFIX, width: int = WIDTH) -> str:
    """The id of counter value ``n`` (``n >= 1``): prefix plus zero-padded base32."""
    if n < 0:
        raise ValueError(f"id counter must not be negative, got {n}")
    digits = []
    while n:
        n, r = divmod(n, 32)
        digits.append(_ALPHABET[r])
    return prefix + "".join(reversed(digits)).rjust(width, "0")


def parse_id(entity_id: str, prefix: str = PREFIX) -> int:
    """The counter value of an id made by :func:`format_id`; ``ValueError`` if malformed."""
    if not entity_id.startswith(prefix) or len(entity_id) <= len(prefix):
        raise ValueError(f"not an entity id: {entity_id!r}")
    n = 0
    for ch in entity_id[len(prefix) :].upper():
        if ch not in _VALUE:
            raise ValueError(f"not an entity id: {entity_id!r}")
        n = n * 32 + _VALUE[ch]
    return n


def format_ids(
    numbers: np.ndarray[Any, Any], prefix: str = PREFIX, width: int = WIDTH
) -> list[str]:
    """:func:`format_id` over an array of counters, without a Python loop per id."""
    values = np.asarray(numbers, dtype=np.int64)
    if len(values) == 0:
        return []
    if values.min() < 0:
        raise ValueError("id counters must not be negative")
    width_all = int(max(width, _ndigits(values).max())) + len(prefix)
    out = np.empty(len(values), dtype=f"U{width_all}")
    ndigits = np.maximum(width, _ndigits(values))
    for length in np.unique(ndigits):
        mask = ndigits == length
        chars = _digit_chars(values[mask], int(length))
        text = chars.view(f"S{int(length)}").ravel().astype(str)
        out[mask] = np.char.add(prefix, text)
    return list(out.tolist())


def _digit_chars(values: np.ndarray[Any, Any], length: int) -> np.ndarray[Any, Any]:
    """The base32 digits of non-negative counters, ``length`` of them zero-padded on the
    left, as ASCII bytes: one row per counter."""
    alphabet = np.frombuffer(_ALPHABET.encode("ascii"), dtype=np.uint8)
    chars = np.empty((len(values), length), dtype=np.uint8)
    rest = values.copy()
    for pos in range(length - 1, -1, -1):
        chars[:, pos] = alphabet[rest % 32]
        rest //= 32
    return chars


def id_array(numbers: np.ndarray[Any, Any], prefix: str = PREFIX) -> pa.Array:
    """:func:`format_ids` as an Arrow text array, built from bytes where every id has
    :data:`WIDTH` digits (no Python string per id)."""
    values = np.asarray(numbers, dtype=np.int64)
    if not len(values) or values.min() < 0 or values.max() >= 32**WIDTH:
        return pa.array(format_ids(values, prefix), type=pa.large_string())
    head = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    chars = np.empty((len(values), len(head) + WIDTH), dtype=np.uint8)
    chars[:, : len(head)] = head
    chars[:, len(head) :] = _digit_chars(values, WIDTH)
    width = chars.shape[1]
    offsets = np.arange(0, width * (len(values) + 1), width, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(
        len(values), pa.py_buffer(offsets), pa.py_buffer(chars.tobytes())
    )


def _ndigits(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    digits = np.ones(len(values), dtype=np.int64)
    rest = values // 32
    while (rest > 0).any():
        digits += rest > 0
        rest //= 32
    return digits


def parse_ids(ids: Any, prefix: str = PREFIX) -> np.ndarray[Any, Any]:
    """:func:`parse_id` over a sequence of ids, vectorized; ``ValueError`` on a malformed id."""
    values = pd.Series(ids, dtype=object) if not isinstance(ids, pd.Series) else ids
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    codes, uniques = pd.factorize(values)
    if (codes < 0).any():
        raise ValueError("entity ids must not be missing")
    raw = np.asarray(uniques, dtype=object).astype(str).astype(bytes)
    width = raw.dtype.itemsize
    grid = raw.view(np.uint8).reshape(len(raw), width)
    head = len(prefix.encode("ascii"))
    lookup = np.full(256, -1, dtype=np.int64)
    lookup[np.frombuffer(_ALPHABET.encode("ascii"), dtype=np.uint8)] = np.arange(32)
    lookup[0] = -2  # padding after the end of a shorter id
    digits = lookup[grid[:, head:]] if width > head else np.full((len(raw), 1), -1)
    prefix_ok = (grid[:, :head] == np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)).all(
        axis=1
    )
    pad = digits == -2
    # valid: right prefix, at least one digit, only digits before the padding
    first_pad = np.where(pad.any(axis=1), pad.argmax(axis=1), digits.shape[1])
    ok = prefix_ok & (first_pad > 0) & ~(digits == -1).any(axis=1)
    ok &= pad.sum(axis=1) == digits.shape[1] - first_pad
    if not ok.all():
        bad = uniques[int(np.argmin(ok))]
        raise ValueError(f"not an entity id: {bad!r}")
    number = np.zeros(len(raw), dtype=np.int64)
    for col in range(digits.shape[1]):
        d = digits[:, col]
        number = np.where(d >= 0, number * 32 + np.maximum(d, 0), number)
    return number[codes]


def _empty(columns: tuple[str, ...] | list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})


@dataclass
class IdState:
    """What id assignment carries from one release to the next.

    ``members`` holds ``entity_id, source, record_id`` for every record;
    ``retired`` holds every retired id (the ``retired_ids`` table);
    ``retired_members`` the last members of the retired ids (``retired_members``;
    ids retired by a release written before that table existed have none);
    ``counter`` is the last id number minted; ``changes`` are this build's
    changes against ``previous_release`` (the version the ids were carried
    from, ``None`` on a first build); ``release`` is the version this state
    was published as, once it is.
    """

    members: pd.DataFrame = field(default_factory=lambda: _empty(MEMBER_COLUMNS))
    counter: int = 0
    retired: pd.DataFrame = field(default_factory=lambda: _empty(RETIRED_COLUMNS))
    retired_members: pd.DataFrame = field(default_factory=lambda: _empty(MEMBER_COLUMNS))
    changes: pd.DataFrame = field(default_factory=lambda: _empty(CHANGE_COLUMNS))
    previous_release: str | None = None
    release: str | None = None


@dataclass
class IdAssignment:
    """The result of :func:`assign_ids`."""

    clusters: np.ndarray  # the clusters, ascending
    counters: np.ndarray  # each cluster's id counter
    ids: pa.Array  # each cluster's entity id
    member_entities: np.ndarray  # per row of ``state.members``: its cluster's position
    changes: pd.DataFrame
    state: IdState

    @property
    def entity_of_cluster(self) -> dict[int, str]:
        """Each cluster's entity id."""
        return dict(zip(self.clusters.tolist(), self.ids.to_pylist(), strict=True))

    def cluster_order(self) -> np.ndarray:
        """The positions of the clusters (in ``clusters``) in their entity ids' text order:
        the order of their counters while the ids have one width, else of the text."""
        if len(self.counters) and int(self.counters.max()) >= 32**WIDTH:
            return np.asarray(pc.sort_indices(self.ids), dtype=np.int64)
        return np.argsort(self.counters, kind="stable")


# --------------------------------------------------------------------------- loading


def load_state(previous: Path | None) -> IdState | None:
    """The id state of a previous release's ``crosswalk.sqlite`` (``None`` for no previous).

    Reads the ``records`` table (members), ``retired_ids``, ``retired_members`` and
    ``id_state``. A release written before ``retired_members`` existed gets the last
    members of its retired ids from the releases beside it
    (:func:`_recover_last_members`).
    The counter is the larger of the stored counter and the largest id seen,
    so a database written without ``id_state`` still never has its ids reused.
    """
    if previous is None:
        return None
    path = Path(previous)
    if not path.is_file():
        raise ReleaseError(
            f"{path}: the previous release's crosswalk.sqlite does not exist. "
            "Fix: pass the releases directory that holds it, or build without --releases."
        )
    conn = connect(path, immutable=True)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "records" not in tables:
            raise ReleaseError(f"{path}: no records table; this is not a crosswalk database.")
        members = pd.read_sql_query("SELECT entity_id, source, record_id FROM records", conn)
        if "retired_ids" in tables:
            retired = pd.read_sql_query(
                f"SELECT {', '.join(RETIRED_COLUMNS)} FROM retired_ids", conn, dtype=object
            )
        else:
            retired = _empty(RETIRED_COLUMNS)
        if "retired_members" in tables:
            last = pd.read_sql_query(
                f"SELECT {', '.join(MEMBER_COLUMNS)} FROM retired_members", conn
            ).astype(str)
        else:
            last = None
        kv: dict[str, str] = {}
        if "id_state" in tables:
            kv = {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM id_state")}
    finally:
        conn.close()
    for col in ("entity_id", "source", "record_id"):
        members[col] = members[col].astype(str)
    retired = retired.astype(object)
    retired = retired.where(retired.notna(), None)
    if last is None:
        last = _recover_last_members(path, retired)
    counter = int(kv.get("counter", "0"))
    try:
        seen = parse_ids(pd.concat([members["entity_id"], retired["entity_id"].astype(str)]))
    except ValueError as exc:
        raise ReleaseError(f"{path}: {exc}; ids must look like {format_id(1)}.") from exc
    if len(seen):
        counter = max(counter, int(seen.max()))
    return IdState(
        members=members,
        counter=counter,
        retired=retired,
        retired_members=last,
        previous_release=kv.get("previous_release"),
        release=kv.get("release"),
    )


def _recover_last_members(path: Path, retired: pd.DataFrame) -> pd.DataFrame:
    """The last members of the ids retired by releases written before ``retired_members``
    existed, read from the other releases of the directory holding the release at
    ``path``: an id that retired in release V held, when it retired, its records of the
    release before V. Ids whose releases are not there (or a database that is no
    release) get none."""
    from crosswalk.release import list_releases  # which imports this module

    if retired.empty or not (path.parent / "manifest.json").is_file():
        return _empty(MEMBER_COLUMNS)
    releases = {r.version: r for r in list_releases(path.parent.parent)}
    parts = []
    for version, ids in retired.groupby(retired["release"].astype(str))["entity_id"]:
        retired_in = releases.get(version)
        before = releases.get(retired_in.previous or "") if retired_in else None
        if before is None:
            continue
        with closing(connect(before.db, immutable=True)) as conn:
            parts.append(
                pd.read_sql_query(
                    f"SELECT {', '.join(MEMBER_COLUMNS)} FROM records "
                    "WHERE entity_id IN (SELECT value FROM json_each(?))",
                    conn,
                    params=(json.dumps(sorted(ids.astype(str))),),
                ).astype(str)
            )
    return pd.concat(parts, ignore_index=True) if parts else _empty(MEMBER_COLUMNS)


# --------------------------------------------------------------------------- assignment


def assign_ids(
    members: pd.DataFrame,
    previous: IdState | None,
    by_key: np.ndarray | None = None,
) -> IdAssignment:
    """Give every cluster an entity id, carrying ids over from ``previous``.

    ``members`` has the columns ``cluster`` (int), ``source`` and ``record_id``,
    one row per record of the new build. ``by_key``, when the caller has it already:
    the positions of ``members`` sorted by (source, record_id) (:func:`key_order`).
    Returns the id of every cluster, the changes against the previous release and the
    state to persist, whose ``members`` are the rows of ``members`` in the same order.
    """
    prev = previous or IdState()
    source = members["source"].astype(str).reset_index(drop=True)
    record_id = members["record_id"].astype(str).reset_index(drop=True)
    cluster = members["cluster"].to_numpy(dtype=np.int64)

    if by_key is None:
        by_key = key_order(pd.DataFrame({"s": source, "r": record_id}), ["s", "r"])
    at = _first_repeat(source, record_id, by_key)
    if at is not None:
        raise BuildError(
            f"record ({source[at]}, {record_id[at]}) is in more than one cluster; "
            "every record must belong to exactly one cluster."
        )
    clusters, member_entities, info = _cluster_info(cluster, ranks(by_key))
    found = _Found.of(prev, source, record_id, cluster, info)

    # Live ids first. An entity torn between equally large parts keeps the one that no
    # retired id would take back (the key of the others is moved after every cluster's).
    key = info["key"]
    if len(found.best):
        key = key + np.where(info.index.isin(found.best["cluster"]), len(by_key), 0)
    kept = _greedy_matching(found.edges, key)  # cluster -> previous counter
    # Then retired ids: each takes back the cluster holding most of its last members
    # when no live id kept that cluster; several at once: the most members, the older.
    revived = (
        found.best[~found.best["cluster"].isin(kept.index)]
        .sort_values(["n", "entity"], ascending=[False, True])
        .drop_duplicates("cluster")
    )

    # Counters: kept and revived ones, then fresh ones for the other clusters in order
    # of their key.
    counter_of = kept.reindex(info.index)
    counter_of.loc[revived["cluster"].to_numpy()] = revived["entity"].to_numpy()
    fresh = info.loc[counter_of.isna()].sort_values("key").index
    counter_of.loc[fresh] = np.arange(prev.counter + 1, prev.counter + 1 + len(fresh))
    counter_of = counter_of.astype(np.int64)
    id_text = id_array(counter_of.to_numpy())

    changes, retired_now = _changes(
        found.edges,
        counter_of,
        info,
        found.old_size,
        set(counter_of.loc[fresh].tolist()),
        revived.assign(last_size=revived["entity"].map(found.last_size)),
    )
    retired, retired_members = _still_retired(prev, found, retired_now, counter_of, info)

    state = IdState(
        members=pd.DataFrame(
            {
                # pandas' default text dtype, as the records' other text columns
                "entity_id": pd.array(id_text.take(pa.array(member_entities)), dtype="str"),
                "source": source.array,
                "record_id": record_id.array,
            }
        ),
        counter=prev.counter + len(fresh),
        retired=retired,
        retired_members=retired_members,
        changes=changes,
        previous_release=prev.release if previous is not None else None,
    )
    return IdAssignment(clusters, counter_of.to_numpy(), id_text, member_entities, changes, state)


def compare_members(previous: IdState, members: pd.DataFrame) -> pd.DataFrame:
    """The changes from ``previous`` to the entities of ``members`` (``entity_id, source,
    record_id``, e.g. a later release's records), classified as :func:`assign_ids`
    classifies a build's: for a build carried over from ``previous``, these are its
    changes. The ids of ``members`` are taken as they are, not matched again."""
    source = members["source"].astype(str).reset_index(drop=True)
    record_id = members["record_id"].astype(str).reset_index(drop=True)
    cluster = _counters(members["entity_id"])
    by_key = key_order(pd.DataFrame({"s": source, "r": record_id}), ["s", "r"])
    clusters, _, info = _cluster_info(cluster, ranks(by_key))
    found = _Found.of(previous, source, record_id, cluster, info)
    counter_of = pd.Series(clusters, index=info.index)
    was_live = np.isin(clusters, found.old_size.index.to_numpy())
    was_retired = np.isin(clusters, _counters(previous.retired["entity_id"]))
    back = clusters[was_retired & ~was_live]
    shared = found.last_edges[
        (found.last_edges["entity"] == found.last_edges["cluster"])
        & found.last_edges["entity"].isin(back)
    ].set_index("entity")["n"]
    revived = pd.DataFrame(
        {
            "entity": back,
            "cluster": back,
            "n": shared.reindex(back).fillna(0).to_numpy(dtype=np.int64),
            "last_size": found.last_size.reindex(back).fillna(0).to_numpy(dtype=np.int64),
        }
    )
    fresh = set(clusters[~was_live & ~was_retired].tolist())
    changes, _ = _changes(found.edges, counter_of, info, found.old_size, fresh, revived)
    return changes


def _cluster_info(
    cluster: np.ndarray, rank: np.ndarray
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """The distinct clusters (ascending), each row's position among them, and per
    cluster its order key (the rank of its smallest member) and size."""
    clusters, member_entities = dense_labels(cluster)
    smallest = np.full(len(clusters), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(smallest, member_entities, rank)
    info = pd.DataFrame(
        {"key": smallest, "size": np.bincount(member_entities, minlength=len(clusters))},
        index=pd.Index(clusters, name="cluster"),
    )
    return clusters, member_entities, info


@dataclass
class _Found:
    """Where the previous release's members are among a build's clusters.

    ``edges``: (previous live entity, cluster, shared members ``n``), by counter;
    ``old_size``: members per previous live entity; ``last``: the last members of the
    retired ids that have them, with ``last_counter`` and ``last_edges`` likewise;
    ``last_size`` per retired id; ``best``: each retired id's cluster holding most of
    its last members (``entity, cluster, n``; on a tie the cluster of the smaller key).
    """

    old_counter: np.ndarray
    edges: pd.DataFrame
    old_size: pd.Series
    last: pd.DataFrame
    last_counter: np.ndarray
    last_edges: pd.DataFrame
    last_size: pd.Series
    best: pd.DataFrame

    @classmethod
    def of(
        cls,
        prev: IdState,
        source: pd.Series,
        record_id: pd.Series,
        cluster: np.ndarray,
        info: pd.DataFrame,
    ) -> _Found:
        old = prev.members
        n_new, n_old = len(source), len(old)
        old_counter = _counters(old["entity_id"])
        last = prev.retired_members
        last_counter = _counters(last["entity_id"])
        if len(last):  # only ids the release lists as retired, and not live again
            ok = np.isin(last_counter, _counters(prev.retired["entity_id"]))
            ok &= ~np.isin(last_counter, old_counter)
            last, last_counter = last[ok].reset_index(drop=True), last_counter[ok]
        if n_old or len(last):
            # One integer key per (source, record_id); previous rows at their new positions.
            src_codes, _ = pd.factorize(
                pd.concat([source, old["source"].astype(str), last["source"].astype(str)])
            )
            rid_codes, rid_uniques = pd.factorize(
                pd.concat([record_id, old["record_id"].astype(str), last["record_id"].astype(str)])
            )
            key = src_codes.astype(np.int64) * max(len(rid_uniques), 1) + rid_codes
            at_new = pd.Index(key[:n_new]).get_indexer(key[n_new:])
        else:
            at_new = np.empty(0, dtype=np.int64)
        last_edges = _edges(last_counter, cluster, at_new[n_old:])
        best = (
            last_edges.assign(key=last_edges["cluster"].map(info["key"]))
            .sort_values(["n", "key"], ascending=[False, True])
            .drop_duplicates("entity")[["entity", "cluster", "n"]]
        )
        return cls(
            old_counter=old_counter,
            edges=_edges(old_counter, cluster, at_new[:n_old]),
            old_size=pd.Series(old_counter).value_counts(),
            last=last,
            last_counter=last_counter,
            last_edges=last_edges,
            last_size=pd.Series(last_counter).value_counts(),
            best=best,
        )


def _edges(counter: np.ndarray, cluster: np.ndarray, at_new: np.ndarray) -> pd.DataFrame:
    """(previous entity, new cluster, shared members ``n``) for every pair sharing members:
    ``counter`` per previous row, ``at_new`` its position among the new rows (-1: none)."""
    hit = at_new >= 0
    return (
        pd.DataFrame({"entity": counter[hit], "cluster": cluster[at_new[hit]]})
        .groupby(["entity", "cluster"], sort=False)
        .size()
        .rename("n")
        .reset_index()
    )


def _first_repeat(source: pd.Series, record_id: pd.Series, by_key: np.ndarray) -> int | None:
    """The first row (in row order) whose (source, record_id) an earlier row has, or None.
    Equal keys are neighbours in key order (``by_key``, stable: in row order)."""
    if len(by_key) < 2:
        return None
    order = pa.array(by_key)
    same = None
    for column in (source, record_id):
        values = pa.array(column.array, type=pa.large_string()).take(order)
        after, before = values.slice(1), values.slice(0, len(values) - 1)
        # two missing values are the same key, as factorizing counts them
        equal = pc.or_kleene(
            pc.equal(after, before), pc.and_(pc.is_null(after), pc.is_null(before))
        )
        same = equal if same is None else pc.and_(same, equal)
    repeats = np.flatnonzero(pc.fill_null(same, False).to_numpy(zero_copy_only=False))
    return int(by_key[repeats + 1].min()) if len(repeats) else None


def _greedy_matching(edges: pd.DataFrame, cluster_key: pd.Series) -> pd.Series:
    """Match previous entities to clusters greedily over edges in a strict order.

    Order: more shared members first, then the older id (smaller counter),
    then the cluster of the smaller ``cluster_key`` (:func:`assign_ids` passes the
    rank of its smallest member, after every other cluster's for the clusters a
    retired id would take back). Each round takes every edge that
    is the best remaining edge of both its entity and its cluster; repeating
    this until no edge is left yields exactly the greedy matching. Returns the
    previous counter of each matched cluster.
    """
    if edges.empty:
        return pd.Series(dtype=np.int64)
    e = (
        edges.assign(key=edges["cluster"].map(cluster_key))
        .sort_values(["n", "entity", "key"], ascending=[False, True, True])
        .reset_index(drop=True)
    )
    taken: list[pd.DataFrame] = []
    while not e.empty:
        take = e[~e["entity"].duplicated() & ~e["cluster"].duplicated()]
        taken.append(take)
        e = e[~e["entity"].isin(take["entity"]) & ~e["cluster"].isin(take["cluster"])]
    done = pd.concat(taken)
    return pd.Series(done["entity"].to_numpy(), index=done["cluster"].to_numpy())


def _counters(ids: pd.Series) -> np.ndarray[Any, Any]:
    """:func:`parse_ids` of a column of ids that may be empty."""
    return parse_ids(ids) if len(ids) else np.zeros(0, dtype=np.int64)


def _ids(counters: Any) -> pd.Series:
    return pd.Series(format_ids(np.asarray(counters, dtype=np.int64)), dtype=object)


def _changes(
    edges: pd.DataFrame,
    counter_of: pd.Series,
    info: pd.DataFrame,
    old_size: pd.Series,
    fresh: set[int],
    revived: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of ``changes.csv`` and the ids retired by this build.

    ``revived``: the retired ids that came back (``entity``), with their ``cluster``,
    how many of their last members it holds (``n``) and how many they had (``last_size``).
    """
    e = _located(edges, counter_of, info).assign(
        old_size=edges["entity"].map(old_size).astype(np.int64)
    )
    live = counter_of.to_numpy()
    parts: list[pd.DataFrame] = []

    # Kept ids whose members changed.
    same = e[e["entity"] == e["new"]]
    changed = same[(same["n"] != same["old_size"]) | (same["n"] != same["new_size"])]
    kept = pd.DataFrame(
        {
            "entity": changed["entity"].to_numpy(),
            "change": "members_changed",
            "details": (
                "+"
                + (changed["new_size"] - changed["n"]).astype(str)
                + " -"
                + (changed["old_size"] - changed["n"]).astype(str)
                + " members (now "
                + changed["new_size"].astype(str)
                + ")"
            ).to_numpy(dtype=object),
        }
    )
    # Retired ids that came back.
    back_size = revived["cluster"].map(info["size"]).astype(np.int64)
    back = pd.DataFrame(
        {
            "entity": revived["entity"].to_numpy(),
            "change": "revived",
            "details": (
                revived["n"].astype(str)
                + " of "
                + revived["last_size"].astype(str)
                + " last members back (now "
                + back_size.astype(str)
                + ")"
            ).to_numpy(dtype=object),
        }
    )

    # Previous ids that no longer name an entity: merged (members still here) or retired.
    gone = old_size[~np.isin(old_size.index.to_numpy(), live)]
    retired_now = _gone_rows(e[e["entity"].isin(gone.index)], gone)
    merged = retired_now[retired_now["change"] == "merged_into"]

    # Ids that absorbed merged ids say so.
    named = pd.concat([p for p in (kept, back) if not p.empty] or [kept], ignore_index=True)
    named["entity_id"] = _ids(named["entity"]).to_numpy()
    if not merged.empty and not named.empty:
        absorbed = merged.groupby("successor")["entity_id"].agg(lambda s: ", ".join(sorted(s)))
        extra = named["entity_id"].map(absorbed)
        has = extra.notna().to_numpy()
        named.loc[has, "details"] = (
            named.loc[has, "details"] + "; absorbed " + extra[has].to_numpy()
        )
    parts.append(named)

    # Fresh ids: split parts when they hold previous members, else new.
    fresh_idx = np.array(sorted(fresh), dtype=np.int64)
    from_prev = e[e["new"].isin(fresh_idx)].drop_duplicates("new")
    parts.append(
        pd.DataFrame(
            {
                "entity_id": _ids(from_prev["new"]).to_numpy(),
                "change": "split_from",
                "details": (
                    "from "
                    + _ids(from_prev["entity"]).to_numpy()
                    + "; "
                    + from_prev["n"].astype(str).to_numpy()
                    + " of "
                    + from_prev["old_size"].astype(str).to_numpy()
                    + " members"
                ),
            }
        )
    )
    size_of = pd.Series(info["size"].to_numpy(), index=counter_of.to_numpy())
    plain = fresh_idx[~np.isin(fresh_idx, from_prev["new"].to_numpy())]
    # Arrow-backed text from the start: a first build lists every entity as new (1.2M rows
    # at 1M records per side), which as Python objects would cost seconds and some 200 MB.
    sizes = pa.array(size_of.reindex(plain).to_numpy(dtype=np.int64)).cast(pa.large_string())
    parts.append(
        pd.DataFrame(
            {
                "entity_id": pd.arrays.ArrowStringArray(id_array(plain)),
                "change": pd.arrays.ArrowStringArray(
                    pa.repeat(pa.scalar("new", pa.large_string()), len(plain))
                ),
                "details": pd.arrays.ArrowStringArray(
                    pc.binary_join_element_wise(
                        sizes,
                        pa.scalar(" members", pa.large_string()),
                        pa.scalar("", pa.large_string()),
                    )
                ),
            }
        )
    )
    parts.append(retired_now)
    cols = list(CHANGE_COLUMNS)
    nonempty = [p[cols].astype("string") for p in parts if not p.empty]
    changes = pd.concat(nonempty, ignore_index=True) if nonempty else _empty(CHANGE_COLUMNS)
    changes = _sorted_by_id_and_change(changes).astype("string")
    return changes, retired_now.drop(columns="entity")


def _located(edges: pd.DataFrame, counter_of: pd.Series, info: pd.DataFrame) -> pd.DataFrame:
    """``edges`` with each cluster's counter (``new``), size and key, where most members
    went first (then the cluster of the smaller key)."""
    return edges.assign(
        new=edges["cluster"].map(counter_of).astype(np.int64),
        new_size=edges["cluster"].map(info["size"]).astype(np.int64),
        key=edges["cluster"].map(info["key"]),
    ).sort_values(["n", "key"], ascending=[False, True])


def _gone_rows(e: pd.DataFrame, size: pd.Series) -> pd.DataFrame:
    """What became of ids that name no entity now: ``merged_into`` the entity holding most
    of their members (``successor``), or ``retired`` when none is left. ``e``: their
    edges, :func:`_located`; ``size``: their number of members, indexed by counter.
    Columns ``entity`` (counter), ``entity_id``, ``change``, ``successor``, ``details``."""
    e = e.assign(
        new_id=lambda d: _ids(d["new"]).to_numpy(), old_id=lambda d: _ids(d["entity"]).to_numpy()
    )
    moved = e.drop_duplicates("entity")
    of = moved["entity"].map(size).astype(np.int64).astype(str)
    spread = e.groupby("entity").size()
    details = "into " + moved["new_id"] + "; " + moved["n"].astype(str) + " of " + of + " members"
    several = (moved["entity"].map(spread) > 1).to_numpy()
    if several.any():
        went = (
            (e["new_id"] + " (" + e["n"].astype(str) + ")")
            .groupby(e["entity"], sort=False)
            .agg(", ".join)
        )
        details[several] = (
            "members went to " + moved.loc[several, "entity"].map(went) + " of " + of[several]
        )
    merged = pd.DataFrame(
        {
            "entity": moved["entity"].to_numpy(),
            "entity_id": moved["old_id"].to_numpy(),
            "change": "merged_into",
            "successor": moved["new_id"].to_numpy(),
            "details": details.to_numpy(dtype=object),
        }
    )
    vanished = size[~size.index.isin(moved["entity"])]
    retired = pd.DataFrame(
        {
            "entity": vanished.index.to_numpy(),
            "entity_id": _ids(vanished.index).to_numpy(),
            "change": "retired",
            "successor": None,
            "details": ("0 of " + vanished.astype(str) + " members left").to_numpy(dtype=object),
        }
    )
    return pd.concat([merged, retired], ignore_index=True)


def _still_retired(
    prev: IdState,
    found: _Found,
    retired_now: pd.DataFrame,
    counter_of: pd.Series,
    info: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``retired_ids`` and ``retired_members`` of a build: the previous ones less the
    revived ids, with the redirects of the ids that have last members recomputed from
    where those are now, plus the ids retired by this build and their last members."""
    live = counter_of.to_numpy()
    carried = prev.retired
    if len(carried):
        carried_counter = _counters(carried["entity_id"])
        back = np.isin(carried_counter, live)
        carried, carried_counter = carried[~back], carried_counter[~back]
        known = np.isin(carried_counter, found.last_size.index.to_numpy())
        if known.any():
            counters = carried_counter[known]
            e = _located(found.last_edges, counter_of, info)
            size = found.last_size.reindex(counters)
            where = _gone_rows(e[e["entity"].isin(counters)], size).set_index("entity_id")
            carried = carried.copy()
            at = carried.loc[known, "entity_id"]
            for col in ("change", "successor", "details"):
                carried.loc[known, col] = at.map(where[col]).to_numpy()
    retired = _carry_retired(carried, retired_now, live)

    cols = list(MEMBER_COLUMNS)
    parts = [found.last.loc[np.isin(found.last_counter, live, invert=True), cols]]
    if len(retired_now):
        gone_now = np.isin(found.old_counter, parse_ids(retired_now["entity_id"]))
        parts.append(prev.members.loc[gone_now, cols])
    nonempty = [p.astype(str) for p in parts if len(p)]
    last = pd.concat(nonempty, ignore_index=True) if nonempty else _empty(MEMBER_COLUMNS)
    return retired, last


def _sorted_by_id_and_change(changes: pd.DataFrame) -> pd.DataFrame:
    """``changes.sort_values(["entity_id", "change"], ignore_index=True)``, sorted by Arrow."""
    order = sort_order(changes, list(CHANGE_COLUMNS[:2]))
    if order is not None:
        changes = changes.take(order)
    return changes.reset_index(drop=True)


def _carry_retired(
    previous: pd.DataFrame, now: pd.DataFrame, live: np.ndarray[Any, Any]
) -> pd.DataFrame:
    """Earlier retirements plus this build's, with every redirect resolved to a live id.

    A chain of merges (A into B, then B into C) redirects A to C. When a chain
    ends in an id that retired without a successor, the earlier ids of the
    chain become ``retired`` too, and their details say why.
    """
    cols = list(RETIRED_COLUMNS)
    now = now.assign(release=None)[cols].astype(object)
    before = previous[cols].astype(object)
    before = before[~before["entity_id"].isin(now["entity_id"])]
    parts = [p for p in (before, now) if not p.empty]
    if not parts:
        return _empty(RETIRED_COLUMNS)
    retired = pd.concat(parts, ignore_index=True)
    retired = retired.where(retired.notna(), None)
    next_of = pd.Series(retired["successor"].to_numpy(), index=retired["entity_id"].to_numpy())
    change_of = pd.Series(retired["change"].to_numpy(), index=retired["entity_id"].to_numpy())
    live_counters = np.asarray(live, dtype=np.int64)

    def is_live(ids: pd.Series) -> np.ndarray[Any, Any]:
        if not len(ids) or not len(live_counters):
            return np.zeros(len(ids), dtype=bool)
        return np.isin(parse_ids(ids.astype(str)), live_counters, kind="table")

    # Follow chains: each round moves every pointer that names a retired id one step on.
    for _ in range(len(retired) + 1):
        succ = retired["successor"]
        step = succ.notna() & succ.isin(next_of.index)
        if step.any():
            step[step] = ~is_live(succ[step])
        if not step.any():
            break
        via = succ[step]
        onward = via.map(next_of)
        ended = onward.isna()
        if ended.any():
            idx = ended[ended].index
            retired.loc[idx, "details"] = (
                retired.loc[idx, "details"].fillna("").astype(str)
                + "; then "
                + via[idx].astype(str)
                + " "
                + via[idx].map(change_of).fillna("retired").astype(str)
            )
            retired.loc[idx, "change"] = "retired"
        retired.loc[via.index, "successor"] = onward.where(onward.notna(), None)
    retired = retired.astype(object)
    retired = retired.where(retired.notna(), None)
    return retired.sort_values("entity_id", ignore_index=True)
