"""Same outputs: build the same inputs with two source trees and compare every published output.

Usage::

    .venv/bin/python bench/same_outputs.py --before /tmp/wt-base --after . \\
        [--cases embedded,blind,synth100k,release_chain] [--work DIR]

``--before`` and ``--after`` are checkouts of the project (e.g. ``git worktree add
/tmp/wt-base <commit>``). Each tree's code runs in a fresh process,
``.venv/bin/python -m crosswalk.cli`` with the tree as the current directory, so
the tree's own code is imported. The outputs are compared value by value and
type by type:

* ``crosswalk.sqlite``: the schema (``sqlite_master``: tables, indexes, views,
  triggers, with their SQL), ``page_size``, and every row of every table (the id
  state tables and the full-text search shadow tables included), each value
  with its SQLite ``typeof``, floats bit for bit (``float.hex``). In ``meta``,
  ``build_id`` and ``built_at`` are ignored, and so is a ``comparisons`` key of
  the recorded config present on one side only;
* ``crosswalk.csv`` and ``changes.csv`` byte for byte, ``datapackage.json``
  without ``created``;
* for ``release_chain`` (build, release, a later edition made as
  ``bench/stability.py`` makes it, built with ``--releases``, released): both
  builds and both releases: their sqlite, csv, ``crosswalk.parquet`` (values and
  schema), ``metadata.json``, ``datapackage.json``, ``changes.csv`` and
  ``manifest.json`` without its times, hashes and build ids.

Cases: ``embedded`` (``data/sources.toml``, with identifiers), ``blind``
(``bench/blind.toml``), ``synth100k`` (``bench/synth.py`` at 100k per side,
generated once into ``--work``) and ``release_chain``. The outputs of
``--before`` are kept under ``--work`` by the tree's commit id (when the tree has
no uncommitted changes), so a re-run rebuilds only ``--after``. One line per
case; the exit status is 1 when any output differs.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PY = Path("/work/main/.venv/bin/python")
if not PY.exists():
    PY = ROOT / ".venv" / "bin" / "python"
DEFAULT_WORK = Path(tempfile.gettempdir()) / "crosswalk-same-outputs"
SYNTH_SEED = 7
EDITION_SEED = 11
CASES = ("embedded", "blind", "synth100k", "release_chain")
CONFIGS = {"embedded": "data/sources.toml", "blind": "bench/blind.toml"}
IGNORED_META = frozenset({"build_id", "built_at"})
BUILD_JSON = ("datapackage.json",)
BUILD_BYTES = ("crosswalk.csv", "changes.csv")
RELEASE_JSON = ("datapackage.json", "metadata.json", "manifest.json")
# Dropped from every JSON file compared: they name the moment or the build, never the content.
IGNORED_JSON_KEYS = frozenset({"created", "published_at", "build_id", "built_at", "sha256"})
ALL_CASES = ",".join(CASES)
ROWS_SHOWN = 3  # differing rows shown per table


# --------------------------------------------------------------------------- comparing


def connect_ro(path: Path) -> sqlite3.Connection:
    """A read-only connection; the path is quoted so that ``#``, ``?`` and ``%`` stay in it."""
    uri = "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=ro"
    return sqlite3.connect(uri, uri=True)


@dataclass(frozen=True)
class Cell:
    """One SQLite value with its storage class, comparable bit for bit."""

    kind: str
    value: Any

    @property
    def key(self) -> tuple[str, Any]:
        return (self.kind, self.value.hex() if isinstance(self.value, float) else self.value)

    def __str__(self) -> str:
        if isinstance(self.value, float):
            return f"{self.value!r} ({self.kind}, {self.value.hex()})"
        if isinstance(self.value, bytes) and len(self.value) > 24:
            return f"{self.value[:24]!r}… ({self.kind}, {len(self.value)} bytes)"
        text = repr(self.value)
        return f"{text[:80]}{'…' if len(text) > 80 else ''} ({self.kind})"


