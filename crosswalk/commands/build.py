"""`crosswalk build`: read the declared sources, link them and publish the crosswalk."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crosswalk.artifact import DEFAULT_OUT
from crosswalk.commands.reviewers import DEFAULT_STORE
from crosswalk.config import load_config
from crosswalk.errors import BuildError

if TYPE_CHECKING:
    from crosswalk.runners import Runner
    from crosswalk.sources import SourceInfo


def register(sub: Any) -> None:
    p = sub.add_parser(
        "build",
        help="link the declared sources and publish the crosswalk",
        description=(
            "Read every source declared in the config, link their records into canonical entities "
            "and write crosswalk.sqlite, crosswalk.csv and datapackage.json into --out, and "
            "changes.csv (what happened to entity ids since the release of --releases; every id "
            "is new in a first build) when ids changed (docs/data-dictionary.md). "
            "Writing is atomic: if the build fails or is killed, --out holds the previous output "
            "or the new one, whole, and the next build cleans up. One build at a time writes into "
            "--out (a second stops at once), and a build refuses to replace an --out holding files "
            "it does not write. Input that is read but looks wrong (see docs/sources.md) gives "
            "a warning on stderr, also kept in the summary."
        ),
    )
    p.add_argument(
        "--config",
        required=True,
        metavar="FILE",
        help="sources config (TOML or JSON), e.g. data/sources.toml",
    )
    p.add_argument(
        "--out",
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"output directory (default: {DEFAULT_OUT})",
    )
    p.add_argument(
        "--releases",
        metavar="DIR",
        help="releases directory: entity ids are carried over from its latest release",
    )
    p.add_argument(
        "--review-store",
        metavar="FILE",
        help="review store whose decisions bind this build (default: [review] store of the config)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print the summary as JSON (warnings about the input still go to stderr)",
    )
    p.add_argument(
        "--quiet",
        action="store_true",
        help="print nothing but errors (warnings stay in the summary kept in the output's meta)",
    )
    engine = p.add_argument_group(
        "engine",
        "where the linking runs (docs/spark.md); every engine publishes the same crosswalk",
    )
    engine.add_argument(
        "--engine",
        choices=("local", "spark"),
        default="local",
        help="local: in this process, on its threads (default). spark: blocking, comparing, "
        "the EM's counts and clustering on Spark, the rest on the driver; also writes "
        "parquet/ into --out. Needs pip install 'crosswalk[spark]' and Java 17 or later",
    )
    engine.add_argument(
        "--spark-master",
        metavar="URL",
        help="with --engine spark: the Spark master, e.g. local[*] (this machine, every "
        "core), local[2], spark://host:7077 or yarn (default: the one spark-submit sets, "
        "else local[*])",
    )
    engine.add_argument(
        "--spark-conf",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="with --engine spark: a Spark setting, e.g. spark.driver.memory=8g (repeatable)",
    )
    engine.add_argument(
        "--spark-checkpoint-dir",
        metavar="DIR",
        help="with --engine spark: where clustering checkpoints its rounds' links (a directory all "
        "the executors reach on a cluster, e.g. hdfs:///tmp/crosswalk; default: a "
        "temporary directory)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from crosswalk import readahead

    config = load_config(args.config)
    # The source files are read (and workbooks parsed) while the engine's modules load.
    readahead.start(config)

    import pyarrow as pa

    from crosswalk.pipeline import build

    # A build allocates and frees large Arrow buffers stage after stage, some of them on
    # worker threads. jemalloc hands freed memory back to the operating system soonest: the
    # peak of a large build is lowest with it (the system allocator's per-thread arenas keep
    # what the workers freed). The command owns its process, so it may choose; the library
    # leaves the caller's pool alone.
    with contextlib.suppress(NotImplementedError):  # a pyarrow built without jemalloc
        pa.set_memory_pool(pa.jemalloc_memory_pool())

    with engine_runner(args) as runner:
        result = build(
            config,
            args.out,
            releases=args.releases,
            review_store=args.review_store,
            progress=None if not (args.quiet or args.json) else False,
            runner=runner,
        )
    if not args.quiet:
        print_warnings(result.counts.get("warnings", []))
    if args.json:
        print(json.dumps(result.counts, indent=2, sort_keys=True))
    elif not args.quiet:
        print_summary(result.counts, str(result.out), result.sources)
        store = (
            args.review_store
            or (config.base_dir / config.review.store if config.review.store else None)
            or DEFAULT_STORE
        )
        print_next(result.out, args.releases or "releases/", Path(store), result.sources)
    return 0


@contextlib.contextmanager
def engine_runner(args: argparse.Namespace) -> Iterator[Runner | None]:
    """The runner ``--engine`` chooses (None: the local one), and for Spark its session,
    stopped when the build ends."""
    spark_options = {
        "--spark-master": args.spark_master,
        "--spark-conf": args.spark_conf,
        "--spark-checkpoint-dir": args.spark_checkpoint_dir,
    }
    if args.engine != "spark":
        given = [name for name, value in spark_options.items() if value]
        if given:
            raise BuildError(
                f"{', '.join(given)} only apply with --engine spark. Fix: add --engine spark, "
                f"or drop {', '.join(given)}."
            )
        yield None
        return
    conf = {}
    for item in args.spark_conf:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BuildError(
                f"--spark-conf {item!r}: expected KEY=VALUE. Fix: e.g. --spark-conf "
                "spark.driver.memory=8g."
            )
        conf[key.strip()] = value.strip()
    from crosswalk.runners.spark import SparkRunner, spark_session

    spark = spark_session(args.spark_master, conf, args.spark_checkpoint_dir)
    try:
        yield SparkRunner(spark)
    finally:
        spark.stop()


def print_warnings(warnings: Sequence[str]) -> None:
    """The build's warnings about its input, on stderr (docs/sources.md lists them)."""
    for text in warnings:
        print(f"crosswalk build: warning: {text}", file=sys.stderr)


