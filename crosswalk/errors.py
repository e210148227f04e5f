"""One error hierarchy for everything a user can get wrong.

Every error raised to a user is a :class:`CrosswalkError`. Its message says
what is wrong, where (file, line or column) and what to do about it. The CLI
prints the message and exits with status 2; it never prints a traceback for
these errors.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class CrosswalkError(Exception):
    """Base class of every error crosswalk raises on purpose."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located as precisely as we can."""

    where: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}"
        if self.fix:
            text += f" Fix: {self.fix}"
        return text


class ConfigError(CrosswalkError):
    """A sources config is invalid. Carries every problem found, not just the first."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        lines = [f"{len(self.problems)} problem(s) in the configuration:"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class SourceError(CrosswalkError):
    """A source file cannot be read as its config declares."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        lines = [f"{len(self.problems)} problem(s) reading source data:"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class BuildError(CrosswalkError):
    """A build cannot go on (for example, an output directory cannot be written)."""


class ReleaseError(CrosswalkError):
    """A release cannot be published, read or compared."""


class ReviewError(CrosswalkError):
    """A review-store operation was refused."""


class NotFoundError(CrosswalkError):
    """A named record, entity or release does not exist."""


class PlanError(CrosswalkError):
    """A plan of stages is inconsistent (a dataset read but never made, made twice, a cycle),
    or a run asks it for what it cannot give."""
