"""The study's own image store: the only files the rater app ever serves.

On import every image is decoded and re-encoded as a plain RGB PNG (optionally downscaled) under
an opaque random name, so nothing that could identify a system reaches the page: not the
original path or file name, and not metadata inside the file (generators often write prompts,
seeds or model names into PNG text chunks, and Streamlit serves PNG bytes as they are).
"""

from __future__ import annotations

import io
import re
import secrets
from pathlib import Path
from typing import Callable

from PIL import Image

from harness.errors import UserError
from harness.formats.files import atomic_write_bytes, open_rgb

NAME_RE = re.compile(r"^[0-9a-f]{32}\.png$")


def clean_png(image: Image.Image, max_side: int | None = None) -> bytes:
    """RGB PNG bytes with no metadata; the longer side capped at ``max_side`` if given."""
    img = image.convert("RGB")
    if max_side and max(img.size) > max_side:
        scale = max_side / max(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                         Image.Resampling.LANCZOS)
    # A fresh image carries no info dict, so no text chunks, ICC profile or EXIF are written.
    fresh = Image.new("RGB", img.size)
    fresh.paste(img)
    buf = io.BytesIO()
    fresh.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def load_image(path: str | Path) -> Image.Image:
    """Open and fully decode an image file; a missing or unreadable file is a UserError."""
    return open_rgb(path)


class ImageStore:
    """A folder of opaque ``<32 hex>.png`` files; names are validated before any read."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def add(self, data: bytes) -> str:
        name = secrets.token_hex(16) + ".png"
        atomic_write_bytes(self.root / name, data)
        return name

    def path(self, name: str) -> Path:
        if not NAME_RE.match(name):
            raise UserError(f"not an image-store name: {name!r}")
        return self.root / name

    def read(self, name: str) -> bytes:
        try:
            return self.path(name).read_bytes()
        except FileNotFoundError:
            raise UserError(f"the study's image store {self.root} lacks {name}; was it moved?") from None

    def remove(self, names: list[str]) -> None:
        for name in names:
            self.path(name).unlink(missing_ok=True)


class StoreWriter:
    """Imports images once each (keyed by source and transform) and can undo a failed import."""

    def __init__(self, store: ImageStore, max_side: int | None) -> None:
        self.store = store
        self.max_side = max_side
        self.written: list[str] = []
        self._names: dict[tuple[str, str], str] = {}

    def add_file(self, source: str, transform: str = "",
                 fn: Callable[[Image.Image], Image.Image] | None = None) -> str:
        """Store ``fn(image at source)`` (or the image itself) and return its opaque name."""
        key = (source, transform)
        if key not in self._names:
            img = load_image(source)
            if fn is not None:
                img = fn(img)
            self._names[key] = self.store.add(clean_png(img, self.max_side))
            self.written.append(self._names[key])
        return self._names[key]

    def rollback(self) -> None:
        self.store.remove(self.written)
        self.written.clear()
        self._names.clear()
