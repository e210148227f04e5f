"""The ``parallel`` handle a runner gives a stage that fans out, and the serial one.

A stage never makes threads: it calls ``submit`` or ``map`` on the handle it is given
(:data:`SERIAL` when it is called outside a runner), and the runner decides how many
threads stand behind it (:data:`crosswalk.runners.local.FANOUT`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar

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
