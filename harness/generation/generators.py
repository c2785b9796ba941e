"""The generator contract and its adapters.

A text-to-image system is anything with ``generate(prompts, seeds) -> {stage: images}``
(uint8 tensors, (B, 3, H, W)); ``stages`` lists its outputs from lowest to highest
resolution, and ``describe()`` says what it is for result files. Adapters:

* :class:`CascadeGenerator` — our Imagen cascade from a checkpoint, stopping at any stage
  (COCO is evaluated at 256×256 as the paper does);
* :class:`FolderGenerator` — images produced elsewhere (closed models), looked up by
  (prompt, seed) in a run folder's manifest or a folder with an ``index.csv``;
* :class:`ShapesGenerator` — a procedural, weight-free model for tests and smoke runs.
"""

from __future__ import annotations

import csv
import hashlib
import random
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image

from harness.errors import UserError
from harness.formats.files import open_rgb
from harness.formats.manifest import read_manifest


class TextToImageModel(Protocol):
    name: str
    stages: list[str]

    def generate(self, prompts: list[str], seeds: list[int]) -> dict[str, torch.Tensor]:
        """uint8 images per stage for each (prompt, seed) pair; a function of the pair alone."""
        ...

    def describe(self) -> dict[str, Any]:
        """Identity for result files (model, checkpoint hashes, sampler, ...)."""
        ...


class CascadeGenerator:
    """Our Imagen cascade; ``stop_at`` ends the cascade early (e.g. at 256 for COCO FID)."""

    def __init__(self, cascade: Any, stop_at: str | None = None, identity: dict[str, Any] | None = None) -> None:
        from imagen.cascade import stages_until, to_uint8  # lazy: this module's contract is torch-light

        self.cascade, self.stop_at, self._to_uint8 = cascade, stop_at, to_uint8
        self.stages = stages_until(cascade.stage_names(), stop_at)
        self.name = (identity or {}).get("model", "imagen")
        self._identity = identity or {}

    def generate(self, prompts: list[str], seeds: list[int]) -> dict[str, torch.Tensor]:
        out = self.cascade.sample(list(prompts), list(seeds), stop_at=self.stop_at)
        return {k: self._to_uint8(v).cpu() for k, v in out.items()}

    def describe(self) -> dict[str, Any]:
        return {"kind": "imagen-cascade", "stages": self.stages, **self._identity}


def _load_uint8(path: Path) -> torch.Tensor:
    arr = np.asarray(open_rgb(path))
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


class FolderGenerator:
    """Images produced elsewhere, looked up by (prompt, seed).

    ``folder`` is a run folder with a ``manifest.jsonl`` (ours, or an external run imported by
    ``drawbench``), or any folder with ``index.csv`` (columns ``prompt,seed,file``). A missing
    (prompt, seed) is an error naming it.
    """

    def __init__(self, folder: str | Path, stage: str = "external", name: str | None = None) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise UserError(f"image folder not found: {self.folder}")
        self.lookup = self._index()
        self.stages, self.name = [stage], name or self.folder.name

    def _index(self) -> dict[tuple[str, int], Path]:
        records = read_manifest(self.folder)
        if records:
            final = max(records, key=lambda r: r.resolution).stage
            return {(r.prompt, r.seed): self.folder / r.path for r in records if r.stage == final}
        index = self.folder / "index.csv"
        if not index.exists():
            raise UserError(f"{self.folder} has neither manifest.jsonl nor index.csv (columns prompt,seed,file)")
        with open(index, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        try:
            return {(r["prompt"], int(r["seed"])): self.folder / r["file"] for r in rows}
        except (KeyError, ValueError) as err:
            raise UserError(f"{index}: rows need prompt, seed (integer) and file ({err})") from None

    def generate(self, prompts: list[str], seeds: list[int]) -> dict[str, torch.Tensor]:
        images = []
        for p, s in zip(prompts, seeds):
            path = self.lookup.get((p, s))
            if path is None:
                raise UserError(f"{self.folder} has no image for prompt {p!r} with seed {s}")
            images.append(_load_uint8(path))
        sizes = {tuple(i.shape) for i in images}
        if len(sizes) > 1:
            raise UserError(f"{self.folder}: images differ in size ({sorted(sizes)}); resize them to one size first")
        return {self.stages[0]: torch.stack(images)}

    def describe(self) -> dict[str, Any]:
        """The folder and a digest of its index (which file stands for which (prompt, seed) and its bytes)."""
        return {
            "kind": "folder",
            "model": self.name,
            "folder": str(self.folder.resolve()),
            "stages": self.stages,
            "index_sha256": self._index_digest(),
        }

    def _index_digest(self) -> str:
        from imagen.hashing import file_sha256_cached  # memoised by (path, size, mtime)

        h = hashlib.sha256()
        for (prompt, seed), path in sorted(self.lookup.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            h.update(f"{prompt}\0{seed}\0{file_sha256_cached(path)}\n".encode())
        return h.hexdigest()


class ShapesGenerator:
    """A weight-free stand-in model: a coloured shape whose colour comes from the prompt's words.

    Deterministic in (prompt, seed) and fast, so runner, sharding and metric tests can run
    thousands of images without a network; ``resolutions`` mimics a cascade's stages.
    """

    def __init__(self, resolutions: tuple[int, ...] = (16, 32), name: str = "shapes") -> None:
        self.resolutions = resolutions
        self.stages = [f"s{r}" for r in resolutions]
        self.name = name

    def generate(self, prompts: list[str], seeds: list[int]) -> dict[str, torch.Tensor]:
        from imagen.training.synthetic import COLORS, SHAPES, draw_shape

        out: dict[str, list[torch.Tensor]] = {s: [] for s in self.stages}
        for p, seed in zip(prompts, seeds):
            words = p.lower().split()
            color = next((c for c in COLORS if c in words), "green")
            shape = next((s for s in SHAPES if s in words), "square")
            key = int.from_bytes(hashlib.sha256(f"{p}|{seed}".encode()).digest()[:8], "little")
            big = draw_shape(color, shape, self.resolutions[-1], random.Random(key))
            for stage, res in zip(self.stages, self.resolutions):
                im = big.resize((res, res), Image.BICUBIC) if res != self.resolutions[-1] else big
                out[stage].append(torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1))
        return {k: torch.stack(v) for k, v in out.items()}

    def describe(self) -> dict[str, Any]:
        return {"kind": "shapes", "model": self.name, "stages": self.stages}
