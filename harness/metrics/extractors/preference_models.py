"""Loaders of CLIP-based preference models: PickScore (transformers) and HPS v2 / v2.1 (open_clip).

Both follow the published inference code exactly (see :mod:`harness.metrics.preference`):

* PickScore (``yuvalkirstain/PickScore_v1`` README): ``CLIPModel`` image and text features, each
  L2-normalised, score = ``logit_scale.exp() * text · image``; inputs from
  ``AutoProcessor.from_pretrained("laion/CLIP-ViT-H-14-laion2B-s32B-b79K")`` with text padded and
  truncated to 77 tokens.
* HPS v2 / v2.1 (``hpsv2.img_score``): open_clip ``ViT-H-14`` with the HPS checkpoint's ``state_dict``;
  images resized on their longest side to 224 and zero-padded (HPS's ``ResizeMaxSize``), OpenAI CLIP
  mean/std; score = the diagonal of ``image_features @ text_features.T`` of the normalised features.

Weights are read from a path or the Hugging Face cache only; ``pickscore.model``/``pickscore.processor``,
``hpsv2.checkpoint``/``hpsv21.checkpoint`` point at local copies, and ``arch`` (HPS) may name another
open_clip model or ``local-dir:<folder>`` (tests use a tiny one).
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

import numpy as np

from harness.errors import UserError
from harness.metrics.base import MetricEnv
from harness.metrics.extractors.hf_local import resolve_model_file, resolve_model_folder, weight_files
from harness.metrics.preference import PreferenceModel

PICKSCORE_MODEL = "yuvalkirstain/PickScore_v1"
PICKSCORE_PROCESSOR = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"
HPS_REPO = "xswu/HPSv2"
HPS_FILES = {"hpsv2": "HPS_v2_compressed.pt", "hpsv21": "HPS_v2.1_compressed.pt"}
HPS_ARCH = "ViT-H-14"
CONTEXT = 77


def _pooled(out: Any) -> Any:
    """transformers ≥ 5 returns a model output from ``get_*_features``; older versions a tensor."""
    return out if hasattr(out, "norm") else out.pooler_output


class PickScoreModel(PreferenceModel):
    def __init__(self, model: Any, processor: Any, identity: dict[str, Any], device: str = "cpu") -> None:
        self.model, self.processor, self.identity, self.device = model, processor, identity, device

    def score_batch(self, images: list[Any], prompts: list[str]) -> np.ndarray:
        import torch

        image_inputs = self.processor(images=images, return_tensors="pt")
        text_inputs = self.processor(
            text=prompts, padding=True, truncation=True, max_length=CONTEXT, return_tensors="pt"
        )
        with torch.inference_mode():
            img = _pooled(self.model.get_image_features(pixel_values=image_inputs["pixel_values"].to(self.device)))
            txt = _pooled(self.model.get_text_features(**{k: v.to(self.device) for k, v in text_inputs.items()}))
            img = img / img.norm(dim=-1, keepdim=True)
            txt = txt / txt.norm(dim=-1, keepdim=True)
            return (self.model.logit_scale.exp() * (img * txt).sum(-1)).double().cpu().numpy()

    def truncated(self, prompts: list[str]) -> list[bool]:
        tok = self.processor.tokenizer
        return [len(tok(p)["input_ids"]) > CONTEXT for p in prompts]


def load_pickscore(env: MetricEnv, opts: dict[str, Any]) -> PickScoreModel:
    from transformers import AutoProcessor, CLIPModel

    from imagen.hashing import files_sha256

    model_id = str(opts.get("model") or PICKSCORE_MODEL)
    proc_id = str(opts.get("processor") or PICKSCORE_PROCESSOR)
    folder = resolve_model_folder(model_id, "PickScore weights", "pickscore.model")
    weights = weight_files(folder, "PickScore")
    proc_folder = resolve_model_folder(
        proc_id,
        "PickScore's processor (tokenizer + image processor)",
        "pickscore.processor",
        marker="preprocessor_config.json",
        fetch=f"hf download {proc_id} preprocessor_config.json tokenizer.json tokenizer_config.json "
        "special_tokens_map.json vocab.json merges.txt",
    )
    try:
        model = CLIPModel.from_pretrained(str(folder), local_files_only=True).to(env.device).eval()
        processor = AutoProcessor.from_pretrained(str(proc_folder), local_files_only=True)
    except (OSError, ValueError, RuntimeError) as err:
        raise UserError(f"cannot load PickScore from {folder}: {' '.join(str(err).split())[:300]}") from None
    identity = {
        "model": model_id,
        "processor": proc_id,
        "weights_path": str(folder),
        "weights_sha256": files_sha256(weights, env.cache_dir),
        "config_sha256": files_sha256([folder / "config.json"], env.cache_dir),
        "transformers": metadata.version("transformers"),
        "score": "exp(logit_scale) * cos(image, text)",
    }
    return PickScoreModel(model, processor, identity, env.device)


class HpsModel(PreferenceModel):
    def __init__(
        self, model: Any, preprocess: Any, tokenizer: Any, identity: dict[str, Any], device: str = "cpu"
    ) -> None:
        self.model, self.preprocess, self.tokenizer = model, preprocess, tokenizer
        self.identity, self.device = identity, device

    def score_batch(self, images: list[Any], prompts: list[str]) -> np.ndarray:
        import torch

        x = torch.stack([self.preprocess(im) for im in images]).to(self.device)
        with torch.inference_mode():
            img = self.model.encode_image(x, normalize=True)
            txt = self.model.encode_text(self.tokenizer(prompts).to(self.device), normalize=True)
            return (img * txt).sum(-1).double().cpu().numpy()

    def truncated(self, prompts: list[str]) -> list[bool]:
        ctx = int(getattr(self.tokenizer, "context_length", CONTEXT) or CONTEXT)
        if hasattr(self.tokenizer, "encode"):
            return [len(self.tokenizer.encode(p)) + 2 > ctx for p in prompts]
        return [False] * len(prompts)


def _hps_state(path: Any) -> dict[str, Any]:
    import torch

    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 -- any unreadable or unsafe pickle is the same user error
        raise UserError(f"cannot read the HPS checkpoint {path}: {' '.join(str(err).split())[:200]}") from None
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not state:
        raise UserError(f"{path} holds no state_dict; is it an HPS v2 checkpoint?")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _load_hps(env: MetricEnv, opts: dict[str, Any], which: str) -> HpsModel:
    import open_clip

    from imagen.hashing import file_sha256_cached

    ckpt = resolve_model_file(
        opts.get("checkpoint"), HPS_REPO, HPS_FILES[which], f"HPS {which} weights", f"{which}.checkpoint"
    )
    arch = str(opts.get("arch") or HPS_ARCH)
    try:
        model = open_clip.create_model(arch, pretrained=None, load_weights=False, device=env.device)
    except (RuntimeError, ValueError, OSError, KeyError) as err:
        raise UserError(f"cannot build open_clip {arch} for HPS: {' '.join(str(err).split())[:200]}") from None
    try:
        missing, unexpected = model.load_state_dict(_hps_state(ckpt), strict=False)
    except RuntimeError as err:  # shape mismatches are raised even when not strict
        raise UserError(f"{ckpt} does not fit open_clip {arch}: {' '.join(str(err).split())[:200]}") from None
    if missing or unexpected:
        shown = (missing or unexpected)[:3]
        raise UserError(
            f"{ckpt} does not fit open_clip {arch} ({len(missing)} missing, {len(unexpected)} unexpected "
            f"weights, e.g. {shown}); is it an HPS checkpoint for this architecture?"
        )
    size = model.visual.image_size
    preprocess = open_clip.image_transform(
        size[0] if isinstance(size, (tuple, list)) else size, is_train=False, resize_mode="longest"
    )  # OpenAI mean/std; longest side + zero pad
    identity = {
        "model": which,
        "arch": arch,
        "checkpoint": str(ckpt),
        "weights_sha256": file_sha256_cached(ckpt, env.cache_dir),
        "open_clip": metadata.version("open_clip_torch"),
        "score": "cos(image, text)",
    }
    return HpsModel(model.eval(), preprocess, open_clip.get_tokenizer(arch), identity, env.device)


def load_hpsv2(env: MetricEnv, opts: dict[str, Any]) -> HpsModel:
    return _load_hps(env, opts, "hpsv2")


def load_hpsv21(env: MetricEnv, opts: dict[str, Any]) -> HpsModel:
    return _load_hps(env, opts, "hpsv21")
