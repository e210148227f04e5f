"""``identifier``: agreement on an identifier scheme, one comparison per scheme the records
carry (named ``nid:<scheme>``, reading that column). A value many records share (a license
that covers several sites) weighs less, through the term-frequency adjustment."""

from __future__ import annotations

import numpy as np

from crosswalk.stages.comparisons import MISSING, Comparison, Spec
from crosswalk.stages.kernel.columns import Columns
from matchers.compare import exact

SPEC = Spec(
    name="identifier",
    levels=("agree", "disagree"),
    compute="crosswalk.stages.comparisons.identifier:levels",
    role="identifier",
    tf_levels=(0,),
)


def levels(cmp: Comparison, left: Columns, right: Columns) -> np.ndarray:
    lv, rv = left.text(cmp.name), right.text(cmp.name)
    if lv.missing.all() or rv.missing.all():  # e.g. a query that gives no identifier
        return np.full(len(lv), MISSING, dtype="int8")
    level = np.where(exact(lv, rv), 0, 1).astype("int8")
    level[lv.missing | rv.missing] = MISSING
    return level
