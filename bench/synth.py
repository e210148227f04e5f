"""Synthetic facility listings of two departments, with a known truth, at any size.

Usage::

    .venv/bin/python bench/synth.py --n 100000 --out /tmp/synth-100k [--seed 7]

writes into ``--out``:

* ``dept_a.csv`` and ``dept_b.csv``: ``n`` records each;
* ``truth.csv``: the pairs (``dept_a_id``, ``dept_b_id``) of records of one facility;
* ``config.toml``: a crosswalk config for the two files, shaped like
  ``bench/blind.toml`` (no identifier columns);
* ``manifest.json``: the sizes, the seed and the generator's own timing.

How the records are made
------------------------
Facilities are drawn first, then each department writes down its own record of
each facility it lists: 80 % of the facilities appear in both listings, 20 % of
each listing appears in that listing only.

* Places: real (ZIP, city) pairs sampled, with their frequencies, from the
  embedded HCAI listing, so the density per ZIP is realistic (and grows with n).
* Names are built from vocabularies of real name tokens (those of the embedded
  listings that are not facility-type words) and a type phrase (HOME HEALTH,
  HOSPICE, DIALYSIS CENTER...). 20 % of facilities belong to chains whose name
  repeats across sites (DAVITA, KAISER FOUNDATION, FRESENIUS KIDNEY CARE...),
  with a place qualifier on most sites and none on some.
* Addresses: a street number, an optional directional, a real street name of the
  embedded listings and a USPS suffix, with an optional suite. 10 % of facilities
  sit in multi-tenant buildings (a heavy-tailed number of tenants per address).
* The two departments' conventions differ: department A writes upper case,
  abbreviated street suffixes (AVE, ST) and directionals, "STE", ZIP+4 at times,
  legal suffixes (INC, LLC) and formatted phones; department B writes title case
  for 40 % of records, spelled-out suffixes and directionals (AVENUE, NORTH),
  "Suite" or "#", abbreviations of names (HOSP, MED CTR, CTR, ST for SAINT), a
  "LEGAL NAME LLC DBA NAME" form on 3 %, bare phone digits, and different
  facility-type labels (e.g. "Community Clinic" for "PRIMARY CARE CLINIC").
* Noise: one random character edit (substitution, deletion, insertion or
  transposition) in 4 % (A) / 8 % (B) of names, 3 % / 6 % of addresses, 1 % / 2 %
  of cities; missing phones (15 % / 45 %) and ZIPs (1 % / 3 %); 2 % of shared
  facilities moved (B has a new address) and 2 % renamed (B has a new name).

Generation is vectorized with numpy and pandas; only the character edits loop in
Python, over the few records that get one. One million records per side take
well under a minute.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
HCAI_CSV = ROOT / "data" / "hcai_current_healthcare_facility_listing_2020-10.csv"
TRUTH_CSV = ROOT / "bench" / "data" / "cdph2020_hcai2020_same_facility.csv"

LEFT, RIGHT = "dept_a", "dept_b"
SHARED_SHARE = 0.8


@dataclass(frozen=True)
class FacilityType:
    """A facility class: each department's label, the phrases names end with, a weight."""

    left_label: str
    right_label: str
    phrases: tuple[str, ...]
    weight: float


