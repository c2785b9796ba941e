"""Fixed tiny models for tests: deterministic weights with no zero-initialised (identity) branches."""

from __future__ import annotations

import torch
from torch import nn

from imagen.cascade import Cascade, SamplerConfig, Stage, StageSpec
from imagen.unets import EfficientUNet, UNet

TEXT_DIM = 24
BASE_UNET = dict(
    _target_="imagen.unets.UNet",
    image_size=16,
    channels=16,
    channel_mult=[1, 2],
    num_res_blocks=1,
    attn_resolutions=[8],
    cross_attn_resolutions=[8],
    head_channels=8,
    text_dim=TEXT_DIM,
)
SR_UNET = dict(
    _target_="imagen.unets.EfficientUNet",
    stem_channels=8,
    block_channels=[8, 16],
    block_res_blocks=[1, 1],
    block_strides=[2, 2],
    self_attn_blocks=[False, True],
    cross_attn_blocks=[False, True],
    attn_heads=2,
    text_dim=TEXT_DIM,
)


def perturb(model: nn.Module, seed: int = 0, std: float = 0.05) -> nn.Module:
    """Give zero-initialised layers random weights so the network's output depends on its input."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * std)
    return model


def tiny_base(seed: int = 0) -> UNet:
    torch.manual_seed(seed)
    kw = {k: v for k, v in BASE_UNET.items() if k != "_target_"}
    return perturb(UNet(**kw), seed).eval()


def tiny_sr(seed: int = 1) -> EfficientUNet:
    torch.manual_seed(seed)
    kw = {k: v for k, v in SR_UNET.items() if k != "_target_"}
    return perturb(EfficientUNet(**kw), seed).eval()


def random_text(n: int, length: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(n, length, TEXT_DIM, generator=g)
    lengths = torch.arange(n) % (length - 1) + 2
    mask = torch.arange(length)[None, :] < lengths[:, None]
    return emb * mask[..., None], mask


def tiny_cascade(
    sampler: str = "ddpm",
    steps: int = 8,
    guidance: float = 3.0,
    aug_level: float = 0.0,
    thresholding: str = "dynamic",
    microbatch: int | None = 1,
) -> Cascade:
    base = StageSpec(name="base16", resolution=16, unet=BASE_UNET, guidance=guidance, thresholding=thresholding)
    sr = StageSpec(
        name="sr32",
        resolution=32,
        lowres_resolution=16,
        unet=SR_UNET,
        guidance=guidance,
        thresholding=thresholding,
        aug_level=aug_level,
        schedule={"name": "linear"},
    )
    return Cascade(
        [Stage(base, tiny_base()), Stage(sr, tiny_sr())],
        None,
        SamplerConfig(name=sampler, steps=steps, microbatch=microbatch),
    )
