"""Do automatic metrics agree with the raters? Pure functions over pandas frames.

For two systems A and B rated on the same prompts, an item (one prompt of the A-vs-B comparison)
has a **human preference** — the majority of its raters' answers, ``"A"``, ``"B"`` or ``"tie"``
(as many A as B answers, or only "indifferent") — and, for each automatic metric, a **score
difference**: the metric's mean over the prompt's seeds for A minus that for B, signed so that a
positive difference means the metric prefers A (negated for lower-is-better metrics such as FID).

The metric *agrees* on an item when both are decided and point at the same system. The agreement
rate is ``agree / decided`` over the items where both are decided, with its Wilson interval and n;
items are never silently dropped, they are counted in one of four disjoint columns::

    items = decided + human_ties + metric_ties + no_score

``human_ties`` are items whose raters were split or indifferent (whatever the metric says),
``metric_ties`` items the raters decided but the metric scores equal (``|diff| <= tolerance``, e.g.
a CLIP score clamped at 0 for both), ``no_score`` items for which one of the two runs has no value.
A rate of 0.5 is what a metric unrelated to the raters' judgement gets on average.

Used by ``imagen-bench report`` (and meant for ``study analyze``): :func:`item_preferences` turns
ratings into per-item preferences, :func:`prompt_score_differences` turns two runs' per-image
scores (``samples.jsonl`` rows) into per-prompt differences, :func:`metric_agreement` compares them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from raters_ui.stats import wilson_interval

PREFERENCES = ("A", "B", "tie")
OVERALL = "overall"
NO_CATEGORY = "(none)"
AGREEMENT_COLUMNS = (
    "metric",
    "category",
    "items",
    "decided",
    "agree",
    "rate",
    "ci_low",
    "ci_high",
    "human_ties",
    "metric_ties",
    "no_score",
    "level",
)


def item_preferences(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Per item, the raters' majority preference.

    ``outcomes`` has one row per rating with ``prompt_id``, ``outcome`` in {"A", "B", "tie"} and
    optionally ``category`` (the frame of :func:`raters_ui.analysis.pair_outcomes`). Returns one row
    per prompt: ``prompt_id``, ``category``, ``votes_A``, ``votes_B``, ``votes_tie``, ``ratings`` and
    ``preference`` ("A" when more raters preferred A than B, "B" for the reverse, else "tie").
    """
    bad = set(outcomes["outcome"].unique()) - set(PREFERENCES)
    if bad:
        raise ValueError(f"outcomes must be in {PREFERENCES}, got {sorted(map(str, bad))}")
    frame = outcomes.assign(prompt_id=outcomes["prompt_id"].astype(str), category=_categories(outcomes))
    counts = pd.crosstab([frame["prompt_id"], frame["category"]], frame["outcome"])
    counts = counts.reindex(columns=list(PREFERENCES), fill_value=0)
    out = counts.rename(columns={p: f"votes_{p}" for p in PREFERENCES}).reset_index()
    out["ratings"] = out[[f"votes_{p}" for p in PREFERENCES]].sum(axis=1)
    a, b = out["votes_A"].to_numpy(), out["votes_B"].to_numpy()
    out["preference"] = np.where(a > b, "A", np.where(b > a, "B", "tie"))
    return out[["prompt_id", "category", "votes_A", "votes_B", "votes_tie", "ratings", "preference"]]


def _categories(frame: pd.DataFrame) -> pd.Series:
    if "category" not in frame.columns:
        return pd.Series(NO_CATEGORY, index=frame.index)
    return frame["category"].astype(object).where(frame["category"].notna(), NO_CATEGORY).astype(str)


