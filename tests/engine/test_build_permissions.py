"""A build's output follows the umask, as any file a program writes does: a team that shares
the machine (umask 002 or 022) can read it. Credentials stay private (tests/review)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SLICE = ROOT / "tests" / "data" / "slice.toml"


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_the_build_directory_and_files_follow_the_umask(tmp_path: Path, umask: int) -> None:
    out = tmp_path / "shared" / "out"
    done = subprocess.run(
        [sys.executable, "-m", "crosswalk.cli", "build", "--config", str(SLICE),
         "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: os.umask(umask),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    mode = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [out, out.parent, *out.iterdir()]}
    want_dir, want_file = 0o777 & ~umask, 0o666 & ~umask
    assert mode.pop(out.name) == want_dir and mode.pop(out.parent.name) == want_dir
    assert mode == dict.fromkeys(mode, want_file), mode
