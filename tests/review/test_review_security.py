"""The review store's secrets and sessions: the signing key lives outside the store,
the store's files are private, sessions end on the server, accounts and tokens can
be disabled and revoked, and sign-in is throttled per username and per address."""

from __future__ import annotations

import io
import os
import re
import secrets
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from flask.sessions import SecureCookieSessionInterface
from review_minixwalk import PASSWORDS, csrf, review_app, sign_in

import crosswalk.cli
from crosswalk.errors import ReviewError
from crosswalk.review import ReviewStore
from crosswalk.review.auth import MAX_ADDRESS_FAILURES, MAX_FAILURES, create_reviewer, login
from crosswalk.review.keys import KEY_ENV, KEY_FILE_ENV, default_key_file, session_key
from crosswalk.review.store import SCHEMA_VERSION

CDPH_HCAI = (("hcai", "106010739"), ("cdph", "140000004"))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _store_bytes(store_path: Path) -> bytes:
    with ReviewStore(store_path) as s:
        s.conn.execute("PRAGMA wal_checkpoint(FULL)")
    return b"".join(
        p.read_bytes() for p in store_path.parent.iterdir() if p.name.startswith(store_path.name)
    )


def _sign(app: Any, data: dict[str, Any]) -> str:
    """A session cookie for ``data``, signed with ``app``'s key."""
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    assert serializer is not None
    return str(serializer.dumps(data))


def _cli(*argv: str) -> int:
    return crosswalk.cli.main(list(argv))


@pytest.fixture
def app(store_path: Path, mini_db: Path) -> Any:
    return review_app(store_path, mini_db)


# ---------------------------------------------------------------------- the key and the files


def test_new_store_and_its_wal_and_shm_are_private(tmp_path: Path) -> None:
    path = tmp_path / "review.sqlite"
    with ReviewStore(path) as store:
        create_reviewer(store, "alice", "cdph", PASSWORDS["alice"])
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}


def test_session_key_lives_outside_the_store(
    app: Any, store_path: Path, mini_db: Path, key_home: Path
) -> None:
    key = app.config["SECRET_KEY"]
    with ReviewStore(store_path) as s:
        assert s.get_meta("secret_key") is None
    assert key.encode() not in _store_bytes(store_path)
    path = default_key_file(store_path)
    assert path.parent == key_home / "crosswalk" / "keys" != store_path.parent
    assert path.read_text().strip() == key
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700 and _mode(path.parent.parent) == 0o700
    # the next start (a restart of the server) signs with the same key
    assert review_app(store_path, mini_db).config["SECRET_KEY"] == key


def test_key_precedence_env_then_file_then_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "r.sqlite"
    default = session_key(store)
    assert default_key_file(store).read_text().strip() == default
    env_file = tmp_path / "env" / "session.key"
    monkeypatch.setenv(KEY_FILE_ENV, str(env_file))
    from_env_file = session_key(store)
    assert from_env_file != default and env_file.read_text().strip() == from_env_file
    explicit = tmp_path / "explicit" / "session.key"
    from_explicit = session_key(store, explicit)
    assert from_explicit not in (default, from_env_file)
    assert _mode(explicit) == 0o600 and _mode(explicit.parent) == 0o700
    monkeypatch.setenv(KEY_ENV, "k" * 40)
    assert session_key(store, explicit) == "k" * 40


def test_key_file_created_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        session_key(tmp_path / "r.sqlite", tmp_path / "keys" / "k.key")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "keys" / "k.key") == 0o600 and _mode(tmp_path / "keys") == 0o700


def test_key_file_open_to_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    path.write_text(secrets.token_hex(32))
    path.chmod(0o644)
    with pytest.raises(ReviewError, match=re.escape(f"chmod 600 {path}")):
        session_key(tmp_path / "r.sqlite", path)
    path.chmod(0o600)
    assert session_key(tmp_path / "r.sqlite", path) == path.read_text().strip()
    assert _mode(path) == 0o600


