"""One prepared check of the harness on a GPU, in one call and one table (issue 25).

    .venv/bin/python -m benchmarks.scripts.gpu_check                       # on the GPU machine, ~8 min on one H100
    .venv/bin/python -m benchmarks.scripts.gpu_check --device cpu --dry    # everything at toy size here (a test runs it)

1. **gpu tests**: the tests marked ``gpu`` (``tests/test_cuda.py``: noise identical on CPU and GPU, bit-exact
   deterministic reruns, bf16 and channels_last sampling), run by pytest;
2. **world on the device vs the CPU**: the shipped tiny cascade evaluates the world suite on the device and on
   the CPU (same prompts, seeds, reference); the device's FID, CLIP score and judge accuracy must lie inside
   the CPU run's 95% intervals (the kernels round differently, so equality is not the contract);
3. **deterministic reruns**: the same samples twice with ``deterministic=true``: every PNG byte-identical;
4. **speed**: one guided sampling step of ``model=imagen_paper``'s base stage (random weights, batch 16,
   cond + uncond in one forward) in float32 and bf16, and the world evaluation's wall time; imagen-pytorch's
   matched U-Net (``benchmarks/scripts/anchor.py``) at the same batch when it is installed (``make bench-setup``);
5. **memory**: the peak memory of one guided forward of each paper stage at batch 1, and the largest batch
   that fits (doubling, then bisecting, up to ``--max-batch``).

``--dry`` shrinks every step (the micro cascade for the paper, one prompt per category, 2 seeds) so the
script runs on the CPU in a test and cannot rot; it proves the wiring, not the numbers. The exit code is 1
when any check fails. Paste the table, unedited, into ``benchmarks/README.md`` with the card's name.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[2]
WORLD = REPO / "benchmarks" / "world"
OUTPUTS = ("fid", "clip_score", "world_accuracy")


@dataclass
class Row:
    check: str
    result: str  # PASS | FAIL | n/a
    detail: str


# --- 1. the gpu tests ------------------------------------------------------------------------------------------


def gpu_tests(args: argparse.Namespace) -> Row:
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", "tests/test_cuda.py"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=_env(args), check=False)
    last = (out.stdout.strip().splitlines() or ["(no output)"])[-1]
    ok = out.returncode == 0 or (args.device == "cpu" and "skipped" in last)  # no GPU here: they skip
    return Row("tests marked gpu", "PASS" if ok else "FAIL", last)


# --- 2./3. the world suite on the device, the CPU, and twice deterministic -------------------------------------


def _env(args: argparse.Namespace) -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "IMAGEN_BENCH_RUNS": str(args.out / "runs"),
        "IMAGEN_BENCH_CACHE": str(args.out / "cache"),
    }


def _cli(args: argparse.Namespace, *command: str) -> float:
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "harness.cli", *command],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=_env(args),
        check=False,
    )
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["?"])[-1]
        raise RuntimeError(f"imagen-bench {command[0]} failed ({out.returncode}): {tail}")
    return time.perf_counter() - start


def _world_args(args: argparse.Namespace) -> list[str]:
    size = (
        [
            "benchmark.limit_per_category=1",
            "benchmark.images_per_prompt=2",
            "benchmark.seeds=[0,1]",
            "stop_at=base32",
            "sampler.steps=2",
            "fid.min_images=2",
            "fid.n_boot=50",
        ]
        if args.dry
        else ["benchmark.limit_per_category=2", "sampler.steps=10"]
    )
    ref = args.out / "world" / "test" / "images"
    return [
        "benchmark=world",
        "benchmark.metrics=[fid,clip_score,world_accuracy]",
        f"benchmark.reference={{root:'{ref}',dataset:world,split:test}}",
        "model=imagen_tiny",
        "sampler=dpmpp_2m",
        "steps.sr=4",
        f"checkpoint={WORLD / 'checkpoints' / 'final'}",
        f"clip.model=local-dir:{WORLD / 'data' / 'tiny_clip'}",
        "clip.pretrained=",
        "progress=false",
        *size,
    ]


def _overall(args: argparse.Namespace, run_id: str) -> dict[str, Any]:
    return json.loads((args.out / "runs" / run_id / "results.json").read_text())["metrics"]["overall"]


def world_agreement(args: argparse.Namespace, timings: dict[str, float]) -> list[Row]:
    n_test = 12 if args.dry else 200
    _cli(
        args,
        "data",
        "world",
        f"out={args.out / 'world'}",
        "n_train=0",
        f"n_test={n_test}",
        "suite_gt=false",
        "progress=false",
        "run_id=data",
    )
    timings[f"world eval on {args.device}"] = _cli(
        args, "eval", *_world_args(args), f"device={args.device}", "run_id=world-device"
    )
    cpu_run = "world-device"  # on the CPU (the dry run here) the device's run is the CPU's run
    if not args.device.startswith("cpu"):
        cpu_run = "world-cpu"
        timings["world eval on the CPU"] = _cli(
            args, "eval", *_world_args(args), "device=cpu", f"threads={os.cpu_count() or 1}", f"run_id={cpu_run}"
        )
    cpu, dev = _overall(args, cpu_run), _overall(args, "world-device")
    rows = []
    for name in OUTPUTS:
        c, d = cpu.get(name) or {}, dev.get(name) or {}
        low, high, value = c.get("ci_low"), c.get("ci_high"), d.get("value")
        inside = None not in (low, high, value) and low <= value <= high
        rows.append(
            Row(
                f"world {name}: {args.device} inside the CPU's 95% interval",
                "PASS" if inside else "FAIL",
                f"{args.device} {_num(value)} vs CPU {_num(c.get('value'))} [{_num(low)}, {_num(high)}]",
            )
        )
    return rows


def _num(x: Any) -> str:
    return "–" if x is None else f"{x:.4g}"


def _png_digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.png"))
    }


def deterministic_reruns(args: argparse.Namespace) -> Row:
    prompts = "[a large red circle,two small blue squares,a green triangle left of a yellow circle]"
    common = [
        "sample",
        "model=imagen_tiny",
        f"checkpoint={WORLD / 'checkpoints' / 'final'}",
        f"prompts={prompts}",
        "seeds=[0,1,2,3]",
        "sampler=dpmpp_2m",
        "steps.sr=4",
        "deterministic=true",
        f"device={args.device}",
        "progress=false",
        *(["stop_at=base32", "sampler.steps=2"] if args.dry else ["sampler.steps=10"]),
    ]
    for rid in ("det-a", "det-b"):
        _cli(args, *common, f"run_id={rid}")
    a, b = (_png_digests(args.out / "runs" / rid / "images") for rid in ("det-a", "det-b"))
    same = bool(a) and a == b
    return Row(
        "deterministic=true reruns byte-identical",
        "PASS" if same else "FAIL",
        f"{sum(a[k] == b.get(k) for k in a)} of {len(a)} PNGs identical",
    )


# --- 4./5. speed and memory of the paper's stages ---------------------------------------------------------------


def _stage_inputs(spec: Any, dim: int, length: int, batch: int, device: torch.device) -> tuple:
    """A guided step's inputs: cond and uncond halves in one batch of 2 × batch."""
    n, res = 2 * batch, spec.resolution
    lowres = torch.randn(n, 3, res, res, device=device) if spec.lowres_resolution else None
    aug = torch.zeros(n, device=device) if spec.lowres_resolution else None
    return (
        torch.randn(n, 3, res, res, device=device),
        torch.rand(n, device=device),
        torch.randn(n, length, dim, device=device),
        torch.ones(n, length, dtype=torch.bool, device=device),
        lowres,
        aug,
    )


