"""Pure, vectorized normalizers and comparators for facility records.

Normalizers take a pandas Series and return a ``string[pyarrow]`` Series (or a
DataFrame of them) with the same index, ``pd.NA`` for missing or invalid values and
never an empty string.  They work once per unique value and are idempotent.
Comparators take aligned pairs and return numpy arrays.  Nothing here does I/O.
"""

from matchers.addresses import (
    ADDRESS_COLUMNS,
    normalize_city,
    normalize_state,
    parse_addresses,
    zip5,
)
from matchers.compare import (
    SIMILARITY_METHODS,
    exact,
    haversine_m,
    missing,
    similarity,
    token_jaccard,
)
from matchers.facility_types import FACILITY_CLASSES, facility_class, type_compatibility
from matchers.identifiers import KNOWN_SCHEMES, normalize_identifier, npi_is_valid
from matchers.names import GENERIC_WORDS, explode_tokens, name_core, name_tokens, normalize_name
from matchers.phones import normalize_phone

__all__ = [
    "ADDRESS_COLUMNS",
    "FACILITY_CLASSES",
    "GENERIC_WORDS",
    "KNOWN_SCHEMES",
    "SIMILARITY_METHODS",
    "exact",
    "explode_tokens",
    "facility_class",
    "haversine_m",
    "missing",
    "name_core",
    "name_tokens",
    "normalize_city",
    "normalize_identifier",
    "normalize_name",
    "normalize_phone",
    "normalize_state",
    "npi_is_valid",
    "parse_addresses",
    "similarity",
    "token_jaccard",
    "type_compatibility",
    "zip5",
]
