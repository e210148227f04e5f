"""The published crosswalk's tables and columns: one definition for every output.

Every table of ``crosswalk.sqlite`` is defined here: the published tables, ``meta``
and the id tables (``retired_ids``, ``retired_members``, ``changes``, ``id_state``).
The SQLite writer (:mod:`crosswalk.artifact.writer`), the CSV writer, ``datapackage.json``,
the Datasette metadata, the API's JSON schemas and ``docs/data-dictionary.md`` are all
generated from these definitions, so they cannot drift apart. Column names here are a
public contract: scripts and the API depend on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crosswalk.vocabulary import CHANGE_KINDS, ENTITY_FIELDS, FIELDS_BY_NAME, PUBLISHED_FIELDS


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # frictionless type: string, integer, number, boolean, object
    description: str
    required: bool = False
    #: The only values the column may hold, where it is a closed set.
    enum: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    #: Stored as a SQLite ``WITHOUT ROWID`` table (a table that is all primary key).
    without_rowid: bool = False

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _field(name: str) -> Column:
    """The published column of the facility field ``name`` (:mod:`crosswalk.vocabulary`)."""
    f = FIELDS_BY_NAME[name]
    return Column(f.name, f.type, f.description)


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
            for c in map(_field, ENTITY_FIELDS)
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
        *map(_field, PUBLISHED_FIELDS),
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
    "Scored candidate pairs between records, with each field's contribution to the score: "
    "those kept, cut or decided, those sharing an identifier, those at or above the review "
    "floor (the lower of review.uncertain_low and model.link_threshold), and under it, "
    "down to a probability of 0.001, the best candidate of a record when neither record "
    "of the pair has a link (for the review queue).",
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

RETIRED_IDS = Table(
    "retired_ids",
    "Every entity id that no longer names an entity, with what happened to it. "
    "Ids are never reused, so a retired id stays here in every later release.",
    (
        Column("entity_id", "string", "The retired entity id."),
        Column(
            "change",
            "string",
            "merged_into (some of its last members are in the successor now) or "
            "retired (none of them is left).",
        ),
        Column(
            "successor",
            "string",
            "Entity that holds most of the retired id's last members now, "
            "recomputed at every release. Empty when none of them is left.",
        ),
        Column("release", "string", "Version of the release in which the id retired."),
        Column("details", "string", "Where its last members are, in words."),
    ),
    ("entity_id",),
)

RETIRED_MEMBERS = Table(
    "retired_members",
    "The last members of every retired id: the records it held when it retired. A "
    "retired id comes back when most of them are in an entity no live id keeps, and "
    "redirects to the entity holding most of them.",
    (
        Column("entity_id", "string", "The retired entity id.", True),
        Column("source", "string", "Source of one of its last member records.", True),
        Column("record_id", "string", "That record's id in its source.", True),
    ),
    ("entity_id", "source", "record_id"),
    without_rowid=True,
)

CHANGES = Table(
    "changes",
    "What changed since the previous release, one row per entity id concerned.",
    (
        Column("entity_id", "string", "Entity id the change concerns.", True),
        Column(
            "change",
            "string",
            f"{', '.join(CHANGE_KINDS[:-1])} or {CHANGE_KINDS[-1]}.",
            True,
            CHANGE_KINDS,
        ),
        Column(
            "details",
            "string",
            "The change in words: the other id involved and the member counts.",
        ),
    ),
)

ID_STATE = Table(
    "id_state",
    "What the next build needs to keep ids stable (key/value text).",
    (
        Column(
            "key",
            "string",
            "counter (last id number minted), prefix, previous_release, or release (the version "
            "of a release's own crosswalk.sqlite).",
        ),
        Column("value", "string", "The value, as text."),
    ),
    ("key",),
)

#: The id tables of ``crosswalk.sqlite``: what keeps entity ids stable across releases.
ID_TABLES = (RETIRED_IDS, RETIRED_MEMBERS, CHANGES, ID_STATE)

#: The id tables' descriptions, by table name: the table's, and its columns' by name.
STATE_TABLES: dict[str, tuple[str, dict[str, str]]] = {
    t.name: (t.description, {c.name: c.description for c in t.columns}) for t in ID_TABLES
}
#: Columns of ``changes.csv`` (and of the ``changes`` table).
CHANGE_COLUMNS = tuple(CHANGES.column_names)
#: Columns of the ``retired_ids`` table.
RETIRED_COLUMNS = tuple(RETIRED_IDS.column_names)
#: Columns of the member tables: ``records``' id columns and ``retired_members``.
MEMBER_COLUMNS = tuple(RETIRED_MEMBERS.column_names)

#: The tables whose names and text are searchable (SQLite FTS5, in releases): table name,
#: then the columns indexed.
SEARCHABLE = {"entities": ("name",), "records": ("name", "other_names")}

#: The facility columns of an entity in the API's answers: the text ones of ``entities``.
API_ENTITY_FIELDS = tuple(n for n in ENTITY_FIELDS if FIELDS_BY_NAME[n].type == "string")
#: The facility columns of a record in the API's answers: those of ``records`` with one value.
API_RECORD_FIELDS = tuple(n for n in PUBLISHED_FIELDS if not FIELDS_BY_NAME[n].multi)


def json_properties(names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """The JSON-schema (OpenAPI) properties of the facility columns ``names``: each
    nullable, typed as published, with the field's API description where it has one."""
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        f = FIELDS_BY_NAME[name]
        out[name] = {"type": f.type, "nullable": True}
        if f.api_description:
            out[name]["description"] = f.api_description
    return out


