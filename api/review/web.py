"""The review web UI at ``/review``: server-rendered, usable without JavaScript.

Pages: the login form, the queue of disputes (most pressing first, filtered
by department, reason, facility type and status) and the pair page (both
records side by side, what differs between their normalized values marked, the
distance between them, the waterfall from the prior to the match weight, the
decision form and the history with Undo).

Security: a signed session cookie (HttpOnly, SameSite, Secure when
configured) carrying a random session id that must name a live session of the
store (sign-out, disabling the account, a new password or a new signing key
end it), a per-session CSRF token checked on every POST, logins throttled per
username and per client address, and a Content-Security-Policy that allows
only this server's own scripts and styles.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.exceptions import BadRequest, Forbidden, HTTPException
from werkzeug.wrappers import Response

from api.http import MAX_INT, int_arg
from api.problems import server_error_detail
from api.review.common import (
    FILTERS,
    MAX_COMMENT,
    STATUSES,
    data_sources,
    diff_segments,
    dispute_for,
    published_model,
    store,
    undecided_in_group,
)
from crosswalk.errors import ReviewError
from crosswalk.matching import NORMALIZED_COLUMNS, NormalizedPair, normalize_pair
from crosswalk.review.auth import end_session, reviewer_for_session, start_session
from crosswalk.review.auth import login as check_login
from crosswalk.review.disputes import REASON_LABELS
from crosswalk.review.store import VERDICTS, Dispute, Reviewer, ReviewStore
from crosswalk.vocabulary import ID_PREFIX

bp = Blueprint(
    "review",
    __name__,
    url_prefix="/review",
    template_folder="../templates",
    static_folder="../static/review",
    static_url_path="/static",
)

#: Disputes per queue page.
PAGE_SIZE = 50
#: Skipped disputes remembered per session.
MAX_SKIPPED = 500

#: Fields shown side by side on the pair page, with their labels.
FIELDS = (
    ("name", "Name"),
    ("other_names", "Other names"),
    ("address", "Address"),
    ("city", "City"),
    ("state", "State"),
    ("zip", "ZIP"),
    ("county", "County"),
    ("phone", "Phone"),
    ("facility_type", "Facility type"),
    ("latitude", "Latitude"),
    ("longitude", "Longitude"),
)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


# ---------------------------------------------------------------------- session, CSRF


def csrf_token() -> str:
    """The session's CSRF token, created on first use."""
    token = session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


@bp.before_request
def _check_csrf() -> None:
    store()  # 503 when review is not configured
    if request.method == "POST":
        sent = request.form.get("csrf_token", "")
        expected = session.get("csrf")
        if not isinstance(expected, str) or not sent or not hmac.compare_digest(sent, expected):
            raise BadRequest(
                description="The form's CSRF token is missing or wrong. "
                "Reload the page and submit the form again."
            )


@bp.before_request
def _load_reviewer() -> None:
    g.reviewer = None
    if "sid" not in session:
        return
    reviewer = reviewer_for_session(store(), session.get("sid"))
    if reviewer is None:  # ended, expired, or its reviewer disabled
        session.clear()
        return
    g.reviewer = reviewer


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if not request.path.startswith(bp.static_url_path or "/static"):
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_template_global("review_csrf_token")
def _csrf_global() -> str:
    return csrf_token()


@bp.context_processor
def _context() -> dict[str, Any]:
    return {
        "reviewer": g.get("reviewer"),
        "data_sources": data_sources(),
        "reason_labels": REASON_LABELS,
    }


@bp.errorhandler(HTTPException)
def _error_page(exc: HTTPException) -> Response:
    """Errors of the review pages as HTML pages (the JSON API answers problem+json)."""
    status = exc.code or 500
    response = make_response(
        render_template(
            "review/error.html",
            status=status,
            title=exc.name,
            detail=exc.description if status < 500 else server_error_detail(exc),
        ),
        status,
    )
    for key, value in exc.get_headers():
        if key.lower() not in ("content-type", "content-length"):
            response.headers[key] = value
    return response


