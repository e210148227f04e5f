"""Typed settings: the declarative sources file and the engine's knobs.

A config is a TOML (or JSON) document. Each ``[[source]]`` table declares one
department listing; the optional ``[blocking]``, ``[model]``, ``[clustering]``
and ``[review]`` tables tune the engine. ``docs/sources.md`` documents every
key; ``[[comparison]]`` tables choose and tune the comparisons (``docs/engine.md``).
:func:`load_config` reports *all* problems at once, each with the file, the line
where it can be found, and the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import tomli_w

from crosswalk.errors import ConfigError, Problem
from crosswalk.stages.comparisons import Settings as ComparisonSettings
from crosswalk.stages.comparisons import available as available_comparisons
from crosswalk.stages.comparisons import default_settings, spec
from crosswalk.stages.rules import NormalizeRules, SourceRules
from crosswalk.vocabulary import BLOCKING_RULES, FIELD_NAMES, REVIEW_DEFAULTS, SCHEMES

#: Identifier schemes with a dedicated normalizer (see ``matchers.identifiers``).
#: Other scheme names are accepted and normalized generically.
KNOWN_SCHEMES = tuple(SCHEMES)

FORMATS = ("csv", "xlsx")
ENCODINGS = ("auto", "utf-8", "utf-8-sig", "cp1252", "latin-1")
_SCHEME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_SOURCE_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclass
class FieldMap:
    """Which column of the source feeds each common facility field."""

    name: str | None = None
    other_names: list[str] = field(default_factory=list)
    address: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    county: str | None = None
    phone: str | None = None
    latitude: str | None = None
    longitude: str | None = None
    facility_type: str | None = None

    def columns(self) -> dict[str, list[str]]:
        """Map each mapped field to its column(s)."""
        out: dict[str, list[str]] = {}
        for name in FIELD_NAMES:
            value = getattr(self, name)
            if isinstance(value, list):
                if value:
                    out[name] = list(value)
            elif value:
                out[name] = [value]
        return out


@dataclass
class IdentifierColumn:
    """A column holding an identifier of a known or declared scheme."""

    column: str
    scheme: str


@dataclass
class NameSettings:
    """The name rules of a build (``[names]``): made for health-care facility names, each
    can be switched off for listings of other fields (restaurants, schools, businesses)."""

    #: ``ST`` at the start of a name or before a given name reads as ``SAINT``.
    saint: bool = True
    #: The core of a name (compared, and blocked on) drops the generic words of health
    #: care (HOSPITAL, MEDICAL, CENTER, HEALTH, CARE, HOME, CLINIC, SERVICES, ...).
    generic_words: bool = True
    #: More words the core drops, e.g. ["RESTAURANT", "CAFE"] for a restaurant listing.
    extra_generic_words: list[str] = field(default_factory=list)


@dataclass
class SourceNameSettings:
    """A source's own name rules (``[source.names]``); a key not given is the build's."""

    saint: bool | None = None
    generic_words: bool | None = None
    extra_generic_words: list[str] | None = None

    def over(self, build: NameSettings) -> NameSettings:
        """The build's name rules with this source's keys instead."""
        return NameSettings(
            build.saint if self.saint is None else self.saint,
            build.generic_words if self.generic_words is None else self.generic_words,
            list(
                build.extra_generic_words
                if self.extra_generic_words is None
                else self.extra_generic_words
            ),
        )


def _name_rules(names: NameSettings) -> dict[str, Any]:
    """The normalize stage's name rules (:class:`SourceRules` keys) of ``names``."""
    extra = sorted({w.strip().upper() for w in names.extra_generic_words if w.strip()})
    return {
        "saint": names.saint,
        "generic_words": names.generic_words,
        "extra_generic_words": tuple(extra),
    }


#: A row filter: a column, an operator and a quoted value or a list of them.
_FILTER_RE = re.compile(
    r"^\s*(?P<column>`[^`]+`|[A-Za-z_][A-Za-z0-9_.]*)\s*"
    r"(?P<op>==|!=|\bnot\s+in\b|\bin\b)\s*(?P<value>.*?)\s*$",
    re.DOTALL,
)
_QUOTED_RE = re.compile(r"\s*(?:\"((?:[^\"\\]|\\.)*)\"|'([^']*)')\s*")
FILTER_SYNTAX = (
    'COLUMN == "VALUE", COLUMN != "VALUE", COLUMN in ["A", "B"] or COLUMN not in ["A", "B"] '
    "(a column name with spaces or other characters between backticks: `Facility Type`)"
)


