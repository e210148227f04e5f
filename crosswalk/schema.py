"""The published crosswalk's tables and columns: one definition for every output.

The SQLite writer, the CSV writer, ``datapackage.json``, the Datasette
metadata and ``docs/data-dictionary.md`` are all generated from these
definitions, so they cannot drift apart. Column names here are a public
contract: scripts and the API depend on them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # frictionless type: string, integer, number, boolean, object
    description: str
    required: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


_FACILITY = (
    Column("name", "string", "Facility name as the source wrote it."),
    Column("address", "string", "Street address as the source wrote it."),
    Column("city", "string", "City as the source wrote it."),
    Column("state", "string", "Two-letter state code."),
    Column("zip", "string", "Five-digit ZIP code, kept as text so leading zeros survive."),
    Column("county", "string", "County name."),
    Column("facility_type", "string", "Facility type as the source wrote it."),
    Column(
        "latitude", "number", "Latitude in decimal degrees (WGS 84), where the source gives one."
    ),
    Column(
        "longitude", "number", "Longitude in decimal degrees (WGS 84), where the source gives one."
    ),
)

ENTITIES = Table(
    "entities",
    "One row per canonical facility: the entity that the member records of every source describe.",
    (
        Column(
            "entity_id",
            "string",
            "Canonical entity id: stable across releases, never reused.",
            True,
        ),
        *(
            Column(
                c.name,
                c.type,
                f"Canonical value chosen by survivorship (docs/engine.md). {c.description}",
            )
            for c in _FACILITY
        ),
        Column(
            "facility_class",
            "string",
            "Facility type mapped to the common vocabulary (e.g. home_health, hospice).",
        ),
        Column("member_count", "integer", "Number of source records in the entity.", True),
        Column(
            "sources",
            "string",
            "Comma-separated names of the sources that hold a member, sorted.",
            True,
        ),
        Column(
            "method",
            "string",
            "Strongest evidence joining the members: identifier, fuzzy or singleton.",
            True,
        ),
    ),
    ("entity_id",),
)

RECORDS = Table(
    "records",
    "One row per source record, with the entity it belongs to.",
    (
        Column(
            "source",
            "string",
            "Name of the source (department listing) the record comes from.",
            True,
        ),
        Column("record_id", "string", "The record's id in its source, kept as text.", True),
        Column("entity_id", "string", "Canonical entity the record belongs to.", True),
        *_FACILITY[:6],
        Column("phone", "string", "Phone number as the source wrote it."),
        *_FACILITY[6:],
        Column("other_names", "string", "Other names (business or DBA names), separated by ' | '."),
        Column(
            "identifiers",
            "object",
            'JSON object: identifier scheme to normalized value, e.g. {"oshpd_id": "106010735"}.',
        ),
        Column(
            "match_probability",
            "number",
            "Probability of the record's strongest kept link inside its entity; empty for singletons.",
        ),
        Column(
            "method",
            "string",
            "How the record joined its entity: identifier, fuzzy or singleton.",
            True,
        ),
    ),
    ("source", "record_id"),
)

IDENTIFIERS = Table(
    "identifiers",
    "Every normalized identifier of every record, for lookups by any scheme.",
    (
        Column("scheme", "string", "Identifier scheme, e.g. oshpd_id, cdph_license, npi.", True),
        Column("value", "string", "Normalized identifier value (zero-padded, checked).", True),
        Column("source", "string", "Source of the record carrying the identifier.", True),
        Column("record_id", "string", "Record carrying the identifier.", True),
        Column("entity_id", "string", "Entity of that record.", True),
    ),
    ("scheme", "value", "source", "record_id"),
)

LINKS = Table(
    "links",
    "Scored candidate pairs between records, with each field's contribution to the score.",
    (
        Column("link_id", "integer", "Row id of the link.", True),
        Column("source_l", "string", "Source of the left record.", True),
        Column("record_id_l", "string", "Left record id.", True),
        Column("source_r", "string", "Source of the right record.", True),
        Column("record_id_r", "string", "Right record id.", True),
        Column(
            "entity_id",
            "string",
            "Entity holding both records when the link is kept; empty otherwise.",
        ),
        Column(
            "match_probability",
            "number",
            "Posterior probability that the two records are the same facility.",
            True,
        ),
        Column(
            "match_weight",
            "number",
            "Log2 Bayes factor: the sum of the prior and every field's contribution.",
            True,
        ),
        Column("method", "string", "identifier (a shared identifier decided it) or fuzzy.", True),
        Column(
            "status",
            "string",
            "linked, below_threshold, cut (removed to keep one record per source), must_link or cannot_link (a review decision).",
            True,
        ),
        Column(
            "explanation",
            "object",
            "JSON object: for each field, its comparison level, values and weight in bits.",
            True,
        ),
    ),
    ("link_id",),
)

CONFLICTS = Table(
    "conflicts",
    "Cases the engine will not decide silently: identifier evidence against name and address evidence, and split clusters.",
    (
        Column("conflict_id", "integer", "Row id of the conflict.", True),
        Column(
            "kind",
            "string",
            "identifier_disagrees (shared id, different facility by name/address), identifier_differs (same facility by name/address, different id), cluster_split or decision_conflict.",
            True,
        ),
        Column("source_l", "string", "Source of the left record.", True),
        Column("record_id_l", "string", "Left record id.", True),
        Column("source_r", "string", "Source of the right record."),
        Column("record_id_r", "string", "Right record id."),
        Column("scheme", "string", "Identifier scheme involved, if any."),
        Column(
            "match_probability", "number", "Name-and-address-only match probability of the pair."
        ),
        Column("details", "object", "JSON object describing the conflict.", True),
    ),
    ("conflict_id",),
)

SOURCES = Table(
    "sources",
    "The department listings the crosswalk was built from.",
    (
        Column("name", "string", "Short name of the source.", True),
        Column("publisher", "string", "Who publishes the listing."),
        Column("title", "string", "Title of the listing."),
        Column("extracted", "string", "Extract date of the listing."),
        Column("path", "string", "File the listing was read from."),
        Column("sha256", "string", "SHA-256 of the file's bytes.", True),
        Column("rows", "integer", "Number of records read.", True),
    ),
    ("name",),
)

TABLES = (ENTITIES, RECORDS, IDENTIFIERS, LINKS, CONFLICTS, SOURCES)

#: Columns of ``crosswalk.csv`` (one row per source record). A public contract.
CSV_COLUMNS = (
    Column("entity_id", "string", "Canonical entity id.", True),
    Column("source", "string", "Source of the record.", True),
    Column("record_id", "string", "Record id in its source, as text.", True),
    Column("name", "string", "Facility name as the source wrote it."),
    Column("address", "string", "Street address as the source wrote it."),
    Column("city", "string", "City as the source wrote it."),
    Column("zip", "string", "Five-digit ZIP code, as text."),
    Column(
        "match_probability",
        "number",
        "Probability of the record's strongest kept link; empty for singletons.",
    ),
    Column("method", "string", "identifier, fuzzy or singleton.", True),
)

#: Keys of the ``meta`` table (key/value text): build id, times, config and model.
META_KEYS = (
    "build_id",
    "built_at",
    "engine_version",
    "config",
    "counts",
    "model",
    "previous_release",
)


def table(name: str) -> Table:
    for t in TABLES:
        if t.name == name:
            return t
    raise KeyError(name)


def data_dictionary() -> str:
    """``docs/data-dictionary.md``, generated from the definitions above."""
    lines = [
        "# Data dictionary of the published crosswalk",
        "",
        "Generated from `crosswalk/schema.py` by `python -m crosswalk.schema > docs/data-dictionary.md`;",
        "a test fails when this file and the code disagree. Column names are a public contract.",
        "",
        "Every build writes `crosswalk.sqlite` (the tables below, plus `meta` and the view",
        "`crosswalk_wide`: one row per entity, one column of record ids per source),",
        "`crosswalk.csv` and `datapackage.json`.",
        "",
        "## `crosswalk.csv`",
        "",
        "One row per source record, sorted by source, then record id (as text). Ids are text:",
        "leading zeros are kept.",
        "",
        "| column | type | description |",
        "|---|---|---|",
        *(f"| `{c.name}` | {c.type} | {c.description} |" for c in CSV_COLUMNS),
    ]
    for t in TABLES:
        key = ", ".join(f"`{k}`" for k in t.primary_key)
        lines += [
            "",
            f"## Table `{t.name}`",
            "",
            f"{t.description} Primary key: {key}.",
            "",
            "| column | type | required | description |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| `{c.name}` | {c.type} | {'yes' if c.required else ''} | {c.description} |"
            for c in t.columns
        ]
    lines += [
        "",
        "## Table `meta`",
        "",
        "Key/value text. Keys: "
        + ", ".join(f"`{k}`" for k in META_KEYS)
        + ". `config`, `counts` and `model` hold JSON: the config the build ran with, the summary"
        " counts, and the fitted model (m and u per comparison level, the prior, and each level's"
        " weight in bits).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(data_dictionary(), end="")
