"""Precision/recall/density/coverage against a direct O(n²) numpy implementation, and the metric on a space."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from harness.errors import UserError
from harness.metrics import prdc as pm
from harness.metrics.base import MetricEnv, ReferenceSet
from harness.metrics.maths import prdc as pmath
from harness.metrics.registry import get_metric, register_metric
from tests.helpers.fixtures import tiny_clip_folder
from tests.helpers.tiny_hf import image_set, world_images


def _direct(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    """Naeem et al.'s definitions with explicit pairwise Euclidean distances (clovaai/generative-evaluation-prdc)."""
    d_rr = np.linalg.norm(real[:, None] - real[None], axis=-1)
    d_ff = np.linalg.norm(fake[:, None] - fake[None], axis=-1)
    d_rf = np.linalg.norm(real[:, None] - fake[None], axis=-1)
    r_rad = np.sort(d_rr, axis=1)[:, k]  # k-th neighbour, the point itself (distance 0) excluded
    f_rad = np.sort(d_ff, axis=1)[:, k]
    return {
        "precision": float((d_rf < r_rad[:, None]).any(axis=0).mean()),
        "recall": float((d_rf < f_rad[None, :]).any(axis=1).mean()),
        "density": float((d_rf < r_rad[:, None]).sum(axis=0).mean() / k),
        "coverage": float((d_rf.min(axis=1) < r_rad).mean()),
    }


@pytest.mark.parametrize("k", [1, 3, 5])
def test_prdc_equals_the_direct_implementation(k):
    rng = np.random.default_rng(k)
    real, fake = rng.normal(size=(60, 7)), rng.normal(size=(45, 7)) * 1.3 + 0.4
    got, want = pmath.prdc(real, fake, k), _direct(real, fake, k)
    for name, value in want.items():
        assert getattr(got, name) == pytest.approx(value, abs=1e-12), name
    assert 0 < got.precision < 1 and 0 < got.coverage < 1  # neither trivially 0 nor 1
    assert got.inside.mean() == got.precision and got.ball_counts.sum() / (k * 45) == pytest.approx(got.density)


def test_blockwise_equals_one_block(monkeypatch):
    rng = np.random.default_rng(7)
    real, fake = rng.normal(size=(33, 5)), rng.normal(size=(29, 5)) + 0.3
    whole = pmath.prdc(real, fake, 4)
    monkeypatch.setattr(pmath, "BLOCK", 6)
    parts = pmath.prdc(real, fake, 4)
    assert (parts.precision, parts.recall, parts.density, parts.coverage) == (
        whole.precision,
        whole.recall,
        whole.density,
        whole.coverage,
    )
    assert (parts.real_in_fake != whole.real_in_fake).nnz == 0


def test_resampled_recall_and_coverage_use_the_resample_members_with_full_set_radii():
    rng = np.random.default_rng(11)
    real, fake = rng.normal(size=(40, 4)), rng.normal(size=(30, 4)) + 0.2
    res = pmath.prdc(real, fake, 3)
    idx = rng.integers(0, 30, size=30)
    recall, coverage = res.resampled([np.arange(30), idx])
    assert (recall[0], coverage[0]) == (res.recall, res.coverage)
    members = np.unique(idx)
    d = np.linalg.norm(real[:, None] - fake[None], axis=-1)
    r_rad, f_rad = pmath.knn_radii(real, 3), pmath.knn_radii(fake, 3)
    assert recall[1] == pytest.approx((d[:, members] < f_rad[members][None]).any(axis=1).mean())
    assert coverage[1] == pytest.approx((d[:, members].min(axis=1) < r_rad).mean())


def test_a_set_against_itself_is_fully_precise_and_covered():
    x = np.random.default_rng(5).normal(size=(50, 6))
    res = pmath.prdc(x, x.copy(), 5)
    assert (res.precision, res.recall, res.coverage) == (1.0, 1.0, 1.0)


def test_too_few_images_for_k_is_one_line():
    with pytest.raises(UserError, match="k=5 nearest neighbours need more than k"):
        pmath.prdc(np.zeros((5, 3)), np.ones((20, 3)), 5)
    with pytest.raises(UserError, match="prdc.k must be >= 1"):
        pm.PrdcMetric(k=0)


