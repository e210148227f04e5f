"""Raise the disputes of a published build into the review store.

The queue holds what a steward's decision can change. Each published link has a
*margin*, in bits, by which the engine decided it (over the threshold and over its
rival, :func:`crosswalk.stages.conflicts.decision_margins`); a decision with a clear
margin (``[review] clear_margin_bits``, default
:data:`~crosswalk.stages.conflicts.MARGIN_BITS`) is not queued. A build
raises a dispute, keyed by the unordered record pair, for:

``uncertain``
    a link within the margin of the threshold, not decided by a rival, whose
    probability falls in the band ``[review.uncertain_low, review.uncertain_high)``;
``second_candidate``
    a link whose rival (a record's next-best candidate) is within the margin;
``one_per_source``, ``cluster_split``
    a cut link, and the published split it belongs to, without a clear margin;
``identifier_disagrees``, ``identifier_differs``, ``decision_conflict``
    every such row of the published ``conflicts`` table;
``large_cluster``
    an entity with more members than ``clustering.large_cluster_size``: the
    dispute is its weakest kept link.
``unlinked``
    a pair of two records with no link at all, the best candidate of one of them
    (:func:`left_alone`; the build publishes such pairs down to a probability of 0.001);
``orphaned``
    a cut that left a record with no link, beaten by less than ``[review]
    orphan_margin_bits`` (:func:`left_alone`);
``second_candidate`` (runner-up)
    also the runner-up of a record whose kept link is weak (:func:`runner_ups`);
``identifier_disagrees`` (cut)
    also a cut link sharing a facility-unique identifier, beaten by a link sharing none;
``crossed``
    a link not kept that, with another, could replace two kept links at a cost of less
    than the margin (:func:`crossed`);
``type_overruled``
    a cut that left a record with no link, its records of the same facility type, beaten
    by a link whose records are not (:func:`type_overruled`), whatever its margin;
``next_in_line``
    a link under the threshold of a record with no link to a record whose kept link has
    no clear margin (:func:`next_in_line`);
``displaced``
    the links kept instead of an orphaned, crossed or type-overruled cut or of a pair
    sharing an identifier, which a decision linking it would undo (:func:`kept_instead`).

One pair raised for several reasons is one dispute listing them all. Its priority is
its expected value, the chance the engine is wrong times the records a decision moves
(:func:`expected_value`), and its group the two entities it lies between: one decision
settles every dispute of a group. A pair already settled by a decision in force stays
settled; only a ``decision_conflict`` reopens it, since its decision contradicts another.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crosswalk.artifact.reader import connect, kv
from crosswalk.artifact.schema import RECORD_SUMMARY
from crosswalk.errors import ReviewError
from crosswalk.review.store import Pair, RecordKey, ReviewStore, canonical_pair, pair_key, utcnow
from crosswalk.stages.comparisons.facility_type import SPEC as FACILITY_TYPE
from crosswalk.stages.conflicts import (
    CONFLICT_LOW,
    MARGIN_BITS,
    decision_margins,
    probability_wrong,
)
from crosswalk.vocabulary import REVIEW_DEFAULTS, REVIEW_REASONS

#: What each reason means, for the UI and the docs (kind -> label).
REASON_LABELS = {k: r.label for k, r in REVIEW_REASONS.items()}

#: How many other members of each cluster a dispute keeps.
CLUSTER_MEMBERS_KEPT = 40


def expected_value(p_wrong: float, moved: int) -> float:
    """A dispute's place in the queue, highest first: the chance that the engine's
    decision on it is wrong times the records a decision on it moves."""
    return float(p_wrong) * max(int(moved), 1)


@dataclass
class _Raised:
    pair: Pair
    reasons: list[dict[str, Any]] = field(default_factory=list)
    probability: float | None = None
    #: The chance that the engine's decision on the pair is wrong.
    p_wrong: float = 0.0

    def add(
        self, reason: dict[str, Any], probability: float | None = None, p_wrong: float = 0.0
    ) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)
        if self.probability is None and probability is not None:
            self.probability = float(probability)
        self.p_wrong = max(self.p_wrong, float(p_wrong))


def _json(value: Any, default: Any) -> Any:
    if value is None or value == "":
        return default
    if isinstance(value, dict | list):
        return value
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return default


def _meta(conn: sqlite3.Connection) -> dict[str, str]:
    try:
        return {k: str(v) for k, v in kv(conn, "meta").items() if v is not None}
    except sqlite3.OperationalError:
        return {}


def _float(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def review_band(config: dict[str, Any]) -> tuple[float, float, int]:
    """The uncertain band and the large-cluster size from a build's config JSON."""
    review = config.get("review") or {}
    clustering = config.get("clustering") or {}
    low = _float(review.get("uncertain_low"), REVIEW_DEFAULTS.uncertain_low)
    high = _float(review.get("uncertain_high"), REVIEW_DEFAULTS.uncertain_high)
    large = int(_float(clustering.get("large_cluster_size"), REVIEW_DEFAULTS.large_cluster_size))
    return low, high, large