def _paper_stages(args: argparse.Namespace) -> tuple[list[Any], int, int]:
    from hydra import compose, initialize_config_dir

    from imagen.build import stage_specs, text_encoder_config

    model = "imagen_micro" if args.dry else "imagen_paper"
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("info", overrides=[f"model={model}"])
    te = text_encoder_config(cfg.text_encoder)
    return stage_specs(cfg.model), int(te.dim), int(te.max_length)


def _forward(unet: torch.nn.Module, inputs: tuple, precision: str, device: torch.device) -> None:
    x, t, text, mask, lowres, aug = inputs
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        unet(x, t, text, mask, lowres=lowres, aug_level=aug)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn: Callable[[], None], rounds: int) -> float:
    fn()  # warm-up (cuDNN algorithm choice, allocator)
    start = time.perf_counter()
    for _ in range(rounds):
        fn()
    return (time.perf_counter() - start) / rounds


def paper_speed(args: argparse.Namespace, device: torch.device) -> list[Row]:
    from imagen.cascade import build_unet

    specs, dim, length = _paper_stages(args)
    base, batch = specs[0], 2 if args.dry else 16
    with torch.device(device):
        unet = build_unet(base).eval()
    inputs = _stage_inputs(base, dim, length, batch, device)
    rows = []
    for precision in ("float32", "bf16"):
        seconds = _time(lambda p=precision, u=unet: _forward(u, inputs, p, device), 1 if args.dry else 5)
        rows.append(
            Row(
                f"{base.name} guided step, batch {batch}, {precision}",
                "n/a",
                f"{seconds * 1000:.1f} ms per step ({batch / seconds:.1f} images/s per step)",
            )
        )
    del unet
    try:
        rows.append(_anchor_row(args, device, batch))
    except Exception as err:  # noqa: BLE001 — the anchor's API is not ours: report, do not stop the check
        rows.append(Row("imagen-pytorch matched U-Net", "n/a", f"could not run: {' '.join(str(err).split())[:120]}"))
    return rows


