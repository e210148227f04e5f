"""The ``/v1`` JSON endpoints: entities, lookups, matching, search, sources and releases."""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from api.http import (
    CACHE_LATEST,
    CACHE_PINNED,
    cached,
    int_arg,
    json_body,
    json_response,
    registry,
    release_from_args,
    text_arg,
)
from api.problems import EntityNotFound, Gone, InvalidField
from api.schemas import (
    CACHE_HEADERS,
    COMPONENTS,
    NAME_PATTERN,
    NO_NUL,
    NOT_MODIFIED,
    RELEASE_PARAM,
    problem_response,
    ref,
)
from api.schemas import (
    json_response as json_resp_spec,
)
from api.spec import operation
from api.store import MAX_TEXT, Release, dumps, entity_summary

bp = Blueprint("v1", __name__, url_prefix="/v1")

#: Most lookups in one POST /v1/lookup.
MAX_BATCH = 1000
#: Most candidates /v1/match returns.
MAX_MATCH_LIMIT = 50
#: Longest redirect chain followed for retired ids.
MAX_HOPS = 16

_E400 = problem_response("Invalid request; the problem names the field at fault.")
_E404 = problem_response("Not found.")
_E413 = problem_response("The batch or body is too large.")
_E415 = problem_response("The body is not application/json.")
_E503 = problem_response(
    "The engine's model cannot be loaded for this release (lookups still work); see Retry-After."
)


def _str_param(name: str, description: str, example: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "maxLength": MAX_TEXT, "pattern": NO_NUL}
    out: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": schema}
    out["description"] = description
    if example is not None:
        out["example"] = example
    return out


# ---------------------------------------------------------------------- entities


@bp.get("/entities/<entity_id>")
@operation(
    tags=["entities"],
    summary="Get an entity",
    description=(
        "The canonical name and address of an entity, its department ids, and every member "
        "record with its source, record id, identifiers, and how it was linked. A retired id "
        "answers 308 to its successor, or 410 when it has none."
    ),
    parameters=[
        {
            "name": "entity_id",
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
            "example": "F00001",
        },
        RELEASE_PARAM,
    ],
    responses={
        "200": {**json_resp_spec(ref("Entity")), "headers": CACHE_HEADERS},
        "304": NOT_MODIFIED,
        "308": {
            **json_resp_spec(ref("Redirect"), "The id was merged; Location names the successor."),
            "headers": {"Location": {"schema": {"type": "string"}}},
        },
        "400": _E400,
        "404": _E404,
        "410": problem_response("The id was retired and has no successor."),
    },
)
def get_entity(entity_id: str) -> Response:
    """One entity with its member records."""
    release = release_from_args()
    data = release.entity_json(entity_id)
    if data is None:
        return _missing_entity(release, entity_id)
    return cached(data, release, entity_id)


