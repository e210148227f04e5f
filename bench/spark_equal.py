"""Spark equal: the Spark runner publishes what the local runner publishes, at scale.

Usage::

    .venv/bin/python bench/spark_equal.py [--n 100000] [--master 'local[2]'] [--work DIR]

Generates ``--n`` synthetic records per side (``bench/synth.py``, seed 7, once into
``--work``), builds them with ``crosswalk build`` (``--engine local``) and with
``crosswalk build --engine spark --spark-master MASTER``, each in its own process, and
compares every published output (``bench/same_outputs.py``'s ``compare_build``: the
SQLite tables row by row and value by value, the CSVs byte for byte, the data package).
Prints each build's time and pairwise F1 against the synthetic truth, the differences
(none expected) and the command that reproduces the run. The exit status is 1 when an
output differs or |ΔF1| > 0.0005.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import same_outputs  # noqa: E402

from crosswalk.evaluate import evaluate  # noqa: E402


def timed_build(config: Path, out: Path, *extra: str) -> float:
    """``crosswalk build`` of ``config`` into ``out`` in a fresh process; its seconds."""
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "crosswalk.cli",
            "build",
            "--config",
            str(config),
            "--out",
            str(out),
            "--quiet",
            *extra,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"build {' '.join(extra) or '--engine local'} failed:\n{done.stderr[-4000:]}")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="records per side")
    parser.add_argument("--master", default="local[2]", help="Spark master (default local[2])")
    parser.add_argument(
        "--work", type=Path, default=Path("/tmp/crosswalk-spark-equal"), help="work directory"
    )
    args = parser.parse_args(argv)
    data = same_outputs.synthetic(args.n, args.work)
    runs = {}
    for name, extra in (
        ("local", ("--engine", "local")),
        ("spark", ("--engine", "spark", "--spark-master", args.master)),
    ):
        out = args.work / f"build-{name}-{args.n}"
        if out.exists():
            shutil.rmtree(out)
        seconds = timed_build(data, out, *extra)
        f1 = evaluate(
            out / "crosswalk.sqlite",
            data.parent / "truth.csv",
            ("dept_a", "dept_a_id"),
            ("dept_b", "dept_b_id"),
            blocking=False,
        ).f1
        runs[name] = (out, seconds, f1)
        print(f"{name:>5}: {seconds:7.1f} s  F1 {f1:.5f}", flush=True)
    diffs = same_outputs.compare_build(runs["local"][0], runs["spark"][0])
    delta = abs(runs["local"][2] - runs["spark"][2])
    print(f"{args.n:,} records per side, Spark master {args.master}")
    print(f"outputs: {'identical' if not diffs else f'{len(diffs)} difference(s)'}")
    for d in diffs[:20]:
        print(f"  {d}")
    print(f"|ΔF1| = {delta:.5f}; Spark / local time: {runs['spark'][1] / runs['local'][1]:.2f}×")
    command = ["bench/spark_equal.py", "--n", str(args.n), "--master", args.master]
    print("reproduce: .venv/bin/python " + shlex.join([*command, "--work", str(args.work)]))
    return 1 if diffs or delta > 0.0005 else 0


if __name__ == "__main__":
    sys.exit(main())
