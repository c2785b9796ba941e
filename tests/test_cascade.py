"""The cascade: images are a function of (prompt, seed) alone; noise augmentation reaches SR stages."""

import pytest
import torch

from imagen.cascade import StageSpec, to_uint8
from imagen.diffusion.guidance import Conditioning
from imagen.errors import UserError
from imagen.training.trainer import Draws, TrainSettings, stage_loss
from tests.helpers.tiny import SR_UNET, random_text, tiny_cascade


def test_same_seed_same_image_for_batch_sizes_1_and_4_and_any_order():
    cascade = tiny_cascade(sampler="ddpm", steps=5)
    emb, mask = random_text(4)
    seeds = [11, 12, 13, 14]
    batch = cascade.sample(["p"] * 4, seeds, text=(emb, mask))
    assert set(batch) == {"base16", "sr32"} and batch["sr32"].shape == (4, 3, 32, 32)
    for i in range(4):
        single = cascade.sample(["p"], [seeds[i]], text=(emb[i : i + 1], mask[i : i + 1]))
        for stage in batch:
            assert torch.equal(to_uint8(single[stage][0]), to_uint8(batch[stage][i])), (stage, i)
            assert torch.equal(single[stage][0], batch[stage][i])  # bit-identical floats too
    order = [2, 0, 3, 1]
    shuffled = cascade.sample(["p"] * 4, [seeds[i] for i in order], text=(emb[order], mask[order]))
    assert torch.equal(shuffled["sr32"], batch["sr32"][order])


def test_different_seeds_give_different_images():
    cascade = tiny_cascade(steps=4)
    emb, mask = random_text(1)
    a = cascade.sample(["p"], [0], text=(emb, mask), stop_at="base16")["base16"]
    b = cascade.sample(["p"], [1], text=(emb, mask), stop_at="base16")["base16"]
    assert (a - b).abs().mean() > 0.05


class Spy(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner, self.aug_levels, self.lowres_shapes = inner, [], []

    def forward(self, x, t, text, mask, lowres=None, aug_level=None):
        self.aug_levels.append(aug_level.clone())
        self.lowres_shapes.append(tuple(lowres.shape))
        return self.inner(x, t, text, mask, lowres=lowres, aug_level=aug_level)


def test_sampling_aug_level_reaches_the_sr_model_and_changes_its_output():
    outs = {}
    for level in (0.0, 0.3):
        cascade = tiny_cascade(steps=3, aug_level=level)
        spy = Spy(cascade.stages[1].unet)
        cascade.stages[1].unet = spy
        outs[level] = cascade.sample(["p", "q"], [5, 6], text=random_text(2))["sr32"]
        levels = torch.cat(spy.aug_levels)
        assert torch.allclose(levels, torch.full_like(levels, level)) and len(spy.aug_levels) == 3 * 2
        assert spy.lowres_shapes[0] == (2, 3, 32, 32)  # upsampled low-res condition
    assert not torch.equal(outs[0.0], outs[0.3])


def test_training_draws_a_random_aug_level_per_sample_and_passes_it():
    cascade = tiny_cascade()
    stage = cascade.stages[1]
    spy = Spy(stage.unet)
    emb, mask = random_text(4)
    x0 = torch.rand(4, 3, 32, 32) * 2 - 1
    settings = TrainSettings(p_uncond=0.0)
    loss = stage_loss(stage, spy, x0, Conditioning(emb, mask), Draws(0, 0, range(4)), settings)
    assert torch.isfinite(loss)
    levels = spy.aug_levels[0]
    assert levels.shape == (4,) and levels.min() >= 0 and levels.max() <= stage.spec.train_aug_max
    assert len(set(levels.tolist())) == 4  # one level per sample
    # the aug level is an input the network uses: changing it changes the prediction
    z, t = torch.randn(1, 3, 32, 32), torch.tensor([0.5])
    low = torch.zeros(1, 3, 32, 32)
    with torch.no_grad():
        o1 = stage.unet(z, t, emb[:1], mask[:1], lowres=low, aug_level=torch.tensor([0.0]))
        o2 = stage.unet(z, t, emb[:1], mask[:1], lowres=low, aug_level=torch.tensor([0.8]))
    assert not torch.allclose(o1, o2)


def test_a_lowres_skip_stage_must_predict_x0():
    """lowres_skip makes the U-Net output an image (low-res + correction): an ε or v stage would misread it."""
    unet = {**SR_UNET, "lowres_skip": True}
    with pytest.raises(UserError, match=r"model.stages.sr32.unet.lowres_skip .* set model.stages.sr32.prediction=x0"):
        StageSpec.from_config("sr32", {"resolution": 32, "lowres_resolution": 16, "unet": unet, "prediction": "v"})
    assert (
        StageSpec.from_config(
            "sr32", {"resolution": 32, "lowres_resolution": 16, "unet": unet, "prediction": "x0"}
        ).prediction
        == "x0"
    )
