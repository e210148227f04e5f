"""The W3C Reconciliation Service API 0.2 at ``/reconcile`` (what OpenRefine speaks).

* ``GET /reconcile``: the service manifest.
* ``GET|POST /reconcile`` with ``queries=``: a batch of reconciliation queries.
  The query string is the facility name; properties refine it: ``city``,
  ``zip``, ``address``, ``state``, ``phone``, ``facility_type``, any
  identifier scheme of the release (``oshpd_id``, ``cdph_license``, ``npi``...)
  and ``record:<source>`` (a source's own record id). Types are facility
  classes; ``facility`` is the default type and means any class.
* ``GET|POST /reconcile`` with ``extend=``: data extension (department ids and
  facility fields as properties); ``/reconcile/propose_properties`` proposes them.
* ``/reconcile/preview``, ``/reconcile/suggest/{entity,type,property}``.

Candidates come from the engine's matcher (its normalizers, blocking and
model), plus exact identifier hits. ``score`` is the match probability scaled
to 0-100; ``match`` is true for a top candidate that the query's ids name, or
that clears a margin of weight over the runner-up, the records at the top's own
address judged by the class the query implies (see :func:`_certain` and
``docs/api.md``).
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from flask import Blueprint, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from api.http import (
    MAX_INT,
    form_fields,
    int_arg,
    json_response,
    parse_json_text,
    release_from_args,
)
from api.problems import EntityNotFound, InvalidField
from api.schemas import json_response as json_resp_spec
from api.schemas import problem_response
from api.spec import operation
from api.store import Release, dumps
from api.v1 import finite, has_text, normalized_identifier, summaries
from crosswalk import __version__
from crosswalk.vocabulary import FIELDS_BY_NAME, SCHEMES

bp = Blueprint("reconcile", __name__, url_prefix="/reconcile")

#: Most queries in one batch, and most ids in one extension query.
MAX_QUERIES = 1000
#: Largest ``cursor`` (an offset) of the suggest services.
MAX_SUGGEST_CURSOR = 100_000
#: Most properties in one extension query.
MAX_PROPERTIES = 100
#: Longest text of a query or a property value.
MAX_TEXT = 500
#: Most candidates per query.
MAX_LIMIT = 100
DEFAULT_LIMIT = 5
#: The default type: any facility class.
ANY_TYPE = "facility"
#: A fuzzy top candidate is matched (``match: true``) when its probability reaches this
#: (a score of 90) ...
MATCH_PROBABILITY = 0.9
#: ... and its match weight exceeds the runner-up's by at least this many bits: the
#: runner-up's odds are then at most 1/8 of the top's (docs/api.md, "Scores and match").
MATCH_MARGIN_BITS = 3.0
#: Below MATCH_PROBABILITY, down to this (a score of 50: more likely than not), the margin
#: must also make up the weight the top lacks of MATCH_PROBABILITY.
MATCH_FLOOR_PROBABILITY = 0.5

IDENTIFIER_SPACE = "urn:crosswalk:entity"
SCHEMA_SPACE = "urn:crosswalk:schema"


def _labelled(*names: str) -> dict[str, str]:
    """Facility fields with their labels in the vocabulary."""
    return {n: FIELDS_BY_NAME[n].label for n in names}


#: Facility fields a query may give as properties (pid -> label).
TEXT_PROPERTIES = {
    **_labelled("city", "zip", "address", "state", "phone"),
    "facility_type": "Facility type (as a department writes it)",
}
#: Entity fields data extension can return, beyond the department ids.
EXTEND_FIELDS = {
    "name": "Canonical name",
    **_labelled("address", "city", "zip", "county", "state"),
    "facility_class": "Facility class",
    **_labelled("facility_type", "latitude", "longitude"),
    "member_count": "Number of member records",
    "sources": "Sources holding a member",
}

_CALLBACK = re.compile(r"^[A-Za-z_$][\w$.]{0,63}$")

_E400 = problem_response("Invalid request; the problem names the field at fault.")
_E404 = problem_response("Not found.")


# ---------------------------------------------------------------------- helpers


def _root() -> str:
    return request.host_url.rstrip("/") + request.script_root


def _answer(body: Any, status: int = 200) -> Response:
    """JSON, or JSONP when a GET names a valid ``callback``."""
    callback = request.args.get("callback") if request.method == "GET" else None
    if callback and _CALLBACK.match(callback):
        data = b"/**/" + callback.encode() + b"(" + dumps(body) + b");"
        return Response(data, status=status, mimetype="application/javascript")
    return json_response(body, status, {"Cache-Control": "no-store"})


def class_label(facility_class: str) -> str:
    """A readable name for a facility class id (``home_health`` -> ``Home health``)."""
    text = facility_class.replace("_", " ").strip()
    return text[:1].upper() + text[1:] if text else facility_class


def _types(release: Release) -> list[dict[str, str]]:
    out = [{"id": ANY_TYPE, "name": "Health facility (any class)"}]
    out += [{"id": c, "name": class_label(c)} for c, _ in release.facility_classes]
    return out


def _property_catalog(release: Release) -> list[dict[str, str]]:
    """Every property a query may use or an extension may fetch."""
    out = [
        {"id": s, "name": SCHEMES.get(s, f"{s} identifier"), "description": "Department id"}
        for s in release.schemes
    ]
    columns = release.id_columns()
    for src in release.source_names:
        col = columns.get(src)
        label = f"{src.upper()} record id" + (f" ({col})" if col else "")
        out.append({"id": f"record:{src}", "name": label, "description": "Source record id"})
    for pid, label in TEXT_PROPERTIES.items():
        out.append({"id": pid, "name": label})
    for pid, label in EXTEND_FIELDS.items():
        if pid not in TEXT_PROPERTIES:
            out.append({"id": pid, "name": label})
    return out


def _describe(summary: dict[str, Any]) -> str:
    place = ", ".join(str(p) for p in (summary.get("address"), summary.get("city")) if p)
    if summary.get("zip"):
        place += f" {summary['zip']}"
    parts = [place.strip()]
    if summary.get("facility_class"):
        parts.append(class_label(str(summary["facility_class"])))
    if summary.get("sources"):
        parts.append("sources: " + ", ".join(summary["sources"]))
    return " · ".join(p for p in parts if p)


# ---------------------------------------------------------------------- manifest


def manifest() -> dict[str, Any]:
    """The service manifest (Reconciliation API 0.2)."""
    root = _root()
    base = root + "/reconcile"
    return {
        "versions": ["0.2"],
        "name": "Crosswalk of California health facilities",
        "identifierSpace": IDENTIFIER_SPACE,
        "schemaSpace": SCHEMA_SPACE,
        "documentation": root + "/docs#reconciliation",
        "serviceVersion": __version__,
        "view": {"url": base + "/preview?id={{id}}"},
        "defaultTypes": [{"id": ANY_TYPE, "name": "Health facility (any class)"}],
        "preview": {"url": base + "/preview?id={{id}}", "width": 420, "height": 240},
        "suggest": {
            "entity": {"service_url": base, "service_path": "/suggest/entity"},
            "type": {"service_url": base, "service_path": "/suggest/type"},
            "property": {"service_url": base, "service_path": "/suggest/property"},
        },
        "extend": {
            "propose_properties": {"service_url": base, "service_path": "/propose_properties"},
            "property_settings": [],
        },
    }


# ---------------------------------------------------------------------- queries


@dataclass
class _Query:
    key: str
    name: str | None
    types: list[str]
    strict: str
    limit: int
    fields: dict[str, str] = field(default_factory=dict)
    identifiers: dict[str, list[str]] = field(default_factory=dict)
    records: list[tuple[str, str]] = field(default_factory=list)

    def engine_query(self) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if self.name:
            query["name"] = self.name
        query.update(self.fields)
        if self.identifiers:
            query["identifiers"] = {s: v[0] for s, v in self.identifiers.items()}
        return query


def _value_texts(v: Any, where: str) -> list[str]:
    values = v if isinstance(v, list) else [v]
    out: list[str] = []
    for i, item in enumerate(values):
        if isinstance(item, bool):
            text = "true" if item else "false"
        elif isinstance(item, int):
            text = str(item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidField(f"{where}[{i}]", "must be a finite number.", location="body")
            text = str(int(item)) if item.is_integer() else str(item)
        elif isinstance(item, str) or (isinstance(item, dict) and isinstance(item.get("id"), str)):
            text = item if isinstance(item, str) else item["id"]
            if len(text) > MAX_TEXT:
                raise InvalidField(where, f"is longer than {MAX_TEXT} characters.", location="body")
        else:
            raise InvalidField(
                f"{where}[{i}]" if isinstance(v, list) else where,
                "must be a string, number, boolean or {id, name} object.",
                location="body",
            )
        text = text.strip()
        if text:
            out.append(text)
    return out


def parse_queries(batch: Any, release: Release, param: str = "queries") -> list[_Query]:
    """Validate a query batch (the 0.2 schema, field by field) into queries."""
    if not isinstance(batch, dict):
        raise InvalidField(param, "must be a JSON object of queries keyed by id.", location="body")
    if len(batch) > MAX_QUERIES:
        raise RequestEntityTooLarge(
            f"a batch holds at most {MAX_QUERIES} queries; got {len(batch)}."
        )
    schemes = set(release.schemes)
    sources = set(release.source_names)
    out: list[_Query] = []
    allowed = {"query", "type", "limit", "properties", "type_strict"}
    for key, q in batch.items():
        where = f"{param}.{key}"
        if not isinstance(q, dict):
            raise InvalidField(where, "must be an object.", location="body")
        extra = set(q) - allowed
        if extra:
            raise InvalidField(
                f"{where}.{sorted(extra)[0]}",
                f"is not a query field; use {sorted(allowed)}.",
                location="body",
            )
        # a member given is checked, null included: null is not a string, array or number
        name = q.get("query")
        if "query" in q and not isinstance(name, str):
            raise InvalidField(f"{where}.query", "must be a string.", location="body")
        if name is not None and len(name) > MAX_TEXT:
            raise InvalidField(
                f"{where}.query", f"is longer than {MAX_TEXT} characters.", location="body"
            )
        props = q.get("properties")
        if "properties" in q and not isinstance(props, list):
            raise InvalidField(
                f"{where}.properties", "must be an array of {pid, v}.", location="body"
            )
        if name is None and not props:
            raise InvalidField(
                f"{where}.query", "give a query string or at least one property.", location="body"
            )
        raw_type = q.get("type")
        if "type" not in q:
            types: list[str] = []
        elif isinstance(raw_type, str):
            types = [raw_type]
        elif isinstance(raw_type, list) and all(isinstance(t, str) for t in raw_type):
            types = list(raw_type)
        else:
            raise InvalidField(
                f"{where}.type", "must be a type id or an array of type ids.", location="body"
            )
        strict = q.get("type_strict", "any")
        if strict not in ("any", "should", "all"):
            raise InvalidField(
                f"{where}.type_strict", "must be any, should or all.", location="body"
            )
        limit = q.get("limit", DEFAULT_LIMIT)
        if (
            isinstance(limit, bool)
            or not isinstance(limit, (int, float))
            or not math.isfinite(limit)
        ):
            raise InvalidField(f"{where}.limit", "must be a number.", location="body")
        query = _Query(
            str(key),
            name.strip() if name and name.strip() else None,
            types,
            strict,
            max(1, min(MAX_LIMIT, int(limit))),
        )
        for j, prop in enumerate(props or []):
            pwhere = f"{where}.properties[{j}]"
            if (
                not isinstance(prop, dict)
                or not isinstance(prop.get("pid"), str)
                or "v" not in prop
            ):
                raise InvalidField(pwhere, "must be an object {pid, v}.", location="body")
            pid = prop["pid"].strip()
            values = _value_texts(prop["v"], f"{pwhere}.v")
            if not values:
                continue
            if pid in schemes:
                query.identifiers.setdefault(pid, []).extend(values)
            elif pid.startswith("record:") and pid[7:] in sources:
                query.records.extend((pid[7:], v) for v in values)
            elif pid in TEXT_PROPERTIES:
                query.fields[pid] = values[0]
            # other properties are not known to this service and do not affect matching
        out.append(query)
    return out


@dataclass
class _Scored:
    entity_id: str
    probability: float
    weight: float | None = None
    by_identifier: bool = False
    explanation: dict[str, Any] = field(default_factory=dict)
    #: The matched record's row in the matcher (-1: found by an identifier only).
    row: int = -1

    def of_query_class(self) -> bool:
        """Whether its class is the query's (declared, or implied by the query's name)."""
        detail = self.explanation.get("facility_type")
        return isinstance(detail, dict) and detail.get("level") == "same"

    def name_bits(self) -> float:
        """The weight of its name's agreement with the query's (bits; 0 without one)."""
        detail = self.explanation.get("name")
        w = detail.get("weight") if isinstance(detail, dict) else None
        return float(w) if isinstance(w, (int, float)) and math.isfinite(w) else 0.0


def _identifier_hits(release: Release, q: _Query) -> list[str]:
    hits: list[str] = []
    for scheme, values in q.identifiers.items():
        for value in values:
            ids = release.entities_by_identifier(scheme, value)
            if not ids:
                norm = normalized_identifier(scheme, value)
                ids = release.entities_by_identifier(scheme, norm) if norm else ()
            hits.extend(ids)
    for source, record_id in q.records:
        entity = release.entity_by_record(source, record_id)
        if entity:
            hits.append(entity)
    return list(dict.fromkeys(hits))


def required_margin(weight: float) -> float:
    """The margin of weight (bits) over the runner-up that a top candidate of match weight
    ``weight`` needs: MATCH_MARGIN_BITS from a probability of MATCH_PROBABILITY up, and
    below it also the bits the top lacks of MATCH_PROBABILITY (6.17 at a score of 50)."""
    bits = math.log2(MATCH_PROBABILITY / (1 - MATCH_PROBABILITY))
    return MATCH_MARGIN_BITS + max(0.0, bits - weight)


def _certain(
    ranked: list[_Scored],
    id_hits: list[str],
    name_alone: bool = False,
    beside: list[tuple[bool, bool]] | None = None,
) -> bool:
    """Whether the top candidate is a match (``match: true``).

    With department ids in the query: they point to exactly one entity and it is
    the top candidate. Without: the query gives more than a name (``name_alone``
    never decides), the top candidate's probability is at least
    MATCH_FLOOR_PROBABILITY and its match weight exceeds the runner-up's by
    :func:`required_margin` (a lone candidate has no runner-up). ``ranked``: every
    candidate of the query's types, best first, not only those returned.

    ``beside[k]`` says of ``ranked[k + 1]`` whether it is at the top's place, and whether
    it is the top's facility listed twice (:meth:`crosswalk.matching.Matcher.beside`).
    The records at the top's place decide first: the top's facility listed twice is
    never matched; a top not of the query's class while a record at its place is, is
    not matched; a top of the query's class that no other record at its place shares
    is not matched when a record there agrees better with the query's name, and else
    needs its margin only over the candidates elsewhere (the others at its place, a
    distinct-part unit or a record of class ``other``, are other facilities there).
    docs/api.md, "The records at the top's address".
    """
    if not ranked:
        return False
    top = ranked[0]
    if id_hits:
        return len(id_hits) == 1 and top.entity_id == id_hits[0]
    if name_alone or top.probability < MATCH_FLOOR_PROBABILITY or top.weight is None:
        return False
    beside = beside or [(False, False)] * (len(ranked) - 1)
    if any(twice for _, twice in beside):
        return False
    rivals = ranked[1:]
    here = [s for s, (at_place, _) in zip(rivals, beside, strict=True) if at_place]
    if any(s.of_query_class() for s in here):
        if not top.of_query_class():
            return False
    elif top.of_query_class():
        if any(s.name_bits() > top.name_bits() for s in here):
            return False  # the name says another record at the place, the type the top
        rivals = [s for s, (at_place, _) in zip(rivals, beside, strict=True) if not at_place]
    if not rivals:
        return top.probability >= MATCH_PROBABILITY
    second = rivals[0].weight
    return second is None or top.weight - second >= required_margin(top.weight)


def _type_ok(q: _Query, facility_class: str | None) -> bool:
    wanted = [t for t in q.types if t != ANY_TYPE]
    if not q.types or len(wanted) < len(q.types) or q.strict == "should":
        return True
    if q.strict == "all" and len(set(wanted)) > 1:
        return False  # an entity has one class
    return facility_class in wanted


def _beside(
    release: Release, kept_of: list[list[_Scored]], hits_of: list[list[str]]
) -> list[list[tuple[bool, bool]]]:
    """For each query whose match the margin decides (no department ids, a top found by
    the matcher, a runner-up), whether each other candidate is at the top's place and
    whether it is the top's facility listed twice (one matcher call for the batch)."""
    out: list[list[tuple[bool, bool]]] = [[(False, False)] * max(len(k) - 1, 0) for k in kept_of]
    where: list[tuple[int, int]] = []
    left: list[int] = []
    right: list[int] = []
    for i, (kept, hits) in enumerate(zip(kept_of, hits_of, strict=True)):
        if hits or len(kept) < 2 or kept[0].row < 0:
            continue
        for k, s in enumerate(kept[1:]):
            if s.row >= 0:
                where.append((i, k))
                left.append(kept[0].row)
                right.append(s.row)
    if not where:
        return out
    at_place, twice = release.matcher().beside(np.array(left), np.array(right))
    for (i, k), a, t in zip(where, at_place.tolist(), twice.tolist(), strict=True):
        out[i][k] = (bool(a), bool(t))
    return out


