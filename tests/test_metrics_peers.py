"""Each set metric against an implementation we did not write, on the same features.

* precision / recall / density / coverage against clovaai's reference ``prdc`` 0.2 (Naeem et al. 2020's
  code): exact, counts and ratios of counts, including a set against an identical copy and a set holding
  duplicates of reference rows (exact ties on a ball's edge: the memorisation case density exists for);
* the Fréchet distance (FID, FD-DINOv2) against clean-fid's ``frechet_distance`` (1e-6 relative);
* KID against clean-fid and torchmetrics: ``tests/test_metrics_frechet.py``; CMMD against a transcription
  of google-research/cmmd's ``distance.py``: ``tests/test_metrics_cmmd.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from cleanfid.fid import frechet_distance as cleanfid_frechet
from prdc import compute_prdc

from harness.metrics.extractors.reference_stats import FeatureStats
from harness.metrics.maths import prdc as pm
from harness.metrics.maths.frechet import feature_stats, frechet_distance
from harness.metrics.maths.set_statistics import FrechetStatistic


def _ours(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    r = pm.prdc(real, fake, k)
    return {"precision": r.precision, "recall": r.recall, "density": r.density, "coverage": r.coverage}


def _theirs(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    return {name: float(v) for name, v in compute_prdc(real, fake, nearest_k=k).items()}


def _same(ours: dict[str, float], theirs: dict[str, float], k: int, n_fake: int) -> bool:
    """Precision, recall, coverage identical; density the same ball count (it is divided in another order)."""
    exact = all(ours[m] == theirs[m] for m in ("precision", "recall", "coverage"))
    return (
        exact
        and round(ours["density"] * k * n_fake) == round(theirs["density"] * k * n_fake)
        and ours["density"] == pytest.approx(theirs["density"], rel=1e-12)
    )


@pytest.mark.parametrize("k", [1, 3, 5])
def test_prdc_equals_clovaai_on_random_features(k):
    rng = np.random.default_rng(k)
    real, fake = rng.normal(size=(300, 64)), rng.normal(0.3, 1.1, size=(250, 64))
    ours, theirs = _ours(real, fake, k), _theirs(real, fake, k)
    assert _same(ours, theirs, k, len(fake)), (ours, theirs)  # the same counts over the same denominators
    assert 0.05 < ours["precision"] < 0.95 and 0.05 < ours["recall"] < 0.95  # not a degenerate case


def test_a_set_against_an_identical_copy_has_density_exactly_one():
    """2048-d, n = 1000, k = 5: the case a sqrt-then-square radius got wrong (1.0522 against clovaai's 1.0)."""
    feats = np.random.default_rng(0).normal(size=(1000, 2048)).astype(np.float32).astype(np.float64)
    ours = _ours(feats, feats.copy(), 5)
    assert ours == {"precision": 1.0, "recall": 1.0, "density": 1.0, "coverage": 1.0}
    assert ours == _theirs(feats, feats.copy(), 5)


def test_generated_images_that_duplicate_reference_images():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(200, 128))
    fake = np.concatenate([real[:60], rng.normal(0.5, 1.0, size=(90, 128))])  # 60 memorised copies
    ours = _ours(real, fake, 5)
    assert _same(ours, _theirs(real, fake, 5), 5, len(fake)) and ours["density"] > 0.4


def test_frechet_distance_equals_cleanfids():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(400, 32)), rng.normal(0.2, 1.3, size=(500, 32)) @ rng.normal(size=(32, 32)) / 6
    (mu1, s1), (mu2, s2) = feature_stats(a), feature_stats(b)
    theirs = float(cleanfid_frechet(mu1, s1, mu2, s2))
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(theirs, rel=1e-6)
    # the statistic the gate and the metrics resample gives the same number
    assert FrechetStatistic(a, FeatureStats.from_features(b)).value() == pytest.approx(theirs, rel=1e-6)
