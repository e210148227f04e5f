"""``locality``: coarse place, for pairs without an address on both sides (a query by name
and city): whichever of city, ZIP and coordinates both sides give."""

from __future__ import annotations

import numpy as np

from crosswalk.stages.comparisons import MISSING, Comparison, Spec
from crosswalk.stages.comparisons._shared import place
from crosswalk.stages.comparisons.location import NEAR, REGION
from crosswalk.stages.kernel.columns import Columns

SPEC = Spec(
    name="locality",
    levels=("same_town", "same_region", "elsewhere"),
    compute="crosswalk.stages.comparisons.locality:levels",
    columns=("n_zip", "n_city", "n_lat", "n_lon"),
    show=("city", "zip"),
    stands_in_for="location",
    params=(NEAR, REGION),
)


def levels(cmp: Comparison, left: Columns, right: Columns) -> np.ndarray:
    same_zip, same_city, near, region = place(
        left, right, cmp.param("near_metres"), cmp.param("region_metres")
    )
    level = np.full(len(left), 2, dtype="int8")
    level[region] = 1
    level[same_city | same_zip | near] = 0

    def nothing(side: Columns) -> np.ndarray:
        no_coords = np.isnan(side.number("n_lat"))
        return side.text("n_zip").missing & side.text("n_city").missing & no_coords

    level[nothing(left) | nothing(right)] = MISSING
    return level
