"""How much of the review queue is worth a steward's time, against the truth pairs.

Usage::

    .venv/bin/python bench/review_queue.py [--json] [--out DIR] [--uncaught]

Builds the CDPH 2020 ↔ HCAI 2020 crosswalk twice, blind (``bench/blind.toml``)
and with identifiers (``data/sources.toml``), each with a fresh review store
(``crosswalk build --review-store``), and judges the open disputes against the
7,347 truth pairs of ``bench/data/cdph2020_hcai2020_same_facility.csv``:

* **judged**: an open dispute over a CDPH–HCAI pair whose CDPH record has a
  truth partner, or whose HCAI record is in the truth;
* **useful**: a judged dispute where the engine's decision on the pair (the
  two records share an entity, or not) disagrees with the truth;
* **yield**: useful ÷ judged;
* **engine errors in scope**: the truth pairs the engine does not link
  (missed), plus the CDPH–HCAI pairs it links that the truth does not hold
  while either record is in the truth (false);
* **coverage**: the engine errors that are open disputes ÷ all of them.

Each figure is given for the whole queue and by reason (a dispute raised for
several reasons counts under each). *Decisions* is the number of decisions the
queue asks for: the open disputes, with a group of disputes that one decision
settles counted once.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers.harness import BENCH, ROOT, PairSet, read_truth

from crosswalk.artifact.reader import connect
from crosswalk.review.store import ReviewStore

TRUTH = BENCH / "data" / "cdph2020_hcai2020_same_facility.csv"
BUILDS = {"blind": BENCH / "blind.toml", "with identifiers": ROOT / "data" / "sources.toml"}
LEFT, RIGHT = "cdph", "hcai"
REPRODUCE = ".venv/bin/python bench/review_queue.py"
TARGETS = {
    "blind": {"coverage": 0.75, "yield": 0.15, "max_open": 1000},
    "with identifiers": {"coverage": 0.9, "yield": 0.1, "max_open": None},
}


@dataclass
class Row:
    """The queue's figures, for all its disputes or for those of one reason."""

    open: int = 0
    decisions: int = 0
    judged: int = 0
    useful: int = 0
    errors_in_queue: int = 0

    @property
    def yield_(self) -> float:
        return self.useful / self.judged if self.judged else 0.0


@dataclass
class Table:
    build: str
    errors: int
    total: Row
    by_reason: dict[str, Row] = field(default_factory=dict)
    #: The engine errors not in the queue, by why: no published link (never a candidate
    #: pair, or scored under the floor), or a link the engine decided with a clear margin.
    uncaught: dict[str, int] = field(default_factory=dict)
    #: Each of them: the (CDPH, HCAI) pair, missed or false, and its published link.
    uncaught_pairs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def coverage(self) -> float:
        return self.total.errors_in_queue / self.errors if self.errors else 1.0

    def to_dict(self) -> dict[str, Any]:
        def row(r: Row) -> dict[str, Any]:
            return {**asdict(r), "yield": r.yield_}

        return {
            "build": self.build,
            "engine_errors_in_scope": self.errors,
            "coverage": self.coverage,
            "total": row(self.total),
            "by_reason": {k: row(v) for k, v in self.by_reason.items()},
            "uncaught": self.uncaught,
            "uncaught_pairs": self.uncaught_pairs,
        }


def published_pairs(db: Path) -> dict[tuple[str, str], tuple[str, float]]:
    """The (CDPH, HCAI) record pairs with a published link: its status and weight."""
    with connect(db) as con:
        rows = con.execute(
            "SELECT source_l, record_id_l, source_r, record_id_r, status, match_weight FROM links"
        ).fetchall()
    out = {}
    for sl, il, sr, ir, status, weight in rows:
        if {sl, sr} == {LEFT, RIGHT}:
            key = (str(il), str(ir)) if sl == LEFT else (str(ir), str(il))
            out[key] = (str(status), float(weight))
    return out


def entity_of(db: Path) -> dict[tuple[str, str], str]:
    """Each published record's entity id, by (source, record_id)."""
    with connect(db) as con:
        rows = con.execute("SELECT source, record_id, entity_id FROM records").fetchall()
    return {(str(s), str(r)): str(e) for s, r, e in rows}


