"""Helpers several comparisons share (not a comparison: the registry skips ``_`` modules)."""

from __future__ import annotations

import numpy as np

from crosswalk.stages.kernel.columns import Columns
from matchers.compare import Texts, exact, haversine_m, similarity

#: Pairs at least this many are scored in one call per cutoff.
_BANDED_MIN_PAIRS = 1_000


def similarity_from(
    left: Texts, right: Texts, todo: np.ndarray, method: str, cutoffs: np.ndarray
) -> np.ndarray:
    """Similarity of the pairs at positions ``todo``, each needed only from its cutoff on
    (``cutoffs``, one per pair of ``todo``): a score below its cutoff may read as 0."""
    out = np.zeros(len(todo), dtype=np.float64)
    if len(todo) < _BANDED_MIN_PAIRS:  # a few pairs: one call, from the lowest cutoff
        lowest = float(cutoffs.min()) if len(cutoffs) else None
        sim = similarity(left.take(todo), right.take(todo), method, lowest)
        return np.nan_to_num(sim, nan=0.0)
    for cutoff in np.unique(cutoffs):
        at = np.flatnonzero(cutoffs == cutoff)
        sim = similarity(left.take(todo[at]), right.take(todo[at]), method, float(cutoff))
        out[at] = np.nan_to_num(sim, nan=0.0)
    return out


def place(
    left: Columns, right: Columns, near_metres: float, region_metres: float
) -> tuple[np.ndarray, ...]:
    """Same ZIP, same city, within ``near_metres``, same region (within ``region_metres``,
    or without coordinates the same 3-digit ZIP area). Computed once per pair of sides and
    distances (``location`` and ``locality`` both read it)."""
    key = (f"place {near_metres!r} {region_metres!r}", id(right))
    memo = left.memo.get(key)
    if memo is not None and memo[0] is right:
        return memo[1]
    same_zip = exact(left.text("n_zip"), right.text("n_zip"))
    same_city = exact(left.text("n_city"), right.text("n_city"))
    dist = haversine_m(
        left.number("n_lat"),
        left.number("n_lon"),
        right.number("n_lat"),
        right.number("n_lon"),
    )
    near = np.nan_to_num(dist, nan=np.inf) <= near_metres
    zl = left.text("n_zip3")
    zr = right.text("n_zip3")
    region = np.where(
        np.isnan(dist), exact(zl, zr), np.nan_to_num(dist, nan=np.inf) <= region_metres
    )
    out = (same_zip, same_city, near, region)
    left.memo[key] = (right, out)
    return out
