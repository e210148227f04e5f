"""Link the two sources of a crosswalk config with Splink on DuckDB, with its typical settings.

Usage (under the bench virtualenv)::

    .venv-bench/bin/python bench/peers/splink_runner.py --config bench/blind.toml --out DIR

The model follows Splink's documented workflow for a two-table ``link_only`` job:

1. blocking rules for prediction on ZIP, name and address (each a conjunction
   that keeps blocks small, so the job scales);
2. comparisons: name by Jaro-Winkler at 0.95 / 0.88 / 0.70 with term-frequency
   adjustment on exact agreement, address by Jaro-Winkler at 0.95 / 0.88 with
   term frequencies, city, ZIP and facility type exact;
3. the prior from deterministic rules (``estimate_probability_two_random_records_match``),
   u from random sampling (``estimate_u_using_random_sampling``), m by EM on two
   blocking rules;
4. ``predict`` at match probability 0.5: the raw pairs;
5. ``cluster_using_single_best_links`` with both sources duplicate-free: the
   greedy one-to-one best links.

Writes ``pairs_raw.csv``, ``pairs_one_to_one.csv`` and ``stats.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import duckdb
import pandas as pd
import splink
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Timer, load_sources, write_outputs

THRESHOLD = 0.5


def settings(left: str, right: str) -> SettingsCreator:
    """The Splink model: blocking rules and comparisons."""
    return SettingsCreator(
        link_type="link_only",
        unique_id_column_name="unique_id",
        blocking_rules_to_generate_predictions=[
            block_on("zip", "substr(name, 1, 3)"),
            block_on("zip", "street_number"),
            block_on("name", "city"),
            block_on("address", "city"),
        ],
        comparisons=[
            cl.JaroWinklerAtThresholds("name", [0.95, 0.88, 0.70]).configure(
                term_frequency_adjustments=True
            ),
            cl.JaroWinklerAtThresholds("address", [0.95, 0.88]).configure(
                term_frequency_adjustments=True
            ),
            cl.ExactMatch("city"),
            cl.ExactMatch("zip"),
            cl.ExactMatch("facility_type"),
        ],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the Splink job and write its pairs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--memory-limit", default="10GB", help="DuckDB memory_limit")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads")
    parser.add_argument("--u-max-pairs", type=float, default=1e7)
    parser.add_argument("--seed", type=int, default=20200507)
    args = parser.parse_args(argv)

    timer = Timer()
    left, right = load_sources(args.config)
    timer.lap("load")

    tmp = args.out / "duckdb_tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(":memory:")
    con.execute(f"SET memory_limit = '{args.memory_limit}'")
    con.execute(f"SET threads = {int(args.threads)}")
    con.execute(f"SET temp_directory = '{tmp}'")
    db_api = DuckDBAPI(connection=con)
    df_l = db_api.register(left.frame, dataset_display_name=left.name)
    df_r = db_api.register(right.frame, dataset_display_name=right.name)
    linker = Linker([df_l, df_r], settings(left.name, right.name), log_level=logging.WARNING)

    linker.training.estimate_probability_two_random_records_match(
        [block_on("name", "zip"), block_on("address", "zip")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=args.u_max_pairs, seed=args.seed)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("zip", "street_number")
    )
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("name", "city"))
    timer.lap("train")

    blocked = linker.inference.compute_blocked_pairs_for_predict()
    candidate_pairs = int(
        linker.misc.query_sql(
            f"select count(*) as n from {blocked.physical_name}", output_type="pandas"
        )["n"][0]
    )
    timer.lap("block")

    predictions = linker.inference.predict(threshold_match_probability=THRESHOLD)
    timer.lap("predict")
    raw = linker.misc.query_sql(
        f"""
        select
            case when source_dataset_l = '{left.name}' then unique_id_l else unique_id_r end
                as left_id,
            case when source_dataset_l = '{left.name}' then unique_id_r else unique_id_l end
                as right_id,
            match_probability
        from {predictions.physical_name}
        """,
        output_type="pandas",
    )
    timer.lap("fetch_raw")

    clusters = linker.clustering.cluster_using_single_best_links(
        predictions,
        duplicate_free_datasets=[left.name, right.name],
        threshold_match_probability=THRESHOLD,
    )
    members = linker.misc.query_sql(
        f"select cluster_id, source_dataset, unique_id from {clusters.physical_name}",
        output_type="pandas",
    )
    lm = members[members["source_dataset"] == left.name][["cluster_id", "unique_id"]]
    rm = members[members["source_dataset"] == right.name][["cluster_id", "unique_id"]]
    one = lm.merge(rm, on="cluster_id", suffixes=("_l", "_r")).rename(
        columns={"unique_id_l": "left_id", "unique_id_r": "right_id"}
    )
    best = raw.set_index(["left_id", "right_id"])["match_probability"]
    one["match_probability"] = best.reindex(
        pd.MultiIndex.from_frame(one[["left_id", "right_id"]])
    ).to_numpy()
    timer.lap("one_to_one")

    stats = {
        "engine": "splink",
        "version": splink.__version__,
        "duckdb": duckdb.__version__,
        "records": {left.name: len(left.frame), right.name: len(right.frame)},
        "candidate_pairs": candidate_pairs,
        "threshold": THRESHOLD,
        "phases_s": timer.phases,
    }
    write_outputs(args.out, {"raw": raw, "one_to_one": one}, stats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