def measure(name: str, config: Path, work: Path, truth: PairSet) -> Table:
    """Build ``config`` with a fresh review store under ``work`` and judge its open queue."""
    out = work / name.replace(" ", "_")
    store = out.with_suffix(".review.sqlite")
    cmd = [sys.executable, "-m", "crosswalk.cli", "build", "--config", str(config)]
    cmd += ["--out", str(out), "--review-store", str(store)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(cmd)} failed:\n{done.stderr[-2000:]}")
    entity = entity_of(out / "crosswalk.sqlite")
    truth_l = {c for c, _ in truth}
    truth_r = {h for _, h in truth}

    def same(c: str, h: str) -> bool:
        a, b = entity.get((LEFT, c)), entity.get((RIGHT, h))
        return a is not None and a == b

    by_entity: dict[str, list[str]] = {}
    for (src, rid), e in entity.items():
        if src == RIGHT:
            by_entity.setdefault(e, []).append(rid)
    linked = {
        (rid, h) for (src, rid), e in entity.items() if src == LEFT for h in by_entity.get(e, [])
    }
    missed = {p for p in truth if not same(*p)}
    false = {(c, h) for c, h in linked - truth if c in truth_l or h in truth_r}
    errors = missed | false

    queued: set[tuple[str, str]] = set()
    total = Row()
    by_reason: dict[str, Row] = {}
    groups: set[Any] = set()
    reason_groups: dict[str, set[Any]] = {}
    with ReviewStore(store, create=False) as db:
        disputes = db.disputes(status="open")
        group_of = _groups(db)
    for d in disputes:
        (sl, il), (sr, ir) = d.pair
        kinds = sorted(set(d.reason_kinds))
        group = group_of.get(d.dispute_id, ("dispute", d.dispute_id))
        rows = [total] + [by_reason.setdefault(k, Row()) for k in kinds]
        groups.add(group)
        for k in kinds:
            reason_groups.setdefault(k, set()).add(group)
        for r in rows:
            r.open += 1
        if {sl, sr} != {LEFT, RIGHT}:
            continue
        c, h = (il, ir) if sl == LEFT else (ir, il)
        queued.add((c, h))
        if c not in truth_l and h not in truth_r:
            continue
        wrong = same(c, h) != ((c, h) in truth)
        for r in rows:
            r.judged += 1
            r.useful += int(wrong)
            r.errors_in_queue += int((c, h) in errors)
    total.decisions = len(groups)
    for k, r in by_reason.items():
        r.decisions = len(reason_groups[k])
    linked_pairs = published_pairs(out / "crosswalk.sqlite")
    missing = errors - queued
    uncaught = {
        "no published link": len(missing - linked_pairs.keys()),
        "published link, clear margin": len(missing & linked_pairs.keys()),
    }
    listed = [
        {
            LEFT: c, RIGHT: h, "error": "missed" if (c, h) in missed else "false",
            "status": linked_pairs.get((c, h), (None, None))[0],
            "match_weight": linked_pairs.get((c, h), (None, None))[1],
        }
        for c, h in sorted(missing)
    ]  # fmt: skip
    return Table(name, len(errors), total, dict(sorted(by_reason.items())), uncaught, listed)


def _groups(db: ReviewStore) -> dict[int, Any]:
    """The group of each dispute that shares one decision with others (none: on its own)."""
    cols = {r[1] for r in db.conn.execute("PRAGMA table_info(disputes)").fetchall()}
    if "group_key" not in cols:
        return {}
    rows = db.conn.execute("SELECT dispute_id, group_key FROM disputes").fetchall()
    return {int(i): ("group", g) for i, g in rows if g}


def render(tables: list[Table]) -> str:
    lines = [
        "| build | reason | open disputes | decisions | judged by the truth | useful | yield "
        "| engine errors in scope | errors in the queue | coverage |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in tables:
        r = t.total
        lines.append(
            f"| {t.build} | **all** | {r.open:,} | {r.decisions:,} | {r.judged:,} | {r.useful:,} "
            f"| **{r.yield_:.1%}** | {t.errors:,} | {r.errors_in_queue:,} | **{t.coverage:.0%}** |"
        )
        for kind, k in t.by_reason.items():
            cov = k.errors_in_queue / t.errors if t.errors else 0.0
            lines.append(
                f"| {t.build} | {kind} | {k.open:,} | {k.decisions:,} | {k.judged:,} "
                f"| {k.useful:,} | {k.yield_:.1%} | | {k.errors_in_queue:,} | {cov:.0%} |"
            )
    return "\n".join(lines)


def verdicts(tables: list[Table]) -> list[str]:
    out = []
    for t in tables:
        target = TARGETS[t.build]
        ok = t.coverage >= target["coverage"] and t.total.yield_ >= target["yield"]
        limit = target["max_open"]
        if limit is not None:
            ok = ok and t.total.open <= limit
        cap = f", ≤ {limit:,} open" if limit is not None else ""
        out.append(
            f"{t.build}: coverage {t.coverage:.2f} (target ≥ {target['coverage']}), yield "
            f"{t.total.yield_:.3f} (≥ {target['yield']}{cap}): {'met' if ok else 'NOT met'}"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--out", type=Path, help="keep the builds and stores in DIR")
    parser.add_argument(
        "--uncaught",
        action="store_true",
        help="also list each engine error not in the queue: the pair, missed or false, "
        "and its published link's status and weight",
    )
    args = parser.parse_args(argv)
    truth = read_truth(TRUTH, "FACID", "OSHPD_ID")
    with tempfile.TemporaryDirectory(prefix="review-queue-") as tmp:
        work = args.out or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        tables = [measure(name, config, work, truth) for name, config in BUILDS.items()]
    if args.json:
        print(json.dumps([t.to_dict() for t in tables], indent=2))
    else:
        print(render(tables))
        print()
        for t in tables:
            why = ", ".join(f"{k} {v}" for k, v in t.uncaught.items())
            print(f"{t.build}: engine errors not in the queue: {why}")
            for u in t.uncaught_pairs if args.uncaught else []:
                link = (
                    "no published link" if u["status"] is None
                    else f"{u['status']}, {u['match_weight']:.2f} bits"
                )  # fmt: skip
                print(f"  {u['error']}: {LEFT} {u[LEFT]} / {RIGHT} {u[RIGHT]} ({link})")
        print()
        for line in verdicts(tables):
            print(line)
        print(f"\nReproduce with: {REPRODUCE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
