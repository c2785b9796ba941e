"""CLIP score on open_clip: 100 · max(cos(image, text), 0) per image, and the mean with a 95% CI.

The per-image form is Hessel et al. 2021 ("CLIPScore") with w = 100 instead of 2.5, as text-to-
image papers report it (Imagen, Saharia et al. 2022, uses CLIP score on COCO). torchmetrics'
``CLIPScore`` computes the same cosine but clamps the *mean* at 0, not each image; we clamp per
image so each image's score is the metric and the CI is over the same numbers.

Prompts longer than the model's context (77 tokens for CLIP) are truncated by the tokenizer;
how many were is recorded, because a truncated prompt is scored on its first 77 tokens only.

Weights come only from a local file, a local open_clip folder, or the Hugging Face cache: the
hub is never contacted (an open_clip tag such as ``openai`` is resolved to its cached file, and a
missing one is a :class:`MissingWeightsError` naming the repo to fetch).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch
from PIL import Image
from tqdm import tqdm

from harness.errors import MissingWeightsError, UserError
from harness.formats.files import open_rgb
from harness.metrics.maths.intervals import mean_ci
from imagen.hashing import file_sha256_cached, files_sha256

DEFAULT_MODEL = "ViT-L-14"
DEFAULT_PRETRAINED = "openai"
_WEIGHT_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
_CHECKPOINT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")

ImageLike = Image.Image | np.ndarray | str | Path


def clip_scores_from_embeddings(image_emb: torch.Tensor, text_emb: torch.Tensor) -> np.ndarray:
    """100 · max(cos(iᵢ, tᵢ), 0) for paired rows of image and text embeddings (any scale)."""
    if image_emb.shape != text_emb.shape:
        raise ValueError(f"paired embeddings differ in shape: {tuple(image_emb.shape)} vs {tuple(text_emb.shape)}")
    i = image_emb.double() / image_emb.double().norm(dim=-1, keepdim=True)
    t = text_emb.double() / text_emb.double().norm(dim=-1, keepdim=True)
    return (100.0 * (i * t).sum(dim=-1).clamp(min=0.0)).cpu().numpy()


@dataclass
class ClipScores:
    """Per-image scores of one scoring call, with the prompts' truncation and the model identity."""

    scores: np.ndarray
    truncated: list[bool]
    model: dict[str, Any]

    @property
    def num_truncated(self) -> int:
        return int(sum(self.truncated))

    def summary(self, level: float = 0.95) -> dict[str, Any]:
        """Mean with a Student-t CI (``harness.metrics.maths.intervals.mean_ci``), counts and the model."""
        ci = mean_ci(self.scores, level=level)
        return {
            "clip_score": ci.mean,
            "ci_low": ci.low,
            "ci_high": ci.high,
            "level": ci.level,
            "n": ci.n,
            "truncated_prompts": self.num_truncated,
            "model": self.model,
        }


