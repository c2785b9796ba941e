"""``imagen-bench data world out=DIR [n_train=N] [n_test=N] [seed=S] [resolution=R]``: write the world.

Writes ``train/`` and ``test/`` (images, captions.csv, scenes.jsonl), the world prompt suite with
ground-truth images, and ``world.json`` (see :mod:`benchmarks.world.dataset`). Rerunning with the
same arguments rewrites nothing and says so. Prints one JSON line: where things are and how many.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from harness.cli.hydra_app import command, positional_to_overrides
from harness.errors import UserError

if TYPE_CHECKING:
    from benchmarks.world.dataset import WorldSettings

DATASETS = ("world",)


def translate_args(args: list[str]) -> list[str]:
    """``imagen-bench data world ...``: the first positional argument names the dataset."""
    out = positional_to_overrides(args, ("what",))
    for a in out:
        if a.startswith("what=") and a.split("=", 1)[1] not in DATASETS:
            raise UserError(f"unknown dataset {a.split('=', 1)[1]!r}; available: {', '.join(DATASETS)}")
    return out


def _int(cfg: DictConfig, key: str) -> int:
    value = cfg.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{key}={value!r} must be an integer")
    return value


def _rate(block: DictConfig, key: str) -> float:
    value = block.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"world.{key}={value!r} must be a number in [0, 1]")
    return float(value)


def settings_from_config(cfg: DictConfig) -> WorldSettings:
    """The validated :class:`~benchmarks.world.dataset.WorldSettings` of the command's config."""
    from benchmarks.world.dataset import WorldSettings

    mix = OmegaConf.to_container(cfg.world.mix, resolve=True) if cfg.world.get("mix") is not None else None
    if not isinstance(mix, dict):
        raise UserError("world.mix must map scene kinds to weights, e.g. world.mix={single: 1, text: 1}")
    for k, v in mix.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise UserError(f"world.mix.{k}={v!r} must be a number")
    return WorldSettings(
        seed=_int(cfg, "seed"),
        resolution=_int(cfg, "resolution"),
        mix={str(k): float(v) for k, v in mix.items()},
        rare_rate=_rate(cfg.world, "rare_rate"),
        misspell_rate=_rate(cfg.world, "misspell_rate"),
        size_rate=_rate(cfg.world, "size_rate"),
        prefix_rate=_rate(cfg.world, "prefix_rate"),
    ).validate()


def _progress(enabled: bool):
    if not enabled:
        return None
    return lambda label, total: tqdm(
        total=total, desc=label, unit="img", file=sys.stderr, dynamic_ncols=True, mininterval=1.0
    )


@command("data")
def main(cfg: DictConfig) -> dict[str, Any]:
    from benchmarks.world.dataset import write_world

    if cfg.what not in DATASETS:
        raise UserError(f"unknown dataset {cfg.what!r}; available: {', '.join(DATASETS)}")
    settings = settings_from_config(cfg)
    out = Path(str(cfg.out)).expanduser()
    world = write_world(
        out,
        settings,
        _int(cfg, "n_train"),
        _int(cfg, "n_test"),
        suite_gt=bool(cfg.suite_gt),
        overwrite=bool(cfg.overwrite),
        progress=_progress(bool(cfg.progress)),
    )
    summary = {
        "out": str(out),
        "up_to_date": world["up_to_date"],
        "train": str(out / "train"),
        "test": str(out / "test"),
        "suite": str(out / "suite.jsonl"),
        "counts": world["counts"],
        "seed": settings.seed,
        "resolution": settings.resolution,
        "generator_version": world["version"],
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