def reconcile(release: Release, queries: list[_Query]) -> dict[str, Any]:
    """Answer a batch of parsed queries."""
    fuzzy_index = [i for i, q in enumerate(queries) if has_text(q.name)]
    fuzzy: dict[int, list[Any]] = {}
    if fuzzy_index:
        engine_queries = [queries[i].engine_query() for i in fuzzy_index]
        # one more than asked, and at least DEFAULT_LIMIT + 1: the runner-up decides whether
        # the top is a match, and it may stand behind other records at the top's place
        width = max(DEFAULT_LIMIT, *(queries[i].limit for i in fuzzy_index)) + 1
        if any(queries[i].types for i in fuzzy_index):
            width = min(MAX_LIMIT, width * 4)
        results = release.matcher().match(engine_queries, limit=width)
        fuzzy = dict(zip(fuzzy_index, results, strict=True))
    scored: list[tuple[list[_Scored], list[str]]] = []
    all_ids: list[str] = []
    for i, q in enumerate(queries):
        hits = _identifier_hits(release, q)
        by_id: dict[str, _Scored] = {e: _Scored(e, 1.0, None, True) for e in hits}
        for cand in fuzzy.get(i, []):
            prob = float(cand.match_probability)
            prob = prob if math.isfinite(prob) else 0.0
            weight = float(cand.match_weight)
            explanation = dict(cand.explanation)
            if cand.entity_id in by_id:
                by_id[cand.entity_id].weight = weight
                by_id[cand.entity_id].explanation = explanation
                by_id[cand.entity_id].row = cand.row
            else:
                by_id[cand.entity_id] = _Scored(
                    cand.entity_id, prob, weight, False, explanation, cand.row
                )
        ranked = sorted(by_id.values(), key=lambda s: (-s.probability, not s.by_identifier))
        scored.append((ranked, hits))
        all_ids.extend(s.entity_id for s in ranked)
    found = summaries(release, all_ids)
    kept_of: list[list[_Scored]] = []
    for q, (ranked, _) in zip(queries, scored, strict=True):
        kept = [
            s
            for s in ranked
            if s.entity_id in found and _type_ok(q, found[s.entity_id].get("facility_class"))
        ]
        if q.strict == "should" and q.types:
            wanted = set(q.types)
            kept.sort(
                key=lambda s: (
                    found[s.entity_id].get("facility_class") not in wanted
                    and ANY_TYPE not in wanted,
                    -s.probability,
                )
            )
        kept_of.append(kept)
    beside = _beside(release, kept_of, [hits for _, hits in scored])
    answer: dict[str, Any] = {}
    for q, (_, hits), kept, near in zip(queries, scored, kept_of, beside, strict=True):
        certain = _certain(kept, hits, name_alone=not q.fields, beside=near)
        kept = kept[: q.limit]
        result = []
        for n, s in enumerate(kept):
            summary = found[s.entity_id]
            fclass = summary.get("facility_class")
            features: list[dict[str, Any]] = [
                {"id": "match_probability", "value": round(s.probability, 6)},
                {"id": "identifier_match", "value": s.by_identifier},
            ]
            if s.weight is not None and math.isfinite(s.weight):
                features.append({"id": "match_weight", "value": round(s.weight, 4)})
            for fname, detail in sorted(s.explanation.items()):
                w = detail.get("weight") if isinstance(detail, dict) else None
                if isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w):
                    features.append({"id": f"{fname}_weight", "value": round(float(w), 4)})
            result.append(
                {
                    "id": s.entity_id,
                    "name": summary.get("name") or s.entity_id,
                    "description": _describe(summary),
                    "score": round(100.0 * s.probability, 2),
                    "match": bool(certain and n == 0),
                    "type": [{"id": fclass, "name": class_label(fclass)}] if fclass else [],
                    "features": features,
                }
            )
        answer[q.key] = {"result": result}
    return dict(finite(answer))


