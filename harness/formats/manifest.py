"""The image manifest of a generation run: ``runs/<run_id>/manifest.jsonl``.

One JSON object per line, one line per image, written only after the PNG is fully on disk
(written to a temporary name, fsynced, renamed). A record is *complete* when its file exists
and its sha256 matches; resuming a killed run regenerates exactly the images that are not.

Record fields (version 1):
    prompt_id  stable id of the prompt within its suite (e.g. "drawbench-0042")
    prompt     the prompt text
    seed       the generation seed (the image is a function of (prompt, seed) alone)
    stage      cascade stage name the image comes from (e.g. "base64", "sr256")
    resolution image side in pixels
    path       file path relative to the run folder, POSIX separators
    sha256     hex digest of the file bytes
    category   optional prompt category (DrawBench "Colors", ...)
    generator  digest of the run's generator fingerprint (harness/generation/fingerprint.py) the image was made with
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.formats.files import atomic_write_bytes, sha256_file

MANIFEST_NAME = "manifest.jsonl"
SHARD_DIR = ".manifest-shards"  # per-rank append logs while a (possibly sharded) run is in progress
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class ImageRecord:
    prompt_id: str
    prompt: str
    seed: int
    stage: str
    resolution: int
    path: str
    sha256: str
    category: str | None = None
    generator: str | None = None

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.prompt_id, self.seed, self.stage)

    @property
    def sample_key(self) -> tuple[str, int]:
        """(prompt_id, seed): the image's identity across stages and across runs of the same prompts."""
        return (self.prompt_id, self.seed)


def _complete_lines(path: Path) -> list[str]:
    """Lines of the manifest up to the last newline; a torn final line (killed mid-write) is dropped."""
    if not path.exists():
        return []
    text = path.read_bytes().decode("utf-8", errors="replace")
    end = text.rfind("\n")
    return [ln for ln in text[: end + 1].splitlines() if ln.strip()]


def manifest_files(run_dir: str | Path) -> list[Path]:
    """The merged manifest and any per-rank shard logs of an unfinished run."""
    run_dir = Path(run_dir)
    return [run_dir / MANIFEST_NAME, *sorted((run_dir / SHARD_DIR).glob("*.jsonl"))]


def repair_manifest(path: str | Path) -> None:
    """Truncate a torn final line so appends after a crash start on a fresh line."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    if path.exists():
        data = path.read_bytes()
        end = data.rfind(b"\n")
        if end + 1 != len(data):
            with open(path, "r+b") as f:
                f.truncate(end + 1)


def read_manifest(run_dir: str | Path) -> list[ImageRecord]:
    """All well-formed records of the manifest and its shards (a later duplicate of a key wins)."""
    records: dict[tuple[str, int, str], ImageRecord] = {}
    lines = [ln for f in manifest_files(run_dir) for ln in _complete_lines(f)]
    for line in lines:
        try:
            rec = ImageRecord(**json.loads(line))
        except (json.JSONDecodeError, TypeError):
            continue
        records[rec.key] = rec
    return list(records.values())


def verified_records(run_dir: str | Path) -> list[ImageRecord]:
    """Records whose file exists with the recorded checksum."""
    run_dir = Path(run_dir)
    out = []
    for rec in read_manifest(run_dir):
        f = run_dir / rec.path
        if f.is_file() and sha256_file(f) == rec.sha256:
            out.append(rec)
    return out


def append_records(path: str | Path, records: Iterable[ImageRecord]) -> None:
    """Append records durably (flush + fsync) after their files are on disk.

    ``path`` is a manifest file (e.g. a rank's shard) or a run folder (its ``manifest.jsonl``).
    """
    lines = "".join(json.dumps(asdict(r), ensure_ascii=False) + "\n" for r in records)
    if not lines:
        return
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(lines)
        f.flush()
        os.fsync(f.fileno())


def write_manifest(run_dir: str | Path, records: Iterable[ImageRecord]) -> Path:
    """Replace ``manifest.jsonl`` atomically with ``records`` and drop the shard logs they came from."""
    run_dir = Path(run_dir)
    data = "".join(json.dumps(asdict(r), ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    atomic_write_bytes(run_dir / MANIFEST_NAME, data)
    for shard in sorted((run_dir / SHARD_DIR).glob("*.jsonl")):
        shard.unlink(missing_ok=True)
    return run_dir / MANIFEST_NAME
