"""The Spark runner publishes what the local runner publishes: the same candidate pairs,
model, components and outputs, on the embedded data and on a synthetic set, through the
library and through ``crosswalk build --engine spark``."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from bench_scripts import load

from crosswalk.config import load_config
from crosswalk.evaluate import evaluate
from crosswalk.pipeline import build
from crosswalk.plans import link_plan
from crosswalk.runners.spark import SparkRunner, components, spark_block
from crosswalk.sources import load_sources
from crosswalk.stages.block import BlockParams, candidate_pairs
from crosswalk.stages.compare import columns_of, convert

ROOT = Path(__file__).resolve().parents[2]
EMBEDDED = ROOT / "data" / "sources.toml"


so = load("same_outputs")


@pytest.fixture(scope="module")
def embedded_local(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("local") / "build"
    build(load_config(EMBEDDED), out, progress=False)
    return out


def test_synthetic_build_same_outputs_and_f1(spark: Any, synthetic: Path, tmp_path: Path) -> None:
    """Each runner fits its own model and publishes: the same model, pairs, components,
    outputs and F1."""
    config = load_config(synthetic / "config.toml")
    # The EM on a sample: the costly comparisons wait for the model (pruning compares the rest).
    config.model.em_sample_pairs = 1500
    result, f1 = {}, {}
    for name, runner in (("local", None), ("spark", SparkRunner(spark))):
        result[name] = build(config, tmp_path / name, progress=False, runner=runner)
        f1[name] = evaluate(
            tmp_path / name / "crosswalk.sqlite",
            synthetic / "truth.csv",
            ("dept_a", "dept_a_id"),
            ("dept_b", "dept_b_id"),
            blocking=False,
        ).f1
    local, linked = result["local"].linkage, result["spark"].linkage
    assert local.candidate_pairs > 3000
    assert (local.pairs["status"] == "cut").any()  # constraints resolved per component
    assert local.model.to_dict() == linked.model.to_dict()
    pd.testing.assert_frame_equal(local.pairs, linked.pairs)
    pd.testing.assert_frame_equal(local.records, linked.records)  # the same components
    pd.testing.assert_frame_equal(local.conflicts, linked.conflicts)
    assert f1["local"] > 0.9
    assert abs(f1["local"] - f1["spark"]) <= 0.0005
    assert so.compare_build(tmp_path / "local", tmp_path / "spark") == []
    _assert_parquet(tmp_path / "spark")


def _assert_parquet(out: Path) -> None:
    """Parquet written by Spark beside the files: a directory of part files per table,
    holding the table's rows."""
    db = so.connect_ro(out / "crosswalk.sqlite")
    for table in ("records", "entities", "links"):
        parts = list((out / "parquet" / table).glob("part-*.parquet"))
        assert parts, f"no part files in parquet/{table}"
        rows = pq.read_table(out / "parquet" / table).num_rows
        assert rows == db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@pytest.mark.parametrize(
    "small_blocks,small_tasks",
    [(False, False), (True, False), (False, True)],
    ids=["config", "small-blocks-salted", "many-tasks-and-ranges"],
)
def test_blocking_gives_the_same_candidate_pairs(
    spark: Any,
    synthetic: Path,
    monkeypatch: pytest.MonkeyPatch,
    small_blocks: bool,
    small_tasks: bool,
) -> None:
    """Spark's tasks pair the records as the local blocking does: with the config's
    settings; with blocks past max_block_pairs (nearest neighbours by name) and keys
    split over many salts; and with the keys dealt to many tasks and the pairs merged in
    many ranges (several to a partition)."""
    import crosswalk.runners.spark as runner_module

    config = load_config(synthetic / "config.toml")
    frame = link_plan(config).stage("normalize").fn(load_sources(config).records)
    columns = convert(columns_of(frame, settings=config.comparisons))
    settings = BlockParams.of(config.blocking)
    if small_blocks:
        settings = replace(settings, max_block_pairs=20, window=3)
        monkeypatch.setattr(runner_module, "SALT_PAIRS", 2)
    if small_tasks:
        monkeypatch.setattr(runner_module, "KEY_ROWS_PER_TASK", 400)
        monkeypatch.setattr(runner_module, "PAIR_CODES_PER_RANGE", 300)
    same_source_ok = {s.name: False for s in config.sources}
    local = candidate_pairs(frame, settings, same_source_ok, columns)
    got = spark_block(
        SparkRunner(spark), frame, columns, settings=settings, same_source_ok=same_source_ok
    )
    assert len(local) > 1000
    pd.testing.assert_frame_equal(local, got)