@dataclass
class ClipScorer:
    """An open_clip model with its eval transform and tokenizer, and what was loaded."""

    model: torch.nn.Module
    preprocess: Callable[[Image.Image], torch.Tensor]
    tokenizer: Any
    identity: dict[str, Any]
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def context_length(self) -> int:
        return int(getattr(self.tokenizer, "context_length", None) or open_clip.tokenizer.DEFAULT_CONTEXT_LENGTH)

    def is_truncated(self, prompt: str) -> bool:
        """Whether the tokenizer cuts ``prompt`` (its tokens plus start/end exceed the context)."""
        if hasattr(self.tokenizer, "encode") and hasattr(self.tokenizer, "sot_token_id"):  # SimpleTokenizer
            return len(self.tokenizer.encode(prompt)) + 2 > self.context_length
        inner = getattr(self.tokenizer, "tokenizer", None)  # HFTokenizer wraps a transformers tokenizer
        if inner is not None:
            return len(inner(prompt)["input_ids"]) > self.context_length
        raise UserError(f"cannot count truncation for tokenizer {type(self.tokenizer).__name__}")

    def _image_batch(self, images: Sequence[ImageLike]) -> torch.Tensor:
        return torch.stack([self.preprocess(_to_pil(img)) for img in images]).to(self.device)

    def score(
        self, images: Sequence[ImageLike], prompts: Sequence[str], batch_size: int = 16, progress: bool = False
    ) -> ClipScores:
        """Score image i against prompt i (PIL images, HWC uint8 arrays or file paths)."""
        if len(images) != len(prompts):
            raise UserError(f"{len(images)} images but {len(prompts)} prompts; CLIP score pairs them one to one")
        if not len(images):
            raise UserError("no images to score")
        parts = []
        bar = tqdm(total=len(images), unit="img", desc="CLIP score", disable=not progress, dynamic_ncols=True)
        with torch.inference_mode():
            for s in range(0, len(images), batch_size):
                img = self.model.encode_image(self._image_batch(images[s : s + batch_size]))
                txt = self.model.encode_text(self.tokenizer(list(prompts[s : s + batch_size])).to(self.device))
                parts.append(clip_scores_from_embeddings(img.float(), txt.float()))
                bar.update(min(batch_size, len(images) - s))
        bar.close()
        truncated = [self.is_truncated(p) for p in prompts]
        return ClipScores(scores=np.concatenate(parts), truncated=truncated, model=self.identity)


def _to_pil(image: ImageLike) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, np.ndarray):
        return Image.fromarray(image).convert("RGB")
    return open_rgb(image)


def _hf_cached(repo_id: str, names: Sequence[str], hf_cache_dir: str | None) -> Path | None:
    from huggingface_hub import try_to_load_from_cache  # reads the cache folder only, never the network

    for name in names:
        found = try_to_load_from_cache(repo_id, name, cache_dir=hf_cache_dir)
        if isinstance(found, str):
            return Path(found)
    return None


def _safe_alternatives(filename: str) -> list[str]:
    # open_clip downloads a .safetensors twin first when one exists; the cache may hold either.
    if filename == _WEIGHT_NAMES[1]:
        return list(_WEIGHT_NAMES)
    stem, dot, ext = filename.rpartition(".")
    return [f"{stem}.safetensors", filename] if dot and ext in ("bin", "pth") else [filename]


def _resolve_tag(model_name: str, tag: str, hf_cache_dir: str | None) -> tuple[Path, dict[str, Any]]:
    """Cached weights file of an open_clip pretrained tag, and the tag's config."""
    cfg = open_clip.get_pretrained_cfg(model_name, tag)
    hub = cfg.get("hf_hub", "")
    if hub:
        repo_id, filename = hub.rstrip("/"), ""
        if not hub.endswith("/"):
            repo_id, filename = hub.rsplit("/", 1)
        names = _safe_alternatives(filename) if filename else list(_WEIGHT_NAMES)
        found = _hf_cached(repo_id, names, hf_cache_dir)
        if found:
            return found, cfg
        raise MissingWeightsError(
            f"CLIP weights {model_name}/{tag} are not in the Hugging Face cache; with network access run "
            f"`hf download {repo_id} {names[-1]}`, or pass clip.pretrained=/path/to/weights"
        )
    raise MissingWeightsError(
        f"CLIP weights {model_name}/{tag} are only published at {cfg.get('url', '?')}; download that file "
        "and pass clip.pretrained=/path/to/it"
    )


def _local_dir_identity(folder: Path, cache_dir: str | Path | None) -> dict[str, Any]:
    config = json.loads((folder / "open_clip_config.json").read_text())
    weights = sorted(p for p in folder.iterdir() if p.suffix in _CHECKPOINT_SUFFIXES and p.is_file())
    if not weights:
        raise MissingWeightsError(
            f"open_clip folder {folder} has a config but no weights file ({'/'.join(_WEIGHT_NAMES)})"
        )
    return {
        "model_cfg_sha256": files_sha256([folder / "open_clip_config.json"], cache_dir),
        "weights_sha256": files_sha256(weights, cache_dir),
        "weights_path": str(folder),
        "embed_dim": config.get("model_cfg", {}).get("embed_dim"),
    }


