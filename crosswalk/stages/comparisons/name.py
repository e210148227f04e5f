"""``name``: the facility's name, its distinctive core and its other names (business or DBA)."""

from __future__ import annotations

import numpy as np

from crosswalk.stages.comparisons import MISSING, Comparison, Param, Spec
from crosswalk.stages.comparisons._shared import similarity_from
from crosswalk.stages.kernel.columns import Columns
from matchers.compare import exact

SPEC = Spec(
    name="name",
    levels=("exact", "core_exact", "very_similar", "contained", "similar", "weak", "different"),
    compute="crosswalk.stages.comparisons.name:levels",
    columns=("n_name", "n_core", "n_other"),
    role="name",
    tf_levels=(0, 1),
    tf_column="n_core",
    # exact agrees on the whole name (DIAMOND HOME HEALTH is rare though DIAMOND is not),
    # core_exact on the core
    tf_level_columns=("n_name", "n_core"),
    show=("name",),
    deferred=True,  # most of the comparing time: several similarity scorings per pair
    bound="crosswalk.stages.comparisons.name:strongest",
    strong_through=2,
    params=(
        Param(
            "thresholds",
            (0.6, 0.8, 0.92),
            "thresholds",
            "similarity of the core names (or of one's other name and the other's name) "
            "for weak, similar and very_similar",
        ),
        Param(
            "subset_thresholds",
            (0.8, 0.995),
            "thresholds",
            "token-set similarity of the core names for weak and contained",
        ),
    ),
)


def levels(cmp: Comparison, left: Columns, right: Columns) -> np.ndarray:
    weak, similar, very_similar = cmp.param("thresholds")
    subset_weak, contained = cmp.param("subset_thresholds")
    strong_at = np.array([weak, similar, very_similar])
    ln, rn = left.text("n_name"), right.text("n_name")
    lc, rc = left.text("n_core"), right.text("n_core")
    # Strongest level first: a similarity is computed only for the pairs it can still decide.
    level = np.full(len(ln), 6, dtype="int8")
    missing = ln.missing | rn.missing
    same_name = exact(ln, rn)
    same_core = exact(lc, rc)
    level[same_core] = 1
    level[same_name] = 0
    todo = np.flatnonzero(~(missing | same_name | same_core))
    # Similarity of the distinctive part of the names: generic words such as
    # HOME HEALTH or CENTER would make unrelated names look alike. Only which of the
    # thresholds (0.6, 0.8 and 0.92 by default) ``strong`` reaches matters: each further
    # score is needed only from the next threshold above the pair's best so far, and once
    # a pair reaches the highest (``very_similar``) no other score can change its level.
    strong = np.zeros(len(ln), dtype=np.float64)
    # Another name (business or DBA name) of one side against the other's name.
    lo, ro = left.text("n_other"), right.text("n_other")
    for lt, rt, method in (
        (lc, rc, "jaro_winkler"),
        (lc, rc, "token_sort"),
        (lo, rn, "token_sort"),
        (ln, ro, "token_sort"),
    ):
        todo = todo[strong[todo] < strong_at[-1]]
        cutoffs = strong_at[np.searchsorted(strong_at, strong[todo], side="right")]
        sim = similarity_from(lt, rt, todo, method, cutoffs)
        strong[todo] = np.fmax(strong[todo], sim)
    # One core name's words all stand in the other ("AMEDISYS" / "AMEDISYS HAYWARD PARENT"):
    # branch, campus and city suffixes. ``subset`` matters at 0.995 (``contained``) and, for
    # pairs below ``weak`` by ``strong``, at 0.8 (by default).
    todo = todo[strong[todo] < strong_at[-1]]
    subset = np.zeros(len(ln), dtype=np.float64)
    cutoffs = np.where(strong[todo] < strong_at[0], subset_weak, contained)
    subset[todo] = similarity_from(lc, rc, todo, "token_set", cutoffs)
    decided = level <= 1
    level[~decided & ((strong >= weak) | (subset >= subset_weak))] = 5
    level[~decided & (strong >= similar)] = 4
    level[~decided & (subset >= contained)] = 3
    level[~decided & (strong >= very_similar)] = 2
    level[missing] = MISSING
    return level


def strongest(cmp: Comparison, left: Columns, right: Columns) -> np.ndarray:
    """The strongest level :func:`levels` can give each pair, from equality alone: ``exact``
    or ``core_exact`` where the names are equal, else at best ``very_similar``."""
    ln, rn = left.text("n_name"), right.text("n_name")
    level = np.full(len(ln), 2, dtype="int8")
    level[exact(left.text("n_core"), right.text("n_core"))] = 1
    level[exact(ln, rn)] = 0
    level[ln.missing | rn.missing] = MISSING
    return level
