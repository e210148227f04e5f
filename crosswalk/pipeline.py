"""The build: sources → normalize → block → compare → score → cluster → ids → publish.

:func:`link` runs the stages in memory over a canonical batch of records and
returns a :class:`Linkage`; :func:`build` reads the declared sources, links
them and publishes the crosswalk atomically.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crosswalk import __version__, formats, ids
from crosswalk.artifact import schema
from crosswalk.artifact.writer import (
    create_database,
    finish_sqlite,
    load_tables,
    merge_tables,
    publish,
    stage_tables,
    write_state,
)
from crosswalk.config import Config, ModelSettings
from crosswalk.errors import Problem, SourceError
from crosswalk.plan import Plan, Stage
from crosswalk.progress import Steps
from crosswalk.review import Constraints, load_constraints
from crosswalk.runners import Runner
from crosswalk.runners.local import local_runner, parallel
from crosswalk.sources import LoadedSources, SourceInfo, load_sources, to_canonical
from crosswalk.stages.block import BlockParams, candidate_pairs
from crosswalk.stages.cluster import CUT, LINKED, MUST, cluster
from crosswalk.stages.compare import (
    Comparison,
    Strongest,
    compare_positions,
    compared_columns,
    comparisons_for,
)
from crosswalk.stages.comparisons import Settings as ComparisonSettings
from crosswalk.stages.conflicts import (
    CONFLICT_HIGH,
    identifier_conflicts,
    identifier_evidence,
    split_conflicts,
)
from crosswalk.stages.explain import explanations as explain_pairs
from crosswalk.stages.kernel.codes import dense_labels, key_order
from crosswalk.stages.kernel.columns import Columns
from crosswalk.stages.kernel.model import Model
from crosswalk.stages.kernel.parallel import Parallel
from crosswalk.stages.model import (
    RecordTerms,
    Scores,
    build_model,
    cross_pair_count,
    em_sample,
    estimate_u,
    fit_em,
    level_frequencies,
    level_patterns,
    m_from_labels,
    own_frequencies,
    pair_frequencies,
    score,
)
from crosswalk.stages.normalize import normalize_batch
from crosswalk.stages.prune import always_kept, reachable
from crosswalk.stages.survivorship import (
    id_schemes,
    record_columns_in_key_order,
    records_table,
    survivorship,
)
from crosswalk.vocabulary import NID_PREFIX


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
    #: The records' positions in (source, record_id) order (see :func:`key_order`).
    by_key: np.ndarray | None = None

    def crosswalk(self) -> pd.DataFrame:
        """One row per record: ``entity_id`` (or the cluster label before ids are assigned),
        ``source``, ``record_id``, ``name``, ``address``, ``city``, ``zip``."""
        key = "entity_id" if "entity_id" in self.records else "cluster"
        cols = [key, "source", "record_id", "name", "address", "city", "zip"]
        return self.records[cols].rename(columns={key: "entity_id"}).reset_index(drop=True)

    def same_entity_pairs(self, left_source: str, right_source: str) -> pd.DataFrame:
        """(record_id of left_source, record_id of right_source) for records that share a cluster."""
        recs = self.records[["source", "record_id", "cluster"]]
        a = recs[recs["source"] == left_source]
        b = recs[recs["source"] == right_source]
        return a.merge(b, on="cluster", suffixes=("_l", "_r"))[["record_id_l", "record_id_r"]]


def _positions(
    records: pd.DataFrame, pairs: Sequence[tuple[tuple[str, str], tuple[str, str]]]
) -> list[tuple[int, int]]:
    if not pairs:
        return []
    index = {
        (s, r): i
        for i, (s, r) in enumerate(zip(records["source"], records["record_id"], strict=True))
    }
    out = []
    for a, b in pairs:
        if a in index and b in index:
            out.append((index[a], index[b]))
    return out


# --------------------------------------------------------------------------- the link plan
# Each stage below is a module-level function of whole datasets (or, for normalize, of a
# batch of rows) and plain-data params; none changes its inputs. Which thread runs it,
# and what runs beside what, is the runner's schedule (crosswalk.runners.local.LOCAL).

#: The datasets a run of the link plan is given.
LINK_INPUTS = ("records", "labels", "constraints")
#: What :func:`link` asks of the plan to make its :class:`Linkage`.
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


def _columns(frame: pd.DataFrame, *, settings: Sequence[ComparisonSettings]) -> Columns:
    """The columns the chosen comparisons read, not converted yet."""
    return Columns(frame[compared_columns(frame, settings)])


def _convert(columns: Columns) -> Columns:
    """The compared columns, converted once for every comparison (and read by blocking)."""
    return columns.prepared(columns.names())


def _u(
    frame: pd.DataFrame,
    comparisons: list[Comparison],
    columns: Columns,
    *,
    sample_pairs: int,
    seed: int,
    within: frozenset[str],
    parallel: Parallel,
) -> dict[str, np.ndarray]:
    return estimate_u(
        frame, comparisons, sample_pairs, seed, within, columns=columns, parallel=parallel
    )


def _term_counts(
    frame: pd.DataFrame, comparisons: list[Comparison], columns: Columns
) -> dict[str, RecordTerms]:
    """Each record's own term counts, on the converted columns' codes (not factorized again)."""
    return own_frequencies(frame, [c.tf_column for c in comparisons if c.tf_column], columns)


def _key_order(frame: pd.DataFrame) -> np.ndarray:
    return key_order(frame, ["source", "record_id"])


def _block(
    frame: pd.DataFrame,
    columns: Columns,
    *,
    settings: BlockParams,
    same_source_ok: dict[str, bool],
    parallel: Parallel,
) -> pd.DataFrame:
    # Reads the columns it shares with the comparisons from their conversion (under way on
    # the side lane), not factorizing them again.
    return candidate_pairs(frame, settings, same_source_ok, columns, parallel=parallel)


def _count(pairs: pd.DataFrame) -> int:
    return len(pairs)


def _compare(
    columns: Columns,
    pairs: pd.DataFrame,
    comparisons: list[Comparison],
    *,
    em_sample_pairs: int,
    seed: int,
    parallel: Parallel,
) -> tuple[pd.DataFrame, dict[str, np.ndarray], pd.DataFrame, np.ndarray | None]:
    """The candidates' levels in every comparison but the deferred ones (``levels``), the
    strongest level each pair can reach in those (``reach``), and the levels of the
    EM's sample (``em_levels``, every comparison; all pairs when ``sample`` is None)."""
    lpos, rpos = pairs["l"].to_numpy(), pairs["r"].to_numpy()
    # The EM is fitted on a sample of the candidates when there are many; the costly
    # comparisons of the other pairs wait for the fitted model (see _prune).
    sample = em_sample(len(pairs), em_sample_pairs, seed)
    pending = [c for c in comparisons if c.deferred] if sample is not None else []
    # A costly comparison waits, but its cheap part gives the strongest level each pair
    # can reach in it.
    levels = compare_positions(
        columns,
        lpos,
        rpos,
        [c for c in comparisons if c not in pending] + [Strongest(c) for c in pending],
        parallel,
    )
    reach = {c.name: levels.pop(c.name).to_numpy() for c in pending}
    if sample is None:
        return levels, reach, levels, sample
    em_levels = levels.take(sample).reset_index(drop=True)
    sampled = compare_positions(columns, lpos[sample], rpos[sample], pending, parallel)
    for c in pending:
        em_levels[c.name] = sampled[c.name].to_numpy()
    return levels, reach, em_levels[[c.name for c in comparisons]], sample