def print_next(out: Path, releases: str, store: Path, sources: Sequence[SourceInfo] = ()) -> None:
    """The files the build wrote, by absolute path, and the commands that use them."""
    from crosswalk.formats import BUILD_OUTPUTS

    out = out.resolve()
    db = out / "crosswalk.sqlite"
    store = store.resolve()
    department = sources[0].name if sources else "SOURCE"
    print(f"\nWrote {out}:")
    for name in BUILD_OUTPUTS:
        if (out / name).is_file():
            print(f"  {out / name}")
    print("\nNext:")
    for command, what in (
        (f"crosswalk serve --db {db} --review-store {store}", "the HTTP API and review pages"),
        (f"crosswalk release --build {out} --releases {releases}", "a dated, immutable release"),
        (
            f"crosswalk reviewers add --store {store} --db {db} --department {department} "
            "--username NAME",
            "an account for the review pages",
        ),
        (f"datasette {db}", "browse the tables (pip install datasette)"),
    ):
        print(f"  {command}\n      {what}")


def print_summary(counts: dict[str, Any], out: str, sources: Sequence[SourceInfo] = ()) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    caption = "; ".join(
        f"{s.name}: {s.title or s.path}, {s.publisher or 'publisher not stated'}"
        + (f", extract {s.extracted}" if s.extracted else "")
        for s in sources
    )
    t = Table(
        title=f"crosswalk build → {out}",
        caption=f"Data: {caption}" if caption else None,
        caption_justify="left",
        show_header=False,
        title_justify="left",
    )
    t.add_column("what")
    t.add_column("count", justify="right")
    for name, n in counts["records"].items():
        t.add_row(f"records: {name}", f"{n:,}")
    t.add_row("candidate pairs", f"{counts['candidate_pairs']:,}")
    t.add_row("entities", f"{counts['entities']:,}")
    for combo, n in sorted(counts["entities_by_sources"].items(), key=lambda kv: -kv[1]):
        t.add_row(f"  held by {combo}", f"{n:,}")
    for method, n in counts["links"].items():
        t.add_row(f"links: {method}", f"{n:,}")
    t.add_row("links cut (one record per source)", f"{counts['cut_links']:,}")
    conflicts = counts.get("conflicts") or {}
    t.add_row("conflicts", f"{sum(conflicts.values()):,}")
    for kind, n in conflicts.items():
        t.add_row(f"  {kind}", f"{n:,}")
    for scheme, agg in counts.get("identifier_agreement", {}).items():
        t.add_row(
            f"agreement with {scheme}",
            f"{agg['same_entity']:,}/{agg['pairs']:,} ({100 * agg['share']:.2f}%)",
        )
    if "open_disputes" in counts:
        t.add_row("open disputes", f"{counts['open_disputes']:,}")
    if counts.get("warnings"):
        t.add_row("warnings about the input (printed above)", f"{len(counts['warnings']):,}")
    console.print(t)
