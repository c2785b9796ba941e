"""ImageReward (Xu et al. 2023) rebuilt from transformers' BLIP classes, loading the published checkpoint.

The published model (THUDM/ImageReward ``ImageReward.py``) is BLIP's ViT (``blip.visual_encoder``: timm-style,
fused qkv, LayerNorm ε = 1e-6), BLIP's BERT with cross-attention to the image tokens (``blip.text_encoder``,
configured by ``med_config.json`` with ``encoder_width`` = the ViT width) and an MLP head
``768 → 1024 → 128 → 64 → 16 → 1`` (dropouts, no activations). For a prompt and an image::

    ids   = BertTokenizer(prompt, padding="max_length", truncation=True, max_length=35)
    img   = visual_encoder(Normalize(CLIP mean/std)(CenterCrop(224)(Resize(224, bicubic)(image))))
    h     = text_encoder(ids, encoder_hidden_states=img).last_hidden_state[:, 0]
    score = (mlp(h) − 0.16717362830052426) / 1.0333394966054072

transformers has both towers: ``BlipVisionModel`` is BLIP's ViT (same fused qkv and pre-norm blocks,
other parameter names) and ``BlipTextModel`` is BLIP's ``med.py`` BERT with the same parameter names
(cross-attention layers exist when ``is_decoder`` is set in its config; it is *called* bidirectionally).
So no BLIP code is vendored: :func:`convert_checkpoint` renames the ViT's parameters, checks that every
parameter is present and none is left over, and the architecture (widths, depths, heads = width / 64 as
in BLIP's ViT-B/L, image size, MLP sizes) is read from the checkpoint's shapes. The tokenizer is
``bert-base-uncased`` with BLIP's two added tokens ``[DEC]`` (bos) and ``[ENC]``.
"""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import UserError
from harness.metrics.base import MetricEnv
from harness.metrics.extractors.hf_local import resolve_model_file, resolve_model_folder
from harness.metrics.preference import PreferenceModel

REPO = "THUDM/ImageReward"
CHECKPOINT = "ImageReward.pt"
MED_CONFIG = "med_config.json"
TOKENIZER = "bert-base-uncased"
MEAN, STD = 0.16717362830052426, 1.0333394966054072
MAX_LENGTH = 35
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
MLP_LAYERS = (0, 2, 4, 6, 7)  # Linear positions in the published nn.Sequential (dropouts between)
_VIT_RENAMES = [
    (r"^cls_token$", "embeddings.class_embedding"),
    (r"^pos_embed$", "embeddings.position_embedding"),
    (r"^patch_embed\.proj\.", "embeddings.patch_embedding."),
    (r"^blocks\.(\d+)\.norm1\.", r"encoder.layers.\1.layer_norm1."),
    (r"^blocks\.(\d+)\.norm2\.", r"encoder.layers.\1.layer_norm2."),
    (r"^blocks\.(\d+)\.attn\.qkv\.", r"encoder.layers.\1.self_attn.qkv."),
    (r"^blocks\.(\d+)\.attn\.proj\.", r"encoder.layers.\1.self_attn.projection."),
    (r"^blocks\.(\d+)\.mlp\.fc(\d)\.", r"encoder.layers.\1.mlp.fc\2."),
    (r"^norm\.", "post_layernorm."),
]


def _vit_name(key: str) -> str:
    for pattern, repl in _VIT_RENAMES:
        if re.match(pattern, key):
            return re.sub(pattern, repl, key)
    raise UserError(f"unknown BLIP ViT parameter {key!r} in the ImageReward checkpoint")


def convert_checkpoint(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], list[str]]:
    """(vision, text, mlp) state dicts in transformers' names, and the checkpoint keys no scoring part uses."""
    vision, text, mlp, unused = {}, {}, {}, []
    for key, value in state.items():
        if key.startswith("blip.visual_encoder."):
            vision[_vit_name(key[len("blip.visual_encoder.") :])] = value
        elif key.startswith("blip.text_encoder."):
            name = key[len("blip.text_encoder.") :]
            if name != "embeddings.position_ids":  # a buffer, rebuilt by the model
                text[name] = value
        elif key.startswith("mlp.layers."):
            mlp[key[len("mlp.layers.") :]] = value
        else:
            unused.append(key)  # e.g. blip.vision_proj / text_proj: not part of the reward
    if not vision or not text or not mlp:
        raise UserError(
            "the checkpoint lacks blip.visual_encoder, blip.text_encoder or mlp weights; is it ImageReward.pt?"
        )
    return vision, text, mlp, unused


