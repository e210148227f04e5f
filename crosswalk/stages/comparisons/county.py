"""``county``: the same county (the worked example of ``docs/engine.md``, "Adding a
comparison"). Not among the defaults: a config chooses it with a ``[[comparison]]`` table."""

from __future__ import annotations

import numpy as np

from crosswalk.stages.comparisons import MISSING, Comparison, Spec
from crosswalk.stages.kernel.columns import Columns
from matchers.compare import Texts

SPEC = Spec(
    name="county",
    levels=("same", "different"),
    compute="crosswalk.stages.comparisons.county:levels",
    columns=("county",),  # the county as the source gives it
    show=("county",),
    needs="county",  # compared only when some record names its county
)


def _upper(side: Texts) -> np.ndarray:
    """Per row, the county upper-cased and trimmed, each distinct value once."""
    return np.char.upper(np.char.strip(side.values.astype(str)))[side.codes]


def levels(cmp: Comparison, left: Columns, right: Columns) -> np.ndarray:
    lc, rc = left.text("county"), right.text("county")
    level = np.where(_upper(lc) == _upper(rc), 0, 1).astype("int8")
    level[lc.missing | rc.missing] = MISSING
    return level
