"""The declarative config: the embedded example loads, round-trips, and bad configs report every problem."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from crosswalk.config import Config, load_config, normalize_rules_of
from crosswalk.errors import ConfigError


def test_embedded_config_declares_both_departments(embedded_config_path: Path) -> None:
    cfg = load_config(embedded_config_path)
    assert cfg.source_names() == ["cdph", "hcai"]
    cdph = cfg.source("cdph")
    assert cdph.format == "xlsx" and cdph.id_column == "FACID"
    assert {i.scheme for i in cdph.identifiers} == {"oshpd_id", "cdph_license", "npi"}
    assert cfg.source("hcai").fields.name == "FACILITY_NAME"


def test_config_round_trips_through_toml_and_json(embedded_config_path: Path) -> None:
    cfg = load_config(embedded_config_path)
    again = Config.from_dict(tomllib.loads(cfg.to_toml()))
    assert again == cfg
    assert Config.from_dict(json.loads(cfg.to_json())) == cfg


def test_source_options_round_trip_through_toml_and_json(embedded_config_path: Path) -> None:
    """Every option of a source, set away from its default, survives TOML and JSON; the
    normalize rules a build records are read back as they were."""
    cfg = load_config(embedded_config_path)
    hcai = cfg.source("hcai")
    hcai.facility_types = {"Special Hospital": "general_acute_hospital", "TRIBAL": "other"}
    hcai.header_row = 3
    hcai.filter = ['STATE == "CA"', "`Facility Type` not in ['LAB', 'PHARMACY']"]
    hcai.id_width = 9
    again = Config.from_dict(tomllib.loads(cfg.to_toml()))
    assert again == cfg and again.source("hcai").facility_types == hcai.facility_types
    assert again.source("hcai").filter == hcai.filter and again.source("hcai").id_width == 9
    assert Config.from_dict(json.loads(cfg.to_json())) == cfg
    rules = cfg.normalize_rules()
    assert rules.of("hcai").facility_types == (
        ("SPECIAL HOSPITAL", "general_acute_hospital"),
        ("TRIBAL", "other"),
    )
    assert rules.of("cdph") == rules.default
    assert normalize_rules_of(json.loads(cfg.to_json())) == rules


def test_every_problem_is_reported_at_once_with_lines_and_fixes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        "[[source]]\n"
        'name = "cdph"\n'
        "path = 3\n"
        'fromat = "csv"\n'
        "[source.fields]\n"
        'nmae = "FACNAME"\n'
        "[blocking]\n"
        'rules = ["zip_nme_token"]\n'
        "zip_name_tokens = -1\n"
        "window = -6\n"
        "[model]\n"
        "link_threshold = 1.5\n"
        "em_sample_pairs = -5\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    text = str(info.value)
    problems = info.value.problems
    assert len(problems) >= 5
    assert "line 3" in text and "expected a string" in text
    assert "line 4" in text and "did you mean 'format'" in text
    assert "line 6" in text and "did you mean 'name'" in text
    assert "missing required key 'id_column'" in text
    assert "did you mean 'zip_name_token'" in text
    assert "line 9 (blocking.zip_name_tokens): zip_name_tokens must be at least 0" in text
    assert "line 10 (blocking.window): window must be at least 0, not -6" in text
    assert "link_threshold" in text
    assert "line 13 (model.em_sample_pairs): em_sample_pairs must be at least 0, not -5" in text


def test_toml_syntax_error_names_the_position(tmp_path: Path) -> None:
    bad = tmp_path / "syntax.toml"
    bad.write_text('[[source]]\nname = "cdph\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"line 2"):
        load_config(bad)


def test_missing_config_file_says_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--config"):
        load_config(tmp_path / "nope.toml")


def test_a_negative_clear_margin_is_refused_naming_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[source]]\nname = "cdph"\npath = "x.csv"\nid_column = "ID"\n'
        '[source.fields]\nname = "NAME"\n'
        "[review]\nclear_margin_bits = -1\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert "line 8 (review.clear_margin_bits): clear_margin_bits must be" in str(info.value)


def test_the_clear_margin_is_read_from_the_builds_config() -> None:
    from crosswalk.review.disputes import _Rules

    assert _Rules.of({}).margin == pytest.approx(3.17)
    assert _Rules.of({"review": {"clear_margin_bits": 100}}).margin == 100


def test_a_negative_orphan_margin_is_refused_and_a_set_one_is_read(tmp_path: Path) -> None:
    from crosswalk.review.disputes import _Rules

    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[source]]\nname = "cdph"\npath = "x.csv"\nid_column = "ID"\n'
        '[source.fields]\nname = "NAME"\n'
        "[review]\norphan_margin_bits = -2\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert "line 8 (review.orphan_margin_bits): orphan_margin_bits must be" in str(info.value)
    assert _Rules.of({}).orphan_margin == pytest.approx(6.63)
    assert _Rules.of({"review": {"orphan_margin_bits": 9}}).orphan_margin == 9


def test_the_facility_classes_are_listed_in_the_docs() -> None:
    """docs/sources.md lists every class of the vocabulary, and no other."""
    import re

    from matchers.facility_types import FACILITY_CLASSES

    doc = (Path(__file__).resolve().parents[2] / "docs" / "sources.md").read_text("utf-8")
    section = doc.split("## Facility types", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE)
    assert listed == list(dict.fromkeys(listed))
    assert sorted(listed) == sorted(FACILITY_CLASSES)