def _missing_entity(release: Release, entity_id: str) -> Response:
    retired = release.retired(entity_id)
    if retired is None:
        raise EntityNotFound(f"no entity {entity_id!r} in release {release.version!r}.")
    successor = retired.successor
    hops = 0
    while successor and release.entity_json(successor) is None and hops < MAX_HOPS:
        nxt = release.retired(successor)
        if nxt is None or not nxt.successor:
            break
        successor = nxt.successor
        hops += 1
    if successor and release.entity_json(successor) is not None:
        location = f"{request.script_root}/v1/entities/{successor}"
        if request.args.get("release"):
            location += "?" + urlencode({"release": request.args["release"]})
        body = {
            "entity_id": entity_id,
            "change": retired.change,
            "successor": successor,
            "location": location,
        }
        return json_response(
            body,
            308,
            {"Location": location, "Cache-Control": CACHE_LATEST},
        )
    raise Gone(
        f"entity {entity_id!r} was retired ({retired.change}) in release {retired.release!r}"
        + (f": {retired.details}" if retired.details else "."),
        {
            "entity_id": entity_id,
            "change": retired.change,
            "retired_in": retired.release,
            "details": retired.details,
        },
    )


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@bp.get("/entities")
@operation(
    tags=["entities"],
    summary="Search and list entities",
    description=(
        "Entities in id order, filtered by a text query (name, other names or an exact "
        "identifier value), a source, a facility class and a county. Pages are linked by a "
        '`next` cursor (the last entity id of the page), also sent in a `Link: <...>; rel="next"` '
        "header."
    ),
    parameters=[
        _str_param(
            "q", "Text in the name or other names, or an exact identifier value.", "hospital"
        ),
        _str_param("source", "Only entities with a member from this source.", "hcai"),
        _str_param("type", "Only entities of this facility class.", "hospice"),
        _str_param("county", "Only entities in this county (case-insensitive).", "Alameda"),
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
        },
        _str_param(
            "cursor",
            "The `next` token of the previous page: the listing goes on after it in id order.",
        ),
        RELEASE_PARAM,
    ],
    responses={
        "200": {
            **json_resp_spec(ref("EntityPage")),
            "headers": {
                "Link": {"description": "rel=next link", "schema": {"type": "string"}},
                "Cache-Control": CACHE_HEADERS["Cache-Control"],
            },
        },
        "400": _E400,
        "404": _E404,
    },
)
def list_entities() -> Response:
    """Search and list entities with keyset (cursor) pagination."""
    release = release_from_args()
    q = text_arg("q")
    source = text_arg("source")
    ftype = text_arg("type")
    county = text_arg("county")
    limit = int_arg("limit", 20, 1, 100)
    where: list[str] = []
    params: list[Any] = []
    # keyset pagination: the cursor is the last entity id of the previous page
    after = text_arg("cursor")
    if after:
        where.append("entity_id > ?")
        params.append(after)
    if q:
        pattern = _like(q)
        where.append(
            "(name LIKE ? ESCAPE '\\' OR entity_id IN (SELECT entity_id FROM records "
            "WHERE name LIKE ? ESCAPE '\\' OR other_names LIKE ? ESCAPE '\\') "
            "OR entity_id IN (SELECT entity_id FROM identifiers WHERE value = ?))"
        )
        params += [pattern, pattern, pattern, q]
    if source:
        where.append("(',' || sources || ',') LIKE ? ESCAPE '\\'")
        params.append(_like("," + source + ","))
    if ftype:
        where.append("lower(facility_class) = lower(?)")
        params.append(ftype)
    if county:
        where.append("lower(county) = lower(?)")
        params.append(county)
    sql = "SELECT * FROM entities"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY entity_id LIMIT ?"
    params.append(limit + 1)
    rows = release.query(sql, params)
    items = [entity_summary(r) for r in rows[:limit]]
    headers = {"Cache-Control": CACHE_PINNED if request.args.get("release") else CACHE_LATEST}
    next_token = None
    if len(rows) > limit:
        next_token = items[-1]["entity_id"]
        args = {k: v for k, v in request.args.items() if k != "cursor"}
        args["cursor"] = next_token
        headers["Link"] = f'<{request.base_url}?{urlencode(args)}>; rel="next"'
    body = {"release": release.version, "items": items, "next": next_token}
    return json_response(body, headers=headers)


# ---------------------------------------------------------------------- lookup


def normalized_identifier(scheme: str, value: str) -> str | None:
    """The engine's normalized form of an identifier (its shared normalizer), if it has one."""
    from crosswalk.matching import normalized_identifier as engine_form  # loaded on first use

    return engine_form(scheme, value)


