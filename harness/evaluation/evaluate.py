"""One evaluation pipeline for every benchmark: ``imagen-bench eval benchmark=<name>`` (and ``drawbench``).

A benchmark config names its runner class with ``_target_`` (``benchmarks.coco_eval:CocoFid30k``,
``drawbench.evaluate:PromptSuiteBenchmark``) and lists its metrics (``metrics: [fid, kid, clip_score]``,
names from :mod:`harness.metrics.registry`). The pipeline never branches on which benchmark or metric it
runs:

1. the benchmark loads and checks its prompts and reference set; every metric loads its weights and
   reads the reference set (``prepare``) — all before a single image is generated;
2. images are generated (sharded over torchrun ranks, resumable) or imported from ``images_from``;
3. the benchmark's post-processing (grids), then every metric on the stages it scores
   (:func:`harness.evaluation.scoring.score_run`);
4. ``samples.jsonl`` and ``results.json`` are written once everything succeeded.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from omegaconf import DictConfig

from harness.errors import UserError
from harness.evaluation.scoring import GroupBy, ScoredRun, score_run
from harness.formats.results import Results, write_results
from harness.generation.generate import apply_stage_overrides, build_generator, check_generation, generate, scoring_rank
from harness.generation.provenance import environment, resolved_config, run_label
from harness.generation.runner import RunResult, WorkItem
from harness.metrics.base import MetricEnv, ReferenceSet
from harness.metrics.registry import MetricPlan, plan_metrics
from harness.registry import load_target
from imagen.distributed import DistContext


class Benchmark(ABC):
    """A benchmark: prompts × seeds to generate, an optional reference set, and how scores are grouped."""

    group_by: ClassVar[GroupBy] = "category"

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg

    @property
    def name(self) -> str:
        return str(self.cfg.benchmark.name)

    @abstractmethod
    def work(self) -> list[WorkItem]:
        """The (prompt, seed) pairs to generate, in a fixed order."""

    def reference(self) -> ReferenceSet | None:
        """Real images for set-level metrics (FID/KID), or None."""
        return None

    def provides(self) -> set[str]:
        return {"images", "prompts"} | ({"reference"} if self.reference() is not None else set())

    def import_images(self, run_dir: Path) -> RunResult | None:
        """Import another system's images from ``cfg.images_from`` (None: look them up through the generator)."""
        return None

    def after_generation(self, result: RunResult) -> None:
        """Post-processing of the finished images (e.g. per-prompt grids)."""

    @abstractmethod
    def score_stages(self, result: RunResult) -> list[str]:
        """The stages whose images are scored."""

    def category_order(self) -> list[str] | None:
        return None

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Protocol facts for ``results.json`` → ``benchmark``."""

    @abstractmethod
    def prompts_info(self) -> dict[str, Any]:
        """``{count, sha256 (harness.formats.files.prompts_sha256), source}``."""

    @abstractmethod
    def seeds_info(self) -> dict[str, Any]:
        """How image seeds were chosen."""


def load_benchmark(cfg: DictConfig) -> Benchmark:
    """The runner named by ``cfg.benchmark._target_`` (``module:Class`` or ``module.Class``)."""
    target = cfg.benchmark.get("_target_")
    if not target:
        raise UserError(f"benchmark {cfg.benchmark.get('name')!r} has no _target_ naming its runner class")
    cls = load_target(str(target), "benchmark runner")
    if not (isinstance(cls, type) and issubclass(cls, Benchmark)):
        raise UserError(f"benchmark runner {target!r} is not a harness.evaluation.evaluate.Benchmark")
    return cls(cfg)


def prepare_metrics(cfg: DictConfig, bench: Benchmark, ctx: DistContext) -> tuple[MetricPlan, MetricEnv]:
    """Instantiate the benchmark's metrics and (on the scoring rank) load everything they need."""
    env = MetricEnv(
        cfg,
        device=str(ctx.device),
        cache_dir=cfg.paths.cache_dir,
        reference=bench.reference(),
        progress=bool(cfg.get("progress", True)),
    )
    plan = plan_metrics(list(cfg.benchmark.get("metrics") or []), env, bench.provides())
    if ctx.is_main:
        for metric in plan.active:
            metric.prepare(env)
    return plan, env


