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


def trained_micro_cascade(root: Path, steps: int = 3) -> Path:
    """A cascade folder of imagen_micro with a few training steps per stage (non-zero outputs)."""
    from hydra import compose, initialize_config_dir

    from imagen.training.synthetic import make_shapes_dataset
    from imagen.training.trainer import train

    data = make_shapes_dataset(root / "data", [("red", "square"), ("blue", "circle")], 4, 32)
    cascade = root / "cascade"
    cascade.mkdir(parents=True, exist_ok=True)
    conf = str(Path(__file__).resolve().parents[2] / "conf")
    for stage in ("base16", "sr32"):
        with initialize_config_dir(config_dir=conf, version_base="1.3"):
            cfg = compose(
                "train",
                overrides=[
                    "model=imagen_micro",
                    f"stage={stage}",
                    f"data.root={data}",
                    f"train.steps={steps}",
                    "train.batch_size=4",
                    "train.lr=1e-2",
                    "train.warmup_steps=1",
                    f"train.checkpoint_every={steps}",
                ],
            )
        out = train(cfg, root / f"train_{stage}")
        (cascade / f"{stage}.safetensors").write_bytes(Path(out["checkpoint"]).read_bytes())
    return cascade
