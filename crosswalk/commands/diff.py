"""`crosswalk diff`: what happened to entity ids between two releases."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    """Add the ``diff`` subcommand."""
    p = sub.add_parser(
        "diff",
        help="summarize the changes between two releases",
        description=(
            "Compare release A with a later release B: how many entity ids are new, merged into "
            "another, split from another, retired, revived, or kept with changed members. B's "
            "entities are compared with A's directly, by their records, whatever happened in "
            "between. A and B are versions in --releases or paths of release directories."
        ),
    )
    p.add_argument("a", metavar="A", help="the earlier release (version or path)")
    p.add_argument("b", metavar="B", help="the later release (version or path)")
    p.add_argument(
        "--releases",
        default="releases",
        metavar="DIR",
        help="releases directory (default: releases)",
    )
    p.add_argument(
        "--csv",
        metavar="FILE",
        help=(
            "write every change (entity_id, change, details) to FILE ('-': standard output); "
            "a cell a spreadsheet would run as a formula gets a leading ' (docs/data-dictionary.md)"
        ),
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the summary and optionally write the rows."""
    from crosswalk.release import diff_releases, read_members, resolve_release, summarize

    releases = Path(args.releases) if Path(args.releases).is_dir() else None
    a = resolve_release(args.a, releases)
    b = resolve_release(args.b, releases)
    changes = diff_releases(a, b)
    n_a = read_members(a / "crosswalk.sqlite")["entity_id"].nunique()
    n_b = read_members(b / "crosswalk.sqlite")["entity_id"].nunique()
    print(f"{a.name} ({n_a:,} entities) -> {b.name} ({n_b:,} entities)")
    for kind, n in summarize(changes).items():
        print(f"  {kind:<16} {n:>8,}")
    if args.csv:
        from crosswalk.artifact.writer import write_frame_csv

        sys.stdout.flush()
        write_frame_csv(sys.stdout.buffer if args.csv == "-" else Path(args.csv), changes)
        if args.csv != "-":
            print(f"wrote {len(changes):,} rows to {args.csv}")
    return 0
