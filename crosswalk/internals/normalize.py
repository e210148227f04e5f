"""Normalize stage: canonical records in, records with comparable ``n_*`` columns out.

Pure and vectorized: every column is computed by the ``matchers`` functions
over whole Series. The input columns are kept unchanged; the stage only adds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crosswalk.sources import ID_PREFIX
from matchers.addresses import normalize_city, normalize_state, parse_addresses, zip5
from matchers.facility_types import facility_class
from matchers.identifiers import normalize_identifier
from matchers.names import name_core, normalize_name
from matchers.phones import normalize_phone

#: Normalized-identifier column prefix.
NID_PREFIX = "nid:"


def _text(s: pd.Series) -> pd.Series:
    return s.astype("string")


def normalize_records(records: pd.DataFrame) -> pd.DataFrame:
    """Add the normalized columns the blocking and comparison stages use."""
    out = records.copy()
    n = len(out)
    empty = pd.Series(pd.NA, index=out.index, dtype="string")
    name = _text(out["name"]) if "name" in out else empty
    out["n_name"] = normalize_name(name).astype("string")
    out["n_core"] = name_core(out["n_name"]).astype("string")
    other = _text(out["other_names"]) if "other_names" in out else empty
    first_other = other.str.split(" | ", n=1, regex=False).str[0]
    out["n_other"] = normalize_name(first_other).astype("string")
    addr = parse_addresses(_text(out["address"]) if "address" in out else empty)
    out["n_number"] = addr["street_number"].astype("string").values
    out["n_street"] = addr["street"].astype("string").values
    out["n_street_name"] = addr["street_name"].astype("string").values
    out["n_unit"] = addr["unit"].astype("string").values
    out["n_address"] = addr["address_norm"].astype("string").values
    out["n_city"] = normalize_city(_text(out["city"]) if "city" in out else empty).astype("string")
    out["n_state"] = normalize_state(_text(out["state"]) if "state" in out else empty).astype(
        "string"
    )
    out["n_zip"] = zip5(_text(out["zip"]) if "zip" in out else empty).astype("string")
    out["n_phone"] = normalize_phone(_text(out["phone"]) if "phone" in out else empty).astype(
        "string"
    )
    out["n_class"] = facility_class(
        _text(out["facility_type"]) if "facility_type" in out else empty
    ).astype("string")
    for axis in ("latitude", "longitude"):
        values = (
            pd.to_numeric(out[axis], errors="coerce")
            if axis in out
            else pd.Series(np.nan, index=out.index)
        )
        arr = np.array(values.to_numpy(dtype="float64", na_value=np.nan), dtype="float64")
        bound = 90.0 if axis == "latitude" else 180.0
        arr[(np.abs(arr) > bound) | (arr == 0.0)] = np.nan
        out[f"n_{axis[:3]}"] = arr
    for col in [c for c in records.columns if c.startswith(ID_PREFIX)]:
        scheme = col[len(ID_PREFIX) :]
        out[NID_PREFIX + scheme] = normalize_identifier(scheme, _text(out[col])).astype("string")
    assert len(out) == n
    return out
