"""Another system's images (a closed model, a paper's samples) entering the comparison as a run.

Folder layouts (documented in drawbench/README.md):

* ``by_id``:    ``<folder>/<prompt_id>/<seed>.png``, e.g. ``drawbench-0042/3.png``
* ``by_index``: ``<folder>/<index>/<seed>.png``, where ``index`` is the prompt's 1-based position in
  the suite file (``42/3.png``; zero padding such as ``042`` and ``03`` is accepted)

``.png``, ``.jpg``, ``.jpeg`` and ``.webp`` are read. ``<seed>`` is one of the suite's seeds
(default 0..7); for a system without seeds, it is just the image's position in its set.
Folders for prompts outside the suite's selection are ignored. A missing, ambiguous or unreadable
image stops the import, with its prompt and seed named.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, NamedTuple

from drawbench.suites import PromptItem, PromptSuite
from harness.errors import UserError
from harness.formats.files import atomic_write_bytes, image_size, sha256_file
from harness.formats.manifest import MANIFEST_NAME, ImageRecord, read_manifest
from harness.formats.runs import EXTERNAL_META

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp")
Layout = Literal["auto", "by_id", "by_index"]


class ExternalImage(NamedTuple):
    item: PromptItem
    seed: int
    path: Path


def _detect_layout(folder: Path, suite: PromptSuite) -> Layout:
    names = {p.name for p in folder.iterdir() if p.is_dir()}
    if any(i.prompt_id in names for i in suite):
        return "by_id"
    if any(n.isdigit() for n in names):
        return "by_index"
    raise UserError(
        f"{folder} has neither <prompt_id>/ folders (e.g. {suite.items[0].prompt_id}/) nor "
        f"<index>/ folders (e.g. {suite.items[0].index}/); see drawbench/README.md"
    )


def _subdirs(folder: Path, layout: Layout) -> dict[str, Path]:
    """Prompt folder key (prompt id, or the index as an int string without padding) -> path."""
    out: dict[str, Path] = {}
    for p in folder.iterdir():
        if not p.is_dir():
            continue
        if layout == "by_index":
            if not p.name.isdigit():
                continue
            key = str(int(p.name))
            if key in out:
                raise UserError(f"{folder} has two folders for prompt index {key}: {out[key].name}/ and {p.name}/")
        else:
            key = p.name
        out[key] = p
    return out


def _seed_files(prompt_dir: Path) -> dict[int, Path]:
    out: dict[int, Path] = {}
    for f in prompt_dir.iterdir():
        if f.suffix.lower() not in IMAGE_EXTS or not re.fullmatch(r"\d+", f.stem):
            continue
        seed = int(f.stem)
        if seed in out:
            raise UserError(f"{prompt_dir} has two images for seed {seed}: {out[seed].name} and {f.name}")
        out[seed] = f
    return out


def _check_readable(path: Path, item: PromptItem, seed: int) -> tuple[int, int]:
    return image_size(path, label=f"{path} ({item.prompt_id}, seed {seed})")


def load_external_images(
    folder: str | Path, suite: PromptSuite, seeds: Sequence[int] | None = None, layout: Layout = "auto"
) -> list[ExternalImage]:
    """Every (prompt, seed) image of ``suite``'s selection in ``folder``, in suite order then seed order.

    Refuses, in one line, a folder with any image missing, naming the first missing prompt (id and
    text) and seed and how many are missing in all. Also refuses an image that is not readable.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"external image folder {folder} does not exist")
    seeds = list(suite.seeds if seeds is None else seeds)
    layout = _detect_layout(folder, suite) if layout == "auto" else layout
    if layout not in ("by_id", "by_index"):
        raise UserError(f"layout must be auto, by_id or by_index, got {layout!r}")
    dirs = _subdirs(folder, layout)
    found: list[ExternalImage] = []
    missing: list[tuple[PromptItem, int]] = []
    for item in suite:
        key = item.prompt_id if layout == "by_id" else str(item.index)
        files = _seed_files(dirs[key]) if key in dirs else {}
        for seed in seeds:
            if seed in files:
                found.append(ExternalImage(item, seed, files[seed]))
            else:
                missing.append((item, seed))
    if missing:
        item, seed = missing[0]
        where = item.prompt_id if layout == "by_id" else str(item.index)
        raise UserError(
            f"{folder} is missing the image for prompt {item.prompt_id} {item.prompt!r} "
            f"seed {seed} "
            f"(expected {folder / where / f'{seed}.png'}; {len(missing)} of "
            f"{len(suite) * len(seeds)} images missing)"
        )
    for img in found:
        _check_readable(img.path, img.item, img.seed)
    return found


def _refuse_generation_run(run_dir: Path, stage: str) -> None:
    stages = {r.stage for r in read_manifest(run_dir)}
    if stages - {stage}:
        raise UserError(
            f"{run_dir} already holds a generation run (stages {', '.join(sorted(stages))}); "
            f"import external images into a new run folder"
        )


def import_external_run(
    folder: str | Path,
    suite: PromptSuite,
    seeds: Sequence[int] | None,
    run_dir: str | Path,
    run_id: str,
    stage: str = "external",
    layout: Layout = "auto",
) -> Path:
    """Copy a validated external folder into ``run_dir`` as a run: images, manifest, external.json.

    Images keep their bytes and format, under ``images/<stage>/<prompt_id>/<seed><ext>``. Each
    manifest record has ``stage`` and a ``resolution`` equal to the image's larger side. Scoring,
    grids and the study export then treat the folder like one of our runs. Importing again into
    the same folder replaces the earlier import.
    """
    run_dir = Path(run_dir)
    seeds = list(suite.seeds if seeds is None else seeds)
    images = load_external_images(folder, suite, seeds, layout)
    _refuse_generation_run(run_dir, stage)
    records = []
    for img in images:
        rel = Path("images") / stage / img.item.prompt_id / f"{img.seed}{img.path.suffix.lower()}"
        dest = run_dir / rel
        atomic_write_bytes(dest, img.path.read_bytes())  # a killed import never leaves half an image
        side = max(image_size(dest))
        records.append(
            ImageRecord(
                prompt_id=img.item.prompt_id,
                prompt=img.item.prompt,
                seed=img.seed,
                stage=stage,
                resolution=side,
                path=rel.as_posix(),
                sha256=sha256_file(dest),
                category=img.item.category,
            )
        )
    lines = "".join(json.dumps(asdict(r), ensure_ascii=False) + "\n" for r in records)
    atomic_write_bytes(run_dir / MANIFEST_NAME, lines.encode("utf-8"))
    meta = {
        "run_id": run_id,
        "suite": suite.name,
        "source": str(Path(folder).resolve()),
        "stage": stage,
        "seeds": seeds,
        "n_images": len(records),
        "suite_files": {s.path.name: s.sha256 for s in suite.sources},
        "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    atomic_write_bytes(run_dir / EXTERNAL_META, json.dumps(meta, indent=1, ensure_ascii=False).encode("utf-8"))
    return run_dir
