"""`crosswalk explain`: the score of one pair of records and each field's contribution."""

from __future__ import annotations

import argparse
import json
from typing import Any

from crosswalk.artifact import DEFAULT_DB
from crosswalk.errors import CrosswalkError


def _record(text: str) -> tuple[str, str]:
    if ":" not in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not SOURCE:RECORD_ID (e.g. cdph:010000001)")
    source, record_id = text.split(":", 1)
    return source, record_id


def register(sub: Any) -> None:
    p = sub.add_parser(
        "explain",
        help="show a pair's match score and each field's contribution",
        description="Score two published records against each other and show each field's level and weight.",
    )
    p.add_argument(
        "left", type=_record, metavar="SOURCE:ID", help="first record, e.g. cdph:010000001"
    )
    p.add_argument(
        "right", type=_record, metavar="SOURCE:ID", help="second record, e.g. hcai:206492251"
    )
    p.add_argument(
        "--db",
        default=DEFAULT_DB,
        metavar="FILE",
        help=f"published crosswalk (default: {DEFAULT_DB})",
    )
    p.add_argument("--json", action="store_true", help="print the explanation as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from crosswalk.matching import Matcher

    if args.left == args.right:
        raise CrosswalkError("the two records are the same. Fix: name two different records.")
    result = Matcher.from_sqlite(args.db).explain_pair(args.left, args.right)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    a, b = result["left"], result["right"]
    print(
        f"{a['source']}:{a['record_id']} ({a['entity_id']})  vs  {b['source']}:{b['record_id']} ({b['entity_id']})"
    )
    print(
        f"match probability {result['match_probability']:.6f}, match weight {result['match_weight']:+.2f} bits "
        f"({'same entity' if result['same_entity'] else 'different entities'})"
    )
    print(f"  {'prior':<16} {'':<24} {result['prior_weight']:+8.2f}")
    for name, f in result["fields"].items():
        print(
            f"  {name:<16} {f['level']:<24} {f['weight']:+8.2f}   {f['left'] or '∅'}  |  {f['right'] or '∅'}"
        )
    return 0
