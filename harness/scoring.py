"""Run a benchmark's metrics over a finished run and aggregate them into one table.

Every benchmark scores the same way: each metric computes per-image values and/or set values for a
stage's images (:mod:`harness.metrics.base`); this module groups them — by cascade stage (COCO: one
row per stage) or by prompt category at one stage (prompt suites: one row per category, then
"overall") — and gives each per-image output the interval its kind calls for
(:func:`harness.metrics.intervals.interval`). ``unit="prompt"`` makes each prompt's mean over its
seeds one observation (the seeds of a prompt are not independent), ``"image"`` each image.

Set-level outputs (FID, KID) are computed on a whole stage: per stage, or for the "overall" row only.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from harness.errors import UserError
from harness.formats.manifest import ImageRecord
from harness.metrics.base import ImageSet, MetricEnv, Output, SampleKey, Scores
from harness.metrics.intervals import interval
from harness.metrics.registry import MetricPlan

GroupBy = Literal["stage", "category"]
Unit = Literal["image", "prompt"]
OVERALL = "overall"
UNCATEGORISED = "(uncategorised)"


@dataclass
class ScoreTable:
    """One row per group with ``n_prompts``, ``n_images`` and one value dict per output
    (``{value, ci_low, ci_high, n, level, method[, note]}``; ci_* are None where undefined)."""

    rows: list[dict[str, Any]]
    outputs: list[Output]
    group_by: GroupBy
    unit: Unit
    level: float = 0.95
    stage: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"group_by": self.group_by, "stage": self.stage, "ci_unit": self.unit, "level": self.level,
                "outputs": [o.name for o in self.outputs], "rows": self.rows}

    def metrics_json(self) -> dict[str, dict[str, Any]]:
        """``results.json`` → ``metrics``: {group: {output: value dict, n_prompts: {value}, n_images: {value}}}."""
        out = {}
        for row in self.rows:
            group = {"n_prompts": {"value": row["n_prompts"]}, "n_images": {"value": row["n_images"]}}
            group.update({o.name: row[o.name] for o in self.outputs if row.get(o.name)})
            out[str(row["group"])] = group
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per group; each output as ``<name>``, ``<name>_ci_low``, ``<name>_ci_high``."""
        flat = []
        for row in self.rows:
            rec = {"group": row["group"], "n_prompts": row["n_prompts"], "n_images": row["n_images"]}
            for o in self.outputs:
                v = row.get(o.name) or {}
                rec[o.name] = v.get("value", math.nan)
                rec[f"{o.name}_ci_low"] = _nan(v.get("ci_low"))
                rec[f"{o.name}_ci_high"] = _nan(v.get("ci_high"))
            flat.append(rec)
        return pd.DataFrame(flat)

    def to_markdown(self, digits: int = 3) -> str:
        """A Markdown table (readable as plain text) with each output's direction in its header."""
        pct = f"{self.level:.0%}"
        head = [self.group_by, "prompts", "images"] + [
            f"{o.label or o.name} {'↑' if o.higher_is_better else '↓'} [{pct} CI]" for o in self.outputs]
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
        for row in self.rows:
            name = f"**{OVERALL}**" if row["group"] == OVERALL else str(row["group"])
            cells = [name, str(row["n_prompts"]), str(row["n_images"])]
            cells += [format_value(row.get(o.name), digits) for o in self.outputs]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


def format_value(v: dict[str, Any] | None, digits: int = 3) -> str:
    """``0.512 [0.47, 0.55]``; ``0.5 [undefined]`` when the interval is; ``0.01 ± 0.002`` for a std."""
    if not v:
        return "–"
    value = f"{v['value']:.{digits}f}"
    if v.get("ci_low") is not None and v.get("ci_high") is not None:
        return f"{value} [{v['ci_low']:.{digits}f}, {v['ci_high']:.{digits}f}]"
    if v.get("std") is not None:
        return f"{value} ± {v['std']:.{digits}g} (sd)"
    return f"{value} [undefined]" if v.get("note") else value


@dataclass
class ScoredRun:
    table: ScoreTable
    samples: list[dict[str, Any]]
    timings: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


