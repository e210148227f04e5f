"""`crosswalk reviewers`: accounts and API tokens of the review store.

Subcommands:

``add``
    create an account (``--department``, ``--username``, ``--admin``), with a
    password read from standard input or generated, and optionally a token;
``token``
    issue another API token to an existing account;
``list``
    list the accounts;
``disable`` and ``enable``
    disable an account (its sessions end, its tokens stop working) or enable
    it again;
``set-password``
    give an account a new password (its sessions end);
``tokens`` and ``revoke-token``
    list API tokens by id (never their hashes) and revoke one;
``rotate-key``
    write a new session-signing key and end every session;
``queue``
    raise a built crosswalk's disputes into the store (the build does this
    itself when it is given a review store).

Passwords and tokens are printed once and stored only as hashes.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path
from typing import Any

from crosswalk.artifact import DEFAULT_DB
from crosswalk.errors import ReviewError

DEFAULT_STORE = Path("review/review.sqlite")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "reviewers",
        help="manage review accounts and API tokens",
        description="Manage the accounts and API tokens of the review store (docs/review.md).",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store",
        type=Path,
        help="review store (SQLite); default: the config's review.store, else review/review.sqlite",
    )
    common.add_argument(
        "--config", type=Path, help="sources config: default store and the known departments"
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    add = actions.add_parser(
        "add",
        parents=[common],
        help="create an account",
        description="Create a review account. Prints a generated password (and token) once.",
    )
    add.add_argument("--username", required=True, help="login name (no spaces)")
    add.add_argument(
        "--department",
        required=True,
        help="the department (source name, e.g. cdph or hcai) whose records the reviewer decides",
    )
    add.add_argument(
        "--db",
        type=Path,
        default=Path(DEFAULT_DB),
        metavar="FILE",
        help="without --config: a built crosswalk.sqlite whose sources are the departments "
        f"(default: {DEFAULT_DB})",
    )
    add.add_argument("--admin", action="store_true", help="an admin sees every department")
    _password_option(add)
    add.add_argument("--token", action="store_true", help="also issue an API token")
    add.set_defaults(func=run_add)

    token = actions.add_parser(
        "token", parents=[common], help="issue an API token", description="Issue an API token."
    )
    token.add_argument("--username", required=True, help="the account the token acts as")
    token.set_defaults(func=run_token)

    ls = actions.add_parser("list", parents=[common], help="list accounts")
    ls.set_defaults(func=run_list)

    disable = actions.add_parser(
        "disable",
        parents=[common],
        help="disable an account: its sessions end and its tokens stop working",
        description="Disable a review account: it can no longer sign in, every session it "
        "has ends at once, and its API tokens are refused until it is enabled again.",
    )
    disable.add_argument("--username", required=True, help="the account to disable")
    disable.set_defaults(func=run_disable, disabled=True)

    enable = actions.add_parser(
        "enable",
        parents=[common],
        help="enable a disabled account again",
        description="Enable a disabled review account: it may sign in again and its API "
        "tokens that were not revoked work again (the sessions that ended stay ended).",
    )
    enable.add_argument("--username", required=True, help="the account to enable")
    enable.set_defaults(func=run_disable, disabled=False)

    password = actions.add_parser(
        "set-password",
        parents=[common],
        help="give an account a new password and end its sessions",
        description="Give a review account a new password (generated and printed once, or "
        "read with --password-stdin). Every session of the account ends.",
    )
    password.add_argument("--username", required=True, help="the account")
    _password_option(password)
    password.set_defaults(func=run_set_password)

    tokens = actions.add_parser(
        "tokens",
        parents=[common],
        help="list API tokens by id",
        description="List API tokens: id, owner, when created and when revoked. The tokens "
        "themselves cannot be shown (only their hashes are stored) and their hashes are not.",
    )
    tokens.add_argument("--username", help="only this account's tokens")
    tokens.set_defaults(func=run_tokens)

    revoke = actions.add_parser(
        "revoke-token",
        parents=[common],
        help="revoke an API token by id",
        description="Revoke an API token: requests with it are refused (401) from now on. "
        "Find its id with 'crosswalk reviewers tokens'.",
    )
    revoke.add_argument(
        "--id",
        dest="token_id",
        type=int,
        required=True,
        metavar="TOKEN_ID",
        help="the token's id, as 'crosswalk reviewers tokens' lists it",
    )
    revoke.set_defaults(func=run_revoke_token)

    rotate = actions.add_parser(
        "rotate-key",
        parents=[common],
        help="write a new session-signing key and end every session",
        description="Write a new random key to the store's session key file (the one "
        "'crosswalk serve' uses: --secret-key-file, else $CROSSWALK_SECRET_KEY_FILE, else "
        "$XDG_CONFIG_HOME/crosswalk/keys/<hash of the store path>.key) and end every session "
        "in the store: everyone signs in again. Restart the server so that it signs new "
        "sessions with the new key. A key set in $CROSSWALK_SECRET_KEY overrides the file "
        "and must be changed where it is set.",
    )
    rotate.add_argument(
        "--secret-key-file",
        type=Path,
        metavar="PATH",
        help="the key file to replace (give the same as to 'crosswalk serve')",
    )
    rotate.set_defaults(func=run_rotate_key)

    queue = actions.add_parser(
        "queue",
        parents=[common],
        help="raise a built crosswalk's disputes into the store",
        description="Raise the disputes of a published crosswalk.sqlite into the review store.",
    )
    queue.add_argument(
        "--db",
        type=Path,
        default=Path(DEFAULT_DB),
        metavar="FILE",
        help=f"the published crosswalk.sqlite whose disputes to raise (default: {DEFAULT_DB})",
    )
    queue.set_defaults(func=run_queue)


def _password_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input (else one is generated)",
    )


def _password(args: argparse.Namespace) -> tuple[str, bool]:
    """The password of ``--password-stdin``, else a generated one; and whether generated."""
    from crosswalk.review.auth import generate_password

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    return generate_password(), True


def _departments(args: argparse.Namespace) -> tuple[list[str], str]:
    """The departments a reviewer may belong to (the source names of ``--config``, else of
    the build ``--db``), and where they were read."""
    if args.config is not None:
        from crosswalk.config import load_config

        return load_config(args.config).source_names(), str(args.config)
    db = Path(args.db)
    if not db.is_file():
        raise ReviewError(
            f"cannot check department {args.department!r}: no sources config was given and "
            f"there is no build at {db}. Fix: give --config FILE (e.g. --config "
            "data/sources.toml), or --db the crosswalk.sqlite of a build."
        )
    from crosswalk.artifact.reader import connect

    conn = connect(db)
    try:
        names = [str(r[0]) for r in conn.execute("SELECT name FROM sources ORDER BY name")]
    except sqlite3.DatabaseError as exc:
        raise ReviewError(
            f"cannot read the sources of {db} ({exc}). Fix: give --config FILE, or --db the "
            "crosswalk.sqlite of a build."
        ) from exc
    finally:
        conn.close()
    return names, str(db)


def store_path(args: argparse.Namespace) -> Path:
    """The review store named by ``--store``, else by the config, else the default."""
    if args.store is not None:
        return Path(args.store)
    if args.config is not None:
        from crosswalk.config import load_config

        config = load_config(args.config)
        if config.review.store:
            path = Path(config.review.store)
            return path if path.is_absolute() else config.base_dir / path
    return DEFAULT_STORE


def run_add(args: argparse.Namespace) -> int:
    from crosswalk.review.auth import create_reviewer, issue_token
    from crosswalk.review.store import ReviewStore

    known, where = _departments(args)
    if args.department not in known:
        raise ReviewError(
            f"unknown department {args.department!r}. Fix: use a source name of "
            f"{where}: {', '.join(known)}."
        )
    password, generated = _password(args)
    path = store_path(args)
    with ReviewStore(path) as store:
        reviewer = create_reviewer(
            store, args.username, args.department, password, admin=args.admin
        )
        token = issue_token(store, reviewer) if args.token else None
    print(
        f"created {reviewer.role} {reviewer.username!r} of department {reviewer.department!r} "
        f"in {path}"
    )
    if generated:
        print(f"password: {password}")
    if token:
        print(f"token: {token}")
    if generated or token:
        print("These are shown once: only their hashes are stored.")
    return 0


def run_token(args: argparse.Namespace) -> int:
    from crosswalk.review.auth import issue_token
    from crosswalk.review.store import ReviewStore

    path = store_path(args)
    with ReviewStore(path, create=False) as store:
        reviewer = store.reviewer_by_name(args.username)
        if reviewer is None:
            raise ReviewError(
                f"no reviewer named {args.username!r} in {path}. "
                "Fix: create it with 'crosswalk reviewers add'."
            )
        token = issue_token(store, reviewer)
    print(f"token: {token}")
    print("It is shown once: only its hash is stored.")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from crosswalk.review.store import ReviewStore

    path = store_path(args)
    with ReviewStore(path, create=False) as store:
        rows = store.reviewers()
    if not rows:
        print(f"no reviewers in {path}")
        return 0
    print(f"{'username':<20} {'department':<12} {'role':<9} {'tokens':>6}  created")
    for reviewer, tokens in rows:
        state = " (disabled)" if reviewer.disabled_at else ""
        print(
            f"{reviewer.username:<20} {reviewer.department:<12} {reviewer.role:<9} "
            f"{tokens:>6}  {reviewer.created_at}{state}"
        )
    return 0


def run_disable(args: argparse.Namespace) -> int:
    from crosswalk.review.store import ReviewStore

    path = store_path(args)
    with ReviewStore(path, create=False) as store:
        reviewer = store.set_disabled(args.username, args.disabled)
    if args.disabled:
        print(
            f"disabled {reviewer.username!r} in {path}: its sessions ended and its tokens "
            "are refused"
        )
    else:
        print(f"enabled {reviewer.username!r} in {path}")
    return 0


def run_set_password(args: argparse.Namespace) -> int:
    from crosswalk.review.auth import set_password
    from crosswalk.review.store import ReviewStore

    password, generated = _password(args)
    path = store_path(args)
    with ReviewStore(path, create=False) as store:
        ended = set_password(store, args.username, password)
    print(f"new password for {args.username!r} in {path}; {ended} session(s) ended")
    if generated:
        print(f"password: {password}")
        print("It is shown once: only its hash is stored.")
    return 0


def run_tokens(args: argparse.Namespace) -> int:
    from crosswalk.review.store import ReviewStore

    path = store_path(args)
    with ReviewStore(path, create=False) as store:
        rows = store.tokens(args.username)
    if not rows:
        print(f"no tokens in {path}")
        return 0
    print(f"{'id':>6}  {'username':<20} {'created':<28} revoked")
    for t in rows:
        print(f"{t.token_id:>6}  {t.username:<20} {t.created_at:<28} {t.revoked_at or '-'}")
    return 0


def run_revoke_token(args: argparse.Namespace) -> int:
    from crosswalk.review.store import ReviewStore

    path = store_path(args)
    with ReviewStore(path, create=False) as store:
        token = store.revoke_token(args.token_id)
    print(f"token {token.token_id} of {token.username!r} revoked at {token.revoked_at}")
    return 0


def run_rotate_key(args: argparse.Namespace) -> int:
    import os

    from crosswalk.review.keys import KEY_ENV, rotate_key
    from crosswalk.review.store import ReviewStore

    path = store_path(args)
    with ReviewStore(path, create=False) as store:
        key_path = rotate_key(path, args.secret_key_file)
        ended = store.end_sessions()
    print(f"new session key in {key_path}; {ended} session(s) ended in {path}")
    print("Restart 'crosswalk serve' so that it signs new sessions with the new key.")
    if os.environ.get(KEY_ENV):
        print(
            f"warning: {KEY_ENV} is set, and a server started with it uses that key, not "
            f"{key_path}. Fix: change {KEY_ENV} where it is set, or unset it.",
            file=sys.stderr,
        )
    return 0


def run_queue(args: argparse.Namespace) -> int:
    from crosswalk.review.disputes import queue_disputes

    path = store_path(args)
    remaining = queue_disputes(args.db, path)
    print(f"{remaining} dispute(s) awaiting review in {path}")
    return 0
