"""The benchmark harness shared by ``bench/accuracy.py`` and ``bench/scale.py``.

Every engine, ours and the peers, is started the same way: a fresh
``bench/peers/measure.py`` process spawns it and reports its wall time and peak
memory. Every engine's output is reduced to a set of (left record, right record)
pairs and scored the same way against the truth pairs.
"""

from __future__ import annotations

import json
import os
import shlex
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

BENCH = Path(__file__).resolve().parent.parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from crosswalk.artifact.reader import connect  # noqa: E402

PEERS = BENCH / "peers"
OUR_VENV = ROOT / ".venv"
BENCH_VENV = ROOT / ".venv-bench"
CROSSWALK = OUR_VENV / "bin" / "crosswalk"
OUR_PYTHON = OUR_VENV / "bin" / "python"
PEER_PYTHON = BENCH_VENV / "bin" / "python"
GIB = 2**30

PairSet = set[tuple[str, str]]
#: The truth pairs, or a function reading them: read only once the engine has ended, so
#: that a large truth is not held in memory beside the measured run.
Truth = PairSet | Callable[[], PairSet]


def truth_of(truth: Truth) -> PairSet:
    """The truth pairs of :data:`Truth`."""
    return truth() if callable(truth) else truth


@dataclass
class Metrics:
    """Pairwise precision, recall and F1 of predicted pairs against the truth pairs."""

    precision: float
    recall: float
    f1: float
    true_positives: int
    false_positives: int
    false_negatives: int
    predicted_pairs: int

    @classmethod
    def score(cls, predicted: PairSet, truth: PairSet) -> Metrics:
        """Compare two sets of (left id, right id) pairs."""
        tp = len(predicted & truth)
        fp = len(predicted) - tp
        fn = len(truth) - tp
        p = tp / len(predicted) if predicted else 0.0
        r = tp / len(truth) if truth else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        return cls(round(p, 4), round(r, 4), round(f1, 4), tp, fp, fn, len(predicted))


@dataclass
class Run:
    """One measured engine run: its resources, its outcome and its scores."""

    engine: str
    variant: str
    status: str
    wall_s: float | None = None
    peak_rss_bytes: int | None = None
    candidate_pairs: int | None = None
    metrics: Metrics | None = None
    command: str = ""
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    #: The largest sum of the resident sets of the run's whole process tree (sampled).
    peak_tree_bytes: int | None = None

    @property
    def peak_gib(self) -> float | None:
        return None if self.peak_rss_bytes is None else self.peak_rss_bytes / GIB

    @property
    def peak_tree_gib(self) -> float | None:
        return None if self.peak_tree_bytes is None else self.peak_tree_bytes / GIB

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["peak_rss_gib"] = None if self.peak_gib is None else round(self.peak_gib, 3)
        out["peak_tree_gib"] = None if self.peak_tree_gib is None else round(self.peak_tree_gib, 3)
        return out


def measured(
    cmd: list[str],
    result_json: Path,
    *,
    timeout: float,
    mem_cap_gib: float | None,
    log: Path | None = None,
    env: dict[str, str] | None = None,
    cap_on: str = "rss",
) -> dict[str, Any]:
    """Run ``cmd`` under a fresh measuring wrapper and return the wrapper's figures (the
    tree's memory, sample by sample, in ``memory.tsv`` beside ``result_json``); the cap
    applies to the tree's resident set or (``cap_on`` "anon") its anonymous memory."""
    wrapper = [sys.executable, str(PEERS / "measure.py"), "--out", str(result_json)]
    wrapper += ["--timeout", str(timeout), "--timeline", str(result_json.parent / "memory.tsv")]
    if mem_cap_gib:
        wrapper += ["--mem-cap-gib", str(mem_cap_gib), "--cap-on", cap_on]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    # The wrapper must not be the parent of a large Python: start it from here, small.
    if log is None:
        subprocess.run([*wrapper, "--", *cmd], check=True, env=full_env)
    else:
        with log.open("w") as fh:
            subprocess.run(
                [*wrapper, "--", *cmd],
                check=True,
                env=full_env,
                stdout=fh,
                stderr=subprocess.STDOUT,
            )
    return dict(json.loads(result_json.read_text()))