def schema(con: sqlite3.Connection) -> list[tuple[str, str, str, str | None]]:
    """Every object of ``sqlite_master`` with its SQL, sorted by type and name."""
    rows = con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    return sorted(rows, key=lambda r: (r[0], r[1]))


def readable_tables(con: sqlite3.Connection) -> list[str]:
    """Every stored table (shadow tables included; virtual tables are read through them)."""
    rows = con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall()
    return sorted(
        name for name, sql in rows if not (sql or "").upper().startswith("CREATE VIRTUAL TABLE")
    )


def _without_rowid(con: sqlite3.Connection, table: str) -> bool:
    sql = con.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()[0]
    return "WITHOUT ROWID" in " ".join((sql or "").upper().split())


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def table_rows(
    con: sqlite3.Connection, table: str, root: str = ""
) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
    """The columns of ``table`` and its rows in rowid order: ``(rowid, Cell, Cell, ...)``.
    A WITHOUT ROWID table is read in its primary-key order, numbered from 1. ``root``, the
    directory the outputs were made in, reads as ``<out>`` in text (a previous release's path)."""
    cols = [r[1] for r in con.execute(f"PRAGMA table_info({_quote(table)})")]
    picks = ", ".join(f"typeof({_quote(c)}), {_quote(c)}" for c in cols)
    if _without_rowid(con, table):
        cursor = con.execute(f"SELECT {picks} FROM {_quote(table)}")
        numbered: Iterator[tuple[Any, ...]] = ((i, *r) for i, r in enumerate(cursor, start=1))
    else:
        numbered = con.execute(f"SELECT rowid, {picks} FROM {_quote(table)} ORDER BY rowid")

    def cells() -> Iterator[tuple[Any, ...]]:
        for row in numbered:
            if root:
                yield (
                    row[0],
                    *(
                        Cell(row[i], row[i + 1].replace(root, "<out>"))
                        if row[i] == "text"
                        else Cell(row[i], row[i + 1])
                        for i in range(1, len(row), 2)
                    ),
                )
            else:
                yield (row[0], *(Cell(row[i], row[i + 1]) for i in range(1, len(row), 2)))

    return cols, cells()


def _config_pair(a: Any, b: Any) -> tuple[Any, Any]:
    """Drop ``comparisons`` from a recorded config when only one side has it."""
    if isinstance(a, dict) and isinstance(b, dict) and ("comparisons" in a) != ("comparisons" in b):
        a = {k: v for k, v in a.items() if k != "comparisons"}
        b = {k: v for k, v in b.items() if k != "comparisons"}
    return a, b


def _meta_cells(key: Any, a: Cell, b: Cell) -> tuple[Cell, Cell]:
    """The ``value`` cells of one ``meta`` row, as compared (ignored keys blanked)."""
    if key in IGNORED_META:
        return Cell("ignored", None), Cell("ignored", None)
    if key == "config" and a.kind == b.kind == "text":
        try:
            ja, jb = _config_pair(json.loads(a.value), json.loads(b.value))
        except ValueError:
            return a, b
        return Cell(a.kind, json.dumps(ja)), Cell(b.kind, json.dumps(jb))
    return a, b


Roots = tuple[str, str]


