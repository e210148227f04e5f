"""The ``parallel`` handle a runner gives a stage that fans out, and the serial one.

A stage never makes threads: it calls ``submit`` or ``map`` on the handle it is given
(:data:`SERIAL` when it is called outside a runner), and the runner decides how many
threads stand behind it (:data:`crosswalk.runners.local.FANOUT`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")
R = TypeVar("R")


class Parallel(Protocol):
    """What a stage that fans out is given to do so: the subset of an executor it may use.
    A serial handle runs each call at once."""

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        """Start ``fn(*args, **kwargs)``; its future."""
        ...

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``[fn(x) for x in items]``, the calls possibly at once; in the items' order."""
        ...


@runtime_checkable
class Distributed(Protocol):
    """A handle whose runner also distributes the work that scales with the pairs: the
    comparisons of pairs of records and the counts of their level patterns (the Spark
    runner's, :mod:`crosswalk.runners.spark`). The stages call these instead of doing the
    work here; the result is the same."""

    def compare_pairs(
        self, columns: Any, left: Any, right: Any, comparisons: Any
    ) -> Any:  # pd.DataFrame
        """What :func:`~crosswalk.stages.compare.compare` gives for the records of
        ``columns`` at positions ``left`` and ``right``, in the pairs' order."""
        ...

    def level_patterns(self, levels: Any, names: list[str]) -> Any:  # model.Patterns
        """What :func:`~crosswalk.stages.model.level_patterns` gives for ``levels``."""
        ...


class SerialParallel:
    """A :class:`Parallel` handle that runs each call at once, here."""

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        done: Future[R] = Future()
        try:
            done.set_result(fn(*args, **kwargs))
        except BaseException as e:  # delivered through the future, as a pool does
            done.set_exception(e)
        return done

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        return [fn(x) for x in items]


#: The handle of a stage called outside a runner: every call at once, in order.
SERIAL = SerialParallel()
