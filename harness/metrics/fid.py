"""FID and KID as registered metrics, on the TF-FID Inception network (see ``fid_api`` for the maths' home).

Both read ``cfg.fid`` (mode, extractor, batch size, KID subsets, bootstrap replicates) and share, through
the :class:`~harness.metrics.base.MetricEnv`, one loaded extractor, the reference statistics (checked and
cached before any image is generated) and each stage's generated features, so FID and KID on the same
images extract them once. Generated features are also kept in the run folder
(``features/inception-<mode>-<stage>.npz``, keyed by prompt id and seed) for paired comparisons.

FID's uncertainty is a percentile bootstrap over the generated images (prompts are the resampling unit
when a prompt has several seeds; the reference statistics stay fixed); KID reports its mean and the
standard deviation over random subsets, as clean-fid and torchmetrics do (none when every subset is the
whole of both sets: the spread would be rounding noise).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import UserError
from harness.metrics.base import ImageSet, Metric, MetricEnv, Output, Scores, SetStatistic, SetValue
from harness.metrics.extractors.feature_spaces import FEATURES_DIR, save_features
from harness.metrics.extractors.reference_stats import FeatureStats, ReferenceStatsCache, StatsKey
from harness.metrics.fid_api import METRIC_VERSION, SetStats, fid_against_reference, files_stats
from harness.metrics.maths.frechet import kid_from_kernels, kid_of_rows, polynomial_kernel
from harness.metrics.maths.set_statistics import FrechetSetOutput, FrechetStatistic, bootstrap_set_value

__all__ = ["FEATURES_DIR", "Fid", "FidOptions", "Kid", "KidStatistic"]


@dataclass(frozen=True)
class FidOptions:
    mode: str = "clean"
    extractor: str | None = None
    batch_size: int = 32
    num_workers: int = 0
    min_images: int = 10
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    seed: int = 0
    n_boot: int = 200
    level: float = 0.95

    @staticmethod
    def from_env(env: MetricEnv) -> FidOptions:
        fields = FidOptions.__dataclass_fields__
        return FidOptions(**{k: env.option("fid", k, f.default) for k, f in fields.items()})


def _extractor(env: MetricEnv, opts: FidOptions) -> Any:
    from harness.metrics.extractors.inception import load_fid_extractor

    return env.shared(
        ("inception", opts.extractor),
        lambda: load_fid_extractor(opts.extractor, device=env.device, cache_dir=env.cache_dir),
    )


def reference_stats(env: MetricEnv, opts: FidOptions) -> SetStats:
    """The reference set's statistics (read, checked and cached once per evaluation)."""
    ref = env.reference
    if ref is None:
        raise UserError("FID/KID need a reference image set; this benchmark defines none")

    def make() -> SetStats:
        return files_stats(
            ref.files,
            root=ref.root,
            extractor=_extractor(env, opts),
            mode=opts.mode,
            batch_size=opts.batch_size,
            num_workers=opts.num_workers,
            min_images=opts.min_images,
            cache=ReferenceStatsCache(env.cache_dir),
            dataset=ref.dataset,
            split=ref.split,
            keep_features=True,
            progress=env.progress,
        )

    return env.shared(("reference-stats", opts.mode, opts.extractor), make)


def generated_stats(images: ImageSet, env: MetricEnv, opts: FidOptions) -> SetStats:
    def make() -> SetStats:
        stats = files_stats(
            images.paths(),
            root=images.run_dir,
            extractor=_extractor(env, opts),
            mode=opts.mode,
            batch_size=opts.batch_size,
            num_workers=opts.num_workers,
            min_images=opts.min_images,
            dataset="generated",
            split=images.stage,
            keep_features=True,
            progress=env.progress,
        )
        _save_features(images, stats, opts.mode)
        return stats

    return env.shared(("generated-stats", str(images.run_dir), images.stage, opts.mode, opts.extractor), make)


def _save_features(images: ImageSet, stats: SetStats, mode: str) -> Path:
    return save_features(images, stats.stats.feats, f"inception-{mode}", stats.extractor["sha256"])


#: KID subsets per bootstrap replicate in the gate: each replicate draws fresh subsets of its resample, and
#: the paired design applies the same draws to both runs, so their noise largely cancels in the difference.
REPLICATE_KID_SUBSETS = 10
#: Above this many rows a side's kernel matrices are not held (n² doubles); each subset computes its own.
KERNEL_ROWS = 8192


class KidStatistic(SetStatistic):
    """KID of generated rows against the reference: the mean over seeded random subsets (clean-fid's rule).

    ``value()`` draws exactly the subsets :func:`~harness.metrics.maths.frechet.kernel_inception_distance` draws
    (so it equals the recorded KID); a resample draws ``min(subsets, REPLICATE_KID_SUBSETS)`` subsets of
    its rows. Kernels are computed once per side and indexed per subset while the sets are small.
    """

    def __init__(
        self, generated: np.ndarray, reference: np.ndarray, *, subsets: int, subset_size: int, seed: int
    ) -> None:
        self.x, self.r = np.asarray(generated, np.float64), np.asarray(reference, np.float64)
        self.subsets, self.subset_size, self.seed = int(subsets), int(subset_size), int(seed)
        self._kernels: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def _kid(self, rows: np.ndarray, subsets: int) -> float:
        if max(len(self.x), len(self.r)) > KERNEL_ROWS:
            return kid_of_rows(self.x, self.r, rows, subsets, self.subset_size, self.seed)
        if self._kernels is None:
            self._kernels = (
                polynomial_kernel(self.x, self.x),
                polynomial_kernel(self.r, self.r),
                polynomial_kernel(self.x, self.r),
            )
        return kid_from_kernels(*self._kernels, rows, subsets, self.subset_size, self.seed)[0]

    def value(self) -> float:
        return self._kid(np.arange(len(self.x)), self.subsets)

    def resampled(self, index_sets: Sequence[np.ndarray]) -> np.ndarray:
        per = min(self.subsets, REPLICATE_KID_SUBSETS)
        return np.array([self._kid(np.asarray(idx), per) for idx in index_sets])


