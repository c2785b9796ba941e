"""``imagen-bench meta-eval``: which metric agrees with people? Score human-labelled images with registered
per-image metrics and measure each output's agreement with the labels.

Likert labels: Spearman's ρ and Kendall's τ between the output and each image's mean rating (bootstrap
intervals over images). Pairwise votes: the share of decided votes where the output prefers the voted image
(Wilson interval). Where raters overlap, the same agreement of one rater with the rest is the ceiling row.
Set outputs (FID, KID) have no per-image value and are not meta-evaluated. The maths is
:mod:`harness.metrics.maths.agreement`; the labels are :mod:`harness.formats.labels`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from harness.errors import UserError
from harness.formats.files import atomic_write_text
from harness.formats.labels import HumanLabels
from harness.formats.manifest import ImageRecord
from harness.metrics.base import ImageSet, MetricEnv
from harness.metrics.maths.agreement import (
    CORRELATIONS,
    pairwise_accuracy,
    rank_correlation,
    rating_ceiling,
    vote_ceiling,
)

CEILING = "(one rater vs the rest)"
COLUMNS = ("output", "statistic", "value", "ci_low", "ci_high", "n", "method")


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


def _row(output: str, statistic: str, value: float, low: float, high: float, n: int, method: str) -> dict[str, Any]:
    return dict(zip(COLUMNS, (output, statistic, value, low, high, n, method)))


def likert_rows(labels: HumanLabels, scores: dict[str, dict[str, float]], n_boot: int, seed: int) -> list[dict]:
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
            rows.append(_row(output, kind, a.value, a.ci_low, a.ci_high, a.n, a.method))
    if any(len(v) > 1 for v in by_image.values()):
        for kind in CORRELATIONS:
            c = rating_ceiling([(r.image, r.value) for r in labels.ratings], kind, n_boot=n_boot, seed=seed)
            rows.append(_row(CEILING, kind, c.value, c.ci_low, c.ci_high, c.n, c.method))
    return rows


def pairwise_rows(labels: HumanLabels, scores: dict[str, dict[str, float]], tolerance: float) -> list[dict]:
    rows = []
    for output, values in scores.items():
        votes = [v for v in labels.votes if v.image_a in values and v.image_b in values]
        diff = [values[v.image_a] - values[v.image_b] for v in votes]
        p = pairwise_accuracy(diff, [v.vote for v in votes], tolerance=tolerance)
        method = f"Wilson; {p.human_ties} tie votes and {p.metric_ties} metric ties not counted"
        rows.append(_row(output, "pairwise_accuracy", p.rate, p.ci_low, p.ci_high, p.decided, method))
    c = vote_ceiling([((v.image_a, v.image_b), v.vote) for v in labels.votes])
    if c.decided:
        rows.append(_row(CEILING, "pairwise_accuracy", c.rate, c.ci_low, c.ci_high, c.decided, "Wilson"))
    return rows


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The agreement table as aligned text (value [low, high] n), best output first per statistic."""
    lines = [f"{'output':<28} {'statistic':<18} {'value':>7}  {'95% interval':<17} {'n':>6}"]
    order = sorted(rows, key=lambda r: (r["statistic"], r["output"] == CEILING, -(r["value"] or 0)))
    for r in order:
        interval = f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]" if r["ci_low"] == r["ci_low"] else "(undefined)"
        lines.append(f"{r['output']:<28} {r['statistic']:<18} {r['value']:>7.3f}  {interval:<17} {r['n']:>6}")
    return "\n".join(lines)


def write_outputs(out: Path, rows: Sequence[dict[str, Any]], facts: dict[str, Any]) -> Path:
    """``meta_eval.json`` (the rows and what produced them) and ``meta_eval.csv`` in ``out``."""
    import json

    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "meta_eval.csv", pd.DataFrame(rows, columns=list(COLUMNS)).to_csv(index=False))
    atomic_write_text(out / "meta_eval.json", json.dumps({**facts, "rows": list(rows)}, indent=2, default=str))
    return out / "meta_eval.json"


def run_meta_eval(cfg: DictConfig, labels: HumanLabels, env: MetricEnv) -> list[dict[str, Any]]:
    scores = score_images(labels, list(cfg.metrics), env)
    if labels.kind == "likert":
        return likert_rows(labels, scores, int(cfg.n_boot), int(cfg.seed))
    return pairwise_rows(labels, scores, float(cfg.tolerance))
