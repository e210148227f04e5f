"""Record keys: each record's position in the build (0..n-1, in (source, record_id) order:
see :func:`crosswalk.plans.link_inputs`), the records' (source, record_id) order, and pairs
named by (source, record_id) as positions.

The plan assigns the positions once per build; the stages exchange records by them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from crosswalk.stages.kernel.codes import key_order

#: A pair of records, each named by (source, record_id).
NamedPair = tuple[tuple[str, str], tuple[str, str]]


def positions(records: pd.DataFrame, pairs: Sequence[NamedPair]) -> list[tuple[int, int]]:
    """The positions in ``records`` of the ``pairs`` whose two records are both there, in
    order."""
    if not pairs:
        return []
    index = {
        (s, r): i
        for i, (s, r) in enumerate(zip(records["source"], records["record_id"], strict=True))
    }
    out = []
    for a, b in pairs:
        if a in index and b in index:
            out.append((index[a], index[b]))
    return out


def records_by_key(frame: pd.DataFrame) -> np.ndarray:
    """The records' positions in (source, record_id) order."""
    return key_order(frame, ["source", "record_id"])


class NamedDecisions(Protocol):
    """Review decisions as the review store gives them: pairs named by (source, record_id)."""

    @property
    def must_link(self) -> Sequence[NamedPair]: ...

    @property
    def cannot_link(self) -> Sequence[NamedPair]: ...


@dataclass(frozen=True)
class Decisions:
    """The review decisions' pairs, as record positions."""

    must: list[tuple[int, int]]
    cannot: list[tuple[int, int]]

    @property
    def constrained(self) -> list[tuple[int, int]]:
        return self.must + self.cannot


def decisions(frame: pd.DataFrame, constraints: NamedDecisions) -> Decisions:
    """The review decisions' must-link and cannot-link pairs, as positions in ``frame``."""
    return Decisions(
        positions(frame, constraints.must_link), positions(frame, constraints.cannot_link)
    )
