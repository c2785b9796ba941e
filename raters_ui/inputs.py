"""Checks of everything a study command is given, done once and before anything is written.

* :func:`check_study_name`: a study name is a name, never a path (it becomes a folder name).
* :func:`as_int`, :func:`as_float`, :func:`as_bool`: typed, range-checked config values, so
  ``raters=abc`` or ``port=70000`` is one line, not a traceback.
* :func:`check_pairs_fit`: every text of a study-pairs file fits the database, checked against
  the column sizes of :mod:`raters_ui.db` and the characters PostgreSQL refuses (NUL) or no UTF-8
  database can store (lone surrogates). SQLite would accept what PostgreSQL refuses, so the
  same check runs for both back-ends and a study file is valid on both or on neither.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any

from harness.errors import UserError
from harness.formats.study_pairs import StudyPairs

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
INT32 = 2**31 - 1  # INTEGER columns on PostgreSQL


def check_study_name(name: Any) -> str:
    """The study name, if it is 1-100 letters, digits, ``.``, ``_`` or ``-`` starting with a
    letter or digit (so never ``..``, a hidden name or a path)."""
    text = "" if name is None else str(name)
    if not NAME_RE.match(text):
        raise UserError(f"a study name is 1-100 letters, digits, '.', '_' or '-' starting with a letter "
                        f"or digit, got {text!r}")
    return text


def _describe(value: Any) -> str:
    return "null" if value is None else repr(value)


def as_int(value: Any, key: str, lo: int | None = None, hi: int | None = None, *,
           nullable: bool = False) -> int | None:
    """``value`` as an int in [lo, hi]; ints only (no bools, no 2.5, strings of digits accepted)."""
    if value is None and nullable:
        return None
    out = None
    if (isinstance(value, int) and not isinstance(value, bool)) or \
            (isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value)) or \
            (isinstance(value, float) and value.is_integer()):
        out = int(value)
    if out is None or (lo is not None and out < lo) or (hi is not None and out > hi):
        span = (f"in [{lo}, {hi}]" if lo is not None and hi is not None
                else f">= {lo}" if lo is not None else f"<= {hi}" if hi is not None else "")
        raise UserError(f"{key} must be an integer {span}{' or null' if nullable else ''}, "
                        f"got {_describe(value)}".replace("  ", " "))
    return out


def as_float(value: Any, key: str, lo: float, hi: float, *, open_lo: bool = False,
             open_hi: bool = False) -> float:
    """``value`` as a finite float in the interval [lo, hi] (ends excluded as asked)."""
    out = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        out = float(value)
    elif isinstance(value, str):
        try:
            out = float(value)
        except ValueError:
            out = None
    ok = out is not None and math.isfinite(out) and (out > lo if open_lo else out >= lo) \
        and (out < hi if open_hi else out <= hi)
    if not ok:
        span = f"{'(' if open_lo else '['}{lo:g}, {hi:g}{')' if open_hi else ']'}"
        raise UserError(f"{key} must be a number in {span}, got {_describe(value)}")
    return out  # type: ignore[return-value]


def as_bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
        return value.lower() in ("true", "yes", "1")
    raise UserError(f"{key} must be true or false, got {_describe(value)}")


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


def _check_text(value: str | None, what: str, limit: int | None, *, allow_controls: bool = False,
                empty: bool = False) -> None:
    if value is None:
        return
    if not empty and not value.strip():
        raise UserError(f"{what} is empty")
    why = _bad_text(value, allow_controls=allow_controls)
    if why:
        raise UserError(f"{what} {_clip(value)} {why}")
    if limit is not None and len(value) > limit:
        raise UserError(f"{what} {_clip(value)} is {len(value)} characters long; the study database "
                        f"stores at most {limit}")


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
