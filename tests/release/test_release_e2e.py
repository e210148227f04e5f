"""Build → release → change the inputs → rebuild with --releases → release, on the real listings.

The first build reads the embedded California listings (data/sources.toml).
The second reads a later edition written to disk: records dropped, added and
renamed, one CDPH facility turned into the counterpart of an HCAI-only one
(a merge), and one linked pair pulled apart (a split).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from crosswalk.cli import main
from crosswalk.errors import ReleaseError
from crosswalk.release import (
    PARTIAL_PREFIX,
    RELEASE_FILES,
    diff_releases,
    latest_release,
    latest_release_db,
    list_releases,
    publish_release,
)

from .editions import CONFIG, read_edition, write_edition

pytestmark = pytest.mark.slow

DAY = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def query(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def members(db: Path) -> pd.DataFrame:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return pd.read_sql_query("SELECT entity_id, source, record_id FROM records", conn)
    finally:
        conn.close()


def member_sets(db: Path) -> dict[str, frozenset[str]]:
    m = members(db)
    keys = m["source"] + ":" + m["record_id"]
    return {e: frozenset(g) for e, g in keys.groupby(m["entity_id"])}


def tree_digest(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


class World:
    """Two builds and two releases shared by the tests of this module."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.releases = root / "releases"
        self.build1 = root / "build1"
        self.build2 = root / "build2"
        assert main(["build", "--config", str(CONFIG), "--out", str(self.build1), "--quiet"]) == 0
        self.r1 = publish_release(self.build1, self.releases, now=DAY)
        self.r1_digest = tree_digest(self.r1.path)

        edition = read_edition()
        self.plan = self._edit(edition)
        config2 = write_edition(edition, root / "edition2")
        assert (
            main(
                [
                    "build",
                    "--config",
                    str(config2),
                    "--out",
                    str(self.build2),
                    "--releases",
                    str(self.releases),
                    "--quiet",
                ]
            )
            == 0
        )
        self.r2 = publish_release(self.build2, self.releases, now=DAY)

    def _edit(self, edition: Any) -> dict[str, Any]:
        """Change the listings; return what was changed, for the assertions."""
        rng = np.random.default_rng(20261125)
        cdph, hcai = edition.frames["cdph"], edition.frames["hcai"]
        db1 = self.r1.db
        rec = members(db1)
        ents = pd.DataFrame(
            query(db1, "SELECT entity_id, sources, method, member_count FROM entities"),
            columns=["entity_id", "sources", "method", "member_count"],
        )
        id_of = dict(zip(rec["source"] + ":" + rec["record_id"], rec["entity_id"], strict=True))

        # A merge: a CDPH-only facility becomes the CDPH record of an HCAI-only one.
        cdph_only = ents[(ents["sources"] == "cdph") & (ents["member_count"] == 1)]["entity_id"]
        hcai_only = ents[(ents["sources"] == "hcai") & (ents["member_count"] == 1)]["entity_id"]
        a_id = sorted(cdph_only)[10]
        b_id = sorted(hcai_only)[3]
        a_rec = rec[rec["entity_id"] == a_id]["record_id"].iloc[0]
        b_rec = rec[rec["entity_id"] == b_id]["record_id"].iloc[0]
        a_row = cdph.index[cdph["FACID"] == a_rec][0]
        b_row = hcai[hcai["OSHPD_ID"] == b_rec].iloc[0]
        for col, src_col in (
            ("OSHPD_ID", "OSHPD_ID"),
            ("LICENSE_NUMBER", "LICENSE_NUM"),
            ("FACNAME", "FACILITY_NAME"),
            ("ADDRESS", "DBA_ADDRESS1"),
            ("CITY", "DBA_CITY"),
            ("ZIP", "DBA_ZIP_CODE"),
            ("LATITUDE", "LATITUDE"),
            ("LONGITUDE", "LONGITUDE"),
        ):
            cdph.loc[a_row, col] = b_row[src_col]

        # A split: a pair linked by identifier loses every shared trait.
        pairs = ents[(ents["sources"] == "cdph,hcai") & (ents["method"] == "identifier")]
        s_id = sorted(pairs["entity_id"])[25]
        s_cdph = rec[(rec["entity_id"] == s_id) & (rec["source"] == "cdph")]["record_id"].iloc[0]
        s_row = cdph.index[cdph["FACID"] == s_cdph][0]
        for col in ("OSHPD_ID", "LICENSE_NUMBER", "NPI", "CONTACT_PHONE_NUMBER", "BUSINESS_NAME"):
            cdph.loc[s_row, col] = None
        cdph.loc[s_row, "FACNAME"] = "QUAIL HOLLOW WELLNESS COTTAGE"
        cdph.loc[s_row, "ADDRESS"] = "48 ZEPHYR CANYON TRL"
        cdph.loc[s_row, "CITY"] = "NEEDLES"
        cdph.loc[s_row, "ZIP"] = "92363"
        cdph.loc[s_row, "LATITUDE"] = "34.8481"
        cdph.loc[s_row, "LONGITUDE"] = "-114.6141"

        protected_cdph = {a_rec, s_cdph}
        protected_hcai = {b_rec}
        # Drop 40 CDPH and 25 HCAI records; rename 15 CDPH facilities; add 10 HCAI ones.
        cdph_pool = cdph.index[~cdph["FACID"].isin(protected_cdph)]
        hcai_pool = hcai.index[~hcai["OSHPD_ID"].isin(protected_hcai)]
        drop_c = rng.choice(cdph_pool, 40, replace=False)
        drop_h = rng.choice(hcai_pool, 25, replace=False)
        rename = rng.choice(cdph_pool.difference(drop_c), 15, replace=False)
        cdph.loc[rename, "FACNAME"] = cdph.loc[rename, "FACNAME"].astype(str) + " AT THE PARK"
        new_rows = hcai.loc[rng.choice(hcai_pool.difference(drop_h), 10, replace=False)].copy()
        new_rows["OSHPD_ID"] = [f"9990{i:05d}" for i in range(10)]
        new_rows["LICENSE_NUM"] = [f"99800{i:04d}" for i in range(10)]
        new_rows["FACILITY_NAME"] = [f"SUNRISE RIDGE CLINIC NUMBER {w}" for w in "ABCDEFGHIJ"]
        new_rows["DBA_ADDRESS1"] = [f"{100 + i} ORCHARD BLOSSOM WAY" for i in range(10)]
        new_rows["DBA_ZIP_CODE"] = "96161"
        new_rows["DBA_CITY"] = "TRUCKEE"
        new_rows["LATITUDE"] = None
        new_rows["LONGITUDE"] = None
        edition.frames["cdph"] = cdph.drop(index=drop_c)
        edition.frames["hcai"] = pd.concat([hcai.drop(index=drop_h), new_rows], ignore_index=True)
        dropped = {f"cdph:{r}" for r in cdph.loc[drop_c, "FACID"]} | {
            f"hcai:{r}" for r in hcai.loc[drop_h, "OSHPD_ID"]
        }
        return {
            "merge": (a_id, b_id),
            "split": s_id,
            "dropped": dropped,
            "added": {f"hcai:{r}" for r in new_rows["OSHPD_ID"]},
            "ids_before": id_of,
        }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World(tmp_path_factory.mktemp("releases-e2e"))


