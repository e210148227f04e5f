"""The import contracts in .importlinter: kept by the tree, and able to fail.

The positive test runs import-linter's `lint-imports` on the project as `make check` does. The
negative tests run it, with the project's own .importlinter, on a copy of the three packages into
which one forbidden import has been written, and check that the contract names that import: a
contract that cannot fail would pass them all silently.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("crosswalk", "matchers", "api")
#: import-linter's command line, run by the interpreter that runs the tests.
LINT = (
    "-c",
    "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())",
)


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` with `root`'s .importlinter, importing the packages found under `root`."""
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, *LINT, "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_tree_keeps_every_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, (
        "an import breaks the layering in .importlinter (docs/engine.md, 'Layers'); "
        f"run `lint-imports` to see it:\n{result.stdout}{result.stderr}"
    )
    assert "BROKEN" not in result.stdout and "KEPT" in result.stdout


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's three packages, sources only, and its .importlinter, in a fresh directory."""
    copy = tmp_path_factory.mktemp("tree")
    shutil.copy(ROOT / ".importlinter", copy)
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    return copy


# (module written into the copy, its source, the contract and the chain lint-imports must name)
VIOLATIONS = {
    "stage imports config": (
        "crosswalk/stages/newstage.py",
        "from crosswalk import config\n",
        "the stages import only each other",
        "crosswalk.stages.newstage -> crosswalk.config",
    ),
    "stage imports a new engine module": (
        "crosswalk/stages/newstage.py",
        "import crosswalk.newmodule\n",
        "the stages import only each other",
        "crosswalk.stages.newstage -> crosswalk.newmodule",
    ),
    "stage imports the package root": (
        "crosswalk/stages/newstage.py",
        "import crosswalk\n",
        "through the crosswalk package itself",
        "crosswalk.stages.newstage -> crosswalk",
    ),
    "stage imports api": (
        "crosswalk/stages/kernel/newkernel.py",
        "import api.store\n",
        "the stages import only each other",
        "crosswalk.stages.kernel.newkernel -> api.store",
    ),
    "vocabulary imports the schema": (
        "crosswalk/vocabulary.py",
        "from crosswalk.artifact import schema\n",
        "the vocabulary and the errors import nothing",
        "crosswalk.vocabulary -> crosswalk.artifact.schema",
    ),
    "errors import the vocabulary": (
        "crosswalk/errors.py",
        "import crosswalk.vocabulary\n",
        "the vocabulary and the errors import nothing",
        "crosswalk.errors -> crosswalk.vocabulary",
    ),
    "matchers import the vocabulary": (
        "matchers/newmatcher.py",
        "from crosswalk.vocabulary import FIELDS\n",
        "matchers imports nothing of crosswalk or api",
        "matchers.newmatcher -> crosswalk.vocabulary",
    ),
    "api imports the writer": (
        "api/newroute.py",
        "from crosswalk.artifact import writer\n",
        "api imports only",
        "api.newroute -> crosswalk.artifact.writer",
    ),
    "api imports a stage": (
        "api/review/newpage.py",
        "from crosswalk.stages import normalize\n",
        "api imports only",
        "api.review.newpage -> crosswalk.stages.normalize",
    ),
    "api imports matchers": (
        "api/newroute.py",
        "import matchers.identifiers\n",
        "api imports only",
        "api.newroute -> matchers.identifiers",
    ),
    "api imports a new engine module": (
        "api/__init__.py",
        "import crosswalk.newmodule\n",
        "api imports only",
        "api -> crosswalk.newmodule",
    ),
}


@pytest.mark.parametrize("case", sorted(VIOLATIONS))
def test_a_forbidden_import_breaks_its_contract(tree_copy: Path, case: str) -> None:
    path, source, contract, chain = VIOLATIONS[case]
    target = tree_copy / path
    original = target.read_text() if target.exists() else None
    newmodule = tree_copy / "crosswalk" / "newmodule.py"
    try:
        newmodule.write_text('"""A module no contract names."""\n')
        target.write_text((original or "") + source)
        result = lint_imports(tree_copy)
    finally:
        newmodule.unlink()
        if original is None:
            target.unlink()
        else:
            target.write_text(original)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    broken = out.split("Broken contracts", 1)[-1]
    assert contract in broken, out
    assert f"{chain} (l." in broken, out
