"""The comparisons registry and the ``[[comparison]]`` tables: the defaults are the engine's
comparisons as they were, each in its order; a config chooses and tunes them, checked
against the registry; a published crosswalk's matcher rebuilds them as the build tuned them."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from crosswalk.config import Config, load_config
from crosswalk.errors import ConfigError
from crosswalk.matching import Matcher
from crosswalk.pipeline import build
from crosswalk.stages.compare import compared_columns, comparison_by_name, comparisons_for
from crosswalk.stages.comparisons import DEFAULTS, available
from crosswalk.stages.normalize import normalize_records

ROOT = Path(__file__).resolve().parents[2]

# The comparisons as the engine declared them before they were data: name, levels,
# term-frequency levels and column, shown columns, stand-in, deferred.
NAME = (
    "name",
    ("exact", "core_exact", "very_similar", "contained", "similar", "weak", "different"),
    (0, 1),
    "n_core",
    ("name",),
    None,
    True,
)
LOCATION = (
    "location",
    (
        "address_exact",
        "address_fuzzy",
        "nearby_or_same_street",
        "same_zip",
        "same_city",
        "same_region",
        "elsewhere",
    ),
    (0, 1),
    "n_address",
    ("address", "city", "zip"),
    None,
    False,
)
LOCALITY = (
    "locality",
    ("same_town", "same_region", "elsewhere"),
    (),
    None,
    ("city", "zip"),
    "location",
    False,
)
FACILITY_TYPE = (
    "facility_type",
    ("same", "compatible", "incompatible"),
    (),
    None,
    ("facility_type",),
    None,
    False,
)
# The phone's agreement weighs by how many other records carry the number.
PHONE = ("phone", ("exact", "different"), (0,), "n_phone", ("phone",), None, False)


def _identifier(col: str) -> tuple[object, ...]:
    return (col, ("agree", "disagree"), (0,), col, (col,), None, False)


COMPARED_BEFORE = {
    "n_name",
    "n_core",
    "n_other",
    "n_address",
    "n_number",
    "n_street",
    "n_street_name",
    "n_zip",
    "n_city",
    "n_lat",
    "n_lon",
    "n_class",
    "n_phone",
}


def _described(c: object) -> tuple[object, ...]:
    return tuple(
        getattr(c, k)
        for k in ("name", "levels", "tf_levels", "tf_column", "show", "stands_in_for", "deferred")
    )


def _records(**extra: list[str | None]) -> pd.DataFrame:
    base: dict[str, list[str | None]] = {
        "source": ["a", "b", "b"],
        "record_id": ["1", "2", "3"],
        "name": ["ALAMEDA HOSPITAL", "Alameda Hospital", "FAIRMONT HOSPITAL"],
        "address": ["2070 Clinton Ave", "2070 CLINTON AVENUE", "15400 Foothill Blvd"],
        "city": ["Alameda", "ALAMEDA", "San Leandro"],
        "zip": ["94501", "94501", "94578"],
    }
    return pd.DataFrame({k: pd.array(v, dtype="string") for k, v in {**base, **extra}.items()})


def test_the_defaults_are_the_comparisons_of_before_in_their_order(slice_dir: Path) -> None:
    assert [s.name for s in load_config(slice_dir / "slice.toml").comparisons] == list(DEFAULTS)
    frame = normalize_records(
        _records(
            facility_type=["Hospital", "General Acute Care Hospital", None],
            phone=["5105222000", None, None],
            **{
                "id:oshpd_id": ["106010735", "106010735", None],
                "id:npi": [None, "1215008461", None],
            },
        )
    )
    got = [_described(c) for c in comparisons_for(frame)]
    assert got == [
        NAME,
        LOCATION,
        LOCALITY,
        FACILITY_TYPE,
        PHONE,
        _identifier("nid:npi"),
        _identifier("nid:oshpd_id"),
    ]
    assert set(compared_columns(frame)) == COMPARED_BEFORE | {"nid:npi", "nid:oshpd_id"}
    # without any facility type, phone or identifier value, those are not compared
    bare = normalize_records(_records())
    assert [_described(c) for c in comparisons_for(bare)] == [NAME, LOCATION, LOCALITY]
    # a model's fields name the same comparisons
    assert _described(comparison_by_name("nid:npi")) == _identifier("nid:npi")
    assert _described(comparison_by_name("locality")) == LOCALITY


def test_reading_a_config_imports_no_numpy(slice_dir: Path) -> None:
    code = (
        "import sys; from crosswalk.config import load_config; "
        f"load_config({str(slice_dir / 'slice.toml')!r}); print('numpy' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def _config_with(slice_dir: Path, tables: str) -> tuple[Path, int]:
    """The slice's config with ``tables`` appended, and the line number of their first line."""
    text = (slice_dir / "slice.toml").read_text(encoding="utf-8").rstrip("\n") + "\n\n"
    path = slice_dir / "tuned.toml"
    path.write_text(text + tables, encoding="utf-8")
    return path, text.count("\n") + 1


