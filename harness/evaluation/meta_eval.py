"""``imagen-bench meta-eval``: which metric agrees with people? Score human-labelled images with registered
per-image metrics and measure each output's agreement with the labels.

Likert labels: Spearman's ρ and Kendall's τ between the output and each image's mean rating (bootstrap
intervals over images). Pairwise votes: the share of decided pairs where the output prefers the voted image (or set
(Wilson interval). Where raters overlap, the same agreement of one rater with the rest is the ceiling row.
Set outputs (FID, KID) have no per-image value and are not meta-evaluated. The maths is
:mod:`harness.metrics.maths.agreement`; the labels are :mod:`harness.formats.labels`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

from harness.errors import UserError
from harness.formats.labels import HumanLabels
from harness.formats.manifest import ImageRecord
from harness.formats.meta_eval import CEILING, AgreementRow
from harness.metrics.base import ImageSet, MetricEnv
from harness.metrics.maths.agreement import (
    CORRELATIONS,
    majority_votes,
    pairwise_accuracy,
    rank_correlation,
    rating_ceiling,
    vote_ceiling,
)


def _image_set(labels: HumanLabels) -> tuple[ImageSet, dict[tuple[str, int], str]]:
    """The labelled images as one image set (seed = the image's index within its prompt), and the map back."""
    per_prompt: dict[str, int] = defaultdict(int)
    records, back = [], {}
    for key, im in labels.images.items():
        seed = per_prompt[im.prompt_id]
        per_prompt[im.prompt_id] += 1
        records.append(ImageRecord(im.prompt_id, im.prompt, seed, "labels", 0, str(im.path), ""))
        back[(im.prompt_id, seed)] = key
    return ImageSet(Path("/"), "labels", records), back


def score_images(labels: HumanLabels, metrics: Sequence[str], env: MetricEnv) -> dict[str, dict[str, float]]:
    """output → {image key → value}, for every per-image output of the listed metrics (signed so that higher
    is better: a lower-is-better output is negated)."""
    from harness.metrics.registry import plan_metrics

    plan = plan_metrics(metrics, env, provides={"images", "prompts"})
    if not plan.active:
        raise UserError(f"meta-eval: no metric to run ({'; '.join(f'{k}: {v}' for k, v in plan.skipped.items())})")
    for metric in plan.active:
        metric.prepare(env)
    images, back = _image_set(labels)
    out: dict[str, dict[str, float]] = {}
    for metric in plan.active:
        sign = {o.name: (1.0 if o.higher_is_better else -1.0) for o in metric.outputs if o.per_image}
        if not sign:
            raise UserError(f"meta-eval: metric {metric.name!r} has no per-image output (set metrics cannot be)")
        scores = metric.compute(images, env)
        for name, values in scores.per_image.items():
            if name in sign:
                out[name] = {back[k]: sign[name] * v for k, v in values.items()}
    return out


def likert_rows(labels: HumanLabels, scores: dict[str, dict[str, float]], n_boot: int, seed: int) -> list[AgreementRow]:
    by_image: dict[str, list[float]] = defaultdict(list)
    for r in labels.ratings:
        by_image[r.image].append(r.value)
    rows = []
    for output, values in scores.items():
        keys = [k for k in by_image if k in values]
        x = [values[k] for k in keys]
        y = [sum(by_image[k]) / len(by_image[k]) for k in keys]
        for kind in CORRELATIONS:
            a = rank_correlation(x, y, kind, n_boot=n_boot, seed=seed)
            rows.append(AgreementRow(output, kind, a.value, a.ci_low, a.ci_high, a.n, a.method))
    if any(len(v) > 1 for v in by_image.values()):
        for kind in CORRELATIONS:
            c = rating_ceiling([(r.image, r.value) for r in labels.ratings], kind, n_boot=n_boot, seed=seed)
            rows.append(AgreementRow(CEILING, kind, c.value, c.ci_low, c.ci_high, c.n, c.method))
    return rows


def _side_score(values: dict[str, float], side: tuple[str, ...]) -> float | None:
    """A side's score: its image's, or the mean over the set's images (None when one is unscored)."""
    got = [values.get(k) for k in side]
    return None if any(v is None for v in got) else sum(got) / len(got)  # type: ignore[arg-type]


def pairwise_rows(labels: HumanLabels, scores: dict[str, dict[str, float]], tolerance: float) -> list[AgreementRow]:
    """Pairwise accuracy per output. Where a pair has several votes (our studies: several raters per item), the
    unit is the pair and its human preference the majority of its votes (a split is a tie), so the Wilson
    interval counts pairs, not correlated votes; with one vote per pair (GenAI-Bench) the two are the same."""
    pairs = majority_votes([((v.image_a, v.image_b), v.vote) for v in labels.votes])
    several = len(pairs) < len(labels.votes)
    unit = f"pairs, majority of {len(labels.votes)} votes" if several else "votes"
    rows = []
    for output, values in scores.items():
        diff, votes = [], []
        for (a, b), vote in pairs:
            sa, sb = _side_score(values, a), _side_score(values, b)
            if sa is not None and sb is not None:
                diff.append(sa - sb)
                votes.append(vote)
        p = pairwise_accuracy(diff, votes, tolerance=tolerance)
        method = f"Wilson over {unit}; {p.human_ties} human ties and {p.metric_ties} metric ties not counted"
        rows.append(AgreementRow(output, "pairwise_accuracy", p.rate, p.ci_low, p.ci_high, p.decided, method))
    c = vote_ceiling([((v.image_a, v.image_b), v.vote) for v in labels.votes])
    if c.decided:
        rows.append(
            AgreementRow(CEILING, "pairwise_accuracy", c.rate, c.ci_low, c.ci_high, c.decided, "Wilson over votes")
        )
    return rows


def run_meta_eval(cfg: DictConfig, labels: HumanLabels, env: MetricEnv) -> list[AgreementRow]:
    scores = score_images(labels, list(cfg.metrics), env)
    if labels.kind == "likert":
        return likert_rows(labels, scores, int(cfg.n_boot), int(cfg.seed))
    return pairwise_rows(labels, scores, float(cfg.tolerance))
