"""The registry of comparisons: each comparison is declared once, as a :class:`Spec` in a
module of this package named after it (``name.py``, ``location.py``, …).

A spec says what the comparison is: its levels (strongest first), the columns it reads,
its role (what the rest of the engine needs to know of it), whether a value's frequency
adjusts its agreement weight, its cheap upper bound (for pruning), its tunable
parameters with their defaults, and its function. The functions are named as
``"module:function"`` strings and loaded when first used, and a module is imported only
when its spec is asked for: this module imports no numpy, so that reading a config
without ``[[comparison]]`` tables stays light (``crosswalk build`` starts reading the
sources meanwhile); a table's comparison module is imported to check its parameters.

A config chooses and tunes comparisons by name; :class:`Comparison` is one comparison as
a build uses it, its parameters resolved. With no ``[[comparison]]`` tables, the
:data:`DEFAULTS` are used, in their order.
"""

from __future__ import annotations

import functools
import importlib
import itertools
import math
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from crosswalk.vocabulary import NID_PREFIX

#: The level of a pair whose value is missing on either side (no evidence).
MISSING = -1

#: The comparisons of a config without ``[[comparison]]`` tables, in this order.
DEFAULTS = ("name", "location", "locality", "facility_type", "phone", "identifier")

#: What the rest of the engine needs to know of a comparison:
#:
#: * ``name``: the EM's "same name" seed (see :func:`crosswalk.stages.model.fit_em`);
#: * ``place``: the EM's "same place" seed, and the levels at which an identifier
#:   conflict's records are at the same place (``same_place_through``);
#: * ``identifier``: one comparison per identifier scheme the records carry (named
#:   ``nid:<scheme>``); decisive identifiers make links and conflicts;
#: * ``other``: evidence only.
Role = Literal["name", "place", "identifier", "other"]
ROLES: tuple[str, ...] = ("name", "place", "identifier", "other")

#: Kinds of parameters, and how a value is checked.
ParamKind = Literal["thresholds", "fraction", "metres"]


@dataclass(frozen=True)
class Param:
    """A tunable parameter of a comparison.

    ``thresholds``: a list of similarities in [0, 1], strictly increasing, as many as the
    default; ``fraction``: one number in [0, 1]; ``metres``: one positive number.
    """

    name: str
    default: float | tuple[float, ...]
    kind: ParamKind
    doc: str = ""

    def check(self, value: Any) -> tuple[Any, str | None]:
        """``(value as stored, None)``, or ``(None, what is wrong)``."""
        if self.kind == "thresholds":
            assert isinstance(self.default, tuple)
            n = len(self.default)
            if not isinstance(value, list) or not all(_is_number(v) for v in value):
                return None, f"expected a list of {n} numbers, got {value!r}"
            if len(value) != n:
                return None, f"expected {n} thresholds, got {len(value)}"
            if not all(0.0 <= v <= 1.0 for v in value):
                return None, f"thresholds must lie in [0, 1], got {value!r}"
            if any(a >= b for a, b in itertools.pairwise(value)):
                return None, f"thresholds must be in increasing order, got {value!r}"
            return tuple(float(v) for v in value), None
        if not _is_number(value):
            return None, f"expected a number, got {value!r}"
        if self.kind == "fraction" and not 0.0 <= value <= 1.0:
            return None, f"must lie in [0, 1], got {value!r}"
        if self.kind == "metres" and not (value > 0 and math.isfinite(value)):
            return None, f"must be a positive number of metres, got {value!r}"
        return float(value), None

    def example(self) -> str:
        """The default, written as a config value."""
        if isinstance(self.default, tuple):
            return "[" + ", ".join(repr(v) for v in self.default) + "]"
        return repr(self.default)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


@dataclass(frozen=True)
class Spec:
    """A comparison, declared once (the module-level ``SPEC`` of its module)."""

    name: str
    #: Level labels, strongest first; the last is disagreement.
    levels: tuple[str, ...]
    #: The function giving each pair its level: ``"module:function"``, called as
    #: ``function(comparison, left, right)`` with the two sides'
    #: :class:`~crosswalk.stages.kernel.columns.Columns`; returns one level per pair.
    compute: str
    #: The normalized columns the function reads (an identifier reads its own column).
    columns: tuple[str, ...] = ()
    role: Role = "other"
    #: Levels whose weight the frequency of the agreed value adjusts (``term_frequency``).
    tf_levels: tuple[int, ...] = ()
    #: The column whose value's frequency adjusts them.
    tf_column: str | None = None
    #: Where levels agree on different values: the column of each of ``tf_levels`` (the
    #: name's ``exact`` level agrees on the whole name, ``core_exact`` on its core).
    tf_level_columns: tuple[str, ...] = ()
    #: Columns shown as left/right values in explanations.
    show: tuple[str, ...] = ()
    #: A comparison that counts only where the named one is missing (a coarser stand-in).
    stands_in_for: str | None = None
    #: Costly: in a build, compared only for the pairs that the other comparisons leave a
    #: chance to reach the review floor (see ``docs/engine.md``).
    deferred: bool = False
    #: The cheap upper bound used by pruning: ``"module:function"`` giving the strongest
    #: level each pair can reach, or ``None`` (every level is within reach).
    bound: str | None = None
    #: Levels ``0..strong_through`` are strong agreement (the EM's seed, roles name and place).
    strong_through: int | None = None
    #: Levels ``0..same_place_through`` put two records at the same place (role place).
    same_place_through: int | None = None
    #: Compared only when some record has a value in this column (a listing without
    #: phones has no phone comparison).
    needs: str | None = None
    params: tuple[Param, ...] = ()

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)


