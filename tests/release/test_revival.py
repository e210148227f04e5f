"""Ids that come back, on real data: three consecutive releases of the test slice.

1. The slice as it is (written to disk as CSV).
2. A later edition: the records of a few entities dropped, one CDPH-only facility
   turned into the counterpart of an HCAI-only one (a merge by the data), and a
   reviewer's must-link between two other single-record entities.
3. The first edition again, and the must-link undone: every record is back where
   it was, and so is every id.

Builds and releases run through the real CLI; the API answers from the releases.
"""

from __future__ import annotations

import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from crosswalk.release import diff_releases, list_releases
from crosswalk.review import ReviewStore
from crosswalk.review.auth import create_reviewer

from .editions import read_edition, write_edition

SLICE = Path(__file__).resolve().parents[1] / "data" / "slice.toml"


def cli(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "crosswalk.cli", *args], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def query(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def member_sets(db: Path) -> dict[str, frozenset[str]]:
    rows = query(db, "SELECT entity_id, source || ':' || record_id FROM records")
    out: dict[str, set[str]] = {}
    for entity_id, key in rows:
        out.setdefault(entity_id, set()).add(key)
    return {e: frozenset(m) for e, m in out.items()}


def changes_csv(release: Path) -> pd.DataFrame:
    return pd.read_csv(release / "changes.csv", dtype=str, keep_default_na=False)


class Lineage:
    """Three releases of the slice: as it is, edited, and as it was again."""

    def __init__(self, root: Path) -> None:
        self.releases = root / "releases"
        self.store = root / "review.sqlite"
        edition = read_edition(SLICE)
        self.config1 = config1 = write_edition(edition, root / "edition1", SLICE)
        self._release(config1, root / "build1", "r1")
        self.r1 = self.releases / "r1"
        self.before = member_sets(self.r1 / "crosswalk.sqlite")
        config2 = write_edition(self._edit(edition), root / "edition2", SLICE)
        with ReviewStore(self.store) as store:
            admin = create_reviewer(store, "admin", "cdph", "a long enough password", admin=True)
            decision = store.decide(admin, self.must_link, "same", "one facility")
        self._release(config2, root / "build2", "r2")
        with ReviewStore(self.store) as store:
            store.undo(admin, decision.event_id, "not the same after all")
        self._release(config1, root / "build3", "r3")
        self.r2, self.r3 = self.releases / "r2", self.releases / "r3"

    def _release(self, config: Path, out: Path, version: str) -> None:
        cli("build", "--config", str(config), "--out", str(out), "--releases",
            str(self.releases), "--review-store", str(self.store), "--quiet")  # fmt: skip
        cli("release", "--build", str(out), "--releases", str(self.releases),
            "--version", version)  # fmt: skip

    def _edit(self, edition: Any) -> Any:
        frames = {k: v.copy() for k, v in edition.frames.items()}
        cdph, hcai = frames["cdph"], frames["hcai"]
        singles = {
            src: sorted(
                e
                for e, m in self.before.items()
                if len(m) == 1 and next(iter(m)).startswith(src + ":")
            )
            for src in ("cdph", "hcai")
        }
        pairs = sorted(e for e, m in self.before.items() if len(m) == 2)

        def record(entity_id: str) -> str:
            return next(iter(self.before[entity_id])).split(":", 1)[1]

        # A merge by the data: a CDPH-only facility takes an HCAI-only one's identity.
        a_id, b_id = singles["cdph"][5], singles["hcai"][2]
        row = cdph.index[cdph["FACID"] == record(a_id)][0]
        b_row = hcai[hcai["OSHPD_ID"] == record(b_id)].iloc[0]
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
            cdph.loc[row, col] = b_row[src_col]
        self.merged = (a_id, b_id)
        # A must-link between two other single-record entities of different sources.
        c_id, d_id = singles["cdph"][40], singles["hcai"][9]
        self.linked = (c_id, d_id)
        self.must_link = (("cdph", record(c_id)), ("hcai", record(d_id)))
        # Every record of some entities leaves: single-record ones and linked pairs.
        self.dropped = [*singles["cdph"][60:66], *pairs[100:106]]
        keys = {k for e in self.dropped for k in self.before[e]}
        cdph_gone = {k.split(":", 1)[1] for k in keys if k.startswith("cdph:")}
        hcai_gone = {k.split(":", 1)[1] for k in keys if k.startswith("hcai:")}
        frames["cdph"] = cdph[~cdph["FACID"].isin(cdph_gone)]
        frames["hcai"] = hcai[~hcai["OSHPD_ID"].isin(hcai_gone)]
        return type(edition)(frames, edition.id_columns)


@pytest.fixture(scope="module")
def lineage(tmp_path_factory: pytest.TempPathFactory) -> Lineage:
    return Lineage(tmp_path_factory.mktemp("revival"))


def test_the_scenario_happened(lineage: Lineage) -> None:
    assert [r.version for r in list_releases(lineage.releases)] == ["r1", "r2", "r3"]
    during = member_sets(lineage.r2 / "crosswalk.sqlite")
    for entity_id in lineage.dropped:
        assert entity_id not in during
    for pair in (lineage.merged, lineage.linked):
        older, younger = sorted(pair)
        assert younger not in during and lineage.before[younger] < during[older]
    retired = dict(
        query(lineage.r2 / "crosswalk.sqlite", "SELECT entity_id, change FROM retired_ids")
    )
    assert {e: retired[e] for e in lineage.dropped} == {e: "retired" for e in lineage.dropped}


def test_every_id_comes_back_with_its_records(lineage: Lineage) -> None:
    assert member_sets(lineage.r3 / "crosswalk.sqlite") == lineage.before
    assert query(lineage.r3 / "crosswalk.sqlite", "SELECT count(*) FROM retired_ids") == [(0,)]
    changes = changes_csv(lineage.r3)
    kind = dict(zip(changes["entity_id"], changes["change"], strict=True))
    back = [*lineage.dropped, max(lineage.merged), max(lineage.linked)]
    assert {e: kind.get(e) for e in back} == {e: "revived" for e in back}
    details = changes.set_index("entity_id")["details"]
    single = lineage.dropped[0]
    assert details[single] == "1 of 1 last members back (now 1)"


def test_the_api_answers_a_returned_id_with_its_entity(lineage: Lineage) -> None:
    api = pytest.importorskip("api")
    client = api.create_app({"releases": str(lineage.releases)}).test_client()
    for entity_id in lineage.dropped:
        gone = client.get(f"/v1/entities/{entity_id}?release=r2")
        assert gone.status_code == 410, entity_id
        live = client.get(f"/v1/entities/{entity_id}")
        assert live.status_code == 200, (entity_id, live.get_json())
        body = live.get_json()
        records = {f"{r['source']}:{r['record_id']}" for r in body["records"]}
        assert records == lineage.before[entity_id]


def test_a_split_back_and_an_undone_must_link_stop_redirecting(lineage: Lineage) -> None:
    api = pytest.importorskip("api")
    client = api.create_app({"releases": str(lineage.releases)}).test_client()
    for pair in (lineage.merged, lineage.linked):
        older, younger = sorted(pair)
        during = client.get(f"/v1/entities/{younger}?release=r2")
        assert during.status_code == 308
        assert during.headers["Location"].split("?")[0].endswith(f"/v1/entities/{older}")
        for entity_id in pair:
            now = client.get(f"/v1/entities/{entity_id}")
            assert now.status_code == 200, (entity_id, now.get_json())
            records = {f"{r['source']}:{r['record_id']}" for r in now.get_json()["records"]}
            assert records == lineage.before[entity_id]


def test_every_redirect_leads_to_the_entity_holding_the_records(lineage: Lineage) -> None:
    for release, earlier in ((lineage.r2, lineage.r1), (lineage.r3, lineage.r2)):
        held = member_sets(release / "crosswalk.sqlite")
        last = {**member_sets(earlier / "crosswalk.sqlite")}
        for entity_id, successor in query(
            release / "crosswalk.sqlite", "SELECT entity_id, successor FROM retired_ids"
        ):
            records = last.get(entity_id) or frozenset()
            if successor is None:
                assert not any(records & m for m in held.values()), entity_id
                continue
            most = max(len(records & m) for m in held.values())
            assert most and len(records & held[successor]) == most, entity_id


def test_diff_compares_any_two_releases_directly(lineage: Lineage) -> None:
    for a, b in ((lineage.r1, lineage.r2), (lineage.r2, lineage.r3)):
        diff = diff_releases(a, b)
        # The published changes, raw (changes.csv neutralizes cells a spreadsheet would run).
        expected = query(b / "crosswalk.sqlite", "SELECT entity_id, change, details FROM changes")
        assert diff.values.tolist() == [list(row) for row in expected]
    # From the first release to the third nothing changed, whatever happened between.
    assert diff_releases(lineage.r1, lineage.r3).empty
    printed = cli("diff", "r1", "r3", "--releases", str(lineage.releases))
    assert "retired" in printed and "revived" in printed
    counts = {line.split()[0]: line.split()[1] for line in printed.splitlines()[1:]}
    assert set(counts.values()) == {"0"}
    # And back from the second: the dropped ids are revived, nothing is retired.
    diff = diff_releases(lineage.r2, lineage.r1)
    kind = dict(zip(diff["entity_id"], diff["change"], strict=True))
    assert {kind[e] for e in lineage.dropped} == {"revived"}
    assert "retired" not in set(kind.values())


def test_ids_retired_before_last_members_were_kept_come_back_too(
    lineage: Lineage, tmp_path: Path
) -> None:
    # The first two releases as an engine that kept no last members wrote them.
    releases = tmp_path / "releases"
    for version in ("r1", "r2"):
        shutil.copytree(lineage.releases / version, releases / version)
    old = releases / "r2"
    for path in (old, *old.iterdir()):
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    with sqlite3.connect(old / "crosswalk.sqlite") as conn:
        conn.execute("DROP TABLE retired_members")
    # The next build finds them in the release before the one each id retired in.
    out = tmp_path / "build"
    cli("build", "--config", str(lineage.config1), "--out", str(out),
        "--releases", str(releases), "--quiet")  # fmt: skip
    assert member_sets(out / "crosswalk.sqlite") == lineage.before
    last = query(out / "crosswalk.sqlite", "SELECT count(*) FROM retired_members")
    assert last == [(0,)]


def test_the_release_report_counts_the_revived_ids(lineage: Lineage) -> None:
    revived = (changes_csv(lineage.r3)["change"] == "revived").sum()
    assert revived > 0
    report = (lineage.r3 / "report.html").read_text(encoding="utf-8")
    assert f'<tr><td>revived</td><td class="n">{revived:,}</td></tr>' in report
