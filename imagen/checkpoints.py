"""Stage checkpoints: safetensors weights with a metadata record, validated on load.

A stage checkpoint is one ``.safetensors`` file whose header metadata holds (under the key
``imagen_bench``) a JSON record: format/version, stage name, the U-Net config it was built
from, the stage's diffusion settings, training step, whether the weights are the EMA,
the code version, the text encoder it was trained with, and a content hash of the tensors.
A cascade checkpoint is a folder with one such file per stage (``<stage>.safetensors``).

Loading checks, in order, and stops with one clear line at the first problem: the file
is readable (a truncated file is caught), the record is ours, the U-Net config matches
the model config, the tensor names and shapes match the model exactly, and the content
hash matches. There is no partial load. Pickle files (``.pt``/``.bin``/``.ckpt``) are refused:
unpickling runs arbitrary code, and our checkpoints are safetensors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from imagen.errors import UserError
from imagen.files import atomic_path
from imagen.hashing import git_revision, state_dict_sha256

FORMAT = "imagen-bench.stage"
VERSION = 1
META_KEY = "imagen_bench"
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


@dataclass(frozen=True)
class StageRecord:
    """The metadata record stored with a stage's weights."""

    stage: str
    unet: dict[str, Any]
    spec: dict[str, Any]
    step: int
    ema: bool
    text_encoder: dict[str, Any]
    content_sha256: str
    code_version: str
    format: str = FORMAT
    version: int = VERSION

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


def code_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("imagen-bench")
    except PackageNotFoundError:
        v = "unknown"
    rev = git_revision()
    return f"{v}+{rev}" if rev else v


def save_stage(
    path: str | Path,
    state: Mapping[str, torch.Tensor],
    *,
    stage: str,
    unet: dict[str, Any],
    spec: dict[str, Any],
    step: int,
    ema: bool,
    text_encoder: dict[str, Any],
) -> StageRecord:
    """Write weights + record atomically (temporary file, then rename)."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    record = StageRecord(
        stage=stage,
        unet=unet,
        spec=spec,
        step=step,
        ema=ema,
        text_encoder=text_encoder,
        content_sha256=state_dict_sha256(tensors),
        code_version=code_version(),
    )
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: record.to_json()})
    return record


def read_record(path: str | Path) -> StageRecord:
    """The metadata record alone (cheap: reads only the header)."""
    path = _check_file(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise UserError(f"checkpoint {path} is unreadable or truncated ({_short(err)})") from None
    if META_KEY not in meta:
        raise UserError(
            f"{path} is a safetensors file but not an imagen-bench stage checkpoint (no '{META_KEY}' record)"
        )
    try:
        raw = json.loads(meta[META_KEY])
        record = StageRecord(**raw)
    except (json.JSONDecodeError, TypeError) as err:
        raise UserError(f"checkpoint {path} has a malformed metadata record ({_short(err)})") from None
    if record.format != FORMAT or record.version != VERSION:
        raise UserError(f"checkpoint {path} is {record.format} v{record.version}; this build reads {FORMAT} v{VERSION}")
    return record


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    path = _check_file(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise UserError(f"checkpoint {path} is unreadable or truncated ({_short(err)})") from None


def load_stage(path: str | Path, model: nn.Module, *, stage: str, unet: dict[str, Any]) -> StageRecord:
    """Validate the checkpoint against the model and its config, then load it strictly."""
    path = Path(path)
    record = read_record(path)
    if record.stage != stage:
        raise UserError(f"checkpoint {path} holds stage {record.stage!r}, but it is being loaded into stage {stage!r}")
    diff = config_diff(record.unet, unet)
    if diff:
        raise UserError(f"checkpoint {path} was trained with a different U-Net config: {diff}")
    tensors = load_tensors(path)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    missing, unexpected = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    if missing or unexpected:
        raise UserError(
            f"checkpoint {path} does not match the model: {len(missing)} missing tensors "
            f"{missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}"
        )
    bad = [k for k in expected if expected[k] != got[k]]
    if bad:
        raise UserError(f"checkpoint {path} has wrong shapes, e.g. {bad[0]}: {got[bad[0]]} vs model {expected[bad[0]]}")
    if state_dict_sha256(tensors) != record.content_sha256:
        raise UserError(f"checkpoint {path} is corrupt: its tensors do not match the recorded content hash")
    model.load_state_dict(tensors, strict=True)
    return record


def config_diff(saved: Mapping[str, Any], current: Mapping[str, Any]) -> str:
    """Human-readable differences between two U-Net configs ('' when equal)."""
    norm = lambda v: list(v) if isinstance(v, (list, tuple)) else v
    keys = sorted(set(saved) | set(current))
    diffs = [
        f"{k}: checkpoint {saved.get(k)!r} vs config {current.get(k)!r}"
        for k in keys
        if norm(saved.get(k)) != norm(current.get(k))
    ]
    return "; ".join(diffs[:4]) + (f" (+{len(diffs) - 4} more)" if len(diffs) > 4 else "")


def _check_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise UserError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise UserError(f"checkpoint {path} is a folder; expected a .safetensors file")
    if path.suffix in PICKLE_SUFFIXES:
        raise UserError(
            f"refusing to unpickle {path} (pickle can run arbitrary code); convert it to a "
            "safetensors stage checkpoint (imagen.checkpoints.save_stage)"
        )
    return path


def _short(err: BaseException) -> str:
    return " ".join(str(err).split())[:200]
