"""Id stability across a realistic change of the inputs.

Builds and releases the CDPH and HCAI listings (``data/sources.toml``), makes a
simulated later edition of them (drop 3% of the records, add 3% new
facilities, rename 2%, move 1% to another address), rebuilds it with the
first release as the previous one, releases it, and measures:

* **unchanged entities that keep their id** (target 100%): an entity of the
  first release is *unchanged* when the second release has an entity with
  exactly the same member records (the same ``(source, record_id)`` set);
  it keeps its id when that entity has the same id.
* **surviving entities that keep their id** (target >= 99.5%): an entity of
  the first release *survives* when at least one of its member records is
  still in the later edition; it keeps its id when the id still names an
  entity in the second release (it was not merged into another entity).

It also reports, for context, the *untouched* entities (none of their
records was dropped, renamed or moved) and what ``changes.csv`` says.

    .venv/bin/python bench/stability.py [--out DIR] [--seed N] [--docs docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tomli_w

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from crosswalk.artifact.reader import connect  # noqa: E402
from crosswalk.config import SourceConfig, load_config  # noqa: E402
from crosswalk.sources import read_raw  # noqa: E402

CONFIG = REPO / "data" / "sources.toml"
CROSSWALK = REPO / ".venv" / "bin" / "crosswalk"
RATES = {"drop": 0.03, "add": 0.03, "rename": 0.02, "move": 0.01}
RENAME_SUFFIXES = (
    "POST ACUTE",
    "HEALTH AND REHABILITATION CENTER",
    "CARE CENTER",
    "WELLNESS CENTER",
    "MEDICAL GROUP",
)


# --------------------------------------------------------------------------- editions


def read_listing(src: SourceConfig, base_dir: Path) -> pd.DataFrame:
    """A listing as text, exactly as the engine reads it."""
    frame = read_raw(src, base_dir)
    return frame.astype(object).where(frame.notna(), None)


def _digits(rng: np.random.Generator, like: str | None, taken: set[str]) -> str:
    """A fresh all-digit value as long as ``like`` (9 digits if unknown), not in ``taken``."""
    width = len(like) if like and like.isdigit() else 9
    while True:
        value = "".join(rng.choice(list("0123456789"), width))
        if value[0] != "0" and value not in taken:
            taken.add(value)
            return value


class Editor:
    """Makes the later edition of one source."""

    def __init__(self, src: SourceConfig, frame: pd.DataFrame, rng: np.random.Generator) -> None:
        self.src = src
        self.frame = frame.reset_index(drop=True)
        self.rng = rng
        f = src.fields
        self.name: str = f.name or ""
        self.address, self.city, self.zip = f.address, f.city, f.zip
        self.lat, self.lon, self.phone, self.county = f.latitude, f.longitude, f.phone, f.county
        self.other = f.other_names[0] if f.other_names else None
        self.ids = {i.column: i.scheme for i in src.identifiers}
        self.taken: dict[str, set[str]] = {
            c: set(self.frame[c].dropna().astype(str)) for c in [src.id_column, *self.ids]
        }
        self.log: dict[str, set[str]] = {
            "dropped": set(),
            "renamed": set(),
            "moved": set(),
            "added": set(),
        }

    def row(self, frame: pd.DataFrame, i: int) -> pd.Series:
        """Row ``i`` (by position) of ``frame``."""
        return frame.iloc[int(i)]

    def key(self, row: pd.Series) -> str:
        return f"{self.src.name}:{row[self.src.id_column]}"

    def pick(self, share: float, exclude: set[int]) -> np.ndarray[Any, Any]:
        pool = np.array(sorted(set(range(len(self.frame))) - exclude))
        n = round(share * len(self.frame))
        return self.rng.choice(pool, n, replace=False)

    def edit(self, shared_new: list[dict[str, Any]]) -> pd.DataFrame:
        used: set[int] = set()
        drop = self.pick(RATES["drop"], used)
        used |= set(drop.tolist())
        rename = self.pick(RATES["rename"], used)
        used |= set(rename.tolist())
        move = self.pick(RATES["move"], used)
        out = self.frame.copy()
        for i in rename:
            out.at[int(i), self.name] = self.renamed(str(out.at[int(i), self.name] or ""))
            self.log["renamed"].add(self.key(self.row(out, i)))
        for i in move:
            self.move(out, int(i))
            self.log["moved"].add(self.key(self.row(out, i)))
        self.log["dropped"] = {self.key(self.row(out, i)) for i in drop}
        out = out.drop(index=pd.Index(drop))
        n_new = round(RATES["add"] * len(self.frame))
        rows = [
            self.new_facility(shared_new[k] if k < len(shared_new) else None) for k in range(n_new)
        ]
        added = pd.DataFrame(rows, columns=out.columns)
        self.log["added"] = {self.key(r) for _, r in added.iterrows()}
        return pd.concat([out, added], ignore_index=True)

    def renamed(self, name: str) -> str:
        """A new name of the same facility: a new suffix, or a new owner's brand in front."""
        words = name.split()
        if self.rng.random() < 0.5 or len(words) < 2:
            return f"{name} {self.rng.choice(RENAME_SUFFIXES)}"
        donor = str(self.frame.at[int(self.rng.integers(len(self.frame))), self.name] or "").split()
        brand = donor[0] if donor else "NEW"
        return f"{brand} {' '.join(words[1:])}"

    def _street_donor(self, near: pd.Series) -> pd.Series:
        """A record in the same county (else anywhere) whose street to borrow."""
        same = self.frame
        if self.county and near.get(self.county):
            same = self.frame[self.frame[self.county] == near[self.county]]
        return same.iloc[int(self.rng.integers(len(same)))]

    def _relocate(self, row: dict[str, Any] | pd.Series, donor: pd.Series) -> dict[str, Any]:
        street = (
            re.sub(r"^\d+\s*", "", str(donor[self.address] or "MAIN ST")) if self.address else ""
        )
        values: dict[str, Any] = {}
        if self.address:
            values[self.address] = f"{int(self.rng.integers(100, 9999))} {street}".strip()
        for col in (self.city, self.zip, self.county):
            if col:
                values[col] = donor[col]
        for col in (self.lat, self.lon):
            if col and donor[col] is not None:
                try:
                    values[col] = f"{float(donor[col]) + self.rng.normal(0, 0.002):.6f}"
                except ValueError:
                    values[col] = None
        return values

    def move(self, out: pd.DataFrame, i: int) -> None:
        """The facility moves to another address in its county."""
        donor = self._street_donor(self.row(out, i))
        for col, value in self._relocate(self.row(out, i), donor).items():
            out.loc[i, col] = value

    def new_facility(self, shared: dict[str, Any] | None) -> dict[str, Any]:
        """A plausible new facility: a real record re-identified, renamed and placed elsewhere.

        ``shared`` (a new facility already made for another source) gives the
        name, place and identifiers, so the same new facility is in both listings.
        """
        template = self.frame.iloc[int(self.rng.integers(len(self.frame)))]
        row: dict[str, Any] = {str(k): v for k, v in template.to_dict().items()}
        if shared is None:
            donor = str(
                self.frame.at[int(self.rng.integers(len(self.frame))), self.name] or ""
            ).split()
            words = str(template[self.name] or "").split()
            row[self.name] = " ".join((donor[:1] or ["NEW"]) + words[1:] or ["CLINIC"])
            row.update(self._relocate(row, self._street_donor(template)))
            schemes = {}
            for col, scheme in self.ids.items():
                if template[col] is not None:
                    schemes[scheme] = _digits(self.rng, str(template[col]), self.taken[col])
            facts = {"name": row[self.name], "schemes": schemes}
            place: tuple[str | None, ...] = (
                self.address,
                self.city,
                self.zip,
                self.county,
                self.lat,
                self.lon,
            )
            for where in place:
                if where:
                    facts[f"field:{self._field_of(where)}"] = row[where]
        else:
            facts = shared
            row[self.name] = shared["name"]
            for key, value in shared.items():
                if key.startswith("field:"):
                    col = getattr(self.src.fields, key[6:])
                    if col:
                        row[col] = value
        for col, scheme in self.ids.items():
            row[col] = facts["schemes"].get(scheme)
            if row[col] is None and shared is not None and template[col] is not None:
                row[col] = _digits(self.rng, str(template[col]), self.taken[col])
        if self.other:
            row[self.other] = f"{row[self.name]} LLC"
        if self.phone and template[self.phone]:
            row[self.phone] = re.sub(
                r"\d{3}-\d{4}$",
                f"{self.rng.integers(200, 999)}-{self.rng.integers(1000, 9999)}",
                str(template[self.phone]),
            )
        id_col = self.src.id_column
        value = row.get(id_col)
        keep = value is not None and (
            (shared is None and id_col in self.ids) or str(value) not in self.taken[id_col]
        )
        if keep:
            self.taken[id_col].add(str(value))
        else:
            row[id_col] = _digits(self.rng, str(template[id_col]), self.taken[id_col])
        return row

    def _field_of(self, col: str) -> str:
        for name in ("address", "city", "zip", "county", "latitude", "longitude"):
            if getattr(self.src.fields, name) == col:
                return name
        return col


