"""`crosswalk diff` on the command line: CSV on standard output, a closed pipe, default releases."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest

from crosswalk.artifact.schema import CHANGE_COLUMNS

SLICE_CONFIG = Path(__file__).resolve().parents[1] / "data" / "slice.toml"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crosswalk.cli", *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two releases of the slice (v1, then v2 built with v1's ids)."""
    root = tmp_path_factory.mktemp("diff")
    releases, out = root / "releases", root / "out"
    for version in ("v1", "v2"):
        built = _cli("build", "--config", str(SLICE_CONFIG), "--out", str(out),
                     "--releases", str(releases), "--quiet")  # fmt: skip
        assert built.returncode == 0, built.stderr
        released = _cli("release", "--build", str(out), "--releases", str(releases),
                        "--version", version)  # fmt: skip
        assert released.returncode == 0, released.stderr
    return releases


def test_csv_on_stdout_is_csv_alone(releases: Path) -> None:
    done = _cli("diff", "v1", "v2", "--releases", str(releases), "--csv", "-")
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(io.StringIO(done.stdout)))
    assert tuple(rows[0]) == CHANGE_COLUMNS, done.stdout[:300]
    assert all(len(r) == len(CHANGE_COLUMNS) for r in rows)
    assert "v1 (" in done.stderr and "-> v2 (" in done.stderr  # the summary, beside the data


def test_a_closed_pipe_ends_quietly(releases: Path) -> None:
    """As `crosswalk diff ... --csv - | head` when head has read enough."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "crosswalk.cli", "diff", "v1", "v2", "--releases", str(releases),
         "--csv", "-"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first byte
    err = proc.stderr.read().decode()
    proc.wait(timeout=300)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_the_default_is_the_last_two_releases(releases: Path) -> None:
    done = _cli("diff", "--releases", str(releases))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("v1 (") and "-> v2 (" in done.stdout, done.stdout


def test_one_release_is_not_enough_and_says_why(releases: Path, tmp_path: Path) -> None:
    one = tmp_path / "releases"
    one.mkdir()
    (releases / "v1").rename(one / "v1")
    try:
        done = _cli("diff", "--releases", str(one))
    finally:
        (one / "v1").rename(releases / "v1")
    assert done.returncode == 2, done.stdout
    assert "Traceback" not in done.stderr
    for text in ("two releases", "v1", "--releases"):
        assert text in done.stderr, done.stderr
