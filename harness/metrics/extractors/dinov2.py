"""The DINOv2 feature space (Stein et al. 2023, "Exposing flaws of generative model evaluation metrics").

The FD-DINOv2 metric on it is :mod:`harness.metrics.fd_dinov2`.

Stein et al. find that Inception features penalise diffusion models and disagree with human realism
judgements, and recommend the Fréchet distance on DINOv2-ViT-L/14 features instead. Their code
(layer6ai-labs/dgm-eval) takes the CLS token after the final layer norm (``dinov2_vitl14(x)``, 1024-d)
of 224 × 224 inputs normalised with ImageNet statistics; transformers' ``Dinov2Model`` gives the same
vector as ``pooler_output``. Resize modes, as for FID, are recorded with every number:

* ``clean`` (default, like our FID): PIL bicubic on float32 channels to 224 × 224, no quantisation
  (clean-fid's resizer; dgm-eval's ``--clean_resize``);
* ``torchvision``: ``torchvision.transforms.Resize((224, 224), BICUBIC)`` on the PIL image, dgm-eval's
  default — use it to compare with numbers computed by dgm-eval without ``--clean_resize``.

Weights load with transformers from a local folder or the Hugging Face cache, never the hub
(``dinov2.model``: ``facebook/dinov2-large`` = ViT-L/14 by default, ``facebook/dinov2-base`` = ViT-B/14
as the cheap option). The distance is :func:`harness.metrics.maths.frechet.frechet_distance` — the same code
as FID — and its interval the same bootstrap over generated images with the reference fixed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import UserError
from harness.formats.files import open_rgb
from harness.metrics.base import MetricEnv
from harness.metrics.extractors.feature_spaces import FeatureSpace, digest, extract_in_batches
from harness.metrics.extractors.hf_local import resolve_model_folder, weight_files

DEFAULT_MODEL = "facebook/dinov2-large"
INPUT_SIZE = 224
MODES = ("clean", "torchvision")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ARCHS = {384: "vits14", 768: "vitb14", 1024: "vitl14", 1536: "vitg14"}


def load_dinov2(
    model: str = DEFAULT_MODEL,
    device: str = "cpu",
    cache_dir: str | Path | None = None,
    hf_cache_dir: str | None = None,
) -> tuple[Any, dict[str, Any]]:
    """(transformers ``Dinov2Model`` in eval mode, identity with config and weights sha256)."""
    from transformers import Dinov2Model

    from imagen.hashing import files_sha256

    folder = resolve_model_folder(model, "DINOv2 weights", "dinov2.model", hf_cache_dir=hf_cache_dir)
    weights = weight_files(folder, "DINOv2")
    config = json.loads((folder / "config.json").read_text())
    if config.get("model_type") != "dinov2":
        raise UserError(f"{folder} holds a {config.get('model_type')!r} model, not DINOv2 (config.json model_type)")
    try:
        net = Dinov2Model.from_pretrained(str(folder), local_files_only=True).to(device).eval()
    except (OSError, ValueError, RuntimeError) as err:
        raise UserError(f"cannot load DINOv2 from {folder}: {' '.join(str(err).split())[:300]}") from None
    hidden = int(net.config.hidden_size)
    identity = {
        "model": model,
        "path": str(folder),
        "arch": ARCHS.get(hidden, f"hidden{hidden}"),
        "feature_dim": hidden,
        "config_sha256": files_sha256([folder / "config.json"], cache_dir),
        "weights_sha256": files_sha256(weights, cache_dir),
    }
    return net, identity


def preprocess(image: np.ndarray, mode: str) -> Any:
    """CHW float32 tensor at 224 × 224, ImageNet-normalised, from an HWC uint8 RGB array."""
    import torch
    from PIL import Image

    if mode == "clean":
        from cleanfid.resize import make_resizer

        x = make_resizer("PIL", False, "bicubic", (INPUT_SIZE, INPUT_SIZE))(image) / 255.0  # float, [0, 1]
        t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))).float()
    elif mode == "torchvision":
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms import functional as TF

        pil = TF.resize(Image.fromarray(image), [INPUT_SIZE, INPUT_SIZE], interpolation=InterpolationMode.BICUBIC)
        t = TF.to_tensor(pil)
    else:
        raise UserError(f"dinov2.mode must be one of {', '.join(MODES)}, got {mode!r}")
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (t - mean) / std


class Dinov2Space(FeatureSpace):
    """DINOv2 CLS token after the final layer norm (transformers ``pooler_output``)."""

    name, label = "dinov2", "DINOv2"

    def __init__(
        self, net: Any, identity: dict[str, Any], mode: str = "clean", batch_size: int = 16, device: str = "cpu"
    ) -> None:
        if mode not in MODES:
            raise UserError(f"dinov2.mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.net, self._identity, self.mode = net, identity, mode
        self.batch_size, self.device = int(batch_size), device
        self._sha = digest(
            {
                "weights": identity["weights_sha256"],
                "config": identity["config_sha256"],
                "mode": mode,
                "size": INPUT_SIZE,
                "features": "pooler_output",
            }
        )

    @property
    def key(self) -> str:
        return f"dinov2-{self._identity['arch']}-{self.mode}"

    @property
    def sha256(self) -> str:
        return self._sha

    def extract(self, files: Sequence[Path], *, desc: str = "", progress: bool = False) -> np.ndarray:
        import torch

        def embed(chunk: list[Path]) -> np.ndarray:
            x = torch.stack([preprocess(np.asarray(open_rgb(p)), self.mode) for p in chunk]).to(self.device)
            return self.net(pixel_values=x).pooler_output.double().cpu().numpy()

        dim = int(self._identity["feature_dim"])
        return extract_in_batches(files, self.batch_size, embed, desc or "DINOv2 features", progress, dim=dim)

    def identity(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in self._identity.items() if k != "path"},
            "weights_path": self._identity["path"],
            "mode": self.mode,
            "input_size": INPUT_SIZE,
            "features": "CLS token after the final layer norm",
            "space_sha256": self._sha,
        }


def dinov2_space(env: MetricEnv) -> Dinov2Space:
    """The DINOv2 space of the ``dinov2`` block (model, mode, batch_size), loaded once per evaluation."""
    model = str(env.option("dinov2", "model", DEFAULT_MODEL))
    mode = str(env.option("dinov2", "mode", "clean"))
    if mode not in MODES:
        raise UserError(f"dinov2.mode must be one of {', '.join(MODES)}, got {mode!r}")
    bs = int(env.option("dinov2", "batch_size", 16))

    def make() -> Dinov2Space:
        net, identity = load_dinov2(model, device=env.device, cache_dir=env.cache_dir)
        return Dinov2Space(net, identity, mode, bs, env.device)

    return env.shared(("dinov2-space", model, mode), make)
