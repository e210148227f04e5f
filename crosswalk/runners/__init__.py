"""Runners carry out a :class:`~crosswalk.plan.Plan`.

A runner decides how the plan's stages run: on which threads (or machines), in what
batches, with what overlap, and when a dataset is let go. It never changes what a stage
computes: every runner gives the same datasets for the same plan and inputs.
:class:`crosswalk.runners.local.LocalRunner` runs a plan in this process; a Spark runner
implements the same :class:`Runner` protocol, relying on the plan's guarantees:

- a ``rowwise`` stage's function may be applied to any split of its first input into
  batches (partitions); the output is the same whatever the split, so it can be a
  ``mapPartitions``;
- a ``global`` stage receives whole datasets (a runner collects or broadcasts them);
- stage functions are module-level and their params plain data, so they can be pickled;
- functions never change their inputs, so a dataset can be shared between stages, cached
  or recomputed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from crosswalk.plan import Plan
from crosswalk.progress import Steps
from crosswalk.stages.kernel.parallel import Parallel

__all__ = ["Parallel", "Runner", "WritesParquet"]


class Runner(Protocol):
    """Something that runs plans."""

    def run(
        self,
        plan: Plan,
        inputs: Mapping[str, Any],
        want: Collection[str],
        *,
        steps: Steps | None = None,
    ) -> dict[str, Any]:
        """Run the stages of ``plan`` that the datasets named in ``want`` depend on, from
        the plan's ``inputs`` (dataset name → value), and return ``want``'s datasets by
        name. ``steps`` counts and times the stages that name a ``step``. The first error a
        stage raises is raised, once no stage is running any more."""
        ...


@runtime_checkable
class WritesParquet(Protocol):
    """A runner that also publishes a build's tables as Parquet, written where it ran them
    (the Spark runner: ``parquet/`` of the build's output, see docs/spark.md)."""

    def write_parquet(self, directory: Path, tables: Mapping[str, Any]) -> None:
        """Write each of ``tables`` (name → DataFrame) under ``directory``."""
        ...
