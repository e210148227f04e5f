"""Builds never lose output: a build killed at any point of publishing leaves ``--out``
whole (the previous build or the new one) and the next build cleans up; two builds
into one ``--out`` do not run at once; a user's own file in ``--out`` stops the build.

The kills are real: Debian's ``strace`` sends SIGKILL to the build as it enters the
Nth call of the named system calls (``make test`` installs it)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crosswalk.config import load_config
from crosswalk.pipeline import build

STRACE = shutil.which("strace")
needs_strace = pytest.mark.skipif(
    STRACE is None, reason="strace is not installed (make test installs Debian's strace)"
)

#: The system calls of a swap: Python's os.rename calls rename, the exchange renameat2.
RENAMES = "rename,renameat,renameat2"
#: Disables the atomic exchange, for the fallback's two renames.
NO_EXCHANGE = "CROSSWALK_NO_RENAME_EXCHANGE"


def _env(exchange: bool) -> dict[str, str]:
    # No bytecode written while a test counts renames: Python writes it by renaming.
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop(NO_EXCHANGE, None)
    if not exchange:
        env[NO_EXCHANGE] = "1"
    return env


def _build_command(config: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "crosswalk.cli",
        "build",
        "--config",
        str(config),
        "--out",
        str(out),
        "--quiet",
    ]


def _strace(*options: str) -> list[str]:
    assert STRACE is not None
    return [STRACE, "-f", "-qq", *options]


def _inject(syscalls: str, fault: str) -> list[str]:
    """strace, silent, injecting ``fault`` (e.g. ``signal=SIGKILL:when=2``) into ``syscalls``."""
    return _strace("-o", os.devnull, "-e", f"trace={syscalls}", "-e", f"inject={syscalls}:{fault}")


def _tree(folder: Path) -> dict[str, str]:
    """Every file and directory under ``folder``, files with the digest of their bytes."""
    return {
        str(p.relative_to(folder)): (
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        )
        for p in sorted(folder.rglob("*"))
    }


def _whole_build(folder: Path, files: set[str], tables: set[str]) -> str:
    """The build id of the finished build in ``folder``: it must hold ``files``, its
    database must open, be intact and hold ``tables``, and its files must agree."""
    assert folder.is_dir(), f"{folder} is missing"
    assert {p.name for p in folder.iterdir()} == files
    with sqlite3.connect(f"file:{folder / 'crosswalk.sqlite'}?mode=ro", uri=True) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert names == tables
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        rows = db.execute("SELECT count(*) FROM records").fetchone()[0]
    package = json.loads((folder / "datapackage.json").read_text(encoding="utf-8"))
    assert package["created"] == meta["built_at"]
    lines = (folder / "crosswalk.csv").read_text(encoding="utf-8").splitlines()
    assert len(lines) - 1 == rows
    return str(meta["build_id"])


def _tables(folder: Path) -> set[str]:
    with sqlite3.connect(f"file:{folder / 'crosswalk.sqlite'}?mode=ro", uri=True) as db:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _leftovers(out: Path) -> list[str]:
    return sorted(
        p.name
        for pattern in (f".{out.name}.tmp-*", f".{out.name}.old-*")
        for p in out.parent.glob(pattern)
    )


@pytest.fixture()
def previous_build(slice_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "work" / "out"
    build(load_config(slice_dir / "slice.toml"), out, progress=False)
    return out


def _kill_once(config: Path, out: Path, syscall: str, n: int, exchange: bool, log: Path) -> str:
    """Build into ``out``, killed as it enters its ``n``-th call of ``syscall``; check
    what it left, then that the next build cleans up and succeeds. Returns what the
    kill left in ``out``: "old", "new", "none" (the old build waiting beside it), or
    "done" when the build made fewer than ``n`` such calls and so finished."""
    files = {p.name for p in out.iterdir()}
    tables = _tables(out)
    before = _tree(out)
    old_id = _whole_build(out, files, tables)
    killed = subprocess.run(
        _inject(syscall, f"signal=SIGKILL:when={n}") + _build_command(config, out),
        env=_env(exchange),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if killed.returncode == 0:
        assert _whole_build(out, files, tables) != old_id
        assert _leftovers(out) == []
        return "done"
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    if out.exists():
        new_id = _whole_build(out, files, tables)
        outcome = "old" if new_id == old_id else "new"
        if outcome == "old":
            assert _tree(out) == before, "the old build must stay byte for byte"
    else:
        # Only between the fallback's two renames: the old build waits, whole, under
        # its hidden name, for the next build to put it back.
        assert not exchange, f"a kill at call {n} of {syscall} left no {out.name}"
        olds = list(out.parent.glob(f".{out.name}.old-*"))
        assert len(olds) == 1
        assert _tree(olds[0]) == before
        outcome = "none"
    # The next build puts back or removes whatever the killed one left, and succeeds.
    nxt = subprocess.run(
        _strace("-o", str(log), "-e", f"trace={RENAMES}") + _build_command(config, out),
        env=_env(exchange),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert nxt.returncode == 0, nxt.stderr
    assert _leftovers(out) == []
    assert _whole_build(out, files, tables) != old_id
    if outcome == "none":  # its first rename put the old build back
        first = next(line for line in log.read_text().splitlines() if "rename" in line)
        assert f"/.{out.name}.old-" in first and f'"{out}"' in first, first
    return outcome


@needs_strace
@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two-renames"])
def test_a_kill_at_each_rename_leaves_a_whole_build(
    slice_dir: Path, previous_build: Path, tmp_path: Path, exchange: bool
) -> None:
    config = slice_dir / "slice.toml"
    outcomes: list[str] = []
    for n in range(1, 10):
        # strace counts the calls of each system call apart: the swap's are all of one.
        outcome = _kill_once(
            config, previous_build, RENAMES, n, exchange, tmp_path / f"renames-{n}.log"
        )
        if outcome == "done":
            break
        outcomes.append(outcome)
    # One atomic exchange; or the old build set aside, the new one renamed into place
    # and the old one renamed for removal.
    assert outcomes == (["old"] if exchange else ["old", "none", "new"])


@needs_strace
@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two-renames"])
@pytest.mark.parametrize(
    ("syscall", "n"), [("unlinkat", 2), ("rmdir", 1)], ids=["a-file", "the-directory"]
)
def test_a_kill_while_removing_the_old_build_leaves_the_new_one(
    slice_dir: Path, previous_build: Path, tmp_path: Path, exchange: bool, syscall: str, n: int
) -> None:
    """Killed as it removes the old build's second file, or its emptied directory."""
    outcome = _kill_once(
        slice_dir / "slice.toml", previous_build, syscall, n, exchange, tmp_path / "renames.log"
    )
    assert outcome == "new"


