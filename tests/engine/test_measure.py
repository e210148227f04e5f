"""bench/peers/measure.py counts a process tree's anonymous memory apart from the pages of
files it maps (which the operating system may drop), and can cap either."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.bench_scripts import load

CHILD = """
import mmap, sys, time
with open(sys.argv[1], "rb") as f:
    mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    touched = sum(mapped[i] for i in range(0, len(mapped), 4096))  # every page resident
held = bytearray(int(sys.argv[2]) << 20)  # anonymous, written
time.sleep(1.5)
"""


def test_the_tree_s_anonymous_memory_leaves_out_a_mapped_file(tmp_path: Path) -> None:
    measure = load("peers/measure")
    data = tmp_path / "mapped.bin"
    data.write_bytes(b"x" * (300 << 20))
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    figures = measure.measure([sys.executable, str(script), str(data), "100"], 60.0, None)
    assert figures["status"] == "ok"
    rss, anon = figures["peak_tree_rss_bytes"], figures["peak_tree_anon_bytes"]
    assert anon >= 100 << 20
    assert rss - anon >= 250 << 20  # the mapped file's pages
    # Capped on anonymous memory under what it holds: killed.
    capped = measure.measure(
        [sys.executable, str(script), str(data), "100"], 60.0, 60 << 20, cap_on="anon"
    )
    assert capped["status"] == "out of memory"
    # Capped on it above what it holds, though its resident set passes the cap: not.
    fine = measure.measure(
        [sys.executable, str(script), str(data), "100"], 60.0, 250 << 20, cap_on="anon"
    )
    assert fine["status"] == "ok"