TYPES = (
    FacilityType(
        "HOME HEALTH AGENCY",
        "Home Health Agency",
        ("HOME HEALTH", "HOME HEALTH CARE", "HOME HEALTH SERVICES", "HOME CARE"),
        0.22,
    ),
    FacilityType(
        "HOSPICE", "Hospice", ("HOSPICE", "HOSPICE CARE", "HOSPICE AND PALLIATIVE CARE"), 0.15
    ),
    FacilityType(
        "PRIMARY CARE CLINIC",
        "Community Clinic",
        ("MEDICAL CLINIC", "HEALTH CENTER", "COMMUNITY CLINIC", "FAMILY MEDICAL CENTER"),
        0.19,
    ),
    FacilityType(
        "SKILLED NURSING FACILITY",
        "Skilled Nursing Facility",
        (
            "CARE CENTER",
            "POST ACUTE",
            "HEALTHCARE CENTER",
            "NURSING AND REHABILITATION CENTER",
            "CONVALESCENT HOSPITAL",
        ),
        0.11,
    ),
    FacilityType(
        "CHRONIC DIALYSIS CLINIC",
        "Chronic Dialysis Clinic",
        ("DIALYSIS", "DIALYSIS CENTER", "KIDNEY CENTER"),
        0.07,
    ),
    FacilityType(
        "GENERAL ACUTE CARE HOSPITAL",
        "General Acute Care Hospital",
        ("HOSPITAL", "MEDICAL CENTER", "COMMUNITY HOSPITAL", "MEMORIAL HOSPITAL"),
        0.05,
    ),
    FacilityType(
        "SURGICAL CLINIC",
        "Surgical Clinic",
        ("SURGERY CENTER", "SURGICAL CENTER", "AMBULATORY SURGERY CENTER"),
        0.06,
    ),
    FacilityType(
        "CONGREGATE LIVING HEALTH FACILITY",
        "Congregate Living Health Facility",
        ("CONGREGATE LIVING", "CARE HOME"),
        0.04,
    ),
    FacilityType(
        "INTERMEDIATE CARE FACILITY-DD/H/N/CN/IID",
        "ICF/Dev. Disabled",
        ("HOME", "RESIDENCE", "HOUSE"),
        0.08,
    ),
    FacilityType(
        "ADULT DAY HEALTH CARE",
        "Adult Day Health Care",
        ("ADULT DAY HEALTH CARE CENTER", "ADULT DAY HEALTH CENTER"),
        0.03,
    ),
)

#: Chains: (brand, facility-type index). Their names repeat across many sites.
CHAINS = (
    ("DAVITA", 4),
    ("FRESENIUS KIDNEY CARE", 4),
    ("US RENAL CARE", 4),
    ("SATELLITE HEALTHCARE", 4),
    ("KAISER FOUNDATION", 5),
    ("KAISER PERMANENTE", 2),
    ("PLANNED PARENTHOOD", 2),
    ("SUTTER", 2),
    ("DIGNITY HEALTH", 2),
    ("CLINICA SIERRA VISTA", 2),
    ("VITAS HEALTHCARE", 1),
    ("AMEDISYS", 0),
    ("ADDUS HEALTHCARE", 0),
    ("BRIGHTSTAR CARE", 0),
    ("ACCENTCARE", 0),
    ("PROVIDENCE", 1),
    ("CRESTWOOD", 3),
    ("ENSIGN", 3),
    ("TELECARE", 7),
    ("AMERICAN FORK", 8),
)

STREET_SUFFIXES = ("ST", "AVE", "BLVD", "DR", "RD", "WAY", "LN", "CT", "PL", "PKWY", "HWY", "CIR")
SUFFIX_WEIGHTS = (0.26, 0.24, 0.14, 0.12, 0.09, 0.05, 0.03, 0.02, 0.015, 0.015, 0.01, 0.01)
SUFFIX_LONG = {
    "ST": "STREET",
    "AVE": "AVENUE",
    "BLVD": "BOULEVARD",
    "DR": "DRIVE",
    "RD": "ROAD",
    "WAY": "WAY",
    "LN": "LANE",
    "CT": "COURT",
    "PL": "PLACE",
    "PKWY": "PARKWAY",
    "HWY": "HIGHWAY",
    "CIR": "CIRCLE",
}
DIRECTIONS = ("N", "S", "E", "W")
DIRECTION_LONG = {"N": "NORTH", "S": "SOUTH", "E": "EAST", "W": "WEST"}
LEGAL_SUFFIXES = (", INC.", ", INC", " INC", ", LLC", " LLC", ", L.P.", " CORP")
AREA_CODES = (
    "209",
    "213",
    "310",
    "323",
    "408",
    "415",
    "510",
    "530",
    "559",
    "562",
    "619",
    "626",
    "650",
    "661",
    "707",
    "714",
    "760",
    "805",
    "818",
    "831",
    "858",
    "909",
    "916",
    "925",
    "949",
    "951",
)

