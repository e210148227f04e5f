"""Shared fixtures: real crosswalk builds of the embedded data, made once per test session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from crosswalk.config import load_config
from crosswalk.pipeline import BuildResult, build

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
TEST_DATA = Path(__file__).resolve().parent / "data"
TRUTH = ROOT / "bench" / "data" / "cdph2020_hcai2020_same_facility.csv"


@pytest.fixture(scope="session")
def truth_path() -> Path:
    """The 7,347 CDPH 2020 ↔ HCAI 2020 pairs that are the same facility (joined on OSHPD_ID)."""
    return TRUTH


@pytest.fixture(scope="session")
def embedded_config_path() -> Path:
    return DATA / "sources.toml"


@pytest.fixture(scope="session")
def built_crosswalk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The crosswalk of the full embedded data (with identifiers), built once: its output directory."""
    out = tmp_path_factory.mktemp("embedded") / "build"
    build(load_config(DATA / "sources.toml"), out, progress=False)
    return out


@pytest.fixture(scope="session")
def blind_build(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    """The embedded data built blind: every identifier column left out of the config."""
    config = load_config(DATA / "sources.toml")
    for src in config.sources:
        src.identifiers = []
    out = tmp_path_factory.mktemp("blind") / "build"
    return build(config, out, progress=False)


@pytest.fixture()
def slice_dir(tmp_path: Path) -> Path:
    """A private copy of the real-data slice (tests/data) that a test may modify."""
    target = tmp_path / "slice"
    shutil.copytree(TEST_DATA, target)
    return target
