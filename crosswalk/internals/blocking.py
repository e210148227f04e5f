"""Blocking stage: normalized records in, candidate pairs out.

Each rule emits blocking keys per record (hashed to 64-bit integers). Records
sharing a key are paired. A block whose all-to-all pairing would exceed
``max_block_pairs`` is not paired all-to-all: within it, records are sorted by
name and each is paired with its ``window`` following neighbours (a sorted
neighbourhood), so no step is quadratic in a block's size. The work is linear
in the number of keys plus the number of pairs produced.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crosswalk.config import BLOCKING_RULES, BlockingSettings
from crosswalk.internals.normalize import NID_PREFIX

#: Bit of each rule in a pair's ``rules`` bitmask.
RULE_BITS = {name: 1 << i for i, name in enumerate(BLOCKING_RULES)}


@dataclass
class BlockingKeys:
    rows: np.ndarray  # int64 record positions
    keys: np.ndarray  # uint64 hashed keys
    bits: np.ndarray  # int64 rule bit


def _hash(values: pd.Series) -> np.ndarray:
    return pd.util.hash_pandas_object(values, index=False).to_numpy(dtype="uint64")


def _emit(rows: np.ndarray, values: pd.Series, rule: str, parts: list[BlockingKeys]) -> None:
    mask = values.notna().to_numpy() & (values.fillna("").str.len() > 0).to_numpy()
    if not mask.any():
        return
    tagged = (rule + "|") + values[mask].astype(str)
    parts.append(
        BlockingKeys(
            rows[mask],
            _hash(tagged.reset_index(drop=True)),
            np.full(int(mask.sum()), RULE_BITS[rule], dtype="int64"),
        )
    )


def _tokens(names: pd.Series) -> pd.DataFrame:
    """Explode names into (row, token) with row as a positional index."""
    toks = names.fillna("").str.split()
    frame = pd.DataFrame({"row": np.arange(len(names)), "token": toks.to_numpy()})
    frame = frame.explode("token", ignore_index=True).dropna(subset=["token"])
    frame = frame[frame["token"].str.len() >= 2]
    return frame.drop_duplicates(ignore_index=True)


def token_counts(frame: pd.DataFrame) -> pd.Series:
    """Number of records carrying each core-name token: what ``rare_name_token`` measures."""
    return _tokens(frame["n_core"].astype("string"))["token"].value_counts()


def block_keys(
    frame: pd.DataFrame, settings: BlockingSettings, counts: pd.Series | None = None
) -> BlockingKeys:
    """Blocking keys of every record of ``frame`` (positions 0..len-1) under the configured rules."""
    rows = np.arange(len(frame), dtype="int64")
    parts: list[BlockingKeys] = []
    rules = set(settings.rules)
    zip5 = frame["n_zip"].astype("string")
    if "zip_name_token" in rules or "rare_name_token" in rules:
        core_tokens = _tokens(frame["n_core"].astype("string"))
    if "zip_name_token" in rules:
        z = zip5.to_numpy()[core_tokens["row"].to_numpy()]
        vals = (
            pd.Series(z, dtype="string")
            + "|"
            + core_tokens["token"].astype("string").reset_index(drop=True)
        )
        _emit(core_tokens["row"].to_numpy(dtype="int64"), vals, "zip_name_token", parts)
    if "street" in rules:
        num = frame["n_number"].astype("string")
        _emit(rows, num + "|" + frame["n_street"].astype("string"), "street", parts)
        _emit(rows, num + "|" + zip5, "street", parts)
    if "phone" in rules:
        _emit(rows, frame["n_phone"].astype("string"), "phone", parts)
    if "identifier" in rules:
        for col in [c for c in frame.columns if c.startswith(NID_PREFIX)]:
            _emit(rows, col + "=" + frame[col].astype("string"), "identifier", parts)
    if "geo_cell" in rules:
        lat = frame["n_lat"].to_numpy(dtype="float64")
        lon = frame["n_lon"].to_numpy(dtype="float64")
        ok = ~(np.isnan(lat) | np.isnan(lon))
        step_lat = settings.geo_cell_metres / 111_320.0
        band = np.floor(np.where(ok, lat, 0.0)) + 0.5
        step_lon = settings.geo_cell_metres / (111_320.0 * np.cos(np.radians(band)))
        for shift in (0.0, 0.5):
            cy = np.floor(np.where(ok, lat, 0.0) / step_lat + shift).astype("int64")
            cx = np.floor(np.where(ok, lon, 0.0) / step_lon + shift).astype("int64")
            vals = pd.Series(
                np.char.add(np.char.add(cy.astype(str), f":{shift}:"), cx.astype(str)),
                dtype="string",
            ).where(ok, pd.NA)
            _emit(rows, vals, "geo_cell", parts)
    if "rare_name_token" in rules:
        if counts is None:
            counts = core_tokens["token"].value_counts()
        tok_counts = core_tokens["token"].map(counts).fillna(0).to_numpy()
        rare = core_tokens[(tok_counts >= 1) & (tok_counts <= settings.rare_token_max_records)]
        _emit(
            rare["row"].to_numpy(dtype="int64"),
            rare["token"].astype("string").reset_index(drop=True),
            "rare_name_token",
            parts,
        )
    if "city_name" in rules:
        first = frame["n_core"].astype("string").str.split(n=1).str[0].astype("string")
        _emit(rows, frame["n_city"].astype("string") + "|" + first, "city_name", parts)
    if not parts:
        empty = np.empty(0, dtype="int64")
        return BlockingKeys(empty, np.empty(0, dtype="uint64"), empty)
    return BlockingKeys(
        np.concatenate([p.rows for p in parts]),
        np.concatenate([p.keys for p in parts]),
        np.concatenate([p.bits for p in parts]),
    )


def ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The runs ``starts[i], starts[i]+1, ..., starts[i]+counts[i]-1``, concatenated (vectorized)."""
    total = int(counts.sum())
    first = np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(starts, counts) + (np.arange(total, dtype="int64") - first)


