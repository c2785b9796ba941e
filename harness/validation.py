"""The one validation module (defined in ``imagen.validation``, as the errors and the registry are, so the
model's settings and every command above it check values the same way and say so in the same words)."""

from __future__ import annotations

from imagen.validation import (
    INT32,
    SEED_LIMIT,
    as_bool,
    as_float,
    as_int,
    finite_number,
    known_keys,
    non_negative_int,
    positive_int,
    seed_list,
)

__all__ = [
    "INT32",
    "SEED_LIMIT",
    "as_bool",
    "as_float",
    "as_int",
    "finite_number",
    "known_keys",
    "non_negative_int",
    "positive_int",
    "seed_list",
]
