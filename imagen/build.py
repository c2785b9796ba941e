"""Build cascades from Hydra configs: stages, text encoder, checkpoints, meta-device info."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from imagen.cascade import Cascade, SamplerConfig, Stage, StageSpec, build_unet, stages_until
from imagen.checkpoints import load_stage
from imagen.errors import UserError
from imagen.text import CachedTextEncoder, EmbeddingCache, FrozenTextEncoder, TextEncoderConfig
from imagen.text.encoders import DTYPES, text_encoder_parameter_count


def plain(cfg: Any) -> Any:
    """A resolved plain-Python copy of a config node (dicts/lists), or the value itself."""
    if isinstance(cfg, DictConfig) or OmegaConf.is_config(cfg):
        return OmegaConf.to_container(cfg, resolve=True)
    return cfg


def stage_specs(model_cfg: Mapping[str, Any]) -> list[StageSpec]:
    stages = plain(model_cfg).get("stages") if isinstance(plain(model_cfg), dict) else None
    if not stages:
        raise UserError("model config has no stages (model.stages is empty)")
    return [StageSpec.from_config(name, s) for name, s in stages.items()]


def build_stages(
    model_cfg: Mapping[str, Any], device: str | torch.device = "cpu", only: list[str] | None = None
) -> list[Stage]:
    stages = []
    for spec in stage_specs(model_cfg):
        if only is not None and spec.name not in only:
            continue
        stages.append(Stage(spec, build_unet(spec).to(device).eval()))
    return stages


def text_encoder_config(cfg: Mapping[str, Any]) -> TextEncoderConfig:
    return TextEncoderConfig.from_dict(plain(cfg))


def build_text_encoder(
    te_cfg: Mapping[str, Any],
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    device: str | torch.device = "cpu",
) -> CachedTextEncoder:
    cfg = text_encoder_config(te_cfg)
    encoder = FrozenTextEncoder(cfg, device=device)
    cache = EmbeddingCache(encoder.identity, cfg.max_length, DTYPES[cfg.dtype], cache_dir) if use_cache else None
    return CachedTextEncoder(encoder, cache)


def text_encoder_record(encoder: CachedTextEncoder | FrozenTextEncoder) -> dict[str, Any]:
    return {"identity": encoder.identity, "dim": encoder.dim, "max_length": encoder.max_length}


def stage_checkpoint_path(checkpoint: str | Path, stage: str, n_stages: int) -> Path:
    """``<dir>/<stage>.safetensors`` for a cascade folder; the file itself for a one-stage model."""
    path = Path(checkpoint)
    if path.is_dir():
        found = path / f"{stage}.safetensors"
        if not found.exists():
            raise UserError(
                f"checkpoint folder {path} has no weights for stage {stage!r} (expected {found}); "
                "pass stop_at=<an earlier stage> to sample only the stages you have"
            )
        return found
    if not path.exists():
        raise UserError(f"checkpoint not found: {path}")
    if n_stages > 1:
        raise UserError(
            f"checkpoint {path} is one file but {n_stages} stages are needed; "
            "give a folder with <stage>.safetensors per stage, or stop_at=<stage>"
        )
    return path


def load_cascade(
    cfg: DictConfig,
    checkpoint: str | Path | None,
    stop_at: str | None = None,
    device: str | torch.device = "cpu",
    text_encoder: CachedTextEncoder | None = None,
) -> Cascade:
    """Build the model from ``cfg.model``/``cfg.text_encoder``/``cfg.sampler`` and load its weights.

    ``checkpoint=None`` keeps random weights (only for tests and smoke runs).
    """
    specs = stage_specs(cfg.model)
    wanted = stages_until([s.name for s in specs], stop_at)
    stages = build_stages(cfg.model, device, only=wanted)
    encoder = text_encoder or build_text_encoder(cfg.text_encoder, cfg.paths.cache_dir, device=device)
    if checkpoint is not None:
        for stage in stages:
            path = stage_checkpoint_path(checkpoint, stage.name, len(stages))
            record = load_stage(path, stage.unet, stage=stage.name, unet=stage.spec.unet)
            trained_with = record.text_encoder.get("identity")
            if trained_with and trained_with != encoder.identity:
                raise UserError(
                    f"stage {stage.name!r} was trained with text encoder {trained_with}, "
                    f"but the config gives {encoder.identity}; set text_encoder=<the one it was trained with>"
                )
    return Cascade(stages, encoder, SamplerConfig.from_config(plain(cfg.sampler)), device)


def model_info(cfg: DictConfig) -> dict[str, Any]:
    """Stages with resolutions and parameter counts, built on the meta device (no memory, no weights)."""
    te = text_encoder_config(cfg.text_encoder)
    stages = []
    for spec in stage_specs(cfg.model):
        with torch.device("meta"):
            unet = build_unet(spec)
        stages.append(
            {
                "name": spec.name,
                "input_resolution": spec.lowres_resolution or spec.resolution,
                "output_resolution": spec.resolution,
                "unet": str(spec.unet.get("_target_", "")).rsplit(".", 1)[-1],
                "parameters": sum(p.numel() for p in unet.parameters()),
                "schedule": spec.schedule.get("name"),
                "prediction": spec.prediction,
                "guidance": spec.guidance,
                "thresholding": spec.thresholding,
            }
        )
    return {
        "model": plain(cfg.model).get("name"),
        "stages": stages,
        "text_encoder": {
            "name": te.name,
            "kind": te.kind,
            "dim": te.dim,
            "max_length": te.max_length,
            "parameters": text_encoder_parameter_count(te) if te.arch else None,
        },
        "total_parameters": sum(s["parameters"] for s in stages),
    }
