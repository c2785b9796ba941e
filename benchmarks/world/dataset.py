"""Write the world to disk: ``train/`` and ``test/`` splits, the prompt suite, and ``world.json``.

Layout (what ``imagen-bench train data.root=<out>/train`` and ``eval`` already read)::

    <out>/world.json                 seed, settings, counts per category, generator version, hashes
    <out>/train/images/000000.png    128×128 RGB (``resolution``)
    <out>/train/captions.csv         file,caption
    <out>/train/scenes.jsonl         one row per image: id, file, sha256, caption, category, kind,
                                     style, spec (what the caption asks) and scene (what is drawn)
    <out>/test/...                   the same, held out (FID reference, parser and CLIP tests)
    <out>/suite.jsonl                the world prompt suite (the shipped file for the default seed)
    <out>/suite_gt/<prompt_id>/<seed>.png   ground-truth images of the suite (``images_from=`` layout)

Image ``i`` of a split is a pure function of (seed, split, i), so growing ``n_train`` keeps the
first images, and rerunning with the same settings rewrites nothing (files whose bytes already
match are left alone; ``world.json`` is written last, so its presence means a complete world).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.world.grammar import caption_scene
from benchmarks.world.render import font_info, render_scene, sign_bbox
from benchmarks.world.scenes import (
    COLORS,
    GENERATOR_VERSION,
    KINDS,
    PALETTE,
    SHAPES,
    SIZES,
    WORDS,
    category_of,
    sample_scene,
)
from benchmarks.world.suite import SUITE_SEED, build_suite, ground_truth_image, suite_bytes
from harness.errors import UserError
from harness.formats.files import atomic_write_bytes, sha256_bytes, sha256_file

SPLITS = {"train": 0, "test": 1}
DEFAULT_MIX = {"single": 0.2, "colors": 0.2, "counting": 0.2, "positional": 0.2, "text": 0.1, "multi": 0.1}
OWN_ENTRIES = {"world.json", "train", "test", "suite.jsonl", "suite_gt"}
Progress = Callable[[str, int], Any]  # (label, total) -> an iterator wrapper with update(); see command.py


@dataclass(frozen=True)
class WorldSettings:
    """Everything that decides what a seed produces (recorded in world.json)."""

    seed: int = 0
    resolution: int = 128
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    rare_rate: float = 0.05  # captions in rare synonyms: rare in training, as rare words are on the web
    misspell_rate: float = 0.05
    size_rate: float = 0.5  # per object phrase, in single/colors/positional captions
    prefix_rate: float = 0.3  # "a drawing of ..." / "a sign with the word ..."

    def validate(self) -> WorldSettings:
        if not 8 <= self.resolution <= 1024:
            raise UserError(f"resolution={self.resolution} must be between 8 and 1024 pixels")
        unknown = sorted(set(self.mix) - set(KINDS))
        if unknown:
            raise UserError(f"world.mix has unknown scene kind(s) {unknown}; kinds are {', '.join(KINDS)}")
        if any(float(w) < 0 for w in self.mix.values()) or sum(float(w) for w in self.mix.values()) <= 0:
            raise UserError(f"world.mix weights must be non-negative and not all zero, got {dict(self.mix)}")
        for name in ("rare_rate", "misspell_rate", "size_rate", "prefix_rate"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise UserError(f"world.{name}={getattr(self, name)} must be a rate in [0, 1]")
        if self.rare_rate + self.misspell_rate > 1.0:
            raise UserError("world.rare_rate + world.misspell_rate must not exceed 1")
        return self


def sample_item(settings: WorldSettings, split: str, i: int) -> dict[str, Any]:
    """Image ``i`` of ``split``: its kind, caption style, scene, caption and spec."""
    rng = np.random.default_rng([settings.seed, SPLITS[split], i])
    kinds = [k for k in KINDS if settings.mix.get(k, 0) > 0]
    weights = np.array([float(settings.mix[k]) for k in kinds])
    kind = kinds[int(np.searchsorted(np.cumsum(weights / weights.sum()), rng.random(), side="right"))]
    r = rng.random()
    style = "plain"
    if kind != "text":  # a quoted word has no synonym or typo to test
        style = (
            "rare"
            if r < settings.rare_rate
            else "misspelled"
            if r < settings.rare_rate + settings.misspell_rate
            else "plain"
        )
    scene = sample_scene(rng, kind)
    caption, spec = caption_scene(scene, kind, rng, style, settings.size_rate, settings.prefix_rate)
    return {
        "id": f"{split}-{i:06d}",
        "file": f"images/{i:06d}.png",
        "caption": caption,
        "category": category_of(kind, style),
        "kind": kind,
        "style": style,
        "spec": spec.to_json(),
        "scene": scene,
    }


def png_bytes(image: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")  # zlib level 6, no timestamps: the same pixels give the same bytes
    return buf.getvalue()


def _write_if_changed(path: Path, data: bytes) -> bool:
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)
    return True


def _scene_json(item: dict[str, Any], resolution: int) -> dict[str, Any]:
    scene = item["scene"].to_json()
    if item["scene"].sign is not None:
        scene["sign"]["bbox"] = sign_bbox(item["scene"].sign, resolution)
    return scene


def write_split(
    root: Path, settings: WorldSettings, split: str, n: int, progress: Progress | None = None
) -> dict[str, Any]:
    """Write ``n`` images of ``split`` with captions.csv and scenes.jsonl; returns counts and hashes."""
    folder = root / split
    rows, written = [], 0
    bar = progress(f"world {split}", n) if progress else None
    for i in range(n):
        item = sample_item(settings, split, i)
        data = png_bytes(render_scene(item["scene"], settings.resolution))
        written += _write_if_changed(folder / item["file"], data)
        rows.append(
            {
                **{k: item[k] for k in ("id", "file")},
                "sha256": sha256_bytes(data),
                **{k: item[k] for k in ("caption", "category", "kind", "style", "spec")},
                "scene": _scene_json(item, settings.resolution),
            }
        )
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    _remove_stale_images(folder, {r["file"] for r in rows})
    captions = io.StringIO(newline="")
    w = csv.DictWriter(captions, ["file", "caption"], lineterminator="\n")
    w.writeheader()
    w.writerows({"file": r["file"], "caption": r["caption"]} for r in rows)
    scenes = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
    _write_if_changed(folder / "captions.csv", captions.getvalue().encode("utf-8"))
    _write_if_changed(folder / "scenes.jsonl", scenes.encode("utf-8"))
    return {
        "count": n,
        "images_written": written,
        "categories": dict(sorted(Counter(r["category"] for r in rows).items())),
        "sha256": {
            "captions.csv": sha256_file(folder / "captions.csv"),
            "scenes.jsonl": sha256_file(folder / "scenes.jsonl"),
        },
    }


def _remove_stale_images(folder: Path, keep: set[str]) -> None:
    """Images of an earlier, larger world in this folder (only our own file names are touched)."""
    images = folder / "images"
    if images.is_dir():
        for p in images.glob("[0-9][0-9][0-9][0-9][0-9][0-9].png"):
            if f"images/{p.name}" not in keep:
                p.unlink()


def write_suite(root: Path, resolution: int, with_images: bool, progress: Progress | None = None) -> dict[str, Any]:
    """``suite.jsonl`` and, if asked, ground-truth images of every prompt and seed (8 each)."""
    rows = build_suite(SUITE_SEED)
    data = suite_bytes(rows)
    _write_if_changed(root / "suite.jsonl", data)
    out = {"file": "suite.jsonl", "sha256": sha256_bytes(data), "prompts": len(rows), "seed": SUITE_SEED}
    if with_images:
        bar = progress("world suite ground truth", len(rows) * 8) if progress else None
        for row in rows:
            for seed in range(8):
                _write_if_changed(
                    root / "suite_gt" / row["id"] / f"{seed}.png", png_bytes(ground_truth_image(row, seed, resolution))
                )
                if bar is not None:
                    bar.update(1)
        if bar is not None:
            bar.close()
        out["ground_truth"] = "suite_gt"
    return out


def world_manifest(settings: WorldSettings, counts: dict[str, int]) -> dict[str, Any]:
    """The part of world.json that decides whether an existing world is this one: what the bytes
    depend on (settings, generator version, Pillow and numpy), not which imagen-bench wrote them."""
    return {
        "generator": "imagen-bench world",
        "version": GENERATOR_VERSION,
        "settings": asdict(settings),
        "counts": counts,
        "environment": {**font_info(), "numpy": np.__version__},
    }


def _version() -> str:
    try:
        return metadata.version("imagen-bench")
    except metadata.PackageNotFoundError:
        return "unknown"


def _check_target(root: Path, manifest: dict[str, Any], overwrite: bool) -> dict[str, Any] | None:
    """The existing world.json if ``root`` already holds this world; refuse to mix worlds."""
    if not root.exists():
        return None
    if not root.is_dir():
        raise UserError(f"out={root} exists and is not a folder")
    foreign = sorted(p.name for p in root.iterdir() if p.name not in OWN_ENTRIES)
    if foreign and not overwrite:
        raise UserError(f"out={root} holds other files ({', '.join(foreign[:3])}...); choose an empty or new folder")
    path = root / "world.json"
    if not path.is_file():
        return None
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        old = {}
    differ = _differences(old, manifest)
    if differ and not overwrite:
        raise UserError(
            f"out={root} holds a world made differently ({'; '.join(differ[:3])}); "
            "pass overwrite=true to replace it, or choose another out="
        )
    return None if differ else old


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``"seed: 0 → 1"``-style lines for what differs between two world manifests."""
    out = []
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            out += [f"{k}: {before.get(k)} → {v}" for k, v in value.items() if before.get(k) != v]
            out += [f"{k}: {before[k]} → (none)" for k in before if k not in value]
        elif before != value:
            out.append(f"{key}: {before} → {value}")
    return out


