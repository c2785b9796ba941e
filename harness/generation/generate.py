"""Generate images for a work list from a Hydra config: the Python entry behind ``sample``,
``drawbench`` and ``eval`` (call it from a notebook with a composed config).

Before anything runs, every generation value is checked (:func:`check_generation`), and the run folder's
fingerprint is compared with this generator's (:mod:`harness.generation.fingerprint`): a resume never mixes images
made with other settings.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from harness.cli.console import accept_run_folder
from harness.errors import UserError
from harness.generation.fingerprint import check_or_record, fingerprint_fields
from harness.generation.generators import CascadeGenerator, FolderGenerator, TextToImageModel
from harness.generation.provenance import run_label, set_threads, write_resolved_config
from harness.generation.runner import RunResult, WorkItem, run_generation
from harness.registry import Registry
from imagen.distributed import DistContext
from imagen.samplers.thresholding import THRESHOLDING_MODES
from imagen.validation import finite_number, positive_int

RANDOM = "random"  # checkpoint=random: untrained weights, for smoke runs only


def resolve_checkpoint(cfg: DictConfig) -> str | None:
    """The checkpoint path, or None for ``checkpoint=random``; anything else unusable is one line."""
    hint = "pass checkpoint=<cascade folder or stage file>, or checkpoint=random for untrained weights (smoke runs)"
    if OmegaConf.is_missing(cfg, "checkpoint"):
        raise UserError(
            "checkpoint is required: pass checkpoint=<value> (a cascade folder or stage file, or "
            "checkpoint=random for untrained weights in smoke runs)"
        )
    value = cfg.checkpoint
    if value is None:
        raise UserError(f"checkpoint=null is ambiguous: {hint}")
    if not str(value).strip():
        raise UserError(f"checkpoint= is empty: {hint}")
    return None if str(value) == RANDOM else str(value)


def check_generation(cfg: DictConfig) -> None:
    """Every value that shapes generation, checked before any work (one line, exit 2, on the first bad one)."""
    from imagen.build import plain, stage_specs
    from imagen.cascade import SamplerConfig, check_precision
    from imagen.devices import resolve_device

    resolve_device(cfg.get("device", "auto"))  # a bad or absent device is one line before any work
    positive_int(cfg.get("batch_size", 1), "batch_size")
    if cfg.get("threads") is not None:
        positive_int(cfg.threads, "threads")
    for block in ("guidance", "thresholding", "aug_level", "steps"):
        node = cfg.get(block) or {}
        for key in ("base", "sr"):
            if node.get(key) is None:
                continue
            if block == "thresholding" and node.get(key) not in THRESHOLDING_MODES:
                raise UserError(
                    f"thresholding.{key} must be one of {', '.join(THRESHOLDING_MODES)}, got {node.get(key)!r}"
                )
            if block == "steps":
                positive_int(node.get(key), f"steps.{key}")
            elif block != "thresholding":
                finite_number(
                    node.get(key), f"{block}.{key}", minimum=0.0, maximum=1.0 if block == "aug_level" else None
                )
    if cfg.get("images_from"):
        return
    if generator_name(cfg) != "imagen":  # another system: its builder checks its own values
        name = generator_name(cfg)
        if name in GENERATOR_CHECKS:
            GENERATOR_CHECKS[name](cfg)
        return
    stage_specs(cfg.model)  # each stage's values (guidance, percentile, steps, ...)
    SamplerConfig.from_config(plain(cfg.sampler))
    check_precision(cfg.get("precision", "float32"))
    if not isinstance(cfg.get("channels_last", False), bool):
        raise UserError(f"channels_last must be true or false, got {cfg.get('channels_last')!r}")
    if not isinstance(cfg.get("deterministic", False), bool):
        raise UserError(f"deterministic must be true or false, got {cfg.get('deterministic')!r}")
    checkpoint = resolve_checkpoint(cfg)
    if checkpoint is not None and not Path(checkpoint).expanduser().exists():  # before any reference is read
        raise UserError(f"checkpoint not found: {checkpoint}")


def checkpoint_identity(checkpoint: str | None, stages: list[str]) -> dict[str, Any]:
    """Stage name → content hash of the weights (from each checkpoint's record); ``random`` for none."""
    from imagen.build import stage_checkpoint_path
    from imagen.checkpoints import read_record

    if checkpoint is None:
        return {s: RANDOM for s in stages}
    return {s: read_record(stage_checkpoint_path(checkpoint, s, len(stages))).content_sha256 for s in stages}


# (config block, stage field): the stage settings that guidance.* / thresholding.* / aug_level.* / steps.* override
STAGE_OVERRIDES = (
    ("guidance", "guidance"),
    ("thresholding", "thresholding"),
    ("aug_level", "aug_level"),
    ("steps", "steps"),
)
_CAST = {"thresholding": str, "steps": int}  # guidance and aug_level: float


def apply_stage_overrides(cfg: DictConfig) -> None:
    """``guidance.base``/``.sr``, ``thresholding.base``/``.sr``, ``steps.base``/``.sr`` and ``aug_level.sr`` (when
    set) override the first / the later stages' settings.

    Sweeps name these keys instead of model-specific stage names (``imagen-bench eval -m
    guidance.base=1,1.25,1.5``); the resolved model config in the result shows the settings actually used.
    """
    stages = list(cfg.model.stages.items())
    with open_dict(cfg):
        for block, field in STAGE_OVERRIDES:
            node = cfg.get(block) or {}
            for i, (_, stage) in enumerate(stages):
                value = node.get("base") if i == 0 else node.get("sr")
                if value is not None:
                    stage[field] = _CAST.get(block, float)(value)


# Generators by name (``generator=<name>``, conf/generator/<name>.yaml): "module:function(cfg, ctx)" builders.
GENERATORS: Registry[Callable[..., TextToImageModel]] = Registry(
    "generator",
    {
        "imagen": "harness.generation.generate:build_cascade_generator",
        "diffusers": "harness.generation.diffusers:build_diffusers_generator",
    },
    check=callable,
    expected="a builder function (cfg, ctx) -> TextToImageModel",
)
# Checks of a generator's values that run before any work (check_generation), by generator name.
GENERATOR_CHECKS: Registry[Callable[[DictConfig], None]] = Registry(
    "generator check", {"diffusers": "harness.generation.diffusers:check_diffusers_config"}, check=callable
)


def generator_name(cfg: DictConfig) -> str:
    """``cfg.generator.name`` (default ``imagen``: our cascade)."""
    node = cfg.get("generator")
    return str(node.get("name") or "imagen") if node is not None else "imagen"


def build_generator(cfg: DictConfig, ctx: DistContext) -> TextToImageModel:
    """A folder of images from elsewhere (``cfg.images_from``), else the generator named by
    ``cfg.generator.name``: our cascade (``imagen``, the default) or a diffusers pipeline."""
    if cfg.get("images_from"):
        return FolderGenerator(cfg.images_from)
    name = generator_name(cfg)
    return GENERATORS[name](cfg, ctx)


def build_cascade_generator(cfg: DictConfig, ctx: DistContext) -> CascadeGenerator:
    """Our cascade from ``cfg.checkpoint`` (``checkpoint=random``: untrained weights, loudly recorded)."""
    from imagen.build import load_cascade, plain
    from imagen.cascade import check_precision, cpu_has_native_bf16, stages_until
    from imagen.devices import device_kind, set_deterministic

    checkpoint = resolve_checkpoint(cfg)
    deterministic = bool(cfg.get("deterministic", False))
    set_deterministic(deterministic)
    cascade = load_cascade(cfg, checkpoint, stop_at=cfg.get("stop_at"), device=ctx.device)
    cascade.precision = check_precision(cfg.get("precision", "float32"))  # bf16: U-Nets under autocast
    cascade.channels_last = bool(cfg.get("channels_last", False))  # NHWC inputs: oneDNN's fast layout on CPUs
    stages = stages_until(cascade.stage_names(), cfg.get("stop_at"))
    sampler = plain(cfg.sampler)
    identity = {
        "model": plain(cfg.model).get("name"),
        "checkpoint": RANDOM if checkpoint is None else checkpoint,
        "checkpoint_sha256": checkpoint_identity(checkpoint, stages),
        "stage_specs": {s.name: {**s.spec.as_record(), "unet": s.spec.unet} for s in cascade.stages},
        "text_encoder": cascade.text_encoder.identity,
        "sampler": sampler,
        "precision": cascade.precision,  # bf16 images differ from float32 ones by rounding: never mixed
        "memory_format": "channels_last" if cascade.channels_last else "contiguous",  # ... and so may NHWC
        # with microbatch=1 an image is batch-independent; otherwise it depends on the fixed groups
        "grouping": "per-sample" if sampler.get("microbatch") == 1 else f"groups of {int(cfg.get('batch_size', 8))}",
        "device": device_kind(ctx.device),  # CPU and GPU kernels round differently: a folder holds one kind
        "deterministic": deterministic,
    }
    if cascade.precision == "bf16" and ctx.device.type == "cpu" and not cpu_has_native_bf16():
        # the images are still valid bf16 images, but oneDNN emulates bf16 here: tell the user before the wait
        print(
            "imagen-bench: warning: precision=bf16 on a CPU without native bf16 (AVX-512 BF16 / AMX): oneDNN "
            "emulates it, several times slower than float32; use precision=float32 here",
            file=sys.stderr,
        )
    if checkpoint is None:
        identity["warning"] = "UNTRAINED RANDOM WEIGHTS (checkpoint=random): for smoke runs only"
        print(f"imagen-bench: warning: {identity['warning']}", file=sys.stderr)
    return CascadeGenerator(cascade, stop_at=cfg.get("stop_at"), identity=identity)


def truncation_report(model: TextToImageModel, work: list[WorkItem]) -> dict[str, Any] | None:
    """Prompts the text encoder cuts to its ``max_length`` tokens (they are encoded on their start only)."""
    encoder = getattr(getattr(model, "cascade", None), "text_encoder", None)
    if encoder is None or not hasattr(encoder, "token_counts"):
        return None
    prompts = {w.prompt_id: w.prompt for w in work}
    counts = encoder.token_counts(list(prompts.values()))
    if counts is None:
        return None
    cut = {pid: n for pid, n in zip(prompts, counts) if n > encoder.max_length}
    if cut:
        print(
            f"imagen-bench: warning: {len(cut)} of {len(prompts)} prompts exceed the text encoder's "
            f"{encoder.max_length} tokens and are encoded on their first {encoder.max_length} only "
            f"(e.g. {next(iter(cut))}: {next(iter(cut.values()))} tokens)",
            file=sys.stderr,
        )
    return {
        "max_length": encoder.max_length,
        "prompts": len(prompts),
        "truncated": len(cut),
        "truncated_prompts": {pid: {"tokens": n} for pid, n in cut.items()},
    }


def generate(
    cfg: DictConfig,
    work: list[WorkItem],
    run_dir: str | Path,
    model: TextToImageModel | None = None,
    ctx: DistContext | None = None,
) -> tuple[RunResult, TextToImageModel]:
    """Fill ``run_dir`` with the images of ``work`` (resuming), sharded over torchrun ranks."""
    ctx = ctx or DistContext.init(cfg.get("device", "auto"))
    check_generation(cfg)
    apply_stage_overrides(cfg)
    run_dir = Path(ctx.broadcast_object(str(run_dir)))
    set_threads(cfg.get("threads"))
    model = model or build_generator(cfg, ctx)
    fields = fingerprint_fields(model.describe())
    fresh = not (run_dir / "config.yaml").exists()
    fingerprint = check_or_record(
        run_dir,
        fields,
        write=ctx.is_main,  # refuses before anything is written
        label=run_label(run_dir, cfg),
    )
    accept_run_folder()  # this folder is this run's: its log may now be written
    if ctx.is_main and fresh:
        write_resolved_config(run_dir, cfg)  # the settings the folder's images are made with
    result = run_generation(
        model,
        work,
        run_dir,
        batch_size=int(cfg.get("batch_size", 8)),
        stages=list(cfg.save_stages) if cfg.get("save_stages") else None,
        ctx=ctx,
        progress=bool(cfg.get("progress", True)) and ctx.is_main,
        fingerprint=fingerprint,
    )
    result.notes["text_encoder"] = truncation_report(model, work) if ctx.is_main else None
    return result, model


def scoring_rank(ctx: DistContext, result: RunResult) -> bool:
    """True on the rank that scores (rank 0, once every image exists); other ranks are released."""
    if not ctx.is_main:
        ctx.close()
        return False
    if not result.complete:
        raise UserError(
            f"generation in {result.run_dir} is incomplete; rerun with run_id={result.run_dir.name} to finish it"
        )
    return True
