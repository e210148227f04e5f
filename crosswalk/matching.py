"""Match new records against a published crosswalk with the engine's own stages.

:class:`Matcher` loads a published ``crosswalk.sqlite`` — its records and its
fitted model — and scores query records against it with the same normalize,
block, compare and score functions the build used. The HTTP API's
``/v1/match`` and ``/reconcile``, and ``crosswalk explain``, all go through it.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crosswalk.artifact import DEFAULT_DB
from crosswalk.artifact.reader import connect
from crosswalk.config import BlockingSettings, normalize_rules_of
from crosswalk.errors import CrosswalkError, NotFoundError
from crosswalk.runners.local import local_runner
from crosswalk.stages.block import BlockParams, block_keys, candidate_pairs, ranges, token_counts
from crosswalk.stages.compare import (
    MISSING,
    Comparison,
    compare,
    comparison_by_name,
    record_columns,
)
from crosswalk.stages.comparisons import Settings as ComparisonSettings
from crosswalk.stages.comparisons import place_comparison, settings_from, spec
from crosswalk.stages.kernel.model import Model
from crosswalk.stages.model import (
    pair_terms,
    record_frequencies,
    score,
    term_frequencies,
)
from crosswalk.stages.normalize import normalize_batch
from crosswalk.stages.rules import NormalizeRules
from crosswalk.vocabulary import FIELD_NAMES, ID_PREFIX, NID_PREFIX
from matchers.compare import haversine_m
from matchers.facility_types import name_implied_class
from matchers.identifiers import normalize_identifier

#: A blocking key shared by more published records than this is not used for queries.
MAX_KEY_RECORDS = 400
#: A query the build's blocking rules pair with no published record (a name given alone,
#: whose words are all too common to be rare name tokens) falls back to the published
#: records of exactly its normalized name, and to each word of its name that at most this
#: many published records carry.
FALLBACK_TOKEN_RECORDS = MAX_KEY_RECORDS


@dataclass
class Candidate:
    entity_id: str
    source: str
    record_id: str
    match_probability: float
    match_weight: float
    explanation: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The matched record's row among the matcher's published records (see
    #: :meth:`Matcher.beside`); -1 when unknown.
    row: int = field(default=-1, repr=False, compare=False)


def normalized_identifier(scheme: str, value: str) -> str | None:
    """The engine's normalized form of one identifier (its shared normalizer), if it has one.

    A value the normalizer rejects has none.
    """
    try:
        norm = normalize_identifier(scheme, pd.Series([value], dtype="string")).iloc[0]
    except Exception:  # a value the normalizer rejects is simply not found
        return None
    if norm is None or norm is pd.NA or (isinstance(norm, float) and np.isnan(norm)):
        return None
    return str(norm)


#: A record's fields and the engine's normalized column of each: the values its
#: comparisons read (identifiers are normalized per scheme, as ``id:<scheme>``).
NORMALIZED_COLUMNS = {
    "name": "n_name",
    "address": "n_address",
    "city": "n_city",
    "state": "n_state",
    "zip": "n_zip",
    "phone": "n_phone",
}


@dataclass(frozen=True)
class NormalizedPair:
    """Two records as the engine compares them (see :func:`normalize_pair`)."""

    #: Per side: field (a key of :data:`NORMALIZED_COLUMNS`, or ``id:<scheme>``) → its
    #: normalized value, ``None`` when it has none.
    left: dict[str, str | None]
    right: dict[str, str | None]
    #: The great-circle distance between the two records' coordinates, in metres;
    #: ``None`` unless both have valid coordinates.
    distance_m: float | None


def normalize_pair(left: dict[str, Any], right: dict[str, Any]) -> NormalizedPair:
    """Two records (published record dicts: the fields, ``identifiers`` a dict or its
    JSON) normalized by the build's own normalizers, and the distance between them."""
    ids = [_identifiers(r) for r in (left, right)]
    schemes = sorted({s for d in ids for s in d})
    queries = [{**r, "identifiers": d} for r, d in zip((left, right), ids, strict=True)]
    frame = normalize_batch(query_frame(queries, schemes))
    columns = {**NORMALIZED_COLUMNS, **{ID_PREFIX + s: NID_PREFIX + s for s in schemes}}
    sides = [
        {
            k: None if pd.isna(v := frame[col].iloc[i]) else str(v)
            for k, col in columns.items()
            if col in frame
        }
        for i in (0, 1)
    ]
    lat, lon = frame["n_lat"].to_numpy(), frame["n_lon"].to_numpy()
    metres = float(haversine_m(lat[:1], lon[:1], lat[1:], lon[1:])[0])
    return NormalizedPair(sides[0], sides[1], None if np.isnan(metres) else metres)


