"""The conditioning embedding that every residual block receives, and the text context.

The text-encoder embeddings (4096 wide for T5-XXL) are projected once to ``cond_dim``; the
cross-attention and pooling layers read that projection through their own LayerNorm.
emb = MLP(sinusoidal(t)) [+ MLP(sinusoidal(aug_level)) for SR stages] [+ pooled text].
"""

from __future__ import annotations

import torch
from torch import nn

from imagen.unets.layers import CrossAttention, ResBlock, ScalarEmbedding, SelfAttention, build_pooling


class ConditionEmbedding(nn.Module):
    def __init__(
        self, base_channels: int, emb_dim: int, text_dim: int, cond_dim: int, text_pooling: str, noise_aug: bool
    ) -> None:
        super().__init__()
        self.text_dim = text_dim
        self.text_proj = nn.Linear(text_dim, cond_dim)
        self.time = ScalarEmbedding(base_channels, emb_dim)
        self.aug = ScalarEmbedding(base_channels, emb_dim) if noise_aug else None
        self.pool = build_pooling(text_pooling, cond_dim, emb_dim)

    def forward(
        self, t: torch.Tensor, text: torch.Tensor, mask: torch.Tensor, aug_level: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(emb (B, E), projected text (B, L, cond_dim))."""
        if text.shape[-1] != self.text_dim:
            raise ValueError(f"U-Net expects text embeddings of width {self.text_dim}, got {text.shape[-1]}")
        text = self.text_proj(text)
        emb = self.time(t)
        if self.aug is not None:
            if aug_level is None:
                raise ValueError("this super-resolution U-Net needs the noise-augmentation level (aug_level)")
            emb = emb + self.aug(aug_level)
        if self.pool is not None:
            emb = emb + self.pool(text, mask).to(emb.dtype)
        return emb, text


class Stack(nn.Module):
    """A sequence of res blocks and (cross-)attention layers that routes each its inputs."""

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, emb: torch.Tensor, text: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            if isinstance(layer, ResBlock):
                x = layer(x, emb)
            elif isinstance(layer, CrossAttention):
                x = layer(x, text, mask)
            elif isinstance(layer, SelfAttention):
                x = layer(x)
            else:
                x = layer(x)
        return x


def check_inputs(x: torch.Tensor, in_channels: int, lowres: torch.Tensor | None, needs_lowres: bool) -> torch.Tensor:
    """Concatenate the upsampled low-res condition for SR stages, with clear errors on misuse."""
    if needs_lowres:
        if lowres is None:
            raise ValueError("this super-resolution U-Net needs the upsampled low-resolution image (lowres)")
        if lowres.shape[-2:] != x.shape[-2:]:
            raise ValueError(f"lowres must be upsampled to {tuple(x.shape[-2:])}, got {tuple(lowres.shape[-2:])}")
        x = torch.cat([x, lowres.to(x.dtype)], dim=1)
    if x.shape[1] != in_channels:
        raise ValueError(f"U-Net expects {in_channels} input channels, got {x.shape[1]}")
    return x
