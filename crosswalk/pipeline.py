"""The engine's facade: :func:`link` (records in memory → :class:`Linkage`),
:func:`link_frames` (the public ``crosswalk.link``) and :func:`build` (sources → a
published crosswalk).

:func:`link` runs :func:`~crosswalk.plans.link_plan` on a runner; :func:`build` reads the
declared sources, runs :func:`~crosswalk.plans.build_plan` (the linkage, the published
tables' contents and the entity ids) and publishes the crosswalk atomically. The stages
are in :mod:`crosswalk.stages`, the published tables' shapes in
:mod:`crosswalk.artifact.tables`.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crosswalk import __version__, formats, ids
from crosswalk.artifact import schema
from crosswalk.artifact.tables import (
    PreparedTables,
    published_tables,
    sources_table,
    summary_counts,
    with_entity_ids,
)
from crosswalk.artifact.writer import (
    create_database,
    finish_sqlite,
    load_tables,
    merge_tables,
    publish,
    stage_tables,
    write_state,
)
from crosswalk.config import Config, SourceConfig
from crosswalk.errors import Problem, SourceError
from crosswalk.plans import (
    BUILD_LINKAGE_DATASETS,
    LINKAGE_DATASETS,
    PREPARED_DATASETS,
    build_plan,
    link_inputs,
    link_plan,
)
from crosswalk.progress import Steps
from crosswalk.review import Constraints, load_constraints
from crosswalk.runners import Runner, WritesParquet
from crosswalk.runners.local import local_runner, parallel
from crosswalk.sources import LoadedSources, SourceInfo, load_sources, read_raw, to_canonical
from crosswalk.stages.compare import Comparison
from crosswalk.stages.fit import UNFITTED
from crosswalk.stages.kernel.model import Model
from crosswalk.stages.keys import NamedPair
from crosswalk.stages.survivorship import strongest_links
from crosswalk.vocabulary import CSV_FIELDS, RECORD_METHODS


@dataclass
class Linkage:
    """The in-memory result of linking a batch of records."""

    records: pd.DataFrame  # normalized records, positions 0..n-1, with "cluster"
    #: The candidate pairs at or above the lower of the link threshold and the review band's
    #: bottom, those that share an identifier, those a review decision names and those
    #: that are identifier conflicts: l, r, rules, levels, bits, weight, probability,
    #: status, method.
    pairs: pd.DataFrame
    model: Model
    comparisons: list[Comparison]
    conflicts: pd.DataFrame
    #: Identifier columns measured to name one record per source (see
    #: :func:`~crosswalk.stages.conflicts.facility_unique`).
    unique_schemes: list[str] = field(default_factory=list)
    #: The number of candidate pairs blocking found (``pairs`` keeps those that matter).
    candidate_pairs: int = 0
    #: The records' positions in (source, record_id) order (see
    #: :func:`~crosswalk.stages.keys.records_by_key`).
    by_key: np.ndarray | None = None

    def crosswalk(self) -> pd.DataFrame:
        """One row per record, in the records' order, with the columns of ``crosswalk.csv``:
        ``entity_id`` (or the cluster label before ids are assigned), ``source``,
        ``record_id``, ``name``, ``address``, ``city``, ``zip``, ``match_probability`` (of
        the record's strongest kept link; NaN for singletons) and ``method`` (identifier,
        fuzzy or singleton)."""
        key = "entity_id" if "entity_id" in self.records else "cluster"
        cols = [key, "source", "record_id", *CSV_FIELDS]
        table = self.records[cols].rename(columns={key: "entity_id"}).reset_index(drop=True)
        probability, method = strongest_links(self.pairs, len(self.records))
        table["match_probability"] = probability
        table["method"] = np.asarray(RECORD_METHODS, dtype=object)[method]
        return table[[c.name for c in schema.CSV_COLUMNS]]

    def same_entity_pairs(self, left_source: str, right_source: str) -> pd.DataFrame:
        """(record_id of left_source, record_id of right_source) for records that share a cluster."""
        recs = self.records[["source", "record_id", "cluster"]]
        a = recs[recs["source"] == left_source]
        b = recs[recs["source"] == right_source]
        return a.merge(b, on="cluster", suffixes=("_l", "_r"))[["record_id_l", "record_id_r"]]


def _linkage(data: Mapping[str, Any], records: str = "clustered") -> Linkage:
    """The :class:`Linkage` of a run's :data:`LINKAGE_DATASETS` (``records``: the name of
    the clustered records' dataset)."""
    return Linkage(
        data[records],
        data["pairs"],
        data["model"],
        data["comparisons"],
        data["conflicts"],
        data["unique_schemes"],
        data["n_candidates"],
        data["by_key"],
    )


