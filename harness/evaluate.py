"""Automatic metrics over a finished generation run, per cascade stage: FID/KID against reference
statistics and CLIP score per image. Used by ``eval`` (COCO) and ``drawbench`` (CLIP per image)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from harness.formats.manifest import ImageRecord
from harness.metrics.fid_api import SetStats, fid_against_reference, files_stats
from harness.metrics.inception import FidExtractor


@dataclass
class StageMetrics:
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # stage -> metric -> value dict
    samples: dict[tuple[str, int, str], dict[str, Any]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    fid_details: dict[str, Any] = field(default_factory=dict)


def by_stage(records: list[ImageRecord]) -> dict[str, list[ImageRecord]]:
    out: dict[str, list[ImageRecord]] = {}
    for r in records:
        out.setdefault(r.stage, []).append(r)
    return out


def clip_for_records(scorer: Any, run_dir: Path, records: list[ImageRecord], batch_size: int = 16) -> tuple[dict, dict]:
    """Per-image CLIP scores {(prompt_id, seed, stage): score} and the summary (mean, 95% CI, truncation)."""
    scores = scorer.score([run_dir / r.path for r in records], [r.prompt for r in records], batch_size=batch_size)
    per_image = {r.key: float(s) for r, s in zip(records, scores.scores)}
    return per_image, scores.summary()


def fid_for_records(run_dir: Path, records: list[ImageRecord], reference: SetStats, extractor: FidExtractor,
                    fid_cfg: DictConfig) -> dict[str, Any]:
    generated = files_stats([run_dir / r.path for r in records], root=run_dir, extractor=extractor,
                            mode=fid_cfg.mode, batch_size=int(fid_cfg.batch_size),
                            num_workers=int(fid_cfg.num_workers), min_images=int(fid_cfg.min_images),
                            dataset="generated", keep_features=True)
    return fid_against_reference(generated, reference, kid_subsets=int(fid_cfg.kid_subsets),
                                 kid_subset_size=int(fid_cfg.kid_subset_size), seed=int(fid_cfg.seed))


def stage_metrics(run_dir: Path, records: list[ImageRecord], stages: list[str], *, reference: SetStats | None,
                  extractor: FidExtractor | None, scorer: Any | None, fid_cfg: DictConfig,
                  clip_batch_size: int = 16) -> StageMetrics:
    """FID/KID (when a reference is given) and CLIP score (when a scorer is given) for each stage."""
    out = StageMetrics()
    groups = by_stage(records)
    for stage in stages:
        recs = groups.get(stage, [])
        m: dict[str, Any] = {}
        for r in recs:
            out.samples.setdefault(r.key, {"prompt_id": r.prompt_id, "prompt": r.prompt, "seed": r.seed,
                                           "stage": r.stage, "path": r.path, "sha256": r.sha256})
        if reference is not None and extractor is not None:
            t0 = time.perf_counter()
            fid = fid_for_records(run_dir, recs, reference, extractor, fid_cfg)
            out.timings[f"fid_{stage}"] = time.perf_counter() - t0
            m["fid"] = {"value": fid["fid"], "n": fid["count_generated"], "n_reference": fid["count_reference"]}
            m["kid"] = {"value": fid["kid"], "std": fid["kid_std"], "subset_size": fid["kid_subset_size"]}
            out.fid_details[stage] = fid
        if scorer is not None:
            t0 = time.perf_counter()
            per_image, summary = clip_for_records(scorer, run_dir, recs, clip_batch_size)
            out.timings[f"clip_{stage}"] = time.perf_counter() - t0
            m["clip_score"] = {"value": summary["clip_score"], "ci_low": summary["ci_low"],
                               "ci_high": summary["ci_high"], "n": summary["n"],
                               "truncated_prompts": summary["truncated_prompts"]}
            for key, score in per_image.items():
                out.samples[key]["clip_score"] = score
        out.metrics[stage] = m
    return out