def _fit(
    em_levels: pd.DataFrame,
    u: dict[str, np.ndarray],
    frame: pd.DataFrame,
    comparisons: list[Comparison],
    columns: Columns,
    n_candidates: int,
    labels: Sequence[tuple[tuple[str, str], tuple[str, str]]],
    *,
    settings: ModelSettings,
    within: frozenset[str],
    parallel: Parallel,
) -> Model:
    """The model: m by EM on the sample's primary comparisons (the stand-ins' m weighted
    by its match probability), or from the labelled pairs when there are 20 or more."""
    primary = [c for c in comparisons if c.stands_in_for is None]
    patterns = level_patterns(em_levels, [c.name for c in primary])
    m, lam, iterations = fit_em(
        em_levels,
        primary,
        max_iterations=settings.em_max_iterations,
        tolerance=settings.em_tolerance,
        patterns=patterns,
    )
    n_cross = cross_pair_count(frame["source"], within)
    stand_ins = [c for c in comparisons if c.stands_in_for is not None]
    if stand_ins:
        # A stand-in is not part of the EM (it would count the place twice): its m is the
        # level distribution among the candidates, weighted by the fitted match probability.
        # That probability depends on the primary levels only: score each distinct vector once.
        first = build_model(primary, m, u, lam, n_candidates, n_cross, iterations, "em")
        vectors = pd.DataFrame(patterns.levels, columns=[c.name for c in primary])
        posterior = score(vectors, first).match_probability[patterns.index]
        for c in stand_ins:
            m[c.name] = level_frequencies(em_levels[c.name].to_numpy(), len(c.levels), posterior)
        del posterior
    del patterns
    trained_on = "em"
    label_pos = _positions(frame, labels)
    if len(label_pos) >= 20:
        la = np.array([a for a, _ in label_pos])
        lb = np.array([b for _, b in label_pos])
        levels = compare_positions(columns, la, lb, comparisons, parallel)
        m = m_from_labels(levels, comparisons)
        trained_on = f"labels ({len(label_pos)} pairs)"
    return build_model(comparisons, m, u, lam, n_candidates, n_cross, iterations, trained_on)


