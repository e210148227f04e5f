"""`crosswalk serve` runs the API under waitress and explains a missing database."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import requests


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


def test_serving_one_release_by_its_db_reports_its_version(tmp_path: Path) -> None:
    """`serve --db releases/V/crosswalk.sqlite` names release V, not the build's hash."""
    slice_config = Path(__file__).resolve().parents[1] / "data" / "slice.toml"
    build, releases = tmp_path / "out", tmp_path / "releases"
    for args in (
        ("build", "--config", str(slice_config), "--out", str(build), "--quiet"),
        ("release", "--build", str(build), "--releases", str(releases), "--version", "2026-12-01"),
    ):
        done = subprocess.run(_crosswalk(*args), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    proc = subprocess.Popen(
        _crosswalk(
            "serve", "--db", str(releases / "2026-12-01" / "crosswalk.sqlite"), "--port", "0"
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "(release 2026-12-01," in line, line
        url = line.split()[2].rstrip("/")
        answer = requests.get(url + "/v1/releases", timeout=10)
        assert [r["version"] for r in answer.json()["releases"]] == ["2026-12-01"], answer.text
    finally:
        proc.terminate()
        proc.wait(timeout=20)