@dataclass(frozen=True)
class Comparison:
    """One comparison as a build uses it: a spec with its parameters resolved (and, for an
    identifier, its scheme's column as its name)."""

    name: str
    levels: tuple[str, ...]
    tf_levels: tuple[int, ...] = ()
    tf_column: str | None = None
    tf_level_columns: tuple[str, ...] = ()
    show: tuple[str, ...] = ()
    stands_in_for: str | None = None
    deferred: bool = False
    role: str = "other"
    columns: tuple[str, ...] = ()
    #: The spec's name (``identifier`` for every ``nid:<scheme>``).
    spec: str = ""
    #: Parameter values, in the spec's order.
    params: tuple[tuple[str, Any], ...] = field(default=())

    def param(self, name: str) -> Any:
        return dict(self.params)[name]

    def tf_columns(self) -> list[str]:
        """The columns whose values' frequencies adjust this comparison's weights."""
        return term_columns(self.tf_column, self.tf_level_columns)

    def compute(self, left: Any, right: Any) -> Any:
        """Each pair's level (int8; :data:`MISSING` where a value is missing)."""
        return load(spec(self.spec).compute)(self, left, right).astype("int8")

    def bound(self) -> Callable[..., Any] | None:
        """The cheap upper bound's function, if the spec has one."""
        ref = spec(self.spec).bound
        return None if ref is None else load(ref)


@dataclass
class Settings:
    """A comparison chosen by a config: its name, its term-frequency switch (``None``: the
    spec's default) and the parameters it sets (the others keep their defaults)."""

    name: str
    term_frequency: bool | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def resolved(self) -> dict[str, Any]:
        """As recorded in a build's config: every parameter, defaults included."""
        s = spec(self.name)
        out: dict[str, Any] = {"name": self.name}
        if s.tf_levels:
            out["term_frequency"] = (
                True if self.term_frequency is None else bool(self.term_frequency)
            )
        for p in s.params:
            value = self.params.get(p.name, p.default)
            out[p.name] = list(value) if isinstance(value, tuple) else value
        return out


def default_settings() -> list[Settings]:
    return [Settings(name) for name in DEFAULTS]


@functools.cache
def available() -> tuple[str, ...]:
    """The names of every registered comparison (the modules of this package)."""
    return tuple(
        sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    )


@functools.cache
def spec(name: str) -> Spec:
    """The spec of the comparison ``name`` (its module is imported on first use)."""
    if name not in available():
        raise KeyError(name)
    found = importlib.import_module(f"{__name__}.{name}").SPEC
    if not isinstance(found, Spec) or found.name != name:
        raise TypeError(f"{__name__}.{name}.SPEC must be a Spec named {name!r}")
    return found


@functools.cache
def load(ref: str) -> Callable[..., Any]:
    """The function named ``"module:function"``."""
    module, _, fn = ref.partition(":")
    return getattr(importlib.import_module(module), fn)


def term_columns(column: str | None, per_level: Iterable[str] = ()) -> list[str]:
    """The distinct term-frequency columns of a comparison (or model field): its
    ``tf_column`` and its levels' own columns."""
    out = [column] if column else []
    return out + [c for c in dict.fromkeys(per_level) if c not in out]


def is_identifier(name: str) -> bool:
    """Whether the comparison (or model field) ``name`` compares an identifier scheme."""
    return name.startswith(NID_PREFIX)


def spec_name(name: str) -> str:
    """The spec of a comparison's (or model field's) name: ``nid:<scheme>`` → ``identifier``."""
    return "identifier" if is_identifier(name) else name


def instance(settings: Settings, name: str | None = None) -> Comparison:
    """The comparison ``settings`` choose; ``name``: an identifier's ``nid:<scheme>``."""
    s = spec(settings.name)
    name = name or s.name
    values = {p.name: settings.params.get(p.name, p.default) for p in s.params}
    tf = s.tf_levels and settings.term_frequency is not False
    if s.role == "identifier":
        columns: tuple[str, ...] = (name,)
        show: tuple[str, ...] = (name,)
        tf_column = name if tf else None
    else:
        columns, show, tf_column = s.columns, s.show, (s.tf_column if tf else None)
    return Comparison(
        name,
        s.levels,
        tf_levels=s.tf_levels if tf else (),
        tf_column=tf_column,
        tf_level_columns=s.tf_level_columns if tf and s.role != "identifier" else (),
        show=show,
        stands_in_for=s.stands_in_for,
        deferred=s.deferred,
        role=s.role,
        columns=columns,
        spec=s.name,
        params=tuple(values.items()),
    )


def settings_from(recorded: Iterable[Mapping[str, Any]] | None) -> list[Settings]:
    """The comparisons a build recorded in its config (``comparisons``, as
    :meth:`Settings.resolved` wrote them); the defaults for a build that recorded none."""
    if not recorded:
        return default_settings()
    out = []
    for entry in recorded:
        s = spec(str(entry["name"]))
        params = {}
        for p in s.params:
            if p.name in entry:
                value = entry[p.name]
                params[p.name] = tuple(value) if isinstance(value, list) else value
        tf = entry.get("term_frequency")
        out.append(Settings(s.name, None if tf is None else bool(tf), params))
    return out


def place_comparison(names: Iterable[str]) -> tuple[str, int] | None:
    """Of the comparisons ``names``, the first whose role is ``place``, with the strongest
    levels at which its pairs are at the same place (``0..level``)."""
    for name in names:
        if is_identifier(name) or name not in available():
            continue
        s = spec(name)
        if s.role == "place" and s.same_place_through is not None:
            return name, s.same_place_through
    return None
