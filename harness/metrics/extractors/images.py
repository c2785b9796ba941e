"""Image folders for FID: list and check them, then load batches resized as clean-fid does.

Listing is recursive over ``.png .jpg .jpeg .webp .bmp`` (any letter case), skipping hidden files
and folders as clean-fid's ``glob('**/*.ext')`` does. Every listed file's header is opened, so a
non-image file fails before any network runs; a file that is truncated or corrupt further in
fails when decoded, and either way the error is a :class:`UserError` naming the file.

Resizing is clean-fid's own: ``cleanfid.resize.build_resizer(mode)`` per image. In ``clean`` mode
that is PIL bicubic on float32 channels to 299 × 299 (no quantisation); in ``legacy_tensorflow``
mode clean-fid resizes nothing outside the network, and the network's TF1-bilinear resize
(:func:`harness.metrics.extractors.inception.tf_bilinear_resize`) is applied per image here, so images of
different sizes can share a batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from cleanfid.resize import build_resizer
from torch.utils.data import DataLoader, Dataset

from harness.errors import UserError
from harness.formats.files import image_size, open_rgb
from harness.metrics.extractors.inception import INPUT_SIZE, tf_bilinear_resize
from imagen.hashing import sha256_files_cached

EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})
MODES = ("clean", "legacy_tensorflow")
#: Decoding and resizing run in the main process by default: this machine class has 2 cores,
#: and the network itself uses both.
DEFAULT_NUM_WORKERS = 0
# PIL raises these for unreadable data; DecompressionBombError is a subclass of Exception too.


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise UserError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    return mode


def _is_hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def list_images(folder: str | Path) -> list[Path]:
    """Sorted image files under ``folder`` (recursive); a missing or empty folder is a UserError."""
    root = Path(folder).expanduser()
    if not root.exists():
        raise UserError(f"image folder {root} does not exist")
    if not root.is_dir():
        raise UserError(f"{root} is not a folder")
    files = sorted(
        p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file() and not _is_hidden(p, root)
    )
    if not files:
        raise UserError(f"image folder {root} holds no images ({'/'.join(sorted(EXTENSIONS))})")
    return files


def image_sizes(files: Sequence[Path]) -> list[tuple[int, int]]:
    """(width, height) from each file's header; a file PIL cannot identify is a UserError."""
    return [image_size(f) for f in files]


def resolution_label(sizes: Sequence[tuple[int, int]]) -> str:
    """``"WxH"`` when all images share a size, else ``"mixed"`` (a reference-stats key field)."""
    distinct = set(sizes)
    return f"{sizes[0][0]}x{sizes[0][1]}" if len(distinct) == 1 else "mixed"


def image_list_sha256(
    files: Sequence[Path], root: str | Path | None = None, cache_dir: str | Path | None = None
) -> str:
    """One digest over (relative path, content sha256) of each file, in sorted order.

    File digests are memoised by (path, size, mtime) in the cache folder, so a fixed reference folder is
    hashed once, not on every evaluation.
    """
    ordered = sorted(files)
    h = hashlib.sha256()
    for f, digest in zip(ordered, sha256_files_cached(ordered, cache_dir)):
        rel = f.relative_to(root).as_posix() if root else f.name
        h.update(f"{rel}\0{digest}\n".encode())
    return h.hexdigest()


def decode_rgb(path: Path) -> np.ndarray:
    """HWC uint8 RGB exactly as clean-fid reads a file (``np.array(Image.open(p).convert('RGB'))``)."""
    return np.array(open_rgb(path))  # fully decoded, so truncation is raised here


def prepare(image: np.ndarray, mode: str) -> torch.Tensor:
    """CHW float32 in [0, 255] at 299 × 299 from an HWC uint8 RGB array, for ``mode``."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 image, got {image.shape} {image.dtype}")
    if mode == "clean":
        resized = build_resizer("clean")(image)  # float32 HWC 299×299, clipped to [0, 255]
        return torch.from_numpy(np.ascontiguousarray(resized.transpose(2, 0, 1)))
    if mode == "legacy_tensorflow":
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float()[None]
        return tf_bilinear_resize(x, INPUT_SIZE)[0]
    raise ValueError(f"unknown mode {mode!r}")


class ImageFiles(Dataset):
    """Prepared images; a decode failure is returned as a message, not raised.

    Returning the error keeps it one clean line when ``num_workers > 0`` (a worker's exception
    reaches the main process wrapped in a traceback dump).
    """

    def __init__(self, files: Sequence[Path], mode: str) -> None:
        self.files, self.mode = list(files), check_mode(mode)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str]:
        try:
            return prepare(decode_rgb(self.files[i]), self.mode), ""
        except UserError as err:  # open_rgb's one line, naming the file
            return torch.zeros(3, INPUT_SIZE, INPUT_SIZE), str(err)


def batches(
    files: Sequence[Path], mode: str, batch_size: int = 32, num_workers: int = DEFAULT_NUM_WORKERS
) -> Iterator[torch.Tensor]:
    """N×3×299×299 float batches in file order; the first unreadable file raises a UserError."""
    if batch_size < 1 or num_workers < 0:
        raise UserError(f"batch_size must be ≥ 1 and num_workers ≥ 0 (got {batch_size}, {num_workers})")
    loader = DataLoader(ImageFiles(files, mode), batch_size=batch_size, shuffle=False, num_workers=num_workers)
    for images, errors in loader:
        bad = next((e for e in errors if e), None)
        if bad:
            raise UserError(bad)
        yield images


def array_batches(images: Iterable[np.ndarray], mode: str, batch_size: int = 32) -> Iterator[torch.Tensor]:
    """The same batches from in-memory HWC uint8 RGB arrays (e.g. freshly generated samples)."""
    check_mode(mode)
    pending: list[torch.Tensor] = []
    for img in images:
        pending.append(prepare(np.asarray(img), mode))
        if len(pending) == batch_size:
            yield torch.stack(pending)
            pending = []
    if pending:
        yield torch.stack(pending)
