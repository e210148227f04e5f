"""HTTP API benchmark: `crosswalk serve` on loopback, driven by wrk.

Measures, against the targets of the API issue:

* lookup by id (``GET /v1/lookup?scheme=&value=``, cycling over real ids) and
  entity by id (``GET /v1/entities/{id}``): requests/s and p99;
* ``POST /v1/match`` with one real record per request (cycling over records): p99;
* a reconcile batch of 100 real queries (name + city, as OpenRefine sends): wall time;
* a 60-second run at 64 concurrent connections over a mix of read endpoints:
  errors (socket errors, timeouts, non-2xx answers) must be zero.

It builds the crosswalk of the embedded data (or reuses ``--db``), starts
``crosswalk serve`` as a subprocess on 127.0.0.1, and stops it at the end.
Every loop is bounded. Requires Debian's ``wrk``.

    .venv/bin/python bench/api.py                  # prints the figures
    .venv/bin/python bench/api.py --update-docs    # and rewrites "## API" in docs/benchmarks.md
    .venv/bin/python bench/api.py --only match     # one measure (repeat --only for several)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crosswalk.artifact.reader import connect  # noqa: E402

OUT = ROOT / "bench" / "out" / "api"
DOCS = ROOT / "docs" / "benchmarks.md"
CROSSWALK = [sys.executable, "-m", "crosswalk.cli"]

TARGET_LOOKUP_RPS = 2000.0
TARGET_LOOKUP_P99_MS = 10.0
TARGET_MATCH_P99_MS = 50.0
TARGET_BATCH_S = 1.0

#: The measures, in the order they run.
MEASURES = ("lookup", "entity", "match", "reconcile", "soak")


@dataclass
class WrkResult:
    """What wrk reports for one run."""

    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    socket_errors: int
    non_2xx: int
    seconds: float
    command: str


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"unreadable wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(output: str, command: str) -> WrkResult:
    """Read requests/s, percentiles and errors from wrk's --latency report."""
    pct = {p: _ms(v) for p, v in re.findall(r"^\s+(50|90|99)%\s+(\S+)", output, re.M)}
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+)", output)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not (total and rps and len(pct) == 3):
        raise RuntimeError(f"wrk output not understood:\n{output}")
    socket_errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if m:
        socket_errors = sum(int(g) for g in m.groups())
    non = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    seconds = _ms(total.group(2) + total.group(3)) / 1000.0
    return WrkResult(
        int(total.group(1)),
        float(rps.group(1)),
        pct["50"],
        pct["90"],
        pct["99"],
        socket_errors,
        int(non.group(1)) if non else 0,
        seconds,
        command,
    )


def wrk(url: str, script: Path | None, seconds: int, connections: int, threads: int) -> WrkResult:
    """Run wrk once (bounded by its own duration plus a margin)."""
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "5s",
    ]
    if script is not None:
        cmd += ["-s", str(script)]
    cmd.append(url)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True)
    return parse_wrk(done.stdout, " ".join(cmd))


# ---------------------------------------------------------------------- Lua scripts


def _lua_list(name: str, items: list[str]) -> str:
    body = ",\n".join(json.dumps(i) for i in items)  # JSON strings are valid Lua strings here
    return f"local {name} = {{\n{body}\n}}\n"


def lookup_script(path: Path, ids: list[tuple[str, str]]) -> Path:
    paths = [f"/v1/lookup?scheme={s}&value={v}" for s, v in ids]
    path.write_text(
        _lua_list("paths", paths)
        + 'local i = 0\nrequest = function()\n  i = i + 1\n  return wrk.format("GET", paths[(i % #paths) + 1])\nend\n',
        encoding="utf-8",
    )
    return path


def entity_script(path: Path, entity_ids: list[str]) -> Path:
    paths = [f"/v1/entities/{e}" for e in entity_ids]
    path.write_text(
        _lua_list("paths", paths)
        + 'local i = 0\nrequest = function()\n  i = i + 1\n  return wrk.format("GET", paths[(i % #paths) + 1])\nend\n',
        encoding="utf-8",
    )
    return path


def match_script(path: Path, bodies: list[str]) -> Path:
    path.write_text(
        _lua_list("bodies", bodies)
        + "local i = 0\n"
        + 'wrk.headers["Content-Type"] = "application/json"\n'
        + "request = function()\n  i = i + 1\n"
        + '  return wrk.format("POST", "/v1/match", nil, bodies[(i % #bodies) + 1])\nend\n',
        encoding="utf-8",
    )
    return path


