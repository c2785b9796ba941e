"""Moved to :mod:`harness.evaluation.evaluate` (issue 23's layout). This alias keeps
``harness.evaluate.run_benchmark`` and ``harness.evaluate.Benchmark`` importable for one release; it goes in
the next (README, "Moved modules")."""

import warnings

from harness.evaluation.evaluate import *
from harness.evaluation.evaluate import Benchmark, run_benchmark  # noqa: F401

warnings.warn(
    "harness.evaluate moved to harness.evaluation.evaluate; the alias goes in the next release",
    DeprecationWarning,
    stacklevel=2,
)
