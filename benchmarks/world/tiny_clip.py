"""A tiny CLIP for the world: open_clip's own ``CLIP`` class from a custom config, trained on world captions.

When no ViT-L/14 is available (a laptop with no network), CLIP score still runs through the real
open_clip code path with trained weights::

    imagen-bench eval benchmark=world clip.model=local-dir:benchmarks/world/data/tiny_clip

(:data:`TINY_CLIP_DIR` is the absolute folder). The folder holds ``open_clip_config.json`` (model
and preprocess config, read by ``open_clip.create_model_and_transforms("local-dir:...")``), the
weights ``open_clip_model.safetensors`` and ``README.md`` (how they were trained, held-out numbers,
sha256). The tokenizer is open_clip's ``SimpleTokenizer`` (its BPE vocabulary ships inside
open_clip), with a 32-token context: the longest world caption has 22 tokens.

Architecture: ViT image tower at 64² (patch 8, width 128, 4 layers, 4 heads), text transformer
(width 64, 3 layers, 4 heads), 64-d joint embedding. 4.1 M parameters, 3.2 M of which are the
49,408-row token embedding that the tokenizer's vocabulary fixes. Weights are stored in float16,
and the embedding rows of tokens that never occur in world captions are stored as zeros (they were
never trained: zeros say so honestly and keep the file compressible).

Its scores are only meaningful on world images and captions: it has never seen anything else.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from harness.metrics.extractors.clip import ClipScorer

TINY_CLIP_DIR = Path(__file__).resolve().parent / "data" / "tiny_clip"
MODEL_NAME = f"local-dir:{TINY_CLIP_DIR}"
WEIGHTS_NAME = "open_clip_model.safetensors"
# The shipped weights (README.md in the folder says how they were made; a rerun reproduces these bytes).
WEIGHTS_SHA256 = "f0be30df26927f4828f1b31607433ddd7740cd2a91abf48229303587a7a2625d"
CONTEXT_LENGTH = 32
IMAGE_SIZE = 64
MODEL_CFG: dict[str, Any] = {
    "embed_dim": 64,
    "vision_cfg": {
        "image_size": IMAGE_SIZE,
        "patch_size": 16,
        "width": 96,
        "layers": 4,
        "head_width": 32,
        "mlp_ratio": 4.0,
    },
    "text_cfg": {"context_length": CONTEXT_LENGTH, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 3},
}
# Mean/std 0.5: the world's images are synthetic, ImageNet statistics mean nothing for them.
PREPROCESS_CFG: dict[str, Any] = {
    "size": IMAGE_SIZE,
    "mean": [0.5, 0.5, 0.5],
    "std": [0.5, 0.5, 0.5],
    "interpolation": "bicubic",
    "resize_mode": "shortest",
}


def build_model() -> tuple[torch.nn.Module, Any, Any]:
    """(model, eval preprocess, tokenizer) from the config, randomly initialised: open_clip's classes."""
    import open_clip

    model = open_clip.CLIP(**MODEL_CFG)
    preprocess = open_clip.image_transform(
        IMAGE_SIZE,
        is_train=False,
        mean=PREPROCESS_CFG["mean"],
        std=PREPROCESS_CFG["std"],
        interpolation="bicubic",
        resize_mode="shortest",
    )
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=CONTEXT_LENGTH)
    return model, preprocess, tokenizer


def config_json() -> dict[str, Any]:
    return {"model_cfg": MODEL_CFG, "preprocess_cfg": PREPROCESS_CFG}


def export(model: torch.nn.Module, folder: str | Path, used_tokens: Sequence[int]) -> Path:
    """Write the config and float16 weights (unused token rows zeroed) into ``folder``."""
    from safetensors.torch import save_file

    from harness.formats.files import atomic_write_bytes

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous().clone() for k, v in model.state_dict().items()}
    emb = state["token_embedding.weight"]
    keep = torch.zeros(emb.shape[0], dtype=torch.bool)
    keep[torch.as_tensor(sorted({int(t) for t in used_tokens}), dtype=torch.long)] = True
    emb[~keep] = 0
    tmp = folder / f".{WEIGHTS_NAME}.tmp"
    save_file(state, str(tmp), metadata={"format": "pt"})
    tmp.chmod(0o644)  # safetensors writes owner-only files; shipped weights are readable by all
    tmp.replace(folder / WEIGHTS_NAME)
    atomic_write_bytes(folder / "open_clip_config.json", (json.dumps(config_json(), indent=2) + "\n").encode())
    return folder / WEIGHTS_NAME


def load_scorer(folder: str | Path = TINY_CLIP_DIR, device: str = "cpu") -> ClipScorer:
    """The shipped tiny CLIP through the harness's CLIP-score loader (``local-dir:``), as eval runs it."""
    from harness.metrics.extractors.clip import load_clip_scorer

    return load_clip_scorer(f"local-dir:{Path(folder).resolve()}", "", device=device)


@torch.inference_mode()
def similarity(scorer: Any, images: Sequence[Any], captions: Sequence[str], batch_size: int = 256) -> np.ndarray:
    """Cosine similarity of every image with every caption (rows: images), with the scorer's model."""
    img, txt = [], []
    for s in range(0, len(images), batch_size):
        img.append(scorer.model.encode_image(scorer._image_batch(images[s : s + batch_size])).float())
    for s in range(0, len(captions), batch_size):
        tokens = scorer.tokenizer(list(captions[s : s + batch_size])).to(scorer.device)
        txt.append(scorer.model.encode_text(tokens).float())
    i = torch.nn.functional.normalize(torch.cat(img), dim=-1)
    t = torch.nn.functional.normalize(torch.cat(txt), dim=-1)
    return (i @ t.T).cpu().numpy()


def top1_true(sim: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per image (row): whether its best-scoring caption is a true description of it."""
    return truth[np.arange(sim.shape[0]), sim.argmax(axis=1)]
