"""Sampling speed: our cascade's sampler against imagen-pytorch 2.1.0 at a matched configuration, in one run.

    nice -n 5 .venv/bin/python -m benchmarks.scripts.sampling_speed [--batch 8] [--steps 20] [--guidance 5]
        [--rounds 3] [--threads N] [--compile] [--quiet]

Every step costs the same (the U-Net forward is > 99% of it), so the ratios do not depend on ``--steps``;
20 steps keep the default run under 10 minutes on 2 cores (50 took over 15). Each timed call is logged to
stderr as it finishes (``--quiet``: only the tables).

One text-conditioned 32² stage (``benchmarks.scripts.anchor.Matched``: width 64 × (1, 2, 4), two res blocks per level,
attention at 16² and 8², random weights), ``--steps`` ancestral steps with classifier-free guidance
``--guidance``, a batch of ``--batch`` text embeddings passed in directly. Variants, timed interleaved over
``--rounds`` rounds after one untimed warm-up each:

  imagen-pytorch fp32            Imagen.sample(text_embeds=..., cond_scale=...): two forwards per step (cond, null)
  ours per-sample                sampler.microbatch=1: each image its own forward (batch-independent images)
  ours batched fp32              the default (microbatch=null): one forward of 2B per step (cond + null batched)
  ours batched fp32 NHWC         + channels_last inputs (Cascade.channels_last)
  ours bf16 / ours bf16 NHWC     precision=bf16 (U-Net under autocast), contiguous / channels_last; only on a
                                 CPU with native bf16 (AVX-512 BF16 / AMX): elsewhere oneDNN emulates it
  ours ... compiled              (--compile) torch.compile(mode=default, freezing) of the U-Net; compile time shown

Printed: parameters and FLOPs per sample-forward of both U-Nets; per variant the median seconds per batch,
img/s, the median within-round speed-up over imagen-pytorch, the FLOP rate (each model's own FLOPs) and its
share of oneDNN's 3×3 convolution rate measured in the same rounds (fp32 rows against the fp32 rate, bf16
rows against the bf16 rate), and the mean |difference| of the images from ours fp32 in 8-bit levels.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from benchmarks.scripts.anchor import (
    Matched,
    flops_per_sample,
    parameters,
    randomise_zero_layers,
    text_inputs,
    their_imagen,
)
from benchmarks.scripts.timing import conv_peak, interleaved, load_average, machine
from imagen.cascade import Cascade, SamplerConfig, Stage, StageSpec, build_unet, cpu_has_native_bf16

TARGETS = {"fp32": 1.6, "bf16": 4.0}  # issue 13: speed-up over imagen-pytorch fp32


def precisions() -> tuple[str, ...]:
    """The precisions worth timing here: bf16 only where the CPU runs it natively."""
    return ("fp32", "bf16") if cpu_has_native_bf16() else ("fp32",)


def our_cascade(cfg: Matched, args: argparse.Namespace, unet: torch.nn.Module, **kwargs: Any) -> Cascade:
    spec = StageSpec(
        name="base32",
        resolution=cfg.image_size,
        unet=cfg.our_unet_config(),
        guidance=args.guidance,
        prediction="epsilon",
        thresholding="dynamic",
    )
    microbatch = kwargs.pop("microbatch", None)
    return Cascade(
        [Stage(spec, unet)], None, SamplerConfig(name="ddpm", steps=args.steps, microbatch=microbatch), **kwargs
    )


def compiled(unet: torch.nn.Module, cascade: Cascade, run: Callable[[], Any]) -> tuple[torch.nn.Module, float]:
    """torch.compile of the U-Net with inductor's freezing (weights prepacked for oneDNN); seconds to compile."""
    import torch._inductor.config as inductor

    inductor.freezing = True
    net = torch.compile(unet, dynamic=False)
    cascade.stages[0].unet = net
    start = time.perf_counter()
    run()  # the first call compiles
    return net, time.perf_counter() - start


def variants(cfg: Matched, args: argparse.Namespace) -> tuple[dict[str, Callable[[], torch.Tensor]], dict[str, Any]]:
    emb, mask = text_inputs(cfg, args.batch)
    seeds, prompts = list(range(args.batch)), ["p"] * args.batch
    torch.manual_seed(0)
    spec_unet = StageSpec(name="base32", resolution=cfg.image_size, unet=cfg.our_unet_config())
    unet = randomise_zero_layers(build_unet(spec_unet).eval())
    imagen = their_imagen(cfg, args.steps)
    info: dict[str, Any] = {"ours": unet, "theirs": imagen.unets[0], "compile_s": {}}

    def ours(cascade: Cascade) -> Callable[[], torch.Tensor]:
        return lambda: cascade.sample(prompts, seeds, text=(emb, mask))["base32"]

    def theirs() -> torch.Tensor:
        torch.manual_seed(0)
        return imagen.sample(text_embeds=emb, text_masks=mask, cond_scale=args.guidance, use_tqdm=False) * 2 - 1

    rows: dict[str, Callable[[], torch.Tensor]] = {
        "imagen-pytorch fp32": theirs,
        "ours per-sample fp32": ours(our_cascade(cfg, args, unet, microbatch=1)),
        "ours batched fp32": ours(our_cascade(cfg, args, unet)),
        "ours batched fp32 NHWC": ours(our_cascade(cfg, args, unet, channels_last=True)),
    }
    if cpu_has_native_bf16():  # emulated bf16 (no AVX-512 BF16 / AMX) is slower than fp32: not a variant
        rows["ours batched bf16"] = ours(our_cascade(cfg, args, unet, precision="bf16"))
        rows["ours batched bf16 NHWC"] = ours(our_cascade(cfg, args, unet, precision="bf16", channels_last=True))
    if args.compile:
        for precision in precisions():
            cascade = our_cascade(cfg, args, unet, precision="float32" if precision == "fp32" else "bf16")
            fn = ours(cascade)
            _, seconds = compiled(unet, cascade, fn)
            info["compile_s"][precision] = seconds
            rows[f"ours batched {precision} compiled"] = fn
    return rows, info


