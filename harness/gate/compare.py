"""Paired comparison of two runs on the same prompts and seeds: the statistics of the regression gate.

Both runs must have scored the same prompts with the same seeds (common random numbers), so every
image of the candidate has a twin in the baseline made from the same prompt and the same noise; the
difference between them is mostly the checkpoint's, not the sampling noise's. The uncertainty of a
difference comes from a *paired* bootstrap over prompts: each replicate draws prompts with replacement
and applies the same draw to both runs (all seeds of a drawn prompt come along).

* per-image outputs (CLIP score, accuracy, OCR): the mean over prompts of the per-prompt difference of
  means (equal to the difference of the two means);
* set outputs (FID, KID, CMMD, recall, coverage, ...): the metric's own statistic recomputed on each
  replicate's images for both runs against the fixed reference, from the features each run keeps, the
  interval centred on the full-set difference (:func:`paired_set_difference`).

Everything is signed as an *improvement* (positive = the candidate is better, in the metric's direction),
and a row's verdict against the tolerated regression ``m`` (``max_worse``) is: **pass** if the interval
excludes a regression larger than m (low > -m), **fail** if it lies wholly beyond it (high < -m),
**inconclusive** otherwise. For an inconclusive row, a normal approximation (the interval's half-width
shrinks as 1/√n) gives the number of extra prompts after which the interval would clear -m if the point
estimate stayed where it is.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from harness.metrics.base import SetStatistic
from harness.metrics.maths.intervals import recentre

PromptIds = list[str]


@dataclass(frozen=True)
class Difference:
    improvement: float  # candidate − baseline, signed so that positive is better
    ci_low: float | None
    ci_high: float | None
    n_prompts: int
    note: str | None = None


def group_seed(seed: int, group: str) -> int:
    """One stream of bootstrap draws per group: every metric of a group sees the same resampled prompts."""
    return int.from_bytes(hashlib.sha256(f"{seed}|{group}".encode()).digest()[:8], "little")


def prompt_draws(n_prompts: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n_prompts) indices of prompts drawn with replacement."""
    return np.random.default_rng(seed).integers(0, n_prompts, size=(n_boot, n_prompts))


def _interval(point: float, replicates: np.ndarray, level: float, n: int) -> Difference:
    if n < 2:
        return Difference(point, None, None, n, "undefined: fewer than two prompts")
    if replicates.size < 2:
        return Difference(point, None, None, n, "undefined: fewer than two finite bootstrap replicates")
    if np.ptp(replicates) == 0.0:
        note = "the two runs give identical values on every prompt" if point == 0.0 else "no spread across prompts"
        return Difference(point, point, point, n, note)
    a = (1 - level) / 2
    low, high = np.quantile(replicates, [a, 1 - a])
    return Difference(point, float(low), float(high), n)


def paired_mean_difference(
    baseline: np.ndarray,
    candidate: np.ndarray,
    higher_is_better: bool,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> Difference:
    """Improvement of the mean of per-prompt values (arrays aligned by prompt), paired bootstrap interval."""
    b, c = np.asarray(baseline, float), np.asarray(candidate, float)
    if b.shape != c.shape or b.ndim != 1:
        raise ValueError(f"paired values must be aligned 1-D arrays, got {b.shape} and {c.shape}")
    sign = 1.0 if higher_is_better else -1.0
    diff = sign * (c - b)
    draws = prompt_draws(len(diff), n_boot, seed)
    return _interval(float(diff.mean()), diff[draws].mean(axis=1), level, len(diff))


def paired_set_difference(
    baseline: SetStatistic,
    candidate: SetStatistic,
    rows_of_prompt: list[np.ndarray],
    higher_is_better: bool,
    *,
    full: tuple[float, float] | None = None,
    n_boot: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> Difference:
    """Improvement of a set statistic (FID, KID, CMMD, recall, ...) with the same resampled prompts on both sides.

    ``baseline``/``candidate`` are the two runs' statistics over aligned feature rows; ``rows_of_prompt[p]``
    are prompt p's rows (all its seeds), the same rows on both sides. ``full`` is the (baseline, candidate)
    value on every row when already known (the runs' reported numbers), else their ``value()``.

    A replicate holds duplicated images, and set statistics are biased by duplicates (FID rises with
    them), so the replicates' differences are centred off the full-set difference. The interval is their
    percentile interval re-centred on the full-set difference (:func:`~harness.metrics.maths.intervals.recentre`):
    the bootstrap gives the spread and skew, the full sets the location — the point always lies inside.
    """
    sign = 1.0 if higher_is_better else -1.0
    b_full, c_full = full if full is not None else (baseline.value(), candidate.value())
    point = float(sign * (c_full - b_full))
    draws = prompt_draws(len(rows_of_prompt), n_boot, seed)
    sets = [np.concatenate([rows_of_prompt[p] for p in row]) for row in draws]
    replicates = recentre(sign * (candidate.resampled(sets) - baseline.resampled(sets)), point)
    return _interval(point, replicates, level, len(rows_of_prompt))


def decide(diff: Difference, max_worse: float) -> str:
    """pass | fail | inconclusive for an improvement interval against the tolerated regression."""
    if diff.ci_low is None or diff.ci_high is None:
        return "inconclusive"
    if diff.ci_low > -max_worse:
        return "pass"
    if diff.ci_high < -max_worse:
        return "fail"
    return "inconclusive"


def prompts_to_decide(diff: Difference, max_worse: float) -> int | None:
    """Extra prompts after which the interval would clear -max_worse, if the estimate stayed put (None if never)."""
    if diff.ci_low is None or diff.ci_high is None or diff.n_prompts < 2:
        return None
    half = (diff.ci_high - diff.ci_low) / 2
    margin = abs(diff.improvement + max_worse)  # distance of the estimate from the decision boundary
    if half == 0.0 or margin <= 1e-9 * half:  # the estimate sits on the boundary: no sample size decides it
        return None
    needed = math.ceil(diff.n_prompts * (half / margin) ** 2)
    return max(0, needed - diff.n_prompts)
