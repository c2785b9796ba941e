"""The report as Markdown (``report.md``), with its figures as PNG files beside it
(``plots/*.png``, ``grids/*.png``)."""

from __future__ import annotations

from typing import Any

from reports.document import Bullets, Document, Figure, Paragraph, Section, Table


def cell_md(text: str) -> str:
    """Text safe inside a Markdown table cell (no pipe, no line break, no HTML)."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")


def text_md(text: str) -> str:
    """Plain text that Markdown renders as written (markup characters escaped)."""
    out = text.replace("\\", "\\\\")
    for ch in "*_`[]<>#|":
        out = out.replace(ch, "\\" + ch)
    return out


def table_md(t: Table) -> str:
    lines = []
    if t.caption:
        lines.append(f"**{text_md(t.caption)}**")
        lines.append("")
    lines.append("| " + " | ".join(cell_md(h) for h in t.headers) + " |")
    lines.append("|" + "|".join("---:" if c in t.numeric else "---" for c in range(len(t.headers))) + "|")
    for r in range(len(t.rows)):
        cells = []
        for c in range(len(t.rows[r])):
            cell = t.cell(r, c)
            cells.append(cell_md(cell.text + (f" {cell.note}" if cell.note else "")))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure_md(f: Figure) -> str:
    alt = f.alt.replace("[", "(").replace("]", ")").replace("\n", " ")
    lines = [f"![{alt}]({f.relpath})", "", f"**{text_md(f.title)}.** {text_md(f.caption)}"]
    if f.sources:
        lines += [
            "",
            f"*From {text_md(', '.join(f.sources))}; checkpoints, revisions and files in [Sources](#sources).*",
        ]
    return "\n".join(lines)


def block_md(block: Any) -> str:
    if isinstance(block, Paragraph):
        text = text_md(block.text)
        return (
            f"> {text}"
            if block.css and block.css.startswith("verdict")
            else (f"*{text}*" if block.css == "note" else text)
        )
    if isinstance(block, Bullets):
        return "\n".join(f"- {text_md(i)}" for i in block.items)
    if isinstance(block, Table):
        return table_md(block)
    if isinstance(block, Figure):
        return figure_md(block)
    raise TypeError(f"unknown block {type(block).__name__}")


def section_md(s: Section) -> str:
    return "\n\n".join([f"{'#' * s.level} {text_md(s.title)}", *(block_md(b) for b in s.blocks)])


def render_markdown(doc: Document) -> str:
    parts = [f"# {text_md(doc.title)}", f"*{text_md(doc.subtitle)}*"]
    parts += [section_md(s) for s in doc.sections]
    parts += ["---", *(text_md(x) for x in doc.footer)]
    return "\n\n".join(parts) + "\n"