def model_table(cfg: Matched, args: argparse.Namespace, info: dict[str, Any]) -> dict[str, float]:
    emb, mask = text_inputs(cfg, 2)

    def our_forward(b: int) -> Any:
        return info["ours"](torch.randn(b, 3, cfg.image_size, cfg.image_size), torch.rand(b), emb[:b], mask[:b])

    def their_forward(b: int) -> Any:
        return info["theirs"](
            torch.randn(b, 3, cfg.image_size, cfg.image_size), torch.rand(b), text_embeds=emb[:b], text_mask=mask[:b]
        )

    flops = {"ours": flops_per_sample(our_forward), "theirs": flops_per_sample(their_forward)}
    print(f"{'U-Net':<16} {'parameters':>12} {'GFLOP per sample-forward':>25}")
    print(f"{'imagen-pytorch':<16} {parameters(info['theirs']):>12,} {flops['theirs'] / 1e9:>25.2f}")
    print(f"{'ours':<16} {parameters(info['ours']):>12,} {flops['ours'] / 1e9:>25.2f}")
    return flops


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--guidance", type=float, default=5.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--compile", action="store_true", help="add torch.compile variants (slow to compile on a CPU)")
    p.add_argument("--quiet", action="store_true", help="no per-call progress lines on stderr")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = Matched()
    start_load, start = load_average(), time.perf_counter()
    rows, info = variants(cfg, args)
    flops = model_table(cfg, args, info)
    peaks = {k: conv_peak(torch.float32 if k == "fp32" else torch.bfloat16) for k in precisions()}
    rows_with_peaks = {**{f"conv peak {k}": fn for k, fn in peaks.items()}, **rows}
    log = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    rounds = interleaved(rows_with_peaks, args.rounds, log=log)
    peak = {k: statistics.median(rounds.numbers[f"conv peak {k}"]) for k in peaks}
    report(cfg, args, rounds, rows, flops, peak, info, start_load, time.perf_counter() - start)


def report(
    cfg: Matched,
    args: argparse.Namespace,
    rounds: Any,
    rows: dict[str, Any],
    flops: dict[str, float],
    peak: dict[str, float],
    info: dict[str, Any],
    start_load: str,
    seconds: float,
) -> None:
    ref = "imagen-pytorch fp32"
    base = rounds.results["ours batched fp32"]
    print(
        f"\n{args.batch} images of {cfg.image_size}², {args.steps} ancestral steps, guidance {args.guidance:g}, "
        f"median of {args.rounds} interleaved rounds; oneDNN 3×3 conv rate now (medians): {peak['fp32']:.0f} GFLOP/s "
        + (f"fp32, {peak['bf16']:.0f} GFLOP/s bf16" if "bf16" in peak else "fp32 (no native bf16 on this CPU)")
    )
    print(
        f"{'variant':<28} {'s/batch':>8} {'img/s':>7} {'vs imagen-pytorch':>18} {'GFLOP/s':>8} "
        f"{'of conv peak':>13} {'mean |Δ| (8-bit)':>17}"
    )
    for name in rows:
        s = rounds.median(name)
        kind = "bf16" if "bf16" in name else "fp32"
        gf = flops["theirs" if name == ref else "ours"] / 1e9
        rate = args.batch * args.steps * 2 * gf / s
        diff = (rounds.results[name] - base).abs().mean().item() * 127.5 if name != ref else float("nan")
        print(
            f"{name:<28} {s:>8.2f} {args.batch / s:>7.3f} {rounds.ratio(name, ref):>17.2f}x {rate:>8.1f} "
            f"{rate / peak[kind]:>12.0%} {diff:>17.2f}"
        )
    for kind, target in TARGETS.items():
        mine = [n for n in rows if n.startswith("ours batched") and kind in n]
        if not mine:
            print(
                f"target {kind}: >= {target:g}x imagen-pytorch fp32 -> not measured: this CPU has no native bf16 "
                "(oneDNN would emulate it, slower than fp32)"
            )
            continue
        best = max(mine, key=lambda n: rounds.ratio(n, ref))
        got = rounds.ratio(best, ref)
        print(
            f"target {kind}: >= {target:g}x imagen-pytorch fp32 -> best '{best}' {got:.2f}x: "
            f"{'MET' if got >= target else 'NOT MET'}"
        )
    for kind, s in info["compile_s"].items():
        print(f"torch.compile ({kind}) took {s:.0f} s to compile")
    print(
        f"machine: {machine()}; load average (1/5/15 min) at start {start_load}, at end {load_average()}; "
        f"{seconds:.0f} s in all"
    )


if __name__ == "__main__":
    main()