def test_version_1_store_is_upgraded_and_its_key_removed(
    store_path: Path, mini_db: Path, key_home: Path
) -> None:
    with ReviewStore(store_path) as s:
        alice = s.reviewer_by_name("alice")
        assert alice is not None
        s.decide(alice, CDPH_HCAI, "same", "kept")
    # What version 1 wrote: no sessions table, the signing key in meta.
    old_key = secrets.token_hex(32)
    conn = sqlite3.connect(store_path)
    conn.executescript(
        "DROP TABLE sessions; DROP INDEX login_attempts_ip;"
        "UPDATE meta SET value = '1' WHERE key = 'schema_version';"
        f"INSERT INTO meta (key, value) VALUES ('secret_key', '{old_key}');"
    )
    conn.close()
    assert old_key.encode() in store_path.read_bytes()
    app = review_app(store_path, mini_db)
    with ReviewStore(store_path) as s:
        assert s.get_meta("schema_version") == SCHEMA_VERSION and s.get_meta("secret_key") is None
        assert [(e.username, e.verdict, e.comment) for e in s.events()] == [
            ("alice", "same", "kept")
        ]
        assert login(s, "henry", PASSWORDS["henry"], "127.0.0.1").reviewer is not None
    assert old_key.encode() not in _store_bytes(store_path)
    assert app.config["SECRET_KEY"] != old_key  # the key anyone could read signs nothing
    # A session forged with the old key, in the old form, is refused.
    forger = review_app(store_path, mini_db)
    forger.config["SECRET_KEY"] = old_key
    client = app.test_client()
    client.set_cookie("session", _sign(forger, {"rid": 1, "login_at": int(time.time())}))
    assert client.get("/review/").status_code == 302


def test_the_store_cannot_sign_a_session_for_another_reviewer(app: Any, store_path: Path) -> None:
    """What was done with the key read from the store: sign a session for henry.
    The store holds no key now, and even the real key signs no session by itself."""
    with ReviewStore(store_path) as s:
        assert s.get_meta("secret_key") is None
        henry = s.reviewer_by_name("henry")
        assert henry is not None
    for forged in (
        {"rid": henry.reviewer_id, "login_at": int(time.time())},
        {"sid": secrets.token_urlsafe(32)},
    ):
        client = app.test_client()
        client.set_cookie("session", _sign(app, forged))
        response = client.get("/review/")
        assert response.status_code == 302 and "/review/login" in response.headers["Location"]


# ---------------------------------------------------------------------- sessions


def test_logout_ends_the_session_for_a_copied_cookie(app: Any, store_path: Path) -> None:
    client = app.test_client()
    assert sign_in(client).status_code == 302
    cookie = client.get_cookie("session")
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie("session", cookie.value)
    assert thief.get("/review/").status_code == 200
    page = client.get("/review/")
    assert client.post("/review/logout", data={"csrf_token": csrf(page.text)}).status_code == 302
    assert client.get("/review/").status_code == 302
    assert thief.get("/review/").status_code == 302
    with ReviewStore(store_path) as s:  # the id is stored only as a hash
        (row,) = s.conn.execute("SELECT session_hash, revoked_at FROM sessions").fetchall()
    assert row["revoked_at"] is not None
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    assert serializer is not None
    sid = serializer.loads(cookie.value)["sid"]
    assert sid not in row["session_hash"] and sid.encode() not in _store_bytes(store_path)


