"""Stages that split a large batch over threads give exactly the result of one pass."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from crosswalk.config import BlockingSettings, load_config
from crosswalk.internals import compare as compare_stage
from crosswalk.internals import normalize as normalize_stage
from crosswalk.internals.blocking import candidate_pairs
from crosswalk.sources import load_sources


@pytest.fixture(scope="module")
def records(embedded_config_path: Path) -> pd.DataFrame:
    return load_sources(load_config(embedded_config_path)).records.reset_index(drop=True)


def test_normalizing_in_parts_equals_one_pass(
    records: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(normalize_stage, "PARALLEL_MIN_ROWS", 10**12)
    whole = normalize_stage.normalize_records(records)
    monkeypatch.setattr(normalize_stage, "PARALLEL_MIN_ROWS", 1_000)
    monkeypatch.setattr(normalize_stage, "NORMALIZE_PARTS", 3)
    parts = normalize_stage.normalize_records(records)
    pd.testing.assert_frame_equal(parts, whole)
    assert parts.index.equals(records.index)


def test_comparing_batches_on_threads_equals_one_batch(
    records: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = normalize_stage.normalize_records(records)
    pairs = candidate_pairs(frame, BlockingSettings())
    left, right = pairs["l"].to_numpy(), pairs["r"].to_numpy()
    comparisons = compare_stage.comparisons_for(frame)
    monkeypatch.setattr(compare_stage, "COMPARE_BATCH", 10**12)
    whole = compare_stage.compare_positions(frame, left, right, comparisons)
    monkeypatch.setattr(compare_stage, "COMPARE_BATCH", 7_001)
    monkeypatch.setattr(compare_stage, "COMPARE_WORKERS", 3)
    batched = compare_stage.compare_positions(frame, left, right, comparisons)
    assert len(pairs) > 5 * 7_001
    pd.testing.assert_frame_equal(batched, whole)
