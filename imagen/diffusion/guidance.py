"""Classifier-free guidance (Ho & Salimans 2022; Imagen §2.2) with one batched forward call.

During training the text embeddings are zeroed with probability 0.1; at sampling

    ε̃(z_t, c) = w·ε(z_t, c) + (1 − w)·ε(z_t)

where ε(z_t) is the prediction with the null (zeroed) text. The conditional and the
unconditional inputs are stacked along the batch and evaluated in ONE forward call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import nn

from imagen.diffusion.gaussian import to_x0_eps


@dataclass(frozen=True)
class Conditioning:
    """Everything a U-Net is conditioned on besides z_t and t, for a batch of B samples."""

    text: torch.Tensor  # (B, L, D) text-encoder token embeddings
    mask: torch.Tensor  # (B, L) bool, True for real tokens
    lowres: torch.Tensor | None = None  # (B, 3, H, W) upsampled low-res image (SR stages)
    aug_level: torch.Tensor | None = None  # (B,) noise-augmentation level of `lowres`

    def __len__(self) -> int:
        return self.text.shape[0]

    def select(self, idx: slice) -> Conditioning:
        pick = lambda v: None if v is None else v[idx]
        return Conditioning(self.text[idx], self.mask[idx], pick(self.lowres), pick(self.aug_level))

    def null_text(self) -> Conditioning:
        """The unconditional counterpart: zeroed embeddings and no valid tokens."""
        return replace(self, text=torch.zeros_like(self.text), mask=torch.zeros_like(self.mask))

    @staticmethod
    def cat(parts: list[Conditioning]) -> Conditioning:
        def join(vals: list[torch.Tensor | None]) -> torch.Tensor | None:
            return None if vals[0] is None else torch.cat(vals)  # type: ignore[arg-type]

        return Conditioning(
            torch.cat([p.text for p in parts]),
            torch.cat([p.mask for p in parts]),
            join([p.lowres for p in parts]),
            join([p.aug_level for p in parts]),
        )


def drop_text(cond: Conditioning, drop: torch.Tensor) -> Conditioning:
    """Training-time condition dropout: zero the text of samples where ``drop`` is True.

    With drop ~ Bernoulli(0.1) per sample this is the paper's classifier-free guidance training.
    """
    keep = (~drop.bool()).to(cond.text.device)
    return replace(cond, text=cond.text * keep[:, None, None].to(cond.text.dtype), mask=cond.mask & keep[:, None])


def model_forward(model: nn.Module, z: torch.Tensor, t: torch.Tensor, cond: Conditioning) -> torch.Tensor:
    """Call a U-Net with the conditioning unpacked (the U-Net knows nothing of schedules)."""
    return model(z, t, cond.text, cond.mask, lowres=cond.lowres, aug_level=cond.aug_level)


def guided_eps(
    model: nn.Module,
    z: torch.Tensor,
    t: torch.Tensor,
    cond: Conditioning,
    guidance: float,
    prediction: str,
    alpha: torch.Tensor,
    sigma: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Guided (x̂₀, ε̂) for a batch, with cond and uncond halves in one forward call.

    Guidance is applied to ε; for x₀- or v-prediction models the output is converted to ε
    first (the relations are linear in the output, so this equals guiding the raw output).
    """
    if guidance == 1.0:
        out = model_forward(model, z, t, cond)
        return to_x0_eps(prediction, out, z, alpha, sigma)
    both = Conditioning.cat([cond, cond.null_text()])
    out = model_forward(model, torch.cat([z, z]), torch.cat([t, t]), both)
    z2, a2, s2 = torch.cat([z, z]), torch.cat([alpha, alpha]), torch.cat([sigma, sigma])
    _, eps_both = to_x0_eps(prediction, out, z2, a2, s2)
    eps_c, eps_u = eps_both.chunk(2)
    eps = guidance * eps_c + (1.0 - guidance) * eps_u
    a = alpha.to(z.dtype).view(-1, 1, 1, 1)
    s = sigma.to(z.dtype).view(-1, 1, 1, 1)
    x0 = (z - s * eps) / a.clamp_min(1e-8)
    return x0, eps


def per_sample(
    fn: Callable[..., tuple[torch.Tensor, torch.Tensor]], microbatch: int | None
) -> Callable[[torch.Tensor, torch.Tensor, Conditioning], tuple[torch.Tensor, torch.Tensor]]:
    """Evaluate ``fn(z, t, cond)`` in chunks of ``microbatch`` samples.

    CPU (and GPU) kernels pick different blockings for different batch sizes, so the same
    sample can come out a few ULPs apart in a batch of 1 and of 4. With ``microbatch=1``
    every sample's computation is the same whatever batch it is part of, which is what
    makes an image a function of (prompt, seed) alone. ``None`` evaluates the whole batch
    at once (faster on a GPU, reproducible only for the same batch composition).
    """

    def run(z: torch.Tensor, t: torch.Tensor, cond: Conditioning) -> tuple[torch.Tensor, torch.Tensor]:
        n = z.shape[0]
        step = n if not microbatch else microbatch
        outs = [fn(z[i : i + step], t[i : i + step], cond.select(slice(i, i + step))) for i in range(0, n, step)]
        return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])

    return run
