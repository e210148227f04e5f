"""schemathesis against `crosswalk serve`: every operation of /openapi.json, every check.

The target is no 5xx and no disagreement with the spec: no answer outside the
documented statuses, content types, headers and schemas; no schema-violating
request accepted; no schema-valid request refused.

It builds the crosswalk of the embedded data (or reuses ``--db``), raises its
disputes into a fresh review store with one admin reviewer and an API token
(so that the review endpoints are exercised too), starts ``crosswalk serve``
on 127.0.0.1, and runs ``st run`` with all checks and all phases (examples,
coverage, fuzzing, stateful) for ``--minutes`` (``bench/fuzz_api.toml`` turns
one check off for one operation, and says why). It prints the figures (test
cases, failures by check and operation) and the command to reproduce, keeps
schemathesis's JSON report and output under ``bench/out/fuzz/``, and exits 1
when schemathesis found anything.

    .venv/bin/python bench/fuzz_api.py --minutes 10
    .venv/bin/python bench/fuzz_api.py --minutes 1 --seed 7     # a short run, another seed
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import machine

from api import CROSSWALK, ROOT, Server, ensure_db  # bench/api.py, not the project's package

OUT = ROOT / "bench" / "out" / "fuzz"
#: Every check on every operation (``--checks all`` on the command line would override
#: the per-operation setting there), with one exception and its reason.
CONFIG = ROOT / "bench" / "fuzz_api.toml"
PHASES = "examples,coverage,fuzzing,stateful"
PASSWORD = "fuzz-reviewer-password-1"


def st_command() -> str:
    local = Path(sys.executable).with_name("st")
    return str(local) if local.exists() else (shutil.which("st") or "st")


def review_store(db: Path, path: Path) -> str:
    """A fresh review store of ``db``'s disputes with one admin reviewer; their API token."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    base = [*CROSSWALK, "reviewers"]
    subprocess.run(
        [*base, "queue", "--store", str(path), "--db", str(db)],
        check=True,
        cwd=ROOT,
        timeout=300,
        stdout=subprocess.DEVNULL,
    )
    added = subprocess.run(
        [
            *base,
            "add",
            "--store",
            str(path),
            "--db",
            str(db),
            "--username",
            "fuzz",
            "--department",
            "cdph",
            "--admin",
            "--password-stdin",
            "--token",
        ],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=120,
    )
    found = re.search(r"^token: (\S+)$", added.stdout, re.MULTILINE)
    if not found:
        raise SystemExit(f"bench/fuzz_api.py: no token in {added.stdout!r}")
    return found.group(1)


def run(
    url: str, token: str, seconds: int, seed: int, workers: str
) -> tuple[int, dict[str, Any], str]:
    """One schemathesis run; its exit code, JSON report and shown command."""
    reports = OUT / "report"
    shutil.rmtree(reports, ignore_errors=True)
    shown = [
        "st",
        "--config-file",
        "bench/fuzz_api.toml",
        "run",
        f"{url}/openapi.json",
        "--mode",
        "all",
        "--phases",
        PHASES,
        "--max-time",
        str(seconds),
        "--workers",
        workers,
        "--request-timeout",
        "20",
        "--seed",
        str(seed),
        "--no-color",
        "-H",
        "Authorization: Bearer $TOKEN",
    ]
    command = [st_command(), *shown[1:-1], f"Authorization: Bearer {token}"]
    command[command.index("bench/fuzz_api.toml")] = str(CONFIG)
    command += ["--report", "json", "--report-dir", str(reports)]
    with (OUT / "st.log").open("w", encoding="utf-8") as log:
        done = subprocess.run(
            command,
            cwd=OUT,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=seconds + 900,  # shrinking and reporting after the budget
            check=False,
        )
    found = sorted(reports.glob("json-*.json"))
    report: dict[str, Any] = json.loads(found[-1].read_text(encoding="utf-8")) if found else {}
    return done.returncode, report, " ".join(shown)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="time budget (default 10)")
    parser.add_argument("--seed", type=int, default=20261207, help="schemathesis seed")
    parser.add_argument("--workers", default="1", help="schemathesis workers (default 1)")
    parser.add_argument("--threads", type=int, default=4, help="server threads (default 4)")
    parser.add_argument("--db", type=Path, help="a built crosswalk.sqlite (default: build one)")
    args = parser.parse_args(argv)

    OUT.mkdir(parents=True, exist_ok=True)
    db = ensure_db(args.db)
    token = review_store(db, OUT / "review.sqlite")
    server = Server(db, args.threads, review_store=OUT / "review.sqlite", log=OUT / "server.log")
    started = time.monotonic()
    try:
        code, report, shown = run(
            server.url, token, round(args.minutes * 60), args.seed, args.workers
        )
    finally:
        server.stop()
    wall = time.monotonic() - started
    server_errors = (OUT / "server.log").read_text(encoding="utf-8").count("unexpected error")

    info = machine()
    cases = report.get("test_cases", {})
    failures = report.get("failures", [])
    print(f"schemathesis {report.get('schemathesis_version', '?')} against crosswalk serve")
    print(f"date: {dt.date.today().isoformat()}, commit {info['commit']}")
    print(f"machine: {info['cores']} cores, {info['memory_gib']} GiB, Python {info['python']}")
    print(f"operations tested: {report.get('operations', {}).get('tested', '?')}")
    print(f"time: {report.get('running_time', 0):.0f} s of schemathesis ({wall:.0f} s in all)")
    print(
        f"test cases: {cases.get('generated', '?')} generated, {cases.get('errored', '?')} errored"
    )
    print(f"failures: {cases.get('unique_failures', '?')} unique")
    for failure in failures:
        ops = ", ".join(failure.get("operations", []))
        print(f"  {failure['code']} {failure['title']}: {failure['count']} ({ops})")
    for name, items in sorted(report.get("warnings", {}).items()):
        if items:
            print(f"  warning {name}: {json.dumps(items)[:300]}")
    print(f"5xx logged by the server (unexpected errors): {server_errors}")
    print(f"schemathesis exit code: {code}")
    print(f"output: {OUT / 'st.log'}")
    print(
        "reproduce: .venv/bin/python bench/fuzz_api.py "
        + " ".join(sys.argv[1:] if argv is None else argv)
    )
    print(f"schemathesis command (TOKEN from `crosswalk reviewers add --token`): {shown}")
    return 0 if code == 0 and not failures and not server_errors else 1


if __name__ == "__main__":
    sys.exit(main())
