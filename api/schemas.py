"""OpenAPI component schemas and response snippets shared by the operations.

These describe the JSON the service promises (see ``docs/api.md`` on stability).
``/openapi.json`` publishes them under ``components``; views reference them
with :func:`ref`.
"""

from __future__ import annotations

from typing import Any

from crosswalk.artifact.schema import API_ENTITY_FIELDS, json_properties


def ref(name: str) -> dict[str, str]:
    """A ``$ref`` to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(type_: str, description: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"type": type_, "nullable": True}
    if description:
        out["description"] = description
    return out


_STR = {"type": "string"}

#: A schema member naming a list of the served release's values ("schemes" or "sources"):
#: ``/openapi.json`` replaces it with ``enum`` (see ``api.openapi.build_spec``).
ENUM_OF = "x-crosswalk-enum-of"

#: An identifier, scheme, source or record id: text that is not empty.
_ID_TEXT: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 500}
#: A text query parameter holds no NUL character (``api.http.text_arg``).
NO_NUL = "^[^\\u0000]*$"
#: What /v1/match needs in a name: a letter or a digit (ASCII, read alike by every regex dialect).
NAME_PATTERN = "[A-Za-z0-9]"

_FACILITY = json_properties(API_ENTITY_FIELDS)

COMPONENTS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details, sent as application/problem+json.",
        "required": ["type", "title", "status"],
        "properties": {
            "type": {"type": "string", "description": "URI reference naming the problem type."},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "errors": {
                "type": "array",
                "description": "The fields at fault (400 only).",
                "items": {
                    "type": "object",
                    "required": ["field", "detail"],
                    "properties": {
                        "field": {"type": "string"},
                        "in": {"type": "string", "enum": ["query", "body", "path", "header"]},
                        "detail": {"type": "string"},
                    },
                },
            },
        },
    },
    "EntitySummary": {
        "type": "object",
        "required": ["entity_id", "member_count", "sources", "method"],
        "properties": {
            "entity_id": {"type": "string", "description": "Stable canonical id, e.g. F00001."},
            **_FACILITY,
            "facility_class": _nullable("string", "Common facility class, e.g. hospice."),
            "member_count": {"type": "integer"},
            "sources": {"type": "array", "items": _STR},
            "method": {"type": "string", "description": "identifier, fuzzy or singleton."},
        },
    },
    "Record": {
        "type": "object",
        "required": ["source", "record_id", "identifiers", "method"],
        "properties": {
            "source": {"type": "string"},
            "record_id": {"type": "string"},
            **_FACILITY,
            "phone": _nullable("string"),
            "latitude": _nullable("number"),
            "longitude": _nullable("number"),
            "other_names": {"type": "array", "items": _STR},
            "identifiers": {
                "type": "object",
                "description": "Identifier scheme to normalized value.",
                "additionalProperties": _STR,
            },
            "method": {"type": "string", "description": "How the record joined its entity."},
            "match_probability": _nullable(
                "number", "Probability of the record's strongest kept link; null for singletons."
            ),
        },
    },
    "Entity": {
        "allOf": [
            ref("EntitySummary"),
            {
                "type": "object",
                "required": ["identifiers", "records", "release"],
                "properties": {
                    "latitude": _nullable("number"),
                    "longitude": _nullable("number"),
                    "identifiers": {
                        "type": "object",
                        "description": "Every department id of every member, by scheme.",
                        "additionalProperties": {"type": "array", "items": _STR},
                    },
                    "records": {"type": "array", "items": ref("Record")},
                    "release": {"type": "string", "description": "Release the answer comes from."},
                },
            },
        ]
    },
    "Redirect": {
        "type": "object",
        "required": ["entity_id", "change", "location"],
        "properties": {
            "entity_id": {"type": "string"},
            "change": {"type": "string"},
            "successor": {"type": "string"},
            "location": {"type": "string"},
        },
    },
    "LookupQuery": {
        "type": "object",
        "description": "Either scheme and value, or source and record_id (not both).",
        "properties": {
            "scheme": {**_ID_TEXT, ENUM_OF: "schemes", "example": "oshpd_id"},
            "value": {**_ID_TEXT, "example": "106010735"},
            "source": {**_ID_TEXT, ENUM_OF: "sources", "example": "hcai"},
            "record_id": {**_ID_TEXT, "example": "106010735"},
        },
        "anyOf": [
            {
                "required": ["scheme", "value"],
                "not": {"anyOf": [{"required": ["source"]}, {"required": ["record_id"]}]},
            },
            {
                "required": ["source", "record_id"],
                "not": {"anyOf": [{"required": ["scheme"]}, {"required": ["value"]}]},
            },
        ],
    },
    "LookupResult": {
        "type": "object",
        "required": ["query", "found", "entity_ids", "entities"],
        "properties": {
            "query": {"type": "object"},
            "found": {"type": "boolean"},
            "entity_ids": {"type": "array", "items": _STR},
            "entities": {"type": "array", "items": ref("Entity")},
        },
    },
    "LookupBatch": {
        "type": "object",
        "required": ["lookups"],
        "properties": {
            "lookups": {"type": "array", "maxItems": 1000, "items": ref("LookupQuery")},
        },
    },
    "LookupBatchResult": {
        "type": "object",
        "required": ["release", "results"],
        "properties": {
            "release": {"type": "string"},
            "results": {"type": "array", "items": ref("LookupResult")},
        },
    },
    "MatchQuery": {
        "type": "object",
        "description": (
            "A facility record to resolve: a name, and whatever else is known "
            "(a member given as null counts as absent)."
        ),
        "required": ["name"],
        "additionalProperties": False,
        "properties": {
            "name": {
                "type": "string",
                "minLength": 1,
                "maxLength": 500,
                "pattern": NAME_PATTERN,
                "description": "Must hold a letter or a digit (A-Z, 0-9).",
                "example": "ALAMEDA HOSPITAL",
            },
            "address": {
                "type": "string",
                "nullable": True,
                "maxLength": 500,
                "example": "2070 Clinton Ave",
            },
            "city": {"type": "string", "nullable": True, "maxLength": 500, "example": "Alameda"},
            "state": {"type": "string", "nullable": True, "maxLength": 500},
            "zip": {"type": "string", "nullable": True, "maxLength": 500, "example": "94501"},
            "facility_type": {"type": "string", "nullable": True, "maxLength": 500},
            "phone": {"type": "string", "nullable": True, "maxLength": 500},
            "latitude": {"type": "number", "nullable": True, "minimum": -90, "maximum": 90},
            "longitude": {"type": "number", "nullable": True, "minimum": -180, "maximum": 180},
            "identifiers": {
                "type": "object",
                "nullable": True,
                "maxProperties": 20,
                "additionalProperties": {"type": "string", "maxLength": 500},
            },
            "limit": {"type": "integer", "minimum": 1, "maximum": 50, "default": 5},
        },
    },
    "Candidate": {
        "type": "object",
        "required": ["entity_id", "match_probability", "match_weight", "explanation"],
        "properties": {
            "entity_id": {"type": "string"},
            "match_probability": {"type": "number"},
            "match_weight": {"type": "number", "nullable": True},
            "matched_record": {
                "type": "object",
                "properties": {"source": _STR, "record_id": _STR},
            },
            "entity": ref("EntitySummary"),
            "explanation": {
                "type": "object",
                "description": "Per field: comparison level, the two values and the weight in bits.",
                "additionalProperties": {"type": "object"},
            },
        },
    },
    "MatchResult": {
        "type": "object",
        "required": ["release", "query", "candidates"],
        "properties": {
            "release": {"type": "string"},
            "query": {"type": "object"},
            "candidates": {"type": "array", "items": ref("Candidate")},
        },
    },
    "EntityPage": {
        "type": "object",
        "required": ["release", "items", "next"],
        "properties": {
            "release": {"type": "string"},
            "items": {"type": "array", "items": ref("EntitySummary")},
            "next": {
                "type": "string",
                "nullable": True,
                "description": "Opaque cursor of the next page; null on the last page.",
            },
        },
    },
    "Source": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string"},
            "publisher": _nullable("string"),
            "title": _nullable("string"),
            "extracted": _nullable("string"),
            "path": _nullable("string"),
            "sha256": _nullable("string"),
            "rows": {"type": "integer", "nullable": True},
        },
    },
    "Release": {
        "type": "object",
        "required": ["version", "build_id", "counts"],
        "properties": {
            "version": {"type": "string"},
            "build_id": {"type": "string"},
            "built_at": _nullable("string"),
            "published_at": _nullable("string"),
            "sequence": {"type": "integer", "nullable": True},
            "engine_version": _nullable("string"),
            "previous_release": _nullable("string"),
            "counts": {"type": "object"},
            "latest": {"type": "boolean"},
            "changes": {
                "type": "object",
                "description": "Number of entity ids per kind of change in this release.",
                "additionalProperties": {"type": "integer"},
            },
        },
    },
}


def problem_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": ref("Problem")}},
    }


def json_response(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


CACHE_HEADERS = {
    "ETag": {"description": "Release and entity.", "schema": {"type": "string"}},
    "Cache-Control": {"description": "Caching policy.", "schema": {"type": "string"}},
}

RELEASE_PARAM: dict[str, Any] = {
    "name": "release",
    "in": "query",
    "required": False,
    "description": "Answer from this release version (default: the latest).",
    "schema": {"type": "string", "minLength": 1},
}

NOT_MODIFIED = {"description": "Not modified: the If-None-Match ETag is current."}