def test_release_layout_and_versions(world: World) -> None:
    assert [r.version for r in list_releases(world.releases)] == ["2026-11-25", "2026-11-25.2"]
    assert (world.r1.sequence, world.r2.sequence) == (1, 2)
    assert world.r2.previous == "2026-11-25" and world.r1.previous is None
    assert latest_release_db(world.releases) == world.releases / "2026-11-25.2" / "crosswalk.sqlite"
    for info in (world.r1, world.r2):
        assert sorted(p.name for p in info.path.iterdir()) == sorted(RELEASE_FILES)
        for p in info.path.iterdir():
            assert not p.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH), p
        assert not info.path.stat().st_mode & stat.S_IWUSR
        manifest = info.manifest
        for name, entry in manifest["files"].items():
            assert hashlib.sha256((info.path / name).read_bytes()).hexdigest() == entry["sha256"]
    m2 = world.r2.manifest
    assert {s["name"] for s in m2["sources"]} == {"cdph", "hcai"}
    rows = dict(query(world.r2.db, "SELECT name, rows FROM sources"))
    assert {s["name"]: s["rows"] for s in m2["sources"]} == rows
    assert rows == {"cdph": 11856 - 40, "hcai": 7973 - 25 + 10}
    assert all(len(s["sha256"]) == 64 for s in m2["sources"])
    assert m2["config"]["sources"][0]["name"] == "cdph"
    assert m2["engine_version"]
    assert m2["counts"]["entities"] == query(world.r2.db, "SELECT count(*) FROM entities")[0][0]
    assert m2["published_at"].startswith("2026-11-25T09:30")
    assert query(world.r2.db, "SELECT value FROM id_state WHERE key='release'") == [
        ("2026-11-25.2",)
    ]