def link(
    records: pd.DataFrame,
    config: Config,
    constraints: Constraints | None = None,
    labels: list[NamedPair] | None = None,
    steps: Steps | None = None,
    runner: Runner | None = None,
) -> Linkage:
    """Link a canonical batch of records (see :mod:`crosswalk.sources`) under ``config``:
    run :func:`~crosswalk.plans.link_plan` on ``runner`` (by default the local one,
    :func:`~crosswalk.runners.local.local_runner`)."""
    data = (runner or local_runner()).run(
        link_plan(config),
        link_inputs(records, constraints, labels),
        LINKAGE_DATASETS,
        steps=steps,
    )
    return _linkage(data)


def read_sources(config: Config) -> dict[str, pd.DataFrame]:
    """Each source of ``config`` read as a build reads it, by source name: every column as
    text, so that ids keep their leading zeros (``pd.read_csv``/``pd.read_excel`` without
    ``dtype=str`` drop them). Pass the result, changed or not, to :func:`link_frames`.
    Raises one :class:`SourceError` listing every problem."""
    frames: dict[str, pd.DataFrame] = {}
    problems: list[Problem] = []
    for src in config.sources:
        try:
            frames[src.name] = read_raw(src, config.base_dir)
        except SourceError as exc:
            problems.extend(exc.problems)
    if problems:
        raise SourceError(problems)
    return frames


def link_frames(
    frames: Mapping[str, pd.DataFrame],
    config: Config,
    constraints: Constraints | None = None,
) -> Linkage:
    """Link in-memory DataFrames, one per source named in ``config``.

    Each frame is mapped to the common fields exactly as the source's file
    would be (``path`` and ``format`` are ignored), so a config written for
    files works unchanged for DataFrames. Entities get freshly minted ids.
    :func:`read_sources` reads the frames as a build does; an id column read as
    numbers (leading zeros lost) gives a warning.
    """
    problems: list[Problem] = []
    parts = []
    for src in config.sources:
        if src.name not in frames:
            problems.append(
                Problem(
                    f"source {src.name!r}",
                    "no DataFrame was given for this source.",
                    f"pass frames={{{src.name!r}: df, ...}} or remove it from the config.",
                )
            )
            continue
        _warn_numeric_ids(frames[src.name], src)
        try:
            parts.append(to_canonical(frames[src.name].copy(), src, f"DataFrame {src.name!r}"))
        except SourceError as exc:
            problems.extend(exc.problems)
    extra = sorted(set(frames) - set(config.source_names()))
    for name in extra:
        problems.append(
            Problem(
                f"DataFrame {name!r}",
                "no source of this name is declared in the config.",
                f"declare it as a [[source]] or use one of {config.source_names()}.",
            )
        )
    if problems:
        raise SourceError(problems)
    records = pd.concat(parts, ignore_index=True)
    for col in {c for p in parts for c in p.columns}:
        if col not in records:
            records[col] = pd.NA
    linkage = link(records, config, constraints=constraints)
    members = linkage.records[["cluster", "source", "record_id"]]
    return _with_entity_ids(linkage, ids.assign_ids(members, None, linkage.by_key))


def _warn_numeric_ids(frame: pd.DataFrame, src: SourceConfig) -> None:
    """Warn when ``frame``'s record id column or an identifier column holds numbers: their
    leading zeros are gone, so the ids differ from those of a build of the file."""
    columns = [src.id_column, *(i.column for i in src.identifiers)]
    for column in dict.fromkeys(columns):
        if column in frame.columns and pd.api.types.is_numeric_dtype(frame[column].dtype):
            problem = Problem(
                f"DataFrame {src.name!r} column {column!r}",
                f"holds numbers ({frame[column].dtype}), so ids have lost any leading zeros "
                "and differ from those of a build of the file.",
                "read the sources with crosswalk.read_sources(config), or pandas with dtype=str.",
            )
            warnings.warn(str(problem), UserWarning, stacklevel=3)