def _env(root, model, ref, **prdc):
    cfg = OmegaConf.create(
        {
            "clip": {"model": model, "pretrained": "", "batch_size": 8},
            "prdc": {"k": 3, "n_boot": 40, **prdc},
            "level": 0.9,
        }
    )
    return MetricEnv(cfg, cache_dir=root / "cache", reference=ref, progress=False)


@pytest.fixture(scope="module")
def clip_ref(tmp_path_factory):
    root = tmp_path_factory.mktemp("prdc")
    model = tiny_clip_folder(root / "clip")
    ref_dir = root / "ref"
    ref_dir.mkdir()
    for i, im in enumerate(world_images(20, start=200)):
        im.save(ref_dir / f"{i:03d}.png")
    return root, model, ReferenceSet(sorted(ref_dir.glob("*.png")), ref_dir, "world", "test")


def test_prdc_clip_metric_reports_per_image_precision_and_density_and_set_recall_coverage(clip_ref, tmp_path):
    root, model, ref = clip_ref
    env = _env(root, model, ref)
    images = image_set(tmp_path / "run", world_images(12), prompts_per_seed=3)
    metric = get_metric("prdc_clip").from_config(env)
    metric.prepare(env)
    scores = metric.compute(images, env)
    space = metric.space
    want = _direct(
        space.extract(ref.files).astype(np.float32).astype(np.float64),
        space.extract(images.paths()).astype(np.float32).astype(np.float64),
        3,
    )
    prec = scores.per_image["precision_clip"]
    assert set(prec) == {r.sample_key for r in images.records} and set(prec.values()) <= {0.0, 1.0}
    assert np.mean(list(prec.values())) == pytest.approx(want["precision"])
    assert np.mean(list(scores.per_image["density_clip"].values())) == pytest.approx(want["density"])
    for name in ("recall", "coverage"):
        v = scores.sets[f"{name}_clip"]
        assert v.value == pytest.approx(want[name]) and v.n == 12 and v.extra["k"] == 3
        assert "prompts" in v.method and 0 <= v.ci_low <= v.ci_high <= 1
    assert metric.identity()["k"] == 3 and metric.identity()["n_reference_used"] == 20
    info = {o.name: o for o in metric.outputs}
    assert info["precision_clip"].kind == "binary" and not info["recall_clip"].per_image


def test_max_reference_subsamples_and_max_pairs_turns_the_interval_off(clip_ref, tmp_path):
    root, model, ref = clip_ref
    env = _env(root, model, ref, max_reference=10, max_pairs=1)
    images = image_set(tmp_path / "run", world_images(8))
    metric = get_metric("prdc_clip").from_config(env)
    metric.prepare(env)
    scores = metric.compute(images, env)
    assert metric.identity()["n_reference_used"] == 10
    cov = scores.sets["coverage_clip"]
    assert cov.ci_low is None and cov.note.startswith("undefined: more than prdc.max_pairs=1")


def test_a_registered_user_space_gets_prdc(clip_ref, tmp_path):
    """PRDC runs on any registered space: a toy one (mean colour) registered in the test."""
    from harness.formats.files import open_rgb
    from harness.metrics.extractors.feature_spaces import FEATURE_SPACES, FeatureSpace, register_feature_space
    from harness.metrics.registry import METRICS

    class MeanColour(FeatureSpace):
        name, label = "meancolour", "mean colour"
        key, sha256 = "meancolour", "0" * 64

        def extract(self, files, *, desc="", progress=False):
            return np.array([np.asarray(open_rgb(f), np.float64).mean(axis=(0, 1)) for f in files])

        def identity(self):
            return {"space": "mean colour"}

    register_feature_space("meancolour", lambda env: MeanColour())
    cls = register_metric()(pm.prdc_metric("meancolour"))
    try:
        root, model, ref = clip_ref
        env = _env(root, model, ref)
        metric = get_metric("prdc_meancolour").from_config(env)
        metric.prepare(env)
        images = image_set(tmp_path / "run", world_images(9, start=50))
        scores = metric.compute(images, env)
        want = _direct(MeanColour().extract(ref.files), MeanColour().extract(images.paths()), 3)
        assert scores.sets["coverage_meancolour"].value == pytest.approx(want["coverage"])
        assert cls.name == "prdc_meancolour"
    finally:
        FEATURE_SPACES.unregister("meancolour")
        METRICS.unregister("prdc_meancolour")
