"""The build plan as docs/engine.md draws it: ``Plan.describe`` with the local runner's schedule.

    python docs/engine_plan.py          # print the table
    python docs/engine_plan.py --write  # rewrite the table between the markers of docs/engine.md

tests/engine/test_engine_doc.py checks that docs/engine.md holds what this prints.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "engine.md"
#: The configuration the plan is drawn for: the embedded data's (a plan's stages and datasets do
#: not depend on the configuration, only their params do).
CONFIG = ROOT / "data" / "sources.toml"
BEGIN, END = "<!-- plan -->\n```\n", "```\n<!-- /plan -->"


def plan_text() -> str:
    """The build plan's stages, with the lane each runs on here and the stage it waits for."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from crosswalk.config import load_config
    from crosswalk.pipeline import build_plan
    from crosswalk.runners.local import LOCAL

    return build_plan(load_config(CONFIG)).describe(LOCAL)


def doc_block(doc: str) -> str:
    """The text between the plan's markers in ``doc``."""
    if BEGIN not in doc or END not in doc:
        raise SystemExit(f"{DOC}: no {BEGIN.splitlines()[0]} … {END.splitlines()[-1]} block")
    return doc.split(BEGIN, 1)[1].split(END, 1)[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite the table in {DOC}")
    args = parser.parse_args(argv)
    text = plan_text()
    if not args.write:
        sys.stdout.write(text)
        return 0
    doc = DOC.read_text()
    DOC.write_text(doc.replace(BEGIN + doc_block(doc) + END, BEGIN + text + END))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
