"""Accuracy of the CDPH 2020 ↔ HCAI 2020 crosswalk against the truth pairs, beside the peers.

Usage::

    .venv/bin/python bench/accuracy.py [--skip-peers] [--json] [--out DIR]

Runs, each measured end to end in a fresh process (wall time, peak RSS):

* ours, blind: ``crosswalk build --config bench/blind.toml`` (no identifier columns);
* ours, peer columns: the blind config cut down to the five columns the peers
  use (name, address, city, ZIP, facility type), for a like-for-like row;
* ours, with identifiers: ``crosswalk build --config data/sources.toml``; also
  the size of its ``conflicts`` table and whether each doubtful truth pair
  (see below) is reported there;
* Splink 5 on DuckDB and the recordlinkage toolkit (``bench/peers/``), on the
  same two files and the same columns, each scored on its raw pairs and on its
  one-to-one pairs.

Scores are pairwise: the predicted pairs are the CDPH × HCAI record pairs that
share an entity (or that a peer links), compared with the 7,347 truth pairs of
``bench/data/cdph2020_hcai2020_same_facility.csv`` (CDPH's own OSHPD_ID column).
That truth is incomplete: some CDPH records carry no OSHPD_ID (or a stale one)
yet are plainly the same facility as an HCAI record, often with the same
license number, and a pair of two records that the truth does not mention at
all cannot be judged. The headline precision therefore counts only predicted
pairs with at least one record in the truth ("truth scope"); the precision
over all predicted pairs is printed beside it.

A *doubtful* truth pair is one whose names and addresses differ completely:
token-set similarity of the normalized names below 50, and an address mismatch
(token-set similarity of the normalized addresses below 50, or different street
numbers). A looser tier (either the names or the addresses differ completely)
is counted too. With identifiers, every doubtful pair should be in ``conflicts``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import sqlite3
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd
import tomli_w
from rapidfuzz import fuzz

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers.harness import (
    BENCH,
    CROSSWALK,
    GIB,
    ROOT,
    Metrics,
    PairSet,
    Run,
    fmt_num,
    pairs_from_crosswalk,
    pairs_from_csv,
    read_truth,
    run_ours,
    run_peer,
)

from crosswalk.artifact.reader import connect

TRUTH = BENCH / "data" / "cdph2020_hcai2020_same_facility.csv"
BLIND = BENCH / "blind.toml"
WITH_IDS = ROOT / "data" / "sources.toml"
LEFT, RIGHT = "cdph", "hcai"
LEFT_COL, RIGHT_COL = "FACID", "OSHPD_ID"
PEER_FIELDS = ("name", "address", "city", "zip", "facility_type")
REPRODUCE = (
    "python3 -m venv .venv-bench && .venv-bench/bin/pip install splink duckdb recordlinkage "
    "pandas openpyxl && .venv/bin/python bench/accuracy.py"
)

TARGETS = {
    "blind_f1": 0.994,
    "blind_precision": 0.99,
    "with_ids_f1": 0.995,
    "speedup_vs_splink": 3.0,
}


# --------------------------------------------------------------------------- doubtful pairs

_NON_ALNUM = re.compile(r"[^A-Z0-9 ]+")
_LEGAL = re.compile(r"\b(INC|LLC|LP|CORP|CORPORATION|INCORPORATED|CO|LTD|DBA)\b")


def _norm(text: str) -> str:
    s = _NON_ALNUM.sub(" ", str(text).upper())
    s = _LEGAL.sub(" ", s)
    return " ".join(s.split())


def _number(text: str) -> str:
    m = re.match(r"\s*(\d+)", str(text))
    return m.group(1) if m else ""


def doubtful_pairs(truth_csv: Path) -> tuple[PairSet, PairSet]:
    """The doubtful truth pairs: (names and addresses differ, names or addresses differ)."""
    t = pd.read_csv(truth_csv, dtype=str, keep_default_na=False)
    strict: PairSet = set()
    loose: PairSet = set()
    for row in t.itertuples(index=False):
        name_sim = fuzz.token_set_ratio(_norm(row.FACNAME), _norm(row.FACILITY_NAME))
        addr_sim = fuzz.token_set_ratio(_norm(row.ADDRESS), _norm(row.DBA_ADDRESS1))
        number_differs = _number(row.ADDRESS) != _number(row.DBA_ADDRESS1)
        address_mismatch = addr_sim < 50 or number_differs
        pair = (row.FACID.strip(), row.OSHPD_ID.strip())
        if name_sim < 50 and address_mismatch:
            strict.add(pair)
        if name_sim < 50 or (addr_sim < 50 and number_differs):
            loose.add(pair)
    return strict, loose


def conflict_pairs(db_path: Path) -> tuple[int, dict[str, int], PairSet]:
    """Size of the published ``conflicts`` table, its kinds, and its CDPH–HCAI pairs."""
    with connect(db_path) as con:
        rows = con.execute(
            "select kind, source_l, record_id_l, source_r, record_id_r from conflicts"
        ).fetchall()
    kinds: dict[str, int] = {}
    pairs: PairSet = set()
    for kind, sl, rl, sr, rr in rows:
        kinds[kind] = kinds.get(kind, 0) + 1
        if (sl, sr) == (LEFT, RIGHT):
            pairs.add((str(rl), str(rr)))
        elif (sl, sr) == (RIGHT, LEFT):
            pairs.add((str(rr), str(rl)))
    return len(rows), kinds, pairs


# --------------------------------------------------------------------------- scoring


def scoped(predicted: PairSet, truth: PairSet) -> PairSet:
    """Predicted pairs with at least one record in the truth (the pairs it can judge)."""
    left_ids = {left for left, _ in truth}
    right_ids = {right for _, right in truth}
    return {p for p in predicted if p[0] in left_ids or p[1] in right_ids}


def rescore(run: Run, predicted: PairSet, truth: PairSet) -> None:
    """Set the run's headline (truth-scope) metrics and keep the all-pairs ones in extra."""
    run.metrics = Metrics.score(scoped(predicted, truth), truth)
    run.extra["all_pairs"] = Metrics.score(predicted, truth).__dict__


