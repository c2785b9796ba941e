"""Confidence intervals shared by every metric that reports one."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    n: int
    level: float = 0.95

    def as_dict(self) -> dict[str, float | int]:
        return {"mean": self.mean, "ci_low": self.low, "ci_high": self.high, "n": self.n, "level": self.level}


def mean_ci(values: Sequence[float] | np.ndarray, level: float = 0.95) -> Interval:
    """Mean with a Student-t confidence interval (the per-image scores are i.i.d. given the prompts).

    One value gives a degenerate interval (low = high = mean) rather than a NaN.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("cannot compute a mean of no values")
    m = float(x.mean())
    if x.size == 1:
        return Interval(m, m, m, 1, level)
    half = float(stats.t.ppf(0.5 + level / 2, df=x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return Interval(m, m - half, m + half, int(x.size), level)