def _images(cfg: DictConfig, bench: Benchmark, run_dir: str | Path, ctx: DistContext) -> tuple[RunResult, Any]:
    if cfg.get("images_from"):
        run_dir = Path(ctx.broadcast_object(str(run_dir)))
        imported = bench.import_images(run_dir)
        if imported is not None:
            return imported, {"kind": "folder", "folder": str(cfg.images_from)}
    model = build_generator(cfg, ctx)
    result, model = generate(cfg, bench.work(), run_dir, model=model, ctx=ctx)
    return result, model


def _describe_model(model: Any) -> dict[str, Any]:
    return model if isinstance(model, dict) else model.describe()


def _text_cache(model: Any) -> dict[str, int] | None:
    encoder = getattr(getattr(model, "cascade", None), "text_encoder", None)
    if encoder is None or not hasattr(encoder, "hits"):
        return None
    return {"hits": encoder.hits, "misses": encoder.misses}


def run_benchmark(cfg: DictConfig, run_dir: str | Path, task: str = "eval") -> Results | None:
    """The whole benchmark; returns the results on the scoring rank (None on other ranks)."""
    start = time.perf_counter()
    ctx = DistContext.init(cfg.get("device", "auto"))
    check_generation(cfg)
    apply_stage_overrides(cfg)
    bench = load_benchmark(cfg)
    plan, env = prepare_metrics(cfg, bench, ctx)
    t_gen = time.perf_counter()
    result, model = _images(cfg, bench, run_dir, ctx)
    t_gen = time.perf_counter() - t_gen
    if not scoring_rank(ctx, result):
        return None
    bench.after_generation(result)
    scored = score_run(
        plan,
        env,
        result.run_dir,
        result.records,
        bench.score_stages(result),
        group_by=bench.group_by,
        unit=str(cfg.get("ci_unit", "image")),
        level=float(cfg.get("level", 0.95)),
        category_order=bench.category_order(),
    )
    results = _results(
        cfg,
        bench,
        plan,
        scored,
        result,
        model,
        task,
        {"generate": t_gen, **scored.timings, "total": time.perf_counter() - start},
        str(ctx.device),
    )
    write_results(result.run_dir, results, scored.samples)
    print(scored.table.to_markdown())
    ctx.close()
    return results


def _results(
    cfg: DictConfig,
    bench: Benchmark,
    plan: MetricPlan,
    scored: ScoredRun,
    result: RunResult,
    model: Any,
    task: str,
    timings: dict[str, float],
    env_device: str = "cpu",
) -> Results:
    from imagen.devices import device_identity

    return Results(
        run_id=run_label(result.run_dir, cfg),
        task=task,
        suite=bench.name,
        benchmark={
            **bench.describe(),
            "name": bench.name,
            "stages": result.stages,
            "resolution": {r.stage: r.resolution for r in result.records},
        },
        table=scored.table.table,
        metrics=scored.table.values,
        metric_info=plan.describe(),
        skipped_metrics=plan.skipped,
        model={**_describe_model(model), "fingerprint": result.fingerprint},
        seeds=bench.seeds_info(),
        prompts=bench.prompts_info(),
        extractors={(m.config_key or m.name): m.identity() for m in plan.active},
        details={**scored.details, **{k: v for k, v in result.notes.items() if v is not None}},
        caches={
            **{k: v for m in plan.active for k, v in m.cache_info().items()},
            "text_embeddings": _text_cache(model),
        },
        timings=timings,
        config=resolved_config(cfg),
        environment={**environment(), "device": device_identity(env_device)},
    )
