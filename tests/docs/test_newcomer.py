"""The first hour of a newcomer, in CI: clone the repository into a fresh folder and run, with
timeouts, what the README promises: `make build`, the "Using it" commands in order, then
`make run` until `/healthz` answers. Each step is checked against what the README says of it.
(`make test` is not run here: it is what runs this test.)

The clone holds the committed files only. So that the test takes a couple of minutes rather
than installing every dependency again, the clone's `.venv` is a small virtualenv whose
site-packages read the clone first and then the packages of the interpreter running the tests
(a `.pth` file; no other `.pth` of theirs is run, so nothing of the running checkout leaks in);
its `bin/crosswalk` is the console script, and the Makefile's install stamps are set, so
`make` finds the runtime installed (`make VENV=DIR` would choose another virtualenv; the
stamps are `DIR/.installed-runtime` and `DIR/.installed-dev`).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Newcomer:
    """A fresh clone with its virtualenv, and a shell in it."""

    def __init__(self, tmp: Path) -> None:
        self.root = tmp / "crosswalk"
        done = subprocess.run(
            ["git", "clone", "--quiet", str(ROOT), str(self.root)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        venv = tmp / "venv"
        subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
        )
        site = Path(sysconfig.get_paths(vars={"base": str(venv), "platbase": str(venv)})["purelib"])
        site.mkdir(parents=True, exist_ok=True)
        installed = sysconfig.get_paths()["purelib"]
        (site / "newcomer.pth").write_text(f"{self.root}\n{installed}\n", encoding="utf-8")
        script = venv / "bin" / "crosswalk"
        script.write_text(
            f"#!{venv / 'bin' / 'python'}\nimport sys\nfrom crosswalk.cli import main\n"
            "sys.exit(main())\n",
            encoding="utf-8",
        )
        script.chmod(0o755)
        for stamp in (".installed-runtime", ".installed-dev"):
            (venv / stamp).touch()  # newer than the clone's pyproject.toml
        (self.root / ".venv").symlink_to(venv)
        self.env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(tmp / "home"),
            "XDG_CONFIG_HOME": str(tmp / "home" / ".config"),
            "LANG": "C.UTF-8",
            "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
        }

    def run(self, command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, f"`{command}` failed:\n{done.stdout}\n{done.stderr}"
        return done

    @contextlib.contextmanager
    def background(self, command: str, url: str) -> Iterator[None]:
        """``command`` running until ``url/healthz`` answers (within two minutes), then stopped."""
        proc = subprocess.Popen(
            ["bash", "-c", command],
            cwd=self.root,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                assert proc.poll() is None, f"`{command}` stopped:\n{proc.communicate()[0]}"
                with contextlib.suppress(requests.ConnectionError):
                    if requests.get(f"{url}/healthz", timeout=5).status_code == 200:
                        break
                assert time.monotonic() < deadline, f"`{command}`: {url}/healthz never answered"
                time.sleep(0.5)
            yield
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


def using_it(readme: str) -> list[str]:
    """The commands of the README's "Using it" code block, in order."""
    section = readme.split("\n## Using it\n", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README's 'Using it' has no sh block"
    return [line for line in block[1].splitlines() if line.strip()]


def _versions(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "releases").iterdir() if not p.name.startswith("."))


def test_a_newcomer_gets_what_the_readme_promises(tmp_path: Path) -> None:
    user = Newcomer(tmp_path)
    root = user.root
    today = datetime.datetime.now(datetime.UTC).date().isoformat()

    # `make build`: installs (here: found installed), builds into out/, says what next.
    made = user.run("make build")
    assert (root / "out" / "crosswalk.sqlite").is_file()
    assert ". .venv/bin/activate" in made.stdout
    assert f"{root / 'out' / 'crosswalk.csv'}" in made.stdout and "Next:" in made.stdout

    # The "Using it" commands, in order, each checked against what the README says of it.
    releases_seen: list[list[str]] = []

    def built(out: str) -> None:
        for name in ("crosswalk.sqlite", "crosswalk.csv", "datapackage.json"):
            assert (root / "out" / name).is_file(), name
        # changes.csv when ids changed: every id is new before the first release; the later
        # build keeps the released ids.
        assert (root / "out" / "changes.csv").is_file() == (not releases_seen)

    def evaluated(out: str) -> None:
        assert "precision" in out and "recall" in out and "F1" in out
        assert (root / "errors.csv").is_file()

    def explained(out: str) -> None:
        assert "prior" in out and "name" in out

    def released(out: str) -> None:
        versions = _versions(root)
        releases_seen.append(versions)
        assert versions[0] == today and len(versions) == len(releases_seen)
        if len(versions) == 2:
            assert versions[1] == f"{today}.2"

    def diffed(out: str) -> None:
        assert out.startswith(f"{today} (") and f"-> {today}.2 (" in out, out

    password: list[str] = []

    def account(out: str) -> None:
        found = re.search(r"^password: (\S+)$", out, re.M)
        assert found, out
        password.append(found[1])
        assert (root / "review" / "review.sqlite").is_file()

    checks: dict[str, Callable[[str], None]] = {
        "build": built,
        "evaluate": evaluated,
        "explain": explained,
        "release": released,
        "diff": diffed,
        "reviewers": account,
    }
    commands = using_it((root / "README.md").read_text(encoding="utf-8"))
    activate = commands[0].split("#")[0].strip()
    assert activate == ". .venv/bin/activate", commands[0]
    served = False
    for line in commands[1:]:
        words = line.split()
        assert words[0] == "crosswalk", line
        if words[1] == "serve":
            port = _free_port()
            line = line.replace("--port 8000", f"--port {port}")
            assert f"--port {port}" in line, line
            url = f"http://127.0.0.1:{port}"
            with user.background(f"{activate} && {line}", url):
                _sign_in(url, "alice", password[0])
            served = True
            continue
        assert words[1] in checks, f"no check for the README's `{line}`"
        checks[words[1]](user.run(f"{activate} && {line}").stdout)
    assert served and len(releases_seen) == 2

    # `make run`, on a port of its own, until /healthz answers; then stopped.
    port = _free_port()
    with user.background(f"PORT={port} make run", f"http://127.0.0.1:{port}"):
        health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
        assert health.status_code == 200
    with sqlite3.connect(root / "out" / "crosswalk.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM entities").fetchone()[0] > 10_000
    shutil.rmtree(root / "out", ignore_errors=True)


def _sign_in(url: str, username: str, password: str) -> None:
    """The review pages take the account the README's `reviewers add` made."""
    with requests.Session() as browser:
        page = browser.get(f"{url}/review/login", timeout=30)
        assert page.status_code == 200, page.text[:500]
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token, page.text[:500]
        signed = browser.post(
            f"{url}/review/login",
            data={"username": username, "password": password, "csrf_token": token[1]},
            allow_redirects=False,
            timeout=30,
        )
        assert signed.status_code == 302, signed.text[:500]
        queue = browser.get(f"{url}/review/", timeout=30)
        assert queue.status_code == 200 and "left to review" in queue.text