class _Crosswalk:
    """Read access to a published crosswalk.sqlite."""

    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise ReviewError(f"{path}: no published crosswalk there. Fix: run 'crosswalk build'.")
        self.conn = connect(path)
        self.conn.row_factory = sqlite3.Row
        self.path = path

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            raise ReviewError(f"{self.path}: not a published crosswalk ({exc}).") from exc

    def record(self, key: RecordKey) -> dict[str, Any]:
        found = self.rows(
            "SELECT * FROM records WHERE source = ? AND record_id = ?", (key[0], key[1])
        )
        if not found:
            return {"source": key[0], "record_id": key[1]}
        out = dict(found[0])
        out["identifiers"] = _json(out.get("identifiers"), {})
        return out


def _link_explanation(link: sqlite3.Row | None, pair: Pair) -> dict[str, Any]:
    """The pair's link, with each field's contribution oriented as the dispute's pair."""
    if link is None:
        return {"link": None, "fields": {}}
    raw = _json(link["explanation"], {})
    flipped = (link["source_l"], link["record_id_l"]) != pair[0]
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    if isinstance(raw, dict):
        for name, value in raw.items():
            if isinstance(value, dict) and "weight" in value:
                item = dict(value)
                if flipped:
                    item["left"], item["right"] = value.get("right"), value.get("left")
                fields[name] = item
            else:
                extra[name] = value
    return {
        "link": {
            "link_id": link["link_id"],
            "status": link["status"],
            "method": link["method"],
            "match_probability": link["match_probability"],
            "match_weight": link["match_weight"],
            "entity_id": link["entity_id"],
        },
        "fields": fields,
        "extra": extra,
    }


def _cluster(cw: _Crosswalk, left: dict[str, Any], right: dict[str, Any]) -> list[dict[str, Any]]:
    """The other members of the entities holding either record."""
    entity_ids = [e for e in dict.fromkeys((left.get("entity_id"), right.get("entity_id"))) if e]
    skip = {
        (left.get("source"), left.get("record_id")),
        (right.get("source"), right.get("record_id")),
    }
    out: list[dict[str, Any]] = []
    for entity_id in entity_ids:
        rows = cw.rows(
            f"SELECT {', '.join(RECORD_SUMMARY)}, method, match_probability FROM records "
            "WHERE entity_id = ? "
            "ORDER BY source, record_id LIMIT ?",
            (entity_id, CLUSTER_MEMBERS_KEPT + 2),
        )
        out += [dict(r) for r in rows if (r["source"], r["record_id"]) not in skip]
    return out


@dataclass(frozen=True)
class _Rules:
    """What a build's config says of its queue."""

    low: float
    high: float
    large: int
    threshold_bits: float
    #: Sources that allow one record per entity (none when the config does not say).
    limited: frozenset[str]
    #: A decision with this many bits to spare is clear, and not queued.
    margin: float = MARGIN_BITS
    #: ... and one that leaves a record with no link at all, with this many.
    orphan_margin: float = REVIEW_DEFAULTS.orphan_margin_bits

    @classmethod
    def of(cls, config: dict[str, Any]) -> _Rules:
        low, high, large = review_band(config)
        model = config.get("model") or {}
        threshold = min(max(_float(model.get("link_threshold"), 0.5), 1e-12), 1 - 1e-12)
        sources = config.get("sources")
        limited = (
            frozenset(
                str(x.get("name"))
                for x in sources
                if isinstance(x, dict) and int(_float(x.get("max_per_entity"), 1)) == 1
            )
            if isinstance(sources, list)
            else frozenset()
        )
        review = config.get("review") or {}
        margin = _float(review.get("clear_margin_bits"), MARGIN_BITS)
        orphan = _float(review.get("orphan_margin_bits"), REVIEW_DEFAULTS.orphan_margin_bits)
        threshold_bits = math.log2(threshold / (1 - threshold))
        return cls(low, high, large, threshold_bits, limited, margin, orphan)


def left_alone(
    left: np.ndarray,
    right: np.ndarray,
    weight: np.ndarray,
    status: np.ndarray,
    margin: np.ndarray,
    threshold_bits: float,
    orphan_margin: float,
    reach: float = CONFLICT_LOW,
) -> tuple[np.ndarray, np.ndarray]:
    """The candidate links (integer record codes ``left``/``right``, ``weight`` in bits,
    ``status``, ``margin`` from :func:`~crosswalk.stages.conflicts.decision_margins`) that
    concern records left with no link at all, decided without ``orphan_margin`` bits to
    spare: ``(unlinked, orphaned)`` masks.

    * *unlinked*: a link under the threshold between two records that have no link, the
      best candidate of one of them, of probability ``reach`` or more (by default
      :data:`~crosswalk.stages.conflicts.CONFLICT_LOW`: under it names and addresses
      disagree);
    * *orphaned*: a cut link that was the best candidate of a record the cut left with no
      link, beaten by less than ``orphan_margin`` bits.
    """
    left = np.asarray(left, dtype="int64")
    right = np.asarray(right, dtype="int64")
    w = np.asarray(weight, dtype="float64")
    status = np.asarray(status, dtype=object)
    has_link = _has_link(left, right, status)
    n = len(has_link)
    competes = status != "cannot_link"
    best = np.full(n, -np.inf)
    np.maximum.at(best, left[competes], w[competes])
    np.maximum.at(best, right[competes], w[competes])
    alone_l = ~has_link[left] & (w >= best[left])
    alone_r = ~has_link[right] & (w >= best[right])
    unlinked = (
        (status == "below_threshold")
        & ~has_link[left]
        & ~has_link[right]
        & (alone_l | alone_r)
        & (w >= math.log2(reach / (1.0 - reach)))
    )
    orphaned = (status == "cut") & (alone_l | alone_r) & (np.asarray(margin) < orphan_margin)
    return unlinked, orphaned


