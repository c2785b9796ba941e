"""CLIP score on tiny randomly initialised models (no CLIP weights exist offline)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from torchmetrics.functional.multimodal.clip_score import _clip_score_update

from harness.errors import MissingWeightsError, UserError
from harness.metrics.extractors.clip import clip_scores_from_embeddings, load_clip_scorer
from harness.metrics.maths.intervals import mean_ci

TINY_NAME = "imagen-bench-tiny-clip"
TINY_CFG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registered tiny open_clip architecture and a random state dict saved as a weights file."""
    root = tmp_path_factory.mktemp("tiny-clip")
    (root / f"{TINY_NAME}.json").write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(root / f"{TINY_NAME}.json")  # open_clip's registry of model configs
    torch.manual_seed(0)
    model = open_clip.create_model(TINY_NAME)
    torch.save(model.state_dict(), root / "tiny.pt")
    return root / "tiny.pt"


def _images(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        rng.integers(0, 256, (int(rng.integers(30, 60)), int(rng.integers(30, 60)), 3), dtype=np.uint8)
        for _ in range(n)
    ]


PROMPTS = ["a red cube", "two dogs on a beach", "a photo of a city at night", "an apple", "text", "a b c"]


def test_formula_on_known_embeddings() -> None:
    img = torch.tensor([[1.0, 0.0], [3.0, 3.0], [0.0, 2.0], [1.0, 1.0]])
    txt = torch.tensor([[5.0, 0.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 0.0]])
    expected = [100.0, 100.0 / np.sqrt(2.0), 0.0, 0.0]  # cos = 1, 1/√2, −1 → 0, −1/√2 → 0
    np.testing.assert_allclose(clip_scores_from_embeddings(img, txt), expected, rtol=1e-12)


def test_scores_are_100_max_cos_of_the_model_embeddings(tiny_weights: Path, isolated_dirs) -> None:
    scorer = load_clip_scorer(TINY_NAME, str(tiny_weights))
    images = _images(len(PROMPTS))
    result = scorer.score(images, PROMPTS, batch_size=4)
    # Independent recomputation through open_clip's own public calls.
    model, _, preprocess = open_clip.create_model_and_transforms(TINY_NAME, pretrained=str(tiny_weights))
    tokenizer = open_clip.get_tokenizer(TINY_NAME)
    with torch.no_grad():
        i = model.encode_image(torch.stack([preprocess(Image.fromarray(x)) for x in images]), normalize=True)
        t = model.encode_text(tokenizer(PROMPTS), normalize=True)
    cos = (i.double() * t.double()).sum(-1).numpy()
    np.testing.assert_allclose(result.scores, 100 * np.maximum(cos, 0), atol=1e-4)
    assert (cos < 0).any() and (cos > 0).any(), "the inputs should exercise both the clamp and the scale"
    assert result.scores.shape == (len(PROMPTS),)
    identity = result.model
    assert identity["model"] == TINY_NAME and identity["pretrained"] == str(tiny_weights)
    assert identity["weights_sha256"] == hashlib.sha256(tiny_weights.read_bytes()).hexdigest()


def test_truncation_is_counted_at_the_context_length(tiny_weights: Path) -> None:
    scorer = load_clip_scorer(TINY_NAME, str(tiny_weights))
    # "a" is one BPE token: 75 of them plus start and end tokens fill 77 exactly; 76 do not fit.
    fits, cut, long = " ".join(["a"] * 75), " ".join(["a"] * 76), "a very long prompt " * 40
    assert scorer.context_length == 77
    assert [scorer.is_truncated(p) for p in (fits, cut, long, "short")] == [False, True, True, False]
    result = scorer.score(_images(4, seed=1), [fits, cut, long, "short"])
    assert result.num_truncated == 2 and result.truncated == [False, True, True, False]
    summary = result.summary()
    interval = mean_ci(result.scores)
    assert summary["truncated_prompts"] == 2 and summary["n"] == 4
    assert (summary["clip_score"], summary["ci_low"], summary["ci_high"]) == (
        interval.mean,
        interval.low,
        interval.high,
    )
    assert summary["model"]["weights_sha256"] == result.model["weights_sha256"]


def test_mismatched_inputs_are_user_errors(tiny_weights: Path) -> None:
    scorer = load_clip_scorer(TINY_NAME, str(tiny_weights))
    with pytest.raises(UserError, match="2 images but 1 prompts"):
        scorer.score(_images(2), ["one"])


def _open_clip_folder(tiny_weights: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CFG, "preprocess_cfg": {}}))
    state = torch.load(tiny_weights, weights_only=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "open_clip_model.safetensors"))
    return folder