def _identifiers(record: dict[str, Any]) -> dict[str, str]:
    value = record.get("identifiers") or {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = {}
    return (
        {str(k): str(v) for k, v in value.items() if v not in (None, "")}
        if isinstance(value, dict)
        else {}
    )


def read_published_records(db_path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The published records as a canonical batch (``id:<scheme>`` columns), and the decoded meta table."""
    db_path = Path(db_path)
    if not db_path.exists():
        raise NotFoundError(
            f"{db_path} does not exist. Fix: run `crosswalk build` first, or check the path."
        )
    conn = connect(db_path)
    try:
        recs = pd.read_sql_query("SELECT * FROM records ORDER BY rowid", conn, dtype=str)
        meta_rows = conn.execute("SELECT key, value FROM meta").fetchall()
    except sqlite3.DatabaseError as exc:
        raise CrosswalkError(
            f"{db_path} is not a crosswalk database ({exc}). Fix: point at {DEFAULT_DB}."
        ) from exc
    finally:
        conn.close()
    meta: dict[str, Any] = {}
    for k, v in meta_rows:
        try:
            meta[k] = json.loads(v)
        except (TypeError, ValueError):
            meta[k] = v
    ids = recs["identifiers"].fillna("{}").map(json.loads)
    schemes = sorted({s for d in ids for s in d})
    for s in schemes:
        recs[ID_PREFIX + s] = pd.array([d.get(s) for d in ids], dtype="string")
    for col in FIELD_NAMES:
        if col not in recs:
            recs[col] = pd.NA
    keep = ["source", "record_id", "entity_id", *FIELD_NAMES, *(ID_PREFIX + s for s in schemes)]
    return recs[keep].astype("string"), meta


def _normalized(records: pd.DataFrame, rules: NormalizeRules | None = None) -> pd.DataFrame:
    """The records normalized as the build normalizes them (with its ``rules``): a large
    batch (a published crosswalk) split over the runner's threads, as its ``normalize``
    stage is."""
    runner = local_runner()
    return runner.map_batches(
        partial(normalize_batch, rules=rules),
        records,
        *runner.batch_of("normalize", len(records)),
    )


def _blocking_of(meta: dict[str, Any]) -> BlockParams:
    """The blocking settings a crosswalk was built with, tolerating keys a newer engine dropped."""
    stored = (
        meta.get("config", {}).get("blocking", {}) if isinstance(meta.get("config"), dict) else {}
    )
    known = {f.name for f in dataclasses.fields(BlockingSettings)}
    return BlockParams.of(BlockingSettings(**{k: v for k, v in stored.items() if k in known}))


def _comparisons_of(meta: dict[str, Any]) -> list[ComparisonSettings]:
    """The comparisons a crosswalk was built with, as tuned (recorded in its config; the
    defaults for a crosswalk built before comparisons were recorded)."""
    config = meta.get("config")
    return settings_from(config.get("comparisons") if isinstance(config, dict) else None)


def query_frame(
    queries: list[dict[str, Any]], schemes: list[str], normalized: Sequence[str] = ()
) -> pd.DataFrame:
    """Query dicts → a canonical batch (source ``query``, record ids ``0..n-1``).

    ``normalized``: the columns normalizing the batch adds, created here without values
    (after the others, in that order): normalizing a batch of a few rows then replaces
    them, which costs pandas less than appending them (about 2.5 ms of a one-record
    match); the normalized batch is the same.
    """

    def text(v: Any) -> str | None:
        return None if v is None or v == "" else str(v)

    idents = [q.get("identifiers") or {} for q in queries]
    columns: dict[str, list[str | None]] = {
        "source": ["query"] * len(queries),
        "record_id": [str(i) for i in range(len(queries))],
        **{f: [text(q.get(f)) for q in queries] for f in FIELD_NAMES},
        **{ID_PREFIX + s: [text(d.get(s)) for d in idents] for s in schemes},
    }
    arrays = {k: pd.array(v, dtype="string") for k, v in columns.items()}
    if normalized:
        empty = pd.array([None] * len(queries), dtype="string")
        arrays.update({c: empty for c in normalized if c not in arrays})
    return pd.DataFrame(arrays)


class Matcher:
    """Scores query records against the records of one published crosswalk."""

    def __init__(
        self,
        records: pd.DataFrame,
        model: Model,
        blocking: BlockParams,
        comparisons: list[ComparisonSettings] | None = None,
        rules: NormalizeRules | None = None,
    ) -> None:
        """``comparisons``: how the build chose and tuned its comparisons (the defaults
        when not given); the model's fields name those it fitted. ``rules``: how the build
        normalized each source's records (the defaults when not given)."""
        self.records = records.reset_index(drop=True)
        self.model = model
        self.blocking = blocking
        self.settings = settings_from(None) if comparisons is None else comparisons
        self.rules = rules or NormalizeRules()
        self.frame = _normalized(self.records.drop(columns=["entity_id"]), self.rules)
        #: The columns normalizing adds to a batch (a query's are created empty at first).
        self._added = [c for c in self.frame.columns if c not in self.records.columns]
        self.comparisons: list[Comparison] = [
            comparison_by_name(f.name, self.settings) for f in model.fields
        ]
        self.schemes = sorted(
            c[len(ID_PREFIX) :] for c in self.records.columns if c.startswith(ID_PREFIX)
        )
        # Indexed by plain Python strings: the index's hash table is then built once and
        # kept, where an Arrow-backed index would convert its values on every lookup.
        self.tf_tables = {
            col: _object_indexed(term_frequencies(self.frame, col))
            for col in dict.fromkeys(col for c in self.comparisons for col in c.tf_columns())
        }
        self.token_counts = token_counts(self.frame)
        self._keys, self._rows = self._index(blocking)
        # The fallback of a query its blocking pairs with nothing: its name's words, and
        # its whole normalized name (the published names' 64-bit hashes, sorted).
        self._fallback = dataclasses.replace(
            blocking,
            rules=("rare_name_token",),
            rare_token_max_records=FALLBACK_TOKEN_RECORDS,
        )
        self._fallback_keys, self._fallback_rows = self._index(self._fallback)
        names = _name_hashes(self.frame["n_name"])
        self._name_order = np.argsort(names, kind="stable")
        self._names = names[self._name_order]
        self._entity = self.records["entity_id"].to_numpy()
        # Everything that depends on the published records only is computed once here:
        # their columns as the comparisons read them, their term frequencies, the values
        # explanations show, and entity codes.
        self._published = record_columns(self.frame, self.settings)
        self._frequencies = record_frequencies(self.frame, self.tf_tables)
        self._shown = _shown_columns(self.frame, self.comparisons)
        self._entity_code = pd.factorize(self._entity)[0].astype("int64")
        self._sources = self.records["source"].to_numpy(dtype=object)
        self._record_ids = self.records["record_id"].to_numpy(dtype=object)

    @classmethod
    def from_sqlite(cls, path: str | Path) -> Matcher:
        records, meta = read_published_records(path)
        if "model" not in meta:
            raise CrosswalkError(
                f"{path} holds no fitted model. Fix: rebuild it with `crosswalk build`."
            )
        return cls(
            records,
            Model.from_dict(meta["model"]),
            _blocking_of(meta),
            _comparisons_of(meta),
            normalize_rules_of(meta.get("config")),
        )

    def _index(self, blocking: BlockParams) -> tuple[np.ndarray, np.ndarray]:
        """The published records' keys under ``blocking``, sorted, and their record positions."""
        keys = block_keys(self.frame, blocking, counts=self.token_counts)
        order = np.argsort(keys.keys, kind="stable")
        return keys.keys[order], keys.rows[order]

    def _candidates(self, qframe: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        q, r = self._pairs(qframe, self.blocking, self._keys, self._rows)
        alone = np.setdiff1d(np.arange(len(qframe), dtype="int64"), q)
        if len(alone):
            fq, fr = self._pairs(
                qframe.iloc[alone].reset_index(drop=True),
                self._fallback,
                self._fallback_keys,
                self._fallback_rows,
            )
            nq, nr = self._same_names(_name_hashes(qframe["n_name"])[alone])
            q = np.concatenate([q, alone[fq], alone[nq]])
            r = np.concatenate([r, fr, nr])
            _, first = np.unique(q * len(self.records) + r, return_index=True)
            first.sort()
            q, r = q[first], r[first]
        return q, r

    def _same_names(self, names: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(query, published record) pairs of one normalized name, for names at most
        MAX_KEY_RECORDS published records bear."""
        lo = np.searchsorted(self._names, names, side="left")
        size = np.searchsorted(self._names, names, side="right") - lo
        ok = (names != _NO_NAME) & (size > 0) & (size <= MAX_KEY_RECORDS)
        q = np.repeat(np.flatnonzero(ok).astype("int64"), size[ok])
        return q, self._name_order[ranges(lo[ok], size[ok])].astype("int64")

    def _pairs(
        self, qframe: pd.DataFrame, blocking: BlockParams, keys: np.ndarray, rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Distinct (query, published record) pairs sharing a key of ``blocking``, in the
        order of their first occurrence; ``keys``/``rows``: the published records' index."""
        qkeys = block_keys(qframe, blocking, counts=self.token_counts)
        lo = np.searchsorted(keys, qkeys.keys, side="left")
        hi = np.searchsorted(keys, qkeys.keys, side="right")
        size = hi - lo
        ok = (size > 0) & (size <= MAX_KEY_RECORDS)
        q_rows, lo, size = qkeys.rows[ok], lo[ok], size[ok]
        if int(size.sum()) == 0:
            return np.empty(0, dtype="int64"), np.empty(0, dtype="int64")
        q = np.repeat(q_rows, size)
        r = rows[ranges(lo, size)]
        # distinct pairs, in the order of their first occurrence
        _, first = np.unique(q * len(self.records) + r, return_index=True)
        first.sort()
        return q[first], r[first]

    def _score_published(self, i: np.ndarray, j: np.ndarray) -> tuple[pd.DataFrame, Any]:
        """Levels and scores of published records ``i`` against published records ``j``,
        exactly as the build scored them (both records counted in the term frequencies)."""
        levels = compare(self._published.take(i), self._published.take(j), self.comparisons)
        left = {col: v.take(i) for col, v in self._frequencies.items()}
        right = {col: v.take(j) for col, v in self._frequencies.items()}
        frequencies, alone = pair_terms(left, right, len(self.frame))
        return levels, score(levels, self.model, frequencies=frequencies, alone=alone)

    def explain(
        self,
        left: dict[str, np.ndarray],
        right: dict[str, np.ndarray],
        i: int,
        levels: pd.DataFrame | dict[str, np.ndarray],
        bits: pd.DataFrame | dict[str, np.ndarray],
    ) -> dict[str, dict[str, Any]]:
        """Per compared field: level, values shown on each side and weight, for pair ``i``.

        ``left``/``right`` are the aligned records' shown columns as object arrays
        (:func:`_shown_columns`); ``levels``/``bits`` are frames or their columns as arrays.
        """
        out: dict[str, dict[str, Any]] = {}
        for c in self.comparisons:
            lv = int(np.asarray(levels[c.name])[i])
            cols = c.show or ((c.name,) if c.name in left else ())
            out[c.name] = {
                "level": "missing" if lv == MISSING else c.levels[lv],
                "left": _shown(left, cols, i),
                "right": _shown(right, cols, i),
                "weight": round(float(np.asarray(bits[c.name])[i]), 3),
            }
        return out

    def match(self, queries: list[dict[str, Any]], limit: int = 5) -> list[list[Candidate]]:
        """For each query, up to ``limit`` candidate entities, best first (one per entity)."""
        if not queries:
            return []
        qframe = with_name_implied_class(
            _normalized(query_frame(queries, self.schemes, self._added), self.rules)
        )
        q, r = self._candidates(qframe)
        results: list[list[Candidate]] = [[] for _ in queries]
        if len(q) == 0:
            return results
        left = record_columns(qframe, self.settings).take(q)
        right = self._published.take(r)
        levels = compare(left, right, self.comparisons)
        qfreq = record_frequencies(qframe, self.tf_tables)
        qterms = {col: v.take(q) for col, v in qfreq.items()}
        pterms = {col: v.take(r) for col, v in self._frequencies.items()}
        # the query is not among the records the term frequencies were counted over
        frequencies, alone = pair_terms(qterms, pterms, len(self.frame), left_counted=False)
        scores = score(levels, self.model, frequencies=frequencies, alone=alone)
        w = scores.match_weight
        # Best first within each query (ties in pair order), one pair per entity, ``limit``
        # entities per query.
        order = np.lexsort((-w, q))
        key = q[order] * (int(self._entity_code.max()) + 2) + (self._entity_code[r[order]] + 1)
        _, first = np.unique(key, return_index=True)
        first.sort()
        chosen = order[first]
        qc = q[chosen]
        rank = np.arange(len(qc)) - np.searchsorted(qc, qc, side="left")
        chosen = chosen[rank < limit]
        # Explain only the candidates returned: slice their rows once.
        qshown = _shown_columns(qframe, self.comparisons)
        if "facility_type" in qshown:  # a class the name implies is shown as such
            given = qshown["facility_type"]
            implied = qframe["n_class"].to_numpy(dtype=object)
            qshown["facility_type"] = np.array(
                [
                    g if not pd.isna(g) or pd.isna(c) else f"{c} (from the name)"
                    for g, c in zip(given, implied, strict=True)
                ],
                dtype=object,
            )
        left_shown = {k: v[q[chosen]] for k, v in qshown.items()}
        right_shown = {k: v[r[chosen]] for k, v in self._shown.items()}
        chosen_levels = {k: levels[k].to_numpy()[chosen] for k in levels.columns}
        chosen_bits = {k: scores.bits[k].to_numpy()[chosen] for k in scores.bits.columns}
        for i, (qi, ri, p, wi) in enumerate(
            zip(q[chosen], r[chosen], scores.match_probability[chosen], w[chosen], strict=True)
        ):
            results[int(qi)].append(
                Candidate(
                    entity_id=str(self._entity[ri]),
                    source=str(self._sources[ri]),
                    record_id=str(self._record_ids[ri]),
                    match_probability=round(float(p), 6),
                    match_weight=round(float(wi), 4),
                    explanation=self.explain(
                        left_shown, right_shown, i, chosen_levels, chosen_bits
                    ),
                    row=int(ri),
                )
            )
        return results

    def beside(self, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Of pairs of published records (rows ``left[k]`` and ``right[k]``, as a
        :class:`Candidate`'s ``row``): whether the two are at one place, and whether they are
        one facility listed twice.

        At one place: the build's place comparison puts them at the same place (its
        ``same_place_through`` levels: the same address, or the same number on the same
        street). Listed twice: at one place, of one class (``facility_type`` level
        ``same``; a build without that comparison does not tell classes apart) and with
        the same name or the same core name (the name comparison's levels that agree on a
        value). A build without a place comparison puts no two records at one place.
        """
        left = np.asarray(left, dtype="int64")
        right = np.asarray(right, dtype="int64")
        none = np.zeros(len(left), dtype=bool)
        place = place_comparison(c.name for c in self.comparisons)
        if place is None or len(left) == 0:
            return none, none.copy()
        by_name = {c.name: c for c in self.comparisons}
        names = [c for c in self.comparisons if c.role == "name"]
        used = [
            by_name[place[0]],
            *names[:1],
            *([by_name["facility_type"]] if "facility_type" in by_name else []),
        ]
        levels = compare(self._published.take(left), self._published.take(right), used)
        at_place = levels[place[0]].to_numpy()
        at_place = (at_place >= 0) & (at_place <= place[1])
        twice = at_place.copy()
        if names:
            agree = spec(names[0].spec).tf_levels
            twice &= np.isin(levels[names[0].name].to_numpy(), agree)
        if "facility_type" in levels:
            twice &= levels["facility_type"].to_numpy() == 0
        return at_place, twice

    def position(self, source: str, record_id: str) -> int:
        hit = np.flatnonzero(
            (self.records["source"] == source).to_numpy()
            & (self.records["record_id"] == record_id).to_numpy()
        )
        if len(hit) == 0:
            raise NotFoundError(
                f"no record {source}:{record_id} in the crosswalk. Fix: give SOURCE:RECORD_ID of a published record."
            )
        return int(hit[0])

    def explain_pair(self, a: tuple[str, str], b: tuple[str, str]) -> dict[str, Any]:
        """Score and per-field contributions of two published records."""
        i, j = self.position(*a), self.position(*b)
        levels, scores = self._score_published(np.array([i]), np.array([j]))
        left = {k: v[[i]] for k, v in self._shown.items()}
        right = {k: v[[j]] for k, v in self._shown.items()}
        return {
            "left": {"source": a[0], "record_id": a[1], "entity_id": str(self._entity[i])},
            "right": {"source": b[0], "record_id": b[1], "entity_id": str(self._entity[j])},
            "prior_weight": round(self.model.prior_bits, 3),
            "match_weight": round(float(scores.match_weight[0]), 3),
            "match_probability": round(float(scores.match_probability[0]), 6),
            "same_entity": bool(self._entity[i] == self._entity[j]),
            "fields": self.explain(left, right, 0, levels, scores.bits),
        }


def with_name_implied_class(qframe: pd.DataFrame) -> pd.DataFrame:
    """Normalized queries whose class is missing (no facility type given) take the class
    their name implies (:func:`matchers.facility_types.name_implied_class`), so that the
    facility-type comparison weighs it against each candidate's published class: a query
    for ... HOSPITAL is not tied with a skilled nursing unit of the same name and address."""
    classes = qframe["n_class"]
    missing = classes.isna().to_numpy()
    if not missing.any():
        return qframe
    implied = name_implied_class(qframe["name"]).to_numpy(dtype=object)
    given = classes.to_numpy(dtype=object)
    # in place: the matcher's own frame of the queries
    qframe["n_class"] = pd.Series(np.where(missing, implied, given), index=classes.index).astype(
        classes.dtype
    )
    return qframe


def _name_hashes(names: pd.Series) -> np.ndarray:
    """A 64-bit hash of each normalized name; a missing or empty name hashes to _NO_NAME."""
    return pd.util.hash_array(names.fillna("").to_numpy(dtype=object), categorize=False)


_NO_NAME = pd.util.hash_array(np.array([""], dtype=object), categorize=False)[0]


def _object_indexed(table: pd.Series) -> pd.Series:
    """``table`` with its index as Python objects (same values)."""
    return table.set_axis(pd.Index(table.index.to_numpy(dtype=object), dtype=object))


def _shown_columns(frame: pd.DataFrame, comparisons: list[Comparison]) -> dict[str, np.ndarray]:
    """The columns explanations show (the comparisons' ``show`` columns), as object arrays."""
    cols = {k for c in comparisons for k in (c.show or (c.name,))}
    return {k: frame[k].to_numpy(dtype=object) for k in sorted(cols) if k in frame}


def _shown(shown: dict[str, np.ndarray], cols: tuple[str, ...], i: int) -> str | None:
    """The values of ``cols`` of row ``i`` joined by spaces, missing ones left out."""
    values = [shown[k][i] for k in cols if k in shown]
    return " ".join(str(v) for v in values if v is not None and not pd.isna(v)) or None


def blocking_candidates(db_path: str | Path, left: str, right: str) -> pd.DataFrame:
    """Candidate pairs the configured blocking rules make between two sources of a published crosswalk."""
    records, meta = read_published_records(db_path)
    sub = records[records["source"].isin([left, right])].reset_index(drop=True)
    frame = _normalized(sub.drop(columns=["entity_id"]), normalize_rules_of(meta.get("config")))
    pairs = candidate_pairs(frame, _blocking_of(meta))
    src = frame["source"].to_numpy()
    rid = frame["record_id"].to_numpy()
    lpos, rpos = pairs["l"].to_numpy(), pairs["r"].to_numpy()
    swap = src[lpos] == right
    ll = np.where(swap, rpos, lpos)
    rr = np.where(swap, lpos, rpos)
    return pd.DataFrame({"record_id_l": rid[ll], "record_id_r": rid[rr]})
