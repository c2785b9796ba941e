"""What ``precision=bf16`` does to the scores: FID, CLIP score and world accuracy on the demo world, fp32 vs bf16.

    nice -n 5 .venv/bin/python -m benchmarks.scripts.precision_effect [--samplers ddpm:50 dpmpp_2m:10]
        [--limit-per-category 1] [--parallel 2] [--out DIR]

(The default is ``dpmpp_2m:10`` alone on a CPU without native bf16.)

For each ``sampler:steps`` (default: ancestral at 50 steps, the recommendation of ``steps_to_trust``, and
DPM-Solver++(2M) at 10 steps, ``make demo``'s sampler) the shipped final tiny checkpoint's base stage (32²)
is evaluated twice on the world suite with the same prompts and seeds, once in float32 and once with
``precision=bf16`` (the U-Net under bf16 autocast), exactly as ``steps_to_trust`` runs it. Then
``imagen-bench regress baseline=<fp32 run> candidate=<bf16 run>`` pairs the two runs image by image and gives
the bf16 − fp32 change of each score with its paired-bootstrap 95% interval over prompts.

bf16 is *within run-to-run noise* on a score when both hold: the paired interval of the change contains 0
(the same seeds cannot tell the two precisions apart), and the bf16 value lies inside the fp32 run's own 95%
interval (the spread another draw of seeds would give). Also printed: the mean |difference| of the images in
8-bit levels and each run's generation seconds (one thread per process). bf16's *speed* is not the point here:
at the tiny model's 32–64 channels its casts cost about what its convolutions save even with native bf16,
and without it (AVX2-only CPUs) oneDNN emulates bf16 several times slower than fp32.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmarks.scripts.steps_to_trust import (
    METRICS,
    add_world_options,
    cli,
    eval_args,
    overall,
    parse_config,
    run_folder,
    world_reference,
)
from benchmarks.scripts.timing import load_average, machine
from harness.formats.manifest import read_manifest
from imagen.cascade import cpu_has_native_bf16

PRECISIONS = ("float32", "bf16")


def parse_samplers(items: list[str]) -> list[tuple[str, int]]:
    return [parse_config(item, "--samplers") for item in items]


def run_pairs(args: argparse.Namespace, out: Path, env: dict[str, str]) -> dict[tuple[str, int, str], dict[str, Any]]:
    """Every (sampler, steps, precision) eval, ``--parallel`` side by side; finished runs in ``out`` are reused."""
    world = world_reference(args, out, env)
    jobs = [(s, n, p) for s, n in parse_samplers(args.samplers) for p in PRECISIONS]

    def one(job: tuple[str, int, str]) -> tuple[tuple[str, int, str], dict[str, Any]]:
        sampler, steps, precision = job
        run_id = f"{sampler}-{steps}-{precision}"
        if not (out / run_id / "results.json").is_file():
            cli(eval_args(args, world, sampler, steps, run_id, (f"precision={precision}",)), env, out / f"{run_id}.log")
        got = overall(out / run_id)
        print(f"  {run_id}: generation {got['generate_s']:.0f} s (load {load_average()})", file=sys.stderr, flush=True)
        return job, got

    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        return dict(pool.map(one, jobs))


def paired_changes(out: Path, sampler: str, steps: int, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """``regress`` of the bf16 run against the fp32 run: its overall row per score (delta and paired interval)."""
    base, cand = (out / f"{sampler}-{steps}-{p}" for p in PRECISIONS)
    run_id = f"regress-{sampler}-{steps}"
    if not (out / run_id / "verdict.json").is_file():
        # regress exits 0/1/3 by its verdict; the benchmark only reads the intervals, so any verdict is fine.
        try:
            cli(
                [
                    "regress",
                    f"baseline={base}",
                    f"candidate={cand}",
                    "benchmark=world",
                    f"run_id={run_id}",
                    "model=imagen_tiny",
                    "junit=false",
                ],
                env,
                out / f"{run_id}.log",
            )
        except SystemExit:
            if not (out / run_id / "verdict.json").is_file():
                raise
    verdict = json.loads((out / run_id / "verdict.json").read_text())
    return {r["output"]: r for r in verdict["rows"] if r["group"] == "overall" and r["output"] in METRICS}


def image_difference(out: Path, sampler: str, steps: int) -> float:
    """Mean |bf16 − fp32| over every pixel of the paired images, in 8-bit levels."""
    runs = [out / f"{sampler}-{steps}-{p}" for p in PRECISIONS]
    files = [{r.sample_key: run / r.path for r in read_manifest(run)} for run in runs]
    diffs = [
        np.abs(np.asarray(Image.open(files[0][k]), np.int16) - np.asarray(Image.open(files[1][k]), np.int16)).mean()
        for k in sorted(files[0])
        if k in files[1]
    ]
    return float(np.mean(diffs)) if diffs else float("nan")


def within_noise(change: dict[str, Any], fp32: dict[str, Any], bf16: dict[str, Any]) -> bool:
    paired = change["ci_low"] is not None and change["ci_low"] <= 0 <= change["ci_high"]
    return paired and fp32["ci_low"] <= bf16["value"] <= fp32["ci_high"]


def report(
    rows: dict[tuple[str, int, str], dict[str, Any]],
    changes: dict[tuple[str, int], dict[str, Any]],
    diffs: dict[tuple[str, int], float],
    args: argparse.Namespace,
) -> bool:
    """The table; True when bf16 is within run-to-run noise on every score of every sampler."""
    print(
        f"\nThe final tiny checkpoint's base stage (32²) on the world suite, {args.limit_per_category} prompt(s) per "
        f"category x 8 seeds, FID against {args.n_test} held-out world images; fp32 and bf16 on the same seeds; "
        "change = bf16 - fp32 with its paired-bootstrap 95% interval (regress)"
    )
    print(
        f"{'sampler':<13} {'score':<15} {'fp32 [95% CI]':>30} {'bf16 [95% CI]':>30} {'change [paired 95% CI]':>30} "
        f"{'within noise':>12}"
    )
    every = True
    for sampler, steps in parse_samplers(args.samplers):
        fp32, bf16 = (rows[(sampler, steps, p)] for p in PRECISIONS)
        for m in METRICS:
            a, b, c = fp32["scores"][m], bf16["scores"][m], changes[(sampler, steps)][m]
            ok = within_noise(c, a, b)
            every &= ok
            lo, hi = (f"{v:+.3f}" if v is not None else "?" for v in (c["ci_low"], c["ci_high"]))
            fp, bf = (f"{v['value']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]" for v in (a, b))
            ch = f"{c['delta']:+.3f} [{lo}, {hi}]"
            print(f"{f'{sampler} {steps}':<13} {m:<15} {fp:>30} {bf:>30} {ch:>30} {'yes' if ok else 'NO':>12}")
        print(
            f"{'':<13} {'images':<15} mean |bf16 - fp32| {diffs[(sampler, steps)]:.2f} of 255 levels (n = "
            f"{fp32['n']}); generation {fp32['generate_s']:.1f} s fp32, {bf16['generate_s']:.1f} s bf16 "
            f"({fp32['generate_s'] / bf16['generate_s']:.2f}x)"
        )
    print(f"bf16 within run-to-run noise on FID, CLIP score and world accuracy: {'yes' if every else 'NO'}")
    return every


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--samplers",
        nargs="+",
        default=None,
        metavar="SAMPLER:STEPS",
        help="default: ddpm:50 dpmpp_2m:10; dpmpp_2m:10 alone on a CPU without native bf16 (emulated "
        "bf16 is several times slower than fp32, and 50 ancestral steps would not fit 10 minutes)",
    )
    add_world_options(p)
    args = p.parse_args(argv)
    if args.samplers is None:
        args.samplers = ["ddpm:50", "dpmpp_2m:10"] if cpu_has_native_bf16() else ["dpmpp_2m:10"]
    parse_samplers(args.samplers)  # a bad value fails before anything runs
    start, start_load = time.perf_counter(), load_average()
    with tempfile.TemporaryDirectory(prefix="precision-effect-") as tmp:
        out = (args.out or Path(tmp)).resolve()
        env = run_folder(out, args)
        rows = run_pairs(args, out, env)
        pairs = parse_samplers(args.samplers)
        changes = {(s, n): paired_changes(out, s, n, env) for s, n in pairs}
        diffs = {(s, n): image_difference(out, s, n) for s, n in pairs}
    report(rows, changes, diffs, args)
    print(
        f"machine: {machine()}; load average (1/5/15 min) at start {start_load}, at end {load_average()}; "
        f"{time.perf_counter() - start:.0f} s in all"
    )


if __name__ == "__main__":
    main()