@pytest.mark.parametrize(
    ("tables", "line", "message", "fix"),
    [
        (
            '[[comparison]]\nname = "nmae"\n',
            2,
            "unknown comparison 'nmae'.",
            "did you mean 'name'?",
        ),
        (
            '[[comparison]]\nname = "name"\nthreshold = [0.5, 0.7, 0.9]\n',
            3,
            "unknown parameter 'threshold' of comparison 'name'.",
            "did you mean 'thresholds'?",
        ),
        (
            '[[comparison]]\nname = "facility_type"\nlevels = 3\n',
            3,
            "unknown parameter 'levels' of comparison 'facility_type'.",
            "remove levels: it takes none.",
        ),
        (
            '[[comparison]]\nname = "name"\n\n[[comparison]]\nname = "location"\n'
            "street_thresholds = [0.85, 1.5]\n",
            6,
            "street_thresholds of comparison 'location': thresholds must lie in [0, 1], "
            "got [0.85, 1.5].",
            "use e.g. street_thresholds = [0.85, 0.95] (the default).",
        ),
        (
            '[[comparison]]\nname = "name"\nthresholds = [0.8, 0.6, 0.92]\n',
            3,
            "thresholds of comparison 'name': thresholds must be in increasing order, "
            "got [0.8, 0.6, 0.92].",
            "use e.g. thresholds = [0.6, 0.8, 0.92] (the default).",
        ),
        (
            '[[comparison]]\nname = "name"\nthresholds = [0.6, 0.9]\n',
            3,
            "thresholds of comparison 'name': expected 3 thresholds, got 2.",
            "use e.g. thresholds = [0.6, 0.8, 0.92] (the default).",
        ),
        (
            '[[comparison]]\nname = "location"\nnear_metres = -1\n',
            3,
            "near_metres of comparison 'location': must be a positive number of metres, got -1.",
            "use e.g. near_metres = 150.0 (the default).",
        ),
        (
            '[[comparison]]\nname = "name"\n\n[[comparison]]\nname = "phone"\n\n'
            '[[comparison]]\nname = "name"\n',
            8,
            "comparison 'name' is chosen twice (also by comparison[0]).",
            "keep one [[comparison]] table per comparison.",
        ),
        (
            '[[comparison]]\nname = "name"\n\n[[comparison]]\nname = "locality"\n',
            5,
            "comparison 'locality' stands in for 'location', which is not chosen.",
            "add a [[comparison]] table with name = \"location\", or remove 'locality'.",
        ),
        (
            '[[comparison]]\nname = "facility_type"\nterm_frequency = true\n',
            3,
            "comparison 'facility_type' has no term-frequency adjustment.",
            "remove term_frequency from this table.",
        ),
        (
            '[[comparison]]\nname = "name"\nterm_frequency = "no"\n',
            3,
            "expected true or false, got 'no'.",
            "write true or false.",
        ),
    ],
)
def test_a_wrong_comparison_table_is_a_config_error_with_its_line_and_fix(
    slice_dir: Path, tables: str, line: int, message: str, fix: str
) -> None:
    path, first = _config_with(slice_dir, tables)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (problem,) = info.value.problems
    assert problem.where.startswith(f"{path} line {first + line - 1} (comparison[")
    assert problem.message == message
    assert problem.fix == fix


def test_every_comparison_is_registered_once() -> None:
    assert set(DEFAULTS) <= set(available())
    assert len(set(available())) == len(available())


TUNED = """[[comparison]]
name = "name"
thresholds = [0.5, 0.75, 0.9]
term_frequency = false

[[comparison]]
name = "location"
near_metres = 300

[[comparison]]
name = "locality"

[[comparison]]
name = "identifier"
"""


def test_a_tuned_build_is_matched_with_its_tuning(slice_dir: Path, tmp_path: Path) -> None:
    path, _ = _config_with(slice_dir, TUNED)
    config = load_config(path)
    assert [s.name for s in config.comparisons] == ["name", "location", "locality", "identifier"]
    again = Config.from_dict(json.loads(config.to_json()))
    assert again.comparisons == config.comparisons
    out = tmp_path / "out"
    build(config, out, progress=False)
    db = out / "crosswalk.sqlite"
    matcher = Matcher.from_sqlite(db)
    name = matcher.comparisons[0]
    assert name.param("thresholds") == (0.5, 0.75, 0.9) and name.tf_column is None
    assert matcher.comparisons[1].param("near_metres") == 300.0
    assert [c.name for c in matcher.comparisons][:3] == ["name", "location", "locality"]
    with sqlite3.connect(db) as con:
        links = con.execute(
            "SELECT source_l, record_id_l, source_r, record_id_r, explanation FROM links "
            "ORDER BY rowid LIMIT 40"
        ).fetchall()
    assert links
    for sl, il, sr, ir, explanation in links:
        # the matcher scores each published link as the build did
        fields = matcher.explain_pair((sl, il), (sr, ir))["fields"]
        built = json.loads(explanation)
        assert {k: v["level"] for k, v in fields.items()} == {
            k: v["level"] for k, v in built.items()
        }
        assert all(abs(fields[k]["weight"] - v["weight"]) < 1e-6 for k, v in built.items())


def test_a_crosswalk_that_recorded_no_comparisons_gets_the_defaults(
    slice_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    build(load_config(slice_dir / "slice.toml"), out, progress=False)
    db = out / "crosswalk.sqlite"
    with sqlite3.connect(db) as con:
        (text,) = con.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
        recorded = json.loads(text)
        assert [c["name"] for c in recorded.pop("comparisons")] == list(DEFAULTS)
        con.execute("UPDATE meta SET value = ? WHERE key = 'config'", (json.dumps(recorded),))
    matcher = Matcher.from_sqlite(db)
    assert [_described(c) for c in matcher.comparisons][:5] == [
        NAME,
        LOCATION,
        LOCALITY,
        FACILITY_TYPE,
        PHONE,
    ]
    assert matcher.comparisons[0].param("thresholds") == (0.6, 0.8, 0.92)
