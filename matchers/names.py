"""Facility-name normalization.

``normalize_name`` guarantees, for every non-missing input:

* output is upper-case ASCII made of ``[A-Z0-9]`` tokens separated by single spaces,
  or ``pd.NA`` when nothing is left (missing/empty/punctuation-only input);
* it is idempotent: ``normalize_name(normalize_name(s))`` equals ``normalize_name(s)``.

Rules, in order:

1. accents stripped (NFKD), typographic quotes/dashes folded, upper-cased;
2. ``&`` and ``+`` become ``AND``; apostrophes are removed (``ST. JOSEPH'S`` →
   ``SAINT JOSEPHS``); dots inside single-letter acronyms are removed (``G.T.S.`` →
   ``GTS``, ``D/B/A`` → ``DBA``); all other punctuation becomes a space;
3. ``X DBA Y`` keeps ``Y`` (the name the facility does business as); ``X AKA Y`` and
   ``X FKA Y`` keep ``X``;
4. abbreviations are expanded to one canonical word (``HOSP`` → ``HOSPITAL``, ``CTR`` →
   ``CENTER``, ``SNF`` → ``SKILLED NURSING FACILITY``, ``MT`` → ``MOUNT`` ...), number
   words from 1 to 99 become digits (``ONE`` → ``1``, ``NINTH`` → ``9TH``,
   ``TWENTY-FIRST`` → ``21ST``, ``TWENTY NINE`` → ``29``; :mod:`matchers._numbers`);
5. ``ST`` at the start of a name or before a common given name becomes ``SAINT``;
6. legal-form words are removed (``INC``, ``LLC``, ``L L C``, ``CORPORATION``,
   ``A MEDICAL CORPORATION`` ...; ``CO``, ``LP``, ``PC`` only at the end). If that would
   leave nothing, the name before legal-form removal is kept.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from matchers._numbers import NUMBER_WORDS, compound_numbers
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
    token_pattern,
    unique_text,
    where,
)

__all__ = [
    "GENERIC_WORDS",
    "explode_tokens",
    "name_and_core",
    "name_core",
    "name_tokens",
    "normalize_name",
]

# --- vocabulary ---------------------------------------------------------------------

#: Abbreviation → canonical word(s).  Values never contain a key (idempotence).
ABBREVIATIONS: dict[str, str] = {
    # facilities
    "HOSP": "HOSPITAL",
    "HOSPT": "HOSPITAL",
    "HSP": "HOSPITAL",
    "HOSPS": "HOSPITALS",
    "MED": "MEDICAL",
    "MEDL": "MEDICAL",
    "MDCL": "MEDICAL",
    "CTR": "CENTER",
    "CNTR": "CENTER",
    "CENTRE": "CENTER",
    "CTRS": "CENTERS",
    "CNTRS": "CENTERS",
    "CENTRES": "CENTERS",
    "CLNC": "CLINIC",
    "CLIN": "CLINIC",
    "CLNCS": "CLINICS",
    "SNF": "SKILLED NURSING FACILITY",
    "SNFS": "SKILLED NURSING FACILITIES",
    "NF": "NURSING FACILITY",
    "ICF": "INTERMEDIATE CARE FACILITY",
    "HH": "HOME HEALTH",
    "HHA": "HOME HEALTH AGENCY",
    "HHC": "HOME HEALTH CARE",
    "HC": "HEALTH CARE",
    "HLTH": "HEALTH",
    "HLTHCARE": "HEALTHCARE",
    "HTHCARE": "HEALTHCARE",
    "REHAB": "REHABILITATION",
    "REHABILITATIVE": "REHABILITATION",
    "CONV": "CONVALESCENT",
    "CONVAL": "CONVALESCENT",
    "CONVALESCENCE": "CONVALESCENT",
    "NSG": "NURSING",
    "NURS": "NURSING",
    "FAC": "FACILITY",
    "FACIL": "FACILITY",
    "FCLTY": "FACILITY",
    "SVC": "SERVICES",
    "SVCS": "SERVICES",
    "SERV": "SERVICES",
    "SERVS": "SERVICES",
    "SRVCS": "SERVICES",
    "SERVICE": "SERVICES",
    "ASSN": "ASSOCIATION",
    "ASSOC": "ASSOCIATION",
    "ASSOCS": "ASSOCIATES",
    "ASSOCIATE": "ASSOCIATES",
    "DEPT": "DEPARTMENT",
    "DEPTS": "DEPARTMENTS",
    "UNIV": "UNIVERSITY",
    "UNIVERSTIY": "UNIVERSITY",
    "COMM": "COMMUNITY",
    "CMTY": "COMMUNITY",
    "COMMUN": "COMMUNITY",
    "MEM": "MEMORIAL",
    "MEML": "MEMORIAL",
    "NATL": "NATIONAL",
    "REG": "REGIONAL",
    "REGL": "REGIONAL",
    "RGNL": "REGIONAL",
    "DIAL": "DIALYSIS",
    "GEN": "GENERAL",
    "GENL": "GENERAL",
    "CHLDRNS": "CHILDRENS",
    "PEDS": "PEDIATRIC",
    "PEDIATRICS": "PEDIATRIC",
    "PSYCH": "PSYCHIATRIC",
    "BEHAV": "BEHAVIORAL",
    "BHVRL": "BEHAVIORAL",
    "BEH": "BEHAVIORAL",
    "BHV": "BEHAVIORAL",
    "CMMTY": "COMMUNITY",
    "COMMTY": "COMMUNITY",
    "BEHAVIOURAL": "BEHAVIORAL",
    "HLTHSYS": "HEALTH SYSTEM",
    "SYS": "SYSTEM",
    "FDN": "FOUNDATION",
    "FNDN": "FOUNDATION",
    "FOUND": "FOUNDATION",
    "INST": "INSTITUTE",
    "INTL": "INTERNATIONAL",
    "AMER": "AMERICAN",
    "AMBUL": "AMBULATORY",
    "AMB": "AMBULATORY",
    "SURG": "SURGERY",
    "SURGICENTER": "SURGERY CENTER",
    "LAB": "LABORATORY",
    "LABS": "LABORATORIES",
    "OUTPT": "OUTPATIENT",
    "INPT": "INPATIENT",
    "EMERG": "EMERGENCY",
    "CONT": "CONTINUING",
    "CMNTY": "COMMUNITY",
    "VLY": "VALLEY",
    "VLLY": "VALLEY",
    "MTN": "MOUNTAIN",
    "MTNS": "MOUNTAINS",
    "COOP": "COOPERATIVE",
    "HTS": "HEIGHTS",
    "HGTS": "HEIGHTS",
    "SPGS": "SPRINGS",
    "BCH": "BEACH",
    "LK": "LAKE",
    "PK": "PARK",
    "CYN": "CANYON",
    "BROS": "BROTHERS",
    "SRS": "SISTERS",
    "DR": "DOCTOR",
    "DRS": "DOCTORS",
    # places
    "MT": "MOUNT",
    "MTE": "MONTE",
    "FT": "FORT",
    "STA": "STATION",
    "SO": "SOUTH",
    # connectors / misc
    "CALIF": "CALIFORNIA",
    "SAINTE": "SAINT",
    "STE": "SAINT",
}

#: Legal-form tokens removed anywhere in a name.
_LEGAL_ANYWHERE = (
    "INC",
    "INCORPORATED",
    "INCORPORATION",
    "LLC",
    "PLLC",
    "LLP",
    "LTD",
    "LIMITED",
    "CORP",
    "CORPORATION",
    "CORPORATED",
)
#: Legal-form tokens removed only at the end of a name (they are words elsewhere).
_LEGAL_TRAILING = ("CO", "COMPANY", "LP", "PC", "PLC", "LC", "PSC")

#: Given names that follow ``ST`` meaning ``SAINT`` (the name-initial rule covers most).
_SAINT_NAMES = (
    "AGNES",
    "ANDREW",
    "ANDREWS",
    "ANNE",
    "ANNES",
    "ANTHONY",
    "ANTHONYS",
    "BERNARDINE",
    "BERNARDINES",
    "CATHERINE",
    "CATHERINES",
    "CHRISTOPHER",
    "CLAIRE",
    "CLARE",
    "DOMINIC",
    "DOMINICS",
    "ELIZABETH",
    "ELIZABETHS",
    "FRANCIS",
    "GEORGE",
    "HELENA",
    "HELENS",
    "JAMES",
    "JOHN",
    "JOHNS",
    "JOSEPH",
    "JOSEPHS",
    "JUDE",
    "JUDES",
    "LOUIS",
    "LUKE",
    "LUKES",
    "MARK",
    "MARKS",
    "MARTIN",
    "MARY",
    "MARYS",
    "MATTHEW",
    "MICHAEL",
    "MICHAELS",
    "PATRICK",
    "PATRICKS",
    "PAUL",
    "PAULS",
    "PETER",
    "PETERS",
    "ROSE",
    "TERESA",
    "THERESA",
    "VINCENT",
    "VINCENTS",
)

#: Generic facility words dropped by :func:`name_core`.
GENERIC_WORDS: frozenset[str] = frozenset(
    {
        "A",
        "AN",
        "THE",
        "OF",
        "AND",
        "AT",
        "FOR",
        "HOSPITAL",
        "HOSPITALS",
        "MEDICAL",
        "CENTER",
        "CENTERS",
        "HEALTH",
        "HEALTHCARE",
        "CARE",
        "HOME",
        "HOMES",
        "AGENCY",
        "SERVICES",
        "CLINIC",
        "CLINICS",
        "FACILITY",
        "FACILITIES",
        "PARENT",
        "BRANCH",
        "INCORPORATED",
        "INC",
        "LLC",
        "CORPORATION",
        "COMPANY",
        "GROUP",
        "SYSTEM",
        "SYSTEMS",
        "PROVIDER",
        "PROVIDERS",
    }
)

# --- patterns -----------------------------------------------------------------------

#: Words of a legal phrase (``A CALIFORNIA NONPROFIT CORPORATION``) before its last word.
_LEGAL_PHRASE_WORDS = (
    "CALIFORNIA",
    "NEVADA",
    "DELAWARE",
    "NONPROFIT",
    "NON PROFIT",
    "NOT FOR PROFIT",
    "PUBLIC",
    "BENEFIT",
    "RELIGIOUS",
    "MUTUAL",
    "MEDICAL",
    "MED",
    "PROFESSIONAL",
    "PROF",
    "NURSING",
    "DENTAL",
    "HEALTH",
    "CARE",
    "LIMITED",
    "LIABILITY",
    "GENERAL",
    "CHARITABLE",
)
#: The legal phrase is removed before abbreviations are expanded: it also takes the
#: abbreviations of its words (``A CALIF LIMITED PARTNERSHIP``), which expanded would
#: make a phrase that a second normalization removes.
_LEGAL_PHRASE = (
    r"\bA (?:"
    + alternation(
        sorted(
            {*_LEGAL_PHRASE_WORDS}
            | {
                abbr
                for abbr, words in ABBREVIATIONS.items()
                if all(w in _LEGAL_PHRASE_WORDS for w in words.split())
            }
        )
    )
    + r" )*(?:CORPORATION|CORP|COMPANY|PARTNERSHIP)$"
)
#: Spelling variants of multi-word terms, unified after abbreviation expansion: the words
#: are split first, then joined, so that a split can make a joined term
#: (``HOMEHEALTH CARE`` -> ``HOME HEALTH CARE`` -> ``HOME HEALTHCARE``) in one pass.
_PHRASES = (
    (r"\bPOSTACUTE\b", "POST ACUTE", "POSTACUTE"),
    (r"\bHOMECARE\b", "HOME CARE", "HOMECARE"),
    (r"\bHOMEHEALTH\b", "HOME HEALTH", "HOMEHEALTH"),
    (r"\bDAYCARE\b", "DAY CARE", "DAYCARE"),
    (r"\bHEALTH CARE\b", "HEALTHCARE", "HEALTH CARE"),
    (r"\bSUB ACUTE\b", "SUBACUTE", "SUB ACUTE"),
)
_LEGAL_TRAILING_RE = r"(?: " + alternation(_LEGAL_TRAILING) + r")+$"
_LEGAL_TRAILING_TEST = r" " + alternation(_LEGAL_TRAILING) + r"$"
_LEGAL_ANYWHERE_MAP = dict.fromkeys(_LEGAL_ANYWHERE, "")
_TOKEN_MAP = {**ABBREVIATIONS, **NUMBER_WORDS}
# ``ST`` → ``SAINT`` before given names; ``STE`` in a name is ``SAINTE`` (map above).
_SAINT_RE = r"\bST (" + alternation(_SAINT_NAMES) + r")\b"
_LETTER_RUN_RE = r"(?:^| )[A-Z] [A-Z](?: |$)"
# Any name these match may need the DBA/AKA or legal-form rules (a superset test).
_RARE_RE = r"\b(?:DBA|AKA|FKA)\b|\bA \w|" + token_pattern([*_LEGAL_ANYWHERE, *_LEGAL_TRAILING])
_PHRASE_TEST = "|".join(literal for _, _, literal in _PHRASES)
_CORE_RISK_RE = "|".join(("^ST ", _SAINT_RE, _LETTER_RUN_RE, _RARE_RE, _PHRASE_TEST))


def _clean(arr: pa.Array) -> pa.Array:
    """Steps 1-2 of the module rules: ASCII upper-case, punctuation folded."""
    arr = ascii_upper(arr)
    punct = fill_null(pc.match_substring_regex(arr, pattern=r"[^A-Z0-9 ]|  |^ | $"), False)
    arr = where(arr, punct, _fold_punctuation)
    return _join_letters(arr)


def _fold_punctuation(arr: pa.Array) -> pa.Array:
    arr = pc.replace_substring(arr, pattern="&", replacement=" AND ")
    arr = pc.replace_substring(arr, pattern="+", replacement=" AND ")
    arr = pc.replace_substring(arr, pattern="'", replacement="")
    # dots/slashes after single letters belong to acronyms: G.T.S. -> GTS, D/B/A -> DBA
    arr = sub(arr, r"\b([A-Z])[./]", r"\1", only_if=(".", "/"))
    return squash(sub(arr, r"[^A-Z0-9 ]+", " ", dense=True))


def _join_letters(arr: pa.Array) -> pa.Array:
    """Join runs of single letters into one token (``A S HOME`` → ``AS HOME``, ``L L C``
    → ``LLC``)."""
    mask = pc.match_substring_regex(arr, pattern=_LETTER_RUN_RE)
    return where(
        arr,
        mask,
        lambda a: sub(
            a, r"\b([A-Z]) ([A-Z])(?: ([A-Z]))?(?: ([A-Z]))?(?: ([A-Z]))?\b", r"\1\2\3\4\5"
        ),
    )


def _remove_legal(arr: pa.Array) -> pa.Array:
    arr = where(arr, contains(arr, "A "), lambda a: squash(sub(a, _LEGAL_PHRASE, "")))
    arr = map_tokens(arr, _LEGAL_ANYWHERE_MAP)
    trailing = pc.match_substring_regex(arr, pattern=_LEGAL_TRAILING_TEST)
    arr = where(arr, trailing, lambda a: squash(sub(a, _LEGAL_TRAILING_RE, "")))
    return _join_letters(arr)


def _normalize_arrow(arr: pa.Array, saint: bool = True) -> pa.Array:
    arr = _clean(arr)
    arr = where(arr, pc.match_substring_regex(arr, pattern=_RARE_RE), _rare_rules)
    arr = compound_numbers(arr)  # TWENTY FIRST -> 21ST
    arr = map_tokens(arr, _TOKEN_MAP)
    phrases = pc.match_substring_regex(arr, pattern=_PHRASE_TEST)
    arr = where(arr, phrases, _phrase_rules)
    if saint:
        arr = sub(arr, r"^ST ", "SAINT ")
        arr = sub(arr, _SAINT_RE, r"SAINT \1", only_if="ST ")
    return empty_to_null(arr)


def _rare_rules(arr: pa.Array) -> pa.Array:
    """DBA/AKA/FKA and legal-form rules, run only on names that contain their words."""
    # DBA keeps the trade name; AKA / FKA keep the first name
    arr = sub(arr, r"^.*\bDBA (\S)", r"\1", only_if="DBA ")
    arr = sub(arr, r"^(\S.*?) (?:AKA|FKA)\b.*$", r"\1", only_if=(" AKA", " FKA"))
    arr = sub(arr, r"^(?:DBA|AKA|FKA) ", "", only_if=("DBA ", "AKA ", "FKA "))
    before_legal = arr
    arr = _remove_legal(_remove_legal(arr))
    empty = pc.equal(pc.binary_length(fill_null(arr, "")), 0)
    return pc.if_else(empty, before_legal, arr)


def _phrase_rules(arr: pa.Array) -> pa.Array:
    for pattern, replacement, literal in _PHRASES:
        arr = sub(arr, pattern, replacement, only_if=literal)
    return arr


def normalize_name(s: pd.Series, *, saint: bool = True) -> pd.Series:
    """Canonical upper-case facility name (see module docstring); ``pd.NA`` when missing.
    ``saint=False`` leaves ``ST`` as written (rule 5 is off).

    Returns a ``string[pyarrow]`` Series with the index of ``s``.
    """
    return apply_unique(s, lambda arr: _normalize_arrow(arr, saint))


_GENERIC_MAP = dict.fromkeys(GENERIC_WORDS, "")


def _drop_generic(normalized: pa.Array, generic: dict[str, str] = _GENERIC_MAP) -> pa.Array:
    core = empty_to_null(map_tokens(normalized, generic)) if generic else normalized
    return pc.if_else(pc.is_null(core), normalized, core)


def _core_arrow(arr: pa.Array) -> pa.Array:
    return _core_of_normalized(_normalize_arrow(arr))


def _core_of_normalized(
    normalized: pa.Array, saint: bool = True, generic: dict[str, str] = _GENERIC_MAP
) -> pa.Array:
    core = _drop_generic(normalized, generic)
    # removing words can bring new neighbours together (``THE ST X`` -> ``ST X``):
    # a second round, on the cores where a rule could now apply, makes it a fixed point
    risky = pc.match_substring_regex(core, pattern=_CORE_RISK_RE)
    return where(core, risky, lambda a: _drop_generic(_normalize_arrow(a, saint), generic))


def name_core(s: pd.Series) -> pd.Series:
    """The distinctive part of a name: :func:`normalize_name` minus :data:`GENERIC_WORDS`.

    Accepts raw or already-normalized names (``normalize_name`` is idempotent).  When
    every token is generic, the full normalized name is returned.  ``pd.NA`` when missing.
    Idempotent: ``name_core(name_core(s))`` equals ``name_core(s)``.
    """
    return apply_unique(s, _core_arrow)


def name_and_core(
    s: pd.Series, *, saint: bool = True, generic_words: frozenset[str] | None = None
) -> tuple[pd.Series, pd.Series]:
    """:func:`normalize_name` and :func:`name_core` of ``s``, each distinct name normalized
    once: the core of a name is that of its normalized form (normalizing is idempotent).

    ``saint=False`` turns rule 5 off; ``generic_words`` are the words the core drops
    (default :data:`GENERIC_WORDS`; empty: the core is the normalized name)."""
    codes, uniques = unique_text(s)
    if len(uniques) == 0:  # nothing but missing values
        missing = pd.Series(pd.NA, index=s.index, name=s.name, dtype=STRING_DTYPE)
        return missing, missing.copy()
    generic = _GENERIC_MAP if generic_words is None else dict.fromkeys(generic_words, "")
    normalized = _normalize_arrow(uniques, saint)
    core = _core_of_normalized(normalized, saint, generic)
    return broadcast(codes, normalized, s.index, s.name), broadcast(codes, core, s.index, s.name)


def name_tokens(s: pd.Series) -> pd.Series:
    """Lists of tokens of :func:`normalize_name` (empty list when missing)."""
    norm = normalize_name(s)
    tokens = norm.fillna("").astype(object).str.split()
    return tokens


def explode_tokens(s: pd.Series, *, core: bool = False) -> pd.DataFrame:
    """One row per (record, distinct token) of the normalized name.

    Columns: ``row`` (int64 positional index into ``s``) and ``token`` (string).
    With ``core=True`` the tokens of :func:`name_core` are used.  Missing names give
    no rows; a token repeated within one name appears once.
    """
    norm = name_core(s) if core else normalize_name(s)
    arr = pa.array(norm.array)
    arr = fill_null(arr, "")
    lists = pc.split_pattern(arr, pattern=" ")
    lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False)
    rows = np.repeat(np.arange(len(norm), dtype=np.int64), lengths)
    tokens = pc.list_flatten(lists)
    out = pd.DataFrame(
        {
            "row": rows,
            "token": pd.arrays.ArrowStringArray(tokens.cast(pa.large_string())),
        }
    )
    out = out[out["token"].str.len() > 0].drop_duplicates().reset_index(drop=True)
    return out
