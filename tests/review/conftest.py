"""Fixtures for the review workflow tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import review_minixwalk as minixwalk
from review_minixwalk import PASSWORDS

from crosswalk.review import ReviewStore, queue_disputes
from crosswalk.review.auth import create_reviewer, issue_token


@pytest.fixture(autouse=True)
def key_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Session key files go under a private config home, never the real one."""
    home = tmp_path / "config-home"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.delenv("CROSSWALK_SECRET_KEY", raising=False)
    monkeypatch.delenv("CROSSWALK_SECRET_KEY_FILE", raising=False)
    return home


@pytest.fixture
def mini_db(tmp_path: Path) -> Path:
    """A small published crosswalk with one dispute of each kind."""
    return minixwalk.build(tmp_path / "crosswalk.sqlite")


@pytest.fixture
def store_path(tmp_path: Path, mini_db: Path) -> Path:
    """A review store with the small crosswalk's disputes queued and three accounts."""
    path = tmp_path / "review.sqlite"
    queue_disputes(mini_db, path)
    with ReviewStore(path) as store:
        create_reviewer(store, "alice", "cdph", PASSWORDS["alice"])
        create_reviewer(store, "henry", "hcai", PASSWORDS["henry"])
        create_reviewer(store, "root", "cdph", PASSWORDS["root"], admin=True)
    return path


@pytest.fixture
def store(store_path: Path) -> Iterator[ReviewStore]:
    with ReviewStore(store_path) as s:
        yield s


@pytest.fixture
def tokens(store: ReviewStore) -> dict[str, str]:
    """An API token for each account."""
    out = {}
    for name in PASSWORDS:
        reviewer = store.reviewer_by_name(name)
        assert reviewer is not None
        out[name] = issue_token(store, reviewer)
    return out
