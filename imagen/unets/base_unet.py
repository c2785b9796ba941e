"""The 64×64 base U-Net (Imagen appendix F.1), adapted from the ADM U-Net (Dhariwal & Nichol 2021).

F.1 settings: channels 512, channel_mult (1, 2, 3, 4), 3 res blocks per level, BigGAN-style
res blocks with scale-shift norm, self-attention and text cross-attention at 32, 16 and 8,
64 channels per head, dropout 0, attention pooling of the text added to the timestep
embedding. The network predicts; it knows nothing about noise schedules.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from imagen.unets.conditioning import ConditionEmbedding, Stack, check_inputs
from imagen.unets.layers import CrossAttention, ResBlock, SelfAttention, group_norm, zero_module


class UNet(nn.Module):
    """ADM-style text-conditioned U-Net. Set ``lowres_cond`` to use it as a super-resolution stage."""

    def __init__(
        self, *, image_size: int = 64, in_channels: int = 3, out_channels: int = 3, channels: int = 512,
        channel_mult: Sequence[int] = (1, 2, 3, 4), num_res_blocks: int = 3,
        attn_resolutions: Sequence[int] = (32, 16, 8), cross_attn_resolutions: Sequence[int] = (32, 16, 8),
        head_channels: int = 64, text_dim: int = 4096, cond_dim: int | None = None,
        text_pooling: str = "attention",
        dropout: float = 0.0, scale_shift: bool = True, resblock_updown: bool = True,
        lowres_cond: bool = False,
    ):
        super().__init__()
        self.image_size, self.lowres_cond = image_size, lowres_cond
        self.in_channels = in_channels * (2 if lowres_cond else 1)
        emb_dim, cond_dim = 4 * channels, cond_dim or channels
        self.cond = ConditionEmbedding(channels, emb_dim, text_dim, cond_dim, text_pooling, noise_aug=lowres_cond)
        block = dict(emb_dim=emb_dim, scale_shift=scale_shift, dropout=dropout)

        def attention(ch: int, res: int) -> list[nn.Module]:
            layers: list[nn.Module] = []
            if res in attn_resolutions:
                layers.append(SelfAttention(ch, heads=max(1, ch // head_channels)))
            if res in cross_attn_resolutions:
                layers.append(CrossAttention(ch, cond_dim, heads=max(1, ch // head_channels)))
            return layers

        def resample(ch: int, direction: str) -> nn.Module:
            if resblock_updown:
                return ResBlock(ch, ch, resample=direction, **block)
            if direction == "down":
                return nn.Conv2d(ch, ch, 3, stride=2, padding=1)
            return nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv2d(ch, ch, 3, padding=1))

        self.conv_in = nn.Conv2d(self.in_channels, channels, 3, padding=1)
        self.down = nn.ModuleList()
        skip_channels, ch, res = [channels], channels, image_size
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                self.down.append(Stack(ResBlock(ch, channels * mult, **block), *attention(channels * mult, res)))
                ch = channels * mult
                skip_channels.append(ch)
            if level < len(channel_mult) - 1:
                self.down.append(Stack(resample(ch, "down")))
                skip_channels.append(ch)
                res //= 2

        self.middle = Stack(
            ResBlock(ch, ch, **block), SelfAttention(ch, heads=max(1, ch // head_channels)),
            *([CrossAttention(ch, cond_dim, heads=max(1, ch // head_channels))] if cross_attn_resolutions else []),
            ResBlock(ch, ch, **block),
        )

        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for i in range(num_res_blocks + 1):
                layers = [ResBlock(ch + skip_channels.pop(), channels * mult, **block)]
                ch = channels * mult
                layers += attention(ch, res)
                if level > 0 and i == num_res_blocks:
                    layers.append(resample(ch, "up"))
                    res *= 2
                self.up.append(Stack(*layers))

        self.out = nn.Sequential(group_norm(ch), nn.SiLU(), zero_module(nn.Conv2d(ch, out_channels, 3, padding=1)))

    def forward(self, x: torch.Tensor, t: torch.Tensor, text: torch.Tensor, mask: torch.Tensor,
                lowres: torch.Tensor | None = None, aug_level: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, 3, H, W) noisy image z_t; t: (B,) time in [0, 1]; text: (B, L, D); mask: (B, L) bool."""
        h = self.conv_in(check_inputs(x, self.in_channels, lowres, self.lowres_cond))
        emb, text = self.cond(t, text, mask, aug_level)
        skips = [h]
        for stack in self.down:
            h = stack(h, emb, text, mask)
            skips.append(h)
        h = self.middle(h, emb, text, mask)
        for stack in self.up:
            h = stack(torch.cat([h, skips.pop()], dim=1), emb, text, mask)
        return self.out(h)
