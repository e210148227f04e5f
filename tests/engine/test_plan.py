"""The link and build plans, and the local runner's schedule of them (today's overlap)."""

from __future__ import annotations

import gc
import itertools
import re
import weakref
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from crosswalk.config import Config, load_config
from crosswalk.pipeline import Linkage, build, link
from crosswalk.plans import (
    LINKAGE_DATASETS,
    PREPARED_DATASETS,
    build_plan,
    link_inputs,
    link_plan,
)
from crosswalk.runners.local import (
    LANES,
    LOCAL,
    MAIN,
    LocalRunner,
    Trace,
    local_runner,
    serial_runner,
)
from crosswalk.sources import load_sources
from crosswalk.stages.normalize import COMPARED_ONLY, published_records

ROOT = Path(__file__).resolve().parents[2]
SIDE = ["convert", "u", "term_counts", "key_order"]
PREPARE = ["record_columns", "explain", "links", "records_table", "entities"]


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(ROOT / "tests" / "data" / "slice.toml")


@pytest.fixture(scope="module")
def records(config: Config) -> pd.DataFrame:
    return load_sources(config).records


def _build_inputs(records: pd.DataFrame) -> dict[str, Any]:
    return {**link_inputs(records, None, None), "releases": None}


def test_the_plans_fit_together(config: Config) -> None:
    for plan in (link_plan(config), build_plan(config)):
        made = plan.producers()
        for stage in plan.stages:
            for d in stage.inputs:
                assert d in made or d in plan.inputs, (stage.name, d)
        assert len(plan.order()) == len(plan.stages)
    # The schedule names only stages of the build plan, and lanes the runner has.
    names = {s.name for s in build_plan(config).stages}
    assert set(LOCAL) <= names
    assert {lane for lane, _ in LOCAL.values()} <= {*LANES, MAIN}
    assert "lane" in build_plan(config).describe(LOCAL)


def test_the_schedule_reproduces_the_overlap(config: Config, records: pd.DataFrame) -> None:
    trace = Trace()
    local_runner(trace).run(
        build_plan(config), _build_inputs(records), LINKAGE_DATASETS + PREPARED_DATASETS
    )
    ev = {e.stage: e for e in trace.events}
    # The side lane runs conversion, u, term counts and key order one at a time, in order.
    side = sorted((e for e in trace.events if e.lane == "side"), key=lambda e: e.start)
    assert [e.stage for e in side] == SIDE
    for a, b in itertools.pairwise(side):
        assert a.end < b.start
    # The prepare lane: the records' columns once compared, explanations once scored, the
    # tables once clustered.
    assert {ev[s].lane for s in PREPARE} == {"prepare"}
    assert ev["record_columns"].start > ev["compare"].end
    assert ev["explain"].start > ev["score"].end
    for s in ("links", "records_table", "entities"):
        assert ev[s].start > ev["cluster"].end
    # Every other stage on the calling thread.
    assert {e.lane for e in trace.events if e.stage not in SIDE + PREPARE} == {"main"}


def test_datasets_are_let_go_after_their_last_reader(config: Config, records: pd.DataFrame) -> None:
    refs: dict[str, weakref.ref[Any]] = {}
    alive_when_scored: dict[str, bool] = {}

    def watch(name: str) -> Any:
        def keep(value: Any) -> Any:
            refs[name] = weakref.ref(value)
            return value

        return keep

    def scored(value: Any) -> Any:
        gc.collect()
        alive_when_scored.update({k: r() is not None for k, r in refs.items()})
        return value

    shared: dict[str, Any] = {d: watch(d) for d in ("candidates", "em_levels", "kept_levels")}
    shared["scored"] = scored
    runner = LocalRunner(LANES, LOCAL, shared=shared)
    linkage = link(records, config, runner=runner)
    # Read by count, compare, fit and prune only: gone once scoring ends. The kept levels
    # are read by score: still held while score stores its output.
    assert alive_when_scored == {"candidates": False, "em_levels": False, "kept_levels": True}
    del linkage
    gc.collect()
    assert all(r() is None for r in refs.values())


