"""CMMD: both estimators against a direct numpy evaluation, the default against a transcription of the reference
code (google-research/cmmd ``distance.py``), and the metric on a tiny CLIP."""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import MissingWeightsError, UserError
from harness.metrics import cmmd as cm
from harness.metrics.base import MetricEnv, ReferenceSet
from harness.metrics.maths import cmmd as cmath
from harness.metrics.registry import get_metric
from tests.helpers.fixtures import tiny_clip_folder
from tests.helpers.tiny_hf import image_set, world_images


def _unit(rng: np.random.Generator, n: int, d: int, shift: float = 0.0) -> np.ndarray:
    x = rng.normal(size=(n, d)) + shift
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _k(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.exp(-np.sum((a - b) ** 2) / (2 * 10.0**2)))


def _direct(x: np.ndarray, y: np.ndarray, unbiased: bool) -> float:
    """1000 · MMD² written out pair by pair (the paper's eq. 3, or the reference code's means)."""
    m, n = len(x), len(y)
    sxx = sum(_k(x[i], x[j]) for i in range(m) for j in range(m) if i != j or not unbiased)
    syy = sum(_k(y[i], y[j]) for i in range(n) for j in range(n) if i != j or not unbiased)
    sxy = sum(_k(x[i], y[j]) for i in range(m) for j in range(n))
    if unbiased:
        return 1000 * (sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2 * sxy / (m * n))
    return 1000 * (sxx / m**2 + syy / n**2 - 2 * sxy / (m * n))


def _reference_mmd(x: np.ndarray, y: np.ndarray) -> float:
    """google-research/cmmd ``distance.py::mmd``, transcribed from jax to numpy line by line (sigma 10, scale
    1000): means of the kernel matrices over all pairs, diagonals included."""
    x_sqnorms = np.diag(x @ x.T)
    y_sqnorms = np.diag(y @ y.T)
    gamma = 1 / (2 * 10**2)
    k_xx = np.mean(np.exp(-gamma * (-2 * (x @ x.T) + x_sqnorms[:, None] + x_sqnorms[None, :])))
    k_xy = np.mean(np.exp(-gamma * (-2 * (x @ y.T) + x_sqnorms[:, None] + y_sqnorms[None, :])))
    k_yy = np.mean(np.exp(-gamma * (-2 * (y @ y.T) + y_sqnorms[:, None] + y_sqnorms[None, :])))
    return float(1000 * (k_xx + k_yy - 2 * k_xy))


def test_cmmd_equals_the_direct_evaluation_of_both_estimators():
    rng = np.random.default_rng(0)
    x, y = _unit(rng, 23, 12, 0.4), _unit(rng, 31, 12)
    assert cmath.cmmd(x, y) == pytest.approx(_direct(x, y, False), rel=1e-10)  # the default: the V-statistic
    assert cmath.cmmd(x, y, estimator="unbiased") == pytest.approx(_direct(x, y, True), rel=1e-10)
    assert cmath.cmmd(x, y) > 0.1  # shifted sets are apart: the check is not vacuous
    # unnormalised inputs are taken as given (the metric normalises its CLIP embeddings itself)
    assert cmath.cmmd(3 * x, y) == pytest.approx(_direct(3 * x, y, False), rel=1e-10)


def test_the_default_estimator_is_the_reference_codes():
    rng = np.random.default_rng(5)
    x, y = _unit(rng, 64, 768, 0.05), _unit(rng, 80, 768)  # CLIP ViT-L/14@336's width
    assert cmath.cmmd(x, y) == pytest.approx(_reference_mmd(x, y), rel=1e-6)
    # the paper's eq. 3 is a different number at these sizes (O(1/m + 1/n)): why the default matters
    assert abs(cmath.cmmd(x, y, estimator="unbiased") / cmath.cmmd(x, y) - 1) > 0.01
    assert cm.Cmmd().estimator == "v_statistic"


def test_blockwise_kernel_sums_equal_the_one_shot_ones(monkeypatch):
    rng = np.random.default_rng(1)
    x, y = _unit(rng, 29, 8, 0.2), _unit(rng, 17, 8)
    whole = cmath.cmmd(x, y)
    monkeypatch.setattr(cmath, "BLOCK", 4)
    assert cmath.cmmd(x, y) == pytest.approx(whole, rel=1e-12)


def test_a_set_against_itself():
    x = _unit(np.random.default_rng(2), 40, 16)
    assert abs(cmath.cmmd(x, x)) < 1e-12  # by default, the reference code's 0
    # the U-statistic compares X with itself as if it were a second sample: exactly −(2/m)·1000·(1 − mean_{i≠j} k)
    k = cmath.rbf_kernel(x, x)
    off = (k.sum() - np.trace(k)) / (40 * 39)
    assert cmath.cmmd(x, x, estimator="unbiased") == pytest.approx(-2 / 40 * 1000 * (1 - off), rel=1e-9)


