"""Classifier-free guidance: one batched forward equals the two-pass computation."""

import pytest
import torch

from imagen.diffusion.gaussian import to_x0_eps
from imagen.diffusion.guidance import Conditioning, guided_eps
from imagen.diffusion.schedules import CosineSchedule, alpha_sigma
from tests.helpers.tiny import random_text, tiny_base


class CountingModel(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls, self.batch_sizes = inner, 0, []

    def forward(self, x, t, text, mask, lowres=None, aug_level=None):
        self.calls += 1
        self.batch_sizes.append(x.shape[0])
        return self.inner(x, t, text, mask, lowres=lowres, aug_level=aug_level)


@pytest.mark.parametrize("prediction", ["epsilon", "x0", "v"])
@pytest.mark.parametrize("w", [1.0, 3.0, 7.5])
def test_batched_cfg_equals_two_passes(prediction, w):
    model = CountingModel(tiny_base())
    g = torch.Generator().manual_seed(1)
    z = torch.randn(3, 3, 16, 16, generator=g)
    t = torch.tensor([0.2, 0.5, 0.9])
    text, mask = random_text(3)
    a, s = alpha_sigma(CosineSchedule(), t.double())
    with torch.no_grad():
        x0, eps = guided_eps(model, z, t, Conditioning(text, mask), w, prediction, a, s)
        assert model.calls == 1 and model.batch_sizes == [3 if w == 1.0 else 6]  # ONE forward call
        out_c = model.inner(z, t, text, mask)
        out_u = model.inner(z, t, torch.zeros_like(text), torch.zeros_like(mask))
    _, eps_c = to_x0_eps(prediction, out_c, z, a, s)
    _, eps_u = to_x0_eps(prediction, out_u, z, a, s)
    expected = w * eps_c + (1 - w) * eps_u  # eps~ = w eps(z, c) + (1 - w) eps(z)
    # The fused attention kernel rounds a batch of 6 and two of 3 a few ULPs apart, and guidance
    # multiplies those differences by w: the tolerance scales with w.
    torch.testing.assert_close(eps, expected, rtol=1e-4, atol=1e-5 * max(1.0, w))
    sa, ss = a.float().view(-1, 1, 1, 1), s.float().view(-1, 1, 1, 1)
    torch.testing.assert_close(x0, (z - ss * expected) / sa, rtol=1e-3, atol=1e-4)


def test_guidance_changes_the_prediction_and_null_text_is_well_defined():
    model = tiny_base()
    z, t = torch.randn(2, 3, 16, 16), torch.tensor([0.5, 0.5])
    text, mask = random_text(2)
    a, s = alpha_sigma(CosineSchedule(), t.double())
    with torch.no_grad():
        _, e1 = guided_eps(model, z, t, Conditioning(text, mask), 1.0, "epsilon", a, s)
        _, e5 = guided_eps(model, z, t, Conditioning(text, mask), 5.0, "epsilon", a, s)
        out_null = model(z, t, torch.zeros_like(text), torch.zeros_like(mask))
    assert not torch.allclose(e1, e5)
    assert torch.isfinite(out_null).all()  # an all-False mask attends only the learned null token
