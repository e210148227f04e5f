"""The review JSON endpoints, for departments that script their review.

``GET /v1/disputes``, ``GET /v1/disputes/{id}``, ``POST /v1/disputes/{id}/decision``
and ``POST /v1/decisions/{event_id}/undo``. They authenticate with
``Authorization: Bearer <token>`` (tokens from ``crosswalk reviewers add
--token``) and are scoped like the web UI: a reviewer sees and decides only
disputes involving their department's records. Errors are werkzeug HTTP
exceptions, which the app renders as problem+json.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import BadRequest, Conflict, Forbidden, NotFound, Unauthorized

from api.http import MAX_INT, int_arg
from api.problems import InvalidField
from api.review.common import MAX_COMMENT, STATUSES, dispute_for, store, undecided_in_group
from api.spec import operation
from crosswalk.errors import ReviewError
from crosswalk.review.auth import reviewer_for_token
from crosswalk.review.disputes import REASON_LABELS
from crosswalk.review.store import VERDICTS, Reviewer

bp = Blueprint("review_api", __name__, url_prefix="/v1")

#: The OpenAPI security scheme these endpoints use (merge into ``components.securitySchemes``).
SECURITY_SCHEMES: dict[str, Any] = {
    "reviewerToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "A reviewer's API token, issued by "
        "`crosswalk reviewers add --token` or `crosswalk reviewers token`.",
    }
}
_SECURITY: list[dict[str, list[str]]] = [{"reviewerToken": []}]
MAX_LIMIT = 200


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": {"type": "object"}}},
    }


_ERRORS = {
    "401": _problem("No valid bearer token."),
    "403": _problem("The dispute involves no record of the reviewer's department."),
    "503": _problem("The review workflow is not configured on this server."),
}

_RECORD_REF = {
    "type": "object",
    "properties": {
        "source": {"type": "string"},
        "record_id": {"type": "string"},
        "name": {"type": ["string", "null"]},
        "record": {"type": "object", "description": "Snapshot of the published record."},
    },
    "required": ["source", "record_id"],
}

_EVENT = {
    "type": "object",
    "properties": {
        "event_id": {"type": "integer"},
        "kind": {"type": "string", "enum": ["decision", "undo"]},
        "dispute_id": {"type": ["integer", "null"]},
        "left": _RECORD_REF,
        "right": _RECORD_REF,
        "username": {"type": "string"},
        "department": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "verdict": {"type": ["string", "null"], "enum": [*VERDICTS, None]},
        "comment": {"type": "string"},
        "undoes": {"type": ["integer", "null"]},
        "undone_by": {"type": ["integer", "null"]},
        "pairs": {
            "type": "array",
            "description": "Every pair the event covers (a grouped decision covers several).",
            "items": {
                "type": "object",
                "properties": {"left": _RECORD_REF, "right": _RECORD_REF},
            },
        },
    },
    "required": ["event_id", "kind", "username", "department", "created_at"],
}

_DISPUTE = {
    "type": "object",
    "properties": {
        "dispute_id": {"type": "integer"},
        "status": {"type": "string", "enum": ["open", "unsure", "decided"]},
        "left": _RECORD_REF,
        "right": _RECORD_REF,
        "group": {
            "type": ["string", "null"],
            "description": "The disputes between the same two entities share it; "
            "one decision (decide with group: true) settles them all.",
        },
        "reasons": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"kind": {"type": "string", "enum": sorted(REASON_LABELS)}},
                "required": ["kind"],
            },
        },
        "match_probability": {"type": ["number", "null"]},
        "priority": {"type": "number"},
        "decision": {"type": ["object", "null"]},
        "build_id": {"type": ["string", "null"]},
        "first_raised_at": {"type": "string"},
        "last_raised_at": {"type": "string"},
        "explanation": {"type": "object"},
        "cluster": {"type": "array", "items": {"type": "object"}},
        "history": {"type": "array", "items": _EVENT},
    },
    "required": ["dispute_id", "status", "left", "right", "reasons"],
}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query_param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


_DISPUTE_ID = {
    "name": "dispute_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer"},
}


@bp.before_request
def _configured() -> None:
    store()  # 503 when review is not configured


def reviewer() -> Reviewer:
    """The reviewer named by the request's bearer token; 401 without a valid one."""
    found: Reviewer | None = g.get("api_reviewer")
    if found is not None:
        return found
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            description="Send a reviewer's API token: 'Authorization: Bearer <token>'.",
            www_authenticate=WWWAuthenticate("bearer", {"realm": "review"}),
        )
    found = reviewer_for_token(store(), token.strip())
    if found is None:
        raise Unauthorized(
            description="The bearer token is not valid (unknown or revoked).",
            www_authenticate=WWWAuthenticate(
                "bearer", {"realm": "review", "error": "invalid_token"}
            ),
        )
    g.api_reviewer = found
    return found


