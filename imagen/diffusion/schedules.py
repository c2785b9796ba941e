"""Continuous-time noise schedules, t ∈ [0, 1].

A schedule maps time to the signal and noise scales of the forward process
z_t = α_t·x + σ_t·ε with α_t² + σ_t² = 1 (variance preserving). Everything is
computed in float64 and cast at the end, because at the ends of the interval
(α → 0 at t = 1 for cosine, σ → 0 at t = 0) float32 loses the digits that the
samplers' ratios need.

Imagen (arXiv 2205.11487, appendix F) uses the cosine schedule for the 64×64 and
64→256 models and a linear β schedule (1000 steps, β from 1e-4 to 0.02, in
continuous time) for 256→1024.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import torch


class NoiseSchedule(Protocol):
    """What samplers and the training loss need from a schedule."""

    @property
    def name(self) -> str: ...

    def alpha_bar(self, t: torch.Tensor) -> torch.Tensor:
        """ᾱ(t) = α_t² in float64."""
        ...


@dataclass(frozen=True)
class CosineSchedule:
    """Nichol & Dhariwal (2021) eq. 17 in continuous time.

    ᾱ(t) = f(t) / f(0),  f(t) = cos²(((t + s) / (1 + s)) · π/2),  s = 0.008.
    """

    s: float = 0.008
    # ᾱ(1) is 0 in exact arithmetic; ε-prediction then gives x̂₀ = (z − σε̂)/α with α = 0.
    # Clamping the log-SNR at −20 (ᾱ ≥ 2.1e-9, α ≥ 4.5e-5) keeps every step finite and moves
    # z₁ by less than 5e-5 of the signal.
    min_log_snr: float = -20.0
    name: str = "cosine"

    def alpha_bar(self, t: torch.Tensor) -> torch.Tensor:
        t = t.to(torch.float64)
        f = torch.cos((t + self.s) / (1 + self.s) * math.pi / 2) ** 2
        f0 = math.cos(self.s / (1 + self.s) * math.pi / 2) ** 2
        floor = 1.0 / (1.0 + math.exp(-self.min_log_snr))  # sigmoid(min_log_snr)
        return (f / f0).clamp(floor, 1.0)


@dataclass(frozen=True)
class LinearBetaSchedule:
    """Ho et al. (2020) linear β_i from β_start to β_end over N steps, in continuous time.

    With β(t) = N·(β_start + (β_end − β_start)·t), ᾱ(t) = exp(−∫₀ᵗ β) =
    exp(−N·(β_start·t + ½(β_end − β_start)·t²)); for N = 1000 this is the VP-SDE with
    β_min = 0.1, β_max = 20 (Song et al. 2021).
    """

    beta_start: float = 1e-4
    beta_end: float = 0.02
    num_timesteps: int = 1000
    name: str = "linear"

    def alpha_bar(self, t: torch.Tensor) -> torch.Tensor:
        t = t.to(torch.float64)
        n = self.num_timesteps
        return torch.exp(-n * (self.beta_start * t + 0.5 * (self.beta_end - self.beta_start) * t**2))


def alpha_sigma(schedule: NoiseSchedule, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(α_t, σ_t) in float64, with α_t² + σ_t² = 1."""
    abar = schedule.alpha_bar(t)
    return abar.sqrt(), (1.0 - abar).clamp_min(0.0).sqrt()


def log_snr(schedule: NoiseSchedule, t: torch.Tensor) -> torch.Tensor:
    """λ_t = log(α_t² / σ_t²) in float64 (±inf at the ends where a scale is exactly zero)."""
    abar = schedule.alpha_bar(t)
    return torch.log(abar) - torch.log1p(-abar)


def build_schedule(name: str, **kwargs: Any) -> NoiseSchedule:
    """Schedule from its config name: ``cosine`` or ``linear``."""
    if name == "cosine":
        return CosineSchedule(**kwargs)
    if name == "linear":
        return LinearBetaSchedule(**kwargs)
    raise ValueError(f"unknown noise schedule {name!r}; expected 'cosine' or 'linear'")
