"""The engine's work as data: stages that turn named datasets into named datasets.

A :class:`Stage` names the datasets it reads and the ones it makes, and a module-level
function that makes them. The function is pure: it never changes its inputs (it returns new
objects, which may share their columns with the inputs). A :class:`Plan` is a set of stages
checked to fit together. *How* a plan runs (threads, batches, overlap, or a cluster) is a
runner's business (:mod:`crosswalk.runners`); the plan only says what depends on what.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from crosswalk.errors import PlanError

#: ``rowwise``: ``fn(batch, *other_inputs, **params)`` gives the rows of its first input's
#: ``batch`` (a slice of rows), so the stage may run per batch or partition and its output
#: is the batches' outputs put back together, whatever the batch size. ``global``:
#: ``fn(*inputs, **params)`` receives whole datasets.
Kind = Literal["rowwise", "global"]
KINDS: tuple[Kind, ...] = ("rowwise", "global")


@dataclass(frozen=True)
class Stage:
    """One step of a plan.

    ``fn`` is called with the ``inputs`` in order (for a ``rowwise`` stage, the first one a
    batch of its rows), then ``params`` as keywords, plus ``parallel=`` (a handle with
    ``submit`` and ``map``) when ``parallel`` is true. It returns the one output, or a tuple
    of the ``outputs`` in order (``None`` when there are none). ``params`` is plain data
    the plan computed from the configuration; ``fn`` never sees the configuration itself,
    so a stage can be shipped to another process. ``step`` names the progress step and
    ``timings_s`` key the stage counts under (consecutive stages may share one)."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    fn: Callable[..., Any]
    kind: Kind = "global"
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)
    step: str | None = None
    parallel: bool = False

    def values(self, out: Any) -> tuple[Any, ...]:
        """What ``fn`` returned, as one value per output."""
        if len(self.outputs) == 1:
            return (out,)
        if len(self.outputs) == 0:
            return ()
        if not isinstance(out, tuple) or len(out) != len(self.outputs):
            got = f"a tuple of {len(out)}" if isinstance(out, tuple) else type(out).__name__
            raise PlanError(
                f"stage {self.name!r} returned {got}, not a tuple of its "
                f"{len(self.outputs)} outputs ({', '.join(self.outputs)})."
            )
        return out

    def __post_init__(self) -> None:
        where = f"stage {self.name!r}"
        if self.kind not in KINDS:
            raise PlanError(f"{where}: kind {self.kind!r} is not one of {', '.join(KINDS)}.")
        qualname = getattr(self.fn, "__qualname__", "")
        if "<lambda>" in qualname or "<locals>" in qualname:
            raise PlanError(
                f"{where}: its function {qualname} is a lambda or nested function. Fix: use a "
                "module-level function and pass what it needs as params."
            )
        if self.kind == "rowwise" and (not self.inputs or len(self.outputs) != 1):
            raise PlanError(
                f"{where}: a rowwise stage reads at least one dataset (the one split into "
                f"batches) and makes exactly one; it reads {len(self.inputs)} and makes "
                f"{len(self.outputs)}. Fix: make it global."
            )
        if self.kind == "rowwise" and self.parallel:
            raise PlanError(
                f"{where}: a rowwise stage is split into batches by the runner; it is not "
                "given a parallel handle. Fix: drop parallel=True or make it global."
            )
        for names, what in ((self.inputs, "reads"), (self.outputs, "makes")):
            if len(set(names)) != len(names):
                raise PlanError(f"{where} {what} a dataset twice: {', '.join(names)}.")


