"""Inception feature throughput (img/s): our FID path against clean-fid's, on the same images, in one run.

    .venv/bin/python benchmarks/scripts/inception_throughput.py [--count 24] [--size 256] [--batch-size 16]
                                                       [--mode clean] [--repeats 2] [--extractor PATH]

Rows:
  ours            harness.metrics: list → decode → clean-fid resizer → our Inception wrapper (the TorchScript's
                  weights rebuilt eager with batch norms folded into the convolutions, channels_last)
  ours, TorchScript network   the same loader, the TorchScript itself (what the folding buys)
  ours, 2 decode workers      the same, decoding and resizing in 2 DataLoader processes (what workers buy
                              when the network already holds the cores)
  clean-fid       cleanfid.fid.get_folder_features with our network as custom_feat_extractor
                  (clean-fid's own loader, resizer and batching; the same network weights)
  clean-fid nvlabs  clean-fid's own InceptionV3W, only when /tmp/inception-2015-12-05.pt exists
                  (clean-fid would otherwise download it; this script never does)

Each row is timed ``--repeats`` times, interleaved, after one untimed warm-up batch (the
TorchScript profiling executor optimises on its first calls), and the median time is reported.
The last columns compare each row's features with ours: max |difference| and that over max |feature|
(target ≤ 1e-4). The closing line checks issue 13's target: ours ≥ 2× clean-fid's img/s on the same network.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from cleanfid import fid as cleanfid_fid
from cleanfid.features import build_feature_extractor

from benchmarks.scripts.timing import conv_peak, load_average, machine
from harness.metrics.extractors.images import batches, check_mode, list_images
from harness.metrics.extractors.inception import NVLABS_FILE, FidExtractor, load_fid_extractor
from harness.metrics.fid_api import extract_features
from harness.metrics.synthetic import write_images


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=24, help="number of generated images")
    p.add_argument("--size", type=int, default=256, help="image side in pixels")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--mode", default="clean", choices=["clean", "legacy_tensorflow"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--extractor", default=None, help="Inception TorchScript (default: the harness search order)")
    return p.parse_args(argv)


class _Scripted:
    """Our extractor with its TorchScript network instead of the folded eager one."""

    def __init__(self, ext: FidExtractor) -> None:
        self.ext = ext

    def features(self, images: torch.Tensor) -> np.ndarray:
        return self.ext.scripted_features(images).double().cpu().numpy()


def runners(folder: Path, args: argparse.Namespace) -> dict[str, Callable[[], np.ndarray]]:
    ext = load_fid_extractor(args.extractor)
    files = list_images(folder)
    cpu = torch.device("cpu")
    scripted = _Scripted(ext)
    rows: dict[str, Callable[[], np.ndarray]] = {
        "ours": lambda: extract_features(batches(files, args.mode, args.batch_size, args.num_workers), ext),
        "ours, TorchScript network": lambda: extract_features(
            batches(files, args.mode, args.batch_size, args.num_workers), scripted
        ),
        "ours, 2 decode workers": lambda: extract_features(batches(files, args.mode, args.batch_size, 2), ext),
        "clean-fid": lambda: cleanfid_fid.get_folder_features(
            str(folder),
            ext.cleanfid_model(args.mode),
            num_workers=args.num_workers,
            batch_size=args.batch_size,
            device=cpu,
            mode=args.mode,
            verbose=False,
        ),
    }
    if (Path("/tmp") / NVLABS_FILE).is_file():
        own = build_feature_extractor(args.mode, device=cpu, use_dataparallel=False)
        rows["clean-fid nvlabs"] = lambda: cleanfid_fid.get_folder_features(
            str(folder),
            own,
            num_workers=args.num_workers,
            batch_size=args.batch_size,
            device=cpu,
            mode=args.mode,
            verbose=False,
        )
    return rows


def measure(rows: dict[str, Callable[[], np.ndarray]], repeats: int) -> dict[str, tuple[float, np.ndarray]]:
    """Median seconds of each row over ``repeats`` interleaved rounds, and its features."""
    seconds: dict[str, list[float]] = {name: [] for name in rows}
    feats: dict[str, np.ndarray] = {}
    for _ in range(repeats):
        for name, run in rows.items():  # interleaved, so machine load drifts hit every row alike
            start = time.perf_counter()
            feats[name] = np.asarray(run(), dtype=np.float64)
            seconds[name].append(time.perf_counter() - start)
    return {name: (statistics.median(seconds[name]), feats[name]) for name in rows}


def network_gflop(ext: FidExtractor) -> float:
    """FLOPs of the Inception network on one 299² image (decoding and resizing not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        ext.torch_features(torch.zeros(1, 3, 299, 299))
    return counter.get_total_flops() / 1e9


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    check_mode(args.mode)
    with tempfile.TemporaryDirectory(prefix="inception-throughput-") as tmp:
        folder = Path(tmp)
        write_images(folder, args.count, seed=0, sizes=(args.size, args.size))
        ext = load_fid_extractor(args.extractor)
        warm = next(batches(list_images(folder)[: args.batch_size], args.mode, args.batch_size))
        ext.features(warm)  # untimed warm-ups: the eager network, and the TorchScript profiling executor
        ext.scripted_features(warm)
        results = measure(runners(folder, args), args.repeats)
        gflop = network_gflop(ext)
        peak = conv_peak(torch.float32)()
    ours_seconds, ours_feats = results["ours"]
    print(
        f"Inception pool3 features: {args.count} images {args.size}x{args.size}, mode={args.mode}, "
        f"batch={args.batch_size}, workers={args.num_workers}, torch threads={torch.get_num_threads()}, "
        f"median of {args.repeats} interleaved rounds"
    )
    print(f"network: {ext.name} (sha256 {ext.sha256[:12]}...)")
    scale = float(np.abs(ours_feats).max())
    print(f"network: {gflop:.2f} GFLOP per image; oneDNN 3×3 conv rate now {peak:.0f} GFLOP/s fp32")
    print(
        f"{'path':<28} {'seconds':>8} {'img/s':>8} {'vs ours':>8} {'of conv peak':>13} {'max |Δfeat|':>12} "
        f"{'relative':>9}"
    )
    for name, (seconds, feats) in results.items():
        diff = float(np.abs(feats - ours_feats).max()) if feats.shape == ours_feats.shape else float("nan")
        rate = args.count / seconds * gflop
        print(
            f"{name:<28} {seconds:8.2f} {args.count / seconds:8.1f} {ours_seconds / seconds:7.2f}x "
            f"{rate / peak:>12.0%} {diff:12.2e} {diff / scale:9.1e}"
        )
    if "clean-fid nvlabs" not in results:
        print(f"(clean-fid nvlabs row skipped: /tmp/{NVLABS_FILE} not present; not downloaded)")
    print(
        "vs ours = ours_seconds / row_seconds: above 1x the row is faster than ours; of conv peak: the row's "
        "network FLOP rate over oneDNN's 3×3 conv rate (decoding and resizing included in its time)."
    )
    speedup = results["clean-fid"][0] / ours_seconds
    rel = float(np.abs(results["clean-fid"][1] - ours_feats).max()) / scale
    print(
        f"target: ours >= 2x clean-fid img/s with features within 1e-4 relative -> {speedup:.2f}x, {rel:.1e}: "
        f"{'MET' if speedup >= 2 and rel <= 1e-4 else 'NOT MET'}"
    )
    print(f"machine: {machine()}; load average at the end {load_average()}")


if __name__ == "__main__":
    main()
