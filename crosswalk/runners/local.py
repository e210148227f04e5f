"""Running a plan in this process, on threads: the one place the engine makes thread pools.

:class:`LocalRunner` runs a :class:`~crosswalk.plan.Plan`'s stages on *lanes*: ``main``, the
calling thread, and named lanes of a fixed number of threads each. A schedule table
(stage → (lane, gate)) says which lane a stage runs on and, optionally, a stage it must not
start before (its *gate*: that stage has ended). Stages are started in one topological
order (gates count as dependencies); each lane takes its stages first in, first out, so a
stage only ever waits for stages earlier in that order, and the run cannot deadlock.

A dataset is let go (the runner drops its last reference) as soon as the last stage reading
it has ended, unless the caller wants it back. The first error a stage raises stops the
stages not yet started; it is raised once every lane's threads have ended.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from crosswalk.errors import PlanError
from crosswalk.plan import Plan, Stage
from crosswalk.progress import Steps
from crosswalk.runners.spill import spilled
from crosswalk.stages.kernel.columns import Columns
from crosswalk.stages.kernel.parallel import SerialParallel

T = TypeVar("T")
R = TypeVar("R")

#: The lane of the calling thread, where every stage the schedule does not name runs.
MAIN = "main"

#: Threads for the work that runs outside the GIL (Arrow's kernels, rapidfuzz, numpy):
#: one per core, at most 4, beyond which the parts that hold the GIL dominate.
THREADS = min(os.cpu_count() or 1, 4)


@dataclass(frozen=True)
class Parts:
    """A batch entry that splits a row-wise stage's input into ``parts`` batches of about
    equal size, run at once on as many threads, when it has at least ``at_least`` rows
    (one batch otherwise)."""

    parts: int
    at_least: int


#: The lanes the engine's plans run on, and their threads.
LANES = {"side": 1, "prepare": 2}

#: Today's overlap, as data: stage → (lane, gate: a stage it does not start before that
#: stage has ended). Every other stage runs on ``main``, in plan order.
#: - ``side``: what does not depend on the candidate pairs runs on a second thread while
#:   blocking runs (both spend most of their time in Arrow or numpy, outside the GIL): the
#:   compared columns' conversion, the u estimate, the records' term counts and their
#:   (source, record_id) order.
#: - ``prepare``: what the published tables need besides the entity ids, on two threads
#:   from the moment its inputs are known: the records' columns (once comparing ends),
#:   the links' explanations (once scored), then the links, the records table and the
#:   entities (once clustered) while the ids are assigned.
#: - ``previous`` (the previous release's id state) is read on ``main`` once the records
#:   are clustered, just before the ids are assigned, so that it is not held any longer.
LOCAL: dict[str, tuple[str, str | None]] = {
    "convert": ("side", None),
    "u": ("side", None),
    "term_counts": ("side", None),
    "key_order": ("side", None),
    "record_columns": ("prepare", "compare"),
    "explain": ("prepare", "score"),
    "links": ("prepare", "cluster"),
    "records_table": ("prepare", "cluster"),
    "entities": ("prepare", "cluster"),
    "previous": (MAIN, "cluster"),
}

#: From this many records on, a build runs :data:`LARGE` instead of :data:`LOCAL`.
LARGE_AT = 4_000_000

#: From this many records on, a build hands freed memory back after each stage.
RELEASE_AT = 100_000

#: The schedule of large builds: :data:`LOCAL` with nothing beside anything, so that no two
#: stages' working memory is held at once. The ``side`` stages run on ``main`` after
#: blocking (blocking converts the columns it reads itself, and the conversion is not
#: held beside its pair codes), and the stages making the published tables' contents on
#: ``main`` one after another (in plan order, after clustering). The outputs are the same.
LARGE: dict[str, tuple[str, str | None]] = {
    **{stage: place for stage, place in LOCAL.items() if place[0] == MAIN},
    **{stage: (MAIN, "block") for stage, place in LOCAL.items() if place[0] == "side"},
}

#: Row-wise stages' batches: normalizing splits a large batch over the threads.
BATCHES: dict[str, tuple[int, int] | Parts] = {"normalize": Parts(THREADS, 100_000)}

#: Threads of the ``parallel`` handle of the stages that fan out: blocking's rules on two;
#: the stages that compare pairs (the u estimate's sample, the candidates, the labelled
#: pairs, the pairs left after pruning) their batches of
#: :data:`~crosswalk.stages.compare.COMPARE_BATCH` pairs on :data:`THREADS`.
FANOUT = {"block": 2, "u": THREADS, "compare": THREADS, "fit": THREADS, "prune": THREADS}

#: :data:`FANOUT` of large builds (from :data:`LARGE_AT` records): blocking's rules one
#: after another, so that one rule's keys and block arrays are held at a time, not two.
LARGE_FANOUT = {**FANOUT, "block": 1}


class LazyColumns(Columns):
    """A dataset of :class:`~crosswalk.stages.kernel.columns.Columns` that several lanes
    read while one converts it (the ``side`` lane converts the compared columns while
    blocking reads some of them): each column is converted once, under its own lock,
    and a thread asking for a column being converted waits for it."""

    def __init__(self, frame: pd.DataFrame) -> None:
        super().__init__(frame)
        self._lock = threading.Lock()
        self._column_locks: dict[str, threading.Lock] = {}

    @classmethod
    def shared(cls, columns: Columns) -> Columns:
        """``columns`` (unconverted, made from a frame) as a lazily, safely converting dataset."""
        if isinstance(columns, LazyColumns) or columns.frame is None or columns.texts:
            return columns
        return cls(columns.frame)

    def text(self, column: str) -> Any:
        got = self.texts.get(column)
        if got is not None:
            return got
        with self._lock:
            lock = self._column_locks.setdefault(column, threading.Lock())
        with lock:
            return super().text(column)


#: Datasets read by several lanes at once, and what makes them safe to share.
SHARED: dict[str, Callable[[Any], Any]] = {"columns": LazyColumns.shared}

#: Datasets a large build (from :data:`LARGE_AT` records) keeps out of memory when their
#: text is large for the machine (:func:`~crosswalk.runners.spill.spilled`): the records
#: and the normalized records, held from the start of the plan to its end. The records
#: are about half the normalized ones: both are spilled, or neither.
SPILL: dict[str, Callable[[Any], Any]] = {
    "records": functools.partial(spilled, part=0.5),
    "normalized": spilled,
}


@dataclass(frozen=True)
class TraceEvent:
    """A stage that ran: its lane, and the sequence numbers of its start and end (one
    counter for both, over the whole run, so events can be compared: ``a.end < b.start``
    means ``b`` started after ``a`` ended)."""

    stage: str
    lane: str
    start: int
    end: int


class Trace:
    """A recorder of the stages a run started and ended (pass one to :class:`LocalRunner`)."""

    def __init__(self) -> None:
        self.events: list[TraceEvent] = []
        self._lock = threading.Lock()
        self._seq = 0

    def tick(self) -> int:
        """The next sequence number."""
        with self._lock:
            self._seq += 1
            return self._seq

    def add(self, event: TraceEvent) -> None:
        with self._lock:
            self.events.append(event)

    def __getitem__(self, stage: str) -> TraceEvent:
        return next(e for e in self.events if e.stage == stage)


class PoolParallel:
    """A :class:`~crosswalk.runners.Parallel` handle on a thread pool."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self._pool = pool

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        return self._pool.submit(fn, *args, **kwargs)

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        return list(self._pool.map(fn, items))