def test_a_bootstrap_replicate_is_the_u_statistic_over_distinct_images_of_the_resample():
    rng = np.random.default_rng(3)
    x, y = _unit(rng, 12, 6, 0.3), _unit(rng, 15, 6)
    idx = np.array([0, 0, 1, 2, 2, 2, 5, 7, 7, 9, 11, 11])
    rows = x[idx]
    m = len(idx)
    pairs = [(a, b) for a in range(m) for b in range(m) if idx[a] != idx[b]]  # copies are not two draws
    within = sum(_k(rows[a], rows[b]) for a, b in pairs) / len(pairs)
    n = len(y)
    wy = sum(_k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    cross = sum(_k(r, yy) for r in rows for yy in y) / (m * n)
    got = cmath.cmmd_bootstrap(x, y, [idx, np.arange(12)], estimator="unbiased")
    assert got[0] == pytest.approx(1000 * (within + wy - 2 * cross), rel=1e-10)
    assert got[1] == pytest.approx(cmath.cmmd(x, y, estimator="unbiased"), rel=1e-12)  # identity resample: the estimate
    assert np.isnan(cmath.cmmd_bootstrap(x, y, [np.zeros(12, dtype=int)], estimator="unbiased")[0])  # no distinct pair
    # the V-statistic of a resample is the reference formula on the resampled rows, copies and all
    v = cmath.cmmd_bootstrap(x, y, [idx, np.arange(12)])
    assert v[0] == pytest.approx(_reference_mmd(rows, y), rel=1e-10) and v[1] == pytest.approx(
        cmath.cmmd(x, y), rel=1e-12
    )


def test_unknown_estimator_is_one_line():
    with pytest.raises(UserError, match="cmmd.estimator must be one of v_statistic, unbiased"):
        cm.Cmmd(estimator="biased")


@pytest.fixture(scope="module")
def clip_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmmd")
    model = tiny_clip_folder(root / "clip")
    ref_dir = root / "ref"
    ref_dir.mkdir()
    for i, im in enumerate(world_images(16, start=100)):
        im.save(ref_dir / f"{i:03d}.png")
    return root, model, ReferenceSet(sorted(ref_dir.glob("*.png")), ref_dir, "world", "test")


def _env(root, model, ref, **cmmd):
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(
        {
            "clip": {"model": model, "pretrained": "", "batch_size": 8},
            "cmmd": {"model": None, "pretrained": None, "n_boot": 50, **cmmd},
        }
    )
    return MetricEnv(cfg, cache_dir=root / "cache", reference=ref, progress=False)


def test_cmmd_metric_on_a_tiny_clip_caches_reference_embeddings_and_saves_features(clip_world, tmp_path):
    root, model, ref = clip_world
    images = image_set(tmp_path / "run", world_images(12), prompts_per_seed=2)
    metric = get_metric("cmmd").from_config(_env(root, model, ref))
    env = _env(root, model, ref)
    metric.prepare(env)
    scores = metric.compute(images, env)
    v = scores.sets["cmmd"]
    space = metric.space
    direct = cmath.cmmd(space.extract(images.paths()), space.extract(ref.files))
    assert v.value == pytest.approx(direct, rel=1e-5)  # features are stored as float32
    assert v.n == 12 and v.extra["n_reference"] == 16 and "prompts" in v.method
    assert v.ci_low is not None and v.ci_low < v.ci_high
    feats = np.load(tmp_path / "run" / "features" / f"{space.key}-s64.npz")
    assert feats["feats"].shape == (12, 16) and list(feats["seed"][:2]) == [0, 1]
    np.testing.assert_allclose(np.linalg.norm(feats["feats"], axis=1), 1.0, rtol=1e-5)  # normalised embeddings
    assert metric.identity()["estimator"] == "v_statistic" and metric.identity()["weights_sha256"]
    info = metric.describe_output(metric.outputs[0])  # results.json's metric_info: label and set inputs
    assert info["label"] == "CMMD (V-statistic, as google-research/cmmd)" and info["estimator"] == "v_statistic"
    assert info["set"]["features"] == space.key and info["set"]["options"] == {"estimator": "v_statistic"}
    again = get_metric("cmmd").from_config(_env(root, model, ref))
    again.prepare(_env(root, model, ref))  # a new evaluation: the reference embeddings come from the cache
    assert metric.cache_info() == {"cmmd_reference_hit": False} and again.cache_info() == {"cmmd_reference_hit": True}


def test_missing_clip_weights_fail_in_prepare_naming_the_download(tmp_path, monkeypatch):
    import huggingface_hub.constants
    from omegaconf import OmegaConf

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))

    env = MetricEnv(
        OmegaConf.create({"cmmd": {"model": "ViT-B-32", "pretrained": "openai"}}),
        cache_dir=tmp_path,
        reference=ReferenceSet([], tmp_path, "x"),
    )
    metric = get_metric("cmmd").from_config(env)
    with pytest.raises(MissingWeightsError, match=r"hf download .*cmmd.enabled=false") as err:
        metric.prepare(env)
    assert "\n" not in str(err.value)