def _resolve(
    release: Release, item: dict[str, Any], where: str
) -> tuple[dict[str, Any], list[str]]:
    """Validate one lookup and find its entity ids."""
    scheme, value = item.get("scheme"), item.get("value")
    source, record_id = item.get("source"), item.get("record_id")
    loc = "query" if where == "" else "body"

    def field(name: str) -> str:
        return f"{where}{name}"

    for name, val in (
        ("scheme", scheme),
        ("value", value),
        ("source", source),
        ("record_id", record_id),
    ):
        # a blank value is looked up (and not found), as the spec's minLength allows it
        if name in item and (not isinstance(val, str) or not val or len(val) > MAX_TEXT):
            raise InvalidField(
                field(name),
                f"must be a non-empty string of at most {MAX_TEXT} characters.",
                location=loc,
            )
    if (scheme is not None or value is not None) and (source is not None or record_id is not None):
        raise InvalidField(
            field("scheme" if scheme is not None else "value"),
            "give scheme and value, or source and record_id, not both.",
            location=loc,
        )
    if scheme is not None or value is not None:
        if scheme is None:
            raise InvalidField(field("scheme"), "is required with value.", location=loc)
        if value is None:
            raise InvalidField(field("value"), "is required with scheme.", location=loc)
        scheme, value = scheme.strip(), value.strip()
        if scheme not in release.schemes:
            raise InvalidField(
                field("scheme"),
                f"unknown scheme {scheme!r}; use one of {release.schemes}.",
                location=loc,
            )
        ids = release.entities_by_identifier(scheme, value)
        query: dict[str, Any] = {"scheme": scheme, "value": value}
        if not ids:
            norm = normalized_identifier(scheme, value)
            if norm and norm != value:
                ids = release.entities_by_identifier(scheme, norm)
                query["normalized_value"] = norm
        return query, list(ids)
    if source is not None or record_id is not None:
        if source is None:
            raise InvalidField(field("source"), "is required with record_id.", location=loc)
        if record_id is None:
            raise InvalidField(field("record_id"), "is required with source.", location=loc)
        source, record_id = source.strip(), record_id.strip()
        if source not in release.source_names:
            raise InvalidField(
                field("source"),
                f"unknown source {source!r}; use one of {release.source_names}.",
                location=loc,
            )
        entity = release.entity_by_record(source, record_id)
        return {"source": source, "record_id": record_id}, [entity] if entity else []
    raise InvalidField(
        field("scheme"), "give scheme and value, or source and record_id.", location=loc
    )


@bp.get("/lookup")
@operation(
    tags=["lookup"],
    summary="Look up an entity by any department id",
    description=(
        "Give `scheme` and `value` (any identifier scheme, e.g. oshpd_id, cdph_license, npi) "
        "or `source` and `record_id`. Answers the entity with every other department's id. "
        "An identifier shared by more than one entity answers all of them."
    ),
    parameters=[
        {
            "name": "lookup",
            "in": "query",
            "required": True,
            "style": "form",
            "explode": True,
            "description": (
                "`scheme` and `value` (an identifier), or `source` and `record_id` (a source's "
                "record), each a query parameter of its own."
            ),
            "schema": COMPONENTS["LookupQuery"],
            "example": {"scheme": "oshpd_id", "value": "106010735"},
        },
        RELEASE_PARAM,
    ],
    responses={
        "200": {**json_resp_spec(ref("LookupResult")), "headers": CACHE_HEADERS},
        "304": NOT_MODIFIED,
        "400": _E400,
        "404": _E404,
    },
)
def lookup() -> Response:
    """One lookup by identifier or by source record."""
    release = release_from_args()
    item = {
        k: request.args[k] for k in ("scheme", "value", "source", "record_id") if k in request.args
    }
    query, ids = _resolve(release, item, "")
    if not ids:
        what = " ".join(f"{k}={v!r}" for k, v in query.items() if k != "normalized_value")
        raise EntityNotFound(f"no entity has {what} in release {release.version!r}.")
    hit = None
    if "scheme" in query and "normalized_value" not in query:
        hit = release.lookup_json(query["scheme"], query["value"])
    data, etag = hit or (release.result_json(query, ids), release.lookup_etag(query, ids))
    return cached(data, release, etag=etag)


