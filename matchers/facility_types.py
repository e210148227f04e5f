"""Facility-type classification into a common vocabulary, and type compatibility.

:func:`facility_class` maps free-text facility types of any publisher (state licensing
categories, CMS provider types and subtypes) to one of :data:`FACILITY_CLASSES` with
ordered, case-insensitive keyword rules; the first matching rule wins.  Unmatched
non-empty text is ``"other"``; missing/empty is ``pd.NA``.

:func:`type_compatibility` compares aligned class arrays: ``0`` same class, ``1``
related classes (one facility may be described by either, e.g. ``hospice`` and
``hospice_facility``), ``2`` incompatible (different facilities even at one address,
e.g. ``hospice`` and ``home_health``), ``-1`` when either side is missing or ``other``.
"""

from __future__ import annotations

import functools
import itertools
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from matchers._text import apply_unique, ascii_upper, squash, sub
from matchers.compare import Texts

__all__ = ["FACILITY_CLASSES", "facility_class", "name_implied_class", "type_compatibility"]

#: The common vocabulary (``pd.NA`` stands for missing).
FACILITY_CLASSES: tuple[str, ...] = (
    "general_acute_hospital",
    "psychiatric_hospital",
    "rehabilitation_hospital",
    "chemical_dependency_hospital",
    "skilled_nursing",
    "intermediate_care",
    "home_health",
    "hospice",
    "hospice_facility",
    "primary_care_clinic",
    "surgical_clinic",
    "dialysis",
    "rehabilitation_clinic",
    "psychology_clinic",
    "congregate_living",
    "adult_day_health",
    "pediatric_day_health",
    "alternative_birthing",
    "correctional_treatment",
    "referral_agency",
    "childrens_hospital",
    "long_term_care_hospital",
    "assisted_living",
    "other",
)

