"""``facility_type``: the facility classes' compatibility (see ``matchers.facility_types``)."""

from __future__ import annotations

import numpy as np

from crosswalk.stages.comparisons import MISSING, Comparison, Spec
from crosswalk.stages.kernel.columns import Columns
from matchers.facility_types import type_compatibility

SPEC = Spec(
    name="facility_type",
    levels=("same", "compatible", "incompatible"),
    compute="crosswalk.stages.comparisons.facility_type:levels",
    columns=("n_class",),
    show=("facility_type",),
    needs="n_class",
)


def levels(cmp: Comparison, left: Columns, right: Columns) -> np.ndarray:
    # a missing class reads as "", which is no class: the same as missing
    level = type_compatibility(left.text("n_class"), right.text("n_class"))
    return np.where(level < 0, MISSING, level)