def runner_ups(
    left: np.ndarray,
    right: np.ndarray,
    source_left: np.ndarray,
    source_right: np.ndarray,
    weight: np.ndarray,
    status: np.ndarray,
    threshold_bits: float,
    clear_margin: float,
) -> list[tuple[int, int]]:
    """The runner-up of each record whose kept link is weak: for each kept link less than
    ``clear_margin`` bits over the threshold (arrays as :func:`left_alone`'s), the
    strongest link of either record to another record of the same source as its partner,
    when it lies less than ``clear_margin`` bits under the threshold. ``(weak link row,
    runner-up row)`` pairs."""
    left = np.asarray(left, dtype="int64")
    right = np.asarray(right, dtype="int64")
    src_l = np.asarray(source_left, dtype=object).astype(str)
    src_r = np.asarray(source_right, dtype=object).astype(str)
    w = np.asarray(weight, dtype="float64")
    status = np.asarray(status, dtype=object)
    weak = np.flatnonzero((status == "linked") & (w - threshold_bits < clear_margin))
    near = np.flatnonzero(
        ~np.isin(status, ["linked", "must_link", "cannot_link"])
        & (w > threshold_bits - clear_margin)
    )
    if not len(weak) or not len(near):
        return []
    ends = pd.DataFrame(
        {
            "record": np.concatenate([left[weak], right[weak]]),
            "other_source": np.concatenate([src_r[weak], src_l[weak]]),
            "weak": np.concatenate([weak, weak]),
        }
    )
    others = pd.DataFrame(
        {
            "record": np.concatenate([left[near], right[near]]),
            "other_source": np.concatenate([src_r[near], src_l[near]]),
            "row": np.concatenate([near, near]),
            "w": np.concatenate([w[near], w[near]]),
        }
    )
    both = ends.merge(others, on=["record", "other_source"])
    if both.empty:
        return []
    top = both["w"] >= both.groupby(["weak", "record"])["w"].transform("max")
    both = both[top]
    return sorted({(int(a), int(b)) for a, b in zip(both["weak"], both["row"], strict=True)})


def kept_instead(
    left: np.ndarray,
    right: np.ndarray,
    source_left: np.ndarray,
    source_right: np.ndarray,
    status: np.ndarray,
    rows: np.ndarray,
    limited: frozenset[str] | set[str],
) -> list[tuple[int, int]]:
    """The links a decision linking the pairs at ``rows`` would undo: for each such pair,
    the kept links of either record to another record of the other end's source, when that
    source allows one record per entity. ``(row, kept row)`` pairs."""
    left = np.asarray(left, dtype="int64")
    right = np.asarray(right, dtype="int64")
    rows = np.asarray(rows, dtype="int64")
    # Only the kept links of the asked pairs' records, and only their sources as text.
    ends = np.union1d(left[rows], right[rows])
    joined = np.flatnonzero(
        np.isin(np.asarray(status, dtype=object), ["linked", "must_link"])
        & (np.isin(left, ends) | np.isin(right, ends))
    )
    src_l = np.asarray(source_left, dtype=object)
    src_r = np.asarray(source_right, dtype=object)
    kept = pd.DataFrame(
        {
            "record": np.concatenate([left[joined], right[joined]]),
            "other": np.concatenate([right[joined], left[joined]]),
            "other_source": np.concatenate([src_r[joined], src_l[joined]]).astype(str),
            "kept": np.concatenate([joined, joined]),
        }
    )
    asked = pd.DataFrame(
        {
            "record": np.concatenate([left[rows], right[rows]]),
            "partner": np.concatenate([right[rows], left[rows]]),
            "other_source": np.concatenate([src_r[rows], src_l[rows]]).astype(str),
            "row": np.concatenate([rows, rows]),
        }
    )
    both = asked.merge(kept, on=["record", "other_source"])
    both = both[(both["other"] != both["partner"]) & both["other_source"].isin(list(limited))]
    return sorted({(int(a), int(b)) for a, b in zip(both["row"], both["kept"], strict=True)})


def _has_link(left: np.ndarray, right: np.ndarray, status: np.ndarray) -> np.ndarray:
    """Whether each record code (of ``left``/``right``) has a kept link."""
    n = int(max(left.max(initial=-1), right.max(initial=-1))) + 1
    joined = np.isin(status, ["linked", "must_link"])
    out = np.zeros(n, dtype=bool)
    out[left[joined]] = True
    out[right[joined]] = True
    return out


