"""Each stage module stands on its own: importing it (in a fresh interpreter) loads neither
the pipeline, nor the config, the sources, the publishing, nor the API."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

STAGES = (
    "normalize",
    "block",
    "compare",
    "model",
    "fit",
    "score",
    "cluster",
    "prune",
    "conflicts",
    "survivorship",
    "explain",
    "keys",
)

#: Modules a stage must not load.
FORBIDDEN = (
    "crosswalk.pipeline",
    "crosswalk.plans",
    "crosswalk.runners",
    "crosswalk.review",
    "crosswalk.artifact",
    "crosswalk.config",
    "crosswalk.sources",
    "crosswalk.artifact.writer",
)

_PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
forbidden = set(json.loads(sys.argv[2]))
print(json.dumps(sorted(
    n for n in sys.modules if n in forbidden or n == "api" or n.startswith("api.")
)))
"""


def _loaded(module: str) -> set[str]:
    """The forbidden modules (and any of ``api``) that importing ``module`` loads."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, module, json.dumps(FORBIDDEN)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("stage", STAGES)
def test_stage_imports_alone(stage: str) -> None:
    loaded = _loaded(f"crosswalk.stages.{stage}")
    assert not loaded, (
        f"crosswalk.stages.{stage} loads {sorted(loaded)}: a stage must not import the "
        "pipeline, the config, the sources, the publishing or the API"
    )


def test_stages_package_is_empty() -> None:
    """``import crosswalk.stages`` costs nothing (the config will import from it)."""
    probe = "import sys, crosswalk.stages; print('numpy' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
