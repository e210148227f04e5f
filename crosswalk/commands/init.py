"""`crosswalk init`: write a commented starter config for a new pair of departments."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from crosswalk.artifact import DEFAULT_OUT
from crosswalk.errors import ConfigError, CrosswalkError

#: One ``[[source]]`` of the starter config; ``{name}`` is the source's name.
SOURCE = """
[[source]]
# A short lower-case name: it is the `source` column of every output and the SOURCE of
# SOURCE:ID references (letters, digits, - and _).
name = "{name}"
# The department's listing: a CSV file, or an .xlsx workbook with format = "xlsx" (and
# sheet = "NAME" for another than the first sheet). Relative to this file.
path = "{name}.csv"
# format = "csv"
# encoding = "auto"             # or "utf-8", "cp1252", "latin-1"
# Who publishes the listing, its title and extract date: printed with every build and
# release (name the publisher and the date wherever the data are shown).
# publisher = "Department of ..."
# title = "Licensed facility listing"
# extracted = "2026-01-31"
# The column of each record's id: present and unique; read as text (leading zeros kept).
id_column = "id"
# The most records of this source one entity may hold (1: a department lists a facility
# once; 0: no limit, and the source is also deduplicated).
max_per_entity = 1

[source.fields]
# Which column feeds each common field; only `name` is required. A field left out gives
# no evidence, for or against. More: other_names = ["DBA_NAME"], state, county, phone,
# latitude, longitude, facility_type (docs/sources.md).
name = "name"
address = "address"
city = "city"
zip = "zip"

# [source.defaults]
# state = "CA"                  # a constant for a field the file does not carry

# Identifier columns that another source shares (an NPI, a license number): records
# that agree on one are linked. Repeat the table for each column.
# [[source.identifiers]]
# column = "NPI"
# scheme = "npi"                # npi, ccn, oshpd_id, cdph_license, cdph_facid, or a name of yours
"""

HEADER = """\
# crosswalk sources config: one [[source]] table per department listing.
# Written by `crosswalk init`; edit the paths and column names to match the files, then
#   crosswalk build --config {path} --out {out}/
# Every key is explained in docs/sources.md; errors name the line and the fix.
"""

FOOTER = """
# Optional engine settings (docs/sources.md, "Engine tables"), e.g.:
# [model]
# link_threshold = 0.5          # link pairs at or above this match probability
# [review]
# store = "review/review.sqlite" # decisions of the review workflow bind every build
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "init",
        help="write a commented starter config for a new pair of departments",
        description=(
            "Write a sources config with one commented [[source]] table per department "
            "(two by default), to edit to the departments' files and columns; then build "
            "with it. An existing file is never overwritten."
        ),
    )
    p.add_argument(
        "path",
        nargs="?",
        default="sources.toml",
        metavar="FILE",
        help="the config to write (default: sources.toml)",
    )
    p.add_argument(
        "--source",
        dest="sources",
        action="append",
        metavar="NAME",
        help="a department's short name, once per department (default: --source a --source b)",
    )
    p.set_defaults(func=run)


def starter_config(path: str, names: list[str]) -> str:
    """The text of the starter config for the sources ``names``."""
    return (
        HEADER.format(path=path, out=DEFAULT_OUT)
        + "".join(SOURCE.format(name=n) for n in names)
        + FOOTER
    )


def run(args: argparse.Namespace) -> int:
    from crosswalk.config import load_config

    names = args.sources or ["a", "b"]
    if len(set(names)) != len(names):
        raise CrosswalkError(f"--source names a department twice: {names}. Fix: name each once.")
    path = Path(args.path)
    text = starter_config(args.path, names)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        raise CrosswalkError(
            f"{path} exists; init never overwrites a file. Fix: give another FILE, or edit "
            f"{path} itself."
        ) from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    try:
        load_config(path)  # the config's own checks: a bad --source name is named there
    except ConfigError:
        path.unlink()
        raise
    print(f"wrote {path.resolve()} with sources {', '.join(names)}")
    print("Edit its paths and column names to match the files, then:")
    print(f"  crosswalk build --config {path} --out {DEFAULT_OUT}/")
    return 0
