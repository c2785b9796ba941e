"""Thresholding against the paper's formula on crafted tensors (Imagen §2.3)."""

import numpy as np
import pytest
import torch

from imagen.samplers.thresholding import build_thresholder, dynamic_threshold, static_threshold


def test_static_clips_to_unit_range():
    x = torch.tensor([[-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.5]]).view(1, 1, 1, 7)
    assert torch.equal(static_threshold(x).flatten(), torch.tensor([-1.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.0]))


def test_dynamic_matches_formula_per_sample():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 3, 8, 8, generator=g) * torch.tensor([0.3, 2.0, 5.0]).view(3, 1, 1, 1)
    out = dynamic_threshold(x, 99.5)
    for i in range(3):
        a = x[i].numpy().astype(np.float64)
        s = max(1.0, np.percentile(np.abs(a), 99.5))  # s = max(1, percentile(|x0|, p))
        expected = np.clip(a, -s, s) / s  # x0 <- clip(x0, -s, s) / s
        np.testing.assert_allclose(out[i].numpy(), expected, rtol=1e-5, atol=1e-6)


def test_dynamic_leaves_in_range_samples_alone_and_scales_the_rest():
    small = torch.full((1, 3, 4, 4), 0.4)
    assert torch.equal(dynamic_threshold(small), small)  # s = max(1, 0.4) = 1: unchanged
    big = torch.linspace(-10, 10, 48).view(1, 3, 4, 4)
    out = dynamic_threshold(big, 50.0).flatten()
    x = big.flatten()
    s = float(np.percentile(np.abs(x.numpy()), 50))
    inside = x.abs() < s
    assert inside.any() and (~inside).any()
    torch.testing.assert_close(out[inside], x[inside] / s)  # divided by s, not clipped
    torch.testing.assert_close(out[~inside], torch.sign(x[~inside]))  # clipped to ±s, then / s


def test_default_percentile_is_the_papers():
    import inspect

    assert inspect.signature(dynamic_threshold).parameters["percentile"].default == 99.5
    with pytest.raises(ValueError, match="unknown thresholding"):
        build_thresholder("adaptive")
