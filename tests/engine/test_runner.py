"""The plan and the local runner, on small pure stages."""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

import numpy as np
import pandas as pd
import pytest

from crosswalk.errors import CrosswalkError, PlanError
from crosswalk.plan import Plan, Stage
from crosswalk.progress import Steps
from crosswalk.runners import Runner
from crosswalk.runners.local import LocalRunner, Trace, map_batches


def double(x: Any) -> Any:
    return x * 2


def add(a: Any, b: Any) -> Any:
    return a + b


def nap(x: Any, seconds: float = 0.01) -> Any:
    time.sleep(seconds)
    return x + 1


def fail(x: Any) -> Any:
    time.sleep(0.02)
    raise ValueError("stage b broke")


def normalize(batch: pd.DataFrame, suffix: str) -> pd.DataFrame:
    return batch.assign(n_name=batch["name"].str.lower() + suffix)


def lengths(batch: pd.DataFrame) -> pd.DataFrame:
    """Row-wise, numbering its rows from 0 (as a comparison's levels are)."""
    return pd.DataFrame({"n": batch["name"].str.len().to_numpy()})


def fan(x: int, parallel: Any) -> int:
    return sum(parallel.map(double, range(x)))


class Blob:
    """An object dataset, to watch with a weakref."""


REFS: list[weakref.ref[Blob]] = []


def make_blob(x: int) -> Blob:
    blob = Blob()
    REFS.append(weakref.ref(blob))
    return blob


def read_blob(blob: Blob) -> int:
    return 1


def blob_is_gone(x: int) -> bool:
    return REFS[-1]() is None


def toy_plan() -> Plan:
    """records → normalized → (lengths, sizes side by side) → total."""
    return Plan(
        (
            Stage(
                "normalize", ("records",), ("normalized",), normalize, "rowwise", {"suffix": "!"}
            ),
            Stage("lengths", ("normalized",), ("lengths",), lengths, "rowwise", step="comparing"),
            Stage("count", ("records",), ("count",), len),
            Stage("slow", ("count",), ("slow",), nap, params={"seconds": 0.02}),
            Stage("fan", ("count",), ("fanned",), fan, parallel=True),
            Stage("total", ("lengths", "slow"), ("total",), total, step="comparing"),
        ),
        inputs=("records",),
    )


def total(lengths: pd.DataFrame, slow: int) -> int:
    return int(lengths["n"].sum()) + slow


RECORDS = pd.DataFrame({"name": [f"Facility {i}" for i in range(50)]})
PARALLEL = LocalRunner(
    {"side": 1, "prepare": 2},
    {"count": ("side", None), "slow": ("side", None), "fan": ("prepare", "lengths")},
    batches={"norm*": (7, 3), "lengths": (11, 2)},
    fanout={"fan": 3},
)


def test_plan_refuses_a_dataset_nobody_makes() -> None:
    with pytest.raises(PlanError, match=r"stage 'b' reads 'y', which no stage makes") as e:
        Plan((Stage("a", ("x",), ("z",), double), Stage("b", ("y",), ("w",), double)), ("x",))
    assert isinstance(e.value, CrosswalkError)


def test_plan_refuses_a_dataset_made_twice() -> None:
    with pytest.raises(PlanError, match=r"'z' is made by two stages, 'a' and 'b'"):
        Plan((Stage("a", ("x",), ("z",), double), Stage("b", ("x",), ("z",), double)), ("x",))


def test_plan_refuses_a_cycle() -> None:
    with pytest.raises(PlanError, match=r"cycle: (a → b → a|b → a → b)"):
        Plan(
            (
                Stage("a", ("x", "w"), ("z",), add),
                Stage("b", ("z",), ("w",), double),
            ),
            ("x",),
        )


def test_plan_refuses_duplicate_names_and_lambdas() -> None:
    with pytest.raises(PlanError, match=r"two stages are named 'a'"):
        Plan((Stage("a", ("x",), ("y",), double), Stage("a", ("y",), ("z",), double)), ("x",))
    with pytest.raises(PlanError, match=r"module-level function"):
        Stage("a", ("x",), ("y",), lambda x: x)
    with pytest.raises(PlanError, match=r"makes exactly one; it reads 0 and makes 1"):
        Stage("a", (), ("y",), double, "rowwise")


def test_order_is_topological_ties_in_declaration_order() -> None:
    plan = Plan(
        (
            Stage("late", ("mid",), ("end",), double),
            Stage("b", ("x",), ("b",), double),
            Stage("mid", ("a",), ("mid",), double),
            Stage("a", ("x",), ("a",), double),
        ),
        ("x",),
    )
    assert [s.name for s in plan.order()] == ["b", "a", "mid", "late"]
    assert [s.name for s in plan.order({"b": ["a"]})] == ["a", "b", "mid", "late"]
    assert plan.consumers() == {"x": ["b", "a"], "end": [], "b": [], "mid": ["late"], "a": ["mid"]}


def test_describe_draws_stages_and_lanes() -> None:
    text = toy_plan().describe(PARALLEL.schedule)
    lines = text.splitlines()
    assert lines[0].split() == ["stage", "kind", "inputs", "outputs", "step", "lane", "after"]
    assert lines[2].split() == ["normalize", "rowwise", "records", "normalized", "-", "main", "-"]
    assert "fan" in text and "prepare  lengths" in text


