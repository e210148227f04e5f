"""Text made of columns at once (vectorized): floats as ``str()`` writes them, JSON objects."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crosswalk.vocabulary import NID_PREFIX
from matchers._text import as_string


def float_text(values: np.ndarray[Any, Any]) -> pa.Array:
    """``str()`` of every float as an Arrow string array, computed once per distinct value
    (by bit pattern, so that -0.0 stays -0.0)."""
    bits, inverse = np.unique(values.view(np.int64), return_inverse=True)
    text = pa.array([str(v) for v in bits.view(np.float64).tolist()], type=pa.string())
    return text.take(pa.array(inverse.reshape(-1).astype(np.int64)))


def json_objects(frame: pd.DataFrame, schemes: list[str]) -> pd.Series:
    """Per-row JSON object {scheme: value} of the normalized identifiers, joined by Arrow.

    Normalized identifiers hold only letters, digits and '-', so no escaping is needed.
    """
    text = pa.large_string()

    def lit(value: str) -> pa.Scalar:
        return pa.scalar(value, text)

    body = pa.array([""] * len(frame), type=text)
    for s in schemes:
        value = pa.array(as_string(frame[NID_PREFIX + s]).array).cast(text)
        sep = pc.if_else(pc.equal(body, lit("")), lit(""), lit(", "))
        item = pc.binary_join_element_wise(
            body, sep, lit(json.dumps(s) + ': "'), value, lit('"'), lit("")
        )
        body = pc.coalesce(item, body)  # a missing value adds nothing
    joined = pc.binary_join_element_wise(lit("{"), body, lit("}"), lit(""))
    return pd.Series(pd.array(joined, dtype="string"), index=frame.index)
