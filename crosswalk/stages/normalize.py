"""Normalize stage: canonical records in, records with comparable ``n_*`` columns out.

Pure and vectorized: every column is computed by the ``matchers`` functions
over whole Series. The input columns are kept unchanged; the stage only adds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crosswalk.vocabulary import ID_PREFIX, NID_PREFIX
from matchers._text import as_string
from matchers.addresses import address_parts, normalize_city, normalize_state, zip5
from matchers.facility_types import facility_class
from matchers.identifiers import normalize_identifier
from matchers.names import name_and_core, normalize_name
from matchers.phones import normalize_phone


@dataclass(frozen=True)
class SourceRules:
    """How the records of one source are normalized (plain data, from its config)."""

    #: The source's own facility-type wordings, upper case and trimmed, each with the class
    #: of :data:`matchers.facility_types.FACILITY_CLASSES` it maps to.
    facility_types: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class NormalizeRules:
    """The rules of every source: ``by_source`` for those that have their own, ``default``
    for the others (and for queries)."""

    default: SourceRules = SourceRules()
    by_source: Mapping[str, SourceRules] = field(default_factory=dict)

    def of(self, source: str) -> SourceRules:
        return self.by_source.get(source, self.default)


def facility_classes(
    wording: pd.Series, facility_types: Mapping[str, str] | tuple[tuple[str, str], ...] = ()
) -> pd.Series:
    """The class of each facility-type wording: ``facility_types`` (wordings upper case and
    trimmed) first, then :func:`matchers.facility_types.facility_class`."""
    if facility_types:
        mapped = wording.str.strip().str.upper().map(dict(facility_types))
        wording = mapped.astype("string").fillna(wording)
    return facility_class(wording)


def normalize_records(records: pd.DataFrame, rules: NormalizeRules | None = None) -> pd.DataFrame:
    """Add the normalized columns the blocking and comparison stages use.

    The ``matchers`` normalizers return ``string`` (pyarrow) Series on the index of
    their input; the new columns are assembled and added in one step (a new frame: the
    input is not changed). Each row is normalized on its own, so a runner may split a
    large batch into parts normalized at once and put them back together in its order:
    the result is the same.
    """
    return normalize_batch(records, rules)


def normalize_batch(records: pd.DataFrame, rules: NormalizeRules | None = None) -> pd.DataFrame:
    """:func:`normalize_records` of a batch of rows (the plan's row-wise stage)."""
    rules = rules or NormalizeRules()
    index = records.index
    empty = pd.Series(pd.NA, index=index, dtype="string")

    def text(col: str) -> pd.Series:
        return as_string(records[col]) if col in records else empty

    new: dict[str, pd.Series | np.ndarray] = {}
    new["n_name"], new["n_core"] = name_and_core(text("name"))
    other = text("other_names")
    first_other = (
        other if other.array.isna().all() else other.str.split(" | ", n=1, regex=False).str[0]
    )
    new["n_other"] = normalize_name(first_other)
    addr = address_parts(
        text("address"), ("street_number", "street", "street_name", "unit", "address_norm")
    )
    new["n_number"] = addr["street_number"]
    new["n_street"] = addr["street"]
    new["n_street_name"] = addr["street_name"]
    new["n_unit"] = addr["unit"]
    new["n_address"] = addr["address_norm"]
    new["n_city"] = normalize_city(text("city"))
    new["n_state"] = normalize_state(text("state"))
    new["n_zip"] = zip5(text("zip"))
    new["n_phone"] = normalize_phone(text("phone"))
    new["n_class"] = _per_source(
        records,
        rules,
        text("facility_type"),
        lambda part, r: facility_classes(part, r.facility_types),
    )
    for axis in ("latitude", "longitude"):
        values = (
            pd.to_numeric(records[axis], errors="coerce")
            if axis in records
            else pd.Series(np.nan, index=index)
        )
        arr = np.array(values.to_numpy(dtype="float64", na_value=np.nan), dtype="float64")
        bound = 90.0 if axis == "latitude" else 180.0
        arr[(np.abs(arr) > bound) | (arr == 0.0)] = np.nan
        new[f"n_{axis[:3]}"] = arr
    for col in [c for c in records.columns if c.startswith(ID_PREFIX)]:
        scheme = col[len(ID_PREFIX) :]
        new[NID_PREFIX + scheme] = normalize_identifier(scheme, text(col))
    # Normalizing again replaces the columns in place; the first time appends them.
    return records.assign(**{c: v.array if isinstance(v, pd.Series) else v for c, v in new.items()})


def _per_source(
    records: pd.DataFrame,
    rules: NormalizeRules,
    values: pd.Series,
    fn: Callable[[pd.Series, SourceRules], pd.Series],
) -> pd.Series:
    """``fn`` of ``values``, each part of the rows whose sources share rules with those
    rules (one call when every source has the default rules)."""
    if not rules.by_source or "source" not in records:
        return fn(values, rules.default)
    source = records["source"].to_numpy(dtype=object)
    parts: dict[SourceRules, list[str]] = {}
    for name in pd.unique(source):
        parts.setdefault(rules.of(str(name)), []).append(name)
    if len(parts) == 1:
        return fn(values, next(iter(parts)))
    out = pd.Series(pd.NA, index=values.index, dtype="string")
    for r, names in parts.items():
        rows = np.flatnonzero(np.isin(source, names))
        out.iloc[rows] = fn(values.iloc[rows], r).array
    return out
