"""``imagen-bench eval benchmark=coco_fid30k``: the COCO FID-30K run, end to end.

1. load and check everything that can fail (COCO folder, captions, FID network, CLIP weights,
   checkpoint) before generating a single image;
2. generate one image per caption (sharded, resumable) up to the 256×256 stage;
3. FID/KID against the cached reference statistics and CLIP score, at every stage;
4. write samples.jsonl and results.json (only once everything succeeded).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict

from benchmarks import coco
from harness.evaluate import stage_metrics
from harness.formats.files import prompts_sha256
from harness.formats.results import Results, write_results
from harness.generate import apply_guidance, build_generator, generate, scoring_rank
from harness.metrics.clip_score import load_clip_scorer
from harness.metrics.fid_api import files_stats
from harness.metrics.inception import load_fid_extractor
from harness.metrics.reference_stats import ReferenceStatsCache
from harness.provenance import environment, resolved_config, run_label
from harness.runner import plan_work
from imagen.distributed import DistContext


def resolve_stop_at(cfg: DictConfig) -> str | None:
    """``auto``: the first stage at ≥ 256 px (the paper evaluates COCO at 256×256), else the last."""
    want = cfg.benchmark.get("stop_at", "auto")
    if want != "auto":
        return want
    from imagen.build import stage_specs

    specs = stage_specs(cfg.model)
    return next((s.name for s in specs if s.resolution >= 256), specs[-1].name)


def load_clip(cfg: DictConfig) -> Any | None:
    if not cfg.clip.enabled:
        return None
    return load_clip_scorer(cfg.clip.model, cfg.clip.pretrained, device=cfg.device, cache_dir=cfg.paths.cache_dir)


def reference_stats(cfg: DictConfig, prompts: list[coco.CocoPrompt], extractor: Any) -> Any:
    files = coco.reference_files(cfg.benchmark, cfg.coco, prompts)
    return files_stats(files, root=Path(cfg.coco.images), extractor=extractor, mode=cfg.fid.mode,
                       batch_size=int(cfg.fid.batch_size), num_workers=int(cfg.fid.num_workers),
                       min_images=int(cfg.fid.min_images), cache=ReferenceStatsCache(cfg.paths.cache_dir),
                       dataset="coco2014", split=f"val2014-{cfg.benchmark.reference}", keep_features=True)


def run_coco(cfg: DictConfig, run_dir: str | Path) -> Results | None:
    """The whole benchmark; returns the results on rank 0 (None on other ranks)."""
    start = time.perf_counter()
    ctx = DistContext.init(cfg.get("device", "cpu"))
    apply_guidance(cfg)
    with open_dict(cfg):
        cfg.stop_at = resolve_stop_at(cfg)
    prompts, source = coco.load_prompts(cfg.benchmark, cfg.coco)
    extractor = load_fid_extractor(cfg.fid.extractor, device=cfg.device, cache_dir=cfg.paths.cache_dir)
    scorer = load_clip(cfg) if ctx.is_main else None
    model = build_generator(cfg, ctx)
    offset = int(cfg.benchmark.image_seed_offset)
    work = [w for i, p in enumerate(prompts)
            for w in plan_work([(p.prompt_id, p.caption, None)], [offset + i])]
    t_gen = time.perf_counter()
    result, model = generate(cfg, work, run_dir, model=model, ctx=ctx)
    t_gen = time.perf_counter() - t_gen
    if not scoring_rank(ctx, result):
        return None
    t_ref = time.perf_counter()
    ref = reference_stats(cfg, prompts, extractor)
    t_ref = time.perf_counter() - t_ref
    sm = stage_metrics(result.run_dir, result.records, result.stages, reference=ref, extractor=extractor,
                       scorer=scorer, fid_cfg=cfg.fid, clip_batch_size=int(cfg.clip.batch_size))
    results = Results(
        run_id=run_label(result.run_dir, cfg), task="eval", suite=cfg.benchmark.name,
        benchmark={**source, "name": cfg.benchmark.name, "kind": "coco", "stop_at": cfg.stop_at,
                   "stages": result.stages, "reference": {"set": cfg.benchmark.reference, **ref.describe()},
                   "resolution": {r.stage: r.resolution for r in result.records}},
        metrics=sm.metrics, model=model.describe(),
        seeds={"image_seeds": f"{offset} + caption index", "caption_seed": source.get("caption_seed")},
        prompts={"count": len(prompts), "sha256": prompts_sha256((p.prompt_id, p.caption) for p in prompts), "source": source["caption_source"]},
        extractors={"fid": {**extractor.identity(), "mode": cfg.fid.mode},
                    "clip": None if scorer is None else scorer.identity},
        caches={"reference_stats_hit": ref.cache_hit, "text_embeddings": text_cache_counts(model)},
        timings={"generate": t_gen, "reference_stats": t_ref, **sm.timings, "total": time.perf_counter() - start},
        config=resolved_config(cfg), environment=environment())
    write_results(result.run_dir, results, sm.samples.values())
    ctx.close()
    return results


def text_cache_counts(model: Any) -> dict[str, int] | None:
    encoder = getattr(getattr(model, "cascade", None), "text_encoder", None)
    if encoder is None or not hasattr(encoder, "hits"):
        return None
    return {"hits": encoder.hits, "misses": encoder.misses}