def test_unchanged_entities_keep_their_ids(world: World) -> None:
    before, after = member_sets(world.r1.db), member_sets(world.r2.db)
    by_members = {m: e for e, m in after.items()}
    unchanged = {e: m for e, m in before.items() if m in by_members}
    assert len(unchanged) > 0.9 * len(before)
    moved = {e: by_members[m] for e, m in unchanged.items() if by_members[m] != e}
    assert moved == {}
    # Entities that only lost or gained records keep their ids too, unless merged away.
    grown_or_shrunk = {
        e
        for e, m in before.items()
        if e in after and e not in unchanged and (m <= after[e] or after[e] <= m)
    }
    assert grown_or_shrunk, "the edition should change some entities"


def test_changes_csv_accounts_for_every_id(world: World) -> None:
    changes = pd.read_csv(world.r2.path / "changes.csv", dtype=str, keep_default_na=False)
    assert list(changes.columns) == ["entity_id", "change", "details"]
    assert set(changes["change"]) <= {
        "new",
        "merged_into",
        "split_from",
        "retired",
        "members_changed",
    }
    before, after = member_sets(world.r1.db), member_sets(world.r2.db)
    kind = dict(zip(changes["entity_id"], changes["change"], strict=True))
    assert changes["entity_id"].is_unique
    for e in set(before) - set(after):
        assert kind.get(e) in {"merged_into", "retired"}, e
    for e in set(after) - set(before):
        assert kind.get(e) in {"new", "split_from"}, e
    for e in set(after) & set(before):
        assert (kind.get(e) == "members_changed") == (before[e] != after[e]), e
    for e in set(after) & set(before):
        if before[e] == after[e]:
            assert e not in kind
    # The added records are in new entities, the dropped ones nowhere.
    rec = members(world.r2.db)
    keys = set(rec["source"] + ":" + rec["record_id"])
    assert world.plan["added"] <= keys and not (world.plan["dropped"] & keys)
    assert (changes["change"] == "retired").any()
    first = pd.read_csv(world.r1.path / "changes.csv", dtype=str)
    assert set(first["change"]) == {"new"} and len(first) == len(before)


def test_merge_retires_the_younger_id_with_a_redirect(world: World) -> None:
    a_id, b_id = world.plan["merge"]
    after = member_sets(world.r2.db)
    older, younger = sorted([a_id, b_id])
    assert older in after and younger not in after
    assert len(after[older]) == 2
    row = query(
        world.r2.db,
        "SELECT change, successor, release FROM retired_ids WHERE entity_id = ?",
        (younger,),
    )
    assert row == [("merged_into", older, "2026-11-25.2")]
    changes = pd.read_csv(world.r2.path / "changes.csv", dtype=str).set_index("entity_id")
    assert changes.loc[younger, "change"] == "merged_into"
    assert f"into {older}" in changes.loc[younger, "details"]
    assert changes.loc[older, "change"] == "members_changed"
    # Retirements are published with the release that made them.
    releases = {r[0] for r in query(world.r2.db, "SELECT DISTINCT release FROM retired_ids")}
    assert releases == {"2026-11-25.2"}


