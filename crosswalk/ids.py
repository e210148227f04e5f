"""Canonical entity ids (first version: minting only; carry-over comes with releases).

Ids are opaque: the prefix ``F`` and a Crockford base32 counter, e.g. ``F00001``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32


def format_id(n: int, prefix: str = "F", width: int = 5) -> str:
    digits = []
    while n:
        n, r = divmod(n, 32)
        digits.append(_ALPHABET[r])
    return prefix + "".join(reversed(digits)).rjust(width, "0")


@dataclass
class IdState:
    """What id assignment carries from one release to the next."""

    members: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["entity_id", "source", "record_id"])
    )
    counter: int = 0


@dataclass
class IdAssignment:
    entity_of_cluster: dict[int, str]
    changes: pd.DataFrame
    state: IdState


def load_state(previous: Path | None) -> IdState | None:
    """The id state of the previous release (none yet)."""
    return None


def assign_ids(members: pd.DataFrame, previous: IdState | None) -> IdAssignment:
    """Give every cluster an entity id.

    ``members`` has the columns ``cluster`` (int), ``source`` and ``record_id``.
    """
    counter = previous.counter if previous else 0
    clusters = sorted(members["cluster"].unique().tolist())
    mapping: dict[int, str] = {}
    for c in clusters:
        counter += 1
        mapping[int(c)] = format_id(counter)
    ids = members["cluster"].map(mapping)
    state = IdState(
        members=pd.DataFrame(
            {"entity_id": ids, "source": members["source"], "record_id": members["record_id"]}
        ),
        counter=counter,
    )
    changes = pd.DataFrame(
        {"entity_id": list(mapping.values()), "change": "new", "details": ""}
    )
    return IdAssignment(mapping, changes, state)


def write_state(db: Any, state: IdState) -> None:
    """Persist what the next build needs (nothing yet beyond the records table)."""
