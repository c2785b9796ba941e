"""Building blocks shared by the base U-Net and the Efficient U-Net.

Shapes: images are (B, C, H, W); text is (B, L, D) with a (B, L) bool mask; the
conditioning embedding ``emb`` is (B, E).

Attention splits heads into contiguous (B, h, N, d) tensors: given strided (transposed) q/k/v,
``scaled_dot_product_attention`` on the CPU falls back to its unfused math path, which made the
tiny cascade's attention layers ~5× slower (half of the 32² base U-Net's forward time); contiguous
inputs take the fused flash kernel, which computes the same attention.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def norm_groups(channels: int, max_groups: int = 32) -> int:
    """Largest group count ≤ max_groups dividing ``channels`` (32 at paper sizes)."""
    return next(g for g in range(min(max_groups, channels), 0, -1) if channels % g == 0)


def group_norm(channels: int, max_groups: int = 32) -> nn.GroupNorm:
    """GroupNorm with ADM's 32 groups, or fewer (``max_groups``) for narrow layers.

    A group of ONE channel is instance norm: it removes each feature map's spatial mean, so a
    uniform per-channel shift of the input (an image's overall colour) becomes invisible to every
    branch after it, and the network's output cannot follow it. 32 groups at 32 channels is exactly
    that; tiny U-Nets set ``norm_groups`` (e.g. 8) to keep several channels per group.
    """
    return nn.GroupNorm(norm_groups(channels, max_groups), channels)


def zero_module(module: nn.Module) -> nn.Module:
    """Zero-initialise the last layer of a residual branch so each block starts as identity."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def sinusoidal_embedding(x: torch.Tensor, dim: int, scale: float = 1000.0, max_period: float = 10000.0) -> torch.Tensor:
    """Transformer-style features of a (B,) scalar in [0, 1] (time or noise-aug level), ×``scale``."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=x.device) / half)
    args = (x.float() * scale)[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return F.pad(emb, (0, dim % 2))


class ScalarEmbedding(nn.Module):
    """Sinusoidal features → MLP, as ADM embeds the timestep."""

    def __init__(self, in_dim: int, emb_dim: int) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.mlp = nn.Sequential(nn.Linear(in_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(sinusoidal_embedding(x, self.in_dim))


class ResBlock(nn.Module):
    """BigGAN-style residual block with scale-shift conditioning (ADM, Dhariwal & Nichol 2021).

    ``resample`` = "down" | "up" resamples both branches inside the block (BigGAN up/down
    blocks, F.1 ``res_block_type biggan``). ``skip_scale`` multiplies the sum of the two
    branches (1/√2 in the Efficient U-Net).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        emb_dim: int,
        *,
        resample: str | None = None,
        scale_shift: bool = True,
        dropout: float = 0.0,
        skip_scale: float = 1.0,
        norm_groups: int = 32,
    ) -> None:
        super().__init__()
        self.resample, self.scale_shift, self.skip_scale = resample, scale_shift, skip_scale
        self.norm1, self.conv1 = group_norm(in_ch, norm_groups), nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * out_ch if scale_shift else out_ch)
        self.norm2 = group_norm(out_ch, norm_groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = zero_module(nn.Conv2d(out_ch, out_ch, 3, padding=1))
        self.skip = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1)

    def _resample(self, x: torch.Tensor) -> torch.Tensor:
        if self.resample == "down":
            return F.avg_pool2d(x, 2)
        if self.resample == "up":
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        return x

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.norm1(x))
        h = self.conv1(self._resample(h))
        x = self._resample(x)
        e = self.emb(F.silu(emb))[:, :, None, None].to(h.dtype)
        if self.scale_shift:
            scale, shift = e.chunk(2, dim=1)
            h = self.norm2(h) * (1 + scale) + shift
        else:
            h = self.norm2(h + e)
        h = self.conv2(self.dropout(F.silu(h)))
        return (self.skip(x) + h) * self.skip_scale


