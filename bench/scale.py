"""Scale: ours beside Splink on synthetic listings of 10k, 100k and 1M records per side.

Usage::

    .venv/bin/python bench/scale.py [--sizes 10000,100000,1000000] [--peers splink]
                                    [--json] [--out DIR] [--timeout S] [--mem-cap-gib G]

At each size ``bench/synth.py`` writes two synthetic department listings with a
known truth (not timed with the engines), then each engine links them in a
fresh, measured process: ours with ``crosswalk build`` on the generated config,
Splink with ``bench/peers/splink_runner.py`` (DuckDB, 2 threads, memory_limit
10GB). Reported per size and engine: status, wall time, peak RSS, candidate
pairs (ours: ``counts`` in the build's ``meta`` table; Splink: its blocked
pairs) and pairwise precision, recall and F1 against the complete synthetic
truth. Runs longer than ``--timeout`` or larger than ``--mem-cap-gib`` are
killed and reported as "timed out" or "out of memory". Runs are sequential:
one heavy process at a time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import machine
from peers.harness import GIB, Run, fmt_num, read_truth, run_ours, run_peer
from synth import LEFT, RIGHT, generate

TARGET_WALL_S = 40.0
TARGET_PEAK_GIB = 4.0
SPLINK_REFERENCE = "Splink measured earlier on this machine at 1M per side: 81 s and 9.1 GiB"
REPRODUCE = ".venv/bin/python bench/scale.py --sizes 10000,100000,1000000"


def _label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k"


def run_size(
    n: int, work: Path, peers: list[str], timeout: float, mem_cap: float, seed: int, log: Any
) -> tuple[dict[str, Any], list[Run]]:
    """Generate one size, run every engine on it, score them."""
    data = work / "data"
    log(f"· {_label(n)} per side: generating …")
    t0 = time.perf_counter()
    manifest = generate(n, data, seed)
    manifest["wall_s"] = round(time.perf_counter() - t0, 2)
    truth = read_truth(data / "truth.csv", f"{LEFT}_id", f"{RIGHT}_id")
    runs: list[Run] = []
    log(f"· {_label(n)}: crosswalk build …")
    runs.append(
        run_ours(
            data / "config.toml",
            work / "ours",
            truth,
            LEFT,
            RIGHT,
            variant=_label(n),
            timeout=timeout,
            mem_cap_gib=mem_cap,
        )
    )
    for engine in peers:
        log(f"· {_label(n)}: {engine} …")
        for r in run_peer(
            engine,
            data / "config.toml",
            work / engine,
            truth,
            timeout=timeout,
            mem_cap_gib=mem_cap,
        ):
            r.variant = f"{_label(n)} {r.variant}" if r.variant != "-" else _label(n)
            runs.append(r)
    return manifest, runs


def table(rows: list[tuple[int, Run]]) -> str:
    """A Markdown table of every run at every size."""
    head = (
        "| per side | engine | variant | status | wall s | peak RSS GiB | candidate pairs "
        "| precision | recall | F1 |"
    )
    lines = [head, "|" + "---|" * 10]
    for n, r in rows:
        m = r.metrics
        variant = r.variant.removeprefix(_label(n)).strip() or "–"
        lines.append(
            f"| {n:,} | {r.engine} | {variant} | {r.status} | {fmt_num(r.wall_s, 1)} "
            f"| {fmt_num(r.peak_gib, 2)} | {fmt_num(r.candidate_pairs)} "
            f"| {fmt_num(m.precision if m else None, 4)} | {fmt_num(m.recall if m else None, 4)} "
            f"| {fmt_num(m.f1 if m else None, 4)} |"
        )
    return "\n".join(lines)


def verdicts(rows: list[tuple[int, Run]]) -> list[str]:
    """The 1M-per-side targets, with the figures measured."""
    ours = next((r for n, r in rows if n == 1_000_000 and r.engine == "crosswalk"), None)
    if ours is None:
        return ["1M per side: not run (add 1000000 to --sizes)", SPLINK_REFERENCE]
    if ours.status != "ok" or ours.wall_s is None or ours.peak_gib is None:
        return [f"1M per side: ours {ours.status}", SPLINK_REFERENCE]
    out = [
        f"ours at 1M per side under {TARGET_WALL_S:.0f} s: {ours.wall_s:.1f} s → "
        f"{'met' if ours.wall_s < TARGET_WALL_S else 'NOT met'}",
        f"ours at 1M per side under {TARGET_PEAK_GIB:.0f} GiB peak: {ours.peak_gib:.2f} GiB → "
        f"{'met' if ours.peak_gib < TARGET_PEAK_GIB else 'NOT met'}",
    ]
    splink = next(
        (r for n, r in rows if n == 1_000_000 and r.engine == "splink" and r.wall_s), None
    )
    if splink is not None and splink.wall_s and splink.peak_gib is not None:
        out.append(
            f"Splink at 1M per side in this run: {splink.status}, {splink.wall_s:.1f} s, "
            f"{splink.peak_gib:.2f} GiB"
        )
    out.append(SPLINK_REFERENCE)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run every size and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="records per side")
    parser.add_argument(
        "--peers", default="splink", help="comma-separated: splink, recordlinkage, or none"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--out", type=Path, default=None, help="keep data and outputs here")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    parser.add_argument("--mem-cap-gib", type=float, default=14.0, help="kill a run past this")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    peers = [p.strip() for p in args.peers.split(",") if p.strip() and p.strip() != "none"]
    log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if args.json else print

    rows: list[tuple[int, Run]] = []
    manifests: dict[int, dict[str, Any]] = {}
    base = args.out.resolve() if args.out else Path(tempfile.mkdtemp(prefix="crosswalk-scale-"))
    try:
        for n in sizes:
            work = base / _label(n)
            manifest, runs = run_size(
                n, work, peers, args.timeout, args.mem_cap_gib, args.seed, log
            )
            manifests[n] = manifest
            rows.extend((n, r) for r in runs)
            if not args.out:
                shutil.rmtree(work, ignore_errors=True)
            if not args.json:
                print(table([(m, r) for m, r in rows if m == n]), flush=True)
    finally:
        if not args.out:
            shutil.rmtree(base, ignore_errors=True)

    result = {
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        "generated": {str(k): v for k, v in manifests.items()},
        "runs": [{"per_side": n, **r.to_dict()} for n, r in rows],
        "targets": verdicts(rows),
        "reproduce": REPRODUCE,
    }
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    print("\nAll sizes:\n")
    print(table(rows))
    print("\nSynthetic data (generation is not part of any engine's time):")
    for n, m in manifests.items():
        print(
            f"  {n:,} per side: {m['truth_pairs']:,} truth pairs, generated and written "
            f"in {m['wall_s']} s"
        )
    print("\nTargets:")
    for line in result["targets"]:
        print(f"  {line}")
    print(f"\nPeak RSS is the largest process's high-water mark; 1 GiB = {GIB:,} bytes.")
    print(f"Reproduce: {REPRODUCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
