"""Sampling algorithms: one small function each, with one shared signature.

    sample_x(denoise, z, schedule, times, noise_like, callback=None) -> z_0

``denoise(z, t)`` returns the (guided, thresholded) x̂₀ for the batch at time t (a (B,)
tensor); ``times`` is a descending 1-D grid from 1 to 0; ``noise_like(z)`` draws fresh
Gaussian noise shaped like z from each sample's own generator. The samplers know nothing
about the network or its prediction type, only the schedule's α_t, σ_t.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from imagen.diffusion.schedules import NoiseSchedule, alpha_sigma, log_snr
from imagen.registry import Registry

Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
NoiseLike = Callable[[torch.Tensor], torch.Tensor]
Callback = Callable[[int, torch.Tensor, torch.Tensor], None] | None


def _scales(schedule: NoiseSchedule, t: torch.Tensor, s: torch.Tensor) -> tuple[float, float, float, float]:
    (a_t, s_t), (a_s, s_s) = alpha_sigma(schedule, t.view(1)), alpha_sigma(schedule, s.view(1))
    return a_t.item(), s_t.item(), a_s.item(), s_s.item()


def _batch_t(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.float32).expand(z.shape[0]).clone()


def sample_ddpm(
    denoise: Denoise,
    z: torch.Tensor,
    schedule: NoiseSchedule,
    times: torch.Tensor,
    noise_like: NoiseLike,
    callback: Callback = None,
) -> torch.Tensor:
    """Ancestral sampling (Ho et al. 2020, Alg. 2) in continuous time (Kingma et al. 2021, eq. 28).

    Each step draws z_s ~ q(z_s | z_t, x = x̂₀): with α_{t|s} = α_t/α_s and
    σ²_{t|s} = σ_t² − α²_{t|s}·σ_s², the mean is (α_{t|s}σ_s²/σ_t²)·z_t + (α_s σ²_{t|s}/σ_t²)·x̂₀
    and the variance σ²_{t|s}·σ_s²/σ_t². The last step (s = 0) returns the mean.
    """
    for i in range(len(times) - 1):
        t, s = times[i], times[i + 1]
        a_t, s_t, a_s, s_s = _scales(schedule, t, s)
        x0 = denoise(z, _batch_t(z, t))
        a_ts = a_t / a_s
        var_ts = s_t**2 - a_ts**2 * s_s**2
        mean = (a_ts * s_s**2 / s_t**2) * z + (a_s * var_ts / s_t**2) * x0
        std = (var_ts * s_s**2 / s_t**2) ** 0.5
        z = mean + std * noise_like(z) if s_s > 0 else mean
        if callback is not None:
            callback(i, z, x0)
    return z


def sample_ddim(
    denoise: Denoise,
    z: torch.Tensor,
    schedule: NoiseSchedule,
    times: torch.Tensor,
    noise_like: NoiseLike,
    callback: Callback = None,
    eta: float = 0.0,
) -> torch.Tensor:
    """DDIM (Song et al. 2021, eq. 12 and 16).

    ε̂ = (z_t − α_t x̂₀)/σ_t;  c = η·(σ_s/σ_t)·√(1 − α_t²/α_s²);
    z_s = α_s x̂₀ + √(σ_s² − c²)·ε̂ + c·ξ.  η = 0 is deterministic; η = 1 matches ancestral sampling.
    """
    for i in range(len(times) - 1):
        t, s = times[i], times[i + 1]
        a_t, s_t, a_s, s_s = _scales(schedule, t, s)
        x0 = denoise(z, _batch_t(z, t))
        eps = (z - a_t * x0) / s_t
        c = eta * (s_s / s_t) * max(0.0, 1.0 - a_t**2 / a_s**2) ** 0.5
        z = a_s * x0 + max(0.0, s_s**2 - c**2) ** 0.5 * eps
        if c > 0:
            z = z + c * noise_like(z)
        if callback is not None:
            callback(i, z, x0)
    return z


def sample_dpmpp_2m(
    denoise: Denoise,
    z: torch.Tensor,
    schedule: NoiseSchedule,
    times: torch.Tensor,
    noise_like: NoiseLike,
    callback: Callback = None,
) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", Alg. 2), data prediction, multistep.

    With λ = log(α/σ) and h = λ_s − λ_t:  z_s = (σ_s/σ_t)·z_t + α_s·(1 − e^{−h})·D, where
    D = x̂₀ on the first and last steps and D = (1 + 1/2r)·x̂₀ − (1/2r)·x̂₀_prev otherwise,
    r = h_prev/h. e^{−h} is computed as α_t σ_s/(σ_t α_s), which stays finite at σ_s = 0.
    """
    x0_prev, h_prev = None, None
    for i in range(len(times) - 1):
        t, s = times[i], times[i + 1]
        a_t, s_t, a_s, s_s = _scales(schedule, t, s)
        x0 = denoise(z, _batch_t(z, t))
        exp_neg_h = (a_t * s_s) / (s_t * a_s)
        h = None if s_s == 0 else -torch.log(torch.tensor(exp_neg_h, dtype=torch.float64)).item()
        if x0_prev is None or h is None:
            d = x0
        else:
            r = h_prev / h
            d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_prev
        z = (s_s / s_t) * z + a_s * (1 - exp_neg_h) * d
        x0_prev, h_prev = x0, h
        if callback is not None:
            callback(i, z, x0)
    return z


SAMPLERS: Registry[Callable[..., torch.Tensor]] = Registry(
    "sampler",
    {"ddpm": sample_ddpm, "ddim": sample_ddim, "dpmpp_2m": sample_dpmpp_2m},
    check=callable,
    expected="a sampler function (denoise, z, schedule, grid, noise, callback) -> z",
)


GRIDS = ("uniform_t", "uniform_logsnr")


def time_grid(
    steps: int, schedule: NoiseSchedule | None = None, spacing: str = "uniform_t", t_end: float = 1e-3
) -> torch.Tensor:
    """A descending grid of ``steps`` steps from t = 1 to t = 0 (float64, length steps + 1).

    ``uniform_t``: equal steps in t. ``uniform_logsnr``: equal steps in λ_t = log(α_t²/σ_t²) from λ(1) to
    λ(t_end), then a last step to 0 (DPM-Solver's "logSNR" spacing, Lu et al. 2022, §3.4): for the linear
    β schedule, uniform t spends most steps where λ barely moves, so few-step samplers do better in λ.
    """
    if steps < 1:
        raise ValueError(f"sampler steps must be >= 1, got {steps}")
    if spacing == "uniform_t" or steps == 1:
        return torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    if spacing != "uniform_logsnr" or schedule is None:
        raise ValueError(f"unknown time grid {spacing!r} (or no schedule given); expected one of {GRIDS}")
    ends = log_snr(schedule, torch.tensor([1.0, t_end], dtype=torch.float64))
    targets = torch.linspace(float(ends[0]), float(ends[1]), steps, dtype=torch.float64)
    lo = torch.full_like(targets, t_end)
    hi = torch.ones_like(targets)
    for _ in range(64):  # λ(t) decreases in t: bisection inverts it to float64 precision
        mid = (lo + hi) / 2
        above = log_snr(schedule, mid) > targets
        lo, hi = torch.where(above, mid, lo), torch.where(above, hi, mid)
    ts = (lo + hi) / 2
    ts[0], ts[-1] = 1.0, t_end
    return torch.cat([ts, torch.zeros(1, dtype=torch.float64)])
