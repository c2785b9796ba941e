"""The private tokens file: the only place a rater's link exists in clear.

The database keeps only SHA-256 hashes of the tokens, so a token that never reached the tokens
file is a link lost for good. Hence the order: :class:`TokenSink` opens (or creates) the file
*before* anything is written, the tokens are appended and fsynced *inside* the database
transaction that makes them valid, and if that transaction fails the file is put back as it was
(truncated to its old length, or removed if it was new). A failed transaction can therefore
leave no token rows behind, and a committed one always has its rows on disk.

The file is append-only and may be shared by several databases or outlive a re-created study,
so readers keep only the rows whose token hash is the current one in *this* database
(:func:`current_links`): rotated, foreign and stale tokens are never printed.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from harness.errors import UserError
from raters_ui.db import Rater, Study, StudyDB, hash_token

HEADER = ["study", "role", "label", "token"]


@dataclass(frozen=True)
class Tokens:
    study: str
    admin: str | None
    raters: dict[str, str]  # label -> token


def _rows(tokens: Tokens) -> list[tuple[str, str, str, str]]:
    rows = [(tokens.study, "admin", "admin", tokens.admin)] if tokens.admin else []
    return rows + [(tokens.study, "rater", label, tok) for label, tok in tokens.raters.items()]


def _topmost_missing(path: Path) -> Path | None:
    """The outermost folder of ``path``'s parents that does not exist yet (None if all exist)."""
    missing = None
    for parent in path.parents:
        if parent.exists():
            break
        missing = parent
    return missing


class TokenSink:
    """The tokens file, opened for appending before a transaction; see the module doc."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._new_dir = _topmost_missing(self.path.absolute())
        self.created = not self.path.exists()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as err:
            self._remove_new_dir()
            raise UserError(
                f"cannot write the tokens file {self.path}: {err.strerror or err}; pass tokens_file=<a writable file>"
            ) from None
        self.start = os.fstat(self._fd).st_size
        self.written = False

    def write(self, tokens: Tokens) -> None:
        """Append the tokens (replacing what an earlier attempt of this sink appended) and fsync."""
        os.ftruncate(self._fd, self.start)
        buf = _csv_text(([HEADER] if self.start == 0 else []) + [list(r) for r in _rows(tokens)])
        os.write(self._fd, buf.encode("utf-8"))
        os.fsync(self._fd)
        os.fchmod(self._fd, 0o600)
        self.written = True

    def undo(self) -> None:
        """Put the file back as it was before this sink: removed if new, else truncated."""
        try:
            os.ftruncate(self._fd, self.start)
        finally:
            self.close()
        if self.created:
            self.path.unlink(missing_ok=True)
            self._remove_new_dir()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None  # type: ignore[assignment]

    def _remove_new_dir(self) -> None:
        if self._new_dir is not None:
            import shutil

            shutil.rmtree(self._new_dir, ignore_errors=True)


def _csv_text(rows: list[list[str]]) -> str:
    import io

    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue()


def write_tokens_file(path: str | Path, tokens: Tokens) -> Path:
    """Append tokens to a CSV (study, role, label, token) readable only by its owner."""
    sink = TokenSink(path)
    try:
        sink.write(tokens)
    except BaseException:
        sink.undo()
        raise
    sink.close()
    return sink.path


def read_tokens_file(path: str | Path, study: str | None = None) -> list[dict[str, str]]:
    """Every token row of a tokens file (of ``study`` only, if given): raters, then admins, each in
    file order. The file
    may hold rotated, re-created or another database's tokens: :func:`current_links` keeps the
    rows that are valid in a database."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [r for r in csv.DictReader(f) if study is None or r.get("study") == study]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise UserError(f"cannot read the tokens file {path}: {err}") from None
    rows = [r for r in rows if r.get("token") and r.get("study")]
    return [r for r in rows if r.get("role") == "rater"] + [r for r in rows if r.get("role") == "admin"]


def current_links(db: StudyDB, rows: list[dict[str, str]], study: str | None = None) -> list[dict[str, str]]:
    """The rows of a tokens file whose token is the current one of that rater (or admin) of that
    study in this database, each once, raters in label order and then the admin."""
    with db.read() as s:
        q = select(Study.name, Study.admin_token_hash)
        if study is not None:
            q = q.where(Study.name == study)
        admins = dict(s.execute(q).all())
        rq = select(Study.name, Rater.label, Rater.token_hash).join(Rater, Rater.study_id == Study.id)
        if study is not None:
            rq = rq.where(Study.name == study)
        raters = {(n, label): h for n, label, h in s.execute(rq).all()}
    keep: dict[tuple, dict[str, str]] = {}
    for r in rows:
        h = hash_token(r.get("token") or "")
        if r["role"] == "admin" and admins.get(r["study"]) == h:
            keep[(r["study"], "admin", "")] = r
        elif r["role"] == "rater" and raters.get((r["study"], r.get("label"))) == h:
            keep[(r["study"], "rater", r["label"])] = r
    order = sorted(keep, key=lambda k: (k[0], k[1] == "admin", k[2]))
    return [keep[k] for k in order]


def missing_links(db: StudyDB, rows: list[dict[str, str]], study: str) -> list[str]:
    """Labels of the study's raters that have no current link among ``rows``."""
    have = {r["label"] for r in current_links(db, rows, study) if r["role"] == "rater"}
    with db.read() as s:
        labels = s.scalars(
            select(Rater.label).join(Study, Study.id == Rater.study_id).where(Study.name == study).order_by(Rater.label)
        ).all()
    return [label for label in labels if label not in have]
