"""Cost on paper: FLOPs per U-Net evaluation of each ``imagen_paper`` stage, and GPU-hours of a COCO FID-30K run.

    .venv/bin/python -m benchmarks.scripts.gpu_cost [--model imagen_paper] [--gpu-tflops 989] [--mfu 0.4]
                                            [--images 30000] [--steps 25,250,1000] [--gpus 1,8,64]

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on one forward of each stage's U-Net built
on the meta device (no memory, no weights), at the stage's resolution with a full 128-token text context
(T5-XXL's length in the paper). Classifier-free guidance costs two evaluations per step (conditional and
unconditional; our samplers batch them). COCO FID-30K is evaluated at 256×256, so it runs the base and the
64→256 stage only. Assumptions, printed with the table: dense bf16 peak of the GPU (H100 SXM: 989 TFLOP/s),
a model-FLOP utilisation (MFU) of 40% for these convolution-heavy U-Nets, and perfect scaling over N GPUs —
the sharded runner splits fixed groups of prompts over ranks with no communication but a final merge.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from torch.utils.flop_counter import FlopCounterMode

import harness.cli.hydra_app  # noqa: F401  (registers the config resolvers)
from imagen.build import stage_specs
from imagen.cascade import build_unet

CONF = Path(__file__).resolve().parents[2] / "conf"
TEXT_TOKENS = 128


def stage_flops(model: str) -> list[tuple[str, int, int, float]]:
    """(stage, resolution, parameters, GFLOP per forward of one sample) for every stage of ``model``."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("info", overrides=[f"model={model}"])
    rows = []
    for spec in stage_specs(cfg.model):
        with torch.device("meta"):
            net = build_unet(spec)
            r = spec.resolution
            kwargs = {"lowres": torch.zeros(1, 3, r, r), "aug_level": torch.zeros(1)} if spec.lowres_resolution else {}
            emb = torch.zeros(1, TEXT_TOKENS, int(cfg.text_encoder.dim))
            mask = torch.ones(1, TEXT_TOKENS, dtype=torch.bool)
            with FlopCounterMode(display=False) as counter:
                net(torch.zeros(1, 3, r, r), torch.zeros(1), emb, mask, **kwargs)
        params = sum(p.numel() for p in net.parameters())
        rows.append((spec.name, r, params, counter.get_total_flops() / 1e9))
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="imagen_paper")
    p.add_argument("--gpu-tflops", type=float, default=989.0, help="dense bf16 peak (H100 SXM: 989)")
    p.add_argument("--mfu", type=float, default=0.4, help="model-FLOP utilisation assumed")
    p.add_argument("--images", type=int, default=30000)
    p.add_argument("--steps", default="25,250,1000", help="sampler steps per stage to cost")
    p.add_argument("--gpus", default="1,8,64")
    p.add_argument("--eval-stages", default="base64,sr256", help="stages a COCO FID-30K run samples")
    args = p.parse_args(argv)
    rows = stage_flops(args.model)
    print(f"{args.model}: FLOPs per U-Net evaluation of one sample (meta device, {TEXT_TOKENS} text tokens)")
    print(f"{'stage':<8} {'res':>5} {'params':>14} {'GFLOP/eval':>11} {'GFLOP/step (CFG x2)':>20}")
    for name, res, params, gflop in rows:
        print(f"{name:<8} {res:>5} {params:>14,} {gflop:>11.1f} {2 * gflop:>20.1f}")
    wanted = args.eval_stages.split(",")
    per_step = sum(2 * g for name, _, _, g in rows if name in wanted)
    rate = args.gpu_tflops * 1e12 * args.mfu
    gpus = [int(g) for g in args.gpus.split(",")]
    print(
        f"\nCOCO FID-{args.images // 1000}K ({'+'.join(wanted)}), {args.gpu_tflops:g} TFLOP/s peak x {args.mfu:.0%} MFU"
        " per GPU, linear scaling over GPUs (sharded runner):"
    )
    print(f"{'steps/stage':>11} {'PFLOP':>10} " + " ".join(f"{f'{g} GPU h':>10}" for g in gpus))
    for steps in (int(s) for s in args.steps.split(",")):
        total = args.images * steps * per_step * 1e9
        hours = total / rate / 3600
        print(f"{steps:>11} {total / 1e15:>10.0f} " + " ".join(f"{hours / g:>10.2f}" for g in gpus))


if __name__ == "__main__":
    main()