def _resolve(model_name: str, pretrained: str, hf_cache_dir: str | None, cache_dir: str | Path | None):
    """(open_clip model name, pretrained file or None, create kwargs, identity fields)."""
    if model_name.startswith("hf-hub:"):  # resolve the repo's cached snapshot to a local folder
        repo = model_name[len("hf-hub:") :]
        config = _hf_cached(repo, ["open_clip_config.json"], hf_cache_dir)
        if config is None:
            raise MissingWeightsError(
                f"{repo} is not in the Hugging Face cache; with network access run `hf download {repo}`"
            )
        model_name, pretrained = f"local-dir:{config.parent}", ""
    if model_name.startswith("local-dir:"):
        return model_name, None, {}, _local_dir_identity(Path(model_name[len("local-dir:") :]), cache_dir)
    path = Path(pretrained).expanduser() if pretrained else None
    if path is not None and path.is_dir():
        return f"local-dir:{path}", None, {}, _local_dir_identity(path, cache_dir)
    if path is not None and path.is_file():
        return (
            model_name,
            str(path),
            {},
            {"weights_path": str(path), "weights_sha256": file_sha256_cached(path, cache_dir)},
        )
    if pretrained and open_clip.get_pretrained_cfg(model_name, pretrained):
        weights, cfg = _resolve_tag(model_name, pretrained, hf_cache_dir)
        kwargs = {"force_quick_gelu": bool(cfg.get("quick_gelu", False))}  # the tag's activation, as trained
        if cfg.get("mean") and cfg.get("std"):
            kwargs.update(image_mean=tuple(cfg["mean"]), image_std=tuple(cfg["std"]))
        ident = {"weights_path": str(weights), "weights_sha256": file_sha256_cached(weights, cache_dir)}
        return model_name, str(weights), kwargs, ident
    raise MissingWeightsError(
        f"CLIP weights {pretrained!r} are neither a file, an open_clip folder, nor a known tag of {model_name}; "
        f"known tags: {', '.join(open_clip.list_pretrained_tags_by_model(model_name)) or 'none'}"
    )


def load_clip_scorer(
    model_name: str = DEFAULT_MODEL,
    pretrained: str = DEFAULT_PRETRAINED,
    device: str | torch.device = "cpu",
    hf_cache_dir: str | None = None,
    cache_dir: str | Path | None = None,
) -> ClipScorer:
    """Load an open_clip model for CLIP score from a local file/folder or the HF cache, never the hub.

    ``pretrained`` is a weights file, an open_clip folder (``open_clip_config.json`` + weights), or
    an open_clip tag (default ``openai``: ViT-L/14 as in the CLIP paper); ``model_name`` may also
    be ``hf-hub:org/repo`` or ``local-dir:PATH``. The identity records model, pretrained and the
    weights' sha256 (memoised in the cache dir).
    """
    if model_name.split(":", 1)[0] not in ("hf-hub", "local-dir"):
        model_name = model_name.replace("/", "-")  # "ViT-L/14" is open_clip's "ViT-L-14"
        if open_clip.get_model_config(model_name) is None:
            raise UserError(f"unknown open_clip model {model_name!r}; see open_clip.list_models()")
    name, weights, kwargs, ident = _resolve(model_name, pretrained, hf_cache_dir, cache_dir)
    dev = torch.device(device)
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=weights, device=dev, **kwargs)
    except (RuntimeError, ValueError, OSError, KeyError) as err:
        raise UserError(f"cannot load CLIP weights {weights or name}: {' '.join(str(err).split())[:300]}") from None
    tokenizer = open_clip.get_tokenizer(name)
    identity = {
        "model": model_name,
        "pretrained": pretrained,
        "open_clip": metadata.version("open_clip_torch"),
        "context_length": int(getattr(tokenizer, "context_length", 0) or 0),
        **ident,
    }
    return ClipScorer(model=model.eval(), preprocess=preprocess, tokenizer=tokenizer, identity=identity, device=dev)