# Ordered (class, RE2 pattern) rules over upper-case text with punctuation as spaces:
# those naming a kind of facility, then bare wordings (_RULES: both, in that order).
_KIND_RULES: tuple[tuple[str, str], ...] = (
    ("correctional_treatment", r"\bCORRECTIONAL\b"),
    ("pediatric_day_health", r"\bPEDIATRIC DAY\b|\bPDHRC"),
    ("adult_day_health", r"\bADULT DAY\b|\bADHC\b"),
    ("alternative_birthing", r"\bBIRTH(?:ING)? CENTER\b|\bALTERNATIVE BIRTH"),
    ("referral_agency", r"\bREFERRAL AGENCY\b"),
    ("congregate_living", r"\bCONGREGATE LIVING\b|\bCLHF\b"),
    (
        "hospice_facility",
        r"\bHOSPICE (?:FACILITY|INPATIENT|HOUSE|RESIDENCE)\b|\bINPATIENT HOSPICE\b|"
        r"\bRESIDENTIAL HOSPICE\b",
    ),
    ("hospice", r"\bHOSPICE\b"),
    ("home_health", r"\bHOME HEALTH\b|\bHHA\b|\bHOME CARE AGENCY\b|\bVISITING NURSE"),
    (
        "dialysis",
        r"\bDIALYSIS\b|\bESRD\b|\bEND STAGE RENAL\b|\bRENAL DISEASE\b|\bKIDNEY\b",
    ),
    (
        "intermediate_care",
        r"\bINTERMEDIATE CARE\b|\bICF\b|\bICF ?(?:DD|IID|MR)\b|\bINTELLECTUAL(?:LY)? DISAB|"
        r"\bDEVELOPMENTAL(?:LY)? DISAB|\bDEV DISABLED\b",
    ),
    (
        "skilled_nursing",
        r"\bSKILLED NURSING\b|\bSNF\b|\bNURSING (?:FACILITY|HOME|CENTER)\b|\bNF\b|"
        r"\bLONG TERM CARE FACILITY\b|\bCONVALESCENT\b|\bPOST ACUTE\b",
    ),
    (
        "assisted_living",
        r"\bASSISTED LIVING\b|\bRESIDENTIAL CARE\b|\bRCFE\b|\bBOARD (?:AND )?CARE\b|"
        r"\bADULT FOSTER\b|\bPERSONAL CARE HOME\b",
    ),
    (
        "chemical_dependency_hospital",
        r"\bCHEMICAL DEP(?:ENDENCY)?\b.*\bHOSPITAL\b|\bCDRH\b",
    ),
    (
        "psychiatric_hospital",
        r"\bPSYCHIATRIC (?:HOSPITAL|HEALTH FACILITY|FACILITY|UNIT)\b|\bPSYCH HOSPITAL\b|"
        r"\bAPH\b|\bPHF\b|\bMENTAL (?:HEALTH )?HOSPITAL\b",
    ),
    (
        "rehabilitation_hospital",
        r"\bREHABILITATION (?:HOSPITAL|FACILITY|UNIT)\b|\bINPATIENT REHAB|\bIRF\b",
    ),
    (
        "childrens_hospital",
        r"\bCHILDREN(?: ?S)?\b.*\bHOSPITAL\b|\bPEDIATRIC HOSPITAL\b",
    ),
    (
        "long_term_care_hospital",
        r"\bLONG TERM (?:CARE |ACUTE (?:CARE )?)?HOSPITAL\b|\bLTCH\b|\bLTACH?\b|"
        r"\bHOSPITAL LONG TERM\b|\bCHRONIC DISEASE HOSPITAL\b",
    ),
    (
        "general_acute_hospital",
        r"\bHOSPITAL\b|\bGACH\b|\bACUTE CARE\b|\bCRITICAL ACCESS\b|\bCAH\b",
    ),
    (
        "surgical_clinic",
        r"\bSURGICAL (?:CLINIC|CENTER)\b|\bSURGERY CENTER\b|\bSURGICENTER\b|\bASC\b|"
        r"\bAMBULATORY SURG",
    ),
    (
        "rehabilitation_clinic",
        r"\bREHABILITATION CLINIC\b|\bCORF\b|\bCOMPREHENSIVE OUTPATIENT REHAB|"
        r"\bOUTPATIENT (?:PHYSICAL THERAPY|REHAB)|\bPHYSICAL THERAPY\b|\bOPT\b",
    ),
    (
        "psychology_clinic",
        r"\bPSYCHOLOGY CLINIC\b|\bPSYCHOLOGICAL CLINIC\b|\bCOMMUNITY MENTAL HEALTH\b|"
        r"\bCMHC\b|\bMENTAL HEALTH (?:CLINIC|CENTER)\b",
    ),
    (
        "primary_care_clinic",
        r"\bPRIMARY CARE\b|\bURGENT CARE\b|\bCOMMUNITY (?:HEALTH )?CLINIC\b|\bFREE CLINIC\b|\bFQHC\b|"
        r"\bFEDERALLY QUALIFIED\b|\bRURAL HEALTH (?:CLINIC|CENTER)\b|\bRHC\b|"
        r"\bCOMMUNITY HEALTH CENTER\b|\bHEALTH CENTER\b|\bCLINIC\b",
    ),
)
_BARE_RULES: tuple[tuple[str, str], ...] = (
    # Bare wordings of national hospital listings ("PSYCHIATRIC", "CHILDREN", "LONG TERM
    # CARE", "MILITARY"): only when no rule above names a kind of facility.
    ("skilled_nursing", r"\bNURSING\b"),
    ("psychiatric_hospital", r"\bPSYCHIATRIC\b|\bPSYCH\b"),
    ("rehabilitation_hospital", r"\bREHABILITATION\b"),
    ("childrens_hospital", r"\bCHILDREN(?: ?S)?\b|\bPEDIATRIC\b"),
    ("long_term_care_hospital", r"\bLONG TERM\b|\bCHRONIC DISEASE\b"),
    (
        "general_acute_hospital",
        r"\bMILITARY\b|\bDEPARTMENT OF DEFENSE\b|\bDOD\b|\bVETERANS (?:AFFAIRS|ADMINISTRATION)\b|"
        r"\bWOMEN(?: ?S)?\b|\bSHORT TERM\b|\bGENERAL\b|\bACUTE\b",
    ),
)

