"""One self-contained HTML page: images embedded as data: URIs, styles inline, no script, and a
Content-Security-Policy that forbids loading anything from elsewhere, so it opens offline from file://."""

from __future__ import annotations

import base64
import html
from typing import Any

from reports.document import Bullets, Document, Figure, Paragraph, Section, Table

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #111;
       background: #fff; margin: 0 auto; max-width: 1400px; padding: 1.5rem 2rem 3rem; overflow-wrap: break-word; }
h1 { font-size: 1.6rem; margin: 0 0 .2rem; } h2 { font-size: 1.3rem; margin-top: 2.2rem;
     border-bottom: 2px solid #222; padding-bottom: .2rem; }
.sub { color: #333; margin: 0 0 1rem; }
nav ol { columns: 2; margin: .5rem 0 1rem; } a { color: #0b4f9c; }
.table-wrap { overflow-x: auto; margin: 1rem 0; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; caption-side: top; }
th, td { border: 1px solid #999; padding: .25rem .45rem; vertical-align: top; overflow-wrap: anywhere; }
thead th { background: #e8e8e8; text-align: left; }
tbody th { text-align: left; font-weight: 600; background: #f6f6f6; min-width: 7em; }
td.num { text-align: right; white-space: nowrap; overflow-wrap: normal; }
.runid { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
.n { display: block; color: #444; font-size: 11px; white-space: normal; }
figure { margin: 1.5rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #ccc; box-sizing: border-box; }
figcaption { margin-top: .4rem; } .prov { font-size: 12px; color: #333; margin: .3rem 0 0; }
.note { color: #333; font-style: italic; }
.verdict-pass { background: #dff0d8; color: #1d4d1d; } .verdict-fail { background: #f6d5d5; color: #6b0f0f; }
.verdict-inconclusive { background: #fbeccb; color: #5a3d00; }
p.verdict-pass, p.verdict-fail, p.verdict-inconclusive { padding: .6rem .8rem; font-weight: 600;
     border: 2px solid currentColor; }
footer { margin-top: 3rem; border-top: 1px solid #999; font-size: 12px; color: #333; }
.summary td, .summary th { font-size: 14px; }
@media (max-width: 600px) { body { padding: 1rem .8rem 2rem; } nav ol { columns: 1; } }
/* Save as PDF / print: the page's full width, no scroll boxes (a table too wide shrinks instead of being cut),
   no figure or table row split across pages, headings kept with what follows, colours kept. */
@media print {
  @page { margin: 14mm 12mm; }
  body { max-width: none; padding: 0; font-size: 11pt; }
  nav { display: none; }
  .table-wrap { overflow: visible; }
  table { width: 100%; font-size: 8.5pt; }
  figure, tr, .verdict-pass, .verdict-fail, .verdict-inconclusive { break-inside: avoid; }
  h2, h3, caption { break-after: avoid; }
  h2 { margin-top: 1.2rem; }
  a { color: inherit; text-decoration: none; }
  * { print-color-adjust: exact; -webkit-print-color-adjust: exact; }
}
"""


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def table_html(t: Table) -> str:
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in t.headers)
    body = []
    for r in range(len(t.rows)):
        cells = []
        for c in range(len(t.rows[r])):
            cell = t.cell(r, c)
            classes = " ".join(x for x in (cell.css, "num" if c in t.numeric else None) if x)
            attr = f' class="{esc(classes)}"' if classes else ""
            note = f'<span class="n">{esc(cell.note)}</span>' if cell.note else ""
            tag = "th" if c == 0 else "td"
            scope = ' scope="row"' if c == 0 else ""
            cells.append(f"<{tag}{scope}{attr}>{esc(cell.text)}{note}</{tag}>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    label = esc(t.caption or "table")
    return (
        f'<div class="table-wrap{" " + esc(t.css) if t.css else ""}" role="region" aria-label="{label}" '
        'tabindex="0"><table>'
        f"<caption>{esc(t.caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def figure_html(f: Figure) -> str:
    prov = ""
    if f.sources:
        prov = (
            f'<p class="prov">From {esc(", ".join(f.sources))}; checkpoints, revisions and files in '
            '<a href="#sources">Sources</a>.</p>'
        )
    return (
        f'<figure id="{esc(f.name)}"><img src="{data_uri(f.png)}" alt="{esc(f.alt)}">'
        f"<figcaption><strong>{esc(f.title)}.</strong> {esc(f.caption)}</figcaption>{prov}</figure>"
    )


def block_html(block: Any) -> str:
    if isinstance(block, Paragraph):
        return f'<p class="{esc(block.css)}">{esc(block.text)}</p>' if block.css else f"<p>{esc(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{esc(i)}</li>" for i in block.items) + "</ul>"
    if isinstance(block, Table):
        return table_html(block)
    if isinstance(block, Figure):
        return figure_html(block)
    raise TypeError(f"unknown block {type(block).__name__}")


def section_html(s: Section) -> str:
    return (
        f'<section id="{esc(s.anchor)}" aria-labelledby="{esc(s.anchor)}-h">'
        f'<h{s.level} id="{esc(s.anchor)}-h">{esc(s.title)}</h{s.level}>'
        + "\n".join(block_html(b) for b in s.blocks)
        + "</section>"
    )


def render_html(doc: Document) -> str:
    toc = "".join(f'<li><a href="#{esc(s.anchor)}">{esc(s.title)}</a></li>' for s in doc.sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(doc.title)}</title><style>{STYLE}</style></head>\n<body>"
        f'<header><h1>{esc(doc.title)}</h1><p class="sub">{esc(doc.subtitle)}</p>'
        f'<nav aria-label="contents"><ol>{toc}</ol></nav></header>\n<main>'
        + "\n".join(section_html(s) for s in doc.sections)
        + "</main>\n<footer>"
        + "".join(f"<p>{esc(x)}</p>" for x in doc.footer)
        + "</footer></body></html>\n"
    )
