"""``/openapi.json`` generated from the code, ``/docs`` rendered from it, and ``/healthz``.

The spec is built by walking ``app.url_map``: every rule whose view carries an
:func:`api.spec.operation` becomes a path item, so routes added by any
blueprint (including the review pages) appear without a central list. The
docs page is self-contained HTML rendered on the server from the same spec:
no script, stylesheet or font is fetched from elsewhere.
"""

from __future__ import annotations

import html
import json
import re
import sqlite3
from typing import Any

from flask import Blueprint, Flask, Response, current_app, redirect, request
from werkzeug.routing import Rule

from api.http import json_response, registry
from api.reconcile import MATCH_FLOOR_PROBABILITY, MATCH_MARGIN_BITS, MATCH_PROBABILITY
from api.schemas import COMPONENTS, ENUM_OF, problem_response
from api.schemas import json_response as json_resp_spec
from api.spec import operation, operation_of
from crosswalk import __version__
from crosswalk.errors import CrosswalkError

bp = Blueprint("meta", __name__)

_CONVERTER = re.compile(r"<(?:(?P<conv>[a-z]+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

TAGS = [
    {"name": "entities", "description": "Canonical entities and their member records."},
    {"name": "lookup", "description": "Resolve any department's id to its entity."},
    {"name": "match", "description": "Resolve a name and address to ranked candidate entities."},
    {"name": "releases", "description": "What is being served: releases and sources."},
    {
        "name": "reconciliation",
        "description": "W3C Reconciliation Service API 0.2, for OpenRefine and similar clients.",
    },
    {"name": "service", "description": "Health and documentation."},
]

INTRO = (
    "Resolve California health-facility ids across departments (CDPH FACID and license number, "
    "HCAI OSHPD id, CMS CCN, NPI) to canonical entities with stable ids. Every response is JSON "
    "(errors are RFC 9457 application/problem+json); entity and lookup answers carry an ETag "
    "made of the release and the entity, and honour If-None-Match."
)


_E431 = problem_response("The request line or headers are too large (over 256 KiB).")
_E413 = problem_response("The body is too large.")


def _openapi_path(rule: Rule) -> tuple[str, list[dict[str, Any]]]:
    params: list[dict[str, Any]] = []

    def sub(m: re.Match[str]) -> str:
        schema: dict[str, Any] = {"type": "string"}
        if m.group("conv") == "int":
            schema = {"type": "integer"}
        params.append({"name": m.group("name"), "in": "path", "required": True, "schema": schema})
        return "{" + m.group("name") + "}"

    return _CONVERTER.sub(sub, rule.rule), params


def build_spec(app: Flask, server_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI 3 document of every documented route of ``app``."""
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions.get(rule.endpoint)
        op = operation_of(view) if view is not None else None
        if op is None:
            continue
        path, path_params = _openapi_path(rule)
        item = paths.setdefault(path, {})
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            entry = json.loads(json.dumps(op))  # a private copy
            declared = {p.get("name") for p in entry.get("parameters", []) if p.get("in") == "path"}
            extra = [p for p in path_params if p["name"] not in declared]
            if extra:
                entry["parameters"] = extra + entry.get("parameters", [])
            entry.setdefault("operationId", f"{rule.endpoint}.{method.lower()}".replace(".", "_"))
            responses = entry.setdefault("responses", {"200": {"description": "OK"}})
            # the server's own refusals, before any view runs (see api.make_server)
            responses.setdefault("431", _E431)
            if "requestBody" in entry:
                responses.setdefault("413", _E413)
            item[method.lower()] = entry
    spec: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": "crosswalk: California health facility crosswalk API",
            "version": __version__,
            "description": INTRO,
        },
        "tags": TAGS,
        "paths": paths,
        "components": {"schemas": json.loads(json.dumps(COMPONENTS))},  # a private copy
    }
    _fill_enums(spec, app)
    # blueprints declare their security schemes here (the review endpoints' bearer token)
    schemes = app.config.get("OPENAPI_SECURITY_SCHEMES")
    if schemes:
        spec["components"]["securitySchemes"] = dict(schemes)
    if server_url:
        spec["servers"] = [{"url": server_url}]
    return spec


def _fill_enums(spec: Any, app: Flask) -> None:
    """Replace each ``ENUM_OF`` marker by the ``enum`` of the latest release's values."""
    try:
        release = app.extensions["crosswalk.registry"].latest()
        values = {"schemes": list(release.schemes), "sources": list(release.source_names)}
    except (KeyError, sqlite3.Error, CrosswalkError):  # no readable release: no enum
        values = {}
    stack = [spec]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            name = item.pop(ENUM_OF, None)
            if values.get(name):
                item["enum"] = values[name]
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


@bp.get("/openapi.json")
@operation(
    tags=["service"],
    summary="This OpenAPI document",
    responses={"200": json_resp_spec({"type": "object"})},
)
def openapi_json() -> Response:
    """The OpenAPI document, generated from the routes."""
    spec = build_spec(current_app, request.host_url.rstrip("/") + request.script_root)
    return json_response(spec, headers={"Cache-Control": "public, max-age=60"})


@bp.get("/healthz")
@operation(
    tags=["service"],
    summary="Health check",
    description="200 when the latest release's database answers a query.",
    responses={
        "200": json_resp_spec(
            {
                "type": "object",
                "required": ["status", "release"],
                "properties": {
                    "status": {"type": "string", "enum": ["ok"]},
                    "release": {"type": "string"},
                    "build_id": {"type": "string"},
                },
            }
        )
    },
)
def healthz() -> Response:
    """Liveness and readiness: the database answers."""
    release = registry().latest()
    release.query("SELECT 1 FROM entities LIMIT 1")
    body = {"status": "ok", "release": release.version, "build_id": release.build_id}
    return json_response(body, headers={"Cache-Control": "no-store"})


@bp.get("/")
def root() -> Response:
    """The service's address shows the docs page."""
    return redirect(request.script_root + "/docs", code=302)  # type: ignore[return-value]


@bp.get("/docs")
def docs() -> Response:
    """The API reference as one self-contained HTML page."""
    spec = build_spec(current_app, request.host_url.rstrip("/") + request.script_root)
    try:
        sources = registry().latest().sources()
    except (KeyError, sqlite3.Error):  # no readable release: the reference stands without the note
        sources = []
    return Response(
        render_docs(spec, sources), mimetype="text/html", headers={"Cache-Control": "no-cache"}
    )


def _data_note(sources: list[dict[str, Any]]) -> str:
    """Who published the data served, and when it was extracted."""
    if not sources:
        return ""
    items = "".join(
        f"<li><strong>{_e(s.get('name'))}</strong>: {_e(s.get('title') or '')} — "
        f"{_e(s.get('publisher') or 'publisher not stated')}, extract {_e(s.get('extracted') or 'undated')}</li>"
        for s in sources
    )
    return (
        f"<h2 id='data'>Data</h2><p>The crosswalk served here is derived from:</p><ul>{items}</ul>"
    )


# ---------------------------------------------------------------------- HTML rendering

_CSS = """
body{font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1b1f23}
header{background:#0b3954;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}
header p{margin:6px 0 0;max-width:60em;opacity:.9}
nav{position:fixed;top:0;bottom:0;left:0;width:250px;overflow:auto;background:#f4f6f8;
padding:12px 14px;box-sizing:border-box;border-right:1px solid #dde}
nav a{display:block;color:#0b3954;text-decoration:none;font-size:13px;padding:2px 0}
nav h3{font-size:12px;text-transform:uppercase;color:#667;margin:14px 0 4px}
main{margin-left:250px}section.body{padding:8px 28px 40px;max-width:70em}
.op{border:1px solid #d8dee4;border-radius:6px;margin:14px 0;padding:10px 14px}
.m{display:inline-block;min-width:56px;text-align:center;border-radius:4px;color:#fff;
font-weight:600;font-size:12px;padding:2px 6px;margin-right:8px}
.get{background:#1f7a4d}.post{background:#1d5fa8}.put,.patch{background:#a86a1d}.delete{background:#a8321d}
code,pre{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:#f6f8fa;padding:8px;border-radius:4px;overflow:auto;max-height:360px}
table{border-collapse:collapse;margin:6px 0}th,td{border:1px solid #e1e4e8;padding:3px 8px;
text-align:left;vertical-align:top;font-size:13px}h2{margin-top:28px;border-bottom:1px solid #eee}
details summary{cursor:pointer;color:#0b3954}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _schema_text(schema: Any) -> str:
    return _e(json.dumps(schema, indent=2, ensure_ascii=False))


def _anchor(method: str, path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", f"{method}-{path}".lower()).strip("-")


def render_docs(spec: dict[str, Any], sources: list[dict[str, Any]] | None = None) -> str:
    """Render an OpenAPI document as a readable, self-contained HTML page."""
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, item in spec["paths"].items():
        for method in _METHODS:
            if method in item:
                op = item[method]
                tag = (op.get("tags") or ["other"])[0]
                by_tag.setdefault(tag, []).append((method, path, op))
    tag_desc = {t["name"]: t.get("description", "") for t in spec.get("tags", [])}
    order = [t["name"] for t in spec.get("tags", [])]
    order += sorted(t for t in by_tag if t not in order)
    server = (spec.get("servers") or [{"url": ""}])[0]["url"]
    nav: list[str] = []
    body: list[str] = []
    for tag in order:
        ops = by_tag.get(tag)
        if not ops:
            continue
        nav.append(f"<h3>{_e(tag)}</h3>")
        body.append(f"<h2 id='tag-{_e(tag)}'>{_e(tag)}</h2><p>{_e(tag_desc.get(tag, ''))}</p>")
        if tag == "reconciliation":
            body.append(
                "<a id='reconciliation'></a>"
                + _RECONCILE_NOTE.format(
                    server=_e(server),
                    score=100 * MATCH_PROBABILITY,
                    margin=MATCH_MARGIN_BITS,
                    floor=100 * MATCH_FLOOR_PROBABILITY,
                )
            )
        for method, path, op in ops:
            anchor = _anchor(method, path)
            nav.append(f"<a href='#{anchor}'>{_e(method.upper())} {_e(path)}</a>")
            body.append(_render_op(method, path, op, anchor, server))
    schemas = spec.get("components", {}).get("schemas", {})
    nav.append("<h3>schemas</h3>")
    body.append("<h2 id='schemas'>Schemas</h2>")
    for name, schema in schemas.items():
        nav.append(f"<a href='#schema-{_e(name)}'>{_e(name)}</a>")
        body.append(
            f"<h3 id='schema-{_e(name)}'>{_e(name)}</h3>"
            f"<p>{_e(schema.get('description', ''))}</p><pre>{_schema_text(schema)}</pre>"
        )
    info = spec["info"]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{_e(info['title'])}</title><style>{_CSS}</style></head><body>"
        f"<nav><strong>API {_e(info['version'])}</strong>"
        "<a href='/openapi.json'>openapi.json</a>"
        f"{''.join(nav)}</nav><main><header><h1>{_e(info['title'])}</h1>"
        f"<p>{_e(info.get('description', ''))}</p></header><section class='body'>"
        + _data_note(sources or [])
        + _ERRORS_NOTE
        + "".join(body)
        + "</section></main></body></html>"
    )


def _render_op(method: str, path: str, op: dict[str, Any], anchor: str, server: str) -> str:
    parts = [
        f"<div class='op' id='{anchor}'><div><span class='m {method}'>{_e(method.upper())}</span>"
        f"<code>{_e(path)}</code> &nbsp; <strong>{_e(op.get('summary', ''))}</strong></div>"
    ]
    if op.get("description"):
        parts.append(f"<p>{_e(op['description'])}</p>")
    params = op.get("parameters") or []
    if params:
        parts.append(
            "<table><tr><th>parameter</th><th>in</th><th>type</th><th>description</th></tr>"
        )
        for p in params:
            schema = p.get("schema", {})
            req = " (required)" if p.get("required") else ""
            example = f" e.g. <code>{_e(p['example'])}</code>" if "example" in p else ""
            parts.append(
                f"<tr><td><code>{_e(p['name'])}</code>{req}</td><td>{_e(p.get('in', ''))}</td>"
                f"<td>{_e(schema.get('type', ''))}</td><td>{_e(p.get('description', ''))}{example}</td></tr>"
            )
        parts.append("</table>")
    rb = op.get("requestBody")
    if rb:
        for ctype, media in rb.get("content", {}).items():
            parts.append(
                f"<details><summary>request body: <code>{_e(ctype)}</code></summary>"
                f"<pre>{_schema_text(media.get('schema', {}))}</pre></details>"
            )
    rows = []
    for status, resp in sorted(op.get("responses", {}).items()):
        ctypes = ", ".join(resp.get("content", {}).keys())
        rows.append(
            f"<tr><td>{_e(status)}</td><td>{_e(resp.get('description', ''))}</td>"
            f"<td><code>{_e(ctypes)}</code></td></tr>"
        )
    parts.append(
        "<table><tr><th>status</th><th>meaning</th><th>body</th></tr>" + "".join(rows) + "</table>"
    )
    if method == "get" and "{" not in path:
        example = server + path + _example_query(params)
        parts.append(f"<p>Try: <code>curl -s '{_e(example)}'</code></p>")
    parts.append("</div>")
    return "".join(parts)


def _example_query(params: list[dict[str, Any]]) -> str:
    from urllib.parse import urlencode

    pairs: dict[str, Any] = {}
    for p in params:
        if p.get("in") == "query" and "example" in p:
            example = p["example"]  # an object parameter's members are parameters of their own
            pairs.update(example if isinstance(example, dict) else {p["name"]: example})
    if "scheme" in pairs:  # lookup: one form at a time
        pairs.pop("source", None)
        pairs.pop("record_id", None)
    if "queries" in pairs:
        return ""
    return ("?" + urlencode(pairs)) if pairs else ""


_ERRORS_NOTE = """
<h2 id='errors'>Errors</h2>
<p>Every error is <code>application/problem+json</code> (RFC 9457) with <code>type</code>,
<code>title</code>, <code>status</code>, <code>detail</code> and <code>instance</code>.
A 400 also lists <code>errors: [{field, in, detail}]</code> naming the field at fault.
Statuses: 400 invalid field, 404 unknown entity/identifier/release, 405 wrong method (with
<code>Allow</code>), 410 retired id without successor, 413 batch or body too large, 415 body not
JSON (or not a form, for <code>/reconcile</code>), 500 without internals, 503 when matching
cannot load the release's model (lookups still work).</p>
<h2 id='caching'>Caching</h2>
<p>Entity, lookup, sources and release answers carry an <code>ETag</code> made of the release's
build id and the entity, and <code>Cache-Control</code> (60 s for the latest release, a day and
<code>immutable</code> when a release is named with <code>?release=</code>). Send the ETag back in
<code>If-None-Match</code> to get <code>304 Not Modified</code>.</p>
"""

_RECONCILE_NOTE = """
<p>Add <code>{server}/reconcile</code> as a standard service in OpenRefine. The query string
is the facility name; properties <code>city</code>, <code>zip</code>, <code>address</code>,
<code>state</code>, <code>phone</code>, any department id scheme (<code>oshpd_id</code>,
<code>cdph_license</code>, <code>npi</code>, ...) and <code>record:&lt;source&gt;</code> refine it.
Types are facility classes (<code>facility</code> means any).
<strong>Scores</strong> are the engine's match probability times 100 (0 to 100); a candidate
found by a department id scores 100. <strong><code>match: true</code></strong> is set only on a
top candidate that the ids given point to (and only to), or (without ids, and with more than
a name) one that scores at least {score:g} with a match weight at least {margin:g} bits above
the runner-up's; from a score of {floor:g} up to {score:g}, the margin must also make up the
bits the top lacks of {score:g}. A query without a facility type is compared by the type its
name implies (... HOSPITAL, ... NURSING CENTER, ... HOSPICE). A name alone gets candidates
too, and is never matched.</p>
"""