_TYPE_WORDS = {w for t in TYPES for p in t.phrases for w in p.split()} | {
    "INC",
    "LLC",
    "CORP",
    "LP",
    "THE",
    "OF",
    "AND",
    "DBA",
    "CENTER",
    "CLINIC",
    "HEALTH",
    "CARE",
    "MEDICAL",
    "HOSPITAL",
    "SERVICES",
    "HOME",
    "NURSING",
    "DIALYSIS",
    "HOSPICE",
    "FACILITY",
    "INCORPORATED",
    "COMPANY",
    "GROUP",
    "SAINT",
    "ST",
    "FOR",
    "AT",
    "IN",
}


# --------------------------------------------------------------------------- vocabularies


@dataclass
class Vocab:
    """Vocabularies drawn from the embedded listings."""

    zip_city: pd.DataFrame  # columns zip, city: one row per HCAI record (so frequency-weighted)
    streets: np.ndarray  # street names (no number, no suffix), frequency-weighted
    tokens: np.ndarray  # distinctive name tokens, frequency-weighted
    saints: np.ndarray  # tokens seen after SAINT / ST in real names


def load_vocab() -> Vocab:
    """Read the vocabularies from the embedded HCAI listing and the truth file's names."""
    hcai = pd.read_csv(
        HCAI_CSV,
        dtype=str,
        keep_default_na=False,
        encoding="cp1252",
        usecols=["FACILITY_NAME", "DBA_ADDRESS1", "DBA_CITY", "DBA_ZIP_CODE"],
    )
    truth = pd.read_csv(TRUTH_CSV, dtype=str, keep_default_na=False, usecols=["FACNAME", "ADDRESS"])
    zip5 = hcai["DBA_ZIP_CODE"].str.extract(r"^(\d{5})", expand=False)
    zc = pd.DataFrame({"zip": zip5, "city": hcai["DBA_CITY"].str.upper().str.strip()})
    zc = zc[zc["zip"].notna() & (zc["city"] != "")].reset_index(drop=True)

    addresses = pd.concat([hcai["DBA_ADDRESS1"], truth["ADDRESS"]]).str.upper()
    suffixes = "|".join(STREET_SUFFIXES + tuple(SUFFIX_LONG.values()))
    street = addresses.str.extract(
        rf"^\d+\s+(?:[NSEW]\s+)?([A-Z][A-Z ]*?[A-Z])\s+(?:{suffixes})\b", expand=False
    ).dropna()
    street = street[street.str.len().between(3, 24)]

    names = pd.concat([hcai["FACILITY_NAME"], truth["FACNAME"]]).str.upper()
    words = names.str.replace(r"[^A-Z ]+", " ", regex=True).str.split().explode().dropna()
    words = words[(words.str.len() >= 3) & ~words.isin(_TYPE_WORDS)]
    saints = names.str.extract(r"\b(?:SAINT|ST\.?)\s+([A-Z]{3,})", expand=False).dropna()
    saints = saints[~saints.isin(_TYPE_WORDS)]
    return Vocab(
        zc,
        street.to_numpy(dtype=object),
        words.to_numpy(dtype=object),
        saints.to_numpy(dtype=object),
    )


# --------------------------------------------------------------------------- helpers


def _pick(
    rng: np.random.Generator,
    values: Sequence[str] | np.ndarray,
    n: int,
    p: Sequence[float] | None = None,
) -> np.ndarray:
    arr = np.asarray(values, dtype=object)
    prob = None if p is None else np.asarray(p, dtype=float) / np.sum(p)
    return arr[rng.choice(len(arr), size=n, p=prob)]


def _s(values: np.ndarray | pd.Series) -> pd.Series:
    return pd.Series(values, dtype=object).reset_index(drop=True)


def _join(*parts: pd.Series) -> pd.Series:
    """Join string parts with single spaces, skipping empty parts."""
    out = parts[0].astype(str)
    for part in parts[1:]:
        part = part.astype(str)
        out = out + np.where(part == "", "", " ") + part
    return out.str.strip()