def _groups(records: list[ImageRecord], stages: Sequence[str], group_by: GroupBy,
            category_order: Sequence[str] | None) -> list[tuple[str, str, list[ImageRecord]]]:
    """(group name, stage, records) per row."""
    if group_by == "stage":
        return [(s, s, [r for r in records if r.stage == s]) for s in stages]
    if len(stages) != 1:
        raise UserError(f"a per-category table scores one stage, got {list(stages)}")
    by_cat: dict[str, list[ImageRecord]] = defaultdict(list)
    chosen = [r for r in records if r.stage == stages[0]]
    for r in chosen:
        by_cat[r.category or UNCATEGORISED].append(r)
    order = [c for c in (category_order or []) if c in by_cat] + [c for c in by_cat if c not in (category_order or [])]
    return [(c, stages[0], by_cat[c]) for c in order] + [(OVERALL, stages[0], chosen)]


def aggregate(records: list[ImageRecord], stages: Sequence[str], outputs: Sequence[Output],
              per_image: dict[str, dict[tuple[str, SampleKey], float]], sets: dict[tuple[str, str], Any], *,
              group_by: GroupBy = "category", unit: Unit = "image", level: float = 0.95,
              category_order: Sequence[str] | None = None) -> ScoreTable:
    """The table from per-image values (output → {(stage, (prompt_id, seed)): value}) and set values
    ({(stage, output): SetValue}); pure, so it is tested without any model."""
    if unit not in ("image", "prompt"):
        raise UserError(f"ci_unit must be 'image' or 'prompt', got {unit!r}")
    rows = []
    for name, stage, recs in _groups(records, stages, group_by, category_order):
        row: dict[str, Any] = {"group": name, "stage": stage, "n_prompts": len({r.prompt_id for r in recs}),
                               "n_images": len(recs)}
        for o in outputs:
            if o.per_image:
                vals = [(r.prompt_id, per_image[o.name][(stage, r.sample_key)]) for r in recs
                        if (stage, r.sample_key) in per_image.get(o.name, {})]
                if vals:
                    clusters = [p for p, _ in vals] if unit == "prompt" else None
                    iv = interval([v for _, v in vals], o.kind, level, clusters).as_dict()
                    row[o.name] = {"value": iv.pop("mean"), **iv}
            elif (group_by == "stage" or name == OVERALL) and (stage, o.name) in sets:
                row[o.name] = {**sets[(stage, o.name)].as_dict(), "level": level}
        rows.append(row)
    used = [o for o in outputs if any(o.name in r for r in rows)]
    return ScoreTable(rows, used, group_by, unit, level, stages[0] if group_by == "category" else None)


def _sample_rows(records: list[ImageRecord], stages: Sequence[str], per_image: dict, details: dict) -> list[dict]:
    rows = []
    for r in records:
        if r.stage not in stages:
            continue
        row = {"prompt_id": r.prompt_id, "prompt": r.prompt, "category": r.category, "seed": r.seed,
               "stage": r.stage, "path": r.path, "sha256": r.sha256}
        for name, values in per_image.items():
            if (r.stage, r.sample_key) in values:
                row[name] = values[(r.stage, r.sample_key)]
        row.update(details.get((r.stage, r.sample_key), {}))
        rows.append(row)
    return rows


def score_run(plan: MetricPlan, env: MetricEnv, run_dir: str | Path, records: list[ImageRecord],
              stages: Sequence[str], *, group_by: GroupBy, unit: Unit = "image", level: float = 0.95,
              category_order: Sequence[str] | None = None) -> ScoredRun:
    """Every active metric on every stage in ``stages``, then :func:`aggregate` and per-image sample rows."""
    per_image: dict[str, dict] = defaultdict(dict)
    sets: dict[tuple[str, str], Any] = {}
    details: dict[tuple[str, SampleKey], dict] = defaultdict(dict)
    timings: dict[str, float] = {}
    run_details: dict[str, Any] = {}
    for stage in stages:
        images = ImageSet(Path(run_dir), stage, sorted((r for r in records if r.stage == stage),
                                                       key=lambda r: (r.prompt_id, r.seed)))
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
    table = aggregate(records, stages, outputs, per_image, sets, group_by=group_by, unit=unit, level=level,
                      category_order=category_order)
    return ScoredRun(table, _sample_rows(records, stages, per_image, details), timings, run_details)
