"""`crosswalk diff`: what happened to entity ids between two releases."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from crosswalk.errors import ReleaseError


def register(sub: Any) -> None:
    """Add the ``diff`` subcommand."""
    p = sub.add_parser(
        "diff",
        help="summarize the changes between two releases",
        description=(
            "Compare release A with a later release B: how many entity ids are new, merged into "
            "another, split from another, retired, revived, or kept with changed members. B's "
            "entities are compared with A's directly, by their records, whatever happened in "
            "between. A and B are versions in --releases or paths of release directories; "
            "without them, B is the latest release of --releases and A the one before B. "
            "With --csv -, standard output holds the CSV alone and the summary goes to "
            "standard error."
        ),
    )
    p.add_argument(
        "a",
        metavar="A",
        nargs="?",
        help="the earlier release (version or path; default: the release before B)",
    )
    p.add_argument(
        "b",
        metavar="B",
        nargs="?",
        help="the later release (version or path; default: the latest release)",
    )
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
    a_ref, b_ref = _default_pair(args.a, args.b, Path(args.releases))
    a = resolve_release(a_ref, releases)
    b = resolve_release(b_ref, releases)
    changes = diff_releases(a, b)
    n_a = read_members(a / "crosswalk.sqlite")["entity_id"].nunique()
    n_b = read_members(b / "crosswalk.sqlite")["entity_id"].nunique()
    # With --csv -, standard output is the CSV's alone.
    summary = sys.stderr if args.csv == "-" else sys.stdout
    print(f"{a.name} ({n_a:,} entities) -> {b.name} ({n_b:,} entities)", file=summary)
    for kind, n in summarize(changes).items():
        print(f"  {kind:<16} {n:>8,}", file=summary)
    if args.csv:
        from crosswalk.artifact.writer import write_frame_csv

        summary.flush()
        write_frame_csv(sys.stdout.buffer if args.csv == "-" else Path(args.csv), changes)
        if args.csv != "-":
            print(f"wrote {len(changes):,} rows to {args.csv}")
    return 0


def _default_pair(a: str | None, b: str | None, releases: Path) -> tuple[str, str]:
    """A and B as given, else B the latest release of ``releases`` and A the one before B."""
    if a is not None and b is not None:
        return a, b
    from crosswalk.release import list_releases

    versions = [r.version for r in list_releases(releases)] if releases.is_dir() else []
    if b is None:
        b = versions[-1] if versions else None
    before = versions[: versions.index(b)] if b in versions else []
    if a is None:
        a = before[-1] if before else None
    if a is None or b is None:
        raise ReleaseError(
            f"a diff needs two releases, and {releases} holds {len(versions)}"
            + (f" ({', '.join(versions)})" if versions else "")
            + ". Fix: build again with --releases "
            f"{releases} and release that build, or name the releases A and B."
        )
    return a, b