def make_edition(config_path: Path, out: Path, seed: int) -> tuple[Path, dict[str, set[str]]]:
    """Write the later edition of every source of ``config_path`` into ``out``; return its config."""
    cfg = load_config(config_path)
    rng = np.random.default_rng(seed)
    doc = tomllib.loads(config_path.read_text(encoding="utf-8"))
    out.mkdir(parents=True, exist_ok=True)
    log: dict[str, set[str]] = {"dropped": set(), "renamed": set(), "moved": set(), "added": set()}
    shared: list[dict[str, Any]] = []
    for n, (src, entry) in enumerate(zip(cfg.sources, doc["source"], strict=True)):
        editor = Editor(src, read_listing(src, cfg.base_dir), rng)
        frame = editor.edit(shared)
        if n == 0:
            # A third of the first source's new facilities appear in the next source too.
            shared = []
            added = frame.tail(round(RATES["add"] * len(editor.frame)))
            for _, row in added.iloc[: len(added) // 3].iterrows():
                facts: dict[str, Any] = {"name": row[str(src.fields.name)], "schemes": {}}
                for col, scheme in editor.ids.items():
                    facts["schemes"][scheme] = None if pd.isna(row[col]) else str(row[col])
                for name in ("address", "city", "zip", "county", "latitude", "longitude"):
                    col = getattr(src.fields, name)
                    if col:
                        facts[f"field:{name}"] = None if pd.isna(row[col]) else str(row[col])
                shared.append(facts)
        for k, v in editor.log.items():
            log[k] |= v
        path = out / f"{src.name}.csv"
        frame.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")
        entry.update({"path": path.name, "format": "csv", "encoding": "utf-8"})
        entry.pop("sheet", None)
    target = out / "sources.toml"
    target.write_text(tomli_w.dumps(doc), encoding="utf-8")
    return target, log


# --------------------------------------------------------------------------- measuring


def run(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def members(db: Path) -> pd.DataFrame:
    conn = connect(db)
    try:
        return pd.read_sql_query("SELECT entity_id, source, record_id FROM records", conn)
    finally:
        conn.close()


def measure(db1: Path, db2: Path, log: dict[str, set[str]]) -> dict[str, Any]:
    """The stability figures (definitions in the module docstring)."""
    a, b = members(db1), members(db2)
    a["key"] = a["source"] + ":" + a["record_id"]
    b["key"] = b["source"] + ":" + b["record_id"]
    sets_a = a.groupby("entity_id")["key"].agg(frozenset)
    sets_b = b.groupby("entity_id")["key"].agg(frozenset)
    id_of_set_b = pd.Series(sets_b.index, index=sets_b.to_numpy())
    unchanged = sets_a[sets_a.isin(set(sets_b.to_numpy()))]
    unchanged_kept = int(
        (id_of_set_b.reindex(unchanged.to_numpy()).to_numpy() == unchanged.index.to_numpy()).sum()
    )
    still = set(b["key"])
    surviving = sets_a[sets_a.map(lambda s: bool(s & still))]
    live = set(sets_b.index)
    surviving_kept = int(surviving.index.isin(list(live)).sum())
    edited = log["dropped"] | log["renamed"] | log["moved"]
    untouched = sets_a[sets_a.map(lambda s: not (s & edited))]
    untouched_same = untouched[untouched.isin(set(sets_b.to_numpy()))]
    untouched_kept = int(untouched.index.isin(list(live)).sum())
    return {
        "entities_before": len(sets_a),
        "entities_after": len(sets_b),
        "unchanged": len(unchanged),
        "unchanged_kept": unchanged_kept,
        "surviving": len(surviving),
        "surviving_kept": surviving_kept,
        "untouched": len(untouched),
        "untouched_same_members": len(untouched_same),
        "untouched_kept": untouched_kept,
    }


def pct(n: int, d: int) -> str:
    return f"{100 * n / d:.2f}%" if d else "n/a"


def report(figures: dict[str, Any], command: str) -> str:
    f = figures
    ch = f["changes"]
    edits = f["edits"]
    lines = [
        "## Stability",
        "",
        f"Run of {f['measured_at'][:10]} on a 2-core machine, seed {f['seed']}. Reproduce with:",
        "",
        "```sh",
        command,
        "```",
        "",
        "The first release is built from the embedded CDPH (2020-05-07) and HCAI (2020-10) listings. "
        "The later edition drops 3% of each listing's records, adds 3% new facilities (real records "
        "re-identified with fresh ids, given another name and a street of the same county; a third of "
        "the new CDPH facilities also appear in HCAI with the same identifiers), renames 2% and moves "
        "1% to another address in their county. It is rebuilt with `--releases` and released.",
        "",
        f"Edits: {edits['dropped']:,} records dropped, {edits['added']:,} added, "
        f"{edits['renamed']:,} renamed, {edits['moved']:,} moved.",
        "",
        "| measure | definition | figure | target |",
        "|---|---|---|---|",
        f"| unchanged entities that keep their id | entity of release 1 whose exact member set "
        f"(source, record_id) is an entity of release 2; kept when that entity has the same id "
        f"| **{pct(f['unchanged_kept'], f['unchanged'])}** ({f['unchanged_kept']:,} of {f['unchanged']:,}) | 100% |",
        f"| surviving entities that keep their id | entity of release 1 with at least one member "
        f"record still in the later edition; kept when its id still names an entity of release 2 "
        f"| **{pct(f['surviving_kept'], f['surviving'])}** ({f['surviving_kept']:,} of {f['surviving']:,}) | ≥ 99.5% |",
        f"| untouched entities that keep their id (context) | entity none of whose records was "
        f"dropped, renamed or moved | {pct(f['untouched_kept'], f['untouched'])} "
        f"({f['untouched_kept']:,} of {f['untouched']:,}; {f['untouched_same_members']:,} with the same members) | — |",
        "",
        f"Entities: {f['entities_before']:,} in release 1, {f['entities_after']:,} in release 2. "
        f"`changes.csv` of release 2: {ch.get('new', 0):,} new, {ch.get('members_changed', 0):,} "
        f"members_changed, {ch.get('merged_into', 0):,} merged_into, {ch.get('split_from', 0):,} "
        f"split_from, {ch.get('retired', 0):,} retired.",
        "",
        f"Wall time: first build {f['timings']['build1']:.0f} s, release {f['timings']['release1']:.1f} s; "
        f"rebuild with --releases {f['timings']['build2']:.0f} s, release {f['timings']['release2']:.1f} s.",
        "",
    ]
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    """Replace (or append) the ``## Stability`` section of ``path``, leaving the rest alone."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n\n"
    pattern = re.compile(r"^## Stability\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", type=Path, help="keep the builds and releases in DIR (default: a temp dir)"
    )
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument(
        "--docs", type=Path, help="write the figures as the ## Stability section of this file"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    work = args.out or Path(tempfile.mkdtemp(prefix="stability-"))
    if args.out and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    releases = work / "releases"
    timings: dict[str, float] = {}
    print(f"[1/5] build 1 from {args.config}", file=sys.stderr)
    timings["build1"] = run(
        [
            str(CROSSWALK),
            "build",
            "--config",
            str(args.config),
            "--out",
            str(work / "build1"),
            "--quiet",
        ]
    )
    print("[2/5] release 1", file=sys.stderr)
    timings["release1"] = run(
        [
            str(CROSSWALK),
            "release",
            "--build",
            str(work / "build1"),
            "--releases",
            str(releases),
            "--version",
            "edition-1",
        ]
    )
    print("[3/5] later edition", file=sys.stderr)
    config2, log = make_edition(args.config, work / "edition2", args.seed)
    print("[4/5] build 2 with --releases", file=sys.stderr)
    timings["build2"] = run(
        [
            str(CROSSWALK),
            "build",
            "--config",
            str(config2),
            "--out",
            str(work / "build2"),
            "--releases",
            str(releases),
            "--quiet",
        ]
    )
    print("[5/5] release 2", file=sys.stderr)
    timings["release2"] = run(
        [
            str(CROSSWALK),
            "release",
            "--build",
            str(work / "build2"),
            "--releases",
            str(releases),
            "--version",
            "edition-2",
        ]
    )

    figures = measure(
        releases / "edition-1" / "crosswalk.sqlite",
        releases / "edition-2" / "crosswalk.sqlite",
        log,
    )
    changes = pd.read_csv(releases / "edition-2" / "changes.csv", dtype=str)
    figures["changes"] = {str(k): int(v) for k, v in changes["change"].value_counts().items()}
    figures["edits"] = {k: len(v) for k, v in log.items()}
    figures["timings"] = timings
    figures["seed"] = args.seed
    figures["measured_at"] = datetime.now(UTC).replace(microsecond=0).isoformat()
    command = ".venv/bin/python bench/stability.py" + (
        f" --seed {args.seed}" if args.seed != 20261125 else ""
    )
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        u = pct(figures["unchanged_kept"], figures["unchanged"])
        s = pct(figures["surviving_kept"], figures["surviving"])
        print(
            f"unchanged entities that keep their id: {u} ({figures['unchanged_kept']:,}/{figures['unchanged']:,})  target 100%"
        )
        print(
            f"surviving entities that keep their id: {s} ({figures['surviving_kept']:,}/{figures['surviving']:,})  target >= 99.5%"
        )
        print(
            f"untouched entities that keep their id: {pct(figures['untouched_kept'], figures['untouched'])} ({figures['untouched_kept']:,}/{figures['untouched']:,})"
        )
        print(f"edits: {figures['edits']}  changes: {figures['changes']}")
        print(f"timings (s): {json.dumps({k: round(v, 1) for k, v in timings.items()})}")
        print(f"reproduce: {command}")
        print(f"output kept in {work}" if args.out else f"output in {work}")
    if args.docs:
        write_section(args.docs, report(figures, command))
        print(f"wrote the ## Stability section of {args.docs}", file=sys.stderr)
    ok = (
        figures["unchanged_kept"] == figures["unchanged"]
        and figures["surviving_kept"] >= 0.995 * figures["surviving"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
