"""Comparison stage: aligned left/right record batches in, comparison levels out.

Each :class:`Comparison` turns a field (or a group of correlated fields) of
two aligned batches into an integer level per pair: ``0`` is the strongest
agreement, the last level is disagreement, and ``-1`` means a value is
missing on either side (it then contributes no evidence). Levels are named,
so explanations read as ``name: core_exact`` rather than ``name: 1``.

The comparisons themselves are declared in :mod:`crosswalk.stages.comparisons`, one
module each; a config chooses and tunes them (``[[comparison]]`` tables).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crosswalk.stages.comparisons import (
    MISSING,
    Comparison,
    Settings,
    default_settings,
    instance,
    settings_from,
    spec,
    spec_name,
)
from crosswalk.stages.kernel.columns import Columns
from crosswalk.stages.kernel.parallel import SERIAL, Distributed, Parallel
from crosswalk.vocabulary import NID_PREFIX

__all__ = [
    "MISSING",
    "Comparison",
    "Strongest",
    "compare",
    "compare_candidates",
    "compare_positions",
    "compared_columns",
    "comparison_by_name",
    "comparisons_for",
    "record_columns",
]


@dataclass(frozen=True)
class Strongest:
    """Stands for a costly comparison in :func:`compare`: the strongest level each pair can
    reach (its column holds that level), found by the comparison's cheap upper bound
    (``Spec.bound``). Without one every level is within reach (``0`` for every pair).
    """

    of: Comparison

    @property
    def name(self) -> str:
        return self.of.name

    def compute(self, left: Columns, right: Columns) -> np.ndarray:
        fn = self.of.bound()
        if fn is not None:
            return fn(self.of, left, right).astype("int8")
        return np.zeros(len(left), dtype="int8")


def comparisons_for(
    frame: pd.DataFrame, settings: Sequence[Settings] | None = None
) -> list[Comparison]:
    """The comparisons ``settings`` choose (default: :data:`~crosswalk.stages.comparisons.DEFAULTS`)
    that the columns present in ``frame`` support, in their order: an identifier comparison
    per scheme column with a value, sorted; a comparison that ``needs`` a column only when
    some record has a value in it."""
    out = []
    for s in default_settings() if settings is None else settings:
        sp = spec(s.name)
        if sp.role == "identifier":
            for col in sorted(c for c in frame.columns if c.startswith(NID_PREFIX)):
                if frame[col].notna().any():
                    out.append(instance(s, col))
        elif sp.needs is None or (sp.needs in frame and frame[sp.needs].notna().any()):
            out.append(instance(s))
    return out


def compared_columns(frame: pd.DataFrame, settings: Sequence[Settings] | None = None) -> list[str]:
    """The columns of ``frame`` that the comparisons ``settings`` choose read (default: the
    default comparisons'), in the frame's order: select them before taking rows by position."""
    chosen = [spec(s.name) for s in (default_settings() if settings is None else settings)]
    wanted = {c for sp in chosen for c in sp.columns}
    ids = any(sp.role == "identifier" for sp in chosen)
    return [c for c in frame.columns if c in wanted or (ids and c.startswith(NID_PREFIX))]


#: Pairs compared per batch by :func:`compare_positions`: memory stays bounded whatever
#: the number of pairs.
COMPARE_BATCH = 100_000


def record_columns(frame: pd.DataFrame, settings: Sequence[Settings] | None = None) -> Columns:
    """The compared columns of ``frame`` (see :func:`compared_columns`), converted once, ready
    for :func:`compare_positions`."""
    columns = compared_columns(frame, settings)
    return Columns(frame[columns]).prepared(columns)


def compare_positions(
    frame: pd.DataFrame | Columns,
    left: np.ndarray,
    right: np.ndarray,
    comparisons: Sequence[Comparison | Strongest],
    parallel: Parallel = SERIAL,
) -> pd.DataFrame:
    """Levels of the pairs of records of ``frame`` at positions ``left``/``right``, in
    batches of :data:`COMPARE_BATCH` pairs, run through the ``parallel`` handle (the
    runner gives the stages that compare one thread per core, up to four: much of a
    batch's time is spent in rapidfuzz and numpy outside the GIL).

    Each compared column is converted once for the whole frame (pass the
    :func:`record_columns` of the frame to share that conversion between calls); a batch
    takes its rows.
    """
    if isinstance(frame, Columns):
        records = frame
    else:
        read = {col for c in comparisons for col in _of(c).columns}
        columns = [c for c in frame.columns if c in read]
        records = Columns(frame[columns]).prepared(columns)
    if isinstance(parallel, Distributed):  # the runner compares the pairs elsewhere
        return parallel.compare_pairs(records, left, right, comparisons)
    starts = range(0, len(left), COMPARE_BATCH)
    if len(starts) <= 1:
        return compare(records.take(left), records.take(right), comparisons)

    def batch(start: int) -> pd.DataFrame:
        end = start + COMPARE_BATCH
        return compare(records.take(left[start:end]), records.take(right[start:end]), comparisons)

    return pd.concat(parallel.map(batch, starts), ignore_index=True)


def _of(c: Comparison | Strongest) -> Comparison:
    return c.of if isinstance(c, Strongest) else c


def compare(
    left: pd.DataFrame | Columns,
    right: pd.DataFrame | Columns,
    comparisons: Sequence[Comparison | Strongest],
) -> pd.DataFrame:
    """Levels of every comparison for aligned ``left``/``right`` batches (same length).

    Each side is a batch or its :class:`Columns`; every column is converted once for all
    the comparisons that read it.
    """
    lc, rc = Columns.of(left), Columns.of(right)
    return pd.DataFrame({c.name: c.compute(lc, rc) for c in comparisons})


def comparison_by_name(name: str, recorded: Sequence[Settings] | None = None) -> Comparison:
    """The comparison a fitted model's field refers to, as the ``recorded`` settings (those
    of the build, see :func:`~crosswalk.stages.comparisons.settings_from`) tuned it."""
    wanted = spec_name(name)
    for s in settings_from(None) if recorded is None else recorded:
        if s.name == wanted:
            return instance(s, name)
    return instance(Settings(spec(wanted).name), name)


# --------------------------------------------------------------------------- the plan's stages


def columns_of(frame: pd.DataFrame, *, settings: Sequence[Settings]) -> Columns:
    """The columns the chosen comparisons read, not converted yet."""
    return Columns(frame[compared_columns(frame, settings)])


def convert(columns: Columns) -> Columns:
    """The compared columns, converted once for every comparison (and read by blocking)."""
    return columns.prepared(columns.names())


def em_sample(n: int, size: int, seed: int) -> np.ndarray | None:
    """Sorted positions of a uniform random sample of ``size`` of ``n`` candidate pairs to
    fit the EM on, or ``None`` to fit it on every pair (``size`` 0, or at least ``n``).

    The EM works on the distinct comparison vectors with their counts: a uniform sample
    holds the same mixture, so the fit, the match share among the candidates included,
    is that of all the pairs up to sampling error (a million pairs hold tens of
    thousands of matches)."""
    if size <= 0 or n <= size:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def compare_candidates(
    columns: Columns,
    pairs: pd.DataFrame,
    comparisons: list[Comparison],
    *,
    em_sample_pairs: int,
    seed: int,
    parallel: Parallel,
) -> tuple[pd.DataFrame, dict[str, np.ndarray], pd.DataFrame, np.ndarray | None]:
    """The candidates' levels in every comparison but the deferred ones (``levels``), the
    strongest level each pair can reach in those (``reach``), and the levels of the
    EM's sample (``em_levels``, every comparison; all pairs when ``sample`` is None)."""
    lpos, rpos = pairs["l"].to_numpy(), pairs["r"].to_numpy()
    # The EM is fitted on a sample of the candidates when there are many; the costly
    # comparisons of the other pairs wait for the fitted model (see stages.prune.prune).
    sample = em_sample(len(pairs), em_sample_pairs, seed)
    pending = [c for c in comparisons if c.deferred] if sample is not None else []
    # A costly comparison waits, but its cheap part gives the strongest level each pair
    # can reach in it.
    levels = compare_positions(
        columns,
        lpos,
        rpos,
        [c for c in comparisons if c not in pending] + [Strongest(c) for c in pending],
        parallel,
    )
    reach = {c.name: levels.pop(c.name).to_numpy() for c in pending}
    if sample is None:
        return levels, reach, levels, sample
    em_levels = levels.take(sample).reset_index(drop=True)
    sampled = compare_positions(columns, lpos[sample], rpos[sample], pending, parallel)
    for c in pending:
        em_levels[c.name] = sampled[c.name].to_numpy()
    return levels, reach, em_levels[[c.name for c in comparisons]], sample
