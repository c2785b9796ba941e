"""Run a benchmark's metrics over a finished run and aggregate them into one table.

Every benchmark scores the same way: each metric computes per-image values and/or set values for a
stage's images (:mod:`harness.metrics.base`); this module groups them — by cascade stage (COCO: one
row per stage) or by prompt category at one stage (prompt suites: one row per category, then
"overall") — and gives each per-image output the interval its kind calls for
(:func:`harness.metrics.maths.intervals.interval`). ``unit="prompt"`` makes each prompt's mean over its
seeds one observation (the seeds of a prompt are not independent), ``"image"`` each image.

Set-level outputs (FID, KID) are computed on a whole stage: per stage, or for the "overall" row only.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from harness.errors import UserError
from harness.formats.manifest import ImageRecord
from harness.formats.values import OVERALL, GroupBy, MetricValue, ResultTable, TableRow, category_prompts
from harness.metrics.base import ImageSet, MetricEnv, Output, SampleKey, Scores
from harness.metrics.maths.intervals import interval
from harness.metrics.registry import MetricPlan

Unit = Literal["image", "prompt"]


@dataclass
class ScoreTable:
    """The scored table: its layout (:class:`~harness.formats.values.ResultTable`, what results.json stores
    as ``table``), one :class:`~harness.formats.values.MetricValue` per (group, output) (``metrics``), and
    the outputs in column order (for labels and directions)."""

    table: ResultTable
    values: dict[str, dict[str, MetricValue]]
    outputs: list[Output]

    @property
    def rows(self) -> tuple[TableRow, ...]:
        return self.table.rows

    def value(self, group: str, output: str) -> MetricValue | None:
        return self.values.get(group, {}).get(output)

    def to_frame(self) -> pd.DataFrame:
        """One row per group; each output as ``<name>``, ``<name>_ci_low``, ``<name>_ci_high``."""
        flat = []
        for row in self.rows:
            rec: dict[str, Any] = {"group": row.group, "n_prompts": row.n_prompts, "n_images": row.n_images}
            for o in self.outputs:
                v = self.value(row.group, o.name)
                rec[o.name] = _nan(None if v is None else v.value)
                rec[f"{o.name}_ci_low"] = _nan(None if v is None else v.ci_low)
                rec[f"{o.name}_ci_high"] = _nan(None if v is None else v.ci_high)
            flat.append(rec)
        return pd.DataFrame(flat)

    def to_markdown(self, digits: int = 3) -> str:
        """A Markdown table (readable as plain text) with each output's direction in its header."""
        pct = f"{self.table.level:.0%}"
        head = [self.table.group_by, "prompts", "images"] + [
            f"{o.label or o.name} {'↑' if o.higher_is_better else '↓'} [{pct} CI]" for o in self.outputs
        ]
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
        for row in self.rows:
            name = f"**{OVERALL}**" if row.group == OVERALL else row.group
            cells = [name, str(row.n_prompts), str(row.n_images)]
            cells += [format_value(self.value(row.group, o.name), digits) for o in self.outputs]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


def format_value(v: MetricValue | None, digits: int = 3) -> str:
    """``0.512 [0.47, 0.55]``; ``0.5 [undefined]`` when the interval is; ``0.01 ± 0.002`` for a std."""
    return "–" if v is None else v.format(digits)


@dataclass
class ScoredRun:
    table: ScoreTable
    samples: list[dict[str, Any]]
    timings: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


def _groups(
    records: list[ImageRecord], stages: Sequence[str], group_by: GroupBy, category_order: Sequence[str] | None
) -> list[tuple[TableRow, list[ImageRecord]]]:
    """(row, its records) per row: one per stage, or one per category at one stage and then overall."""

    def row(group: str, stage: str, recs: list[ImageRecord], prompts: bool) -> tuple[TableRow, list[ImageRecord]]:
        ids = sorted({r.prompt_id for r in recs})
        return TableRow(group, stage, len(ids), len(recs), tuple(ids) if prompts else None), recs

    if group_by == "stage":
        return [row(s, s, [r for r in records if r.stage == s], False) for s in stages]
    if len(stages) != 1:
        raise UserError(f"a per-category table scores one stage, got {list(stages)}")
    chosen = [r for r in records if r.stage == stages[0]]
    by_cat = category_prompts((r.prompt_id, r.category) for r in chosen)
    order = [c for c in (category_order or []) if c in by_cat] + [c for c in by_cat if c not in (category_order or [])]
    return [row(c, stages[0], [r for r in chosen if r.prompt_id in by_cat[c]], True) for c in order] + [
        row(OVERALL, stages[0], chosen, False)
    ]


