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


def explanations(pairs: pd.DataFrame, comparisons: list[Comparison]) -> pd.Series:
    """Per-pair JSON explanation, assembled column-wise by Arrow from each field's level
    label and its weight rounded to 3 decimals (formatted once per distinct weight)."""
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
    if not parts:
        return pd.Series("{}", index=range(len(pairs)), dtype="string[pyarrow]")
    parts.append("}")
    joined = pc.binary_join_element_wise(*parts, "")
    return pd.Series(pd.arrays.ArrowStringArray(joined))
