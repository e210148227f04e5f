"""Explanations are made in chunks of pairs: a large build's explanations take several
times the 2 GiB that one Arrow text array holds (they failed at 10M records per side)."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from crosswalk.pipeline import BuildResult
from crosswalk.stages import explain


def test_explanations_come_in_chunks_equal_to_one_pass(
    blind_build: BuildResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    linkage = blind_build.linkage
    pairs, comparisons = linkage.pairs, linkage.comparisons
    assert len(pairs) > 1_000
    whole = explain.explanations(pairs, comparisons)
    monkeypatch.setattr(explain, "EXPLAIN_ROWS", 997)
    chunked = explain.explanations(pairs, comparisons)
    arrow = chunked.array._pa_array
    assert arrow.num_chunks == -(-len(pairs) // 997)
    assert max(len(c) for c in arrow.chunks) == 997
    pd.testing.assert_series_equal(chunked, whole)
    assert isinstance(arrow, pa.ChunkedArray) and chunked.iloc[0].startswith("{")
    # No pairs: an empty column.
    assert len(explain.explanations(pairs.iloc[:0], comparisons)) == 0
