"""Efficient U-Net for the super-resolution stages (Imagen appendix B.1, F.2, F.3, figs. A.28–A.30).

Three changes from a standard U-Net:
1. capacity moved to low resolutions: more res blocks where feature maps are small
   (F.2: channels 128/256/512/1024 with 2/4/8/8 res blocks);
2. skip connections scaled by 1/√2 — applied here to the residual connection of every res
   block, (skip(x) + f(x))/√2, which keeps the variance of the residual stream flat across
   the 8-block stages that motivated it ("when using a large number of residual blocks at
   lower-resolution ... scaling the skip connections by 1/√2");
3. the order of resampling and convolution reversed: a DBlock downsamples first (strided
   conv) and then runs its res blocks; a UBlock runs its res blocks and upsamples last.

F.2 (64→256) has self-attention and text cross-attention (8 heads, width 2×channels) in
the lowest-resolution block; F.3 (256→1024) is the same network without self-attention,
keeping the cross-attention.

``lowres_skip`` (not in the paper; off by default) adds the upsampled low-res input to the
output, so the network predicts a correction to it: with ``prediction: x0`` the stage starts
at bilinear upsampling and only learns the detail. Tiny SR stages trained for minutes need it:
a plain ε- or v-prediction stage that has not yet learnt to use its low-res input leaves speckle
noise on its samples (benchmarks/world/TRAINING.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from imagen.unets.conditioning import ConditionEmbedding, Stack, check_inputs
from imagen.unets.layers import CrossAttention, ResBlock, SelfAttention, group_norm, zero_module


def _attention(
    ch: int, text_dim: int, self_attn: bool, cross_attn: bool, heads: int, width_mult: int, norm_groups: int
) -> list[nn.Module]:
    layers: list[nn.Module] = []
    if self_attn:
        layers.append(SelfAttention(ch, heads=heads, inner_dim=width_mult * ch, norm_groups=norm_groups))
    if cross_attn:
        layers.append(CrossAttention(ch, text_dim, heads=heads, inner_dim=width_mult * ch, norm_groups=norm_groups))
    return layers


class EfficientUNet(nn.Module):
    """Text-conditioned Efficient U-Net; a super-resolution stage by default (``lowres_cond``)."""

    def __init__(
        self,
        *,
        in_channels: int = 3,
        out_channels: int = 3,
        stem_channels: int = 128,
        block_channels: Sequence[int] = (128, 256, 512, 1024),
        block_res_blocks: Sequence[int] = (2, 4, 8, 8),
        block_strides: Sequence[int] = (2, 2, 2, 2),
        self_attn_blocks: Sequence[bool] = (False, False, False, True),
        cross_attn_blocks: Sequence[bool] = (False, False, False, True),
        attn_heads: int = 8,
        attn_width_mult: int = 2,
        text_dim: int = 4096,
        cond_dim: int | None = None,
        text_pooling: str = "attention",
        emb_dim: int | None = None,
        skip_scale: float = 1 / math.sqrt(2),
        scale_shift: bool = True,
        dropout: float = 0.0,
        lowres_cond: bool = True,
        lowres_skip: bool = False,
        norm_groups: int = 32,
    ) -> None:
        super().__init__()
        n = len(block_channels)
        for name, seq in [
            ("block_res_blocks", block_res_blocks),
            ("block_strides", block_strides),
            ("self_attn_blocks", self_attn_blocks),
            ("cross_attn_blocks", cross_attn_blocks),
        ]:
            if len(seq) != n:
                raise ValueError(f"{name} has {len(seq)} entries but block_channels has {n}")
        if lowres_skip and not lowres_cond:
            raise ValueError("lowres_skip adds the low-res input to the output, so it needs lowres_cond=True")
        self.lowres_cond, self.lowres_skip = lowres_cond, lowres_skip
        self.in_channels = in_channels * (2 if lowres_cond else 1)
        emb_dim, cond_dim = emb_dim or 4 * stem_channels, cond_dim or 4 * stem_channels
        self.cond = ConditionEmbedding(stem_channels, emb_dim, text_dim, cond_dim, text_pooling, noise_aug=lowres_cond)
        block: dict[str, Any] = dict(
            emb_dim=emb_dim, scale_shift=scale_shift, dropout=dropout, skip_scale=skip_scale, norm_groups=norm_groups
        )

        self.conv_in = nn.Conv2d(self.in_channels, stem_channels, 3, padding=1)
        self.down = nn.ModuleList()
        ch = stem_channels
        for i in range(n):  # DBlock: strided conv, res blocks, optional attention
            c = block_channels[i]
            self.down.append(
                Stack(
                    nn.Conv2d(ch, c, 3, stride=block_strides[i], padding=1),
                    *[ResBlock(c, c, **block) for _ in range(block_res_blocks[i])],
                    *_attention(
                        c, cond_dim, self_attn_blocks[i], cross_attn_blocks[i], attn_heads, attn_width_mult, norm_groups
                    ),
                )
            )
            ch = c

        self.up = nn.ModuleList()
        for i in reversed(range(n)):  # UBlock: (input ⧺ skip), res blocks, optional attention, upsample conv
            c = block_channels[i]
            out_c = block_channels[i - 1] if i > 0 else stem_channels
            self.up.append(
                Stack(
                    ResBlock(ch + c, c, **block),
                    *[ResBlock(c, c, **block) for _ in range(block_res_blocks[i] - 1)],
                    *_attention(
                        c, cond_dim, self_attn_blocks[i], cross_attn_blocks[i], attn_heads, attn_width_mult, norm_groups
                    ),
                    nn.Upsample(scale_factor=float(block_strides[i]), mode="nearest"),
                    nn.Conv2d(c, out_c, 3, padding=1),
                )
            )
            ch = out_c

        # The stem features join the last UBlock's output so full-resolution detail of z_t
        # reaches the output without passing through the 2× downsampled path.
        self.out = nn.Sequential(
            group_norm(2 * ch, norm_groups), nn.SiLU(), zero_module(nn.Conv2d(2 * ch, out_channels, 3, padding=1))
        )

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        text: torch.Tensor,
        mask: torch.Tensor,
        lowres: torch.Tensor | None = None,
        aug_level: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x: (B, 3, H, W) z_t; lowres: (B, 3, H, W) upsampled low-res image; aug_level: (B,)."""
        stem = self.conv_in(check_inputs(x, self.in_channels, lowres, self.lowres_cond))
        emb, text = self.cond(t, text, mask, aug_level)
        h, skips = stem, []
        for stack in self.down:
            h = stack(h, emb, text, mask)
            skips.append(h)
        for stack in self.up:
            h = stack(torch.cat([h, skips.pop()], dim=1), emb, text, mask)
        out = self.out(torch.cat([h, stem], dim=1))
        if not self.lowres_skip:
            return out
        # The noise-augmented low-res image as given (at aug level 0 the correction is the detail alone),
        # added in its own precision: under bf16 autocast only the small correction is rounded.
        assert lowres is not None  # check_inputs refused a missing one (lowres_skip implies lowres_cond)
        return out.to(lowres.dtype) + lowres
