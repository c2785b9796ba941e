"""The Imagen cascade: a frozen text encoder, a base stage and super-resolution stages.

``Cascade.sample(prompts, seeds)`` returns the images of every stage. An image is a function
of (prompt, seed) and of the batch it is sampled in: each sample has its own random generator per stage;
the model evaluates the whole batch at once by default (``microbatch=None``: the harness always forms the
same fixed groups, so a run is bit-exact at its batch size), or one sample at a time with ``microbatch=1``,
which makes an image independent of the batch too.

``precision`` is ``float32`` (the default) or ``bf16``: bf16 runs the U-Net under autocast (convolutions,
matmuls and attention in bfloat16, normalisations in float32) while the sampler's maths, the noise and the
thresholding stay in float32. A bf16 image differs from its float32 twin by rounding (so precision is part
of a run's fingerprint) but is just as reproducible: the same (prompts, seeds, batch) give the same bits.
Sampling runs under ``torch.inference_mode`` (no autograd bookkeeping); the text is encoded outside it, so
an embedding cache never holds inference tensors that a training step could not use.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import nn

from imagen.diffusion.gaussian import PREDICTION_TYPES, noise_augment
from imagen.diffusion.guidance import Conditioning, guided_eps, per_sample
from imagen.diffusion.schedules import NoiseSchedule, alpha_sigma, build_schedule
from imagen.errors import UserError
from imagen.samplers.samplers import GRIDS, SAMPLERS, time_grid
from imagen.samplers.thresholding import THRESHOLDING_MODES, build_thresholder
from imagen.validation import finite_number, known_keys, positive_int

PRECISIONS = ("float32", "bf16")


def check_precision(value: Any, where: str = "precision") -> str:
    """``float32`` or ``bf16``, else one line naming the key."""
    if value not in PRECISIONS:
        raise UserError(f"{where} must be one of {', '.join(PRECISIONS)}, got {value!r}")
    return str(value)


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bf16 natively on this CPU (AVX-512 BF16 or AMX); elsewhere it emulates it, slower
    than float32."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


@dataclass(frozen=True)
class StageSpec:
    """One stage's settings (the ``model.stages.<name>`` config minus the U-Net)."""

    name: str
    resolution: int
    unet: dict[str, Any]
    lowres_resolution: int | None = None
    schedule: dict[str, Any] = field(default_factory=lambda: {"name": "cosine"})
    prediction: str = "epsilon"
    guidance: float = 1.0
    thresholding: str = "dynamic"
    percentile: float = 99.5
    aug_level: float = 0.0  # sampling-time noise-augmentation level of the low-res input
    train_aug_max: float = 1.0  # training draws aug levels from U(0, train_aug_max)
    steps: int | None = None  # overrides sampler.steps for this stage

    @staticmethod
    def from_config(name: str, cfg: Mapping[str, Any]) -> StageSpec:
        d = dict(cfg)
        known_keys(d, set(StageSpec.__dataclass_fields__) - {"name"}, f"model.stages.{name}")
        spec = StageSpec(name=name, **d)
        spec.check()
        return spec

    def check(self) -> None:
        """Every value in range, named by its config key (one line, before any work)."""
        where = f"model.stages.{self.name}"
        if self.prediction not in PREDICTION_TYPES:
            raise UserError(f"{where}.prediction must be one of {PREDICTION_TYPES}, got {self.prediction!r}")
        positive_int(self.resolution, f"{where}.resolution")
        if self.thresholding not in THRESHOLDING_MODES:
            raise UserError(f"{where}.thresholding must be one of {THRESHOLDING_MODES}, got {self.thresholding!r}")
        # w = 0 is the unconditional model and w = 1 the conditional one (eq. 3); below 0 is not a guidance.
        finite_number(self.guidance, f"{where}.guidance", minimum=0.0)
        finite_number(self.percentile, f"{where}.percentile", minimum=0.0, strict=True, maximum=100.0)
        finite_number(self.aug_level, f"{where}.aug_level", minimum=0.0, maximum=1.0)
        finite_number(self.train_aug_max, f"{where}.train_aug_max", minimum=0.0, maximum=1.0)
        if self.steps is not None:
            positive_int(self.steps, f"{where}.steps")
        if self.unet.get("lowres_skip") and self.prediction != "x0":
            raise UserError(
                f"{where}.unet.lowres_skip makes the U-Net output the upsampled low-res image plus a "
                f"correction, which is an x0 prediction; set {where}.prediction=x0 (got {self.prediction!r})"
            )

    @property
    def is_super_resolution(self) -> bool:
        return self.lowres_resolution is not None

    def as_record(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "unet"}