def test_local_folder_and_hf_cache_give_the_same_model(tiny_weights: Path, tmp_path: Path) -> None:
    by_file = load_clip_scorer(TINY_NAME, str(tiny_weights)).score(_images(3), PROMPTS[:3]).scores
    folder = _open_clip_folder(tiny_weights, tmp_path / "folder")
    by_folder = load_clip_scorer(TINY_NAME, str(folder))
    np.testing.assert_allclose(by_folder.score(_images(3), PROMPTS[:3]).scores, by_file, atol=1e-5)
    assert len(by_folder.identity["weights_sha256"]) == 64
    # A Hugging Face cache laid out as huggingface_hub writes it: refs/main → snapshots/<commit>/.
    repo_dir = tmp_path / "hf" / "models--tiny-org--tiny-clip"
    shutil.copytree(folder, repo_dir / "snapshots" / ("0" * 40))
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text("0" * 40)
    by_hub = load_clip_scorer("hf-hub:tiny-org/tiny-clip", "", hf_cache_dir=str(tmp_path / "hf"))
    np.testing.assert_allclose(by_hub.score(_images(3), PROMPTS[:3]).scores, by_file, atol=1e-5)
    with pytest.raises(MissingWeightsError, match="tiny-org/absent is not in the Hugging Face cache"):
        load_clip_scorer("hf-hub:tiny-org/absent", "", hf_cache_dir=str(tmp_path / "hf"))


def test_missing_weights_name_what_to_fetch(tmp_path: Path) -> None:
    # The default ViT-L/14 `openai` tag resolves through the HF cache only; an empty cache is a clear error.
    with pytest.raises(MissingWeightsError, match=r"ViT-L-14/openai .*hf download timm/vit_large_patch14_clip_224"):
        load_clip_scorer(hf_cache_dir=str(tmp_path / "empty-hf-cache"))
    with pytest.raises(MissingWeightsError, match="neither a file, an open_clip folder, nor a known tag"):
        load_clip_scorer("ViT-B-32", str(tmp_path / "no-such-file.pt"))
    with pytest.raises(UserError, match="unknown open_clip model"):
        load_clip_scorer("ViT-Nonexistent", "openai")


class _FeaturesAsTensors(torch.nn.Module):
    """transformers ≥ 5 returns model outputs from get_*_features; torchmetrics 1.9 expects tensors
    (Lightning-AI/torchmetrics#3407, fixed upstream by taking ``pooler_output``)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model, self.config = model, model.config

    def get_image_features(self, *args, **kwargs) -> torch.Tensor:
        out = self.model.get_image_features(*args, **kwargs)
        return out if isinstance(out, torch.Tensor) else out.pooler_output

    def get_text_features(self, *args, **kwargs) -> torch.Tensor:
        out = self.model.get_text_features(*args, **kwargs)
        return out if isinstance(out, torch.Tensor) else out.pooler_output


def test_formula_matches_torchmetrics_clip_score() -> None:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    text = dict(
        vocab_size=1000,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=77,
        bos_token_id=998,
        eos_token_id=999,
        pad_token_id=0,
    )
    vision = dict(
        image_size=32, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2
    )
    torch.manual_seed(0)
    model = _FeaturesAsTensors(CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).eval())
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    rng = np.random.default_rng(0)
    token_ids = torch.tensor(rng.integers(1, 998, (8, 6)))
    token_ids[:, -1] = 999  # end-of-text: CLIP pools the text embedding there

    def processor(images=None, text=None, **_kwargs):  # torchmetrics needs only these two outputs
        if images is not None:
            return image_processor(images=images, return_tensors="pt")
        ids = token_ids[[int(t) for t in text]]
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    images = [torch.randint(0, 256, (3, 40, 48), dtype=torch.uint8) for _ in range(8)]
    prompts = [str(i) for i in range(8)]
    with torch.no_grad():
        tm_scores, n = _clip_score_update(images, prompts, model, processor)
        img = model.get_image_features(image_processor(images=images, return_tensors="pt")["pixel_values"])
        txt = model.get_text_features(token_ids, torch.ones_like(token_ids))
    ours = clip_scores_from_embeddings(img, txt)
    assert n == 8
    # torchmetrics returns 100·cos per pair (it clamps only the final mean); we clamp each image.
    np.testing.assert_allclose(ours, np.maximum(tm_scores.double().numpy(), 0), atol=1e-4)
    assert (tm_scores < 0).any() and (tm_scores > 0).any(), "both signs, so the clamp is exercised"