@dataclass(frozen=True)
class Decisions:
    """The review decisions' pairs, as record positions."""

    must: list[tuple[int, int]]
    cannot: list[tuple[int, int]]

    @property
    def constrained(self) -> list[tuple[int, int]]:
        return self.must + self.cannot


def _decisions(frame: pd.DataFrame, constraints: Constraints) -> Decisions:
    return Decisions(
        _positions(frame, constraints.must_link), _positions(frame, constraints.cannot_link)
    )


def _prune(
    pairs: pd.DataFrame,
    levels: pd.DataFrame,
    reach: dict[str, np.ndarray],
    em_levels: pd.DataFrame,
    sample: np.ndarray | None,
    columns: Columns,
    comparisons: list[Comparison],
    model: Model,
    decisions: Decisions,
    *,
    floor: float,
    parallel: Parallel,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The candidate pairs that can reach the probability ``floor``, with every comparison's
    levels: the deferred comparisons missing from ``levels`` are made for them, or taken
    from ``em_levels`` for the pairs of the EM's ``sample``.

    The pairs whose ceiling is under the floor are dropped before they are compared (see
    :func:`~crosswalk.stages.prune.reachable`).
    """
    present = [c.name for c in comparisons if c.name in levels]
    todo = [c for c in comparisons if c.name not in levels]
    kept = reachable(
        pairs,
        levels,
        reach,
        present,
        [c.name for c in todo],
        model,
        floor,
        len(columns),
        decisions.constrained,
        CONFLICT_HIGH,
    )
    pairs = pairs.take(kept).reset_index(drop=True)
    out = {name: levels[name].to_numpy()[kept] for name in present}
    if todo:
        # The EM's sample was compared in full: its levels are reused.
        assert sample is not None
        sampled = np.zeros(len(levels), dtype=bool)
        sampled[sample] = True
        reuse = sampled[kept]
        del sampled
        fresh = compare_positions(
            columns, pairs["l"].to_numpy()[~reuse], pairs["r"].to_numpy()[~reuse], todo, parallel
        )
        at = np.searchsorted(sample, kept[reuse])
        for c in todo:
            lv = np.empty(len(kept), dtype="int8")
            lv[reuse] = em_levels[c.name].to_numpy()[at]
            lv[~reuse] = fresh[c.name].to_numpy()
            out[c.name] = lv
        del fresh
    return pairs, pd.DataFrame({c.name: out[c.name] for c in comparisons}, copy=False)


def _score(
    pairs: pd.DataFrame,
    levels: pd.DataFrame,
    per_record: dict[str, RecordTerms],
    model: Model,
    frame: pd.DataFrame,
    comparisons: list[Comparison],
    decisions: Decisions,
    *,
    floor: float,
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """The scored pairs (the rows of :attr:`Linkage.pairs` before clustering gives them
    their status), the identifier conflicts, and the facility-unique identifier columns."""
    lpos, rpos = pairs["l"].to_numpy(), pairs["r"].to_numpy()
    frequencies = pair_frequencies(
        {col: v.take(lpos) for col, v in per_record.items()},
        {col: v.take(rpos) for col, v in per_record.items()},
        len(frame),
    )
    scores = score(levels, model, frequencies=frequencies)
    del frequencies
    decisive, id_agree, id_disagree, maybe, fuzzy = identifier_evidence(
        frame, [c.name for c in comparisons], levels, scores.bits, model.prior_bits
    )
    # The pairs at or above the floor, those always kept, and those whose identifiers
    # differ where names and addresses agree (possible conflicts).
    keep = scores.match_probability >= floor
    keep |= always_kept(pairs, levels, len(frame), decisions.constrained)
    keep[maybe[id_disagree[maybe] & (fuzzy > CONFLICT_HIGH)]] = True
    if keep.all():
        pairs = pairs.copy(deep=False)  # a new frame: the columns below are its own
    else:
        kept = np.flatnonzero(keep)
        pairs = pairs.take(kept).reset_index(drop=True)
        levels = levels.take(kept).reset_index(drop=True)
        scores = Scores(
            scores.bits.take(kept).reset_index(drop=True),
            scores.match_weight[kept],
            scores.match_probability[kept],
        )
        id_agree, id_disagree = id_agree[kept], id_disagree[kept]
        fuzzy = fuzzy[keep[maybe]]
        maybe = np.flatnonzero(id_agree | id_disagree)
        del kept
    del keep
    # Columns are added one by one (no concatenated copy of the pairs); the levels and
    # bits columns share the memory of the frames compare and score returned.
    for col in levels.columns:
        pairs[f"lvl:{col}"] = levels[col].to_numpy()
    for col in scores.bits.columns:
        pairs[f"bits:{col}"] = scores.bits[col].to_numpy()
    del levels
    pairs["match_weight"] = scores.match_weight
    pairs["match_probability"] = scores.match_probability
    del scores
    pairs["method"] = _labels(id_agree.astype("int8"), ["fuzzy", "identifier"])
    conflicts = identifier_conflicts(
        pairs, frame, maybe, fuzzy, id_agree[maybe], id_disagree[maybe], decisive
    )
    return pairs, conflicts, decisive


def _cluster(
    scored: pd.DataFrame,
    frame: pd.DataFrame,
    conflicts: pd.DataFrame,
    decisions: Decisions,
    *,
    limits: dict[str, int],
    threshold: float,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The pairs with their ``status``, the records with their ``cluster``, and the
    conflicts with the clusters' splits: new frames sharing their inputs' columns."""
    result = cluster(
        len(frame),
        frame["source"].to_numpy(),
        limits,
        scored,
        threshold,
        must_link=decisions.must,
        cannot_link=decisions.cannot,
    )
    pairs = scored.assign(status=result.status)
    records = frame.assign(cluster=result.labels)
    conflicts = pd.concat(
        [conflicts, split_conflicts(result.splits, result.decision_conflicts, pairs, records)],
        ignore_index=True,
    )
    return pairs, records, conflicts


def _floor(config: Config) -> float:
    """No pair under this probability is linked by its score, published for it or queued
    for review: only decisions and shared identifiers carry such pairs."""
    return min(config.review.uncertain_low, config.model.link_threshold)


def link_plan(config: Config) -> Plan:
    """The stages of :func:`link`, their datasets, and their params from ``config``."""
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
                _columns,
                params={"settings": config.comparisons},
            ),
            # Beside blocking: what does not depend on the candidate pairs.
            Stage("convert", ("columns",), ("converted",), _convert),
            Stage(
                "u",
                ("normalized", "comparisons", "converted"),
                ("u",),
                _u,
                params={"sample_pairs": m.u_sample_pairs, "seed": m.seed, "within": within},
                parallel=True,
            ),
            Stage(
                "term_counts", ("normalized", "comparisons", "converted"), ("terms",), _term_counts
            ),
            Stage("key_order", ("normalized",), ("by_key",), _key_order),
            Stage(
                "block",
                ("normalized", "columns"),
                ("candidates",),
                _block,
                params={
                    "settings": BlockParams.of(config.blocking),
                    "same_source_ok": {k: v != 1 for k, v in limits.items()},
                },
                step="blocking",
                parallel=True,
            ),
            Stage("count", ("candidates",), ("n_candidates",), _count),
            Stage(
                "compare",
                ("converted", "candidates", "comparisons"),
                ("levels", "reach", "em_levels", "sample"),
                _compare,
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
                ),
                ("model",),
                _fit,
                params={"settings": m, "within": within},
                step="estimating the model",
                parallel=True,
            ),
            Stage("decisions", ("normalized", "constraints"), ("decisions",), _decisions),
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
                _prune,
                params={"floor": _floor(config)},
                step="comparing names",
                parallel=True,
            ),
            Stage(
                "score",
                ("kept", "kept_levels", "terms", "model", "normalized", "comparisons", "decisions"),
                ("scored", "id_conflicts", "unique_schemes"),
                _score,
                params={"floor": _floor(config)},
                step="scoring",
            ),
            Stage(
                "cluster",
                ("scored", "normalized", "id_conflicts", "decisions"),
                ("pairs", "clustered", "conflicts"),
                _cluster,
                params={"limits": limits, "threshold": m.link_threshold},
                step="clustering",
            ),
        ),
        inputs=LINK_INPUTS,
    )


