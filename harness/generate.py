"""Generate images for a work list from a Hydra config: the Python entry behind ``sample``,
``drawbench`` and ``eval`` (call it from a notebook with a composed config)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict

from harness.errors import UserError
from harness.generators import CascadeGenerator, FolderGenerator, TextToImageModel
from harness.provenance import set_threads, write_resolved_config
from harness.runner import RunResult, WorkItem, run_generation
from imagen.distributed import DistContext


def checkpoint_identity(checkpoint: Any, stages: list[str]) -> dict[str, Any]:
    """Stage name → content hash of the weights (from each checkpoint's record)."""
    from imagen.build import stage_checkpoint_path
    from imagen.checkpoints import read_record

    if checkpoint is None:
        return {s: None for s in stages}
    return {s: read_record(stage_checkpoint_path(checkpoint, s, len(stages))).content_sha256 for s in stages}


def apply_guidance(cfg: DictConfig) -> None:
    """``guidance.base`` / ``guidance.sr`` (when set) override the first / the later stages' weights.

    Sweeps name these two keys instead of model-specific stage names
    (``imagen-bench eval -m guidance.base=1,1.25,1.5``); the resolved model config in the result
    shows the weights actually used.
    """
    g = cfg.get("guidance")
    if not g or (g.get("base") is None and g.get("sr") is None):
        return
    with open_dict(cfg):
        for i, (name, stage) in enumerate(cfg.model.stages.items()):
            value = g.get("base") if i == 0 else g.get("sr")
            if value is not None:
                stage.guidance = float(value)


def build_generator(cfg: DictConfig, ctx: DistContext) -> TextToImageModel:
    """Our cascade from ``cfg.checkpoint``, or a folder of images from elsewhere (``cfg.images_from``)."""
    if cfg.get("images_from"):
        return FolderGenerator(cfg.images_from)
    from imagen.build import load_cascade, plain
    from imagen.cascade import stages_until

    cascade = load_cascade(cfg, cfg.checkpoint, stop_at=cfg.get("stop_at"), device=ctx.device)
    stages = stages_until(cascade.stage_names(), cfg.get("stop_at"))
    identity = {
        "model": plain(cfg.model).get("name"),
        "checkpoint": None if cfg.checkpoint is None else str(cfg.checkpoint),
        "checkpoint_sha256": checkpoint_identity(cfg.checkpoint, stages),
        "text_encoder": cascade.text_encoder.identity,
        "sampler": plain(cfg.sampler),
    }
    return CascadeGenerator(cascade, stop_at=cfg.get("stop_at"), identity=identity)


def generate(cfg: DictConfig, work: list[WorkItem], run_dir: str | Path,
             model: TextToImageModel | None = None, ctx: DistContext | None = None) -> tuple[RunResult, TextToImageModel]:
    """Fill ``run_dir`` with the images of ``work`` (resuming), sharded over torchrun ranks."""
    ctx = ctx or DistContext.init(cfg.get("device", "cpu"))
    run_dir = Path(ctx.broadcast_object(str(run_dir)))
    set_threads(cfg.get("threads"))
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_resolved_config(run_dir, cfg)
    model = model or build_generator(cfg, ctx)
    result = run_generation(model, work, run_dir, batch_size=int(cfg.get("batch_size", 8)),
                            stages=list(cfg.save_stages) if cfg.get("save_stages") else None,
                            ctx=ctx, progress=bool(cfg.get("progress", True)) and ctx.is_main)
    return result, model


def scoring_rank(ctx: DistContext, result: RunResult) -> bool:
    """True on the rank that scores (rank 0, once every image exists); other ranks are released."""
    if not ctx.is_main:
        ctx.close()
        return False
    if not result.complete:
        raise UserError(f"generation in {result.run_dir} is incomplete; rerun with run_id={result.run_dir.name} to finish it")
    return True
