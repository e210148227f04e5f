"""The worked example of ``docs/engine.md`` ("Adding a comparison") is the real module, and
choosing it in a config is all it takes: the build fits it, ``crosswalk explain`` shows it."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

from crosswalk.stages.comparisons import DEFAULTS, available, spec

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "engine.md"
MODULE = ROOT / "crosswalk" / "stages" / "comparisons" / "county.py"


def _block(marker: str) -> str:
    """The fenced block between ``<!-- marker -->`` and ``<!-- /marker -->`` of the doc."""
    text = DOC.read_text(encoding="utf-8")
    found = re.search(
        rf"<!-- {re.escape(marker)} -->\n```\w*\n(.*?)```\n<!-- /{re.escape(marker)} -->",
        text,
        re.S,
    )
    assert found, f"docs/engine.md has no block marked {marker}"
    return found.group(1)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crosswalk.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def test_the_doc_shows_the_module_as_it_is() -> None:
    assert _block("county.py") == MODULE.read_text(encoding="utf-8")


def test_county_is_registered_but_not_a_default() -> None:
    assert "county" in available() and "county" not in DEFAULTS
    assert spec("county").levels == ("same", "different")


def test_a_build_choosing_county_fits_and_explains_it(slice_dir: Path, tmp_path: Path) -> None:
    lines = _block("county.toml")
    assert re.findall(r'name = "(\w+)"', lines) == [*DEFAULTS, "county"]
    config = slice_dir / "county.toml"  # beside the slice's files, which it names
    config.write_text((slice_dir / "slice.toml").read_text(encoding="utf-8") + "\n" + lines)
    out = tmp_path / "out"
    built = _cli("build", "--config", str(config), "--out", str(out), "--quiet")
    assert built.returncode == 0, built.stderr
    db = out / "crosswalk.sqlite"
    with sqlite3.connect(db) as con:
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        linked = con.execute(
            "SELECT source_l, record_id_l, source_r, record_id_r FROM links "
            "WHERE json_extract(explanation, '$.county.level') = 'same' LIMIT 1"
        ).fetchone()
    fields = {f["name"]: f for f in json.loads(meta["model"])["fields"]}
    assert list(fields)[-1] == "county"
    county = fields["county"]
    assert county["levels"] == ["same", "different"]
    for probs in (county["m"], county["u"]):
        assert abs(sum(probs) - 1.0) < 1e-9 and all(0.0 < p < 1.0 for p in probs)
    # the same county is far more common among matches than among random pairs
    assert county["m"][0] > 0.9 and county["u"][0] < 0.6
    assert county["bits"][0] > 0 > county["bits"][1]
    assert {"name": "county"} in json.loads(meta["config"])["comparisons"]
    assert linked is not None
    shown = _cli("explain", f"{linked[0]}:{linked[1]}", f"{linked[2]}:{linked[3]}", "--db", str(db))
    assert shown.returncode == 0, shown.stderr
    line = next(x for x in shown.stdout.splitlines() if x.split()[:1] == ["county"])
    assert line.split()[1] == "same"
    assert abs(float(line.split()[2]) - county["bits"][0]) <= 0.01
