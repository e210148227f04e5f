"""crosswalk: link facility listings across departments into one published crosswalk."""

from __future__ import annotations

__version__ = "0.1.0"

from crosswalk.config import Config, SourceConfig, load_config
from crosswalk.errors import ConfigError, CrosswalkError, SourceError

__all__ = [
    "Config",
    "ConfigError",
    "CrosswalkError",
    "SourceConfig",
    "SourceError",
    "__version__",
    "load_config",
]