def test_disable_ends_sessions_and_refuses_tokens_until_enabled(
    app: Any, store_path: Path, tokens: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    client = app.test_client()
    sign_in(client)
    henry = app.test_client()
    sign_in(henry, "henry")
    alice = {"Authorization": f"Bearer {tokens['alice']}"}
    assert client.get("/v1/disputes", headers=alice).status_code == 200
    assert _cli("reviewers", "disable", "--store", str(store_path), "--username", "alice") == 0
    assert "disabled 'alice'" in capsys.readouterr().out
    assert client.get("/review/").status_code == 302
    assert client.get("/v1/disputes", headers=alice).status_code == 401
    assert sign_in(app.test_client()).status_code == 401
    assert henry.get("/review/").status_code == 200  # others are untouched
    assert _cli("reviewers", "list", "--store", str(store_path)) == 0
    assert "(disabled)" in capsys.readouterr().out
    assert _cli("reviewers", "enable", "--store", str(store_path), "--username", "alice") == 0
    assert client.get("/review/").status_code == 302  # an ended session stays ended
    assert client.get("/v1/disputes", headers=alice).status_code == 200
    assert sign_in(app.test_client()).status_code == 302
    assert _cli("reviewers", "disable", "--store", str(store_path), "--username", "nobody") == 2
    assert "no reviewer named 'nobody'" in capsys.readouterr().err


def test_set_password_ends_sessions(
    app: Any, store_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client = app.test_client()
    sign_in(client)
    monkeypatch.setattr("sys.stdin", io.StringIO("a brand new password 42\n"))
    argv = ["reviewers", "set-password", "--store", str(store_path), "--username", "alice"]
    assert _cli(*argv, "--password-stdin") == 0
    out = capsys.readouterr().out
    assert "1 session(s) ended" in out and "password:" not in out
    assert client.get("/review/").status_code == 302
    assert sign_in(app.test_client(), "alice", PASSWORDS["alice"]).status_code == 401
    assert sign_in(app.test_client(), "alice", "a brand new password 42").status_code == 302
    assert _cli(*argv) == 0  # generated, printed once
    generated = re.search(r"^password: (\S+)$", capsys.readouterr().out, re.M)
    assert generated and sign_in(app.test_client(), "alice", generated.group(1)).status_code == 302
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert _cli(*argv, "--password-stdin") == 2
    assert "too short" in capsys.readouterr().err


def test_tokens_listed_by_id_and_revoked(
    app: Any, store_path: Path, tokens: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli("reviewers", "tokens", "--store", str(store_path)) == 0
    listing = capsys.readouterr().out
    with ReviewStore(store_path) as s:
        hashes = [r[0] for r in s.conn.execute("SELECT token_hash FROM tokens")]
    assert len(hashes) == 3
    assert not any(h in listing for h in [*hashes, *tokens.values()])
    assert _cli("reviewers", "tokens", "--store", str(store_path), "--username", "alice") == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if "alice" in x]
    token_id = line.split()[0]
    assert _cli("reviewers", "revoke-token", "--store", str(store_path), "--id", token_id) == 0
    assert f"token {token_id} of 'alice' revoked" in capsys.readouterr().out
    client = app.test_client()
    alice = {"Authorization": f"Bearer {tokens['alice']}"}
    assert client.get("/v1/disputes", headers=alice).status_code == 401
    henry = {"Authorization": f"Bearer {tokens['henry']}"}
    assert client.get("/v1/disputes", headers=henry).status_code == 200
    assert _cli("reviewers", "revoke-token", "--store", str(store_path), "--id", "999") == 2
    assert "there is no token 999" in capsys.readouterr().err


def test_rotate_key_writes_a_new_key_and_ends_every_session(
    app: Any, store_path: Path, mini_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clients = [app.test_client(), app.test_client()]
    sign_in(clients[0], "alice")
    sign_in(clients[1], "henry")
    assert all(c.get("/review/").status_code == 200 for c in clients)
    path = default_key_file(store_path)
    old = path.read_text().strip()
    assert _cli("reviewers", "rotate-key", "--store", str(store_path)) == 0
    assert "2 session(s) ended" in capsys.readouterr().out
    new = path.read_text().strip()
    assert new != old and len(new) == 64 and _mode(path) == 0o600
    assert all(c.get("/review/").status_code == 302 for c in clients)
    restarted = review_app(store_path, mini_db)
    assert restarted.config["SECRET_KEY"] == new
    assert sign_in(restarted.test_client()).status_code == 302


def test_rotate_key_warns_when_the_environment_holds_the_key(
    store_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(KEY_ENV, "e" * 64)
    key_file = tmp_path / "k" / "session.key"
    argv = [
        "reviewers",
        "rotate-key",
        "--store",
        str(store_path),
        "--secret-key-file",
        str(key_file),
    ]
    assert _cli(*argv) == 0
    captured = capsys.readouterr()
    assert f"new session key in {key_file}" in captured.out
    assert f"{KEY_ENV} is set" in captured.err and _mode(key_file) == 0o600


# ---------------------------------------------------------------------- throttling


def test_many_usernames_from_one_address_are_throttled(store: ReviewStore) -> None:
    results = [login(store, f"user{i}", "wrong password!", "10.0.0.9") for i in range(30)]
    waits = [r.retry_after > 0 for r in results]
    assert waits == [False] * MAX_ADDRESS_FAILURES + [True] * (30 - MAX_ADDRESS_FAILURES)
    assert 0 < results[-1].retry_after <= 301
    # the right password from that address waits too; another address may sign in
    assert login(store, "alice", PASSWORDS["alice"], "10.0.0.9").reviewer is None
    assert login(store, "alice", PASSWORDS["alice"], "10.0.0.10").reviewer is not None


def test_one_username_from_many_addresses_is_throttled(store: ReviewStore) -> None:
    results = [login(store, "alice", "wrong password!", f"10.0.1.{i}") for i in range(30)]
    waits = [r.retry_after > 0 for r in results]
    assert waits == [False] * MAX_FAILURES + [True] * (30 - MAX_FAILURES)
    assert login(store, "alice", PASSWORDS["alice"], "10.0.2.1").reviewer is None
    assert login(store, "henry", PASSWORDS["henry"], "10.0.2.1").reviewer is not None


@contextmanager
def _served(store_path: Path, mini_db: Path, **config: Any) -> Iterator[str]:
    from api import create_app
    from tests.api.api_support import serve_app, stop_server

    app = create_app({"db": mini_db, "review_store": store_path, **config})
    url, server, thread = serve_app(app)
    try:
        yield url
    finally:
        stop_server(server, thread)


def _failed_sign_in(url: str, forwarded_for: str) -> requests.Response:
    http = requests.Session()
    page = http.get(f"{url}/review/login", timeout=30)
    return http.post(
        f"{url}/review/login",
        data={"username": "alice", "password": "wrong password!", "csrf_token": csrf(page.text)},
        headers={"X-Forwarded-For": forwarded_for},
        allow_redirects=False,
        timeout=30,
    )


def _addresses(store_path: Path) -> list[str]:
    with ReviewStore(store_path) as s:
        return [r[0] for r in s.conn.execute("SELECT ip FROM login_attempts ORDER BY attempt_id")]


def test_forwarded_for_ignored_unless_the_proxy_is_trusted(store_path: Path, mini_db: Path) -> None:
    with _served(store_path, mini_db) as url:
        assert _failed_sign_in(url, "203.0.113.7").status_code == 401
    assert _addresses(store_path) == ["127.0.0.1"]
    with _served(store_path, mini_db, trusted_proxy="127.0.0.1") as url:
        assert _failed_sign_in(url, "203.0.113.7").status_code == 401
        # with two hops, the last one the trusted proxy saw is the client
        assert _failed_sign_in(url, "198.51.100.1, 203.0.113.8").status_code == 401
    assert _addresses(store_path) == ["127.0.0.1", "203.0.113.7", "203.0.113.8"]
    with _served(store_path, mini_db, trusted_proxy="10.9.9.9") as url:  # not this peer
        assert _failed_sign_in(url, "203.0.113.9").status_code == 401
    assert _addresses(store_path)[-1] == "127.0.0.1"


def test_serve_takes_the_key_file_and_the_trusted_proxy(
    store_path: Path, mini_db: Path, tmp_path: Path
) -> None:
    key_file = tmp_path / "secrets" / "review.key"
    proc = subprocess.Popen(
        [sys.executable, "-m", "crosswalk.cli", "serve", "--db", str(mini_db),
         "--review-store", str(store_path), "--secret-key-file", str(key_file),
         "--trusted-proxy", "127.0.0.1", "--port", "0", "--threads", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("crosswalk serve: http://127.0.0.1:"), line
        assert _failed_sign_in(line.split()[2].rstrip("/"), "203.0.113.5").status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert _addresses(store_path) == ["203.0.113.5"]
    assert _mode(key_file) == 0o600 and len(key_file.read_text().strip()) == 64
    assert not default_key_file(store_path).exists()
    bad = subprocess.run(
        [sys.executable, "-m", "crosswalk.cli", "serve", "--db", str(mini_db),
         "--trusted-proxy-count", "2"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "needs --trusted-proxy" in bad.stderr