def read_truth(path: Path, left_col: str, right_col: str) -> PairSet:
    """Truth pairs from a CSV with one column per side (ids kept as text)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, usecols=[left_col, right_col])
    return set(zip(frame[left_col].str.strip(), frame[right_col].str.strip(), strict=True))


def pairs_from_csv(path: Path) -> PairSet:
    """Pairs written by a peer runner (``left_id``, ``right_id``)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, usecols=["left_id", "right_id"])
    return set(zip(frame["left_id"], frame["right_id"], strict=True))


def pairs_from_crosswalk(csv_path: Path, left: str, right: str) -> PairSet:
    """Predicted pairs of our crosswalk: left × right records sharing an entity id."""
    frame = pd.read_csv(
        csv_path, dtype=str, keep_default_na=False, usecols=["entity_id", "source", "record_id"]
    )
    lf = frame[frame["source"] == left][["entity_id", "record_id"]]
    rf = frame[frame["source"] == right][["entity_id", "record_id"]]
    joined = lf.merge(rf, on="entity_id", suffixes=("_l", "_r"))
    return set(zip(joined["record_id_l"], joined["record_id_r"], strict=True))


def build_counts(db_path: Path) -> dict[str, Any]:
    """The ``counts`` JSON of the build's ``meta`` table, or ``{}`` when absent."""
    if not db_path.exists():
        return {}
    try:
        with connect(db_path) as con:
            row = con.execute("select value from meta where key = 'counts'").fetchone()
    except sqlite3.Error:
        return {}
    if not row or not row[0]:
        return {}
    try:
        value = json.loads(row[0])
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def candidate_pairs_of(counts: dict[str, Any]) -> int | None:
    """The number of candidate pairs recorded by a build, under its usual keys."""
    for key in ("candidate_pairs", "candidates", "pairs_scored", "blocked_pairs"):
        value = counts.get(key)
        if isinstance(value, int):
            return value
        if isinstance(value, dict) and isinstance(value.get("total"), int):
            return int(value["total"])
    blocking = counts.get("blocking")
    if isinstance(blocking, dict):
        return candidate_pairs_of(blocking)
    return None


_COMPILED = False


def compile_project() -> None:
    """Compile the project's bytecode once before it is timed, as an installed package has it
    (an editable install compiles nothing until first run, and not at all where
    ``PYTHONDONTWRITEBYTECODE`` is set); the peers' packages were compiled when installed."""
    global _COMPILED
    if not _COMPILED and OUR_VENV.exists():
        subprocess.run(
            [
                str(OUR_VENV / "bin" / "python"),
                "-m",
                "compileall",
                "-q",
                "crosswalk",
                "matchers",
                "api",
            ],
            cwd=ROOT,
            check=True,
        )
        _COMPILED = True


