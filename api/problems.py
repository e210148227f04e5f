"""RFC 9457 problem details: every error the service answers is ``application/problem+json``.

The handlers are app-wide, so a blueprint only has to raise: a werkzeug
``HTTPException`` (``abort(400, description=...)``), one of the exceptions
below (which name the field at fault), or a ``CrosswalkError``. Anything else
is logged with its traceback and answered as a 500 that carries no internals.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

from flask import Flask, Response, request
from waitress.channel import HTTPChannel
from waitress.task import ErrorTask
from werkzeug.exceptions import (
    BadRequest,
    HTTPException,
    InternalServerError,
    NotFound,
    ServiceUnavailable,
)

from api.store import dumps
from crosswalk.errors import CrosswalkError, NotFoundError

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("crosswalk.api")


class InvalidField(BadRequest):
    """A 400 that names the request field (query parameter, body member, header) at fault."""

    def __init__(self, field: str, detail: str, *, location: str = "query") -> None:
        super().__init__(description=f"{field}: {detail}")
        self.field = field
        self.location = location
        self.detail = detail


class EntityNotFound(NotFound):
    """A 404 about a named entity, identifier or record."""


class Unavailable(ServiceUnavailable):
    """A 503 for a part of the service this server was started without: its description
    says so and how to start the server with it, and is answered as written (other 5xx
    answers carry no internals)."""


#: The detail of a 5xx answer that is not an :class:`Unavailable`.
SERVER_ERROR = "The server could not answer this request; it has been logged."


def server_error_detail(exc: HTTPException) -> str:
    """What a 5xx answer of ``exc`` says: an :class:`Unavailable`'s own description, else
    :data:`SERVER_ERROR` (and then it is logged, as it says)."""
    if isinstance(exc, Unavailable):
        return str(exc.description)
    log.error("%s %s answered %s: %s", request.method, request.path, exc.code, exc.description)
    return SERVER_ERROR


class Gone(HTTPException):
    """410: the entity id was retired and has no successor."""

    code = 410
    description = "The resource is gone."

    def __init__(self, description: str, extra: dict[str, Any]) -> None:
        super().__init__(description=description)
        self.extra = extra


def problem(
    status: int,
    detail: str | None = None,
    *,
    title: str | None = None,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """A problem+json response."""
    instance = None
    with contextlib.suppress(RuntimeError):  # outside a request there is no instance
        instance = request.path
    data = problem_body(status, detail, title=title, type_=type_, instance=instance, **extra)
    response = Response(data, status=status, mimetype=PROBLEM_JSON)
    response.headers["Cache-Control"] = "no-store"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def problem_body(
    status: int,
    detail: str | None = None,
    *,
    title: str | None = None,
    type_: str = "about:blank",
    instance: str | None = None,
    **extra: Any,
) -> bytes:
    """The JSON of a problem: ``type``, ``title``, ``status``, then what is given."""
    from werkzeug.http import HTTP_STATUS_CODES

    body: dict[str, Any] = {
        "type": type_,
        "title": title or HTTP_STATUS_CODES.get(status, "Error"),
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if instance is not None:
        body["instance"] = instance
    body.update(extra)
    try:
        return dumps(body)
    except UnicodeEncodeError:  # a lone surrogate quoted from the request: escape it
        return json.dumps(body).encode()


class _ServerErrorTask(ErrorTask):
    """waitress's own error answers (413 beyond its body limit, 400 for a malformed
    request, 431, 501) as problem+json rather than plain text."""

    def execute(self) -> None:
        error = self.request.error
        path = self.request.path
        body = problem_body(
            error.code,
            " ".join(str(error.body).split()) or None,
            title=error.reason,
            instance=path if isinstance(path, str) and path else None,
        )
        self.status = f"{error.code} {error.reason}"
        self.response_headers.extend(
            [("Content-Type", PROBLEM_JSON), ("Cache-Control", "no-store")]
        )
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class ServerChannel(HTTPChannel):
    """A waitress channel whose error answers are problem+json (see ``api.make_server``)."""

    error_task_class = _ServerErrorTask


def _http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    if status >= 500:
        return problem(status, server_error_detail(exc))
    headers: dict[str, str] = {}
    # keep the headers werkzeug sets (Allow on 405, Location on redirects)
    for key, value in exc.get_headers():
        if key.lower() not in ("content-type", "content-length"):
            headers[key] = value
    extra: dict[str, Any] = {}
    detail = exc.description
    if isinstance(exc, InvalidField):
        extra["errors"] = [{"field": exc.field, "in": exc.location, "detail": exc.detail}]
        detail = f"Invalid {exc.location} field {exc.field!r}: {exc.detail}"
    if isinstance(exc, Gone):
        extra.update(exc.extra)
    if status == 405 and "Allow" in headers:
        detail = f"{request.method} is not allowed on {request.path}; use {headers['Allow']}."
    if status == 304:
        return Response(status=304, headers=headers)
    return problem(status, detail, headers=headers, **extra)


def _crosswalk_error(exc: CrosswalkError) -> Response:
    if isinstance(exc, NotFoundError):
        return problem(404, str(exc))
    from api.store import MatchingUnavailable

    if isinstance(exc, MatchingUnavailable):
        log.error("%s", exc)
        return problem(
            503,
            "Matching is unavailable for this release; lookups still work. "
            "Fix: rebuild the crosswalk with the installed engine.",
            headers={"Retry-After": "60"},
        )
    log.error("crosswalk error answering %s %s: %s", request.method, request.path, exc)
    return problem(500, SERVER_ERROR)


def _unexpected(exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return _http_exception(exc)
    log.exception("unexpected error answering %s %s", request.method, request.path)
    return problem(500, SERVER_ERROR)


def register(app: Flask) -> None:
    """Install the problem+json handlers on the whole app (every blueprint)."""
    app.register_error_handler(HTTPException, _http_exception)
    app.register_error_handler(CrosswalkError, _crosswalk_error)
    app.register_error_handler(Exception, _unexpected)
    app.register_error_handler(InternalServerError, _unexpected)
