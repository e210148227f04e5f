"""A/B speed: time the full ``crosswalk build`` of two source trees, alternately.

Usage::

    .venv/bin/python bench/ab.py --before /tmp/wt-base --after . \\
        [--case embedded|blind|scale1m] [--runs N] [--work DIR]

Each tree's code runs in a fresh process (``.venv/bin/python -m crosswalk.cli
build`` with the tree as the current directory, its bytecode compiled first),
started by ``bench/peers/measure.py`` as the other benchmarks start theirs. The
builds alternate, before, after, before, after …, ``--runs`` times each, so
that a change in the machine's load falls on both sides. Reported: every run's
wall time and peak memory (the largest process's high-water mark, and the
sampled sum over the process tree), the medians of each side, and the median of
the after/before ratios of consecutive pairs (target: at most 1.05).

Cases: ``embedded`` (``data/sources.toml``), ``blind`` (``bench/blind.toml``)
and ``scale1m``: ``bench/synth.py`` listings of 1M records per side, generated
once into ``--work`` (heavy: about a minute per build and 3 GiB; target for
peak memory: at most 4 GiB).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers.harness import GIB, measured
from same_outputs import CONFIGS, DEFAULT_WORK, PY, ToolError, check_tree, commit_of, synthetic

CASES = ("embedded", "blind", "scale1m")
TARGET_RATIO = 1.05
TARGET_PEAK_GIB = 4.0  # scale1m


def compile_tree(tree: Path) -> None:
    """Compile the tree's bytecode before it is timed, as ``bench/peers/harness.py`` does."""
    cmd = [str(PY), "-m", "compileall", "-q", "crosswalk", "matchers", "api"]
    subprocess.run(cmd, cwd=tree, check=True, stdout=subprocess.DEVNULL)


def config_of(case: str, tree: Path, work: Path) -> Path:
    if case == "scale1m":
        return synthetic(1_000_000, work)
    return tree / CONFIGS[case]


def run_once(
    tree: Path, config: Path, run_dir: Path, timeout: float, mem_cap_gib: float | None
) -> dict[str, Any]:
    """One measured build of ``tree`` into a fresh ``run_dir/build``."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    cmd = [str(PY), "-m", "crosswalk.cli", "build", "--config", str(config.resolve())]
    cmd += ["--out", str(run_dir / "build")]
    with contextlib.chdir(tree):  # the tree's own code is the one imported
        figures = measured(
            cmd,
            run_dir / "measure.json",
            timeout=timeout,
            mem_cap_gib=mem_cap_gib,
            log=run_dir / "build.log",
            env={"PYTHONHASHSEED": "0"},
        )
    if figures["status"] != "ok":
        tail = (run_dir / "build.log").read_text(errors="replace").strip().splitlines()[-5:]
        raise ToolError(f"in {tree}: {shlex.join(cmd)}: {figures['status']}\n" + "\n".join(tail))
    return figures


def _gib(n: float) -> str:
    return f"{n / GIB:.2f} GiB"


def summary(case: str, runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Medians of each side and the median after/before ratio of consecutive pairs."""
    before, after = runs["before"], runs["after"]
    ratios = [a["wall_s"] / b["wall_s"] for b, a in zip(before, after, strict=True)]
    out: dict[str, Any] = {"ratios": [round(r, 4) for r in ratios]}
    for side, rs in runs.items():
        out[side] = {
            "median_wall_s": statistics.median(r["wall_s"] for r in rs),
            "median_peak_rss_bytes": statistics.median(r["peak_rss_bytes"] for r in rs),
            "max_peak_tree_rss_bytes": max(r["peak_tree_rss_bytes"] for r in rs),
        }
    out["median_ratio"] = round(statistics.median(ratios), 4)
    out["ratio_of_medians"] = round(
        out["after"]["median_wall_s"] / out["before"]["median_wall_s"], 4
    )
    out["speed_met"] = out["median_ratio"] <= TARGET_RATIO
    if case == "scale1m":
        out["memory_met"] = out["after"]["max_peak_tree_rss_bytes"] <= TARGET_PEAK_GIB * GIB
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 when the targets are met, 1 when not, 2 on error.",
    )
    parser.add_argument("--before", type=Path, required=True, help="checkout of the base")
    parser.add_argument("--after", type=Path, required=True, help="checkout with the change")
    parser.add_argument("--case", choices=CASES, default="embedded", help="default: embedded")
    parser.add_argument("--runs", type=int, default=7, help="builds per tree (default 7)")
    parser.add_argument(
        "--work",
        type=Path,
        default=DEFAULT_WORK,
        help=f"generated inputs and the builds (default {DEFAULT_WORK})",
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per build")
    parser.add_argument("--mem-cap-gib", type=float, default=14.0, help="kill a build past this")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs: give at least 1")
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    work = args.work.resolve()
    say = (lambda m: print(m, file=sys.stderr, flush=True)) if args.json else print
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    try:
        for tree in trees.values():
            check_tree(tree)
            compile_tree(tree)
        configs = {side: config_of(args.case, tree, work) for side, tree in trees.items()}
        runs_dir = work / "ab" / f"{args.case}.{os.getpid()}"
        for i in range(1, args.runs + 1):
            for side, tree in trees.items():
                run_dir = runs_dir / side
                figures = run_once(tree, configs[side], run_dir, args.timeout, args.mem_cap_gib)
                runs[side].append(figures)
                say(
                    f"run {i} {side:6}: {figures['wall_s']:7.2f} s, peak RSS "
                    f"{_gib(figures['peak_rss_bytes'])} (tree {_gib(figures['peak_tree_rss_bytes'])})"
                )
    except (ToolError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    shutil.rmtree(runs_dir)
    result = summary(args.case, runs)
    result["case"] = args.case
    result["commits"] = {side: commit_of(tree)[0] for side, tree in trees.items()}
    result["runs"] = runs
    result["reproduce"] = shlex.join(
        [
            str(PY),
            "bench/ab.py",
            "--before",
            str(trees["before"]),
            "--after",
            str(trees["after"]),
            "--case",
            args.case,
            "--runs",
            str(args.runs),
            "--work",
            str(work),
        ]
    )
    met = result["speed_met"] and result.get("memory_met", True)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0 if met else 1
    for side in ("before", "after"):
        s = result[side]
        print(
            f"{side:6} median: {s['median_wall_s']:.2f} s, peak RSS {_gib(s['median_peak_rss_bytes'])}"
            f" (largest tree sample {_gib(s['max_peak_tree_rss_bytes'])})"
        )
    print(f"after/before of consecutive pairs: {', '.join(f'{r:.3f}' for r in result['ratios'])}")
    print(
        f"median ratio {result['median_ratio']:.3f} (ratio of medians "
        f"{result['ratio_of_medians']:.3f}); at most {TARGET_RATIO}: "
        f"{'met' if result['speed_met'] else 'NOT met'}"
    )
    if "memory_met" in result:
        print(
            f"after's peak at most {TARGET_PEAK_GIB:.0f} GiB: "
            f"{'met' if result['memory_met'] else 'NOT met'}"
        )
    print(f"reproduce: {result['reproduce']}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
