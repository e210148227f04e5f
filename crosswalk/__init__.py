"""crosswalk: link facility listings across departments into one published crosswalk.

The public Python API::

    import crosswalk
    config = crosswalk.load_config("data/sources.toml")
    result = crosswalk.build(config, "build/")          # read, link, publish
    linkage = crosswalk.link({"cdph": df1, "hcai": df2}, config)   # DataFrames in memory
    linkage.crosswalk()                                 # entity_id, source, record_id, ...
    crosswalk.evaluate("build/crosswalk.sqlite", "truth.csv", ("cdph", "FACID"), ("hcai", "OSHPD_ID"))
    crosswalk.Matcher.from_sqlite("build/crosswalk.sqlite").match([{"name": "...", "zip": "94501"}])
"""

from __future__ import annotations

__version__ = "0.1.0"

from crosswalk.config import Config, SourceConfig, load_config
from crosswalk.errors import ConfigError, CrosswalkError, SourceError
from crosswalk.evaluate import Evaluation, evaluate
from crosswalk.matching import Candidate, Matcher
from crosswalk.pipeline import BuildResult, Linkage, build
from crosswalk.pipeline import link_frames as link

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
]
