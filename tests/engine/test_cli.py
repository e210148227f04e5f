"""The command line: helpful --help, explain, evaluate and the Python API over DataFrames."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import crosswalk
from crosswalk.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crosswalk.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    proc = _run(command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "usage: crosswalk" in proc.stdout and len(proc.stdout.splitlines()) > 4


def test_help_does_not_load_the_engine() -> None:
    """``--help`` answers at once: building the parser imports neither pandas nor the engine."""
    code = (
        "import sys; from crosswalk.cli import make_parser; make_parser(); "
        "print(sorted(m for m in ('pandas', 'numpy', 'crosswalk.pipeline') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_public_api_names_resolve() -> None:
    """Every name in ``crosswalk.__all__`` is importable, and ``link`` is the DataFrame linker."""
    for name in crosswalk.__all__:
        assert getattr(crosswalk, name) is not None, name
    from crosswalk.pipeline import link_frames

    assert crosswalk.link is link_frames
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = crosswalk.nope  # type: ignore[attr-defined]


def test_top_level_help_lists_the_commands() -> None:
    proc = _run("--help")
    assert proc.returncode == 0
    for command in COMMANDS:
        assert command in proc.stdout


def test_explain_shows_each_fields_contribution(built_crosswalk: Path) -> None:
    db = built_crosswalk / "crosswalk.sqlite"
    proc = _run("explain", "cdph:010000001", "hcai:206492251", "--db", str(db), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["same_entity"] is True and out["match_probability"] > 0.99
    total = out["prior_weight"] + sum(f["weight"] for f in out["fields"].values())
    assert abs(total - out["match_weight"]) < 0.01
    assert out["fields"]["name"]["level"] == "exact"
    text = _run("explain", "cdph:010000001", "hcai:206492251", "--db", str(db))
    assert "VINEYARD POST ACUTE" in text.stdout


def test_explain_unknown_record_is_a_clear_error(built_crosswalk: Path) -> None:
    proc = _run(
        "explain", "cdph:nope", "hcai:206492251", "--db", str(built_crosswalk / "crosswalk.sqlite")
    )
    assert proc.returncode == 2
    assert "no record cdph:nope" in proc.stderr and "Traceback" not in proc.stderr


def test_evaluate_writes_the_errors(
    built_crosswalk: Path, truth_path: Path, tmp_path: Path
) -> None:
    errors = tmp_path / "errors.csv"
    proc = _run(
        "evaluate",
        "--db",
        str(built_crosswalk / "crosswalk.sqlite"),
        "--truth",
        str(truth_path),
        "--errors",
        str(errors),
        "--json",
        "--no-blocking",
    )
    assert proc.returncode == 0, proc.stderr
    ev = json.loads(proc.stdout)
    with open(errors, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == ev["false_positives"] + ev["false_negatives"]
    assert {r["error"] for r in rows} <= {"false_positive", "false_negative"}


def test_link_dataframes_in_memory() -> None:
    config = crosswalk.load_config(ROOT / "tests" / "data" / "slice.toml")
    frames = {
        "cdph": pd.read_excel(
            ROOT / "tests" / "data" / "cdph_slice.xlsx", dtype=str, engine="calamine"
        ),
        "hcai": pd.read_csv(ROOT / "tests" / "data" / "hcai_slice.csv", dtype=str),
    }
    linkage = crosswalk.link(frames, config)
    table = linkage.crosswalk()
    assert len(table) == len(frames["cdph"]) + len(frames["hcai"])
    truth = pd.read_csv(ROOT / "tests" / "data" / "truth_slice.csv", dtype=str)
    got = set(map(tuple, linkage.same_entity_pairs("cdph", "hcai").to_numpy().tolist()))
    hit = sum((a, b) in got for a, b in zip(truth.FACID, truth.OSHPD_ID, strict=True))
    assert hit / len(truth) >= 0.97
    with pytest.raises(crosswalk.SourceError, match="no DataFrame was given"):
        crosswalk.link({"cdph": frames["cdph"]}, config)


def test_matcher_takes_odd_queries_and_older_builds(built_crosswalk: Path, tmp_path: Path) -> None:
    import shutil
    import sqlite3

    matcher = crosswalk.Matcher.from_sqlite(built_crosswalk / "crosswalk.sqlite")
    odd = matcher.match([{"name": "%%%"}, {"address": "2070 Clinton Ave", "zip": "94501"}, {}])
    assert len(odd) == 3
    # A build whose stored config has a key this engine no longer knows still serves matches.
    old = tmp_path / "old.sqlite"
    shutil.copy(built_crosswalk / "crosswalk.sqlite", old)
    with sqlite3.connect(old) as conn:
        cfg = json.loads(conn.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()[0])
        cfg["model"]["retired_setting"] = True
        cfg["blocking"]["retired_setting"] = 1
        conn.execute("UPDATE meta SET value = ? WHERE key = 'config'", (json.dumps(cfg),))
    top = crosswalk.Matcher.from_sqlite(old).match(
        [
            {
                "name": "ALAMEDA HOSPITAL",
                "address": "2070 Clinton Ave",
                "city": "Alameda",
                "zip": "94501",
            }
        ]
    )[0][0]
    assert top.match_probability > 0.9
    assert "ALAMEDA HOSPITAL" in (top.explanation["name"]["right"] or "")


def test_build_summary_names_publishers_and_extract_dates(tmp_path: Path) -> None:
    proc = _run(
        "build",
        "--config",
        str(ROOT / "tests" / "data" / "slice.toml"),
        "--out",
        str(tmp_path / "o"),
    )
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    assert "records: cdph" in text and "entities" in text and "candidate pairs" in text
    assert "California Department of Public Health" in text and "extract 2020-05-07" in text
    assert "Health Care Access and Information" in text and "extract 2020-10" in text


def test_a_query_by_name_and_city_alone_finds_its_entity(built_crosswalk: Path) -> None:
    """Without an address, the coarser locality comparison stands in for the address one."""
    import sqlite3

    with sqlite3.connect(built_crosswalk / "crosswalk.sqlite") as conn:
        rows = conn.execute(
            "SELECT r.name, r.city, r.entity_id FROM records r WHERE r.source = 'hcai' "
            "AND r.facility_type = 'General Acute Care Hospital' AND (SELECT count(*) FROM records o "
            "WHERE upper(o.name) = upper(r.name)) <= 2 ORDER BY r.record_id LIMIT 25"
        ).fetchall()
    matcher = crosswalk.Matcher.from_sqlite(built_crosswalk / "crosswalk.sqlite")
    results = matcher.match([{"name": n, "city": c} for n, c, _ in rows], limit=3)
    right = [res[0].entity_id == e for res, (_, _, e) in zip(results, rows, strict=True) if res]
    assert len(right) == len(rows) and sum(right) >= 0.9 * len(rows)
    confident = [res[0].match_probability for res in results]
    assert sorted(confident)[len(confident) // 2] > 0.8, (
        "an exact name in its city is strong evidence"
    )
    top = results[0][0]
    assert top.explanation["location"]["level"] == "missing"
    assert (
        top.explanation["locality"]["level"] == "same_town"
        and top.explanation["locality"]["weight"] > 3
    )


def test_the_default_output_directory_is_out_not_setuptools_build(tmp_path: Path) -> None:
    """``pip install .`` writes setuptools' ``build/lib``: the default build goes to ``out/``,
    and every command that reads a build looks there by default."""
    config = ROOT / "tests" / "data" / "slice.toml"
    (tmp_path / "build" / "lib").mkdir(parents=True)  # as `pip install .` leaves it
    cli = [sys.executable, "-m", "crosswalk.cli"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*cli, *args], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env
        )

    built = run("build", "--config", str(config), "--quiet")
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "out" / "crosswalk.sqlite").is_file()
    assert [p.name for p in (tmp_path / "build").iterdir()] == ["lib"]
    explained = run("explain", "cdph:010000096", "hcai:406480927", "--json")
    assert explained.returncode == 0, explained.stderr
    truth = str(ROOT / "tests" / "data" / "truth_slice.csv")
    evaluated = run("evaluate", "--truth", truth, "--no-blocking", "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    for command in (
        ["build"],
        ["evaluate"],
        ["explain"],
        ["serve"],
        ["release"],
        ["reviewers", "queue"],
    ):
        text = run(*command, "--help").stdout
        assert "(default: out" in " ".join(text.split()), (command, text)
        assert "default: build" not in " ".join(text.split()), (command, text)


def test_build_summary_names_the_files_written_and_what_to_do_next(tmp_path: Path) -> None:
    out = tmp_path / "o"
    store = tmp_path / "review" / "r.sqlite"
    config = str(ROOT / "tests" / "data" / "slice.toml")
    proc = _run("build", "--config", config, "--out", str(out), "--review-store", str(store))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    written = [p.name for p in sorted(out.iterdir())]
    for name in written:
        assert f"  {out / name}" in lines, (name, proc.stdout)
    db = out / "crosswalk.sqlite"
    for command in (
        f"crosswalk serve --db {db} --review-store {store}",
        f"crosswalk release --build {out} --releases releases/",
        f"crosswalk reviewers add --store {store} --db {db} --department cdph --username NAME",
        f"datasette {db}",
    ):
        assert any(line.strip().startswith(command) for line in lines), (command, proc.stdout)


def test_read_sources_then_link_gives_the_builds_crosswalk(tmp_path: Path) -> None:
    """`crosswalk.read_sources` reads the frames as a build does (ids as text, leading zeros
    kept), and `Linkage.crosswalk()` has crosswalk.csv's columns and values."""
    config = crosswalk.load_config(ROOT / "tests" / "data" / "slice.toml")
    frames = crosswalk.read_sources(config)
    assert set(frames) == {"cdph", "hcai"}
    assert frames["cdph"]["FACID"].str.startswith("0").any()
    table = crosswalk.link(frames, config).crosswalk()
    crosswalk.build(config, tmp_path / "out", progress=False)
    published = pd.read_csv(tmp_path / "out" / "crosswalk.csv", dtype=str, keep_default_na=False)
    assert list(table.columns) == list(published.columns)
    key = ["source", "record_id"]
    got = table.astype({"match_probability": float}).sort_values(key).reset_index(drop=True)
    want = published.sort_values(key).reset_index(drop=True)
    assert got["record_id"].tolist() == want["record_id"].tolist()
    assert got["entity_id"].tolist() == want["entity_id"].tolist()
    assert got["method"].tolist() == want["method"].tolist()
    expected = pd.to_numeric(want["match_probability"].replace("", None)).to_numpy(float)
    np.testing.assert_allclose(got["match_probability"].to_numpy(float), expected, rtol=1e-6)


def test_link_warns_when_an_id_column_is_numeric() -> None:
    config = crosswalk.load_config(ROOT / "tests" / "data" / "slice.toml")
    frames = crosswalk.read_sources(config)
    frames["cdph"] = frames["cdph"].assign(FACID=pd.to_numeric(frames["cdph"]["FACID"]))
    with pytest.warns(UserWarning, match=r"'cdph'.*'FACID'.*leading zeros.*read_sources"):
        crosswalk.link(frames, config)
