"""Procedural image–caption sets: coloured shapes on a plain background.

Captions name a colour and a shape ("a red square", "a blue circle"); positions and sizes
vary per image. The images are simple enough for a tiny U-Net to learn on a CPU in minutes,
and a caption's colour can be checked from pixel statistics, which makes text conditioning
and guidance measurable without any pretrained judge.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

from PIL import Image, ImageDraw

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "blue": (30, 60, 220),
    "green": (30, 170, 60),
    "yellow": (235, 205, 40),
}
SHAPES = ("square", "circle", "triangle")


def draw_shape(color: str, shape: str, size: int, rng: random.Random, background: int = 235) -> Image.Image:
    im = Image.new("RGB", (size, size), (background,) * 3)
    d = ImageDraw.Draw(im)
    half = rng.uniform(0.22, 0.36) * size
    cx, cy = rng.uniform(half, size - half), rng.uniform(half, size - half)
    box = [cx - half, cy - half, cx + half, cy + half]
    fill = COLORS[color]
    if shape == "square":
        d.rectangle(box, fill=fill)
    elif shape == "circle":
        d.ellipse(box, fill=fill)
    elif shape == "triangle":
        d.polygon([(cx, cy - half), (cx - half, cy + half), (cx + half, cy + half)], fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return im


def make_shapes_dataset(
    root: str | Path, pairs: list[tuple[str, str]], per_pair: int, size: int, seed: int = 0
) -> Path:
    """Write ``per_pair`` images per (colour, shape) and ``captions.csv``; returns the folder."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    rows = []
    for color, shape in pairs:
        for i in range(per_pair):
            name = f"images/{color}_{shape}_{i:04d}.png"
            draw_shape(color, shape, size, rng).save(root / name)
            rows.append({"file": name, "caption": f"a {color} {shape}"})
    with open(root / "captions.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, ["file", "caption"])
        w.writeheader()
        w.writerows(rows)
    return root
