"""The name rules switched for listings outside health care: a city's business licenses
linked with a county's food-facility inspections, through the CLI."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from crosswalk.config import Config, load_config, normalize_rules_of
from crosswalk.stages.normalize import normalize_records

ROOT = Path(__file__).resolve().parents[2]

# (license id, name, address, phone) and (inspection id, name, address, phone): the first
# eight are the same businesses written differently; the last rows are different
# businesses of one shopping centre whose names differ only in words that are generic in
# health care (MEDICAL, HOME, CENTER, CARE, SERVICES).
LICENSES = [
    ("BL-100231", "Mel's Drive-In Restaurant", "2165 Lombard St", "4159213335"),
    ("BL-100232", "St. Francis Fountain", "2801 24th St", "4158268707"),
    ("BL-100233", "Tony's Pizza Napoletana", "1570 Stockton St", "4158359888"),
    ("BL-100234", "House of Prime Rib", "1906 Van Ness Ave", "4158854605"),
    ("BL-100235", "Tartine Bakery & Cafe", "600 Guerrero St", "4154872600"),
    ("BL-100236", "Swan Oyster Depot", "1517 Polk St", "4156732757"),
    ("BL-100237", "Zuni Cafe", "1658 Market St", "4155522522"),
    ("BL-100238", "The Saint Restaurant", "1 Ferry Building", "4155551000"),
    ("BL-100301", "Stonestown Medical Supply", "3251 20th Ave", "4155556101"),
    ("BL-100302", "Stonestown Pet Care Center", "3251 20th Ave", "4155556102"),
    ("BL-100303", "Stonestown Home Services", "3251 20th Ave", "4155556103"),
]
INSPECTIONS = [
    ("FI-7781", "MELS DRIVE IN", "2165 LOMBARD ST", "(415) 921-3335"),
    ("FI-7782", "SAINT FRANCIS FOUNTAIN", "2801 24TH STREET", "(415) 826-8707"),
    ("FI-7783", "TONYS PIZZA NAPOLETANA", "1570 STOCKTON ST", "(415) 835-9888"),
    ("FI-7784", "HOUSE OF PRIME RIB RESTAURANT", "1906 VAN NESS AVE", "(415) 885-4605"),
    ("FI-7785", "TARTINE BAKERY", "600 GUERRERO ST", "(415) 487-2600"),
    ("FI-7786", "SWAN OYSTER DEPOT", "1517 POLK ST", "(415) 673-2757"),
    ("FI-7787", "ZUNI CAFE", "1658 MARKET ST", "(415) 552-2522"),
    ("FI-7788", "THE SAINT", "1 FERRY BLDG", "(415) 555-1000"),
    ("FI-7901", "STONESTOWN PET", "3251 20TH AVE", "(415) 555-6201"),
    ("FI-7902", "STONESTOWN SUPPLY", "3251 20TH AVE", "(415) 555-6202"),
]

BUSINESS_RULES = """
[names]
generic_words = false
extra_generic_words = ["RESTAURANT", "CAFE", "BAKERY"]
"""


def _config(tmp_path: Path, extra: str) -> Path:
    pd.DataFrame(LICENSES, columns=["LICENSE_ID", "DBA_NAME", "STREET", "PHONE"]).assign(
        CITY="San Francisco", ZIP="94110"
    ).to_csv(tmp_path / "licenses.csv", index=False)
    pd.DataFrame(INSPECTIONS, columns=["FACILITY_ID", "NAME", "ADDRESS", "PHONE"]).assign(
        CITY="SAN FRANCISCO", ZIP="94110"
    ).to_csv(tmp_path / "inspections.csv", index=False)
    config = tmp_path / "business.toml"
    config.write_text(
        "\n".join(
            f'[[source]]\nname = "{name}"\npath = "{name}.csv"\nid_column = "{ident}"\n'
            f'[source.fields]\nname = "{col}"\naddress = "{addr}"\ncity = "CITY"\n'
            'zip = "ZIP"\nphone = "PHONE"\n'
            for name, ident, col, addr in (
                ("licenses", "LICENSE_ID", "DBA_NAME", "STREET"),
                ("inspections", "FACILITY_ID", "NAME", "ADDRESS"),
            )
        )
        + extra,
        encoding="utf-8",
    )
    return config


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crosswalk.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The two listings built with the default (health-care) name rules and with
    business rules: each build's crosswalk."""
    out: dict[str, Path] = {}
    for rules, extra in (("health", ""), ("business", BUSINESS_RULES)):
        at = tmp_path_factory.mktemp(rules)
        config = _config(at, extra)
        proc = _run("build", "--config", str(config), "--out", str(at / "out"), "--quiet")
        assert proc.returncode == 0, proc.stderr
        out[rules] = at / "out" / "crosswalk.sqlite"
    return out


