"""Scoring stage: a Fellegi–Sunter model with explanations.

* ``u`` — the probability of each comparison level among pairs that are *not*
  the same facility — is estimated from random cross-source pairs, which are
  almost all non-matches.
* ``m`` — the probability of each level among true matches — is estimated
  by expectation–maximisation over the candidate pairs (a three-class
  mixture), with labelled pairs (review decisions, training pairs) weighing in
  beside them as pairs of known class.
* The prior is the share of all cross-source pairs that match, derived from
  the EM's match share among candidates (every true match is assumed to be a
  candidate).

A pair's match weight is ``prior + Σ log2(m/u)`` in bits, plus a
term-frequency adjustment ``log2(u_level / tf(value))`` where the agreed
value is common (a chain's name, a building many facilities share). The match
probability is ``1 / (1 + 2**-weight)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crosswalk.stages.compare import MISSING, Comparison, compare_positions
from crosswalk.stages.comparisons import available, spec, spec_name
from crosswalk.stages.kernel.codes import pack, run_starts
from crosswalk.stages.kernel.columns import Columns
from crosswalk.stages.kernel.model import EPS, FieldParams, Model
from crosswalk.stages.kernel.parallel import SERIAL, Parallel
from matchers._text import as_string
from matchers.compare import Texts

TF_MAX_BOOST = 2.0
TF_MAX_PENALTY = -10.0


# --------------------------------------------------------------------------- estimation


def level_frequencies(
    levels: np.ndarray, n_levels: int, weights: np.ndarray | None = None
) -> np.ndarray:
    """Share (weighted, if ``weights``) of each level, missing levels left out, lightly smoothed."""
    present = levels != MISSING
    counts = np.bincount(
        levels[present].astype("int64"),
        weights=None if weights is None else weights[present],
        minlength=n_levels,
    )[:n_levels].astype("float64")
    counts += 0.5  # a light Dirichlet prior keeps unseen levels finite
    return counts / counts.sum()


def _combos(
    sources: np.ndarray, within: frozenset[str]
) -> tuple[list[np.ndarray], list[tuple[int, int]], np.ndarray]:
    """Positions per source, the source combinations whose pairs are compared, and their pair counts."""
    codes, names = pd.factorize(pd.Series(sources))
    by_source = [np.flatnonzero(codes == i) for i in range(len(names))]
    combos = [
        (a, b)
        for a in range(len(names))
        for b in range(a, len(names))
        if a != b or str(names[a]) in within
    ]
    sizes = np.array(
        [
            len(by_source[a]) * (len(by_source[b]) - (a == b)) / (2 if a == b else 1)
            for a, b in combos
        ],
        dtype="float64",
    )
    return by_source, combos, sizes


def random_pairs(
    sources: np.ndarray, n: int, seed: int, within: frozenset[str] = frozenset()
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random pairs of positions of records that the build compares: records of different
    sources, and records of one source for the sources in ``within`` (deduplicated sources).

    Source combinations are drawn in proportion to the number of pairs they hold.
    """
    rng = np.random.default_rng(seed)
    by_source, combos, sizes = _combos(sources, within)
    if not combos or sizes.sum() <= 0:
        empty = np.empty(0, dtype="int64")
        return empty, empty
    picks = rng.choice(len(combos), size=n, p=sizes / sizes.sum())
    left = np.empty(n, dtype="int64")
    right = np.empty(n, dtype="int64")
    for i, (a, b) in enumerate(combos):
        sel = picks == i
        k = int(sel.sum())
        if a == b:  # two different records of one source
            pool = by_source[a]
            i1 = rng.integers(0, len(pool), size=k)
            i2 = (i1 + rng.integers(1, len(pool), size=k)) % len(pool)
            left[sel], right[sel] = pool[i1], pool[i2]
        else:
            left[sel] = rng.choice(by_source[a], size=k)
            right[sel] = rng.choice(by_source[b], size=k)
    return left, right