def _link_inputs(
    records: pd.DataFrame,
    constraints: Constraints | None,
    labels: Sequence[tuple[tuple[str, str], tuple[str, str]]] | None,
) -> dict[str, Any]:
    constraints = constraints or Constraints()
    return {
        "records": records.reset_index(drop=True),
        "labels": list(labels or []) + list(constraints.must_link),
        "constraints": constraints,
    }


def _linkage(data: Mapping[str, Any]) -> Linkage:
    """The :class:`Linkage` of a run's :data:`LINKAGE_DATASETS`."""
    return Linkage(
        data["clustered"],
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
    labels: list[tuple[tuple[str, str], tuple[str, str]]] | None = None,
    steps: Steps | None = None,
    runner: Runner | None = None,
) -> Linkage:
    """Link a canonical batch of records (see :mod:`crosswalk.sources`) under ``config``:
    run :func:`link_plan` on ``runner`` (by default the local one,
    :func:`~crosswalk.runners.local.local_runner`)."""
    data = (runner or local_runner()).run(
        link_plan(config),
        _link_inputs(records, constraints, labels),
        LINKAGE_DATASETS,
        steps=steps,
    )
    return _linkage(data)


def _labels(codes: np.ndarray, names: list[str]) -> pd.Series:
    """A categorical column of ``names`` from small integer codes: one byte per pair, where
    text would take about twenty (13M candidate pairs at 1M records per side)."""
    return pd.Series(pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(names)))


