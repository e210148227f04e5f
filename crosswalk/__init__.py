"""crosswalk: link facility listings across departments into one published crosswalk.

The public Python API::

    import crosswalk
    config = crosswalk.load_config("data/sources.toml")
    result = crosswalk.build(config, "out/")            # read, link, publish
    frames = crosswalk.read_sources(config)             # {"cdph": df, ...}, as a build reads them
    linkage = crosswalk.link(frames, config)            # DataFrames in memory
    linkage.crosswalk()                                 # crosswalk.csv's columns
    crosswalk.evaluate("out/crosswalk.sqlite", "truth.csv", ("cdph", "FACID"), ("hcai", "OSHPD_ID"))
    crosswalk.Matcher.from_sqlite("out/crosswalk.sqlite").match([{"name": "...", "zip": "94501"}])

The names are imported on first use, so that ``import crosswalk`` (and the
command line's ``--help``) does not pay for pandas and the engine up front.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name → (module, attribute).
_EXPORTS = {
    "BuildResult": ("crosswalk.pipeline", "BuildResult"),
    "Candidate": ("crosswalk.matching", "Candidate"),
    "Config": ("crosswalk.config", "Config"),
    "ConfigError": ("crosswalk.errors", "ConfigError"),
    "CrosswalkError": ("crosswalk.errors", "CrosswalkError"),
    "Evaluation": ("crosswalk.evaluate", "Evaluation"),
    "Linkage": ("crosswalk.pipeline", "Linkage"),
    "Matcher": ("crosswalk.matching", "Matcher"),
    "SourceConfig": ("crosswalk.config", "SourceConfig"),
    "SourceError": ("crosswalk.errors", "SourceError"),
    "build": ("crosswalk.pipeline", "build"),
    "evaluate": ("crosswalk.evaluate", "evaluate"),
    "link": ("crosswalk.pipeline", "link_frames"),
    "load_config": ("crosswalk.config", "load_config"),
    "read_sources": ("crosswalk.pipeline", "read_sources"),
}

__all__ = [
    "BuildResult",
    "Candidate",
    "Config",
    "ConfigError",
    "CrosswalkError",
    "Evaluation",
    "Linkage",
    "Matcher",
    "SourceConfig",
    "SourceError",
    "__version__",
    "build",
    "evaluate",
    "link",
    "load_config",
    "read_sources",
]

if TYPE_CHECKING:
    from crosswalk.config import Config, SourceConfig, load_config
    from crosswalk.errors import ConfigError, CrosswalkError, SourceError
    from crosswalk.evaluate import Evaluation, evaluate
    from crosswalk.matching import Candidate, Matcher
    from crosswalk.pipeline import BuildResult, Linkage, build, read_sources
    from crosswalk.pipeline import link_frames as link


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'crosswalk' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