_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def typo(values: pd.Series, mask: np.ndarray, rng: np.random.Generator) -> pd.Series:
    """One random character edit (substitute, delete, insert, transpose) where ``mask``."""
    idx = np.flatnonzero(mask)
    if not len(idx):
        return values
    out = values.copy()
    ops = rng.integers(0, 4, size=len(idx))
    pos_u = rng.random(len(idx))
    chars = rng.integers(0, 26, size=len(idx))
    edited = []
    for text, op, u, c in zip(out.iloc[idx].to_numpy(), ops, pos_u, chars, strict=True):
        s = str(text)
        if len(s) < 3:
            edited.append(s)
            continue
        i = 1 + int(u * (len(s) - 2))  # keep the first character
        letter = _LETTERS[c] if s[i].isupper() or not s[i].isalpha() else _LETTERS[c].lower()
        if op == 0:
            s = s[:i] + letter + s[i + 1 :]
        elif op == 1:
            s = s[:i] + s[i + 1 :]
        elif op == 2:
            s = s[:i] + letter + s[i:]
        else:
            s = s[: i - 1] + s[i] + s[i - 1] + s[i + 1 :]
        edited.append(s)
    out.iloc[idx] = edited
    return out


def _title(values: pd.Series, mask: np.ndarray) -> pd.Series:
    out = values.copy()
    out[mask] = out[mask].str.title()
    return out


# --------------------------------------------------------------------------- facilities


