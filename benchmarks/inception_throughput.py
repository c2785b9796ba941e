"""Inception feature throughput (img/s): our FID path against clean-fid's, on the same images, in one run.

    .venv/bin/python benchmarks/inception_throughput.py [--count 24] [--size 256] [--batch-size 16]
                                                       [--mode clean] [--repeats 2] [--extractor PATH]

Rows:
  ours            harness.metrics: list → decode → clean-fid resizer → our Inception wrapper
  clean-fid       cleanfid.fid.get_folder_features with our network as custom_feat_extractor
                  (clean-fid's own loader, resizer and batching; the same network weights)
  clean-fid nvlabs  clean-fid's own InceptionV3W, only when /tmp/inception-2015-12-05.pt exists
                  (clean-fid would otherwise download it; this script never does)

Each row is timed ``--repeats`` times, interleaved, after one untimed warm-up batch (the
TorchScript profiling executor optimises on its first calls), and the best time is reported.
The last column compares each row's features with ours (max |difference|).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from cleanfid import fid as cleanfid_fid
from cleanfid.features import build_feature_extractor

from harness.metrics.fid_api import extract_features
from harness.metrics.images import batches, check_mode, list_images
from harness.metrics.inception import NVLABS_FILE, load_fid_extractor
from harness.metrics.synthetic import write_images


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=24, help="number of generated images")
    p.add_argument("--size", type=int, default=256, help="image side in pixels")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--mode", default="clean", choices=["clean", "legacy_tensorflow"])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--extractor", default=None, help="Inception TorchScript (default: the harness search order)")
    return p.parse_args(argv)


def runners(folder: Path, args: argparse.Namespace) -> dict[str, Callable[[], np.ndarray]]:
    ext = load_fid_extractor(args.extractor)
    files = list_images(folder)
    cpu = torch.device("cpu")
    rows: dict[str, Callable[[], np.ndarray]] = {
        "ours": lambda: extract_features(batches(files, args.mode, args.batch_size, args.num_workers), ext),
        "clean-fid": lambda: cleanfid_fid.get_folder_features(
            str(folder), ext.cleanfid_model(args.mode), num_workers=args.num_workers, batch_size=args.batch_size,
            device=cpu, mode=args.mode, verbose=False,
        ),
    }
    if (Path("/tmp") / NVLABS_FILE).is_file():
        own = build_feature_extractor(args.mode, device=cpu, use_dataparallel=False)
        rows["clean-fid nvlabs"] = lambda: cleanfid_fid.get_folder_features(
            str(folder), own, num_workers=args.num_workers, batch_size=args.batch_size, device=cpu,
            mode=args.mode, verbose=False,
        )
    return rows


def measure(rows: dict[str, Callable[[], np.ndarray]], repeats: int) -> dict[str, tuple[float, np.ndarray]]:
    best: dict[str, tuple[float, np.ndarray]] = {}
    for _ in range(repeats):
        for name, run in rows.items():  # interleaved, so machine load drifts hit every row alike
            start = time.perf_counter()
            feats = np.asarray(run(), dtype=np.float64)
            seconds = time.perf_counter() - start
            if name not in best or seconds < best[name][0]:
                best[name] = (seconds, feats)
    return best


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    check_mode(args.mode)
    with tempfile.TemporaryDirectory(prefix="inception-throughput-") as tmp:
        folder = Path(tmp)
        write_images(folder, args.count, seed=0, sizes=(args.size, args.size))
        ext = load_fid_extractor(args.extractor)
        warm = next(batches(list_images(folder)[: args.batch_size], args.mode, args.batch_size))
        ext.features(warm)  # untimed warm-up of the TorchScript executor
        results = measure(runners(folder, args), args.repeats)
    ours_seconds, ours_feats = results["ours"]
    print(f"Inception pool3 features: {args.count} images {args.size}x{args.size}, mode={args.mode}, "
          f"batch={args.batch_size}, workers={args.num_workers}, torch threads={torch.get_num_threads()}, "
          f"best of {args.repeats}")
    print(f"network: {ext.name} (sha256 {ext.sha256[:12]}...)")
    print(f"{'path':<18} {'seconds':>8} {'img/s':>8} {'vs ours':>8} {'max |Δfeat|':>12}")
    for name, (seconds, feats) in results.items():
        diff = float(np.abs(feats - ours_feats).max()) if feats.shape == ours_feats.shape else float("nan")
        print(f"{name:<18} {seconds:8.2f} {args.count / seconds:8.1f} {ours_seconds / seconds:7.2f}x {diff:12.2e}")
    if len(results) == 2:
        print(f"(clean-fid nvlabs row skipped: /tmp/{NVLABS_FILE} not present; not downloaded)")
    print("vs ours = ours_seconds / row_seconds: above 1x the row is faster than ours.")


if __name__ == "__main__":
    main()
