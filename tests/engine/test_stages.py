"""Stage-level behaviour: blocking stays linear in a block, clustering honours its constraints, the model is ordered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crosswalk.config import BlockingSettings, load_config
from crosswalk.sources import load_sources
from crosswalk.stages.block import (
    RULE_BITS,
    BlockParams,
    block_keys,
    candidate_pairs,
    token_counts,
)
from crosswalk.stages.cluster import CUT, LINKED, MUST, cluster
from crosswalk.stages.compare import compare, comparisons_for
from crosswalk.stages.model import fit_em, monotone
from crosswalk.stages.normalize import normalize_records


@pytest.fixture(scope="module")
def slice_records() -> pd.DataFrame:
    cfg = load_config(Path(__file__).resolve().parents[1] / "data" / "slice.toml")
    return load_sources(cfg).records


def _one_building(records: pd.DataFrame, n: int) -> pd.DataFrame:
    """n records per source, all at one real address, with real (distinct) names."""
    names = records["name"].dropna().drop_duplicates().to_numpy()
    template = records.iloc[[0]]
    rows = []
    for source in ("a", "b"):
        block = pd.concat([template] * n, ignore_index=True)
        block["source"] = source
        block["record_id"] = [f"{source}{i}" for i in range(n)]
        block["name"] = names[np.arange(n) % len(names)]
        rows.append(block)
    return pd.concat(rows, ignore_index=True)


def test_a_crowded_building_is_not_paired_all_to_all(slice_records: pd.DataFrame) -> None:
    settings = BlockParams.of(BlockingSettings())
    counts = {}
    for n in (100, 200, 400):
        frame = normalize_records(_one_building(slice_records, n))
        counts[n] = len(candidate_pairs(frame, settings))
    assert counts[400] < 0.05 * 400 * 400
    # Linear, not quadratic: doubling the block roughly doubles the pairs.
    assert counts[400] / counts[200] < 2.6
    assert counts[200] / counts[100] < 2.6


def test_blocking_finds_the_true_pairs_of_the_slice(slice_records: pd.DataFrame) -> None:
    frame = normalize_records(slice_records)
    pairs = candidate_pairs(frame, BlockParams.of(BlockingSettings()))
    src, rid = frame["source"].to_numpy(), frame["record_id"].to_numpy()
    found = {
        (rid[a], rid[b]) if src[a] == "cdph" else (rid[b], rid[a])
        for a, b in zip(pairs["l"], pairs["r"], strict=True)
    }
    truth = pd.read_csv(Path(__file__).resolve().parents[1] / "data" / "truth_slice.csv", dtype=str)
    hit = sum((a, b) in found for a, b in zip(truth.FACID, truth.OSHPD_ID, strict=True))
    assert hit / len(truth) >= 0.99
    assert (src[pairs["l"]] != src[pairs["r"]]).all()


@pytest.mark.parametrize("zip_name_tokens", [0, 1, 2])
def test_a_record_has_the_same_keys_alone_as_in_its_frame(
    slice_records: pd.DataFrame, zip_name_tokens: int
) -> None:
    """The matcher looks a one-record query's keys up among a whole crosswalk's keys."""
    frame = normalize_records(slice_records)
    settings = BlockParams.of(BlockingSettings(zip_name_tokens=zip_name_tokens))
    counts = token_counts(frame)
    everyone = block_keys(frame, settings, counts=counts)
    for i in (0, 7, len(frame) // 2, len(frame) - 1):
        alone = block_keys(frame.iloc[[i]].reset_index(drop=True), settings, counts=counts)
        mine = everyone.rows == i
        assert alone.keys.tolist() == everyone.keys[mine].tolist()
        assert (alone.rows == 0).all()


def _named(records: pd.DataFrame, rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    """Records (source, name, ZIP) at one real address: only the names and ZIPs differ."""
    frame = pd.concat([records.iloc[[0]]] * len(rows), ignore_index=True)
    frame["source"] = [s for s, _, _ in rows]
    frame["record_id"] = [str(i) for i in range(len(rows))]
    frame["name"] = [n for _, n, _ in rows]
    frame["zip"] = [z for _, _, z in rows]
    return normalize_records(frame)


def test_zip_name_token_keys_a_record_by_its_rarest_tokens(slice_records: pd.DataFrame) -> None:
    # PACIFIC is carried by every record, VISTA by one: a ZIP shared with a common token
    # only is no candidate unless every token keys the record.
    elsewhere = [("b", f"{w} PACIFIC", "95814") for w in ("ALPHA", "BRAVO", "DELTA", "ECHO")]
    frame = _named(
        slice_records,
        [
            ("a", "SUNRISE PACIFIC", "90001"),
            ("b", "MOONLIGHT PACIFIC", "90001"),
            ("b", "SUNRISE VISTA PACIFIC", "90001"),
            ("a", "SUNRISE PACIFIC", "94110"),
            *elsewhere,
        ],
    )

    def pairs(k: int) -> set[tuple[int, int]]:
        settings = BlockParams.of(BlockingSettings(rules=["zip_name_token"], zip_name_tokens=k))
        found = candidate_pairs(frame, settings)
        return set(zip(found["l"].tolist(), found["r"].tolist(), strict=True))

    assert pairs(0) == {(0, 1), (0, 2)}
    assert pairs(2) == {(0, 1), (0, 2)}  # two-word names: both tokens key them
    assert pairs(1) == set()  # SUNRISE (3 records) against VISTA (1), the other's rarest
    for k in (1, 2):
        keys = block_keys(
            frame, BlockParams.of(BlockingSettings(rules=["zip_name_token"], zip_name_tokens=k))
        )
        assert np.bincount(keys.rows, minlength=len(frame)).tolist() == [k] * len(frame)


def test_rarest_tokens_tie_in_the_order_of_the_words(slice_records: pd.DataFrame) -> None:
    # ALPHA and BRAVO are carried by both records: each keeps its first word, whatever
    # order the frame's vocabulary numbers them in.
    frame = _named(slice_records, [("a", "ALPHA BRAVO", "90001"), ("b", "BRAVO ALPHA", "90001")])
    one = candidate_pairs(
        frame, BlockParams.of(BlockingSettings(rules=["zip_name_token"], zip_name_tokens=1))
    )
    two = candidate_pairs(
        frame, BlockParams.of(BlockingSettings(rules=["zip_name_token"], zip_name_tokens=2))
    )
    assert len(one) == 0 and len(two) == 1


def test_a_query_word_the_crosswalk_lacks_takes_no_rarest_token_slot(
    slice_records: pd.DataFrame,
) -> None:
    published = _named(
        slice_records,
        [("a", "SUNRISE PACIFIC", "90001"), ("a", "MOONLIGHT PACIFIC", "90001")],
    )
    counts = token_counts(published)
    settings = BlockParams.of(BlockingSettings(rules=["zip_name_token"], zip_name_tokens=1))
    query = _named(slice_records, [("q", "SUNRISE XYZZY PACIFIC", "90001")])
    assert block_keys(query, settings, counts).keys.tolist() == [
        block_keys(published, settings, counts).keys[0]
    ]
    # A crosswalk without a single name token still gives keys by ZIP and city.
    none = token_counts(published.iloc[0:0])
    for rules in (["zip_name_token"], ["city_name"]):
        assert len(block_keys(query, BlockParams.of(BlockingSettings(rules=rules)), none).keys) > 0


def test_candidate_pairs_are_sorted_unique_with_the_rules_that_found_them(
    slice_records: pd.DataFrame,
) -> None:
    frame = normalize_records(slice_records)
    pairs = candidate_pairs(frame, BlockParams.of(BlockingSettings()))
    code = pairs["l"].to_numpy() * len(frame) + pairs["r"].to_numpy()
    assert (np.diff(code) > 0).all()
    assert (pairs["l"] < pairs["r"]).all()
    assert (pairs["rules"] > 0).all()
    street_only = candidate_pairs(frame, BlockParams.of(BlockingSettings(rules=["street"])))
    assert set(street_only["rules"].tolist()) == {RULE_BITS["street"]}
    found = set(zip(pairs["l"], pairs["r"], strict=True))
    assert set(zip(street_only["l"], street_only["r"], strict=True)) <= found


def _links(rows: list[tuple[int, int, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["l", "r", "match_weight"])
    frame["match_probability"] = 1 / (1 + 2.0 ** -frame["match_weight"])
    return frame


def test_one_record_per_source_keeps_the_strongest_links() -> None:
    # Records 0, 1 from source a; 2 from b. Both a-records link to the b-record.
    sources = np.array(["a", "a", "b"])
    res = cluster(3, sources, {"a": 1, "b": 1}, _links([(0, 2, 10.0), (1, 2, 4.0)]), 0.5)
    assert res.labels[0] == res.labels[2] != res.labels[1]
    assert list(res.status) == [LINKED, CUT]
    assert len(res.splits) == 1


def test_components_breaking_a_limit_are_split_each_on_its_own() -> None:
    # Two components, each with two a-records linked to one b-record; a third component is fine.
    sources = np.array(["a", "a", "b", "a", "b", "a", "a", "b"])
    links = _links([(0, 2, 3.0), (1, 2, 9.0), (3, 4, 5.0), (5, 7, 2.0), (6, 7, 6.0)])
    res = cluster(8, sources, {"a": 1, "b": 1}, links, 0.5)
    assert res.labels[1] == res.labels[2] != res.labels[0]
    assert res.labels[3] == res.labels[4]
    assert res.labels[6] == res.labels[7] != res.labels[5]
    assert len(set(res.labels.tolist())) == 5
    assert list(res.status) == [CUT, LINKED, LINKED, CUT, LINKED]
    assert [sp["cut_links"] for sp in res.splits] == [[0], [3]]


def test_a_split_keeps_the_pairing_of_largest_total_weight() -> None:
    # A hospital (a0, b0) and its distinct-part unit (a1, b1): the crossed link a0-b1 is the
    # strongest, but the right pairs weigh more together (24.9 + 14.8 > 25.3 + 7.6).
    sources = np.array(["a", "a", "b", "b"])
    links = _links([(0, 2, 24.9), (0, 3, 25.3), (1, 2, 7.6), (1, 3, 14.8)])
    res = cluster(4, sources, {"a": 1, "b": 1}, links, 0.5)
    assert res.labels[0] == res.labels[2] != res.labels[1] == res.labels[3]
    assert list(res.status) == [LINKED, CUT, CUT, LINKED]


def test_several_components_are_each_split_by_their_own_total_weight() -> None:
    # Two hospital/D/P components, resolved in one matching of their union, and a third
    # component with one record on a side (its strongest link wins).
    sources = np.array(["a", "a", "b", "b", "a", "a", "b", "b", "a", "a", "b"])
    links = _links(
        [
            (0, 2, 24.9), (0, 3, 25.3), (1, 2, 7.6), (1, 3, 14.8),
            (4, 6, 30.0), (4, 7, 12.0), (5, 6, 29.0), (5, 7, 3.0),
            (8, 10, 5.0), (9, 10, 6.0),
        ]
    )  # fmt: skip
    res = cluster(11, sources, {"a": 1, "b": 1}, links, 0.5)
    assert res.labels[0] == res.labels[2] != res.labels[1] == res.labels[3]
    assert res.labels[4] == res.labels[7] != res.labels[5] == res.labels[6]  # 12 + 29 > 30 + 3
    assert res.labels[9] == res.labels[10] != res.labels[8]


def test_with_three_sources_the_heaviest_pairwise_matchings_come_first() -> None:
    # a0/a1, b0/b1, c0/c1: the a-b matching by total weight, then c joins each side by its
    # own matching; no entity holds two records of one source.
    sources = np.array(["a", "a", "b", "b", "c", "c"])
    links = _links(
        [
            (0, 2, 24.9), (0, 3, 25.3), (1, 2, 7.6), (1, 3, 14.8),
            (0, 4, 20.0), (1, 5, 19.0), (2, 5, 21.0), (3, 4, 9.0), (2, 4, 18.0),
        ]
    )  # fmt: skip
    res = cluster(6, sources, {"a": 1, "b": 1, "c": 1}, links, 0.5)
    assert res.labels[0] == res.labels[2] == res.labels[4]
    assert res.labels[1] == res.labels[3] == res.labels[5]
    assert res.labels[0] != res.labels[1]


def test_a_split_by_total_weight_counts_weights_above_the_threshold() -> None:
    # Under a threshold of 0.2 (-2 bits), a link of -1 bit is kept and worth 1 bit above
    # it: two such links (2 bits) outweigh one link of -0.5 bits (1.5 bits).
    sources = np.array(["a", "a", "b", "b"])
    links = _links([(0, 2, -1.0), (0, 3, -0.5), (1, 3, -1.0)])
    res = cluster(4, sources, {"a": 1, "b": 1}, links, 0.2)
    assert res.labels[0] == res.labels[2] != res.labels[1] == res.labels[3]


def test_a_must_link_that_was_no_candidate_wins_a_split() -> None:
    sources = np.array(["a", "b", "a"])
    res = cluster(3, sources, {"a": 1, "b": 1}, _links([(0, 1, 5.0)]), 0.5, must_link=[(2, 1)])
    assert res.labels[2] == res.labels[1] != res.labels[0]
    assert list(res.status) == [CUT]
    assert res.splits[0]["cut_links"] == [0]


def test_no_limit_lets_a_source_hold_several_records() -> None:
    sources = np.array(["a", "a", "b"])
    res = cluster(3, sources, {"a": 0, "b": 1}, _links([(0, 2, 10.0), (1, 2, 4.0)]), 0.5)
    assert len(set(res.labels.tolist())) == 1
    assert res.splits == []


def test_decisions_bind_clustering() -> None:
    sources = np.array(["a", "b", "a", "b"])
    links = _links([(0, 1, 12.0), (2, 3, -8.0)])
    res = cluster(
        4, sources, {"a": 1, "b": 1}, links, 0.5, must_link=[(2, 3)], cannot_link=[(0, 1)]
    )
    assert res.labels[0] != res.labels[1], "cannot-link must never merge"
    assert res.labels[2] == res.labels[3], "must-link always joins"
    assert res.status[1] == MUST


def test_a_must_link_contradicting_a_cannot_link_is_reported() -> None:
    sources = np.array(["a", "b", "c"])
    links = _links([(0, 1, 12.0), (1, 2, 12.0)])
    res = cluster(3, sources, {}, links, 0.5, must_link=[(0, 1), (1, 2)], cannot_link=[(0, 2)])
    assert res.labels[0] != res.labels[2]
    assert len(res.decision_conflicts) == 1


def test_monotone_levels_never_let_a_weaker_level_weigh_more() -> None:
    m = np.array([0.6, 0.05, 0.3, 0.05])
    u = np.array([0.001, 0.01, 0.02, 0.969])
    mm, uu = monotone(m, u)
    bits = np.log2(mm / uu)
    assert np.all(np.diff(bits) <= 1e-9)
    assert np.isclose(mm.sum(), 1.0)


def test_em_finds_the_matches_of_the_slice(slice_records: pd.DataFrame) -> None:
    frame = normalize_records(slice_records)
    pairs = candidate_pairs(frame, BlockParams.of(BlockingSettings()))
    left = frame.iloc[pairs["l"]].reset_index(drop=True)
    right = frame.iloc[pairs["r"]].reset_index(drop=True)
    comparisons = comparisons_for(frame)
    levels = compare(left, right, comparisons)
    m, share, _ = fit_em(levels, comparisons)
    # Matches agree exactly far more often than not, and are a minority of the candidates.
    assert m["name"][0] > 0.7 and m["location"][0] > 0.7
    truth_pairs = len(pd.read_csv(Path(__file__).resolve().parents[1] / "data" / "truth_slice.csv"))
    assert 0.5 * truth_pairs < share * len(pairs) < 1.6 * truth_pairs


def test_training_from_a_truth_file_weighs_the_labels_in_beside_the_em(
    slice_dir: Path, tmp_path: Path
) -> None:
    from crosswalk.pipeline import build

    config = load_config(slice_dir / "slice.toml")
    em = build(config, tmp_path / "em", progress=False).linkage.model
    config.model.training_pairs = "truth_slice.csv"
    config.model.training_left = "cdph=FACID"
    config.model.training_right = "hcai=OSHPD_ID"
    trained = build(config, tmp_path / "trained", progress=False).linkage.model
    truth = pd.read_csv(slice_dir / "truth_slice.csv", dtype=str)
    assert em.trained_on == "em"
    assert trained.trained_on == f"em and {len(truth)} labelled pairs"
    assert trained.learned_from["training_pairs"] == len(truth)
    # The labelled pairs move m, and most of them agree exactly on the name.
    assert trained.field("name").m != em.field("name").m
    assert 0.8 < trained.field("name").m[0] < 1.0


def test_one_source_can_be_deduplicated(slice_dir: Path, tmp_path: Path) -> None:
    """A single listing with max_per_entity = 0 is linked to itself: its duplicates merge."""
    from crosswalk.pipeline import build

    config = load_config(slice_dir / "slice.toml")
    hcai = config.source("hcai")
    config.sources = [hcai]
    hcai.max_per_entity = 0
    csv_path = slice_dir / "hcai_slice.csv"
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    dup = frame.iloc[:40].copy()
    dup["OSHPD_ID"] = "9" + dup["OSHPD_ID"].str[1:]
    dup["FACILITY_NAME"] = dup["FACILITY_NAME"].str.title()
    pd.concat([frame, dup], ignore_index=True).to_csv(csv_path, index=False)
    result = build(config, tmp_path / "dedup", progress=False)
    recs = result.linkage.records.set_index("record_id")
    merged = sum(
        recs.at[a, "entity_id"] == recs.at[b, "entity_id"]
        for a, b in zip(frame["OSHPD_ID"].iloc[:40], dup["OSHPD_ID"], strict=True)
    )
    assert merged >= 38
    assert result.linkage.model.prior > 0