#: The columns of ``records`` that show a person which record it is (the errors of
#: ``crosswalk evaluate --errors``, the members of a disputed pair's entities).
RECORD_SUMMARY = (
    "source",
    "record_id",
    "entity_id",
    "name",
    "address",
    "city",
    "zip",
    "facility_type",
)

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

#: The characters that make a spreadsheet run a CSV cell that begins with one of them as a
#: formula: OWASP's list against CSV injection (``=``, ``+``, ``-``, ``@``, tab, carriage
#: return, line feed) and the NUL of OWASP ASVS 1.2.10. Every CSV the project writes
#: neutralizes such text cells (see :func:`data_dictionary`).
FORMULA_STARTS = "=+-@\t\r\n\0"

#: What goes before a neutralized cell: a spreadsheet reads a cell that begins with it as text.
TEXT_PREFIX = "'"

#: How a phone is published in a CSV: the value, and the CSV field written for it.
PHONE_EXAMPLE = ("+1 916 555 0100", '"\'+1 916 555 0100"')

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


META = Table(
    "meta",
    "Facts about the build (key/value): " + ", ".join(META_KEYS) + ".",
    (
        Column("key", "string", "Name of the fact."),
        Column("value", "string", "Its value; JSON for structured values."),
    ),
    ("key",),
)

#: Every table of ``crosswalk.sqlite``.
ALL_TABLES = (*TABLES, META, *ID_TABLES)

#: The view of one row per entity (written by :func:`crosswalk.artifact.writer.finish_sqlite`).
WIDE_VIEW = "crosswalk_wide"
WIDE_VIEW_DESCRIPTION = (
    "One row per entity: its id, canonical name, city and ZIP, and one column per source "
    "holding that source's record ids of the entity (';'-separated when it has several, "
    "empty when it has none). Join a department's ids to the entity, or to another "
    "department's, here."
)


def wide_view_columns(source_names: list[str]) -> dict[str, str]:
    """The columns of :data:`WIDE_VIEW` for the sources ``source_names``, with descriptions."""
    fixed = {c.name: c.description for c in ENTITIES.columns}
    return {
        **{name: fixed[name] for name in ("entity_id", "name", "city", "zip")},
        **{s: f"Record ids of source {s} in this entity, ';'-separated." for s in source_names},
    }


def table(name: str) -> Table:
    for t in ALL_TABLES:
        if t.name == name:
            return t
    raise KeyError(name)


_CHARACTER_NAMES = {
    "\t": "a tab",
    "\r": "a carriage return",
    "\n": "a line feed",
    "\0": "NUL",
}


