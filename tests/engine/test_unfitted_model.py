"""A build that compares no pairs (one source whose entities hold one record each) has
nothing to fit its model on: it publishes the documented unfitted model, finite, and
says so, rather than a model of NaN that scores every query 0."""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from crosswalk.matching import Matcher

ROOT = Path(__file__).resolve().parents[2]


def _one_source(slice_dir: Path) -> Path:
    """The slice's config with its CDPH source only."""
    text = (slice_dir / "slice.toml").read_text(encoding="utf-8")
    config = slice_dir / "cdph_only.toml"
    config.write_text(text.split('\n[[source]]\nname = "hcai"')[0], encoding="utf-8")
    return config


@pytest.fixture(scope="module")
def one_source_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    import shutil

    slice_dir = tmp_path_factory.mktemp("slice")
    shutil.copytree(ROOT / "tests" / "data", slice_dir, dirs_exist_ok=True)
    config = _one_source(slice_dir)
    out = slice_dir / "out"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "crosswalk.cli",
            "build",
            "--config",
            str(config),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return out / "crosswalk.sqlite", done.stderr


def _model(db: Path) -> dict:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return json.loads(con.execute("SELECT value FROM meta WHERE key = 'model'").fetchone()[0])
    finally:
        con.close()


def test_the_published_model_is_finite_and_says_it_was_not_fitted(
    one_source_build: tuple[Path, str],
) -> None:
    db, _ = one_source_build
    model = _model(db)
    assert math.isfinite(model["prior"]) and 0 < model["prior"] < 1
    assert math.isfinite(model["lambda_candidates"])
    assert model["trained_on"].startswith("unfitted")
    for f in model["fields"]:
        values = [*f["m"], *f["u"], *f["bits"]]
        assert all(math.isfinite(v) for v in values), f["name"]
    name = next(f for f in model["fields"] if f["name"] == "name")
    # the strongest name level is evidence for a match, the weakest against
    assert name["bits"][0] > 5 and name["bits"][-1] < 0


def test_the_build_warns_that_the_model_was_not_fitted(one_source_build: tuple[Path, str]) -> None:
    _, stderr = one_source_build
    assert "model" in stderr and "not fitted" in stderr, stderr
    assert "no pairs" in stderr


def test_a_record_queried_by_its_own_fields_scores_high(one_source_build: tuple[Path, str]) -> None:
    db, _ = one_source_build
    matcher = Matcher.from_sqlite(db)
    records = matcher.records.dropna(subset=["name", "address", "city", "zip"]).head(20)
    queries = [{k: r[k] for k in ("name", "address", "city", "zip")} for _, r in records.iterrows()]
    results = matcher.match(queries, limit=1)
    for (_, record), found in zip(records.iterrows(), results, strict=True):
        assert found, record["name"]
        assert math.isfinite(found[0].match_probability)
        assert found[0].match_probability > 0.9, (record["name"], found[0])
