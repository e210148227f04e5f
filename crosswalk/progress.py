"""Progress reporting for long steps: a rich progress display on a terminal, silence otherwise."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


def _stderr_is_terminal() -> bool:
    """Whether rich would draw on stderr; rich is loaded only when it might."""
    if not sys.stderr.isatty() and not any(
        os.environ.get(v) for v in ("FORCE_TERMINAL", "TTY_INTERACTIVE")
    ):
        return False
    from rich.console import Console

    return Console(stderr=True).is_terminal


class Steps:
    """Named steps of a job, shown as a progress bar when stderr is a terminal."""

    def __init__(self, total: int, enabled: bool | None = None) -> None:
        self.enabled = _stderr_is_terminal() if enabled is None else enabled
        self.timings: dict[str, float] = {}
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self.total = total

    def __enter__(self) -> Steps:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("starting", total=self.total)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    @contextmanager
    def step(self, description: str) -> Iterator[None]:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=description)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[description] = round(time.perf_counter() - start, 3)
            if self._progress is not None and self._task is not None:
                self._progress.advance(self._task)