def crossed(
    left: np.ndarray,
    right: np.ndarray,
    source_left: np.ndarray,
    source_right: np.ndarray,
    weight: np.ndarray,
    status: np.ndarray,
    limited: frozenset[str] | set[str],
    clear_margin: float,
) -> list[tuple[int, int, float]]:
    """Links not kept that two kept links could be exchanged for at little cost (arrays as
    :func:`left_alone`'s). For a link ``(a, b)`` cut or under the threshold, both of whose
    sources allow one record per entity, where ``a`` is kept with ``b'`` (of ``b``'s
    source), ``b`` with ``a'`` (of ``a``'s source) and ``(a', b')`` is a candidate too,
    keeping ``(a, b)`` and ``(a', b')`` instead of ``(a, b')`` and ``(a', b)`` costs
    ``w(a, b') + w(a', b) − w(a, b) − w(a', b')`` bits. Each link whose exchange costs less
    than ``clear_margin`` bits: ``(row, row of (a', b'), cost)``; a must-link is never
    exchanged."""
    left = np.asarray(left, dtype="int64")
    right = np.asarray(right, dtype="int64")
    src_l = np.asarray(source_left, dtype=object)
    src_r = np.asarray(source_right, dtype=object)
    status = np.asarray(status, dtype=object)
    strength = np.where(status == "must_link", np.inf, np.asarray(weight, dtype="float64"))
    lim = list(limited)
    # The links not kept between two limited sources; (a', b') is one of them too.
    asked = np.flatnonzero(
        np.isin(status, ["cut", "below_threshold"]) & np.isin(src_l, lim) & np.isin(src_r, lim)
    )
    ends = np.union1d(left[asked], right[asked])
    joined = np.flatnonzero(
        np.isin(status, ["linked", "must_link"]) & (np.isin(left, ends) | np.isin(right, ends))
    )
    if not len(joined) or not len(asked):
        return []
    kept = pd.DataFrame(
        {
            "record": np.concatenate([left[joined], right[joined]]),
            "other_source": np.concatenate([src_r[joined], src_l[joined]]).astype(str),
            "partner": np.concatenate([right[joined], left[joined]]),
            "w_kept": np.concatenate([strength[joined], strength[joined]]),
        }
    )
    pairs = pd.DataFrame(
        {
            "lo": np.minimum(left[asked], right[asked]),
            "hi": np.maximum(left[asked], right[asked]),
            "other_row": asked,
            "w_other": strength[asked],
        }
    )
    q = pd.DataFrame(
        {"row": asked, "a": left[asked], "b": right[asked], "sa": src_l[asked].astype(str),
         "sb": src_r[asked].astype(str), "w": strength[asked]}
    )  # fmt: skip
    q = q.merge(
        kept.rename(columns={"record": "a", "other_source": "sb", "partner": "b2", "w_kept": "w1"}),
        on=["a", "sb"],
    ).merge(
        kept.rename(columns={"record": "b", "other_source": "sa", "partner": "a2", "w_kept": "w2"}),
        on=["b", "sa"],
    )
    q = q[(q["a2"] != q["a"]) & (q["b2"] != q["b"])]
    q = q.assign(lo=np.minimum(q["a2"], q["b2"]), hi=np.maximum(q["a2"], q["b2"]))
    q = q.merge(pairs, on=["lo", "hi"])
    cost = q["w1"] + q["w2"] - q["w"] - q["w_other"]
    q = q.assign(cost=cost)[cost < clear_margin]
    return sorted(
        {
            (int(i), int(j), float(c))
            for i, j, c in zip(q["row"], q["other_row"], q["cost"], strict=True)
        }
    )


def type_overruled(
    left: np.ndarray,
    right: np.ndarray,
    source_left: np.ndarray,
    source_right: np.ndarray,
    status: np.ndarray,
    same_type: np.ndarray,
    limited: frozenset[str] | set[str],
) -> list[tuple[int, int]]:
    """Cuts that left a record with no link although their records' facility types are the
    same (``same_type``, per link), while the link kept instead (:func:`kept_instead`)
    joins records whose types are not the same (other types, or one unknown): names and
    addresses overruled the facility type. ``(cut row, kept row)`` pairs."""
    left = np.asarray(left, dtype="int64")
    right = np.asarray(right, dtype="int64")
    status = np.asarray(status, dtype=object)
    same_type = np.asarray(same_type, dtype=bool)
    has_link = _has_link(left, right, status)
    cuts = np.flatnonzero((status == "cut") & same_type & ~(has_link[left] & has_link[right]))
    return [
        (i, j)
        for i, j in kept_instead(left, right, source_left, source_right, status, cuts, limited)
        if not same_type[j]
    ]


