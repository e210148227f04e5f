"""The short HTML report of a release: self-contained, charts drawn as inline SVG.

No script, stylesheet or font is loaded from anywhere: the file opens offline
and can be archived with the release. The charts are simple bar charts built
here from the release's own tables.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from crosswalk.artifact.reader import connect
from crosswalk.formats import RELEASE_FILES, REPORT
from crosswalk.stages.kernel.model import probability_bits

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:60rem;padding:0 1rem;color:#1b1f24;background:#fff}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2.2rem;
border-bottom:1px solid #d0d7de;padding-bottom:.2rem}
.sub{color:#57606a;margin-top:0}table{border-collapse:collapse;margin:.6rem 0}
td,th{border:1px solid #d0d7de;padding:.25rem .6rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}
svg{display:block;max-width:100%;height:auto}svg text{font:12px system-ui,sans-serif;fill:#1b1f24}
.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 1rem;vertical-align:-1px}
figcaption{color:#57606a;font-size:.9rem}
"""
_BLUE = "#2f6fb0"
_GREY = "#b8c2cc"
_CHANGE_ORDER = ("new", "members_changed", "merged_into", "split_from", "retired", "revived")


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(n: float) -> str:
    return f"{int(n):,}" if float(n).is_integer() else f"{n:,.2f}"


def hbar_chart(labels: Sequence[str], values: Sequence[float], title: str) -> str:
    """A horizontal bar chart: one labelled bar per value."""
    if not labels:
        return "<p>(nothing to chart)</p>"
    bar, gap, left, right = 22, 6, 190, 90
    width = 760
    top = 8
    height = top + len(labels) * (bar + gap) + 4
    top_value = max(max(values), 1)
    scale = (width - left - right) / top_value
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_esc(title)}"><title>{_esc(title)}</title>'
    ]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + i * (bar + gap)
        w = max(value * scale, 1 if value else 0)
        parts.append(
            f'<text x="{left - 8}" y="{y + bar * 0.7:.1f}" text-anchor="end">{_esc(label)}</text>'
            f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar}" fill="{_BLUE}">'
            f"<title>{_esc(label)}: {_fmt(value)}</title></rect>"
            f'<text x="{left + w + 6:.1f}" y="{y + bar * 0.7:.1f}">{_fmt(value)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class Mark:
    """A mark on a column chart's x axis, in columns (0 is the first column's left edge,
    1.5 the middle of the second): a line where ``start == end``, else a shaded band.
    ``name`` is its ``data-mark`` attribute."""

    name: str
    start: float
    end: float
    label: str


def column_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float]]],
    title: str,
    x_title: str,
    y_title: str,
    marks: Sequence[Mark] = (),
) -> str:
    """A vertical (stacked) column chart on a linear axis, each column's total written
    above it: ``series`` is ``(name, colour, values)``; ``marks`` are drawn behind."""
    if not labels:
        return "<p>(nothing to chart)</p>"
    width, height = 760, 320
    left, right, top, bottom = 64, 12, 52, 58
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(s[2][i] for s in series) for i in range(len(labels))]
    top_value = max(max(totals), 1)

    def y_of(v: float) -> float:
        return plot_h * v / top_value

    col = min(plot_w / len(labels), 64.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_esc(title)}"><title>{_esc(title)}</title>',
    ]
    for k, mark in enumerate(marks):
        x0 = left + max(0.0, min(mark.start, len(labels))) * col
        x1 = left + max(0.0, min(mark.end, len(labels))) * col
        label_y = 14 + 14 * k
        if mark.start == mark.end:
            parts.append(
                f'<line data-mark="{_esc(mark.name)}" x1="{x0:.1f}" y1="{label_y + 4}" '
                f'x2="{x0:.1f}" y2="{top + plot_h}" stroke="#cf222e" stroke-width="1.5" '
                'stroke-dasharray="4 3"/>'
            )
        else:
            parts.append(
                f'<rect data-mark="{_esc(mark.name)}" x="{x0:.1f}" y="{label_y + 4}" '
                f'width="{x1 - x0:.1f}" height="{top + plot_h - label_y - 4}" fill="#fff1c2"/>'
            )
        anchor = "end" if x0 > left + plot_w / 2 else "start"
        parts.append(
            f'<text x="{x0 + (-4 if anchor == "end" else 4):.1f}" y="{label_y}" '
            f'text-anchor="{anchor}">{_esc(mark.label)}</text>'
        )
    parts += [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#57606a"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#57606a"/>',
    ]
    ticks = [0.0, top_value / 2, float(top_value)]
    for t in ticks:
        y = top + plot_h - y_of(t)
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(round(t))}</text>'
            f'<line x1="{left - 3}" y1="{y:.1f}" x2="{left}" y2="{y:.1f}" stroke="#57606a"/>'
        )
    every = max(1, math.ceil(len(labels) / 16))
    for i, label in enumerate(labels):
        x = left + i * col
        base = 0.0
        for name, colour, values in series:
            v = values[i]
            if v <= 0:
                continue
            y0, y1 = y_of(base), y_of(base + v)
            parts.append(
                f'<rect x="{x + 1:.1f}" y="{top + plot_h - y1:.1f}" width="{max(col - 2, 1):.1f}" '
                f'height="{max(y1 - y0, 0.5):.1f}" fill="{colour}">'
                f"<title>{_esc(label)} · {_esc(name)}: {_fmt(v)}</title></rect>"
            )
            base += v
        if totals[i] > 0:  # the count as text: a short column's is readable too
            parts.append(
                f'<text x="{x + col / 2:.1f}" y="{top + plot_h - y_of(totals[i]) - 4:.1f}" '
                f'text-anchor="start" font-size="10" '
                f'transform="rotate(-90 {x + col / 2:.1f} {top + plot_h - y_of(totals[i]) - 4:.1f})"'
                f' dy="3">{_fmt(totals[i])}</text>'
            )
        if i % every == 0:
            parts.append(
                f'<text x="{x + col / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{_esc(label)}</text>'
            )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{height - 18}" text-anchor="middle">{_esc(x_title)}</text>'
        f'<text x="14" y="{top + plot_h / 2}" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + plot_h / 2})">{_esc(y_title)}</text></svg>'
    )
    return "".join(parts)


