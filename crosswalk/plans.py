"""The engine's two plans: :func:`link_plan` (records → linkage) and :func:`build_plan`
(the linkage, the published tables' contents and the entity ids).

Each stage below is a module-level function of whole datasets (or, for normalize, of a
batch of rows) and plain-data params the plan takes from the config; none changes its
inputs. Which thread runs it, and what runs beside what, is the runner's schedule
(:data:`crosswalk.runners.local.LOCAL`); ``build_plan(config).describe(LOCAL)`` prints
the stages with their lanes, as a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crosswalk import ids
from crosswalk.artifact.tables import prepare_entities, prepare_links
from crosswalk.config import Config
from crosswalk.plan import Plan, Stage
from crosswalk.review import Constraints
from crosswalk.stages.block import BlockParams, block, pair_count
from crosswalk.stages.cluster import cluster_records
from crosswalk.stages.compare import columns_of, compare_candidates, comparisons_for, convert
from crosswalk.stages.conflicts import CONFLICT_LOW
from crosswalk.stages.explain import explanations as explain_pairs
from crosswalk.stages.fit import fit, u_probabilities
from crosswalk.stages.kernel.codes import sort_order
from crosswalk.stages.keys import NamedPair, decisions, records_by_key
from crosswalk.stages.normalize import normalize_batch, published_records
from crosswalk.stages.prune import prune
from crosswalk.stages.score import score_pairs, term_counts
from crosswalk.stages.survivorship import record_columns_in_key_order, records_table_of

#: The datasets a run of the link plan is given.
LINK_INPUTS = ("records", "labels", "constraints")
#: What :func:`crosswalk.pipeline.link` asks of the plan to make its
#: :class:`~crosswalk.pipeline.Linkage`.
LINKAGE_DATASETS = (
    "clustered",
    "pairs",
    "model",
    "comparisons",
    "conflicts",
    "unique_schemes",
    "n_candidates",
    "by_key",
)


def floor(config: Config) -> float:
    """No pair under this probability is linked by its score, published for it or queued
    for review: only decisions and shared identifiers carry such pairs."""
    return min(config.review.uncertain_low, config.model.link_threshold)


def reach(config: Config) -> float:
    """The probability down to which a pair is still kept when it is the best candidate of
    one of its records (:func:`~crosswalk.stages.score.score_pairs`), and published, for
    the review queue, when neither record has a link
    (:func:`~crosswalk.artifact.tables.prepare_links`): :data:`~crosswalk.stages.conflicts.
    CONFLICT_LOW`, under which names and addresses disagree. Never above :func:`floor`."""
    return min(floor(config), CONFLICT_LOW)


def link_plan(config: Config) -> Plan:
    """The stages of :func:`crosswalk.pipeline.link`, their datasets, and their params
    from ``config``."""
    limits = {s.name: s.max_per_entity for s in config.sources}
    within = frozenset(k for k, v in limits.items() if v != 1)
    m = config.model
    return Plan(
        (
            Stage(
                "normalize",
                ("records",),
                ("normalized",),
                normalize_batch,
                "rowwise",
                params={"rules": config.normalize_rules()},
                step="normalizing",
            ),
            Stage(
                "comparisons",
                ("normalized",),
                ("comparisons",),
                comparisons_for,
                params={"settings": config.comparisons},
            ),
            Stage(
                "columns",
                ("normalized",),
                ("columns",),
                columns_of,
                params={"settings": config.comparisons},
            ),
            # Beside blocking: what does not depend on the candidate pairs.
            Stage("convert", ("columns",), ("converted",), convert),
            Stage(
                "u",
                ("normalized", "comparisons", "converted"),
                ("u",),
                u_probabilities,
                params={"sample_pairs": m.u_sample_pairs, "seed": m.seed, "within": within},
                parallel=True,
            ),
            Stage(
                "term_counts", ("normalized", "comparisons", "converted"), ("terms",), term_counts
            ),
            Stage("key_order", ("normalized",), ("by_key",), records_by_key),
            Stage(
                "block",
                ("normalized", "columns"),
                ("candidates",),
                block,
                params={
                    "settings": BlockParams.of(config.blocking),
                    "same_source_ok": {k: v != 1 for k, v in limits.items()},
                },
                step="blocking",
                parallel=True,
            ),
            Stage("count", ("candidates",), ("n_candidates",), pair_count),
            Stage(
                "compare",
                ("converted", "candidates", "comparisons"),
                ("levels", "reach", "em_levels", "sample"),
                compare_candidates,
                params={"em_sample_pairs": m.em_sample_pairs, "seed": m.seed},
                step="comparing",
                parallel=True,
            ),
            Stage(
                "fit",
                (
                    "em_levels",
                    "u",
                    "normalized",
                    "comparisons",
                    "converted",
                    "n_candidates",
                    "labels",
                    "decisions",
                ),
                ("model",),
                fit,
                params={
                    "em_max_iterations": m.em_max_iterations,
                    "em_tolerance": m.em_tolerance,
                    "within": within,
                },
                step="estimating the model",
                parallel=True,
            ),
            Stage("decisions", ("normalized", "constraints"), ("decisions",), decisions),
            Stage(
                "prune",
                (
                    "candidates",
                    "levels",
                    "reach",
                    "em_levels",
                    "sample",
                    "converted",
                    "comparisons",
                    "model",
                    "decisions",
                ),
                ("kept", "kept_levels"),
                prune,
                params={"floor": reach(config)},
                step="comparing names",
                parallel=True,
            ),
            Stage(
                "score",
                ("kept", "kept_levels", "terms", "model", "normalized", "comparisons", "decisions"),
                ("scored", "id_conflicts", "unique_schemes"),
                score_pairs,
                params={"floor": floor(config), "reach": reach(config)},
                step="scoring",
            ),
            Stage(
                "cluster",
                ("scored", "normalized", "id_conflicts", "decisions"),
                ("pairs", "clustered", "conflicts"),
                cluster_records,
                params={"limits": limits, "threshold": m.link_threshold},
                step="clustering",
            ),
        ),
        inputs=LINK_INPUTS,
    )


def link_inputs(
    records: pd.DataFrame,
    constraints: Constraints | None,
    labels: Sequence[NamedPair] | None,
) -> dict[str, Any]:
    """The :data:`LINK_INPUTS` of a run: the records numbered 0..n-1 in (source, record_id)
    order, the labelled pairs with the must-link decisions, and the decisions.

    Numbering the records by their keys, not by the order of the files' rows, makes every
    choice that the stages break by position (samples, pruning, equal weights, survivors)
    a choice by key: a shuffled source publishes the same entities and links."""
    constraints = constraints or Constraints()
    order = sort_order(records, ["source", "record_id"])
    return {
        "records": records.reset_index(drop=True)
        if order is None
        else records.take(order).reset_index(drop=True),
        "labels": list(labels or []) + list(constraints.must_link),
        "constraints": constraints,
    }


#: What :func:`crosswalk.pipeline.build` asks of its plan for its linkage: the
#: :data:`LINKAGE_DATASETS` with the clustered records as published (``linked``: without
#: the columns only comparing reads).
BUILD_LINKAGE_DATASETS = tuple("linked" if d == "clustered" else d for d in LINKAGE_DATASETS)

#: What :func:`crosswalk.pipeline.build` asks of its plan besides the linkage.
PREPARED_DATASETS = (
    "records_table",
    "clusters",
    "entities",
    "links",
    "link_records",
    "conflict_rows",
    "assignment",
    "previous_db",
)


def build_plan(config: Config) -> Plan:
    """:func:`link_plan`, and what the published tables need: the clustered records
    without the columns only comparing reads (``linked``), the records' columns, the
    links' explanations, the links and conflicts, the records table, the entities, and
    the entity ids (the runner makes the first five beside the linkage and the ids)."""
    linking = link_plan(config)
    return Plan(
        (
            *linking.stages,
            Stage("published", ("clustered",), ("linked",), published_records),
            Stage(
                "record_columns",
                ("normalized", "by_key"),
                ("record_columns",),
                record_columns_in_key_order,
            ),
            Stage("explain", ("scored", "comparisons"), ("explanations",), explain_pairs),
            Stage(
                "links",
                ("linked", "pairs", "conflicts", "explanations"),
                ("links", "link_records", "conflict_rows"),
                prepare_links,
                params={"floor": floor(config)},
            ),
            Stage(
                "records_table",
                ("linked", "pairs", "by_key", "record_columns"),
                ("records_table",),
                records_table_of,
            ),
            Stage(
                "entities",
                ("linked", "records_table", "by_key"),
                ("clusters", "entities"),
                prepare_entities,
                params={"sources": [s.name for s in config.sources]},
            ),
            Stage(
                "previous",
                ("releases",),
                ("previous_state", "previous_db"),
                read_previous_release,
                step="assigning ids",
            ),
            Stage(
                "ids",
                ("linked", "by_key", "previous_state"),
                ("assignment",),
                assign_ids,
                step="assigning ids",
            ),
        ),
        inputs=(*linking.inputs, "releases"),
    )


def read_previous_release(releases: Path | None) -> tuple[ids.IdState | None, Path | None]:
    """The id state of the latest release under ``releases`` (when given), and that
    release's database: the plan's one stage that reads a file."""
    previous_db = None
    if releases is not None:
        from crosswalk.release import latest_release_db

        previous_db = latest_release_db(releases)
    return ids.load_state(previous_db), previous_db


def assign_ids(
    records: pd.DataFrame, by_key: np.ndarray, previous: ids.IdState | None
) -> ids.IdAssignment:
    """The entity ids of the records' clusters, carried over from the previous release's
    id state (``None`` for a first build)."""
    members = records[["cluster", "source", "record_id"]]
    return ids.assign_ids(members, previous, by_key)
