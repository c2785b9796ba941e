"""FID and KID of image sets: folders, file lists, in-memory arrays and cached reference statistics.

This is the notebook entry of ``imagen-bench fid`` and what benchmarks call::

    ext = load_fid_extractor()                                      # records name + sha256
    ref = files_stats(coco_files, root, extractor=ext, mode="clean", dataset="coco2014",
                      split="val2014", cache=ReferenceStatsCache())  # computed once, then cached
    gen = folder_stats(run_dir / "images", extractor=ext, mode="clean")
    result = fid_against_reference(gen, ref)                        # dict, JSON-ready

Every result records the mode and resize, the extractor's name/kind/sha256, both counts, the
image-list hashes, timings, library versions and :data:`METRIC_VERSION`.

Minimum image count: a covariance needs 2 images; by default we ask for ``min_images = 10``
per set (configurable, never below 2) so that a near-empty folder is an error, not a number.
Below 2049 images the 2048-d covariance is singular; FID is still computed exactly (eigen route,
no ε), but it is biased upward at small n, so a warning is recorded and FIDs should only be
compared at equal counts (COCO FID-30K uses 30,000).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from harness.errors import UserError
from harness.metrics.extractors.images import (
    DEFAULT_NUM_WORKERS,
    array_batches,
    batches,
    check_mode,
    image_list_sha256,
    image_sizes,
    list_images,
    resolution_label,
)
from harness.metrics.extractors.inception import FEATURE_DIM, FidExtractor, load_fid_extractor
from harness.metrics.extractors.reference_stats import FeatureStats, ReferenceStatsCache, StatsKey
from harness.metrics.maths.frechet import (
    MIN_SAMPLES,
    frechet_distance,
    frechet_distance_features,
    kernel_inception_distance,
)

METRIC_VERSION = "imagen-bench-fid/1"
DEFAULT_MIN_IMAGES = 10
RESIZE = {
    "clean": "cleanfid.resize clean: PIL bicubic on float32 channels to 299x299, no quantisation",
    "legacy_tensorflow": "TF1 resize_bilinear emulation (nvlabs in-network) to 299x299",
}


@dataclass
class SetStats:
    """Statistics of one image set and how they were made."""

    stats: FeatureStats
    source: str
    mode: str
    extractor: dict[str, str]
    resolution: str
    image_list_sha256: str | None = None
    seconds: float = 0.0
    cache_hit: bool | None = None  # None: no cache was used
    warnings: list[str] = field(default_factory=list)
    key: StatsKey | None = None  # the cache key, when read through a cache (what a gate reads back)

    @property
    def count(self) -> int:
        return self.stats.count

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "count": self.count,
            "resolution": self.resolution,
            "image_list_sha256": self.image_list_sha256,
            "cache_hit": self.cache_hit,
        }


def extract_features(
    image_batches: Iterable[torch.Tensor], extractor: FidExtractor, progress: tqdm | None = None
) -> np.ndarray:
    """(N, 2048) float64 features of prepared 299×299 batches (``progress`` is advanced per image)."""
    parts = []
    for b in image_batches:
        parts.append(extractor.features(b))
        if progress is not None:
            progress.update(len(b))
    return np.concatenate(parts) if parts else np.zeros((0, FEATURE_DIM))


def _check_count(n: int, source: str, min_images: int) -> None:
    need = max(min_images, MIN_SAMPLES)
    if n < need:
        raise UserError(f"{source} has {n} image(s); FID needs at least {need} (set min_images to change)")


def _singular_warning(n: int, label: str) -> list[str]:
    if n > FEATURE_DIM:
        return []
    return [
        (
            f"{label}: {n} images <= {FEATURE_DIM} feature dims, so its covariance is singular (rank <= {n - 1}); "
            "FID is computed exactly but is biased upward at small counts: compare FIDs only at equal counts"
        )
    ]


def files_stats(
    files: Sequence[Path],
    root: str | Path | None = None,
    *,
    extractor: FidExtractor,
    mode: str = "clean",
    batch_size: int = 32,
    num_workers: int = DEFAULT_NUM_WORKERS,
    min_images: int = DEFAULT_MIN_IMAGES,
    cache: ReferenceStatsCache | None = None,
    dataset: str = "folder",
    split: str = "",
    keep_features: bool = True,
    progress: bool = False,
) -> SetStats:
    """Statistics of image files; through ``cache`` when given (key: see :class:`StatsKey`)."""
    check_mode(mode)
    files = [Path(f) for f in files]
    source = str(root) if root else f"{len(files)} files"
    _check_count(len(files), source, min_images)
    resolution = resolution_label(image_sizes(files))  # also rejects unreadable headers up front
    list_hash = image_list_sha256(files, root, cache.cache_dir if cache is not None else None)

    def compute() -> FeatureStats:
        with tqdm(
            total=len(files),
            unit="img",
            desc=f"Inception features ({dataset}{'/' + split if split else ''})",
            disable=not progress,
            dynamic_ncols=True,
        ) as bar:
            feats = extract_features(batches(files, mode, batch_size, num_workers), extractor, bar)
        return FeatureStats.from_features(feats, keep_features)

    start = time.perf_counter()
    hit = key = None
    if cache is None:
        stats = compute()
    else:
        key = StatsKey(dataset, split, list_hash, len(files), resolution, mode, extractor.sha256)
        stats, hit = cache.get_or_compute(key, compute, need_features=keep_features)
    return SetStats(
        stats=stats,
        source=source,
        mode=mode,
        extractor=extractor.identity(),
        resolution=resolution,
        image_list_sha256=list_hash,
        seconds=time.perf_counter() - start,
        cache_hit=hit,
        warnings=_singular_warning(len(files), source),
        key=key,
    )


def folder_stats(folder: str | Path, **kwargs: Any) -> SetStats:
    """:func:`files_stats` of every image under ``folder`` (recursive; see ``images.list_images``)."""
    return files_stats(list_images(folder), root=Path(folder), **kwargs)


def array_stats(
    images: Iterable[np.ndarray],
    *,
    extractor: FidExtractor,
    mode: str = "clean",
    batch_size: int = 32,
    min_images: int = DEFAULT_MIN_IMAGES,
    source: str = "arrays",
) -> SetStats:
    """Statistics of in-memory HWC uint8 RGB images (same resize as files; never cached)."""
    check_mode(mode)
    sizes: set[tuple[int, int]] = set()

    def tracked() -> Iterator[np.ndarray]:
        for img in images:
            sizes.add((img.shape[1], img.shape[0]))
            yield img

    start = time.perf_counter()
    feats = extract_features(array_batches(tracked(), mode, batch_size), extractor)
    _check_count(len(feats), source, min_images)
    return SetStats(
        stats=FeatureStats.from_features(feats),
        source=source,
        mode=mode,
        extractor=extractor.identity(),
        resolution=resolution_label(sorted(sizes)),
        seconds=time.perf_counter() - start,
        warnings=_singular_warning(len(feats), source),
    )


def versions() -> dict[str, str]:
    out = {"torch": torch.__version__}
    for dist in ("clean-fid", "numpy", "scipy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def compare_stats(
    a: SetStats, b: SetStats, *, kid_subsets: int = 100, kid_subset_size: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """FID and KID between two sets made with the same mode and extractor (else a UserError)."""
    if a.mode != b.mode:
        raise UserError(f"cannot compare statistics made in mode {a.mode!r} with mode {b.mode!r}")
    if a.extractor["sha256"] != b.extractor["sha256"]:
        raise UserError("cannot compare statistics made with different Inception files (sha256 differ)")
    have_feats = a.stats.feats is not None and b.stats.feats is not None
    t0 = time.perf_counter()
    if have_feats and max(a.count, b.count) <= FEATURE_DIM:  # same value via an n×n SVD, not d×d
        fid = frechet_distance_features(a.stats.feats, b.stats.feats)
    else:
        fid = frechet_distance(a.stats.mu, a.stats.sigma, b.stats.mu, b.stats.sigma)
    t1 = time.perf_counter()
    kid = kid_std = subset = None
    if have_feats:
        kid, kid_std, subset = kernel_inception_distance(
            a.stats.feats, b.stats.feats, num_subsets=kid_subsets, max_subset_size=kid_subset_size, seed=seed
        )
    t2 = time.perf_counter()
    return {
        "metric_version": METRIC_VERSION,
        "fid": fid,
        "kid": kid,
        "kid_std": kid_std,
        "kid_subsets": kid_subsets if kid is not None else None,
        "kid_subset_size": subset,
        "count_a": a.count,
        "count_b": b.count,
        "mode": a.mode,
        "resize": RESIZE[a.mode],
        "extractor": a.extractor,
        "a": a.describe(),
        "b": b.describe(),
        "seconds": {"stats_a": a.seconds, "stats_b": b.seconds, "fid": t1 - t0, "kid": t2 - t1},
        "versions": versions(),
        "warnings": a.warnings + b.warnings,
    }


def fid_between_folders(
    dir_a: str | Path,
    dir_b: str | Path,
    mode: str = "clean",
    extractor_path: str | None = None,
    batch_size: int = 32,
    num_workers: int = DEFAULT_NUM_WORKERS,
    device: str = "cpu",
    min_images: int = DEFAULT_MIN_IMAGES,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    seed: int = 0,
    cache: bool = False,
    cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    """FID/KID between two image folders: exactly the dict ``imagen-bench fid A B`` prints.

    With ``cache=True`` each folder's statistics go through the reference-statistics cache
    (dataset ``"folder"``, keyed by content), so a fixed reference folder is read once.
    """
    check_mode(mode)
    # Check both folders (listing, counts, headers) before loading the network, so bad input fails fast.
    files_a, files_b = list_images(dir_a), list_images(dir_b)
    for files, folder in ((files_a, dir_a), (files_b, dir_b)):
        _check_count(len(files), str(folder), min_images)
        image_sizes(files)
    extractor = load_fid_extractor(extractor_path, device=device, cache_dir=cache_dir)
    stats_cache = ReferenceStatsCache(cache_dir) if cache else None
    common = dict(
        extractor=extractor,
        mode=mode,
        batch_size=batch_size,
        num_workers=num_workers,
        min_images=min_images,
        cache=stats_cache,
    )
    a = files_stats(files_a, root=Path(dir_a), **common)
    b = files_stats(files_b, root=Path(dir_b), **common)
    return compare_stats(a, b, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, seed=seed)


def fid_against_reference(generated: SetStats, reference: SetStats, **kid_options: Any) -> dict[str, Any]:
    """FID/KID of generated images against reference statistics (e.g. cached COCO val)."""
    result = compare_stats(generated, reference, **kid_options)
    result["generated"], result["reference"] = result.pop("a"), result.pop("b")
    result["count_generated"], result["count_reference"] = result.pop("count_a"), result.pop("count_b")
    return result
