"""Small HTTP helpers shared by the blueprints: JSON bodies in and out, caching, parameters."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs

from flask import Response, current_app, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import UnsupportedMediaType
from werkzeug.routing import IntegerConverter

from api.problems import InvalidField
from api.store import MAX_TEXT, Registry, Release, dumps

#: Deepest nesting accepted in a JSON request body.
MAX_JSON_DEPTH = 32
#: Largest integer SQLite stores: the bound of every id in a URL and every integer parameter.
MAX_INT = 2**63 - 1

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
    if version == "":
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


#: A JSON escape that may denote half of a surrogate pair (a cheap pre-check on the raw text).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _member(path: str, key: str) -> str:
    key = key[:100].encode("utf-8", "backslashreplace").decode("utf-8")  # printable, always
    return f"{path}.{key}" if path else key


def lone_surrogate_at(value: Any, root: str = "") -> str | None:
    """The path (``a.b[2].c``) of the first string or key holding a lone UTF-16 surrogate.

    ``json.loads`` keeps an unpaired ``\\ud800`` escape as a lone surrogate, which is
    not a Unicode character: no UTF-8 encoder (SQLite's, the response's) accepts it.
    """
    stack: list[tuple[Any, str]] = [(value, root)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if _LONE_SURROGATE.search(item):
                return path
        elif isinstance(item, dict):
            for key, sub in reversed(item.items()):
                member = _member(path, key)
                if _LONE_SURROGATE.search(key):
                    return member
                stack.append((sub, member))
        elif isinstance(item, list):
            stack.extend((sub, f"{path}[{i}]") for i, sub in reversed(list(enumerate(item))))
    return None


def check_surrogates(value: Any, text: str, field: str, location: str = "body") -> None:
    """400 naming the member of a parsed JSON ``value`` that holds a lone surrogate."""
    if not _SURROGATE_ESCAPE.search(text):
        return
    at = lone_surrogate_at(value, "" if field == "body" else field)
    if at is not None:
        raise InvalidField(
            at or field,
            "contains a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff escape), which is "
            "not a character; send text as UTF-8, or escape characters beyond U+FFFF as a pair.",
            location=location,
        )


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, refusing request bodies whose strings hold lone surrogates.

    ``request.get_json()`` decodes through the app's provider, so every JSON body
    (the review endpoints' included) gets the same 400 naming the member at fault.
    Keys are written in the order given.
    """

    sort_keys = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        text = s.decode("utf-8") if isinstance(s, bytes) else s
        value = json.loads(text, **kwargs)
        check_surrogates(value, text, "body")
        return value


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
    check_surrogates(value, text, field, location)
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


_INTEGER = re.compile(r"-?[0-9]{1,19}")


def int_arg(name: str, default: int, low: int, high: int, args: Any = None) -> int:
    """An integer query parameter within [low, high] (``args``: the request's query by default).

    Absent is ``default``; anything but decimal digits (an empty value included) is a 400
    naming the parameter, as is a value out of range: never an OverflowError further on.
    """
    raw = (request.args if args is None else args).get(name)
    if raw is None:
        return default
    if not _INTEGER.fullmatch(raw) or not low <= int(raw) <= high:
        raise InvalidField(name, f"must be an integer from {low} to {high}.")
    return int(raw)


class IntConverter(IntegerConverter):
    """``<int:...>`` in a route, bounded to SQLite's integers.

    A larger number is no id of this service (404), rather than an OverflowError
    when it reaches SQLite. Registered as the app's ``int`` converter.
    """

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_INT)
        super().__init__(map, *args, **kwargs)


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
