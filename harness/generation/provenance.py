"""What every run records about itself: resolved config, code, packages, machine settings."""

from __future__ import annotations

import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from harness.formats.files import atomic_write_bytes
from imagen.hashing import git_revision

PACKAGES = (
    "imagen-bench",
    "torch",
    "torchvision",
    "numpy",
    "scipy",
    "clean-fid",
    "torchmetrics",
    "open_clip_torch",
    "transformers",
    "safetensors",
    "hydra-core",
    "pillow",
    "rapidocr-onnxruntime",
)


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def environment() -> dict[str, Any]:
    return {
        "git": git_revision(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "packages": package_versions(),
    }


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def write_resolved_config(run_dir: str | Path, cfg: DictConfig) -> Path:
    """``config.yaml`` with every interpolation resolved (Hydra's .hydra/config.yaml keeps them)."""
    path = Path(run_dir) / "config.yaml"
    atomic_write_bytes(path, OmegaConf.to_yaml(cfg, resolve=True).encode("utf-8"))
    return path


def set_threads(threads: int | None) -> None:
    """Pin intra-op CPU threads: CPU results depend on the reduction order, which depends on this."""
    if threads:
        torch.set_num_threads(int(threads))


def run_label(run_dir: str | Path, cfg: DictConfig) -> str:
    """The run's id: its folder relative to the runs folder (``sweep/3`` for a sweep point)."""
    run_dir = Path(run_dir).resolve()
    try:
        return run_dir.relative_to(Path(cfg.paths.runs_dir).resolve()).as_posix()
    except ValueError:
        return run_dir.name
