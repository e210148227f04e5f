"""What a build holds while its plan runs: the read records are let go once the plan has
its own copy of them in (source, record_id) order."""

from __future__ import annotations

import gc
import itertools
import os
import subprocess
import sys
import weakref
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from crosswalk import pipeline
from crosswalk.config import load_config
from crosswalk.plan import Plan
from crosswalk.plans import LINKAGE_DATASETS, PREPARED_DATASETS, build_plan, link_inputs
from crosswalk.progress import Steps
from crosswalk.runners import spill
from crosswalk.runners.local import (
    LARGE_AT,
    MAIN,
    LocalRunner,
    Trace,
    _c_library,
    local_runner,
)
from crosswalk.sources import LoadedSources, load_sources

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
PREPARE = ["record_columns", "explain", "links", "records_table", "entities"]


class WatchingRunner(LocalRunner):
    """The local runner, noting whether the read records are still alive when it starts."""

    def __init__(self, read: list[weakref.ref[pd.DataFrame]]) -> None:
        super().__init__()
        self.read = read
        self.alive_at_start: bool | None = None

    def run(
        self,
        plan: Plan,
        inputs: Mapping[str, Any],
        want: Collection[str],
        *,
        steps: Steps | None = None,
    ) -> dict[str, Any]:
        gc.collect()
        self.alive_at_start = self.read[0]() is not None
        return super().run(plan, inputs, want, steps=steps)


def test_the_read_records_are_let_go_before_the_plan_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[weakref.ref[pd.DataFrame]] = []
    load = pipeline.load_sources

    def loading(config: Any) -> LoadedSources:
        loaded = load(config)
        read.append(weakref.ref(loaded.records))
        return loaded

    monkeypatch.setattr(pipeline, "load_sources", loading)
    runner = WatchingRunner(read)
    result = pipeline.build(
        load_config(DATA / "sources.toml"), tmp_path / "out", progress=False, runner=runner
    )
    assert runner.alive_at_start is False
    assert result.counts["entities"] > 0


def test_a_large_build_makes_the_published_tables_one_after_another() -> None:
    """From LARGE_AT records on, the stages that make the published tables' contents run on
    the calling thread, one at a time, after clustering, and the side lane's stages after
    blocking; the same datasets come out as with the default schedule."""
    config = load_config(DATA / "sources.toml")
    records = load_sources(config).records
    plan = build_plan(config)
    want = LINKAGE_DATASETS + PREPARED_DATASETS
    runs = {}
    for n in (0, LARGE_AT):
        trace = Trace()
        runs[n] = local_runner(trace, records=n).run(
            plan, {**link_inputs(records, None, None), "releases": None}, want
        )
        ev = {e.stage: e for e in trace.events}
        prepare = [ev[s] for s in PREPARE]
        if n == 0:
            assert {e.lane for e in prepare} == {"prepare"}
            continue
        assert {e.lane for e in prepare} == {MAIN}
        assert all(e.start > ev["cluster"].end for e in prepare)
        # Nothing runs beside blocking: what the side lane ran beside it comes after it.
        side = [ev[s] for s in ("convert", "u", "term_counts", "key_order")]
        assert {e.lane for e in side} == {MAIN}
        assert all(e.start > ev["block"].end for e in side)
        ordered = sorted(prepare, key=lambda e: e.start)
        assert all(a.end < b.start for a, b in itertools.pairwise(ordered))
    _assert_same_datasets(
        runs[0], runs[LARGE_AT], ("records_table", "entities", "links", "link_records", "clusters")
    )


def _assert_same_datasets(a: Mapping[str, Any], b: Mapping[str, Any], names: Sequence[str]) -> None:
    """Two runs' datasets ``names`` are equal, and so are their entity ids' members."""
    for name in names:
        if isinstance(a[name], pd.DataFrame):
            pd.testing.assert_frame_equal(a[name], b[name], obj=name)
        else:
            np.testing.assert_array_equal(a[name], b[name])
    pd.testing.assert_frame_equal(a["assignment"].state.members, b["assignment"].state.members)


RELEASE = """
import numpy as np
from crosswalk.runners.local import release_memory

def resident() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * {page}

# 300 MiB in blocks under glibc's mapping threshold (128 KiB): they live in the allocator's heap.
blocks = [np.ones(100 * 1024 // 8) for _ in range(3072)]
keep = blocks[-1]
del blocks
before = resident()
release_memory()
print(before - resident())
"""


