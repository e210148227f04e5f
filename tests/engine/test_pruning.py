"""A build compares names only for the pairs that can reach the review floor, and fits the
EM on a sample of the candidates when there are many. Neither changes what matters: the
pairs at or above the floor, the identifier pairs and the decided pairs."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crosswalk.config import Config, load_config
from crosswalk.pipeline import Linkage, link
from crosswalk.plans import reach
from crosswalk.review import Constraints
from crosswalk.sources import load_sources
from crosswalk.stages import prune as prune_stage
from crosswalk.stages.block import BlockParams, candidate_pairs
from crosswalk.stages.compare import (
    Strongest,
    compare_positions,
    comparison_by_name,
    comparisons_for,
    em_sample,
)
from crosswalk.stages.model import (
    own_frequencies,
    pair_frequencies,
    score,
)
from crosswalk.stages.prune import weight_ceiling
from crosswalk.stages.score import best_of_a_record


@pytest.fixture(scope="module")
def config(embedded_config_path: Path) -> Config:
    return load_config(embedded_config_path)


@pytest.fixture(scope="module")
def records(config: Config) -> pd.DataFrame:
    return load_sources(config).records.reset_index(drop=True)


@pytest.fixture(scope="module")
def whole(records: pd.DataFrame, config: Config) -> Linkage:
    """The embedded data linked with no floor: every candidate pair is compared and kept."""
    cfg = copy.deepcopy(config)
    cfg.review.uncertain_low = 0.0
    cfg.model.link_threshold = 0.5
    return link(records, cfg)


def _floor(config: Config) -> float:
    return min(config.review.uncertain_low, config.model.link_threshold)


def _keys(pairs: pd.DataFrame) -> pd.Series:
    return pairs["l"].astype("int64") * 10**7 + pairs["r"].astype("int64")


def _crosswalk_pairs(linkage: Linkage) -> set[tuple[int, int]]:
    labels = linkage.records["cluster"].to_numpy()
    frame = pd.DataFrame({"c": labels, "i": np.arange(len(labels))})
    both = frame.merge(frame, on="c")
    both = both[both["i_x"] < both["i_y"]]
    return set(zip(both["i_x"], both["i_y"], strict=True))


def test_a_pairs_ceiling_is_never_under_its_weight(whole: Linkage, config: Config) -> None:
    """The ceiling from every field but the name bounds the weight with the name, term
    frequencies included, and it leaves a share of the real candidates under the floor."""
    frame, model = whole.records, whole.model
    comparisons = comparisons_for(frame)
    pairs = candidate_pairs(frame, BlockParams.of(config.blocking))
    lpos, rpos = pairs["l"].to_numpy(), pairs["r"].to_numpy()
    levels = compare_positions(frame, lpos, rpos, comparisons)
    counted = own_frequencies(frame, [c.tf_column for c in comparisons if c.tf_column])
    frequencies = pair_frequencies(
        {k: v.take(lpos) for k, v in counted.items()},
        {k: v.take(rpos) for k, v in counted.items()},
        len(frame),
    )
    weight = score(levels, model, frequencies=frequencies).match_weight
    ceiling = weight_ceiling(levels.drop(columns=["name"]), model, {"name": None})
    assert len(pairs) == whole.candidate_pairs
    assert (ceiling >= weight - 1e-9).all()
    floor_bits = np.log2(_floor(config) / (1 - _floor(config)))
    assert (ceiling < floor_bits).mean() > 0.05
    # The name's cheap part (are the names equal?) bounds its level, and so the weight.
    reach = compare_positions(frame, lpos, rpos, [Strongest(comparison_by_name("name"))])[
        "name"
    ].to_numpy()
    name = levels["name"].to_numpy()
    np.testing.assert_array_equal(reach == -1, name == -1)
    assert (reach <= name).all() and ((reach == name) | (reach == 2)).all()
    tighter = weight_ceiling(levels.drop(columns=["name"]), model, {"name": reach})
    assert (tighter >= weight - 1e-9).all() and (tighter <= ceiling).all()
    assert (tighter < floor_bits).mean() > (ceiling < floor_bits).mean() + 0.05
    # With every field compared, the ceiling is the weight where no value's frequency counts.
    full = weight_ceiling(levels, model, {})
    plain = np.ones(len(levels), dtype=bool)
    for f in model.fields:
        if f.tf_column and f.name in levels:
            plain &= ~np.isin(levels[f.name].to_numpy(), f.tf_levels)
    assert (full >= weight - 1e-9).all() and plain.mean() > 0.3
    np.testing.assert_allclose(full[plain], weight[plain], atol=1e-9)
    # Computed once per combination of levels, every ceiling is exactly that of its pair
    # computed alone.
    for part, pending in (
        (levels.drop(columns=["name"]), {"name": None}),
        (levels.drop(columns=["name"]), {"name": reach}),
        (levels, {}),
    ):
        read = [f for f in model.fields if f.name in part or pending.get(f.name) is not None]
        assert math.prod(len(f.bits()) + 1 for f in read) <= prune_stage.CEILING_TABLE_MAX
        by_pair = prune_stage._weight_ceiling(part, model, pending)
        np.testing.assert_array_equal(weight_ceiling(part, model, pending), by_pair)
        # Asked whether it reaches a weight, it answers as the ceiling compared with it.
        middle = float(np.median(by_pair))
        reaches = weight_ceiling(part, model, pending, at_least=middle)
        assert reaches.dtype == bool and 0 < reaches.sum() < len(reaches)
        np.testing.assert_array_equal(reaches, by_pair >= middle)
    # Every field pending (none compared yet), and a field both compared and pending.
    for part, pending in ((levels[[]], {"name": reach}), (levels, {"name": reach})):
        by_pair = prune_stage._weight_ceiling(part, model, pending)
        np.testing.assert_array_equal(weight_ceiling(part, model, pending), by_pair)


def _what_matters(whole: Linkage, config: Config) -> pd.DataFrame:
    """The pairs of an unpruned linkage that a pruned one must keep: at or above the floor,
    sharing an identifier, identifier conflicts, or down to the reach (plans.reach) the
    best candidate of one of their records."""
    pairs = whole.pairs
    ids = [c for c in pairs.columns if c.startswith("lvl:nid:")]
    assert ids, "the embedded config has identifiers"
    differs = whole.conflicts[whole.conflicts["kind"] == "identifier_differs"]
    assert len(differs) > 0
    expected = pairs[
        (pairs["match_probability"] >= _floor(config))
        | (pairs[ids] == 0).any(axis=1)
        | _keys(pairs).isin(_keys(differs))
        | (
            (pairs["match_probability"] >= reach(config))
            & best_of_a_record(
                pairs["l"].to_numpy(dtype="int64"),
                pairs["r"].to_numpy(dtype="int64"),
                pairs["match_weight"].to_numpy(),
                len(whole.records),
            )
        )
    ]
    assert len(expected) < len(pairs) / 2  # the floor drops most candidates
    return expected.reset_index(drop=True)


def test_pruning_keeps_every_pair_that_matters(
    records: pd.DataFrame, config: Config, whole: Linkage
) -> None:
    """With the default floor, the kept pairs are exactly the unpruned build's pairs at or
    above it, those that share an identifier and the identifier conflicts, with the same
    levels and scores; entities and conflicts are equal."""
    pruned = link(records, config)
    assert pruned.candidate_pairs == whole.candidate_pairs == len(whole.pairs)
    pd.testing.assert_frame_equal(pruned.pairs, _what_matters(whole, config))
    assert _crosswalk_pairs(pruned) == _crosswalk_pairs(whole)
    pd.testing.assert_frame_equal(pruned.conflicts, whole.conflicts)


def test_deferring_the_name_keeps_every_pair_that_matters(
    records: pd.DataFrame, config: Config
) -> None:
    """With an EM sample smaller than the candidates, the name waits for the model and pairs
    are dropped by their ceiling: the kept pairs are still exactly those that matter under
    the same model when nothing is dropped."""
    cfg = copy.deepcopy(config)
    cfg.model.em_sample_pairs = 5_000
    pruned = link(records, cfg)
    unpruned = copy.deepcopy(cfg)
    unpruned.review.uncertain_low = 0.0
    whole = link(records, unpruned)
    assert pruned.model.to_dict() == whole.model.to_dict()
    assert len(whole.pairs) == whole.candidate_pairs > 4 * cfg.model.em_sample_pairs
    pd.testing.assert_frame_equal(pruned.pairs, _what_matters(whole, cfg))
    assert _crosswalk_pairs(pruned) == _crosswalk_pairs(whole)
    pd.testing.assert_frame_equal(pruned.conflicts, whole.conflicts)


def test_the_em_on_a_sample_gives_every_kept_pair_its_own_levels(
    records: pd.DataFrame, config: Config, whole: Linkage
) -> None:
    """With an EM sample smaller than the candidates, names are compared after the fit: every
    kept pair still carries the levels of comparing it in full, and the entities barely
    move."""
    cfg = copy.deepcopy(config)
    cfg.model.em_sample_pairs = 5_000
    assert whole.candidate_pairs > 4 * cfg.model.em_sample_pairs
    sampled = link(records, cfg)
    pairs = sampled.pairs
    comparisons = comparisons_for(sampled.records)
    again = compare_positions(
        sampled.records, pairs["l"].to_numpy(), pairs["r"].to_numpy(), comparisons
    )
    for c in comparisons:
        np.testing.assert_array_equal(pairs[f"lvl:{c.name}"].to_numpy(), again[c.name].to_numpy())
    assert 0 < len(pairs) < sampled.candidate_pairs
    assert (pairs["match_probability"] >= _floor(cfg)).mean() > 0.5
    mine, theirs = _crosswalk_pairs(sampled), _crosswalk_pairs(whole)
    assert len(mine & theirs) >= 0.995 * max(len(mine), len(theirs))


def test_em_sample_positions_are_sorted_distinct_and_seeded() -> None:
    a = em_sample(1_000, 100, seed=7)
    assert a is not None and len(a) == 100 and len(np.unique(a)) == 100
    assert (np.diff(a) > 0).all() and a.min() >= 0 and a.max() < 1_000
    b = em_sample(1_000, 100, seed=7)
    assert b is not None
    np.testing.assert_array_equal(a, b)
    assert em_sample(1_000, 1_000, seed=7) is None
    assert em_sample(1_000, 0, seed=7) is None


def test_a_decided_pair_under_the_floor_keeps_its_decision(
    records: pd.DataFrame, config: Config, whole: Linkage
) -> None:
    """A review decision on a pair that could never reach the floor still binds the build and
    is kept with its status (it is published as a link)."""
    pairs = whole.pairs
    no_id = ~(pairs[[c for c in pairs.columns if c.startswith("lvl:nid:")]] == 0).any(axis=1)
    low = pairs[no_id & (pairs["match_probability"] < 1e-6)]
    rec = whole.records
    a, b = low.iloc[0], low.iloc[1]

    def key(pos: int) -> tuple[str, str]:
        return (str(rec["source"].iat[pos]), str(rec["record_id"].iat[pos]))

    must = (key(int(a["l"])), key(int(a["r"])))
    cannot = (key(int(b["l"])), key(int(b["r"])))
    decided = link(records, config, Constraints(must_link=[must], cannot_link=[cannot]))
    got = decided.pairs.set_index(_keys(decided.pairs))
    assert got.loc[int(a["l"]) * 10**7 + int(a["r"]), "status"] == "must_link"
    assert got.loc[int(b["l"]) * 10**7 + int(b["r"]), "status"] == "cannot_link"
    labels = decided.records["cluster"].to_numpy()
    assert labels[int(a["l"])] == labels[int(a["r"])]
