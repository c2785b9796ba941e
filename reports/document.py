"""The report as plain data: sections of paragraphs, tables and figures.

:mod:`reports.build` fills it from the runs; :mod:`reports.html` and :mod:`reports.markdown`
render the same document, so both outputs always hold the same numbers. Text is plain (never
markup): each renderer escapes it for its format.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Cell:
    text: str
    css: str | None = None  # a class name for the HTML (e.g. the verdict), never the only signal
    note: str | None = None  # a small second line (e.g. n=...)


CellLike = str | Cell


@dataclass
class Table:
    headers: list[str]
    rows: list[list[CellLike]]
    caption: str = ""
    numeric: set[int] = field(default_factory=set)  # column indices aligned right
    css: str | None = None  # a class of the HTML table (e.g. "summary")

    def cell(self, r: int, c: int) -> Cell:
        v = self.rows[r][c]
        return v if isinstance(v, Cell) else Cell(str(v))


@dataclass
class Paragraph:
    text: str
    css: str | None = None  # "note", "warning", "verdict-pass", ...


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Figure:
    name: str  # file stem: plots/<name>.png or grids/<name>.png
    folder: str  # "plots" or "grids"
    png: bytes
    title: str
    alt: str  # what the image shows, for screen readers and when it cannot be displayed
    caption: str = ""
    # what the figure is drawn from (run ids, the study): short names, each detailed once in the Sources section
    # (checkpoint, git revision, results file and its sha256), which the figure links to
    sources: list[str] = field(default_factory=list)

    @property
    def relpath(self) -> str:
        return f"{self.folder}/{self.name}.png"


Block = Paragraph | Bullets | Table | Figure


@dataclass
class Section:
    title: str
    anchor: str
    blocks: list[Block] = field(default_factory=list)
    level: int = 2


@dataclass
class Document:
    title: str
    subtitle: str
    sections: list[Section] = field(default_factory=list)
    footer: list[str] = field(default_factory=list)

    def figures(self) -> list[Figure]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Figure)]
