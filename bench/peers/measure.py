"""Run one command and measure it: wall time, peak memory, exit status.

Usage::

    python bench/peers/measure.py --out RESULT.json [--timeout S] [--mem-cap-gib G] -- CMD ...

This wrapper is started fresh for every measured run and imports nothing heavy,
so the figures of every engine (ours and the peers) are taken the same way:

* ``wall_s``: wall-clock seconds from spawning the command to its exit;
* ``peak_rss_bytes``: ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` after the command
  has been reaped, i.e. the high-water resident set of the largest process of the
  command's tree;
* ``user_s``, ``sys_s``: the CPU time of the command and of the descendants it
  waited for (``RUSAGE_CHILDREN``);
* ``tree_cpu_s``: the CPU time of the whole tree: the larger of ``user_s + sys_s``
  and the sum of every process's own CPU time as last sampled (a process that its
  parent does not wait for, such as Spark's JVM, is not in ``RUSAGE_CHILDREN``;
  the sampled sum misses a process's last 0.2 s and processes shorter than that);
* ``peak_tree_rss_bytes``: the largest sum of the resident sets of the whole
  process tree, sampled every 0.2 s from ``/proc`` (also used for the memory cap);
  with ``--timeline FILE``, every sample is written there (seconds, GiB, and the
  anonymous GiB), so that a run killed at the cap shows how far it got;
* ``peak_tree_anon_bytes``: the same for the tree's anonymous memory, its resident
  set but the pages of files (a memory-mapped file's pages are cached by the
  operating system, which drops them when memory runs short; anonymous memory it
  cannot drop, there being no swap here).

The command runs in its own process group. If it outlives ``--timeout`` it is
killed and the status is ``timed out``; if its tree grows past ``--mem-cap-gib``
(its resident set, or with ``--cap-on anon`` its anonymous memory) it is killed
and the status is ``out of memory`` (as it is when the kernel's OOM killer ends
it). The result is written as JSON to ``--out``; the command's
stdout and stderr pass through unchanged.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (every thread's list), from /proc."""
    out: list[int] = []
    task_dir = Path(f"/proc/{pid}/task")
    try:
        tasks = list(task_dir.iterdir())
    except OSError:
        return out
    for task in tasks:
        try:
            out.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return out


_TICK = os.sysconf("SC_CLK_TCK")


def _tree_rss(root: int, cpu: dict[int, float] | None = None) -> tuple[int, int]:
    """Sums of the resident set sizes of ``root`` and its descendants, and of their
    anonymous memory (resident but not a file's or shared), in bytes; with ``cpu``, each
    process's own CPU seconds so far (user and system) are noted there."""
    total = anon = 0
    stack = [root]
    seen: set[int] = set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            fields = Path(f"/proc/{pid}/statm").read_text().split()
            total += int(fields[1]) * _PAGE
            anon += (int(fields[1]) - int(fields[2])) * _PAGE
            if cpu is not None:
                # utime and stime: the 12th and 13th fields after the command's ")".
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                cpu[pid] = (int(stat[11]) + int(stat[12])) / _TICK
        except (OSError, IndexError, ValueError):
            continue
        stack.extend(_children(pid))
    return total, anon


def measure(
    cmd: list[str],
    timeout: float,
    mem_cap_bytes: int | None,
    timeline: Path | None = None,
    cap_on: str = "rss",
) -> dict[str, object]:
    """Run ``cmd`` to completion (or until a limit) and return its measurements; the cap
    applies to the tree's resident set (``cap_on`` "rss") or its anonymous memory ("anon")."""
    samples = timeline.open("w") if timeline is not None else None
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, start_new_session=True)
    status = "ok"
    peak_tree = peak_anon = 0
    cpu: dict[int, float] = {}
    while True:
        try:
            proc.wait(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            pass
        rss, anon = _tree_rss(proc.pid, cpu)
        peak_tree = max(peak_tree, rss)
        peak_anon = max(peak_anon, anon)
        elapsed = time.perf_counter() - start
        if samples is not None:
            samples.write(f"{elapsed:.1f}\t{rss / 2**30:.3f}\t{anon / 2**30:.3f}\n")
            samples.flush()
        capped = anon if cap_on == "anon" else rss
        if elapsed > timeout:
            status = "timed out"
        elif mem_cap_bytes is not None and capped > mem_cap_bytes:
            status = "out of memory"
        if status != "ok":
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            break
    wall = time.perf_counter() - start
    if samples is not None:
        samples.close()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    rc = proc.returncode
    if status == "ok" and rc == -signal.SIGKILL:
        status = "out of memory"  # killed from outside: the kernel's OOM killer
    elif status == "ok" and rc != 0:
        status = f"failed (exit {rc})"
    return {
        "cmd": cmd,
        "status": status,
        "returncode": rc,
        "wall_s": round(wall, 3),
        "peak_rss_bytes": int(usage.ru_maxrss) * 1024,
        "peak_tree_rss_bytes": max(peak_tree, int(usage.ru_maxrss) * 1024),
        "peak_tree_anon_bytes": peak_anon,
        "user_s": round(usage.ru_utime, 3),
        "sys_s": round(usage.ru_stime, 3),
        "tree_cpu_s": round(max(usage.ru_utime + usage.ru_stime, sum(cpu.values())), 3),
        "timeout_s": timeout,
        "mem_cap_bytes": mem_cap_bytes,
        "cap_on": cap_on,
    }


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the command, write the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="where to write the JSON result")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds (default 3600)")
    parser.add_argument("--mem-cap-gib", type=float, default=None, help="kill past this tree RSS")
    parser.add_argument(
        "--cap-on",
        choices=("rss", "anon"),
        default="rss",
        help="what --mem-cap-gib caps: the tree's resident set (default) or its anonymous memory",
    )
    parser.add_argument(
        "--timeline", type=Path, default=None, help="write every sample (s, GiB, anon GiB) here"
    )
    parser.add_argument("cmd", nargs=argparse.REMAINDER, help="-- then the command")
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd and args.cmd[0] == "--" else args.cmd
    if not cmd:
        parser.error("give the command to measure after --")
    cap = int(args.mem_cap_gib * 2**30) if args.mem_cap_gib else None
    result = measure(cmd, args.timeout, cap, args.timeline, args.cap_on)
    Path(args.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
