"""Running a plan on Spark: the same stages, with the work that grows with the pairs on a
cluster (see ``docs/spark.md``).

:class:`SparkRunner` runs a :class:`~crosswalk.plan.Plan` stage by stage on the driver,
like :func:`~crosswalk.runners.local.serial_runner`, and hands Spark what is Spark's own,
how the work is distributed:

- **blocking** (the ``block`` stage): each rule's keys are made on the driver by the
  shared key functions (:func:`~crosswalk.stages.block.keys_and_order`: the rare-token
  counts are global), which deals each key's records to one Spark task (the exchange of
  a hash join on the key), a key of more than :data:`SALT_PAIRS` all-to-all pairs
  salted over several tasks (possible only when ``max_block_pairs`` is larger: past
  it, a block is paired by windows, in time linear in its size). Each task pairs its
  keys as the local blocking does (:func:`~crosswalk.stages.block.rule_pair_codes`:
  all-to-all up to ``max_block_pairs`` pairs, else each record with its ``window``
  next by name) and files the pairs by ranges of left records; Spark's shuffle brings
  each range's pairs together, where a task merges the rules' duplicates. The pairs are those of
  :func:`~crosswalk.stages.block.candidate_pairs`, in the same order;
- **comparing** (every stage that compares pairs: the u estimate, the candidates, the
  labelled pairs, the pairs left after pruning): ``mapInArrow`` over tasks of
  consecutive pairs, calling :func:`~crosswalk.stages.compare.compare` on the broadcast
  record columns;
- **the EM's counts**: the level patterns are counted by Spark tasks and the model is
  fitted on the driver by :func:`~crosswalk.stages.fit.fit`;
- **clustering** (the ``cluster`` stage): connected components in Spark by rounds of
  contraction (:func:`components`), checkpointed; the components breaking a constraint
  (one record per source, a cannot-link decision), found on the driver where the
  labels are, are resolved in tasks of whole components by ``mapInArrow``, calling
  :func:`~crosswalk.stages.cluster.cluster` once per task on its components.

A task's arrays (its keys, its pairs, its levels) travel through Spark as one binary
value, an Arrow IPC stream (:func:`packed`), which Spark moves without converting it row
by row into its own rows and back.

Every other stage (normalizing, scoring, survivorship, the ids) is the plan's own
function, run on the driver (a row-wise stage in parts on its cores, as locally). The
stages reach Spark only through the ``parallel`` handle
(:class:`~crosswalk.stages.kernel.parallel.Distributed`) and the two stages replaced
here: they never import PySpark.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crosswalk.errors import CrosswalkError
from crosswalk.plan import Plan, Stage
from crosswalk.progress import Steps
from crosswalk.runners.local import BATCHES, batch_of, map_batches
from crosswalk.runners.spill import machine_memory
from crosswalk.stages.block import (
    RULE_BITS,
    RULE_SHIFT,
    BlockParams,
    block,
    keys_and_order,
    merged_pair_codes,
    pair_codes,
    ranges,
    record_sources,
    rule_pair_codes,
)
from crosswalk.stages.cluster import (
    STATUSES,
    ClusterResult,
    breaking,
    cluster,
    cluster_outputs,
    cluster_records,
    link_graph,
    records_per_source,
)
from crosswalk.stages.compare import COMPARE_BATCH, Comparison, Strongest, compare
from crosswalk.stages.kernel.codes import pack, run_starts
from crosswalk.stages.kernel.columns import Columns
from crosswalk.stages.kernel.parallel import SerialParallel
from crosswalk.stages.keys import Decisions
from crosswalk.stages.model import Patterns, level_patterns

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_CUT = STATUSES.index("cut")

#: The Spark settings a session gets unless the caller sets them: Arrow for the transfers
#: (Spark's batches of rows no larger than the local runner's batches of pairs); messages
#: (a task's data travels in its task) of up to 1 GiB, not 128 MiB, so that one large key
#: or component, which a task takes whole, fits.
SESSION_DEFAULTS = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.maxRecordsPerBatch": "100000",
    "spark.sql.adaptive.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
    "spark.rpc.message.maxSize": "1024",
}

#: Pairs a blocking task takes of one key at most: a key with more all-to-all pairs is
#: split into that many salts (at most :data:`MAX_SALTS`), each paired by its own task.
SALT_PAIRS = 50_000
MAX_SALTS = 64
#: Key rows a blocking task pairs (whole keys: a task may get more); the pair codes are
#: merged in ranges of about :data:`PAIR_CODES_PER_RANGE` codes.
KEY_ROWS_PER_TASK = 1_000_000
PAIR_CODES_PER_RANGE = 4_000_000
#: Pairs a comparing task compares at most (in batches of ``COMPARE_BATCH``).
COMPARE_TASK_PAIRS = 1_000_000
#: Clustering checkpoints its rounds' links reliably every this many rounds (locally in
#: between: the lineage stays short).
CHECKPOINT_EVERY = 4
#: Edges a partition of clustering's first round holds at most (each partition finds its
#: components at once, by scipy): fewer partitions, fewer rounds.
COMPONENT_EDGES = 1_000_000


class SparkUnavailable(CrosswalkError):
    """PySpark or Java is missing."""


#: The most a local driver's heap gets unless told (see :func:`local_driver_memory`).
LOCAL_DRIVER_MEMORY_GIB = 3


def local_driver_memory(
    master: str | None, conf: Mapping[str, str], total_bytes: int | None = None
) -> str | None:
    """The ``spark.driver.memory`` a session of ``master`` gets when ``conf`` does not set it:
    on a ``local`` master, where the driver's heap is all the memory Spark has, a quarter
    of this machine's memory, at least 1g (Spark's own default, which runs out at about 1M
    records per side) and at most :data:`LOCAL_DRIVER_MEMORY_GIB` (the heap's collector
    lets it fill whatever it is given, beside the driver's Python and the Python workers,
    which hold the build's data; Spark spills its shuffles to disk past it); None
    elsewhere, or when set (in ``conf`` or ``SPARK_DRIVER_MEMORY``)."""
    if not (master or "").startswith("local") or "spark.driver.memory" in conf:
        return None
    if os.environ.get("SPARK_DRIVER_MEMORY"):
        return None
    if total_bytes is None:
        total_bytes = machine_memory()
        if not total_bytes:
            return None
    return f"{min(LOCAL_DRIVER_MEMORY_GIB, max(1, total_bytes // 4 // 2**30))}g"


def spark_session(
    master: str | None = None,
    conf: Mapping[str, str] | None = None,
    checkpoint_dir: str | Path | None = None,
) -> SparkSession:
    """A Spark session (the running one, if any) whose Python workers run this interpreter
    and import this copy of crosswalk. ``master``: ``local[*]``, ``spark://host:7077``,
    ``yarn``…; None: the one ``spark-submit`` sets, else ``local[*]``. Raises
    :class:`SparkUnavailable` when PySpark or Java is missing."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as e:
        raise SparkUnavailable(
            f"the Spark runner needs PySpark, which this Python ({sys.executable}) cannot "
            f"import ({e}). Fix: pip install 'crosswalk[spark]' (PySpark 4, which needs "
            "Java 17 or later), or build with --engine local."
        ) from None
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    java_home = os.environ.get("JAVA_HOME")
    if not shutil.which("java") and not (java_home and Path(java_home, "bin", "java").exists()):
        raise SparkUnavailable(
            "the Spark runner needs Java 17 or later, and there is no `java` on the PATH "
            "(nor in JAVA_HOME). Fix: install Java 17 (Debian and Ubuntu: apt-get install "
            "openjdk-17-jre-headless; `make java` does it) or set JAVA_HOME, or build with "
            "--engine local."
        )
    # The workers run this interpreter and import this copy of the project (local mode;
    # on a cluster, crosswalk is installed on the workers: see docs/spark.md).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH", "")
    if root not in path.split(os.pathsep):
        os.environ["PYTHONPATH"] = root + (os.pathsep + path if path else "")
    builder = SparkSession.builder.appName("crosswalk")
    if master is not None:
        builder = builder.master(master)
    settings = {**SESSION_DEFAULTS, **(conf or {})}
    memory = local_driver_memory(master, settings)
    if memory is not None:
        settings["spark.driver.memory"] = memory
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as e:  # the JVM did not start: Java too old, or missing
        raise SparkUnavailable(
            f"Spark did not start ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). "
            "Fix: check that `java -version` says 17 or later (or set JAVA_HOME to such a Java)."
        ) from e
    # Spark's warnings (large tasks: the pairs travel in them) are not the build's: errors only.
    spark.sparkContext.setLogLevel(os.environ.get("CROSSWALK_SPARK_LOG_LEVEL", "ERROR"))
    if checkpoint_dir is not None:
        spark.sparkContext.setCheckpointDir(str(checkpoint_dir))
    return spark


# --------------------------------------------------------------------------- the runner


class SparkRunner:
    """Runs plans with the work that grows with the pairs on ``spark`` (see the module's
    description)."""

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        # Spark's 200 shuffle partitions are hundreds of tiny tasks per join on a few cores:
        # two per core unless the session sets them.
        if not spark.sparkContext.getConf().contains("spark.sql.shuffle.partitions"):
            cores = max(spark.sparkContext.defaultParallelism, 1)
            spark.conf.set("spark.sql.shuffle.partitions", str(2 * cores))
        if not spark.sparkContext.getCheckpointDir():  # clustering checkpoints its rounds
            checkpoints = tempfile.mkdtemp(prefix="crosswalk-spark-checkpoints-")
            atexit.register(shutil.rmtree, checkpoints, True)
            spark.sparkContext.setCheckpointDir(checkpoints)
        self._broadcasts: dict[int, tuple[Any, Any]] = {}

    def run(
        self,
        plan: Plan,
        inputs: Mapping[str, Any],
        want: Collection[str],
        *,
        steps: Steps | None = None,
    ) -> dict[str, Any]:
        """Run the stages ``want`` depends on; see :class:`~crosswalk.runners.Runner`."""
        steps = steps or Steps(0, enabled=False)
        wanted = set(want)
        stages = plan.needed(want)
        data, readers = plan.start(stages, wanted, inputs)
        handle = SparkParallel(self)
        try:
            i = 0
            while i < len(stages):
                # Consecutive stages naming the same step are timed as one, as locally.
                j = i + 1
                step = stages[i].step
                while step is not None and j < len(stages) and stages[j].step == step:
                    j += 1
                with steps.step(step) if step is not None else nullcontext():
                    for s in stages[i:j]:
                        self._call(s, data, readers, wanted, handle)
                i = j
        finally:
            for _, broadcast in self._broadcasts.values():
                broadcast.unpersist()
            self._broadcasts.clear()
        return {d: data[d] for d in want}

    def _call(
        self,
        s: Stage,
        data: dict[str, Any],
        readers: dict[str, int],
        wanted: set[str],
        handle: SparkParallel,
    ) -> None:
        args = [data[d] for d in s.inputs]
        # Spark's jobs are named by their stage (the UI and the event log).
        self.spark.sparkContext.setJobDescription(f"crosswalk: {s.name}")
        own = SPARK_STAGES.get(s.fn)
        if own is not None:
            out = own(self, *args, **s.params)
        elif s.parallel:
            out = s.fn(*args, **s.params, parallel=handle)
        elif s.kind == "rowwise":  # on the driver, in parts on its cores, as locally
            first, rest = args[0], args[1:]
            rows, workers = batch_of(BATCHES, s.name, len(first))
            out = map_batches(lambda batch: s.fn(batch, *rest, **s.params), first, rows, workers)
            del first, rest
        else:
            out = s.fn(*args, **s.params)
        del args
        values = s.values(out)
        for d, v in zip(s.outputs, values, strict=True):
            if d in wanted or readers.get(d, 0) > 0:
                data[d] = v
        for d in s.inputs:
            readers[d] -= 1
            if readers[d] == 0 and d not in wanted:
                del data[d]

    def write_parquet(self, directory: Path, tables: Mapping[str, pd.DataFrame]) -> None:
        """Each of ``tables`` written by Spark as a Parquet dataset: ``directory/<name>/``,
        a directory of part files (see docs/spark.md)."""
        self.spark.sparkContext.setJobDescription("crosswalk: parquet")
        for name, frame in tables.items():
            # a part file per core: Spark's batches of rows would make one per 100,000
            data = self.spark.createDataFrame(for_spark(frame)).coalesce(self.cores)
            data.write.parquet(str(Path(directory, name).resolve()))

    def broadcast(self, value: Any, shipped: Callable[[Any], Any] | None = None) -> Any:
        """``value`` (or what ``shipped`` makes of it) broadcast to the workers, once per
        run."""
        got = self._broadcasts.get(id(value))
        if got is None:
            sent = shipped(value) if shipped is not None else value
            got = self._broadcasts[id(value)] = (value, self.spark.sparkContext.broadcast(sent))
        return got[1]

    @property
    def cores(self) -> int:
        """The cores Spark runs tasks on (its default parallelism)."""
        return max(self.spark.sparkContext.defaultParallelism, 1)

    def tasks(self, rows: list[tuple[int, bytes]]) -> DataFrame:
        """A Spark DataFrame of :data:`_TASK` rows (part, data), one partition each."""
        rdd = self.spark.sparkContext.parallelize(rows, max(len(rows), 1))
        return self.spark.createDataFrame(rdd, _TASK)

    def slices(self, columns: Mapping[str, np.ndarray], per: int) -> DataFrame:
        """:meth:`tasks` of ``per`` consecutive rows of ``columns`` each, a task's ``part``
        its first row."""
        n = len(next(iter(columns.values())))
        return self.tasks(
            [
                (start, packed({name: col[start : start + per] for name, col in columns.items()}))
                for start in range(0, n, per)
            ]
        )


def for_spark(frame: pd.DataFrame) -> pa.Table:
    """``frame`` as an Arrow table Spark reads: categories as their values, large strings
    and lists as plain ones."""
    table = pa.Table.from_pandas(frame, preserve_index=False)

    def plain(t: pa.DataType) -> pa.DataType:
        if pa.types.is_dictionary(t):
            return plain(t.value_type)
        if pa.types.is_large_string(t):
            return pa.string()
        if pa.types.is_large_list(t) or pa.types.is_list(t):
            return pa.list_(plain(t.value_type))
        return t

    schema = pa.schema([f.with_type(plain(f.type)) for f in table.schema])
    return table.cast(schema)


def to_arrow(df: DataFrame) -> pa.Table:
    """The rows of ``df`` on the driver, as an Arrow table."""
    return df.toArrow()


#: A task's row in Spark: its number (or the range it belongs to) and its data, the
#: columns of one Arrow IPC stream (:func:`packed`). A task's arrays travel as one value,
#: which Spark moves without looking into it, instead of rows it would convert one by one.
_TASK = "part bigint, data binary"


def packed(columns: Mapping[str, np.ndarray]) -> bytes:
    """``columns`` (equal lengths) as one Arrow IPC stream."""
    batch = pa.RecordBatch.from_pydict({name: pa.array(values) for name, values in columns.items()})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def unpacked(data: pa.Buffer | bytes) -> pa.Table:
    """The columns :func:`packed` packed."""
    return pa.ipc.open_stream(data).read_all()


def task_row(part: int, data: bytes) -> pa.RecordBatch:
    """One row of :data:`_TASK`."""
    return pa.RecordBatch.from_arrays(
        [pa.array([part], pa.int64()), pa.array([data], pa.binary())], names=["part", "data"]
    )


def task_rows(
    batches: Iterable[pa.RecordBatch], column: str = "data"
) -> Iterator[tuple[int, pa.Buffer]]:
    """The rows of :data:`_TASK` batches: (part, data); ``column``: where the data is."""
    for batch in batches:
        data = batch.column(column)
        for i, part in enumerate(batch.column("part").to_pylist()):
            yield part, data[i].as_buffer()


def by_part(batches: Iterable[pa.RecordBatch]) -> dict[int, list[pa.Table]]:
    """The data of :data:`_TASK` rows, gathered by their ``part`` (a partition may hold
    rows of several)."""
    found: dict[int, list[pa.Table]] = {}
    for part, data in task_rows(batches):
        found.setdefault(part, []).append(unpacked(data))
    return found


def grouped(keys: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """Each distinct value of ``keys``, in order, with the positions that hold it (in
    their order)."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = run_starts(ordered)
    for lo, hi in zip(starts.tolist(), [*starts[1:].tolist(), len(keys)], strict=True):
        yield int(ordered[lo]), order[lo:hi]


class SparkParallel(SerialParallel):
    """The ``parallel`` handle of the stages on a :class:`SparkRunner`: the pairs are
    compared and their level patterns counted in Spark (a
    :class:`~crosswalk.stages.kernel.parallel.Distributed` handle); any other fan-out runs
    here, one call after the other."""

    def __init__(self, runner: SparkRunner) -> None:
        self.runner = runner

    def compare_pairs(
        self,
        columns: Columns,
        left: np.ndarray,
        right: np.ndarray,
        comparisons: list[Comparison | Strongest],
    ) -> pd.DataFrame:
        n = len(left)
        # The output's types, from one pair compared here.
        probe = compare(columns.take(left[:1]), columns.take(right[:1]), comparisons)
        if n <= 1:
            return probe if n else probe.iloc[:0].reset_index(drop=True)
        fn = partial(
            _compare_tasks,
            columns=self.runner.broadcast(columns, _converted_only),
            comparisons=list(comparisons),
            batch=COMPARE_BATCH,
        )
        out = {name: np.empty(n, dtype=probe[name].to_numpy().dtype) for name in probe.columns}
        for start, data in self._tasks({"l": left, "r": right}, fn, COMPARE_TASK_PAIRS):
            levels = unpacked(data)
            for name, col in out.items():
                col[start : start + levels.num_rows] = levels.column(name).to_numpy()
        return pd.DataFrame(out, copy=False)

    def level_patterns(self, levels: pd.DataFrame, names: list[str]) -> Patterns:
        """The distinct level vectors, counted in Spark: each pair's levels are packed
        into one integer on the driver (as :func:`level_patterns` packs them), each task
        counts its share's codes and finds each code's first pair, and only the distinct
        codes come back, where the tasks' counts are added up."""
        n = len(levels)
        if not n or not names:
            return level_patterns(levels, names)
        columns = [levels[name].to_numpy().astype("int64") for name in names]
        # levels run from MISSING (-1) up
        code = pack(((col + 1, int(col.max()) + 2) for col in columns), n)
        found = [
            unpacked(data).to_pandas()
            for _, data in self._tasks({"code": code}, _count_codes, COMPARE_TASK_PAIRS * 4)
        ]
        per_code = pd.concat(found).groupby("code").agg(n=("n", "sum"), first=("first", "min"))
        codes = per_code.index.to_numpy()
        counts = per_code["n"].to_numpy().astype("int64")
        first = per_code["first"].to_numpy()
        # Most frequent first, ties in order of first appearance (as level_patterns).
        order = np.lexsort((first, -counts))
        rows = first[order]
        vectors = np.column_stack([col[rows] for col in columns]).reshape(len(rows), len(names))
        # Each pair's rank: its code's place among the distinct codes.
        codes = codes[order]
        by_code = np.argsort(codes)
        index = by_code[np.searchsorted(codes, code, sorter=by_code)].astype("int64")
        return Patterns(vectors, counts[order], index)

    def _tasks(
        self,
        columns: Mapping[str, np.ndarray],
        fn: Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]],
        most: int,
    ) -> Iterator[tuple[int, pa.Buffer]]:
        """``fn`` run on the rows of ``columns`` in Spark tasks of consecutive rows (at
        most ``most``, at least :data:`~crosswalk.stages.compare.COMPARE_BATCH`, about two
        tasks per core), each task's rows as one :data:`_TASK` row whose ``part`` is its
        first row: ``fn``'s rows, (first row, data)."""
        n = len(next(iter(columns.values())))
        per = int(np.clip(-(-n // (2 * self.runner.cores)), COMPARE_BATCH, most))
        got = to_arrow(self.runner.slices(columns, per).mapInArrow(fn, _TASK))
        return task_rows(got.to_batches())


def _converted_only(columns: Columns) -> Columns:
    """What the workers need of the records' columns: those already converted
    (:func:`~crosswalk.stages.compare.convert` converts every compared one), without the
    frame they came from nor the driver's memo."""
    if columns.frame is None:
        return columns
    columns.prepared(columns.names())
    return Columns(texts=columns.texts, floats=columns.floats, length=len(columns))


def _compare_tasks(
    batches: Iterator[pa.RecordBatch], *, columns: Any, comparisons: list[Any], batch: int
) -> Iterator[pa.RecordBatch]:
    """On a worker: each task's pairs' levels (:func:`compare`, ``batch`` pairs at a
    time)."""
    records: Columns = columns.value
    for start, data in task_rows(batches):
        pairs = unpacked(data)
        left, right = pairs.column("l").to_numpy(), pairs.column("r").to_numpy()
        got = [
            compare(
                records.take(left[at : at + batch]),
                records.take(right[at : at + batch]),
                comparisons,
            )
            for at in range(0, len(left), batch)
        ]
        levels = pd.concat(got, ignore_index=True) if len(got) > 1 else got[0]
        yield task_row(start, packed({c: levels[c].to_numpy() for c in levels.columns}))


def _count_codes(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """On a worker: each task's distinct codes, with their count and first row."""
    for start, data in task_rows(batches):
        code = unpacked(data).column("code").to_numpy()
        distinct, first, counts = np.unique(code, return_index=True, return_counts=True)
        yield task_row(
            start,
            packed({"code": distinct, "first": first.astype("int64") + start, "n": counts}),
        )


# --------------------------------------------------------------------------- blocking


def spark_block(
    runner: SparkRunner,
    frame: pd.DataFrame,
    columns: Columns,
    *,
    settings: BlockParams,
    same_source_ok: dict[str, bool],
) -> pd.DataFrame:
    """The ``block`` stage's candidate pairs, paired in Spark (see the module's
    description): the same pairs, in the same order, with the same rule bits.

    The keys are made on the driver (:func:`keys_and_order`), which also sends each key's
    records to one task (the exchange of a hash join on the key, done where the keys
    are): whole keys, about :data:`KEY_ROWS_PER_TASK` key rows per task, with a key of
    more than :data:`SALT_PAIRS` all-to-all pairs salted over several tasks (each pairs
    its share of the key's records with the others). Each task pairs its keys as the
    local blocking does (:func:`~crosswalk.stages.block.rule_pair_codes`) and files its
    pair codes by ranges of left records; Spark's shuffle brings each range's codes
    together, where one task merges them (:func:`~crosswalk.stages.block.merged_pair_codes`),
    and the ranges come back in order."""
    n = len(frame)
    src, allowed = record_sources(frame, same_source_ok)
    rules_dtype = np.min_scalar_type(max(RULE_BITS.values()) * 2 - 1)
    found, order = keys_and_order(frame, settings, columns)
    total = sum(len(rows) for _, rows, _ in found)
    if not total:
        empty = np.empty(0, dtype="int64")
        return pd.DataFrame({"l": empty, "r": empty, "rules": empty.astype(rules_dtype)})
    rules = [rule for rule, _, _ in found]
    tasks = max(2 * runner.cores, -(-total // KEY_ROWS_PER_TASK))
    parts: list[list[dict[str, np.ndarray]]] = [[] for _ in range(tasks)]
    estimate = 0
    for index, (_, rows, code) in enumerate(found):
        key_of, keys = pd.factorize(code)
        sizes = np.bincount(key_of, minlength=len(keys))
        block_pairs = sizes * (sizes - 1) // 2
        large = block_pairs > settings.max_block_pairs
        estimate += int(np.where(large, sizes * settings.window, block_pairs).sum())
        salts = np.where(large, 1, np.clip(-(-block_pairs // SALT_PAIRS), 1, MAX_SALTS))
        # Keys dealt to the tasks in turn, each salt of a salted key to the next task.
        first = (np.arange(len(keys), dtype="int64") + index) % tasks
        row_salts = salts[key_of]
        salted = bool((row_salts > 1).any())
        if salted:
            copies = np.repeat(np.arange(len(rows)), row_salts)
            salt = ranges(np.zeros(len(rows), dtype="int64"), row_salts)
            dest = first[key_of][copies] + salt
        else:
            copies, salt, dest = None, None, first[key_of]
        # small integers: sorted by radix
        dest = (dest % tasks).astype(np.min_scalar_type(tasks))
        del keys, block_pairs, large, first
        for t, took in grouped(dest):
            at = took if copies is None else copies[took]
            piece = {
                "rule": np.full(len(at), index, dtype="int8"),
                "key": key_of[at].astype(np.min_scalar_type(len(sizes))),
                "row": rows[at].astype(np.min_scalar_type(max(n - 1, 0))),
            }
            if salt is not None:
                piece["salt"] = salt[took].astype("int32")
                piece["salts"] = row_salts[at].astype("int32")
            parts[t].append(piece)
        del key_of, sizes, salts, row_salts, copies, salt, dest
    del found
    # Each task's keys as one value, its pieces let go as it is made.
    blobs = []
    for t in range(tasks):
        pieces, parts[t] = parts[t], []
        if pieces:
            names = dict.fromkeys(c for piece in pieces for c in piece)
            blobs.append((t, packed({c: _joined(pieces, c) for c in names})))
        del pieces
    del parts
    n_ranges = max(2 * runner.cores, -(-estimate // PAIR_CODES_PER_RANGE))
    width = max(-(-n // n_ranges), 1)
    shared = runner.broadcast((order, src, allowed), lambda value: (*value[0], value[1], value[2]))
    pairing = partial(_pair_keys, shared=shared, rules=rules, settings=settings, n=n, width=width)
    merging = partial(_merge_ranges, n=n)
    keyed = runner.tasks(blobs)
    del blobs  # in Spark now
    got = to_arrow(
        keyed.mapInArrow(pairing, _TASK).repartition(n_ranges, "part").mapInArrow(merging, _TASK)
    )
    # The ranges in order: the pairs sorted by left, then right, record.
    merged = [unpacked(data) for _, data in sorted(task_rows(got.to_batches()))]
    del got
    pair = np.concatenate([m.column("pair").to_numpy() for m in merged] or [np.empty(0, "int64")])
    bits = np.concatenate([m.column("rules").to_numpy() for m in merged] or [np.empty(0, "uint8")])
    del merged
    return pd.DataFrame(
        {"l": pair // max(n, 1), "r": pair % max(n, 1), "rules": bits.astype(rules_dtype)}
    )


def _joined(pieces: list[dict[str, np.ndarray]], column: str) -> np.ndarray:
    """``column`` of every piece of a blocking task, concatenated in the widest of their
    types; a piece without it (no salted key) is unsalted: salt 0 of 1."""
    kind = np.result_type(*(p[column].dtype for p in pieces if column in p))
    missing = 1 if column == "salts" else 0
    return np.concatenate(
        [p[column] if column in p else np.full(len(p["rule"]), missing, kind) for p in pieces]
    ).astype(kind, copy=False)


def _pair_keys(
    batches: Iterator[pa.RecordBatch],
    *,
    shared: Any,
    rules: list[str],
    settings: BlockParams,
    n: int,
    width: int,
) -> Iterator[pa.RecordBatch]:
    """On a worker: the pair codes of each task's keys, one row per range of left
    records (``width`` records each) that they fall in."""
    rank, by_rank, src, allowed = shared.value
    for _, data in task_rows(batches):
        keys = unpacked(data)
        rule = keys.column("rule").to_numpy()
        key = keys.column("key").to_numpy().astype("int64")
        row = keys.column("row").to_numpy().astype("int64")
        if "salts" in keys.column_names:
            salt, salts = keys.column("salt").to_numpy(), keys.column("salts").to_numpy()
        else:
            salt = salts = np.ones(len(rule), dtype="int32")
        del keys
        codes: list[np.ndarray] = []
        plain = salts == 1
        for index in np.unique(rule[plain]).tolist():
            at = plain & (rule == index)
            codes.extend(
                rule_pair_codes(
                    rules[index], key[at], row[at], (rank, by_rank), settings, src, allowed
                )
            )
        # A salted key's records are all paired all-to-all: this task pairs every
        # ``salts``-th of them (from its ``salt``-th) with those after it.
        salted = np.flatnonzero(~plain)
        if len(salted):
            groups = pd.DataFrame({"rule": rule[salted], "key": key[salted], "salt": salt[salted]})
            for at in groups.groupby(["rule", "key", "salt"]).indices.values():
                first = salted[at[0]]
                members = np.sort(row[salted[at]])
                lefts = np.arange(int(salt[first]), len(members), int(salts[first]))
                after = len(members) - 1 - lefts
                codes.append(
                    pair_codes(
                        np.repeat(members[lefts], after),
                        members[ranges(lefts + 1, after)],
                        src,
                        allowed,
                        rules[int(rule[first])],
                    )
                )
        every = np.concatenate(codes) if codes else np.empty(0, dtype="int64")
        del codes
        if not len(every):  # no key of this task pairs two records that may be paired
            continue
        for part, at in grouped((every >> RULE_SHIFT) // max(n, 1) // width):
            yield task_row(part, packed({"code": every[at]}))


def _merge_ranges(batches: Iterator[pa.RecordBatch], *, n: int) -> Iterator[pa.RecordBatch]:
    """On a worker: each range's pair codes (from every task) merged into its distinct
    pairs and their rules."""
    for part, tables in by_part(batches).items():
        every = np.concatenate([t.column("code").to_numpy() for t in tables])
        del tables[:]
        every.sort()
        pair, bits = merged_pair_codes(every)
        yield task_row(part, packed({"pair": pair, "rules": bits}))


# --------------------------------------------------------------------------- clustering


def components(
    runner: SparkRunner,
    n: int,
    left: np.ndarray,
    right: np.ndarray,
    *,
    partitions: int | None = None,
) -> np.ndarray:
    """Each of records ``0..n-1``'s connected component over the edges ``left``–``right``,
    numbered in order of the components' first record (as scipy numbers them).

    Found in Spark by rounds of contraction: each partition of the edges labels its
    records with the smallest record of their component within the partition
    (:func:`_local_components`, which files them by ranges of records); Spark's shuffle
    brings each range's records together, where each record takes the smallest of the
    labels its partitions gave it, and the labels one record got from several partitions
    become the next round's edges, between labels (:func:`_smallest_labels`). Each round
    halves the partitions (at most enough for :data:`COMPONENT_EDGES` edges each), so
    the last round, on one partition, leaves no edge; the rounds' edges are checkpointed
    (locally, and reliably every :data:`CHECKPOINT_EVERY` rounds). Only the records whose
    label changed come to the driver, which follows each record's labels to the last.
    ``partitions``: the first round's (default: one per core, or per
    :data:`COMPONENT_EDGES` edges if more)."""
    from pyspark.sql import functions as F

    parent = np.arange(n, dtype="int64")
    count = len(left)
    if count:
        parts = partitions or max(runner.cores, -(-count // COMPONENT_EDGES))
        n_ranges = max(2 * runner.cores, -(-n // COMPONENT_EDGES))
        width = max(-(-n // n_ranges), 1)
        edges = runner.slices(
            {"a": np.asarray(left, dtype="int64"), "b": np.asarray(right, dtype="int64")},
            -(-count // parts),
        )
        rounds = 0
        while count:
            rounds += 1
            if rounds > 1:
                edges = edges.repartition(parts)
            labelled = (
                edges.mapInArrow(partial(_local_components, width=width), _TASK)
                .repartition(n_ranges, "part")
                .mapInArrow(_smallest_labels, _LABELLED)
            )
            labelled = (
                labelled.checkpoint()
                if rounds % CHECKPOINT_EVERY == 0
                else labelled.localCheckpoint()
            )
            got = to_arrow(labelled.select("part", "edges", "moved"))
            for _, data in task_rows(got.to_batches(), column="moved"):
                moved = unpacked(data)
                parent[moved.column("node").to_numpy()] = moved.column("label").to_numpy()
            count = int(pc.sum(got.column("edges")).as_py() or 0)
            # The labels a record got besides its smallest, joined to it: the next edges.
            edges = labelled.filter(F.col("edges") > 0).select("part", "data")
            parts = max(1, min(parts // 2, -(-count // COMPONENT_EDGES)))
        # Each record's last label: its labels' labels, followed to the end.
        while True:
            further = parent[parent]
            if np.array_equal(further, parent):
                break
            parent = further
    # Each component's label is its smallest record: renumbered in that order.
    return np.unique(parent, return_inverse=True)[1].astype("int64")


#: A range's result in a round of :func:`components`: the records whose label is smaller
#: than themselves (``moved``: node, label), and the next round's edges (``data``: a, b;
#: ``edges`` of them).
_LABELLED = "part bigint, edges bigint, moved binary, data binary"


def _local_components(batches: Iterator[pa.RecordBatch], *, width: int) -> Iterator[pa.RecordBatch]:
    """On a worker: the components of one partition's edges ``a``–``b``: each record of
    the partition (``node``) with its component's smallest record (``root``), one row
    per range of ``width`` records."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    got = [unpacked(data) for _, data in task_rows(batches)]
    if not got:
        return
    a = np.concatenate([t.column("a").to_numpy() for t in got])
    b = np.concatenate([t.column("b").to_numpy() for t in got])
    del got
    if not len(a):
        return
    nodes, at = np.unique(np.concatenate([a, b]), return_inverse=True)
    k = len(nodes)
    graph = coo_matrix((np.ones(len(a), dtype="int8"), (at[: len(a)], at[len(a) :])), shape=(k, k))
    _, comp = connected_components(graph, directed=False)
    # nodes are sorted: each component's first node is its smallest.
    first = np.full(comp.max() + 1, k, dtype="int64")
    np.minimum.at(first, comp, np.arange(k))
    root = nodes[first[comp]]
    for part, at in grouped(nodes // width):
        yield task_row(part, packed({"node": nodes[at], "root": root[at]}))


def _smallest_labels(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """On a worker: per range of records, each record's smallest label (the records whose
    label is smaller than themselves, ``moved``) and the other labels joined to it, as
    the next round's edges (distinct)."""
    for part, tables in by_part(batches).items():
        node = np.concatenate([t.column("node").to_numpy() for t in tables])
        root = np.concatenate([t.column("root").to_numpy() for t in tables])
        del tables[:]
        order = np.lexsort((root, node))
        node, root = node[order], root[order]
        first = run_starts(node)
        label = np.repeat(root[first], np.diff(np.append(first, len(node))))
        moved = first[root[first] < node[first]]
        other = root != label
        edge = np.unique(np.stack([label[other], root[other]]), axis=1)
        yield pa.RecordBatch.from_arrays(
            [
                pa.array([part], pa.int64()),
                pa.array([edge.shape[1]], pa.int64()),
                pa.array([packed({"node": node[moved], "label": root[moved]})], pa.binary()),
                pa.array([packed({"a": edge[0], "b": edge[1]})], pa.binary()),
            ],
            names=["part", "edges", "moved", "data"],
        )


def spark_cluster(
    runner: SparkRunner,
    scored: pd.DataFrame,
    frame: pd.DataFrame,
    conflicts: pd.DataFrame,
    decisions: Decisions,
    *,
    limits: dict[str, int],
    threshold: float,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The ``cluster`` stage (:func:`~crosswalk.stages.cluster.cluster_records`) with the
    components found in Spark and the components breaking a constraint resolved per
    component in Spark by :func:`~crosswalk.stages.cluster.cluster`: the same labels,
    statuses and splits."""

    n = len(frame)
    g = link_graph(n, scored, threshold, decisions.must, decisions.cannot)
    labels = components(runner, n, g.el[g.active], g.er[g.active])
    n_comp = int(labels.max()) + 1 if n else 0
    result = ClusterResult(labels=labels, codes=g.codes)
    sources = frame["source"].to_numpy()
    # Which components break a constraint: counted where the labels are, in one pass.
    bad = breaking(labels, *records_per_source(labels, n_comp, sources, limits)[1:], g.cannot)
    if bad.any():
        _resolve(runner, result, g, bad, n_comp, sources, scored, limits, threshold)
    return cluster_outputs(result, scored, frame, conflicts)


#: What a component's resolution returns per row: ``kind`` 0: record ``a`` has part
#: ``b``; 1: link ``a`` is cut; 2: the component split into ``a`` parts; 3: must-link
#: ``a``–``b`` conflicts with a cannot-link. ``seq`` keeps each kind's rows in order.
_NO_ROW = 1 << 62
_RESOLVED = ("comp", "kind", "seq", "a", "b")
#: Rows (records, links and decisions) of the components to resolve per Spark task.
RESOLVE_ROWS = 200_000


def _resolve(
    runner: SparkRunner,
    result: ClusterResult,
    g: Any,
    bad: np.ndarray,
    n_comp: int,
    sources: np.ndarray,
    scored: pd.DataFrame,
    limits: dict[str, int],
    threshold: float,
) -> None:
    """Rebuild the components marked ``bad`` as :func:`cluster` does, in Spark tasks of
    whole components (:func:`_resolve_components`), and write their parts' labels, the
    cut links and the splits into ``result``."""
    labels = result.labels
    rows = np.flatnonzero(bad[labels])
    comp = labels[rows]
    lpos = scored["l"].to_numpy(dtype="int64")
    rpos = scored["r"].to_numpy(dtype="int64")
    inside = np.flatnonzero(bad[labels[lpos]] & (labels[lpos] == labels[rpos]))
    decided = [
        (kind, a, b)
        for kind, pairs in ((2, g.must), (3, g.cannot))
        for a, b in sorted(pairs)
        if bad[labels[a]] and labels[a] == labels[b]
    ]
    src_codes, src_names = pd.factorize(pd.Series(sources))
    weight = scored["match_weight"].to_numpy(dtype="float64")
    prob = scored["match_probability"].to_numpy(dtype="float64")
    k = len(rows) + len(inside) + len(decided)
    table = {
        # 0: a record (a: position, b: source code); 1: a link (a, b: ends, i: its row);
        # 2, 3: a must-link or a cannot-link decision.
        "comp": np.concatenate(
            [comp, labels[lpos[inside]], [labels[a] for _, a, _ in decided]]
        ).astype("int64"),
        "kind": np.concatenate(
            [np.zeros(len(rows)), np.ones(len(inside)), [d[0] for d in decided]]
        ).astype("int32"),
        "a": np.concatenate([rows, lpos[inside], [d[1] for d in decided]]).astype("int64"),
        "b": np.concatenate([src_codes[rows], rpos[inside], [d[2] for d in decided]]).astype(
            "int64"
        ),
        "i": np.concatenate([np.zeros(len(rows)), inside, np.zeros(len(decided))]).astype("int64"),
        "weight": np.concatenate([np.zeros(len(rows)), weight[inside], np.zeros(len(decided))]),
        "prob": np.concatenate([np.zeros(len(rows)), prob[inside], np.zeros(len(decided))]),
    }
    assert all(len(v) == k for v in table.values())
    names = [str(s) for s in src_names]
    limits = dict(limits)

    fn = partial(_resolve_components, sources=names, limits=limits, threshold=threshold)
    # Whole components to a task (about RESOLVE_ROWS rows each), resolved together.
    parts = max(1, -(-k // RESOLVE_ROWS))
    tasks = [
        (t, packed({c: v[at] for c, v in table.items()}))
        for t, at in grouped(table["comp"] % parts)
    ]
    del table
    got = to_arrow(runner.tasks(tasks).mapInArrow(fn, _TASK))
    resolved = pa.concat_tables([unpacked(data) for _, data in task_rows(got.to_batches())])
    out = {c: resolved.column(c).to_numpy() for c in _RESOLVED}
    order = np.lexsort((out["seq"], out["kind"], out["comp"]))
    out = {c: v[order] for c, v in out.items()}
    kind = out["kind"]
    # Parts get new labels after the components', component after component.
    comps = np.flatnonzero(bad)
    n_parts = np.zeros(n_comp, dtype="int64")
    split_rows = kind == 2
    n_parts[out["comp"][split_rows]] = out["a"][split_rows]
    first_label = np.zeros(n_comp, dtype="int64")
    first_label[comps] = n_comp + np.cumsum(n_parts[comps]) - n_parts[comps]
    parts_at = kind == 0
    part_comp, part_rec = out["comp"][parts_at], out["a"][parts_at]
    labels[part_rec] = first_label[part_comp] + out["b"][parts_at]
    cut = kind == 1
    cut_comp, cut_row = out["comp"][cut], out["a"][cut]
    real = cut_row[cut_row < len(result.codes)]
    linked = real[result.codes[real] == STATUSES.index("linked")]
    result.codes[linked] = _CUT
    # The splits, component after component: their members and cut links.
    split_comps, cut_start = np.unique(cut_comp, return_index=True)
    cut_links = np.split(cut_row, cut_start[1:]) if len(cut_row) else []
    member_start = np.searchsorted(part_comp, split_comps, side="left")
    member_end = np.searchsorted(part_comp, split_comps, side="right")
    for c, lo, hi, links in zip(
        split_comps.tolist(), member_start.tolist(), member_end.tolist(), cut_links, strict=True
    ):
        result.splits.append(
            {
                "members": part_rec[lo:hi].tolist(),
                "parts": int(n_parts[c]),
                "cut_links": links.tolist(),
            }
        )
    conflict = kind == 3
    result.decision_conflicts.extend(
        zip(out["a"][conflict].tolist(), out["b"][conflict].tolist(), strict=True)
    )


def _resolve_components(
    batches: Iterator[pa.RecordBatch],
    *,
    sources: list[str],
    limits: dict[str, int],
    threshold: float,
) -> Iterator[pa.RecordBatch]:
    """On a worker: the components breaking a constraint of one task (each whole in
    it), rebuilt by one call of :func:`cluster` on their records, links and decisions,
    renumbered in position order (which is the records' key order: the plan numbers the
    records in (source, record_id) order, so ties are broken as the local runner breaks
    them). Components share no record nor link, and :func:`cluster` resolves each on its
    own (its parts numbered in its records' order, one component after the other), so
    one call gives what a call per component gives; see :data:`_RESOLVED`."""
    got = [unpacked(data) for _, data in task_rows(batches)]
    if not got:
        return
    table = pa.concat_tables(got)
    del got
    kind = table.column("kind").to_numpy()
    a = table.column("a").to_numpy()
    b = table.column("b").to_numpy()
    comp_of_row = table.column("comp").to_numpy()
    i = table.column("i").to_numpy()
    rec = np.flatnonzero(kind == 0)
    rec = rec[np.argsort(a[rec], kind="stable")]
    members = a[rec]
    member_comp = comp_of_row[rec]
    member_src = np.asarray(sources, dtype=object)[b[rec]]
    link = np.flatnonzero(kind == 1)
    link = link[np.argsort(i[link], kind="stable")]
    link_rows = i[link]
    local = pd.DataFrame(
        {
            "l": np.searchsorted(members, a[link]),
            "r": np.searchsorted(members, b[link]),
            "match_weight": table.column("weight").to_numpy()[link],
            "match_probability": table.column("prob").to_numpy()[link],
        }
    )

    def decided(k: int) -> list[tuple[int, int]]:
        at = kind == k
        return list(
            zip(
                np.searchsorted(members, a[at]).tolist(),
                np.searchsorted(members, b[at]).tolist(),
                strict=True,
            )
        )

    res = cluster(len(members), member_src, limits, local, threshold, decided(2), decided(3))
    # Each component is rebuilt: its parts are labelled 0, 1, … in its own numbering.
    first_label = pd.Series(res.labels).groupby(member_comp).transform("min").to_numpy()
    parts = res.labels - first_label
    n_parts = pd.Series(parts).groupby(member_comp).max() + 1
    # A cut must-link that was never a candidate has no row: past the last one.
    cut_comp: list[int] = []
    cut_row: list[int] = []
    for split in res.splits:
        c = int(member_comp[split["members"][0]])  # type: ignore[index]
        for e in split["cut_links"]:  # type: ignore[attr-defined]
            cut_comp.append(c)
            cut_row.append(int(link_rows[e]) if e < len(link_rows) else _NO_ROW)
    conflicts = np.array(res.decision_conflicts, dtype="int64").reshape(-1, 2)

    def rows(k: int, comp: np.ndarray, x: np.ndarray, y: np.ndarray) -> pa.RecordBatch:
        """Rows of kind ``k``, numbered in their order within each component."""
        comp = np.asarray(comp, dtype="int64")
        seq = pd.Series(np.zeros(len(comp), dtype="int64")).groupby(comp).cumcount().to_numpy()
        return pa.RecordBatch.from_arrays(
            [
                pa.array(comp, pa.int64()),
                pa.array(np.full(len(comp), k, dtype="int32")),
                pa.array(seq.astype("int64")),
                pa.array(np.asarray(x, dtype="int64")),
                pa.array(np.asarray(y, dtype="int64")),
            ],
            names=list(_RESOLVED),
        )

    resolved = pa.Table.from_batches(
        [
            rows(0, member_comp, members, parts),
            rows(1, np.array(cut_comp), np.array(cut_row), np.zeros(len(cut_row))),
            rows(2, n_parts.index.to_numpy(), n_parts.to_numpy(), np.zeros(len(n_parts))),
            rows(
                3, member_comp[conflicts[:, 0]], members[conflicts[:, 0]], members[conflicts[:, 1]]
            ),
        ]
    )
    yield task_row(0, packed({c: resolved.column(c).to_numpy() for c in _RESOLVED}))


#: The stages whose work is Spark's own (by their function), and how they run here.
SPARK_STAGES: dict[Callable[..., Any], Callable[..., Any]] = {
    block: spark_block,
    cluster_records: spark_cluster,
}