def peer_columns_config(out_dir: Path) -> Path:
    """The blind config cut down to the peers' five columns, written with absolute paths."""
    data = tomllib.loads(BLIND.read_text(encoding="utf-8"))
    for src in data["source"]:
        src["fields"] = {k: v for k, v in src["fields"].items() if k in PEER_FIELDS}
        src["path"] = str((BLIND.parent / src["path"]).resolve())
    path = out_dir / "peer_columns.toml"
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps(data))
    return path


def evaluate_cli(db: Path, errors: Path) -> dict[str, Any] | None:
    """``crosswalk evaluate --json`` on a build, when the command exists and succeeds."""
    cmd = [
        str(CROSSWALK),
        "evaluate",
        "--db",
        str(db),
        "--truth",
        str(TRUTH),
        "--left",
        f"{LEFT}={LEFT_COL}",
        "--right",
        f"{RIGHT}={RIGHT_COL}",
        "--errors",
        str(errors),
        "--json",
    ]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    try:
        value = json.loads(done.stdout)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _git(*args: str) -> str:
    """The output of a git command run on the project's repository (empty on failure)."""
    done = subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
    )
    return done.stdout.strip()


def machine() -> dict[str, Any]:
    """Cores, memory and versions of the machine the figures were measured on."""
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    try:
        commit = _git("rev-parse", "--short", "HEAD")
        if commit and _git("status", "--porcelain", "--untracked-files=no"):
            commit += "-dirty"  # measured with changes not yet committed
    except OSError:
        commit = ""
    return {
        "commit": commit,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


# --------------------------------------------------------------------------- report


def table(runs: list[Run]) -> str:
    """A Markdown table of the runs."""
    head = (
        "| engine | variant | status | F1 | precision | recall | precision (all pairs) "
        "| F1 (all pairs) | wall s | peak RSS GiB | candidate pairs |"
    )
    lines = [head, "|" + "---|" * 11]
    for r in runs:
        m = r.metrics
        a = r.extra.get("all_pairs") or {}
        lines.append(
            f"| {r.engine} | {r.variant} | {r.status} "
            f"| {fmt_num(m.f1 if m else None, 4)} | {fmt_num(m.precision if m else None, 4)} "
            f"| {fmt_num(m.recall if m else None, 4)} | {fmt_num(a.get('precision'), 4)} "
            f"| {fmt_num(a.get('f1'), 4)} | {fmt_num(r.wall_s, 1)} | {fmt_num(r.peak_gib, 2)} "
            f"| {fmt_num(r.candidate_pairs)} |"
        )
    return "\n".join(lines)


def verdicts(runs: list[Run]) -> list[str]:
    """Each target, the figure measured, and whether it is met."""

    def find(engine: str, variant: str) -> Run | None:
        return next((r for r in runs if r.engine == engine and r.variant == variant), None)

    out: list[str] = []
    blind = find("crosswalk", "blind")
    ids = find("crosswalk", "with identifiers")
    if blind and blind.metrics:
        m = blind.metrics
        ok = m.f1 >= TARGETS["blind_f1"] and m.precision >= TARGETS["blind_precision"]
        out.append(
            f"blind F1 ≥ {TARGETS['blind_f1']} with precision ≥ {TARGETS['blind_precision']}: "
            f"F1 {m.f1:.4f}, precision "
            f"{m.precision:.4f} → {'met' if ok else 'NOT met'}"
        )
    else:
        out.append(
            f"blind F1 ≥ {TARGETS['blind_f1']} with precision ≥ {TARGETS['blind_precision']}: "
            "ours pending (no blind build)"
        )
    if ids and ids.metrics:
        f1 = ids.metrics.f1
        out.append(
            f"with identifiers F1 ≥ 0.995: F1 {f1:.4f} → "
            f"{'met' if f1 >= TARGETS['with_ids_f1'] else 'NOT met'}"
        )
        d = ids.extra.get("doubtful")
        if d:
            ok = d["strict_in_conflicts"] == d["strict"]
            out.append(
                f"every doubtful pair reported as a conflict: {d['strict_in_conflicts']} of "
                f"{d['strict']} → {'met' if ok else 'NOT met'}"
            )
    else:
        out.append("with identifiers F1 ≥ 0.995: ours pending (no build with identifiers)")
    peers = [r for r in runs if r.engine != "crosswalk" and r.metrics]
    if blind and blind.metrics and peers:
        best = max(peers, key=lambda r: r.metrics.f1 if r.metrics else 0.0)
        assert best.metrics is not None
        ok = blind.metrics.f1 > best.metrics.f1
        out.append(
            f"better F1 than both peers: ours {blind.metrics.f1:.4f} vs best peer "
            f"{best.engine} ({best.variant}) {best.metrics.f1:.4f} → "
            f"{'met' if ok else 'NOT met'}"
        )
    splink = find("splink", "one-to-one")
    if blind and blind.wall_s and splink and splink.wall_s:
        speed = splink.wall_s / blind.wall_s
        out.append(
            f"≥3× faster than Splink end to end: {splink.wall_s:.1f} s / "
            f"{blind.wall_s:.1f} s = {speed:.1f}× → "
            f"{'met' if speed >= TARGETS['speedup_vs_splink'] else 'NOT met'}"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    """Run every engine, score it and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-peers", action="store_true", help="run ours only")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="keep every run's output here (default: a temporary directory)",
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    parser.add_argument("--mem-cap-gib", type=float, default=12.0, help="kill a run past this")
    args = parser.parse_args(argv)

    truth = read_truth(TRUTH, LEFT_COL, RIGHT_COL)
    strict, loose = doubtful_pairs(TRUTH)
    with tempfile.TemporaryDirectory(prefix="crosswalk-accuracy-") as tmp:
        out = (args.out or Path(tmp)).resolve()
        runs: list[Run] = []
        log = (lambda msg: print(msg, file=sys.stderr)) if args.json else print
        plan: list[tuple[str, Path]] = [
            ("blind", BLIND),
            ("peer columns", peer_columns_config(out / "ours-peer-columns")),
            ("with identifiers", WITH_IDS),
        ]
        for variant, config in plan:
            log(f"· crosswalk build ({variant}) …")
            d = out / f"ours-{variant.replace(' ', '-')}"
            run = run_ours(
                config,
                d,
                truth,
                LEFT,
                RIGHT,
                variant=variant,
                timeout=args.timeout,
                mem_cap_gib=args.mem_cap_gib,
            )
            csv_path = d / "build" / "crosswalk.csv"
            if run.status == "ok" and csv_path.exists():
                rescore(run, pairs_from_crosswalk(csv_path, LEFT, RIGHT), truth)
                db = d / "build" / "crosswalk.sqlite"
                cli = evaluate_cli(db, d / "errors.csv")
                if cli is not None:
                    run.extra["evaluate_cli"] = cli
                if variant == "with identifiers" and db.exists():
                    try:
                        n, kinds, pairs = conflict_pairs(db)
                        run.extra["conflicts"] = {"total": n, "by_kind": kinds}
                        run.extra["doubtful"] = {
                            "strict": len(strict),
                            "strict_in_conflicts": len(strict & pairs),
                            "strict_missing": sorted(strict - pairs),
                            "loose": len(loose),
                            "loose_in_conflicts": len(loose & pairs),
                        }
                    except sqlite3.Error as exc:
                        run.notes.append(f"conflicts table unreadable: {exc}")
            runs.append(run)
        if not args.skip_peers:
            for engine in ("splink", "recordlinkage"):
                log(f"· {engine} …")
                peer_runs = run_peer(
                    engine,
                    BLIND,
                    out / engine,
                    truth,
                    timeout=args.timeout,
                    mem_cap_gib=args.mem_cap_gib,
                )
                for r in peer_runs:
                    kind = "raw" if r.variant == "raw pairs" else "one_to_one"
                    path = out / engine / f"pairs_{kind}.csv"
                    if r.metrics is not None and path.exists():
                        rescore(r, pairs_from_csv(path), truth)
                runs.extend(peer_runs)

    result = {
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        "truth_pairs": len(truth),
        "doubtful_pairs": {
            "strict": len(strict),
            "loose": len(loose),
            "strict_list": sorted(strict),
        },
        "runs": [r.to_dict() for r in runs],
        "targets": verdicts(runs),
        "reproduce": REPRODUCE,
    }
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    print(
        f"\nCDPH 2020 ↔ HCAI 2020: {len(truth):,} truth pairs; "
        f"{len(strict)} doubtful (names and addresses differ completely), "
        f"{len(loose)} in the looser tier (names or addresses differ completely).\n"
    )
    print(table(runs))
    for r in runs:
        if r.extra.get("conflicts"):
            c = r.extra["conflicts"]
            d = r.extra["doubtful"]
            print(
                f"\nwith identifiers: {c['total']} conflicts {c['by_kind']}; doubtful pairs "
                f"reported: {d['strict_in_conflicts']}/{d['strict']} strict, "
                f"{d['loose_in_conflicts']}/{d['loose']} loose"
            )
            if d["strict_missing"]:
                print(f"  not reported: {d['strict_missing']}")
        if r.extra.get("evaluate_cli"):
            e = r.extra["evaluate_cli"]
            print(
                f"crosswalk evaluate ({r.variant}): precision {e.get('precision')}, "
                f"recall {e.get('recall')}, F1 {e.get('f1')}"
            )
        for note in r.notes:
            print(f"  {r.engine} ({r.variant}): {note}")
    print("\nTargets:")
    for line in result["targets"]:
        print(f"  {line}")
    print(f"\nPeak RSS is the largest process's high-water mark; 1 GiB = {GIB:,} bytes.")
    print(f"Reproduce: {REPRODUCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