def _with_entity_ids(linkage: Linkage, assignment: ids.IdAssignment) -> Linkage:
    """The linkage whose records carry the entity ids of their clusters (``entity_id``):
    a new records frame sharing the columns of the linkage's."""
    # The members' entity ids, in the records' order (no lookup through the dict).
    records = linkage.records.assign(entity_id=assignment.state.members["entity_id"].array)
    return replace(linkage, records=records)


# --------------------------------------------------------------------------- build


@dataclass
class BuildResult:
    out: Path
    #: The build's linkage; its records carry ``entity_id`` and not the normalized columns
    #: that only comparing reads (:data:`~crosswalk.stages.normalize.COMPARED_ONLY`).
    linkage: Linkage
    sources: list[SourceInfo]
    counts: dict[str, Any]
    changes: pd.DataFrame


def build(
    config: Config,
    out: str | Path,
    *,
    releases: str | Path | None = None,
    review_store: str | Path | None = None,
    progress: bool | None = None,
    runner: Runner | None = None,
) -> BuildResult:
    """Read, link and publish. Returns the build's summary; raises :class:`CrosswalkError` on bad input.
    ``runner``: what runs :func:`~crosswalk.plans.build_plan` (by default the local one,
    :func:`~crosswalk.runners.local.local_runner`; the Spark runner also writes Parquet)."""
    out = Path(out)
    store = (
        Path(review_store)
        if review_store
        else (config.base_dir / config.review.store if config.review.store else None)
    )
    with Steps(10, enabled=progress) as steps:
        with steps.step("reading sources"):
            loaded: LoadedSources = load_sources(config)
        constraints = load_constraints(store) if store and store.exists() else Constraints()
        labels = _training_labels(config)
        inputs = {
            **link_inputs(loaded.records, constraints, labels),
            "releases": Path(releases) if releases is not None else None,
        }
        # The plan's records are the read ones in key order, a copy unless the files were
        # in that order: the read ones are let go now, not held to the end of the build.
        loaded = replace(loaded, records=loaded.records.iloc[:0])
        data = (runner or local_runner(records=len(inputs["records"]))).run(
            build_plan(config), inputs, BUILD_LINKAGE_DATASETS + PREPARED_DATASETS, steps=steps
        )
        del inputs
        assignment: ids.IdAssignment = data["assignment"]
        previous_db: Path | None = data["previous_db"]
        linkage = _with_entity_ids(_linkage(data, "linked"), assignment)
        prepared = PreparedTables(
            data["records_table"],
            data["by_key"],
            data["clusters"],
            data["entities"],
            data["links"],
            data["link_records"],
            data["conflict_rows"],
        )
        del data
        with steps.step("publishing"):
            counts = _publish_outputs(
                out,
                linkage,
                loaded.info,
                config,
                assignment,
                previous_db,
                prepared,
                [*loaded.warnings, *_model_warnings(linkage.model)],
                runner,
            )
        if store is not None:
            with steps.step("queueing disputes"):
                from crosswalk.review import queue_disputes

                counts["open_disputes"] = queue_disputes(out / "crosswalk.sqlite", store)
    counts["timings_s"] = steps.timings
    return BuildResult(out, linkage, loaded.info, counts, assignment.changes)


def _model_warnings(model: Model) -> list[Problem]:
    """A warning when the build had no candidate pairs to fit its model on."""
    if model.trained_on != UNFITTED:
        return []
    return [
        Problem(
            "model",
            "not fitted: the build compared no pairs (one source whose entities hold one "
            "record each, or blocking that pairs nothing), so it keeps its starting values "
            "(docs/engine.md, Score).",
            "link two or more sources, or set max_per_entity above 1 to deduplicate a "
            "source, to fit it; its scores of queries rest on those starting values.",
        )
    ]


