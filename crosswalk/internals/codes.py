"""Integer codes of tuples: the blocking keys' and the comparison vectors' shared packing."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

#: Codes stay below this bound, inside int64.
_LIMIT = 2**62


def pack(columns: Iterable[tuple[np.ndarray, int]], n: int) -> np.ndarray:
    """One non-negative int64 per row of ``n``, equal exactly when the rows' tuples are equal.

    Each column is an int64 array of values in ``[0, base)`` with its ``base``. The columns
    are packed in mixed radix; where the next column would take the code past int64, the
    code so far is renumbered (factorized) first.
    """
    code = np.zeros(n, dtype="int64")
    span = 1
    for values, base in columns:
        base = max(base, 1)
        if span > _LIMIT // base:
            code = pd.factorize(code)[0].astype("int64")
            span = int(code.max()) + 1 if n else 1
        code = code * base + values
        span *= base
    return code
