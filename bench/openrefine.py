"""Reconciliation benchmark: a real OpenRefine 3.6 against `crosswalk serve`, and names alone.

Two measures, against the targets of the matching issue:

* ``openrefine``: HCAI's hospitals (license categories naming a hospital) reconciled,
  name with city and ZIP, by OpenRefine driven through its HTTP API, against a crosswalk
  built from the CDPH listing alone (``bench/cdph_only.toml``), so that no query is one of
  the crosswalk's own records. Each answer is judged by the truth pairs
  (``bench/data/cdph2020_hcai2020_same_facility.csv``): the right entity is the one holding
  the CDPH record the truth pairs with the HCAI record. Prints the share matched
  automatically (OpenRefine's "matched" judgment, from the service's ``match: true``) and
  its precision, and the share whose top candidate is the right entity.

  A one-source build compares no pairs, so its model is not fitted: it keeps the engine's
  documented starting values (docs/engine.md, Score), and that is the model served.
  ``--model blind`` serves instead the model that EM fitted, without labels, on the blind
  build of both listings (``bench/blind.toml``: no identifier columns; its m and u
  probabilities only, no record of HCAI).

* ``names``: every entity of the embedded crosswalk queried by its exact published name
  alone (``/reconcile``, no property, limit 3): the share whose entity is among the
  candidates, for names that at most 3 entities share, and separately for names shared
  by more (a chain's name is ambiguous by nature).

OpenRefine is Debian's ``openrefine`` package (``apt-get install -y openrefine``); it is
started on loopback with a fresh workspace and stopped at the end.

    .venv/bin/python bench/openrefine.py                 # both measures
    .venv/bin/python bench/openrefine.py --only names    # one of them
    .venv/bin/python bench/openrefine.py --only openrefine --model blind
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crosswalk.config import load_config  # noqa: E402
from crosswalk.sources import read_source  # noqa: E402

OUT = ROOT / "bench" / "out" / "openrefine"
TRUTH = ROOT / "bench" / "data" / "cdph2020_hcai2020_same_facility.csv"
CROSSWALK = [sys.executable, "-m", "crosswalk.cli"]

TARGET_AUTO = 0.85
TARGET_AUTO_PRECISION = 0.99
TARGET_TOP = 0.97
TARGET_NAMES_TOP3 = 0.95
#: Names that at most this many entities share are judged; more is a chain's name.
SHARED_BY_AT_MOST = 3

MEASURES = ("openrefine", "names")
#: The model the CDPH-only crosswalk is served with (``--model``).
MODELS = {
    "own": "its own model (unfitted: a one-source build compares no pairs; docs/engine.md)",
    "blind": "the model fitted on the blind build of both listings (bench/blind.toml)",
}


def _bench_api() -> Any:
    """bench/api.py (its server and free port) as a module, loaded once: under its own
    name, which would clash with the ``api`` package."""
    if "bench_api" in sys.modules:
        return sys.modules["bench_api"]
    spec = importlib.util.spec_from_file_location("bench_api", ROOT / "bench" / "api.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_api"] = module
    spec.loader.exec_module(module)
    return module


def build(config: Path, out: Path) -> Path:
    """A fresh build of ``config`` into ``out``; its crosswalk.sqlite."""
    print(f"building {config.relative_to(ROOT)} into {out.relative_to(ROOT)} ...", flush=True)
    subprocess.run(
        [*CROSSWALK, "build", "--config", str(config), "--out", str(out)],
        check=True,
        timeout=900,
        stdout=subprocess.DEVNULL,
        cwd=ROOT,
    )
    return out / "crosswalk.sqlite"


def _meta(db: Path, key: str) -> str:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    finally:
        con.close()
    if row is None:
        raise SystemExit(f"bench/openrefine.py: {db} has no {key!r} in its meta table")
    return str(row[0])


def with_model(db: Path, model_from: Path, target: Path) -> Path:
    """A copy of ``db`` whose model is ``model_from``'s (both built with the same comparisons)."""
    config_a = json.loads(_meta(db, "config"))
    config_b = json.loads(_meta(model_from, "config"))
    if config_a.get("comparisons") != config_b.get("comparisons"):
        raise SystemExit("bench/openrefine.py: the two builds' comparisons differ")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(db, target)
    con = sqlite3.connect(target)
    try:
        con.execute("UPDATE meta SET value = ? WHERE key = 'model'", (_meta(model_from, "model"),))
        con.commit()
    finally:
        con.close()
    return target