@contextmanager
def parallel(workers: int, name: str = "parallel") -> Iterator[SerialParallel | PoolParallel]:
    """A handle running up to ``workers`` calls at once (serial when 1); leaving the block
    waits for its threads."""
    if workers <= 1:
        yield SerialParallel()
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"crosswalk-{name}") as pool:
        yield PoolParallel(pool)


def split_rows(data: Any, start: int, end: int) -> Any:
    """Rows ``start:end`` of ``data`` (by position for pandas objects)."""
    if isinstance(data, pd.DataFrame | pd.Series):
        return data.iloc[start:end]
    return data[start:end]


def concat_rows(parts: Sequence[Any]) -> Any:
    """The batches' outputs of a row-wise stage put back together, in order, as one batch
    would have given them: pandas objects keep their index, unless every part numbers its
    rows from 0 (a ``RangeIndex``), when the whole is numbered from 0 too."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    if isinstance(first, pd.DataFrame | pd.Series):
        fresh = all(isinstance(p.index, pd.RangeIndex) and p.index.start == 0 for p in parts)
        return pd.concat(parts, ignore_index=fresh)
    if isinstance(first, np.ndarray):
        return np.concatenate(parts)
    if isinstance(first, list | tuple):
        return type(first)(x for p in parts for x in p)
    raise PlanError(
        f"cannot put row-wise batches of {type(first).__name__} back together: a row-wise "
        "stage returns a pandas object, a numpy array, a list or a tuple."
    )


def map_batches(
    fn: Callable[[Any], Any], data: Any, rows: int | None = None, workers: int = 1
) -> Any:
    """``fn(data)``, computed on batches of ``rows`` rows of ``data``, ``workers`` at once,
    and put back together (:func:`concat_rows`): the same result as one batch, for a
    row-wise ``fn``. ``rows`` None: one batch."""
    n = len(data)
    if rows is None or n <= rows:
        return fn(data)
    if rows < 1:
        raise PlanError(f"a batch has at least one row, not {rows}.")
    starts = range(0, n, rows)
    with parallel(min(workers, len(starts)), "batch") as handle:
        parts = handle.map(lambda a: fn(split_rows(data, a, a + rows)), starts)
    return concat_rows(parts)


def batch_of(
    batches: Mapping[str, tuple[int, int] | Parts], stage: str, length: int = 0
) -> tuple[int | None, int]:
    """The (rows, workers) a row-wise stage runs in on ``length`` rows: the first
    ``batches`` entry whose name or glob matches it, else one batch."""
    for pattern, entry in batches.items():
        if fnmatchcase(stage, pattern):
            if isinstance(entry, Parts):
                if length < entry.at_least or entry.parts <= 1:
                    return None, 1
                return -(-length // entry.parts), entry.parts
            return entry
    return None, 1


def local_runner(trace: Trace | None = None, *, records: int = 0) -> LocalRunner:
    """The runner the engine's plans run on here: :data:`LANES`, :data:`LOCAL`,
    :data:`BATCHES`, :data:`FANOUT` and :data:`SHARED`. ``records``: how many records the
    run links, when known (a build): from :data:`LARGE_AT` on, the schedule is
    :data:`LARGE` with :data:`LARGE_FANOUT`, and the datasets of :data:`SPILL` may be
    kept out of memory; and from :data:`RELEASE_AT` on, the memory each stage freed is handed
    back to the operating system when it ends (:func:`release_memory`)."""
    large = records >= LARGE_AT
    return LocalRunner(
        LANES,
        LARGE if large else LOCAL,
        batches=BATCHES,
        fanout=LARGE_FANOUT if large else FANOUT,
        shared=SHARED,
        trace=trace,
        release=records >= RELEASE_AT,
        spill=SPILL if large else None,
    )


@functools.cache
def _c_library() -> Any:
    """The C library, where it is glibc with ``malloc_trim`` (``None`` elsewhere)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return None
    with contextlib.suppress(OSError):
        lib = ctypes.CDLL(name)
        if hasattr(lib, "malloc_trim"):
            return lib
    return None