# ---------------------------------------------------------------------- data extension


def extend(release: Release, query: Any) -> dict[str, Any]:
    """Answer a data extension query: property values of entities."""
    ids, pids = extension_query(query)
    catalog = {p["id"]: p["name"] for p in _property_catalog(release)}
    meta = [{"id": pid, "name": catalog.get(pid, pid)} for pid in pids]
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for entity_id in dict.fromkeys(ids):
        doc = release.entity_document(entity_id) if len(entity_id) <= 200 else None
        row: dict[str, list[dict[str, Any]]] = {}
        for pid in pids:
            row[pid] = _extension_values(doc, pid) if doc is not None else []
        rows[entity_id] = row
    return {"meta": meta, "rows": rows}


def extension_query(query: Any) -> tuple[list[str], list[str]]:
    """Validate a data extension query: its entity ids and property ids."""
    if not isinstance(query, dict):
        raise InvalidField("extend", "must be an object {ids, properties}.", location="body")
    ids, props = query.get("ids"), query.get("properties")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise InvalidField("extend.ids", "must be an array of entity ids.", location="body")
    if not isinstance(props, list) or not all(
        isinstance(p, dict) and isinstance(p.get("id"), str) for p in props
    ):
        raise InvalidField(
            "extend.properties", "must be an array of {id} objects.", location="body"
        )
    if len(ids) > MAX_QUERIES or len(props) > MAX_PROPERTIES:
        raise RequestEntityTooLarge(
            f"an extension holds at most {MAX_QUERIES} ids and {MAX_PROPERTIES} properties."
        )
    return ids, [str(p["id"]) for p in props]


