"""Moved to :mod:`harness.generation.generate` (issue 23's layout). This alias keeps
``harness.generate.generate`` importable for one release; it goes in the next (README, "Moved modules")."""

import warnings

from harness.generation.generate import *
from harness.generation.generate import generate  # noqa: F401

warnings.warn(
    "harness.generate moved to harness.generation.generate; the alias goes in the next release",
    DeprecationWarning,
    stacklevel=2,
)
