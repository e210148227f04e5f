"""`crosswalk release`: publish a build as a dated, immutable release."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from crosswalk.artifact import DEFAULT_OUT


def register(sub: Any) -> None:
    """Add the ``release`` subcommand."""
    p = sub.add_parser(
        "release",
        help="publish a build as a dated, immutable release",
        description=(
            "Publish the build in --build as a new release in --releases: "
            "crosswalk.sqlite (with full-text search and Datasette metadata.json), crosswalk.csv, "
            "crosswalk.parquet, datapackage.json, changes.csv, report.html and manifest.json. "
            "Publishing is atomic and an existing release is never changed. Build with "
            "`crosswalk build --releases DIR` so that entity ids carry over from the latest release."
        ),
    )
    p.add_argument(
        "--build",
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"build output directory (default: {DEFAULT_OUT})",
    )
    p.add_argument(
        "--releases",
        default="releases",
        metavar="DIR",
        help="releases directory (default: releases)",
    )
    p.add_argument(
        "--version",
        dest="release_version",
        metavar="V",
        help="version name (default: today's UTC date, YYYY-MM-DD, then .2, .3 ... the same day)",
    )
    p.add_argument("--json", action="store_true", help="print the manifest summary as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Publish the release and print where it is and what changed."""
    from crosswalk.release import publish_release, summarize

    info = publish_release(Path(args.build), Path(args.releases), version=args.release_version)
    changes = info.manifest.get("counts", {}).get("changes", {})
    if args.json:
        print(
            json.dumps(
                {
                    "version": info.version,
                    "sequence": info.sequence,
                    "path": str(info.path),
                    "previous": info.previous,
                    "changes": changes,
                },
                indent=2,
            )
        )
        return 0
    print(f"published release {info.version} (#{info.sequence}) in {info.path}")
    if info.previous:
        print(f"changes since {info.previous}:")
    else:
        print("first release: every entity id is new")
    import pandas as pd

    frame = pd.DataFrame({"change": [k for k, n in changes.items() for _ in range(int(n))]})
    for kind, n in summarize(frame).items():
        print(f"  {kind:<16} {n:>8,}")
    return 0
