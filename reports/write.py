"""Write a report folder all at once: everything goes to a hidden temporary folder beside ``out`` that
is renamed into place at the end, so an interrupted or failed report never leaves a folder that looks
complete. A previous report at ``out`` is replaced; any other existing folder is refused."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError
from reports.document import Document
from reports.html import render_html
from reports.markdown import render_markdown

HTML_NAME = "report.html"
MD_NAME = "report.md"
OURS = {HTML_NAME, MD_NAME, "plots", "grids"}


@dataclass
class Written:
    folder: Path
    html: Path
    markdown: Path
    html_bytes: int
    figures: int


def check_out(out: Path) -> None:
    """Refuse an ``out`` that is a file, or a folder holding anything but a previous report."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise UserError(f"out={out} exists and is not a folder; give a new folder for the report")
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in OURS)
        if foreign:
            raise UserError(
                f"out={out} holds other files ({', '.join(foreign[:3])}); give an empty or new "
                "folder, or a previous report's folder"
            )


class Staging:
    """The temporary folder a report is written into; :meth:`commit` moves it to ``out``."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out).absolute()
        check_out(self.out)
        self.made = [p for p in reversed(self.out.parents) if not p.exists()]
        try:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", suffix=".partial", dir=self.out.parent))
            umask = os.umask(0o022)
            os.umask(umask)
            os.chmod(self.tmp, 0o777 & ~umask)  # mkdtemp makes it private; the report is an ordinary folder
        except OSError as err:
            self._remove_made()
            raise UserError(f"cannot write the report to {self.out}: {err.strerror or err}") from None

    def _remove_made(self) -> None:
        for p in reversed(self.made):  # innermost first
            try:
                p.rmdir()
            except OSError:
                break

    def write(self, doc: Document) -> Written:
        try:
            for fig in doc.figures():
                path = self.tmp / fig.relpath
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(fig.png)
            (self.tmp / MD_NAME).write_text(render_markdown(doc), encoding="utf-8")
            page = render_html(doc).encode("utf-8")
            (self.tmp / HTML_NAME).write_bytes(page)  # last: a folder without it is not a report
        except OSError as err:
            raise UserError(f"cannot write the report to {self.out}: {err.strerror or err}") from None
        return Written(self.out, self.out / HTML_NAME, self.out / MD_NAME, len(page), len(doc.figures()))

    def commit(self) -> None:
        """Move the finished report to ``out`` (replacing a previous report there)."""
        check_out(self.out)  # nothing foreign appeared meanwhile
        old = None
        try:
            if self.out.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", suffix=".old", dir=self.out.parent))
                os.replace(self.out, old / "report")
            os.replace(self.tmp, self.out)
        except OSError as err:
            if old is not None and (old / "report").exists() and not self.out.exists():
                os.replace(old / "report", self.out)
            raise UserError(f"cannot move the report into {self.out}: {err.strerror or err}") from None
        finally:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
        self._remove_made()


def write_staged(out: str | Path, make: Callable[[], Document]) -> Written:
    """``make()``'s document rendered into a staging folder that becomes ``out`` only once all of it is written
    (a bad ``out`` fails before ``make`` runs; any error, or an interrupt, leaves nothing at ``out``)."""
    stage = Staging(out)
    try:
        written = stage.write(make())
        stage.commit()
    except BaseException:
        stage.abort()
        raise
    return written


def write_report(doc: Document, out: str | Path) -> Written:
    """Render ``doc`` to ``out/report.html`` (self-contained), ``out/report.md`` and its PNGs."""
    return write_staged(out, lambda: doc)