_RULES = _KIND_RULES + _BARE_RULES

_CODES = {name: i for i, name in enumerate(FACILITY_CLASSES)}
_CLASS_ARRAY = pa.array(FACILITY_CLASSES, type=pa.large_string())


def _rule_text(arr: pa.Array) -> pa.Array:
    """Upper case, punctuation as spaces, common abbreviations spelled out."""
    text = ascii_upper(arr)
    text = squash(sub(sub(text, r"[&/]", " "), r"[^A-Z0-9]+", " "))
    text = sub(text, r"\bHOSP\b", "HOSPITAL")
    text = sub(text, r"\bDEP\b", "DEPENDENCY")
    return sub(text, r"\bREHAB\b", "REHABILITATION")


#: Up to this many values, :func:`_first_rule` matches with Python's ``re`` (the rules are
#: written in the syntax common to it and RE2), which costs less than an Arrow call each.
_FEW = 16


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _first_rule(
    text: pa.Array, rules: tuple[tuple[str, str], ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the class of the first of ``rules`` matching ``text`` (None if none), and
    whether a later matching rule names a class incompatible with it."""
    n = len(text)
    result = np.full(n, None, dtype=object)
    unassigned = np.ones(n, dtype=bool)
    clash = np.zeros(n, dtype=bool)
    first = np.full(n, len(FACILITY_CLASSES), dtype=np.int64)
    values = text.to_pylist() if n <= _FEW else None
    for name, pattern in rules:
        if values is not None:  # a few values (a query's): Python's re, without Arrow's overhead
            rx = _compiled(pattern)
            hits = np.fromiter(
                (v is not None and rx.search(v) is not None for v in values), bool, n
            )
        else:
            hit = pc.fill_null(pc.match_substring_regex(text, pattern=pattern), False)
            hits = np.asarray(hit.to_numpy(zero_copy_only=False), dtype=bool)
        clash |= hits & ~unassigned & (COMPATIBILITY[first, _CODES[name]] == 2)
        mask = hits & unassigned
        result[mask] = name
        first[mask] = _CODES[name]
        unassigned &= ~mask
    return result, clash


def _class_arrow(arr: pa.Array) -> pa.Array:
    exact_class = pc.index_in(pc.utf8_lower(pc.utf8_trim_whitespace(arr)), value_set=_CLASS_ARRAY)
    text = _rule_text(arr)
    result, _ = _first_rule(text, _RULES)
    unassigned = pd.isna(result)
    nonempty = np.asarray(
        pc.fill_null(pc.greater(pc.utf8_length(text), 0), False).to_numpy(zero_copy_only=False),
        dtype=bool,
    )
    result[unassigned & nonempty] = "other"
    exact_pos = exact_class.to_numpy(zero_copy_only=False)
    is_exact = ~pd.isna(exact_pos)
    result[is_exact] = np.asarray(FACILITY_CLASSES, dtype=object)[
        exact_pos[is_exact].astype(np.int64)
    ]
    return pa.array(result, type=pa.large_string())


def facility_class(s: pd.Series) -> pd.Series:
    """Common facility class of each free-text type (see module docstring).

    Class names themselves map to themselves, so the function is idempotent.
    Returns ``string[pyarrow]`` with ``pd.NA`` for missing/empty input.
    """
    return apply_unique(s, _class_arrow)


_RELATED: tuple[tuple[str, ...], ...] = (
    ("hospice", "hospice_facility"),
    (
        "general_acute_hospital",
        "psychiatric_hospital",
        "rehabilitation_hospital",
        "chemical_dependency_hospital",
        "childrens_hospital",
        "long_term_care_hospital",
    ),
    ("skilled_nursing", "intermediate_care", "congregate_living", "assisted_living"),
    # "long term care" names a long-term care hospital or a nursing facility
    ("long_term_care_hospital", "skilled_nursing"),
    ("primary_care_clinic", "surgical_clinic", "rehabilitation_clinic", "psychology_clinic"),
    ("adult_day_health", "pediatric_day_health"),
    ("alternative_birthing", "primary_care_clinic"),
)


def _build_matrix() -> np.ndarray:
    k = len(FACILITY_CLASSES)
    m = np.full((k + 1, k + 1), 2, dtype=np.int8)  # last row/column: missing
    for group in _RELATED:
        for a, b in itertools.permutations(group, 2):
            m[_CODES[a], _CODES[b]] = 1
    np.fill_diagonal(m, 0)
    other = _CODES["other"]
    m[other, :] = -1
    m[:, other] = -1
    m[k, :] = -1
    m[:, k] = -1
    return m


#: ``COMPATIBILITY[i, j]`` for class codes ``i, j`` (index ``len(FACILITY_CLASSES)`` = missing).
COMPATIBILITY: np.ndarray = _build_matrix()


_CLASS_INDEX = pd.Index(FACILITY_CLASSES, dtype=object)


def _codes(values: pd.Series | np.ndarray) -> np.ndarray:
    """Class code of each value; ``len(FACILITY_CLASSES)`` for missing or unknown values."""
    codes = _CLASS_INDEX.get_indexer(pd.Index(np.asarray(values, dtype=object), dtype=object))
    codes = np.asarray(codes, dtype=np.int64)
    codes[codes < 0] = len(FACILITY_CLASSES)
    return codes


def type_compatibility(
    a: pd.Series | np.ndarray | Texts, b: pd.Series | np.ndarray | Texts
) -> np.ndarray:
    """Element-wise compatibility of two aligned arrays of facility classes.

    Returns ``int8``: ``0`` same class, ``1`` related, ``2`` incompatible, ``-1`` when
    either side is missing, ``"other"`` or not a class name. A side given as
    :class:`~matchers.compare.Texts` has each distinct value looked up once.
    """
    ca, cb = _row_codes(a), _row_codes(b)
    if len(ca) != len(cb):
        raise ValueError(f"length mismatch: {len(ca)} != {len(cb)}")
    return COMPATIBILITY[ca, cb]


def _row_codes(values: pd.Series | np.ndarray | Texts) -> np.ndarray:
    if isinstance(values, Texts):
        return _codes(values.values)[values.codes]
    return _codes(values)


#: A name's words that name a hospital as HOSPITAL does (a "medical center" is most often one).
_HOSPITAL_WORDS = r"\bMED(?:ICAL)? (?:CENTER|CENTRE|CTR)\b"
#: A convalescent hospital is a nursing home: its HOSPITAL names no hospital.
_CONVALESCENT_HOSPITAL = r"\b(?:CONVALESCENT|CONV|CVLT) HOSPITAL\b"


def _name_class_arrow(arr: pa.Array) -> pa.Array:
    text = sub(_rule_text(arr), _CONVALESCENT_HOSPITAL, "CONVALESCENT")
    text = sub(text, _HOSPITAL_WORDS, "HOSPITAL")
    result, clash = _first_rule(text, _KIND_RULES)
    result[clash] = None
    return pa.array(result, type=pa.large_string())


def name_implied_class(names: pd.Series) -> pd.Series:
    """The facility class a facility's *name* implies, or ``pd.NA`` when it implies none.

    A name says something about its facility's type: SUNNY HILLS HOSPITAL names a
    hospital, SUNNY HILLS CONVALESCENT or ... NURSING CENTER a skilled nursing facility,
    ... HOSPICE a hospice, ... CLINIC a clinic. The name is read by the vocabulary's rules
    that name a kind of facility (as :func:`facility_class` reads a type), with MEDICAL
    CENTER read as HOSPITAL; not by its bare wordings (GENERAL, WOMEN'S, CHILDREN'S alone),
    which in a name say nothing of the type; a CONVALESCENT HOSPITAL is a nursing home. A
    name whose words name incompatible kinds (a hospital's clinic, a hospital's D/P SNF)
    implies none. ``string[pyarrow]``.
    """
    return apply_unique(names, _name_class_arrow)
