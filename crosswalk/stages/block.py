"""Blocking stage: normalized records in, candidate pairs out.

Each rule emits blocking keys per record. Records sharing a key are paired. A
block whose all-to-all pairing would exceed ``max_block_pairs`` is not paired
all-to-all: within it, records are sorted by name and each is paired with its
``window`` following neighbours (a sorted neighbourhood), so no step is
quadratic in a block's size. The work is linear in the number of keys plus the
number of pairs produced.

A key is a tuple of values (ZIP and name token, street number and street, …).
Every column is factorized once (string work only on its distinct values), so
a key is a tuple of integer codes: the build groups records by those codes
with integer sorts, and :func:`block_keys` hashes the tuples to 64-bit keys
that are stable from one frame to another (the matcher looks a query's keys up
among a published crosswalk's).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, fields
from functools import partial
from itertools import chain
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crosswalk.stages.kernel.codes import pack, ranks, renumbered_in_order, run_starts, sorted_codes
from crosswalk.stages.kernel.columns import Columns
from crosswalk.stages.kernel.parallel import Parallel
from crosswalk.vocabulary import BLOCKING_RULES, NID_PREFIX
from matchers._text import as_string

#: Bit of each rule in a pair's ``rules`` bitmask.
RULE_BITS = {name: 1 << i for i, name in enumerate(BLOCKING_RULES)}
_RULE_INDEX = {name: i for i, name in enumerate(BLOCKING_RULES)}
#: A pair code (:func:`pair_codes`) holds the rule's index in its lowest this many bits.
RULE_SHIFT = max(len(BLOCKING_RULES) - 1, 1).bit_length()

_T = TypeVar("_T")


@dataclass(frozen=True)
class BlockParams:
    """Blocking's settings, as plain data: the plan fills them from the config's
    ``[blocking]`` table (:meth:`of`), the matcher from a published build's."""

    #: The rules that make keys (names of :data:`~crosswalk.vocabulary.BLOCKING_RULES`).
    rules: tuple[str, ...]
    #: Blocks with more candidate pairs than this are not paired all-to-all: each record is
    #: paired with its ``window`` nearest neighbours by name.
    max_block_pairs: int
    window: int
    #: ``zip_name_token`` keys each record by its ZIP with this many of its core-name
    #: tokens, the rarest first (0: with every token).
    zip_name_tokens: int
    #: A name token is "rare" when at most this many records carry it.
    rare_token_max_records: int
    #: ``rare_name`` keeps a full name's block only when at most this many records carry it.
    rare_name_max_records: int
    #: Side of a geographic cell, in metres.
    geo_cell_metres: float

    @classmethod
    def of(cls, settings: Any) -> BlockParams:
        """The params of anything that has them as attributes (the config's settings)."""
        values = {f.name: getattr(settings, f.name) for f in fields(cls)}
        values["rules"] = tuple(values["rules"])
        return cls(**values)


@dataclass
class BlockingKeys:
    rows: np.ndarray  # int64 record positions
    keys: np.ndarray  # uint64 hashed keys (a function of the rule and the key's values)


@dataclass
class _Column:
    """One component of a rule's key tuple: per key, a code into the distinct values."""

    codes: np.ndarray  # int64, one per key of the rule
    uniques: np.ndarray  # the distinct values: object (text) or int64

    def hashes(self) -> np.ndarray:
        """A 64-bit hash per distinct value. Only the matcher's keys need them, so they are
        computed when asked, not when the build pairs its candidates by codes."""
        if self.uniques.dtype == object:
            return _string_hashes(self.uniques)
        return self.uniques.view("uint64")


