"""Test data built on the spot: a COCO-style mini dataset and a tiny open_clip model folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import open_clip
import torch
from safetensors.torch import save_file

from harness.metrics.synthetic import draw_image

TINY_CLIP_CFG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
WORDS = ["a", "red", "blue", "cat", "dog", "on", "the", "table", "street", "with", "two", "green", "car", "man"]


def tiny_clip_folder(folder: Path, seed: int = 0) -> str:
    """An open_clip folder (config + random weights); returns the ``clip.model`` value for it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CLIP_CFG, "preprocess_cfg": {}}))
    torch.manual_seed(seed)
    model = open_clip.model.CLIP(**TINY_CLIP_CFG)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    return f"local-dir:{folder}"


def mini_coco(root: Path, n_images: int = 24, captions_per_image: int = 2, seed: int = 0, size: int = 64) -> Path:
    """``root/val2014/COCO_val2014_<id>.jpg`` + ``root/annotations/captions_val2014.json``."""
    rng = np.random.default_rng(seed)
    (root / "val2014").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(exist_ok=True)
    images, anns = [], []
    for k in range(n_images):
        image_id = 1000 + 7 * k
        name = f"COCO_val2014_{image_id:012d}.jpg"
        draw_image(rng, size + int(rng.integers(0, 16)), size).save(root / "val2014" / name, quality=90)
        images.append({"id": image_id, "file_name": name})
        for c in range(captions_per_image):
            words = " ".join(rng.choice(WORDS, size=int(rng.integers(3, 8))))
            anns.append({"id": 50000 + 10 * k + c, "image_id": image_id, "caption": f" {words.capitalize()}.\n"})
    (root / "annotations" / "captions_val2014.json").write_text(json.dumps({"images": images, "annotations": anns}))
    return root
