"""Normalize stage: canonical records in, records with comparable ``n_*`` columns out.

Pure and vectorized: every column is computed by the ``matchers`` functions
over whole Series. The input columns are kept unchanged; the stage only adds.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from crosswalk.stages.rules import NormalizeRules, SourceRules
from crosswalk.vocabulary import ID_PREFIX, NID_PREFIX
from matchers._text import as_string
from matchers.addresses import address_parts, normalize_city, normalize_state, zip5
from matchers.facility_types import facility_class
from matchers.identifiers import normalize_identifier
from matchers.names import GENERIC_WORDS, name_and_core, normalize_name
from matchers.phones import normalize_phone

#: The words a name's core drops whatever the listing: articles, connectors and legal
#: forms. With ``generic_words = false`` the other words of :data:`GENERIC_WORDS`
#: (HOSPITAL, CENTER, HOME, CARE, ...) are kept.
PLAIN_WORDS = frozenset(
    {"A", "AN", "THE", "OF", "AND", "AT", "FOR", "INC", "INCORPORATED", "LLC", "CORPORATION"}
    | {"COMPANY"}
)
assert PLAIN_WORDS <= GENERIC_WORDS


@functools.cache
def dropped_words(rules: SourceRules) -> frozenset[str] | None:
    """The words a name's core drops under ``rules`` (``None``: :data:`GENERIC_WORDS`)."""
    if rules.generic_words and not rules.extra_generic_words:
        return None
    kept = GENERIC_WORDS if rules.generic_words else PLAIN_WORDS
    return kept | frozenset(rules.extra_generic_words)


def facility_classes(
    wording: pd.Series, facility_types: Mapping[str, str] | tuple[tuple[str, str], ...] = ()
) -> pd.Series:
    """The class of each facility-type wording: ``facility_types`` (wordings upper case and
    trimmed) first, then :func:`matchers.facility_types.facility_class`."""
    if facility_types:
        mapped = wording.str.strip().str.upper().map(dict(facility_types))
        wording = mapped.astype("string").fillna(wording)
    return facility_class(wording)


#: The normalized columns that only blocking and the comparisons read (and the matcher,
#: which normalizes its published records again): a build's published tables do not.
COMPARED_ONLY = (
    "n_core",
    "n_other",
    "n_number",
    "n_street",
    "n_street_name",
    "n_unit",
    "n_address",
    "n_city",
    "n_phone",
)


def published_records(records: pd.DataFrame) -> pd.DataFrame:
    """The clustered ``records`` without their :data:`COMPARED_ONLY` columns: a new frame
    sharing the others, so that a build lets those columns go once its records are
    clustered instead of holding them until it has published."""
    return records.drop(columns=[c for c in COMPARED_ONLY if c in records.columns])


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
    names = text("name")
    new["n_name"], new["n_core"] = _per_source(
        records,
        rules,
        names,
        lambda part, r: name_and_core(part, saint=r.saint, generic_words=dropped_words(r)),
    )
    other = text("other_names")
    first_other = (
        other if other.array.isna().all() else other.str.split(" | ", n=1, regex=False).str[0]
    )
    (new["n_other"],) = _per_source(
        records, rules, first_other, lambda part, r: (normalize_name(part, saint=r.saint),)
    )
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
    (new["n_class"],) = _per_source(
        records,
        rules,
        text("facility_type"),
        lambda part, r: (facility_classes(part, r.facility_types),),
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
    fn: Callable[[pd.Series, SourceRules], tuple[pd.Series, ...]],
) -> tuple[pd.Series, ...]:
    """The text Series ``fn`` gives of ``values``: for each part of the rows whose
    sources share rules, with those rules (one call when they all share them)."""
    if not rules.by_source or "source" not in records:
        return fn(values, rules.default)
    source = records["source"].to_numpy(dtype=object)
    parts: dict[SourceRules, list[str]] = {}
    for name in pd.unique(source):
        parts.setdefault(rules.of(str(name)), []).append(name)
    if len(parts) == 1:
        return fn(values, next(iter(parts)))
    outs: list[pd.Series] = []
    for r, names in parts.items():
        rows = np.flatnonzero(np.isin(source, names))
        got = fn(values.iloc[rows], r)
        if not outs:
            outs = [pd.Series(pd.NA, index=values.index, dtype=g.dtype) for g in got]
        for out, part in zip(outs, got, strict=True):
            out.iloc[rows] = part.array
    return tuple(outs)
