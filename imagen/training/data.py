"""Image–caption training sets: a folder of images plus ``captions.csv`` or ``captions.jsonl``.

CSV columns ``file,caption``; JSONL objects ``{"file": ..., "caption": ...}``; ``file`` is a
path relative to the folder. Every row is checked when the set is opened: a missing column,
an empty caption, a missing or unreadable image is one clear error naming the row.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from imagen.errors import UserError
from imagen.files import image_size, open_rgb

CAPTION_FILES = ("captions.csv", "captions.jsonl")


@dataclass(frozen=True)
class Example:
    path: Path
    caption: str


def _read_rows(captions: Path) -> list[dict[str, str]]:
    if captions.suffix == ".csv":
        with open(captions, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or not {"file", "caption"} <= set(reader.fieldnames):
                raise UserError(
                    f"{captions}: the header must have columns 'file' and 'caption', got {reader.fieldnames}"
                )
            return list(reader)
    rows = []
    for n, line in enumerate(captions.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            raise UserError(f"{captions}: line {n} is not valid JSON") from None
        if not isinstance(obj, dict):
            raise UserError(f"{captions}: line {n} is not a JSON object")
        rows.append(obj)
    return rows


def find_captions(root: Path, captions: str | None) -> Path:
    if captions:
        path = Path(captions) if Path(captions).is_absolute() else root / captions
        if not path.exists():
            raise UserError(f"captions file not found: {path}")
        return path
    for name in CAPTION_FILES:
        if (root / name).exists():
            return root / name
    raise UserError(f"{root} has no captions file (expected one of {', '.join(CAPTION_FILES)})")


def read_examples(root: str | Path, captions: str | None = None) -> list[Example]:
    """All (image, caption) rows, validated; images are opened to check they decode."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"training data folder not found: {root}")
    cap_path = find_captions(root, captions)
    examples = []
    for n, row in enumerate(_read_rows(cap_path), start=1):
        file, caption = (row.get("file") or "").strip(), row.get("caption")
        if not file or not isinstance(caption, str) or not caption.strip():
            raise UserError(f"{cap_path}: row {n} needs a non-empty 'file' and 'caption'")
        path = root / file
        if not path.is_file():
            raise UserError(f"{cap_path}: row {n} names {file!r}, which does not exist under {root}")
        image_size(path, label=f"{cap_path}: row {n}: {file!r}")
        examples.append(Example(path, caption))
    if not examples:
        raise UserError(f"{cap_path} lists no examples")
    return examples


def load_image(path: Path, resolution: int) -> torch.Tensor:
    """Resize the shorter side to ``resolution`` (bicubic, antialiased), centre-crop, scale to [-1, 1]."""
    im = open_rgb(path, label=f"training image {path}")
    w, h = im.size
    scale = resolution / min(w, h)
    im = im.resize((max(resolution, round(w * scale)), max(resolution, round(h * scale))), Image.Resampling.BICUBIC)
    w, h = im.size
    left, top = (w - resolution) // 2, (h - resolution) // 2
    arr = np.asarray(im.crop((left, top, left + resolution, top + resolution)), dtype=np.float32)
    return torch.from_numpy(arr).permute(2, 0, 1) / 127.5 - 1.0


def downsample(images: torch.Tensor, size: int) -> torch.Tensor:
    """Antialiased bicubic downsampling: how the low-res condition of an SR stage is made."""
    return F.interpolate(images, size=(size, size), mode="bicubic", antialias=True, align_corners=False).clamp(-1, 1)


class ImageCaptionSet:
    """Examples with images decoded lazily at one resolution (memoised: tiny sets fit in memory)."""

    def __init__(
        self, root: str | Path, resolution: int, captions: str | None = None, cache_images: bool = True
    ) -> None:
        self.examples = read_examples(root, captions)
        self.resolution, self.cache_images = resolution, cache_images
        self._images: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def captions(self) -> list[str]:
        return [e.caption for e in self.examples]

    def image(self, i: int) -> torch.Tensor:
        if i in self._images:
            return self._images[i]
        img = load_image(self.examples[i].path, self.resolution)
        if self.cache_images:
            self._images[i] = img
        return img

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, list[str]]:
        return torch.stack([self.image(i) for i in indices]), [self.examples[i].caption for i in indices]


def epoch_permutation(n: int, seed: int, epoch: int) -> list[int]:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


def batch_indices(n: int, seed: int, step: int, batch_size: int) -> list[int]:
    """The global batch of a step: a pure function of (seed, step), so resuming needs no loader state.

    Indices are the ``batch_size`` items at positions [step·B, (step+1)·B) of the stream formed by
    concatenating one seeded permutation per epoch.
    """
    out: list[int] = []
    pos = step * batch_size
    while len(out) < batch_size:
        epoch, offset = divmod(pos, n)
        perm = epoch_permutation(n, seed, epoch)
        take = min(batch_size - len(out), n - offset)
        out.extend(perm[offset : offset + take])
        pos += take
    return out