@bp.get("/disputes")
@operation(
    tags=["review"],
    summary="List disputes",
    description=(
        "Disputes the token's reviewer may decide (their department's; all for admins), most "
        "pressing first: contradicting decisions, then conflicts of evidence, then the pairs "
        "closest to p = 0.5."
    ),
    security=_SECURITY,
    parameters=[
        _query_param(
            "status",
            "open (default), unsure, decided or all.",
            {"type": "string", "enum": list(STATUSES), "default": "open"},
        ),
        _query_param("department", "Only disputes involving this source.", {"type": "string"}),
        _query_param(
            "reason",
            "Only disputes raised for this reason.",
            {"type": "string", "enum": sorted(REASON_LABELS)},
        ),
        _query_param(
            "facility_type",
            "Only disputes where either record has this facility type.",
            {"type": "string"},
        ),
        _query_param(
            "limit",
            "Page size.",
            {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50},
        ),
        _query_param(
            "offset",
            "Disputes to skip.",
            {"type": "integer", "minimum": 0, "maximum": MAX_INT, "default": 0},
        ),
    ],
    responses={
        "200": _json(
            {
                "type": "object",
                "properties": {
                    "total": {"type": "integer"},
                    "limit": {"type": "integer"},
                    "offset": {"type": "integer"},
                    "disputes": {"type": "array", "items": _DISPUTE},
                },
                "required": ["total", "limit", "offset", "disputes"],
            }
        ),
        "400": _problem("Invalid query parameter."),
        **_ERRORS,
    },
)
def list_disputes() -> Response:
    """Disputes visible to the token's reviewer, filtered and paged."""
    who = reviewer()
    status = request.args.get("status", "open")
    if status not in STATUSES:
        raise BadRequest(description=f"status: must be one of {', '.join(STATUSES)}.")
    limit = int_arg("limit", 50, 1, MAX_LIMIT)
    offset = int_arg("offset", 0, 0, MAX_INT)
    department = request.args.get("department") or None
    reason = request.args.get("reason")  # an empty one too is outside the enum
    if reason is not None and reason not in REASON_LABELS:
        raise InvalidField("reason", f"must be one of {', '.join(sorted(REASON_LABELS))}.")
    facility_type = request.args.get("facility_type") or None
    db = store()
    items = db.disputes(
        reviewer=who,
        status=status,
        department=department,
        reason=reason,
        facility_type=facility_type,
        limit=limit,
        offset=offset,
    )
    total = db.count_disputes(
        reviewer=who,
        status=status,
        department=department,
        reason=reason,
        facility_type=facility_type,
    )
    return jsonify(
        {
            "total": total,
            "limit": limit,
            "offset": offset,
            "disputes": [d.to_json() for d in items],
        }
    )


@bp.get("/disputes/<int:dispute_id>")
@operation(
    tags=["review"],
    summary="Get a dispute",
    description="Both records, each field's contribution, the rest of the cluster and the history.",
    security=_SECURITY,
    parameters=[_DISPUTE_ID],
    responses={"200": _json(_DISPUTE), "404": _problem("No such dispute."), **_ERRORS},
)
def get_dispute(dispute_id: int) -> Response:
    """One dispute in full, with its decision history."""
    dispute = dispute_for(reviewer(), dispute_id)
    out = dispute.to_json(detail=True)
    out["history"] = [e.to_json() for e in store().events(dispute.pair)]
    return jsonify(out)


