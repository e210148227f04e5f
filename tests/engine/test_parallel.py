"""Stages that split a large batch over threads give exactly the result of one pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crosswalk.config import BlockingSettings, load_config
from crosswalk.runners import local as runner
from crosswalk.runners.local import LocalRunner, Parts, parallel
from crosswalk.sources import load_sources
from crosswalk.stages import block as blocking
from crosswalk.stages import compare as compare_stage
from crosswalk.stages import normalize as normalize_stage
from crosswalk.stages.block import BlockParams, candidate_pairs
from crosswalk.stages.rules import NormalizeRules


@pytest.fixture(scope="module")
def records(embedded_config_path: Path) -> pd.DataFrame:
    return load_sources(load_config(embedded_config_path)).records.reset_index(drop=True)


def test_normalizing_in_parts_equals_one_pass(
    records: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = normalize_stage.normalize_batch(records)
    # The runner's batch table: a large batch is normalized in parts, on threads.
    monkeypatch.setitem(runner.BATCHES, "normalize", Parts(3, 1_000))
    local = runner.local_runner()
    assert local.batch_of("normalize", len(records)) == (-(-len(records) // 3), 3)
    parts = local.map_batches(
        normalize_stage.normalize_batch, records, *local.batch_of("normalize", len(records))
    )
    pd.testing.assert_frame_equal(parts, whole)
    assert parts.index.equals(records.index)
    # Below the table's threshold: one batch.
    assert LocalRunner(batches={"normalize": Parts(3, 10**12)}).batch_of(
        "normalize", len(records)
    ) == (None, 1)


def test_comparing_batches_on_threads_equals_one_batch(
    records: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = normalize_stage.normalize_batch(records)
    pairs = candidate_pairs(frame, BlockParams.of(BlockingSettings()))
    left, right = pairs["l"].to_numpy(), pairs["r"].to_numpy()
    comparisons = compare_stage.comparisons_for(frame)
    monkeypatch.setattr(compare_stage, "COMPARE_BATCH", 10**12)
    whole = compare_stage.compare_positions(frame, left, right, comparisons)
    monkeypatch.setattr(compare_stage, "COMPARE_BATCH", 7_001)
    # The batches through the runner's handle, three at once, and serially.
    with parallel(3) as handle:
        batched = compare_stage.compare_positions(frame, left, right, comparisons, handle)
    serial = compare_stage.compare_positions(frame, left, right, comparisons)
    assert len(pairs) > 5 * 7_001
    pd.testing.assert_frame_equal(batched, whole)
    pd.testing.assert_frame_equal(serial, whole)


@pytest.mark.parametrize("same_source", [False, True])
def test_blocking_on_threads_equals_one_thread(
    records: pd.DataFrame, monkeypatch: pytest.MonkeyPatch, same_source: bool
) -> None:
    frame = normalize_stage.normalize_batch(records)
    within = {str(s): same_source for s in frame["source"].unique()}
    one = candidate_pairs(frame, BlockParams.of(BlockingSettings()), within)
    # The union of the rules' pairs is sorted in two halves once it is this large.
    monkeypatch.setattr(blocking, "_PARALLEL_SORT_MIN", 1_000)
    with parallel(3) as handle:
        three = candidate_pairs(frame, BlockParams.of(BlockingSettings()), within, parallel=handle)
    assert len(one) > 10_000
    pd.testing.assert_frame_equal(three, one)
    # Reading the shared columns from the comparisons' conversion changes nothing.
    converted = compare_stage.record_columns(frame)
    shared = candidate_pairs(frame, BlockParams.of(BlockingSettings()), within, columns=converted)
    pd.testing.assert_frame_equal(shared, one)
    pairs = set(zip(one["l"].tolist(), one["r"].tolist(), strict=True))
    source = frame["source"].to_numpy()
    assert any(source[a] == source[b] for a, b in pairs) == same_source


@pytest.mark.parametrize("size", [0, 1, 2, 3, 1_000, 4_097])
def test_the_halves_sort_equals_one_sort(monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    monkeypatch.setattr(blocking, "_PARALLEL_SORT_MIN", 0)
    rng = np.random.default_rng(size)
    parts = [rng.integers(0, 50, size // 2), rng.integers(0, 2**40, size - size // 2)]
    expected = np.sort(np.concatenate(parts))
    with parallel(2) as handle:
        assert blocking._sorted(parts, handle).tolist() == expected.tolist()
    assert parts == []


def test_the_matcher_normalizes_a_published_crosswalk_in_the_runners_parts(
    built_crosswalk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The matcher normalizes the published records in the build's normalize batches: a
    large crosswalk in parts on threads, giving what one pass gives."""
    from crosswalk import matching

    monkeypatch.setitem(runner.BATCHES, "normalize", Parts(3, 1_000))
    batches: list[int] = []

    def counted(batch: pd.DataFrame, rules: NormalizeRules | None = None) -> pd.DataFrame:
        batches.append(len(batch))
        return normalize_stage.normalize_batch(batch, rules)

    monkeypatch.setattr(matching, "normalize_batch", counted)
    matcher = matching.Matcher.from_sqlite(built_crosswalk / "crosswalk.sqlite")
    published = matcher.records.drop(columns=["entity_id"])
    assert len(batches) == 3 and sum(batches) == len(published) > 3_000
    pd.testing.assert_frame_equal(matcher.frame, normalize_stage.normalize_records(published))


@pytest.mark.parametrize("width", [1, 997, 10**9])
def test_blocking_by_ranges_of_left_records_equals_one_range(
    records: pd.DataFrame, monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    """The rules' pairs deduplicated range of left records by range give the pairs of one
    range, in the same order, with the same rules."""
    frame = normalize_stage.normalize_batch(records)
    monkeypatch.setattr(blocking, "RANGE_RECORDS", 10**12)
    whole = candidate_pairs(frame, BlockParams.of(BlockingSettings()))
    monkeypatch.setattr(blocking, "RANGE_RECORDS", width)
    with parallel(2) as handle:
        ranged = candidate_pairs(frame, BlockParams.of(BlockingSettings()), parallel=handle)
    assert len(whole) > 10_000 and (whole["rules"] & (whole["rules"] - 1) > 0).any()
    pd.testing.assert_frame_equal(ranged, whole)
