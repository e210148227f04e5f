"""The review workflow over HTTP: the web UI at ``/review`` and the review JSON endpoints.

:func:`register` attaches both to an app. It reads:

``REVIEW_STORE``
    path of the review store (SQLite). Absent: review is disabled and its
    routes answer 503.
``CROSSWALK_DB``
    path of the published crosswalk.sqlite, whose ``sources`` table names the
    data publishers in the page footer.
``REVIEW_COOKIE_SECURE``
    send the session cookie only over HTTPS (default False; set it True
    behind TLS).
``REVIEW_SECRET_KEY_FILE``
    the file of the key that signs session cookies (``serve --secret-key-file``).

The session cookie is signed with ``SECRET_KEY`` if the app has one, else
with the key :func:`crosswalk.review.keys.session_key` finds:
``CROSSWALK_SECRET_KEY`` from the environment, else the key file
(``REVIEW_SECRET_KEY_FILE``, else ``CROSSWALK_SECRET_KEY_FILE``, else the
store's default key file under ``$XDG_CONFIG_HOME/crosswalk/keys/``). Never
the store: a key kept there would let anyone who can read the store sign a
session.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from api.review import json_api, web
from api.review.common import STORE_KEY, close_store
from api.review.json_api import SECURITY_SCHEMES
from crosswalk.review.keys import session_key
from crosswalk.review.store import ReviewStore

__all__ = ["SECURITY_SCHEMES", "register"]


def register(app: Flask) -> None:
    """Attach the review blueprints to ``app`` and configure its session cookie."""
    path = app.config.get(STORE_KEY)
    if path:
        with ReviewStore(Path(path)):  # creates (or upgrades) the schema once, up front
            pass
        if not app.config.get("SECRET_KEY"):
            app.config["SECRET_KEY"] = session_key(path, app.config.get("REVIEW_SECRET_KEY_FILE"))
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    if app.config.get("SESSION_COOKIE_SAMESITE") not in ("Lax", "Strict"):
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_SECURE"] = bool(
        app.config.get("SESSION_COOKIE_SECURE") or app.config.get("REVIEW_COOKIE_SECURE")
    )
    app.config.setdefault("OPENAPI_SECURITY_SCHEMES", {}).update(SECURITY_SCHEMES)
    app.register_blueprint(web.bp)
    app.register_blueprint(json_api.bp)
    app.teardown_appcontext(close_store)
