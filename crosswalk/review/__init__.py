"""The review store and dispute queue (placeholder until built)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

RecordKey = tuple[str, str]  # (source, record_id)
Pair = tuple[RecordKey, RecordKey]


@dataclass
class Constraints:
    """Review decisions that bind a build."""

    must_link: list[Pair] = field(default_factory=list)
    cannot_link: list[Pair] = field(default_factory=list)


def load_constraints(store: Path | None) -> Constraints:
    """The decisions in force in the review store at ``store`` (none yet)."""
    return Constraints()


def queue_disputes(crosswalk_db: Path, store: Path) -> int:
    """Raise the disputes of a published build into the review store (none yet)."""
    return 0
