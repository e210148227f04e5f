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

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crosswalk.internals.normalize import NID_PREFIX
from matchers.compare import exact, haversine_m, similarity
from matchers.facility_types import type_compatibility

MISSING = -1


def _blank(s: pd.Series) -> np.ndarray:
    return (s.isna() | (s.astype("string").fillna("") == "")).to_numpy()


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

    def compute(self, left: pd.DataFrame, right: pd.DataFrame) -> np.ndarray:
        fn = _COMPUTE[self.kind]
        return fn(self, left, right).astype("int8")

    @property
    def kind(self) -> str:
        return self.name if not self.name.startswith(NID_PREFIX) else "identifier"


def _name(cmp: Comparison, left: pd.DataFrame, right: pd.DataFrame) -> np.ndarray:
    ln, rn = left["n_name"].astype("string"), right["n_name"].astype("string")
    lc, rc = left["n_core"].astype("string"), right["n_core"].astype("string")
    lo, ro = left["n_other"].astype("string"), right["n_other"].astype("string")
    # Similarity of the distinctive part of the names: generic words such as
    # HOME HEALTH or CENTER would make unrelated names look alike.
    strong = np.fmax(similarity(lc, rc, "jaro_winkler"), similarity(lc, rc, "token_sort"))
    # Another name (business or DBA name) of one side against the other's name.
    alt = np.fmax(similarity(lo, rn, "token_sort"), similarity(ln, ro, "token_sort"))
    strong = np.fmax(strong, np.nan_to_num(alt, nan=0.0))
    subset = np.fmax(similarity(lc, rc, "token_set"), 0.0)
    level = np.full(len(ln), 6, dtype="int8")
    level[(strong >= 0.6) | (subset >= 0.8)] = 5
    level[strong >= 0.8] = 4
    # One core name's words all stand in the other ("AMEDISYS" / "AMEDISYS HAYWARD PARENT"):
    # branch, campus and city suffixes.
    level[subset >= 0.995] = 3
    level[strong >= 0.92] = 2
    level[exact(lc, rc)] = 1
    level[exact(ln, rn)] = 0
    level[_blank(ln) | _blank(rn)] = MISSING
    return level


def _place(left: pd.DataFrame, right: pd.DataFrame) -> tuple[np.ndarray, ...]:
    """Same ZIP, same city, within 150 m, same region (within 50 km, or without coordinates
    the same 3-digit ZIP area)."""
    same_zip = exact(left["n_zip"].astype("string"), right["n_zip"].astype("string"))
    same_city = exact(left["n_city"].astype("string"), right["n_city"].astype("string"))
    dist = haversine_m(
        left["n_lat"].to_numpy(dtype="float64"),
        left["n_lon"].to_numpy(dtype="float64"),
        right["n_lat"].to_numpy(dtype="float64"),
        right["n_lon"].to_numpy(dtype="float64"),
    )
    near = np.nan_to_num(dist, nan=np.inf) <= 150.0
    zl = left["n_zip"].astype("string").str[:3]
    zr = right["n_zip"].astype("string").str[:3]
    region = np.where(np.isnan(dist), exact(zl, zr), np.nan_to_num(dist, nan=np.inf) <= 50_000.0)
    return same_zip, same_city, near, region


def _location(cmp: Comparison, left: pd.DataFrame, right: pd.DataFrame) -> np.ndarray:
    la, ra = left["n_address"].astype("string"), right["n_address"].astype("string")
    same_zip, same_city, near, region = _place(left, right)
    same_place = same_zip | same_city
    same_number = exact(left["n_number"].astype("string"), right["n_number"].astype("string"))
    street_sim = np.nan_to_num(
        similarity(
            left["n_street"].astype("string"), right["n_street"].astype("string"), "jaro_winkler"
        ),
        nan=0.0,
    )
    same_addr = exact(la, ra)
    same_street = street_sim >= 0.95
    level = np.full(len(la), 6, dtype="int8")
    level[region] = 5
    level[same_city] = 4
    level[same_zip] = 3
    level[near | (same_street & same_place)] = 2
    # The same number on the same street, written with or without its directional or suffix.
    same_street_name = exact(
        left["n_street_name"].astype("string"), right["n_street_name"].astype("string")
    )
    fuzzy_addr = same_number & ((street_sim >= 0.85) | same_street_name) & same_place
    level[fuzzy_addr | (same_addr & ~same_place)] = 1
    level[same_addr & same_place] = 0
    # Without an address on both sides, the coarser ``locality`` comparison stands in.
    level[_blank(la) | _blank(ra)] = MISSING
    return level


def _locality(cmp: Comparison, left: pd.DataFrame, right: pd.DataFrame) -> np.ndarray:
    """Coarse place, for pairs without an address on both sides (a query by name and city):
    whichever of city, ZIP and coordinates both sides give."""
    same_zip, same_city, near, region = _place(left, right)
    level = np.full(len(left), 2, dtype="int8")
    level[region] = 1
    level[same_city | same_zip | near] = 0

    def nothing(frame: pd.DataFrame) -> np.ndarray:
        no_coords = np.isnan(frame["n_lat"].to_numpy(dtype="float64"))
        return _blank(frame["n_zip"]) & _blank(frame["n_city"]) & no_coords

    level[nothing(left) | nothing(right)] = MISSING
    return level


def _facility_type(cmp: Comparison, left: pd.DataFrame, right: pd.DataFrame) -> np.ndarray:
    level = np.asarray(
        type_compatibility(left["n_class"].astype("string"), right["n_class"].astype("string"))
    )
    return np.where(level < 0, MISSING, level)


def _phone(cmp: Comparison, left: pd.DataFrame, right: pd.DataFrame) -> np.ndarray:
    lp, rp = left["n_phone"].astype("string"), right["n_phone"].astype("string")
    level = np.where(exact(lp, rp), 0, 1).astype("int8")
    level[_blank(lp) | _blank(rp)] = MISSING
    return level


def _identifier(cmp: Comparison, left: pd.DataFrame, right: pd.DataFrame) -> np.ndarray:
    lv, rv = left[cmp.name].astype("string"), right[cmp.name].astype("string")
    if lv.isna().all() or rv.isna().all():  # e.g. a query that gives no identifier
        return np.full(len(lv), MISSING, dtype="int8")
    level = np.where(exact(lv, rv), 0, 1).astype("int8")
    level[_blank(lv) | _blank(rv)] = MISSING
    return level


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


def compare(left: pd.DataFrame, right: pd.DataFrame, comparisons: list[Comparison]) -> pd.DataFrame:
    """Levels of every comparison for aligned ``left``/``right`` batches (same length)."""
    left = left.reset_index(drop=True)
    right = right.reset_index(drop=True)
    return pd.DataFrame({c.name: c.compute(left, right) for c in comparisons})


def comparison_by_name(name: str) -> Comparison:
    """The comparison a fitted model's field refers to."""
    for c in (NAME, LOCATION, LOCALITY, FACILITY_TYPE, PHONE):
        if c.name == name:
            return c
    if name.startswith(NID_PREFIX):
        return identifier_comparison(name[len(NID_PREFIX) :])
    raise KeyError(name)
