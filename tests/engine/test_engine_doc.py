"""docs/engine.md stays true: its plan is the one the code runs, and the files it names exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "engine.md"
BEGIN, END = "<!-- plan -->\n```\n", "```\n<!-- /plan -->"


def test_the_drawn_plan_is_the_build_plan_with_the_local_schedule() -> None:
    printed = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "engine_plan.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    doc = DOC.read_text()
    assert doc.count(BEGIN) == 1 and doc.count(END) == 1, "docs/engine.md lost its plan markers"
    drawn = doc.split(BEGIN, 1)[1].split(END, 1)[0]
    assert printed.startswith("stage ") and "lane" in printed
    assert drawn == printed, (
        "docs/engine.md draws another plan than the code runs: "
        "run `python docs/engine_plan.py --write` and review the diff"
    )


def test_every_file_the_doc_names_exists() -> None:
    named = set(
        re.findall(r"`((?:crosswalk|matchers|api|docs|tests|bench)/[\w/.]*)`", DOC.read_text())
    )
    assert "crosswalk/runners/local.py" in named  # the pattern finds what it should
    missing = sorted(n for n in named if not (ROOT / n).exists())
    assert not missing, f"docs/engine.md names files that do not exist: {missing}"