def next_in_line(
    left: np.ndarray,
    right: np.ndarray,
    source_left: np.ndarray,
    source_right: np.ndarray,
    status: np.ndarray,
    margin: np.ndarray,
    clear_margin: float,
    limited: frozenset[str] | set[str],
) -> list[tuple[int, int]]:
    """Links under the threshold between a record with no link and one whose kept link, to
    another record of the first one's source, was decided without ``clear_margin`` bits to
    spare (``margin`` from :func:`~crosswalk.stages.conflicts.decision_margins`): were that
    link undone, the pair would be next in line. ``(row, kept row)`` pairs."""
    left = np.asarray(left, dtype="int64")
    right = np.asarray(right, dtype="int64")
    status = np.asarray(status, dtype=object)
    has_link = _has_link(left, right, status)
    rows = np.flatnonzero((status == "below_threshold") & (has_link[left] != has_link[right]))
    margin = np.asarray(margin, dtype="float64")
    return [
        (i, j)
        for i, j in kept_instead(left, right, source_left, source_right, status, rows, limited)
        if margin[j] < clear_margin
    ]


def _links(cw: _Crosswalk, rules: _Rules) -> pd.DataFrame:
    """The published links with how clearly the engine decided each (``margin``, ``rival``
    in bits, ``p_wrong``; :func:`crosswalk.stages.conflicts.decision_margins`)."""
    try:
        frame = pd.read_sql_query(
            "SELECT link_id, source_l, record_id_l, source_r, record_id_r, match_probability, "
            "match_weight, status, method FROM links ORDER BY link_id",
            cw.conn,
        )
    except (sqlite3.Error, pd.errors.DatabaseError) as exc:
        raise ReviewError(f"{cw.path}: not a published crosswalk ({exc}).") from exc
    for col in ("source_l", "record_id_l", "source_r", "record_id_r"):
        frame[col] = frame[col].astype(str)
    keys = pd.concat(
        [
            frame["source_l"] + "\x1f" + frame["record_id_l"],
            frame["source_r"] + "\x1f" + frame["record_id_r"],
        ]
    )
    codes, _ = pd.factorize(keys)
    n = len(frame)
    src_l = frame["source_l"].to_numpy(dtype=object)
    src_r = frame["source_r"].to_numpy(dtype=object)
    margin, rival = decision_margins(
        codes[:n],
        codes[n:],
        src_l,
        src_r,
        frame["match_weight"].to_numpy(dtype="float64"),
        frame["status"].to_numpy(dtype=object),
        rules.threshold_bits,
        rules.limited,
    )
    return frame.assign(
        margin=margin, rival=rival, p_wrong=probability_wrong(margin), code_l=codes[:n],
        code_r=codes[n:],
    )  # fmt: skip


