"""The README and docs/ say what the code does: every `crosswalk` command they show parses
with the real command line, every option they name exists, every `make` target they name is
in the Makefile, and every file a build writes is documented. (The newcomer test runs the
README's commands; this one checks every document, quickly.)"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from crosswalk.cli import COMMANDS, make_parser
from crosswalk.formats import BUILD_OUTPUTS

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND = re.compile(rf"^crosswalk (?:{'|'.join(COMMANDS)})(?=\s|$)")


def _code_lines(doc: Path) -> Iterator[tuple[int, str]]:
    """The lines of ``doc``'s fenced code blocks, with their line numbers."""
    fenced = False
    for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif fenced:
            yield number, line.strip()


def _tokens(command: str) -> list[str]:
    """A documented command's arguments: comments, `...` and the brackets of optional
    parts dropped (`[--admin]` is checked as `--admin`)."""
    words = shlex.split(command, comments=True)[1:]
    return [w.strip("[]") for w in words if w.strip("[]") not in ("", "...")]


def _shown() -> list[tuple[str, str]]:
    """Every `crosswalk COMMAND ...` line of the documents' code blocks."""
    return [
        (f"{doc.relative_to(ROOT)}:{number}", line)
        for doc in DOCS
        for number, line in _code_lines(doc)
        if COMMAND.match(line)
    ]


def _named() -> list[tuple[str, str]]:
    """Every `` `crosswalk COMMAND ...` `` in the documents' text (options checked by their
    exact names: argparse would take an abbreviation)."""
    return [
        (f"{doc.relative_to(ROOT)}:{number}", span)
        for doc in DOCS
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1)
        for span in re.findall(r"`(crosswalk [^`]+)`", line)
        if COMMAND.match(span)
    ]


def _parser_of(tokens: list[str]) -> tuple[argparse.ArgumentParser, list[str]]:
    """The (sub)parser the leading words of ``tokens`` select, and the words after them."""
    parser = make_parser()
    while tokens:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or tokens[0] not in subs[0].choices:
            break
        parser, tokens = subs[0].choices[tokens[0]], tokens[1:]
    return parser, tokens


def test_the_documents_show_commands() -> None:
    where = {w.split(":")[0] for w, _ in _shown()}
    assert {"README.md", "docs/review.md", "docs/releases.md", "docs/api.md"} <= where


@pytest.mark.parametrize(("where", "command"), _shown(), ids=[w for w, _ in _shown()])
def test_every_command_shown_parses(where: str, command: str) -> None:
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
        try:
            make_parser().parse_args(_tokens(command))
        except SystemExit as exc:
            pytest.fail(f"{where}: `{command}` does not parse: {errors.getvalue()} ({exc})")


@pytest.mark.parametrize(
    ("where", "command"), [*_shown(), *_named()], ids=[w for w, _ in [*_shown(), *_named()]]
)
def test_every_option_named_exists(where: str, command: str) -> None:
    parser, rest = _parser_of(_tokens(command))
    for word in rest:
        option = word.split("=")[0]
        if option.startswith("--"):
            assert option in parser._option_string_actions, (
                f"{where}: `{command}`: {parser.prog} has no option {option}"
            )


def test_every_make_target_named_exists() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))
    for doc in DOCS:
        for target in re.findall(r"`(?:[A-Z]+=\S+ )*make ([a-z][a-z-]*)", doc.read_text("utf-8")):
            assert target in targets, f"{doc.name} names `make {target}`, not in the Makefile"


@pytest.mark.parametrize("name", BUILD_OUTPUTS)
def test_every_file_a_build_writes_is_documented(name: str) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    dictionary = (ROOT / "docs" / "data-dictionary.md").read_text(encoding="utf-8")
    build_help = io.StringIO()
    with contextlib.redirect_stdout(build_help), pytest.raises(SystemExit):
        make_parser().parse_args(["build", "--help"])
    assert name in readme, f"README.md does not name {name}"
    assert f"## `{name}`" in dictionary or f"`{name}`" in dictionary.split("##")[0], (
        f"docs/data-dictionary.md does not describe {name}"
    )
    assert name in build_help.getvalue(), f"`crosswalk build --help` does not name {name}"


def test_the_code_has_a_license_and_the_data_its_terms() -> None:
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["license"]
    assert declared == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    readme = (ROOT / "data" / "README.md").read_text(encoding="utf-8")
    terms = " ".join(readme.split()).split("## Terms", 1)
    assert len(terms) == 2, "data/README.md has no Terms section"
    for text in ("CHHS Open Data Portal", "unmodified", "LICENSE", "publisher"):
        assert text in terms[1], text
