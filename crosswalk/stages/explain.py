"""Explanations: per pair, each comparison's level and weight, as JSON."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crosswalk.stages.compare import Comparison
from crosswalk.stages.kernel.text import float_text

#: Pairs explained at once: each chunk's text stays far under the 2 GiB that one Arrow
#: text array holds (a large build's explanations take several times that).
EXPLAIN_ROWS = 1_000_000


def explanations(pairs: pd.DataFrame, comparisons: list[Comparison]) -> pd.Series:
    """Per-pair JSON explanation, assembled column-wise by Arrow from each field's level
    label and its weight rounded to 3 decimals (formatted once per distinct weight), in
    chunks of :data:`EXPLAIN_ROWS` pairs."""
    if not comparisons:
        return pd.Series("{}", index=range(len(pairs)), dtype="string[pyarrow]")
    chunks = [
        _explained(pairs.iloc[start : start + EXPLAIN_ROWS], comparisons)
        for start in range(0, len(pairs), EXPLAIN_ROWS)
    ]
    return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array(chunks, type=pa.string())))


def _explained(pairs: pd.DataFrame, comparisons: list[Comparison]) -> pa.Array:
    parts: list[Any] = []
    for i, c in enumerate(comparisons):
        lv = pairs[f"lvl:{c.name}"].to_numpy()
        labels = pa.array([*c.levels, "missing"], type=pa.string())
        parts += [
            ("{" if i == 0 else ", ") + json.dumps(c.name) + ': {"level": "',
            labels.take(pa.array(np.where(lv < 0, len(c.levels), lv).astype(np.int64))),
            '", "weight": ',
            float_text(pairs[f"bits:{c.name}"].to_numpy(dtype=np.float64).round(3)),
            "}",
        ]
    parts.append("}")
    return pc.binary_join_element_wise(*parts, "")
