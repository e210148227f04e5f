"""How the normalize stage treats each source's records: plain data taken from the config
(``[names]``, ``[source.names]``, ``[source.facility_types]``), light enough for the config
to build without loading the engine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SourceRules:
    """How the records of one source are normalized."""

    #: The source's own facility-type wordings, upper case and trimmed, each with the class
    #: of :data:`matchers.facility_types.FACILITY_CLASSES` it maps to.
    facility_types: tuple[tuple[str, str], ...] = ()
    #: ``ST`` at the start of a name or before a given name reads as ``SAINT``.
    saint: bool = True
    #: A name's core drops the generic words of health care
    #: (:data:`matchers.names.GENERIC_WORDS`); otherwise only the plain ones
    #: (:data:`crosswalk.stages.normalize.PLAIN_WORDS`).
    generic_words: bool = True
    #: More words the core drops (upper case).
    extra_generic_words: tuple[str, ...] = ()


@dataclass(frozen=True)
class NormalizeRules:
    """The rules of every source: ``by_source`` for those that have their own, ``default``
    for the others (and for queries)."""

    default: SourceRules = SourceRules()
    by_source: Mapping[str, SourceRules] = field(default_factory=dict)

    def of(self, source: str) -> SourceRules:
        return self.by_source.get(source, self.default)