def mix_script(
    path: Path, ids: list[tuple[str, str]], entity_ids: list[str], names: list[str]
) -> Path:
    """Reads of every kind, all of which answer 2xx: lookups, entities, search, suggest, sources."""
    from urllib.parse import quote

    paths: list[str] = []
    for n, (scheme, value) in enumerate(ids):
        paths.append(f"/v1/lookup?scheme={scheme}&value={value}")
        paths.append(f"/v1/entities/{entity_ids[n % len(entity_ids)]}")
        if n % 10 == 0:
            word = quote(names[n % len(names)].split()[0])
            paths.append(f"/v1/entities?q={word}&limit=10")
            paths.append(f"/reconcile/suggest/entity?prefix={word}")
        if n % 50 == 0:
            paths += ["/v1/sources", "/v1/release", "/healthz"]
    path.write_text(
        _lua_list("paths", paths)
        + 'local i = 0\nrequest = function()\n  i = i + 1\n  return wrk.format("GET", paths[(i % #paths) + 1])\nend\n',
        encoding="utf-8",
    )
    return path


# ---------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def ensure_db(db: Path | None) -> Path:
    """The crosswalk to serve: ``db`` if given, else a fresh build of the embedded data."""
    if db is not None:
        if not db.exists():
            raise SystemExit(f"bench/api.py: no crosswalk at {db}; run `crosswalk build` first.")
        return db
    out = OUT / "build"
    if (out / "crosswalk.sqlite").exists():
        return out / "crosswalk.sqlite"
    print(f"building the embedded crosswalk into {out} ...", flush=True)
    subprocess.run(
        [*CROSSWALK, "build", "--config", str(ROOT / "data" / "sources.toml"), "--out", str(out)],
        check=True,
        timeout=900,
        stdout=subprocess.DEVNULL,
    )
    return out / "crosswalk.sqlite"