def test_parallel_schedule_equals_serial_runner() -> None:
    runner: Runner = PARALLEL
    want = ["total", "normalized", "fanned"]
    parallel = runner.run(toy_plan(), {"records": RECORDS}, want)
    serial = LocalRunner().run(toy_plan(), {"records": RECORDS}, want)
    assert list(parallel) == want
    pd.testing.assert_frame_equal(parallel["normalized"], serial["normalized"])
    assert parallel["total"] == serial["total"] == sum(len(n) for n in RECORDS["name"]) + 51
    assert parallel["fanned"] == serial["fanned"] == 2 * sum(range(50))


def test_lanes_fifo_and_gates() -> None:
    trace = Trace()
    runner = LocalRunner(
        {"side": 1, "prepare": 2},
        {
            "s1": ("side", None),
            "s2": ("side", None),
            "s3": ("side", None),
            "p": ("prepare", "m2"),
        },
        trace=trace,
    )
    plan = Plan(
        (
            Stage("m1", ("x",), ("m1",), nap),
            Stage("s1", ("x",), ("s1",), nap, params={"seconds": 0.1}),
            Stage("s2", ("x",), ("s2",), nap),
            Stage("s3", ("s1",), ("s3",), nap),
            Stage("p", ("x",), ("p",), nap),
            Stage("m2", ("m1", "s2"), ("m2",), add),
        ),
        ("x",),
    )
    out = runner.run(plan, {"x": 0}, ["m2", "s3", "p"])
    assert out == {"m2": 2, "s3": 2, "p": 1}
    e = {ev.stage: ev for ev in trace.events}
    assert {n: ev.lane for n, ev in e.items()} == {
        "m1": "main",
        "m2": "main",
        "s1": "side",
        "s2": "side",
        "s3": "side",
        "p": "prepare",
    }
    # The side lane: one thread, in submission order, each after the one before.
    assert e["s1"].end < e["s2"].start and e["s2"].end < e["s3"].start
    # The main lane ran m1 while s1 ran on the side.
    assert e["m1"].start < e["s1"].end
    # p reads only x, but its gate holds it until m2 has ended.
    assert e["m2"].end < e["p"].start


def test_a_dataset_is_let_go_after_its_last_reader() -> None:
    plan = Plan(
        (
            Stage("make", ("x",), ("blob",), make_blob),
            Stage("read", ("blob",), ("one",), read_blob),
            Stage("check", ("one",), ("gone",), blob_is_gone),
        ),
        ("x",),
    )
    for runner in (LocalRunner(), LocalRunner({"side": 1}, {"read": ("side", None)})):
        assert runner.run(plan, {"x": 0}, ["gone"]) == {"gone": True}
    # Unless the caller wants it back.
    kept = LocalRunner().run(plan, {"x": 0}, ["gone", "blob"])
    assert kept["gone"] is False and isinstance(kept["blob"], Blob)


def test_first_error_is_raised_and_every_lane_joined() -> None:
    plan = Plan(
        (
            Stage("a", ("x",), ("a",), nap, params={"seconds": 0.05}),
            Stage("b", ("x",), ("b",), fail),
            Stage("c", ("b",), ("c",), nap),
            Stage("d", ("a", "c"), ("d",), add),
            Stage("e", ("x",), ("e",), nap, params={"seconds": 0.05}),
        ),
        ("x",),
    )
    trace = Trace()
    runner = LocalRunner(
        {"side": 1, "prepare": 2},
        {"b": ("side", None), "c": ("side", None), "e": ("prepare", "d")},
        trace=trace,
    )
    with pytest.raises(ValueError, match="stage b broke"):
        runner.run(plan, {"x": 0}, ["d", "e"])
    assert not [t for t in threading.enumerate() if t.name.startswith("crosswalk-")]
    # What needed b's output, or waited for a stage that did, never started.
    assert not {"c", "d", "e"} & {ev.stage for ev in trace.events}


def test_map_batches_equals_one_batch() -> None:
    whole = normalize(RECORDS, "!")
    for rows, workers in ((1, 1), (7, 3), (49, 2), (50, 4), (1000, 2)):
        parts = map_batches(lambda b: normalize(b, "!"), RECORDS, rows, workers)
        pd.testing.assert_frame_equal(parts, whole)
        pd.testing.assert_frame_equal(
            map_batches(lengths, RECORDS, rows, workers), lengths(RECORDS)
        )
    values = np.arange(23)
    np.testing.assert_array_equal(map_batches(double, values, 5, 2), values * 2)


def test_steps_keep_their_names() -> None:
    with Steps(1, enabled=False) as steps:
        PARALLEL.run(toy_plan(), {"records": RECORDS}, ["total"], steps=steps)
    # normalize has no step; lengths and total share "comparing", timed once.
    assert list(steps.timings) == ["comparing"]


def test_the_run_refuses_what_it_cannot_give() -> None:
    with pytest.raises(PlanError, match=r"no stage makes 'nothing'"):
        LocalRunner().run(toy_plan(), {"records": RECORDS}, ["nothing"])
    with pytest.raises(PlanError, match=r"lacks the plan's input\(s\) 'records'"):
        LocalRunner().run(toy_plan(), {}, ["total"])
    two = Plan((Stage("two", ("x",), ("a", "b"), double),), ("x",))
    with pytest.raises(PlanError, match=r"stage 'two' returned int, not a tuple of its 2 outputs"):
        LocalRunner().run(two, {"x": 1}, ["a"])
    with pytest.raises(PlanError, match=r"lane 'side', which has no threads"):
        LocalRunner({}, {"count": ("side", None)})
