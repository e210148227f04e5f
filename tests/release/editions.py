"""Later editions of the embedded listings, written as real files for rebuilds.

Each listing is read as text exactly as the engine reads it, edited, and
written back as UTF-8 CSV next to a copy of the config that points at it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import tomli_w

from crosswalk.config import load_config
from crosswalk.sources import read_raw

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "data" / "sources.toml"


@dataclass
class Edition:
    """The raw listings of one edition, by source name, plus the config they belong to."""

    frames: dict[str, pd.DataFrame]
    id_columns: dict[str, str] = field(default_factory=dict)


def read_edition(config_path: Path = CONFIG) -> Edition:
    """The listings of ``config_path`` as text frames (every cell a string or missing)."""
    cfg = load_config(config_path)
    frames: dict[str, pd.DataFrame] = {}
    for src in cfg.sources:
        frame = read_raw(src, cfg.base_dir)
        frames[src.name] = frame.astype(object).where(frame.notna(), None)
    return Edition(frames, {s.name: s.id_column for s in cfg.sources})


def write_edition(edition: Edition, out: Path, config_path: Path = CONFIG) -> Path:
    """Write every listing as CSV into ``out`` with a config pointing at them; returns the config."""
    out.mkdir(parents=True, exist_ok=True)
    doc = tomllib.loads(config_path.read_text(encoding="utf-8"))
    for src in doc["source"]:
        name = src["name"]
        path = out / f"{name}.csv"
        edition.frames[name].to_csv(path, index=False, encoding="utf-8", lineterminator="\n")
        src["path"] = path.name
        src["format"] = "csv"
        src["encoding"] = "utf-8"
        src.pop("sheet", None)
    target = out / "sources.toml"
    target.write_text(tomli_w.dumps(doc), encoding="utf-8")
    return target
