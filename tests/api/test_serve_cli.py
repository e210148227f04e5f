"""`crosswalk serve` runs the API under waitress and explains a missing database."""

from __future__ import annotations

import contextlib
import html
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
SLICE_CONFIG = ROOT / "tests" / "data" / "slice.toml"


def _crosswalk(*args: str) -> list[str]:
    return [sys.executable, "-m", "crosswalk.cli", *args]


def test_missing_database_is_a_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        _crosswalk("serve", "--db", str(tmp_path / "nowhere" / "crosswalk.sqlite"), "--port", "0"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "crosswalk build" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_prints_its_url_and_answers(crosswalk_db: Path) -> None:
    proc = subprocess.Popen(
        _crosswalk(
            "serve",
            "--db",
            str(crosswalk_db),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--threads",
            "2",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("crosswalk serve: http://127.0.0.1:"), line
        url = line.split()[2].rstrip("/")
        deadline = time.monotonic() + 30
        while True:
            try:
                health = requests.get(url + "/healthz", timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert health.status_code == 200
        assert health.headers["Server"] == "crosswalk"  # waitress, not the development server
        docs = requests.get(url + "/", timeout=5)
        assert docs.status_code == 200 and "<html" in docs.text
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def slice_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real-data slice built by the CLI: its output directory."""
    out = tmp_path_factory.mktemp("slice") / "out"
    args = ("build", "--config", str(SLICE_CONFIG), "--out", str(out), "--quiet")
    done = subprocess.run(_crosswalk(*args), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return out


@contextlib.contextmanager
def _serving(*args: str) -> Iterator[tuple[str, str]]:
    """`crosswalk serve ARGS --port 0` running: its first line and its URL."""
    proc = subprocess.Popen(
        _crosswalk("serve", *args, "--port", "0", "--threads", "2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("crosswalk serve: http://"), line
        yield line, line.split()[2].rstrip("/")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_serving_one_release_by_its_db_reports_its_version(
    slice_build: Path, tmp_path: Path
) -> None:
    """`serve --db releases/V/crosswalk.sqlite` names release V, not the build's hash."""
    releases = tmp_path / "releases"
    args = ("release", "--build", str(slice_build), "--releases", str(releases))
    done = subprocess.run(
        _crosswalk(*args, "--version", "2026-12-01"), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    with _serving("--db", str(releases / "2026-12-01" / "crosswalk.sqlite")) as (line, url):
        assert "(release 2026-12-01," in line, line
        answer = requests.get(url + "/v1/releases", timeout=10)
        assert [r["version"] for r in answer.json()["releases"]] == ["2026-12-01"], answer.text


@pytest.mark.parametrize("path", ["/review/", "/review/login", "/v1/disputes"])
def test_review_without_a_store_says_how_to_give_one(slice_build: Path, path: str) -> None:
    with _serving("--db", str(slice_build / "crosswalk.sqlite")) as (_line, url):
        answer = requests.get(url + path, timeout=10)
    assert answer.status_code == 503
    if path.startswith("/v1/"):
        detail = answer.json()["detail"]
    else:  # the review pages answer an HTML page
        detail = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", answer.text)).split())
    assert "logged" not in detail
    for text in ("started without a review store", "--review-store", "crosswalk reviewers add"):
        assert text in detail, detail


def test_a_port_in_use_is_named_with_how_to_choose_another(slice_build: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        db = str(slice_build / "crosswalk.sqlite")
        done = subprocess.run(
            _crosswalk("serve", "--db", db, "--port", str(port)),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    for text in (f"127.0.0.1:{port}", "in use", "--port", "PORT="):
        assert text in done.stderr, done.stderr


@pytest.mark.parametrize("db", ["nope.sqlite", "crosswalk.sqlite"])
def test_a_missing_db_suggests_a_build_that_is_not_refused(tmp_path: Path, db: str) -> None:
    """The hint's build is one that succeeds here (not `--out ./`, which holds other files)."""
    (tmp_path / "notes.txt").write_text("mine\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        _crosswalk("serve", "--db", db, "--port", "0"),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 2
    hint = re.search(r"`(crosswalk build [^`]*)`", done.stderr)
    assert hint, done.stderr
    command = hint[1].replace("data/sources.toml", str(SLICE_CONFIG)).split()[1:]
    built = subprocess.run(
        _crosswalk(*command, "--quiet"),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert built.returncode == 0, built.stderr
