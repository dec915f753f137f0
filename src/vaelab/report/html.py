"""``index.html``: one self-contained page showing every table and figure of a report,
each with a caption saying which protocol produced it.  No scripts, no external assets:
images are relative links into ``figures/``."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .tables import Table, grids, superscript

CSS = """
body { font-family: system-ui, sans-serif; max-width: 1400px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2.2em; border-bottom: 1px solid #ccc; } h3 { margin-top: 1.5em; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.85em; }
th, td { border: 1px solid #ddd; padding: 3px 7px; } td { text-align: right; font-variant-numeric: tabular-nums; }
td:first-child, th:first-child { text-align: left; } th { background: #f4f4f4; }
td.ref { color: #666; } td.pos { color: #1a7f37; } td.neg { color: #b42318; } td.neutral { color: #555; }
.banner { background: #fff4ce; border: 1px solid #e0b400; border-left: 6px solid #e0b400; padding: 0.5em 0.8em;
  margin: 0.6em 0; max-width: 100ch; font-weight: 600; }
figure { margin: 1.4em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption, .protocol { font-size: 0.9em; color: #444; max-width: 100ch; }
.skipped { color: #555; font-style: italic; } .failed { color: #b42318; }
.meta { color: #666; font-size: 0.85em; } code { font-size: 0.9em; }
ul.footnotes { list-style: none; padding-left: 0; } ul.footnotes, ul.notes { font-size: 0.9em; max-width: 100ch; }
"""


@dataclass
class FigureEntry:
    name: str
    caption: str
    protocol: str
    paths: list[str] = field(default_factory=list)  # relative to the report directory
    skipped: str | None = None
    source: str | None = None  # where it was drawn, when not by this report


@dataclass
class Section:
    name: str
    title: str
    description: str
    effort: str
    protocol: str
    counts: dict[str, int]
    tables: list[tuple[Table, str, str]] = field(default_factory=list)  # (table, md path, csv path)
    figures: list[FigureEntry] = field(default_factory=list)
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (id, label, error)


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _table_html(table: Table) -> str:
    parts = []
    for heading, header, lines, align in grids(table):
        parts.append(f"<h4>{_e(heading)}</h4><table><thead><tr>"
                     + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr></thead><tbody>")
        for line in lines:
            cells = []
            for h, v in zip(header, line):
                cls = ""
                if h in ("study", "reference"):
                    cls = "ref"
                elif h == "Δ" and v:  # coloured as better/worse only when that is what it means
                    cls = ("pos" if v.startswith("+") else "neg") if table.verdict else "neutral"
                cells.append(f"<td class=\"{cls}\">{_e(v)}</td>" if cls else f"<td>{_e(v)}</td>")
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</tbody></table>")
    return "".join(parts)


def render(title: str, sections: list[Section], meta: str) -> str:
    out = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_e(title)}</title>"
           f"<style>{CSS}</style></head><body>", f"<h1>{_e(title)}</h1>", f"<p class=\"meta\">{_e(meta)}</p>"]
    out.append("<ul>" + "".join(f"<li><a href=\"#{_e(s.name)}\">{_e(s.title)}</a></li>" for s in sections) + "</ul>")
    for s in sections:
        c = s.counts
        out.append(f"<h2 id=\"{_e(s.name)}\">{_e(s.title)}</h2>")
        out.append(f"<p>{_e(s.description)}</p>")
        out.append(f"<p class=\"protocol\"><b>Experiment</b> <code>{_e(s.name)}</code>, effort "
                   f"<b>{_e(s.effort)}</b>: {c.get('done', 0)} of {sum(c.values())} runs done"
                   + (f", {c['failed']} failed" if c.get("failed") else "")
                   + (f", {c['queued'] + c['running']} unfinished" if c.get("queued", 0) + c.get("running", 0) else "")
                   + f". Protocol: {_e(s.protocol)}</p>")
        for table, md, csv in s.tables:
            out.append(f"<h3>{_e(table.title)}</h3>")
            out.append(f"<p class=\"protocol\">Protocol: {_e(table.protocol)} "
                       f"Files: <a href=\"{_e(md)}\">{_e(md)}</a>, <a href=\"{_e(csv)}\">{_e(csv)}</a>.</p>")
            if table.banner():
                out.append(f"<div class=\"banner\" role=\"note\">{_e(table.banner())}</div>")
            out.append(_table_html(table))
            if table.footnotes:
                out.append("<ul class=\"footnotes\">" + "".join(
                    f"<li>{superscript(i + 1)} {_e(note)}</li>" for i, note in enumerate(table.footnotes)) + "</ul>")
            if table.quality_protocol():
                out.append(f"<p class=\"protocol\">{_e(table.quality_protocol())}</p>")
            if table.reference:
                ref = table.reference
                out.append(f"<p class=\"protocol\">Reference: {_e(ref.get('source', ''))}. "
                           f"{_e(' '.join(str(ref.get('note', '')).split()))}</p>")
            if table.notes:
                out.append("<ul class=\"notes\">" + "".join(f"<li>{_e(n)}</li>" for n in table.notes) + "</ul>")
        for f in s.figures:
            if f.skipped:
                out.append(f"<p class=\"skipped\">Figure <code>{_e(f.name)}</code> is not drawn here: "
                           f"{_e(f.skipped)}</p>")
                continue
            for p in f.paths:
                out.append(f"<figure><img src=\"{_e(p)}\" alt=\"{_e(f.name)}\">"
                           f"<figcaption>{_e(f.caption)} <i>Protocol: {_e(f.protocol)}</i>"
                           + (f" {_e(f.source)}" if f.source else "") + "</figcaption></figure>")
        if s.failures:
            out.append("<h3>Failed runs</h3><ul class=\"failed\">" + "".join(
                f"<li><code>{_e(rid)}</code> {_e(label)}: {_e(err)}</li>" for rid, label, err in s.failures) + "</ul>")
    out.append("</body></html>\n")
    return "\n".join(out)


def image_paths(index: Path) -> list[Path]:
    """The files the page's <img> tags point at (tests check each loads)."""
    text = index.read_text(encoding="utf-8")
    return [index.parent / html.unescape(m) for m in re.findall(r"<img src=\"([^\"]+)\"", text)]