def run_ours(
    config: Path,
    out_dir: Path,
    truth: Truth,
    left: str,
    right: str,
    *,
    variant: str,
    timeout: float,
    mem_cap_gib: float | None,
    extra_args: Sequence[str] = (),
    engine: str = "crosswalk",
    cap_on: str = "rss",
) -> Run:
    """Build our crosswalk from ``config`` (measured end to end) and score it.
    ``extra_args``: more options of ``crosswalk build`` (e.g. ``--engine spark``);
    ``engine``: the run's name in the tables; ``cap_on``: see :func:`measured`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    build_dir = out_dir / "build"
    # This tree's code (``-m`` with the tree first on the path), not the installed one's.
    cmd = [str(OUR_PYTHON), "-m", "crosswalk.cli", "build", "--config", str(config)]
    cmd += ["--out", str(build_dir), *extra_args]
    run = Run(engine, variant, "pending", command=shlex.join(cmd))
    if not OUR_PYTHON.exists():
        run.status = "not installed"
        return run
    compile_project()
    figures = measured(
        cmd,
        out_dir / "measure.json",
        timeout=timeout,
        mem_cap_gib=mem_cap_gib,
        log=out_dir / "build.log",
        env={"PYTHONPATH": str(ROOT)},
        cap_on=cap_on,
    )
    run.status = str(figures["status"])
    run.wall_s = float(figures["wall_s"])
    run.peak_rss_bytes = int(figures["peak_rss_bytes"])
    run.peak_tree_bytes = int(figures["peak_tree_rss_bytes"])
    run.extra["peak_tree_anon_gib"] = round(int(figures["peak_tree_anon_bytes"]) / 2**30, 3)
    run.extra["cpu_s"] = round(float(figures["tree_cpu_s"]), 1)
    if run.status != "ok":
        tail = (out_dir / "build.log").read_text(errors="replace").strip().splitlines()[-5:]
        run.notes.extend(tail)
        return run
    csv_path = build_dir / "crosswalk.csv"
    if not csv_path.exists():
        run.status = "no crosswalk.csv"
        return run
    run.metrics = Metrics.score(pairs_from_crosswalk(csv_path, left, right), truth_of(truth))
    counts = build_counts(build_dir / "crosswalk.sqlite")
    run.candidate_pairs = candidate_pairs_of(counts)
    run.extra["counts"] = counts
    return run


def run_peer(
    engine: str,
    config: Path,
    out_dir: Path,
    truth: Truth,
    *,
    timeout: float,
    mem_cap_gib: float | None,
    extra_args: list[str] | None = None,
) -> list[Run]:
    """Run one peer (``splink`` or ``recordlinkage``) measured; one Run per pair set it wrote."""
    out_dir.mkdir(parents=True, exist_ok=True)
    script = PEERS / f"{engine}_runner.py"
    cmd = [str(PEER_PYTHON), str(script), "--config", str(config), "--out", str(out_dir)]
    cmd += extra_args or []
    if not PEER_PYTHON.exists():
        return [Run(engine, "-", "not installed (see bench/README.md)", command=shlex.join(cmd))]
    figures = measured(
        cmd,
        out_dir / "measure.json",
        timeout=timeout,
        mem_cap_gib=mem_cap_gib,
        log=out_dir / "run.log",
    )
    status = str(figures["status"])
    wall = float(figures["wall_s"])
    peak = int(figures["peak_rss_bytes"])
    tree = int(figures["peak_tree_rss_bytes"])
    cpu = round(float(figures["tree_cpu_s"]), 1)
    stats_path = out_dir / "stats.json"
    if status != "ok" or not stats_path.exists():
        tail = (out_dir / "run.log").read_text(errors="replace").strip().splitlines()[-5:]
        run = Run(
            engine,
            "-",
            status if status != "ok" else "no output",
            wall,
            peak,
            command=shlex.join(cmd),
            notes=tail,
            extra={"cpu_s": cpu},
            peak_tree_bytes=tree,
        )
        return [run]
    stats = json.loads(stats_path.read_text())
    truth = truth_of(truth)
    runs: list[Run] = []
    for kind in ("raw", "one_to_one"):
        pairs_path = out_dir / f"pairs_{kind}.csv"
        if not pairs_path.exists():
            continue
        metrics = Metrics.score(pairs_from_csv(pairs_path), truth)
        label = "raw pairs" if kind == "raw" else "one-to-one"
        runs.append(
            Run(
                engine,
                label,
                status,
                wall,
                peak,
                stats.get("candidate_pairs"),
                metrics,
                shlex.join(cmd),
                extra={"stats": stats, "cpu_s": cpu},
                peak_tree_bytes=tree,
            )
        )
    return runs


def fmt_num(value: float | int | None, digits: int = 3) -> str:
    """A figure for a table cell, or an en dash when it was not measured."""
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}f}"
