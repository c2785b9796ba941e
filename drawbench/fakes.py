"""Fake run folders and external image folders for tests and examples: tiny PNGs, real manifests.

Each image is a flat colour derived from (stage, prompt, seed), so that two images differ exactly
when their keys do.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from PIL import Image

from drawbench.suites import PromptItem
from harness.formats.files import atomic_write_bytes, sha256_bytes
from harness.formats.manifest import ImageRecord, append_records


def fake_png(key: str, size: int = 16) -> bytes:
    """A ``size``×``size`` PNG of one colour picked by ``key``."""
    colour = tuple(hashlib.sha256(key.encode()).digest()[:3])
    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, format="PNG")
    return buf.getvalue()


def write_fake_run(
    run_dir: str | Path,
    items: Iterable[PromptItem],
    seeds: Sequence[int] = tuple(range(8)),
    stages: Sequence[tuple[str, int]] = (("base64", 16), ("sr256", 32)),
    run_id: str | None = None,
    suite: str | None = None,
) -> list[ImageRecord]:
    """A run folder as the generation runner writes it: ``images/<stage>/<prompt_id>/<seed>.png`` + manifest.

    ``stages`` are (name, resolution); the PNGs are ``resolution`` pixels square. With ``run_id``,
    a ``results.json`` carrying it (and ``suite``) is written too.
    """
    run_dir = Path(run_dir)
    records = []
    for stage, res in stages:
        for item in items:
            for seed in seeds:
                rel = f"images/{stage}/{item.prompt_id}/{seed}.png"
                data = fake_png(f"{run_dir.name}/{stage}/{item.prompt_id}/{seed}", res)
                atomic_write_bytes(run_dir / rel, data)
                records.append(
                    ImageRecord(item.prompt_id, item.prompt, seed, stage, res, rel, sha256_bytes(data), item.category)
                )
    run_dir.mkdir(parents=True, exist_ok=True)
    append_records(run_dir, records)
    if run_id is not None:
        meta = {"run_id": run_id, "suite": suite}
        (run_dir / "results.json").write_text(json.dumps(meta), encoding="utf-8")
    return records


def write_external_folder(
    folder: str | Path,
    items: Iterable[PromptItem],
    seeds: Sequence[int] = tuple(range(8)),
    layout: Literal["by_id", "by_index"] = "by_id",
    size: int = 16,
    ext: str = ".png",
    index_width: int = 0,
) -> list[Path]:
    """Another system's images in the documented layout (``index_width`` zero-pads index folders)."""
    folder = Path(folder)
    fmt = "JPEG" if ext in (".jpg", ".jpeg") else "PNG"
    paths = []
    for item in items:
        name = item.prompt_id if layout == "by_id" else f"{item.index:0{index_width}d}"
        for seed in seeds:
            path = folder / name / f"{seed}{ext}"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.open(io.BytesIO(fake_png(f"ext/{item.prompt_id}/{seed}", size))).save(path, format=fmt)
            paths.append(path)
    return paths
