"""Training state for exact resume, without pickle.

One safetensors file holds the model weights (``model.*``), the EMA (``ema.*``) and every
tensor of the optimizer state (``optim.<param index>.<name>``); its metadata holds the step,
the optimizer's param groups and non-tensor state as JSON, and a fingerprint of the run's
config so a resume with a different config is refused. Data order and noise are pure
functions of (seed, step), so nothing else is needed to continue bit-exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from imagen.errors import UserError
from imagen.files import atomic_path
from imagen.training.optim import EMA

STATE_FORMAT = "imagen-bench.train-state"


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, entries in sd["state"].items():
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{idx}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{name}"] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, idx, name = key.split(".", 2)
        state.setdefault(int(idx), {})[name] = value
    for key, value in meta["scalars"].items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def save_train_state(
    path: str | Path, model: nn.Module, ema: EMA, opt: torch.optim.Optimizer, step: int, fingerprint: str
) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in ema.state_dict().items()})
    opt_tensors, opt_meta = _flatten_optimizer(opt)
    tensors.update(opt_tensors)
    meta = {
        "format": STATE_FORMAT,
        "step": step,
        "ema_updates": ema.updates,
        "fingerprint": fingerprint,
        "optimizer": opt_meta,
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"state": json.dumps(meta)})


def load_train_state(path: str | Path, model: nn.Module, ema: EMA, opt: torch.optim.Optimizer, fingerprint: str) -> int:
    """Restore everything and return the step to continue from."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["state"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
    except (SafetensorError, OSError, ValueError, KeyError, json.JSONDecodeError) as err:
        raise UserError(
            f"training state {path} is unreadable or truncated ({' '.join(str(err).split())[:160]}); "
            "delete it to restart from the last exported checkpoint"
        ) from None
    if meta.get("format") != STATE_FORMAT:
        raise UserError(f"{path} is not an imagen-bench training state")
    if meta.get("fingerprint") != fingerprint:
        raise UserError(
            f"{path} was written by a run with a different model/data/training config; "
            "use a new run_id to start a fresh run"
        )
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
    ema.shadow = {k[4:]: v.float() for k, v in tensors.items() if k.startswith("ema.")}
    ema.updates = int(meta["ema_updates"])
    opt.load_state_dict(
        _unflatten_optimizer({k: v for k, v in tensors.items() if k.startswith("optim.")}, meta["optimizer"])
    )
    return int(meta["step"])
