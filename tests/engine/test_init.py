"""`crosswalk init`: a commented starter config for a new pair of departments, which builds
once their files have the columns it names."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crosswalk.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


def test_init_writes_a_commented_config_that_builds(tmp_path: Path) -> None:
    done = _cli("init", "pair.toml", "--source", "cdph", "--source", "cms", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "pair.toml").read_text(encoding="utf-8")
    assert sum(line.lstrip().startswith("#") for line in text.splitlines()) >= 15
    config = tomllib.loads(text)
    assert [s["name"] for s in config["source"]] == ["cdph", "cms"]
    assert "pair.toml" in done.stdout and "crosswalk build --config" in done.stdout
    # The departments' files, with the columns the starter config names: a slice of the
    # embedded listings' real names and addresses, written as the config expects.
    hcai = pd.read_csv(ROOT / "tests" / "data" / "hcai_slice.csv", dtype=str).head(300)
    for source, rows in zip(config["source"], (hcai.iloc[:200], hcai.iloc[100:]), strict=True):
        fields = source["fields"]
        pd.DataFrame(
            {
                source["id_column"]: rows["OSHPD_ID"],
                fields["name"]: rows["FACILITY_NAME"],
                fields["address"]: rows["DBA_ADDRESS1"],
                fields["city"]: rows["DBA_CITY"],
                fields["zip"]: rows["DBA_ZIP_CODE"],
            }
        ).to_csv(tmp_path / source["path"], index=False)
    built = _cli("build", "--config", "pair.toml", "--out", "out", "--json", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "out" / "crosswalk.sqlite").is_file()


def test_init_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "sources.toml").write_text("# mine\n", encoding="utf-8")
    done = _cli("init", cwd=tmp_path)
    assert done.returncode == 2
    assert "sources.toml" in done.stderr and "Fix:" in done.stderr
    assert (tmp_path / "sources.toml").read_text(encoding="utf-8") == "# mine\n"
