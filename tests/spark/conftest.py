"""One Spark session for every test of the Spark runner: ``local[2]``, no UI, few shuffle
partitions and a modest driver. ``make test`` installs Java (``make java``) and PySpark
(the ``spark`` extra), so these tests run; they fail, saying what to install, without
them."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: The session's settings: small enough for CI's two cores.
TEST_CONF = {
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "2",
    "spark.driver.memory": "1g",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
}


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    if importlib.util.find_spec("pyspark") is None:
        pytest.fail(
            f"the Spark runner's tests need PySpark, which {sys.executable} cannot import. "
            "Fix: pip install -e '.[dev,spark]' (make test does), and Java 17 (make java)."
        )
    from crosswalk.runners.spark import spark_session

    session = spark_session("local[2]", TEST_CONF)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic pair of listings with their truth (``bench/synth.py``, 1,500 per
    side): its directory, with ``config.toml`` and ``truth.csv``."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from synth import generate
    finally:
        sys.path.remove(str(ROOT / "bench"))
    out = tmp_path_factory.mktemp("synth")
    generate(1500, out, seed=11)
    return out
