"""Errors the model layer raises for input a user can fix.

The model layer imports nothing of ours, so its errors are defined here; ``harness.errors``
re-exports them for every part above, and the command wrapper turns them into one line on
stderr and exit code 2.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input or a missing resource that the user can fix (printed as one line, exit code 2)."""

    exit_code = 2


class MissingWeightsError(UserError):
    """Pretrained weights that are not on this machine; the message names what to fetch and where."""
