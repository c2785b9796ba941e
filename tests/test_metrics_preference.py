"""Preference models: the real loaders on tiny random checkpoints in the published layouts."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from harness.errors import MissingWeightsError, UserError
from harness.formats.files import open_rgb
from harness.metrics.base import MetricEnv
from harness.metrics.extractors import imagereward as irm
from harness.metrics.extractors.preference_models import load_hpsv2, load_hpsv21, load_pickscore
from harness.metrics.preference import PREFERENCE_MODELS, PreferenceModel, preference_metric, register_preference_model
from harness.metrics.registry import METRICS, get_metric, register_metric
from tests.helpers.tiny_hf import (
    image_set,
    imagereward_original_state,
    tiny_hps_checkpoint,
    tiny_imagereward_folder,
    tiny_pickscore_folder,
    world_images,
)

PROMPTS = ["a red circle", "a blue square on the table", "a photo of a green cat", "a dog"]


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    root = tmp_path_factory.mktemp("pref")
    paths = []
    for i, im in enumerate(world_images(4, start=400, side=48)):
        paths.append(root / f"{i}.png")
        im.save(paths[-1])
    return root, paths


def _env(tmp_path):
    return MetricEnv(None, cache_dir=tmp_path / "cache", progress=False)


def test_pickscore_is_logit_scale_times_cosine_as_clip_forward_computes_it(pictures, tmp_path):
    _, paths = pictures
    folder = tiny_pickscore_folder(tmp_path / "pickscore")
    model = load_pickscore(_env(tmp_path), {"model": str(folder), "processor": str(folder)})
    scores = model.score(paths, PROMPTS, batch_size=3)
    inputs = model.processor(text=PROMPTS, images=[open_rgb(p) for p in paths], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model.model(**inputs).logits_per_image  # exp(logit_scale) · normalised image @ text
    np.testing.assert_allclose(scores, torch.diagonal(logits).double().numpy(), rtol=1e-5)
    assert len(set(np.round(scores, 6))) == 4
    assert model.identity["weights_sha256"] and model.identity["processor"] == str(folder)
    assert model.truncated(["a " * 80, "a dog"]) == [True, False]


def test_hps_is_the_cosine_of_open_clip_features_from_the_state_dict(pictures, tmp_path):
    _, paths = pictures
    arch, ckpt = tiny_hps_checkpoint(tmp_path / "hps")
    model = load_hpsv21(_env(tmp_path), {"checkpoint": str(ckpt), "arch": arch})
    scores = model.score(paths, PROMPTS, batch_size=2)
    state = {k.removeprefix("module."): v for k, v in torch.load(ckpt)["state_dict"].items()}
    for name, p in model.model.state_dict().items():
        torch.testing.assert_close(p, state[name])  # every weight came from the checkpoint
    x = torch.stack([model.preprocess(open_rgb(p)) for p in paths])
    with torch.no_grad():
        out = model.model(x, model.tokenizer(PROMPTS))  # HPS: model(image, text) → normalised features
        want = (
            torch.diagonal(out["image_features"] @ out["text_features"].T)
            if isinstance(out, dict)
            else torch.diagonal(out[0] @ out[1].T)
        )
    np.testing.assert_allclose(scores, want.double().numpy(), rtol=1e-5)
    assert all(-1 <= s <= 1 for s in scores) and model.identity["model"] == "hpsv21"
    torch.save({"state_dict": {"visual.proj": torch.zeros(2)}}, tmp_path / "wrong.pt")
    with pytest.raises(UserError, match="does not fit open_clip"):
        load_hpsv2(_env(tmp_path), {"checkpoint": str(tmp_path / "wrong.pt"), "arch": arch})


def _timm_vit(state: dict, x: torch.Tensor, heads: int) -> torch.Tensor:
    """BLIP's ViT forward written from the published parameter names (independent of our renaming)."""
    s = {k[len("blip.visual_encoder.") :]: v for k, v in state.items() if k.startswith("blip.visual_encoder.")}
    ln = lambda t, p: torch.nn.functional.layer_norm(t, t.shape[-1:], s[f"{p}.weight"], s[f"{p}.bias"], 1e-6)
    lin = lambda t, p: t @ s[f"{p}.weight"].T + s[f"{p}.bias"]
    t = (
        torch.nn.functional.conv2d(
            x, s["patch_embed.proj.weight"], s["patch_embed.proj.bias"], stride=s["patch_embed.proj.weight"].shape[-1]
        )
        .flatten(2)
        .transpose(1, 2)
    )
    t = torch.cat([s["cls_token"].expand(len(x), -1, -1), t], dim=1) + s["pos_embed"]
    depth = 1 + max(int(k.split(".")[1]) for k in s if k.startswith("blocks."))
    for i in range(depth):
        b, n, c = t.shape
        qkv = lin(ln(t, f"blocks.{i}.norm1"), f"blocks.{i}.attn.qkv").reshape(b, n, 3, heads, c // heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        att = ((q @ k.transpose(-2, -1)) * (c // heads) ** -0.5).softmax(-1)
        t = t + lin((att @ v).transpose(1, 2).reshape(b, n, c), f"blocks.{i}.attn.proj")
        h = torch.nn.functional.gelu(lin(ln(t, f"blocks.{i}.norm2"), f"blocks.{i}.mlp.fc1"))
        t = t + lin(h, f"blocks.{i}.mlp.fc2")
    return ln(t, "norm")


def test_imagereward_rebuilt_from_transformers_matches_blips_vit_and_the_published_head(pictures, tmp_path):
    _, paths = pictures
    folder, tok = tiny_imagereward_folder(tmp_path / "ir")
    model = irm.load_imagereward(_env(tmp_path), {"checkpoint": str(folder / "ImageReward.pt"), "tokenizer": str(tok)})
    state = torch.load(folder / "ImageReward.pt")
    x = torch.stack([model.preprocess(open_rgb(p)) for p in paths])
    with torch.no_grad():
        ours = model.vision(pixel_values=x).last_hidden_state
    torch.testing.assert_close(ours, _timm_vit(state, x, heads=2), rtol=1e-4, atol=1e-5)
    scores = model.score(paths, PROMPTS, batch_size=4)
    feats = model.features(x, PROMPTS)
    w = [(state[f"mlp.layers.{i}.weight"], state[f"mlp.layers.{i}.bias"]) for i in (0, 2, 4, 6, 7)]
    h = feats
    for weight, bias in w:  # the published head: five Linear layers, no activation
        h = h @ weight.T + bias
    np.testing.assert_allclose(scores, ((h.squeeze(-1) - irm.MEAN) / irm.STD).double().numpy(), rtol=1e-5)
    assert len(set(np.round(scores, 6))) == 4  # the prompt and the image both matter
    assert model.identity["unused_checkpoint_keys"] == 1 and model.identity["vision"]["layers"] == 2
    assert model.tokenizer.convert_tokens_to_ids("[ENC]") == len(model.tokenizer) - 1
    assert model.truncated(["a red " * 20, "a dog"]) == [True, False]


def test_imagereward_checkpoint_layout_errors_are_one_line(tmp_path):
    state, _ = imagereward_original_state()
    state["blip.visual_encoder.blocks.0.attn.extra.weight"] = torch.zeros(1)
    with pytest.raises(UserError, match="unknown BLIP ViT parameter 'blocks.0.attn.extra.weight'"):
        irm.convert_checkpoint(state)
    with pytest.raises(UserError, match="lacks blip.visual_encoder"):
        irm.convert_checkpoint({"mlp.layers.0.weight": torch.zeros(1)})


def test_preference_metric_scores_each_image_and_missing_weights_name_the_download(pictures, tmp_path, monkeypatch):
    import huggingface_hub.constants

    folder = tiny_pickscore_folder(tmp_path / "pickscore")
    env = MetricEnv(
        OmegaConf.create({"pickscore": {"model": str(folder), "processor": str(folder), "batch_size": 3}}),
        cache_dir=tmp_path / "cache",
        progress=False,
    )
    images = image_set(tmp_path / "run", world_images(5), prompts_per_seed=1)
    metric = get_metric("pickscore").from_config(env)
    metric.prepare(env)
    scores = metric.compute(images, env)
    assert set(scores.per_image["pickscore"]) == {r.sample_key for r in images.records}
    assert metric.identity()["weights_sha256"] and metric.outputs[0].higher_is_better
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    for name, fetch in (
        ("pickscore", "hf download yuvalkirstain/PickScore_v1"),
        ("hpsv21", "hf download xswu/HPSv2 HPS_v2.1_compressed.pt"),
        ("imagereward", "hf download THUDM/ImageReward ImageReward.pt"),
    ):
        env = MetricEnv(OmegaConf.create({}), cache_dir=tmp_path / "cache")
        with pytest.raises(MissingWeightsError) as err:
            get_metric(name).from_config(env).prepare(env)
        assert fetch in str(err.value) and f"{name}.enabled=false" in str(err.value) and "\n" not in str(err.value)


def test_a_user_registers_another_preference_model(pictures, tmp_path):
    class Brightness(PreferenceModel):
        identity: ClassVar[dict[str, str]] = {"model": "brightness"}

        def score_batch(self, images, prompts):
            return np.array([np.asarray(im, np.float64).mean() / 255 for im in images])

    register_preference_model("brightness", lambda env, opts: Brightness())
    register_metric()(
        preference_metric("brightness", label="brightness", max_worse=0.01, kind="bounded", bounds=(0.0, 1.0))
    )
    try:
        env = MetricEnv(OmegaConf.create({"brightness": {"batch_size": 2}}), progress=False)
        images = image_set(tmp_path / "run", world_images(3))
        metric = get_metric("brightness").from_config(env)
        metric.prepare(env)
        values = metric.compute(images, env).per_image["brightness"]
        want = [np.asarray(open_rgb(p), np.float64).mean() / 255 for p in images.paths()]
        assert [values[r.sample_key] for r in images.records] == pytest.approx(want)
        assert metric.describe()["outputs"]["brightness"]["kind"] == "bounded" and not math.isnan(want[0])
    finally:
        PREFERENCE_MODELS.unregister("brightness")
        METRICS.unregister("brightness")
