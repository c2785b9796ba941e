"""Every sampler's full loop on a fixed tiny model, pinned to a number; prediction conversions."""

import pytest
import torch

from imagen.diffusion.gaussian import from_eps, q_sample, target_for, to_x0_eps
from imagen.diffusion.schedules import CosineSchedule, LinearBetaSchedule, alpha_sigma, log_snr
from tests.helpers.tiny import random_text, tiny_cascade

# Sum and mean |.| of the final 16x16 base-stage samples for seeds [3, 4], guidance 3, dynamic
# thresholding, 8 steps. Recorded from this implementation; a change in any sampler, schedule,
# guidance, thresholding or U-Net arithmetic moves them.
PINNED = {
    ("ddpm", 0.0): (-25.306547783926362, 0.2805770304783171),
    ("ddim", 0.0): (-9.300142151172622, 0.30550293973132625),
    ("ddim", 1.0): (-25.306547942658653, 0.2805769515550575),
    ("dpmpp_2m", 0.0): (-9.161494726231467, 0.30744608275134294),
}


@pytest.mark.parametrize("name,eta", list(PINNED))
def test_full_sampler_loop_is_pinned(name, eta):
    cascade = tiny_cascade(sampler=name, steps=8)
    cascade.sampler = type(cascade.sampler)(name=name, steps=8, eta=eta, microbatch=1)
    out = cascade.sample(["a", "b"], [3, 4], stop_at="base16", text=random_text(2))["base16"]
    total, mean_abs = out.double().sum().item(), out.double().abs().mean().item()
    print(f"PINNED {name} {eta}: ({total!r}, {mean_abs!r})")
    exp_total, exp_abs = PINNED[(name, eta)]
    assert total == pytest.approx(exp_total, abs=1e-3)
    assert mean_abs == pytest.approx(exp_abs, rel=1e-4)


def test_ddim_with_eta_one_is_ancestral_sampling():
    """DDIM's η = 1 variance equals the DDPM posterior variance, and both draw the same noise."""
    text = random_text(2)
    ddpm = tiny_cascade(sampler="ddpm", steps=6).sample(["a", "b"], [0, 1], stop_at="base16", text=text)["base16"]
    cascade = tiny_cascade(sampler="ddim", steps=6)
    cascade.sampler = type(cascade.sampler)(name="ddim", steps=6, eta=1.0, microbatch=1)
    ddim = cascade.sample(["a", "b"], [0, 1], stop_at="base16", text=text)["base16"]
    torch.testing.assert_close(ddim, ddpm, rtol=0, atol=1e-5)


def test_samplers_differ_and_ddim_eta0_is_deterministic():
    text = random_text(2)
    outs = {}
    for name in ["ddpm", "ddim", "dpmpp_2m"]:
        outs[name] = tiny_cascade(sampler=name, steps=8).sample(["a", "b"], [3, 4], stop_at="base16", text=text)[
            "base16"
        ]
    assert not torch.equal(outs["ddpm"], outs["ddim"]) and not torch.equal(outs["ddim"], outs["dpmpp_2m"])
    again = tiny_cascade(sampler="ddim", steps=8).sample(["a", "b"], [3, 4], stop_at="base16", text=text)["base16"]
    assert torch.equal(outs["ddim"], again)


@pytest.mark.parametrize("prediction", ["epsilon", "x0", "v"])
def test_prediction_conversions_round_trip(prediction):
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(4, 3, 8, 8, generator=g), torch.randn(4, 3, 8, 8, generator=g)
    t = torch.tensor([0.1, 0.4, 0.7, 0.95], dtype=torch.float64)
    sched = CosineSchedule()
    z = q_sample(sched, x0, t, eps)
    a, s = alpha_sigma(sched, t)
    out = target_for(prediction, x0, eps, a, s)
    x0_hat, eps_hat = to_x0_eps(prediction, out, z, a, s)
    torch.testing.assert_close(x0_hat, x0, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(eps_hat, eps, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(from_eps(prediction, eps, z, a, s), out, rtol=1e-3, atol=1e-3)


def test_schedules_match_their_definitions():
    t = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=torch.float64)
    lin = LinearBetaSchedule()
    # alpha_bar(t) = exp(-(0.1 t + 9.95 t^2)) for beta 1e-4..0.02 over 1000 steps
    torch.testing.assert_close(lin.alpha_bar(t), torch.exp(-(0.1 * t + 9.95 * t**2)))
    cos = CosineSchedule()
    abar = cos.alpha_bar(t)
    assert abar[0].item() == pytest.approx(1.0) and abar[1:].lt(abar[:-1]).all()
    assert log_snr(cos, t)[-1].item() == pytest.approx(-20.0, abs=1e-6)  # clamped end point
    a, s = alpha_sigma(cos, t)
    torch.testing.assert_close(a**2 + s**2, torch.ones(4, dtype=torch.float64))


def test_logsnr_time_grid_is_uniform_in_log_snr_and_helps_dpmpp_on_the_linear_schedule():
    from benchmarks.scripts.time_grids import solver_error
    from imagen.diffusion.schedules import build_schedule, log_snr
    from imagen.samplers.samplers import time_grid

    for name in ("linear", "cosine"):
        schedule = build_schedule(name)
        grid = time_grid(20, schedule, "uniform_logsnr")
        assert grid[0] == 1.0 and grid[-1] == 0.0 and len(grid) == 21 and bool((grid[1:] < grid[:-1]).all())
        steps = torch.diff(log_snr(schedule, grid[:-1]))
        assert torch.allclose(steps, steps.mean(), rtol=1e-6)
    linear = {"name": "linear"}
    uniform_t = solver_error(linear, "dpmpp_2m", 20, "uniform_t", 0.5, 2048)
    uniform_l = solver_error(linear, "dpmpp_2m", 20, "uniform_logsnr", 0.5, 2048)
    assert uniform_t / uniform_l > 2.5  # benchmarks/scripts/time_grids.py: 3.2x at 20 steps


def test_unknown_time_grid_is_refused():
    import pytest as _pytest

    from imagen.cascade import SamplerConfig
    from imagen.errors import UserError

    with _pytest.raises(UserError, match="sampler.grid must be one of"):
        SamplerConfig.from_config({"name": "ddim", "steps": 5, "grid": "karras"})