def compare_table(
    con_a: sqlite3.Connection,
    con_b: sqlite3.Connection,
    table: str,
    roots: Roots = ("", ""),
    limit: int = ROWS_SHOWN,
) -> list[str]:
    """The differences of one table: its columns, then its first ``limit`` differing rows (each
    with its first differing column) and, past them, how many rows differ in all."""
    cols_a, rows_a = table_rows(con_a, table, roots[0])
    cols_b, rows_b = table_rows(con_b, table, roots[1])
    if cols_a != cols_b:
        return [f"table {table}: columns {cols_a} before, {cols_b} after"]
    key_col = cols_a.index("key") if table == "meta" and "key" in cols_a else None
    value_col = cols_a.index("value") if table == "meta" and "value" in cols_a else None
    out: list[str] = []
    differing = 0
    for ra, rb in itertools.zip_longest(rows_a, rows_b):
        if ra is None or rb is None:
            differing += 1
            if len(out) < limit:
                side, row = ("after", rb) if ra is None else ("before", ra)
                out.append(
                    f"table {table}: rowid {row[0]} only {side}: "
                    + ", ".join(f"{c}={v}" for c, v in zip(cols_a, row[1:], strict=True))
                )
            continue
        ca, cb = list(ra[1:]), list(rb[1:])
        if key_col is not None and value_col is not None and ca[key_col].key == cb[key_col].key:
            ca[value_col], cb[value_col] = _meta_cells(
                ca[key_col].value, ca[value_col], cb[value_col]
            )
        if ra[0] == rb[0] and all(x.key == y.key for x, y in zip(ca, cb, strict=True)):
            continue
        differing += 1
        if len(out) >= limit:
            continue
        if ra[0] != rb[0]:
            out.append(f"table {table}: rowid {ra[0]} before, {rb[0]} after at the same place")
        else:
            col = next(i for i, (x, y) in enumerate(zip(ca, cb, strict=True)) if x.key != y.key)
            out.append(
                f"table {table}: rowid {ra[0]} column {cols_a[col]}: "
                + _cell_pair(ca[col], cb[col])
            )
    if differing > len(out):
        out.append(f"table {table}: {differing} differing rows in all")
    return out


def _cell_pair(a: Cell, b: Cell) -> str:
    """Both values; two long texts are shown around their first differing character."""
    if a.kind == b.kind == "text" and max(len(a.value), len(b.value)) > 80:
        at = next(
            (i for i, (x, y) in enumerate(zip(a.value, b.value, strict=False)) if x != y),
            min(len(a.value), len(b.value)),
        )
        lo = max(0, at - 30)
        return (
            f"texts differ at character {at}: before …{a.value[lo : at + 50]!r}…, "
            f"after …{b.value[lo : at + 50]!r}… (text)"
        )
    return f"before {a}, after {b}"


def compare_sqlite(a: Path, b: Path, roots: Roots = ("", "")) -> list[str]:
    """Every difference between two SQLite files (schema, page size, every table's rows)."""
    con_a, con_b = connect_ro(a), connect_ro(b)
    try:
        out: list[str] = []
        sa, sb = schema(con_a), schema(con_b)
        if sa != sb:
            only_a = [r[:2] for r in sa if r not in sb]
            only_b = [r[:2] for r in sb if r not in sa]
            out.append(f"schema: before only {only_a}, after only {only_b}")
        pa = con_a.execute("PRAGMA page_size").fetchone()[0]
        pb = con_b.execute("PRAGMA page_size").fetchone()[0]
        if pa != pb:
            out.append(f"page_size: before {pa}, after {pb}")
        ta, tb = readable_tables(con_a), readable_tables(con_b)
        for table in sorted(set(ta) ^ set(tb)):
            out.append(f"table {table}: only {'before' if table in ta else 'after'}")
        for table in (t for t in ta if t in tb):
            out.extend(compare_table(con_a, con_b, table, roots))
        return out
    finally:
        con_a.close()
        con_b.close()


def compare_bytes(a: Path, b: Path) -> list[str]:
    """Byte-for-byte: the first differing line, or which side lacks the file."""
    if not a.exists() or not b.exists():
        if a.exists() or b.exists():
            return [f"{a.name}: only {'before' if a.exists() else 'after'}"]
        return []
    da, db = a.read_bytes(), b.read_bytes()
    if da == db:
        return []
    for n, (la, lb) in enumerate(itertools.zip_longest(da.split(b"\n"), db.split(b"\n")), start=1):
        if la != lb:
            return [f"{a.name}: line {n}: before {la!r}, after {lb!r}"]
    return [f"{a.name}: differs"]  # pragma: no cover - unequal bytes differ on some line