@dataclass
class _RuleKeys:
    """The keys one rule emits: record positions and the key tuple's components."""

    rule: str
    rows: np.ndarray  # int64
    columns: list[_Column]

    def codes(self) -> np.ndarray:
        """One non-negative int64 per key, equal exactly when the key tuples are equal."""
        return pack(((col.codes, len(col.uniques)) for col in self.columns), len(self.rows))

    def hashes(self) -> np.ndarray:
        """A 64-bit hash per key, a function of the rule and the key's values only."""
        h = np.full(len(self.rows), _string_hashes([self.rule])[0], dtype="uint64")
        for col in self.columns:
            h = _mix(h * _GOLDEN + col.hashes()[col.codes])
        return h


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(h: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer (wrapping uint64 arithmetic)."""
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def _string_hashes(values: object) -> np.ndarray:
    arr = np.asarray(values, dtype=object)
    if len(arr) == 0:
        return np.empty(0, dtype="uint64")
    return pd.util.hash_array(arr, categorize=False).astype("uint64")


def _factorize(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes (-1 where missing) and the distinct values (object array) of a text column."""
    codes, uniques = pd.factorize(as_string(values), use_na_sentinel=True)
    return codes.astype("int64"), np.asarray(uniques, dtype=object)


def _text_column(codes: np.ndarray, uniques: np.ndarray) -> _Column:
    return _Column(codes, np.asarray(uniques, dtype=object))


def _int_column(values: np.ndarray) -> _Column:
    codes, uniques = pd.factorize(values)
    return _Column(codes.astype("int64"), np.asarray(uniques, dtype="int64"))


@dataclass
class _Tokens:
    """Core-name tokens (two characters or more, each once per record), in name order,
    and each name's first word; codes index one vocabulary."""

    rows: np.ndarray  # int64 record position per (record, token)
    codes: np.ndarray  # int64 token code per (record, token)
    vocabulary: np.ndarray  # object array of distinct tokens
    first: np.ndarray  # int64 per record: code of its name's first word (any length) or -1


#: Text that has only printable ASCII: its only whitespace is the space.
_NOT_PLAIN = r"[^\x20-\x7e]"


def _words(texts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The words of each text, as ``str.split()`` finds them: (text index, word code, words).

    Texts of printable ASCII only are split by Arrow on spaces; any other set of texts
    by Python's ``str.split``.
    """
    arrow = pa.array(texts, type=pa.large_string())
    if len(arrow) and not pc.any(pc.match_substring_regex(arrow, _NOT_PLAIN)).as_py():
        lists = pc.split_pattern(arrow, " ")
        flat = pc.list_flatten(lists)
        present = pc.not_equal(flat, "")
        owner = pc.list_parent_indices(lists).filter(present).to_numpy().astype("int64")
        encoded = pc.dictionary_encode(flat.filter(present))
        codes = encoded.indices.to_numpy(zero_copy_only=False).astype("int64")
        words = encoded.dictionary.to_numpy(zero_copy_only=False).astype(object)
        return owner, codes, words
    split = [t.split() for t in texts]
    counts = np.fromiter(map(len, split), dtype="int64", count=len(split))
    flat_words = np.fromiter(chain.from_iterable(split), dtype=object, count=int(counts.sum()))
    if not len(flat_words):
        return np.empty(0, "int64"), np.empty(0, "int64"), flat_words
    codes, words = pd.factorize(flat_words)
    owner = np.repeat(np.arange(len(texts), dtype="int64"), counts)
    return owner, np.asarray(codes, dtype="int64"), np.asarray(words, dtype=object)


def _tokens(names: pd.Series, factorized: tuple[np.ndarray, np.ndarray] | None = None) -> _Tokens:
    """Split each distinct name once; expand to (record, token) with vectorized index
    arithmetic. ``factorized``: the names' :func:`_factorize`, where the caller has it."""
    name_codes, uniques = factorized if factorized is not None else _factorize(names)
    owner, flat_codes, vocabulary = _words(uniques)
    n_words = np.bincount(owner, minlength=len(uniques)).astype("int64")
    # A name's first word, whatever its length (``city_name``).
    first_of_name = np.full(len(uniques), -1, dtype="int64")
    has_words = n_words > 0
    first_of_name[has_words] = flat_codes[(np.cumsum(n_words) - n_words)[has_words]]
    # Tokens of two characters or more, each once per name (its first occurrence).
    keep = (np.fromiter(map(len, vocabulary), dtype="int64", count=len(vocabulary)) >= 2)[
        flat_codes
    ]
    packed = owner * max(len(vocabulary), 1) + flat_codes
    ordered = np.sort(packed)
    if (ordered[1:] == ordered[:-1]).any():  # a word repeated within a name
        order = np.argsort(packed, kind="stable")
        repeated = np.zeros(len(packed), dtype=bool)
        repeated[order[1:]] = packed[order[1:]] == packed[order[:-1]]
        keep &= ~repeated
    owner, flat_codes = owner[keep], flat_codes[keep]
    n_tok = np.bincount(owner, minlength=len(uniques)).astype("int64")
    start = np.cumsum(n_tok) - n_tok
    present = np.flatnonzero(name_codes >= 0)
    per_row = n_tok[name_codes[present]]
    rows = np.repeat(present.astype("int64"), per_row)
    codes = flat_codes[ranges(start[name_codes[present]], per_row)]
    first = np.append(first_of_name, -1)[name_codes]
    return _Tokens(rows, codes, vocabulary, first)


def token_counts(frame: pd.DataFrame) -> pd.Series:
    """Number of records carrying each core-name token: what ``rare_name_token`` measures."""
    tokens = _tokens(frame["n_core"])
    counts = np.bincount(tokens.codes, minlength=len(tokens.vocabulary))
    carried = counts > 0  # the vocabulary also holds one-letter first words
    index = pd.Index(tokens.vocabulary[carried], dtype="str", name="token")
    return pd.Series(counts[carried], index=index, name="count").sort_values(
        ascending=False, kind="stable"
    )


def _records_per_token(tokens: _Tokens, counts: pd.Series | None) -> np.ndarray:
    """Per vocabulary code: the records carrying the token, counted in the frame itself or
    taken from ``counts`` (0 for a token ``counts`` does not hold)."""
    if counts is None:
        return np.bincount(tokens.codes, minlength=len(tokens.vocabulary))
    at = counts.index.get_indexer(pd.Index(tokens.vocabulary, dtype="str"))
    # Position -1 (a token ``counts`` lacks) reads the appended 0, also when it is empty.
    return np.append(counts.to_numpy(dtype="int64"), 0)[at]


def _rarest(tokens: _Tokens, per_token: np.ndarray, k: int) -> np.ndarray:
    """Per (record, token): whether the token is among its record's ``k`` rarest, fewest
    records first, ties in the order the words appear in the name. A token no record
    carries (a query's word the crosswalk lacks) comes last: its key could find nothing."""
    rows = tokens.rows
    # A record with at most k tokens keeps them all: only the others are ranked.
    per_record = np.bincount(rows)
    out = per_record[rows] <= k
    ranked = np.flatnonzero(~out)
    if not len(ranked):
        return out
    carried = per_token[tokens.codes[ranked]]
    carried = np.where(carried > 0, carried, np.iinfo(np.int64).max)
    # ``tokens.rows`` ascend, each record's tokens in word order: a stable sort by count
    # within each record's run gives its tokens rarest first.
    order = np.lexsort((carried, rows[ranked]))
    sorted_rows = rows[ranked][order]
    first = np.searchsorted(sorted_rows, sorted_rows, side="left")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64) - first
    out[ranked] = rank < k
    return out


def _now_or_on(pool: Parallel | None, fn: Callable[[], _T]) -> Future[_T]:
    """``fn()`` submitted to ``pool``, or run now when there is none."""
    if pool is not None:
        return pool.submit(fn)
    done: Future[_T] = Future()
    done.set_result(fn())
    return done


class _Shared:
    """What several rules' keys are made of, each computed once: the name tokens (with the
    number of records carrying each) and the ZIP codes. With a ``pool``, both are
    submitted to it at once, before any rule that waits for them. ``columns``: the
    records' columns as the comparisons convert them, where the caller has them: a
    column converted there is not factorized again."""

    def __init__(
        self,
        frame: pd.DataFrame,
        settings: BlockParams,
        counts: pd.Series | None,
        pool: Parallel | None = None,
        columns: Columns | None = None,
    ) -> None:
        self.frame = frame
        self.settings = settings
        self.columns = columns
        rules = set(settings.rules)

        def tokens() -> tuple[_Tokens, np.ndarray]:
            found = _tokens(frame["n_core"], self.factorized("n_core"))
            if "rare_name_token" in rules or settings.zip_name_tokens:
                return found, _records_per_token(found, counts)
            return found, np.zeros(0, dtype="int64")

        self._tokens = (
            _now_or_on(pool, tokens)
            if rules & {"zip_name_token", "rare_name_token", "city_name"}
            else None
        )
        self._zip = (
            _now_or_on(pool, lambda: self.factorized("n_zip"))
            if rules & {"zip_name_token", "street"}
            else None
        )

    def factorized(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """:func:`_factorize` of the frame's ``column``, from its converted form where the
        comparisons' columns hold it (missing values are ``-1``; blank ones are values)."""
        if self.columns is not None and column in self.columns:
            texts = self.columns.text(column)
            n = len(texts.values) - 1  # the last value stands for the missing ones
            return np.where(texts.codes == n, -1, texts.codes), texts.values[:n]
        return _factorize(self.frame[column])

    def tokens(self) -> tuple[_Tokens, np.ndarray]:
        assert self._tokens is not None
        return self._tokens.result()

    def zip(self) -> tuple[np.ndarray, np.ndarray]:
        assert self._zip is not None
        return self._zip.result()


def _keys(rule: str, at: np.ndarray, columns: list[_Column], ok: np.ndarray) -> _RuleKeys | None:
    """The keys at the positions where ``ok`` holds (None when there are none)."""
    if not ok.any():
        return None
    return _RuleKeys(rule, at[ok], [_Column(c.codes[ok], c.uniques) for c in columns])


def _zip_name_token_keys(shared: _Shared) -> _RuleKeys | None:
    tokens, per_token = shared.tokens()
    zip_codes, zip_uniques = shared.zip()
    z = zip_codes[tokens.rows]
    ok = z >= 0
    if shared.settings.zip_name_tokens:
        ok &= _rarest(tokens, per_token, shared.settings.zip_name_tokens)
    return _keys(
        "zip_name_token",
        tokens.rows,
        [_text_column(z, zip_uniques), _text_column(tokens.codes, tokens.vocabulary)],
        ok,
    )


def _street_keys(shared: _Shared) -> _RuleKeys | None:
    frame = shared.frame
    rows = np.arange(len(frame), dtype="int64")
    num_codes, num_uniques = shared.factorized("n_number")
    street_codes, street_uniques = shared.factorized("n_street")
    zip_codes, zip_uniques = shared.zip()
    # Street and ZIP share one vocabulary: both follow the number in one key space.
    place_of, place_uniques = pd.factorize(np.concatenate([street_uniques, zip_uniques]))
    place_of = np.append(place_of.astype("int64"), -1)  # code -1 (missing) stays missing
    place_codes = np.concatenate(
        [place_of[street_codes], place_of[len(street_uniques) + zip_codes]]
    )
    place_codes[np.concatenate([street_codes, zip_codes]) < 0] = -1
    num2 = np.concatenate([num_codes, num_codes])
    return _keys(
        "street",
        np.concatenate([rows, rows]),
        [
            _text_column(num2, num_uniques),
            _text_column(place_codes, np.asarray(place_uniques, dtype=object)),
        ],
        (num2 >= 0) & (place_codes >= 0),
    )


def _phone_keys(shared: _Shared) -> _RuleKeys | None:
    frame = shared.frame
    codes, uniques = shared.factorized("n_phone")
    empty = np.flatnonzero(uniques == "")
    ok = (codes >= 0) & ~np.isin(codes, empty)
    return _keys("phone", np.arange(len(frame), dtype="int64"), [_text_column(codes, uniques)], ok)


def _identifier_keys(shared: _Shared) -> _RuleKeys | None:
    frame = shared.frame
    n = len(frame)
    id_cols = [c for c in frame.columns if c.startswith(NID_PREFIX)]
    if not id_cols:
        return None
    values = pd.concat([as_string(frame[c]) for c in id_cols], ignore_index=True)
    codes, uniques = _factorize(values)
    which = np.repeat(np.arange(len(id_cols), dtype="int64"), n)
    return _keys(
        "identifier",
        np.tile(np.arange(n, dtype="int64"), len(id_cols)),
        [
            _text_column(which, np.asarray(id_cols, dtype=object)),
            _text_column(codes, uniques),
        ],
        codes >= 0,
    )


def _geo_cell_keys(shared: _Shared) -> _RuleKeys | None:
    frame = shared.frame
    n = len(frame)
    rows = np.arange(n, dtype="int64")
    lat = frame["n_lat"].to_numpy(dtype="float64")
    lon = frame["n_lon"].to_numpy(dtype="float64")
    ok = ~(np.isnan(lat) | np.isnan(lon))
    if not ok.any():  # no coordinates: no keys (and no cells computed for nothing)
        return None
    step_lat = shared.settings.geo_cell_metres / 111_320.0
    band = np.floor(np.where(ok, lat, 0.0)) + 0.5
    step_lon = shared.settings.geo_cell_metres / (111_320.0 * np.cos(np.radians(band)))
    cells = [
        (
            np.floor(np.where(ok, lat, 0.0) / step_lat + shift).astype("int64"),
            np.floor(np.where(ok, lon, 0.0) / step_lon + shift).astype("int64"),
        )
        for shift in (0.0, 0.5)
    ]
    grid = np.repeat(np.arange(2, dtype="int64"), n)
    return _keys(
        "geo_cell",
        np.concatenate([rows, rows]),
        [
            _int_column(grid),
            _int_column(np.concatenate([cells[0][0], cells[1][0]])),
            _int_column(np.concatenate([cells[0][1], cells[1][1]])),
        ],
        np.concatenate([ok, ok]),
    )


def _rare_name_token_keys(shared: _Shared) -> _RuleKeys | None:
    tokens, per_token = shared.tokens()
    rare = (per_token >= 1) & (per_token <= shared.settings.rare_token_max_records)
    return _keys(
        "rare_name_token",
        tokens.rows,
        [_text_column(tokens.codes, tokens.vocabulary)],
        rare[tokens.codes] if len(tokens.codes) else np.zeros(0, dtype=bool),
    )


def _city_name_keys(shared: _Shared) -> _RuleKeys | None:
    tokens, _ = shared.tokens()
    frame = shared.frame
    city_codes, city_uniques = shared.factorized("n_city")
    return _keys(
        "city_name",
        np.arange(len(frame), dtype="int64"),
        [
            _text_column(city_codes, city_uniques),
            _text_column(tokens.first, tokens.vocabulary),
        ],
        (city_codes >= 0) & (tokens.first >= 0),
    )


def _rare_name_keys(shared: _Shared) -> _RuleKeys | None:
    """The full normalized name, statewide, where few records carry it (a facility that
    moved to another city keeps its name). A per-block rule: a name's block is kept only
    when it holds at most ``rare_name_max_records`` records (a group count)."""
    codes, uniques = shared.factorized("n_name")
    carried = np.bincount(codes[codes >= 0], minlength=len(uniques))
    small = np.append(carried <= shared.settings.rare_name_max_records, False)
    blank = np.append(uniques == "", True)  # code -1 (missing) reads the appended entries
    return _keys(
        "rare_name",
        np.arange(len(codes), dtype="int64"),
        [_text_column(codes, uniques)],
        small[codes] & ~blank[codes],
    )


#: How each rule makes its keys, in :data:`BLOCKING_RULES` order.
_RULE_KEYS: dict[str, Callable[[_Shared], _RuleKeys | None]] = {
    "zip_name_token": _zip_name_token_keys,
    "street": _street_keys,
    "phone": _phone_keys,
    "identifier": _identifier_keys,
    "geo_cell": _geo_cell_keys,
    "rare_name_token": _rare_name_token_keys,
    "city_name": _city_name_keys,
    "rare_name": _rare_name_keys,
}
assert tuple(_RULE_KEYS) == BLOCKING_RULES


def _configured(settings: BlockParams) -> list[str]:
    """The configured rules, in :data:`BLOCKING_RULES` order."""
    wanted = set(settings.rules)
    return [r for r in BLOCKING_RULES if r in wanted]


def _rule_keys(
    frame: pd.DataFrame, settings: BlockParams, counts: pd.Series | None
) -> list[_RuleKeys]:
    """The keys of every configured rule, in rule order; within a rule, in record order."""
    shared = _Shared(frame, settings, counts)
    found = (_RULE_KEYS[rule](shared) for rule in _configured(settings))
    return [keys for keys in found if keys is not None]


def block_keys(
    frame: pd.DataFrame, settings: BlockParams, counts: pd.Series | None = None
) -> BlockingKeys:
    """Blocking keys of every record of ``frame`` (positions 0..len-1) under the configured rules.

    ``counts`` (see :func:`token_counts`) decides which name tokens are rare; by
    default they are counted in ``frame`` itself.
    """
    parts = _rule_keys(frame, settings, counts)
    if not parts:
        return BlockingKeys(np.empty(0, dtype="int64"), np.empty(0, dtype="uint64"))
    return BlockingKeys(
        np.concatenate([p.rows for p in parts]), np.concatenate([p.hashes() for p in parts])
    )


def keys_and_order(
    frame: pd.DataFrame, settings: BlockParams, columns: Columns | None = None
) -> tuple[list[tuple[str, np.ndarray, np.ndarray]], tuple[np.ndarray, np.ndarray]]:
    """What :func:`candidate_pairs` pairs records by, for a runner that pairs them
    elsewhere (by :func:`rule_pair_codes`): per configured rule with keys, (rule, record
    positions, key codes: equal exactly when the keys are), and the name order (the order
    inside a block): each record's rank in it, and the records in it."""
    shared = _Shared(frame, settings, None, None, columns)
    found = []
    for rule in _configured(settings):
        part = _RULE_KEYS[rule](shared)
        if part is not None:
            found.append((rule, part.rows, part.codes()))
    return found, _name_order(frame, columns)


def ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The runs ``starts[i], starts[i]+1, ..., starts[i]+counts[i]-1``, concatenated (vectorized)."""
    total = int(counts.sum())
    # Each run's start, less the run's offset in the output, plus the output position.
    return np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(
        total, dtype="int64"
    )


def _block_pairs(
    code: np.ndarray,
    rows: np.ndarray,
    rank: np.ndarray,
    by_rank: np.ndarray,
    settings: BlockParams,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Pairs (left, right record positions) of the records sharing a key code, in batches:
    batch ``d`` pairs each record with the one ``d`` places after it in its key's order.

    Within a key, records are taken by ``rank`` (name order, then position): one integer
    sort of ``code`` and ``rank`` packed together. A record is paired with all the records
    after it, or in a block too large to pair all-to-all with its ``window`` next ones.
    The batches are gathers and arithmetic only, which run outside the GIL.
    """
    shift = max(len(by_rank).bit_length(), 1)
    if len(code) and int(code.max()) >= (1 << (62 - shift)):
        code = pd.factorize(code)[0].astype("int64")
    packed = np.sort((code << shift) | rank[rows])
    k = packed >> shift
    ordered = by_rank[packed & ((1 << shift) - 1)]
    del packed
    n = len(k)
    boundary = np.empty(n, dtype=bool)
    boundary[:1] = True
    boundary[1:] = k[1:] != k[:-1]
    del k
    # Per key: its block (the group of its key code), and how many keys follow it there.
    small: type[np.signedinteger[Any]] = np.int32 if n < 1 << 31 else np.int64
    group: np.ndarray = np.cumsum(boundary, dtype=small)
    group -= 1
    starts = np.flatnonzero(boundary)
    del boundary
    sizes = np.diff(np.append(starts, n))
    after = (starts + sizes).astype(small)[group]
    after -= np.arange(1, n + 1, dtype=small)
    large = (sizes * (sizes - 1) // 2 > settings.max_block_pairs)[group]
    del group, starts, sizes
    # How many records after each one it is paired with.
    counts = np.where(large, np.minimum(after, settings.window), after)
    del after, large
    most = int(counts.max()) if n else 0
    if most == 0:
        return
    # The positions by their count, most first: batch d takes the first ``at_least[d]``.
    rev = most - counts
    if most < 1 << 16:
        rev = rev.astype(np.uint16)  # sorted by radix
    by_count = np.argsort(rev, kind="stable")
    at_least = np.cumsum(np.bincount(counts, minlength=most + 1)[::-1])[::-1]
    del rev, counts
    for d in range(1, most + 1):
        at = by_count[: at_least[d]]
        yield ordered[at], ordered[at + d]


def _name_order(frame: pd.DataFrame, columns: Columns | None) -> tuple[np.ndarray, np.ndarray]:
    """Each record's rank in name order (a missing name reads as empty; ties by position),
    and the records in that order: the order inside a block. ``columns``: as for
    :class:`_Shared`."""
    if columns is not None and "n_name" in columns:
        texts = columns.text("n_name")
        values, codes = texts.values, texts.codes  # the last value ("") stands for missing
        real_empty = np.flatnonzero(values[:-1] == "")
        if len(real_empty):  # one code for "" whether given or missing
            codes = np.where(codes == len(values) - 1, real_empty[0], codes)
        name_rank = renumbered_in_order(codes, pa.array(values, type=pa.large_string()))[0]
    else:
        name_rank = sorted_codes(as_string(frame["n_name"]).fillna(""))[0]
    by_rank = np.argsort(name_rank, kind="stable").astype("int64")
    return ranks(by_rank), by_rank


#: Below this many pair codes, their union is sorted on one thread.
_PARALLEL_SORT_MIN = 1 << 20

#: The rules' pair codes are sorted and deduplicated by ranges of this many left records,
#: one range after another, so that the working memory of that step is a range's share
#: of the codes and not several copies of all of them.
RANGE_RECORDS = 1_250_000


def _sorted(parts: list[np.ndarray], pool: Parallel | None) -> np.ndarray:
    """The concatenated ``parts``, sorted; ``parts`` is emptied (its arrays freed once
    concatenated). The values are partitioned in place at their median, and the lower and
    upper halves sorted at once on two threads."""
    values = np.concatenate(parts) if len(parts) != 1 else parts[0]
    parts.clear()
    if len(values) < _PARALLEL_SORT_MIN:
        values.sort()
        return values
    half = len(values) // 2
    values.partition(half)
    for done in [_now_or_on(pool, values[:half].sort), _now_or_on(pool, values[half:].sort)]:
        done.result()
    return values


class _Ranges:
    """Pair codes kept apart by ranges of their left record (``n`` records, ``width``
    each): :meth:`add` files a batch of codes, :meth:`merged` hands each range's codes
    over, emptied, in order. A pair code grows with its left record, so each range's
    codes lie between two bounds and follow the previous range's."""

    def __init__(self, n: int, width: int, rule_shift: int) -> None:
        count = max(-(-n // max(width, 1)), 1)
        self.bounds = np.arange(1, count, dtype="int64") * (width * n << rule_shift)
        self.parts: list[list[np.ndarray]] = [[] for _ in range(count)]
        self._lock = threading.Lock()

    def add(self, codes: np.ndarray) -> None:
        if len(self.parts) == 1:
            pieces = [codes]
        else:
            at = np.searchsorted(self.bounds, codes, side="right")
            pieces = [codes[at == i] for i in range(len(self.parts))]
        with self._lock:
            for kept, piece in zip(self.parts, pieces, strict=True):
                if len(piece):
                    kept.append(piece)

    def merged(self) -> Iterator[list[np.ndarray]]:
        while self.parts:
            yield self.parts.pop(0)


def record_sources(
    frame: pd.DataFrame, same_source_ok: dict[str, bool] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Each record's source as a small code (one byte where it fits: the pairs look their
    records' sources up at random), and per code whether two records of that source may
    be paired (``same_source_ok``). Raises ValueError when a record has no source."""
    src, src_names = pd.factorize(frame["source"])
    if (src < 0).any():
        raise ValueError("every record needs a source")
    src = src.astype(np.min_scalar_type(max(len(src_names) - 1, 0)))
    allowed = np.array(
        [bool((same_source_ok or {}).get(str(s), False)) for s in src_names], dtype=bool
    )
    return src, allowed


def pair_codes(
    left: np.ndarray, right: np.ndarray, src: np.ndarray, allowed: np.ndarray, rule: str
) -> np.ndarray:
    """The pairs ``left``–``right`` that may be candidates (records of two sources, or
    two records of a source in ``allowed``), each coded as one integer: ``(min * n +
    max) << RULE_SHIFT | rule's index``, for ``n`` records (``len(src)``). Sorted, equal
    pairs are neighbours and their codes follow their left, then right, record."""
    n = len(src)
    assert 2 * max(n, 1).bit_length() + RULE_SHIFT < 63, "too many records for int64 pair codes"
    src_left = src[left]
    keep = src_left != src[right]
    if allowed.any():
        keep |= allowed[src_left] & (left != right)
    left, right = left[keep], right[keep]
    pair = np.minimum(left, right)
    pair *= n
    pair += np.maximum(left, right)
    pair <<= RULE_SHIFT
    pair |= _RULE_INDEX[rule]
    return pair


def rule_pair_codes(
    rule: str,
    code: np.ndarray,
    rows: np.ndarray,
    order: tuple[np.ndarray, np.ndarray],
    settings: BlockParams,
    src: np.ndarray,
    allowed: np.ndarray,
) -> Iterator[np.ndarray]:
    """The pair codes (:func:`pair_codes`) of one rule's keys (``code`` of record
    ``rows``), in batches: the records sharing a key, paired all-to-all or, in a block
    past ``max_block_pairs``, each with its ``window`` next by name (``order``: each
    record's rank in name order, and the records in that order). Whole blocks give the
    same pairs wherever they are paired."""
    rank, by_rank = order
    for left, right in _block_pairs(code, rows, rank, by_rank, settings):
        yield pair_codes(left, right, src, allowed, rule)


def merged_pair_codes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted pair codes (:func:`pair_codes`) as the distinct pairs (``l * n + r``, in
    order) and each pair's rules (the bits of :data:`RULE_BITS` of the rules that found
    it, as uint8). ``codes`` is consumed."""
    if not len(codes):
        return codes.astype("int64"), np.empty(0, dtype=np.uint8)
    rule_bit = np.left_shift(np.uint8(1), (codes & ((1 << RULE_SHIFT) - 1)).astype(np.uint8))
    codes >>= RULE_SHIFT
    first = run_starts(codes)
    return codes[first], np.bitwise_or.reduceat(rule_bit, first)


def candidate_pairs(
    frame: pd.DataFrame,
    settings: BlockParams,
    same_source_ok: dict[str, bool] | None = None,
    columns: Columns | None = None,
    *,
    parallel: Parallel | None = None,
) -> pd.DataFrame:
    """Candidate pairs of records of ``frame``: columns ``l``, ``r`` (positions, l < r) and ``rules``.

    Pairs join records of different sources; records of one source are paired
    only when ``same_source_ok[source]`` is true (a source that may hold a
    facility more than once). Pairs are sorted by ``l``, then ``r``; ``rules``
    is the bitmask (:data:`RULE_BITS`, smallest unsigned dtype) of the rules that
    found the pair.

    The rules run as tasks of the ``parallel`` handle, when given (their work is in numpy
    and Arrow, mostly outside the GIL; the runner gives it two threads), else one after
    the other; the pairs are the same either way. Tasks are submitted in the order they
    are needed: a task only waits for earlier ones. ``columns``: the records'
    columns as the comparisons convert them (:func:`~crosswalk.stages.compare.record_columns`),
    where the caller has them, perhaps being converted on another thread: blocking then
    reads the columns both need from them instead of factorizing them again. The pairs
    the rules find are deduplicated by ranges of :data:`RANGE_RECORDS` left records, one
    after another.
    """
    n = len(frame)
    src, allowed = record_sources(frame, same_source_ok)
    shared = _Shared(frame, settings, None, parallel, columns)
    ordering = _now_or_on(parallel, lambda: _name_order(frame, columns))
    found = _Ranges(n, RANGE_RECORDS, RULE_SHIFT)

    def pairs_of(rule: str) -> None:
        """The rule's pair codes (:func:`pair_codes`), filed by range."""
        part = _RULE_KEYS[rule](shared)
        if part is None:
            return
        code, rows = part.codes(), part.rows
        del part  # its columns' codes, once packed into one code per key
        rank, by_rank = ordering.result()
        for codes in rule_pair_codes(rule, code, rows, (rank, by_rank), settings, src, allowed):
            found.add(codes)

    tasks = [_now_or_on(parallel, partial(pairs_of, rule)) for rule in _configured(settings)]
    for task in tasks:
        task.result()
    del tasks
    pairs: list[np.ndarray] = []
    bits: list[np.ndarray] = []
    for codes in found.merged():
        if not codes:
            continue
        unique, rule_bits = merged_pair_codes(_sorted(codes, parallel))
        pairs.append(unique)
        bits.append(rule_bits)
        del unique, rule_bits
    # ``l`` and ``r`` are written straight into the one (2, pairs) block that pandas keeps
    # them in: a frame made of two separate arrays would copy them into one.
    both = np.empty((2, sum(map(len, pairs))), dtype="int64")
    at = 0
    while pairs:
        unique = pairs.pop(0)
        np.floor_divide(unique, max(n, 1), out=both[0, at : at + len(unique)])
        np.remainder(unique, max(n, 1), out=both[1, at : at + len(unique)])
        at += len(unique)
        del unique
    out = pd.DataFrame(both.T, columns=["l", "r"], copy=False)
    rules = np.concatenate(bits) if bits else np.empty(0, dtype=np.uint8)
    out["rules"] = rules.astype(np.min_scalar_type(max(RULE_BITS.values()) * 2 - 1))
    return out


def block(
    frame: pd.DataFrame,
    columns: Columns,
    *,
    settings: BlockParams,
    same_source_ok: dict[str, bool],
    parallel: Parallel,
) -> pd.DataFrame:
    """The plan's blocking stage: :func:`candidate_pairs`, reading the columns it shares
    with the comparisons from their conversion (under way on another lane), not
    factorizing them again."""
    return candidate_pairs(frame, settings, same_source_ok, columns, parallel=parallel)


def pair_count(pairs: pd.DataFrame) -> int:
    """The number of candidate pairs (recorded in the build's counts)."""
    return len(pairs)
