"""FD-DINOv2 (Stein et al. 2023) as a registered metric: the Fréchet distance on the DINOv2 CLS features
(:mod:`harness.metrics.extractors.dinov2`) against the benchmark's reference set, with FID's bootstrap
interval over generated images and the same :class:`~harness.metrics.maths.set_statistics.FrechetStatistic`
for the gate."""

from __future__ import annotations

from typing import Any

from harness.errors import MissingWeightsError
from harness.metrics.base import ImageSet, Metric, MetricEnv, Output, Scores
from harness.metrics.extractors.dinov2 import Dinov2Space, dinov2_space
from harness.metrics.extractors.reference_stats import StatsKey
from harness.metrics.maths.set_statistics import (
    FrechetSetOutput,
    FrechetStatistic,
    bootstrap_set_value,
    singular_warning,
)

METRIC_VERSION = "imagen-bench-fd-dinov2/1"


class FdDinov2(FrechetSetOutput, Metric):
    """Fréchet distance on DINOv2 features against the benchmark's reference set."""

    name = "fd_dinov2"
    version = METRIC_VERSION
    # max_worse 5: FD-DINOv2 runs ~10x FID's scale (Stein et al. report 100s where FID is 10s)
    outputs = (
        Output(
            "fd_dinov2", higher_is_better=False, kind="continuous", per_image=False, label="FD-DINOv2", max_worse=5.0
        ),
    )
    needs = frozenset({"images", "reference"})
    config_key = "dinov2"

    def __init__(self, min_images: int = 10, n_boot: int = 200, seed: int = 0, level: float = 0.95) -> None:
        self.min_images, self.n_boot, self.seed, self.level = int(min_images), int(n_boot), int(seed), float(level)
        self.space: Dinov2Space | None = None
        self._identity: dict[str, Any] = {}
        self._hit: bool | None = None
        self._reference_key: StatsKey | None = None

    @classmethod
    def from_config(cls, env: MetricEnv) -> FdDinov2:
        level = env.cfg.get("level", 0.95) if env.cfg is not None else 0.95
        return cls(
            env.option("dinov2", "min_images", 10),
            env.option("dinov2", "n_boot", 200),
            env.option("dinov2", "seed", 0),
            level,
        )

    def prepare(self, env: MetricEnv) -> None:
        try:
            self.space = dinov2_space(env)
        except MissingWeightsError as err:
            raise MissingWeightsError(f"{err} (or dinov2.enabled=false to run without FD-DINOv2)") from None
        ref = self.space.reference_features(env, self.min_images)
        self._hit = ref.cache_hit
        self._reference_key = ref.key
        self._identity = {**self.space.identity(), "metric_version": METRIC_VERSION, "reference": ref.describe()}

    def identity(self) -> dict[str, Any]:
        return dict(self._identity)

    def cache_info(self) -> dict[str, Any]:
        return {"dinov2_reference_hit": self._hit}

    def set_source(self, output: str) -> tuple[str, StatsKey] | None:
        return None if self.space is None or self._reference_key is None else (self.space.key, self._reference_key)

    def compute(self, images: ImageSet, env: MetricEnv) -> Scores:
        if self.space is None:
            self.prepare(env)
        gen = self.space.generated_features(images, env, self.min_images)
        ref = self.space.reference_features(env, self.min_images)
        warnings = singular_warning(gen.count, gen.feats.shape[1])
        value = bootstrap_set_value(
            FrechetStatistic(gen.feats, ref.stats),
            images,
            n_boot=self.n_boot,
            seed=self.seed,
            level=self.level,
            n=gen.count,
            extra={"n_reference": ref.count, "warnings": warnings},
        )
        return Scores(sets={"fd_dinov2": value}, details={"fd_dinov2": {"warnings": warnings}})