def facilities(n_entities: int, vocab: Vocab, rng: np.random.Generator) -> pd.DataFrame:
    """Draw ``n_entities`` facilities: canonical name parts, type, place, address, phone."""
    n = n_entities
    type_idx = rng.choice(
        len(TYPES), size=n, p=np.array([t.weight for t in TYPES]) / sum(t.weight for t in TYPES)
    )

    # Places and addresses.
    place = vocab.zip_city.iloc[rng.integers(0, len(vocab.zip_city), size=n)].reset_index(drop=True)
    number = np.exp(rng.uniform(np.log(10), np.log(30000), size=n)).astype(np.int64)  # log-uniform
    direction = np.where(rng.random(n) < 0.12, _pick(rng, DIRECTIONS, n), "")
    street = _pick(rng, vocab.streets, n)
    suffix = _pick(rng, STREET_SUFFIXES, n, SUFFIX_WEIGHTS)
    unit = np.where(rng.random(n) < 0.22, rng.integers(100, 999, size=n).astype(str), "")

    # Multi-tenant buildings: 10 % of facilities share an address with others.
    tenant = rng.random(n) < 0.10
    n_tenants = int(tenant.sum())
    if n_tenants:
        n_buildings = max(1, n_tenants // 6)
        # Heavy tail: most buildings hold a few tenants, some hold dozens.
        weights = 1.0 / np.arange(1, n_buildings + 1) ** 0.6
        building = rng.choice(n_buildings, size=n_tenants, p=weights / weights.sum())
        anchor = np.flatnonzero(tenant)[rng.permutation(n_tenants)][:n_buildings]
        anchor = anchor[np.minimum(building, len(anchor) - 1)]
        t_idx = np.flatnonzero(tenant)
        for arr in (number, direction, street, suffix):
            arr[t_idx] = arr[anchor]
        place.iloc[t_idx] = place.iloc[anchor].to_numpy()
        unit[t_idx] = np.where(
            rng.random(n_tenants) < 0.6, rng.integers(100, 999, size=n_tenants).astype(str), ""
        )

    # Names: chains or independents.
    chain = rng.random(n) < 0.20
    chain_idx = rng.choice(len(CHAINS), size=n, p=_zipf_weights(len(CHAINS)))
    brand = np.array([c[0] for c in CHAINS], dtype=object)[chain_idx]
    type_idx = np.where(chain, np.array([c[1] for c in CHAINS])[chain_idx], type_idx)
    phrase_choice = rng.random(n)
    phrases = np.empty(n, dtype=object)
    for t, ftype in enumerate(TYPES):  # one phrase drawn per facility (few types: cheap loop)
        sel = type_idx == t
        k = len(ftype.phrases)
        phrases[sel] = np.asarray(ftype.phrases, dtype=object)[
            np.minimum((phrase_choice[sel] * k).astype(int), k - 1)
        ]

    tok1 = _pick(rng, vocab.tokens, n)
    tok2 = np.where(rng.random(n) < 0.45, _pick(rng, vocab.tokens, n), "")
    saint = rng.random(n) < 0.03
    head = np.where(saint, "SAINT " + _pick(rng, vocab.saints, n).astype(str), tok1)
    of_city = np.where(rng.random(n) < 0.08, "OF " + place["city"].to_numpy().astype(str), "")
    independent = _join(_s(head), _s(tok2), _s(phrases), _s(of_city))

    qual_draw = rng.random(n)
    qualifier = np.where(
        qual_draw < 0.5, place["city"].to_numpy(), np.where(qual_draw < 0.8, street, "")
    )
    chain_name = _join(_s(brand), _s(qualifier), _s(phrases))
    name = pd.Series(np.where(chain, chain_name, independent), dtype=object)

    phone = (
        _s(_pick(rng, AREA_CODES, n))
        + _s(rng.integers(200, 999, size=n).astype(str))
        + _s(rng.integers(0, 10000, size=n).astype(str)).str.zfill(4)
    )
    return pd.DataFrame(
        {
            "name": name,
            "type_idx": type_idx,
            "zip": place["zip"].to_numpy(),
            "city": place["city"].to_numpy(),
            "number": number.astype(str),
            "direction": direction,
            "street": street,
            "suffix": suffix,
            "unit": unit,
            "phone": phone,
            "legal": _pick(rng, vocab.tokens, n),
        }
    )


def _zipf_weights(k: int) -> np.ndarray:
    w = 1.0 / np.arange(1, k + 1) ** 0.9
    return w / w.sum()


# --------------------------------------------------------------------------- the two departments


def render_left(f: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Department A: upper case, abbreviations, STE, ZIP+4 at times, legal suffixes."""
    n = len(f)
    legal = np.where(rng.random(n) < 0.3, _pick(rng, LEGAL_SUFFIXES, n), "")
    name = f["name"].astype(str) + legal
    unit = np.where(f["unit"] != "", "STE " + f["unit"].astype(str), "")
    address = _join(f["number"], f["direction"], f["street"], f["suffix"], _s(unit))
    zip_ = f["zip"].astype(str)
    plus4 = rng.random(n) < 0.2
    zip_ = zip_.where(~plus4, zip_ + "-" + _s(rng.integers(1000, 9999, size=n).astype(str)))
    p = f["phone"].astype(str)
    phone = "(" + p.str[:3] + ") " + p.str[3:6] + "-" + p.str[6:]
    ftype = np.array([t.left_label for t in TYPES], dtype=object)[f["type_idx"].to_numpy()]
    out = pd.DataFrame(
        {
            "name": typo(name, rng.random(n) < 0.04, rng),
            "address": typo(address, rng.random(n) < 0.03, rng),
            "city": typo(f["city"].astype(str), rng.random(n) < 0.01, rng),
            "zip": zip_.where(rng.random(n) >= 0.01, ""),
            "phone": phone.where(rng.random(n) >= 0.15, ""),
            "facility_type": ftype,
        }
    )
    return out


_NAME_ABBREV = (
    (r"\bHOSPITAL\b", "HOSP"),
    (r"\bMEDICAL CENTER\b", "MED CTR"),
    (r"\bCENTER\b", "CTR"),
    (r"\bSAINT\b", "ST"),
    (r"\bAND\b", "&"),
    (r"\bCLINIC\b", "CLNC"),
)


def render_right(f: pd.DataFrame, vocab: Vocab, rng: np.random.Generator) -> pd.DataFrame:
    """Department B: spelled-out forms, title case at times, name abbreviations, DBA names."""
    n = len(f)
    name = f["name"].astype(str)
    for pattern, repl in _NAME_ABBREV:
        mask = rng.random(n) < 0.25
        name = name.where(~mask, name.str.replace(pattern, repl, regex=True))
    legal = np.where(rng.random(n) < 0.15, _pick(rng, LEGAL_SUFFIXES, n), "")
    name = name + legal
    dba = rng.random(n) < 0.03
    name = name.where(
        ~dba,
        f["legal"].astype(str) + " " + _s(_pick(rng, ("LLC", "INC", "CORP"), n)) + " DBA " + name,
    )

    long_suffix = rng.random(n) < 0.4
    suffix = f["suffix"].where(~long_suffix, f["suffix"].map(SUFFIX_LONG))
    direction = f["direction"].where(~(rng.random(n) < 0.5), f["direction"].map(DIRECTION_LONG))
    direction = direction.fillna("")
    unit_style = rng.random(n)
    unit = np.where(
        f["unit"] == "",
        "",
        np.where(
            unit_style < 0.4,
            "SUITE " + f["unit"].astype(str),
            np.where(unit_style < 0.7, "#" + f["unit"].astype(str), ""),
        ),
    )
    address = _join(f["number"], direction, f["street"], suffix, _s(unit))

    title = rng.random(n) < 0.4
    name = _title(name, title)
    address = _title(address, title)
    city = _title(f["city"].astype(str), title)
    ftype = np.array([t.right_label for t in TYPES], dtype=object)[f["type_idx"].to_numpy()]
    return pd.DataFrame(
        {
            "name": typo(name, rng.random(n) < 0.08, rng),
            "address": typo(address, rng.random(n) < 0.06, rng),
            "city": typo(city, rng.random(n) < 0.02, rng),
            "zip": f["zip"].astype(str).where(rng.random(n) >= 0.03, ""),
            "phone": f["phone"].astype(str).where(rng.random(n) >= 0.45, ""),
            "facility_type": ftype,
        }
    )


def _ids(n: int, offset: int, rng: np.random.Generator) -> pd.Series:
    """Record ids as 9-digit text (department A's start with 0: leading zeros must survive)."""
    return _id_text(rng.permutation(n) + offset)


def _id_text(numbers: np.ndarray) -> pd.Series:
    """Record ids as 9-digit text."""
    return _s(numbers.astype(str)).str.zfill(9)


#: Records per side generated at once: larger listings are written in chunks of this
#: many records per side, so that generating 10M per side takes no more memory than 1M.
CHUNK = 1_000_000

IdMaker = Callable[[int, int], pd.Series]


@dataclass
class Listings:
    """One chunk of both listings and its truth."""

    left: pd.DataFrame
    right: pd.DataFrame
    truth: pd.DataFrame
    moved: int
    renamed: int


def listings(n: int, vocab: Vocab, rng: np.random.Generator, ids: IdMaker) -> Listings:
    """``n`` records per department drawn with ``rng``; ``ids(n, offset)`` gives the
    records' ids (offset 0 for department A, 100,000,000 for B)."""
    shared = round(n * SHARED_SHARE)
    only = n - shared
    total = shared + 2 * only
    fac = facilities(total, vocab, rng)

    # Entities [0, shared) are in both, [shared, shared+only) only in A, the rest only in B.
    left_rows = np.arange(0, shared + only)
    right_rows = np.concatenate([np.arange(0, shared), np.arange(shared + only, total)])
    fac_l = fac.iloc[left_rows].reset_index(drop=True)
    fac_r = fac.iloc[right_rows].reset_index(drop=True)
    del fac

    # Moves and renames of shared facilities: department B has the new address or name.
    moved = np.zeros(n, dtype=bool)
    moved[:shared] = rng.random(shared) < 0.02
    renamed = np.zeros(n, dtype=bool)
    renamed[:shared] = rng.random(shared) < 0.02
    m_idx = np.flatnonzero(moved)
    r_idx = np.flatnonzero(renamed)
    # Fresh facilities only for the few that change (the first m for moves, the rest renames).
    fresh = facilities(len(m_idx) + len(r_idx), vocab, rng)
    for col in ("number", "direction", "street", "suffix", "unit"):
        fac_r.loc[m_idx, col] = fresh[col].iloc[: len(m_idx)].to_numpy()
    fac_r.loc[r_idx, "name"] = fresh["name"].iloc[len(m_idx) :].to_numpy()

    left = render_left(fac_l, rng)
    right = render_right(fac_r, vocab, rng)
    del fac_l, fac_r
    left.insert(0, "facility_id", ids(n, 0))
    right.insert(0, "facility_id", ids(n, 100_000_000))
    truth = pd.DataFrame(
        {
            f"{LEFT}_id": left["facility_id"].iloc[:shared].to_numpy(),
            f"{RIGHT}_id": right["facility_id"].iloc[:shared].to_numpy(),
        }
    )
    # Shuffle the listings so that file order says nothing.
    left = left.iloc[rng.permutation(n)]
    right = right.iloc[rng.permutation(n)]
    return Listings(left, right, truth, len(m_idx), len(r_idx))


def generate(n: int, out: Path, seed: int = 7) -> dict[str, object]:
    """Write ``n`` records per department, the truth and a config into ``out``.

    Up to :data:`CHUNK` records per side, the listings are drawn at once from one
    generator seeded with ``seed``. Larger listings are written in chunks of
    :data:`CHUNK` records per side, chunk ``k`` drawn by a generator seeded with
    ``(seed, k)``: each chunk is a listing of its own (its facilities, chains and
    multi-tenant buildings, in the same ZIPs as every other chunk), shuffled within
    itself; the record ids are one permutation of all ``n``, so their order says
    nothing across chunks either. Memory stays that of one chunk."""
    t0 = time.perf_counter()
    vocab = load_vocab()
    out.mkdir(parents=True, exist_ok=True)
    if n <= CHUNK:
        rng = np.random.default_rng(seed)
        chunks: Iterator[tuple[int, Listings]] = iter(
            [(0, listings(n, vocab, rng, lambda k, offset: _ids(k, offset, rng)))]
        )
    else:
        chunks = _chunks(n, vocab, seed)
    truth_pairs = moved = renamed = 0
    t_write = 0.0
    for k, part in chunks:
        t1 = time.perf_counter()
        first = {"mode": "w" if k == 0 else "a", "header": k == 0, "index": False}
        part.left.to_csv(out / f"{LEFT}.csv", **first)
        part.right.to_csv(out / f"{RIGHT}.csv", **first)
        part.truth.to_csv(out / "truth.csv", **first)
        t_write += time.perf_counter() - t1
        truth_pairs += len(part.truth)
        moved += part.moved
        renamed += part.renamed
        del part
    (out / "config.toml").write_text(config_toml())
    manifest: dict[str, object] = {
        "records_per_side": n,
        "truth_pairs": truth_pairs,
        "moved": moved,
        "renamed": renamed,
        "seed": seed,
        "chunk_records": min(n, CHUNK),
        "generate_s": round(time.perf_counter() - t0 - t_write, 2),
        "total_s": round(time.perf_counter() - t0, 2),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def _chunks(n: int, vocab: Vocab, seed: int) -> Iterator[tuple[int, Listings]]:
    """The chunks of listings of ``n`` records per side (see :func:`generate`)."""
    ids_rng = np.random.default_rng(seed)
    left_ids = ids_rng.permutation(n)
    right_ids = ids_rng.permutation(n) + 100_000_000
    for k, start in enumerate(range(0, n, CHUNK)):
        size = min(CHUNK, n - start)

        def ids(count: int, offset: int, start: int = start) -> pd.Series:
            numbers = left_ids if offset == 0 else right_ids
            return _id_text(numbers[start : start + count])

        yield k, listings(size, vocab, np.random.default_rng([seed, k]), ids)


def config_toml() -> str:
    """A crosswalk config for the two synthetic listings, shaped like ``bench/blind.toml``."""
    blocks = []
    for name, title in ((LEFT, "Department A (synthetic)"), (RIGHT, "Department B (synthetic)")):
        blocks.append(f"""[[source]]
name = "{name}"
publisher = "synthetic"
title = "{title}"
path = "{name}.csv"
format = "csv"
encoding = "utf-8"
id_column = "facility_id"
max_per_entity = 1

[source.fields]
name = "name"
address = "address"
city = "city"
zip = "zip"
phone = "phone"
facility_type = "facility_type"

[source.defaults]
state = "CA"
""")
    return "# Synthetic listings written by bench/synth.py; no identifier columns.\n\n" + "\n".join(
        blocks
    )


def main(argv: list[str] | None = None) -> int:
    """Command line: generate one synthetic pair of listings."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="records per department")
    parser.add_argument("--out", type=Path, required=True, help="directory to write")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    manifest = generate(args.n, args.out, args.seed)
    print(json.dumps(manifest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
