"""CMMD as a registered metric on the CLIP space: the value, its bootstrap interval and its gate statistic.

The maths (kernel, estimators, blocked sums) is in :mod:`harness.metrics.maths.cmmd`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from harness.errors import UserError
from harness.metrics.base import ImageSet, Metric, MetricEnv, Output, Scores, SetStatistic
from harness.metrics.extractors.feature_spaces import ClipSpace, clip_space
from harness.metrics.extractors.reference_stats import FeatureStats, StatsKey
from harness.metrics.maths.cmmd import (
    DEFAULT_ESTIMATOR,
    ESTIMATOR_LABELS,
    ESTIMATORS,
    SCALE,
    SIGMA,
    cmmd,
    cmmd_bootstrap,
)
from harness.metrics.maths.set_statistics import bootstrap_set_value

METRIC_VERSION = "imagen-bench-cmmd/2"  # 2: the reference estimator by default


class CmmdStatistic(SetStatistic):
    """CMMD of generated embeddings (rows) against the fixed reference embeddings, with one estimator."""

    def __init__(self, generated: np.ndarray, reference: np.ndarray, estimator: str = DEFAULT_ESTIMATOR) -> None:
        self.x, self.y, self.estimator = np.asarray(generated, np.float64), np.asarray(reference, np.float64), estimator

    def value(self) -> float:
        return cmmd(self.x, self.y, estimator=self.estimator)

    def resampled(self, index_sets: Sequence[np.ndarray]) -> np.ndarray:
        return cmmd_bootstrap(self.x, self.y, index_sets, estimator=self.estimator)


class Cmmd(Metric):
    """CMMD of a stage's images against the benchmark's reference set, with a bootstrap interval."""

    name = "cmmd"
    version = METRIC_VERSION
    # max_worse 0.05: CMMD is ×1000, so 0.05 is 5e-5 of MMD²; the paper's systems differ by 0.1 and more
    outputs = (
        Output("cmmd", higher_is_better=False, kind="continuous", per_image=False, label="CMMD", max_worse=0.05),
    )
    needs = frozenset({"images", "reference"})
    config_key = "cmmd"

    def __init__(
        self,
        model: str | None = None,
        pretrained: str | None = None,
        estimator: str = DEFAULT_ESTIMATOR,
        batch_size: int = 32,
        min_images: int = 2,
        n_boot: int = 200,
        seed: int = 0,
        level: float = 0.95,
    ) -> None:
        if estimator not in ESTIMATORS:
            raise UserError(f"cmmd.estimator must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")
        self.model, self.pretrained, self.estimator = model, pretrained, estimator
        self.batch_size, self.min_images, self.n_boot, self.seed = (
            int(batch_size),
            int(min_images),
            int(n_boot),
            int(seed),
        )
        self.level = float(level)
        self.space: ClipSpace | None = None
        self._identity: dict[str, Any] = {}
        self._hit: bool | None = None
        self._reference_key: StatsKey | None = None

    @classmethod
    def from_config(cls, env: MetricEnv) -> Cmmd:
        opt = lambda k, d: env.option("cmmd", k, d)
        level = env.cfg.get("level", 0.95) if env.cfg is not None else 0.95
        return cls(
            opt("model", None),
            opt("pretrained", None),
            str(opt("estimator", DEFAULT_ESTIMATOR)),
            opt("batch_size", 32),
            opt("min_images", 2),
            opt("n_boot", 200),
            opt("seed", 0),
            level,
        )

    def prepare(self, env: MetricEnv) -> None:
        from harness.errors import MissingWeightsError

        try:
            self.space = clip_space(env, self.model, self.pretrained, self.batch_size)
        except MissingWeightsError as err:
            raise MissingWeightsError(
                f"{err}; CMMD uses cmmd.model/cmmd.pretrained (null: clip.model/"
                "clip.pretrained), or cmmd.enabled=false to run without it"
            ) from None
        ref = self.space.reference_features(env, self.min_images)
        self._hit = ref.cache_hit
        self._reference_key = ref.key
        self._identity = {
            **self.space.identity(),
            "metric_version": METRIC_VERSION,
            "sigma": SIGMA,
            "scale": SCALE,
            "estimator": self.estimator,
            "reference": ref.describe(),
        }

    def identity(self) -> dict[str, Any]:
        return dict(self._identity)

    def cache_info(self) -> dict[str, Any]:
        return {"cmmd_reference_hit": self._hit}

    def describe_output(self, output: Output) -> dict[str, Any]:
        return {
            **super().describe_output(output),
            "label": f"CMMD ({ESTIMATOR_LABELS[self.estimator]})",
            "estimator": self.estimator,
        }

    def set_source(self, output: str) -> tuple[str, StatsKey] | None:
        return None if self.space is None or self._reference_key is None else (self.space.key, self._reference_key)

    def set_options(self, output: str) -> dict[str, Any]:
        return {"estimator": self.estimator}

    @classmethod
    def set_statistic(
        cls, output: str, generated: np.ndarray, reference: FeatureStats, options: Mapping[str, Any]
    ) -> SetStatistic:
        if reference.feats is None:
            raise UserError("CMMD needs the reference embeddings, but the cached reference holds statistics only")
        return CmmdStatistic(generated, reference.feats, str(options.get("estimator", DEFAULT_ESTIMATOR)))

    def compute(self, images: ImageSet, env: MetricEnv) -> Scores:
        if self.space is None:
            self.prepare(env)
        gen = self.space.generated_features(images, env, self.min_images)
        ref = self.space.reference_features(env, self.min_images)
        value = bootstrap_set_value(
            CmmdStatistic(gen.feats, ref.feats, self.estimator),
            images,
            n_boot=self.n_boot,
            seed=self.seed,
            level=self.level,
            n=gen.count,
            extra={"n_reference": ref.count, "estimator": self.estimator},
        )
        return Scores(sets={"cmmd": value})
