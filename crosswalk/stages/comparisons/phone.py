"""``phone``: the same normalized phone number. Agreement weighs by how many other records
carry the number (term frequency): a hospital's distinct-part units, or the restaurants of
one hotel, often carry one main number, and agreeing on it says less than agreeing on a
number that only the pair's two records carry."""

from __future__ import annotations

import numpy as np

from crosswalk.stages.comparisons import MISSING, Comparison, Spec
from crosswalk.stages.kernel.columns import Columns
from matchers.compare import exact

SPEC = Spec(
    name="phone",
    levels=("exact", "different"),
    compute="crosswalk.stages.comparisons.phone:levels",
    columns=("n_phone",),
    tf_levels=(0,),
    tf_column="n_phone",
    show=("phone",),
    needs="n_phone",
)


def levels(cmp: Comparison, left: Columns, right: Columns) -> np.ndarray:
    lp, rp = left.text("n_phone"), right.text("n_phone")
    level = np.where(exact(lp, rp), 0, 1).astype("int8")
    level[lp.missing | rp.missing] = MISSING
    return level
