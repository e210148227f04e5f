"""`crosswalk serve`: serve the HTTP API over a published crosswalk with waitress."""

from __future__ import annotations

import argparse
import errno
import sys
import threading
from pathlib import Path
from typing import Any

from crosswalk.artifact import DEFAULT_DB
from crosswalk.errors import CrosswalkError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="serve the lookup, match and reconciliation API over a published crosswalk",
        description=(
            "Serve the HTTP API (JSON under /v1, the W3C Reconciliation API at /reconcile, "
            "docs at /docs) with the waitress WSGI server. Give one crosswalk with --db, or a "
            "releases directory with --releases (the latest release is the default, every "
            "other one is reachable with ?release=VERSION)."
        ),
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--db",
        type=Path,
        help=f"a published crosswalk.sqlite (default: {DEFAULT_DB})",
    )
    what.add_argument("--releases", type=Path, help="a releases directory (releases/<version>/)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--threads", type=int, default=8, help="worker threads (default 8)")
    p.add_argument("--review-store", type=Path, help="the review store, for the review pages")
    p.add_argument(
        "--secret-key-file",
        type=Path,
        metavar="PATH",
        help="file of the key signing review session cookies, created 0600 if missing "
        "(default: $CROSSWALK_SECRET_KEY_FILE, else a file under "
        "$XDG_CONFIG_HOME/crosswalk/keys/; $CROSSWALK_SECRET_KEY overrides both)",
    )
    p.add_argument(
        "--trusted-proxy",
        metavar="ADDR",
        help="address of the reverse proxy in front of the server (or '*' for any): only "
        "requests from it may set the client address with X-Forwarded-For, which sign-in "
        "throttling counts by (default: no proxy; the connection's address is the client's)",
    )
    p.add_argument(
        "--trusted-proxy-count",
        type=int,
        metavar="N",
        help="with --trusted-proxy: how many proxies in a row add to X-Forwarded-For "
        "(default 1: the last address it lists is the client's)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the app and serve it until interrupted."""
    from api import ApiConfig, create_app, make_server

    if args.threads < 1 or args.threads > 256:
        raise CrosswalkError(f"--threads must be from 1 to 256, got {args.threads}.")
    if not 0 <= args.port <= 65535:
        raise CrosswalkError(f"--port must be from 0 to 65535, got {args.port}.")
    if args.trusted_proxy_count is not None and (
        not args.trusted_proxy or not 1 <= args.trusted_proxy_count <= 32
    ):
        raise CrosswalkError(
            "--trusted-proxy-count must be from 1 to 32 and needs --trusted-proxy, "
            f"got {args.trusted_proxy_count}."
        )
    db = args.db if args.releases is None else None
    if db is None and args.releases is None:
        db = Path(DEFAULT_DB)
    app = create_app(
        ApiConfig(
            db=db,
            releases=args.releases,
            review_store=args.review_store,
            secret_key_file=args.secret_key_file,
            trusted_proxy=args.trusted_proxy,
            trusted_proxy_count=args.trusted_proxy_count,
        )
    )
    registry = app.extensions["crosswalk.registry"]
    registry.warm()
    threading.Thread(target=_warm_matcher, args=(registry,), daemon=True).start()

    try:
        server = make_server(app, args.host, args.port, args.threads)
    except OSError as exc:
        raise CrosswalkError(_listen_error(args.host, args.port, exc)) from exc
    host = args.host if ":" not in args.host else f"[{args.host}]"
    port = server.effective_port
    latest = registry.latest()
    print(
        f"crosswalk serve: http://{host}:{port}/  (release {latest.version}, "
        f"{args.threads} threads; docs at http://{host}:{port}/docs, Ctrl-C to stop)",
        flush=True,
    )
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


def _listen_error(host: str, port: int, exc: OSError) -> str:
    """Why the server cannot listen on ``host:port``, and how to choose another port."""
    where = f"{host if ':' not in host else f'[{host}]'}:{port}"
    if exc.errno == errno.EADDRINUSE:
        why = f"port {port} is in use by another program (or another crosswalk serve)"
    else:
        why = exc.strerror or str(exc)
    other = port + 1 if 0 < port < 65535 else 8001
    return (
        f"cannot listen on {where}: {why}. Fix: choose another port with --port {other} "
        f"(--port 0 picks a free one), or with `PORT={other} make run`."
    )


def _warm_matcher(registry: Any) -> None:
    """Load the engine's matcher in the background so the first /v1/match is fast."""
    try:
        registry.latest().matcher()
    except Exception as exc:  # reported again, as a problem, when /v1/match is called
        print(f"crosswalk serve: matching is unavailable: {exc}", file=sys.stderr, flush=True)
