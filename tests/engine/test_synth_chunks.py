"""``bench/synth.py`` writes listings larger than one chunk a chunk at a time."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from bench_scripts import load

synth = load("synth")


def _read(out: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    def read(name: str) -> pd.DataFrame:
        return pd.read_csv(out / name, dtype=str, keep_default_na=False)

    return read("dept_a.csv"), read("dept_b.csv"), read("truth.csv")


def test_chunked_listings_are_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synth, "CHUNK", 1_000)
    manifest = synth.generate(2_500, tmp_path, seed=3)
    left, right, truth = _read(tmp_path)
    # One header, every record once, ids unique across the chunks.
    assert len(left) == len(right) == 2_500
    assert left["facility_id"].is_unique and right["facility_id"].is_unique
    assert set(left["facility_id"].str.len()) == {9}
    assert manifest["chunk_records"] == 1_000
    # The truth: 80 % of each chunk, every pair naming records of the listings.
    assert len(truth) == manifest["truth_pairs"] == 800 + 800 + 400
    assert set(truth["dept_a_id"]) <= set(left["facility_id"])
    assert set(truth["dept_b_id"]) <= set(right["facility_id"])
    assert truth["dept_a_id"].is_unique and truth["dept_b_id"].is_unique
    assert json.loads((tmp_path / "manifest.json").read_text())["records_per_side"] == 2_500


def test_chunks_are_drawn_apart_and_reproducibly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(synth, "CHUNK", 1_000)
    synth.generate(2_000, tmp_path / "a", seed=3)
    synth.generate(2_000, tmp_path / "b", seed=3)
    for name in ("dept_a.csv", "dept_b.csv", "truth.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    left = _read(tmp_path / "a")[0]
    # The second chunk is not the first one again.
    assert list(left["name"].iloc[:1_000]) != list(left["name"].iloc[1_000:])


def test_one_chunk_is_drawn_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Up to one chunk, the listings are one draw of the seed: the chunk size does not
    # change them.
    synth.generate(1_500, tmp_path / "whole", seed=3)
    monkeypatch.setattr(synth, "CHUNK", 2_000)
    synth.generate(1_500, tmp_path / "chunk", seed=3)
    for name in ("dept_a.csv", "dept_b.csv", "truth.csv"):
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "chunk" / name).read_bytes()
