"""Checks of everything a study command is given, done once and before anything is written.

* :func:`check_study_name`: a study name is a name, never a path (it becomes a folder name).
* typed, range-checked config values (``raters=abc`` or ``port=70000`` is one line, not a traceback) come
  from the one validation module, :mod:`harness.validation` (``as_int``, ``as_float``, ``as_bool``).
* :func:`check_pairs_fit`: every text of a study-pairs file fits the database, checked against
  the column sizes of :mod:`raters_ui.db` and the characters PostgreSQL refuses (NUL) or no UTF-8
  database can store (lone surrogates). SQLite would accept what PostgreSQL refuses, so the
  same check runs for both back-ends and a study file is valid on both or on neither.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from harness.errors import UserError
from harness.formats.study_pairs import StudyPairs

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_study_name(name: Any) -> str:
    """The study name, if it is 1-100 letters, digits, ``.``, ``_`` or ``-`` starting with a
    letter or digit (so never ``..``, a hidden name or a path)."""
    text = "" if name is None else str(name)
    if not NAME_RE.match(text):
        raise UserError(
            f"a study name is 1-100 letters, digits, '.', '_' or '-' starting with a letter or digit, got {text!r}"
        )
    return text


def _bad_text(value: str, *, allow_controls: bool) -> str | None:
    """Why ``value`` cannot be stored (or shown on a line), or None."""
    if "\x00" in value:
        return "contains a NUL character (PostgreSQL cannot store it)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid Unicode text)"
    if not allow_controls and any(unicodedata.category(c) == "Cc" for c in value):
        return "contains a control character (tab, newline, ...)"
    return None


def _check_text(
    value: str | None, what: str, limit: int | None, *, allow_controls: bool = False, empty: bool = False
) -> None:
    if value is None:
        return
    if not empty and not value.strip():
        raise UserError(f"{what} is empty")
    why = _bad_text(value, allow_controls=allow_controls)
    if why:
        raise UserError(f"{what} {_clip(value)} {why}")
    if limit is not None and len(value) > limit:
        raise UserError(
            f"{what} {_clip(value)} is {len(value)} characters long; the study database stores at most {limit}"
        )


def _clip(value: str, n: int = 40) -> str:
    shown = value if len(value) <= n else value[:n] + "..."
    return repr(shown.encode("unicode_escape", "backslashreplace").decode("ascii"))


def _limit(column: Any) -> int | None:
    return getattr(column.type, "length", None)


def check_pairs_fit(pairs: StudyPairs) -> None:
    """Every id and text of ``pairs`` fits the study database (see module doc); else UserError."""
    from raters_ui.db import Item, Study, System

    _check_text(pairs.suite, "the suite name", _limit(Study.__table__.c.suite), empty=True)
    for s in pairs.systems:
        _check_text(s.id, "system id", _limit(System.__table__.c.label))
        _check_text(s.run_id, f"run id of system {s.id!r}", _limit(System.__table__.c.run_id), empty=True)
        _check_text(s.source, f"source of system {s.id!r}", None, empty=True)
    cols = Item.__table__.c
    for item in pairs.items:
        _check_text(item.prompt_id, "prompt id", _limit(cols.prompt_id))
        _check_text(item.prompt, f"prompt of {item.prompt_id!r}", None, allow_controls=True)
        _check_text(item.category, f"category of {item.prompt_id!r}", _limit(cols.category))