class Server:
    """`crosswalk serve` in a subprocess on loopback."""

    def __init__(
        self, db: Path, threads: int, review_store: Path | None = None, log: Path | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [
            *CROSSWALK,
            "serve",
            "--db",
            str(db),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--threads",
            str(threads),
        ]
        if review_store is not None:
            self.command += ["--review-store", str(review_store)]
        log = log or OUT / "server.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log = log.open("w", encoding="utf-8")
        # to a file, never an unread pipe: a full pipe would stall the server's logging
        self.proc = subprocess.Popen(
            self.command, stdout=self.log, stderr=subprocess.STDOUT, text=True, cwd=ROOT
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        else:
            self.stop()
            raise SystemExit("bench/api.py: the server did not come up in 120 s")
        # the matcher loads in the background at start; wait until it answers
        while time.monotonic() < deadline:
            r = requests.post(self.url + "/v1/match", json={"name": "ALAMEDA HOSPITAL"}, timeout=60)
            if r.status_code == 200:
                break
            time.sleep(0.5)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=20)
        self.log.close()


# ---------------------------------------------------------------------- measures


def sample(db: Path) -> dict[str, Any]:
    con = connect(db)
    try:
        ids = con.execute(
            "SELECT scheme, value FROM identifiers ORDER BY (rowid * 7919) % 100003 LIMIT 5000"
        ).fetchall()
        entities = [
            r[0]
            for r in con.execute(
                "SELECT entity_id FROM entities ORDER BY (rowid * 7919) % 100003 LIMIT 5000"
            )
        ]
        records = con.execute(
            "SELECT name, address, city, zip FROM records WHERE name IS NOT NULL "
            "ORDER BY (rowid * 7919) % 100003 LIMIT 1100"
        ).fetchall()
    finally:
        con.close()
    return {"ids": ids, "entities": entities, "records": records}


def reconcile_batches(url: str, records: list[Any], batches: int) -> list[float]:
    """Wall time of batches of 100 distinct queries (name + city)."""
    times = []
    for b in range(batches):
        part = records[b * 100 : (b + 1) * 100]
        queries = {
            f"q{i}": {"query": r[0], "properties": [{"pid": "city", "v": r[2] or ""}]}
            for i, r in enumerate(part)
        }
        start = time.perf_counter()
        resp = requests.post(url + "/reconcile", data={"queries": json.dumps(queries)}, timeout=60)
        times.append(time.perf_counter() - start)
        resp.raise_for_status()
        assert len(resp.json()) == len(part)
    return times


def fmt_rps(r: WrkResult) -> str:
    return (
        f"{r.rps:,.0f} req/s, p50 {r.p50_ms:.2f} ms, p90 {r.p90_ms:.2f} ms, p99 {r.p99_ms:.2f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--db", type=Path, help="serve this crosswalk.sqlite instead of building one"
    )
    parser.add_argument(
        "--seconds", type=int, default=20, help="length of each throughput run (default 20)"
    )
    parser.add_argument(
        "--soak", type=int, default=60, help="length of the 64-connection run (default 60)"
    )
    parser.add_argument(
        "--connections", type=int, default=8, help="connections of the lookup runs (default 8)"
    )
    parser.add_argument("--threads", type=int, default=4, help="waitress threads (default 4)")
    parser.add_argument(
        "--update-docs", action="store_true", help='rewrite "## API" in docs/benchmarks.md'
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=MEASURES,
        help="run only this measure (repeatable; default: all of them)",
    )
    args = parser.parse_args(argv)
    only = set(args.only or MEASURES)
    if args.update_docs and only != set(MEASURES):
        raise SystemExit("bench/api.py: --update-docs needs every measure (leave out --only)")
    if shutil.which("wrk") is None:
        raise SystemExit("bench/api.py: wrk is not installed (apt-get install -y wrk)")
    for n, name in ((args.seconds, "--seconds"), (args.soak, "--soak")):
        if not 1 <= n <= 600:
            raise SystemExit(f"bench/api.py: {name} must be from 1 to 600")

    db = ensure_db(args.db)
    data = sample(db)
    load_before = os.getloadavg()[0]
    server = Server(db, args.threads)
    print(f"serving {db} at {server.url} ({args.threads} waitress threads)", flush=True)
    work = OUT / "wrk"  # the Lua scripts stay here, for rerunning a wrk command by hand
    work.mkdir(parents=True, exist_ok=True)
    try:
        lookup_lua = lookup_script(work / "lookup.lua", data["ids"])
        entity_lua = entity_script(work / "entity.lua", data["entities"])
        bodies = [
            json.dumps(
                {k: v for k, v in zip(("name", "address", "city", "zip"), r, strict=True) if v}
            )
            for r in data["records"][:200]
        ]
        match_lua = match_script(work / "match.lua", bodies)
        names = [r[0] for r in data["records"]]
        mix_lua = mix_script(work / "mix.lua", data["ids"], data["entities"], names)

        if only & {"lookup", "entity"}:
            wrk(server.url, lookup_lua, 5, args.connections, 2)  # warm the caches
            wrk(server.url, entity_lua, 5, args.connections, 2)
        if "lookup" in only:
            lookup = wrk(server.url, lookup_lua, args.seconds, args.connections, 2)
            print(f"lookup by id      : {fmt_rps(lookup)}", flush=True)
        if "entity" in only:
            entity = wrk(server.url, entity_lua, args.seconds, args.connections, 2)
            print(f"entity by id      : {fmt_rps(entity)}", flush=True)
        if "match" in only:
            match = wrk(server.url, match_lua, args.seconds, 1, 1)
            print(f"match, 1 record   : {fmt_rps(match)}  (one connection)", flush=True)
            print(f"                    {_portable(match.command)}", flush=True)
        if "reconcile" in only:
            batch_times = reconcile_batches(server.url, data["records"], 10)
            print(
                f"reconcile 100     : median {statistics.median(batch_times):.3f} s, "
                f"max {max(batch_times):.3f} s over {len(batch_times)} batches",
                flush=True,
            )
        if "soak" in only:
            soak = wrk(server.url, mix_lua, args.soak, 64, 2)
            errors = soak.socket_errors + soak.non_2xx
            print(
                f"soak 64 conns     : {soak.requests:,} requests in {soak.seconds:.0f} s, "
                f"{fmt_rps(soak)}, errors {errors} (socket {soak.socket_errors}, non-2xx {soak.non_2xx})",
                flush=True,
            )
    finally:
        server.stop()
    load_after = os.getloadavg()[0]
    print(f"load average (1 min) before {load_before:.2f}, after {load_after:.2f}")
    if only != set(MEASURES):
        return 0

    rows = [
        ("lookup by id, `GET /v1/lookup?scheme=&value=`", f"{lookup.rps:,.0f} req/s, p99 {lookup.p99_ms:.1f} ms",
         f"≥ {TARGET_LOOKUP_RPS:,.0f} req/s, p99 ≤ {TARGET_LOOKUP_P99_MS:.0f} ms",
         lookup.rps >= TARGET_LOOKUP_RPS and lookup.p99_ms <= TARGET_LOOKUP_P99_MS),
        ("entity by id, `GET /v1/entities/{id}`", f"{entity.rps:,.0f} req/s, p99 {entity.p99_ms:.1f} ms",
         f"≥ {TARGET_LOOKUP_RPS:,.0f} req/s, p99 ≤ {TARGET_LOOKUP_P99_MS:.0f} ms",
         entity.rps >= TARGET_LOOKUP_RPS and entity.p99_ms <= TARGET_LOOKUP_P99_MS),
        ("`POST /v1/match`, one record", f"p50 {match.p50_ms:.0f} ms, p99 {match.p99_ms:.0f} ms ({match.rps:.1f} req/s)",
         f"p99 ≤ {TARGET_MATCH_P99_MS:.0f} ms", match.p99_ms <= TARGET_MATCH_P99_MS),
        ("reconcile batch of 100 queries", f"median {statistics.median(batch_times):.2f} s, max {max(batch_times):.2f} s",
         f"≤ {TARGET_BATCH_S:.0f} s", max(batch_times) <= TARGET_BATCH_S),
        ("60 s at 64 connections (mixed reads)", f"{errors} errors in {soak.requests:,} requests ({soak.rps:,.0f} req/s, p99 {soak.p99_ms:.0f} ms)",
         "0 errors", errors == 0),
    ]  # fmt: skip
    reproduce = " ".join(
        [".venv/bin/python bench/api.py"]
        + ([f"--db {args.db}"] if args.db else [])
        + [f"--seconds {args.seconds} --soak {args.soak} --connections {args.connections}"]
        + [f"--threads {args.threads}"]
    )
    print("\n| measure | figure | target | met |\n|---|---|---|---|")
    for name, figure, target, met in rows:
        print(f"| {name} | {figure} | {target} | {'yes' if met else 'no'} |")
    print(f"\nReproduce: {reproduce}")
    if args.update_docs:
        update_docs(rows, args, lookup, match, reproduce, (load_before, load_after))
    return 0


def _portable(command: str) -> str:
    """A wrk command with repository-relative paths and the port left as a placeholder."""
    command = command.replace(str(ROOT) + "/", "")
    return re.sub(r"http://127\.0\.0\.1:\d+", "http://127.0.0.1:PORT", command)


def update_docs(
    rows: list[tuple[str, str, str, bool]],
    args: argparse.Namespace,
    lookup: WrkResult,
    match: WrkResult,
    reproduce: str,
    load: tuple[float, float],
) -> None:
    """Replace (or append) the ``## API`` section of docs/benchmarks.md."""
    today = dt.date.today().isoformat()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from accuracy import machine

    commit = machine()["commit"]
    at = f" (engine at commit `{commit}`)" if commit else ""
    lines = [
        "## API",
        "",
        f"Run of {today}{at} on a 2-core machine shared with other work (1-minute load average "
        f"{load[0]:.1f} before the run and {load[1]:.1f} after it, from other processes as well), "
        f"`crosswalk serve` (waitress, {args.threads} threads) and wrk on the same machine over "
        "loopback. Reproduce with:",
        "",
        "```sh",
        reproduce,
        "```",
        "",
        "| measure | figure | target | met |",
        "|---|---|---|---|",
        *(f"| {n} | **{f}** | {t} | {'yes' if m else 'no'} |" for n, f, t, m in rows),
        "",
        f"Lookups cycle over 5,000 real identifiers (all schemes) with {args.connections} connections "
        f"and 2 wrk threads, for {args.seconds} s after a 5 s warm-up; `wrk --latency` gives p99. "
        "Match posts one real record (name, address, city, ZIP; 200 distinct records) at a time "
        "on one connection. The reconcile batches are 10 distinct batches of 100 real names with "
        "their city. The 64-connection run mixes lookups, entities, search, suggest, sources and "
        "release reads; an error is a socket error, a timeout (5 s) or a non-2xx answer.",
        "",
        f"Wrk commands (the Lua scripts are written to `bench/out/api/wrk/`): "
        f"`{_portable(lookup.command)}` (lookups), `{_portable(match.command)}` (match).",
        "",
    ]
    section = "\n".join(lines)
    text = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Benchmarks\n\n"
    # the generated part ends where the next section, or the hand-written "### Notes", begins
    pattern = re.compile(r"^## API\n.*?(?=^## |^### Notes|\Z)", re.S | re.M)
    text = (
        pattern.sub(lambda _m: section + "\n", text)
        if pattern.search(text)
        else text.rstrip("\n") + "\n\n" + section
    )
    DOCS.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
    print(f"wrote the API section of {DOCS.relative_to(ROOT)}")


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
