"""Reading a run folder (``runs/<run_id>/``) the way grids, scoring and the study export need it.

A run folder holds ``manifest.jsonl`` (harness/formats/manifest.py), the images it lists, and optionally
``results.json``, the resolved ``config.yaml`` the run wrote, or ``external.json`` (written by
:func:`drawbench.external.import_external_run`). Those files supply the run id and the suite name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from harness.errors import UserError
from harness.formats.manifest import MANIFEST_NAME, ImageRecord, read_manifest, verified_records

EXTERNAL_META = "external.json"


@dataclass(frozen=True)
class RunImages:
    """The images of one run at one stage."""

    run_dir: Path
    run_id: str
    suite: str | None
    stage: str
    records: list[ImageRecord]


def final_stage(records: Iterable[ImageRecord]) -> str:
    """The stage with the highest resolution, i.e. the cascade's last stage that produced images."""
    best: dict[str, int] = {}
    for r in records:
        best[r.stage] = max(best.get(r.stage, 0), r.resolution)
    if not best:
        raise UserError("the run has no images")
    top = max(best.values())
    stages = sorted(s for s, res in best.items() if res == top)
    if len(stages) > 1:
        raise UserError(f"stages {', '.join(stages)} share the highest resolution {top}; choose one with stage=")
    return stages[0]


def select_stage(records: Iterable[ImageRecord], stage: str | None = None) -> tuple[str, list[ImageRecord]]:
    """The records of ``stage`` (default: :func:`final_stage`), sorted by prompt id and seed."""
    records = list(records)
    stage = stage or final_stage(records)
    chosen = sorted((r for r in records if r.stage == stage), key=lambda r: (r.prompt_id, r.seed))
    if not chosen:
        present = ", ".join(sorted({r.stage for r in records})) or "none"
        raise UserError(f"no images at stage {stage!r} (stages present: {present})")
    return stage, chosen


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        loaded = OmegaConf.to_container(OmegaConf.load(path))
    except Exception:  # noqa: BLE001 -- an unreadable config loses only the nicer run id
        return {}
    return loaded if isinstance(loaded, dict) else {}


def run_metadata(run_dir: str | Path) -> dict[str, Any]:
    """``run_id`` and ``suite`` from results.json, config.yaml or external.json, where present."""
    run_dir = Path(run_dir)
    found: dict[str, Any] = {}
    results = _read_json(run_dir / "results.json")
    config = results.get("config") if isinstance(results.get("config"), dict) else {}
    configs = [_read_yaml(run_dir / name) for name in ("config.yaml", ".hydra/config.yaml")]  # ours; older runs'
    external = _read_json(run_dir / EXTERNAL_META)
    for source in (results, config, *configs, external):  # first one that says wins
        bench = source.get("benchmark")
        suite = source.get("suite") or (bench.get("name") if isinstance(bench, dict) else bench)
        for key, value in (("run_id", source.get("run_id")), ("suite", suite)):
            # an interpolation (a hand-written or foreign config) is not an id
            if isinstance(value, str) and value and "${" not in value and key not in found:
                found[key] = value
    return found


def run_id_of(run_dir: str | Path) -> str:
    """The run id recorded in the run folder, else the folder's name."""
    return str(run_metadata(run_dir).get("run_id") or Path(run_dir).resolve().name)


def load_run(run_dir: str | Path, stage: str | None = None, verify: bool = True) -> RunImages:
    """The run's images at ``stage`` (default: the final stage). ``verify`` drops records whose file
    is missing or does not match its sha256 (an interrupted or tampered run)."""
    run_dir = Path(run_dir)
    if not (run_dir / MANIFEST_NAME).is_file():
        raise UserError(f"{run_dir} is not a run folder (no {MANIFEST_NAME})")
    records = verified_records(run_dir) if verify else read_manifest(run_dir)
    if not records:
        raise UserError(f"run {run_dir} has no complete images")
    stage, chosen = select_stage(records, stage)
    meta = run_metadata(run_dir)
    suite = meta.get("suite") or chosen[0].prompt_id.rsplit("-", 1)[0]
    return RunImages(run_dir, run_id_of(run_dir), suite, stage, chosen)
