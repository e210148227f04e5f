"""`crosswalk reviewers`: accounts and API tokens of the review store.

Subcommands:

``add``
    create an account (``--department``, ``--username``, ``--admin``), with a
    password read from standard input or generated, and optionally a token;
``token``
    issue another API token to an existing account;
``list``
    list the accounts;
``queue``
    raise a built crosswalk's disputes into the store (the build does this
    itself when it is given a review store).

Passwords and tokens are printed once and stored only as hashes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

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
    add.add_argument("--admin", action="store_true", help="an admin sees every department")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input (else one is generated)",
    )
    add.add_argument("--token", action="store_true", help="also issue an API token")
    add.set_defaults(func=run_add)

    token = actions.add_parser(
        "token", parents=[common], help="issue an API token", description="Issue an API token."
    )
    token.add_argument("--username", required=True)
    token.set_defaults(func=run_token)

    ls = actions.add_parser("list", parents=[common], help="list accounts")
    ls.set_defaults(func=run_list)

    queue = actions.add_parser(
        "queue",
        parents=[common],
        help="raise a built crosswalk's disputes into the store",
        description="Raise the disputes of a published crosswalk.sqlite into the review store.",
    )
    queue.add_argument("--db", type=Path, default=Path("build/crosswalk.sqlite"))
    queue.set_defaults(func=run_queue)


def _departments(args: argparse.Namespace) -> list[str] | None:
    if args.config is None:
        return None
    from crosswalk.config import load_config

    return load_config(args.config).source_names()


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
    from crosswalk.review.auth import create_reviewer, generate_password, issue_token
    from crosswalk.review.store import ReviewStore

    known = _departments(args)
    if known is not None and args.department not in known:
        raise ReviewError(
            f"unknown department {args.department!r}. Fix: use a source name of "
            f"{args.config}: {', '.join(known)}."
        )
    generated = not args.password_stdin
    password = sys.stdin.readline().rstrip("\r\n") if generated is False else generate_password()
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


def run_queue(args: argparse.Namespace) -> int:
    from crosswalk.review.disputes import queue_disputes

    path = store_path(args)
    remaining = queue_disputes(args.db, path)
    print(f"{remaining} dispute(s) awaiting review in {path}")
    return 0