def _extension_values(doc: dict[str, Any], pid: str) -> list[dict[str, Any]]:
    if pid in doc.get("identifiers", {}):
        return [{"str": v} for v in doc["identifiers"][pid]]
    if pid.startswith("record:"):
        source = pid[7:]
        return [{"str": r["record_id"]} for r in doc["records"] if r["source"] == source]
    if pid not in EXTEND_FIELDS:
        return []
    value = doc.get(pid)
    if value is None or value == "":
        return []
    if pid == "sources":
        return [{"str": s} for s in value]
    if pid == "member_count":
        return [{"int": int(value)}]
    if isinstance(value, float):
        return [{"float": value}] if math.isfinite(value) else []
    if pid == "facility_class":
        return [{"id": str(value), "name": class_label(str(value))}]
    return [{"str": str(value)}]


# ---------------------------------------------------------------------- views

_PROPERTY_VALUE: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "maxLength": MAX_TEXT},
        {"type": "number"},
        {"type": "boolean"},
        {
            "type": "object",
            "required": ["id"],
            "properties": {"id": {"type": "string", "maxLength": MAX_TEXT}},
        },
    ]
}
#: A reconciliation query batch, as this service validates it (the 0.2 schema, field by field).
QUERY_BATCH: dict[str, Any] = {
    "type": "object",
    "maxProperties": MAX_QUERIES,
    "additionalProperties": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "query": {"type": "string", "maxLength": MAX_TEXT},
            "type": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
            "type_strict": {"type": "string", "enum": ["any", "should", "all"]},
            "limit": {"type": "number"},
            "properties": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["pid", "v"],
                    "properties": {
                        "pid": {"type": "string"},
                        "v": {
                            "anyOf": [
                                _PROPERTY_VALUE,
                                {"type": "array", "items": _PROPERTY_VALUE},
                            ]
                        },
                    },
                },
            },
        },
        "anyOf": [
            {"required": ["query"]},
            {"required": ["properties"], "properties": {"properties": {"minItems": 1}}},
        ],
    },
}
#: A data extension query.
EXTEND_QUERY: dict[str, Any] = {
    "type": "object",
    "required": ["ids", "properties"],
    "properties": {
        "ids": {"type": "array", "maxItems": MAX_QUERIES, "items": {"type": "string"}},
        "properties": {
            "type": "array",
            "maxItems": MAX_PROPERTIES,
            "items": {
                "type": "object",
                "required": ["id"],
                "properties": {"id": {"type": "string"}},
            },
        },
    },
}