@dataclass(frozen=True)
class SamplerConfig:
    name: str = "ddpm"
    steps: int = 250
    eta: float = 0.0
    microbatch: int | None = None
    grid: str = "uniform_t"  # time grid: uniform_t | uniform_logsnr (samplers.time_grid)

    @staticmethod
    def from_config(cfg: Mapping[str, Any]) -> SamplerConfig:
        d = dict(cfg)
        SAMPLERS[str(d.get("name"))]  # an unknown name: one line naming the registered samplers
        known_keys(d, set(SamplerConfig.__dataclass_fields__), "sampler")
        positive_int(d.get("steps", 250), "sampler.steps")
        finite_number(d.get("eta", 0.0), "sampler.eta", minimum=0.0, maximum=1.0)
        if d.get("microbatch") is not None:
            positive_int(d["microbatch"], "sampler.microbatch")
        if d.get("grid", "uniform_t") not in GRIDS:
            raise UserError(f"sampler.grid must be one of {', '.join(GRIDS)}, got {d.get('grid')!r}")
        return SamplerConfig(**d)


def stages_until(names: list[str], stop_at: str | None) -> list[str]:
    """The stage names up to and including ``stop_at`` (all of them for None)."""
    if stop_at is None:
        return list(names)
    if stop_at not in names:
        raise UserError(f"stop_at={stop_at!r} is not a stage of this model; stages: {names}")
    return list(names[: names.index(stop_at) + 1])


class Stage:
    """A stage's U-Net with its schedule and sampling settings."""

    def __init__(self, spec: StageSpec, unet: nn.Module) -> None:
        self.spec, self.unet = spec, unet
        self.schedule: NoiseSchedule = build_schedule(**spec.schedule)
        self.threshold = build_thresholder(spec.thresholding, spec.percentile)

    @property
    def name(self) -> str:
        return self.spec.name


def build_unet(spec: StageSpec) -> nn.Module:
    """Instantiate the stage's U-Net from its ``_target_`` config."""
    try:
        return instantiate(dict(spec.unet), _convert_="all")
    except Exception as err:  # noqa: BLE001 — Hydra wraps constructor errors; report one line
        cause = err.__cause__ or err
        raise UserError(f"stage {spec.name!r}: cannot build its U-Net ({' '.join(str(cause).split())[:200]})") from None


