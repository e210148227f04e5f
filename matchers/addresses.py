"""Street-address parsing and normalization, plus city, ZIP and state normalizers.

The main path is vectorized: Arrow RE2 regular expressions and token tables from USPS
Publication 28 (:mod:`matchers.usps`), evaluated once per unique address.  Addresses
the cheap path cannot read (no leading street number and no PO box, but a digit
somewhere, e.g. ``"SUITE 5, 1234 MAIN ST"`` or ``"KAISER BLDG, 1234 MAIN ST"``) are
re-read with ``usaddress`` and the components it finds go through the same main path.

Conventions of :func:`parse_addresses` output (all ``string[pyarrow]``, ``pd.NA`` when
absent, never ``""``):

* ``street_number``: the leading house number digits only (``"1234-A"`` → ``"1234"``,
  ``"1234 1/2"`` → ``"1234"``, ``"4201 & 4211"`` → ``"4201"``, ``"ONE"`` → ``"1"``);
* ``street``: upper-case street with Publication 28 abbreviations applied to every token
  (``"NORTH MAIN STREET"`` → ``"N MAIN ST"``), ``SAINT`` → ``ST``, ``MOUNT`` → ``MT``,
  ``FORT`` → ``FT``, ordinal words as digits (``"FIRST"`` → ``"1ST"``), bare numbered
  streets given their ordinal suffix (``"24 ST"`` → ``"24TH ST"``), numbered routes in
  one form (``"STATE HIGHWAY 59"``, ``"CA 59"``, ``"SR 59"``, ``"US HWY 59"`` → ``"HWY 59"``;
  ``"INTERSTATE 5"``, ``"I-5"`` → ``"I 5"``);
* ``street_name``: ``street`` without leading/trailing directionals and the trailing
  suffix (``"N MAIN ST"`` → ``"MAIN"``), for comparing addresses where one side omits
  the suffix;
* ``unit``: Publication 28 designator and identifier (``"SUITE 200"``, ``"STE. #200"`` →
  ``"STE 200"``; ``"2ND FLOOR"`` → ``"FL 2"``); a bare ``"#200"`` stays ``"# 200"``
  because its designator is unknown; several units are kept in order (``"BLDG B STE 3"``);
* ``unit_id``: the identifier of the first unit (``"200"``), to compare ``"# 200"`` with
  ``"STE 200"``;
* ``po_box``: the box identifier (``"PO BOX 12"`` → ``"12"``);
* ``address_norm``: ``street_number + " " + street`` (either part alone if the other is
  missing); ``"PO BOX <n>"`` when there is no street at all;
* ``address_full``: ``address_norm`` followed by ``unit``.

``parse_addresses(x["address_full"])["address_full"]`` equals ``x["address_full"]``
(and likewise for ``address_norm``): normalized addresses are fixed points.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from matchers._numbers import CARDINAL_WORDS, NUMBER_WORDS, ORDINAL_WORDS, compound_numbers
from matchers._text import (
    STRING_DTYPE,
    alternation,
    apply_unique,
    ascii_upper,
    broadcast,
    contains,
    empty_to_null,
    fill_null,
    map_tokens,
    squash,
    sub,
    unique_text,
    where,
)
from matchers.usps import (
    DIRECTIONALS,
    STATE_CODES,
    STATE_NAMES,
    STREET_SUFFIXES,
    SUFFIX_ABBREVIATIONS,
    UNIT_DESIGNATORS,
)

__all__ = [
    "ADDRESS_COLUMNS",
    "address_parts",
    "normalize_city",
    "normalize_state",
    "parse_addresses",
    "zip5",
]

#: Columns of :func:`parse_addresses`, in order.
ADDRESS_COLUMNS = (
    "street_number",
    "street",
    "street_name",
    "unit",
    "unit_id",
    "po_box",
    "address_norm",
    "address_full",
)

_ORDINAL_WORDS = ORDINAL_WORDS
#: Cardinal words at the start of an address (a house number written out), marked.
_CARDINAL_MARKED = {"~" + k: v for k, v in CARDINAL_WORDS.items()}
_CARDINALS = alternation(list(CARDINAL_WORDS))
_LEADING_CARDINAL_RE = r"^(" + _CARDINALS + r") ([A-Z])"
#: A box's number written as a word (BOX ONE, BOX/TWO): made a digit before the box is
#: looked for, as it would be on a second pass.
_BOX_CARDINAL_RE = r"\b(BOX|BX|DRAWER)(?: ?(?:NO|NUMBER|#|/|-) ?| )(" + _CARDINALS + r")\b"

_STREET_MAP: dict[str, str] = {
    **STREET_SUFFIXES,
    **DIRECTIONALS,
    **_ORDINAL_WORDS,
    "SAINT": "ST",
    "STE": "ST",
    "SAINTE": "ST",
    "MOUNT": "MT",
    "FORT": "FT",
    "CNTY": "COUNTY",
    # common non-Publication-28 spellings
    "CAM": "CAMINO",
    "MLK": "MARTIN LUTHER KING",
}
_REST_MAP = {**DIRECTIONALS, **CARDINAL_WORDS}
_DESIGNATOR_RE = alternation([d for d in UNIT_DESIGNATORS if d != "#"])
_UNIT_MAP = dict(UNIT_DESIGNATORS)
_STATE_ROUTE_CODES = alternation(
    # NE is a directional and FL a floor designator far more often than a state route
    sorted(STATE_CODES - {"NE", "FL"}) + [name for name in STATE_NAMES if " " not in name]
)
#: State codes read as a route right after the house number (3376 N CA 59): not those that
#: the street words map to (MOUNT -> MT, COURT -> CT), which that rule runs before, so that
#: normalizing an address twice changes nothing (0 MOUNT 9 -> 0 MT 9, never 0 HWY 9).
_NUMBERED_ROUTE_CODES = alternation(
    sorted(STATE_CODES - {"NE", "FL"} - set(_STREET_MAP.values()))
    + [name for name in STATE_NAMES if " " not in name]
)
_SUFFIX_RE = alternation(sorted(SUFFIX_ABBREVIATIONS))
_DIRECTION_RE = r"(?:N|S|E|W|NE|NW|SE|SW)"

_PO_BOX_RE = (
    r"(?:^| )(?:(?:P ?O ?B(?:OX)?|POST OFFICE BOX|POST BOX|P ?O BX|BOX|P ?O DRAWER|DRAWER)"
    r" ?(?:NO |NUMBER )?#? ?)(?P<box>\d[0-9A-Z]*)\b"
)
_NUMBER_RE = (
    r"^(\d+)(?:[A-Z]\b|-[A-Z0-9]+\b|/\d+\b| \d+/\d+\b|"
    r" ?(?:&|AND|TO|THRU|THROUGH|-) ?\d+[A-Z]?\b)*"
)
_UNIT_SPLIT_RE = (
    r"^(?P<street>.*?)(?:^| )(?P<unit>(?:"
    + _DESIGNATOR_RE
    + r")(?: ?#)?(?: ?[A-Z]?\d[0-9A-Z]*| [A-Z]\b)"
    r"|# ?[0-9A-Z]+\b)(?P<tail>.*)$"
)

_UNIT_HINT_RE = r"#|(?:^| )" + _DESIGNATOR_RE + r"(?:[ #0-9]|$)"

_HIGHWAY_PATTERNS = (
    # numbered routes: STATE HWY 59, US HWY 101, CA HWY 1, SR 1, RTE 66, HWY 99 -> HWY n
    (
        r"\b(?:(?:STATE|ST|US|USA|US HWY|" + _STATE_ROUTE_CODES + r") (?:HWY|RTE|RT|HY)|STATE RD|"
        r"STATE|US|USA|HWY|RTE|RT|SR|HY) (\d+[A-Z]?)\b",
        r"HWY \1",
    ),
    (r"\b(?:INTERSTATE|IH|I) (\d+)\b", r"I \1"),
    (r"\b(?:CO|CTY|COUNTY) RD\b", "COUNTY RD"),
    (r"\bCR (\d+)\b", r"COUNTY RD \1"),
)


def _lit(text: str) -> pa.Scalar:
    return pa.scalar(text, pa.large_string())


def _clean_address(arr: pa.Array) -> pa.Array:
    arr = ascii_upper(arr)
    arr = pc.replace_substring(arr, pattern="'", replacement="")
    arr = pc.replace_substring(arr, pattern="#", replacement=" # ")
    arr = sub(arr, r"#(?: *#)+", "#", only_if="#")
    arr = sub(arr, r"[^A-Z0-9#&/ -]+", " ")
    # a slash is kept only inside fractions (1/2)
    arr = sub(arr, r"(^| )(\d+)/(\d+)\b", r"\1\2~\3", only_if="/")
    arr = pc.replace_substring(arr, pattern="/", replacement=" ")
    arr = pc.replace_substring(arr, pattern="~", replacement="/")
    # a hyphen is kept only right after the house number (1234-A, 4201-4211)
    arr = sub(arr, r"^ *(\d+) *- *([A-Z0-9])", r"\1=\2", only_if="-")
    arr = pc.replace_substring(arr, pattern="-", replacement=" ")
    arr = pc.replace_substring(arr, pattern="=", replacement="-")
    # an ampersand is kept only between numbers (4201 & 4211)
    arr = sub(arr, r"(\d) *& *(\d)", r"\1 ~ \2", only_if="&")
    arr = pc.replace_substring(arr, pattern="&", replacement=" ")
    arr = pc.replace_substring(arr, pattern="~", replacement="&")
    arr = sub(arr, r"^[&/ ]+|[&/ ]+$", "")
    # a house number glued to a word: 1234MAIN -> 1234 MAIN (1234A stays attached)
    arr = sub(arr, r"^(\d+)([A-Z]{2,})", r"\1 \2")
    arr = squash(arr)
    return squash(arr)


def _ordinalize(arr: pa.Array) -> pa.Array:
    """Bare numbers before a suffix get an ordinal suffix (ordinal words are digits
    already)."""
    # every rule needs a digit followed by a space: test that once, cheaply
    return where(arr, pc.match_substring_regex(arr, pattern=r"\d "), _ordinalize_all)


def _ordinalize_all(arr: pa.Array) -> pa.Array:
    follow = r" (" + _SUFFIX_RE + r")\b"
    arr = sub(arr, r"(^| )(\d*1[0-9])" + follow, r"\1\2TH \3")
    arr = sub(arr, r"(^| )(\d*[02-9]|)1" + follow, r"\1\21ST \3")
    arr = sub(arr, r"(^| )(\d*[02-9]|)2" + follow, r"\1\22ND \3")
    arr = sub(arr, r"(^| )(\d*[02-9]|)3" + follow, r"\1\23RD \3")
    arr = sub(arr, r"(^| )(\d*[04-9])" + follow, r"\1\2TH \3")
    return arr


def _normalize_street(arr: pa.Array) -> pa.Array:
    arr = squash(sub(arr, r"[-/&#]", " "))
    # initials: M L K -> MLK
    arr = sub(arr, r"\b([A-Z]) ([A-Z]) ([A-Z])(?: ([A-Z]))?(?: ([A-Z]))?\b", r"\1\2\3\4\5")
    arr = map_tokens(arr, _STREET_MAP)
    # every route rule needs a digit or RD: test that once, cheaply
    arr = where(arr, pc.match_substring_regex(arr, pattern=r"\d|RD"), _routes)
    arr = _ordinalize(arr)
    return squash(arr)


def _routes(arr: pa.Array) -> pa.Array:
    # the route rule until nothing changes: STATE US 1 -> STATE HWY 1 -> HWY 1
    for _ in range(8):
        routed = sub(arr, *_HIGHWAY_PATTERNS[0])
        if routed.equals(arr):
            break
        arr = routed
    for pattern, replacement in _HIGHWAY_PATTERNS[1:]:
        arr = sub(arr, pattern, replacement)
    return arr


def _normalize_unit(arr: pa.Array) -> pa.Array:
    arr = squash(sub(arr, r"[/&]", " "))
    arr = sub(arr, r"\b(" + _DESIGNATOR_RE + r")(\d)", r"\1 \2")
    arr = map_tokens(arr, _UNIT_MAP)
    arr = sub(arr, r"#(?: #)+", "#")
    arr = sub(arr, r"([A-Z]) # ?", r"\1 ")
    arr = sub(arr, r"-", "")
    return squash(arr)


def _struct_field(arr: pa.Array, pattern: str, field: str) -> pa.Array:
    extracted = pc.extract_regex(arr, pattern=pattern)
    return pc.struct_field(extracted, field)


def _join(left: pa.Array, right: pa.Array) -> pa.Array:
    """``left + " " + right`` where both exist, else whichever exists (null if neither)."""
    left = empty_to_null(left)
    right = empty_to_null(right)
    both = pc.binary_join_element_wise(left, right, _lit(" "))
    return pc.coalesce(both, left, right)


def _parse_arrow(raw: pa.Array) -> dict[str, pa.Array]:
    arr = _clean_address(raw)

    arr = compound_numbers(arr)  # TWENTY FIRST -> 21ST, TWENTY NINE -> 29
    arr = map_tokens(arr, _ORDINAL_WORDS)

    # PO box (every spelling has a B or DRAWER: without them, there is no box to look for)
    arr = map_tokens(
        sub(arr, _BOX_CARDINAL_RE, r"\1 ~\2", only_if=("B", "DRAWER")), _CARDINAL_MARKED
    )
    if bool(pc.any(contains(arr, ("B", "DRAWER"))).as_py()):
        po_box = _struct_field(arr, _PO_BOX_RE, "box")
    else:
        po_box = pa.nulls(len(arr), pa.large_string())
    for _ in range(8):  # until no box is left: BOX BOX1 2 -> BOX 2 -> ""
        unboxed = squash(sub(arr, _PO_BOX_RE, " ", only_if=("B", "DRAWER")))
        if unboxed.equals(arr):
            break
        arr = unboxed

    # leading number words: ONE MEDICAL PLAZA -> 1 MEDICAL PLAZA
    arr = map_tokens(sub(arr, _LEADING_CARDINAL_RE, r"~\1 \2"), _CARDINAL_MARKED)

    # floors written before their designator (never the house number): 2ND FLOOR -> FL 2
    arr = sub(arr, r" (\d+)(?:ST|ND|RD|TH) (?:FLOOR|FLR|FL)( [^0-9]|$)", r" FL \1\2")

    # street number and its attachments (1234-A, 1234 1/2, 4201 & 4211)
    number = _struct_field(arr, r"^(?P<n>\d+)", "n")
    rest = squash(sub(arr, _NUMBER_RE, "", dense=True))

    rest = squash(sub(rest, r"[-/&]", " "))
    # route numbers written together with their type: HIGHWAY166, SR1, I5
    rest = sub(rest, r"\b(HWY|HIGHWAY|HY|RTE|ROUTE|SR|US|I|IH|CR)(\d+)\b", r"\1 \2")

    # directionals first: a unit like STE N must look the same before and after; and
    # number words after the house number as digits (FIFTEEN MILE RD, STE ONE)
    rest = map_tokens(rest, _REST_MAP)
    # state-coded routes directly after the number: 3376 N CA 59 -> 3376 N HWY 59; once
    # the separators, directionals and number words are in their final form (CA-59,
    # NORTH CA 59, MD/ONE), so that normalizing twice finds the same routes
    rest = where(
        rest,
        pc.and_(pc.is_valid(number), pc.match_substring_regex(rest, pattern=r"\d")),
        lambda a: sub(
            a, r"^((?:" + _DIRECTION_RE + r" )?)" + _NUMBERED_ROUTE_CODES + r" (\d+)\b", r"\1HWY \2"
        ),
    )
    maybe_unit = fill_null(pc.match_substring_regex(rest, pattern=_UNIT_HINT_RE), False)
    street = rest
    unit_raw = pa.nulls(len(rest), pa.large_string())
    if bool(pc.any(maybe_unit).as_py()):
        candidates = pc.filter(rest, maybe_unit)
        split = pc.extract_regex(candidates, pattern=_UNIT_SPLIT_RE)
        has_unit = pc.is_valid(split)
        unit_part = pc.if_else(
            has_unit,
            pc.binary_join_element_wise(
                pc.struct_field(split, "unit"), pc.struct_field(split, "tail"), _lit("")
            ),
            pa.scalar(None, pa.large_string()),
        )
        street_part = pc.if_else(has_unit, pc.struct_field(split, "street"), candidates)
        street = pc.replace_with_mask(rest, maybe_unit, street_part)
        unit_raw = pc.replace_with_mask(unit_raw, maybe_unit, unit_part)

    street = empty_to_null(_normalize_street(fill_null(street, "")))
    # a missing unit normalizes to "" like an empty one: only present units are normalized
    unit = empty_to_null(where(fill_null(unit_raw, ""), pc.is_valid(unit_raw), _normalize_unit))
    unit_id = _struct_field(fill_null(unit, ""), r"^\S+ (?P<id>[0-9A-Z]+)", "id")
    return _assemble(number, street, unit, unit_id, po_box)


#: The placeholder a leading house number is parsed as (see :func:`_parse_by_street`).
_PLACEHOLDER = "0"
#: The output columns that start with the house number.
_NUMBERED = ("street_number", "address_norm", "address_full")


def _parse_by_street(raw: pa.Array) -> dict[str, pa.Array]:
    """:func:`_parse_arrow` of distinct addresses, each distinct *rest after the house
    number* parsed once: the addresses on one street differ only in their numbers.

    Every rule of the main path reads a leading run of digits as digits, never by its
    value, so ``<digits><rest>`` parses as :data:`_PLACEHOLDER` ``<rest>`` does, with the
    digits in the placeholder's place in the columns that start with the number. A
    value whose placeholder does not come back whole as its street number (the cleaning
    glued more digits to it, as in ``1'2 MAIN``) is parsed as it is.
    """
    lead = _struct_field(raw, r"^(?P<n>\d+)", "n")
    if lead.null_count == len(raw):
        return _parse_arrow(raw)
    key = pc.replace_substring_regex(raw, pattern=r"^\d+", replacement=_PLACEHOLDER)
    encoded = pc.dictionary_encode(key)
    by_key = _parse_arrow(encoded.dictionary)
    key_restores = fill_null(pc.equal(by_key["street_number"], _PLACEHOLDER), False)
    restore = pc.and_(pc.is_valid(lead), pc.take(key_restores, encoded.indices))
    parts = {col: pc.take(values, encoded.indices) for col, values in by_key.items()}
    for col in _NUMBERED:
        after = pc.utf8_slice_codeunits(by_key[col], start=len(_PLACEHOLDER))
        numbered = pc.binary_join_element_wise(lead, pc.take(after, encoded.indices), _lit(""))
        parts[col] = pc.if_else(restore, numbered, parts[col])
    whole = pc.and_(pc.is_valid(lead), pc.invert(restore))
    if bool(pc.any(whole).as_py()):
        direct = _parse_arrow(pc.filter(raw, whole))
        parts = {col: pc.replace_with_mask(v, whole, direct[col]) for col, v in parts.items()}
    return parts


def _assemble(
    number: pa.Array, street: pa.Array, unit: pa.Array, unit_id: pa.Array, po_box: pa.Array
) -> dict[str, pa.Array]:
    number = empty_to_null(number)
    po_box = empty_to_null(po_box)
    address_norm = _join(number, street)
    box_text = pc.binary_join_element_wise(_lit("PO BOX"), po_box, _lit(" "))
    address_norm = pc.coalesce(address_norm, box_text)
    address_full = _join(address_norm, unit)
    street_name = _street_name(street)
    return {
        "street_number": number,
        "street": street,
        "street_name": street_name,
        "unit": unit,
        "unit_id": empty_to_null(unit_id),
        "po_box": po_box,
        "address_norm": address_norm,
        "address_full": address_full,
    }


_SUFFIXES = pa.array(sorted(SUFFIX_ABBREVIATIONS), type=pa.large_string())


def _street_name(street: pa.Array) -> pa.Array:
    s = fill_null(street, "")
    core = sub(s, r"^" + _DIRECTION_RE + r" (\S)", r"\1")
    core = sub(core, r"(\S) " + _DIRECTION_RE + r"$", r"\1")
    # The suffix rule, (\S) <suffix>$ -> \1, rewrites only values whose last word is a
    # suffix (suffixes are single words): look that word up, then drop it where a
    # non-space character precedes its space, without the suffixes' regular expression.
    last = _struct_field(core, r"(?P<w>[^ ]*)$", "w")
    core = where(core, pc.is_in(last, value_set=_SUFFIXES), lambda a: sub(a, r"(\S) [^ ]+$", r"\1"))
    core = empty_to_null(core)
    return pc.coalesce(core, empty_to_null(s))


# --- usaddress re-reading of hard addresses ------------------------------------------

_USADDRESS_ORDER = (
    "StreetNamePreDirectional",
    "StreetNamePreModifier",
    "StreetNamePreType",
    "StreetName",
    "StreetNamePostType",
    "StreetNamePostDirectional",
    "StreetNamePostModifier",
    "SubaddressType",
    "SubaddressIdentifier",
    "OccupancyType",
    "OccupancyIdentifier",
    "USPSBoxType",
    "USPSBoxID",
)


_USADDRESS_LOCK = threading.Lock()


def _reread_with_usaddress(values: list[str]) -> list[str]:
    """Rebuild each address from the components ``usaddress`` recognizes.

    The result is a plain ``number street unit`` string for the main path; when
    ``usaddress`` finds no all-digit house number the original value is returned.
    """
    import usaddress  # imported lazily: only the hard minority needs it

    # usaddress tags with one shared CRF tagger: a batch normalized in parts on threads
    # takes turns.
    with _USADDRESS_LOCK:
        return [_reread_one(usaddress, value) for value in values]


def _reread_one(usaddress: Any, value: str) -> str:
    """One address rebuilt from its ``usaddress`` components (see :func:`_reread_with_usaddress`)."""
    try:
        tagged, _kind = usaddress.tag(value)
    except (usaddress.RepeatedLabelError, ValueError, TypeError):
        try:
            tagged = {}
            for token, label in usaddress.parse(value):
                tagged[label] = (tagged[label] + " " + token) if label in tagged else token
        except Exception:  # the parser can fail on pathological text
            return value
    number = re.match(r"\d+", str(tagged.get("AddressNumber", "")).strip())
    if number is None or re.search(
        r"(?:^|\s)(?:HWY|RTE|RT|SR|US|I|IH|CR|STATE|[A-Z]{2})\s?" + number.group() + r"\b",
        value,
    ):
        # no number, or a route number (CA 162 & BIGGAR LN) taken for a house number
        return value
    parts = [number.group()]
    for label in _USADDRESS_ORDER:
        if label in tagged and label != "AddressNumber":
            parts.append("PO BOX" if label == "USPSBoxType" else str(tagged[label]))
    return " ".join(parts)


def parse_addresses(s: pd.Series) -> pd.DataFrame:
    """Parse and normalize street-address lines (see module docstring for columns).

    Returns a DataFrame with the index of ``s`` and columns :data:`ADDRESS_COLUMNS`, all
    ``string[pyarrow]`` with ``pd.NA`` for absent parts.  A missing or empty input gives
    a row of ``pd.NA``.  Work is done once per unique input value.
    """
    return pd.DataFrame(address_parts(s), index=s.index)


def address_parts(s: pd.Series, columns: tuple[str, ...] = ADDRESS_COLUMNS) -> dict[str, pd.Series]:
    """The ``columns`` of :func:`parse_addresses` (by default all of them) as Series on the
    index of ``s``, without assembling a DataFrame."""
    codes, uniques = unique_text(s)
    if len(uniques) == 0:
        return {c: pd.Series([pd.NA] * len(s), index=s.index, dtype=STRING_DTYPE) for c in columns}
    parts = _parse_by_street(uniques)

    # hard addresses: no house number but a digit somewhere (besides a PO box)
    hard_mask = pc.and_(
        pc.is_null(parts["street_number"]),
        fill_null(pc.match_substring_regex(parts["address_full"], pattern=r"\d"), False),
    )
    hard_idx = np.flatnonzero(hard_mask.to_numpy(zero_copy_only=False))
    if len(hard_idx):
        parts = _resolve_hard(parts, hard_idx)
    return {col: broadcast(codes, parts[col], s.index, col) for col in columns}


def _resolve_hard(parts: dict[str, pa.Array], hard_idx: np.ndarray) -> dict[str, pa.Array]:
    """Re-read hard rows with ``usaddress`` and replace those where it finds a number.

    ``usaddress`` reads the main path's own output (first ``address_full``, then
    ``address_norm`` plus the unit), never the raw text: re-parsing an output asks
    ``usaddress`` the same questions again, so normalized addresses stay fixed points.
    """
    idx = pa.array(hard_idx)
    full = pc.take(parts["address_full"], idx).to_pylist()
    norm = pc.take(parts["address_norm"], idx).to_pylist()
    unit = pc.take(parts["unit"], idx).to_pylist()
    first = _reread_with_usaddress([str(v) for v in full])
    rebuilt: list[str | None] = []
    retry_pos: list[int] = []
    for i, (orig, got) in enumerate(zip(full, first, strict=True)):
        if got != orig:
            rebuilt.append(got)
        elif norm[i] is not None and norm[i] != orig:
            rebuilt.append(None)
            retry_pos.append(i)
        else:
            rebuilt.append(None)
    if retry_pos:
        second = _reread_with_usaddress([str(norm[i]) for i in retry_pos])
        for i, got in zip(retry_pos, second, strict=True):
            if got != norm[i]:
                rebuilt[i] = got if unit[i] is None else f"{got} {unit[i]}"
    sub_parts = _parse_arrow(pa.array([r or "" for r in rebuilt], type=pa.large_string()))
    # boxes are found by the main path already: keep re-reads that found a number
    found = np.asarray(
        pc.is_valid(sub_parts["street_number"]).to_numpy(zero_copy_only=False), dtype=bool
    )
    take_idx = hard_idx[found]
    if not len(take_idx):
        return parts
    out = dict(parts)
    for col in ADDRESS_COLUMNS:
        if col == "po_box":  # the box was read from the original text
            continue
        base = parts[col].to_numpy(zero_copy_only=False).astype(object)
        base[take_idx] = np.asarray(sub_parts[col].to_numpy(zero_copy_only=False), dtype=object)[
            found
        ]
        out[col] = pa.array(base, type=pa.large_string())
    return out


# --- city, ZIP, state ---------------------------------------------------------------

_CITY_MAP: dict[str, str] = {
    "ST": "SAINT",
    "STE": "SAINTE",
    "MT": "MOUNT",
    "MTN": "MOUNTAIN",
    "FT": "FORT",
    "PT": "POINT",
    "HTS": "HEIGHTS",
    "HGTS": "HEIGHTS",
    "SPGS": "SPRINGS",
    "SPRGS": "SPRINGS",
    "BCH": "BEACH",
    "VLY": "VALLEY",
    "VLG": "VILLAGE",
    "CTY": "CITY",
    "JCT": "JUNCTION",
    "TWP": "TOWNSHIP",
    "LK": "LAKE",
    "PK": "PARK",
    "CYN": "CANYON",
    "IS": "ISLAND",
    "PRT": "PORT",
    "SO": "SOUTH",
    "NO": "NORTH",
}


_CITY_TOKENS = {**_CITY_MAP, **NUMBER_WORDS}


def _city_arrow(arr: pa.Array) -> pa.Array:
    arr = ascii_upper(arr)
    arr = sub(arr, r"'", "")
    arr = squash(sub(arr, r"[^A-Z0-9]+", " "))
    arr = sub(arr, r"^CITY OF (\S)", r"\1")
    arr = sub(arr, r"^TOWN OF (\S)", r"\1")
    # a city and its "... City" form are one place (CULVER CITY, CULVER)
    arr = sub(arr, r"^(\S.*?)(?: CITY)+$", r"\1", only_if=" CITY")
    # numbers as digits: TWENTYNINE PALMS, TWENTY-NINE PALMS -> 29 PALMS
    arr = compound_numbers(arr)
    arr = map_tokens(arr, _CITY_TOKENS)
    arr = sub(arr, r"^N (\S)", r"NORTH \1")
    arr = sub(arr, r"^S (\S)", r"SOUTH \1")
    arr = sub(arr, r"^E (\S)", r"EAST \1")
    arr = sub(arr, r"^W (\S)", r"WEST \1")
    arr = sub(arr, r"\bMC (\S)", r"MC\1")
    return empty_to_null(arr)


def normalize_city(s: pd.Series) -> pd.Series:
    """Upper-case city name: punctuation removed, ``ST``/``MT``/``FT`` spelled out
    (``SAINT``, ``MOUNT``, ``FORT``), common abbreviations expanded (``HTS`` → ``HEIGHTS``),
    a leading single-letter directional spelled out (``N HOLLYWOOD`` → ``NORTH HOLLYWOOD``),
    ``CITY OF`` and a trailing ``CITY`` dropped (``CULVER CITY`` and ``CULVER`` are one
    place), number words as digits (``TWENTYNINE PALMS`` → ``29 PALMS``).  Idempotent; ``pd.NA`` when missing or empty.
    """
    return apply_unique(s, _city_arrow)


def _zip_arrow(arr: pa.Array) -> pa.Array:
    arr = sub(pc.utf8_upper(arr), r"[\s-]", "")
    # A number written as text by a column once held as numbers: "94501.0".
    arr = sub(arr, r"^(\d+)\.0+$", r"\1", only_if=".0")
    arr = sub(arr, r"^(?:USA|US)?(?:[A-Z]{2})?", "")
    digits = _struct_field(arr, r"^(?P<z>\d{4,5}|\d{8,9})$", "z")
    digits = fill_null(digits, "")
    length = pc.utf8_length(digits)
    padded = pc.if_else(
        pc.or_(pc.equal(length, 4), pc.equal(length, 8)),
        pc.binary_join_element_wise(_lit("0"), digits, _lit("")),
        digits,
    )
    five = pc.utf8_slice_codeunits(padded, 0, 5)
    bad = pc.or_(pc.equal(five, "00000"), pc.less(pc.utf8_length(five), 5))
    return pc.if_else(bad, pa.scalar(None, pa.large_string()), five)


def zip5(s: pd.Series) -> pd.Series:
    """Five-digit ZIP code text, or ``pd.NA`` when the value is not a ZIP.

    Accepts ``"94501"``, ``"94501-1234"``, ``"945011234"``, ``94501`` / ``94501.0`` (also as
    the text ``"94501.0"``, as a column once held as numbers is written) and values
    that lost a leading zero in a numeric column (``"2134"`` → ``"02134"``, 8-digit
    ZIP+4 likewise).  ``"00000"`` and any other length are invalid.  Output is always
    exactly five digits or ``pd.NA``.
    """
    return apply_unique(s, _zip_arrow)


_STATE_LOOKUP: dict[str, str] = {**STATE_NAMES, **{code: code for code in STATE_CODES}}


def _state_arrow(arr: pa.Array) -> pa.Array:
    arr = ascii_upper(arr)
    arr = squash(sub(arr, r"[^A-Z]+", " "))
    arr = sub(arr, r"^(?:STATE OF|COMMONWEALTH OF) ", "")
    keys = pa.array(list(_STATE_LOOKUP), type=pa.large_string())
    vals = pa.array(list(_STATE_LOOKUP.values()), type=pa.large_string())
    pos = pc.index_in(arr, value_set=keys)
    return pc.take(vals, pos)


def normalize_state(s: pd.Series) -> pd.Series:
    """Two-letter USPS state/territory code from a code or a name (``"California"``,
    ``"CA"``, ``"Calif."`` → ``"CA"``); ``pd.NA`` when missing or unrecognized.  Idempotent.
    """
    return apply_unique(s, _state_arrow)