@dataclass(frozen=True)
class RowFilter:
    """One condition of a source's ``filter``: a record is kept when its ``column``, trimmed,
    equals one of ``values`` (``keep``) or none of them (not ``keep``)."""

    column: str
    keep: bool
    values: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> RowFilter:
        """Read ``COLUMN == "X"``, ``!=``, ``in [...]`` or ``not in [...]``; a
        :class:`ValueError` saying what is wrong otherwise. Nothing is evaluated."""
        m = _FILTER_RE.match(text)
        if m is None:
            raise ValueError(f"{text!r} is not a condition")
        column, op, value = m["column"].strip("`"), " ".join(m["op"].split()), m["value"]
        if op in ("==", "!="):
            values = _quoted_list(value, f"{op} takes one quoted value")
            if values is None or len(values) != 1 or value.lstrip().startswith("["):
                raise ValueError(f"{op} takes one quoted value, got {value!r}")
        else:
            inner = value[1:-1] if value.startswith("[") and value.endswith("]") else None
            values = _quoted_list(inner, "") if inner is not None else None
            if not values:
                raise ValueError(f"{op} takes a list of quoted values, got {value!r}")
        return cls(column, op in ("==", "in"), tuple(v.strip() for v in values))


def _quoted_list(text: str | None, what: str) -> list[str] | None:
    """The quoted strings of a comma-separated list, or ``None`` when it is not one."""
    if text is None:
        return None
    out: list[str] = []
    for part in _split_commas(text):
        m = _QUOTED_RE.fullmatch(part)
        if m is None:
            return None
        out.append(m[1].replace('\\"', '"') if m[1] is not None else m[2])
    return out


def _split_commas(text: str) -> list[str]:
    """``text`` split at the commas outside quotes."""
    parts, start, quote = [], 0, ""
    for i, c in enumerate(text):
        if quote:
            if c == quote and text[i - 1] != "\\":
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == ",":
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


@dataclass
class SourceConfig:
    """One department listing."""

    name: str
    path: str
    id_column: str
    format: str = "csv"
    publisher: str = ""
    title: str = ""
    extracted: str = ""
    sheet: str | None = None
    #: The row holding the column names (1: the first; title rows above are skipped).
    header_row: int = 1
    #: Conditions a record must all meet to be read (see :class:`RowFilter`).
    filter: list[str] = field(default_factory=list)
    #: Record ids made of digits are zero-padded to this width (0: read as they are).
    id_width: int = 0
    encoding: str = "auto"
    delimiter: str = ","
    max_per_entity: int = 1
    fields: FieldMap = field(default_factory=FieldMap)
    defaults: dict[str, str] = field(default_factory=dict)
    identifiers: list[IdentifierColumn] = field(default_factory=list)
    #: The source's own facility-type wordings that the common vocabulary does not know,
    #: each mapped to a class (matched ignoring case and surrounding spaces).
    facility_types: dict[str, str] = field(default_factory=dict)
    #: The source's own name rules, over the build's ``[names]``.
    names: SourceNameSettings = field(default_factory=SourceNameSettings)

    def row_filters(self) -> list[RowFilter]:
        """The conditions of ``filter``, parsed (checked when the config is loaded)."""
        return [RowFilter.parse(text) for text in self.filter]

    def rules(self, names: NameSettings | None = None) -> SourceRules:
        """How this source's records are normalized, in a build with the name rules
        ``names`` (the defaults when not given)."""
        return SourceRules(
            facility_types=tuple((k.strip().upper(), v) for k, v in self.facility_types.items()),
            **_name_rules(self.names.over(names or NameSettings())),
        )

    def resolved_path(self, base_dir: Path) -> Path:
        path = Path(self.path)
        return path if path.is_absolute() else (base_dir / path)