def release_memory() -> None:
    """Hand the memory that the C allocator holds free back to the operating system
    (glibc's ``malloc_trim``; nothing elsewhere). A stage's numpy arrays and Python
    objects live in the C allocator, which keeps what they freed in its arenas for reuse:
    without this, a large build's resident memory grows by what each stage left behind."""
    lib = _c_library()
    if lib is not None:
        lib.malloc_trim(0)


def serial_runner(trace: Trace | None = None) -> LocalRunner:
    """A runner of the same plans on the calling thread alone, one batch per stage."""
    return LocalRunner(trace=trace)


class _Aborted(Exception):
    """A stage did not run because another one failed."""


class LocalRunner:
    """Runs plans on this process's threads (see the module's description).

    ``lanes``: lane name → threads; ``schedule``: stage → (lane, gate), the stages it does
    not name run on ``main``, without gate (names of stages a plan does not have are
    allowed, so one table serves several plans; a gate on a stage that does not run is
    no gate); ``batches``: stage name or glob (``compare*``) → (rows, workers) for
    row-wise stages, or :class:`Parts` (one batch when not listed); ``fanout``: stage →
    threads of the ``parallel`` handle given to a stage that fans out (serial when not
    listed); ``shared``: dataset → a function making it safe for several lanes to read at
    once (applied when it is made); ``trace``: a :class:`Trace` to record the stages in;
    ``release``: hand freed memory back to the operating system after each stage
    (:func:`release_memory`); ``spill``: dataset → a function giving an equal value that
    is kept out of memory (applied when it is made, or for an input when the run starts:
    an input spilled is also replaced in the ``inputs`` dict the run was given, so that
    the caller does not hold the copy in memory). With none of them, a plan runs
    serially on the calling thread."""

    def __init__(
        self,
        lanes: Mapping[str, int] | None = None,
        schedule: Mapping[str, tuple[str, str | None]] | None = None,
        *,
        batches: Mapping[str, tuple[int, int] | Parts] | None = None,
        fanout: Mapping[str, int] | None = None,
        shared: Mapping[str, Callable[[Any], Any]] | None = None,
        trace: Trace | None = None,
        release: bool = False,
        spill: Mapping[str, Callable[[Any], Any]] | None = None,
    ) -> None:
        self.lanes = dict(lanes or {})
        self.schedule = dict(schedule or {})
        self.batches = dict(batches or {})
        self.fanout = dict(fanout or {})
        self.shared = dict(shared or {})
        self.trace = trace
        self.release = release
        self.spill = dict(spill or {})
        for stage, (lane, _) in self.schedule.items():
            if lane != MAIN and lane not in self.lanes:
                raise PlanError(
                    f"the schedule puts stage {stage!r} on lane {lane!r}, which has no threads. "
                    f"Fix: add it to the lanes ({', '.join(self.lanes) or 'none'}) or use {MAIN!r}."
                )
        for lane, width in self.lanes.items():
            if lane == MAIN or width < 1:
                raise PlanError(
                    f"lane {lane!r}: a lane other than {MAIN!r} has at least one thread."
                )

    def map_batches(
        self, fn: Callable[[Any], Any], data: Any, rows: int | None = None, workers: int = 1
    ) -> Any:
        """See :func:`map_batches`."""
        return map_batches(fn, data, rows, workers)

    def batch_of(self, stage: str, length: int = 0) -> tuple[int | None, int]:
        """See :func:`batch_of`."""
        return batch_of(self.batches, stage, length)

    def run(
        self,
        plan: Plan,
        inputs: Mapping[str, Any],
        want: Collection[str],
        *,
        steps: Steps | None = None,
    ) -> dict[str, Any]:
        """Run the stages ``want`` depends on; see :class:`~crosswalk.runners.Runner`."""
        return _Run(self, plan, inputs, want, steps).go()


