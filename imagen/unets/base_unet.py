"""The 64×64 base U-Net (Imagen appendix F.1), adapted from the ADM U-Net (Dhariwal & Nichol 2021).

F.1 settings: channels 512, channel_mult (1, 2, 3, 4), 3 res blocks per level, BigGAN-style
res blocks with scale-shift norm, self-attention and text cross-attention at 32, 16 and 8,
64 channels per head, dropout 0, attention pooling of the text added to the timestep
embedding. The network predicts; it knows nothing about noise schedules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from imagen.unets.conditioning import ConditionEmbedding, Stack, check_inputs
from imagen.unets.layers import CrossAttention, ResBlock, SelfAttention, group_norm, zero_module


class _Layers:
    """Makes the attention and resampling layers of one U-Net configuration."""

    def __init__(
        self,
        block: dict,
        head_channels: int,
        cond_dim: int,
        attn_res: Sequence[int],
        cross_res: Sequence[int],
        resblock_updown: bool,
    ) -> None:
        self.block, self.head_channels, self.cond_dim = block, head_channels, cond_dim
        self.attn_res, self.cross_res, self.resblock_updown = attn_res, cross_res, resblock_updown

    def heads(self, ch: int) -> int:
        return max(1, ch // self.head_channels)

    def attention(self, ch: int, res: int, always_self: bool = False) -> list[nn.Module]:
        layers: list[nn.Module] = []
        groups = self.block["norm_groups"]
        if always_self or res in self.attn_res:
            layers.append(SelfAttention(ch, heads=self.heads(ch), norm_groups=groups))
        if res in self.cross_res:
            layers.append(CrossAttention(ch, self.cond_dim, heads=self.heads(ch), norm_groups=groups))
        return layers

    def resample(self, ch: int, direction: str) -> nn.Module:
        if self.resblock_updown:  # BigGAN-style: the res block itself up/downsamples (F.1 res_block_type biggan)
            return ResBlock(ch, ch, resample=direction, **self.block)
        if direction == "down":
            return nn.Conv2d(ch, ch, 3, stride=2, padding=1)
        return nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv2d(ch, ch, 3, padding=1))


class UNet(nn.Module):
    """ADM-style text-conditioned U-Net. Set ``lowres_cond`` to use it as a super-resolution stage."""

    def __init__(
        self,
        *,
        image_size: int = 64,
        in_channels: int = 3,
        out_channels: int = 3,
        channels: int = 512,
        channel_mult: Sequence[int] = (1, 2, 3, 4),
        num_res_blocks: int = 3,
        attn_resolutions: Sequence[int] = (32, 16, 8),
        cross_attn_resolutions: Sequence[int] = (32, 16, 8),
        head_channels: int = 64,
        text_dim: int = 4096,
        cond_dim: int | None = None,
        text_pooling: str = "attention",
        dropout: float = 0.0,
        scale_shift: bool = True,
        resblock_updown: bool = True,
        lowres_cond: bool = False,
        norm_groups: int = 32,
    ) -> None:
        super().__init__()
        self.image_size, self.lowres_cond = image_size, lowres_cond
        self.in_channels = in_channels * (2 if lowres_cond else 1)
        emb_dim, cond_dim = 4 * channels, cond_dim or channels
        self.cond = ConditionEmbedding(channels, emb_dim, text_dim, cond_dim, text_pooling, noise_aug=lowres_cond)
        block: dict[str, Any] = dict(emb_dim=emb_dim, scale_shift=scale_shift, dropout=dropout, norm_groups=norm_groups)
        make = _Layers(block, head_channels, cond_dim, attn_resolutions, cross_attn_resolutions, resblock_updown)
        self.conv_in = nn.Conv2d(self.in_channels, channels, 3, padding=1)
        skip_channels, ch, res = self._build_down(make, channels, channel_mult, num_res_blocks, image_size)
        # ADM's middle block always has self-attention; text cross-attention joins it when its resolution is listed
        self.middle = Stack(
            ResBlock(ch, ch, **block), *make.attention(ch, res, always_self=True), ResBlock(ch, ch, **block)
        )
        ch = self._build_up(make, channels, channel_mult, num_res_blocks, skip_channels, ch, res)
        self.out = nn.Sequential(
            group_norm(ch, norm_groups), nn.SiLU(), zero_module(nn.Conv2d(ch, out_channels, 3, padding=1))
        )

    def _build_down(
        self, make: _Layers, channels: int, channel_mult: Sequence[int], num_res_blocks: int, res: int
    ) -> tuple[list[int], int, int]:
        self.down = nn.ModuleList()
        skip_channels, ch = [channels], channels
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                self.down.append(
                    Stack(ResBlock(ch, channels * mult, **make.block), *make.attention(channels * mult, res))
                )
                ch = channels * mult
                skip_channels.append(ch)
            if level < len(channel_mult) - 1:
                self.down.append(Stack(make.resample(ch, "down")))
                skip_channels.append(ch)
                res //= 2
        return skip_channels, ch, res

    def _build_up(
        self,
        make: _Layers,
        channels: int,
        channel_mult: Sequence[int],
        num_res_blocks: int,
        skip_channels: list[int],
        ch: int,
        res: int,
    ) -> int:
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for i in range(num_res_blocks + 1):
                layers = [ResBlock(ch + skip_channels.pop(), channels * mult, **make.block)]
                ch = channels * mult
                layers += make.attention(ch, res)
                if level > 0 and i == num_res_blocks:
                    layers.append(make.resample(ch, "up"))
                    res *= 2
                self.up.append(Stack(*layers))
        return ch

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        text: torch.Tensor,
        mask: torch.Tensor,
        lowres: torch.Tensor | None = None,
        aug_level: torch.Tensor | None = None,
    ) -> torch.Tensor:
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
