"""The forward process, prediction-type conversions and the training loss.

The network predicts one of ε (``epsilon``), x₀ (``x0``) or v = α·ε − σ·x₀ (``v``,
Salimans & Ho 2022). Samplers work with x̂₀ and ε̂; these functions convert.
"""

from __future__ import annotations

from typing import Literal

import torch

from imagen.diffusion.schedules import NoiseSchedule, alpha_sigma

PredictionType = Literal["epsilon", "x0", "v"]
PREDICTION_TYPES: tuple[str, ...] = ("epsilon", "x0", "v")


def _bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) float64 → (B, 1, 1, 1) in like's dtype."""
    return v.to(like.dtype).view(-1, *([1] * (like.ndim - 1)))


def q_sample(schedule: NoiseSchedule, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """z_t = α_t·x₀ + σ_t·ε (Ho et al. 2020, eq. 4)."""
    a, s = alpha_sigma(schedule, t)
    return _bcast(a, x0) * x0 + _bcast(s, x0) * noise


def target_for(
    prediction: str, x0: torch.Tensor, noise: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor
) -> torch.Tensor:
    """What the network is trained to output for the given prediction type."""
    if prediction == "epsilon":
        return noise
    if prediction == "x0":
        return x0
    if prediction == "v":
        return _bcast(alpha, x0) * noise - _bcast(sigma, x0) * x0
    raise ValueError(f"unknown prediction type {prediction!r}; expected one of {PREDICTION_TYPES}")


def to_x0_eps(
    prediction: str, out: torch.Tensor, z: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x̂₀, ε̂) from the network output, using z_t = α·x₀ + σ·ε and α² + σ² = 1.

    At t = 1 with the cosine schedule α = 0, so x̂₀ from an ε-prediction is undefined; it is
    clamped through a tiny α floor, and the samplers never divide by it at that point.
    """
    a, s = _bcast(alpha, z), _bcast(sigma, z)
    if prediction == "epsilon":
        eps = out
        x0 = (z - s * eps) / a.clamp_min(1e-8)
    elif prediction == "x0":
        x0 = out
        eps = (z - a * x0) / s.clamp_min(1e-8)
    elif prediction == "v":
        x0 = a * z - s * out
        eps = s * z + a * out
    else:
        raise ValueError(f"unknown prediction type {prediction!r}; expected one of {PREDICTION_TYPES}")
    return x0, eps


def from_eps(
    prediction: str, eps: torch.Tensor, z: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor
) -> torch.Tensor:
    """The network output that corresponds to ε̂ (inverse of :func:`to_x0_eps`)."""
    a, s = _bcast(alpha, z), _bcast(sigma, z)
    if prediction == "epsilon":
        return eps
    x0 = (z - s * eps) / a.clamp_min(1e-8)
    if prediction == "x0":
        return x0
    return a * eps - s * x0


def diffusion_loss(
    model_out: torch.Tensor,
    prediction: str,
    x0: torch.Tensor,
    noise: torch.Tensor,
    alpha: torch.Tensor,
    sigma: torch.Tensor,
) -> torch.Tensor:
    """Per-sample mean squared error against the prediction target (the "simple" loss, Ho et al. 2020)."""
    target = target_for(prediction, x0, noise, alpha, sigma)
    return (model_out.float() - target.float()).pow(2).flatten(1).mean(1)


def noise_augment(
    schedule: NoiseSchedule, lowres: torch.Tensor, aug_level: torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """Noise conditioning augmentation (Imagen §2.4, fig. A.32).

    The low-resolution conditioning image is corrupted by the forward process at time
    ``aug_level`` and the super-resolution model is told that level: training draws a random
    level per sample, sampling uses a fixed level that can be swept.
    """
    return q_sample(schedule, lowres, aug_level, noise)