def prompt_score_differences(
    samples_a: pd.DataFrame, samples_b: pd.DataFrame, higher_is_better: Mapping[str, bool]
) -> pd.DataFrame:
    """Per prompt and metric, how much the metric prefers A over B.

    ``samples_a``/``samples_b`` hold one row per image of each run (``samples.jsonl`` rows at the
    compared stage) with ``prompt_id`` and a column per metric in ``higher_is_better`` (metric ->
    its direction). Each run's values are averaged over the prompt's seeds first (the seeds of a
    prompt are not independent ratings targets: raters saw them as one set). Returns long rows
    ``prompt_id``, ``metric``, ``diff`` (positive: the metric prefers A), ``mean_a``, ``mean_b``,
    ``n_a``, ``n_b``; a prompt missing a value in either run is left out (it counts as ``no_score``).
    """
    rows = []
    for metric, higher in higher_is_better.items():
        if metric not in samples_a.columns or metric not in samples_b.columns:
            continue
        ma, mb = _prompt_means(samples_a, metric), _prompt_means(samples_b, metric)
        both = ma.merge(mb, left_index=True, right_index=True, how="inner", suffixes=("_a", "_b"))
        sign = 1.0 if higher else -1.0
        rows.append(
            pd.DataFrame(
                {
                    "prompt_id": both.index.astype(str),
                    "metric": metric,
                    "diff": sign * (both["mean_a"] - both["mean_b"]).to_numpy(),
                    "mean_a": both["mean_a"].to_numpy(),
                    "mean_b": both["mean_b"].to_numpy(),
                    "n_a": both["n_a"].to_numpy(),
                    "n_b": both["n_b"].to_numpy(),
                }
            )
        )
    if not rows:
        return pd.DataFrame(columns=["prompt_id", "metric", "diff", "mean_a", "mean_b", "n_a", "n_b"])
    return pd.concat(rows, ignore_index=True)


def _prompt_means(samples: pd.DataFrame, metric: str) -> pd.DataFrame:
    values = pd.to_numeric(samples[metric], errors="coerce")
    part = pd.DataFrame({"prompt_id": samples["prompt_id"].astype(str), "v": values}).dropna()
    grouped = part.groupby("prompt_id")["v"]
    return pd.DataFrame({"mean": grouped.mean(), "n": grouped.size()})


def metric_agreement(
    preferences: pd.DataFrame,
    differences: pd.DataFrame,
    *,
    level: float = 0.95,
    tolerance: float = 0.0,
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """How often each metric's preferred system is the raters' preferred system, per category and overall.

    ``preferences`` is :func:`item_preferences` output (``prompt_id``, ``category``, ``preference``);
    ``differences`` is :func:`prompt_score_differences` output. ``tolerance``: a difference with
    ``|diff| <= tolerance`` is a metric tie. ``metrics`` fixes the metrics (and their order) to
    report; by default those in ``differences``. Returns one row per metric and category (sorted,
    then "overall") with the columns :data:`AGREEMENT_COLUMNS` (see the module doc); ``rate`` and its
    Wilson interval are NaN when no item is decided.
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    prefs = preferences.assign(prompt_id=preferences["prompt_id"].astype(str), category=_categories(preferences))
    wanted = list(metrics) if metrics is not None else list(dict.fromkeys(differences["metric"]))
    rows = []
    for metric in wanted:
        part = differences[differences["metric"] == metric]
        diff = pd.Series(part["diff"].to_numpy(dtype=float), index=part["prompt_id"].astype(str))
        if diff.index.has_duplicates:
            raise ValueError(f"differences hold more than one row per prompt for {metric!r}")
        merged = prefs.assign(diff=prefs["prompt_id"].map(diff))
        for category, part in _by_category(merged):
            rows.append({"metric": metric, "category": category, **_count(part, tolerance, level)})
    return pd.DataFrame(rows, columns=list(AGREEMENT_COLUMNS))


def _by_category(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    parts = [(str(c), p) for c, p in frame.groupby("category", sort=True)]
    return parts + [(OVERALL, frame)]


def _count(part: pd.DataFrame, tolerance: float, level: float) -> dict:
    human = part["preference"].to_numpy()
    diff = part["diff"].to_numpy(dtype=float)
    scored = np.isfinite(diff)
    human_tie = scored & (human == "tie")
    metric_tie = scored & ~human_tie & (np.abs(np.where(scored, diff, 0.0)) <= tolerance)
    decided = scored & ~human_tie & ~metric_tie
    metric_says = np.where(diff > 0, "A", "B")
    agree = int((decided & (metric_says == human)).sum())
    n = int(decided.sum())
    low, high = wilson_interval(agree, n, level)
    return {
        "items": len(part),
        "decided": n,
        "agree": agree,
        "rate": agree / n if n else np.nan,
        "ci_low": low,
        "ci_high": high,
        "human_ties": int(human_tie.sum()),
        "metric_ties": int(metric_tie.sum()),
        "no_score": int((~scored).sum()),
        "level": level,
    }
