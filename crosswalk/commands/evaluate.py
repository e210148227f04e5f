"""`crosswalk evaluate`: pairwise precision, recall and F1 of a crosswalk against truth pairs."""

from __future__ import annotations

import argparse
import json
from typing import Any

from crosswalk.artifact import DEFAULT_DB


def register(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        help="compare a built crosswalk with known pairs (precision, recall, F1)",
        description=(
            "Compare the pairs of two sources that share an entity in the crosswalk with the pairs "
            "of a truth file, and report pairwise precision, recall, F1 and blocking recall."
        ),
    )
    p.add_argument(
        "--db",
        default=DEFAULT_DB,
        metavar="FILE",
        help=f"published crosswalk (default: {DEFAULT_DB})",
    )
    p.add_argument(
        "--truth", required=True, metavar="FILE", help="CSV of pairs that are the same facility"
    )
    p.add_argument(
        "--left",
        default="cdph=FACID",
        metavar="SOURCE=COLUMN",
        help="left source and the truth file's column of its record ids (default: cdph=FACID)",
    )
    p.add_argument(
        "--right",
        default="hcai=OSHPD_ID",
        metavar="SOURCE=COLUMN",
        help="right source and the truth column of its record ids (default: hcai=OSHPD_ID)",
    )
    p.add_argument(
        "--errors", metavar="FILE", help="write the false positives and false negatives to this CSV"
    )
    p.add_argument(
        "--complete-truth",
        action="store_true",
        help=(
            "the truth file lists every pair of the two sources that is the same facility: "
            "the headline then judges every predicted pair (without it, only the pairs "
            "touching a record the truth labels, since the others are unknown)"
        ),
    )
    p.add_argument("--no-blocking", action="store_true", help="skip computing the blocking recall")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from crosswalk.evaluate import evaluate, parse_side

    ev = evaluate(
        args.db,
        args.truth,
        parse_side(args.left),
        parse_side(args.right),
        errors_csv=args.errors,
        blocking=not args.no_blocking,
        complete_truth=args.complete_truth,
    )
    if args.json:
        print(json.dumps(ev.to_dict(), indent=2))
        return 0
    print(
        f"{ev.left} ↔ {ev.right}: {ev.truth_pairs:,} truth pairs, {ev.predicted_pairs:,} predicted pairs"
    )
    head = ev.headline
    scope = (
        "every predicted pair (the truth is declared complete)"
        if ev.scope == "all"
        else "pairs touching a labelled record (--complete-truth judges every pair)"
    )
    print(f"  headline, on {scope}:")
    print(
        f"    precision {head['precision']:.4f}  recall {head['recall']:.4f}  F1 {head['f1']:.4f}"
        f"  false positives {head['false_positives']:,} of {head['predicted_pairs']:,}"
    )
    print(
        f"  every predicted pair ({ev.predicted_pairs:,}): precision {ev.precision:.4f}  "
        f"F1 {ev.f1:.4f}  true positives {ev.true_positives:,}  false positives "
        f"{ev.false_positives:,}  false negatives {ev.false_negatives:,}"
    )
    print(
        f"  pairs touching a labelled record ({ev.labelled_predicted_pairs:,}): precision "
        f"{ev.labelled_precision:.4f}  F1 {ev.labelled_f1:.4f}  false positives {ev.labelled_false_positives:,}"
    )
    if ev.blocking_recall is not None:
        print(
            f"  blocking: {ev.candidate_pairs:,} candidate pairs, recall {ev.blocking_recall:.4f}"
        )
    if args.errors:
        print(f"  errors written to {args.errors}")
    return 0