@pytest.mark.parametrize("same_source_ok", [False, True])
def test_blocking_one_source(spark: Any, synthetic: Path, same_source_ok: bool) -> None:
    """Records of one source: no pairs unless the source may hold a facility twice (a
    task whose keys give no pair gives nothing; it failed before)."""
    config = load_config(synthetic / "config.toml")
    frame = link_plan(config).stage("normalize").fn(load_sources(config).records)
    frame = frame[frame["source"] == frame["source"].iloc[0]].reset_index(drop=True)
    columns = convert(columns_of(frame, settings=config.comparisons))
    settings = BlockParams.of(config.blocking)
    ok = {str(frame["source"].iloc[0]): same_source_ok}
    local = candidate_pairs(frame, settings, ok, columns)
    got = spark_block(SparkRunner(spark), frame, columns, settings=settings, same_source_ok=ok)
    assert (len(local) > 100) == same_source_ok
    pd.testing.assert_frame_equal(local, got)


def test_pairs_compared_and_counted_in_tasks_as_locally(
    spark: Any, synthetic: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Comparing in Spark tasks of several batches each, and counting the level patterns
    in tasks, give what comparing and counting here give."""
    import crosswalk.runners.spark as runner_module
    from crosswalk.stages.compare import compare, comparisons_for
    from crosswalk.stages.model import level_patterns

    config = load_config(synthetic / "config.toml")
    frame = link_plan(config).stage("normalize").fn(load_sources(config).records)
    columns = convert(columns_of(frame, settings=config.comparisons))
    pairs = candidate_pairs(frame, BlockParams.of(config.blocking), None, columns)
    left, right = pairs["l"].to_numpy(), pairs["r"].to_numpy()
    comparisons = comparisons_for(frame, config.comparisons)
    # tasks of at most 1000 pairs (at least 300), compared 300 at a time
    monkeypatch.setattr(runner_module, "COMPARE_BATCH", 300)
    monkeypatch.setattr(runner_module, "COMPARE_TASK_PAIRS", 1000)
    handle = runner_module.SparkParallel(SparkRunner(spark))
    assert len(left) > 3000
    expected = compare(columns.take(left), columns.take(right), comparisons)
    got = handle.compare_pairs(columns, left, right, comparisons)
    pd.testing.assert_frame_equal(got, expected)
    names = list(expected.columns)
    here, there = level_patterns(expected, names), handle.level_patterns(expected, names)
    np.testing.assert_array_equal(here.levels, there.levels)
    np.testing.assert_array_equal(here.counts, there.counts)
    np.testing.assert_array_equal(here.index, there.index)


def test_tasks_one_partition_each(spark: Any) -> None:
    """Each task's row is a partition of its own (a task each), and its data arrives whole."""
    from crosswalk.runners.spark import packed, task_rows, unpacked

    runner = SparkRunner(spark)
    rows = [(i, packed({"x": np.arange(i * 1000, dtype="int64")})) for i in range(5)]
    tasks = runner.tasks(rows)
    assert tasks.rdd.getNumPartitions() == 5
    got = {part: unpacked(data) for part, data in task_rows(tasks.toArrow().to_batches())}
    assert sorted(got) == list(range(5))
    for i, table in got.items():
        np.testing.assert_array_equal(table.column("x").to_numpy(), np.arange(i * 1000))


@pytest.mark.parametrize("partitions", [None, 8])
def test_components_by_contraction_match_scipy(spark: Any, partitions: int | None) -> None:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rng = np.random.default_rng(3)
    n = 3000
    # A long chain, stars and random components, the edges shuffled over the partitions
    # (8: components spread over partitions take several rounds of contraction).
    left = np.concatenate([np.arange(0, 20), np.full(30, 100), rng.integers(200, n, 2000)])
    right = np.concatenate([np.arange(1, 21), np.arange(101, 131), rng.integers(200, n, 2000)])
    shuffled = rng.permutation(len(left))
    left, right = left[shuffled], right[shuffled]
    graph = coo_matrix((np.ones(len(left)), (left, right)), shape=(n, n))
    _, expected = connected_components(graph, directed=False)
    got = components(SparkRunner(spark), n, left, right, partitions=partitions)
    np.testing.assert_array_equal(got, expected)


def _cli(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crosswalk.cli", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def test_cli_build_engine_spark(embedded_local: Path, tmp_path: Path) -> None:
    out = tmp_path / "build"
    done = _cli(
        "build", "--config", EMBEDDED, "--out", out, "--quiet",
        "--engine", "spark", "--spark-master", "local[2]",
        "--spark-conf", "spark.ui.enabled=false",
        "--spark-conf", "spark.sql.shuffle.partitions=4",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert so.compare_build(embedded_local, out) == []
    _assert_parquet(out)


def test_cli_spark_options_need_the_spark_engine(tmp_path: Path) -> None:
    done = _cli(
        "build", "--config", EMBEDDED, "--out", tmp_path / "b", "--spark-master", "local[2]"
    )
    assert done.returncode == 2
    assert "--spark-master only apply with --engine spark" in done.stderr


def test_cli_without_pyspark_says_what_to_install(tmp_path: Path) -> None:
    # A pyspark package that cannot be imported, first on the path.
    fake = tmp_path / "fake" / "pyspark"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no pyspark here')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake.parent), str(ROOT)])}
    done = _cli(
        "build", "--config", EMBEDDED, "--out", tmp_path / "b", "--engine", "spark", env=env
    )
    assert done.returncode == 2
    assert "pip install 'crosswalk[spark]'" in done.stderr
    assert not (tmp_path / "b").exists()


def test_cli_without_java_says_what_to_install(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(tmp_path)  # no java on it
    done = _cli(
        "build", "--config", EMBEDDED, "--out", tmp_path / "b", "--engine", "spark", env=env
    )
    assert done.returncode == 2
    assert "Java 17" in done.stderr and "openjdk-17-jre-headless" in done.stderr


@pytest.mark.parametrize("rows_per_partition", [None, 40])
def test_review_decisions_and_source_limits_resolved_per_component(
    spark: Any, monkeypatch: pytest.MonkeyPatch, rows_per_partition: int | None
) -> None:
    """Components breaking one record per source or a cannot-link decision, with must-links
    (one never a candidate), are rebuilt per component as the local clustering rebuilds
    them: the same labels, statuses, splits and decision conflicts; also with the
    components spread over many partitions, each resolving several at once."""
    import crosswalk.runners.spark as runner_module
    from crosswalk.runners.spark import spark_cluster

    if rows_per_partition is not None:
        monkeypatch.setattr(runner_module, "RESOLVE_ROWS", rows_per_partition)
    from crosswalk.stages.cluster import cluster_records
    from crosswalk.stages.keys import Decisions

    rng = np.random.default_rng(5)
    n = 400
    # The records in (source, record_id) order, as the plan numbers them before its first
    # stage: both runners then break ties by the same keys.
    frame = pd.DataFrame(
        {
            "source": np.sort(rng.choice(["a", "b", "c"], n)),
            "record_id": [f"{i:04d}" for i in range(n)],
        }
    )
    left = rng.integers(0, n, 700)
    right = rng.integers(0, n, 700)
    keep = left != right
    codes = np.unique(np.minimum(left, right)[keep] * n + np.maximum(left, right)[keep])
    prob = rng.uniform(0.3, 1.0, len(codes))
    scored = pd.DataFrame(
        {
            "l": codes // n,
            "r": codes % n,
            "match_weight": np.log2(prob / (1 - prob + 1e-9)),
            "match_probability": prob,
        }
    )
    first = scored[scored["match_probability"] > 0.8].head(6)
    decisions = Decisions(
        must=[(int(a), int(b)) for a, b in zip(first["l"][:3], first["r"][:3], strict=True)]
        + [(0, n - 1)],  # never a candidate
        cannot=[(int(a), int(b)) for a, b in zip(first["l"][3:], first["r"][3:], strict=True)]
        + [(int(scored["l"][0]), int(scored["r"][0]))],
    )
    conflicts = pd.DataFrame(columns=["kind", "l", "r", "scheme", "match_probability", "details"])
    params = {"limits": {"a": 1, "b": 1, "c": 0}, "threshold": 0.5}
    expected = cluster_records(scored, frame, conflicts, decisions, **params)
    got = spark_cluster(SparkRunner(spark), scored, frame, conflicts, decisions, **params)
    assert (expected[0]["status"] == "cut").sum() > 5
    for a, b in zip(expected, got, strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_a_local_driver_gets_a_quarter_of_the_machines_memory_up_to_3g_unless_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from crosswalk.runners.spark import local_driver_memory

    monkeypatch.delenv("SPARK_DRIVER_MEMORY", raising=False)
    gib = 2**30
    assert local_driver_memory("local[2]", {}, 24 * gib) == "3g"
    assert local_driver_memory("local[2]", {}, 8 * gib) == "2g"
    assert local_driver_memory("local[*]", {}, 1 * gib) == "1g"
    assert local_driver_memory("local[2]", {"spark.driver.memory": "3g"}, 24 * gib) is None
    assert local_driver_memory("spark://host:7077", {}, 24 * gib) is None
    assert local_driver_memory(None, {}, 24 * gib) is None
    monkeypatch.setenv("SPARK_DRIVER_MEMORY", "2g")
    assert local_driver_memory("local[2]", {}, 24 * gib) is None