def _legend(items: Sequence[tuple[str, str]]) -> str:
    return (
        '<p class="legend">'
        + "".join(f'<span style="background:{c}"></span>{_esc(n)}' for n, c in items)
        + "</p>"
    )


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: set[int]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{_fmt(v)}</td>' if i in numeric else f"<td>{_esc(v)}</td>"
            for i, v in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_report(db_path: Path, manifest: dict[str, Any], changes: pd.DataFrame) -> str:
    """The report of the release whose database is ``db_path``."""
    conn = connect(db_path)
    try:
        combos = pd.read_sql_query(
            "SELECT sources, count(*) AS n FROM entities GROUP BY sources ORDER BY n DESC", conn
        )
        sizes = pd.read_sql_query(
            "SELECT member_count AS size, count(*) AS n FROM entities GROUP BY member_count "
            "ORDER BY member_count",
            conn,
        )
        weights = pd.read_sql_query("SELECT match_weight, status FROM links", conn)
    finally:
        conn.close()

    version = manifest.get("version", "")
    previous = manifest.get("previous")
    counts = manifest.get("counts", {})
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>Crosswalk release {_esc(version)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Crosswalk release {_esc(version)}</h1>",
        f"<p class='sub'>Published {_esc(manifest.get('published_at', ''))} · release "
        f"#{_esc(manifest.get('sequence', ''))} · engine {_esc(manifest.get('engine_version', ''))}"
        + (f" · previous release {_esc(previous)}" if previous else " · first release")
        + "</p>",
    ]
    n_entities = int(combos["n"].sum()) if not combos.empty else 0
    n_records = sum(int(s.get("rows") or 0) for s in manifest.get("sources", []))
    out.append(
        _table(
            ["Source", "Publisher", "Extract", "Records", "SHA-256"],
            [
                [
                    s["name"],
                    s.get("publisher") or "",
                    s.get("extracted") or "",
                    s["rows"],
                    s["sha256"][:16] + "…",
                ]
                for s in manifest.get("sources", [])
            ],
            {3},
        )
    )
    out.append(
        f"<p>{n_records:,} source records form {n_entities:,} entities"
        + (
            f"; {counts.get('candidate_pairs', 0):,} candidate pairs were found"
            if counts.get("candidate_pairs")
            else ""
        )
        + ".</p>"
    )

    out.append("<h2>Entities per source combination</h2>")
    out.append("<figure>")
    out.append(
        hbar_chart(
            combos["sources"].astype(str).tolist(),
            combos["n"].tolist(),
            "Entities per source combination",
        )
    )
    out.append(
        "<figcaption>Number of entities by the set of sources holding a member.</figcaption></figure>"
    )

    out.append("<h2>Match weights</h2>")
    if weights.empty:
        out.append("<p>No candidate pair was scored.</p>")
    else:
        w = weights["match_weight"].astype(float)
        lo, hi = math.floor(w.min()), math.ceil(w.max())
        step = max(1, math.ceil((hi - lo) / 40))
        edges = list(range(lo, hi + step, step))
        if len(edges) < 2:
            edges = [lo, lo + step]
        kept = weights["status"].isin(["linked", "must_link"])
        bins = pd.cut(w, edges, right=False, include_lowest=True, labels=False)
        bins = bins.fillna(len(edges) - 2).astype(int)
        n_bins = len(edges) - 1
        kept_counts = bins[kept].value_counts().reindex(range(n_bins), fill_value=0)
        other_counts = bins[~kept].value_counts().reindex(range(n_bins), fill_value=0)
        labels = [str(edges[i]) for i in range(n_bins)]
        settings = manifest.get("config") or {}
        model, review = settings.get("model") or {}, settings.get("review") or {}
        threshold = float(model.get("link_threshold", 0.5))
        low = float(review.get("uncertain_low", threshold))
        high = float(review.get("uncertain_high", threshold))

        def column_of(probability: float) -> float:
            return (probability_bits(probability) - lo) / step

        marks = [
            Mark(
                "borderline",
                column_of(low),
                column_of(high),
                f"borderline band, queued for review: p {low:g} to {high:g} "
                f"({probability_bits(low):.1f} to {probability_bits(high):.1f} bits)",
            ),
            Mark(
                "threshold",
                column_of(threshold),
                column_of(threshold),
                f"link threshold: p {threshold:g} ({probability_bits(threshold):.1f} bits)",
            ),
        ]
        out.append("<figure>")
        out.append(
            column_chart(
                labels,
                [
                    ("kept in an entity", _BLUE, kept_counts.tolist()),
                    ("not kept", _GREY, other_counts.tolist()),
                ],
                "Histogram of match weights",
                "match weight (bits, bin start)",
                "pairs",
                marks,
            )
        )
        out.append(
            _legend(
                [
                    ("kept (linked or must_link)", _BLUE),
                    ("not kept (below threshold, cut, cannot_link)", _GREY),
                ]
            )
        )
        out.append(
            f"<figcaption>{len(weights):,} scored candidate pairs (links table), by match weight "
            f"in bins of {step} bit{'s' if step > 1 else ''}; each column's count is written above "
            f"it. Pairs at or above the link threshold (p {threshold:g}) are linked unless a "
            f"constraint cuts them; pairs in the shaded borderline band (p {low:g} to {high:g}) "
            "are queued for review.</figcaption></figure>"
        )

    out.append("<h2>Cluster sizes</h2><figure>")
    out.append(
        hbar_chart(
            [f"{s} record{'s' if s != 1 else ''}" for s in sizes["size"].astype(int)],
            sizes["n"].tolist(),
            "Entities by number of member records",
        )
    )
    out.append(
        "<figcaption>Entities by their number of member records, each count written out."
        "</figcaption></figure>"
    )

    out.append("<h2>What changed since the previous release</h2>")
    if not previous:
        out.append(
            f"<p>This is the first release: every one of its {n_entities:,} entity ids is new.</p>"
        )
    else:
        by_kind = changes["change"].value_counts() if not changes.empty else pd.Series(dtype=int)
        kinds = [k for k in _CHANGE_ORDER if k in by_kind.index]
        out.append(f"<p>Against release {_esc(previous)}:</p>")
        out.append(hbar_chart(kinds, [int(by_kind[k]) for k in kinds], "Entity ids by change"))
        out.append(
            _table(
                ["Change", "Entity ids"], [[k, int(by_kind.get(k, 0))] for k in _CHANGE_ORDER], {1}
            )
        )
        notable = changes[changes["change"].isin(["merged_into", "split_from", "retired"])].head(25)
        if not notable.empty:
            out.append(
                "<p>First merges, splits and retirements (all are in <code>changes.csv</code>):</p>"
            )
            out.append(
                _table(
                    ["Entity id", "Change", "Details"],
                    notable[["entity_id", "change", "details"]].values.tolist(),
                    set(),
                )
            )
    out.append(
        "<p class='sub'>Files: "
        + ", ".join(f for f in RELEASE_FILES if f not in REPORT.files)
        + ". Ids are stable across releases; "
        "a retired id is listed in the retired_ids table.</p></body></html>\n"
    )
    return "\n".join(out)
