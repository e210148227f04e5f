"""Normalize stage: canonical records in, records with comparable ``n_*`` columns out.

Pure and vectorized: every column is computed by the ``matchers`` functions
over whole Series. The input columns are kept unchanged; the stage only adds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crosswalk.vocabulary import ID_PREFIX, NID_PREFIX
from matchers._text import as_string
from matchers.addresses import address_parts, normalize_city, normalize_state, zip5
from matchers.facility_types import facility_class
from matchers.identifiers import normalize_identifier
from matchers.names import name_and_core, normalize_name
from matchers.phones import normalize_phone


def normalize_records(records: pd.DataFrame) -> pd.DataFrame:
    """Add the normalized columns the blocking and comparison stages use.

    The ``matchers`` normalizers return ``string`` (pyarrow) Series on the index of
    their input; the new columns are assembled and added in one step (a new frame: the
    input is not changed). Each row is normalized on its own, so a runner may split a
    large batch into parts normalized at once and put them back together in its order:
    the result is the same.
    """
    return normalize_batch(records)


def normalize_batch(records: pd.DataFrame) -> pd.DataFrame:
    """:func:`normalize_records` of a batch of rows (the plan's row-wise stage)."""
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
    new["n_class"] = facility_class(text("facility_type"))
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