def cross_pair_count(sources: pd.Series, within: frozenset[str] = frozenset()) -> float:
    """Number of record pairs the build compares (see :func:`random_pairs`)."""
    return float(_combos(sources.to_numpy(), within)[2].sum())


def estimate_u(
    frame: pd.DataFrame,
    comparisons: list[Comparison],
    n_samples: int,
    seed: int,
    within: frozenset[str] = frozenset(),
    columns: Columns | None = None,
    parallel: Parallel = SERIAL,
) -> dict[str, np.ndarray]:
    """Level frequencies of each comparison among ``n_samples`` random pairs of ``frame``'s
    records (``columns``: the frame's converted :func:`record_columns`, when at hand),
    compared through the ``parallel`` handle."""
    if cross_pair_count(frame["source"], within) == 0:
        # A build that compares no pairs (one source of single-record entities) still
        # serves queries against its records: u then comes from pairs of distinct records
        # of any source, which are non-matches all the same.
        within = frozenset(str(s) for s in frame["source"].unique())
    n_samples = int(min(n_samples, max(cross_pair_count(frame["source"], within) // 2, 1)))
    left, right = random_pairs(frame["source"].to_numpy(), n_samples, seed, within)
    levels = compare_positions(
        frame if columns is None else columns, left, right, comparisons, parallel
    )
    return {
        c.name: level_frequencies(levels[c.name].to_numpy(), len(c.levels)) for c in comparisons
    }


@dataclass
class Patterns:
    """The distinct comparison vectors of some pairs, most frequent first (ties in order of
    first appearance, as ``DataFrame.value_counts`` orders them)."""

    levels: np.ndarray  # int64, one row per distinct vector, one column per comparison
    counts: np.ndarray  # int64, pairs per vector
    index: np.ndarray  # int64, per pair: the row of its vector


def level_patterns(levels: pd.DataFrame, names: list[str]) -> Patterns:
    """The distinct vectors of ``levels[names]``: each pair's levels packed into one integer
    (mixed radix), factorized in one hashed pass."""
    n = len(levels)
    columns = [levels[name].to_numpy().astype("int64") for name in names]
    # levels run from MISSING (-1) up
    code = pack(((col + 1, int(col.max()) + 2 if n else 1) for col in columns), n)
    del columns
    seen, _ = pd.factorize(code)  # codes in order of first appearance
    del code
    seen = seen.astype("int64")
    counts = np.bincount(seen).astype("int64")
    running = np.maximum.accumulate(seen) if n else seen
    first = run_starts(running)
    order = np.argsort(-counts, kind="stable")
    rank = np.empty(len(order), dtype="int64")
    rank[order] = np.arange(len(order), dtype="int64")
    rows = first[order]
    vectors = np.column_stack(
        [levels[name].to_numpy()[rows].astype("int64") for name in names]
    ).reshape(len(rows), len(names))
    return Patterns(vectors, counts[order], rank[seen])


def fit_em(
    levels: pd.DataFrame,
    comparisons: list[Comparison],
    *,
    max_iterations: int = 200,
    tolerance: float = 1e-6,
    patterns: Patterns | None = None,
    labelled: pd.DataFrame | None = None,
    labelled_match: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], float, int]:
    """Latent-class EM over the candidates' comparison vectors: returns ``m``, the match share, iterations.

    Candidates hold three kinds of pairs, not two: matches, *co-located*
    non-matches (different facilities sharing a building or a street — a
    hospice and a home health agency of one owner, a medical office block)
    and other non-matches. A two-class model lets the match class absorb the
    co-located pairs, and then over-rates weak name agreement. The model
    therefore has three classes, each with conditionally independent fields,
    started from the levels: strong name and place agreement (match), place
    agreement alone (co-located), and the rest. Only the match class's
    ``m`` is returned; ``u`` comes from random pairs.

    Works on the distinct comparison vectors with their counts (``patterns``,
    see :func:`level_patterns`, computed when not given), so its cost does
    not grow with the number of candidate pairs.

    ``labelled``: the levels of labelled pairs (review decisions, training
    pairs), and ``labelled_match`` whether each is a match. They weigh in
    beside the candidates, each as one more pair whose class is known: a match
    counts wholly in the match class, a non-match in the two others (shared as
    the EM shares it). So a few labels move ``m`` a little and many move it
    more, by their number against the candidates' expected matches. The match
    share is the candidates' own: labels are not a sample of them.
    """
    names = [c.name for c in comparisons]
    if patterns is None:
        patterns = level_patterns(levels, names)
    counts = patterns.counts.astype("float64")
    G = patterns.levels
    n_free = len(G)  # rows whose class the EM infers; the labelled rows follow them
    match_rows = np.empty(0, dtype="int64")
    other_rows = np.empty(0, dtype="int64")
    if labelled is not None and len(labelled):
        is_match = np.asarray(labelled_match, dtype=bool)
        G = np.vstack([G, labelled[names].to_numpy(dtype="int64").reshape(len(labelled), -1)])
        counts = np.concatenate([counts, np.ones(len(labelled))])
        match_rows = n_free + np.flatnonzero(is_match)
        other_rows = n_free + np.flatnonzero(~is_match)
    n_levels = [len(c.levels) for c in comparisons]
    # Initial responsibilities from the levels of the comparisons whose role is name and
    # place (level 0 is the strongest): strong agreement up to their ``strong_through``.
    strong_name = _strong(G, comparisons, "name")
    strong_place = _strong(G, comparisons, "place")
    resp = np.full((len(G), 3), 0.05)
    resp[strong_name & strong_place, 0] = 0.9
    resp[~strong_name & strong_place, 1] = 0.9
    resp[~strong_place, 2] = 0.9
    resp /= resp.sum(axis=1, keepdims=True)
    _clamp(resp, match_rows, other_rows)
    params: list[list[np.ndarray]] = [[np.ones(k) / k for k in n_levels] for _ in range(3)]
    shares = np.full(3, 1 / 3)
    iteration = 0
    previous = np.inf
    while iteration < max_iterations:
        iteration += 1
        # M-step.
        weighted = resp * counts[:, None]
        shares = np.clip(weighted[:n_free].sum(axis=0) / counts[:n_free].sum(), EPS, 1.0)
        for k in range(3):
            for j in range(len(names)):
                params[k][j] = level_frequencies(G[:, j], n_levels[j], weighted[:, k])
        # E-step.
        log_like = np.tile(np.log(shares), (len(G), 1))
        for k in range(3):
            for j in range(len(names)):
                g = G[:, j]
                ok = g != MISSING
                log_like[ok, k] += np.log(np.clip(params[k][j][g[ok]], EPS, 1))
        top = log_like.max(axis=1, keepdims=True)
        resp = np.exp(log_like - top)
        total = resp.sum(axis=1, keepdims=True)
        resp /= total
        _clamp(resp, match_rows, other_rows)
        ll = float(((np.log(total[:n_free, 0]) + top[:n_free, 0]) * counts[:n_free]).sum())
        if abs(ll - previous) < tolerance * max(abs(ll), 1.0):
            break
        previous = ll
    return {n: params[0][j] for j, n in enumerate(names)}, float(shares[0]), iteration


def _clamp(resp: np.ndarray, match_rows: np.ndarray, other_rows: np.ndarray) -> None:
    """Fix the responsibilities of labelled rows: a match wholly in the match class, a
    non-match in the two non-match classes (in the proportion the EM gives them)."""
    if len(match_rows):
        resp[match_rows] = (1.0, 0.0, 0.0)
    if len(other_rows):
        rest = resp[other_rows, 1:]
        total = rest.sum(axis=1, keepdims=True)
        rest = np.where(total > 0, rest / np.where(total > 0, total, 1.0), 0.5)
        resp[other_rows, 0] = 0.0
        resp[other_rows, 1:] = rest


def _strong(G: np.ndarray, comparisons: list[Comparison], role: str) -> np.ndarray:
    """Per vector, whether the first comparison of ``role`` agrees strongly (every vector
    does when there is none)."""
    for j, c in enumerate(comparisons):
        through = spec(c.spec).strong_through
        if c.role == role and through is not None:
            return (G[:, j] >= 0) & (G[:, j] <= through)
    return np.ones(len(G), dtype=bool)


def monotone(m: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Make the evidence of the levels non-increasing from the strongest level to the weakest.

    Levels are ordered by strength, so a weaker level must never weigh more
    than a stronger one. Adjacent levels that violate the order are pooled
    (their m and u masses shared in proportion), as in isotonic regression.
    """
    m = np.clip(m, EPS, 1.0)
    u = np.clip(u, EPS, 1.0)
    blocks: list[list[int]] = [[i] for i in range(len(m))]
    changed = True
    while changed:
        changed = False
        for k in range(len(blocks) - 1):
            a, b = blocks[k], blocks[k + 1]
            ratio_a = m[a].sum() / u[a].sum()
            ratio_b = m[b].sum() / u[b].sum()
            if ratio_b > ratio_a:
                blocks[k] = a + b
                del blocks[k + 1]
                changed = True
                break
    out_m, out_u = m.copy(), u.copy()
    for blk in blocks:
        ratio = m[blk].sum() / u[blk].sum()
        # Keep each level's u; set m so that every level of the block has the pooled ratio.
        out_m[blk] = ratio * u[blk]
    out_m = out_m / out_m.sum()
    return out_m, out_u


#: An unfitted model's m (a build with no candidate pairs to fit it on): this share on
#: each comparison's strongest level, the rest spread evenly over its other levels.
UNFITTED_M_STRONGEST = 0.9


def unfitted_m(comparisons: list[Comparison]) -> dict[str, np.ndarray]:
    """The m of a model with nothing to fit it on (see :data:`UNFITTED_M_STRONGEST`):
    agreement at a comparison's strongest level is most of a match's, and ``u`` (from
    random pairs) makes each level's weight."""
    out = {}
    for c in comparisons:
        k = len(c.levels)
        m = np.full(k, (1.0 - UNFITTED_M_STRONGEST) / max(k - 1, 1))
        m[0] = UNFITTED_M_STRONGEST if k > 1 else 1.0
        out[c.name] = m
    return out


def build_model(
    comparisons: list[Comparison],
    m: dict[str, np.ndarray],
    u: dict[str, np.ndarray],
    lambda_candidates: float,
    n_candidates: int,
    n_cross_pairs: float,
    iterations: int,
    trained_on: str,
    learned_from: dict[str, int] | None = None,
) -> Model:
    expected_matches = lambda_candidates * n_candidates
    prior = expected_matches / max(n_cross_pairs, 1.0)
    fields = []
    for c in comparisons:
        mm, uu = monotone(
            np.asarray(m[c.name], dtype="float64"), np.asarray(u[c.name], dtype="float64")
        )
        fields.append(
            FieldParams(
                c.name,
                list(c.levels),
                [float(x) for x in mm],
                [float(x) for x in uu],
                list(c.tf_levels),
                c.tf_column,
                c.stands_in_for,
                list(c.tf_level_columns),
            )
        )
    return Model(fields, prior, lambda_candidates, iterations, trained_on, learned_from or {})


# --------------------------------------------------------------------------- scoring


@dataclass
class Scores:
    """Per-pair weights: one column of bits per field, plus totals."""

    bits: pd.DataFrame  # one column per field, bits incl. term-frequency adjustment
    match_weight: np.ndarray
    match_probability: np.ndarray


def _value_counts(values: pd.Series) -> tuple[np.ndarray, pd.Index, np.ndarray]:
    """The one definition of what a term frequency counts: per record, the code of its
    value (``-1`` where missing or blank), the distinct values, and how many records
    carry each (one factorization)."""
    codes, uniques = pd.factorize(as_string(values))
    codes = np.asarray(codes, dtype="int64")
    blank = np.flatnonzero(np.asarray(uniques == "", dtype=bool))  # no Python str per value
    if len(blank):
        codes[codes == blank[0]] = -1
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    return codes, uniques, counts


def term_frequencies(frame: pd.DataFrame, column: str) -> pd.Series:
    """Share of records carrying each value of ``column`` (missing and blank values are
    not counted, but the share is of all records), most carried first."""
    _, uniques, counts = _value_counts(frame[column])
    carried = counts > 0
    shares = pd.Series(counts[carried] / max(len(frame), 1), index=uniques[carried], name=column)
    return shares.sort_values(ascending=False, kind="stable")


@dataclass(frozen=True)
class RecordTerms:
    """Per record, its value's row in a term-frequency table and that value's share.

    ``code`` is ``-1`` and ``share`` is nan where the record has no value or its value is
    not in the table (a query's value the published records never carry).
    """

    code: np.ndarray  # int64
    share: np.ndarray  # float64

    def take(self, positions: np.ndarray) -> RecordTerms:
        """The records at ``positions``."""
        return RecordTerms(self.code[positions], self.share[positions])


def record_frequencies(
    frame: pd.DataFrame, tf_tables: dict[str, pd.Series]
) -> dict[str, RecordTerms]:
    """Per record, its value in each term-frequency column: table row and share (see :class:`RecordTerms`)."""
    out = {}
    for col, table in tf_tables.items():
        if col in frame:
            # a value absent from the table (or missing) has position -1: the appended nan
            values = as_string(frame[col])
            # looked up with the index's own dtype, so that its hash table is reused
            target = (
                pd.Index(values)
                if table.index.dtype == values.dtype
                else pd.Index(values.to_numpy(dtype=object), dtype=object)
            )
            pos = np.asarray(table.index.get_indexer(target), dtype="int64")
            out[col] = RecordTerms(pos, np.append(table.to_numpy(dtype="float64"), np.nan)[pos])
    return out


def own_frequencies(
    frame: pd.DataFrame, columns: list[str], converted: Columns | None = None
) -> dict[str, RecordTerms]:
    """Per record, its value in each column counted among the records of ``frame`` itself:
    :func:`record_frequencies` of :func:`term_frequencies` of ``frame``, in one factorization
    per column (the codes number the distinct values in order of first appearance).
    ``converted``: the frame's columns converted for comparing (:func:`record_columns`),
    whose distinct values are then counted instead of factorizing the columns again."""
    out = {}
    n = max(len(frame), 1)
    for col in columns:
        if col not in frame:
            continue
        if converted is not None and col in converted:
            codes, counts = _texts_counts(converted.text(col))
        else:
            codes, _, counts = _value_counts(frame[col])
        out[col] = RecordTerms(codes, np.append(counts / n, np.nan)[codes])
    return out


def _texts_counts(texts: Texts) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_value_counts` of a converted column, from its codes: per record, its
    distinct value (``-1`` where missing or empty), and how many records carry each."""
    empty = np.asarray(texts.values == "", dtype=bool)  # missing values read as ""
    codes = texts.codes.astype(np.int64)
    codes[empty[codes]] = -1
    return codes, np.bincount(codes[codes >= 0], minlength=len(texts.values))


def pair_frequencies(
    left: dict[str, RecordTerms],
    right: dict[str, RecordTerms],
    n_records: int,
    *,
    left_counted: bool = True,
    right_counted: bool = True,
) -> dict[str, np.ndarray]:
    """Per pair, the share of the *other* records that carry the pair's value (aligned arrays).

    The term frequencies were counted over ``n_records`` records; ``left_counted`` and
    ``right_counted`` say whether the pair's own records are among them (both are in a
    build; a query scored against a published crosswalk is not). A value's count leaves
    out the pair's own records, is floored at one record, and the larger of the two
    records' values is taken.

    Agreement on a value is evidence of sameness to the extent that *other* facilities
    could have produced it by chance, as in frequency-based matching, where a value's u
    counts the agreeing pairs that are not matches. A name carried by the pair's two
    records alone is as rare as a value can be; counted with them, it would weigh like a
    name that two other facilities share.
    """
    return pair_terms(
        left, right, n_records, left_counted=left_counted, right_counted=right_counted
    )[0]


def pair_terms(
    left: dict[str, RecordTerms],
    right: dict[str, RecordTerms],
    n_records: int,
    *,
    left_counted: bool = True,
    right_counted: bool = True,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """:func:`pair_frequencies`, and per pair and term column whether the two records
    carry the same value and no other record carries it (an address that the pair's two
    records alone hold), counting each column's other records once."""
    frequencies, alone = {}, {}
    for col, lt in left.items():
        rt = right.get(col)
        if rt is None:
            continue
        others = _other_records(lt, rt, n_records, left_counted, right_counted)
        frequencies[col] = np.maximum(others, 1.0) / max(n_records, 1)
        alone[col] = (lt.code == rt.code) & (lt.code >= 0) & (others == 0)
    return frequencies, alone


def _other_records(
    lt: RecordTerms, rt: RecordTerms, n_records: int, left_counted: bool, right_counted: bool
) -> np.ndarray:
    """Per pair, how many records other than the pair's own carry its value (the larger of
    the two records' values; nan where neither has one)."""
    same = (lt.code == rt.code) & (lt.code >= 0)
    lcount = np.rint(lt.share * n_records) - int(left_counted) - (right_counted & same)
    rcount = np.rint(rt.share * n_records) - int(right_counted) - (left_counted & same)
    # nan (a missing or unknown value) stays nan unless the other record has one
    return np.fmax(lcount, rcount)


#: The comparison whose incompatible level (its last) forbids a name change at one address.
TYPE_COMPARISON = "facility_type"


def renaming_allowed(
    levels: pd.DataFrame, model: Model, alone: dict[str, np.ndarray] | None = None
) -> np.ndarray | None:
    """Per pair, whether a differing name is no evidence against it: a change of operator
    keeps the address and changes the name completely. That is so where the pair agrees
    on an address (a level of the place comparison that its term frequency adjusts), no
    other record holds that address (``alone``, see :func:`pair_terms`), and the facility
    types are the same or compatible (where they are compared). ``alone`` None: whether
    the levels leave it possible (pruning's ceiling). None where no pair can qualify."""
    place = next(
        (
            f
            for f in model.fields
            if f.tf_column and f.tf_levels and f.name in levels and role_of(f.name) == "place"
        ),
        None,
    )
    if place is None or place.tf_column is None:
        return None
    ok = np.isin(levels[place.name].to_numpy(), place.tf_levels)
    if alone is not None:
        held = alone.get(place.tf_column)
        if held is None:
            return None
        ok &= held
    if TYPE_COMPARISON in levels:
        kind = levels[TYPE_COMPARISON].to_numpy()
        ok &= (kind != MISSING) & (kind < len(model.field(TYPE_COMPARISON).levels) - 1)
    return ok


def moving_allowed(
    levels: pd.DataFrame,
    model: Model,
    alone: dict[str, np.ndarray] | None = None,
    name_reach: np.ndarray | None = None,
) -> np.ndarray | None:
    """Per pair, whether a differing place is no evidence against it: a facility that moves
    keeps its name. That is so where the pair agrees on the whole name (the name
    comparison's first level, the one its term frequency adjusts by the whole name), no
    other record carries that name (``alone``, see :func:`pair_terms`), and the facility
    types are the same or compatible (where they are compared): the symmetric case of
    :func:`renaming_allowed`. ``alone`` None: whether the levels leave it possible
    (pruning's ceiling; ``name_reach``: the best name level a pair whose name is not
    compared yet can reach). None where no pair can qualify."""
    name = next(
        (f for f in model.fields if f.tf_levels and 0 in f.tf_levels and role_of(f.name) == "name"),
        None,
    )
    if name is None or (name.name not in levels and name_reach is None):
        return None
    column = name.tf_column_of(0)
    if alone is not None and column is None:
        return None
    g = levels[name.name].to_numpy() if name.name in levels else np.asarray(name_reach)
    ok = g == 0
    if alone is not None:
        held = alone.get(column or "")
        if held is None:
            return None
        ok &= held
    if TYPE_COMPARISON in levels:
        kind = levels[TYPE_COMPARISON].to_numpy()
        ok &= (kind != MISSING) & (kind < len(model.field(TYPE_COMPARISON).levels) - 1)
    return ok


def places(f: FieldParams) -> bool:
    """Whether the model field compares the place: its role is ``place``, or it stands in
    for one that does (a differing place a facility that moved may carry)."""
    return role_of(f.name) == "place" or (
        f.stands_in_for is not None and role_of(f.stands_in_for) == "place"
    )


def role_of(field: str) -> str:
    """The role of a model field's comparison (``other`` for one the registry lacks)."""
    return spec(spec_name(field)).role if spec_name(field) in available() else "other"


def score(
    levels: pd.DataFrame,
    model: Model,
    *,
    frequencies: dict[str, np.ndarray] | None = None,
    alone: dict[str, np.ndarray] | None = None,
    field_bits: bool = True,
) -> Scores:
    """Weights and probabilities of pairs whose comparison ``levels`` are given; without
    ``field_bits``, the totals only (``bits`` has no column): what a pair weighs depends
    on its own levels and terms only, so a caller may score them all for their totals,
    then the few it keeps for their bits.

    Agreement on common values is down-weighted, and on rare values up-weighted, by
    the per-pair value ``frequencies`` (see :func:`pair_frequencies`). Where ``alone``
    (see :func:`pair_terms`) lets a renamed facility keep its address
    (:func:`renaming_allowed`), a differing name weighs nothing rather than against; where
    it lets a facility that moved keep its name (:func:`moving_allowed`), a differing
    place (address and town) weighs nothing rather than against.
    """
    bits = {}
    total = np.full(len(levels), model.prior_bits, dtype="float64")
    renamed = renaming_allowed(levels, model, alone) if alone else None
    moved = moving_allowed(levels, model, alone) if alone else None
    for f in model.fields:
        if f.name not in levels:
            continue
        g = levels[f.name].to_numpy(dtype="int64")
        table = f.bits()
        b = np.where(g == MISSING, 0.0, table[np.clip(g, 0, len(table) - 1)])
        if renamed is not None and role_of(f.name) == "name":
            b = np.where(renamed, np.maximum(b, 0.0), b)
        if moved is not None and places(f):
            b = np.where(moved, np.maximum(b, 0.0), b)
        if f.tf_column and f.tf_levels and frequencies is not None:
            u = np.clip(np.asarray(f.u, dtype="float64"), EPS, 1.0)
            ulev = u[np.clip(g, 0, len(u) - 1)]
            adj = np.zeros(len(g))
            for level in f.tf_levels:
                tf = frequencies.get(f.tf_column_of(level) or "")
                if tf is None:
                    continue
                at = (g == level) & ~np.isnan(tf)
                adj[at] = np.clip(np.log2(ulev[at] / tf[at]), TF_MAX_PENALTY, TF_MAX_BOOST)
            b = b + adj
        if f.stands_in_for is not None and f.stands_in_for in levels:
            # Only where the field it stands in for is missing.
            b = np.where(levels[f.stands_in_for].to_numpy() == MISSING, b, 0.0)
        if field_bits:
            bits[f.name] = b
        total += b
    probability = 1.0 / (1.0 + np.exp2(-np.clip(total, -1000, 1000)))
    # copy=False: one block per field, not a consolidated copy of every column
    return Scores(pd.DataFrame(bits, copy=False), total, probability)