@pytest.mark.skipif(_c_library() is None, reason="glibc's malloc_trim only")
def test_release_memory_hands_freed_memory_back() -> None:
    script = RELEASE.format(page=os.sysconf("SC_PAGE_SIZE"))
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert int(out.stdout) > 200 * 2**20


def _text_frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(n)
    words = np.array(["SAINT", "JOSEPH", "HOSPITAL", "CLINIC", "CENTER", "", "DIALYSIS"])
    names = [" ".join(rng.choice(words, 3)) for _ in range(n)]
    return pd.DataFrame(
        {
            "name": pd.array(names, dtype="string[pyarrow]"),
            "source": pd.Series(rng.choice(["a", "b"], n), dtype="str"),
            "lat": rng.random(n),
            "city": pd.array([None if i % 7 == 0 else f"C{i % 50}" for i in range(n)], "string"),
        },
        index=pd.RangeIndex(n),
    )


def test_a_spilled_frame_is_equal_and_its_text_is_mapped_from_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A frame large for the machine keeps its Arrow text in a memory-mapped file: equal to
    it, its text no longer allocated by Arrow, and the file gone from the directory."""
    monkeypatch.setattr(spill, "SPILL_SHARE", 0.0)
    frame = _text_frame(50_000)
    expected = _text_frame(50_000)  # the same values, in buffers of its own
    before = pa.total_allocated_bytes()
    out = spill.spilled(frame, tmp_path)
    del frame
    pd.testing.assert_frame_equal(out, expected)
    assert (out.dtypes == expected.dtypes).all()
    assert before - pa.total_allocated_bytes() > 0.9 * sum(
        expected[c].array._pa_array.nbytes for c in ("name", "source", "city")
    )
    assert list(tmp_path.iterdir()) == []
    # Columns named by something else than text keep their names.
    numbered = _text_frame(2_000).rename(columns={"name": 7})
    renamed = spill.spilled(numbered, tmp_path)
    pd.testing.assert_frame_equal(renamed, numbered)
    assert list(renamed.columns) == [7, "source", "lat", "city"]
    # Small for the machine: the frame itself.
    monkeypatch.setattr(spill, "SPILL_SHARE", 0.25)
    assert spill.spilled(expected, tmp_path) is expected


def test_a_frame_that_cannot_be_spilled_stays_in_memory_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spill, "SPILL_SHARE", 0.0)
    frame = _text_frame(1_000)
    with pytest.warns(ResourceWarning, match="TMPDIR"):
        assert spill.spilled(frame, tmp_path / "missing") is frame


def test_a_large_build_spilling_its_records_links_them_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With every frame of SPILL kept in a file, a large build's run gives the datasets of
    a run in memory, and the caller's records are replaced by the mapped ones."""
    config = load_config(DATA / "sources.toml")
    records = load_sources(config).records
    plan = build_plan(config)
    want = LINKAGE_DATASETS + PREPARED_DATASETS
    in_memory = local_runner(records=LARGE_AT).run(
        plan, {**link_inputs(records, None, None), "releases": None}, want
    )
    monkeypatch.setattr(spill, "SPILL_SHARE", 0.0)
    inputs = {**link_inputs(records, None, None), "releases": None}
    given = inputs["records"]
    mapped = local_runner(records=LARGE_AT).run(plan, inputs, want)
    assert inputs["records"] is not given
    pd.testing.assert_frame_equal(inputs["records"], given)
    _assert_same_datasets(
        in_memory,
        mapped,
        ("clustered", "pairs", "records_table", "entities", "links", "clusters"),
    )


def test_a_frame_is_not_spilled_to_a_file_system_held_in_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """/dev/shm is a tmpfs: its files are memory, so a frame spilled there would save none."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or not spill.in_memory_filesystem(shm):
        pytest.skip("no tmpfs at /dev/shm here")
    monkeypatch.setattr(spill, "SPILL_SHARE", 0.0)
    frame = _text_frame(1_000)
    assert spill.spilled(frame, shm) is frame
    assert not spill.in_memory_filesystem(ROOT)
