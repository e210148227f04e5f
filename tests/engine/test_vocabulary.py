"""The vocabulary: one definition of the shared names, which the other lists must agree with."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

from crosswalk import vocabulary
from crosswalk.config import ClusteringSettings, FieldMap, ReviewSettings
from crosswalk.review.disputes import REASON_LABELS, expected_value, review_band
from matchers import identifiers


def test_field_map_has_exactly_the_fields_in_their_order() -> None:
    fields = dataclasses.fields(FieldMap)
    assert tuple(f.name for f in fields) == vocabulary.FIELD_NAMES
    # A field taking several columns is a list in the config; every other one a column name.
    lists = {f.name for f in fields if f.default_factory is list}
    assert lists == {f.name for f in vocabulary.FIELDS if f.multi}


def test_published_order_orders_every_field_once() -> None:
    assert sorted(vocabulary.PUBLISHED_FIELDS) == sorted(vocabulary.FIELD_NAMES)
    assert len(set(vocabulary.PUBLISHED_FIELDS)) == len(vocabulary.PUBLISHED_FIELDS)
    assert vocabulary.ENTITY_FIELDS == (
        "name",
        "address",
        "city",
        "state",
        "zip",
        "county",
        "facility_type",
        "latitude",
        "longitude",
    )
    assert vocabulary.CSV_FIELDS == ("name", "address", "city", "zip")
    assert {f.type for f in vocabulary.FIELDS} <= {"string", "number"}


def test_schemes_are_the_schemes_with_a_dedicated_normalizer() -> None:
    assert set(vocabulary.SCHEMES) == set(identifiers.KNOWN_SCHEMES)
    assert all(label.strip() for label in vocabulary.SCHEMES.values())


def test_every_conflict_kind_has_a_review_reason_and_every_reason_a_label() -> None:
    assert set(vocabulary.CONFLICT_KINDS) <= set(vocabulary.REVIEW_REASONS)
    assert all(text.strip() for text in vocabulary.CONFLICT_KINDS.values())
    for kind, reason in vocabulary.REVIEW_REASONS.items():
        assert reason.label.strip(), kind
        assert REASON_LABELS[kind] == reason.label
    assert set(REASON_LABELS) == set(vocabulary.REVIEW_REASONS)


def test_queue_order_is_the_chance_of_an_error_times_the_records_moved() -> None:
    assert expected_value(0.5, 3) == 1.5
    assert expected_value(1.0, 1) > expected_value(0.1, 5) > expected_value(0.1, 4)
    assert expected_value(0.2, 0) == 0.2  # a decision moves at least one record


def test_review_defaults_are_the_configs_and_the_queues() -> None:
    defaults = vocabulary.REVIEW_DEFAULTS
    review, clustering = ReviewSettings(), ClusteringSettings()
    assert (review.uncertain_low, review.uncertain_high) == (0.2, 0.9)
    assert (defaults.uncertain_low, defaults.uncertain_high) == (0.2, 0.9)
    assert clustering.large_cluster_size == defaults.large_cluster_size == 6
    # A build whose config JSON says nothing is reviewed with the same band.
    assert review_band({}) == (0.2, 0.9, 6)


def test_importing_the_vocabulary_loads_nothing_but_the_standard_library() -> None:
    code = (
        "import json, sys; before = set(sys.modules); import crosswalk.vocabulary; "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = json.loads(out)
    assert "crosswalk.vocabulary" in loaded
    project = {m for m in loaded if m.split(".")[0] in ("crosswalk", "matchers", "api")}
    assert project <= {"crosswalk", "crosswalk.vocabulary", "crosswalk.errors"}
    third_party = {
        m
        for m in loaded
        if m.split(".")[0] not in sys.stdlib_module_names and m.split(".")[0] != "crosswalk"
    }
    assert not third_party
    assert "numpy" not in loaded and "pandas" not in loaded


def test_change_kinds_are_defined_once_with_every_kind_ids_writes() -> None:
    from crosswalk.artifact import schema

    assert schema.CHANGE_KINDS is vocabulary.CHANGE_KINDS
    # the published enum order (datapackage.json, the release's change counts)
    assert vocabulary.CHANGE_KINDS == (
        "new",
        "merged_into",
        "split_from",
        "retired",
        "members_changed",
        "revived",
    )
    enum = next(c for c in schema.CHANGES.columns if c.name == "change")
    assert enum.enum == vocabulary.CHANGE_KINDS
