"""FD-DINOv2: the transformers loader on a tiny random DINOv2, its resize modes, and FID's Fréchet code."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from harness.errors import MissingWeightsError, UserError
from harness.formats.files import open_rgb
from harness.metrics.base import MetricEnv, ReferenceSet
from harness.metrics.extractors import dinov2 as dm
from harness.metrics.fid import Fid
from harness.metrics.maths import frechet
from harness.metrics.registry import get_metric
from tests.helpers.tiny_hf import image_set, tiny_dinov2_folder, world_images


@pytest.fixture(scope="module")
def dino(tmp_path_factory):
    root = tmp_path_factory.mktemp("dinov2")
    folder = tiny_dinov2_folder(root / "dinov2-tiny")
    ref_dir = root / "ref"
    ref_dir.mkdir()
    for i, im in enumerate(world_images(14, start=300)):
        im.save(ref_dir / f"{i:03d}.png")
    return root, folder, ReferenceSet(sorted(ref_dir.glob("*.png")), ref_dir, "world", "test")


def _env(root, folder, ref, **opts):
    cfg = OmegaConf.create({"dinov2": {"model": str(folder), "batch_size": 5, "min_images": 4, "n_boot": 30, **opts}})
    return MetricEnv(cfg, cache_dir=root / "cache", reference=ref, progress=False)


def test_the_loader_records_weights_and_the_features_are_the_normed_cls_token(dino):
    root, folder, ref = dino
    net, ident = dm.load_dinov2(str(folder), cache_dir=root / "cache")
    assert ident["feature_dim"] == 32 and len(ident["weights_sha256"]) == 64 and ident["arch"] == "hidden32"
    space = dm.Dinov2Space(net, ident, "clean")
    feats = space.extract(ref.files[:3])
    x = torch.stack([dm.preprocess(np.asarray(open_rgb(p)), "clean") for p in ref.files[:3]])
    with torch.no_grad():
        out = net(pixel_values=x, output_hidden_states=True)
        cls = net.layernorm(out.hidden_states[-1])[:, 0]  # CLS token after the final norm (dgm-eval's feature)
    np.testing.assert_allclose(feats, cls.double().numpy(), rtol=1e-5, atol=1e-6)


def test_resize_modes_follow_clean_fid_and_torchvision():
    from cleanfid.resize import make_resizer
    from PIL import Image
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    img = np.asarray(world_images(1, side=97)[0])
    mean, std = torch.tensor(dm.IMAGENET_MEAN).view(3, 1, 1), torch.tensor(dm.IMAGENET_STD).view(3, 1, 1)
    clean = dm.preprocess(img, "clean")
    want = torch.from_numpy(make_resizer("PIL", False, "bicubic", (224, 224))(img).transpose(2, 0, 1) / 255.0)
    torch.testing.assert_close(clean, ((want.float() - mean) / std), rtol=1e-5, atol=1e-5)
    tv = dm.preprocess(img, "torchvision")
    want_tv = TF.to_tensor(TF.resize(Image.fromarray(img), [224, 224], interpolation=InterpolationMode.BICUBIC))
    torch.testing.assert_close(tv, (want_tv - mean) / std)
    assert clean.shape == (3, 224, 224) and not torch.allclose(clean, tv)  # the modes differ: recorded per number
    with pytest.raises(UserError, match="dinov2.mode must be one of clean, torchvision"):
        dm.preprocess(img, "bilinear")


def test_fd_dinov2_is_frechet_of_the_features_with_a_bootstrap_interval(dino, tmp_path):
    from harness.metrics import fd_dinov2

    assert (
        fd_dinov2.FrechetStatistic is Fid.set_statistic("fid", np.zeros((2, 2)), None, {}).__class__
    )  # FID's statistic
    root, folder, ref = dino
    env = _env(root, folder, ref)
    images = image_set(tmp_path / "run", world_images(10))
    metric = get_metric("fd_dinov2").from_config(env)
    metric.prepare(env)
    v = metric.compute(images, env).sets["fd_dinov2"]
    saved = np.load(tmp_path / "run" / "features" / "dinov2-hidden32-clean-s64.npz")["feats"].astype(np.float64)
    ref_feats = metric.space.reference_features(env).feats
    want = frechet.frechet_distance(*frechet.feature_stats(saved), *frechet.feature_stats(ref_feats))
    assert v.value == pytest.approx(want, rel=1e-7) and v.value > 0
    assert v.n == 10 and v.extra["n_reference"] == 14 and v.ci_low < v.ci_high and "images" in v.method
    ident = metric.identity()
    assert ident["mode"] == "clean" and ident["reference"]["count"] == 14 and ident["weights_sha256"]
    second = get_metric("fd_dinov2").from_config(_env(root, folder, ref))
    second.prepare(_env(root, folder, ref))
    assert metric.cache_info()["dinov2_reference_hit"] is False and second.cache_info()["dinov2_reference_hit"] is True
    other = get_metric("fd_dinov2").from_config(_env(root, folder, ref, mode="torchvision"))
    other.prepare(_env(root, folder, ref, mode="torchvision"))  # another mode is another cache entry
    assert other.cache_info()["dinov2_reference_hit"] is False


def test_a_set_against_itself_is_zero(dino, tmp_path):
    root, folder, ref = dino
    env = _env(root, folder, ref, n_boot=0)
    images = image_set(tmp_path / "run", [open_rgb(p) for p in ref.files])
    metric = get_metric("fd_dinov2").from_config(env)
    metric.prepare(env)
    assert abs(metric.compute(images, env).sets["fd_dinov2"].value) < 1e-6


def test_missing_dinov2_weights_are_one_line_naming_the_download(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    env = MetricEnv(
        OmegaConf.create({"dinov2": {"model": "facebook/dinov2-large"}}),
        cache_dir=tmp_path,
        reference=ReferenceSet([], tmp_path, "x"),
    )
    with pytest.raises(MissingWeightsError) as err:
        get_metric("fd_dinov2").from_config(env).prepare(env)
    msg = str(err.value)
    assert "`hf download facebook/dinov2-large`" in msg and "dinov2.model=" in msg and "dinov2.enabled=false" in msg
    assert "\n" not in msg
    (tmp_path / "cfg-only").mkdir()
    (tmp_path / "cfg-only" / "config.json").write_text('{"model_type": "dinov2"}')
    with pytest.raises(MissingWeightsError, match="has a config but no weights"):
        dm.load_dinov2(str(tmp_path / "cfg-only"))
