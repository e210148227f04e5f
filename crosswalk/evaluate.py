"""Pairwise evaluation of a published crosswalk against labelled pairs.

A *predicted pair* is a record of the left source and a record of the right
source that share an entity. Precision, recall and F1 compare predicted pairs
with the truth pairs. Blocking recall is the share of truth pairs that the
blocking rules (re-run on the published records) make candidates.

Two scopes are measured. *All pairs* counts every predicted pair missing from the
truth as false; *labelled* counts only the predicted pairs that touch a record the
truth labels. The headline (:attr:`Evaluation.scope`) is the labelled scope unless the
truth is declared complete (it lists every pair of the two sources that is the same
facility): then every predicted pair is judged, and a false link between two records
the truth does not name is not hidden.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from crosswalk.artifact import schema
from crosswalk.artifact.reader import connect
from crosswalk.artifact.writer import write_frame_csv
from crosswalk.errors import CrosswalkError, NotFoundError, Problem, SourceError


@dataclass
class Evaluation:
    left: str
    right: str
    truth_pairs: int
    predicted_pairs: int
    true_positives: int
    false_positives: int
    false_negatives: int
    precision: float
    recall: float
    f1: float
    #: The same figures counting only predicted pairs that touch a record the truth file
    #: labels (a record appearing in it): pairs between two unlabelled records are unknown,
    #: not false. A truth file built by joining on an identifier labels only the records
    #: that carry it.
    labelled_predicted_pairs: int = 0
    labelled_false_positives: int = 0
    labelled_precision: float = 0.0
    labelled_f1: float = 0.0
    blocking_recall: float | None = None
    candidate_pairs: int | None = None
    #: The scope of the headline: ``"all"`` (every predicted pair: the truth is declared
    #: complete) or ``"labelled"`` (pairs touching a labelled record).
    scope: str = "labelled"

    @property
    def headline(self) -> dict[str, Any]:
        """Precision, recall, F1, predicted pairs and false positives in :attr:`scope`."""
        everything = self.scope == "all"
        return {
            "scope": self.scope,
            "predicted_pairs": (
                self.predicted_pairs if everything else self.labelled_predicted_pairs
            ),
            "false_positives": (
                self.false_positives if everything else self.labelled_false_positives
            ),
            "precision": self.precision if everything else self.labelled_precision,
            "recall": self.recall,
            "f1": self.f1 if everything else self.labelled_f1,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "headline": self.headline}


def parse_side(text: str) -> tuple[str, str]:
    """``"cdph=FACID"`` → ``("cdph", "FACID")``: a source name and the truth file's column of its ids."""
    if "=" not in text:
        raise CrosswalkError(f"{text!r} is not SOURCE=COLUMN. Fix: write e.g. --left cdph=FACID.")
    source, column = text.split("=", 1)
    return source.strip(), column.strip()


def read_truth(path: Path, left_col: str, right_col: str) -> pd.DataFrame:
    if not path.exists():
        raise NotFoundError(f"truth file {path} does not exist. Fix: check the --truth path.")
    truth = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    missing = [c for c in (left_col, right_col) if c not in truth.columns]
    if missing:
        raise SourceError(
            [
                Problem(
                    f"{path} column {c!r}",
                    "the column is missing from the truth file.",
                    f"name one of {list(truth.columns)}.",
                )
                for c in missing
            ]
        )
    out = truth[[left_col, right_col]].rename(
        columns={left_col: "record_id_l", right_col: "record_id_r"}
    )
    out = out[(out["record_id_l"] != "") & (out["record_id_r"] != "")]
    return out.drop_duplicates(ignore_index=True)


def read_labelled_pairs(
    path: Path, left: tuple[str, str] | None = None, right: tuple[str, str] | None = None
) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """Labelled matching pairs from a CSV with columns source_l, record_id_l, source_r,
    record_id_r; or, given ``left`` and ``right`` as (source, column), from a truth file with
    one id column per source."""
    if not path.exists():
        raise NotFoundError(
            f"labelled pairs file {path} does not exist. Fix: check model.training_pairs."
        )
    if left is not None and right is not None:
        truth = read_truth(path, left[1], right[1])
        return [
            ((left[0], a), (right[0], b))
            for a, b in zip(truth["record_id_l"], truth["record_id_r"], strict=True)
        ]
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    need = ["source_l", "record_id_l", "source_r", "record_id_r"]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise SourceError(
            [
                Problem(
                    f"{path}",
                    f"labelled pairs need the columns {need}; missing {missing}.",
                    "rename the columns, or leave model.training_pairs unset.",
                )
            ]
        )
    return [((a, b), (c, d)) for a, b, c, d in frame[need].itertuples(index=False, name=None)]