def _collect(cw: _Crosswalk, rules: _Rules) -> tuple[dict[str, _Raised], dict[str, sqlite3.Row]]:
    raised: dict[str, _Raised] = {}

    def raise_pair(a: RecordKey, b: RecordKey) -> _Raised:
        key = pair_key(a, b)
        if key not in raised:
            raised[key] = _Raised(canonical_pair(a, b))
        return raised[key]

    frame = _links(cw, rules)
    unclear = frame["margin"].to_numpy() < rules.margin
    status = frame["status"].to_numpy(dtype=object)
    p = frame["match_probability"].to_numpy(dtype="float64")
    w = frame["match_weight"].to_numpy(dtype="float64")
    near = (
        (p >= rules.low)
        & (p < rules.high)
        & (np.abs(w - rules.threshold_bits) < rules.margin)
        & ((status == "below_threshold") | (w - frame["rival"].to_numpy() >= rules.margin))
    )
    raise_at = np.flatnonzero(unclear & ((status != "below_threshold") | near))
    sl, il, sr, ir = (
        frame[c].to_numpy(dtype=object)
        for c in ("source_l", "record_id_l", "source_r", "record_id_r")
    )

    def ends(i: int) -> tuple[RecordKey, RecordKey]:
        """The records of link ``i``, as keys."""
        return (str(sl[i]), str(il[i])), (str(sr[i]), str(ir[i]))

    def shown(i: int) -> list[list[str]]:
        """The records of link ``i``, as a reason names them."""
        return [list(k) for k in ends(i)]

    margins = frame["margin"].to_numpy(dtype="float64")
    p_wrong = frame["p_wrong"].to_numpy(dtype="float64")
    for i in raise_at.tolist():
        a, b = ends(i)
        item = raise_pair(a, b)
        pw = float(p_wrong[i])
        if status[i] == "cut":
            item.add({"kind": "one_per_source"}, p[i], pw)
        elif near[i]:
            item.add({"kind": "uncertain"}, p[i], pw)
        else:  # a rival within the margin decided it
            item.add({"kind": "second_candidate"}, p[i], pw)
        item.reasons[-1]["margin_bits"] = _round(margins[i])
    # Records left with no link at all (left_alone), and the links a decision would undo.
    code_l, code_r = frame["code_l"].to_numpy(), frame["code_r"].to_numpy()
    unlinked, orphaned = left_alone(
        code_l, code_r, w, status, margins, rules.threshold_bits, rules.orphan_margin
    )
    under = rules.threshold_bits - w
    for i in np.flatnonzero(unlinked).tolist():
        a, b = ends(i)
        pw = float(probability_wrong(np.array([under[i]]))[0])
        raise_pair(a, b).add({"kind": "unlinked", "margin_bits": _round(under[i])}, p[i], pw)
    for i, j in runner_ups(code_l, code_r, sl, sr, w, status, rules.threshold_bits, rules.margin):
        a, b = ends(j)
        weak = shown(i)
        runner_up = {
            "kind": "second_candidate",
            "runner_up_of": weak,
            "margin_bits": _round(margins[i]),
        }
        raise_pair(a, b).add(runner_up, p[j], p_wrong[i])
    displacing: dict[int, float] = {}
    for i in np.flatnonzero(orphaned).tolist():
        a, b = ends(i)
        raise_pair(a, b).add(
            {"kind": "orphaned", "margin_bits": _round(margins[i])}, p[i], p_wrong[i]
        )
        displacing[i] = float(p_wrong[i])
    conflicts = cw.rows("SELECT * FROM conflicts ORDER BY conflict_id")
    # The links of the records the conflicts name, to find their margins.
    named = {(str(c["source_l"]), str(c["record_id_l"])) for c in conflicts}
    named |= {(str(c["source_r"]), str(c["record_id_r"])) for c in conflicts if c["source_r"]}
    margin_of: dict[str, float] = {}
    row_of: dict[str, int] = {}
    by_record: dict[RecordKey, tuple[float, RecordKey]] = {}
    for i in _touching(frame, named).tolist():
        a, b = ends(i)
        margin_of[pair_key(a, b)] = float(margins[i])
        row_of[pair_key(a, b)] = i
        for x, y in ((a, b), (b, a)):
            if x not in by_record or p[i] > by_record[x][0]:
                by_record[x] = (float(p[i]), y)

    for c in conflicts:
        a = (str(c["source_l"]), str(c["record_id_l"]))
        details = _json(c["details"], {})
        kind = str(c["kind"])
        reason: dict[str, Any] = {"kind": kind, "details": details}
        if c["scheme"]:
            reason["scheme"] = c["scheme"]
        if c["match_probability"] is not None:
            reason["match_probability"] = c["match_probability"]
        if c["source_r"] and c["record_id_r"]:
            b = (str(c["source_r"]), str(c["record_id_r"]))
        elif a in by_record:
            # A conflict about one record: put its strongest link up for review.
            b = by_record[a][1]
        else:
            continue
        margin = margin_of.get(pair_key(a, b))
        if kind == "cluster_split":
            if margin is not None and margin >= rules.margin:
                continue  # the one-record-per-source rule decided it with a clear margin
            reason["margin_bits"] = _round(margin if margin is not None else 0.0)
        # Contradicting decisions: one is wrong. Evidence that disagrees: a coin flip.
        pw = 1.0 if kind == "decision_conflict" else 0.5
        if margin is not None and kind == "cluster_split":
            pw = float(probability_wrong(np.array([margin]))[0])
        raise_pair(a, b).add(reason, c["match_probability"], pw)
        if kind == "identifier_disagrees" and pair_key(a, b) in row_of:
            displacing[row_of[pair_key(a, b)]] = pw
    # A cut link whose records share a facility-unique identifier, beaten by a link that
    # shares none: names and addresses overruled the identifier, whatever the margin.
    method = frame["method"].to_numpy(dtype=object)
    cut_shared = np.flatnonzero((status == "cut") & (method == "identifier"))
    for i, j in kept_instead(code_l, code_r, sl, sr, status, cut_shared, rules.limited):
        if method[j] == "identifier":
            continue
        a, b = ends(i)
        details = {"reason": "the records share an identifier, but a link that shares none "
                   "was kept instead by the one-record-per-source rule"}  # fmt: skip
        raise_pair(a, b).add({"kind": "identifier_disagrees", "details": details}, p[i], 0.5)
        displacing[i] = 0.5
    # Two kept links whose records, exchanged, make two links that cost little less.
    for i, j, cost in crossed(code_l, code_r, sl, sr, w, status, rules.limited, rules.margin):
        a, b = ends(i)
        other = shown(j)
        pw = float(probability_wrong(np.array([cost]))[0])
        reason = {"kind": "crossed", "with": other, "margin_bits": _round(cost)}
        raise_pair(a, b).add(reason, p[i], pw)
        displacing[i] = max(displacing.get(i, 0.0), pw)
    # A cut of the same facility type, left with no link, beaten by a link of another type:
    # names and addresses overruled the type. As doubtful as a decision at the clear margin.
    edge = float(probability_wrong(np.array([rules.margin]))[0])
    has_link = _has_link(code_l, code_r, status)
    orphaning = np.flatnonzero((status == "cut") & ~(has_link[code_l] & has_link[code_r]))
    same_type = _same_type(cw, frame, orphaning)
    for i, j in type_overruled(code_l, code_r, sl, sr, status, same_type, rules.limited):
        a, b = ends(i)
        kept = shown(j)
        reason = {"kind": "type_overruled", "kept": kept, "margin_bits": _round(margins[i])}
        raise_pair(a, b).add(reason, p[i], edge)
        displacing[i] = max(displacing.get(i, 0.0), edge)
    # A record with no link, next in line for a record whose kept link is unclear: it is
    # right only if that link is wrong and its own evidence holds.
    for i, j in next_in_line(code_l, code_r, sl, sr, status, margins, rules.margin, rules.limited):
        a, b = ends(i)
        kept = shown(j)
        pw = float(p_wrong[j] * probability_wrong(np.array([under[i]]))[0])
        reason = {"kind": "next_in_line", "after": kept, "margin_bits": _round(under[i])}
        raise_pair(a, b).add(reason, p[i], pw)
    for i, j in kept_instead(
        code_l, code_r, sl, sr, status, np.array(sorted(displacing), dtype="int64"), rules.limited
    ):
        a, b = ends(j)
        by = shown(i)
        raise_pair(a, b).add({"kind": "displaced", "by": by}, p[j], displacing[i])

    for e in cw.rows(
        "SELECT entity_id, member_count FROM entities WHERE member_count > ? ORDER BY entity_id",
        (rules.large,),
    ):
        weakest = cw.rows(
            "SELECT * FROM links WHERE entity_id = ? AND status IN ('linked', 'must_link') "
            "ORDER BY match_probability, link_id LIMIT 1",
            (e["entity_id"],),
        )
        pw = 0.5
        if weakest:
            wk = weakest[0]
            a = (str(wk["source_l"]), str(wk["record_id_l"]))
            b = (str(wk["source_r"]), str(wk["record_id_r"]))
            q = wk["match_probability"]
            pw = max(1.0 - float(q), 0.0) if q is not None else 0.5
        else:
            members = cw.rows(
                "SELECT source, record_id FROM records WHERE entity_id = ? "
                "ORDER BY source, record_id LIMIT 2",
                (e["entity_id"],),
            )
            if len(members) < 2:
                continue
            a, b = (members[0][0], members[0][1]), (members[1][0], members[1][1])
            q = None
        raise_pair(a, b).add(
            {
                "kind": "large_cluster",
                "entity_id": e["entity_id"],
                "member_count": e["member_count"],
            },
            q,
            pw,
        )
    links: dict[str, sqlite3.Row] = {}
    wanted = {k for item in raised.values() for k in item.pair}
    ids = frame["link_id"].to_numpy()[_touching(frame, wanted)].tolist()
    for chunk in range(0, len(ids), 500):
        part = ids[chunk : chunk + 500]
        for link in cw.rows(
            f"SELECT * FROM links WHERE link_id IN ({','.join('?' * len(part))})", tuple(part)
        ):
            a = (str(link["source_l"]), str(link["record_id_l"]))
            b = (str(link["source_r"]), str(link["record_id_r"]))
            key = pair_key(a, b)
            q = link["match_probability"]
            if key not in raised:
                continue
            if key not in links or (q or 0) > (links[key]["match_probability"] or 0):
                links[key] = link
    return raised, links