def published_mlp(sizes: list[tuple[int, int]]) -> Any:
    """ImageReward's head: Linear, Dropout(0.2), Linear, Dropout(0.2), Linear, Dropout(0.1), Linear, Linear
    (``sizes`` = (in, out) of the five Linear layers), so its parameter names are the checkpoint's."""
    from torch import nn

    (a, b), (c, d), (e, f), (g, h), (i, j) = sizes
    return nn.Sequential(
        nn.Linear(a, b),
        nn.Dropout(0.2),
        nn.Linear(c, d),
        nn.Dropout(0.2),
        nn.Linear(e, f),
        nn.Dropout(0.1),
        nn.Linear(g, h),
        nn.Linear(i, j),
    )


def _build(vision_sd: dict[str, Any], text_sd: dict[str, Any], mlp_sd: dict[str, Any], med: dict[str, Any]):
    import torch
    from transformers import BlipTextConfig, BlipTextModel, BlipVisionConfig, BlipVisionModel

    width = int(vision_sd["embeddings.class_embedding"].shape[-1])
    patch = int(vision_sd["embeddings.patch_embedding.weight"].shape[-1])
    n_pos = int(vision_sd["embeddings.position_embedding"].shape[1])
    depth = 1 + max(int(k.split(".")[2]) for k in vision_sd if k.startswith("encoder.layers."))
    vcfg = BlipVisionConfig(
        hidden_size=width,
        intermediate_size=int(vision_sd["encoder.layers.0.mlp.fc1.weight"].shape[0]),
        num_hidden_layers=depth,
        num_attention_heads=max(1, width // 64),
        image_size=patch * round((n_pos - 1) ** 0.5),
        patch_size=patch,
        layer_norm_eps=1e-6,
        hidden_act="gelu",
    )
    tcfg = BlipTextConfig(
        vocab_size=int(text_sd["embeddings.word_embeddings.weight"].shape[0]),
        hidden_size=int(med.get("hidden_size", 768)),
        encoder_hidden_size=width,
        intermediate_size=int(med.get("intermediate_size", 3072)),
        num_hidden_layers=int(med.get("num_hidden_layers", 12)),
        num_attention_heads=int(med.get("num_attention_heads", 12)),
        max_position_embeddings=int(med.get("max_position_embeddings", 512)),
        layer_norm_eps=float(med.get("layer_norm_eps", 1e-12)),
        hidden_act=med.get("hidden_act", "gelu"),
        pad_token_id=int(med.get("pad_token_id", 0)),
        is_decoder=True,
    )
    vision, text = BlipVisionModel(vcfg), BlipTextModel(tcfg, add_pooling_layer=False)
    if any(f"{i}.weight" not in mlp_sd for i in MLP_LAYERS):
        raise UserError(
            f"the ImageReward head needs mlp.layers.{{{','.join(map(str, MLP_LAYERS))}}}.weight; "
            f"the checkpoint has {sorted(mlp_sd)}"
        )
    mlp = published_mlp([tuple(mlp_sd[f"{i}.weight"].shape[::-1]) for i in MLP_LAYERS])
    for module, sd, what in (
        (vision, vision_sd, "visual encoder"),
        (text, text_sd, "text encoder"),
        (mlp, mlp_sd, "mlp"),
    ):
        try:
            missing, unexpected = module.load_state_dict({k: torch.as_tensor(v) for k, v in sd.items()}, strict=False)
        except RuntimeError as err:  # shape mismatches are raised even when not strict
            raise UserError(f"ImageReward {what} weights do not fit: {' '.join(str(err).split())[:200]}") from None
        missing = [m for m in missing if not m.endswith("position_ids")]
        if missing or unexpected:
            raise UserError(
                f"ImageReward {what} weights do not fit ({len(missing)} missing, {len(unexpected)} "
                f"unexpected, e.g. {(missing or unexpected)[:3]})"
            )
    return vision.eval(), text.eval(), mlp.eval()


def preprocess_transform(size: int) -> Any:
    """ImageReward's ``_transform``: Resize(size, bicubic) on the short side, CenterCrop, CLIP mean/std."""
    from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Normalize, Resize, ToTensor

    return Compose(
        [
            Resize(size, interpolation=InterpolationMode.BICUBIC),
            CenterCrop(size),
            ToTensor(),
            Normalize(CLIP_MEAN, CLIP_STD),
        ]
    )


def load_tokenizer(name_or_path: str) -> Any:
    """``bert-base-uncased`` (path or HF cache) with BLIP's added ``[DEC]`` bos and ``[ENC]`` tokens."""
    from transformers import BertTokenizer

    folder = resolve_model_folder(
        name_or_path,
        "ImageReward's tokenizer",
        "imagereward.tokenizer",
        marker="vocab.txt",
        fetch=f"hf download {name_or_path} vocab.txt tokenizer_config.json config.json",
    )
    tok = BertTokenizer.from_pretrained(str(folder), local_files_only=True)
    tok.add_special_tokens({"bos_token": "[DEC]"})
    tok.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
    return tok


class ImageRewardModel(PreferenceModel):
    """The rebuilt reward model: BLIP vision tower, cross-attending text tower, MLP head, published z-score."""

    def __init__(
        self, vision: Any, text: Any, mlp: Any, tokenizer: Any, identity: dict[str, Any], device: str = "cpu"
    ) -> None:
        self.vision, self.text, self.mlp = vision.to(device), text.to(device), mlp.to(device)
        self.tokenizer, self.identity, self.device = tokenizer, identity, device
        self.preprocess = preprocess_transform(int(vision.config.image_size))

    def features(self, pixel_values: Any, prompts: list[str]) -> Any:
        """The text tower's [CLS] state attending to the image tokens (the MLP's input)."""
        import torch

        ids = self.tokenizer(
            prompts, padding="max_length", truncation=True, max_length=MAX_LENGTH, return_tensors="pt"
        ).to(self.device)
        with torch.inference_mode():
            image_embeds = self.vision(pixel_values=pixel_values.to(self.device)).last_hidden_state
            atts = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=self.device)
            out = self.text(
                input_ids=ids["input_ids"],
                attention_mask=ids["attention_mask"],
                encoder_hidden_states=image_embeds,
                encoder_attention_mask=atts,
                is_decoder=False,
            )
        return out.last_hidden_state[:, 0, :].float()

    def score_batch(self, images: list[Any], prompts: list[str]) -> np.ndarray:
        import torch

        pixels = torch.stack([self.preprocess(im) for im in images])
        with torch.inference_mode():
            reward = self.mlp(self.features(pixels, prompts)).squeeze(-1)
        return ((reward - MEAN) / STD).double().cpu().numpy()

    def truncated(self, prompts: list[str]) -> list[bool]:
        return [len(self.tokenizer(p)["input_ids"]) > MAX_LENGTH for p in prompts]


