"""Labelled pairs (training pairs, review decisions) weigh in beside the EM: a few move
the weights a little, many move them more, and cannot-link decisions count as
non-matches. Real linkages of the real-data slice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crosswalk.config import Config, load_config
from crosswalk.evaluate import parse_side, read_labelled_pairs
from crosswalk.pipeline import Linkage, link
from crosswalk.review.constraints import Constraints
from crosswalk.review.store import Pair
from crosswalk.sources import load_sources
from crosswalk.stages.kernel.model import Model

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(DATA / "slice.toml")


@pytest.fixture(scope="module")
def records(config: Config) -> pd.DataFrame:
    return load_sources(config).records


@pytest.fixture(scope="module")
def truth() -> list[Pair]:
    return read_labelled_pairs(
        DATA / "truth_slice.csv", parse_side("cdph=FACID"), parse_side("hcai=OSHPD_ID")
    )


@pytest.fixture(scope="module")
def em(records: pd.DataFrame, config: Config) -> Linkage:
    return link(records, config)


def _bits(model: Model) -> np.ndarray:
    return np.concatenate([f.bits() for f in model.fields])


def _moved(model: Model, base: Model) -> float:
    """The largest change of any level's weight, in bits."""
    return float(np.abs(_bits(model) - _bits(base)).max())


def test_without_labels_the_model_is_the_ems(em: Linkage) -> None:
    assert em.model.trained_on == "em"
    assert em.model.learned_from == {}
    assert "learned_from" not in em.model.to_dict()


def test_a_few_labels_move_the_weights_a_little_and_many_move_them_more(
    records: pd.DataFrame, config: Config, truth: list[Pair], em: Linkage
) -> None:
    few = link(records, config, labels=truth[:5]).model
    some = link(records, config, labels=truth[:100]).model
    many = link(records, config, labels=truth).model
    assert few.learned_from == {"training_pairs": 5, "must_link": 0, "cannot_link": 0}
    assert many.learned_from["training_pairs"] == len(truth)
    # Five labels beside the slice's ~700 expected matches: a little, not nothing.
    assert 0 < _moved(few, em.model) < 0.1
    assert _moved(few, em.model) < _moved(some, em.model) < _moved(many, em.model)
    # The match share (and so the prior) stays the candidates' own.
    assert abs(many.prior_bits - em.model.prior_bits) < 0.05


def test_must_and_cannot_link_decisions_are_labels(
    records: pd.DataFrame, config: Config, truth: list[Pair], em: Linkage
) -> None:
    # The steward says 'different' to the 30 pairs the engine is surest of, and 'same'
    # to ten pairs of the truth.
    best = em.pairs.sort_values("match_probability", ascending=False).head(30)
    src = em.records["source"].to_numpy()
    rid = em.records["record_id"].to_numpy()
    cannot = [((src[a], rid[a]), (src[b], rid[b])) for a, b in zip(best.l, best.r, strict=True)]
    must = [p for p in truth if p not in set(cannot)][:10]
    model = link(records, config, constraints=Constraints(cannot_link=cannot)).model
    assert model.learned_from == {"training_pairs": 0, "must_link": 0, "cannot_link": 30}
    assert _moved(model, em.model) > 0
    both = link(records, config, constraints=Constraints(must_link=must, cannot_link=cannot))
    assert both.model.learned_from == {"training_pairs": 0, "must_link": 10, "cannot_link": 30}
    assert _moved(both.model, model) > 0
    # Published with the model, and read back.
    assert Model.from_dict(both.model.to_dict()).learned_from == both.model.learned_from