def aggregate(
    records: list[ImageRecord],
    stages: Sequence[str],
    outputs: Sequence[Output],
    per_image: dict[str, dict[tuple[str, SampleKey], float]],
    sets: dict[tuple[str, str], MetricValue],
    *,
    group_by: GroupBy = "category",
    unit: Unit = "image",
    level: float = 0.95,
    category_order: Sequence[str] | None = None,
) -> ScoreTable:
    """The table from per-image values (output → {(stage, (prompt_id, seed)): value}) and set values
    ({(stage, output): MetricValue}); pure, so it is tested without any model."""
    if unit not in ("image", "prompt"):
        raise UserError(f"ci_unit must be 'image' or 'prompt', got {unit!r}")
    rows, values = [], {}
    for row, recs in _groups(records, stages, group_by, category_order):
        got: dict[str, MetricValue] = {}
        for o in outputs:
            if o.per_image:
                vals = [
                    (r.prompt_id, per_image[o.name][(row.stage, r.sample_key)])
                    for r in recs
                    if (row.stage, r.sample_key) in per_image.get(o.name, {})
                ]
                if vals:
                    clusters = [p for p, _ in vals] if unit == "prompt" else None
                    iv = interval([v for _, v in vals], o.kind, level, clusters)
                    got[o.name] = MetricValue(
                        iv.mean, iv.low, iv.high, n=iv.n, level=iv.level, method=iv.method, note=iv.note
                    )
            elif (group_by == "stage" or row.group == OVERALL) and (row.stage, o.name) in sets:
                got[o.name] = replace(sets[(row.stage, o.name)], level=level)
        rows.append(row)
        values[row.group] = got
    used = [o for o in outputs if any(o.name in v for v in values.values())]
    table = ResultTable(
        group_by, stages[0] if group_by == "category" else None, unit, level, tuple(o.name for o in used), tuple(rows)
    )
    return ScoreTable(table, values, used)


def _sample_rows(records: list[ImageRecord], stages: Sequence[str], per_image: dict, details: dict) -> list[dict]:
    rows = []
    for r in records:
        if r.stage not in stages:
            continue
        row = {
            "prompt_id": r.prompt_id,
            "prompt": r.prompt,
            "category": r.category,
            "seed": r.seed,
            "stage": r.stage,
            "path": r.path,
            "sha256": r.sha256,
        }
        for name, values in per_image.items():
            if (r.stage, r.sample_key) in values:
                row[name] = values[(r.stage, r.sample_key)]
        row.update(details.get((r.stage, r.sample_key), {}))
        rows.append(row)
    return rows


def score_run(
    plan: MetricPlan,
    env: MetricEnv,
    run_dir: str | Path,
    records: list[ImageRecord],
    stages: Sequence[str],
    *,
    group_by: GroupBy,
    unit: Unit = "image",
    level: float = 0.95,
    category_order: Sequence[str] | None = None,
) -> ScoredRun:
    """Every active metric on every stage in ``stages``, then :func:`aggregate` and per-image sample rows."""
    per_image: dict[str, dict] = defaultdict(dict)
    sets: dict[tuple[str, str], MetricValue] = {}
    details: dict[tuple[str, SampleKey], dict] = defaultdict(dict)
    timings: dict[str, float] = {}
    run_details: dict[str, Any] = {}
    for stage in stages:
        images = ImageSet(
            Path(run_dir), stage, sorted((r for r in records if r.stage == stage), key=lambda r: (r.prompt_id, r.seed))
        )
        if not images.records:
            raise UserError(f"no images at stage {stage!r} to score")
        for metric in plan.active:
            t0 = time.perf_counter()
            scores: Scores = metric.compute(images, env)
            timings[f"{metric.name}_{stage}"] = time.perf_counter() - t0
            for name, values in scores.per_image.items():
                per_image[name].update({(stage, k): v for k, v in values.items()})
            sets.update({(stage, name): v for name, v in scores.sets.items()})
            for k, d in scores.per_image_details.items():
                details[(stage, k)].update(d)
            if scores.details:
                run_details.setdefault(stage, {}).update(scores.details)
    outputs = [o for m in plan.active for o in m.outputs]
    table = aggregate(
        records,
        stages,
        outputs,
        per_image,
        sets,
        group_by=group_by,
        unit=unit,
        level=level,
        category_order=category_order,
    )
    return ScoredRun(table, _sample_rows(records, stages, per_image, details), timings, run_details)
