"""Conflicts: the pairs whose identifiers and whose names and addresses disagree, and the
links the clustering cut or a review decision contradicts (the published ``conflicts``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from crosswalk.stages.comparisons import is_identifier, place_comparison
from crosswalk.vocabulary import CONFLICT_KINDS, NID_PREFIX, REVIEW_DEFAULTS

#: A pair sharing an identifier is an *identifier conflict* when its name and
#: address evidence alone gives it less than this probability ...
CONFLICT_LOW = 0.001
#: ... and a pair whose identifiers differ is one when name and address alone give more than this.
CONFLICT_HIGH = 0.999

#: A scheme identifies a facility when at least this share of its values is carried by a
#: single record within each source; otherwise it identifies a group (a license covering
#: several sites) and agreement on it is evidence of affiliation, not of sameness.
UNIQUE_SHARE = 0.98

#: The default margin, in bits, under which the engine's decision on a pair is not clear
#: (``[review] clear_margin_bits``): a decision whose evidence beats the alternative by this
#: much or more has at most 1 / (1 + 2**MARGIN_BITS) (10%) chance of being wrong under the
#: model, and is not queued.
MARGIN_BITS = REVIEW_DEFAULTS.clear_margin_bits


def probability_wrong(margin: np.ndarray) -> np.ndarray:
    """The chance that a decision made with ``margin`` bits to spare is wrong: the odds
    ``2**-margin`` read as a probability (0.5 for a tie, 0.1 at 3.17 bits)."""
    return 1.0 / (1.0 + np.exp2(np.clip(margin, -1000, 1000)))


def _rivals(group: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """For each row (a record's candidate link, in ``group``: the record and the other
    end's source), the weight of the best *other* link of its group (-inf for none)."""
    out = np.full(len(weight), -np.inf)
    if not len(weight):
        return out
    order = np.lexsort((-weight, group))
    g = group[order]
    w = weight[order]
    starts = np.flatnonzero(np.concatenate([[True], g[1:] != g[:-1]]))
    sizes = np.diff(np.append(starts, len(g)))
    of = np.repeat(np.arange(len(starts)), sizes)
    top1 = w[starts][of]
    second = np.where(sizes > 1, w[np.minimum(starts + 1, len(w) - 1)], -np.inf)[of]
    first = np.arange(len(g)) == starts[of]
    out[order] = np.where(first, second, top1)
    return out


def decision_margins(
    left: np.ndarray,
    right: np.ndarray,
    source_left: np.ndarray,
    source_right: np.ndarray,
    weight: np.ndarray,
    status: np.ndarray,
    threshold_bits: float,
    limited: frozenset[str] | set[str],
) -> tuple[np.ndarray, np.ndarray]:
    """How clearly the engine decided each candidate link: ``(margin, rival)`` in bits.

    ``left``/``right`` are integer record codes, ``source_*`` the records' sources,
    ``status`` the links' statuses (:data:`crosswalk.vocabulary.LINK_STATUSES`) and
    ``limited`` the sources that allow one record per entity. A link's *rival* is the
    strongest other link of either record to a record of the other end's source,
    when that source is limited (the one-record-per-source rule makes the two compete);
    a must-link rival is infinitely strong and cannot-links compete with nothing.

    The *margin* is what the decision has to spare:

    * linked: ``min(w - threshold, w - rival)``: above the threshold and above its rival;
    * cut: ``rival - w``: how much the link kept beats it (0 when cut without a direct
      rival, by the rule alone);
    * below the threshold: ``max(threshold - w, rival - w)``: under the threshold, or
      beaten by a rival, whichever is the clearer;
    * decided by a review decision: infinite.
    """
    n = len(weight)
    w = np.asarray(weight, dtype="float64")
    status = np.asarray(status, dtype=object)
    must = status == "must_link"
    competes = status != "cannot_link"
    strength = np.where(must, np.inf, w)
    codes, _ = pd.factorize(np.concatenate([source_left, source_right]).astype(str))
    src_l, src_r = codes[:n], codes[n:]
    n_src = int(codes.max()) + 1 if len(codes) else 1
    is_limited = np.isin(np.concatenate([source_left, source_right]).astype(str), list(limited))
    lim_l, lim_r = is_limited[:n], is_limited[n:]
    rows = np.arange(n)
    # Each link once from each end: (record, the other end's source), when that source is limited.
    side_l = competes & lim_r
    side_r = competes & lim_l
    record = np.concatenate([np.asarray(left)[side_l], np.asarray(right)[side_r]]).astype("int64")
    other = np.concatenate([src_r[side_l], src_l[side_r]]).astype("int64")
    which = np.concatenate([rows[side_l], rows[side_r]])
    rival_rows = _rivals(record * n_src + other, strength[which])
    rival = np.full(n, -np.inf)
    np.maximum.at(rival, which, rival_rows)
    t = float(threshold_bits)
    margin = np.full(n, np.inf)
    linked = status == "linked"
    cut = status == "cut"
    below = status == "below_threshold"
    margin[linked] = np.minimum(w[linked] - t, w[linked] - rival[linked])
    margin[cut] = np.where(rival[cut] > -np.inf, rival[cut] - w[cut], 0.0)
    margin[below] = np.maximum(t - w[below], rival[below] - w[below])
    return margin, rival


def facility_unique(frame: pd.DataFrame, column: str) -> bool:
    """Whether the identifier in ``column`` names one record per source (measured, not assumed)."""
    sub = frame.loc[frame[column].notna(), ["source", column]]
    if sub.empty:
        return False
    per_value = sub.groupby(["source", column], observed=True).size()
    unique = (per_value == 1).groupby(level="source").mean()
    return bool((unique >= UNIQUE_SHARE).all())


def identifier_evidence(
    frame: pd.DataFrame, names: list[str], levels: pd.DataFrame
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """What the identifiers say of the scored pairs (their ``levels``; ``names``: the
    comparisons, in order): the decisive identifier columns (those
    :func:`facility_unique`), per pair whether a decisive identifier agrees and whether
    one differs (and none agrees), and the rows of the pairs with either (those that may
    be identifier conflicts: see :func:`names_and_addresses`)."""
    id_cols = [name for name in names if is_identifier(name)]
    decisive = [c for c in id_cols if facility_unique(frame, c)]
    id_agree = np.zeros(len(levels), dtype=bool)
    id_disagree = np.zeros(len(levels), dtype=bool)
    for col in decisive:
        lv = levels[col].to_numpy()
        id_agree |= lv == 0
        id_disagree |= lv == 1
    id_disagree &= ~id_agree
    return decisive, id_agree, id_disagree, np.flatnonzero(id_agree | id_disagree)


def names_and_addresses(bits: pd.DataFrame, prior_bits: float) -> np.ndarray:
    """The probability that pairs' names and addresses alone give them: their field
    ``bits`` but the identifiers' summed in field order, then the prior."""
    non_id = np.zeros(len(bits), dtype="float64")
    for col in bits.columns:
        if not is_identifier(str(col)):
            non_id += bits[col].to_numpy()
    non_id += prior_bits
    return 1.0 / (1.0 + np.exp2(-np.clip(non_id, -1000, 1000)))


def identifier_conflicts(
    pairs: pd.DataFrame,
    frame: pd.DataFrame,
    at: np.ndarray,
    fuzzy: np.ndarray,
    agree: np.ndarray,
    disagree: np.ndarray,
    id_cols: list[str],
) -> pd.DataFrame:
    """Conflicts among the pairs at rows ``at``, whose name-and-address probability is
    ``fuzzy`` and whose decisive identifiers ``agree`` or ``disagree`` (aligned with ``at``)."""
    # The records are at the same place at the place comparison's strongest levels.
    found = place_comparison(str(c)[4:] for c in pairs.columns if str(c).startswith("lvl:"))
    place = pairs[f"lvl:{found[0]}"].to_numpy()[at] if found else np.full(len(at), -1)
    same = found[1] if found else -1
    differs_badly = agree & (fuzzy < CONFLICT_LOW) & ~((place >= 0) & (place <= same))
    same_by_fuzzy = disagree & (fuzzy > CONFLICT_HIGH)
    rows = []
    lpos = pairs["l"].to_numpy()[at]
    rpos = pairs["r"].to_numpy()[at]
    linked_p = pairs["match_probability"].to_numpy()[at]
    id_levels = {c: pairs[f"lvl:{c}"].to_numpy()[at] for c in id_cols}
    id_values = {c: frame[c].to_numpy(dtype=object) for c in id_cols}
    for kind, mask in (
        ("identifier_disagrees", differs_badly),
        ("identifier_differs", same_by_fuzzy),
    ):
        for i in np.flatnonzero(mask).tolist():
            lv = {c: int(id_levels[c][i]) for c in id_cols}
            schemes = [
                c[len(NID_PREFIX) :]
                for c, v in lv.items()
                if v == (0 if kind == "identifier_disagrees" else 1)
            ]
            a, b = int(lpos[i]), int(rpos[i])
            rows.append(
                {
                    "kind": kind,
                    "l": a,
                    "r": b,
                    "scheme": ",".join(schemes),
                    "match_probability": float(fuzzy[i]),
                    "details": {
                        "schemes": schemes,
                        "values_l": {s: _str(id_values[NID_PREFIX + s][a]) for s in schemes},
                        "values_r": {s: _str(id_values[NID_PREFIX + s][b]) for s in schemes},
                        "name_address_probability": float(fuzzy[i]),
                        "linked_probability": float(linked_p[i]),
                        "reason": CONFLICT_KINDS[kind],
                    },
                }
            )
    return pd.DataFrame(rows, columns=["kind", "l", "r", "scheme", "match_probability", "details"])


def split_conflicts(
    splits: list[dict[str, Any]],
    decision_conflicts: list[tuple[int, int]],
    pairs: pd.DataFrame,
    frame: pd.DataFrame,
) -> pd.DataFrame:
    rows = []
    lpos = pairs["l"].to_numpy()
    rpos = pairs["r"].to_numpy()
    prob = pairs["match_probability"].to_numpy()
    for sp in splits:
        for e in sp["cut_links"]:
            if e >= len(pairs):
                continue
            rows.append(
                {
                    "kind": "cluster_split",
                    "l": int(lpos[e]),
                    "r": int(rpos[e]),
                    "scheme": None,
                    "match_probability": float(prob[e]),
                    "details": {
                        "reason": CONFLICT_KINDS["cluster_split"],
                        "component_size": len(sp["members"]),
                        "parts": sp["parts"],
                    },
                }
            )
    for a, b in decision_conflicts:
        rows.append(
            {
                "kind": "decision_conflict",
                "l": a,
                "r": b,
                "scheme": None,
                "match_probability": None,
                "details": {"reason": CONFLICT_KINDS["decision_conflict"]},
            }
        )
    return pd.DataFrame(rows, columns=["kind", "l", "r", "scheme", "match_probability", "details"])


def _str(v: Any) -> str | None:
    return None if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA else str(v)
