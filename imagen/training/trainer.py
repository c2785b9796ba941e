"""Train one stage of the cascade on an image–caption folder.

EMA, AdamW/Adam/Adafactor, linear warm-up, gradient clipping, optional bf16 autocast, text
embeddings from the offline cache, a progress bar, a CSV loss log (and TensorBoard when it
is installed), periodic checkpoints and exact resume. Under torchrun/accelerate each rank
takes a contiguous slice of every global batch and DDP averages the gradients.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from imagen.build import build_text_encoder, plain, stage_specs, text_encoder_record
from imagen.cascade import Stage, StageSpec, build_unet, derive_seed, upsample
from imagen.checkpoints import load_stage, save_stage
from imagen.diffusion.gaussian import diffusion_loss, noise_augment, q_sample
from imagen.diffusion.guidance import Conditioning, drop_text, model_forward
from imagen.diffusion.schedules import alpha_sigma
from imagen.distributed import DistContext
from imagen.errors import UserError
from imagen.training.data import ImageCaptionSet, batch_indices, downsample
from imagen.training.optim import EMA, build_optimizer, lr_at
from imagen.training.state import load_train_state, save_train_state
from imagen.validation import finite_number, known_keys, non_negative_int, positive_int

LOG_FIELDS = ["step", "loss", "lr", "grad_norm", "seconds", "images_per_s"]


@dataclass(frozen=True)
class TrainSettings:
    steps: int = 1000
    batch_size: int = 16
    lr: float = 1e-4
    optimizer: str = "adamw"
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup_steps: int = 100
    lr_schedule: str = "constant"
    grad_clip: float | None = 1.0
    ema_decay: float = 0.9999
    p_uncond: float = 0.1  # classifier-free guidance: text zeroed with this probability (§2.2)
    bf16: bool = False
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 500
    crop: int | None = None  # SR stages: train on random crops of this size (F.3 trains on crops)

    @staticmethod
    def from_config(cfg: Any) -> TrainSettings:
        d = plain(cfg)
        known_keys(d, set(TrainSettings.__dataclass_fields__), "train")
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        s = TrainSettings(**d)
        s.check()
        return s

    def check(self) -> None:
        for key in ("steps", "batch_size", "log_every", "checkpoint_every"):
            positive_int(getattr(self, key), f"train.{key}")
        non_negative_int(self.warmup_steps, "train.warmup_steps")
        non_negative_int(self.seed, "train.seed")
        finite_number(self.lr, "train.lr", minimum=0.0, strict=True)
        finite_number(self.weight_decay, "train.weight_decay", minimum=0.0)
        finite_number(self.eps, "train.eps", minimum=0.0, strict=True)
        finite_number(self.ema_decay, "train.ema_decay", minimum=0.0, maximum=1.0)
        finite_number(self.p_uncond, "train.p_uncond", minimum=0.0, maximum=1.0)
        if len(self.betas) != 2:
            raise UserError(f"train.betas must be two numbers, got {list(self.betas)}")
        for b in self.betas:
            finite_number(b, "train.betas", minimum=0.0, maximum=1.0)
        if self.grad_clip is not None:
            finite_number(self.grad_clip, "train.grad_clip", minimum=0.0, strict=True)
        if self.crop is not None:
            positive_int(self.crop, "train.crop")

    def fingerprint_fields(self) -> dict[str, Any]:
        """What a resumed run must share with the original (not the step budget or intervals)."""
        d = asdict(self)
        for k in ("steps", "log_every", "checkpoint_every"):
            d.pop(k)
        return d


def pick_stage(cfg: DictConfig) -> StageSpec:
    specs = stage_specs(cfg.model)
    name = cfg.get("stage") or specs[0].name
    for spec in specs:
        if spec.name == name:
            return spec
    raise UserError(
        f"stage={name!r} is not a stage of {plain(cfg.model).get('name')}; stages: {[s.name for s in specs]}"
    )


class Draws:
    """Per-sample random draws: sample k of a global batch uses its own generator, seeded by
    (seed, step, k), so a data-parallel run draws exactly what a single process would."""

    def __init__(self, seed: int, step: int, positions: range) -> None:
        self.gens = [torch.Generator().manual_seed(derive_seed(seed, step, f"train-sample{k}")) for k in positions]

    def rand(self) -> torch.Tensor:
        return torch.cat([torch.rand(1, generator=g, dtype=torch.float64) for g in self.gens])

    def randn(self, *shape: int) -> torch.Tensor:
        return torch.stack([torch.randn(shape, generator=g) for g in self.gens])

    def crop(self, x: torch.Tensor, size: int) -> torch.Tensor:
        """One random crop per sample (the 1024 stage trains on 256² crops of its targets)."""
        _, _, h, w = x.shape
        out = []
        for img, g in zip(x, self.gens):
            top = int(torch.randint(0, h - size + 1, (1,), generator=g))
            left = int(torch.randint(0, w - size + 1, (1,), generator=g))
            out.append(img[:, top : top + size, left : left + size])
        return torch.stack(out)


def stage_loss(
    stage: Stage, model: nn.Module, x0: torch.Tensor, cond: Conditioning, draws: Draws, settings: TrainSettings
) -> torch.Tensor:
    """Mean diffusion loss of a batch: t ~ U(0, 1), ε ~ N(0, I), text dropped with p_uncond."""
    spec = stage.spec
    if spec.is_super_resolution:
        if settings.crop:
            x0 = draws.crop(x0, settings.crop)
        low_size = x0.shape[-1] * spec.lowres_resolution // spec.resolution
        aug = draws.rand().float() * spec.train_aug_max
        low = noise_augment(stage.schedule, downsample(x0, low_size), aug, draws.randn(3, low_size, low_size))
        cond = Conditioning(cond.text, cond.mask, upsample(low, x0.shape[-1]), aug.to(x0.device))
    cond = drop_text(cond, draws.rand() < settings.p_uncond)
    t = draws.rand()
    noise = draws.randn(*x0.shape[1:]).to(x0.device)
    z = q_sample(stage.schedule, x0, t, noise)
    alpha, sigma = alpha_sigma(stage.schedule, t)
    with torch.autocast(x0.device.type, dtype=torch.bfloat16, enabled=settings.bf16):
        out = model_forward(model, z, t.float().to(x0.device), cond)
    return diffusion_loss(out, spec.prediction, x0, noise, alpha, sigma).mean()


class LossLog:
    """CSV loss log (rows past a resume point are dropped) plus TensorBoard when installed."""

    def __init__(self, run_dir: Path, start_step: int, enabled: bool) -> None:
        self.path, self.enabled = run_dir / "train_log.csv", enabled
        self.tb = None
        if not enabled:
            return
        rows = []
        if self.path.exists() and start_step > 0:
            with open(self.path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= start_step]
        with open(self.path, "w", newline="") as f:
            w = csv.DictWriter(f, LOG_FIELDS)
            w.writeheader()
            w.writerows(rows)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tensorboard"))
        except ImportError:
            self.tb = None

    def write(self, row: dict[str, float]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, LOG_FIELDS).writerow(row)
        if self.tb is not None:
            for k in ("loss", "lr", "grad_norm"):
                self.tb.add_scalar(f"train/{k}", row[k], int(row["step"]))


@dataclass
class TrainSetup:
    spec: StageSpec
    settings: TrainSettings
    stage: Stage
    data: ImageCaptionSet
    text: tuple[torch.Tensor, torch.Tensor]
    te_record: dict[str, Any]
    fingerprint: str


def prepare(cfg: DictConfig, ctx: DistContext) -> TrainSetup:
    spec, settings = pick_stage(cfg), TrainSettings.from_config(cfg.train)
    if settings.batch_size % ctx.world_size:
        raise UserError(f"train.batch_size={settings.batch_size} must be divisible by the {ctx.world_size} processes")
    data = ImageCaptionSet(cfg.data.root, spec.resolution, cfg.data.get("captions"))
    encoder = build_text_encoder(cfg.text_encoder, cfg.paths.cache_dir, device=ctx.device)
    if ctx.is_main:  # fill the cache once; other ranks then read it
        encoder.encode(data.captions)
    ctx.barrier()
    text = encoder.encode(data.captions)
    torch.manual_seed(settings.seed)  # identical initial weights on every rank
    stage = Stage(spec, build_unet(spec).to(ctx.device))
    if cfg.get("init_from"):
        load_stage(cfg.init_from, stage.unet, stage=spec.name, unet=spec.unet)
    fp = hashlib.sha256(
        json.dumps(
            {
                "spec": spec.as_record(),
                "unet": spec.unet,
                "train": settings.fingerprint_fields(),
                "data": [str(e.path) for e in data.examples],
                "captions": data.captions,
                "text_encoder": encoder.identity,
                "world_size": ctx.world_size,
            },
            sort_keys=True,
            default=str,
        ).encode()
    ).hexdigest()
    return TrainSetup(spec, settings, stage, data, text, text_encoder_record(encoder), fp)


def export_checkpoints(run_dir: Path, setup: TrainSetup, ema: EMA, step: int) -> Path:
    common: dict[str, Any] = dict(
        stage=setup.spec.name,
        unet=setup.spec.unet,
        spec=setup.spec.as_record(),
        step=step,
        text_encoder=setup.te_record,
    )
    path = run_dir / "checkpoints" / f"{setup.spec.name}.safetensors"
    save_stage(path, ema.state_dict(), ema=True, **common)
    save_stage(
        run_dir / "checkpoints" / "raw" / f"{setup.spec.name}.safetensors",
        setup.stage.unet.state_dict(),
        ema=False,
        **common,
    )
    return path


def train_step(
    setup: TrainSetup, model: nn.Module, opt: torch.optim.Optimizer, step: int, ctx: DistContext
) -> tuple[float, float, float]:
    s, n = setup.settings, len(setup.data)
    per_rank = s.batch_size // ctx.world_size
    idx = batch_indices(n, s.seed, step, s.batch_size)[ctx.rank * per_rank : (ctx.rank + 1) * per_rank]
    x0, _ = setup.data.batch(idx)
    cond = Conditioning(setup.text[0][idx].to(ctx.device), setup.text[1][idx].to(ctx.device))
    draws = Draws(s.seed, step, range(ctx.rank * per_rank, (ctx.rank + 1) * per_rank))
    lr = lr_at(step, s.lr, s.warmup_steps, s.steps, s.lr_schedule)
    for group in opt.param_groups:
        group["lr"] = lr
    loss = stage_loss(setup.stage, model, x0.to(ctx.device), cond, draws, s)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    params = [p for p in model.parameters() if p.grad is not None]
    gn = torch.nn.utils.clip_grad_norm_(params, s.grad_clip if s.grad_clip else float("inf"))
    opt.step()
    logged = loss.detach().clone()
    if ctx.distributed:  # log the global batch's mean loss, not rank 0's share
        torch.distributed.all_reduce(logged)
        logged /= ctx.world_size
    return float(logged), lr, float(gn)


def train(cfg: DictConfig, run_dir: str | Path) -> dict[str, Any]:
    """Train ``cfg.stage`` for ``cfg.train.steps`` steps in ``run_dir``; resumes when a state exists there."""
    ctx = DistContext.init(cfg.get("device", "auto"))
    run_dir = Path(ctx.broadcast_object(str(run_dir)))
    run_dir.mkdir(parents=True, exist_ok=True)
    setup = prepare(cfg, ctx)
    s, unet = setup.settings, setup.stage.unet
    opt = build_optimizer(unet.parameters(), s.optimizer, s.lr, s.weight_decay, s.betas, s.eps)
    ema = EMA(unet, s.ema_decay)
    state_path = run_dir / "checkpoints" / "train_state.safetensors"
    start = load_train_state(state_path, unet, ema, opt, setup.fingerprint) if state_path.exists() else 0
    model = DistributedDataParallel(unet) if ctx.distributed else unet
    log = LossLog(run_dir, start, ctx.is_main)
    bar = tqdm(
        range(start, s.steps),
        initial=start,
        total=s.steps,
        desc=f"train {setup.spec.name}",
        disable=not ctx.is_main,
        dynamic_ncols=True,
    )
    t0, last = time.time(), {"loss": float("nan")}
    for step in bar:
        loss, lr, gn = train_step(setup, model, opt, step, ctx)
        ema.update(unet)
        done = step + 1
        if done % s.log_every == 0 or done == s.steps:
            el = time.time() - t0
            last = {
                "step": done,
                "loss": loss,
                "lr": lr,
                "grad_norm": gn,
                "seconds": round(el, 3),
                "images_per_s": round((done - start) * s.batch_size / max(el, 1e-9), 3),
            }
            log.write(last)
            bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}")
        if ctx.is_main and (done % s.checkpoint_every == 0 or done == s.steps):
            save_train_state(state_path, unet, ema, opt, done, setup.fingerprint)
            export_checkpoints(run_dir, setup, ema, done)
        if done % s.checkpoint_every == 0:
            ctx.barrier()
    ctx.barrier()
    ctx.close()
    return {
        "run_dir": str(run_dir),
        "stage": setup.spec.name,
        "steps": s.steps,
        "resumed_from": start,
        "checkpoint": str(run_dir / "checkpoints" / f"{setup.spec.name}.safetensors"),
        "last": last,
    }
