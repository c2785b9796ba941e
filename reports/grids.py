"""Sample grids: the same prompt and seed across runs, side by side (rows: seeds, columns: runs).

Only the images shown are opened. Cells are scaled to one size chosen from a pixel budget, so a
report of many runs stays small: larger images are reduced (Lanczos), smaller ones enlarged by
pixel repetition (nearest neighbour), which shows a 32 px sample as what it is.
"""

from __future__ import annotations

import io
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from harness.errors import UserError
from harness.formats.files import open_rgb
from reports.collect import Run

MIN_CELL = 48
FONT_PX = 12
MARGIN = 64  # left column for the seed labels


@dataclass
class GridPrompt:
    prompt_id: str
    prompt: str
    category: str | None
    seeds: list[int]


def _keys(run: Run) -> dict[tuple[str, int], dict]:
    samples = run.samples()
    stage = run.final_stage()
    if stage is None:
        return {}
    part = samples[samples["stage"] == stage]
    return {
        (str(r.prompt_id), int(r.seed)): {"path": r.path, "prompt": r.prompt, "category": r.category}
        for r in part.itertuples(index=False)
        if pd.notna(r.seed) and isinstance(r.path, str) and r.path
    }


def choose_prompts(runs: list[Run], n_prompts: int, n_seeds: int) -> tuple[list[GridPrompt], dict[str, dict]]:
    """Prompts and seeds every run has at its final stage: one prompt per category in turn (so the
    grids cover the suite), the smallest common seeds. Also returns each run's sample index."""
    index = {r.run_id: _keys(r) for r in runs}
    common = set.intersection(*(set(k) for k in index.values())) if index else set()
    if not common:
        return [], index
    first = index[runs[0].run_id]
    by_prompt: dict[str, list[int]] = {}
    for pid, seed in sorted(common):
        by_prompt.setdefault(pid, []).append(seed)
    by_cat: dict[str, list[str]] = {}
    for pid in sorted(by_prompt):
        by_cat.setdefault(str(first[(pid, by_prompt[pid][0])]["category"]), []).append(pid)
    chosen: list[str] = []
    while len(chosen) < n_prompts and any(by_cat.values()):
        for cat in list(by_cat):
            if by_cat[cat] and len(chosen) < n_prompts:
                chosen.append(by_cat[cat].pop(0))
    out = []
    for pid in chosen:
        seeds = sorted(by_prompt[pid])[:n_seeds]
        meta = first[(pid, seeds[0])]
        out.append(GridPrompt(pid, str(meta["prompt"] or ""), meta["category"], seeds))
    return out, index


def cell_size(n_cells: int, cell_px: int, budget_mpx: float) -> int:
    """The side of one cell: at most ``cell_px``, and all cells together within the pixel budget."""
    if n_cells <= 0:
        return cell_px
    return max(MIN_CELL, min(cell_px, int(math.sqrt(budget_mpx * 1e6 / n_cells))))


def _font(px: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=px)
    except (TypeError, OSError):  # Pillow without FreeType
        return ImageFont.load_default()


def _fit(img: Image.Image, side: int) -> Image.Image:
    w, h = img.size
    scale = side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.LANCZOS
    out = Image.new("RGB", (side, side), "white")
    out.paste(img.resize(size, resample), ((side - size[0]) // 2, (side - size[1]) // 2))
    return out


def _wrap(
    draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont, width: int, lines: int
) -> list[str]:
    chars = max(4, int(width / max(1.0, draw.textlength("M", font=font) * 0.62)))
    wrapped = textwrap.wrap(text, chars, break_long_words=True, break_on_hyphens=False) or [""]
    if len(wrapped) > lines:
        wrapped = wrapped[:lines]
        wrapped[-1] = wrapped[-1][: max(1, chars - 1)] + "…"
    return wrapped


def render_grid(prompt: GridPrompt, runs: list[Run], index: dict[str, dict], side: int) -> tuple[bytes, list[str]]:
    """The grid PNG and the images that could not be read (drawn as a crossed cell)."""
    font = _font(FONT_PX)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    labels = [_wrap(probe, f"[{k}] {r.run_id}", font, side - 4, 4) for k, r in enumerate(runs, start=1)]
    header = (max(len(x) for x in labels) + 1) * (FONT_PX + 3)
    gap = 4
    width = MARGIN + len(runs) * (side + gap)
    height = header + len(prompt.seeds) * (side + gap)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for k, lines in enumerate(labels):
        x = MARGIN + k * (side + gap)
        for j, line in enumerate(lines):
            draw.text((x + 2, 2 + j * (FONT_PX + 3)), line, fill="black", font=font)
    missing = []
    for row, seed in enumerate(prompt.seeds):
        y = header + row * (side + gap)
        draw.text((4, y + side // 2 - FONT_PX // 2), f"seed {seed}", fill="black", font=font)
        for k, run in enumerate(runs):
            x = MARGIN + k * (side + gap)
            rel = index[run.run_id][(prompt.prompt_id, seed)]["path"]
            path = Path(run.run_dir) / str(rel)
            try:
                canvas.paste(_fit(open_rgb(path), side), (x, y))
            except UserError:
                missing.append(str(path))
                draw.rectangle((x, y, x + side - 1, y + side - 1), outline="black", fill="#eeeeee")
                draw.line((x, y, x + side - 1, y + side - 1), fill="black")
                draw.line((x, y + side - 1, x + side - 1, y), fill="black")
    buf = io.BytesIO()
    canvas.save(buf, format="PNG", optimize=True)
    return buf.getvalue(), missing