def candidate_pairs(
    frame: pd.DataFrame, settings: BlockingSettings, same_source_ok: dict[str, bool] | None = None
) -> pd.DataFrame:
    """Candidate pairs of records of ``frame``: columns ``l``, ``r`` (positions, l < r) and ``rules``.

    Pairs join records of different sources; records of one source are paired
    only when ``same_source_ok[source]`` is true (a source that may hold a
    facility more than once).
    """
    keys = block_keys(frame, settings)
    if len(keys.rows) == 0:
        return pd.DataFrame({"l": [], "r": [], "rules": []}, dtype="int64")
    name_rank = pd.factorize(frame["n_name"].astype("string").fillna(""), sort=True)[0].astype(
        "int64"
    )
    order = np.lexsort((name_rank[keys.rows], keys.keys))
    k = keys.keys[order]
    rows = keys.rows[order]
    bits = keys.bits[order]
    n = len(k)
    boundary = np.empty(n, dtype=bool)
    boundary[0] = True
    boundary[1:] = k[1:] != k[:-1]
    group = np.cumsum(boundary) - 1
    starts = np.flatnonzero(boundary)
    sizes = np.diff(np.append(starts, n))
    end = (starts + sizes)[group]
    pos = np.arange(n, dtype="int64")
    after = end - pos - 1
    all_pairs = sizes * (sizes - 1) // 2
    large = (all_pairs > settings.max_block_pairs)[group]
    counts = np.where(large, np.minimum(after, settings.window), after)
    # Each position with its following ``counts`` positions in the sorted keys.
    li, ri = np.repeat(pos, counts), ranges(pos + 1, counts)
    left, right = rows[li], rows[ri]
    pair_bits = bits[li]
    src = pd.factorize(frame["source"])[0]
    keep = src[left] != src[right]
    if same_source_ok:
        _, names = pd.factorize(frame["source"])
        allowed = np.array([same_source_ok.get(str(s), False) for s in names], dtype=bool)
        keep |= (src[left] == src[right]) & allowed[src[left]] & (left != right)
    left, right, pair_bits = left[keep], right[keep], pair_bits[keep]
    lo = np.minimum(left, right)
    hi = np.maximum(left, right)
    found = pd.DataFrame({"l": lo, "r": hi, "rules": pair_bits}).drop_duplicates(ignore_index=True)
    rules = found.groupby(["l", "r"], sort=True)["rules"].sum()
    return rules.reset_index()
