"""Draw a world scene with Pillow, deterministically, at any resolution.

Shapes are drawn without antialiasing at ``SUPERSAMPLE``× the target side and box-averaged down
(``Image.reduce``): exact area coverage at the edges, the same scene at 32², 64² and 128², and
byte-identical PNGs for a given Pillow (its version is recorded in ``world.json``).

Signs use Pillow's bundled font (``ImageFont.load_default(size=...)``, Aileron Regular, shipped
inside Pillow since 10.1) so that a fresh machine with no system fonts renders the same letters.
The word is drawn with a stroke of 1/24 of the font size, which keeps thin strokes readable by
RapidOCR at 64².
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import PIL
from PIL import Image, ImageDraw, ImageFont

from benchmarks.world.scenes import BACKGROUND, PALETTE, SIGN_BOARD, SIGN_INK, Scene, Sign

SUPERSAMPLE = 4
FONT_SIZE = 0.1875  # of the image side: 24 px at 128²
SIGN_PAD = 0.05  # board margin around the word, of the image side
FONT_NAME = "Pillow load_default (Aileron Regular)"


def font_info() -> dict[str, str]:
    """What the sign text is drawn with (for provenance in world.json)."""
    return {"font": FONT_NAME, "pillow": PIL.__version__}


@lru_cache(maxsize=8)
def _font(px: int) -> ImageFont.FreeTypeFont:
    font = ImageFont.load_default(size=px)
    if not isinstance(font, ImageFont.FreeTypeFont):  # Pillow without FreeType: a bitmap font
        raise RuntimeError(  # noqa: TRY004 (an install problem, not a caller passing a wrong type)
            "Pillow was built without FreeType; the world's signs need it (pip install Pillow)"
        )
    return font


def _stroke(px: int) -> int:
    return max(1, round(px / 24))


def sign_box(sign: Sign, side: int) -> tuple[int, int, int, int]:
    """Pixel box (x0, y0, x1, y1) of the sign's board at an image of ``side`` pixels."""
    px = max(1, round(FONT_SIZE * side))
    x0, y0, x1, y1 = _font(px).getbbox(sign.text, anchor="lt", stroke_width=_stroke(px))
    pad = SIGN_PAD * side
    w, h = (x1 - x0) + 2 * pad, (y1 - y0) + 2 * pad
    cx, cy = sign.center[0] * side, sign.center[1] * side
    return (round(cx - w / 2), round(cy - h / 2), round(cx + w / 2), round(cy + h / 2))


def sign_bbox(sign: Sign, side: int = 128) -> list[float]:
    """The board's box as fractions of the image side (for the ground-truth JSON), as drawn."""
    big = side * SUPERSAMPLE
    return [round(v / big, 6) for v in sign_box(sign, big)]


def _draw_sign(draw: ImageDraw.ImageDraw, sign: Sign, side: int) -> None:
    box = sign_box(sign, side)
    draw.rectangle(box, fill=SIGN_BOARD)
    px = max(1, round(FONT_SIZE * side))
    font, stroke = _font(px), _stroke(px)
    x0, y0, x1, y1 = font.getbbox(sign.text, anchor="lt", stroke_width=stroke)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    origin = (round(cx - (x1 - x0) / 2 - x0), round(cy - (y1 - y0) / 2 - y0))
    draw.text(origin, sign.text, font=font, fill=SIGN_INK, anchor="lt", stroke_width=stroke, stroke_fill=SIGN_INK)


def draw_shape(
    draw: ImageDraw.ImageDraw, shape: str, box: tuple[float, float, float, float], fill: int | tuple[int, int, int]
) -> None:
    """Draw ``shape`` filling the box (x0, y0, x1, y1) in pixels of the drawing (no antialiasing)."""
    x0, y0, x1, y1 = box
    # Pillow's boxes include their last pixel: shrink by one so the drawn extent is exactly x1 - x0.
    x1, y1 = x1 - 1, y1 - 1
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if shape == "circle":
        draw.ellipse((x0, y0, x1, y1), fill=fill)
    elif shape == "square":
        draw.rectangle((x0, y0, x1, y1), fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, y0), (x1, y1), (x0, y1)], fill=fill)
    elif shape == "diamond":
        draw.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}")


def shape_coverage(shape: str, box: tuple[float, float, float, float], height: int, width: int) -> np.ndarray:
    """Coverage in [0, 1] of ``shape`` in ``box`` (pixels) on a height×width grid, drawn as the world
    draws it (supersampled, box-averaged): the template the parser compares regions with."""
    image = Image.new("L", (width * SUPERSAMPLE, height * SUPERSAMPLE), 0)
    draw_shape(ImageDraw.Draw(image), shape, tuple(v * SUPERSAMPLE for v in box), 255)  # type: ignore[arg-type]
    return np.asarray(image.reduce(SUPERSAMPLE), dtype=np.float64) / 255.0


def render_scene(scene: Scene, side: int = 128) -> Image.Image:
    """The scene as an RGB image of ``side``×``side`` pixels."""
    if side < 8:
        raise ValueError(f"cannot render the world at {side}×{side}; use at least 8 pixels")
    big = side * SUPERSAMPLE
    image = Image.new("RGB", (big, big), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for obj in scene.objects:
        draw_shape(draw, obj.shape, tuple(v * big for v in obj.bbox), PALETTE[obj.color])  # type: ignore[arg-type]
    if scene.sign is not None:
        _draw_sign(draw, scene.sign, big)
    return image.reduce(SUPERSAMPLE)
