"""Small HTTP helpers shared by the blueprints: JSON bodies in and out, caching, parameters."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from flask import Response, current_app, request
from werkzeug.exceptions import UnsupportedMediaType

from api.problems import InvalidField
from api.store import MAX_TEXT, Registry, Release, dumps

#: Deepest nesting accepted in a JSON request body.
MAX_JSON_DEPTH = 32

#: Cache-Control for answers from the latest release (which can change).
CACHE_LATEST = "public, max-age=60"
#: Cache-Control for answers from a release pinned by version (which never changes).
CACHE_PINNED = "public, max-age=86400, immutable"


def registry() -> Registry:
    reg: Registry = current_app.extensions["crosswalk.registry"]
    return reg


def release_from_args() -> Release:
    """The release named by ``?release=``, or the latest."""
    version = request.args.get("release")
    if version is not None and not version.strip():
        raise InvalidField("release", "must be a release version, e.g. one listed by /v1/releases.")
    return registry().get(version)


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None, *, raw: bool = False
) -> Response:
    """A JSON response from an object (or from pre-rendered bytes with ``raw=True``)."""
    data = body if raw else dumps(body)
    response = Response(data, status=status, mimetype="application/json")
    if headers:
        for key, value in headers.items():
            response.headers[key] = value
    return response


def etag_matches(header: str, etag: str) -> bool:
    """Whether an If-None-Match header names ``etag`` (weak comparison, ``*`` included)."""
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*":
            return True
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate == etag:
            return True
    return False


def cached(
    data: bytes,
    release: Release,
    key: str = "",
    *,
    etag: str | None = None,
    pinned: bool | None = None,
) -> Response:
    """A 200 with ETag and Cache-Control, or a 304 when ``If-None-Match`` already has it.

    The ETag is ``etag`` if given, else the release's ETag for ``key``.
    """
    etag = etag or release.etag(key)
    if pinned is None:
        pinned = bool(request.args.get("release"))
    headers = {"ETag": etag, "Cache-Control": CACHE_PINNED if pinned else CACHE_LATEST}
    inm = request.environ.get("HTTP_IF_NONE_MATCH")
    if inm and etag_matches(inm, etag):
        return Response(status=304, headers=headers)
    response = Response(data, status=200, mimetype="application/json")
    response.headers.update(headers)
    return response


# ---------------------------------------------------------------------- request bodies


def _depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value, without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item)
    return deepest


def parse_json_text(text: bytes | str, field: str, location: str = "body") -> Any:
    """Parse JSON strictly: UTF-8, no NaN, bounded nesting; 400 naming ``field`` otherwise."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidField(
                field, f"is not valid UTF-8 (byte {exc.start}).", location=location
            ) from None
    if _nesting_exceeds(text, MAX_JSON_DEPTH):
        raise InvalidField(
            field, f"is nested deeper than {MAX_JSON_DEPTH} levels.", location=location
        )
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidField(field, f"is not valid JSON ({exc}).", location=location) from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise InvalidField(
            field, f"is nested deeper than {MAX_JSON_DEPTH} levels.", location=location
        )
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _nesting_exceeds(text: str, limit: int) -> bool:
    """Cheap pre-check on the raw text: counts brackets outside strings."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    in_string = False
    escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def json_body() -> Any:
    """The request's JSON body; 415 unless it is declared ``application/json``."""
    mimetype = request.mimetype
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaType(
            f"send the body as application/json (got {request.content_type or 'no Content-Type'})."
        )
    data = request.get_data(cache=True)
    if not data:
        raise InvalidField("body", "is empty; send a JSON document.", location="body")
    return parse_json_text(data, "body")


def form_fields() -> dict[str, str]:
    """Fields of a form body (url-encoded or multipart) plus the query string."""
    fields: dict[str, str] = {}
    for key in request.args:
        fields[key] = request.args[key]
    if request.method == "POST":
        mimetype = request.mimetype
        if mimetype == "application/x-www-form-urlencoded":
            raw = request.get_data(cache=True)
            try:
                text = raw.decode("ascii")
                parsed = parse_qs(text, keep_blank_values=True, encoding="utf-8", errors="strict")
            except (UnicodeDecodeError, ValueError):
                raise InvalidField(
                    "body", "is not a valid UTF-8 url-encoded form.", location="body"
                ) from None
            for key, values in parsed.items():
                fields[key] = values[-1]
        elif mimetype == "multipart/form-data":
            for key in request.form:
                fields[key] = request.form[key]
        elif request.content_length or request.get_data(cache=True):
            raise UnsupportedMediaType(
                "send the form as application/x-www-form-urlencoded or multipart/form-data "
                f"(got {request.content_type or 'no Content-Type'})."
            )
    return fields


# ---------------------------------------------------------------------- parameters


def int_arg(name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high]."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidField(name, f"must be an integer from {low} to {high}.") from None
    if not low <= value <= high:
        raise InvalidField(name, f"must be an integer from {low} to {high}.")
    return value


def text_arg(name: str, required: bool = False) -> str | None:
    """A bounded string query parameter (stripped; empty counts as absent)."""
    raw = request.args.get(name)
    if raw is None or not raw.strip():
        if required:
            raise InvalidField(name, "is required.")
        return None
    if len(raw) > MAX_TEXT:
        raise InvalidField(name, f"is longer than {MAX_TEXT} characters.")
    if "\x00" in raw:
        raise InvalidField(name, "contains a NUL character.")
    return raw.strip()