@dataclass
class BlockingSettings:
    rules: list[str] = field(default_factory=lambda: list(BLOCKING_RULES))
    #: Blocks with more candidate pairs than this are not paired all-to-all:
    #: each record is paired with its ``window`` nearest neighbours by name.
    max_block_pairs: int = 400
    window: int = 6
    #: ``zip_name_token`` keys each record by its ZIP with this many of its core-name
    #: tokens, the rarest first (0: with every token). See ``docs/engine.md`` for what
    #: fewer keys save and what they cost.
    zip_name_tokens: int = 0
    #: A name token is "rare" when at most this many records carry it.
    rare_token_max_records: int = 12
    #: ``rare_name`` pairs the records of a full normalized name, statewide, when at most
    #: this many records carry it.
    rare_name_max_records: int = 4
    #: Side of a geographic cell, in metres.
    geo_cell_metres: float = 150.0


@dataclass
class ModelSettings:
    #: Pairs at or above this match probability are linked.
    link_threshold: float = 0.5
    em_max_iterations: int = 200
    em_tolerance: float = 1e-6
    #: Random pairs sampled to estimate u probabilities.
    u_sample_pairs: int = 200_000
    #: Candidate pairs the EM is fitted on: a uniform random sample of them when there are
    #: more (0: all). The name comparison of the other pairs waits for the fitted model.
    em_sample_pairs: int = 1_000_000
    seed: int = 20200507
    #: Optional CSV of pairs known to be the same facility, to count m from instead of EM.
    #: Either columns source_l, record_id_l, source_r, record_id_r, or one id column per
    #: source named by training_left / training_right as "SOURCE=COLUMN" (a truth file).
    training_pairs: str | None = None
    training_left: str | None = None
    training_right: str | None = None


@dataclass
class ClusteringSettings:
    #: Clusters larger than this are flagged for review.
    large_cluster_size: int = REVIEW_DEFAULTS.large_cluster_size


@dataclass
class ReviewSettings:
    #: Pairs whose match probability falls in [low, high) go to review.
    uncertain_low: float = REVIEW_DEFAULTS.uncertain_low
    uncertain_high: float = REVIEW_DEFAULTS.uncertain_high
    #: A decision with at least this many bits to spare is clear and not queued; raise it
    #: to queue more (a tie is 0 bits).
    clear_margin_bits: float = REVIEW_DEFAULTS.clear_margin_bits
    #: A cut that leaves a record with no link at all is clear only with this many bits
    #: to spare.
    orphan_margin_bits: float = REVIEW_DEFAULTS.orphan_margin_bits
    #: The review store. Relative paths are relative to the config file.
    store: str | None = None