def is_complete(root: Path, old: dict[str, Any]) -> bool:
    """Whether every file the recorded world lists is present with its recorded hash."""
    suite = root / "suite.jsonl"
    if not suite.is_file() or sha256_file(suite) != old.get("suite", {}).get("sha256"):
        return False
    if old.get("suite_ground_truth"):
        ids = [json.loads(line)["id"] for line in suite.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not all((root / "suite_gt" / i / f"{s}.png").is_file() for i in ids for s in range(8)):
            return False
    for split in SPLITS:
        scenes = root / split / "scenes.jsonl"
        if not scenes.is_file() or sha256_file(scenes) != old.get("splits", {}).get(split, {}).get("sha256", {}).get(
            "scenes.jsonl"
        ):
            return False
        for line in scenes.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            p = root / split / row["file"]
            if not p.is_file() or sha256_file(p) != row["sha256"]:
                return False
    return True


def write_world(
    root: str | Path,
    settings: WorldSettings,
    n_train: int,
    n_test: int,
    suite_gt: bool = True,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write (or confirm) the world; returns world.json's content plus ``up_to_date``."""
    root = Path(root)
    settings.validate()
    if n_train < 0:  # 0: only the held-out split (e.g. an FID reference, as the demo writes)
        raise UserError(f"n_train={n_train} must be 0 or a positive number of images")
    if n_test < 1:
        raise UserError(f"n_test={n_test} must be a positive number of images")
    manifest = world_manifest(settings, {"train": n_train, "test": n_test})
    manifest["suite_ground_truth"] = bool(suite_gt)
    old = _check_target(root, manifest, overwrite)
    if old is not None and is_complete(root, old):
        return {**old, "up_to_date": True}
    root.mkdir(parents=True, exist_ok=True)
    splits = {
        split: write_split(root, settings, split, n, progress) for split, n in (("train", n_train), ("test", n_test))
    }
    suite = write_suite(root, settings.resolution, suite_gt, progress)
    world = {
        **manifest,
        "written_by": f"imagen-bench {_version()}",
        "splits": splits,
        "suite": suite,
        "vocabulary": {
            "colors": {c: list(PALETTE[c]) for c in COLORS},
            "shapes": list(SHAPES),
            "sizes": dict(SIZES),
            "words": list(WORDS),
        },
    }
    atomic_write_bytes(root / "world.json", (json.dumps(world, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    return {**world, "up_to_date": False}
