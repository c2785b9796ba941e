"""Set outputs as functions of which generated images form the set: the Fréchet distance in any space.

A :class:`~harness.metrics.base.SetStatistic` is what both a metric's own bootstrap interval and the
regression gate's paired interval resample (see :mod:`harness.metrics.base`). FID (Inception) and
FD-DINOv2 share one: the Fréchet distance

    d² = ‖μ_g − μ_r‖² + Tr Σ_g + Tr Σ_r − 2 Tr (Σ_g Σ_r)^½

of the generated rows against the fixed reference statistics (:mod:`harness.metrics.maths.frechet`). The
interval helpers shared by every set metric live here too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from harness.metrics.base import ImageSet, SetStatistic, SetValue
from harness.metrics.extractors.feature_spaces import generated_resamples, percentile_interval
from harness.metrics.extractors.reference_stats import FeatureStats
from harness.metrics.maths.frechet import (
    feature_stats,
    frechet_distance,
    frechet_distance_features,
    frechet_distance_resampled,
    reference_factor,
    reference_factor_from_features,
)
from harness.metrics.maths.intervals import recentre


class FrechetStatistic(SetStatistic):
    """Fréchet distance of generated features (rows) against a reference's Gaussian statistics."""

    def __init__(self, generated: np.ndarray, reference: FeatureStats) -> None:
        self.x = np.asarray(generated, dtype=np.float64)
        self.reference = reference
        self._factor: tuple[np.ndarray, np.ndarray, float] | None = None

    def value(self) -> float:
        ref, d = self.reference, self.x.shape[1]
        if ref.feats is not None and max(len(self.x), ref.count) <= d:  # same value via an n×n SVD, not d×d
            return frechet_distance_features(self.x, ref.feats)
        return frechet_distance(*feature_stats(self.x), ref.mu, ref.sigma)

    def resampled(self, index_sets: Sequence[np.ndarray]) -> np.ndarray:
        if self._factor is None:  # the reference's factor once, however many resamples
            ref = self.reference
            small = ref.feats is not None and ref.count <= self.x.shape[1]  # Xᵀ is a factor: no d × d eigh
            self._factor = reference_factor_from_features(ref.feats) if small else reference_factor(ref.mu, ref.sigma)
        return frechet_distance_resampled(self.x, self._factor, index_sets)


class FrechetSetOutput:
    """Mixin of a metric whose set output is the Fréchet distance of its features to the reference's (FID,
    FD-DINOv2): the gate rebuilds it as a :class:`FrechetStatistic`."""

    @classmethod
    def set_statistic(
        cls, output: str, generated: np.ndarray, reference: FeatureStats, options: Mapping[str, Any]
    ) -> SetStatistic:
        return FrechetStatistic(generated, reference)


def bootstrap_set_value(
    statistic: SetStatistic,
    images: ImageSet,
    *,
    n_boot: int,
    seed: int,
    level: float,
    n: int,
    extra: dict | None = None,
    note: str | None = None,
    fixed: str = "reference",
    bounds: tuple[float, float] | None = None,
) -> SetValue:
    """The statistic's value with a bootstrap interval over the generated images (prompts when a prompt has
    several seeds), ``fixed`` (the reference) held: the percentile interval of the replicates re-centred on
    the value (:func:`~harness.metrics.maths.intervals.recentre`) and kept inside ``bounds``; none when ``n_boot``
    is 0."""
    value = statistic.value()
    low = high = method = None
    if n_boot > 0:
        sets, unit = generated_resamples(images, n_boot, seed)
        low, high = percentile_interval(recentre(statistic.resampled(sets), value), level)
        if bounds is not None and low is not None:
            low, high = max(low, bounds[0]), min(high, bounds[1])
        method = f"bootstrap over generated {unit} ({n_boot} replicates, {fixed} fixed, re-centred on the value)"
    return SetValue(value, low, high, n=n, method=method, note=note, extra=dict(extra or {}))


def singular_warning(n: int, dims: int) -> list[str]:
    """The small-count caveat of a Fréchet distance (its covariance is singular below d + 1 images)."""
    if n > dims:
        return []
    return [
        (
            f"{n} generated images <= {dims} feature dims: the covariance is singular and the distance biased "
            "upward at small counts; compare only at equal counts"
        )
    ]