def _strip_json(value: Any, ignored: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: _strip_json(v, ignored) for k, v in value.items() if k not in ignored}
    if isinstance(value, list):
        return [_strip_json(v, ignored) for v in value]
    return value


def _json_diff(a: Any, b: Any, where: str) -> str | None:
    """Where two JSON values first differ (a ``config`` may lack ``comparisons`` on one side)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if where.endswith(".config"):
            a, b = _config_pair(a, b)
        for key in list(a) + [k for k in b if k not in a]:
            if key not in a or key not in b:
                return f"{where}.{key}: only {'before' if key in a else 'after'}"
            found = _json_diff(a[key], b[key], f"{where}.{key}")
            if found:
                return found
        if list(a) != list(b):
            return f"{where}: keys in another order"
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            found = _json_diff(x, y, f"{where}[{i}]")
            if found:
                return found
        return None if len(a) == len(b) else f"{where}: {len(a)} items before, {len(b)} after"
    if type(a) is not type(b) or (a.hex() != b.hex() if isinstance(a, float) else a != b):
        return f"{where}: before {a!r} ({type(a).__name__}), after {b!r} ({type(b).__name__})"
    return None


def compare_json(a: Path, b: Path, ignored: frozenset[str] = IGNORED_JSON_KEYS) -> list[str]:
    """Two JSON files, without the keys that name a moment or a build."""
    if not a.exists() or not b.exists():
        return (
            [f"{a.name}: only {'before' if a.exists() else 'after'}"]
            if a.exists() or b.exists()
            else []
        )
    ja = _strip_json(json.loads(a.read_text(encoding="utf-8")), ignored)
    jb = _strip_json(json.loads(b.read_text(encoding="utf-8")), ignored)
    if a.name == "manifest.json":
        for j in (ja, jb):  # the report carries its time; its content is not compared here
            if isinstance(j, dict) and isinstance(j.get("files"), dict):
                j["files"].pop("report.html", None)
    found = _json_diff(ja, jb, a.name)
    return [found] if found else []


def compare_parquet(a: Path, b: Path) -> list[str]:
    """Two Parquet files: the schema (with its metadata), then every column's values."""
    import pyarrow.parquet as pq

    ta, tb = pq.read_table(a), pq.read_table(b)
    if not ta.schema.equals(tb.schema, check_metadata=True):
        return [f"{a.name}: schema before {ta.schema}, after {tb.schema}"]
    if ta.equals(tb):
        return []
    if ta.num_rows != tb.num_rows:
        return [f"{a.name}: {ta.num_rows} rows before, {tb.num_rows} after"]
    for name in ta.column_names:
        va, vb = ta.column(name).to_pylist(), tb.column(name).to_pylist()
        for i, (x, y) in enumerate(zip(va, vb, strict=True)):
            if type(x) is not type(y) or x != y:
                return [f"{a.name}: row {i} column {name}: before {x!r}, after {y!r}"]
    return [f"{a.name}: differs"]


def compare_build(a: Path, b: Path, label: str = "", roots: Roots = ("", "")) -> list[str]:
    """The outputs of two builds: sqlite, the two CSVs, the data package."""
    out = compare_sqlite(a / "crosswalk.sqlite", b / "crosswalk.sqlite", roots)
    for name in BUILD_BYTES:
        out += compare_bytes(a / name, b / name)
    for name in BUILD_JSON:
        out += compare_json(a / name, b / name)
    return [f"{label}{d}" for d in out]


def compare_release(a: Path, b: Path, label: str = "", roots: Roots = ("", "")) -> list[str]:
    """The files of two releases (``report.html`` aside: it carries its time)."""
    out = compare_sqlite(a / "crosswalk.sqlite", b / "crosswalk.sqlite", roots)
    for name in BUILD_BYTES:
        out += compare_bytes(a / name, b / name)
    out += compare_parquet(a / "crosswalk.parquet", b / "crosswalk.parquet")
    for name in RELEASE_JSON:
        out += compare_json(a / name, b / name)
    return [f"{label}{d}" for d in out]


