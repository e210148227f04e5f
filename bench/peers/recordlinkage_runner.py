"""Link the two sources of a crosswalk config with the recordlinkage toolkit's documented pipeline.

Usage (under the bench virtualenv)::

    .venv-bench/bin/python bench/peers/recordlinkage_runner.py --config bench/blind.toml --out DIR

The pipeline of the toolkit's documentation:

1. ``Index``: blocking on ZIP, plus a sorted neighbourhood on the name (window 9)
   and blocking on street number and city; the union of the candidate links;
2. ``Compare``: name and address by Jaro-Winkler (threshold 0.85); city, ZIP,
   facility type and street number (the address's leading digits) exact: binary
   comparison vectors;
3. ``ECMClassifier`` (unsupervised, binary features): the raw matches;
4. greedy one-to-one selection of the matches by the classifier's probability.

Writes ``pairs_raw.csv``, ``pairs_one_to_one.csv`` and ``stats.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import recordlinkage
from recordlinkage.index import Block, SortedNeighbourhood

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Timer, greedy_one_to_one, load_sources, write_outputs


def main(argv: list[str] | None = None) -> int:
    """Run the recordlinkage pipeline and write its pairs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--window", type=int, default=9, help="sorted neighbourhood window")
    parser.add_argument("--threshold", type=float, default=0.85, help="Jaro-Winkler threshold")
    args = parser.parse_args(argv)

    timer = Timer()
    left, right = load_sources(args.config)
    a = left.frame.set_index("unique_id")
    b = right.frame.set_index("unique_id")
    timer.lap("load")

    indexer = recordlinkage.Index()
    indexer.add(Block("zip"))
    indexer.add(SortedNeighbourhood("name", window=args.window))
    indexer.add(Block(["street_number", "city"]))
    candidates = indexer.index(a, b)
    timer.lap("index")

    compare = recordlinkage.Compare()
    compare.string("name", "name", method="jarowinkler", threshold=args.threshold, label="name")
    compare.string(
        "address", "address", method="jarowinkler", threshold=args.threshold, label="address"
    )
    compare.exact("city", "city", label="city")
    compare.exact("zip", "zip", label="zip")
    compare.exact("facility_type", "facility_type", label="facility_type")
    compare.exact("street_number", "street_number", label="street_number")
    features = compare.compute(candidates, a, b)
    timer.lap("compare")

    ecm = recordlinkage.ECMClassifier(binarize=None)
    matches = ecm.fit_predict(features)
    probability = pd.Series(ecm.prob(features), index=features.index)
    timer.lap("classify")

    raw = pd.DataFrame(
        {
            "left_id": matches.get_level_values(0).astype(str),
            "right_id": matches.get_level_values(1).astype(str),
            "match_probability": probability.reindex(matches).to_numpy(),
        }
    )
    one = greedy_one_to_one(raw)
    timer.lap("one_to_one")

    stats = {
        "engine": "recordlinkage",
        "version": recordlinkage.__version__,
        "records": {left.name: len(a), right.name: len(b)},
        "candidate_pairs": len(candidates),
        "phases_s": timer.phases,
    }
    write_outputs(args.out, {"raw": raw, "one_to_one": one}, stats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