@bp.post("/lookup")
@operation(
    tags=["lookup"],
    summary="Look up a batch of ids",
    description=f"Up to {MAX_BATCH} lookups in one request; results are in the order given.",
    parameters=[RELEASE_PARAM],
    requestBody={"required": True, "content": {"application/json": {"schema": ref("LookupBatch")}}},
    responses={
        "200": json_resp_spec(ref("LookupBatchResult")),
        "400": _E400,
        "404": _E404,
        "413": _E413,
        "415": _E415,
    },
)
def lookup_batch() -> Response:
    """A batch of lookups (at most MAX_BATCH)."""
    release = release_from_args()
    body = json_body()
    if not isinstance(body, dict):
        raise InvalidField("body", 'must be an object {"lookups": [...]}.', location="body")
    lookups = body.get("lookups")
    if not isinstance(lookups, list):
        raise InvalidField("lookups", "must be an array of lookups.", location="body")
    if len(lookups) > MAX_BATCH:
        raise RequestEntityTooLarge(
            f"a batch holds at most {MAX_BATCH} lookups; got {len(lookups)}."
        )
    parts = []
    for i, item in enumerate(lookups):
        if not isinstance(item, dict):
            raise InvalidField(f"lookups[{i}]", "must be an object.", location="body")
        query, ids = _resolve(release, item, f"lookups[{i}].")
        parts.append(release.result_json(query, ids))
    data = b'{"release":' + dumps(release.version) + b',"results":[' + b",".join(parts) + b"]}"
    return json_response(data, raw=True, headers={"Cache-Control": "no-store"})


# ---------------------------------------------------------------------- match

_MATCH_TEXT = ("name", "address", "city", "state", "zip", "facility_type", "phone")


def parse_match_query(body: Any) -> tuple[dict[str, Any], int]:
    """Validate a /v1/match body into the engine's query dict and a limit."""
    if not isinstance(body, dict):
        raise InvalidField("body", "must be a JSON object describing a facility.", location="body")
    known = {*_MATCH_TEXT, "latitude", "longitude", "identifiers", "limit"}
    for key in body:
        if key not in known:
            raise InvalidField(
                str(key)[:100], f"is not a match field; use {sorted(known)}.", location="body"
            )
    query: dict[str, Any] = {}
    for key in _MATCH_TEXT:
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise InvalidField(
                key, f"must be a string of at most {MAX_TEXT} characters.", location="body"
            )
        if value.strip():
            query[key] = value.strip()
    for key, bound in (("latitude", 90.0), ("longitude", 180.0)):
        value = body.get(key)
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not -bound <= value <= bound
        ):
            raise InvalidField(
                key, f"must be a number from {-bound:g} to {bound:g}.", location="body"
            )
        query[key] = float(value)
    idents = body.get("identifiers")
    if idents is not None:
        if not isinstance(idents, dict) or len(idents) > 20:
            raise InvalidField(
                "identifiers",
                "must be an object of at most 20 scheme: value pairs.",
                location="body",
            )
        clean: dict[str, str] = {}
        for scheme, value in idents.items():
            if not isinstance(value, str) or len(value) > MAX_TEXT:
                raise InvalidField(
                    f"identifiers.{str(scheme)[:100]}", "must be a string.", location="body"
                )
            if value.strip():
                clean[scheme] = value.strip()
        if clean:
            query["identifiers"] = clean
    limit = body.get("limit", 5)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_MATCH_LIMIT:
        raise InvalidField(
            "limit", f"must be an integer from 1 to {MAX_MATCH_LIMIT}.", location="body"
        )
    if not re.search(NAME_PATTERN, query.get("name") or ""):
        raise InvalidField(
            "name", "is required and must contain a letter or digit (A-Z, 0-9).", location="body"
        )
    return query, limit


def has_text(value: Any) -> bool:
    """Whether ``value`` is a string with at least one letter or digit."""
    return isinstance(value, str) and any(ch.isalnum() for ch in value)


def finite(value: Any) -> Any:
    """Replace non-finite floats (which JSON cannot carry) with None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def summaries(release: Release, entity_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Entity summaries by id, in one query."""
    if not entity_ids:
        return {}
    unique = list(dict.fromkeys(entity_ids))
    marks = ",".join("?" * len(unique))
    rows = release.query(f"SELECT * FROM entities WHERE entity_id IN ({marks})", unique)
    return {r["entity_id"]: entity_summary(r) for r in rows}


def candidate_json(cand: Any, summary: dict[str, Any] | None) -> dict[str, Any]:
    """A Candidate of the engine as JSON."""
    out: dict[str, Any] = {
        "entity_id": cand.entity_id,
        "match_probability": finite(float(cand.match_probability)),
        "match_weight": finite(float(cand.match_weight)),
        "matched_record": {"source": cand.source, "record_id": cand.record_id},
        "explanation": finite(dict(cand.explanation)),
    }
    if out["match_probability"] is None:
        out["match_probability"] = 0.0
    if summary is not None:
        out["entity"] = summary
    return out


