"""A WSGI fast path for the two hottest reads: an entity by id, and a lookup by identifier.

Both answers are pre-rendered bytes cached per release, so most of the cost of
a request is the framework around it. For a *successful* read of
``GET /v1/entities/{id}`` or ``GET /v1/lookup?scheme=&value=`` (optionally with
``release=``), this middleware answers directly with exactly the bytes and
headers the Flask views would send (``tests/api`` checks that they agree).
Anything else (misses, errors, other parameters, other routes) goes on to
Flask unchanged, so every error is still rendered by the app's handlers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from api.http import CACHE_LATEST, CACHE_PINNED, etag_matches
from api.store import Registry, Release
from crosswalk.errors import CrosswalkError

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_ENTITY_PREFIX = "/v1/entities/"
_LOOKUP_KEYS = frozenset(("scheme", "value"))
_LOOKUP_KEYS_PINNED = frozenset(("scheme", "value", "release"))
#: Headers every JSON read of the public API carries (CORS included; see ``api._cors``).
_COMMON = [
    ("Content-Type", "application/json"),
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Expose-Headers", "ETag, Link, Location"),
]


class FastPath:
    """WSGI middleware answering cached entity and lookup hits without the framework."""

    def __init__(self, app: WSGIApp, registry: Registry) -> None:
        self.app = app
        self.registry = registry

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        if method == "GET" or method == "HEAD":
            path: str = environ.get("PATH_INFO", "")
            hit = None
            try:
                if path.startswith(_ENTITY_PREFIX):
                    hit = self._entity(path[len(_ENTITY_PREFIX) :], environ.get("QUERY_STRING", ""))
                elif path == "/v1/lookup":
                    hit = self._lookup(environ.get("QUERY_STRING", ""))
            except (CrosswalkError, UnicodeError, ValueError):
                hit = None  # let the app answer (and explain) it
            if hit is not None:
                data, etag, pinned = hit
                headers = [
                    *_COMMON,
                    ("ETag", etag),
                    ("Cache-Control", CACHE_PINNED if pinned else CACHE_LATEST),
                ]
                inm = environ.get("HTTP_IF_NONE_MATCH")
                if inm and etag_matches(inm, etag):
                    start_response("304 NOT MODIFIED", headers[1:])
                    return [b""]
                headers.append(("Content-Length", str(len(data))))
                start_response("200 OK", headers)
                return [b""] if method == "HEAD" else [data]
        return self.app(environ, start_response)

    def _release(self, query: str) -> tuple[Release, bool] | None:
        if not query:
            return self.registry.get(None), False
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True, errors="strict")
        if len(pairs) != 1 or pairs[0][0] != "release" or not pairs[0][1].strip():
            return None
        return self.registry.get(pairs[0][1]), True

    def _entity(self, entity_id: str, query: str) -> tuple[bytes, str, bool] | None:
        if not entity_id or "/" in entity_id or not entity_id.isascii():
            return None
        found = self._release(query)
        if found is None:
            return None
        release, pinned = found
        data = release.entity_json(entity_id)
        if data is None:
            return None
        return data, release.etag(entity_id), pinned

    def _lookup(self, query: str) -> tuple[bytes, str, bool] | None:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True, errors="strict")
        args = dict(pairs)
        keys = frozenset(args)
        if len(pairs) != len(args) or (keys != _LOOKUP_KEYS and keys != _LOOKUP_KEYS_PINNED):
            return None
        version = args.get("release")
        if version is not None and not version.strip():
            return None
        release = self.registry.get(version)
        hit = release.lookup_json(args["scheme"], args["value"])
        if hit is None:
            return None
        data, etag = hit
        return data, etag, version is not None