_SERVICE_PARAMS = [
    {
        "name": "queries",
        "in": "query",
        "required": False,
        "description": "A reconciliation query batch (JSON object of queries keyed by id).",
        "content": {"application/json": {"schema": QUERY_BATCH}},
        "example": '{"q0":{"query":"ALAMEDA HOSPITAL","properties":[{"pid":"city","v":"Alameda"}]}}',
    },
    {
        "name": "extend",
        "in": "query",
        "required": False,
        "description": "A data extension query (JSON object {ids, properties}).",
        "content": {"application/json": {"schema": EXTEND_QUERY}},
    },
]
_SERVICE_RESPONSES = {
    "200": json_resp_spec(
        {"type": "object"},
        "The manifest (no parameters), a reconciliation result batch (queries) or a data "
        "extension response (extend).",
    ),
    "400": _E400,
    "404": _E404,
    "413": problem_response("Too many queries or ids, or too large a body."),
    "415": problem_response("The body is neither a url-encoded nor a multipart form."),
    "503": problem_response("The engine's model cannot be loaded for this release."),
}


def _service(fields: dict[str, str]) -> Response:
    release = release_from_args()
    if request.method == "POST" and "queries" not in fields and "extend" not in fields:
        raise InvalidField(
            "queries",
            "send a form with queries (or extend); GET /reconcile answers the manifest.",
            location="body",
        )
    extension = parse_json_text(fields["extend"], "extend") if "extend" in fields else None
    if "queries" in fields:
        batch = parse_json_text(fields["queries"], "queries")
        queries = parse_queries(batch, release)
        if "extend" in fields:
            extension_query(extension)  # checked too, though the queries are answered
        return _answer(reconcile(release, queries))
    if "extend" in fields:
        return _answer(extend(release, extension))
    return _answer(manifest())


