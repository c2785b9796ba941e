"""The generation runner: (prompts × seeds) → ``runs/<run_id>/images`` + ``manifest.jsonl``.

Deterministic: each image is a function of (prompt, seed). The work list is cut into groups
of ``batch_size`` in a fixed global order; rank r of W takes groups r, r + W, ... A group is
always generated whole, so a sharded run, a single-process run and a resumed run feed the
model exactly the same batches (byte-identical even when the model batches samples).

Resumable: a PNG is written to a temporary name and renamed, then its manifest record is
appended (fsynced) to the rank's shard log. After kill -9 anywhere, a rerun skips exactly
the images whose file exists with its recorded checksum; at the end rank 0 merges the
shards into ``manifest.jsonl`` in work order.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from harness.errors import UserError
from harness.formats.files import atomic_write_bytes, sha256_bytes
from harness.formats.manifest import (
    SHARD_DIR,
    ImageRecord,
    append_records,
    read_manifest,
    repair_manifest,
    verified_records,
    write_manifest,
)
from harness.generation.generators import TextToImageModel
from imagen.distributed import DistContext

SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class WorkItem:
    prompt_id: str
    prompt: str
    seed: int
    category: str | None = None


@dataclass
class RunResult:
    run_dir: Path
    records: list[ImageRecord]
    generated: int = 0
    skipped: int = 0
    seconds: float = 0.0
    complete: bool = False
    stages: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)  # e.g. prompts the text encoder truncated
    fingerprint: str | None = None  # digest of the generator that made the images (harness/generation/fingerprint.py)

    @property
    def images_per_s(self) -> float:
        return self.generated / self.seconds if self.seconds > 0 else 0.0


def plan_work(prompts: Iterable[tuple[str, str, str | None]], seeds: Sequence[int]) -> list[WorkItem]:
    """Prompt-major work list from (prompt_id, prompt, category) triples and the seeds."""
    work, seen = [], set()
    for pid, text, category in prompts:
        if not SAFE_ID.match(pid):
            raise UserError(f"prompt id {pid!r} is not usable in file names (letters, digits, . _ - only)")
        if pid in seen:
            raise UserError(f"prompt id {pid!r} appears twice")
        seen.add(pid)
        work.extend(WorkItem(pid, text, int(s), category) for s in seeds)
    if not work:
        raise UserError("nothing to generate: no prompts or no seeds")
    return work


def image_relpath(stage: str, prompt_id: str, seed: int) -> str:
    return f"images/{stage}/{prompt_id}/{seed}.png"


def png_bytes(image: torch.Tensor) -> bytes:
    """Deterministic PNG bytes of a uint8 (3, H, W) image (no timestamps or text chunks)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image.permute(1, 2, 0).numpy())).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _groups(work: list[WorkItem], batch_size: int) -> list[list[WorkItem]]:
    return [work[i : i + batch_size] for i in range(0, len(work), batch_size)]


def _write_group(
    run_dir: Path,
    group: list[WorkItem],
    images: dict[str, torch.Tensor],
    stages: list[str],
    done: set[tuple[str, int, str]],
    fingerprint: str | None,
) -> list[ImageRecord]:
    records = []
    for stage in stages:
        if stage not in images:
            raise UserError(f"the model produced no {stage!r} images (it has {sorted(images)})")
        for item, img in zip(group, images[stage]):
            if (item.prompt_id, item.seed, stage) in done:
                continue  # complete and checksummed already: never rewritten
            data = png_bytes(img)
            rel = image_relpath(stage, item.prompt_id, item.seed)
            atomic_write_bytes(run_dir / rel, data)
            records.append(
                ImageRecord(
                    item.prompt_id,
                    item.prompt,
                    item.seed,
                    stage,
                    int(img.shape[-1]),
                    rel,
                    sha256_bytes(data),
                    item.category,
                    fingerprint,
                )
            )
    return records