class SelfAttention(nn.Module):
    """Multi-head self-attention over the pixels of a feature map."""

    def __init__(self, channels: int, heads: int, inner_dim: int | None = None, norm_groups: int = 32) -> None:
        super().__init__()
        inner = inner_dim or channels
        if inner % heads:
            raise ValueError(f"attention width {inner} is not divisible by {heads} heads")
        self.heads = heads
        self.norm = group_norm(channels, norm_groups)
        self.qkv = nn.Conv2d(channels, 3 * inner, 1)
        self.proj = zero_module(nn.Conv2d(inner, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, hh, ww = x.shape
        q, k, v = self.qkv(self.norm(x)).flatten(2).chunk(3, dim=1)  # each (B, inner, HW)
        split = lambda t: t.reshape(b, self.heads, -1, hh * ww).transpose(2, 3).contiguous()
        out = F.scaled_dot_product_attention(split(q), split(k), split(v))
        out = out.transpose(2, 3).reshape(b, -1, hh, ww)
        return x + self.proj(out)


class CrossAttention(nn.Module):
    """Attention from image features to the text tokens (Imagen §2.1, fig. A.12).

    LayerNorm on the text embeddings; a learned null key/value is always attended, so a
    sample whose text was dropped (classifier-free guidance) has a well-defined output.
    """

    def __init__(
        self, channels: int, text_dim: int, heads: int, inner_dim: int | None = None, norm_groups: int = 32
    ) -> None:
        super().__init__()
        inner = inner_dim or channels
        if inner % heads:
            raise ValueError(f"cross-attention width {inner} is not divisible by {heads} heads")
        self.heads = heads
        self.norm = group_norm(channels, norm_groups)
        self.text_norm = nn.LayerNorm(text_dim)
        self.q = nn.Conv2d(channels, inner, 1)
        self.kv = nn.Linear(text_dim, 2 * inner)
        self.null_kv = nn.Parameter(torch.randn(2, inner) * 0.02)
        self.proj = zero_module(nn.Conv2d(inner, channels, 1))

    def forward(self, x: torch.Tensor, text: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, _, hh, ww = x.shape
        h = self.heads
        q = self.q(self.norm(x)).flatten(2).transpose(1, 2)  # (B, HW, inner)
        k, v = self.kv(self.text_norm(text)).chunk(2, dim=-1)  # (B, L, inner)
        k = torch.cat([self.null_kv[0].expand(b, 1, -1).to(k.dtype), k], dim=1)
        v = torch.cat([self.null_kv[1].expand(b, 1, -1).to(v.dtype), v], dim=1)
        keep = torch.cat([mask.new_ones(b, 1), mask], dim=1)[:, None, None, :]  # (B, 1, 1, L+1)
        split = lambda t: t.reshape(b, t.shape[1], h, -1).transpose(1, 2).contiguous()
        out = F.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=keep)
        out = out.transpose(1, 2).reshape(b, hh * ww, -1).transpose(1, 2).reshape(b, -1, hh, ww)
        return x + self.proj(out)


class AttentionPool(nn.Module):
    """Attention pooling of the text tokens into one vector (Imagen F.1 ``feature_pooling_type attention``).

    A learned query attends over LayerNorm'd tokens (plus a learned null token); the result is
    projected to the conditioning-embedding width and added to the timestep embedding.
    """

    def __init__(self, text_dim: int, emb_dim: int, heads: int = 8) -> None:
        super().__init__()
        width = heads * max(8, text_dim // heads)
        self.heads = heads
        self.norm = nn.LayerNorm(text_dim)
        self.query = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        self.kv = nn.Linear(text_dim, 2 * width)
        self.null_kv = nn.Parameter(torch.randn(2, width) * 0.02)
        self.out = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, emb_dim))

    def forward(self, text: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, h = text.shape[0], self.heads
        k, v = self.kv(self.norm(text)).chunk(2, dim=-1)
        k = torch.cat([self.null_kv[0].expand(b, 1, -1).to(k.dtype), k], dim=1)
        v = torch.cat([self.null_kv[1].expand(b, 1, -1).to(v.dtype), v], dim=1)
        keep = torch.cat([mask.new_ones(b, 1), mask], dim=1)[:, None, None, :]
        q = self.query.expand(b, -1, -1).to(k.dtype)
        split = lambda t: t.reshape(b, t.shape[1], h, -1).transpose(1, 2).contiguous()
        out = F.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=keep)
        return self.out(out.transpose(1, 2).reshape(b, -1))


class MeanPool(nn.Module):
    """Mean of the LayerNorm'd valid tokens, projected to the embedding width (the ablation baseline)."""

    def __init__(self, text_dim: int, emb_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(text_dim)
        self.proj = nn.Linear(text_dim, emb_dim)

    def forward(self, text: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask[..., None].to(text.dtype)
        mean = (self.norm(text) * m).sum(1) / m.sum(1).clamp_min(1.0)
        return self.proj(mean)


def build_pooling(kind: str, text_dim: int, emb_dim: int) -> nn.Module | None:
    """Text pooling from config: ``attention`` | ``mean`` | ``none``."""
    if kind == "attention":
        return AttentionPool(text_dim, emb_dim)
    if kind == "mean":
        return MeanPool(text_dim, emb_dim)
    if kind == "none":
        return None
    raise ValueError(f"unknown text pooling {kind!r}; expected 'attention', 'mean' or 'none'")