def _name_level(db: Path, a: str, b: str) -> str:
    proc = _run("explain", f"licenses:{a}", f"inspections:{b}", "--db", str(db), "--json")
    assert proc.returncode == 0, proc.stderr
    return str(json.loads(proc.stdout)["fields"]["name"]["level"])


@pytest.mark.parametrize(
    ("a", "b", "health", "business"),
    [
        # different businesses: one name core under health-care rules, not under others
        ("BL-100301", "FI-7902", "core_exact", "contained"),
        ("BL-100302", "FI-7901", "core_exact", "contained"),
        # the same business without "RESTAURANT": one name core once that word is generic
        ("BL-100231", "FI-7781", "contained", "core_exact"),
    ],
)
def test_name_rules_switched_for_a_business_listing(
    builds: dict[str, Path], a: str, b: str, health: str, business: str
) -> None:
    assert _name_level(builds["health"], a, b) == health
    assert _name_level(builds["business"], a, b) == business


def test_a_business_listing_links_with_business_rules(builds: dict[str, Path]) -> None:
    with sqlite3.connect(builds["business"]) as db:
        linked = db.execute(
            "SELECT a.record_id, b.record_id FROM records a JOIN records b USING (entity_id) "
            "WHERE a.source = 'licenses' AND b.source = 'inspections' ORDER BY 1"
        ).fetchall()
    assert linked == [(a[0], b[0]) for a, b in zip(LICENSES[:8], INSPECTIONS[:8], strict=True)]


def test_name_rules_per_source_and_their_round_trip(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        BUSINESS_RULES + '\n[[source]]\nname = "x"\npath = "x.csv"\nid_column = "ID"\n'
        '[source.fields]\nname = "N"\n[source.names]\nsaint = false\ngeneric_words = true\n',
    )
    cfg = load_config(config)
    again = Config.from_dict(tomllib.loads(cfg.to_toml()))
    assert again == cfg and Config.from_dict(json.loads(cfg.to_json())) == cfg
    rules = cfg.normalize_rules()
    assert normalize_rules_of(json.loads(cfg.to_json())) == rules
    records = pd.DataFrame(
        {
            "source": ["licenses", "x", "x"],
            "record_id": ["1", "2", "3"],
            "name": ["St. Francis Medical Cafe", "St. Francis Medical Cafe", "THE HOME CAFE ROMA"],
        }
    )
    frame = normalize_records(records, rules)
    # the build's rules: SAINT, health words kept, CAFE dropped from the core
    assert frame["n_name"].tolist()[0] == "SAINT FRANCIS MEDICAL CAFE"
    assert frame["n_core"].tolist()[0] == "SAINT FRANCIS MEDICAL"
    # source x: ST as written, health words dropped (and the build's CAFE)
    assert frame["n_name"].tolist()[1] == "ST FRANCIS MEDICAL CAFE"
    assert frame["n_core"].tolist()[1:] == ["ST FRANCIS", "ROMA"]


def test_a_generic_word_of_two_words_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path, '\n[names]\nextra_generic_words = ["FOOD COURT"]\n')
    proc = _run("build", "--config", str(config), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    line = (
        config.read_text(encoding="utf-8")
        .splitlines()
        .index('extra_generic_words = ["FOOD COURT"]')
    )
    assert f"business.toml line {line + 1} (names.extra_generic_words)" in proc.stderr
    assert "'FOOD COURT' is not one word" in proc.stderr