def _anchor_row(args: argparse.Namespace, device: torch.device, batch: int) -> Row:
    from benchmarks.scripts.anchor import INSTALL_HINT, Matched, import_imagen_pytorch, text_inputs, their_imagen

    try:
        import_imagen_pytorch()
    except SystemExit as err:  # not installed: say so in the table (the anchor exits for its own scripts)
        return Row("imagen-pytorch matched U-Net", "n/a", str(err) or f"not installed: {INSTALL_HINT}")

    cfg = Matched()
    theirs = their_imagen(cfg, steps=1).unets[0].to(device).eval()
    text, mask = (v.to(device) for v in text_inputs(cfg, 2 * batch))
    x = torch.randn(2 * batch, 3, cfg.image_size, cfg.image_size, device=device)
    t = torch.rand(2 * batch, device=device)

    def step() -> None:
        with torch.inference_mode():
            theirs(x, t, text_embeds=text, text_mask=mask)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    seconds = _time(step, 1 if args.dry else 5)
    return Row(
        f"imagen-pytorch matched U-Net ({cfg.image_size}², batch {batch})",
        "n/a",
        f"{seconds * 1000:.1f} ms per guided step",
    )


def _fits(spec: Any, dim: int, length: int, batch: int, device: torch.device, unet: torch.nn.Module) -> int | None:
    """Peak bytes of one guided forward at ``batch``, or None when it runs out of memory."""
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    try:
        _forward(unet, _stage_inputs(spec, dim, length, batch, device), "float32", device)
    except torch.cuda.OutOfMemoryError:
        return None
    return int(torch.cuda.max_memory_allocated(device))


def _largest_batch(spec: Any, dim: int, length: int, device: torch.device, unet: torch.nn.Module, cap: int) -> int:
    good, bad = 1, None
    while good < cap and bad is None:
        nxt = min(good * 2, cap)
        (good, bad) = (nxt, None) if _fits(spec, dim, length, nxt, device, unet) else (good, nxt)
    while bad is not None and bad - good > 1:
        mid = (good + bad) // 2
        good, bad = (mid, bad) if _fits(spec, dim, length, mid, device, unet) else (good, mid)
    return good


def paper_memory(args: argparse.Namespace, device: torch.device) -> list[Row]:
    if device.type != "cuda":
        return [Row("peak memory per paper stage", "n/a", "GPU only (torch.cuda memory statistics)")]
    from imagen.cascade import build_unet

    specs, dim, length = _paper_stages(args)
    rows = []
    for spec in specs:
        with torch.device(device):
            unet = build_unet(spec).eval()
        peak = _fits(spec, dim, length, 1, device, unet)
        largest = _largest_batch(spec, dim, length, device, unet, args.max_batch)
        rows.append(
            Row(
                f"{spec.name} peak memory at batch 1 (fp32, guided)",
                "n/a",
                f"{(peak or 0) / 2**30:.2f} GiB; largest batch that fits: {largest}"
                + (" (the cap)" if largest >= args.max_batch else ""),
            )
        )
        del unet
    return rows


# --- the table ------------------------------------------------------------------------------------------------


def table(rows: list[Row], device: torch.device, seconds: float) -> str:
    from imagen.devices import device_identity

    ident = device_identity(device)
    head = [
        f"gpu_check on {ident.get('name')} ({ident['kind']}"
        + (
            f", CUDA {ident.get('cuda')}, cuDNN {ident.get('cudnn')}, driver {ident.get('driver')}"
            if ident["kind"] == "cuda"
            else ""
        )
        + f"), {seconds:.0f} s",
        "",
        "| check | result | detail |",
        "|---|---|---|",
    ]
    return "\n".join(head + [f"| {r.check} | {r.result} | {r.detail} |" for r in rows])


def run(args: argparse.Namespace) -> tuple[list[Row], torch.device]:
    from imagen.devices import resolve_device

    device = resolve_device(args.device)
    args.device = str(device)
    timings: dict[str, float] = {}
    rows = [gpu_tests(args), *world_agreement(args, timings), deterministic_reruns(args)]
    rows += [Row(f"{name} (wall)", "n/a", f"{s:.1f} s") for name, s in timings.items()]
    rows += paper_speed(args, device) + paper_memory(args, device)
    return rows, device


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto | cuda | cuda:N | cpu (default: auto)")
    parser.add_argument("--dry", action="store_true", help="toy sizes: check the wiring on any machine")
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--max-batch", type=int, default=256, help="the memory search's largest batch")
    args = parser.parse_args(argv)
    args.out = args.out or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    start = time.perf_counter()
    try:
        rows, device = run(args)
    except Exception as err:  # noqa: BLE001 — one line, not a traceback, for a check script
        print(f"gpu_check: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    print(table(rows, device, time.perf_counter() - start))
    return 1 if any(r.result == "FAIL" for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