def predicted_pairs(db_path: Path, left: str, right: str) -> pd.DataFrame:
    conn = connect(db_path)
    try:
        recs = pd.read_sql_query(
            "SELECT source, record_id, entity_id FROM records WHERE source IN (?, ?)",
            conn,
            params=(left, right),
            dtype={"record_id": str},
        )
    finally:
        conn.close()
    for s in (left, right):
        if not (recs["source"] == s).any():
            raise NotFoundError(
                f"the crosswalk has no records of source {s!r}. Fix: name a source it holds."
            )
    a = recs[recs["source"] == left]
    b = recs[recs["source"] == right]
    return a.merge(b, on="entity_id", suffixes=("_l", "_r"))[
        ["record_id_l", "record_id_r", "entity_id"]
    ]


def evaluate(
    db_path: str | Path,
    truth_path: str | Path,
    left: tuple[str, str],
    right: tuple[str, str],
    *,
    errors_csv: str | Path | None = None,
    blocking: bool = True,
    complete_truth: bool = False,
) -> Evaluation:
    """Evaluate the crosswalk at ``db_path`` against a truth file. ``complete_truth``: the
    truth lists every pair that is the same facility, so the headline judges every
    predicted pair (scope ``"all"``); otherwise only those touching a labelled record."""
    db_path, truth_path = Path(db_path), Path(truth_path)
    if not db_path.exists():
        raise NotFoundError(
            f"{db_path} does not exist. Fix: run `crosswalk build` first, or check --db."
        )
    truth = read_truth(truth_path, left[1], right[1])
    pred = predicted_pairs(db_path, left[0], right[0])
    key_t = set(zip(truth["record_id_l"], truth["record_id_r"], strict=True))
    key_p = set(zip(pred["record_id_l"], pred["record_id_r"], strict=True))
    tp = len(key_t & key_p)
    fp = len(key_p - key_t)
    fn = len(key_t - key_p)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    known_l = set(truth["record_id_l"])
    known_r = set(truth["record_id_r"])
    labelled = {(a, b) for a, b in key_p if a in known_l or b in known_r}
    lfp = len(labelled - key_t)
    lprecision = tp / (tp + lfp) if tp + lfp else 0.0
    lf1 = 2 * lprecision * recall / (lprecision + recall) if lprecision + recall else 0.0
    ev = Evaluation(
        left[0],
        right[0],
        len(key_t),
        len(key_p),
        tp,
        fp,
        fn,
        round(precision, 5),
        round(recall, 5),
        round(f1, 5),
        len(labelled),
        lfp,
        round(lprecision, 5),
        round(lf1, 5),
        scope="all" if complete_truth else "labelled",
    )
    if blocking:
        from crosswalk.matching import blocking_candidates

        cands = blocking_candidates(db_path, left[0], right[0])
        key_c = set(zip(cands["record_id_l"], cands["record_id_r"], strict=True))
        ev.candidate_pairs = len(key_c)
        ev.blocking_recall = round(len(key_t & key_c) / len(key_t), 5) if key_t else None
    if errors_csv:
        _write_errors(
            Path(errors_csv),
            db_path,
            left[0],
            right[0],
            key_p - key_t,
            key_t - key_p,
            known_l,
            known_r,
        )
    return ev


def _write_errors(
    path: Path,
    db_path: Path,
    left: str,
    right: str,
    fps: set[tuple[str, str]],
    fns: set[tuple[str, str]],
    known_l: set[str],
    known_r: set[str],
) -> None:
    conn = connect(db_path)
    try:
        recs = pd.read_sql_query(
            f"SELECT {', '.join(schema.RECORD_SUMMARY)} FROM records",
            conn,
            dtype={"record_id": str, "zip": str},
        )
        links = pd.read_sql_query(
            "SELECT source_l, record_id_l, source_r, record_id_r, match_probability FROM links",
            conn,
            dtype={"record_id_l": str, "record_id_r": str},
        )
    finally:
        conn.close()
    rows = [("false_positive", a, b) for a, b in sorted(fps)] + [
        ("false_negative", a, b) for a, b in sorted(fns)
    ]
    frame = pd.DataFrame(rows, columns=["error", "record_id_l", "record_id_r"])
    frame["labelled"] = [a in known_l or b in known_r for _, a, b in rows]
    cols = [c for c in schema.RECORD_SUMMARY if c != "source"]
    lrec = recs[recs["source"] == left][cols].add_suffix("_l")
    rrec = recs[recs["source"] == right][cols].add_suffix("_r")
    frame = frame.merge(lrec, on="record_id_l", how="left").merge(
        rrec, on="record_id_r", how="left"
    )
    lk = links.copy()
    swapped = lk["source_l"] == right
    lk.loc[swapped, ["record_id_l", "record_id_r"]] = lk.loc[
        swapped, ["record_id_r", "record_id_l"]
    ].to_numpy()
    lk = lk[(lk["source_l"].isin([left, right]))][
        ["record_id_l", "record_id_r", "match_probability"]
    ]
    frame = frame.merge(
        lk.drop_duplicates(["record_id_l", "record_id_r"]),
        on=["record_id_l", "record_id_r"],
        how="left",
    )
    frame.insert(1, "source_l", left)
    frame.insert(2, "source_r", right)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_frame_csv(path, frame)
