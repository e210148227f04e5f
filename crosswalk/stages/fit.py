"""Fit stage: the u probabilities from random pairs, and the model from counts of level
patterns (EM on the sample's primary comparisons, labelled pairs weighing in beside them).

The estimation itself is in :mod:`crosswalk.stages.model`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from crosswalk.stages.compare import Comparison, compare_positions
from crosswalk.stages.kernel.columns import Columns
from crosswalk.stages.kernel.model import Model
from crosswalk.stages.kernel.parallel import Distributed, Parallel
from crosswalk.stages.keys import Decisions, NamedPair, positions
from crosswalk.stages.model import (
    build_model,
    cross_pair_count,
    estimate_u,
    fit_em,
    level_frequencies,
    level_patterns,
    score,
    unfitted_m,
)

#: The ``trained_on`` of a model that had no candidate pairs to fit it on.
UNFITTED = "unfitted: no candidate pairs to fit the model on"


def u_probabilities(
    frame: pd.DataFrame,
    comparisons: list[Comparison],
    columns: Columns,
    *,
    sample_pairs: int,
    seed: int,
    within: frozenset[str],
    parallel: Parallel,
) -> dict[str, np.ndarray]:
    """Each comparison's level frequencies among ``sample_pairs`` random pairs (see
    :func:`~crosswalk.stages.model.estimate_u`), on the converted ``columns``."""
    return estimate_u(
        frame, comparisons, sample_pairs, seed, within, columns=columns, parallel=parallel
    )


def fit(
    em_levels: pd.DataFrame,
    u: dict[str, np.ndarray],
    frame: pd.DataFrame,
    comparisons: list[Comparison],
    columns: Columns,
    n_candidates: int,
    labels: Sequence[NamedPair],
    decisions: Decisions,
    *,
    em_max_iterations: int,
    em_tolerance: float,
    within: frozenset[str],
    parallel: Parallel,
) -> Model:
    """The model: m by EM on the sample's primary comparisons (the stand-ins' m weighted
    by its match probability), with the labelled pairs weighing in beside the candidates:
    ``labels`` (training pairs and must-link decisions) as matches, the cannot-link
    ``decisions`` as non-matches (see :func:`~crosswalk.stages.model.fit_em`)."""
    if len(em_levels) == 0:
        return unfitted_model(comparisons, u, len(frame))
    primary = [c for c in comparisons if c.stands_in_for is None]
    matches = list(dict.fromkeys(positions(frame, labels)))
    known = set(matches)
    non_matches = [p for p in dict.fromkeys(decisions.cannot) if p not in known]
    labelled_pairs = matches + non_matches
    labelled: pd.DataFrame | None = None
    is_match = np.array([True] * len(matches) + [False] * len(non_matches), dtype=bool)
    if labelled_pairs:
        la = np.array([a for a, _ in labelled_pairs], dtype="int64")
        lb = np.array([b for _, b in labelled_pairs], dtype="int64")
        labelled = compare_positions(columns, la, lb, comparisons, parallel)
    names = [c.name for c in primary]
    # Counted where the runner keeps the pairs (see ``Distributed``), or here.
    patterns = (
        parallel.level_patterns(em_levels, names)
        if isinstance(parallel, Distributed)
        else level_patterns(em_levels, names)
    )
    m, lam, iterations = fit_em(
        em_levels,
        primary,
        max_iterations=em_max_iterations,
        tolerance=em_tolerance,
        patterns=patterns,
        labelled=labelled,
        labelled_match=is_match,
    )
    n_cross = cross_pair_count(frame["source"], within)
    stand_ins = [c for c in comparisons if c.stands_in_for is not None]
    if stand_ins:
        # A stand-in is not part of the EM (it would count the place twice): its m is the
        # level distribution among the candidates, weighted by the fitted match probability
        # (and among the labelled pairs, by their label).
        # That probability depends on the primary levels only: score each distinct vector once.
        first = build_model(primary, m, u, lam, n_candidates, n_cross, iterations, "em")
        vectors = pd.DataFrame(patterns.levels, columns=[c.name for c in primary])
        posterior = score(vectors, first).match_probability[patterns.index]
        for c in stand_ins:
            lv = em_levels[c.name].to_numpy()
            weights = posterior
            if labelled is not None:
                lv = np.concatenate([lv, labelled[c.name].to_numpy()])
                weights = np.concatenate([posterior, is_match.astype("float64")])
            m[c.name] = level_frequencies(lv, len(c.levels), weights)
        del posterior
    del patterns
    trained_on = "em"
    learned_from: dict[str, int] = {}
    if labelled_pairs:
        must = len(set(decisions.must) & set(matches))
        learned_from = {
            "training_pairs": len(matches) - must,
            "must_link": must,
            "cannot_link": len(non_matches),
        }
        trained_on = f"em and {len(labelled_pairs)} labelled pairs"
    return build_model(
        comparisons, m, u, lam, n_candidates, n_cross, iterations, trained_on, learned_from
    )


def unfitted_model(
    comparisons: list[Comparison], u: dict[str, np.ndarray], n_records: int
) -> Model:
    """The model of a build with no candidate pairs (one source whose entities hold one
    record each, or blocking that pairs nothing): nothing to fit m on, so m keeps its
    starting values (:func:`~crosswalk.stages.model.unfitted_m`), u comes from random
    pairs as always, and the prior is 1 / the number of records: the chance that a query
    is one given record when it is at most one of them. Its ``trained_on`` says so
    (:data:`UNFITTED`), and the build warns."""
    model = build_model(comparisons, unfitted_m(comparisons), u, 0.0, 0, 1.0, 0, UNFITTED)
    model.prior = 1.0 / max(n_records, 2)
    return model
