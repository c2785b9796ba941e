"""User-facing errors: one clear line and a non-zero exit, never a traceback.

The classes are the model layer's own (``imagen.errors``), so an error raised deep in the cascade
and one raised by a command are the same type; every part above the model imports them from here.
"""

from __future__ import annotations

from imagen.errors import MissingWeightsError, UserError

__all__ = ["MissingWeightsError", "UserError"]
