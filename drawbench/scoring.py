"""Per-category automatic scores for a suite run: CLIP score everywhere, OCR for the text categories.

Inputs are per-image: CLIP scores from the harness's CLIP scorer (this module never loads CLIP) and
OCR rows from :meth:`drawbench.ocr_judge.OcrJudge.score_records`. Every category gets a mean and a
95% confidence interval from :func:`harness.metrics.intervals.mean_ci`, and an overall row pools
all images.

``unit`` chooses the sampling unit of the interval. With "image" (the default, the convention of
``mean_ci``), each image is one observation. With "prompt", each prompt's mean over its seeds is
one observation, which gives a wider and more conservative interval, since the 8 seeds of one
prompt are not independent of each other. When every prompt has the same number of images, the
two units give the same mean.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from harness.errors import UserError
from harness.formats.manifest import ImageRecord
from harness.formats.runs import select_stage
from harness.metrics.intervals import mean_ci

Key = tuple[str, int]  # (prompt_id, seed)
Unit = Literal["image", "prompt"]
UNCATEGORISED = "(uncategorised)"
OVERALL = "overall"
# JSON metric name -> (DataFrame column stem, Markdown header)
METRICS = {"clip_score": ("clip", "CLIP score"), "ocr_exact_match": ("ocr_exact", "OCR exact match"),
           "ocr_char_similarity": ("ocr_char_sim", "OCR char similarity")}


@dataclass(frozen=True)
class CategoryTable:
    """Rows (one per category, then the overall row) with JSON-ready metric intervals."""

    rows: list[dict[str, Any]]
    stage: str
    unit: Unit
    level: float = 0.95
    metrics: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """For ``results.json``: ``{"stage", "ci_unit", "level", "categories": [...], "overall": {...}}``."""
        return {"stage": self.stage, "ci_unit": self.unit, "level": self.level,
                "categories": self.rows[:-1], "overall": self.rows[-1]}

    def to_frame(self) -> pd.DataFrame:
        """One row per category plus "overall"; each metric as ``<stem>_mean/_ci_low/_ci_high``."""
        flat = []
        for row in self.rows:
            out = {"category": row["category"], "n_prompts": row["n_prompts"], "n_images": row["n_images"]}
            for name in self.metrics:
                stem, iv = METRICS[name][0], row.get(name)
                for part in ("mean", "ci_low", "ci_high"):
                    out[f"{stem}_{part}"] = iv[part] if iv else math.nan
            flat.append(out)
        return pd.DataFrame(flat)

    def to_markdown(self, digits: int = 3) -> str:
        """A Markdown table (also readable as plain text) for the CLI to print."""
        d = digits
        pct = f"{self.level:.0%}"
        head = ["category", "prompts", "images"] + [f"{METRICS[m][1]} [{pct} CI]" for m in self.metrics]
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
        for row in self.rows:
            cells = [str(row["category"]), str(row["n_prompts"]), str(row["n_images"])]
            for m in self.metrics:
                iv = row.get(m)
                cells.append(f"{iv['mean']:.{d}f} [{iv['ci_low']:.{d}f}, {iv['ci_high']:.{d}f}]"
                             if iv else "–")
            if row["category"] == OVERALL:
                cells[0] = f"**{OVERALL}**"
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _clip_lookup(clip: Mapping[Key, float] | pd.DataFrame | None) -> dict[Key, float] | None:
    if clip is None:
        return None
    if isinstance(clip, pd.DataFrame):
        cols = {"prompt_id", "seed", "clip_score"}
        if not cols <= set(clip.columns):
            raise UserError(f"CLIP scores need columns {sorted(cols)}, got {list(clip.columns)}")
        triples = zip(clip["prompt_id"], clip["seed"], clip["clip_score"], strict=True)
        return {(str(p), int(s)): float(v) for p, s, v in triples}
    return {(str(k[0]), int(k[1])): float(v) for k, v in clip.items()}


def _ocr_lookup(ocr: Iterable[Mapping[str, Any]] | pd.DataFrame | None) -> dict[Key, Mapping[str, Any]]:
    if ocr is None:
        return {}
    rows = ocr.to_dict("records") if isinstance(ocr, pd.DataFrame) else list(ocr)
    return {(str(r["prompt_id"]), int(r["seed"])): r for r in rows}


def _interval(values: Sequence[tuple[str, float]], unit: Unit, level: float) -> dict[str, Any] | None:
    """``values`` are (prompt_id, value) pairs; None when there are none."""
    if not values:
        return None
    if unit == "prompt":
        per: dict[str, list[float]] = defaultdict(list)
        for pid, v in values:
            per[pid].append(v)
        xs = [sum(v) / len(v) for v in per.values()]
    else:
        xs = [v for _, v in values]
    return mean_ci(xs, level).as_dict()


def _row(category: str, recs: list[ImageRecord], clip: dict[Key, float] | None,
         ocr: dict[Key, Mapping[str, Any]], unit: Unit, level: float) -> dict[str, Any]:
    row: dict[str, Any] = {"category": category, "n_prompts": len({r.prompt_id for r in recs}),
                           "n_images": len(recs)}
    if clip is not None:
        row["clip_score"] = _interval([(r.prompt_id, clip[(r.prompt_id, r.seed)]) for r in recs], unit, level)
    scored = [(r.prompt_id, ocr[(r.prompt_id, r.seed)]) for r in recs if (r.prompt_id, r.seed) in ocr]
    if scored:
        row["ocr_exact_match"] = _interval([(p, float(bool(o["exact_match"]))) for p, o in scored],
                                           unit, level)
        row["ocr_char_similarity"] = _interval([(p, float(o["char_similarity"])) for p, o in scored],
                                               unit, level)
        row["ocr_n_images"] = len(scored)
    return row


def category_table(records: Iterable[ImageRecord], clip: Mapping[Key, float] | pd.DataFrame | None = None,
                   ocr: Iterable[Mapping[str, Any]] | pd.DataFrame | None = None, stage: str | None = None,
                   unit: Unit = "image", level: float = 0.95,
                   category_order: Sequence[str] | None = None) -> CategoryTable:
    """The per-category table of one run.

    ``records``: the run's manifest records (any stages; ``stage`` picks one, default the final).
    ``clip``: ``{(prompt_id, seed): score}`` or a DataFrame with prompt_id, seed and clip_score.
    It must cover every image of the stage. ``ocr``: rows with prompt_id, seed, exact_match and
    char_similarity (from ``OcrJudge.score_records``); categories without OCR rows get no OCR
    columns. ``category_order``: e.g. the suite's categories (default: order of first appearance).
    """
    if unit not in ("image", "prompt"):
        raise UserError(f"unit must be 'image' or 'prompt', got {unit!r}")
    stage, chosen = select_stage(records, stage)
    clip_map, ocr_map = _clip_lookup(clip), _ocr_lookup(ocr)
    if clip_map is not None:
        missing = [r for r in chosen if (r.prompt_id, r.seed) not in clip_map]
        if missing:
            raise UserError(f"no CLIP score for {missing[0].prompt_id} seed {missing[0].seed} "
                            f"({len(missing)} of {len(chosen)} images have none)")
    by_cat: dict[str, list[ImageRecord]] = defaultdict(list)
    for r in chosen:
        by_cat[r.category or UNCATEGORISED].append(r)
    order = [c for c in (category_order or []) if c in by_cat]
    order += [c for c in by_cat if c not in order]
    rows = [_row(c, by_cat[c], clip_map, ocr_map, unit, level) for c in order]
    rows.append(_row(OVERALL, chosen, clip_map, ocr_map, unit, level))
    metrics = [m for m in METRICS if any(m in row for row in rows)]
    return CategoryTable(rows=rows, stage=stage, unit=unit, level=level, metrics=metrics)