def link_frames(
    frames: Mapping[str, pd.DataFrame],
    config: Config,
    constraints: Constraints | None = None,
) -> Linkage:
    """Link in-memory DataFrames, one per source named in ``config``.

    Each frame is mapped to the common fields exactly as the source's file
    would be (``path`` and ``format`` are ignored), so a config written for
    files works unchanged for DataFrames. Entities get freshly minted ids.
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
    linkage: Linkage
    sources: list[SourceInfo]
    counts: dict[str, Any]
    changes: pd.DataFrame


def _assign_ids(
    records: pd.DataFrame, by_key: np.ndarray, releases: Path | None
) -> tuple[ids.IdAssignment, Path | None]:
    """The entity ids of the records' clusters, carried over from the latest release under
    ``releases`` (when given), and that release's database."""
    previous_db = None
    if releases is not None:
        from crosswalk.release import latest_release_db

        previous_db = latest_release_db(releases)
    members = records[["cluster", "source", "record_id"]]
    return ids.assign_ids(members, ids.load_state(previous_db), by_key), previous_db


def _records_table(
    records: pd.DataFrame, pairs: pd.DataFrame, by_key: np.ndarray, columns: pd.DataFrame
) -> pd.DataFrame:
    return records_table(_Linked(records, pairs), by_key, columns)