def _same_linkage(a: Linkage, b: Linkage) -> None:
    pd.testing.assert_frame_equal(a.records, b.records)
    pd.testing.assert_frame_equal(a.pairs, b.pairs)
    pd.testing.assert_frame_equal(a.conflicts, b.conflicts)
    assert a.model.to_dict() == b.model.to_dict()
    assert a.comparisons == b.comparisons
    assert a.unique_schemes == b.unique_schemes
    assert a.candidate_pairs == b.candidate_pairs
    assert a.by_key is not None and b.by_key is not None
    np.testing.assert_array_equal(a.by_key, b.by_key)


def test_serial_runner_gives_the_same_linkage(config: Config, records: pd.DataFrame) -> None:
    scheduled = link(records, config)
    serial = link(records, config, runner=serial_runner())
    assert len(scheduled.pairs) > 100
    _same_linkage(scheduled, serial)


def test_link_is_the_plan(config: Config, records: pd.DataFrame, tmp_path: Path) -> None:
    """The build's linkage (the build plan on the local runner's schedule) is the link
    plan's on a serial runner, with the entity ids added and without the columns only
    comparing reads."""
    built = build(config, tmp_path / "out", progress=False).linkage
    planned = link(records, config, runner=serial_runner())
    assert built.records["entity_id"].notna().all()
    assert not set(COMPARED_ONLY) & set(built.records.columns)
    assert set(COMPARED_ONLY) <= set(planned.records.columns)
    _same_linkage(
        replace(built, records=built.records.drop(columns="entity_id")),
        replace(planned, records=published_records(planned.records)),
    )


def test_stages_do_not_mutate_their_inputs(config: Config, records: pd.DataFrame) -> None:
    """Every frame a stage makes is unchanged (columns and values) at the end of the run."""
    snapshots: dict[str, tuple[Any, pd.DataFrame]] = {}

    def snap(name: str) -> Any:
        def keep(value: Any) -> Any:
            if isinstance(value, pd.DataFrame):
                snapshots[name] = (value, value.copy(deep=True))
            return value

        return keep

    plan = build_plan(config)
    every = [d for s in plan.stages for d in s.outputs]
    runner = LocalRunner(LANES, LOCAL, shared={d: snap(d) for d in every if d != "columns"})
    given = records.copy(deep=True)
    runner.run(plan, _build_inputs(records), every)
    pd.testing.assert_frame_equal(records, given)
    assert {"normalized", "candidates", "scored", "pairs", "clustered"} <= set(snapshots)
    for name, (value, before) in snapshots.items():
        assert list(value.columns) == list(before.columns), name
        pd.testing.assert_frame_equal(value, before, obj=name)


def test_no_pools_outside_runner() -> None:
    """Only the runner makes thread pools and threads. The two others are named: the
    read-ahead of the sources (it starts before the engine is imported) and the API
    server's (its per-thread connections and the matcher warmed on a thread by
    ``crosswalk serve``)."""
    pool = re.compile(r"ThreadPoolExecutor|threading\.Thread\(")
    allowed = {
        "crosswalk/readahead.py",
        "crosswalk/commands/serve.py",
        # The SQLite loader's convert-ahead thread, until the writer takes a handle.
        "crosswalk/artifact/writer.py",
    }
    files = [
        *sorted((ROOT / "crosswalk").rglob("*.py")),
        *sorted((ROOT / "api").rglob("*.py")),
        *sorted((ROOT / "matchers").rglob("*.py")),
    ]
    runners = ROOT / "crosswalk" / "runners"
    found = {
        str(f.relative_to(ROOT))
        for f in files
        if runners not in f.parents and pool.search(f.read_text(encoding="utf-8"))
    }
    assert found == allowed, sorted(found ^ allowed)
    # The runner has them.
    assert pool.search((runners / "local.py").read_text("utf-8"))


def test_only_the_previous_stage_reads_the_previous_release(config: Config) -> None:
    plan = build_plan(config)
    readers = [s.name for s in plan.stages if "releases" in s.inputs]
    assert readers == ["previous"]
    ids_stage = next(s for s in plan.stages if s.name == "ids")
    assert "previous_state" in ids_stage.inputs and "releases" not in ids_stage.inputs
    # read just before the ids are assigned, once the records are clustered
    assert LOCAL["previous"] == (MAIN, "cluster")
    order = [s.name for s in plan.order({"previous": ["cluster"]})]
    assert order.index("cluster") < order.index("previous") < order.index("ids")