@bp.get("")
@operation(
    tags=["reconciliation"],
    summary="Reconciliation service: manifest, queries or data extension",
    description=(
        "W3C Reconciliation API 0.2. Without parameters: the manifest. With `queries`: a batch "
        "of reconciliation queries. With `extend`: a data extension query."
    ),
    parameters=_SERVICE_PARAMS,
    responses=_SERVICE_RESPONSES,
)
def service_get() -> Response:
    """Manifest, queries or extension by GET."""
    return _service(form_fields())


@bp.post("")
@operation(
    tags=["reconciliation"],
    summary="Reconciliation queries or data extension by POST",
    description="Send `queries` (or `extend`) as a form field, as OpenRefine does.",
    requestBody={
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "queries": {
                            "type": "string",
                            "description": "A query batch in JSON, as the `queries` parameter.",
                        },
                        "extend": {
                            "type": "string",
                            "description": "An extension query in JSON, as the `extend` parameter.",
                        },
                    },
                    "anyOf": [{"required": ["queries"]}, {"required": ["extend"]}],
                }
            }
        },
    },
    responses=_SERVICE_RESPONSES,
)
def service_post() -> Response:
    """Queries or extension by POST (a form)."""
    return _service(form_fields())


@bp.get("/preview")
@operation(
    tags=["reconciliation"],
    summary="HTML preview of an entity",
    parameters=[
        {
            "name": "id",
            "in": "query",
            "required": True,
            "schema": {"type": "string", "minLength": 1},
            "example": "F00001",
        }
    ],
    responses={
        "200": {
            "description": "An HTML fragment page.",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        "400": _E400,
        "404": _E404,
    },
)
def preview() -> Response:
    """A small HTML card for an entity, for OpenRefine's preview pane."""
    release = release_from_args()
    raw = request.args.get("id")
    if not raw:
        raise InvalidField("id", "is required (an entity id).")
    entity_id = raw.strip()
    doc = release.entity_document(entity_id) if 0 < len(entity_id) <= 200 else None
    if doc is None:
        raise EntityNotFound(f"no entity {entity_id!r} in release {release.version!r}.")
    e = html.escape
    rows = "".join(
        f"<tr><th>{e(SCHEMES.get(s, s))}</th><td>{e(', '.join(v))}</td></tr>"
        for s, v in doc["identifiers"].items()
    )
    members = "".join(
        f"<li>{e(str(r['source']))} {e(str(r['record_id']))}: {e(str(r.get('name') or ''))}</li>"
        for r in doc["records"]
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{e(str(doc.get('name') or entity_id))}</title>"
        "<style>body{font:13px/1.4 system-ui,sans-serif;margin:8px}h1{font-size:15px;margin:0 0 4px}"
        "table{border-collapse:collapse}th{text-align:left;padding-right:8px;color:#555}"
        "ul{padding-left:16px;margin:4px 0}</style></head><body>"
        f"<h1>{e(str(doc.get('name') or entity_id))}</h1>"
        f"<p>{e(_describe(doc))}</p>"
        f"<table>{rows}</table><ul>{members}</ul>"
        f"<p><a href='{e(_root())}/v1/entities/{e(entity_id)}' target='_blank'>{e(entity_id)}</a>"
        f" · release {e(release.version)}</p></body></html>"
    )
    return Response(page, mimetype="text/html", headers={"Cache-Control": "public, max-age=60"})


def _suggest_params(name: str) -> list[dict[str, Any]]:
    return [
        {
            "name": "prefix",
            "in": "query",
            "required": True,
            "schema": {"type": "string"},
            "example": name,
        },
        {
            "name": "cursor",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 0, "maximum": MAX_SUGGEST_CURSOR},
        },
    ]


