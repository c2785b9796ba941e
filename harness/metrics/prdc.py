"""PRDC as registered metrics on any feature space: precision and density per image, recall and coverage per
set with their gate statistic (``prdc_metric("<space>")``). The maths is in :mod:`harness.metrics.maths.prdc`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from harness.errors import UserError
from harness.metrics.base import ImageSet, Metric, MetricEnv, Output, Scores, SetStatistic, SetValue
from harness.metrics.extractors.feature_spaces import FeatureSpace, load_feature_space
from harness.metrics.extractors.reference_stats import FeatureStats, StatsKey
from harness.metrics.maths.prdc import (
    DEFAULT_MAX_PAIRS,
    PrdcResult,
    check_features,
    knn_sq_radii,
    prdc,
    reference_subset,
)
from harness.metrics.maths.set_statistics import bootstrap_set_value

METRIC_VERSION = "imagen-bench-prdc/2"  # 2: squared radii, exact ties


class PrdcStatistic(SetStatistic):
    """Recall or coverage of a set of generated rows: which fakes are members of the set counts, with the
    reference radii and the fakes' radii those of the full set (as the metric's own interval)."""

    PARTS: ClassVar[dict[str, int]] = {"recall": 0, "coverage": 1}

    def __init__(self, result: PrdcResult, part: str, max_pairs: int) -> None:
        if part not in self.PARTS:
            raise ValueError(f"PRDC set outputs are {sorted(self.PARTS)}, got {part!r}")
        self.result, self.part, self.max_pairs = result, part, max_pairs

    def value(self) -> float:
        return float(getattr(self.result, self.part))

    def resampled(self, index_sets: Sequence[np.ndarray]) -> np.ndarray:
        if self.result.real_in_fake is None:
            raise UserError(
                f"{self.part}: more than prdc.max_pairs={self.max_pairs} neighbour pairs, so it cannot "
                "be resampled; raise prdc.max_pairs"
            )
        return self.result.resampled(list(index_sets))[self.PARTS[self.part]]


class PrdcMetric(Metric):
    """Precision/recall/density/coverage in one feature space (subclasses fix the space: :func:`prdc_metric`)."""

    space_name: ClassVar[str] = ""
    needs = frozenset({"images", "reference"})
    config_key = "prdc"  # subclasses: prdc_<space> (its enabled switch and results.json extractors entry)
    version = METRIC_VERSION

    def __init__(
        self,
        k: int = 5,
        n_boot: int = 200,
        seed: int = 0,
        level: float = 0.95,
        max_reference: int | None = None,
        max_pairs: int = DEFAULT_MAX_PAIRS,
    ) -> None:
        if int(k) < 1:
            raise UserError(f"prdc.k must be >= 1, got {k}")
        self.k, self.n_boot, self.seed, self.level = int(k), int(n_boot), int(seed), float(level)
        self.max_reference = None if max_reference is None else int(max_reference)
        self.max_pairs = int(max_pairs)
        self.space: FeatureSpace | None = None
        self._identity: dict[str, Any] = {}
        self._reference_key: StatsKey | None = None

    @classmethod
    def from_config(cls, env: MetricEnv) -> PrdcMetric:
        opt = lambda k, d: env.option("prdc", k, d)
        level = env.cfg.get("level", 0.95) if env.cfg is not None else 0.95
        return cls(
            opt("k", 5),
            opt("n_boot", 200),
            opt("seed", 0),
            level,
            opt("max_reference", None),
            opt("max_pairs", DEFAULT_MAX_PAIRS),
        )

    def _out(self, what: str) -> str:
        return f"{what}_{self.space_name}"

    def _reference(self, env: MetricEnv) -> tuple[np.ndarray, np.ndarray]:
        """Reference features (a seeded subset when ``max_reference`` is below the count) and squared radii."""

        def make() -> tuple[np.ndarray, np.ndarray]:
            feats = reference_subset(
                self.space.reference_features(env, self.k + 1).feats, self.max_reference, self.seed
            )
            return feats, knn_sq_radii(check_features(feats, self.k, "reference features"), self.k)

        return env.shared(
            ("prdc-reference", self.space.key, self.space.sha256, self.k, self.max_reference, self.seed), make
        )

    def prepare(self, env: MetricEnv) -> None:
        from harness.errors import MissingWeightsError

        try:
            self.space = load_feature_space(self.space_name, env)
        except MissingWeightsError as err:
            raise MissingWeightsError(f"{err} (or {self.config_key}.enabled=false to run without it)") from None
        feats, _ = self._reference(env)
        ref = self.space.reference_features(env, self.k + 1)
        self._reference_key = ref.key
        self._identity = {
            **self.space.identity(),
            "metric_version": METRIC_VERSION,
            "k": self.k,
            "n_reference_used": len(feats),
            "reference": ref.describe(),
        }

    def identity(self) -> dict[str, Any]:
        return dict(self._identity)

    def set_source(self, output: str) -> tuple[str, StatsKey] | None:
        return None if self.space is None or self._reference_key is None else (self.space.key, self._reference_key)

    def set_options(self, output: str) -> dict[str, Any]:
        return {"k": self.k, "max_reference": self.max_reference, "seed": self.seed, "max_pairs": self.max_pairs}

    @classmethod
    def set_statistic(
        cls, output: str, generated: np.ndarray, reference: FeatureStats, options: Mapping[str, Any]
    ) -> SetStatistic:
        if reference.feats is None:
            raise UserError(f"{output} needs the reference features, but the cached reference holds statistics only")
        k, cap = int(options["k"]), options.get("max_reference")
        real = reference_subset(
            np.asarray(reference.feats, np.float64), None if cap is None else int(cap), int(options["seed"])
        )
        max_pairs = int(options.get("max_pairs", DEFAULT_MAX_PAIRS))
        result = prdc(real, generated, k, max_pairs=max_pairs)
        return PrdcStatistic(result, output.removesuffix(f"_{cls.space_name}"), max_pairs)

    def compute(self, images: ImageSet, env: MetricEnv) -> Scores:
        if self.space is None:
            self.prepare(env)
        real, sq_radii = self._reference(env)
        fake = self.space.generated_features(images, env, self.k + 1).feats
        res = prdc(real, fake, self.k, real_sq_radii=sq_radii, max_pairs=self.max_pairs)
        keys = [r.sample_key for r in images.records]
        per_image = {
            self._out("precision"): {key: float(v) for key, v in zip(keys, res.inside)},
            self._out("density"): {key: float(c) / self.k for key, c in zip(keys, res.ball_counts)},
        }
        sets = self._set_values(res, images, len(real))
        return Scores(
            per_image=per_image,
            sets=sets,
            details={
                f"prdc_{self.space_name}": {
                    "k": self.k,
                    "precision": res.precision,
                    "density": res.density,
                    "n_reference": len(real),
                }
            },
        )

    def _set_values(self, res: PrdcResult, images: ImageSet, n_real: int) -> dict[str, SetValue]:
        resample = self.n_boot > 0 and res.real_in_fake is not None
        note = (
            None
            if resample or self.n_boot == 0
            else f"undefined: more than prdc.max_pairs={self.max_pairs} neighbour pairs"
        )
        out = {}
        for part in PrdcStatistic.PARTS:
            value = bootstrap_set_value(
                PrdcStatistic(res, part, self.max_pairs),
                images,
                n_boot=self.n_boot if resample else 0,
                seed=self.seed,
                level=self.level,
                n=len(images),
                extra={"n_reference": n_real, "k": self.k},
                note=note,
                fixed="reference and fake radii",
                bounds=(0.0, 1.0),
            )
            out[self._out(part)] = value
        return out


def prdc_metric(space: str, label: str | None = None) -> type[PrdcMetric]:
    """A PRDC metric class on the feature space registered as ``space`` (outputs ``precision_<space>`` ...)."""
    shown = label or space
    outputs = (
        # max_worse: 0.02 of a [0, 1] rate for the four (density's scale is 1 at a matched distribution)
        Output(
            f"precision_{space}",
            higher_is_better=True,
            kind="binary",
            bounds=(0.0, 1.0),
            label=f"precision ({shown})",
            max_worse=0.02,
        ),
        Output(
            f"recall_{space}",
            higher_is_better=True,
            kind="bounded",
            per_image=False,
            bounds=(0.0, 1.0),
            label=f"recall ({shown})",
            max_worse=0.02,
        ),
        Output(
            f"density_{space}", higher_is_better=True, kind="continuous", label=f"density ({shown})", max_worse=0.02
        ),
        Output(
            f"coverage_{space}",
            higher_is_better=True,
            kind="bounded",
            per_image=False,
            bounds=(0.0, 1.0),
            label=f"coverage ({shown})",
            max_worse=0.02,
        ),
    )
    doc = f"Precision/recall/density/coverage on {shown} features (k from prdc.k)."
    return type(
        f"Prdc_{space}",
        (PrdcMetric,),
        {
            "name": f"prdc_{space}",
            "space_name": space,
            "config_key": f"prdc_{space}",
            "outputs": outputs,
            "__doc__": doc,
        },
    )


PrdcInception = prdc_metric("inception", "Inception")
PrdcDinov2 = prdc_metric("dinov2", "DINOv2")
PrdcClip = prdc_metric("clip", "CLIP")