# --------------------------------------------------------------------------- building


class ToolError(Exception):
    """A tree that cannot be used, or a build that failed."""


def commit_of(tree: Path) -> tuple[str, bool]:
    """The tree's commit id and whether it has uncommitted changes to tracked files."""
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tree, capture_output=True, text=True, check=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return head, bool(dirty)


def check_tree(tree: Path) -> None:
    """Refuse a tree whose own ``crosswalk`` package would not be the one imported."""
    if not (tree / "crosswalk" / "cli.py").exists():
        raise ToolError(f"{tree}: no crosswalk/cli.py here; give a checkout of the project")
    found = subprocess.run(
        [str(PY), "-c", "import crosswalk; print(crosswalk.__file__)"],
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if Path(found).resolve() != (tree / "crosswalk" / "__init__.py").resolve():
        raise ToolError(f"{tree}: `python -m crosswalk.cli` there imports {found}, not the tree's")


def cli(tree: Path, *args: str | Path) -> None:
    """One ``crosswalk`` command of ``tree``'s own code, in a fresh process."""
    cmd = [str(PY), "-m", "crosswalk.cli", *map(str, args)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise ToolError(
            f"in {tree}: {shlex.join(cmd)} failed (exit {done.returncode}):\n{done.stderr[-2000:]}"
        )


def build(tree: Path, config: Path, out: Path, *extra: str | Path) -> None:
    cli(tree, "build", "--config", config.resolve(), "--out", out.resolve(), "--quiet", *extra)


def release(tree: Path, build_dir: Path, releases: Path, version: str) -> None:
    cli(tree, "release", "--build", build_dir.resolve(), "--releases", releases.resolve(),
        "--version", version)  # fmt: skip


def made_once(target: Path, make: Callable[[Path], object]) -> Path:
    """``target``, made by ``make`` into a directory of this process's own and renamed into
    place, unless it is there already: a run cut short, or another run at the same
    time, never leaves a half-made ``target``."""
    if target.exists():
        return target
    part = target.with_name(f".{target.name}.{os.getpid()}")
    if part.exists():
        shutil.rmtree(part, onerror=_writable_rmtree)
    part.parent.mkdir(parents=True, exist_ok=True)
    make(part)
    try:
        part.rename(target)
    except OSError:  # made meanwhile by another run: keep that one
        shutil.rmtree(part, onerror=_writable_rmtree)
    return target


def synthetic(n: int, work: Path) -> Path:
    """Synthetic listings of ``n`` records per side (``bench/synth.py``), generated once."""
    sys.path.insert(0, str(BENCH))
    from synth import generate

    data = made_once(work / "inputs" / f"synth{n}", lambda d: generate(n, d, SYNTH_SEED))
    return data / "config.toml"


def edition(work: Path) -> Path:
    """The later edition of the embedded listings (as ``bench/stability.py`` makes it), once."""
    sys.path.insert(0, str(BENCH))
    from stability import make_edition

    out = made_once(
        work / "inputs" / "edition",
        lambda d: make_edition(ROOT / CONFIGS["embedded"], d, EDITION_SEED),
    )
    return out / "sources.toml"


def run_case(case: str, tree: Path, out: Path, work: Path) -> None:
    """Produce the outputs of ``case`` with ``tree`` into ``out`` (a new directory). The
    directory they were made in is kept in ``out/.root``: a release's path names it."""
    out.mkdir(parents=True)
    (out / ".root").write_text(str(out.resolve()), encoding="utf-8")
    if case in CONFIGS:
        build(tree, tree / CONFIGS[case], out / "build")
    elif case == "synth100k":
        build(tree, synthetic(100_000, work), out / "build")
    elif case == "release_chain":
        rel = out / "releases"
        build(tree, tree / CONFIGS["embedded"], out / "b1")
        release(tree, out / "b1", rel, "edition-1")
        build(tree, edition(work), out / "b2", "--releases", rel)
        release(tree, out / "b2", rel, "edition-2")
    else:
        raise ToolError(f"unknown case {case!r}; cases: {ALL_CASES}")


def _writable_rmtree(func: Callable[..., Any], path: str, _exc: Any) -> None:
    """Releases are read-only: make the directory writable and try again."""
    os.chmod(os.path.dirname(path), 0o755)
    func(path)


def read_root(out: Path) -> str:
    return (out / ".root").read_text(encoding="utf-8")


def compare_case(case: str, a: Path, b: Path) -> list[str]:
    if case == "release_chain":
        out: list[str] = []
        roots = (read_root(a), read_root(b))  # the previous release is named by its path
        for name in ("b1", "b2"):
            out += compare_build(a / name, b / name, f"build {name}: ", roots)
        for version in ("edition-1", "edition-2"):
            out += compare_release(
                a / "releases" / version, b / "releases" / version, f"release {version}: ", roots
            )
        return out
    return compare_build(a / "build", b / "build")


def _path_key(tree: Path) -> str:
    return hashlib.sha256(str(tree.resolve()).encode()).hexdigest()[:12]


def before_dir(tree: Path, work: Path, case: str, log: Callable[[str], None]) -> Path:
    """The before tree's outputs of ``case``, from the cache when its commit was built already."""
    commit, dirty = commit_of(tree)
    if dirty:
        log(f"· {case}: before tree has uncommitted changes: building it (not cached)")
        return fresh_dir(tree, work / "before" / f"dirty-{_path_key(tree)}" / case, case, work)
    target = work / "before" / commit / case
    if target.exists():
        log(f"· {case}: before outputs from the cache of {commit[:10]}")
        return target
    log(f"· {case}: building before ({commit[:10]}) …")
    return made_once(target, lambda d: run_case(case, tree, d, work))


def fresh_dir(tree: Path, target: Path, case: str, work: Path) -> Path:
    """The outputs of ``case`` made anew into ``target``."""
    if target.exists():
        shutil.rmtree(target, onerror=_writable_rmtree)
    return made_once(target, lambda d: run_case(case, tree, d, work))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 when every output is identical, 1 when any differs, 2 on error.",
    )
    parser.add_argument("--before", type=Path, required=True, help="checkout of the base")
    parser.add_argument("--after", type=Path, required=True, help="checkout with the change")
    parser.add_argument(
        "--cases", default=ALL_CASES, help=f"comma-separated, of: {ALL_CASES} (default: all)"
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=DEFAULT_WORK,
        help=f"generated inputs and outputs; before outputs cached by commit (default {DEFAULT_WORK})",
    )
    args = parser.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown or not cases:
        parser.error(f"--cases: unknown {unknown}; choose from {ALL_CASES}")
    before, after, work = args.before.resolve(), args.after.resolve(), args.work.resolve()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    differs = False
    try:
        for tree in (before, after):
            check_tree(tree)
        for case in cases:
            a = before_dir(before, work, case, log)
            log(f"· {case}: building after …")
            b = fresh_dir(after, work / "after" / _path_key(after) / case, case, work)
            found = compare_case(case, a, b)
            again = shlex.join(
                [
                    str(PY),
                    "bench/same_outputs.py",
                    "--before",
                    str(before),
                    "--after",
                    str(after),
                    "--cases",
                    case,
                    "--work",
                    str(work),
                ]
            )
            if found:
                differs = True
                print(f"{case}: DIFFERENT ({len(found)} place{'s' if len(found) != 1 else ''})")
                for line in found[:20]:
                    print(f"    {line}")
                if len(found) > 20:
                    print(f"    … and {len(found) - 20} more")
            else:
                print(f"{case}: identical")
            print(f"    reproduce: {again}")
    except (ToolError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1 if differs else 0


if __name__ == "__main__":
    sys.exit(main())
