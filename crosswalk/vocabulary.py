"""The crosswalk's vocabulary: every name the engine, the outputs and the API share.

The facility fields, the identifier schemes, the column prefixes, how a record
joined its entity, the statuses of a link, the kinds of conflict and of change,
the reasons a pair goes to review and the review defaults are each written here
once; everything else imports them. This module uses the standard library only,
so that importing it costs nothing: the config, the API and the tools import it
before (or without) the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

# ---------------------------------------------------------------------- facility fields


@dataclass(frozen=True)
class Field:
    """One common facility field: what a source may feed and what the outputs publish."""

    #: The field's name: the config key under ``fields``, the column of the canonical
    #: records, of the published ``records`` table and (if published there) of ``entities``.
    name: str
    #: Frictionless type of the published column: ``string`` or ``number``.
    type: str
    #: Description of the published column (the data dictionary), after the part that
    #: depends on the table.
    description: str
    #: A short human label (e.g. for the reconciliation service's properties).
    label: str
    #: Description of the field in the API's JSON schemas (``None``: none given).
    api_description: str | None = None
    #: A source may map a list of columns to it (published joined by ``" | "``).
    multi: bool = False
    #: The ``entities`` table carries a canonical value of it, chosen by survivorship.
    entity: bool = True
    #: ``crosswalk.csv`` carries it.
    csv: bool = False


#: The facility fields, in the input order: the config's ``fields`` keys, ``FieldMap``'s
#: attributes and the columns of the canonical records. ``other_names`` takes a list.
FIELDS: Final = (
    Field(
        "name",
        "string",
        "Facility name as the source wrote it.",
        "Name",
        api_description="Facility name.",
        csv=True,
    ),
    Field(
        "other_names",
        "string",
        "Other names (business or DBA names), separated by ' | '.",
        "Other names",
        multi=True,
        entity=False,
    ),
    Field(
        "address",
        "string",
        "Street address as the source wrote it.",
        "Street address",
        api_description="Street address.",
        csv=True,
    ),
    Field("city", "string", "City as the source wrote it.", "City", csv=True),
    Field("state", "string", "Two-letter state code.", "State"),
    Field(
        "zip",
        "string",
        "Five-digit ZIP code, kept as text so leading zeros survive.",
        "ZIP code",
        api_description="Five-digit ZIP code, as text.",
        csv=True,
    ),
    Field("county", "string", "County name.", "County"),
    Field("phone", "string", "Phone number as the source wrote it.", "Phone number", entity=False),
    Field(
        "latitude",
        "number",
        "Latitude in decimal degrees (WGS 84), where the source gives one.",
        "Latitude",
    ),
    Field(
        "longitude",
        "number",
        "Longitude in decimal degrees (WGS 84), where the source gives one.",
        "Longitude",
    ),
    Field(
        "facility_type",
        "string",
        "Facility type as the source wrote it.",
        "Facility type",
        api_description="Facility type as the source wrote it.",
    ),
)

#: The facility fields' names, in the input order.
FIELD_NAMES: Final = tuple(f.name for f in FIELDS)

#: Each field by its name.
FIELDS_BY_NAME: Final = MappingProxyType({f.name: f for f in FIELDS})

#: The facility fields in the order the outputs publish them: the columns of the
#: ``records`` table (after ``source``, ``record_id`` and ``entity_id``).
PUBLISHED_FIELDS: Final = (
    "name",
    "address",
    "city",
    "state",
    "zip",
    "county",
    "phone",
    "facility_type",
    "latitude",
    "longitude",
    "other_names",
)

#: The fields with a canonical value per entity (the ``entities`` table's columns and the
#: survivorship's fields), in the published order.
ENTITY_FIELDS: Final = tuple(n for n in PUBLISHED_FIELDS if FIELDS_BY_NAME[n].entity)

#: The fields ``crosswalk.csv`` carries, in the published order.
CSV_FIELDS: Final = tuple(n for n in PUBLISHED_FIELDS if FIELDS_BY_NAME[n].csv)

# ---------------------------------------------------------------------- identifiers

#: Identifier schemes with a dedicated normalizer (see ``matchers.identifiers``), each with
#: its human label. Other scheme names are accepted and normalized generically.
SCHEMES: Final = MappingProxyType(
    {
        "oshpd_id": "HCAI (OSHPD) facility id",
        "cdph_license": "CDPH license number",
        "cdph_facid": "CDPH facility id (FACID)",
        "npi": "National Provider Identifier (NPI)",
        "ccn": "CMS Certification Number (CCN)",
    }
)

#: Column prefix of identifier columns in the canonical records (``id:<scheme>``).
ID_PREFIX: Final = "id:"
#: Column prefix of normalized identifier columns (``nid:<scheme>``), and the name prefix
#: of their comparisons.
NID_PREFIX: Final = "nid:"

# ---------------------------------------------------------------------- engine

#: The blocking rules the engine knows, in the order it applies them (see ``docs/engine.md``).
BLOCKING_RULES: Final = (
    "zip_name_token",
    "street",
    "phone",
    "identifier",
    "geo_cell",
    "rare_name_token",
    "city_name",
    "rare_name",
)

#: How a record joined its entity (the records' ``method``), strongest first.
RECORD_METHODS: Final = ("identifier", "fuzzy", "singleton")

#: The statuses a link can have (the links' ``status``).
LINK_STATUSES: Final = ("linked", "cut", "below_threshold", "must_link", "cannot_link")

#: The kinds of the published ``conflicts``, each with the reason its ``details`` give.
CONFLICT_KINDS: Final = MappingProxyType(
    {
        "identifier_disagrees": (
            "the records share an identifier but their names and addresses disagree"
        ),
        "identifier_differs": (
            "names and addresses agree but an identifier of the same scheme differs"
        ),
        "cluster_split": (
            "the link would put two records of one source into one entity; "
            "weaker than the links kept"
        ),
        "decision_conflict": "a must-link decision contradicts a cannot-link decision",
    }
)

#: The kinds of change between two editions of the entity ids (``changes.csv``), in the order
#: the published enum and a release's change counts list them.
CHANGE_KINDS: Final = (
    "new",
    "merged_into",
    "split_from",
    "retired",
    "members_changed",
    "revived",
)

# ---------------------------------------------------------------------- review


@dataclass(frozen=True)
class Reason:
    """Why a pair went to review."""

    #: What it means, for the review UI and the docs.
    label: str


#: The reasons a pair goes to review, by kind.
REVIEW_REASONS: Final = MappingProxyType(
    {
        "decision_conflict": Reason("Decisions contradict each other"),
        "identifier_disagrees": Reason("Shared identifier, different name/address"),
        "identifier_differs": Reason("Same name/address, different identifier"),
        "cluster_split": Reason("Cluster was split"),
        "one_per_source": Reason("Link cut: two records of one source"),
        "uncertain": Reason("Uncertain: near the threshold"),
        "second_candidate": Reason("A close second candidate"),
        "large_cluster": Reason("Unusually large cluster"),
        "unlinked": Reason("Two records left without a link: best candidates"),
        "orphaned": Reason("Record left without a link by the one-per-source rule"),
        "displaced": Reason("The link a decision on a disputed pair would undo"),
        "crossed": Reason("Crossed links: exchanging two links' records costs little"),
        "type_overruled": Reason("Cut link of one facility type, kept one of another"),
        "next_in_line": Reason("Record without a link, next in line for a disputed one"),
    }
)


@dataclass(frozen=True)
class ReviewDefaults:
    """What a config without ``[review]`` or ``[clustering]`` values means."""

    #: Pairs whose match probability falls in [low, high) go to review.
    uncertain_low: float = 0.2
    uncertain_high: float = 0.9
    #: A decision with at least this many bits to spare (at most 1 / (1 + 2**3.17), 10%,
    #: chance of being wrong under the model) is clear and not queued.
    clear_margin_bits: float = 3.17
    #: A cut that leaves a record with no link at all is clear only with this many bits
    #: to spare (P(wrong) under 1 / (1 + 2**6.63), 1%): a record alone is the costlier
    #: mistake, since nothing else in the queue points at it.
    orphan_margin_bits: float = 6.63
    #: Clusters larger than this are flagged for review.
    large_cluster_size: int = 6


REVIEW_DEFAULTS: Final = ReviewDefaults()