@dataclass
class Config:
    sources: list[SourceConfig]
    blocking: BlockingSettings = field(default_factory=BlockingSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    clustering: ClusteringSettings = field(default_factory=ClusteringSettings)
    review: ReviewSettings = field(default_factory=ReviewSettings)
    #: The name rules of every source (``[names]``; a source's ``[source.names]`` over them).
    names: NameSettings = field(default_factory=NameSettings)
    #: The comparisons, in order (``[[comparison]]`` tables; see ``docs/engine.md``).
    comparisons: list[ComparisonSettings] = field(default_factory=default_settings)
    #: Directory that relative paths are resolved against (not serialized).
    base_dir: Path = field(default=Path("."), compare=False, repr=False)
    #: Where the config came from, for error messages (not serialized).
    origin: str = field(default="<config>", compare=False, repr=False)
    #: What is valid but looks wrong (see :func:`_scheme_warnings`; not serialized).
    warnings: list[Problem] = field(default_factory=list, compare=False, repr=False)

    def source(self, name: str) -> SourceConfig:
        for src in self.sources:
            if src.name == name:
                return src
        raise ConfigError(
            [
                Problem(
                    self.origin, f"no source named {name!r}.", f"use one of {self.source_names()}."
                )
            ]
        )

    def source_names(self) -> list[str]:
        return [s.name for s in self.sources]

    def normalize_rules(self) -> NormalizeRules:
        """How the normalize stage treats each source's records."""
        default = SourceRules(**_name_rules(self.names))
        return NormalizeRules(
            default,
            {s.name: r for s in self.sources if (r := s.rules(self.names)) != default},
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = _to_plain(self)
        # every parameter, defaults included: a build records how its comparisons were tuned
        out["comparisons"] = [c.resolved() for c in self.comparisons]
        return out

    def to_toml(self) -> str:
        data = _drop_none(self.to_dict())
        data["source"] = data.pop("sources")
        data["comparison"] = data.pop("comparisons")
        return tomli_w.dumps(data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(
        cls,
        data: dict[str, Any],
        *,
        base_dir: Path | None = None,
        origin: str = "<config>",
        text: str | None = None,
    ) -> Config:
        problems: list[Problem] = []
        data = dict(data)
        if "source" in data and "sources" not in data:
            data["sources"] = data.pop("source")
        loc = _Locator(origin, text)
        tables = data.pop("comparison", None)
        if "comparisons" in data:
            tables = data.pop("comparisons") if tables is None else tables
        comparisons = _comparisons(tables, problems, loc)
        cfg = _build(cls, data, "", problems, loc)
        if isinstance(cfg, Config):
            cfg.comparisons = comparisons
            _semantic_checks(cfg, problems, loc)
        if problems or not isinstance(cfg, Config):
            raise ConfigError(problems)
        cfg.base_dir = base_dir or Path(".")
        cfg.origin = origin
        cfg.warnings = _scheme_warnings(cfg, _Locator(origin, text))
        return cfg


def load_config(path: str | Path) -> Config:
    """Read and validate a config file (``.toml`` or ``.json``)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(
            [
                Problem(
                    str(path),
                    "the config file does not exist.",
                    "check the path given to --config.",
                )
            ]
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [
                Problem(
                    str(path),
                    f"the config is not UTF-8 ({exc.reason} at byte {exc.start}).",
                    "save the config file as UTF-8.",
                )
            ]
        ) from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            [
                Problem(
                    str(path),
                    f"not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {exc}.",
                    "correct the syntax at the position given.",
                )
            ]
        ) from exc
    return Config.from_dict(data, base_dir=path.resolve().parent, origin=str(path), text=text)


# --------------------------------------------------------------------------- internals

T = TypeVar("T")

#: Fields of the settings that are not keys of the config file.
_NOT_KEYS = ("base_dir", "origin", "warnings", "comparisons")


class _Locator:
    """Finds the line of a key in the config text, for error messages."""

    def __init__(self, origin: str, text: str | None) -> None:
        self.origin = origin
        self.lines = text.splitlines() if text else []

    def where(self, dotted: str, key: str | None = None, value: str | None = None) -> str:
        """``origin line N (dotted)``, N being the first line setting ``key`` (to ``value``
        when given, as a string)."""
        if key and self.lines:
            pattern = re.compile(
                rf"^\s*\"?{re.escape(key)}\"?\s*="
                + (rf"\s*[\"']{re.escape(value)}[\"']" if value is not None else "")
            )
            for no, line in enumerate(self.lines, start=1):
                if pattern.match(line):
                    return f"{self.origin} line {no} ({dotted})"
        return f"{self.origin} ({dotted})" if dotted else self.origin

    def in_table(self, header: str, index: int, dotted: str, key: str | None = None) -> str:
        """``origin line N (dotted)``: N is the line setting ``key`` in the ``index``-th
        ``[[header]]`` table, or that table's header line without ``key``."""
        heads = [
            no
            for no, line in enumerate(self.lines, start=1)
            if re.match(rf"^\s*\[\[\s*{re.escape(header)}\s*\]\]", line)
        ]
        if index >= len(heads):
            return f"{self.origin} ({dotted})"
        at = heads[index]
        if key:
            pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
            for no in range(at + 1, len(self.lines) + 1):
                line = self.lines[no - 1]
                if re.match(r"^\s*\[", line):
                    break
                if pattern.match(line):
                    return f"{self.origin} line {no} ({dotted})"
        return f"{self.origin} line {at} ({dotted})"


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}s"
    if origin is dict:
        return "a table"
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _type_name(args[0])
    if dataclasses.is_dataclass(tp):
        return "a table"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _build(tp: Any, value: Any, path: str, problems: list[Problem], loc: _Locator) -> Any:
    key = path.rsplit(".", 1)[-1].split("[")[0] if path else None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _build(args[0], value, path, problems, loc)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            problems.append(
                Problem(
                    loc.where(path, key),
                    f"expected a table, got {value!r}.",
                    f"write [{path}] as a table of keys.",
                )
            )
            return None
        hints = typing.get_type_hints(tp)
        fields = {f.name: f for f in dataclasses.fields(tp) if f.name not in _NOT_KEYS}
        kwargs: dict[str, Any] = {}
        for k, v in value.items():
            sub = f"{path}.{k}" if path else k
            if k not in fields:
                close = difflib.get_close_matches(k, list(fields), n=1)
                fix = (
                    f"did you mean {close[0]!r}?" if close else f"known keys are {sorted(fields)}."
                )
                problems.append(Problem(loc.where(sub, k), f"unknown key {k!r}.", fix))
                continue
            kwargs[k] = _build(hints[k], v, sub, problems, loc)
        for name, f in fields.items():
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if required and name not in value:
                problems.append(
                    Problem(
                        loc.where(path),
                        f"missing required key {name!r}.",
                        f"add {name} = ... to [{path or 'top level'}].",
                    )
                )
        if any(kwargs.get(n) is None and n in value and value[n] is not None for n in kwargs):
            return None
        if len([p for p in fields if p in kwargs or _has_default(fields[p])]) < len(fields):
            return None
        return tp(**kwargs)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, str) and item_tp is str:
            value = [value]
        if not isinstance(value, list):
            problems.append(
                Problem(
                    loc.where(path, key),
                    f"expected {_type_name(tp)}, got {value!r}.",
                    f"write {key} = [ ... ].",
                )
            )
            return None
        return [_build(item_tp, v, f"{path}[{i}]", problems, loc) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(
                Problem(
                    loc.where(path, key),
                    f"expected a table, got {value!r}.",
                    f'write [{path}] with key = "value" lines.',
                )
            )
            return None
        return {str(k): str(v) for k, v in value.items()}
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (str, int, float, bool) and not (
        isinstance(value, tp) and not (tp is int and isinstance(value, bool))
    ):
        problems.append(
            Problem(
                loc.where(path, key),
                f"expected {_type_name(tp)}, got {value!r}.",
                f"give {key} {_type_name(tp)}.",
            )
        )
        return None
    return value


def _comparisons(value: Any, problems: list[Problem], loc: _Locator) -> list[ComparisonSettings]:
    """The ``[[comparison]]`` tables, checked against the registry
    (:mod:`crosswalk.stages.comparisons`); the default comparisons without any."""
    if value is None:
        return default_settings()
    names = list(available_comparisons())
    if not isinstance(value, list) or not value or not all(isinstance(t, dict) for t in value):
        problems.append(
            Problem(
                loc.where("comparison"),
                f"expected one or more [[comparison]] tables, got {value!r}.",
                f'write a [[comparison]] table with name = "..." per comparison, from {names}; '
                "or none, for the default comparisons.",
            )
        )
        return default_settings()
    out: list[ComparisonSettings] = []
    seen: dict[str, int] = {}
    for i, table in enumerate(value):
        p = f"comparison[{i}]"
        name = table.get("name")
        if not isinstance(name, str):
            problems.append(
                Problem(
                    loc.in_table("comparison", i, p, "name" if "name" in table else None),
                    "a [[comparison]] table without a name."
                    if name is None
                    else f"expected a string, got {name!r}.",
                    f'give it name = "..." (one of {names}).',
                )
            )
            continue
        where = loc.in_table("comparison", i, f"{p}.name", "name")
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            problems.append(
                Problem(
                    where,
                    f"unknown comparison {name!r}.",
                    f"did you mean {close[0]!r}?"
                    if close
                    else f"use one of {names} (docs/engine.md shows how to add one).",
                )
            )
            continue
        if name in seen:
            problems.append(
                Problem(
                    where,
                    f"comparison {name!r} is chosen twice (also by comparison[{seen[name]}]).",
                    "keep one [[comparison]] table per comparison.",
                )
            )
            continue
        seen[name] = i
        sp = spec(name)
        keys = [q.name for q in sp.params] + (["term_frequency"] if sp.tf_levels else [])
        term_frequency: bool | None = None
        params: dict[str, Any] = {}
        for k, v in table.items():
            if k == "name":
                continue
            at = loc.in_table("comparison", i, f"{p}.{k}", k)
            if k == "term_frequency":
                if not isinstance(v, bool):
                    problems.append(
                        Problem(at, f"expected true or false, got {v!r}.", "write true or false.")
                    )
                elif v and not sp.tf_levels:
                    problems.append(
                        Problem(
                            at,
                            f"comparison {name!r} has no term-frequency adjustment.",
                            "remove term_frequency from this table.",
                        )
                    )
                else:
                    term_frequency = v
                continue
            param = next((q for q in sp.params if q.name == k), None)
            if param is None:
                close = difflib.get_close_matches(k, keys, n=1)
                problems.append(
                    Problem(
                        at,
                        f"unknown parameter {k!r} of comparison {name!r}.",
                        f"did you mean {close[0]!r}?"
                        if close
                        else (
                            f"its parameters are {keys}." if keys else f"remove {k}: it takes none."
                        ),
                    )
                )
                continue
            stored, wrong = param.check(v)
            if wrong is not None:
                problems.append(
                    Problem(
                        at,
                        f"{k} of comparison {name!r}: {wrong}.",
                        f"use e.g. {k} = {param.example()} (the default).",
                    )
                )
            elif stored != param.default:  # as the defaults are kept: equal configs compare equal
                params[k] = stored
        if term_frequency is not None and term_frequency == bool(sp.tf_levels):
            term_frequency = None
        out.append(ComparisonSettings(name, term_frequency, params))
    chosen = {s.name for s in out}
    for s in out:
        needed = spec(s.name).stands_in_for
        if needed is not None and needed not in chosen:
            problems.append(
                Problem(
                    loc.in_table(
                        "comparison", seen[s.name], f"comparison[{seen[s.name]}].name", "name"
                    ),
                    f"comparison {s.name!r} stands in for {needed!r}, which is not chosen.",
                    f'add a [[comparison]] table with name = "{needed}", or remove {s.name!r}.',
                )
            )
    return out


def _has_default(f: dataclasses.Field[Any]) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def _semantic_checks(cfg: Config, problems: list[Problem], loc: _Locator) -> None:
    if not cfg.sources:
        problems.append(
            Problem(
                loc.origin,
                "no sources are declared.",
                "add at least one [[source]] table (see docs/sources.md).",
            )
        )
    seen: set[str] = set()
    for i, src in enumerate(cfg.sources):
        if src is None:  # structural problems already reported
            continue
        p = f"source[{i}]"
        if not _SOURCE_NAME_RE.match(src.name):
            problems.append(
                Problem(
                    loc.where(f"{p}.name", "name"),
                    f"source name {src.name!r} is not a short lower-case slug.",
                    "use letters, digits, '-' or '_', starting with a letter, e.g. \"cdph\".",
                )
            )
        if src.name in seen:
            problems.append(
                Problem(
                    loc.where(f"{p}.name", "name"),
                    f"source name {src.name!r} is used twice.",
                    "give every source a distinct name.",
                )
            )
        seen.add(src.name)
        if src.format not in FORMATS:
            problems.append(
                Problem(
                    loc.where(f"{p}.format", "format"),
                    f"unknown format {src.format!r}.",
                    f"use one of {list(FORMATS)}.",
                )
            )
        if src.encoding not in ENCODINGS:
            problems.append(
                Problem(
                    loc.where(f"{p}.encoding", "encoding"),
                    f"unsupported encoding {src.encoding!r}.",
                    f'use one of {list(ENCODINGS)} ("auto" detects it).',
                )
            )
        for key, value in (("header_row", src.header_row), ("id_width", src.id_width)):
            least = 1 if key == "header_row" else 0
            if value < least:
                problems.append(
                    Problem(
                        loc.where(f"{p}.{key}", key),
                        f"{key} must be at least {least}, not {value}.",
                        "set header_row to the row holding the column names (1: the first)."
                        if key == "header_row"
                        else "set id_width to the ids' full width, e.g. 9, or 0 to read them as they are.",
                    )
                )
        for j, text in enumerate(src.filter):
            try:
                RowFilter.parse(text)
            except ValueError as exc:
                problems.append(
                    Problem(
                        loc.where(f"{p}.filter[{j}]", "filter"),
                        f"filter {text!r} cannot be read: {exc}.",
                        f"write each condition as {FILTER_SYNTAX}.",
                    )
                )
        if src.max_per_entity < 0:
            problems.append(
                Problem(
                    loc.where(f"{p}.max_per_entity", "max_per_entity"),
                    "max_per_entity must be 0 (no limit) or more.",
                    "set it to 1 or 0.",
                )
            )
        if not src.fields.name:
            problems.append(
                Problem(
                    loc.where(f"{p}.fields"),
                    "no column feeds the facility name.",
                    f'add name = "COLUMN" under [source.fields] of {src.name!r}.',
                )
            )
        for k in src.defaults:
            if k not in FIELD_NAMES:
                close = difflib.get_close_matches(k, FIELD_NAMES, n=1)
                problems.append(
                    Problem(
                        loc.where(f"{p}.defaults.{k}", k),
                        f"unknown field {k!r} in defaults.",
                        f"did you mean {close[0]!r}?"
                        if close
                        else f"use one of {list(FIELD_NAMES)}.",
                    )
                )
        for wording, fclass in src.facility_types.items():
            # only then: the vocabulary's module loads the engine's libraries
            from matchers.facility_types import FACILITY_CLASSES

            if fclass not in FACILITY_CLASSES:
                close = difflib.get_close_matches(fclass, FACILITY_CLASSES, n=1)
                problems.append(
                    Problem(
                        loc.where(f"{p}.facility_types.{wording}", wording),
                        f"facility type {wording!r} is mapped to {fclass!r}, which is not a "
                        "class of the common vocabulary.",
                        f"did you mean {close[0]!r}?"
                        if close
                        else f"use one of {list(FACILITY_CLASSES)} (docs/sources.md).",
                    )
                )
        for j, ident in enumerate(src.identifiers):
            if ident is not None and not _SCHEME_RE.match(ident.scheme):
                problems.append(
                    Problem(
                        loc.where(f"{p}.identifiers[{j}].scheme", "scheme"),
                        f"scheme {ident.scheme!r} is not a lower-case name.",
                        f"use e.g. one of {list(KNOWN_SCHEMES)}.",
                    )
                )
    word_lists = [("names", cfg.names.extra_generic_words if cfg.names else None)] + [
        (f"source[{i}].names", src.names.extra_generic_words if src and src.names else None)
        for i, src in enumerate(cfg.sources)
    ]
    for at, words in word_lists:
        for word in words or []:
            if not re.fullmatch(r"\s*[A-Za-z0-9]+\s*", word):
                problems.append(
                    Problem(
                        loc.where(f"{at}.extra_generic_words", "extra_generic_words"),
                        f"{word!r} is not one word of letters and digits: a name's core drops "
                        "whole words.",
                        'list each word on its own, e.g. extra_generic_words = ["FOOD", "COURT"].',
                    )
                )
    if cfg.blocking is None or cfg.model is None or cfg.review is None:
        return
    unknown_rules = [r for r in cfg.blocking.rules if r not in BLOCKING_RULES]
    for r in unknown_rules:
        close = difflib.get_close_matches(r, BLOCKING_RULES, n=1)
        problems.append(
            Problem(
                loc.where("blocking.rules", "rules"),
                f"unknown blocking rule {r!r}.",
                f"did you mean {close[0]!r}?" if close else f"use any of {list(BLOCKING_RULES)}.",
            )
        )
    # Counts that may be 0 but not negative.
    for section, names in (
        ("blocking", ("max_block_pairs", "window", "zip_name_tokens", "rare_name_max_records")),
        ("model", ("em_sample_pairs",)),
    ):
        settings = getattr(cfg, section)
        defaults = type(settings)()
        for name in names:
            value = getattr(settings, name)
            if isinstance(value, int) and value < 0:
                problems.append(
                    Problem(
                        loc.where(f"{section}.{name}", name),
                        f"{name} must be at least 0, not {value}.",
                        f"use e.g. {name} = {getattr(defaults, name)}.",
                    )
                )
    m = cfg.model
    if not 0.0 < m.link_threshold < 1.0:
        problems.append(
            Problem(
                loc.where("model.link_threshold", "link_threshold"),
                "link_threshold must be strictly between 0 and 1.",
                "use e.g. 0.5.",
            )
        )
    review = cfg.review
    if not 0.0 <= review.uncertain_low < review.uncertain_high <= 1.0:
        problems.append(
            Problem(
                loc.where("review", "uncertain_low"),
                "the uncertain band must satisfy 0 <= uncertain_low < uncertain_high <= 1.",
                f"use e.g. uncertain_low = {REVIEW_DEFAULTS.uncertain_low} and "
                f"uncertain_high = {REVIEW_DEFAULTS.uncertain_high}.",
            )
        )
    if not review.clear_margin_bits >= 0.0:
        problems.append(
            Problem(
                loc.where("review.clear_margin_bits", "clear_margin_bits"),
                "clear_margin_bits must be a number of bits, 0 or more.",
                f"use e.g. clear_margin_bits = {REVIEW_DEFAULTS.clear_margin_bits}.",
            )
        )
    if not review.orphan_margin_bits >= 0.0:
        problems.append(
            Problem(
                loc.where("review.orphan_margin_bits", "orphan_margin_bits"),
                "orphan_margin_bits must be a number of bits, 0 or more.",
                f"use e.g. orphan_margin_bits = {REVIEW_DEFAULTS.orphan_margin_bits}.",
            )
        )


def _scheme_warnings(cfg: Config, loc: _Locator) -> list[Problem]:
    """A warning for each identifier scheme that no other source declares and whose name is
    close to a known scheme's or to another source's: most likely a misspelling, which
    links nothing (``osphd_id`` for ``oshpd_id``)."""
    declared = {
        src.name: {ident.scheme for ident in src.identifiers if ident is not None}
        for src in cfg.sources
    }
    out: list[Problem] = []
    for i, src in enumerate(cfg.sources):
        others = set().union(*(v for k, v in declared.items() if k != src.name))
        for j, ident in enumerate(src.identifiers):
            scheme = ident.scheme
            if scheme in KNOWN_SCHEMES or scheme in others:
                continue
            candidates = sorted((set(KNOWN_SCHEMES) | others) - {scheme})
            close = difflib.get_close_matches(scheme, candidates, n=1, cutoff=0.75)
            if not close:
                continue
            out.append(
                Problem(
                    loc.where(f"source[{i}].identifiers[{j}].scheme", "scheme", scheme),
                    f"scheme {scheme!r} of source {src.name!r} is not a known scheme and no "
                    "other source declares it, so it links no records.",
                    f"did you mean {close[0]!r}?",
                )
            )
    return out


def _to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: _to_plain(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if f.name not in _NOT_KEYS
        }
    if isinstance(obj, list):
        return [_to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    return obj


def _drop_none(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _drop_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_drop_none(v) for v in obj]
    return obj


def normalize_rules_of(recorded: Any) -> NormalizeRules:
    """The normalize rules of a build, from the config it recorded (:meth:`Config.to_dict`);
    the default rules for what it did not record."""
    if not isinstance(recorded, dict):
        return NormalizeRules()
    try:
        names = NameSettings(**recorded.get("names", {}))
    except TypeError:
        names = NameSettings()
    known = {f.name for f in dataclasses.fields(SourceConfig)}
    out: list[SourceConfig] = []
    sources = recorded.get("sources")
    for table in sources if isinstance(sources, list) else []:
        try:
            kept = {k: v for k, v in table.items() if k in known}
            kept.pop("fields", None)
            kept.pop("identifiers", None)
            kept["names"] = SourceNameSettings(**kept.get("names", {}))
            out.append(SourceConfig(**kept))
        except (TypeError, AttributeError):
            continue
    return Config(out, names=names).normalize_rules()
