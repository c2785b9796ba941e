"""Where the time of an evaluation goes: a COCO-protocol eval of the tiny cascade, cold and then warm.

    nice -n 5 .venv/bin/python -m benchmarks.scripts.pipeline_phases [--prompts 200] [--out DIR]

The COCO FID protocol (``imagen-bench eval benchmark=coco_fid30k``: captions drawn from the shipped val2014
caption list, one image per caption, FID/KID against the reference folder, CLIP score) on the shipped *final*
tiny cascade (``make demo``'s checkpoint, every stage up to 128², demo sampler settings), ``--prompts``
captions. COCO's images cannot be had offline, so the reference folder is a stand-in: held-out images of the
procedural world placed where ``coco.images`` points (the FID value is meaningless here; its cost is not).

Two evaluations of the same checkpoint, each a new run (``cold``, then ``warm``) sharing one cache folder:
the cold one encodes every caption and computes the reference statistics; the warm one must re-encode zero
captions and recompute zero reference statistics (its cache counters are printed, and asserted in
``tests/test_eval_coco.py``). Printed: seconds per phase as ``results.json`` records them (``generate``: the
cascade with text encoding; one row per metric's scoring, reference statistics included; ``other``: setup,
loading and writing), both runs side by side, and the cache counters.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.scripts.steps_to_trust import REPO, cli
from benchmarks.scripts.timing import load_average, machine


def eval_args(args: argparse.Namespace, coco_root: Path, run_id: str) -> list[str]:
    world = REPO / "benchmarks" / "world"
    return [
        "eval",
        "benchmark=coco_fid30k",
        f"run_id={run_id}",
        f"coco.root={coco_root}",
        f"benchmark.num_prompts={args.prompts}",
        "model=imagen_tiny",
        f"checkpoint={world / 'checkpoints' / 'final'}",
        "sampler=dpmpp_2m",
        "sampler.steps=10",
        "steps.sr=4",
        f"batch_size={args.batch_size}",
        "threads=null",
        "channels_last=true",
        "progress=false",
        f"clip.model=local-dir:{world / 'data' / 'tiny_clip'}",
        "clip.pretrained=",
    ]


def stand_in_coco(out: Path, env: dict[str, str], n_images: int) -> Path:
    """A folder laid out as COCO (``val2014/``) holding held-out world images (no COCO offline)."""
    root = out / "coco"
    if not (root / "val2014").is_dir():
        cli(
            [
                "data",
                "world",
                f"out={out / 'world'}",
                "n_train=0",
                f"n_test={n_images}",
                "suite_gt=false",
                "progress=false",
                "run_id=logs-data",
            ],
            env,
            out / "data-world.log",
        )
        root.mkdir(parents=True, exist_ok=True)
        (root / "val2014").symlink_to(out / "world" / "test" / "images", target_is_directory=True)
    return root


def phases(run: Path) -> tuple[dict[str, float], dict[str, Any]]:
    res = json.loads((run / "results.json").read_text())
    t = {k: float(v) for k, v in res["timings"].items()}
    t["other"] = t["total"] - sum(v for k, v in t.items() if k != "total")
    return t, res.get("caches", {})


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prompts", type=int, default=200, help="COCO captions (one image each)")
    p.add_argument("--reference", type=int, default=200, help="stand-in reference images")
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--out", type=Path, default=None, help="keep the runs here")
    args = p.parse_args(argv)
    start, start_load = time.perf_counter(), load_average()
    with tempfile.TemporaryDirectory(prefix="pipeline-phases-") as tmp:
        out = (args.out or Path(tmp)).resolve()
        out.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, IMAGEN_BENCH_RUNS=str(out), IMAGEN_BENCH_CACHE=str(out / "cache"))
        root = stand_in_coco(out, env, args.reference)
        got = {}
        for run_id in ("cold", "warm"):
            if (out / run_id).exists():
                raise SystemExit(f"{out / run_id} exists: give a fresh --out (the cold run must start cold)")
            cli(eval_args(args, root, run_id), env, out / f"{run_id}.log")
            got[run_id] = phases(out / run_id)
            print(f"  {run_id}: {got[run_id][0]['total']:.0f} s", flush=True)
    report(got, args)
    print(
        f"machine: {machine()}; load average (1/5/15 min) at start {start_load}, at end {load_average()}; "
        f"{time.perf_counter() - start:.0f} s in all"
    )


def report(got: dict[str, tuple[dict[str, float], dict[str, Any]]], args: argparse.Namespace) -> None:
    cold, warm = got["cold"][0], got["warm"][0]
    print(
        f"\nCOCO-protocol eval of the tiny cascade (final checkpoint, 32² -> 64² -> 128²), {args.prompts} captions, "
        f"reference: {args.reference} stand-in images; seconds per phase from results.json"
    )
    print(f"{'phase':<22} {'cold s':>8} {'share':>6} {'warm s':>8} {'share':>6} {'cold/warm':>10}")
    for k in [*[k for k in cold if k not in ("other", "total")], "other", "total"]:
        c, w = cold.get(k, float("nan")), warm.get(k, float("nan"))
        print(
            f"{k:<22} {c:>8.1f} {c / cold['total']:>6.0%} {w:>8.1f} {w / warm['total']:>6.0%} "
            f"{c / w if w else float('nan'):>9.1f}x"
        )
    for run_id in ("cold", "warm"):
        caches = got[run_id][1]
        print(f"caches ({run_id}): " + "; ".join(f"{k}={json.dumps(v)}" for k, v in caches.items()))


if __name__ == "__main__":
    main()
