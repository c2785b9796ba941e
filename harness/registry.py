"""The registry of names every part above the model uses (defined in ``imagen.registry``, as the errors are,
so the model's samplers and the harness's metrics share one class)."""

from __future__ import annotations

from imagen.registry import Registry, UnknownNameError, load_target

__all__ = ["Registry", "UnknownNameError", "load_target"]