def test_split_keeps_the_id_on_one_part_and_mints_the_other(world: World) -> None:
    s_id = world.plan["split"]
    before, after = member_sets(world.r1.db), member_sets(world.r2.db)
    assert s_id in after and len(after[s_id]) == 1 and after[s_id] < before[s_id]
    (other,) = [e for e, m in after.items() if (before[s_id] - after[s_id]) & m]
    changes = pd.read_csv(world.r2.path / "changes.csv", dtype=str).set_index("entity_id")
    assert changes.loc[other, "change"] == "split_from"
    assert str(changes.loc[other, "details"]).startswith(f"from {s_id}")
    assert other not in before and other > max(before)  # a fresh id, never reused


def test_retired_id_redirects_through_the_api(world: World) -> None:
    api = pytest.importorskip("api")
    a_id, b_id = world.plan["merge"]
    older, younger = sorted([a_id, b_id])
    app = api.create_app({"releases": str(world.releases)})
    client = app.test_client()
    got = client.get(f"/v1/entities/{younger}")
    assert got.status_code == 308
    assert got.headers["Location"].endswith(f"/v1/entities/{older}")
    changes = pd.read_csv(world.r2.path / "changes.csv", dtype=str)
    gone = changes[changes["change"] == "retired"]["entity_id"].iloc[0]
    assert client.get(f"/v1/entities/{gone}").status_code == 410
    assert client.get(f"/v1/entities/{older}").status_code == 200


