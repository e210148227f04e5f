"""A published crosswalk is read where it is, whatever its path holds (``#``, ``?``, ``%``).

SQLite reads a ``file:`` URI: an unquoted ``#`` starts a fragment, ``?`` the query and
``%`` an escape, so ``dir#1/crosswalk.sqlite`` would open (and create) an empty file
``dir`` read-write. Every command below reads the real rows of a build or release in
such a folder, and no stray file appears beside it. Releases, which never change, are
read immutable: a lock held on one does not stop them being read.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from crosswalk.artifact.reader import connect
from crosswalk.errors import NotFoundError
from crosswalk.matching import Matcher
from crosswalk.release import diff_releases, list_releases

ROOT = Path(__file__).resolve().parents[2]
SLICE = ROOT / "tests" / "data" / "slice.toml"
TRUTH = ROOT / "tests" / "data" / "truth_slice.csv"
#: One folder holds all three: a path quoted for one of them and not another still breaks.
FOLDERS = ["dir#1?b%c"]


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crosswalk.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def ok(*args: str | Path) -> str:
    proc = cli(*args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``tmp/dir#1?b%c``, holding a build of the test slice."""
    root = tmp_path_factory.mktemp("paths")
    for folder in FOLDERS:
        ok("build", "--config", SLICE, "--out", root / folder)
    yield root
    assert not (root / "dir").exists() and not (root / "a").exists()


def no_stray_files(tmp: Path) -> None:
    assert not (tmp / "dir").exists(), "a stray database 'dir' was created"
    assert not (tmp / "a").exists(), "a stray database 'a' was created"


def linked_pair(db: Path) -> tuple[str, str]:
    with closing(connect(db)) as conn:
        row = conn.execute(
            "SELECT source_l, record_id_l, source_r, record_id_r FROM links "
            "WHERE source_l <> source_r ORDER BY match_weight DESC LIMIT 1"
        ).fetchone()
    return f"{row[0]}:{row[1]}", f"{row[2]}:{row[3]}"


@pytest.mark.parametrize("folder", FOLDERS)
def test_connect_reads_the_file_named(tmp: Path, folder: str) -> None:
    with closing(connect(tmp / folder / "crosswalk.sqlite")) as conn:
        assert conn.execute("SELECT count(*) FROM records").fetchone()[0] > 1000
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute("CREATE TABLE t (x)")
    no_stray_files(tmp)


def test_connect_names_a_missing_file(tmp: Path) -> None:
    missing = tmp / FOLDERS[0] / "nothing.sqlite"
    with pytest.raises(NotFoundError, match=r"nothing\.sqlite does not exist"):
        connect(missing)
    assert not missing.exists()
    no_stray_files(tmp)


@pytest.mark.parametrize("folder", FOLDERS)
def test_evaluate_explain_and_matcher_read_the_db(tmp: Path, folder: str) -> None:
    db = tmp / folder / "crosswalk.sqlite"
    figures = json.loads(ok("evaluate", "--db", db, "--truth", TRUTH, "--json"))
    assert figures["true_positives"] > 100
    left, right = linked_pair(db)
    explained = json.loads(ok("explain", "--db", db, "--json", left, right))
    assert explained["match_probability"] > 0.5
    matcher = Matcher.from_sqlite(db)
    assert len(matcher.records) > 1000
    no_stray_files(tmp)


@pytest.mark.parametrize("folder", FOLDERS)
def test_reviewers_queue_reads_the_db(tmp: Path, folder: str) -> None:
    store = tmp / folder / "review#store.sqlite"
    out = ok(
        "reviewers",
        "queue",
        "--config",
        SLICE,
        "--store",
        store,
        "--db",
        tmp / folder / "crosswalk.sqlite",
    )
    assert int(out.split()[0]) > 0
    no_stray_files(tmp)


def test_release_build_on_it_and_diff(tmp: Path) -> None:
    releases = tmp / "rel#2?x%41"
    ok("release", "--build", tmp / FOLDERS[0], "--releases", releases, "--version", "v1")
    rebuilt = tmp / FOLDERS[0] / "again#3"
    ok("build", "--config", SLICE, "--out", rebuilt, "--releases", releases)
    with closing(connect(rebuilt / "crosswalk.sqlite")) as conn:
        carried = dict(conn.execute("SELECT key, value FROM id_state").fetchall())
    assert carried["previous_release"] == "v1"
    ok("release", "--build", rebuilt, "--releases", releases, "--version", "v2")
    assert [r.version for r in list_releases(releases)] == ["v1", "v2"]
    summary = ok("diff", "--releases", releases, "v1", "v2")
    counts = re.match(r"v1 \(([\d,]+) entities\) -> v2 \(([\d,]+) entities\)", summary)
    assert counts and int(counts[1].replace(",", "")) > 1000, summary
    with closing(connect(releases / "v1" / "crosswalk.sqlite")) as conn:
        n = conn.execute("SELECT count(DISTINCT entity_id) FROM records").fetchone()[0]
    assert n > 1000
    assert not (tmp / "rel").exists()
    no_stray_files(tmp)


def test_release_reads_immutable(tmp: Path, tmp_path: Path) -> None:
    """A release is read immutable: an exclusive lock on its file does not stop ``diff``;
    a ``--db``, which can be rebuilt in place, is read with locking and reports it."""
    releases = tmp_path / "rel#4"
    ok("release", "--build", tmp / FOLDERS[0], "--releases", releases, "--version", "v1")
    shutil.copytree(releases / "v1", releases / "v2")
    db = releases / "v2" / "crosswalk.sqlite"
    db.chmod(db.stat().st_mode | stat.S_IWUSR)
    holder = sqlite3.connect(db)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        with closing(connect(db, immutable=True)) as conn:
            assert conn.execute("SELECT count(*) FROM records").fetchone()[0] > 1000
        assert diff_releases(releases / "v1", releases / "v2").empty
        with pytest.raises(sqlite3.OperationalError, match="locked"), connect(db) as conn:
            conn.execute("SELECT count(*) FROM records").fetchone()
        proc = cli("evaluate", "--db", db, "--truth", TRUTH)
        assert proc.returncode != 0 and "locked" in proc.stderr
    finally:
        holder.rollback()
        holder.close()


@pytest.mark.parametrize("folder", FOLDERS)
def test_the_review_pages_name_the_sources_of_a_crosswalk_there(
    tmp: Path, folder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api import ApiConfig, create_app
    from api.review.common import data_sources

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp / "config"))
    db = tmp / folder / "crosswalk.sqlite"
    app = create_app(ApiConfig(db=db, review_store=tmp / f"{folder}-review.sqlite"))
    with app.app_context():
        assert sorted(s.name for s in data_sources()) == ["cdph", "hcai"]
    no_stray_files(tmp)
