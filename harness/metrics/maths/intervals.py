"""Confidence intervals that respect what a number is.

Every headline number carries an interval chosen by the kind of its values (``Output.kind``):

* ``binary`` (exact match, parser correct, win/loss): the Wilson score interval for a proportion
  (Wilson 1927). It stays inside [0, 1] and is sensible at 0/n and n/n, where a Student-t interval
  would collapse to a point or leave the range.
* ``bounded`` (a score in a fixed range, e.g. OCR character similarity in [0, 1]): a percentile
  bootstrap of the mean, which cannot leave the range.
* ``continuous`` (CLIP score and other unbounded-in-practice means): Student-t.

With ``clusters`` (e.g. the prompt of each image: the 8 seeds of a prompt are not independent) the
observations are the cluster means and the bootstrap resamples clusters; a binary value then becomes
a per-prompt rate, so it goes through the cluster bootstrap too.

An interval that cannot be estimated — one observation, or no spread at all for a mean (t or
bootstrap) — is reported as undefined (``ci_low = ci_high = None`` with the reason), never as
``[x, x]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

Kind = Literal["binary", "bounded", "continuous"]
KINDS: tuple[str, ...] = ("binary", "bounded", "continuous")
DEFAULT_BOOT = 2000


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float | None
    high: float | None
    n: int
    level: float = 0.95
    method: str = "t"
    note: str | None = None  # why low/high are None

    @property
    def low_high(self) -> tuple[float | None, float | None]:
        return self.low, self.high

    def as_dict(self) -> dict[str, float | int | str | None]:
        out: dict[str, float | int | str | None] = {
            "mean": self.mean,
            "ci_low": self.low,
            "ci_high": self.high,
            "n": self.n,
            "level": self.level,
            "method": self.method,
        }
        if self.note:
            out["note"] = self.note
        return out


def _values(values: Sequence[float] | np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("cannot compute a mean of no values")
    if not np.isfinite(x).all():
        raise ValueError("values contain NaN or infinite entries")
    return x


def _undefined(mean: float, n: int, level: float, method: str) -> Interval | None:
    if n == 1:
        return Interval(mean, None, None, n, level, method, "undefined: one observation")
    return None


def mean_ci(values: Sequence[float] | np.ndarray, level: float = 0.95) -> Interval:
    """Mean with a Student-t interval; undefined for one value or for values without spread."""
    x = _values(values)
    m = float(x.mean())
    if (u := _undefined(m, x.size, level, "t")) is not None:
        return u
    sd = float(x.std(ddof=1))
    if sd == 0.0:
        return Interval(m, None, None, int(x.size), level, "t", "undefined: all values are equal")
    half = float(stats.t.ppf(0.5 + level / 2, df=x.size - 1) * sd / math.sqrt(x.size))
    return Interval(m, m - half, m + half, int(x.size), level, "t")


def wilson(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion k/n (always inside [0, 1])."""
    if n <= 0:
        raise ValueError("a proportion needs n >= 1")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in [0, n], got {successes} of {n}")
    z = float(stats.norm.ppf(0.5 + level / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion_ci(values: Sequence[float] | np.ndarray, level: float = 0.95) -> Interval:
    """Share of ones among 0/1 values, with its Wilson interval."""
    x = _values(values)
    if not np.isin(x, (0.0, 1.0)).all():
        raise ValueError("a proportion needs 0/1 values")
    k, n = int(x.sum()), int(x.size)
    low, high = wilson(k, n, level)
    return Interval(k / n, low, high, n, level, "wilson")


def bootstrap_mean_ci(
    values: Sequence[float] | np.ndarray, level: float = 0.95, n_boot: int = DEFAULT_BOOT, seed: int = 0
) -> Interval:
    """Mean with a percentile-bootstrap interval (seeded, so reproducible); stays inside the data's range."""
    x = _values(values)
    m = float(x.mean())
    if (u := _undefined(m, x.size, level, "bootstrap")) is not None:
        return u
    if float(x.std()) == 0.0:
        return Interval(m, None, None, int(x.size), level, "bootstrap", "undefined: all values are equal")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return Interval(m, float(low), float(high), int(x.size), level, "bootstrap")


def cluster_means(values: Sequence[float], clusters: Sequence[str]) -> np.ndarray:
    """The mean of each cluster's values, in order of first appearance."""
    sums: dict[str, list[float]] = {}
    for v, c in zip(values, clusters, strict=True):
        sums.setdefault(c, []).append(float(v))
    return np.array([sum(v) / len(v) for v in sums.values()])


def interval(
    values: Sequence[float] | np.ndarray,
    kind: Kind,
    level: float = 0.95,
    clusters: Sequence[str] | None = None,
    n_boot: int = DEFAULT_BOOT,
    seed: int = 0,
) -> Interval:
    """The interval of the mean of ``values`` appropriate to ``kind`` (see the module docstring).

    ``clusters`` (one label per value) makes each cluster's mean one observation.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if clusters is not None:
        x = cluster_means(values, clusters)
        if kind == "continuous":
            return mean_ci(x, level)
        return bootstrap_mean_ci(x, level, n_boot, seed)  # per-cluster rates are no longer 0/1
    if kind == "binary":
        return proportion_ci(values, level)
    if kind == "bounded":
        return bootstrap_mean_ci(values, level, n_boot, seed)
    return mean_ci(values, level)


def bootstrap_index_sets(clusters: Sequence[str], n_boot: int, seed: int = 0) -> list[np.ndarray]:
    """Row indices of ``n_boot`` cluster-bootstrap resamples: clusters drawn with replacement, all their rows taken.

    With one row per cluster this is the plain bootstrap. Seeded, so two runs with the same clusters get
    the same resamples (a paired bootstrap when their rows are aligned).
    """
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(clusters):
        groups.setdefault(c, []).append(i)
    members = [np.asarray(v) for v in groups.values()]
    if len(members) < 2:
        raise ValueError("a bootstrap needs at least two clusters")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(members), size=(n_boot, len(members)))
    return [np.concatenate([members[k] for k in row]) for row in draws]


def recentre(replicates: np.ndarray, point: float) -> np.ndarray:
    """Bootstrap replicates of a *set* statistic, shifted so that their median sits on the full-set value.

    A bootstrap resample holds each image 0, 1, 2… times, and set statistics are biased by duplicates
    (FID rises, recall and coverage fall with the ~37% of images a resample leaves out), so a plain
    percentile interval can miss its own estimate (recall 0.76 with [0.48, 0.70]). The replicates give the
    spread and skew of the sampling distribution; the full set its location: the shift is the bootstrap's
    estimate of that bias (median of the replicates − the full-set value) taken out. The point then always
    lies inside the interval. Non-finite replicates are dropped.
    """
    r = np.asarray(replicates, dtype=np.float64)
    r = r[np.isfinite(r)]
    return r + (float(point) - float(np.median(r))) if r.size else r
