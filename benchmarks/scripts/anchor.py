"""imagen-pytorch 2.1.0 (lucidrains, PyPI) as the anchor of our speed benchmarks, at a matched configuration.

Install it with only what its model module imports (its full dependency list pulls training frameworks):
``pip install --no-deps imagen-pytorch==2.1.0 einops beartype kornia kornia-rs``.

Matching: both U-Nets get the same base width and multipliers (64 × 1, 2, 4 at 32², 16², 8²), two residual
blocks per level, self- and cross-attention at 16² and 8² (and in the middle), 32 channels per attention head,
attention pooling of the text, a 3×3 input convolution (imagen-pytorch: ``init_cross_embed=False``) and no
global-context attention (we have none). What the classes do not let us match is printed by the benchmarks
as parameters and FLOPs per forward side by side: imagen-pytorch's down path runs each level at the previous
level's width (its blocks are narrower) and it has a final residual block; ours has BigGAN up/down blocks.
Text embeddings are passed in directly (no T5 is loaded).
"""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

INSTALL_HINT = "make bench-setup (pip install --no-deps imagen-pytorch==2.1.0 einops beartype kornia kornia-rs)"


@dataclass(frozen=True)
class Matched:
    """The shared configuration of both U-Nets."""

    image_size: int = 32
    channels: int = 64
    mults: tuple[int, ...] = (1, 2, 4)
    res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (16, 8)
    head_channels: int = 32
    text_dim: int = 768  # T5-v1.1-base's width, imagen-pytorch's default encoder
    text_len: int = 32

    def our_unet_config(self) -> dict[str, Any]:
        return {
            "_target_": "imagen.unets.UNet",
            "image_size": self.image_size,
            "channels": self.channels,
            "channel_mult": list(self.mults),
            "num_res_blocks": self.res_blocks,
            "attn_resolutions": list(self.attn_resolutions),
            "cross_attn_resolutions": list(self.attn_resolutions),
            "head_channels": self.head_channels,
            "text_dim": self.text_dim,
            "text_pooling": "attention",
            "norm_groups": 32,
        }

    def their_unet_kwargs(self) -> dict[str, Any]:
        levels = [self.image_size // 2**i in self.attn_resolutions for i in range(len(self.mults))]
        return dict(
            dim=self.channels,
            dim_mults=self.mults,
            num_resnet_blocks=self.res_blocks,
            layer_attns=tuple(levels),
            layer_cross_attns=tuple(levels),
            attn_dim_head=self.head_channels,
            attn_heads=8,
            text_embed_dim=self.text_dim,
            max_text_len=self.text_len,
            attn_pool_text=True,
            init_cross_embed=False,
            init_conv_kernel_size=3,
            use_global_context_attn=False,
        )


def import_imagen_pytorch() -> types.ModuleType:
    """``imagen_pytorch.imagen_pytorch`` without the package ``__init__`` and without the hub.

    The package ``__init__`` imports its trainer (ema-pytorch, pytorch-warmup, datasets, ...), which sampling
    never uses, so the package is entered as a bare namespace. ``Unet``'s signature calls
    ``get_encoded_dim('google/t5-v1_1-base')`` at import, which reads the T5 config from the hub: its width
    (768) is preset in imagen-pytorch's own config cache instead.
    """
    if "imagen_pytorch.imagen_pytorch" in sys.modules:
        return sys.modules["imagen_pytorch.imagen_pytorch"]
    spec = importlib.util.find_spec("imagen_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"imagen-pytorch is not installed: {INSTALL_HINT}")
    package = types.ModuleType("imagen_pytorch")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["imagen_pytorch"] = package
    try:
        from transformers import T5Config

        t5 = importlib.import_module("imagen_pytorch.t5")
        t5.T5_CONFIGS.setdefault(t5.DEFAULT_T5_NAME, {"config": T5Config(d_model=768)})
        return importlib.import_module("imagen_pytorch.imagen_pytorch")
    except ImportError as err:
        raise SystemExit(f"imagen-pytorch cannot be imported ({err}): {INSTALL_HINT}") from None


def randomise_zero_layers(model: nn.Module, seed: int = 0, std: float = 0.02) -> nn.Module:
    """Give zero-initialised layers (output convolutions) small random weights: a random network whose
    output is identically zero would make thresholding and the images meaningless."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * std)
    return model


def their_imagen(cfg: Matched, steps: int, seed: int = 0) -> Any:
    """imagen-pytorch's ``Imagen`` with one matched ``Unet`` (cosine schedule, ε-prediction, dynamic
    thresholding, continuous times with ``steps`` ancestral steps), random weights."""
    ip = import_imagen_pytorch()
    torch.manual_seed(seed)
    unet = ip.Unet(**cfg.their_unet_kwargs())
    imagen = ip.Imagen(
        unets=(unet,),
        image_sizes=(cfg.image_size,),
        text_embed_dim=cfg.text_dim,
        timesteps=steps,
        cond_drop_prob=0.1,
        dynamic_thresholding=True,
        noise_schedules="cosine",
        pred_objectives="noise",
    )
    randomise_zero_layers(imagen.unets[0], seed)
    return imagen.eval()


def parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def flops_per_sample(forward: Callable[[int], Any], batch: int = 2) -> float:
    """FLOPs of one sample's forward, counted by ``torch.utils.flop_counter`` on a batch of ``batch``."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        forward(batch)
    return counter.get_total_flops() / batch


def text_inputs(cfg: Matched, batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random text embeddings (B, L, D) with a mask of 12..L valid tokens, zero past the mask."""
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(batch, cfg.text_len, cfg.text_dim, generator=g)
    lengths = 12 + torch.arange(batch) % (cfg.text_len - 11)
    mask = torch.arange(cfg.text_len)[None] < lengths[:, None]
    return emb * mask[..., None], mask
