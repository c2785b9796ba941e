"""Which device a run uses, and what it was: ``device=auto`` and the identity recorded with every run.

``auto`` is CUDA when a GPU is visible, else the CPU. A device is recorded by *kind* in a run's fingerprint
(CPU and GPU kernels round differently, so a run folder made on one kind refuses a resume on the other)
and in full in ``results.json`` (GPU name, memory, compute capability, CUDA and cuDNN versions, driver),
so a number can always be traced to the hardware that made it.

``deterministic=true`` asks torch for bit-exact reruns on the same device: deterministic algorithms
everywhere (an op without one raises rather than silently varying), cuDNN autotuning off, and the cuBLAS
workspace setting CUDA needs for deterministic matrix products. On the CPU our kernels are already
deterministic for a fixed thread count (generation pins ``threads``); on a GPU it costs speed.
"""

from __future__ import annotations

import os
import platform
from typing import Any

import torch

from imagen.errors import UserError

KINDS = ("auto", "cpu", "cuda")


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """``auto`` → ``cuda`` when available, else ``cpu``; ``cpu``, ``cuda``, ``cuda:N`` as given (checked)."""
    text = "auto" if name is None else str(name).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise UserError(f"device must be auto, cpu, cuda or cuda:<index>, got {name!r}") from None
    if dev.type not in ("cpu", "cuda"):
        raise UserError(f"device must be auto, cpu, cuda or cuda:<index>, got {name!r}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device={name} but no CUDA GPU is visible to torch (device=auto uses the CPU then)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(f"device={name} but only {torch.cuda.device_count()} GPU(s) are visible")
    return dev


def _nvidia_driver() -> str | None:
    """The NVIDIA driver version, from the kernel module's own file (no nvidia-smi needed)."""
    try:
        with open("/proc/driver/nvidia/version", encoding="utf-8") as f:
            first = f.readline()
    except OSError:
        return None
    words = first.split()
    return next((w for w in words if w[:1].isdigit() and "." in w), None)


def device_identity(device: torch.device | str) -> dict[str, Any]:
    """What the device is, for ``results.json``: kind and name, and on a GPU its memory, capability and the
    CUDA, cuDNN and driver versions torch runs with."""
    dev = torch.device(device)
    if dev.type != "cuda":
        return {"kind": "cpu", "name": platform.processor() or platform.machine(), "threads": torch.get_num_threads()}
    index = dev.index if dev.index is not None else torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    return {
        "kind": "cuda",
        "name": props.name,
        "index": index,
        "memory_gib": round(props.total_memory / 2**30, 1),
        "capability": f"{props.major}.{props.minor}",
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "driver": _nvidia_driver(),
        "count": torch.cuda.device_count(),
    }


def device_kind(device: torch.device | str) -> str:
    """``cpu`` or ``cuda``: what a run's fingerprint records (kernels of one kind round alike)."""
    return torch.device(device).type


def set_deterministic(enabled: bool) -> None:
    """Bit-exact reruns on one device (module docstring); ``False`` restores torch's defaults."""
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it for deterministic GEMMs
    torch.use_deterministic_algorithms(bool(enabled))
    torch.backends.cudnn.deterministic = bool(enabled)
    torch.backends.cudnn.benchmark = False