class _InceptionMetric(Metric):
    needs = frozenset({"images", "reference"})
    config_key = "fid"

    def __init__(self, opts: FidOptions | None = None) -> None:
        self.opts = opts or FidOptions()
        self._identity: dict[str, Any] = {}
        self._reference_hit: bool | None = None
        self._reference_key: StatsKey | None = None

    @classmethod
    def from_config(cls, env: MetricEnv) -> _InceptionMetric:
        return cls(FidOptions.from_env(env))

    def prepare(self, env: MetricEnv) -> None:
        ext = _extractor(env, self.opts)
        ref = reference_stats(env, self.opts)
        self._identity = {
            **ext.identity(),
            "mode": self.opts.mode,
            "metric_version": METRIC_VERSION,
            "reference": {**ref.describe(), "dataset": env.reference.dataset, "split": env.reference.split},
        }
        self._reference_hit = ref.cache_hit
        self._reference_key = ref.key

    def identity(self) -> dict[str, Any]:
        return dict(self._identity)

    def cache_info(self) -> dict[str, Any]:
        return {"reference_stats_hit": self._reference_hit}

    def set_source(self, output: str) -> tuple[str, StatsKey] | None:
        return None if self._reference_key is None else (f"inception-{self.opts.mode}", self._reference_key)

    def _compare(self, images: ImageSet, env: MetricEnv) -> tuple[SetStats, SetStats, dict[str, Any]]:
        gen, ref = generated_stats(images, env, self.opts), reference_stats(env, self.opts)
        key = ("fid-compare", str(images.run_dir), images.stage, self.opts.mode)
        result = env.shared(
            key,
            lambda: fid_against_reference(
                gen,
                ref,
                kid_subsets=self.opts.kid_subsets,
                kid_subset_size=self.opts.kid_subset_size,
                seed=self.opts.seed,
            ),
        )
        return gen, ref, result


class Fid(FrechetSetOutput, _InceptionMetric):
    """Fréchet Inception Distance against the benchmark's reference set, with a bootstrap interval."""

    name = "fid"
    version = METRIC_VERSION
    outputs = (Output("fid", higher_is_better=False, kind="continuous", per_image=False, label="FID", max_worse=0.5),)

    def compute(self, images: ImageSet, env: MetricEnv) -> Scores:
        gen, ref, result = self._compare(images, env)
        interval = bootstrap_set_value(
            FrechetStatistic(gen.stats.feats, ref.stats),
            images,
            n_boot=self.opts.n_boot if gen.count >= 2 else 0,
            seed=self.opts.seed,
            level=self.opts.level,
            n=gen.count,
        )
        value = replace(
            interval,
            value=result["fid"],
            extra={"n_reference": result["count_reference"], "warnings": result["warnings"]},
        )
        return Scores(
            sets={"fid": value}, details={"fid": {"warnings": result["warnings"], "generated": result["generated"]}}
        )


class Kid(_InceptionMetric):
    """Kernel Inception Distance (unbiased MMD², cubic kernel) over random subsets: mean and std."""

    name = "kid"
    version = METRIC_VERSION
    outputs = (Output("kid", higher_is_better=False, kind="continuous", per_image=False, label="KID", max_worse=0.001),)

    def set_options(self, output: str) -> dict[str, Any]:
        return {"subsets": self.opts.kid_subsets, "subset_size": self.opts.kid_subset_size, "seed": self.opts.seed}

    @classmethod
    def set_statistic(
        cls, output: str, generated: np.ndarray, reference: FeatureStats, options: Mapping[str, Any]
    ) -> SetStatistic:
        if reference.feats is None:
            raise UserError("KID needs the reference features, but the cached reference holds statistics only")
        return KidStatistic(
            generated,
            reference.feats,
            subsets=int(options["subsets"]),
            subset_size=int(options["subset_size"]),
            seed=int(options["seed"]),
        )

    def compute(self, images: ImageSet, env: MetricEnv) -> Scores:
        gen, ref, result = self._compare(images, env)
        value = SetValue(
            result["kid"],
            n=gen.count,
            method="subsets",
            std=result["kid_std"],
            extra={"subset_size": result["kid_subset_size"], "subsets": result["kid_subsets"]},
        )
        if result["kid_subset_size"] == gen.count == ref.count:
            # every "random subset" is then the whole of both sets, so their spread is rounding noise (1e-17),
            # not an uncertainty: say so rather than print it as a standard deviation
            value = replace(
                value,
                std=None,
                note=f"undefined: every subset is the whole of both sets ({gen.count} "
                "images), so there is no spread to report",
            )
        return Scores(sets={"kid": value})
