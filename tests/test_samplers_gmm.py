"""The samplers against a data distribution whose exact score is known: a Gaussian mixture (issue 24).

For x ~ Σ_k w_k N(μ_k, s_k² I) and z_t = α_t x + σ_t ε, z_t is the mixture Σ_k w_k N(α_t μ_k, v_k I) with
v_k = α_t² s_k² + σ_t², and the exact posterior mean — what a perfect x̂₀ model predicts — is

    E[x | z_t] = Σ_k r_k(z_t) · (μ_k + α_t s_k² (z_t − α_t μ_k) / v_k),   r_k ∝ w_k N(z_t; α_t μ_k, v_k I).

With that model ancestral sampling (a discretised reverse SDE) and DDIM / DPM-Solver++ (the probability-flow
ODE) must all give the data distribution. The distance is the kernel MMD² (Gaussian kernel, σ = 0.5: about the modes' spread) between a
sampler's output Q and the mixture P itself, in closed form on P's side:

    MMD²(Q, P) = E k(y, y') − 2 E k(y, x) + E k(x, x'),  with  E_x k(y, x) = Σ_k w_k (σ²/(σ² + s_k²))^{d/2}
    exp(−‖y − μ_k‖² / (2(σ² + s_k²))),

estimated without bias from the samples (pairs of distinct samples for the first term): 0 in expectation
exactly when Q = P, and never below 0 in truth, so a sampler fails only where the interval lies wholly above 0.
The interval is a 99% t-interval over independent replications (each a continuous, unbiased estimate), so it
needs no bootstrap of a degenerate U-statistic; and each check must be able to see an error the size of a
model that halves every mode's spread.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from harness.metrics.maths.cmmd import rbf_kernel
from harness.metrics.maths.intervals import mean_ci
from imagen.diffusion.schedules import CosineSchedule, alpha_sigma
from imagen.samplers.samplers import SAMPLERS, time_grid

MEANS = torch.tensor([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.5]], dtype=torch.float64)
STDS = torch.tensor([0.3, 0.5, 0.4], dtype=torch.float64)
WEIGHTS = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
KERNEL_SIGMA, REPLICATIONS, N = 0.5, 12, 400
SCHEDULE = CosineSchedule()


def exact_denoiser(stds: torch.Tensor = STDS):
    """E[x | z_t] of the mixture (``stds`` other than the data's: a model that has the variances wrong)."""

    def denoise(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a, s = (v.to(torch.float64).view(-1, 1, 1) for v in alpha_sigma(SCHEDULE, t.to(torch.float64)))
        var = a**2 * stds.view(1, -1, 1) ** 2 + s**2  # (B, K, 1)
        diff = z[:, None, :] - a * MEANS[None]  # (B, K, d)
        logp = (
            torch.log(WEIGHTS)[None]
            - 0.5 * (diff**2).sum(-1) / var[..., 0]
            - MEANS.shape[1] / 2 * torch.log(var[..., 0])
        )
        r = torch.softmax(logp, dim=1)[..., None]
        post = MEANS[None] + a * stds.view(1, -1, 1) ** 2 * diff / var
        return (r * post).sum(1)

    return denoise


def sample(sampler: str, steps: int, denoise=None, seed: int = 0) -> np.ndarray:
    """REPLICATIONS × N independent samples in one batch (rows never interact), one generator."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn((REPLICATIONS * N, 2), generator=g, dtype=torch.float64)
    noise_like = lambda x: torch.randn(x.shape, generator=g, dtype=x.dtype)
    grid = time_grid(steps, SCHEDULE, "uniform_t" if sampler == "ddpm" else "uniform_logsnr")
    return SAMPLERS.get(sampler)(denoise or exact_denoiser(), z, SCHEDULE, grid, noise_like).numpy()


def mmd2_to_mixture(y: np.ndarray) -> float:
    """Unbiased MMD² between the sample ``y`` and the mixture itself (module doc)."""
    n, d = y.shape
    s2, means, stds, w = KERNEL_SIGMA**2, MEANS.numpy(), STDS.numpy(), WEIGHTS.numpy()
    k_yy = rbf_kernel(y, y, KERNEL_SIGMA)
    within = (k_yy.sum() - n) / (n * (n - 1))
    v = s2 + stds**2
    sq = ((y[:, None, :] - means[None]) ** 2).sum(-1)
    cross = (w * (s2 / v) ** (d / 2) * np.exp(-sq / (2 * v))).sum(1).mean()
    vv = s2 + stds[:, None] ** 2 + stds[None, :] ** 2
    msq = ((means[:, None, :] - means[None]) ** 2).sum(-1)
    pp = (w[:, None] * w[None] * (s2 / vv) ** (d / 2) * np.exp(-msq / (2 * vv))).sum()
    return float(within - 2 * cross + pp)


def distance(sampler: str, steps: int, denoise=None):
    reps = sample(sampler, steps, denoise).reshape(REPLICATIONS, N, 2)
    return mean_ci([mmd2_to_mixture(y) for y in reps], level=0.99)


@functools.cache
def wrong_model_distance():
    """A model that has each mode's spread halved, through DDIM: the size of error the check must see."""
    return distance("ddim", 100, exact_denoiser(STDS * 0.5))


def test_the_closed_form_distance_is_zero_on_data_and_sees_a_wrong_spread():
    rng = np.random.default_rng(0)
    data = []
    for _ in range(REPLICATIONS):
        k = rng.choice(3, size=N, p=WEIGHTS.numpy())
        data.append(mmd2_to_mixture(MEANS.numpy()[k] + STDS.numpy()[k, None] * rng.normal(size=(N, 2))))
    exact = mean_ci(data, level=0.99)
    assert exact.low <= 0.0 <= exact.high
    assert wrong_model_distance().low > exact.high  # the wrong model is told apart from data


@pytest.mark.parametrize(("sampler", "steps"), [("ddpm", 1000), ("ddim", 250), ("dpmpp_2m", 250), ("dpmpp_2m", 25)])
def test_with_a_perfect_model_every_sampler_gives_the_data_distribution(sampler, steps):
    d = distance(sampler, steps)
    # MMD² is >= 0, so only an interval wholly above 0 says the sampler's distribution is not the data's
    assert d.low <= 0.0, f"{sampler} at {steps} steps: MMD² {d.mean:.2e} [{d.low:.2e}, {d.high:.2e}]"
    assert d.high < wrong_model_distance().low  # and it would have seen an error of the wrong model's size