_SUGGEST_RESPONSES = {
    "200": json_resp_spec(
        {
            "type": "object",
            "required": ["result"],
            "properties": {
                "result": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "name"],
                        "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
                    },
                }
            },
        }
    ),
    "400": _E400,
    "404": _E404,
}


def _prefix_and_cursor() -> tuple[str, int]:
    prefix = request.args.get("prefix")
    if prefix is None:
        raise InvalidField("prefix", "is required.")
    if len(prefix) > 500:
        raise InvalidField("prefix", "is longer than 500 characters.")
    return prefix.strip(), int_arg("cursor", 0, 0, MAX_SUGGEST_CURSOR)


@bp.get("/suggest/entity")
@operation(
    tags=["reconciliation"],
    summary="Suggest entities by name prefix",
    parameters=_suggest_params("alameda"),
    responses=_SUGGEST_RESPONSES,
)
def suggest_entity() -> Response:
    """Entities whose name starts with (then contains) the prefix, or whose id is the prefix."""
    release = release_from_args()
    prefix, cursor = _prefix_and_cursor()
    if not prefix:
        return _answer({"result": []})
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = release.query(
        "SELECT * FROM entities WHERE entity_id = ? OR name LIKE ? ESCAPE '\\' "
        "ORDER BY entity_id != ?, name NOT LIKE ? ESCAPE '\\', name, entity_id LIMIT 10 OFFSET ?",
        (prefix, f"%{escaped}%", prefix, f"{escaped}%", cursor),
    )
    from api.store import entity_summary

    result = []
    for row in rows:
        summary = entity_summary(row)
        fclass = summary.get("facility_class")
        result.append(
            {
                "id": summary["entity_id"],
                "name": summary.get("name") or summary["entity_id"],
                "description": _describe(summary),
                "notable": [{"id": fclass, "name": class_label(fclass)}] if fclass else [],
            }
        )
    return _answer({"result": result})


