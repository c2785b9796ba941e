"""The fingerprint of what makes a run's images, and the rule that a run folder never mixes two.

A run folder is resumable: rerunning its ``run_id`` generates only the images that are missing. That is
only sound if the rerun would make exactly the images already there, so every run folder records, in
``fingerprint.json``, everything an image depends on: the generator kind, the weights' content hashes,
the model and every stage's settings (U-Net, schedule, prediction, guidance, thresholding, noise
augmentation), the sampler (name, steps, eta), the text encoder's identity, the numeric precision and
how samples are grouped into model evaluations. Paths are not part of it (moving a checkpoint folder
changes nothing); the stages generated are.

A rerun with a different fingerprint is refused, naming the fields that differ; nothing in the folder
is touched. Every manifest record and ``results.json`` carry the fingerprint's digest.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.formats.files import atomic_write_bytes
from harness.formats.jsonio import read_versioned_json
from harness.formats.manifest import read_manifest

FINGERPRINT_NAME = "fingerprint.json"
FORMAT = "imagen-bench.fingerprint"
VERSION = 1
# describe() fields that say where things are, not what they are
_LOCATIONS = ("checkpoint", "folder", "path")


def fingerprint_fields(description: dict[str, Any]) -> dict[str, Any]:
    """The generator description minus locations, as plain JSON values."""
    fields = {k: v for k, v in description.items() if k not in _LOCATIONS}
    return json.loads(json.dumps(fields, sort_keys=True, default=str))


def digest(fields: dict[str, Any]) -> str:
    """16 hex digits of the sha256 of the canonical JSON of ``fields``."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out += _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [prefix.rstrip(".")]


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Dotted names of the fields that differ (``stages.base32.guidance``, ``sampler.steps``, ...)."""
    return _differences(old, new)


def read_fingerprint(run_dir: str | Path) -> dict[str, Any] | None:
    path = Path(run_dir) / FINGERPRINT_NAME
    if not path.exists():
        return None
    return read_versioned_json(path, FORMAT, VERSION, "run fingerprint")


def check_or_record(
    run_dir: str | Path, fields: dict[str, Any], *, write: bool = True, label: str | None = None
) -> str:
    """The run's digest after making sure ``run_dir`` holds no images made by another generator.

    A new folder gets ``fingerprint.json`` (when ``write``); a folder with a different fingerprint, or
    with images but no fingerprint (older or foreign runs), is refused with one line.
    """
    run_dir = Path(run_dir)
    stored = read_fingerprint(run_dir)
    if stored is None:
        if read_manifest(run_dir):
            raise UserError(
                f"run folder {run_dir} holds images but no {FINGERPRINT_NAME}, so what made them is "
                "unknown; pick a new run_id"
            )
        if write:
            doc = {"format": FORMAT, "version": VERSION, "digest": digest(fields), "fields": fields}
            atomic_write_bytes(run_dir / FINGERPRINT_NAME, (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode())
        return digest(fields)
    changed = differences(stored.get("fields", {}), fields)
    if changed:
        shown = ", ".join(changed[:6]) + (f" (+{len(changed) - 6} more)" if len(changed) > 6 else "")
        raise UserError(
            f"run {label or run_dir.name} was made with other settings ({shown} differ), so its images cannot "
            "be resumed or reused under these settings; pick a new run_id"
        )
    return str(stored["digest"])