def _group(left: tuple[str, int] | None, right: tuple[str, int] | None) -> tuple[str | None, int]:
    """The group of a dispute between records of the entities ``left`` and ``right``
    (entity id, size), and how many records a decision on it moves.

    Every dispute between the same two entities asks one question, whether they are one
    facility, so one decision settles them all: their group is the pair of entities.
    Merging moves the smaller entity's records; a dispute inside one entity (no group)
    moves one record out."""
    if left is None or right is None or left[0] == right[0]:
        return None, 1
    ids = sorted((left[0], right[0]))
    return json.dumps(ids, separators=(",", ":")), min(left[1], right[1])


def _same_type(cw: _Crosswalk, frame: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """Whether the facility types of each link agree at the facility-type comparison's
    strongest level, read from the explanations of the links at ``rows`` and of the links
    kept of their records (False elsewhere, and where the build did not compare types)."""
    out = np.zeros(len(frame), dtype=bool)
    if not len(rows):
        return out
    status = frame["status"].to_numpy(dtype=object)
    ends = set(frame["code_l"].to_numpy()[rows]) | set(frame["code_r"].to_numpy()[rows])
    kept = np.flatnonzero(
        np.isin(status, ["linked", "must_link"])
        & (frame["code_l"].isin(ends).to_numpy() | frame["code_r"].isin(ends).to_numpy())
    )
    wanted = np.union1d(rows, kept)
    ids = frame["link_id"].to_numpy()[wanted].tolist()
    path = f'$."{FACILITY_TYPE.name}".level'
    same: set[int] = set()
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        same |= {
            int(r[0])
            for r in cw.rows(
                f"SELECT link_id FROM links WHERE link_id IN ({','.join('?' * len(part))}) "
                "AND json_valid(explanation) AND json_extract(explanation, ?) = ?",
                (*part, path, FACILITY_TYPE.levels[0]),
            )
        }
    out[frame["link_id"].isin(same).to_numpy()] = True
    return out


def _touching(frame: pd.DataFrame, records: set[RecordKey]) -> np.ndarray:
    """Rows of the links ``frame`` with a record of ``records`` at either end."""
    if not records:
        return np.empty(0, dtype="int64")
    wanted = pd.MultiIndex.from_tuples(sorted(records))
    left = pd.MultiIndex.from_arrays([frame["source_l"], frame["record_id_l"]]).isin(wanted)
    right = pd.MultiIndex.from_arrays([frame["source_r"], frame["record_id_r"]]).isin(wanted)
    return np.flatnonzero(left | right)


def _round(value: float) -> float | None:
    return round(float(value), 3) if math.isfinite(float(value)) else None


def _sizes(cw: _Crosswalk, entity_ids: set[str]) -> dict[str, int]:
    """The member count of each entity of ``entity_ids``."""
    ids = sorted(entity_ids)
    out: dict[str, int] = {}
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        for r in cw.rows(
            "SELECT entity_id, member_count FROM entities "
            f"WHERE entity_id IN ({','.join('?' * len(part))})",
            tuple(part),
        ):
            out[str(r[0])] = int(r[1] or 1)
    return out


def queue_disputes(crosswalk_db: Path, store: Path) -> int:
    """Raise the disputes of the published crosswalk at ``crosswalk_db`` into the
    review store at ``store`` (created if missing).

    Returns the number of disputes still awaiting a binding decision: those
    with no decision in force, or only an 'unsure' one.
    """
    cw = _Crosswalk(Path(crosswalk_db))
    try:
        meta = _meta(cw.conn)
        config = _json(meta.get("config"), {})
        rules = _Rules.of(config if isinstance(config, dict) else {})
        build_id = meta.get("build_id")
        raised, links = _collect(cw, rules)
        snapshots = {
            key: (cw.record(it.pair[0]), cw.record(it.pair[1])) for key, it in raised.items()
        }
        size = _sizes(
            cw, {str(r["entity_id"]) for lr in snapshots.values() for r in lr if r.get("entity_id")}
        )

        def entity(record: dict[str, Any]) -> tuple[str, int] | None:
            e = record.get("entity_id")
            return None if not e else (str(e), size.get(str(e), 1))

        rows = []
        for key, item in raised.items():
            left, right = snapshots[key]
            link = links.get(key)
            probability = link["match_probability"] if link is not None else item.probability
            group, moved = _group(entity(left), entity(right))
            rows.append(
                (
                    key, item, left, right, probability, expected_value(item.p_wrong, moved),
                    _link_explanation(link, item.pair), _cluster(cw, left, right), group,
                )
            )  # fmt: skip
    finally:
        cw.conn.close()

    now = utcnow()
    with ReviewStore(store) as db:
        last_event = db.max_event_id()
        with db.transaction() as conn:
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS raised_now (pair_key TEXT PRIMARY KEY)")
            conn.execute("DELETE FROM raised_now")
            for key, item, left, right, probability, prio, explanation, cluster, group in rows:
                (sl, il), (sr, ir) = item.pair
                reopen = "decision_conflict" in [r["kind"] for r in item.reasons]
                values = (
                    json.dumps(item.reasons, ensure_ascii=False, default=str),
                    prio,
                    probability,
                    left.get("facility_type"),
                    right.get("facility_type"),
                    json.dumps(left, ensure_ascii=False, default=str),
                    json.dumps(right, ensure_ascii=False, default=str),
                    json.dumps(explanation, ensure_ascii=False, default=str),
                    json.dumps(cluster, ensure_ascii=False, default=str),
                    build_id,
                    now,
                    group,
                )
                conn.execute(
                    "INSERT INTO disputes (reasons, priority, match_probability, facility_type_l, "
                    "facility_type_r, left_record, right_record, explanation, cluster, build_id, "
                    "last_raised_at, group_key, pair_key, source_l, record_id_l, source_r, record_id_r, "
                    "first_raised_at, active, reopened_after) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?) "
                    "ON CONFLICT (pair_key) DO UPDATE SET reasons = excluded.reasons, "
                    "priority = excluded.priority, match_probability = excluded.match_probability, "
                    "facility_type_l = excluded.facility_type_l, "
                    "facility_type_r = excluded.facility_type_r, "
                    "left_record = excluded.left_record, right_record = excluded.right_record, "
                    "explanation = excluded.explanation, cluster = excluded.cluster, "
                    "build_id = excluded.build_id, last_raised_at = excluded.last_raised_at, "
                    "group_key = excluded.group_key, "
                    "active = 1, reopened_after = MAX(disputes.reopened_after, excluded.reopened_after)",
                    (*values, key, sl, il, sr, ir, now, last_event if reopen else 0),
                )
                conn.execute("INSERT OR IGNORE INTO raised_now (pair_key) VALUES (?)", (key,))
            conn.execute(
                "UPDATE disputes SET active = 0 "
                "WHERE pair_key NOT IN (SELECT pair_key FROM raised_now)"
            )
            conn.execute("DROP TABLE raised_now")
        return db.count_disputes(status="open") + db.count_disputes(status="unsure")