@bp.get("/suggest/type")
@operation(
    tags=["reconciliation"],
    summary="Suggest facility classes (types)",
    parameters=_suggest_params("hosp"),
    responses=_SUGGEST_RESPONSES,
)
def suggest_type() -> Response:
    """Types whose id or name contains the prefix."""
    release = release_from_args()
    prefix, cursor = _prefix_and_cursor()
    low = prefix.lower()
    hits = [t for t in _types(release) if low in t["id"].lower() or low in t["name"].lower()]
    return _answer({"result": hits[cursor : cursor + 10]})


@bp.get("/suggest/property")
@operation(
    tags=["reconciliation"],
    summary="Suggest properties (department ids and facility fields)",
    parameters=_suggest_params("id"),
    responses=_SUGGEST_RESPONSES,
)
def suggest_property() -> Response:
    """Properties whose id or name contains the prefix."""
    release = release_from_args()
    prefix, cursor = _prefix_and_cursor()
    low = prefix.lower()
    hits = [
        p for p in _property_catalog(release) if low in p["id"].lower() or low in p["name"].lower()
    ]
    return _answer({"result": hits[cursor : cursor + 10]})


@bp.get("/propose_properties")
@operation(
    tags=["reconciliation"],
    summary="Properties to fetch by data extension",
    description="The department ids first (every identifier scheme and each source's record id), then facility fields.",
    parameters=[
        {"name": "type", "in": "query", "required": False, "schema": {"type": "string"}},
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_INT},
        },
    ],
    responses={
        "200": json_resp_spec(
            {
                "type": "object",
                "required": ["properties"],
                "properties": {
                    "type": {"type": "string"},
                    "limit": {"type": "number"},
                    "properties": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["id", "name"],
                            "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
                        },
                    },
                },
            }
        ),
        "400": _E400,
        "404": _E404,
    },
)
def propose_properties() -> Response:
    """Proposed properties for a type (the same for every facility class)."""
    release = release_from_args()
    ptype = request.args.get("type") or ANY_TYPE
    limit = int_arg("limit", 100, 1, MAX_INT)
    catalog = [
        p
        for p in _property_catalog(release)
        if p["id"] not in TEXT_PROPERTIES or p["id"] in EXTEND_FIELDS
    ]
    body: dict[str, Any] = {"type": ptype[:200], "properties": catalog[: min(limit, 1000)]}
    if "limit" in request.args:
        body["limit"] = limit
    return _answer(body)