def _check_prompts(records: list[ImageRecord], work: list[WorkItem]) -> None:
    """A finished image counts for a work item only if it was made from the same prompt text."""
    text = {w.prompt_id: w.prompt for w in work}
    for r in records:
        if r.prompt_id in text and r.prompt != text[r.prompt_id]:
            raise UserError(
                f"prompt {r.prompt_id} reads differently from the one its images in this run were made "
                f"from ({r.prompt[:60]!r} vs {text[r.prompt_id][:60]!r}); pick a new run_id"
            )


def run_generation(
    model: TextToImageModel,
    work: list[WorkItem],
    run_dir: str | Path,
    *,
    batch_size: int = 8,
    stages: list[str] | None = None,
    ctx: DistContext | None = None,
    progress: bool = True,
    fingerprint: str | None = None,
) -> RunResult:
    """Generate what is missing of ``work`` × ``stages`` into ``run_dir`` (this rank's share).

    ``fingerprint`` (the digest of :mod:`harness.generation.fingerprint`) is stamped on every record written.
    """
    ctx = ctx or DistContext()
    run_dir = Path(run_dir)
    stages = list(stages or model.stages)
    shard = run_dir / SHARD_DIR / f"rank{ctx.rank}.jsonl"
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        repair_manifest(run_dir)
    ctx.barrier()
    repair_manifest(shard)
    verified = verified_records(run_dir)  # the only pass that hashes files
    _check_prompts(verified, work)
    done = {r.key for r in verified}
    groups = _groups(work, max(1, batch_size))
    todo_all = [i for i, g in enumerate(groups) if any((w.prompt_id, w.seed, s) not in done for w in g for s in stages)]
    # every rank derives the same todo list, so each knows what all ranks (re)write in this run
    fresh = {(w.prompt_id, w.seed, s) for i in todo_all for w in groups[i] for s in stages} - done
    todo = [groups[i] for i in todo_all if i % ctx.world_size == ctx.rank]
    mine = sum(len(g) for i, g in enumerate(groups) if i % ctx.world_size == ctx.rank)
    result = RunResult(run_dir, [], stages=stages, skipped=mine - sum(len(g) for g in todo), fingerprint=fingerprint)
    bar = tqdm(
        total=sum(len(g) for g in todo),
        unit="img",
        desc=f"generate [rank {ctx.rank}/{ctx.world_size}]",
        disable=not progress,
        dynamic_ncols=True,
    )
    start = time.time()
    for group in todo:
        images = model.generate([w.prompt for w in group], [w.seed for w in group])
        append_records(shard, _write_group(run_dir, group, images, stages, done, fingerprint))
        result.generated += len(group)
        bar.update(len(group))
    bar.close()
    result.seconds = time.time() - start
    ctx.barrier()  # every rank finished, so each fresh key's newest record is this run's
    trusted = done | fresh
    if ctx.is_main:
        _merge(run_dir, work, stages, trusted)
    ctx.barrier()
    return _finish(result, run_dir, work, stages, trusted)


def _trusted_records(run_dir: Path, trusted: set[tuple[str, int, str]]) -> list[ImageRecord]:
    """Manifest records known good without re-hashing: verified at the start or written in this run."""
    return [r for r in read_manifest(run_dir) if r.key in trusted]


def _merge(run_dir: Path, work: list[WorkItem], stages: list[str], trusted: set[tuple[str, int, str]]) -> None:
    order = {(w.prompt_id, w.seed): i for i, w in enumerate(work)}
    rank = {s: i for i, s in enumerate(stages)}
    records = _trusted_records(run_dir, trusted)
    records.sort(key=lambda r: (order.get((r.prompt_id, r.seed), len(order)), rank.get(r.stage, len(rank)), r.stage))
    write_manifest(run_dir, records)


def _finish(
    result: RunResult, run_dir: Path, work: list[WorkItem], stages: list[str], trusted: set[tuple[str, int, str]]
) -> RunResult:
    wanted = {(w.prompt_id, w.seed, s) for w in work for s in stages}
    result.records = [r for r in _trusted_records(run_dir, trusted) if r.key in wanted]
    result.complete = {r.key for r in result.records} >= wanted
    return result
