"""What the peer runners share: reading a crosswalk config's sources, cleaning, writing pairs.

The peers see exactly the inputs our engine sees: the same two files named by
the same config (``bench/blind.toml`` or a synthetic config from
``bench/synth.py``), read with the same column mapping. They use the columns
name, address, city, ZIP and facility type, with the light cleaning their
documentation recommends before linking (upper case, punctuation removed,
whitespace collapsed, ZIP cut to five digits). No identifier column is used.

This module runs under the bench virtualenv (``.venv-bench``), not the
project's, so it depends only on the standard library and pandas.
"""

from __future__ import annotations

import json
import re
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

#: The facility fields the peers compare, as named in a config's ``[source.fields]``.
PEER_FIELDS = ("name", "address", "city", "zip", "facility_type")

_NON_ALNUM = re.compile(r"[^A-Z0-9 ]+")
_SPACES = re.compile(r"\s+")


@dataclass
class Source:
    """One source of the config, loaded and cleaned."""

    name: str
    frame: (
        pd.DataFrame
    )  # columns: unique_id, name, address, city, zip, facility_type, street_number


@dataclass
class Timer:
    """Wall-clock seconds of each named phase of a run."""

    phases: dict[str, float] = field(default_factory=dict)
    _last: float = field(default_factory=time.perf_counter)

    def lap(self, name: str) -> None:
        """Close the current phase under ``name`` and start the next one."""
        now = time.perf_counter()
        self.phases[name] = round(now - self._last, 3)
        self._last = now


def _read_table(path: Path, spec: dict[str, Any], columns: list[str]) -> pd.DataFrame:
    fmt = spec.get("format", "csv")
    if fmt == "xlsx":
        return pd.read_excel(path, sheet_name=spec.get("sheet", 0), dtype=str, usecols=columns)
    encoding = spec.get("encoding", "auto")
    encodings = ["utf-8-sig", "cp1252"] if encoding == "auto" else [encoding]
    last: Exception | None = None
    for enc in encodings:
        try:
            return pd.read_csv(
                path,
                dtype=str,
                keep_default_na=False,
                encoding=enc,
                sep=spec.get("delimiter", ","),
                usecols=columns,
            )
        except UnicodeDecodeError as exc:
            last = exc
    raise RuntimeError(f"cannot decode {path}: {last}")


def clean_text(values: pd.Series) -> pd.Series:
    """Upper case, punctuation to spaces, whitespace collapsed; empty strings become null."""
    s = values.fillna("").astype(str).str.upper()
    s = s.str.replace(_NON_ALNUM, " ", regex=True).str.replace(_SPACES, " ", regex=True)
    s = s.str.strip()
    return s.where(s != "", None)


def load_sources(config_path: Path) -> list[Source]:
    """Read the first two sources of a crosswalk config, cleaned for the peers."""
    config = tomllib.loads(config_path.read_text(encoding="utf-8"))
    base = config_path.resolve().parent
    sources: list[Source] = []
    for spec in config["source"][:2]:
        fields = spec.get("fields", {})
        wanted = {f: fields[f] for f in PEER_FIELDS if fields.get(f)}
        id_col = spec["id_column"]
        columns = list(dict.fromkeys([id_col, *wanted.values()]))
        path = Path(spec["path"])
        raw = _read_table(path if path.is_absolute() else base / path, spec, columns)
        out = pd.DataFrame({"unique_id": raw[id_col].astype(str).str.strip()})
        for f in PEER_FIELDS:
            out[f] = clean_text(raw[wanted[f]]) if f in wanted else None
        zip5 = out["zip"].fillna("").str.replace(r"\D", "", regex=True).str[:5]
        out["zip"] = zip5.where(zip5.str.len() == 5, None)
        number = out["address"].fillna("").str.extract(r"^(\d+)", expand=False)
        out["street_number"] = number.where(number.notna(), None)
        sources.append(Source(spec["name"], out))
    if len(sources) != 2:
        raise SystemExit(f"{config_path}: the peers link exactly two sources")
    return sources


def greedy_one_to_one(pairs: pd.DataFrame, score: str = "match_probability") -> pd.DataFrame:
    """Keep each record's best link, greedily: highest score first, each record at most once."""
    ordered = pairs.sort_values(
        [score, "left_id", "right_id"], ascending=[False, True, True], kind="stable"
    )
    used_l: set[str] = set()
    used_r: set[str] = set()
    keep: list[int] = []
    for i, (left, right) in enumerate(
        zip(ordered["left_id"].to_numpy(), ordered["right_id"].to_numpy(), strict=True)
    ):
        if left in used_l or right in used_r:
            continue
        used_l.add(left)
        used_r.add(right)
        keep.append(i)
    return ordered.iloc[keep].reset_index(drop=True)


def write_outputs(
    out_dir: Path,
    pairs: dict[str, pd.DataFrame],
    stats: dict[str, Any],
) -> None:
    """Write each pair set as ``pairs_<kind>.csv`` (left_id, right_id, match_probability) and stats."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for kind, frame in pairs.items():
        cols = ["left_id", "right_id", "match_probability"]
        frame[cols].to_csv(out_dir / f"pairs_{kind}.csv", index=False)
        stats.setdefault("predicted_pairs", {})[kind] = len(frame)
    (out_dir / "stats.json").write_text(json.dumps(stats, indent=2, default=str))
