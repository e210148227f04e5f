"""Pruning: the candidate pairs that cannot reach the review floor are dropped before
their costly comparisons are made (see ``docs/engine.md``)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from crosswalk.stages.cluster import pair_codes
from crosswalk.stages.compare import MISSING, Comparison, compare_positions
from crosswalk.stages.comparisons import is_identifier
from crosswalk.stages.conflicts import CONFLICT_HIGH
from crosswalk.stages.kernel.codes import pack
from crosswalk.stages.kernel.columns import Columns
from crosswalk.stages.kernel.model import FieldParams, Model, probability_bits
from crosswalk.stages.kernel.parallel import Parallel
from crosswalk.stages.keys import Decisions
from crosswalk.stages.model import (
    TF_MAX_BOOST,
    moving_allowed,
    places,
    renaming_allowed,
    role_of,
    score,
)


def ceiling_bits(f: FieldParams) -> np.ndarray:
    """Per level of field ``f``, the most it can add to a pair's weight at that level or a
    weaker one: the bits, with the largest term-frequency boost where one applies."""
    bits = f.bits()
    if f.tf_column:
        bits[[k for k in f.tf_levels if k < len(bits)]] += TF_MAX_BOOST
    return np.maximum.accumulate(bits[::-1])[::-1]


#: :func:`weight_ceiling` works once per combination of levels when there are at most
#: this many possible combinations.
CEILING_TABLE_MAX = 1 << 20


def weight_ceiling(
    levels: pd.DataFrame,
    model: Model,
    pending: Mapping[str, np.ndarray | None],
    at_least: float | None = None,
) -> np.ndarray:
    """Per pair, the highest match weight it can reach once its ``pending`` fields are
    compared: the weight of the fields in ``levels``, each agreement level that a value's
    frequency adjusts taken with the largest boost (see :func:`score`), plus what each
    pending field can add (:func:`ceiling_bits`) from the strongest level the pair can
    reach in it (``-1``: missing, nothing), or from its strongest level where ``None``.

    A field that stands in for a pending one counts only where that one is missing, so its
    negative bits may vanish: they are left out of the ceiling.

    The ceiling depends on the pair's levels only: it is computed once per combination of
    levels that occurs, by the same operations in the same order, and looked up for every
    pair. With ``at_least``: per pair, whether its ceiling is at least that (a byte per
    pair looked up, not a float)."""
    # The pair's state: its level in every field the ceiling reads, -1 (missing) included.
    states: list[tuple[str, np.ndarray, int]] = []
    for f in model.fields:
        if f.name in levels:
            states.append((f.name, levels[f.name].to_numpy(), len(f.bits())))
        elif pending.get(f.name) is not None:
            states.append((f.name, np.asarray(pending[f.name]), len(f.bits())))
    size = math.prod(n + 1 for _, _, n in states)
    in_range = all(
        not len(g) or (int(g.min()) >= MISSING and int(g.max()) < n) for _, g, n in states
    )
    # (A field both compared and pending reads its level from ``levels`` in the score
    # and its reach from ``pending``: computed per pair, as is anything unusual.)
    both = any(reach is not None and name in levels for name, reach in pending.items())
    if not states or both or not in_range or size > CEILING_TABLE_MAX:
        ceiling = _weight_ceiling(levels, model, pending)
        return ceiling if at_least is None else ceiling >= at_least
    # Mixed radix, the first field's levels varying slowest (no renumbering: size is small).
    code = pack(((g.astype(np.int64) - MISSING, n + 1) for _, g, n in states), len(levels))
    occurs = np.zeros(size, dtype=bool)
    occurs[code] = True
    combos = np.flatnonzero(occurs)
    # The levels of each combination that occurs, the first field's varying slowest.
    digits: dict[str, np.ndarray] = {}
    rest = combos
    for name, _, n in reversed(states):
        rest, digits[name] = np.divmod(rest, n + 1)
    table = np.zeros(size, dtype=np.float64)
    table[combos] = _weight_ceiling(
        pd.DataFrame(
            {name: digits[name] + MISSING for name, _, _ in states if name in levels},
            index=range(len(combos)),
        ),
        model,
        {
            name: None if reach is None or name not in digits else digits[name] + MISSING
            for name, reach in pending.items()
        },
    )
    return table[code] if at_least is None else (table >= at_least)[code]


def _weight_ceiling(
    levels: pd.DataFrame, model: Model, pending: Mapping[str, np.ndarray | None]
) -> np.ndarray:
    scores = score(levels, model)
    total = scores.match_weight
    # A name change the address may allow (stages.model.renaming_allowed): its differing
    # name may weigh nothing.
    renamed = renaming_allowed(levels, model)
    # A move its whole name may allow (stages.model.moving_allowed): its differing place
    # may weigh nothing, where the name is exact or not compared yet and may reach exact.
    name_reach = next(
        (
            r if r is not None else np.zeros(len(levels), dtype=np.int64)
            for n, r in pending.items()
            if role_of(n) == "name"
        ),
        None,
    )
    moved = moving_allowed(levels, model, name_reach=name_reach)
    for f in model.fields:
        if f.name in pending:
            most = ceiling_bits(f)
            reach = pending[f.name]
            if reach is None:
                total += max(0.0, float(most[0]))
            else:
                total += np.where(reach == MISSING, 0.0, most[np.clip(reach, 0, len(most) - 1)])
        elif f.name in scores.bits:
            if f.tf_column and f.tf_levels:
                total += np.where(
                    np.isin(levels[f.name].to_numpy(), f.tf_levels), TF_MAX_BOOST, 0.0
                )
            if f.stands_in_for in pending:
                total -= np.minimum(scores.bits[f.name].to_numpy(), 0.0)
            if renamed is not None and role_of(f.name) == "name":
                total -= np.where(renamed, np.minimum(scores.bits[f.name].to_numpy(), 0.0), 0.0)
            if moved is not None and places(f):
                total -= np.where(moved, np.minimum(scores.bits[f.name].to_numpy(), 0.0), 0.0)
    return total


def always_kept(
    pairs: pd.DataFrame, levels: pd.DataFrame, n_records: int, constrained: list[tuple[int, int]]
) -> np.ndarray:
    """Per pair, whether it is kept whatever its weight: its records share an identifier
    (the pair may be an identifier conflict) or a review decision names it."""
    keep = np.zeros(len(pairs), dtype=bool)
    for name in levels.columns:
        if is_identifier(name):
            keep |= levels[name].to_numpy() == 0
    if constrained:
        lp, rp = pairs["l"].to_numpy().astype("int64"), pairs["r"].to_numpy().astype("int64")
        keep |= np.isin(lp * n_records + rp, pair_codes(constrained, n_records))
    return keep


def reachable(
    pairs: pd.DataFrame,
    levels: pd.DataFrame,
    reach: dict[str, np.ndarray],
    present: list[str],
    pending: list[str],
    model: Model,
    floor: float,
    n_records: int,
    constrained: list[tuple[int, int]],
    conflict_high: float,
) -> np.ndarray:
    """The positions of the candidate ``pairs`` that can reach the probability ``floor``,
    compared in the fields ``present`` (their ``levels``) and not yet in ``pending``.

    A pair's ceiling is the weight its compared fields give it (with the most favourable
    term frequencies) plus the most that the pending ones could add from the strongest
    level it can reach in them (``reach``; see :func:`weight_ceiling`). A pair whose
    ceiling is under the floor is dropped, unless it is :func:`always_kept` or its
    identifiers differ while its names and addresses could still be above
    ``conflict_high`` (an identifier conflict).
    """
    if floor <= 0.0:
        return np.arange(len(pairs))
    # a hair of slack: the ceiling and the pair's weight sum the bits in other orders
    keep = weight_ceiling(
        levels[present],
        model,
        {name: reach.get(name) for name in pending},
        at_least=probability_bits(floor) - 1e-9,
    )
    keep |= always_kept(pairs, levels, n_records, constrained)
    # A pair whose identifiers differ is a conflict if its names and addresses alone
    # are near certain: kept while they could be.
    ids = [name for name in present if is_identifier(name)]
    differ = np.zeros(len(pairs), dtype=bool)
    for name in ids:
        differ |= levels[name].to_numpy() == 1
    differ = np.flatnonzero(differ & ~keep)
    if len(differ):
        others = levels[[n for n in present if n not in ids]].take(differ)
        near = weight_ceiling(
            others,
            model,
            {name: None if name not in reach else reach[name][differ] for name in pending},
            at_least=probability_bits(conflict_high) - 1e-9,
        )
        keep[differ[near]] = True
    return np.flatnonzero(keep)


def prune(
    pairs: pd.DataFrame,
    levels: pd.DataFrame,
    reach: dict[str, np.ndarray],
    em_levels: pd.DataFrame,
    sample: np.ndarray | None,
    columns: Columns,
    comparisons: list[Comparison],
    model: Model,
    decisions: Decisions,
    *,
    floor: float,
    parallel: Parallel,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The candidate pairs that can reach the probability ``floor``, with every comparison's
    levels: the deferred comparisons missing from ``levels`` are made for them, or taken
    from ``em_levels`` for the pairs of the EM's ``sample``.

    The pairs whose ceiling is under the floor are dropped before they are compared (see
    :func:`~crosswalk.stages.prune.reachable`).
    """
    present = [c.name for c in comparisons if c.name in levels]
    todo = [c for c in comparisons if c.name not in levels]
    kept = reachable(
        pairs,
        levels,
        reach,
        present,
        [c.name for c in todo],
        model,
        floor,
        len(columns),
        decisions.constrained,
        CONFLICT_HIGH,
    )
    pairs = pairs.take(kept).reset_index(drop=True)
    out = {name: levels[name].to_numpy()[kept] for name in present}
    if todo:
        # The EM's sample was compared in full: its levels are reused.
        assert sample is not None
        sampled = np.zeros(len(levels), dtype=bool)
        sampled[sample] = True
        reuse = sampled[kept]
        del sampled
        fresh = compare_positions(
            columns, pairs["l"].to_numpy()[~reuse], pairs["r"].to_numpy()[~reuse], todo, parallel
        )
        at = np.searchsorted(sample, kept[reuse])
        for c in todo:
            lv = np.empty(len(kept), dtype="int8")
            lv[reuse] = em_levels[c.name].to_numpy()[at]
            lv[~reuse] = fresh[c.name].to_numpy()
            out[c.name] = lv
        del fresh
    return pairs, pd.DataFrame({c.name: out[c.name] for c in comparisons}, copy=False)