@bp.post("/disputes/<int:dispute_id>/decision")
@operation(
    tags=["review"],
    summary="Decide a dispute",
    description=(
        "Append a decision. The latest decision not undone binds every later build: 'same' "
        "joins the two records, 'different' keeps them apart, 'unsure' binds nothing."
    ),
    security=_SECURITY,
    parameters=[_DISPUTE_ID],
    requestBody={
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "verdict": {"type": "string", "enum": list(VERDICTS)},
                        "comment": {"type": "string", "maxLength": MAX_COMMENT},
                        "group": {
                            "type": "boolean",
                            "description": "Decide every open or unsure dispute of the "
                            "dispute's group (the disputes between the same two entities) "
                            "with one event.",
                        },
                    },
                    "required": ["verdict"],
                    "additionalProperties": False,
                },
                "example": {"verdict": "different", "comment": "Two campuses of one hospital."},
            }
        },
    },
    responses={
        "201": _json(
            {"type": "object", "properties": {"event": _EVENT, "dispute": _DISPUTE}}, "Recorded."
        ),
        "400": _problem("Invalid body."),
        "404": _problem("No such dispute."),
        **_ERRORS,
    },
)
def decide(dispute_id: int) -> tuple[Response, int]:
    """Record a verdict on a dispute."""
    who = reviewer()
    dispute = dispute_for(who, dispute_id)
    body = _body()
    unknown = set(body) - {"verdict", "comment", "group"}
    if unknown:
        raise BadRequest(description=f"unknown body member(s): {', '.join(sorted(unknown))}.")
    verdict = body.get("verdict")
    comment = body.get("comment", "")
    if verdict not in VERDICTS:
        raise BadRequest(description=f"verdict: must be one of {', '.join(VERDICTS)}.")
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        raise BadRequest(description=f"comment: a string of at most {MAX_COMMENT} characters.")
    grouped = body.get("group", False)
    if not isinstance(grouped, bool):
        raise BadRequest(description="group: true or false.")
    covered = [(dispute.pair, dispute_id)]
    if grouped and dispute.group_key:
        covered += [
            (d.pair, d.dispute_id)
            for d in undecided_in_group(store(), who, dispute.group_key)
            if d.dispute_id != dispute_id
        ]
    try:
        event = store().decide_pairs(who, covered, verdict, comment)
    except ReviewError as exc:
        raise Forbidden(description=str(exc)) from exc
    updated = store().dispute(dispute_id)
    assert updated is not None
    return jsonify({"event": event.to_json(), "dispute": updated.to_json()}), 201


@bp.post("/decisions/<int:event_id>/undo")
@operation(
    tags=["review"],
    summary="Undo a decision",
    description=(
        "Append an undo event naming the decision; nothing is deleted. The pair's previous "
        "decision, if any, stands again."
    ),
    security=_SECURITY,
    parameters=[
        {"name": "event_id", "in": "path", "required": True, "schema": {"type": "integer"}}
    ],
    requestBody={
        "required": False,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"comment": {"type": "string", "maxLength": MAX_COMMENT}},
                }
            }
        },
    },
    responses={
        "201": _json({"type": "object", "properties": {"event": _EVENT}}, "Undone."),
        "400": _problem("Invalid body."),
        "404": _problem("No such decision."),
        "409": _problem("The decision was already undone."),
        **_ERRORS,
    },
)
def undo(event_id: int) -> tuple[Response, int]:
    """Undo one decision."""
    who = reviewer()
    db = store()
    target = db.event(event_id)
    if target is None or target.kind != "decision":
        raise NotFound(description=f"There is no decision {event_id} to undo.")
    if not who.may_see(target.pair[0][0], target.pair[1][0]):
        raise Forbidden(description=f"{who.username} may not undo decision {event_id}.")
    body = _body(required=False)
    comment = body.get("comment", "")
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        raise BadRequest(description=f"comment: a string of at most {MAX_COMMENT} characters.")
    try:
        event = db.undo(who, event_id, comment)
    except ReviewError as exc:  # already undone (the other refusals are answered above)
        raise Conflict(description=str(exc)) from exc
    return jsonify({"event": event.to_json()}), 201


def _body(required: bool = True) -> dict[str, Any]:
    if not request.data and not required:
        return {}
    if not request.is_json:
        raise BadRequest(description="The body must be JSON (Content-Type: application/json).")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest(description="The body must be a JSON object.")
    return body