def current_reviewer() -> Reviewer:
    reviewer: Reviewer | None = g.get("reviewer")
    if reviewer is None:
        raise _LoginRequired()
    return reviewer


class _LoginRequired(HTTPException):
    code = 401
    description = "Sign in to review disputes."


@bp.errorhandler(_LoginRequired)
def _to_login(_exc: _LoginRequired) -> Response:
    target = request.full_path if request.method == "GET" else url_for("review.queue")
    return redirect(url_for("review.login", next=target.rstrip("?")))


def _safe_next(target: str | None) -> str:
    """``target`` if it is a path of the review UI, else the queue (no open redirects)."""
    if (
        target
        and target.startswith("/review")
        and not target.startswith("//")
        and "\\" not in target
        and all(ord(c) >= 32 for c in target)
    ):
        return target
    return url_for("review.queue")


# ---------------------------------------------------------------------- login


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str:
    """Sign in with a username and password."""
    if request.method == "GET":
        if g.reviewer is not None:
            return redirect(_safe_next(request.args.get("next")))
        return render_template("review/login.html", next=request.args.get("next", ""))
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    target = request.form.get("next", "")
    ip = request.remote_addr or "unknown"
    result = check_login(store(), username, password, ip)
    if result.retry_after:
        response = make_response(
            render_template(
                "review/login.html",
                next=target,
                username=username,
                error=f"Too many failed sign-ins. Try again in {result.retry_after} seconds.",
            ),
            429,
        )
        response.headers["Retry-After"] = str(result.retry_after)
        return response
    if result.reviewer is None:
        return make_response(
            render_template(
                "review/login.html",
                next=target,
                username=username,
                error="Wrong username or password.",
            ),
            401,
        )
    end_session(store(), session.get("sid"))
    session.clear()  # a new session: no fixation
    session["sid"] = start_session(store(), result.reviewer)
    csrf_token()
    return redirect(_safe_next(target))


@bp.post("/logout")
def logout() -> Response:
    """Sign out: the session ends on the server, so a copy of its cookie is refused too."""
    end_session(store(), session.get("sid"))
    session.clear()
    flash("Signed out.")
    return redirect(url_for("review.login"))


# ---------------------------------------------------------------------- queue


def _filters(args: Any) -> dict[str, str]:
    """The queue filters of a request (query string or form), validated."""
    out: dict[str, str] = {}
    for name in FILTERS:
        value = str(args.get(name, "") or "").strip()[:200]
        if value:
            out[name] = value
    status = out.get("status", "open")
    if status not in STATUSES:
        raise BadRequest(description=f"status: must be one of {', '.join(STATUSES)}.")
    out["status"] = status
    return out


def _narrowing(filters: dict[str, str]) -> tuple[str | None, str | None, str | None]:
    """The department, reason and facility-type filters (None when not set)."""
    return (
        filters.get("department") or None,
        filters.get("reason") or None,
        filters.get("facility_type") or None,
    )


def _query(filters: dict[str, str], **extra: Any) -> str:
    items = {k: v for k, v in filters.items() if v and not (k == "status" and v == "open")}
    items.update({k: v for k, v in extra.items() if v})
    return ("?" + urlencode(items)) if items else ""


