"""U-Net conditioning variants of the paper's ablation (mean pooling, attention pooling, cross-attention)."""

import pytest
import torch

from imagen.unets import EfficientUNet, UNet
from tests.helpers.tiny import perturb, random_text

VARIANTS = {  # (text_pooling, cross-attention resolutions)
    "mean_pooling": ("mean", []),
    "attention_pooling": ("attention", []),
    "cross_attention": ("none", [8]),
    "imagen": ("attention", [8]),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_conditioning_variant_uses_the_text(variant):
    pooling, cross = VARIANTS[variant]
    torch.manual_seed(0)
    net = perturb(
        UNet(
            image_size=16,
            channels=16,
            channel_mult=(1, 2),
            num_res_blocks=1,
            attn_resolutions=(8,),
            cross_attn_resolutions=cross,
            head_channels=8,
            text_dim=24,
            text_pooling=pooling,
        )
    ).eval()
    names = {type(m).__name__ for m in net.modules()}
    assert ("CrossAttention" in names) == bool(cross)
    assert {"mean": "MeanPool", "attention": "AttentionPool"}.get(pooling, "none") in names | {"none"}
    z, t = torch.randn(1, 3, 16, 16).repeat(2, 1, 1, 1), torch.tensor([0.5, 0.5])
    text, mask = random_text(2)
    with torch.no_grad():
        out = net(z, t, text, mask)
    assert out.shape == z.shape and not torch.allclose(out[0], out[1])  # different text, different output


def test_no_text_path_means_text_is_ignored():
    torch.manual_seed(0)
    net = perturb(
        UNet(
            image_size=16,
            channels=16,
            channel_mult=(1, 2),
            num_res_blocks=1,
            attn_resolutions=(8,),
            cross_attn_resolutions=(),
            head_channels=8,
            text_dim=24,
            text_pooling="none",
        )
    ).eval()
    z, t = torch.randn(1, 3, 16, 16).repeat(2, 1, 1, 1), torch.tensor([0.5, 0.5])
    text, mask = random_text(2)
    with torch.no_grad():
        out = net(z, t, text, mask)
    assert torch.equal(out[0], out[1])


def test_efficient_unet_structure_follows_the_paper():
    """DBlocks downsample first; UBlocks upsample last; residuals scaled by 1/√2; attention at the bottom only."""
    net = EfficientUNet(
        stem_channels=8,
        block_channels=(8, 16, 32),
        block_res_blocks=(1, 2, 3),
        text_dim=24,
        self_attn_blocks=(False, False, True),
        cross_attn_blocks=(False, False, True),
        block_strides=(2, 2, 2),
        attn_heads=2,
    )
    first_d = net.down[0].layers[0]
    assert isinstance(first_d, torch.nn.Conv2d) and first_d.stride == (2, 2)
    last_u = net.up[0].layers
    assert isinstance(last_u[-2], torch.nn.Upsample) and isinstance(last_u[-1], torch.nn.Conv2d)
    res_blocks = [m for m in net.modules() if type(m).__name__ == "ResBlock"]
    assert len(res_blocks) == 2 * (1 + 2 + 3) and all(abs(b.skip_scale - 2**-0.5) < 1e-12 for b in res_blocks)
    attn = [(i, type(m).__name__) for i, s in enumerate(net.down) for m in s.layers if "Attention" in type(m).__name__]
    assert attn == [(2, "SelfAttention"), (2, "CrossAttention")]
    with pytest.raises(ValueError, match="needs the upsampled low-resolution image"):
        net(torch.zeros(1, 3, 32, 32), torch.zeros(1), torch.zeros(1, 2, 24), torch.ones(1, 2, dtype=torch.bool))


def _sr(lowres_skip: bool) -> EfficientUNet:
    torch.manual_seed(0)
    return EfficientUNet(
        stem_channels=8,
        block_channels=(8, 16),
        block_res_blocks=(1, 1),
        block_strides=(2, 2),
        self_attn_blocks=(False, True),
        cross_attn_blocks=(False, True),
        attn_heads=2,
        text_dim=24,
        lowres_skip=lowres_skip,
    ).eval()


def test_lowres_skip_starts_at_the_upsampled_lowres_image_and_learns_a_correction():
    """With the zero-initialised output layer, a fresh lowres_skip net returns its low-res input exactly;
    once the correction is non-zero, it is what the plain net (same weights) outputs."""
    z, low = torch.randn(2, 3, 16, 16), torch.rand(2, 3, 16, 16) * 2 - 1
    t, aug = torch.tensor([0.9, 0.1]), torch.tensor([0.0, 0.3])
    text, mask = random_text(2)
    skip, plain = _sr(True), _sr(False)
    with torch.no_grad():
        assert torch.equal(skip(z, t, text, mask, lowres=low, aug_level=aug), low)
        perturb(skip)
        plain.load_state_dict(skip.state_dict())
        out_skip = skip(z, t, text, mask, lowres=low, aug_level=aug)
        out_plain = plain(z, t, text, mask, lowres=low, aug_level=aug)
    assert out_plain.abs().max() > 1e-3
    torch.testing.assert_close(out_skip, out_plain + low)


def test_lowres_skip_keeps_the_lowres_image_in_full_precision_under_bf16_autocast():
    low = torch.full((1, 3, 16, 16), 0.8667)  # the world's background grey, not representable in bf16
    net = _sr(True)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(torch.randn(1, 3, 16, 16), torch.tensor([0.5]), *random_text(1), lowres=low, aug_level=torch.zeros(1))
    assert out.dtype == torch.float32 and torch.equal(out, low)


def test_lowres_skip_needs_a_lowres_input():
    with pytest.raises(ValueError, match="needs lowres_cond=True"):
        EfficientUNet(
            stem_channels=8,
            block_channels=(8,),
            block_res_blocks=(1,),
            block_strides=(2,),
            self_attn_blocks=(False,),
            cross_attn_blocks=(False,),
            text_dim=24,
            lowres_cond=False,
            lowres_skip=True,
        )


def test_attention_layers_match_a_reference_computation():
    """The heads are split into contiguous tensors (the CPU's fused kernel); the result is plain attention."""
    from imagen.unets.layers import CrossAttention, SelfAttention

    torch.manual_seed(0)
    x, text = torch.randn(2, 16, 4, 4), torch.randn(2, 5, 12)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    self_attn, cross = perturb(SelfAttention(16, heads=2)), perturb(CrossAttention(16, 12, heads=2))

    def attend(q, k, v, keep=None):  # (B, h, N, d) each
        s = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
        if keep is not None:
            s = s.masked_fill(~keep, float("-inf"))
        return s.softmax(-1) @ v

    with torch.no_grad():
        q, k, v = self_attn.qkv(self_attn.norm(x)).flatten(2).chunk(3, dim=1)  # (B, C, 16)
        heads = lambda t: t.reshape(2, 2, 8, 16).transpose(2, 3)
        ref = attend(heads(q), heads(k), heads(v)).transpose(2, 3).reshape(2, 16, 4, 4)
        torch.testing.assert_close(self_attn(x), x + self_attn.proj(ref))

        qc = cross.q(cross.norm(x)).flatten(2).transpose(1, 2)  # (B, 16, C)
        kc, vc = cross.kv(cross.text_norm(text)).chunk(2, dim=-1)
        kc = torch.cat([cross.null_kv[0].expand(2, 1, -1), kc], dim=1)
        vc = torch.cat([cross.null_kv[1].expand(2, 1, -1), vc], dim=1)
        keep = torch.cat([torch.ones(2, 1, dtype=torch.bool), mask], dim=1)[:, None, None, :]
        split = lambda t: t.reshape(2, t.shape[1], 2, 8).transpose(1, 2)
        out = attend(split(qc), split(kc), split(vc), keep).transpose(1, 2).reshape(2, 16, 16).transpose(1, 2)
        torch.testing.assert_close(cross(x, text, mask), x + cross.proj(out.reshape(2, 16, 4, 4)))


def _dc_response(norm_groups: int) -> float:
    """How much of a uniform colour shift of the input reaches the output's colour (interior pixels)."""
    torch.manual_seed(0)
    net = perturb(
        UNet(
            image_size=16,
            channels=16,
            channel_mult=(1, 2),
            num_res_blocks=1,
            attn_resolutions=(8,),
            cross_attn_resolutions=(8,),
            head_channels=8,
            text_dim=24,
            norm_groups=norm_groups,
        )
    ).eval()
    z, t, (text, mask) = torch.randn(4, 3, 16, 16), torch.full((4,), 0.9), random_text(4)
    shift = torch.tensor([0.5, -0.3, 0.2]).view(1, 3, 1, 1)
    with torch.no_grad():
        d = net(z + shift, t, text, mask) - net(z, t, text, mask)
    return float(d[..., 3:-3, 3:-3].mean((0, 2, 3)).abs().sum())


def test_norm_groups_keeps_several_channels_per_group_so_the_net_sees_colour_shifts():
    """32 groups at 16 channels is instance norm: every branch is blind to a uniform per-channel shift
    (only zero-padding at the borders leaks it). 4 groups keep 4+ channels per group."""
    torch.manual_seed(0)
    net = UNet(
        image_size=16,
        channels=16,
        channel_mult=(1, 2),
        num_res_blocks=1,
        attn_resolutions=(8,),
        cross_attn_resolutions=(8,),
        head_channels=8,
        text_dim=24,
        norm_groups=4,
    )
    norms = [m for m in net.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert norms and all(m.num_groups == 4 for m in norms)
    sr = EfficientUNet(
        stem_channels=8,
        block_channels=(8, 16),
        block_res_blocks=(1, 1),
        block_strides=(2, 2),
        self_attn_blocks=(False, True),
        cross_attn_blocks=(False, True),
        attn_heads=2,
        text_dim=24,
        norm_groups=2,
    )
    assert all(m.num_groups == 2 for m in sr.modules() if isinstance(m, torch.nn.GroupNorm))
    assert _dc_response(4) > 5 * _dc_response(32)
