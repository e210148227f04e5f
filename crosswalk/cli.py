"""The ``crosswalk`` command line.

Each subcommand lives in ``crosswalk/commands/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a
callable taking the parsed ``argparse.Namespace`` and returning an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Sequence

from crosswalk import __version__
from crosswalk.errors import CrosswalkError

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS = ("init", "build", "evaluate", "explain", "serve", "release", "diff", "reviewers")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crosswalk",
        description=(
            "Link facility listings from several departments into one crosswalk of canonical "
            "entities, publish it, serve it over HTTP and review disputed matches."
        ),
        epilog="Run 'crosswalk COMMAND --help' for a command's options. Docs: docs/ in the repository.",
    )
    parser.add_argument("--version", action="version", version=f"crosswalk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"crosswalk.commands.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CrosswalkError as exc:
        print(f"crosswalk {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(
            f"crosswalk {args.command}: interrupted; no partial output was published.",
            file=sys.stderr,
        )
        return 130
    except BrokenPipeError:
        # The reader of standard output went away (`crosswalk diff --csv - | head`): stop
        # quietly, and keep the interpreter's last flush from writing to the closed pipe.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE  # what a command killed by SIGPIPE reports


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