@dataclass
class _Linked:
    """What :func:`records_table` reads of a linkage."""

    records: pd.DataFrame
    pairs: pd.DataFrame


#: What :func:`build` asks of its plan besides the linkage.
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
    """:func:`link_plan`, and what the published tables need: the records' columns, the
    links' explanations, the links and conflicts, the records table, the entities, and
    the entity ids (the runner makes the first five beside the linkage and the ids)."""
    linking = link_plan(config)
    return Plan(
        (
            *linking.stages,
            Stage(
                "record_columns",
                ("normalized", "by_key"),
                ("record_columns",),
                record_columns_in_key_order,
            ),
            Stage("explain", ("scored", "comparisons"), ("explanations",), explain_pairs),
            Stage(
                "links",
                ("clustered", "pairs", "conflicts", "explanations"),
                ("links", "link_records", "conflict_rows"),
                _prepare_links,
                params={"floor": _floor(config)},
            ),
            Stage(
                "records_table",
                ("clustered", "pairs", "by_key", "record_columns"),
                ("records_table",),
                _records_table,
            ),
            Stage(
                "entities",
                ("clustered", "records_table", "by_key"),
                ("clusters", "entities"),
                _prepare_entities,
                params={"sources": [s.name for s in config.sources]},
            ),
            Stage(
                "ids",
                ("clustered", "by_key", "releases"),
                ("assignment", "previous_db"),
                _assign_ids,
                step="assigning ids",
            ),
        ),
        inputs=(*linking.inputs, "releases"),
    )


def build(
    config: Config,
    out: str | Path,
    *,
    releases: str | Path | None = None,
    review_store: str | Path | None = None,
    progress: bool | None = None,
) -> BuildResult:
    """Read, link and publish. Returns the build's summary; raises :class:`CrosswalkError` on bad input."""
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
        data = local_runner().run(
            build_plan(config),
            {
                **_link_inputs(loaded.records, constraints, labels),
                "releases": Path(releases) if releases is not None else None,
            },
            LINKAGE_DATASETS + PREPARED_DATASETS,
            steps=steps,
        )
        assignment: ids.IdAssignment = data["assignment"]
        previous_db: Path | None = data["previous_db"]
        linkage = _with_entity_ids(_linkage(data), assignment)
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
                loaded.warnings,
            )
        if store is not None:
            with steps.step("queueing disputes"):
                from crosswalk.review import queue_disputes

                counts["open_disputes"] = queue_disputes(out / "crosswalk.sqlite", store)
    counts["timings_s"] = steps.timings
    return BuildResult(out, linkage, loaded.info, counts, assignment.changes)


