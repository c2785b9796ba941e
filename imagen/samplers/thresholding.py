"""Thresholding of the predicted x̂₀ at each sampling step (Imagen §2.3).

``none``: leave x̂₀ as predicted. ``static``: clip to [−1, 1]. ``dynamic``: the paper's
dynamic thresholding, with its default percentile p = 99.5.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Thresholder = Callable[[torch.Tensor], torch.Tensor]
THRESHOLDING_MODES = ("none", "static", "dynamic")


def no_threshold(x0: torch.Tensor) -> torch.Tensor:
    """Return x̂₀ unchanged."""
    return x0


def static_threshold(x0: torch.Tensor) -> torch.Tensor:
    """Imagen §2.3: "static thresholding ... elementwise clipping the x-prediction to [−1, 1]"."""
    return x0.clamp(-1.0, 1.0)


def dynamic_threshold(x0: torch.Tensor, percentile: float = 99.5) -> torch.Tensor:
    """Imagen §2.3 dynamic thresholding.

    "At each sampling step we set s to a certain percentile absolute pixel value in x̂₀^t,
    and if s > 1, then we threshold x̂₀^t to the range [−s, s] and then divide by s."
    Per sample: s = max(1, percentile(|x̂₀|, p)); x̂₀ ← clip(x̂₀, −s, s) / s.
    The paper uses p = 99.5 (fig. A.10; pseudo-code fig. A.31).
    """
    if not 0.0 < percentile <= 100.0:
        raise ValueError(f"dynamic thresholding percentile must be in (0, 100], got {percentile}")
    flat = x0.reshape(x0.shape[0], -1).abs().float()
    s = torch.quantile(flat, percentile / 100.0, dim=1)  # per-sample percentile of |x̂₀|
    s = s.clamp_min(1.0).to(x0.dtype).view(-1, *([1] * (x0.ndim - 1)))
    return torch.maximum(torch.minimum(x0, s), -s) / s


def build_thresholder(mode: str, percentile: float = 99.5) -> Thresholder:
    """Thresholder from its config name: ``none`` | ``static`` | ``dynamic``."""
    if mode == "none":
        return no_threshold
    if mode == "static":
        return static_threshold
    if mode == "dynamic":
        return lambda x0: dynamic_threshold(x0, percentile)
    raise ValueError(f"unknown thresholding {mode!r}; expected one of {THRESHOLDING_MODES}")
