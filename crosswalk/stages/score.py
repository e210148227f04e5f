"""Score stage: the candidate pairs' match weights and probabilities under the fitted
model (with term-frequency adjustment), the pairs worth keeping, how each was matched, and
the identifier conflicts among them.

The scoring itself is in :mod:`crosswalk.stages.model`; the conflicts' rules in
:mod:`crosswalk.stages.conflicts`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crosswalk.stages.compare import Comparison
from crosswalk.stages.conflicts import (
    CONFLICT_HIGH,
    identifier_conflicts,
    identifier_evidence,
    names_and_addresses,
)
from crosswalk.stages.kernel.columns import Columns
from crosswalk.stages.kernel.model import Model
from crosswalk.stages.keys import Decisions
from crosswalk.stages.model import (
    RecordTerms,
    Scores,
    own_frequencies,
    pair_terms,
    score,
)
from crosswalk.stages.prune import always_kept


def term_counts(
    frame: pd.DataFrame, comparisons: list[Comparison], columns: Columns
) -> dict[str, RecordTerms]:
    """Each record's own term counts, on the converted columns' codes (not factorized again)."""
    wanted = dict.fromkeys(col for c in comparisons for col in c.tf_columns())
    return own_frequencies(frame, list(wanted), columns)


def score_pairs(
    pairs: pd.DataFrame,
    levels: pd.DataFrame,
    per_record: dict[str, RecordTerms],
    model: Model,
    frame: pd.DataFrame,
    comparisons: list[Comparison],
    decisions: Decisions,
    *,
    floor: float,
    reach: float | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """The scored pairs (the rows of the linkage's ``pairs`` before clustering gives them
    their status), the identifier conflicts, and the facility-unique identifier columns.

    The pairs at or above the probability ``floor`` are kept, and under it, down to
    ``reach`` (default: the floor), those that are the best candidate of one of their
    records (:func:`best_of_a_record`), for the review queue's unlinked records."""
    lpos, rpos = pairs["l"].to_numpy(), pairs["r"].to_numpy()
    # Column by column: one column's records at a time, their others counted once.
    frequencies: dict[str, np.ndarray] = {}
    alone: dict[str, np.ndarray] = {}
    for col, terms in per_record.items():
        share, single = pair_terms({col: terms.take(lpos)}, {col: terms.take(rpos)}, len(frame))
        frequencies |= share
        alone |= single

    # Every pair's total first; the fields' bits only for the pairs that are kept.
    totals = score(levels, model, frequencies=frequencies, alone=alone, field_bits=False)
    decisive, id_agree, id_disagree, maybe = identifier_evidence(
        frame, [c.name for c in comparisons], levels
    )
    fuzzy = names_and_addresses(
        _scored_at(maybe, levels, model, frequencies, alone).bits, model.prior_bits
    )
    # The pairs at or above the floor, those always kept, and those whose identifiers
    # differ where names and addresses agree (possible conflicts).
    keep = totals.match_probability >= floor
    if reach is not None and reach < floor:
        keep |= (totals.match_probability >= reach) & best_of_a_record(
            lpos, rpos, totals.match_weight, len(frame)
        )
    del totals
    keep |= always_kept(pairs, levels, len(frame), decisions.constrained)
    keep[maybe[id_disagree[maybe] & (fuzzy > CONFLICT_HIGH)]] = True
    kept = np.flatnonzero(keep)
    scores = _scored_at(kept, levels, model, frequencies, alone)
    del frequencies, alone
    if len(kept) == len(pairs):
        pairs = pairs.copy(deep=False)  # a new frame: the columns below are its own
    else:
        pairs = pairs.take(kept).reset_index(drop=True)
        levels = levels.take(kept).reset_index(drop=True)
        id_agree, id_disagree = id_agree[kept], id_disagree[kept]
        fuzzy = fuzzy[keep[maybe]]
        maybe = np.flatnonzero(id_agree | id_disagree)
    del keep, kept
    # Columns are added one by one (no concatenated copy of the pairs); the levels and
    # bits columns share the memory of the frames compare and score returned.
    for col in levels.columns:
        pairs[f"lvl:{col}"] = levels[col].to_numpy()
    for col in scores.bits.columns:
        pairs[f"bits:{col}"] = scores.bits[col].to_numpy()
    del levels
    pairs["match_weight"] = scores.match_weight
    pairs["match_probability"] = scores.match_probability
    del scores
    pairs["method"] = labels(id_agree.astype("int8"), ["fuzzy", "identifier"])
    conflicts = identifier_conflicts(
        pairs, frame, maybe, fuzzy, id_agree[maybe], id_disagree[maybe], decisive
    )
    return pairs, conflicts, decisive


def _scored_at(
    rows: np.ndarray,
    levels: pd.DataFrame,
    model: Model,
    frequencies: dict[str, np.ndarray],
    alone: dict[str, np.ndarray],
) -> Scores:
    """The pairs at ``rows`` scored with their fields' bits (a pair's score is its own:
    the same as among all of them)."""
    return score(
        levels.take(rows).reset_index(drop=True),
        model,
        frequencies={k: v[rows] for k, v in frequencies.items()},
        alone={k: v[rows] for k, v in alone.items()},
    )


def best_of_a_record(left: np.ndarray, right: np.ndarray, weight: np.ndarray, n: int) -> np.ndarray:
    """Whether each pair (records ``left[i]``, ``right[i]`` of ``n``) weighs as much as the
    best pair of either of its records (ties are all best)."""
    best = np.full(n, -np.inf)
    w = np.asarray(weight, dtype="float64")
    np.maximum.at(best, left, w)
    np.maximum.at(best, right, w)
    return (w >= best[left]) | (w >= best[right])


def labels(codes: np.ndarray, names: list[str]) -> pd.Series:
    """A categorical column of ``names`` from small integer codes: one byte per pair, where
    text would take about twenty (13M candidate pairs at 1M records per side)."""
    return pd.Series(pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(names)))