@bp.get("/")
def queue() -> str:
    """The disputes the reviewer may decide, most pressing first."""
    reviewer = current_reviewer()
    filters = _filters(request.args)
    page = int_arg("page", 1, 1, MAX_INT // PAGE_SIZE)
    db = store()
    department, reason, facility_type = _narrowing(filters)
    total = db.count_disputes(
        reviewer=reviewer,
        status=filters["status"],
        department=department,
        reason=reason,
        facility_type=facility_type,
    )
    items = db.disputes(
        reviewer=reviewer,
        status=filters["status"],
        department=department,
        reason=reason,
        facility_type=facility_type,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    return render_template(
        "review/queue.html",
        groups=_groups(db, reviewer, items, filters["status"]),
        filters=filters,
        facets=db.facets(reviewer),
        items=items,
        total=total,
        left_open=db.count_disputes(reviewer=reviewer, status="open"),
        left_unsure=db.count_disputes(reviewer=reviewer, status="unsure"),
        model=published_model(),
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        query=_query(filters),
        page_query=lambda p: _query(filters, page=p if p > 1 else None),
        statuses=STATUSES,
    )


def _groups(
    db: ReviewStore, reviewer: Reviewer, items: list[Dispute], status: str
) -> dict[str, list[Dispute]]:
    """The groups of the listed disputes that hold more than one dispute of this status
    (one decision settles each), by group key."""
    out: dict[str, list[Dispute]] = {}
    for key in dict.fromkeys(d.group_key for d in items if d.group_key):
        assert key is not None
        members = db.disputes(reviewer=reviewer, status=status, group=key)
        if len(members) > 1:
            out[key] = members
    return out


@bp.post("/groups/decision")
def decide_group() -> Response:
    """Record one verdict covering every open (or unsure) dispute of a group that the
    reviewer may decide: one event, undone as one."""
    reviewer = current_reviewer()
    filters = _filters(request.form)
    key = str(request.form.get("group", ""))[:500]
    verdict = request.form.get("verdict", "")
    comment = request.form.get("comment", "")
    if len(comment) > MAX_COMMENT:
        raise BadRequest(description=f"comment: at most {MAX_COMMENT} characters.")
    if verdict not in VERDICTS:
        raise BadRequest(description=f"verdict: must be one of {', '.join(VERDICTS)}.")
    db = store()
    members = undecided_in_group(db, reviewer, key)
    if not key or not members:
        raise BadRequest(description=f"group: no open dispute of group {key!r} to decide.")
    try:
        event = db.decide_pairs(
            reviewer, [(d.pair, d.dispute_id) for d in members], verdict, comment
        )
    except ReviewError as exc:
        raise Forbidden(description=str(exc)) from exc
    flash(
        f"{len(members)} disputes of one group: recorded '{verdict}' (decision {event.event_id})."
    )
    return redirect(url_for("review.queue") + _query(filters))


@bp.get("/next")
def next_dispute() -> Response:
    """The first open dispute of the filtered queue that this session has not skipped."""
    reviewer = current_reviewer()
    filters = _filters(request.args)
    return _redirect_next(reviewer, filters, exclude=())


def _redirect_next(
    reviewer: Reviewer, filters: dict[str, str], exclude: tuple[int, ...]
) -> Response:
    skipped = [int(x) for x in session.get("skipped", []) if isinstance(x, int)]
    department, reason, facility_type = _narrowing(filters)
    found = store().disputes(
        reviewer=reviewer,
        status="open",
        department=department,
        reason=reason,
        facility_type=facility_type,
        exclude=[*skipped, *exclude],
        limit=1,
    )
    if not found:
        flash("Nothing left to review with these filters.")
        return redirect(url_for("review.queue") + _query(filters))
    return redirect(url_for("review.pair", dispute_id=found[0].dispute_id) + _query(filters))


# ---------------------------------------------------------------------- pair page


#: Bits within this of each other are the same weight (the explanation's rounding).
ROUNDING_BITS = 0.01
#: Width of the waterfall's bars, in SVG units.
WATERFALL_WIDTH = 320


def _waterfall(explanation: dict[str, Any], prior_bits: float | None) -> dict[str, Any] | None:
    """The pair's weight as a waterfall, as Splink draws it: the prior first, then each
    field's contribution, each bar starting where the one before it ended, so that the
    bars add up to the match weight (the last bar, from zero).

    ``prior_bits`` is the prior of the model that scored the pair; when it is not known
    the prior bar is the weight less the fields. Any rest beyond the rounding of the
    explanation (a weight the fields do not account for) is a bar of its own.
    """
    link = explanation.get("link") or {}
    fields = explanation.get("fields") or {}
    if link.get("match_weight") is None or not fields:
        return None
    weight = float(link["match_weight"])
    items: list[tuple[str, str | None, float]] = []
    for name, item in fields.items():
        try:
            bits = float(item.get("weight") or 0.0)
        except (TypeError, ValueError):
            bits = 0.0
        items.append((name, item.get("level"), bits))
    itemized = sum(b for _, _, b in items)
    estimated = prior_bits is None
    prior = weight - itemized if prior_bits is None else float(prior_bits)
    steps = [("prior", None, prior), *items]
    rest = weight - prior - itemized
    if abs(rest) > ROUNDING_BITS:
        steps.append(("other terms", None, rest))
    bars: list[dict[str, Any]] = []
    at = 0.0
    for name, level, bits in steps:
        bars.append({"label": name, "level": level, "bits": bits, "start": at, "end": at + bits})
        at += bits
    ends = [0.0, weight, *(b["end"] for b in bars)]
    lo, hi = min(ends), max(ends)
    span = max(hi - lo, 1e-9)

    def x(v: float) -> float:
        return round((v - lo) / span * WATERFALL_WIDTH, 1)

    for b in bars:
        b["x"] = x(min(b["start"], b["end"]))
        b["width"] = max(round(abs(b["end"] - b["start"]) / span * WATERFALL_WIDTH, 1), 1.0)
        b["side"] = "pos" if b["bits"] >= 0 else "neg"
    total = {
        "bits": weight,
        "x": x(min(0.0, weight)),
        "width": max(round(abs(weight) / span * WATERFALL_WIDTH, 1), 1.0),
        "side": "pos" if weight >= 0 else "neg",
    }
    return {
        "bars": bars,
        "total": total,
        "zero": x(0.0),
        "width": WATERFALL_WIDTH,
        "estimated_prior": estimated,
    }


def _listed(raw: Any, normalized: str | None) -> str | None:
    """The value as listed, when it reads otherwise than its normalized form."""
    text = "" if raw is None else " ".join(str(raw).split())
    if not text or normalized is None or text.upper() == normalized.upper():
        return None
    return text


def _row(
    label: str, a: Any, b: Any, na: str | None, nb: str | None, *, normalized: bool
) -> dict[str, Any]:
    """One row of the comparison: the values compared as the engine compares them when
    ``normalized`` (and both sides have a normalized value), else as listed."""
    if normalized and na is not None and nb is not None:
        if na == nb:  # the same value to the engine: shown as listed, nothing marked
            return {
                "label": label, "left": [(str(a), False)], "right": [(str(b), False)],
                "same": True, "listed": (None, None),
            }  # fmt: skip
        segs_a, segs_b = diff_segments(na, nb)
        return {
            "label": label, "left": segs_a, "right": segs_b, "same": False,
            "listed": (_listed(a, na), _listed(b, nb)),
        }  # fmt: skip
    segs_a, segs_b = diff_segments(a, b)
    return {
        "label": label, "left": segs_a, "right": segs_b,
        "same": not any(changed for _, changed in segs_a + segs_b), "listed": (None, None),
    }  # fmt: skip


def _rows(
    left: dict[str, Any], right: dict[str, Any], pair: NormalizedPair
) -> list[dict[str, Any]]:
    """The fields side by side, differences marked between the values the engine
    compares (its normalized values, where it normalizes the field)."""
    rows = []
    for key, label in FIELDS:
        a, b = left.get(key), right.get(key)
        if a in (None, "") and b in (None, ""):
            continue
        rows.append(
            _row(
                label, a, b, pair.left.get(key), pair.right.get(key),
                normalized=key in NORMALIZED_COLUMNS,
            )
        )  # fmt: skip
    ids_a = left.get("identifiers") or {}
    ids_b = right.get("identifiers") or {}
    for scheme in sorted(set(ids_a) | set(ids_b)):
        key = ID_PREFIX + scheme
        rows.append(
            _row(
                scheme, ids_a.get(scheme), ids_b.get(scheme), pair.left.get(key),
                pair.right.get(key), normalized=True,
            )
        )  # fmt: skip
    return rows


def _distance(metres: float | None) -> str | None:
    """A distance as a reviewer reads it: metres up to a kilometre, then kilometres."""
    if metres is None:
        return None
    if metres < 1000:
        return f"{metres:.0f} m"
    return f"{metres / 1000:.1f} km" if metres < 100_000 else f"{metres / 1000:.0f} km"


@bp.get("/disputes/<int:dispute_id>")
def pair(dispute_id: int) -> str:
    """One dispute: both records side by side, the evidence and the decision form."""
    reviewer = current_reviewer()
    dispute = dispute_for(reviewer, dispute_id)
    filters = _filters(request.args)
    db = store()
    history = db.events(dispute.pair)
    model = published_model()
    # The published model's prior is the one that scored the pair if it is of the
    # build that last raised the dispute.
    prior = model.prior_bits if model and model.build_id == dispute.build_id else None
    normalized = normalize_pair(dispute.left, dispute.right)
    together = bool(dispute.left.get("entity_id")) and dispute.left.get(
        "entity_id"
    ) == dispute.right.get("entity_id")
    return render_template(
        "review/pair.html",
        d=dispute,
        rows=_rows(dispute.left, dispute.right, normalized),
        distance=_distance(normalized.distance_m),
        waterfall=_waterfall(dispute.explanation, prior),
        together=together,
        link=dispute.explanation.get("link"),
        history=list(reversed(history)),
        filters=filters,
        query=_query(filters),
        left_open=db.count_disputes(reviewer=reviewer, status="open"),
        verdicts=VERDICTS,
        max_comment=MAX_COMMENT,
    )


@bp.post("/disputes/<int:dispute_id>/decision")
def decide(dispute_id: int) -> Response:
    """Record a verdict (or skip), then go to the next dispute of the queue."""
    reviewer = current_reviewer()
    dispute = dispute_for(reviewer, dispute_id)
    filters = _filters(request.form)
    verdict = request.form.get("verdict", "")
    comment = request.form.get("comment", "")
    if len(comment) > MAX_COMMENT:
        raise BadRequest(description=f"comment: at most {MAX_COMMENT} characters.")
    if verdict == "skip":
        skipped = [x for x in session.get("skipped", []) if isinstance(x, int)]
        session["skipped"] = [*skipped, dispute_id][-MAX_SKIPPED:]
        return _redirect_next(reviewer, filters, exclude=(dispute_id,))
    if verdict not in VERDICTS:
        raise BadRequest(description=f"verdict: must be one of {', '.join(VERDICTS)} or skip.")
    try:
        event = store().decide(
            reviewer, dispute.pair, verdict, comment, dispute_id=dispute.dispute_id
        )
    except ReviewError as exc:
        raise Forbidden(description=str(exc)) from exc
    flash(f"Dispute {dispute_id}: recorded '{verdict}' (decision {event.event_id}).")
    return _redirect_next(reviewer, filters, exclude=(dispute_id,))


@bp.post("/events/<int:event_id>/undo")
def undo(event_id: int) -> Response:
    """Undo a decision: appends an undo event; the earlier decision, if any, stands again."""
    reviewer = current_reviewer()
    db = store()
    target = db.event(event_id)
    if target is None or target.kind != "decision":
        raise BadRequest(description=f"There is no decision {event_id} to undo.")
    if not reviewer.may_see(target.pair[0][0], target.pair[1][0]):
        raise Forbidden(description=f"{reviewer.username} may not undo decision {event_id}.")
    comment = request.form.get("comment", "")[:MAX_COMMENT]
    try:
        db.undo(reviewer, event_id, comment)
    except ReviewError as exc:
        raise BadRequest(description=str(exc)) from exc
    flash(f"Decision {event_id} undone.")
    filters = _filters(request.form)
    if target.dispute_id is not None:
        return redirect(url_for("review.pair", dispute_id=target.dispute_id) + _query(filters))
    return redirect(url_for("review.queue") + _query(filters))