@needs_strace
def test_a_first_build_killed_at_its_rename(slice_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "work" / "out"
    killed = subprocess.run(
        _inject(RENAMES, "signal=SIGKILL:when=1") + _build_command(slice_dir / "slice.toml", out),
        env=_env(True),
        capture_output=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL
    assert not out.exists()
    nxt = subprocess.run(
        _build_command(slice_dir / "slice.toml", out), capture_output=True, text=True, timeout=300
    )
    assert nxt.returncode == 0, nxt.stderr
    assert _leftovers(out) == []
    assert (out / "crosswalk.sqlite").is_file()


def _lock_held(path: Path) -> bool:
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@needs_strace
def test_a_second_build_into_the_same_out_is_refused(slice_dir: Path, previous_build: Path) -> None:
    """Two real builds at once: the first is held at its swap (strace delays its rename)
    while the second runs in full; the second must stop with a clear message and leave
    the first alone."""
    config = slice_dir / "slice.toml"
    files = {p.name for p in previous_build.iterdir()}
    tables = _tables(previous_build)
    old_id = _whole_build(previous_build, files, tables)
    first = subprocess.Popen(
        _inject(RENAMES, "delay_enter=10s:when=1") + _build_command(config, previous_build),
        env=_env(True),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lock = previous_build.parent / f".{previous_build.name}.lock"
        deadline = time.monotonic() + 60
        while not _lock_held(lock):
            assert first.poll() is None, "the first build ended before it took its lock"
            assert time.monotonic() < deadline, f"no build ever held {lock}"
            time.sleep(0.01)
        second = subprocess.run(
            _build_command(config, previous_build), capture_output=True, text=True, timeout=300
        )
        assert first.poll() is None, "the first build was not writing any more"
        assert second.returncode == 2, second.stderr
        assert "Traceback" not in second.stderr
        assert str(previous_build) in second.stderr
        assert "another build is writing" in second.stderr
        assert "Fix:" in second.stderr
        _, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, err
    assert _whole_build(previous_build, files, tables) != old_id
    assert _leftovers(previous_build) == []


def test_a_build_writes_only_the_files_it_declares(previous_build: Path) -> None:
    from crosswalk.formats import BUILD_OUTPUTS

    # parquet/ is written by a build with --engine spark only (tests/spark)
    assert {p.name for p in previous_build.iterdir()} == set(BUILD_OUTPUTS) - {"parquet"}


def test_a_users_files_in_out_stop_the_build(slice_dir: Path, previous_build: Path) -> None:
    (previous_build / "notes.txt").write_text("my notes\n", encoding="utf-8")
    # As `pip install .` leaves setuptools' build/lib in a build/ directory.
    package = previous_build / "lib" / "crosswalk"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    before = _tree(previous_build)
    proc = subprocess.run(
        _build_command(slice_dir / "slice.toml", previous_build),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    for text in (str(previous_build), "notes.txt", "lib/", "Fix:", "move"):
        assert text in proc.stderr, proc.stderr
    assert _tree(previous_build) == before, "a refused build must leave --out untouched"
    assert _leftovers(previous_build) == []
