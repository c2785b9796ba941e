"""User-facing errors: one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or a missing resource that the user can fix (printed as one line, exit code 2)."""

    exit_code = 2


class MissingWeightsError(UserError):
    """Pretrained weights that are not on this machine; the message names what to fetch and where."""
