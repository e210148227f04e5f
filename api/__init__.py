"""HTTP API over a published crosswalk: lookups, matching, reconciliation and review.

``create_app(config)`` builds the Flask app. It reads the published
``crosswalk.sqlite`` (read-only) and imports nothing of the engine but the
shared matcher (``crosswalk.matching``) that ``/v1/match`` and ``/reconcile``
score with. ``crosswalk serve`` runs it under waitress.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from flask import Flask, Response, request

from api import problems
from crosswalk.errors import CrosswalkError

#: Largest request body accepted (bytes); larger bodies get 413.
DEFAULT_MAX_BODY = 4 * 1024 * 1024

_CORS_PREFIXES = ("/v1/", "/reconcile", "/openapi.json", "/healthz")


@dataclass(frozen=True)
class ApiConfig:
    """What the service serves.

    Give ``db`` (one ``crosswalk.sqlite``) or ``releases`` (a directory of
    ``<version>/crosswalk.sqlite`` releases; the latest is the default).
    ``review_store`` is passed on to the review pages, with ``secret_key_file``
    (the key signing their session cookies; see ``crosswalk.review.keys``).
    ``trusted_proxy`` (an address, or ``*``) is the reverse proxy whose
    ``X-Forwarded-For`` waitress believes, for ``trusted_proxy_count`` hops;
    without it the client address is the connection's.
    """

    db: Path | None = None
    releases: Path | None = None
    review_store: Path | None = None
    secret_key_file: Path | None = None
    trusted_proxy: str | None = None
    trusted_proxy_count: int | None = None
    max_body: int = DEFAULT_MAX_BODY
    #: Answer cached entity and lookup hits below the framework (same bytes and headers).
    fast_path: bool = True

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ApiConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CrosswalkError(f"unknown API settings {unknown}; use {sorted(known)}.")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key == "max_body":
                kwargs[key] = int(value)
            elif key == "fast_path":
                kwargs[key] = bool(value)
            elif key in ("trusted_proxy", "trusted_proxy_count"):
                kwargs[key] = value
            else:
                kwargs[key] = Path(value) if value is not None else None
        return cls(**kwargs)


def create_app(config: ApiConfig | Mapping[str, Any]) -> Flask:
    """Build the API app for a crosswalk database or a releases directory."""
    from api import openapi, reconcile, v1
    from api.http import IntConverter, JSONProvider
    from api.store import Registry

    cfg = config if isinstance(config, ApiConfig) else ApiConfig.from_mapping(config)
    registry = Registry(db=cfg.db, releases=cfg.releases)

    app = Flask(__name__)
    app.config.update(
        MAX_CONTENT_LENGTH=cfg.max_body,
        MAX_FORM_MEMORY_SIZE=cfg.max_body,
        # the database the review pages name their sources from: the one served, or the latest
        CROSSWALK_DB=str(cfg.db) if cfg.db else str(registry.latest().path),
        CROSSWALK_RELEASES=str(cfg.releases) if cfg.releases else None,
        REVIEW_STORE=str(cfg.review_store) if cfg.review_store else None,
        REVIEW_SECRET_KEY_FILE=str(cfg.secret_key_file) if cfg.secret_key_file else None,
    )
    app.extensions["crosswalk.registry"] = registry
    app.extensions["crosswalk.config"] = cfg
    app.json = JSONProvider(app)
    app.url_map.strict_slashes = False
    app.url_map.converters["int"] = IntConverter  # before any route is added

    problems.register(app)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(v1.bp)
    app.register_blueprint(reconcile.bp)

    from api import review

    review.register(app)

    app.after_request(_cors)
    if cfg.fast_path:
        from api.fastpath import FastPath

        app.wsgi_app = FastPath(app.wsgi_app, registry)  # type: ignore[method-assign]
    return app


def make_server(app: Flask, host: str = "127.0.0.1", port: int = 8000, threads: int = 8) -> Any:
    """A waitress server for ``app`` (call ``.run()``; ``.effective_port`` is the bound port).

    Bodies above the app's own limit are still read, so that the app answers
    413 as problem+json; waitress refuses anything beyond four times that
    outright (before reading it, also as problem+json), and drops idle
    connections after a minute.
    ``X-Forwarded-For`` sets the client address only from the configured
    ``trusted_proxy`` (waitress's own handling); otherwise it is removed.
    """
    import waitress

    cfg: ApiConfig = app.extensions["crosswalk.config"]
    proxy: dict[str, Any] = {}
    if cfg.trusted_proxy:
        proxy = {
            "trusted_proxy": cfg.trusted_proxy,
            "trusted_proxy_count": cfg.trusted_proxy_count or 1,
            "trusted_proxy_headers": {"x-forwarded-for"},
        }
    server = waitress.create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        max_request_body_size=4 * cfg.max_body,
        connection_limit=512,
        channel_timeout=60,
        asyncore_use_poll=True,
        ident="crosswalk",
        **proxy,
    )
    # waitress's own refusals (a body over its limit, a malformed request) as problem+json
    from waitress.server import BaseWSGIServer

    listeners = getattr(server, "map", None) or {0: server}  # several for a multi-address host
    for listener in listeners.values():
        if isinstance(listener, BaseWSGIServer):
            listener.channel_class = problems.ServerChannel
    return server


def _cors(response: Response) -> Response:
    """Cross-origin access for the public read API and the reconciliation service."""
    path = request.path
    if path.startswith(_CORS_PREFIXES):
        headers = response.headers
        headers["Access-Control-Allow-Origin"] = "*"
        headers["Access-Control-Expose-Headers"] = "ETag, Link, Location"
        if request.method == "OPTIONS":
            headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            headers["Access-Control-Allow-Headers"] = "Content-Type, If-None-Match"
            headers["Access-Control-Max-Age"] = "86400"
    return response


__all__ = ["DEFAULT_MAX_BODY", "ApiConfig", "create_app", "make_server"]
