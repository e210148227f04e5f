"""``location``: address, ZIP, city and coordinates as one comparison.

They are strongly correlated among non-matching pairs (same ZIP implies same city), and
scoring them separately would count one piece of evidence several times.
"""

from __future__ import annotations

import numpy as np

from crosswalk.stages.comparisons import MISSING, Comparison, Param, Spec
from crosswalk.stages.comparisons._shared import place, similarity_from
from crosswalk.stages.kernel.columns import Columns
from matchers.compare import exact

#: The distances of ``location`` and ``locality`` (they share one computation).
NEAR = Param("near_metres", 150.0, "metres", "coordinates at most this far apart are nearby")
REGION = Param(
    "region_metres", 50_000.0, "metres", "coordinates at most this far apart are in one region"
)

SPEC = Spec(
    name="location",
    levels=(
        "address_exact",
        "address_fuzzy",
        "nearby_or_same_street",
        "same_zip",
        "same_city",
        "same_region",
        "elsewhere",
    ),
    compute="crosswalk.stages.comparisons.location:levels",
    columns=(
        "n_address",
        "n_number",
        "n_street",
        "n_street_name",
        "n_zip",
        "n_city",
        "n_lat",
        "n_lon",
    ),
    role="place",
    tf_levels=(0, 1),
    tf_column="n_address",
    show=("address", "city", "zip"),
    strong_through=2,
    same_place_through=1,  # address_exact, address_fuzzy
    params=(
        Param(
            "street_thresholds",
            (0.85, 0.95),
            "thresholds",
            "street similarity in the same place: address_fuzzy (same number) and "
            "nearby_or_same_street",
        ),
        NEAR,
        REGION,
    ),
)


def levels(cmp: Comparison, left: Columns, right: Columns) -> np.ndarray:
    fuzzy_at, street_at = cmp.param("street_thresholds")
    la, ra = left.text("n_address"), right.text("n_address")
    same_zip, same_city, near, region = place(
        left, right, cmp.param("near_metres"), cmp.param("region_metres")
    )
    same_place = same_zip | same_city
    same_number = exact(left.text("n_number"), right.text("n_number"))
    same_addr = exact(la, ra)
    # The same number on the same street, written with or without its directional or suffix.
    same_street_name = exact(left.text("n_street_name"), right.text("n_street_name"))
    missing = la.missing | ra.missing
    # The street similarity decides a level only in the same place, between different
    # addresses that the street name alone does not already settle: with the same number
    # at 0.85 (``address_fuzzy``), without it at 0.95 (``nearby_or_same_street``, which
    # being nearby gives anyway; thresholds by default).
    todo = np.flatnonzero(
        ~missing
        & same_place
        & ~same_addr
        & ~(same_number & same_street_name)
        & (same_number | ~near)
    )
    street_sim = np.zeros(len(la), dtype=np.float64)
    cutoffs = np.where(same_number[todo], fuzzy_at, street_at)
    street_sim[todo] = similarity_from(
        left.text("n_street"), right.text("n_street"), todo, "jaro_winkler", cutoffs
    )
    same_street = street_sim >= street_at
    level = np.full(len(la), 6, dtype="int8")
    level[region] = 5
    level[same_city] = 4
    level[same_zip] = 3
    level[near | (same_street & same_place)] = 2
    fuzzy_addr = same_number & ((street_sim >= fuzzy_at) | same_street_name) & same_place
    level[fuzzy_addr | (same_addr & ~same_place)] = 1
    level[same_addr & same_place] = 0
    # Without an address on both sides, the coarser ``locality`` comparison stands in.
    level[missing] = MISSING
    return level