@dataclass(frozen=True)
class Plan:
    """Stages, in declaration order, and the datasets a run supplies (``inputs``).

    Checked when made: stage names are unique, every dataset a stage reads is made by
    exactly one stage or is a plan input, and no stage depends on itself through others.
    Raises :class:`~crosswalk.errors.PlanError` naming what is wrong."""

    stages: tuple[Stage, ...]
    inputs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for s in self.stages:
            if s.name in seen:
                raise PlanError(f"two stages are named {s.name!r}. Fix: rename one.")
            seen.add(s.name)
        made: dict[str, str] = {}
        for s in self.stages:
            for d in s.outputs:
                if d in self.inputs:
                    raise PlanError(
                        f"stage {s.name!r} makes {d!r}, which is also a plan input. Fix: "
                        "rename the output or drop it from the plan's inputs."
                    )
                if d in made:
                    raise PlanError(
                        f"dataset {d!r} is made by two stages, {made[d]!r} and {s.name!r}. "
                        "Fix: give one of the outputs another name."
                    )
                made[d] = s.name
        for s in self.stages:
            for d in s.inputs:
                if d not in made and d not in self.inputs:
                    raise PlanError(
                        f"stage {s.name!r} reads {d!r}, which no stage makes and the plan "
                        f"does not take as an input. Fix: add a stage that outputs {d!r} "
                        "or list it in the plan's inputs."
                    )
        self.order()  # raises on a cycle

    def stage(self, name: str) -> Stage:
        """The stage called ``name``."""
        for s in self.stages:
            if s.name == name:
                return s
        raise PlanError(f"the plan has no stage {name!r}.")

    def producers(self) -> dict[str, str]:
        """Dataset → the stage that makes it (plan inputs are not listed)."""
        return {d: s.name for s in self.stages for d in s.outputs}

    def consumers(self) -> dict[str, list[str]]:
        """Dataset → the stages that read it, in declaration order (every dataset is listed,
        plan inputs first; one no stage reads has an empty list)."""
        out: dict[str, list[str]] = {d: [] for d in self.inputs}
        for s in self.stages:
            for d in s.outputs:
                out.setdefault(d, [])
        for s in self.stages:
            for d in s.inputs:
                out[d].append(s.name)
        return out

    def order(self, after: Mapping[str, Collection[str]] | None = None) -> list[Stage]:
        """The stages in an order where each comes after the stages making its inputs (and
        after the stages ``after[name]`` names, which a runner's gates add); among the
        stages that could come next, the first declared does. Raises
        :class:`~crosswalk.errors.PlanError` on a cycle."""
        made = self.producers()
        names = [s.name for s in self.stages]
        deps: dict[str, set[str]] = {
            s.name: {made[d] for d in s.inputs if d in made} for s in self.stages
        }
        for name, before in (after or {}).items():
            if name in deps:
                deps[name] |= {b for b in before if b in deps}
        done: list[str] = []
        placed: set[str] = set()
        while len(done) < len(names):
            nxt = next((n for n in names if n not in placed and deps[n] <= placed), None)
            if nxt is None:
                raise PlanError(
                    f"stages form a cycle: {_cycle(deps, placed)}. Fix: one of them must not "
                    "read what the others make."
                )
            done.append(nxt)
            placed.add(nxt)
        by_name = {s.name: s for s in self.stages}
        return [by_name[n] for n in done]

    def needed(self, want: Collection[str]) -> list[Stage]:
        """The stages that ``want`` (dataset names) depends on, in :meth:`order`."""
        made = self.producers()
        unknown = [d for d in want if d not in made and d not in self.inputs]
        if unknown:
            raise PlanError(
                f"no stage makes {', '.join(map(repr, unknown))}. Fix: ask for one of "
                f"{', '.join(sorted(made))}."
            )
        todo = [made[d] for d in want if d in made]
        keep: set[str] = set()
        while todo:
            name = todo.pop()
            if name not in keep:
                keep.add(name)
                todo += [made[d] for d in self.stage(name).inputs if d in made]
        return [s for s in self.order() if s.name in keep]

    def start(
        self, stages: Collection[Stage], want: Collection[str], inputs: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, int]]:
        """What a run of ``stages`` (for the datasets ``want``) starts from: the plan's
        inputs it reads, taken from ``inputs``, and how many of the stages read each
        dataset (a runner lets a dataset go when its count falls to 0, unless wanted)."""
        read = ({d for s in stages for d in s.inputs} | set(want)) & set(self.inputs)
        missing = sorted(d for d in read if d not in inputs)
        if missing:
            raise PlanError(f"the run lacks the plan's input(s) {', '.join(map(repr, missing))}.")
        readers: dict[str, int] = {}
        for s in stages:
            for d in s.inputs:
                readers[d] = readers.get(d, 0) + 1
        return {d: inputs[d] for d in read}, readers

    def describe(self, schedule: Mapping[str, tuple[str, str | None]] | None = None) -> str:
        """A plain-text table of the stages: kind, inputs, outputs and progress step, and,
        given a runner's ``schedule`` (stage → (lane, gate)), the lane each runs on and the
        stage it waits for (``main`` and none when not listed). In :meth:`order`, with the
        gates counted as dependencies: the order a runner starts the stages in."""
        head = ["stage", "kind", "inputs", "outputs", "step"]
        if schedule is not None:
            head += ["lane", "after"]
        rows = [head]
        gates = {n: [g] for n, (_, g) in (schedule or {}).items() if g is not None}
        for s in self.order(gates):
            row = [s.name, s.kind, ", ".join(s.inputs), ", ".join(s.outputs), s.step or "-"]
            if schedule is not None:
                lane, gate = schedule.get(s.name, ("main", None))
                row += [lane, gate or "-"]
            rows.append(row)
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines) + "\n"


def _cycle(deps: Mapping[str, set[str]], placed: set[str]) -> str:
    """One cycle among the stages not ``placed``, as ``a → b → a``."""
    left = {n: d - placed for n, d in deps.items() if n not in placed}
    path = [next(iter(left))]
    while path.count(path[-1]) < 2:
        path.append(sorted(left[path[-1]])[0])
    start = path.index(path[-1])
    return " → ".join(path[start:])
