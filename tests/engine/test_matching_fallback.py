"""A query the build's blocking pairs with nothing falls back to its name (real embedded build)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crosswalk.matching import FALLBACK_TOKEN_RECORDS, Matcher


@pytest.fixture(scope="module")
def matcher(built_crosswalk: Path) -> Matcher:
    return Matcher.from_sqlite(built_crosswalk / "crosswalk.sqlite")


def _names(matcher: Matcher, fewest: int, most: int) -> list[tuple[str, str]]:
    """(entity id, name) of published records whose core-name words are each carried by
    ``fewest`` to ``most`` published records, and whose normalized name at most 3 records
    bear; one record per distinct name."""
    counts = matcher.token_counts
    sharing = matcher.frame["n_name"].value_counts()
    out: dict[str, str] = {}
    for name, normalized, core, entity in zip(
        matcher.records["name"],
        matcher.frame["n_name"],
        matcher.frame["n_core"],
        matcher.records["entity_id"],
        strict=True,
    ):
        if not isinstance(name, str) or not isinstance(core, str) or sharing[normalized] > 3:
            continue
        carried = [int(counts.get(w, 0)) for w in core.split() if len(w) >= 2]
        if carried and all(fewest <= c <= most for c in carried):
            out.setdefault(name, str(entity))
    return [(e, n) for n, e in sorted(out.items())]


def _found(matcher: Matcher, names: list[tuple[str, str]]) -> None:
    answers = matcher.match([{"name": n} for _, n in names], limit=3)
    for (entity, name), candidates in zip(names, answers, strict=True):
        assert entity in [c.entity_id for c in candidates], name


def test_a_name_of_common_words_alone_finds_its_entity(matcher: Matcher) -> None:
    """No word rare enough for a rare-token key: the name's words find it."""
    names = _names(matcher, matcher.blocking.rare_token_max_records + 1, FALLBACK_TOKEN_RECORDS)
    assert len(names) >= 30
    _found(matcher, names[:80])


def test_a_name_of_very_common_words_alone_finds_its_entity(matcher: Matcher) -> None:
    """Every word carried by more records than the fallback looks at: the whole name finds it."""
    names = _names(matcher, FALLBACK_TOKEN_RECORDS + 1, 10**9)
    assert len(names) >= 3
    _found(matcher, names)