def _publish_outputs(
    out: Path,
    linkage: Linkage,
    info: list[SourceInfo],
    config: Config,
    assignment: ids.IdAssignment,
    previous_db: Path | None,
    prepared: PreparedTables,
    warnings: Sequence[Problem] = (),
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


def _training_labels(config: Config) -> list[tuple[tuple[str, str], tuple[str, str]]]:
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


def sources_table(info: list[SourceInfo]) -> pd.DataFrame:
    """The published ``sources`` table: each source file's provenance."""
    return pd.DataFrame(
        [
            {
                "name": s.name,
                "publisher": s.publisher,
                "title": s.title,
                "extracted": s.extracted,
                "path": Path(s.path).name,
                "sha256": s.sha256,
                "rows": s.rows,
            }
            for s in info
        ]
    )


@dataclass
class PreparedTables:
    """The published tables' contents that do not depend on the entity ids, made from a
    linkage's clusters (the stages :func:`build_plan` adds) while the ids are assigned."""

    #: :func:`records_table`, in (source, record_id) order.
    records: pd.DataFrame
    #: The records' positions in that order.
    by_key: np.ndarray
    #: The clusters, ascending.
    clusters: np.ndarray
    #: The ``entities`` table without ``entity_id``, one row per cluster, in ``clusters`` order.
    entities: pd.DataFrame
    #: The ``links`` table without ``entity_id``.
    links: pd.DataFrame
    #: Per link, the position of its left record where the link joins an entity, else -1.
    link_records: np.ndarray
    conflicts: pd.DataFrame


def _prepare_entities(
    records: pd.DataFrame, table: pd.DataFrame, by_key: np.ndarray, *, sources: list[str]
) -> tuple[np.ndarray, pd.DataFrame]:
    """The clusters, ascending (numbered as the ids number them,
    ``IdAssignment.clusters``), and their entities, from the records table ``table``."""
    clusters, members = dense_labels(records["cluster"].to_numpy(dtype=np.int64))
    return clusters, survivorship(table, sources, members[by_key], len(clusters))


def with_entity_ids(records: pd.DataFrame, by_key: np.ndarray, linkage: Linkage) -> pd.DataFrame:
    """The prepared records table (:func:`records_table`) with its ``entity_id`` column,
    from the linkage's records: a new frame (sharing the columns), since other threads may
    still be reading the prepared one (the survivorship)."""
    out = records.copy(deep=False)
    out.insert(2, "entity_id", linkage.records["entity_id"].array.take(by_key))
    return out


def _prepare_links(
    recs: pd.DataFrame,
    pairs: pd.DataFrame,
    c: pd.DataFrame,
    explanations: pd.Series,
    *,
    floor: float,
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """The ``links`` table without ``entity_id``, each link's left record where it joins
    an entity (else -1), and the ``conflicts`` table, from the clustered records, their
    pairs, conflicts and the pairs' explanations."""
    # Which links to publish: kept, cut, decided, uncertain-or-better, and those sharing an identifier.
    publish_mask = (
        (pairs["status"] != "below_threshold")
        | (pairs["match_probability"] >= floor)
        | (pairs["method"] == "identifier")
    )
    shown = ["l", "r", "match_probability", "match_weight", "method", "status"]
    pub = pairs[shown][publish_mask].reset_index(drop=True)
    left, right = pub["l"].to_numpy(dtype=np.int64), pub["r"].to_numpy(dtype=np.int64)
    links = pd.DataFrame(
        {
            "link_id": np.arange(1, len(pub) + 1),
            "source_l": recs["source"].array.take(left),
            "record_id_l": recs["record_id"].array.take(left),
            "source_r": recs["source"].array.take(right),
            "record_id_r": recs["record_id"].array.take(right),
            "match_probability": pub["match_probability"].round(6),
            "match_weight": pub["match_weight"].round(4),
            "method": pub["method"],
            "status": pub["status"],
            "explanation": explanations[publish_mask.to_numpy()].reset_index(drop=True),
        }
    )
    joined = pub["status"].isin([LINKED, MUST]).to_numpy()
    cl, cr = c["l"].to_numpy(dtype=np.int64), c["r"].to_numpy(dtype=np.int64)
    conflicts = pd.DataFrame(
        {
            "conflict_id": np.arange(1, len(c) + 1),
            "kind": c["kind"],
            "source_l": recs["source"].array.take(cl),
            "record_id_l": recs["record_id"].array.take(cl),
            "source_r": recs["source"].array.take(cr),
            "record_id_r": recs["record_id"].array.take(cr),
            "scheme": c["scheme"],
            "match_probability": c["match_probability"],
            "details": [json.dumps(d, sort_keys=True) for d in c["details"]],
        }
    )
    return links, np.where(joined, left, -1), conflicts


def published_tables(
    linkage: Linkage,
    info: list[SourceInfo],
    prepared: PreparedTables,
    assignment: ids.IdAssignment,
    records: pd.DataFrame | None = None,
) -> dict[str, pd.DataFrame]:
    """The published tables of a linkage whose records carry entity ids (``assignment``),
    completing ``prepared`` with the ids: its frames gain their ``entity_id`` columns and
    become the tables. The ``entities`` rows are in the order of the clusters
    (:meth:`~crosswalk.ids.IdAssignment.cluster_order` sorts them by id). ``records``: the
    records table with its ids (:func:`with_entity_ids`), where the caller made it."""
    recs = linkage.records
    schemes = id_schemes(recs)
    identifiers = pd.concat(
        [
            pd.DataFrame(
                {
                    "scheme": s,
                    "value": recs[NID_PREFIX + s],
                    "source": recs["source"],
                    "record_id": recs["record_id"],
                    "entity_id": recs["entity_id"],
                }
            ).dropna(subset=["value"])
            for s in schemes
        ]
        or [pd.DataFrame(columns=schema.IDENTIFIERS.column_names)],
        ignore_index=True,
    ).drop_duplicates(subset=["scheme", "value", "source", "record_id"])
    if records is None:
        records = with_entity_ids(prepared.records, prepared.by_key, linkage)
    # The prepared entities follow the clusters, ascending, as the assignment's ids do.
    assert np.array_equal(prepared.clusters, assignment.clusters)
    # New frames sharing the prepared ones' columns: the prepared frames are not changed.
    entities = prepared.entities.copy(deep=False)
    entities.insert(0, "entity_id", pd.array(assignment.ids, dtype="str"))
    links = prepared.links.copy(deep=False)
    at = prepared.link_records
    entity = recs["entity_id"].array.take(np.where(at >= 0, at, 0))
    links.insert(5, "entity_id", pd.Series(entity).where(at >= 0))
    return {
        "records": records,
        "entities": entities,
        "identifiers": identifiers,
        "links": links,
        "conflicts": prepared.conflicts,
        "sources": sources_table(info),
    }


def summary_counts(
    linkage: Linkage, tables: dict[str, pd.DataFrame], info: list[SourceInfo]
) -> dict[str, Any]:
    pairs = linkage.pairs
    kept_method = pairs["method"][pairs["status"].isin([LINKED, MUST])]
    counts: dict[str, Any] = {
        "records": {s.name: s.rows for s in info},
        "entities": len(tables["entities"]),
        "entities_by_sources": _counted(tables["entities"]["sources"]),
        "candidate_pairs": linkage.candidate_pairs,
        "links": {
            "identifier": int((kept_method == "identifier").sum()),
            "fuzzy": int((kept_method == "fuzzy").sum()),
        },
        "records_by_method": tables["records"]["method"].value_counts().to_dict(),
        "cut_links": int((pairs["status"] == CUT).sum()),
        "conflicts": tables["conflicts"]["kind"].value_counts().to_dict(),
        "identifier_agreement": identifier_agreement(linkage.records, linkage.unique_schemes),
    }
    return counts


def _counted(values: pd.Series) -> dict[str, int]:
    """Each value's count, most frequent first, ties by value: the same whatever the
    order of the rows."""
    counts = values.value_counts()
    ordered = sorted(counts.items(), key=lambda item: (-int(item[1]), str(item[0])))
    return {str(k): int(v) for k, v in ordered}


def identifier_agreement(
    records: pd.DataFrame, unique_schemes: list[str]
) -> dict[str, dict[str, float]]:
    """For each facility-unique identifier scheme carried by two or more sources: of the
    cross-source record pairs sharing a value, how many ended in the same entity. (Group
    identifiers, such as a license covering several sites, are not expected to agree.)"""
    out: dict[str, dict[str, float]] = {}
    for col in unique_schemes:
        sub = records.loc[records[col].notna(), ["source", col, "cluster"]]
        if sub["source"].nunique() < 2:
            continue
        pairs = sub.merge(sub, on=col, suffixes=("_l", "_r"))
        pairs = pairs[pairs["source_l"] < pairs["source_r"]]
        if pairs.empty:
            continue
        same = int((pairs["cluster_l"] == pairs["cluster_r"]).sum())
        out[col[len(NID_PREFIX) :]] = {
            "pairs": len(pairs),
            "same_entity": same,
            "share": round(same / len(pairs), 4),
        }
    return out