def _read_checkpoint(path: Path) -> dict[str, Any]:
    import torch

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 -- any unreadable or unsafe pickle is the same user error
        raise UserError(f"cannot read the ImageReward checkpoint {path}: {' '.join(str(err).split())[:200]}") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else None
    if not isinstance(state, dict):
        raise UserError(f"{path} holds no state dict; is it ImageReward.pt?")
    return state


def load_imagereward(env: MetricEnv, opts: dict[str, Any]) -> ImageRewardModel:
    """ImageReward from ``imagereward.checkpoint`` (a file or a folder with ``ImageReward.pt`` and
    ``med_config.json``; null: the HF cache of THUDM/ImageReward) and ``imagereward.tokenizer``."""
    from imagen.hashing import file_sha256_cached

    ckpt = resolve_model_file(opts.get("checkpoint"), REPO, CHECKPOINT, "ImageReward weights", "imagereward.checkpoint")
    med_path = opts.get("med_config") or (ckpt.parent / MED_CONFIG if (ckpt.parent / MED_CONFIG).is_file() else None)
    med_path = resolve_model_file(med_path, REPO, MED_CONFIG, "ImageReward's med_config.json", "imagereward.med_config")
    tokenizer = load_tokenizer(str(opts.get("tokenizer") or TOKENIZER))
    try:
        med = json.loads(Path(med_path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"cannot read {med_path}: {err}") from None
    vision_sd, text_sd, mlp_sd, unused = convert_checkpoint(_read_checkpoint(ckpt))
    vision, text, mlp = _build(vision_sd, text_sd, mlp_sd, med)
    if len(tokenizer) > text.config.vocab_size:
        raise UserError(
            f"the tokenizer has {len(tokenizer)} tokens but the checkpoint's text encoder "
            f"{text.config.vocab_size}; use BLIP's bert-base-uncased"
        )
    identity = {
        "model": "imagereward",
        "checkpoint": str(ckpt),
        "weights_sha256": file_sha256_cached(ckpt, env.cache_dir),
        "med_config_sha256": file_sha256_cached(med_path, env.cache_dir),
        "tokenizer": str(opts.get("tokenizer") or TOKENIZER),
        "unused_checkpoint_keys": len(unused),
        "vision": {
            "width": vision.config.hidden_size,
            "layers": vision.config.num_hidden_layers,
            "image_size": vision.config.image_size,
        },
        "transformers": metadata.version("transformers"),
        "score": f"(mlp - {MEAN}) / {STD}",
    }
    return ImageRewardModel(vision, text, mlp, tokenizer, identity, env.device)
