"""Where a U-Net forward spends its time: the profile behind `sampling_speed`'s reading of its targets.

    .venv/bin/python -m benchmarks.scripts.profile_unet [--batch 16] [--precision fp32|bf16] [--top 8]

Our U-Net at the matched configuration of ``benchmarks.scripts.anchor`` (random weights), ``--batch`` samples, after
two warm-up forwards: ``torch.profiler`` over three forwards gives each op's share of the time; the FLOP
counter gives the convolutions' FLOPs, hence their achieved rate, printed against oneDNN's 3×3 convolution
rate measured in the same process (the best of two measurements).
"""

from __future__ import annotations

import argparse
import contextlib

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.scripts.anchor import Matched, randomise_zero_layers, text_inputs
from benchmarks.scripts.timing import conv_peak, machine
from imagen.cascade import StageSpec, build_unet


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--top", type=int, default=8, help="ops to list")
    args = p.parse_args(argv)
    cfg = Matched()
    torch.manual_seed(0)
    spec = StageSpec(name="base32", resolution=cfg.image_size, unet=cfg.our_unet_config())
    unet = randomise_zero_layers(build_unet(spec).eval())
    emb, mask = text_inputs(cfg, args.batch)
    x, t = torch.randn(args.batch, 3, cfg.image_size, cfg.image_size), torch.rand(args.batch)
    bf16 = args.precision == "bf16"

    def forward() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            unet(x, t, emb, mask)

    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            forward()
        conv_flops = sum(v for k, v in counter.get_flop_counts()["Global"].items() if "convolution" in str(k))
        forward(), forward()
        with torch.profiler.profile() as prof:
            for _ in range(3):
                forward()
    times = {e.key: e.self_cpu_time_total / 3e6 for e in prof.key_averages()}  # seconds per forward
    total, conv = sum(times.values()), times.get("aten::mkldnn_convolution", 0.0)
    measure = conv_peak(torch.bfloat16 if bf16 else torch.float32)
    peak = max(measure(), measure())
    print(
        f"{args.precision}, batch {args.batch}: forward {total * 1e3:.0f} ms; convolutions {conv * 1e3:.0f} ms "
        f"({conv / total:.0%} of the time), {conv_flops / 1e9:.1f} of {counter.get_total_flops() / 1e9:.1f} GFLOP "
        f"-> {conv_flops / conv / 1e9:.0f} GFLOP/s against oneDNN's {peak:.0f} ({conv_flops / conv / 1e9 / peak:.0%})"
    )
    for key, seconds in sorted(times.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"  {key:<55} {seconds / total:6.1%}")
    print(f"machine: {machine()}")


if __name__ == "__main__":
    main()
