"""Passwords, API tokens, sessions and login throttling for the review store.

Passwords are stored as werkzeug scrypt hashes; API tokens as the SHA-256 of
a random 256-bit token, which is shown once when it is created; browser
sessions as the SHA-256 of the random id their (signed) cookie carries, so
that the server can end them. None is ever stored in plain text.

Sign-in is throttled on two axes, each on its own: failures per username
from any address, and failures per client address for any username.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from werkzeug.security import check_password_hash, generate_password_hash

from crosswalk.errors import ReviewError
from crosswalk.review.store import Reviewer, ReviewStore

#: Failed logins allowed per username (from any address) within the window.
MAX_FAILURES = 5
#: Failed logins allowed per client address (for any username) within the window.
MAX_ADDRESS_FAILURES = 20
#: The throttling window, in seconds.
WINDOW_SECONDS = 300
#: Shortest password accepted for an account.
MIN_PASSWORD_LENGTH = 12
#: Prefix of API tokens, so that a leaked token is recognisable.
TOKEN_PREFIX = "cwr_"
#: A session older than this must sign in again (seconds).
SESSION_SECONDS = 12 * 3600

# Compared against when the username is unknown, so that a login takes as long
# whether or not the account exists.
_DUMMY_HASH = generate_password_hash(secrets.token_hex(16), method="scrypt")


def set_password(store: ReviewStore, username: str, password: str) -> int:
    """Give ``username`` a new password and end its sessions; return how many ended."""
    return store.set_password_hash(username, hash_password(password))


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password``."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ReviewError(
            f"the password is too short: use at least {MIN_PASSWORD_LENGTH} characters."
        )
    return generate_password_hash(password, method="scrypt")


def generate_password() -> str:
    """A random password of about 120 bits."""
    return secrets.token_urlsafe(15)


def generate_token() -> str:
    """A new random API token (shown once, stored only as a hash)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form of an API token: its SHA-256, hex-encoded."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_reviewer(
    store: ReviewStore, username: str, department: str, password: str, *, admin: bool = False
) -> Reviewer:
    """Create an account with a hashed password."""
    return store.add_reviewer(
        username, department, hash_password(password), role="admin" if admin else "reviewer"
    )


def issue_token(store: ReviewStore, reviewer: Reviewer) -> str:
    """Create an API token for ``reviewer``; return it (it cannot be recovered later)."""
    token = generate_token()
    store.add_token(reviewer.reviewer_id, hash_token(token))
    return token


def reviewer_for_token(store: ReviewStore, token: str) -> Reviewer | None:
    """The active reviewer holding ``token``, if any."""
    if not token or len(token) > 200:
        return None
    return store.reviewer_by_token_hash(hash_token(token))


def start_session(store: ReviewStore, reviewer: Reviewer) -> str:
    """Open a session for ``reviewer``; return its random id (for the cookie only)."""
    session_id = secrets.token_urlsafe(32)
    store.add_session(reviewer.reviewer_id, hash_token(session_id), time.time() + SESSION_SECONDS)
    return session_id


def reviewer_for_session(store: ReviewStore, session_id: object) -> Reviewer | None:
    """The enabled reviewer of the live session ``session_id``, if any."""
    if not isinstance(session_id, str) or not session_id or len(session_id) > 200:
        return None
    return store.reviewer_by_session_hash(hash_token(session_id))


def end_session(store: ReviewStore, session_id: object) -> None:
    """End the session ``session_id`` (sign-out); nothing if there is none."""
    if isinstance(session_id, str) and session_id and len(session_id) <= 200:
        store.end_session(hash_token(session_id))


@dataclass(frozen=True)
class LoginResult:
    """The outcome of a login attempt."""

    reviewer: Reviewer | None
    #: Seconds until the next attempt is allowed when throttled, else 0.
    retry_after: int = 0


def _wait(failures: list[float], limit: int, now: float) -> int:
    if len(failures) < limit:
        return 0
    # Allowed again once the oldest counted failure leaves the window.
    oldest = failures[-limit]
    return max(1, int(oldest + WINDOW_SECONDS - now) + 1)


def retry_after(store: ReviewStore, username: str, ip: str, now: float | None = None) -> int:
    """Seconds to wait before ``username`` may try again from ``ip`` (0: may try now):
    the longer of the username's wait and the address's wait."""
    now = time.time() if now is None else now
    since = now - WINDOW_SECONDS
    return max(
        _wait(store.failures_for_username(username, since), MAX_FAILURES, now),
        _wait(store.failures_from_address(ip, since), MAX_ADDRESS_FAILURES, now),
    )


def login(store: ReviewStore, username: str, password: str, ip: str) -> LoginResult:
    """Check a password login, throttled per username and per client address.

    Every attempt is recorded. After :data:`MAX_FAILURES` failures for one
    username (from any address), or :data:`MAX_ADDRESS_FAILURES` failures from
    one address (for any username), within :data:`WINDOW_SECONDS`, further
    attempts for that username, or from that address, are refused without
    checking the password until the oldest counted failure leaves the window.
    A successful sign-in resets the username's count, not the address's.
    """
    username = username.strip()[:200]
    wait = retry_after(store, username, ip)
    if wait:
        return LoginResult(None, wait)
    stored = store.password_hash(username) if username else None
    ok = check_password_hash(stored or _DUMMY_HASH, password) and stored is not None
    store.record_login(username, ip, time.time(), ok)
    if not ok:
        return LoginResult(None, 0)
    return LoginResult(store.reviewer_by_name(username), 0)
