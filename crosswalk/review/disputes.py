"""Raise the disputes of a published build into the review store.

A build raises a dispute, keyed by the unordered record pair, for:

``uncertain``
    a scored pair whose match probability falls in the uncertain band
    ``[review.uncertain_low, review.uncertain_high)`` of the build's config;
``identifier_disagrees``, ``identifier_differs``, ``cluster_split``, ``decision_conflict``
    every row of the published ``conflicts`` table;
``one_per_source``
    a link cut so that a cluster keeps one record per source;
``large_cluster``
    an entity with more members than ``clustering.large_cluster_size``: the
    dispute is its weakest kept link.

One pair raised for several reasons is one dispute listing them all. A pair
already settled by a decision in force stays settled; only a
``decision_conflict`` reopens it, since its decision contradicts another.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crosswalk.artifact.reader import connect, kv
from crosswalk.artifact.schema import RECORD_SUMMARY
from crosswalk.errors import ReviewError
from crosswalk.review.store import Pair, RecordKey, ReviewStore, canonical_pair, pair_key, utcnow
from crosswalk.vocabulary import REVIEW_DEFAULTS, REVIEW_REASONS

#: What each reason means, for the UI and the docs (kind -> label).
REASON_LABELS = {k: r.label for k, r in REVIEW_REASONS.items()}

#: How many other members of each cluster a dispute keeps.
CLUSTER_MEMBERS_KEPT = 40


def uncertainty(probability: float | None) -> float:
    """1 for a coin flip (p = 0.5), 0 for a certain answer (p = 0 or 1).

    A pair without a probability counts as fully uncertain.
    """
    if probability is None:
        return 1.0
    return max(0.0, 1.0 - 2.0 * abs(float(probability) - 0.5))


def priority(reason_kinds: list[str], probability: float | None) -> float:
    """The queue order, highest first.

    Contradicting decisions come first (+2), then conflicts of evidence (+1),
    then everything else (the reasons' tiers, :data:`crosswalk.vocabulary.REVIEW_REASONS`);
    within a tier, the pair closest to p = 0.5 first.
    """
    tier = max((REVIEW_REASONS[k].tier for k in reason_kinds if k in REVIEW_REASONS), default=0)
    return tier + uncertainty(probability)


@dataclass
class _Raised:
    pair: Pair
    reasons: list[dict[str, Any]] = field(default_factory=list)
    probability: float | None = None

    def add(self, reason: dict[str, Any], probability: float | None = None) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)
        if self.probability is None and probability is not None:
            self.probability = float(probability)


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


def _collect(
    cw: _Crosswalk, low: float, high: float, large: int
) -> tuple[dict[str, _Raised], dict[str, sqlite3.Row]]:
    raised: dict[str, _Raised] = {}
    links: dict[str, sqlite3.Row] = {}
    by_record: dict[RecordKey, list[sqlite3.Row]] = {}

    def raise_pair(a: RecordKey, b: RecordKey) -> _Raised:
        key = pair_key(a, b)
        if key not in raised:
            raised[key] = _Raised(canonical_pair(a, b))
        return raised[key]

    for link in cw.rows("SELECT * FROM links ORDER BY link_id"):
        a = (str(link["source_l"]), str(link["record_id_l"]))
        b = (str(link["source_r"]), str(link["record_id_r"]))
        key = pair_key(a, b)
        p = link["match_probability"]
        if key not in links or (p or 0) > (links[key]["match_probability"] or 0):
            links[key] = link
        by_record.setdefault(a, []).append(link)
        by_record.setdefault(b, []).append(link)
        status = link["status"]
        if status in ("must_link", "cannot_link"):
            continue  # a decision already governs this pair
        if status == "cut":
            raise_pair(a, b).add({"kind": "one_per_source"}, p)
        if p is not None and low <= float(p) < high:
            raise_pair(a, b).add({"kind": "uncertain"}, p)

    for c in cw.rows("SELECT * FROM conflicts ORDER BY conflict_id"):
        a = (str(c["source_l"]), str(c["record_id_l"]))
        details = _json(c["details"], {})
        reason: dict[str, Any] = {"kind": str(c["kind"]), "details": details}
        if c["scheme"]:
            reason["scheme"] = c["scheme"]
        if c["match_probability"] is not None:
            reason["match_probability"] = c["match_probability"]
        if c["source_r"] and c["record_id_r"]:
            b = (str(c["source_r"]), str(c["record_id_r"]))
        else:
            # A conflict about one record: put its strongest link up for review.
            candidates = sorted(
                by_record.get(a, []), key=lambda r: -(r["match_probability"] or 0.0)
            )
            if not candidates:
                continue
            best = candidates[0]
            other = (str(best["source_l"]), str(best["record_id_l"]))
            b = other if other != a else (str(best["source_r"]), str(best["record_id_r"]))
        raise_pair(a, b).add(reason, c["match_probability"])

    for e in cw.rows(
        "SELECT entity_id, member_count FROM entities WHERE member_count > ? ORDER BY entity_id",
        (large,),
    ):
        weakest = cw.rows(
            "SELECT * FROM links WHERE entity_id = ? AND status IN ('linked', 'must_link') "
            "ORDER BY match_probability, link_id LIMIT 1",
            (e["entity_id"],),
        )
        if weakest:
            w = weakest[0]
            a = (str(w["source_l"]), str(w["record_id_l"]))
            b = (str(w["source_r"]), str(w["record_id_r"]))
            p = w["match_probability"]
        else:
            members = cw.rows(
                "SELECT source, record_id FROM records WHERE entity_id = ? "
                "ORDER BY source, record_id LIMIT 2",
                (e["entity_id"],),
            )
            if len(members) < 2:
                continue
            a, b = (members[0][0], members[0][1]), (members[1][0], members[1][1])
            p = None
        raise_pair(a, b).add(
            {
                "kind": "large_cluster",
                "entity_id": e["entity_id"],
                "member_count": e["member_count"],
            },
            p,
        )
    return raised, links


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
        low, high, large = review_band(config if isinstance(config, dict) else {})
        build_id = meta.get("build_id")
        raised, links = _collect(cw, low, high, large)
        rows = []
        for key, item in raised.items():
            left = cw.record(item.pair[0])
            right = cw.record(item.pair[1])
            link = links.get(key)
            probability = link["match_probability"] if link is not None else item.probability
            kinds = [r["kind"] for r in item.reasons]
            rows.append(
                (
                    key, item, left, right, probability, priority(kinds, probability),
                    _link_explanation(link, item.pair), _cluster(cw, left, right),
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
            for key, item, left, right, probability, prio, explanation, cluster in rows:
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
                )
                conn.execute(
                    "INSERT INTO disputes (reasons, priority, match_probability, facility_type_l, "
                    "facility_type_r, left_record, right_record, explanation, cluster, build_id, "
                    "last_raised_at, pair_key, source_l, record_id_l, source_r, record_id_r, "
                    "first_raised_at, active, reopened_after) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?) "
                    "ON CONFLICT (pair_key) DO UPDATE SET reasons = excluded.reasons, "
                    "priority = excluded.priority, match_probability = excluded.match_probability, "
                    "facility_type_l = excluded.facility_type_l, "
                    "facility_type_r = excluded.facility_type_r, "
                    "left_record = excluded.left_record, right_record = excluded.right_record, "
                    "explanation = excluded.explanation, cluster = excluded.cluster, "
                    "build_id = excluded.build_id, last_raised_at = excluded.last_raised_at, "
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
