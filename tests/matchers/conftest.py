"""Real data for the matcher tests: the embedded listings and the truth pairs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
TRUTH_PATH = ROOT / "bench" / "data" / "cdph2020_hcai2020_same_facility.csv"
HCAI_PATH = ROOT / "data" / "hcai_current_healthcare_facility_listing_2020-10.csv"


@pytest.fixture(scope="session")
def truth() -> pd.DataFrame:
    """CDPH 2020 / HCAI 2020 pairs known to be the same facility (all columns as text)."""
    return pd.read_csv(TRUTH_PATH, dtype=str, keep_default_na=False, na_values=[""])


@pytest.fixture(scope="session")
def hcai() -> pd.DataFrame:
    return pd.read_csv(HCAI_PATH, dtype=str, keep_default_na=False, na_values=[""])
