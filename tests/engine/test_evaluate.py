"""`crosswalk evaluate`: the headline's scope, and a truth declared complete."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crosswalk.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def falsely_linked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A complete truth of the slice's crosswalk (every pair it links), and that crosswalk
    with one false link added between two records the truth does not name (one of each
    source, each alone in its entity, put into one entity)."""
    out = tmp_path_factory.mktemp("evaluate") / "build"
    proc = _run("build", "--config", "tests/data/slice.toml", "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    db = out / "crosswalk.sqlite"
    with sqlite3.connect(db) as conn:
        recs = pd.read_sql_query("SELECT source, record_id, entity_id FROM records", conn)
    pairs = recs[recs.source == "cdph"].merge(recs[recs.source == "hcai"], on="entity_id")
    labelled = pd.DataFrame({"FACID": pairs.record_id_x, "OSHPD_ID": pairs.record_id_y})
    assert len(labelled) > 100
    truth = out.parent / "truth.csv"
    labelled.to_csv(truth, index=False)
    with sqlite3.connect(db) as conn:
        sizes = recs.groupby("entity_id").size()
        alone = recs[recs["entity_id"].map(sizes) == 1]
        left = alone[(alone.source == "cdph") & ~alone.record_id.isin(labelled.FACID)].iloc[0]
        right = alone[(alone.source == "hcai") & ~alone.record_id.isin(labelled.OSHPD_ID)].iloc[0]
        conn.execute(
            "UPDATE records SET entity_id = ? WHERE source = 'hcai' AND record_id = ?",
            (left.entity_id, right.record_id),
        )
    return db, truth


def _evaluate(db: Path, truth: Path, *extra: str) -> dict[str, object]:
    proc = _run("evaluate", "--db", str(db), "--truth", str(truth), "--no-blocking", *extra)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout) if "--json" in extra else {"text": proc.stdout}


def test_a_complete_truth_judges_every_pair(falsely_linked: tuple[Path, Path]) -> None:
    db, truth = falsely_linked
    partial = _evaluate(db, truth, "--json")
    complete = _evaluate(db, truth, "--json", "--complete-truth")
    assert isinstance(partial["headline"], dict) and isinstance(complete["headline"], dict)
    # the labelled scope does not see the false link; every pair's scope does
    assert partial["headline"]["scope"] == "labelled"
    assert partial["headline"]["precision"] == 1.0
    assert partial["headline"]["false_positives"] == 0
    assert complete["headline"]["scope"] == "all"
    assert complete["headline"]["false_positives"] == 1
    assert complete["headline"]["precision"] < 1.0
    assert complete["headline"]["recall"] == partial["headline"]["recall"] == 1.0


def test_the_summary_names_its_scope(falsely_linked: tuple[Path, Path]) -> None:
    db, truth = falsely_linked
    partial = str(_evaluate(db, truth)["text"])
    complete = str(_evaluate(db, truth, "--complete-truth")["text"])
    assert "headline, on pairs touching a labelled record" in partial
    assert "--complete-truth" in partial
    assert "headline, on every predicted pair (the truth is declared complete)" in complete