# ---------------------------------------------------------------------- OpenRefine


class OpenRefine:
    """Debian's OpenRefine on loopback, with a fresh workspace, driven by its HTTP API."""

    def __init__(self, workspace: Path, log: Path) -> None:
        exe = shutil.which("openrefine")
        if exe is None:
            raise SystemExit(
                "bench/openrefine.py: OpenRefine is not installed (apt-get install -y openrefine)"
            )
        self.port = _bench_api().free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [
            exe,
            "-p",
            str(self.port),
            "-i",
            "127.0.0.1",
            "-d",
            str(workspace),
            "-m",
            "1024M",
            "-x",
            "refine.headless=true",
            "run",
        ]
        self.log = log.open("w", encoding="utf-8")
        # its own process group: the launcher script and the JVM stop together
        self.proc = subprocess.Popen(
            self.command, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.session = requests.Session()
        try:
            self.version = self._wait(time.monotonic() + 180)
        except BaseException:
            self.stop()  # whatever went wrong, OpenRefine does not outlive the run
            raise
        if not self.version:
            self.stop()
            raise SystemExit(f"bench/openrefine.py: OpenRefine did not come up; see {log}")

    def _wait(self, deadline: float) -> str:
        """OpenRefine's version once it answers; empty if it exits or the deadline passes."""
        while time.monotonic() < deadline:
            try:
                r = self.session.get(self.url + "/command/core/get-version", timeout=30)
                if r.status_code == 200:
                    return str(r.json()["full_version"])
            except (requests.ConnectionError, requests.Timeout):
                pass  # still starting
            if self.proc.poll() is not None:
                return ""
            time.sleep(1)
        return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        self.log.close()

    def _token(self) -> str:
        r = self.session.get(self.url + "/command/core/get-csrf-token", timeout=30)
        r.raise_for_status()
        return str(r.json()["token"])

    def _post(self, command: str, params: dict[str, Any], data: dict[str, Any]) -> Any:
        r = self.session.post(
            f"{self.url}/command/core/{command}",
            params={**params, "csrf_token": self._token()},
            data=data,
            timeout=600,
        )
        r.raise_for_status()
        body = r.json()
        if isinstance(body, dict) and body.get("code") == "error":
            raise RuntimeError(f"OpenRefine {command}: {body.get('message')}")
        return body

    def create_project(self, csv_path: Path, name: str) -> str:
        """A project from a CSV, every cell kept as text (ZIP codes and ids keep their zeros)."""
        options = {
            "separator": ",",
            "headerLines": 1,
            "ignoreLines": -1,
            "skipDataLines": 0,
            "guessCellValueTypes": False,
            "processQuotes": True,
            "storeBlankCellsAsNulls": True,
            "encoding": "UTF-8",
        }
        with csv_path.open("rb") as fh:
            r = self.session.post(
                self.url + "/command/core/create-project-from-upload",
                params={"csrf_token": self._token()},
                data={
                    "project-name": name,
                    "format": "text/line-based/*sv",
                    "options": json.dumps(options),
                },
                files={"project-file": (csv_path.name, fh, "text/csv")},
                timeout=300,
                allow_redirects=False,
            )
        location = r.headers.get("Location", "")
        if r.status_code not in (302, 303) or "project=" not in location:
            raise RuntimeError(
                f"OpenRefine did not create the project: {r.status_code} {r.text[:300]}"
            )
        return location.split("project=", 1)[1].split("&", 1)[0]

    def add_service(self, service_url: str) -> dict[str, Any]:
        """Register the service as OpenRefine's "Add standard service..." does: its manifest,
        saved in the ``reconciliation.standardServices`` preference."""
        manifest = requests.get(service_url, timeout=30).json()
        manifest["url"] = service_url
        manifest["ui"] = {"handler": "ReconStandardServicePanel", "access": "json"}
        self._post(
            "set-preference",
            {"name": "reconciliation.standardServices"},
            {"value": json.dumps([manifest])},
        )
        r = self.session.get(
            self.url + "/command/core/get-preference",
            params={"name": "reconciliation.standardServices"},
            timeout=30,
        )
        saved = json.loads(r.json()["value"])
        assert any(s.get("url") == service_url for s in saved), saved
        return dict(manifest)

    def reconcile(
        self,
        project: str,
        column: str,
        service: dict[str, Any],
        properties: dict[str, tuple[str, str]],
    ) -> None:
        """Reconcile ``column`` against ``service`` with other columns as properties
        (column -> (property id, property name)), auto-matching, as the dialog does."""
        default_type = service["defaultTypes"][0]
        config = {
            "mode": "standard-service",
            "service": service["url"],
            "identifierSpace": service["identifierSpace"],
            "schemaSpace": service["schemaSpace"],
            "type": {"id": default_type["id"], "name": default_type["name"]},
            "autoMatch": True,
            "columnDetails": [
                {"column": col, "property": {"id": pid, "name": name}}
                for col, (pid, name) in properties.items()
            ],
            "limit": 0,
        }
        engine = {"facets": [], "mode": "row-based"}
        self._post(
            "reconcile",
            {"project": project},
            {"columnName": column, "config": json.dumps(config), "engine": json.dumps(engine)},
        )
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            r = self.session.get(
                self.url + "/command/core/get-processes", params={"project": project}, timeout=30
            )
            if not r.json().get("processes"):
                return
            time.sleep(1)
        raise RuntimeError("OpenRefine's reconciliation did not finish in 30 minutes")

    def rows(self, project: str) -> list[dict[str, Any]]:
        """Every row as {column name: cell}, a cell being its value and recon (if any)."""
        models = self.session.get(
            self.url + "/command/core/get-models", params={"project": project}, timeout=30
        ).json()
        columns = {c["cellIndex"]: c["name"] for c in models["columnModel"]["columns"]}
        body = self._post("get-rows", {"project": project, "start": 0, "limit": 100_000}, {})
        pool = body.get("pool", {}).get("recons", {})
        out = []
        for row in body["rows"]:
            cells: dict[str, Any] = {}
            for index, cell in enumerate(row["cells"]):
                if index not in columns or cell is None:
                    continue
                recon = cell.get("r")
                if isinstance(recon, (str, int)):  # a reference into the pool
                    recon = pool.get(str(recon))
                cells[columns[index]] = {"v": cell.get("v"), "r": recon}
            out.append(cells)
        return out


# ---------------------------------------------------------------------- measures


@dataclass
class Judged:
    queries: int
    with_truth: int
    auto: int
    auto_right: int
    auto_wrong_same_license: int
    auto_no_truth: int
    top_right: int
    no_candidate: int


def hospital_queries(path: Path) -> list[dict[str, str]]:
    """HCAI's hospitals as the build reads them: record id, name, city, ZIP, license."""
    config = load_config(ROOT / "data" / "sources.toml")
    (hcai,) = [s for s in config.sources if s.name == "hcai"]
    frame, _, _ = read_source(hcai, config.base_dir)
    frame = frame[frame["facility_type"].str.contains("Hospital", case=False, na=False)]
    rows = [
        {
            "record_id": str(r["record_id"]),
            "name": str(r["name"]),
            "city": str(r["city"] or ""),
            "zip": str(r["zip"] or ""),
            "license": str(r["id:cdph_license"] or ""),
        }
        for r in frame.astype(object).where(frame.notna(), None).to_dict("records")
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["record_id", "name", "city", "zip", "license"])
        writer.writeheader()
        writer.writerows(rows)
    return rows


def judge(db: Path, rows: list[dict[str, Any]]) -> Judged:
    """OpenRefine's judgments and candidates against the truth pairs."""
    with TRUTH.open(encoding="utf-8", newline="") as fh:
        truth = {r["OSHPD_ID"]: r["FACID"] for r in csv.DictReader(fh)}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        entity_of = dict(
            con.execute("SELECT record_id, entity_id FROM records WHERE source = 'cdph'")
        )
        licenses: dict[str, set[str]] = {}
        for entity_id, value in con.execute(
            "SELECT entity_id, value FROM identifiers WHERE scheme = 'cdph_license'"
        ):
            licenses.setdefault(str(entity_id), set()).add(str(value))
    finally:
        con.close()
    j = Judged(len(rows), 0, 0, 0, 0, 0, 0, 0)
    for row in rows:
        record_id = str(row["record_id"]["v"])
        right = entity_of.get(truth.get(record_id, ""))
        recon = row["name"]["r"] or {}
        # OpenRefine keeps a matched cell's match, not its candidates: an automatic match
        # is the service's top candidate
        matched = recon.get("j") == "matched"
        top = recon["m"]["id"] if matched else ((recon.get("c") or [{}])[0]).get("id")
        j.with_truth += right is not None
        j.no_candidate += top is None
        j.top_right += right is not None and top == right
        if matched:
            j.auto += 1
            if top == right:
                j.auto_right += 1
            elif right is None:
                j.auto_no_truth += 1
            elif str(row.get("license", {}).get("v")) in licenses.get(str(top), set()):
                j.auto_wrong_same_license += 1
    return j


def run_openrefine(
    api: Any, threads: int, model: str = "own"
) -> tuple[list[tuple[str, str, str, bool]], list[str]]:
    cdph = build(ROOT / "bench" / "cdph_only.toml", OUT / "cdph_only")
    if model == "blind":
        blind = build(ROOT / "bench" / "blind.toml", OUT / "blind")
        served_db = with_model(cdph, blind, OUT / "served" / "crosswalk.sqlite")
    else:
        served_db = cdph
    queries = hospital_queries(OUT / "hcai_hospitals.csv")
    server = api.Server(served_db, threads, log=OUT / "server.log")
    workspace = Path(tempfile.mkdtemp(prefix="openrefine-", dir=OUT))
    refine = None
    try:
        refine = OpenRefine(workspace, OUT / "openrefine.log")  # stops itself if it fails
        print(f"{refine.version} at {refine.url}; crosswalk served at {server.url}", flush=True)
        service = refine.add_service(server.url + "/reconcile")
        project = refine.create_project(OUT / "hcai_hospitals.csv", "HCAI hospitals")
        started = time.perf_counter()
        refine.reconcile(
            project, "name", service, {"city": ("city", "City"), "zip": ("zip", "ZIP code")}
        )
        seconds = time.perf_counter() - started
        rows = refine.rows(project)
        # what OpenRefine holds, for a look at any answer
        (OUT / "rows.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    finally:
        if refine is not None:
            refine.stop()
        server.stop()
        shutil.rmtree(workspace, ignore_errors=True)
    assert len(rows) == len(queries), (len(rows), len(queries))
    j = judge(served_db, rows)
    auto_share = j.auto / j.queries
    precision = j.auto_right / j.auto if j.auto else 0.0
    top = j.top_right / j.with_truth
    wrong = j.auto - j.auto_right
    notes = [
        f"served: the CDPH-only build with {MODELS[model]}.",
        f"{j.queries} HCAI hospitals reconciled (name, with city and ZIP as properties) in "
        f"{seconds:.1f} s; {j.with_truth} have a truth pair; {j.no_candidate} got no candidate.",
        f"matched automatically: {j.auto} ({auto_share:.1%}), of which {j.auto_right} right "
        f"and {wrong} wrong by the truth pairs; of the wrong, {j.auto_no_truth} are queries "
        f"the truth pairs with nothing, and {j.auto_wrong_same_license} went "
        "to a CDPH record with the query's own license number (CDPH lists that facility "
        "twice; the truth pairs the other record). Among queries with a truth pair: "
        f"{j.auto_right} of {j.auto - j.auto_no_truth} right "
        f"({j.auto_right / max(j.auto - j.auto_no_truth, 1):.4f}).",
        f"right top candidate: {j.top_right} of {j.with_truth} queries with a truth pair.",
    ]
    rows_out = [
        ("matched automatically (OpenRefine's judgment)", f"{auto_share:.1%} ({j.auto} of {j.queries})",
         f"≥ {TARGET_AUTO:.0%}", auto_share >= TARGET_AUTO),
        ("precision of the automatic matches", f"{precision:.4f} ({j.auto_right} of {j.auto})",
         f"≥ {TARGET_AUTO_PRECISION}", precision >= TARGET_AUTO_PRECISION),
        ("right top candidate", f"{top:.1%} ({j.top_right} of {j.with_truth})",
         f"≥ {TARGET_TOP:.0%}", top >= TARGET_TOP),
    ]  # fmt: skip
    return rows_out, notes


def _post_batches(url: str, queries: dict[str, Any], size: int = 100) -> dict[str, Any]:
    out: dict[str, Any] = {}
    keys = list(queries)
    for i in range(0, len(keys), size):
        part = {k: queries[k] for k in keys[i : i + size]}
        r = requests.post(url + "/reconcile", data={"queries": json.dumps(part)}, timeout=300)
        r.raise_for_status()
        out.update(r.json())
    return out


def run_names(api: Any, threads: int) -> tuple[list[tuple[str, str, str, bool]], list[str]]:
    db = build(ROOT / "data" / "sources.toml", OUT / "embedded")
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        entities = [
            (str(e), str(n))
            for e, n in con.execute(
                "SELECT entity_id, name FROM entities WHERE name IS NOT NULL ORDER BY entity_id"
            )
        ]
    finally:
        con.close()
    sharing = Counter(n for _, n in entities)
    server = api.Server(db, threads, log=OUT / "server.log")
    try:
        started = time.perf_counter()
        queries = {f"q{i}": {"query": n, "limit": 3} for i, (_, n) in enumerate(entities)}
        answers = _post_batches(server.url, queries)
        seconds = time.perf_counter() - started
    finally:
        server.stop()
    few = found_few = many = found_many = empty = matched = 0
    for i, (entity_id, name) in enumerate(entities):
        result = answers[f"q{i}"]["result"]
        empty += not result
        matched += bool(result) and bool(result[0]["match"])
        hit = entity_id in [c["id"] for c in result]
        if sharing[name] <= SHARED_BY_AT_MOST:
            few += 1
            found_few += hit
        else:
            many += 1
            found_many += hit
    share_few = found_few / few
    notes = [
        f"{len(entities)} entities of the embedded crosswalk queried by their exact name alone "
        f"(batches of 100, limit 3) in {seconds:.1f} s; {empty} got no candidate; "
        f"{matched} top candidates were matched automatically.",
        f"names shared by more than {SHARED_BY_AT_MOST} entities: {many} entities, "
        f"{found_many} ({found_many / max(many, 1):.1%}) among the top 3.",
    ]
    rows_out = [
        (f"name alone: entity in the top 3 (names ≤ {SHARED_BY_AT_MOST} entities share)",
         f"{share_few:.1%} ({found_few} of {few})", f"≥ {TARGET_NAMES_TOP3:.0%}",
         share_few >= TARGET_NAMES_TOP3),
        ("name alone: queries with no candidate", f"{empty} of {len(entities)}", "0", empty == 0),
    ]  # fmt: skip
    return rows_out, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=MEASURES,
        help="run only this measure (repeatable; default: both)",
    )
    parser.add_argument(
        "--model",
        choices=sorted(MODELS),
        default="own",
        help="openrefine: serve the CDPH-only build with its own (unfitted) model, or with "
        "the model fitted on the blind build of both listings (default: own)",
    )
    parser.add_argument("--threads", type=int, default=4, help="waitress threads (default 4)")
    args = parser.parse_args(argv)
    only = [m for m in MEASURES if m in set(args.only or MEASURES)]
    OUT.mkdir(parents=True, exist_ok=True)
    api = _bench_api()
    table: list[tuple[str, str, str, bool]] = []
    for measure in only:
        if measure == "openrefine":
            rows, notes = run_openrefine(api, args.threads, args.model)
        else:
            rows, notes = run_names(api, args.threads)
        table += rows
        print("\n".join(notes), flush=True)
    print("\n| measure | figure | target | met |\n|---|---|---|---|")
    for name, figure, target, met in table:
        print(f"| {name} | {figure} | {target} | {'yes' if met else 'no'} |")
    command = ".venv/bin/python bench/openrefine.py" + "".join(
        f" --only {m}" for m in only if args.only
    )
    if "openrefine" in only and args.model != "own":
        command += f" --model {args.model}"
    print(f"\nReproduce: {command}")
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
