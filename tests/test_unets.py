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
    net = perturb(UNet(image_size=16, channels=16, channel_mult=(1, 2), num_res_blocks=1, attn_resolutions=(8,),
                       cross_attn_resolutions=cross, head_channels=8, text_dim=24, text_pooling=pooling)).eval()
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
    net = perturb(UNet(image_size=16, channels=16, channel_mult=(1, 2), num_res_blocks=1, attn_resolutions=(8,),
                       cross_attn_resolutions=(), head_channels=8, text_dim=24, text_pooling="none")).eval()
    z, t = torch.randn(1, 3, 16, 16).repeat(2, 1, 1, 1), torch.tensor([0.5, 0.5])
    text, mask = random_text(2)
    with torch.no_grad():
        out = net(z, t, text, mask)
    assert torch.equal(out[0], out[1])


def test_efficient_unet_structure_follows_the_paper():
    """DBlocks downsample first; UBlocks upsample last; residuals scaled by 1/√2; attention at the bottom only."""
    net = EfficientUNet(stem_channels=8, block_channels=(8, 16, 32), block_res_blocks=(1, 2, 3), text_dim=24,
                        self_attn_blocks=(False, False, True), cross_attn_blocks=(False, False, True),
                        block_strides=(2, 2, 2), attn_heads=2)
    first_d = net.down[0].layers[0]
    assert isinstance(first_d, torch.nn.Conv2d) and first_d.stride == (2, 2)
    last_u = net.up[0].layers
    assert isinstance(last_u[-2], torch.nn.Upsample) and isinstance(last_u[-1], torch.nn.Conv2d)
    res_blocks = [m for m in net.modules() if type(m).__name__ == "ResBlock"]
    assert len(res_blocks) == 2 * (1 + 2 + 3) and all(abs(b.skip_scale - 2 ** -0.5) < 1e-12 for b in res_blocks)
    attn = [(i, type(m).__name__) for i, s in enumerate(net.down) for m in s.layers if "Attention" in type(m).__name__]
    assert attn == [(2, "SelfAttention"), (2, "CrossAttention")]
    with pytest.raises(ValueError, match="needs the upsampled low-resolution image"):
        net(torch.zeros(1, 3, 32, 32), torch.zeros(1), torch.zeros(1, 2, 24), torch.ones(1, 2, dtype=torch.bool))
