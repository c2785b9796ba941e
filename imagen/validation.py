"""Checks of configuration values: the one validation module of the project.

The model's stage, sampler and training settings, the harness's commands, the study commands and the report
use these (above the model as :mod:`harness.validation`, as the errors and the registry are). Two families:
the strict ones (:func:`positive_int`, :func:`finite_number`, :func:`seed_list`, ...) take values already
typed by Hydra; :func:`as_int`, :func:`as_float` and :func:`as_bool` also accept the string a user typed
(``raters=12``), for options that may come quoted. Each helper raises a :class:`UserError` naming the key
(``where``) and the value, so a bad value is one line before any work starts rather than a NaN image or a traceback much later. Booleans are refused
where numbers are wanted (``True`` is an ``int`` to Python, never to a user).
"""

from __future__ import annotations

import math
import re
from typing import Any

from imagen.errors import UserError

SEED_LIMIT = 2**63  # seeds feed 64-bit generators; derive_seed hashes them to 63 bits
INT32 = 2**31 - 1  # INTEGER columns on PostgreSQL


def positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{where} must be a positive integer, got {value!r}")
    return value


def non_negative_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UserError(f"{where} must be an integer >= 0, got {value!r}")
    return value


def finite_number(
    value: Any, where: str, *, minimum: float | None = None, strict: bool = False, maximum: float | None = None
) -> float:
    """A finite real number, optionally bounded (``strict``: the minimum itself is refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{where} must be a finite number, got {value!r}")
    if minimum is not None and (value < minimum or (strict and value == minimum)):
        raise UserError(f"{where} must be {'>' if strict else '>='} {minimum:g}, got {value!r}")
    if maximum is not None and value > maximum:
        raise UserError(f"{where} must be <= {maximum:g}, got {value!r}")
    return float(value)


def seed_list(value: Any, where: str) -> list[int]:
    """A non-empty list of distinct integer seeds in [0, 2⁶³) (never a bare number or string)."""
    if isinstance(value, (str, bytes, int, float)) or not hasattr(value, "__iter__"):
        raise UserError(f"{where} must be a list of integers, e.g. {where}=[0,1,2], got {value!r}")
    seeds = list(value)
    if not seeds:
        raise UserError(f"{where} is empty: give at least one seed")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int):
            raise UserError(f"{where} must hold integers only, got {s!r}")
        if not 0 <= s < SEED_LIMIT:
            raise UserError(f"{where}: seed {s} is outside [0, 2^63)")
    dupes = sorted({s for s in seeds if seeds.count(s) > 1})
    if dupes:
        raise UserError(f"{where} lists seed(s) {dupes} more than once; each seed gives one image")
    return seeds


def known_keys(given: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(given) - known)
    if unknown:
        raise UserError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")


def _describe(value: Any) -> str:
    return "null" if value is None else repr(value)


def as_int(value: Any, key: str, lo: int | None = None, hi: int | None = None, *, nullable: bool = False) -> int | None:
    """``value`` as an int in [lo, hi]; ints only (no bools, no 2.5, strings of digits accepted)."""
    if value is None and nullable:
        return None
    out = None
    if (
        (isinstance(value, int) and not isinstance(value, bool))
        or (isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value))
        or (isinstance(value, float) and value.is_integer())
    ):
        out = int(value)
    if out is None or (lo is not None and out < lo) or (hi is not None and out > hi):
        span = (
            f"in [{lo}, {hi}]"
            if lo is not None and hi is not None
            else f">= {lo}"
            if lo is not None
            else f"<= {hi}"
            if hi is not None
            else ""
        )
        raise UserError(
            f"{key} must be an integer {span}{' or null' if nullable else ''}, got {_describe(value)}".replace(
                "  ", " "
            )
        )
    return out


def as_float(value: Any, key: str, lo: float, hi: float, *, open_lo: bool = False, open_hi: bool = False) -> float:
    """``value`` as a finite float in the interval [lo, hi] (ends excluded as asked)."""
    out = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        out = float(value)
    elif isinstance(value, str):
        try:
            out = float(value)
        except ValueError:
            out = None
    ok = (
        out is not None
        and math.isfinite(out)
        and (out > lo if open_lo else out >= lo)
        and (out < hi if open_hi else out <= hi)
    )
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
