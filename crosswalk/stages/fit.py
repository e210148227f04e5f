"""Fit stage: the u probabilities from random pairs, and the model from counts of level
patterns (EM on the sample's primary comparisons) or from labelled pairs.

The estimation itself is in :mod:`crosswalk.stages.model`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from crosswalk.stages.compare import Comparison, compare_positions
from crosswalk.stages.kernel.columns import Columns
from crosswalk.stages.kernel.model import Model
from crosswalk.stages.kernel.parallel import Parallel
from crosswalk.stages.keys import NamedPair, positions
from crosswalk.stages.model import (
    build_model,
    cross_pair_count,
    estimate_u,
    fit_em,
    level_frequencies,
    level_patterns,
    m_from_labels,
    score,
)

#: Labelled pairs needed to count m from them instead of fitting it by EM.
MIN_LABELLED_PAIRS = 20


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
    *,
    em_max_iterations: int,
    em_tolerance: float,
    within: frozenset[str],
    parallel: Parallel,
) -> Model:
    """The model: m by EM on the sample's primary comparisons (the stand-ins' m weighted
    by its match probability), or from the labelled pairs when there are
    :data:`MIN_LABELLED_PAIRS` or more."""
    primary = [c for c in comparisons if c.stands_in_for is None]
    patterns = level_patterns(em_levels, [c.name for c in primary])
    m, lam, iterations = fit_em(
        em_levels,
        primary,
        max_iterations=em_max_iterations,
        tolerance=em_tolerance,
        patterns=patterns,
    )
    n_cross = cross_pair_count(frame["source"], within)
    stand_ins = [c for c in comparisons if c.stands_in_for is not None]
    if stand_ins:
        # A stand-in is not part of the EM (it would count the place twice): its m is the
        # level distribution among the candidates, weighted by the fitted match probability.
        # That probability depends on the primary levels only: score each distinct vector once.
        first = build_model(primary, m, u, lam, n_candidates, n_cross, iterations, "em")
        vectors = pd.DataFrame(patterns.levels, columns=[c.name for c in primary])
        posterior = score(vectors, first).match_probability[patterns.index]
        for c in stand_ins:
            m[c.name] = level_frequencies(em_levels[c.name].to_numpy(), len(c.levels), posterior)
        del posterior
    del patterns
    trained_on = "em"
    label_pos = positions(frame, labels)
    if len(label_pos) >= MIN_LABELLED_PAIRS:
        la = np.array([a for a, _ in label_pos])
        lb = np.array([b for _, b in label_pos])
        levels = compare_positions(columns, la, lb, comparisons, parallel)
        m = m_from_labels(levels, comparisons)
        trained_on = f"labels ({len(label_pos)} pairs)"
    return build_model(comparisons, m, u, lam, n_candidates, n_cross, iterations, trained_on)
