"""Procedurally drawn "real-ish" photos for tests and benchmarks (no datasets are available offline).

Each image mixes a smooth colour gradient, a few filled shapes, a sinusoidal texture and sensor-
like noise, so Inception features vary across images the way they do on photos (pure noise
images all land near one point of feature space). Sizes and formats vary on purpose: FID code
must cope with mixed sizes and with both PNG and JPEG decoding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def draw_image(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """One RGB image of ``width`` × ``height`` drawn from ``rng``."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, np.pi)
    t = (np.cos(angle) * xx / width + np.sin(angle) * yy / height).clip(0, 1)[..., None]
    base = c0 * (1 - t) + c1 * t
    freq = rng.uniform(0.05, 0.5)
    texture = 40 * np.sin(freq * xx + rng.uniform(0, 6)) * np.cos(freq * 0.7 * yy)
    img = Image.fromarray((base + texture[..., None]).clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(1, 6))):
        box = sorted(rng.uniform(0, width, 2)), sorted(rng.uniform(0, height, 2))
        xy = [box[0][0], box[1][0], box[0][1] + 2, box[1][1] + 2]
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(xy, fill=fill)
    noisy = np.asarray(img, np.float32) + rng.normal(0, rng.uniform(2, 20), (height, width, 3))
    return Image.fromarray(noisy.clip(0, 255).astype(np.uint8))


def write_images(
    folder: str | Path,
    count: int,
    seed: int = 0,
    sizes: tuple[int, int] = (48, 160),
    formats: tuple[str, ...] = ("png", "jpg"),
    square: bool = False,
) -> list[Path]:
    """Write ``count`` images (sides drawn from ``sizes``, formats cycled) and return their paths."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        w = int(rng.integers(sizes[0], sizes[1] + 1))
        h = w if square else int(rng.integers(sizes[0], sizes[1] + 1))
        ext = formats[i % len(formats)]
        path = out / f"img_{i:04d}.{ext}"
        options = {"quality": 90} if ext in ("jpg", "jpeg") else {}
        draw_image(rng, w, h).save(path, **options)
        paths.append(path)
    return paths