def _formula_rule() -> list[str]:
    """The data dictionary's statement of how CSV cells a spreadsheet would run are written."""
    names = [_CHARACTER_NAMES.get(c, f"`{c}`") for c in FORMULA_STARTS]
    starts = ", ".join(names[:-1]) + " or " + names[-1]
    p = TEXT_PREFIX
    phone, phone_cell = PHONE_EXAMPLE
    return [
        "## Cells a spreadsheet would run",
        "",
        "Every CSV the project writes (`crosswalk.csv`; `changes.csv` of builds and releases;",
        "the errors of `crosswalk evaluate --errors`; `crosswalk diff --csv`) neutralizes the",
        "text cells that a spreadsheet would run as a formula, as OWASP advises against CSV",
        "injection: a text cell that begins with",
        f"{starts}",
        f"is written with a leading `{p}`, in double quotes. A spreadsheet shows such a cell",
        f"as text, without the `{p}`.",
        "",
        f"- A phone such as `{phone}` is published as `{phone_cell}`. (Phones are not a",
        "  column of `crosswalk.csv`: the `records` table holds them unchanged. A name, an",
        "  address or any other text cell that begins so is written so.)",
        f'- Ids are text cells too: a record id `-17` is published as `"{p}-17"`.',
        "- Numeric and boolean columns (such as `match_probability`) are written as numbers,",
        "  never prefixed.",
        "- The rule applies to the value as published. Values are stripped of surrounding white",
        "  space when a listing is read: a name of a tab then `=cmd` in a listing is `=cmd` in",
        f'  `crosswalk.sqlite` and `"{p}=cmd"` in `crosswalk.csv`.',
        "- In `changes.csv` the details of `members_changed` begin with `+`: they are",
        f'  published as `"{p}+1 -0 members (now 3)"`.',
        f"- A cell that begins with one or more `{p}` and then one of those characters gets one",
        f"  more `{p}`, so the rule can be undone exactly: from a cell that begins with `{p}`",
        f"  (once or more) and then one of those characters, strip the first `{p}`.",
        "- `crosswalk.sqlite` and `crosswalk.parquet` hold every value unchanged.",
        "- The rule sees the cells that a program splitting lines at commas sees. A spreadsheet",
        "  set to split them at another character (`;` in some locales) sees other cells:",
        "  import the file with the comma as separator.",
    ]


def data_dictionary() -> str:
    """``docs/data-dictionary.md``, generated from the definitions above."""
    lines = [
        "# Data dictionary of the published crosswalk",
        "",
        "Generated from `crosswalk/artifact/schema.py` by",
        "`python -m crosswalk.artifact.schema > docs/data-dictionary.md`;",
        "a test fails when this file and the code disagree. Column names are a public contract.",
        "",
        "Every build writes `crosswalk.sqlite` (the tables below, plus `meta` and the view",
        f"`{WIDE_VIEW}`: one row per entity, one column of record ids per source),",
        "`crosswalk.csv` and `datapackage.json`; and `changes.csv` when entity ids changed",
        "since the release it carried them over from (every id is `new` in a first build).",
        "A build on Spark (`--engine spark`) also writes the directory `parquet`: `records/`, `entities/`",
        "and `links/`, each a Spark output directory of Parquet part files with the columns",
        "of the table of that name (docs/spark.md).",
        "A release adds `crosswalk.parquet`, Datasette's `metadata.json`, `report.html` and",
        "`manifest.json` (docs/releases.md).",
        "",
        "## `crosswalk.csv`",
        "",
        "One row per source record, sorted by source, then record id (as text). Ids are text:",
        "leading zeros are kept. A text cell that a spreadsheet would run as a formula begins",
        "with `'` (see below).",
        "",
        "| column | type | description |",
        "|---|---|---|",
        *(f"| `{c.name}` | {c.type} | {c.description} |" for c in CSV_COLUMNS),
        "",
        *_formula_rule(),
        "",
        "## `changes.csv`",
        "",
        "What happened to entity ids since the previous release, one row per id concerned:",
        "the rows of the table `changes` below, in its columns "
        + ", ".join(f"`{c}`" for c in CHANGE_COLUMNS)
        + ".",
        "A build writes it when ids changed, every release has one, and `crosswalk diff",
        "--csv` writes the same rows between any two releases.",
    ]
    for t in (*TABLES, *ID_TABLES):
        key = ", ".join(f"`{k}`" for k in t.primary_key)
        lines += [
            "",
            f"## Table `{t.name}`",
            "",
            f"{t.description} " + (f"Primary key: {key}." if key else "No primary key."),
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
        f"## View `{WIDE_VIEW}`",
        "",
        WIDE_VIEW_DESCRIPTION,
        "",
        "| column | description |",
        "|---|---|",
        *(
            f"| `{name}` | {text} |"
            for name, text in wide_view_columns(["SOURCE"]).items()
            if name != "SOURCE"
        ),
        "| one per source, named as the source | Record ids of that source in this entity, "
        "';'-separated. |",
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
