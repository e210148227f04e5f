"""The Makefile: what each target installs, read from `make -n` (nothing is run)."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _installs(target: str, tmp_path: Path) -> list[str]:
    """The `pip install` arguments that `make TARGET` runs in a fresh virtualenv."""
    proc = subprocess.run(
        ["make", "-n", target, f"VENV={tmp_path / 'venv'}"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    return [
        shlex.split(line)[-1]
        for line in proc.stdout.splitlines()
        if " -m pip install " in line and "--upgrade pip" not in line
    ]


@pytest.mark.parametrize("target", ["run", "build", "release"])
def test_serving_and_building_install_the_runtime_only(target: str, tmp_path: Path) -> None:
    assert _installs(target, tmp_path) == ["."]


@pytest.mark.parametrize("target", ["test", "check"])
def test_testing_and_checking_add_the_dev_extras(target: str, tmp_path: Path) -> None:
    installs = _installs(target, tmp_path)
    assert installs[0] == "."
    assert len(installs) == 2 and installs[1].startswith(".[") and "dev" in installs[1]


def test_plain_make_says_how_to_put_crosswalk_on_the_path() -> None:
    proc = subprocess.run(["make"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert ". .venv/bin/activate" in proc.stdout
    for target in ("run", "build", "release", "test", "check"):
        assert f"make {target}" in proc.stdout
    assert "PORT=" in proc.stdout
