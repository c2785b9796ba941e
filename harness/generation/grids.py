"""Image grids: a sheet of images row by row, written atomically — the one grids module of the harness.

``sample`` writes one grid per stage (rows: prompts, columns: seeds, :func:`write_stage_grids`); prompt
suites write the 2×4 sheet of 8 seeds per prompt that DrawBench raters compare set against set
(:func:`write_grids`, ``grids/<prompt_id>.png``). Both go through :func:`save_grid`. (The comparison
report draws its own labelled sheets of one prompt across runs: ``reports.grids``.)
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from PIL import Image

from harness.errors import UserError
from harness.formats.files import atomic_write_bytes, open_rgb
from harness.formats.manifest import ImageRecord
from harness.formats.runs import select_stage


def make_grid(
    images: Sequence[Image.Image],
    rows: int = 2,
    cols: int = 4,
    pad: int = 4,
    background: str | tuple[int, int, int] = "white",
    cell_size: int | None = None,
) -> Image.Image:
    """Images laid out row by row in a ``rows × cols`` sheet, ``pad`` pixels apart and around.

    Cells are as large as the largest image (or ``cell_size`` square, images shrunk to fit with
    their aspect ratio kept); smaller images are centred, and unused cells stay ``background``.
    """
    if not 1 <= len(images) <= rows * cols:
        raise ValueError(f"a {rows}×{cols} grid holds 1 to {rows * cols} images, got {len(images)}")
    images = [im.convert("RGB") for im in images]
    if cell_size is not None:
        images = [_fit(im, cell_size) for im in images]
        cw = ch = cell_size
    else:
        cw, ch = max(im.width for im in images), max(im.height for im in images)
    sheet = Image.new("RGB", (cols * cw + (cols + 1) * pad, rows * ch + (rows + 1) * pad), background)
    for k, im in enumerate(images):
        r, c = divmod(k, cols)
        x = pad + c * (cw + pad) + (cw - im.width) // 2
        y = pad + r * (ch + pad) + (ch - im.height) // 2
        sheet.paste(im, (x, y))
    return sheet


def _fit(im: Image.Image, size: int) -> Image.Image:
    scale = size / max(im.width, im.height)
    if scale >= 1:
        return im
    return im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.LANCZOS)


def save_grid(
    path: str | Path, images: Sequence[Image.Image], rows: int, cols: int, pad: int = 4, cell_size: int | None = None
) -> Path:
    """:func:`make_grid` written as a PNG at ``path`` (atomically: a kill never leaves half a sheet)."""
    buf = io.BytesIO()
    make_grid(images, rows, cols, pad, cell_size=cell_size).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def write_stage_grids(
    run_dir: str | Path, records: Sequence[ImageRecord], stages: Sequence[str], n_prompts: int, n_seeds: int
) -> list[Path]:
    """One ``grid_<stage>.png`` per stage in ``run_dir``: rows are prompts, columns seeds, in record order."""
    run_dir = Path(run_dir)
    paths = []
    for stage in stages:
        images = [open_rgb(run_dir / r.path) for r in records if r.stage == stage]
        paths.append(save_grid(run_dir / f"grid_{stage}.png", images, rows=n_prompts, cols=n_seeds))
    return paths


GRID_DIR = "grids"


def _group(records: Iterable[ImageRecord], seeds: Sequence[int] | None, n: int) -> dict[str, list[ImageRecord]]:
    by_prompt: dict[str, list[ImageRecord]] = defaultdict(list)
    for r in records:
        by_prompt[r.prompt_id].append(r)
    for pid, recs in by_prompt.items():
        recs.sort(key=lambda r: r.seed)
        have = [r.seed for r in recs]
        if seeds is not None:
            missing = [s for s in seeds if s not in have]
            if missing:
                raise UserError(
                    f"cannot make the grid of {pid}: no image for seed(s) "
                    f"{', '.join(map(str, missing))} ({recs[0].prompt!r})"
                )
            by_prompt[pid] = [r for r in recs if r.seed in seeds]
        elif len(recs) != n:
            raise UserError(
                f"cannot make the grid of {pid}: it has {len(recs)} images (seeds {have}), the grid needs {n}"
            )
    return by_prompt


def write_grids(
    run_dir: str | Path,
    records: Iterable[ImageRecord],
    rows: int = 2,
    cols: int = 4,
    seeds: Sequence[int] | None = None,
    stage: str | None = None,
    pad: int = 4,
    cell_size: int | None = None,
) -> list[Path]:
    """Write ``grids/<prompt_id>.png`` in ``run_dir`` for every prompt in ``records``; return the paths.

    Uses ``stage`` (default: the final, highest-resolution stage). Every prompt must have an image
    for each of ``seeds`` (default: exactly ``rows × cols`` images), else nothing is written and
    the first incomplete prompt is named. Each PNG is written atomically, so rerunning after a
    kill just rewrites the sheets.
    """
    run_dir = Path(run_dir)
    _, chosen = select_stage(records, stage)
    groups = _group(chosen, seeds, rows * cols)
    for pid in sorted(groups):  # all files first, so a missing one stops us before any sheet is written
        for r in groups[pid]:
            if not (run_dir / r.path).is_file():
                raise UserError(f"cannot make the grid of {pid}: image {run_dir / r.path} (seed {r.seed}) is missing")
    out = []
    for pid in sorted(groups):
        images = [open_rgb(run_dir / r.path, label=f"{run_dir / r.path} ({pid}, seed {r.seed})") for r in groups[pid]]
        out.append(save_grid(run_dir / GRID_DIR / f"{pid}.png", images, rows, cols, pad, cell_size=cell_size))
    return out