def test_diff_agrees_with_changes_csv(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    diff = diff_releases(world.r1.path, world.r2.path)
    changes = pd.read_csv(world.r2.path / "changes.csv", dtype=str, keep_default_na=False)
    assert set(zip(diff["entity_id"], diff["change"], strict=True)) == set(
        zip(changes["entity_id"], changes["change"], strict=True)
    )
    out = tmp_path / "diff.csv"
    code = main(
        ["diff", "2026-11-25", "2026-11-25.2", "--releases", str(world.releases), "--csv", str(out)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    counts = changes["change"].value_counts()
    for kind, n in counts.items():
        assert f"{kind}" in printed and f"{n:,}" in printed
    written = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert len(written) == len(changes)
    # By path, in the other direction of naming: same result.
    assert len(diff_releases(world.r1.db, world.r2.db)) == len(diff)


def test_datapackage_validates_with_frictionless(world: World) -> None:
    frictionless = pytest.importorskip("frictionless")
    package = json.loads((world.r2.path / "datapackage.json").read_text(encoding="utf-8"))
    assert package["version"] == "2026-11-25.2"
    assert {r["name"] for r in package["resources"]} >= {"crosswalk", "changes"}
    report = frictionless.validate(str(world.r2.path / "datapackage.json"))
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])[:10]


def test_parquet_matches_the_csv(world: World) -> None:
    table = pq.read_table(world.r2.path / "crosswalk.parquet")
    csv = pd.read_csv(world.r2.path / "crosswalk.csv", dtype={"record_id": str, "zip": str})
    assert table.num_rows == len(csv)
    assert table.schema.field("entity_id").type == "string"
    assert table.schema.field("record_id").type == "string"
    assert table.schema.field("match_probability").type == "double"
    frame = table.to_pandas()
    assert set(frame["entity_id"]) == set(csv["entity_id"])
    left = frame.set_index(["source", "record_id"])["entity_id"].sort_index()
    right = csv.set_index(["source", "record_id"])["entity_id"].sort_index()
    assert left.to_dict() == right.to_dict()


def test_sqlite_is_datasette_ready(world: World) -> None:
    db = world.r2.db
    hits = query(db, "SELECT count(*) FROM entities_fts WHERE entities_fts MATCH 'hospital'")[0][0]
    assert hits > 100
    rec_hits = query(db, "SELECT count(*) FROM records_fts WHERE records_fts MATCH 'name:kaiser'")[
        0
    ][0]
    assert rec_hits > 10
    assert query(db, "PRAGMA journal_mode") == [("delete",)]
    meta = json.loads((world.r2.path / "metadata.json").read_text(encoding="utf-8"))
    assert meta["title"] and meta["description"] and meta["license"]
    assert "CDPH" in meta["source"] and "2020-05-07" in meta["source"] and "HCAI" in meta["source"]
    tables = meta["databases"]["crosswalk"]["tables"]
    from crosswalk.artifact import schema

    for t in schema.TABLES:
        assert set(tables[t.name]["columns"]) == set(t.column_names)
        assert all(tables[t.name]["columns"].values())
    assert "successor" in tables["retired_ids"]["columns"]


def test_report_is_self_contained(world: World) -> None:
    text = (world.r2.path / "report.html").read_text(encoding="utf-8")
    assert text.count("<svg") >= 4
    assert "<script" not in text and "src=" not in text and "@import" not in text
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in text
    assert "Against release 2026-11-25" in text
    assert "cdph,hcai" in text


def test_existing_release_is_never_changed(world: World) -> None:
    assert tree_digest(world.r1.path) == world.r1_digest
    with pytest.raises(ReleaseError, match="already exists"):
        publish_release(world.build2, world.releases, version="2026-11-25")
    with pytest.raises(ReleaseError, match=r"already published|carried its ids"):
        publish_release(world.build2, world.releases, version="again")
    # A build made without --releases would break id stability: refused.
    with pytest.raises(ReleaseError, match="carried its ids over from no release"):
        publish_release(world.build1, world.releases, version="stale")
    assert [r.version for r in list_releases(world.releases)] == ["2026-11-25", "2026-11-25.2"]
    assert tree_digest(world.r1.path) == world.r1_digest


@pytest.mark.parametrize(
    "step", ["copied", "searchable", "exports", "report", "manifest", "synced"]
)
def test_failure_mid_release_leaves_the_previous_release_intact(
    world: World, tmp_path: Path, step: str
) -> None:
    releases = tmp_path / "releases"
    first = publish_release(world.build1, releases, now=DAY)
    digest = tree_digest(first.path)

    def fail(name: str) -> None:
        if name == step:
            raise RuntimeError(f"simulated crash after {name}")

    with pytest.raises(RuntimeError, match="simulated crash"):
        publish_release(world.build2, releases, now=DAY, on_step=fail)
    assert [p.name for p in releases.iterdir() if not p.name.startswith(".")] == [first.version]
    assert not list(releases.glob(f"{PARTIAL_PREFIX}*"))
    assert latest_release_db(releases) == first.db
    assert tree_digest(first.path) == digest


def test_killed_mid_release_leaves_the_previous_release_served(
    world: World, tmp_path: Path
) -> None:
    releases = tmp_path / "releases"
    first = publish_release(world.build1, releases, now=DAY)
    digest = tree_digest(first.path)
    build2 = world.build2
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from crosswalk.release import publish_release\n"
        "def die(step):\n"
        "    if step == 'manifest':\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "publish_release(Path(sys.argv[1]), Path(sys.argv[2]), on_step=die)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(build2), str(releases)], capture_output=True, check=False
    )
    assert proc.returncode == -signal.SIGKILL
    leftovers = list(releases.glob(f"{PARTIAL_PREFIX}*"))
    assert leftovers, "the kill should leave the unfinished release behind, hidden"
    assert [r.version for r in list_releases(releases)] == [first.version]
    assert latest_release_db(releases) == first.db
    assert tree_digest(first.path) == digest
    # The API still serves the first release as the latest.
    api = pytest.importorskip("api")
    client = api.create_app({"releases": str(releases)}).test_client()
    listing = client.get("/v1/releases").get_json()
    versions = json.dumps(listing)
    assert first.version in versions and PARTIAL_PREFIX not in versions
    # The next release cleans up and succeeds.
    second = publish_release(build2, releases, now=DAY)
    assert second.version == "2026-11-25.2" and second.sequence == 2
    assert not list(releases.glob(f"{PARTIAL_PREFIX}*"))
    assert tree_digest(first.path) == digest
    latest = latest_release(releases)
    assert latest is not None and latest.version == second.version
    assert os.access(first.path, os.R_OK)
