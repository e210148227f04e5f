"""What the review web UI and the review JSON endpoints share: the store of the
request, the signed-in reviewer's scope, the data footer and the diff of two values."""

from __future__ import annotations

import difflib
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import current_app, g
from werkzeug.exceptions import Forbidden, NotFound

from api.problems import Unavailable
from crosswalk.artifact.reader import connect, meta
from crosswalk.review.store import Dispute, Reviewer, ReviewStore

#: Config key naming the review store; absent means review is disabled.
STORE_KEY = "REVIEW_STORE"
#: Config key naming the published crosswalk (for the data footer).
DB_KEY = "CROSSWALK_DB"

#: Query parameters that filter the queue, in the UI and the JSON API.
FILTERS = ("department", "reason", "facility_type", "status")
#: Values of the ``status`` filter.
STATUSES = ("open", "unsure", "decided", "all")
#: Longest comment kept with a decision.
MAX_COMMENT = 2000


def store() -> ReviewStore:
    """The review store of this request, opened on first use and closed at teardown."""
    path = current_app.config.get(STORE_KEY)
    if not path:
        raise Unavailable(
            description="This server was started without a review store, so the review pages "
            "and /v1/disputes are off. Fix: create an account in a store with `crosswalk "
            "reviewers add --store FILE --department SOURCE --username NAME`, then start the "
            "server with `crosswalk serve --review-store FILE` (`make run` uses "
            "review/review.sqlite)."
        )
    if "review_store" not in g:
        g.review_store = ReviewStore(Path(path))
    opened: ReviewStore = g.review_store
    return opened


def close_store(_exc: BaseException | None = None) -> None:
    """Close the request's store, if one was opened."""
    opened = g.pop("review_store", None)
    if opened is not None:
        opened.close()


def dispute_for(reviewer: Reviewer, dispute_id: int) -> Dispute:
    """The dispute ``dispute_id`` if ``reviewer`` may see it: 404 if there is none,
    403 if it involves no record of the reviewer's department."""
    dispute = store().dispute(dispute_id)
    if dispute is None:
        raise NotFound(description=f"There is no dispute {dispute_id}.")
    if not reviewer.may_see(*dispute.sources):
        raise Forbidden(
            description=(
                f"Dispute {dispute_id} involves {dispute.sources[0]} and {dispute.sources[1]} "
                f"records only; {reviewer.username} reviews {reviewer.department} records."
            )
        )
    return dispute


def undecided_in_group(db: ReviewStore, reviewer: Reviewer, group: str) -> list[Dispute]:
    """The disputes of ``group`` still awaiting a binding decision (open or unsure) that
    ``reviewer`` may decide: what one grouped decision covers."""
    return [
        d
        for status in ("open", "unsure")
        for d in db.disputes(reviewer=reviewer, status=status, group=group)
    ]


@dataclass(frozen=True)
class SourceInfo:
    """A department listing the crosswalk was built from, for the page footer."""

    name: str
    publisher: str
    title: str
    extracted: str


def data_sources() -> list[SourceInfo]:
    """The published crosswalk's sources, or none if it cannot be read."""
    path = current_app.config.get(DB_KEY)
    if not path or not Path(path).exists():
        return []
    try:
        conn = connect(Path(path))
        try:
            rows = conn.execute(
                "SELECT name, publisher, title, extracted FROM sources ORDER BY name"
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return []
    return [SourceInfo(*(str(v or "") for v in row)) for row in rows]


@dataclass(frozen=True)
class PublishedModel:
    """What the review pages show of the published crosswalk's fitted model."""

    build_id: str | None
    prior_bits: float | None
    #: The labelled pairs the fit weighed in, by kind (``training_pairs``,
    #: ``must_link``, ``cannot_link``); empty when it had none.
    learned_from: dict[str, int]

    @property
    def decisions(self) -> int:
        """The review decisions the model learned from (must-links and cannot-links)."""
        return self.learned_from.get("must_link", 0) + self.learned_from.get("cannot_link", 0)


def published_model() -> PublishedModel | None:
    """The published crosswalk's model (its ``meta`` table), or none if it cannot be read."""
    path = current_app.config.get(DB_KEY)
    if not path or not Path(path).exists():
        return None
    try:
        conn = connect(Path(path))
        try:
            found = meta(conn)
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    model = found.get("model")
    if not isinstance(model, dict):
        return None
    prior = model.get("prior_bits")
    learned = model.get("learned_from")
    return PublishedModel(
        build_id=str(found["build_id"]) if found.get("build_id") is not None else None,
        prior_bits=float(prior) if isinstance(prior, int | float) else None,
        learned_from={str(k): int(v) for k, v in learned.items() if isinstance(v, int)}
        if isinstance(learned, dict)
        else {},
    )


Segment = tuple[str, bool]


_TOKEN = re.compile(r"\w+|[^\w\s]+|\s+")


def _fold(text: str) -> str:
    """Lower case when that keeps the length (so that offsets stay valid)."""
    low = text.lower()
    return low if len(low) == len(text) else text


def _char_diff(a: str, b: str) -> tuple[list[Segment], list[Segment]]:
    matcher = difflib.SequenceMatcher(None, _fold(a), _fold(b), autojunk=False)
    out_a: list[Segment] = []
    out_b: list[Segment] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        changed = op != "equal"
        if i2 > i1:
            out_a.append((a[i1:i2], changed))
        if j2 > j1:
            out_b.append((b[j1:j2], changed))
    return out_a, out_b


def _merge(segments: list[Segment]) -> list[Segment]:
    out: list[Segment] = []
    for text, changed in segments:
        if out and out[-1][1] == changed:
            out[-1] = (out[-1][0] + text, changed)
        else:
            out.append((text, changed))
    return out


def diff_segments(left: Any, right: Any) -> tuple[list[Segment], list[Segment]]:
    """Split two values into runs of text, each flagged True where the two differ.

    Words are aligned first (difflib.SequenceMatcher over the words), so that
    a reordered or renamed facility shows whole differing words; a word
    replaced by a similar one (a typo, a digit of a number) shows the
    differing characters. Case is ignored (the departments capitalise
    differently) but the runs keep the original text.
    """
    a = "" if left is None else str(left)
    b = "" if right is None else str(right)
    ta, tb = _TOKEN.findall(a), _TOKEN.findall(b)
    matcher = difflib.SequenceMatcher(
        None, [_fold(t) for t in ta], [_fold(t) for t in tb], autojunk=False
    )
    out_a: list[Segment] = []
    out_b: list[Segment] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        wa, wb = "".join(ta[i1:i2]), "".join(tb[j1:j2])
        if op == "equal":
            out_a.append((wa, False))
            out_b.append((wb, False))
            continue
        similar = (
            op == "replace"
            and difflib.SequenceMatcher(None, _fold(wa), _fold(wb), autojunk=False).ratio() >= 0.6
        )
        if similar:
            ca, cb = _char_diff(wa, wb)
            out_a += ca
            out_b += cb
        else:
            if wa:
                out_a.append((wa, not wa.isspace()))
            if wb:
                out_b.append((wb, not wb.isspace()))
    return _merge(out_a), _merge(out_b)
