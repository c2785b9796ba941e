"""Per-prompt image grids: the 2×4 sheet of 8 seeds that DrawBench raters compare set against set."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from harness.errors import UserError
from harness.formats.files import open_rgb
from harness.formats.manifest import ImageRecord
from harness.formats.runs import select_stage
from harness.grids import make_grid, save_grid  # noqa: F401  (make_grid: part of this module's API)

GRID_DIR = "grids"


def _group(records: Iterable[ImageRecord], seeds: Sequence[int] | None,
           n: int) -> dict[str, list[ImageRecord]]:
    by_prompt: dict[str, list[ImageRecord]] = defaultdict(list)
    for r in records:
        by_prompt[r.prompt_id].append(r)
    for pid, recs in by_prompt.items():
        recs.sort(key=lambda r: r.seed)
        have = [r.seed for r in recs]
        if seeds is not None:
            missing = [s for s in seeds if s not in have]
            if missing:
                raise UserError(f"cannot make the grid of {pid}: no image for seed(s) "
                                f"{', '.join(map(str, missing))} ({recs[0].prompt!r})")
            by_prompt[pid] = [r for r in recs if r.seed in seeds]
        elif len(recs) != n:
            raise UserError(f"cannot make the grid of {pid}: it has {len(recs)} images (seeds {have}), "
                            f"the grid needs {n}")
    return by_prompt


def write_grids(run_dir: str | Path, records: Iterable[ImageRecord], rows: int = 2, cols: int = 4,
                seeds: Sequence[int] | None = None, stage: str | None = None, pad: int = 4,
                cell_size: int | None = None) -> list[Path]:
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
                raise UserError(f"cannot make the grid of {pid}: image {run_dir / r.path} (seed {r.seed}) "
                                f"is missing")
    out = []
    for pid in sorted(groups):
        images = [open_rgb(run_dir / r.path, label=f"{run_dir / r.path} ({pid}, seed {r.seed})") for r in groups[pid]]
        out.append(save_grid(run_dir / GRID_DIR / f"{pid}.png", images, rows, cols, pad, cell_size=cell_size))
    return out
