"""Review decisions as constraints and labelled pairs for the next build."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from crosswalk.review.store import Pair, ReviewStore, canonical_pair


@dataclass
class Constraints:
    """Review decisions that bind a build.

    ``must_link`` pairs are always joined and ``cannot_link`` pairs never
    merged. Each pair is ordered canonically (see
    :func:`crosswalk.review.store.canonical_pair`) and listed once.
    """

    must_link: list[Pair] = field(default_factory=list)
    cannot_link: list[Pair] = field(default_factory=list)
    #: Pairs whose standing decision is 'unsure': they bind nothing.
    unsure: list[Pair] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.must_link or self.cannot_link)

    def labelled_pairs(self) -> list[tuple[Pair, bool]]:
        """The decisions as training labels: ``(pair, True)`` for the same facility,
        ``(pair, False)`` for different facilities; 'unsure' pairs are left out."""
        return [(p, True) for p in self.must_link] + [(p, False) for p in self.cannot_link]


def load_constraints(store: Path | None) -> Constraints:
    """The decisions in force in the review store at ``store``.

    For each pair, the latest decision that has not been undone stands:
    'same' makes a must-link, 'different' a cannot-link and 'unsure' neither.
    A missing store (or ``None``) means no decisions: the build is unconstrained.
    """
    if store is None or not Path(store).exists():
        return Constraints()
    out = Constraints()
    with ReviewStore(store, create=False) as db:
        for event in db.standing_decisions():
            pair = canonical_pair(*event.pair)
            if event.verdict == "same":
                out.must_link.append(pair)
            elif event.verdict == "different":
                out.cannot_link.append(pair)
            else:
                out.unsure.append(pair)
    return out
