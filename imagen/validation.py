"""Checks of configuration values, shared by the stage, sampler and training settings.

Each helper raises a :class:`UserError` naming the key (``where``) and the value, so a bad value is one
line before any work starts rather than a NaN image or a traceback much later. Booleans are refused
where numbers are wanted (``True`` is an ``int`` to Python, never to a user).
"""

from __future__ import annotations

import math
from typing import Any

from imagen.errors import UserError

SEED_LIMIT = 2**63  # seeds feed 64-bit generators; derive_seed hashes them to 63 bits


def positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{where} must be a positive integer, got {value!r}")
    return value


def non_negative_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UserError(f"{where} must be an integer >= 0, got {value!r}")
    return value


def finite_number(value: Any, where: str, *, minimum: float | None = None, strict: bool = False,
                  maximum: float | None = None) -> float:
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