def _publish_outputs(
    out: Path,
    linkage: Linkage,
    info: list[SourceInfo],
    config: Config,
    assignment: ids.IdAssignment,
    previous_db: Path | None,
    prepared: PreparedTables,
    warnings: Sequence[Problem] = (),
    runner: Runner | None = None,
) -> dict[str, Any]:
    """Publish a linkage whose records carry entity ids into ``out`` (atomically);
    return the build's summary counts, which begin with the ``warnings`` about its input
    (also published in ``meta``). ``prepared``: what the published tables need of the
    linkage besides the ids (made by :func:`build_plan`)."""
    built_at = datetime.now(UTC).replace(microsecond=0).isoformat()
    counts: dict[str, Any] = {"warnings": [str(w) for w in warnings]}

    def write_files(tmp: Path, records: pd.DataFrame) -> None:
        formats.write_crosswalk_csv(tmp, records)
        title = "Facility crosswalk: " + ", ".join(s.name for s in info)
        sources = formats.source_titles(sources_table(info))
        formats.write_datapackage(tmp, formats.datapackage(title, sources, built_at))
        if len(assignment.changes):
            formats.write_changes_csv(tmp, assignment.changes)

    def load_records(db_path: Path, records: pd.DataFrame) -> None:
        create_database(db_path)
        load_tables(
            db_path,
            {schema.RECORDS.name: records, schema.SOURCES.name: sources_table(info)},
            {schema.RECORDS.name: np.arange(len(records))},  # in key order already
        )
        write_state(db_path, assignment.state)

    def write(tmp: Path) -> None:
        # From the moment the records table is built, two threads work beside this one,
        # which builds the other tables: one writes the CSV files, the other loads the
        # records into SQLite, indexes them and adds the id tables (both mostly outside
        # the GIL). The other tables are then loaded into files of their own, two at
        # once, and moved into the database. Leaving the block waits for every thread,
        # also when something fails.
        db_path = tmp / "crosswalk.sqlite"
        with parallel(2, "write") as pool:
            # The records first: loading them is the longest task.
            records = with_entity_ids(prepared.records, prepared.by_key, linkage)
            files = pool.submit(write_files, tmp, records)
            loading = pool.submit(load_records, db_path, records)
            tables = published_tables(linkage, info, prepared, assignment, records)
            counts.update(summary_counts(linkage, tables, info))

            # The entities on a worker (once the CSV files or the records are done), moved
            # in as soon as the records are in; the links here.
            def entities_in() -> None:
                staged = stage_tables(
                    tmp / "entities.stage.sqlite",
                    {k: tables[k] for k in (schema.ENTITIES.name, schema.IDENTIFIERS.name)},
                    {schema.ENTITIES.name: assignment.cluster_order()},
                )
                loading.result()  # one writer at a time
                merge_tables(db_path, [staged])

            merging = pool.submit(entities_in)
            if isinstance(runner, WritesParquet):
                runner.write_parquet(
                    tmp / "parquet",
                    {
                        "records": records,
                        "entities": tables[schema.ENTITIES.name],
                        "links": tables[schema.LINKS.name],
                    },
                )
            staged = stage_tables(
                tmp / "links.stage.sqlite",
                {k: tables[k] for k in (schema.LINKS.name, schema.CONFLICTS.name)},
            )
            meta = {
                "build_id": uuid.uuid4().hex,
                "built_at": built_at,
                "engine_version": __version__,
                "config": config.to_dict(),
                "counts": counts,
                "model": linkage.model.to_dict(),
                "previous_release": str(previous_db) if previous_db else "",
            }
            merging.result()
            merge_tables(db_path, [staged])
            finish_sqlite(db_path, meta, [s.name for s in info])
            files.result()

    publish(out, write)
    return counts


def _training_labels(config: Config) -> list[NamedPair]:
    path = config.model.training_pairs
    if not path:
        return []
    from crosswalk.evaluate import parse_side, read_labelled_pairs

    m = config.model
    if m.training_left and m.training_right:
        return read_labelled_pairs(
            config.base_dir / path, parse_side(m.training_left), parse_side(m.training_right)
        )

    return read_labelled_pairs(config.base_dir / path)