@bp.post("/match")
@operation(
    tags=["match"],
    summary="Find the entities matching a facility record",
    description=(
        "Scores a record against the crosswalk with the engine's own normalizers, blocking and "
        "model, and returns up to `limit` candidate entities, best first, each with its match "
        "probability, match weight (bits) and per-field explanation."
    ),
    parameters=[RELEASE_PARAM],
    requestBody={"required": True, "content": {"application/json": {"schema": ref("MatchQuery")}}},
    responses={
        "200": json_resp_spec(ref("MatchResult")),
        "400": _E400,
        "404": _E404,
        "413": _E413,
        "415": _E415,
        "503": _E503,
    },
)
def match() -> Response:
    """Candidate entities for one record."""
    release = release_from_args()
    query, limit = parse_match_query(json_body())
    candidates = release.matcher().match([query], limit=limit)[0]
    found = summaries(release, [c.entity_id for c in candidates])
    body = {
        "release": release.version,
        "query": query,
        "candidates": [candidate_json(c, found.get(c.entity_id)) for c in candidates],
    }
    return json_response(body, headers={"Cache-Control": "no-store"})


# ---------------------------------------------------------------------- sources and releases


@bp.get("/sources")
@operation(
    tags=["releases"],
    summary="The department listings of the release",
    parameters=[RELEASE_PARAM],
    responses={
        "200": {
            **json_resp_spec(
                {
                    "type": "object",
                    "required": ["release", "sources"],
                    "properties": {
                        "release": {"type": "string"},
                        "sources": {"type": "array", "items": ref("Source")},
                    },
                }
            ),
            "headers": CACHE_HEADERS,
        },
        "304": NOT_MODIFIED,
        "400": _E400,
        "404": _E404,
    },
)
def sources() -> Response:
    """The sources table of the release."""
    release = release_from_args()
    data = dumps({"release": release.version, "sources": release.sources()})
    return cached(data, release, "sources")


def release_json(release: Release, latest: bool) -> dict[str, Any]:
    """A release's metadata as JSON."""
    meta = release.meta
    return {
        "version": release.version,
        "build_id": release.build_id,
        "built_at": release.built_at,
        "published_at": release.published_at,
        "sequence": release.sequence,
        "engine_version": meta.get("engine_version") or release.manifest.get("engine_version"),
        "previous_release": meta.get("previous_release")
        or release.manifest.get("previous_release")
        or release.manifest.get("previous")
        or None,
        "counts": release.counts,
        "latest": latest,
        "changes": release.change_counts(),
    }


@bp.get("/release")
@operation(
    tags=["releases"],
    summary="The release being served",
    description="Version, build id, build time and counts of the latest (or the named) release.",
    parameters=[RELEASE_PARAM],
    responses={
        "200": {**json_resp_spec(ref("Release")), "headers": CACHE_HEADERS},
        "304": NOT_MODIFIED,
        "400": _E400,
        "404": _E404,
    },
)
def release_info() -> Response:
    """Metadata of one release."""
    release = release_from_args()
    latest = registry().latest()
    return cached(dumps(release_json(release, release is latest)), release, "release")


@bp.get("/releases")
@operation(
    tags=["releases"],
    summary="Every release the service can answer from",
    description="Latest first, each with its counts and the number of id changes by kind.",
    responses={
        "200": json_resp_spec(
            {
                "type": "object",
                "required": ["latest", "releases"],
                "properties": {
                    "latest": {"type": "string"},
                    "releases": {"type": "array", "items": ref("Release")},
                },
            }
        )
    },
)
def releases() -> Response:
    """All releases, latest first."""
    reg = registry()
    latest = reg.latest()
    body = {
        "latest": latest.version,
        "releases": [release_json(r, r is latest) for r in reg],
    }
    return json_response(body, headers={"Cache-Control": "public, max-age=60"})
