"""How well a metric agrees with people: rank correlations with Likert ratings, accuracy on pairwise votes, and
the inter-rater ceiling a metric cannot be expected to beat. Pure functions over arrays.

* :func:`rank_correlation`: Spearman's ρ or Kendall's τ-b (scipy) between a metric's per-image scores and the
  mean human rating of each image, with a percentile bootstrap interval over images (ρ and τ live in
  [-1, 1], and so do the bootstrap replicates: the interval respects the range).
* :func:`pairwise_accuracy`: the share of decided votes (not "tie") where the metric scores the voted image
  higher, Wilson interval; pairs the metric scores equal are counted apart (``metric_ties``), never as right.
* :func:`rating_ceiling` / :func:`vote_ceiling`: one rater against the rest (each rating against the mean of
  the image's other ratings; each vote against the majority of the pair's other votes), the agreement a single
  human reaches: a metric near it agrees with people as well as another person does.
* :func:`majority_votes`: one human preference per pair from several raters' votes (the unit of
  :func:`pairwise_accuracy` when pairs repeat, so its interval does not count correlated votes as independent).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.metrics.maths.intervals import wilson

CORRELATIONS = ("spearman", "kendall")


@dataclass(frozen=True)
class Agreement:
    value: float  # NaN when undefined (fewer than 3 items, or a constant side)
    ci_low: float
    ci_high: float
    n: int
    method: str


def _corr(x: np.ndarray, y: np.ndarray, kind: str) -> float:
    from scipy import stats

    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    if kind == "spearman":
        return float(stats.spearmanr(x, y).statistic)
    return float(stats.kendalltau(x, y).statistic)  # τ-b: ties on either side handled


def rank_correlation(
    scores: Sequence[float],
    ratings: Sequence[float],
    kind: str = "spearman",
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Agreement:
    """ρ or τ between ``scores`` and ``ratings`` (one value each per image) with a bootstrap interval."""
    if kind not in CORRELATIONS:
        raise ValueError(f"kind must be one of {CORRELATIONS}, got {kind!r}")
    x, y = np.asarray(scores, dtype=float), np.asarray(ratings, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"{len(x)} scores for {len(y)} ratings")
    value = _corr(x, y, kind)
    if not np.isfinite(value) or n_boot <= 0:
        return Agreement(value, float("nan"), float("nan"), len(x), kind)
    rng = np.random.default_rng(seed)
    reps = np.array([_corr(x[i], y[i], kind) for i in rng.integers(0, len(x), size=(n_boot, len(x)))])
    reps = reps[np.isfinite(reps)]
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(reps, [tail, 100 - tail]) if len(reps) else (float("nan"), float("nan"))
    return Agreement(value, float(low), float(high), len(x), f"{kind}, percentile bootstrap over images ({n_boot})")


@dataclass(frozen=True)
class PairCounts:
    agree: int
    decided: int
    metric_ties: int
    human_ties: int
    rate: float
    ci_low: float
    ci_high: float


def pairwise_accuracy(
    diff: Sequence[float], votes: Sequence[str], *, tolerance: float = 0.0, level: float = 0.95
) -> PairCounts:
    """``diff``: the metric's preference for image a over b per vote (a's score minus b's, signed so that
    positive means the metric prefers a); ``votes``: "a", "b" or "tie"."""
    d = np.asarray(diff, dtype=float)
    v = np.asarray(votes)
    if d.shape != v.shape:
        raise ValueError(f"{len(d)} differences for {len(v)} votes")
    human_tie = v == "tie"
    metric_tie = ~human_tie & (np.abs(d) <= tolerance)
    decided = ~human_tie & ~metric_tie
    agree = int((decided & (np.where(d > 0, "a", "b") == v)).sum())
    n = int(decided.sum())
    low, high = wilson(agree, n, level) if n else (float("nan"), float("nan"))
    return PairCounts(
        agree, n, int(metric_tie.sum()), int(human_tie.sum()), agree / n if n else float("nan"), low, high
    )


def rating_ceiling(
    ratings: Sequence[tuple[str, float]],
    kind: str = "spearman",
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Agreement:
    """One rater against the rest: every rating of an image with two or more ratings, against the mean of
    that image's other ratings. ``ratings``: (image, value) pairs."""
    by_image: dict[str, list[float]] = defaultdict(list)
    for image, value in ratings:
        by_image[image].append(float(value))
    own, rest = [], []
    for values in by_image.values():
        if len(values) < 2:
            continue
        total = sum(values)
        for v in values:
            own.append(v)
            rest.append((total - v) / (len(values) - 1))
    out = rank_correlation(own, rest, kind, n_boot=n_boot, seed=seed, level=level)
    return Agreement(out.value, out.ci_low, out.ci_high, out.n, f"one rating vs the mean of the others ({kind})")


def _canonical(a: Any, b: Any, vote: str) -> tuple[tuple[Any, Any], str]:
    """The pair in a fixed order, the vote flipped with it (a pair and its reverse are one pair)."""
    return ((a, b), vote) if a <= b else ((b, a), {"a": "b", "b": "a"}.get(vote, vote))


def majority_votes(votes: Sequence[tuple[tuple[Any, Any], str]]) -> list[tuple[tuple[Any, Any], str]]:
    """One row per distinct pair: the majority of its decided votes ("a" or "b"), "tie" when they split
    evenly or are all ties. Pairs come in canonical order (a <= b), in first-seen order."""
    by_pair: dict[tuple[Any, Any], Counter] = {}
    for (a, b), vote in votes:
        key, v = _canonical(a, b, vote)
        by_pair.setdefault(key, Counter())[v] += 1
    out = []
    for key, counts in by_pair.items():
        out.append((key, "a" if counts["a"] > counts["b"] else "b" if counts["b"] > counts["a"] else "tie"))
    return out


def vote_ceiling(votes: Sequence[tuple[tuple[Any, Any], str]], level: float = 0.95) -> PairCounts:
    """One voter against the rest: each decided vote on a pair with other decided votes, against their
    majority (pairs whose other votes split evenly are skipped). ``votes``: ((image_a, image_b), vote)."""
    by_pair: dict[tuple[Any, Any], list[str]] = defaultdict(list)
    for (a, b), vote in votes:
        key, flipped = _canonical(a, b, vote)
        by_pair[key].append(flipped)
    agree = n = 0
    for pair_votes in by_pair.values():
        counts = Counter(x for x in pair_votes if x != "tie")
        for x in pair_votes:
            if x == "tie":
                continue
            others = counts.copy()
            others[x] -= 1
            if others["a"] == others["b"]:
                continue
            n += 1
            agree += x == ("a" if others["a"] > others["b"] else "b")
    low, high = wilson(agree, n, level) if n else (float("nan"), float("nan"))
    return PairCounts(agree, n, 0, 0, agree / n if n else float("nan"), low, high)
