"""Comparison stage: aligned left/right record batches in, comparison levels out.

Each :class:`Comparison` turns a field (or a group of correlated fields) of
two aligned batches into an integer level per pair: ``0`` is the strongest
agreement, the last level is disagreement, and ``-1`` means a value is
missing on either side (it then contributes no evidence). Levels are named,
so explanations read as ``name: core_exact`` rather than ``name: 1``.

Address, ZIP, city and coordinates are one *location* comparison, not four:
they are strongly correlated among non-matching pairs (same ZIP implies same
city), and scoring them separately would count one piece of evidence several
times.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crosswalk.internals.threads import THREADS
from crosswalk.stages.kernel.columns import Columns
from crosswalk.vocabulary import NID_PREFIX
from matchers.compare import Texts, exact, haversine_m, similarity
from matchers.facility_types import type_compatibility

MISSING = -1


@dataclass(frozen=True)
class Comparison:
    """A named comparison with named levels (strongest first)."""

    name: str
    levels: tuple[str, ...]
    #: Levels whose weight is adjusted by the frequency of the agreed value.
    tf_levels: tuple[int, ...] = ()
    #: Column holding the value whose frequency adjusts the weight.
    tf_column: str | None = None
    #: Columns shown as left/right values in explanations.
    show: tuple[str, ...] = ()
    #: A comparison that counts only where the named one is missing (a coarser stand-in).
    stands_in_for: str | None = None
    #: Costly: in a build, compared only for the pairs that the other comparisons leave a
    #: chance to reach the review floor (see ``docs/engine.md``).
    deferred: bool = False

    def compute(self, left: Columns, right: Columns) -> np.ndarray:
        fn = _COMPUTE[self.kind]
        return fn(self, left, right).astype("int8")

    @property
    def kind(self) -> str:
        return self.name if not self.name.startswith(NID_PREFIX) else "identifier"


@dataclass(frozen=True)
class Strongest:
    """Stands for a costly comparison in :func:`compare`: the strongest level each pair can
    reach (its column holds that level), found by the comparison's cheap part. Without a
    cheap part every level is within reach (``0`` for every pair).
    """

    of: Comparison

    @property
    def name(self) -> str:
        return self.of.name

    def compute(self, left: Columns, right: Columns) -> np.ndarray:
        fn = _STRONGEST.get(self.of.kind)
        if fn is not None:
            return fn(self.of, left, right).astype("int8")
        return np.zeros(len(left), dtype="int8")


#: Pairs at least this many are scored in one call per cutoff.
_BANDED_MIN_PAIRS = 1_000


def _similarity_from(
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


#: Thresholds of the name's strongest similarity (``very_similar``, ``similar``, ``weak``).
_STRONG = np.array([0.6, 0.8, 0.92])


def _name(cmp: Comparison, left: Columns, right: Columns) -> np.ndarray:
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
    # thresholds 0.6, 0.8 and 0.92 ``strong`` reaches matters: each further score is
    # needed only from the next threshold above the pair's best so far, and once a pair
    # reaches 0.92 (``very_similar``) no other score can change its level.
    strong = np.zeros(len(ln), dtype=np.float64)
    # Another name (business or DBA name) of one side against the other's name.
    lo, ro = left.text("n_other"), right.text("n_other")
    for lt, rt, method in (
        (lc, rc, "jaro_winkler"),
        (lc, rc, "token_sort"),
        (lo, rn, "token_sort"),
        (ln, ro, "token_sort"),
    ):
        todo = todo[strong[todo] < _STRONG[-1]]
        cutoffs = _STRONG[np.searchsorted(_STRONG, strong[todo], side="right")]
        sim = _similarity_from(lt, rt, todo, method, cutoffs)
        strong[todo] = np.fmax(strong[todo], sim)
    # One core name's words all stand in the other ("AMEDISYS" / "AMEDISYS HAYWARD PARENT"):
    # branch, campus and city suffixes. ``subset`` matters at 0.995 (``contained``) and, for
    # pairs below ``weak`` by ``strong``, at 0.8.
    todo = todo[strong[todo] < _STRONG[-1]]
    subset = np.zeros(len(ln), dtype=np.float64)
    cutoffs = np.where(strong[todo] < _STRONG[0], 0.8, 0.995)
    subset[todo] = _similarity_from(lc, rc, todo, "token_set", cutoffs)
    decided = level <= 1
    level[~decided & ((strong >= 0.6) | (subset >= 0.8))] = 5
    level[~decided & (strong >= 0.8)] = 4
    level[~decided & (subset >= 0.995)] = 3
    level[~decided & (strong >= 0.92)] = 2
    level[missing] = MISSING
    return level


def _name_strongest(cmp: Comparison, left: Columns, right: Columns) -> np.ndarray:
    """The strongest level :func:`_name` can give each pair, from equality alone: ``exact``
    or ``core_exact`` where the names are equal, else at best ``very_similar``."""
    ln, rn = left.text("n_name"), right.text("n_name")
    level = np.full(len(ln), 2, dtype="int8")
    level[exact(left.text("n_core"), right.text("n_core"))] = 1
    level[exact(ln, rn)] = 0
    level[ln.missing | rn.missing] = MISSING
    return level


def _place(left: Columns, right: Columns) -> tuple[np.ndarray, ...]:
    """Same ZIP, same city, within 150 m, same region (within 50 km, or without coordinates
    the same 3-digit ZIP area). Computed once per pair of sides (``location`` and
    ``locality`` both read it)."""
    memo = left.memo.get(("place", id(right)))
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
    near = np.nan_to_num(dist, nan=np.inf) <= 150.0
    zl = left.text("n_zip3")
    zr = right.text("n_zip3")
    region = np.where(np.isnan(dist), exact(zl, zr), np.nan_to_num(dist, nan=np.inf) <= 50_000.0)
    out = (same_zip, same_city, near, region)
    left.memo[("place", id(right))] = (right, out)
    return out


def _location(cmp: Comparison, left: Columns, right: Columns) -> np.ndarray:
    la, ra = left.text("n_address"), right.text("n_address")
    same_zip, same_city, near, region = _place(left, right)
    same_place = same_zip | same_city
    same_number = exact(left.text("n_number"), right.text("n_number"))
    same_addr = exact(la, ra)
    # The same number on the same street, written with or without its directional or suffix.
    same_street_name = exact(left.text("n_street_name"), right.text("n_street_name"))
    missing = la.missing | ra.missing
    # The street similarity decides a level only in the same place, between different
    # addresses that the street name alone does not already settle: with the same number
    # at 0.85 (``address_fuzzy``), without it at 0.95 (``nearby_or_same_street``, which
    # being within 150 m gives anyway).
    todo = np.flatnonzero(
        ~missing
        & same_place
        & ~same_addr
        & ~(same_number & same_street_name)
        & (same_number | ~near)
    )
    street_sim = np.zeros(len(la), dtype=np.float64)
    cutoffs = np.where(same_number[todo], 0.85, 0.95)
    street_sim[todo] = _similarity_from(
        left.text("n_street"), right.text("n_street"), todo, "jaro_winkler", cutoffs
    )
    same_street = street_sim >= 0.95
    level = np.full(len(la), 6, dtype="int8")
    level[region] = 5
    level[same_city] = 4
    level[same_zip] = 3
    level[near | (same_street & same_place)] = 2
    fuzzy_addr = same_number & ((street_sim >= 0.85) | same_street_name) & same_place
    level[fuzzy_addr | (same_addr & ~same_place)] = 1
    level[same_addr & same_place] = 0
    # Without an address on both sides, the coarser ``locality`` comparison stands in.
    level[missing] = MISSING
    return level


def _locality(cmp: Comparison, left: Columns, right: Columns) -> np.ndarray:
    """Coarse place, for pairs without an address on both sides (a query by name and city):
    whichever of city, ZIP and coordinates both sides give."""
    same_zip, same_city, near, region = _place(left, right)
    level = np.full(len(left), 2, dtype="int8")
    level[region] = 1
    level[same_city | same_zip | near] = 0

    def nothing(side: Columns) -> np.ndarray:
        no_coords = np.isnan(side.number("n_lat"))
        return side.text("n_zip").missing & side.text("n_city").missing & no_coords

    level[nothing(left) | nothing(right)] = MISSING
    return level


def _facility_type(cmp: Comparison, left: Columns, right: Columns) -> np.ndarray:
    # a missing class reads as "", which is no class: the same as missing
    level = type_compatibility(left.text("n_class"), right.text("n_class"))
    return np.where(level < 0, MISSING, level)


def _phone(cmp: Comparison, left: Columns, right: Columns) -> np.ndarray:
    lp, rp = left.text("n_phone"), right.text("n_phone")
    level = np.where(exact(lp, rp), 0, 1).astype("int8")
    level[lp.missing | rp.missing] = MISSING
    return level


def _identifier(cmp: Comparison, left: Columns, right: Columns) -> np.ndarray:
    lv, rv = left.text(cmp.name), right.text(cmp.name)
    if lv.missing.all() or rv.missing.all():  # e.g. a query that gives no identifier
        return np.full(len(lv), MISSING, dtype="int8")
    level = np.where(exact(lv, rv), 0, 1).astype("int8")
    level[lv.missing | rv.missing] = MISSING
    return level


#: Per kind, the strongest level a pair can reach, found without the costly part of the
#: comparison (see :class:`Strongest`).
_STRONGEST = {"name": _name_strongest}

_COMPUTE = {
    "name": _name,
    "location": _location,
    "locality": _locality,
    "facility_type": _facility_type,
    "phone": _phone,
    "identifier": _identifier,
}

NAME = Comparison(
    "name",
    ("exact", "core_exact", "very_similar", "contained", "similar", "weak", "different"),
    tf_levels=(0, 1),
    tf_column="n_core",
    show=("name",),
    deferred=True,  # most of the comparing time: several similarity scorings per pair
)
LOCATION = Comparison(
    "location",
    (
        "address_exact",
        "address_fuzzy",
        "nearby_or_same_street",
        "same_zip",
        "same_city",
        "same_region",
        "elsewhere",
    ),
    tf_levels=(0, 1),
    tf_column="n_address",
    show=("address", "city", "zip"),
)
LOCALITY = Comparison(
    "locality",
    ("same_town", "same_region", "elsewhere"),
    show=("city", "zip"),
    stands_in_for="location",
)
FACILITY_TYPE = Comparison(
    "facility_type", ("same", "compatible", "incompatible"), show=("facility_type",)
)
PHONE = Comparison("phone", ("exact", "different"), show=("phone",))


def identifier_comparison(scheme: str) -> Comparison:
    """Agreement on an identifier scheme; a value many records share (a license that covers
    several sites) weighs less, through the term-frequency adjustment."""
    col = NID_PREFIX + scheme
    return Comparison(col, ("agree", "disagree"), tf_levels=(0,), tf_column=col, show=(col,))


def comparisons_for(frame: pd.DataFrame) -> list[Comparison]:
    """The comparisons that the columns present in ``frame`` support."""
    out = [NAME, LOCATION, LOCALITY]
    if frame["n_class"].notna().any():
        out.append(FACILITY_TYPE)
    if frame["n_phone"].notna().any():
        out.append(PHONE)
    for col in sorted(c for c in frame.columns if c.startswith(NID_PREFIX)):
        if frame[col].notna().any():
            out.append(identifier_comparison(col[len(NID_PREFIX) :]))
    return out


#: The normalized columns the comparisons read.
COMPARED_COLUMNS = (
    "n_name",
    "n_core",
    "n_other",
    "n_address",
    "n_number",
    "n_street",
    "n_street_name",
    "n_zip",
    "n_city",
    "n_lat",
    "n_lon",
    "n_class",
    "n_phone",
)


def compared_columns(frame: pd.DataFrame) -> list[str]:
    """The columns of ``frame`` that comparisons need: select them before taking rows by position."""
    return [c for c in frame.columns if c in COMPARED_COLUMNS or c.startswith(NID_PREFIX)]


#: Pairs compared per batch by :func:`compare_positions`: memory stays bounded whatever
#: the number of pairs.
COMPARE_BATCH = 100_000
#: Batches compared at once by :func:`compare_positions`.
COMPARE_WORKERS = THREADS


def record_columns(frame: pd.DataFrame) -> Columns:
    """The compared columns of ``frame``, converted once, ready for :func:`compare_positions`."""
    columns = compared_columns(frame)
    return Columns(frame[columns]).prepared(columns)


def compare_positions(
    frame: pd.DataFrame | Columns,
    left: np.ndarray,
    right: np.ndarray,
    comparisons: Sequence[Comparison | Strongest],
) -> pd.DataFrame:
    """Levels of the pairs of records of ``frame`` at positions ``left``/``right``, in batches.

    Each compared column is converted once for the whole frame (pass the
    :func:`record_columns` of the frame to share that conversion between calls); a batch
    takes its rows.
    """
    records = frame if isinstance(frame, Columns) else record_columns(frame)
    starts = range(0, len(left), COMPARE_BATCH)
    if len(starts) <= 1:
        return compare(records.take(left), records.take(right), comparisons)

    def batch(start: int) -> pd.DataFrame:
        end = start + COMPARE_BATCH
        return compare(records.take(left[start:end]), records.take(right[start:end]), comparisons)

    # Batches run on threads, one per core up to four: much of a batch's time is spent in
    # rapidfuzz and numpy outside the GIL.
    with ThreadPoolExecutor(max_workers=COMPARE_WORKERS) as pool:
        parts = list(pool.map(batch, starts))
    return pd.concat(parts, ignore_index=True)


def compare(
    left: pd.DataFrame | Columns,
    right: pd.DataFrame | Columns,
    comparisons: Sequence[Comparison | Strongest],
) -> pd.DataFrame:
    """Levels of every comparison for aligned ``left``/``right`` batches (same length).

    Each side is a batch or its :class:`Columns`; every column is converted once for all
    the comparisons that read it.
    """
    lc, rc = Columns.of(left), Columns.of(right)
    return pd.DataFrame({c.name: c.compute(lc, rc) for c in comparisons})


def comparison_by_name(name: str) -> Comparison:
    """The comparison a fitted model's field refers to."""
    for c in (NAME, LOCATION, LOCALITY, FACILITY_TYPE, PHONE):
        if c.name == name:
            return c
    if name.startswith(NID_PREFIX):
        return identifier_comparison(name[len(NID_PREFIX) :])
    raise KeyError(name)