def derive_seed(seed: int, stage_index: int, purpose: str = "sample") -> int:
    """Independent 63-bit seeds per (image seed, stage, purpose) from one user seed."""
    digest = hashlib.sha256(f"{seed}|{stage_index}|{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


class NoiseSource:
    """Per-sample generators: sample i's noise comes only from its own generator."""

    def __init__(self, seeds: list[int], stage_index: int, device: torch.device) -> None:
        self.gens = [torch.Generator().manual_seed(derive_seed(s, stage_index)) for s in seeds]
        self.device = device

    def like(self, z: torch.Tensor) -> torch.Tensor:
        shape = z.shape[1:]
        return torch.stack([torch.randn(shape, generator=g) for g in self.gens]).to(self.device, z.dtype)


def upsample(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear upsampling of the low-res condition (the same in training and sampling)."""
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats → uint8, rounding to nearest."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


class UNetCall:
    """Calls a stage's U-Net the way the cascade samples: in its precision and memory layout.

    ``bf16`` wraps the forward in autocast and returns float32, so guidance, the prediction-type
    conversion and the sampler never see bfloat16. ``channels_last`` hands the network NHWC inputs
    (oneDNN's native layout); the output comes back in the default layout.
    """

    def __init__(self, unet: nn.Module, precision: str = "float32", channels_last: bool = False) -> None:
        self.unet, self.precision, self.channels_last = unet, check_precision(precision), channels_last

    def __call__(
        self,
        z: torch.Tensor,
        t: torch.Tensor,
        text: torch.Tensor,
        mask: torch.Tensor,
        lowres: torch.Tensor | None = None,
        aug_level: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.channels_last:
            z = z.contiguous(memory_format=torch.channels_last)
            lowres = None if lowres is None else lowres.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=z.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            out = self.unet(z, t, text, mask, lowres=lowres, aug_level=aug_level)
        return out.float().contiguous()


class Cascade:
    """Text encoder + stages + sampler settings. ``text_encoder`` may be None when embeddings are given.

    ``precision`` (``float32`` | ``bf16``) and ``channels_last`` say how the U-Nets are evaluated
    (:class:`UNetCall`); both are plain attributes and may be changed on a built cascade.
    """

    def __init__(
        self,
        stages: list[Stage],
        text_encoder: Any | None,
        sampler: SamplerConfig,
        device: str | torch.device = "cpu",
        precision: str = "float32",
        channels_last: bool = False,
    ) -> None:
        if not stages:
            raise UserError("a cascade needs at least one stage")
        self.stages, self.text_encoder, self.sampler = stages, text_encoder, sampler
        self.device = torch.device(device)
        self.precision, self.channels_last = check_precision(precision), channels_last

    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    def _stages_until(self, stop_at: str | None) -> list[Stage]:
        return self.stages[: len(stages_until(self.stage_names(), stop_at))]

    def sample(
        self,
        prompts: list[str],
        seeds: list[int],
        stop_at: str | None = None,
        text: tuple[torch.Tensor, torch.Tensor] | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Images of every stage up to ``stop_at``: {stage name: (B, 3, H, W) in [-1, 1]}."""
        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        if text is None:
            if self.text_encoder is None:
                raise UserError("this cascade has no text encoder; pass precomputed text embeddings")
            with torch.no_grad():  # not inference mode: a cached embedding must stay usable in training
                text = self.text_encoder.encode(list(prompts))
        emb, mask = text[0].to(self.device), text[1].to(self.device)
        out: dict[str, torch.Tensor] = {}
        images = None
        for index, stage in enumerate(self._stages_until(stop_at)):
            images = self.sample_stage(index, stage, emb, mask, seeds, images, progress)
            out[stage.name] = images.clone()  # a normal tensor: callers may modify it in place
        return out

    @torch.inference_mode()
    def sample_stage(
        self,
        index: int,
        stage: Stage,
        emb: torch.Tensor,
        mask: torch.Tensor,
        seeds: list[int],
        lowres: torch.Tensor | None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> torch.Tensor:
        """Run one stage's sampler; ``lowres`` is the previous stage's output for SR stages."""
        spec, n, res = stage.spec, len(seeds), stage.spec.resolution
        noise = NoiseSource(seeds, index, self.device)
        z = noise.like(torch.empty(n, 3, res, res, device=self.device))
        cond = Conditioning(emb, mask)
        if spec.is_super_resolution:
            if lowres is None:
                raise UserError(f"stage {spec.name!r} is super-resolution and needs a previous stage's images")
            aug = torch.full((n,), float(spec.aug_level), device=self.device)
            low = noise_augment(stage.schedule, lowres, aug, noise.like(lowres)) if spec.aug_level > 0 else lowres
            cond = Conditioning(emb, mask, upsample(low, res), aug)

        net = UNetCall(stage.unet, self.precision, self.channels_last)

        def one(zb: torch.Tensor, tb: torch.Tensor, cb: Conditioning) -> tuple[torch.Tensor, torch.Tensor]:
            a, s = alpha_sigma(stage.schedule, tb.double())
            return guided_eps(net, zb, tb, cb, spec.guidance, spec.prediction, a, s)  # type: ignore[arg-type]

        evaluate = per_sample(one, self.sampler.microbatch)

        def denoise(zt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return stage.threshold(evaluate(zt, t, cond)[0])

        steps = spec.steps or self.sampler.steps
        kwargs = {"eta": self.sampler.eta} if self.sampler.name == "ddim" else {}
        callback = (lambda i, *_: progress(spec.name, i + 1, steps)) if progress else None
        z = SAMPLERS[self.sampler.name](
            denoise,
            z,
            stage.schedule,
            time_grid(steps, stage.schedule, self.sampler.grid),
            noise.like,
            callback,
            **kwargs,
        )
        return z.clamp(-1.0, 1.0)