class _Run:
    """One run of a plan: the datasets in hand, what has ended, the first error."""

    def __init__(
        self,
        runner: LocalRunner,
        plan: Plan,
        inputs: Mapping[str, Any],
        want: Collection[str],
        steps: Steps | None,
    ) -> None:
        self.runner = runner
        self.wanted = list(dict.fromkeys(want))
        self.want = set(self.wanted)
        needed = {s.name for s in plan.needed(want)}
        gates = {
            name: gate
            for name, (_, gate) in runner.schedule.items()
            if name in needed and gate in needed
        }
        self.stages = [
            s for s in plan.order({n: [g] for n, g in gates.items()}) if s.name in needed
        ]
        self.gates = gates
        self.producer = plan.producers()
        # How many stages still have to read each dataset; it is let go at 0 (never, if wanted).
        self.data, self.readers = plan.start(self.stages, self.want, inputs)
        for d, spill in runner.spill.items():
            if d in self.data:
                self.data[d] = spill(self.data[d])
                if isinstance(inputs, dict):
                    inputs[d] = self.data[d]
        self.ended = {s.name: threading.Event() for s in self.stages}
        self.lock = threading.Lock()
        self.error: BaseException | None = None
        self.aborted = False
        self.steps = steps or Steps(0, enabled=False)

    def go(self) -> dict[str, Any]:
        with ExitStack() as stack:
            pools = {
                lane: stack.enter_context(
                    ThreadPoolExecutor(max_workers=width, thread_name_prefix=f"crosswalk-{lane}")
                )
                for lane, width in self.runner.lanes.items()
            }
            # Leaving the block (also on an error or an interrupt here) wakes every stage
            # still waiting, then waits for every lane's threads.
            stack.callback(self._abort)
            main: list[Stage] = []
            for s in self.stages:
                lane = self._lane(s)
                if lane == MAIN:
                    main.append(s)
                else:
                    pools[lane].submit(self._task, s, lane)
            self._run_main(main)
            for s in self.stages:
                self.ended[s.name].wait()
        if self.error is not None:
            raise self.error
        return {d: self.data[d] for d in self.wanted}

    def _lane(self, s: Stage) -> str:
        return self.runner.schedule.get(s.name, (MAIN, None))[0]

    def _run_main(self, stages: list[Stage]) -> None:
        """The main lane's stages, in order; consecutive stages naming the same step are
        timed as one step."""
        i = 0
        while i < len(stages) and not self.aborted:
            j = i + 1
            step = stages[i].step
            while step is not None and j < len(stages) and stages[j].step == step:
                j += 1
            with self.steps.step(step) if step is not None else nullcontext():
                for s in stages[i:j]:
                    self._task(s, MAIN, timed=False)
                    if self.aborted:
                        break
            i = j

    def _task(self, s: Stage, lane: str, timed: bool = True) -> None:
        """Run ``s`` once its inputs and gate are in; record its error, if any."""
        try:
            try:
                for d in s.inputs:
                    if d in self.producer:
                        self._wait(self.producer[d])
                if s.name in self.gates:
                    self._wait(self.gates[s.name])
                if timed and s.step is not None:
                    with self.steps.step(s.step):
                        self._call(s, lane)
                else:
                    self._call(s, lane)
            except _Aborted:
                return
            except BaseException as e:  # raised by the run, from the main thread
                with self.lock:
                    if self.error is None:
                        self.error = e
                self._abort()
        finally:
            self.ended[s.name].set()

    def _wait(self, stage: str) -> None:
        self.ended[stage].wait()
        if self.aborted:
            raise _Aborted

    def _call(self, s: Stage, lane: str) -> None:
        trace = self.runner.trace
        start = trace.tick() if trace is not None else 0
        with self.lock:
            args = [self.data[d] for d in s.inputs]
        if s.kind == "rowwise":
            rows, workers = self.runner.batch_of(s.name, len(args[0]))
            first, rest = args[0], args[1:]
            args = []
            out: Any = map_batches(_Bound(s, rest), first, rows, workers)
            del first, rest
        elif s.parallel:
            with parallel(self.runner.fanout.get(s.name, 1), s.name) as handle:
                out = s.fn(*args, **s.params, parallel=handle)
        else:
            out = s.fn(*args, **s.params)
        args = []
        # The outputs some stage reads or the caller wants (read outside the lock: no stage
        # reads an output before it is in ``self.data``), spilled where the runner says.
        kept = {
            d: v
            for d, v in zip(s.outputs, s.values(out), strict=True)
            if d in self.want or self.readers.get(d, 0) > 0
        }
        del out
        for d in kept.keys() & self.runner.spill.keys():
            kept[d] = self.runner.spill[d](kept[d])
        with self.lock:
            for d, v in kept.items():
                self.data[d] = self.runner.shared[d](v) if d in self.runner.shared else v
            del kept
            for d in s.inputs:
                self.readers[d] -= 1
                if self.readers[d] == 0 and d not in self.want:
                    del self.data[d]
        if self.runner.release:
            release_memory()
        if trace is not None:
            trace.add(TraceEvent(s.name, lane, start, trace.tick()))

    def _abort(self) -> None:
        """Stop: stages not started will not run, and every waiting stage wakes up."""
        self.aborted = True
        for e in self.ended.values():
            e.set()


class _Bound:
    """A row-wise stage's function with its other inputs and params: a batch → its rows."""

    def __init__(self, stage: Stage, rest: list[Any]) -> None:
        self.stage, self.rest = stage, rest

    def __call__(self, batch: Any) -> Any:
        return self.stage.fn(batch, *self.rest, **self.stage.params)
