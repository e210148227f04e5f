"""A build publishes the same entities and links whatever the order of its sources' rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd

from crosswalk.config import load_config
from crosswalk.pipeline import build


def _reorder_xlsx(path: Path, sheet: str, order: np.ndarray) -> None:
    book = openpyxl.load_workbook(path)
    rows = list(book[sheet].iter_rows(values_only=True))
    out = openpyxl.Workbook()
    ws = out.active
    assert ws is not None
    ws.title = sheet
    ws.append(rows[0])
    for i in order.tolist():
        ws.append(rows[1 + i])
    out.save(path)


def _reorder_csv(path: Path, order: np.ndarray) -> None:
    rows = pd.read_csv(path, dtype=str, keep_default_na=False)
    rows.iloc[order].to_csv(path, index=False)


def _published(out: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(out / "crosswalk.sqlite") as conn:
        return {
            table: sorted(
                conn.execute(f"SELECT * FROM [{table}]").fetchall(),
                key=lambda row: tuple(str(v) for v in row),
            )
            for table in ("records", "entities", "links")
        }


def test_shuffled_sources_publish_the_same_entities_and_links(slice_dir: Path) -> None:
    cdph, hcai = slice_dir / "cdph_slice.xlsx", slice_dir / "hcai_slice.csv"
    sheet = "HEALTH_FAC_LOCATION_20200507"
    n_cdph = openpyxl.load_workbook(cdph)[sheet].max_row - 1
    n_hcai = len(pd.read_csv(hcai, dtype=str))
    config = slice_dir / "slice.toml"
    # Both copies go through the same writer: only the order of the rows differs.
    _reorder_xlsx(cdph, sheet, np.arange(n_cdph))
    _reorder_csv(hcai, np.arange(n_hcai))
    before = _published(build(load_config(config), slice_dir / "a", progress=False).out)
    rng = np.random.default_rng(11)
    _reorder_xlsx(cdph, sheet, rng.permutation(n_cdph))
    _reorder_csv(hcai, rng.permutation(n_hcai))
    after = _published(build(load_config(config), slice_dir / "b", progress=False).out)
    for table in before:
        assert after[table] == before[table], table
