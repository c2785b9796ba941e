"""A prompt-suite run end to end (``imagen-bench drawbench``, ``imagen-bench eval benchmark=<suite>``).

1. load the suite and everything that can fail (checkpoint, CLIP weights) before generating;
2. generate ``images_per_prompt`` images per prompt with the suite's seeds (sharded, resumable),
   or import another system's images from a folder (``images_from``);
3. one 2×4 grid per prompt; CLIP score per image; the OCR judge on the text categories;
4. a per-category table (mean and 95% CI) with an overall row, in results.json and on screen.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from drawbench.grids import write_grids
from drawbench.scoring import category_table
from drawbench.suites import PromptSuite, load_suite
from harness.errors import UserError
from harness.evaluate import clip_for_records
from harness.formats.files import prompts_sha256
from harness.formats.manifest import ImageRecord, verified_records
from harness.formats.results import Results, write_results
from harness.generate import apply_guidance, build_generator, generate, scoring_rank
from harness.provenance import environment, resolved_config, run_label, write_resolved_config
from harness.runner import RunResult, plan_work
from imagen.distributed import DistContext


def suite_seeds(suite: PromptSuite) -> list[int]:
    seeds = list(suite.seeds)[: int(suite.images_per_prompt)]
    if len(seeds) < int(suite.images_per_prompt):
        raise UserError(f"suite {suite.name} wants {suite.images_per_prompt} images per prompt but lists {len(seeds)} seeds")
    return seeds


def import_images(cfg: DictConfig, suite: PromptSuite, seeds: list[int], run_dir: Path) -> RunResult:
    """Another system's images from a folder (drawbench/README.md layout) as this run's images."""
    from drawbench.external import import_external_run

    run_dir.mkdir(parents=True, exist_ok=True)
    import_external_run(cfg.images_from, suite, seeds, run_dir, run_id=run_dir.name)
    write_resolved_config(run_dir, cfg)
    records = verified_records(run_dir)
    return RunResult(run_dir, records, stages=sorted({r.stage for r in records}), complete=True)


def score(cfg: DictConfig, suite: PromptSuite, run_dir: Path, records: list[ImageRecord],
          scorer: Any | None) -> tuple[Any, dict, list, dict[str, float]]:
    """(category table, per-image CLIP, OCR rows, timings) on the final stage."""
    from harness.formats.runs import select_stage

    stage, final = select_stage(records, cfg.get("score_stage"))
    timings: dict[str, float] = {}
    clip = None
    if scorer is not None:
        t0 = time.perf_counter()
        per_image, _ = clip_for_records(scorer, run_dir, final, int(cfg.clip.batch_size))
        clip = {(pid, seed): s for (pid, seed, _), s in per_image.items()}
        timings["clip"] = time.perf_counter() - t0
    ocr: list = []
    if suite.ocr_categories and cfg.get("ocr", {}).get("enabled", True):
        from drawbench.ocr_judge import OcrJudge

        t0 = time.perf_counter()
        ocr = OcrJudge().score_records(run_dir, final, suite.ocr_categories, stage=stage)
        timings["ocr"] = time.perf_counter() - t0
    table = category_table(final, clip, ocr, stage=stage, unit=cfg.get("ci_unit", "image"),
                           category_order=suite.categories)
    return table, clip or {}, ocr, timings


def samples_rows(records: list[ImageRecord], clip: dict, ocr: list) -> list[dict[str, Any]]:
    ocr_by = {(r["prompt_id"], r["seed"]): r for r in ocr}
    rows = []
    for r in records:
        row = {"prompt_id": r.prompt_id, "prompt": r.prompt, "category": r.category, "seed": r.seed,
               "stage": r.stage, "path": r.path, "sha256": r.sha256, "clip_score": clip.get((r.prompt_id, r.seed))}
        if (r.prompt_id, r.seed) in ocr_by:
            o = ocr_by[(r.prompt_id, r.seed)]
            row.update({k: o.get(k) for k in ("target", "read", "exact_match", "char_similarity")})
        rows.append(row)
    return rows


def table_metrics(table: Any) -> dict[str, dict[str, Any]]:
    """The category table as results.json metrics: {category | overall: {metric: interval}}."""
    data = table.to_json()
    out = {}
    for row in [*data["categories"], data["overall"]]:
        metrics = {"n_prompts": {"value": row["n_prompts"]}, "n_images": {"value": row["n_images"]}}
        for name in ("clip_score", "ocr_exact_match", "ocr_char_similarity"):
            iv = row.get(name)
            if iv:
                metrics[name] = {"value": iv["mean"], "ci_low": iv["ci_low"], "ci_high": iv["ci_high"], "n": iv.get("n")}
        out[str(row["category"])] = metrics
    return out


def run_suite(cfg: DictConfig, run_dir: str | Path, task: str = "drawbench") -> Results | None:
    start = time.perf_counter()
    ctx = DistContext.init(cfg.get("device", "cpu"))
    apply_guidance(cfg)
    suite = load_suite(cfg.benchmark)
    seeds = suite_seeds(suite)
    scorer = None
    if ctx.is_main and cfg.clip.enabled:
        from harness.metrics.clip_score import load_clip_scorer

        scorer = load_clip_scorer(cfg.clip.model, cfg.clip.pretrained, device=cfg.device, cache_dir=cfg.paths.cache_dir)
    t0 = time.perf_counter()
    model = None
    if cfg.get("images_from"):
        run_dir = Path(ctx.broadcast_object(str(run_dir)))
        result, model_info = import_images(cfg, suite, seeds, run_dir), {"kind": "folder", "folder": str(cfg.images_from)}
    else:
        model = build_generator(cfg, ctx)
        work = plan_work(((i.prompt_id, i.prompt, i.category) for i in suite.items), seeds)
        result, model = generate(cfg, work, run_dir, model=model, ctx=ctx)
        model_info = model.describe()
    t_gen = time.perf_counter() - t0
    if not scoring_rank(ctx, result):
        return None
    rows, cols = suite.grid
    write_grids(result.run_dir, result.records, rows=rows, cols=cols, seeds=seeds)
    table, clip, ocr, timings = score(cfg, suite, result.run_dir, result.records, scorer)
    results = Results(
        run_id=run_label(result.run_dir, cfg), task=task, suite=suite.name,
        benchmark={"name": suite.name, "kind": "suite", "prompts": len(suite.items), "images_per_prompt": len(seeds),
                   "subset": suite.is_subset, "score_stage": table.stage, "ci_unit": table.unit,
                   "sources": {s.path.name: s.sha256 for s in suite.sources}, "table": table.to_json()},
        metrics=table_metrics(table), model=model_info, seeds={"image_seeds": seeds},
        prompts={"count": len(suite.items), "source": suite.name,
                 "sha256": _prompts_sha(suite)},
        extractors={"clip": None if scorer is None else scorer.identity,
                    "ocr": {"engine": "rapidocr-onnxruntime"} if ocr else None},
        caches={"text_embeddings": _text_cache(model)},
        timings={"generate": t_gen, **timings, "total": time.perf_counter() - start},
        config=resolved_config(cfg), environment=environment())
    write_results(result.run_dir, results, samples_rows(table_records(result.records, table.stage), clip, ocr))
    print(table.to_markdown())
    ctx.close()
    return results


def table_records(records: list[ImageRecord], stage: str) -> list[ImageRecord]:
    return [r for r in records if r.stage == stage]


def _prompts_sha(suite: PromptSuite) -> str:
    return prompts_sha256((i.prompt_id, i.prompt) for i in suite.items)


def _text_cache(model: Any | None) -> dict[str, int] | None:
    encoder = getattr(getattr(model, "cascade", None), "text_encoder", None)
    return None if encoder is None else {"hits": encoder.hits, "misses": encoder.misses}
