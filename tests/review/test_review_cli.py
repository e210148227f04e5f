"""`crosswalk reviewers`: accounts and tokens from the command line."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

import crosswalk.cli
from crosswalk.review import ReviewStore
from crosswalk.review.auth import login, reviewer_for_token

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "data" / "sources.toml"


def main(argv: list[str]) -> int:
    """Run ``crosswalk ARGV`` as the console script does."""
    return crosswalk.cli.main(argv)


def test_add_generates_password_and_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "r.sqlite"
    rc = main(["reviewers", "add", "--store", str(store), "--config", str(CONFIG),
               "--department", "cdph", "--username", "alice", "--token"])  # fmt: skip
    assert rc == 0
    out = capsys.readouterr().out
    password = re.search(r"^password: (\S+)$", out, re.M)
    token = re.search(r"^token: (\S+)$", out, re.M)
    assert password and token
    with ReviewStore(store) as db:
        who = login(db, "alice", password.group(1), "127.0.0.1").reviewer
        assert who is not None and who.department == "cdph" and who.role == "reviewer"
        assert reviewer_for_token(db, token.group(1)) == who
    assert main(["reviewers", "list", "--store", str(store)]) == 0
    listing = capsys.readouterr().out
    assert "alice" in listing and "cdph" in listing and password.group(1) not in listing


def test_add_admin_with_password_from_stdin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "r.sqlite"
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert main(["reviewers", "add", "--store", str(store), "--config", str(CONFIG),
                 "--department", "hcai", "--username", "root", "--admin",
                 "--password-stdin"]) == 0  # fmt: skip
    assert "password:" not in capsys.readouterr().out
    with ReviewStore(store) as db:
        who = login(db, "root", "a long enough password", "127.0.0.1").reviewer
        assert who is not None and who.is_admin


def test_errors_are_reported_not_raised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "r.sqlite"
    args = ["reviewers", "add", "--store", str(store), "--config", str(CONFIG),
            "--department", "cdph", "--username", "bob"]  # fmt: skip
    assert main(args) == 0
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    assert main([*args[:-1], "carol", "--department", "dmv"]) == 2
    assert "unknown department 'dmv'" in capsys.readouterr().err
    assert main(["reviewers", "token", "--store", str(store), "--username", "nobody"]) == 2


def test_add_checks_the_department_against_the_build(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --config, the departments are the sources of the build (--db, else
    out/crosswalk.sqlite); with neither, the department cannot be checked and is refused."""
    from crosswalk import build, load_config

    store, out = tmp_path / "r.sqlite", tmp_path / "out"
    build(load_config(ROOT / "tests" / "data" / "slice.toml"), out, progress=False)
    add = ["reviewers", "add", "--store", str(store), "--db", str(out / "crosswalk.sqlite")]
    assert main([*add, "--department", "cms", "--username", "carol"]) == 2
    err = capsys.readouterr().err
    assert "unknown department 'cms'" in err and "cdph, hcai" in err
    assert main([*add, "--department", "hcai", "--username", "carol"]) == 0
    nowhere = ["reviewers", "add", "--store", str(store), "--db", str(tmp_path / "none.sqlite")]
    assert main([*nowhere, "--department", "cms", "--username", "dave"]) == 2
    err = capsys.readouterr().err
    assert "--config" in err and "none.sqlite" in err
    with ReviewStore(store) as db:
        assert [r.username for r, _tokens in db.reviewers()] == ["carol"]


def test_every_reviewers_option_has_help() -> None:
    from crosswalk.cli import make_parser

    parser = make_parser()
    reviewers = parser._subparsers._group_actions[0].choices["reviewers"]  # type: ignore[union-attr]
    for name, action_parser in reviewers._subparsers._group_actions[0].choices.items():  # type: ignore[union-attr]
        for action in action_parser._actions:
            assert action.help, f"reviewers {name} {action.option_strings} has no help"
