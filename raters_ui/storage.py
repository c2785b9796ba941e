"""The study's own image store: the only files the rater app ever serves.

On import every image is decoded and re-encoded as a plain RGB PNG under an opaque random name,
so nothing that could identify a system reaches the page:

* not the original path or file name, nor metadata inside the file (generators often write
  prompts, seeds or model names into PNG text chunks, and Streamlit serves PNG bytes as they are);
* not the image size: every image of a study is stored at one common size (:func:`common_size`),
  resampled with Pillow's Lanczos filter (:data:`RESAMPLE`), so a 64 px system and a 96 px system
  cannot be told apart by the images' natural width;
* not the file size: PNG compresses a blurry image better than a sharp one, so after the import
  every file is padded to the same byte length with one private ancillary chunk (:data:`PAD_CHUNK`,
  random bytes, so no transport compression can shrink it back; browsers and Pillow skip it).
  Every file is ``IHDR, IDAT, paDd, IEND``: one format, one chunk layout, one length. (The
  IDAT length inside still follows the image's detail, which the rater sees anyway.)

Streamlit sends these bytes unchanged (``st.image`` with ``output_format="PNG"``) as
``/media/<content hash>.png`` unless an image is wider than its 1460 px content width, so the
stored side is capped at :data:`MAX_SIDE`.
"""

from __future__ import annotations

import io
import re
import secrets
import struct
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from harness.errors import UserError
from harness.formats.files import atomic_write_bytes, image_size, open_rgb

NAME_RE = re.compile(r"^[0-9a-f]{32}\.png$")
RESAMPLE = Image.Resampling.LANCZOS  # the one filter used to bring every image to the common size
RESAMPLE_NAME = "Lanczos (Pillow LANCZOS, a = 3)"
PAD_CHUNK = b"paDd"  # ancillary, private, safe-to-copy (PNG 1.2, 3.3): decoders skip it
MIN_SIDE, MAX_SIDE = 16, 1440  # wider images would be re-encoded by Streamlit, undoing the padding


@dataclass(frozen=True)
class SizePlan:
    """The one size every stored image gets, and what it took to get there."""

    width: int
    height: int
    native: dict[tuple[int, int], int]  # native (width, height) -> number of images

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)

    def describe(self) -> str:
        natives = ", ".join(f"{w}x{h} ({n})" for (w, h), n in sorted(self.native.items()))
        return (
            f"every image stored at {self.width}x{self.height} px, resampled with {RESAMPLE_NAME} "
            f"where needed (native sizes: {natives})"
        )


def common_size(
    sizes: Iterable[tuple[int, int]], max_side: int | None = 512, image_size: int | None = None
) -> SizePlan:
    """The common stored size of a study's images.

    The aspect ratio is that of the most frequent native size (the larger one on a tie); images of
    another aspect ratio are centre-cropped to it. The longer side is ``image_size`` if given,
    else the largest native longer side, capped at ``max_side`` (None: at :data:`MAX_SIDE`); so by default
    nothing is upsampled beyond the best system's own resolution, and nothing exceeds ``max_side``.
    """
    native = Counter(sizes)
    if not native:
        raise UserError("the study has no images")
    (w0, h0), _ = max(native.items(), key=lambda kv: (kv[1], kv[0][0] * kv[0][1]))
    side = image_size if image_size is not None else max(max(w, h) for w, h in native)
    if image_size is None:
        side = min(side, max_side if max_side is not None else MAX_SIDE)
    if not MIN_SIDE <= side <= MAX_SIDE:
        raise UserError(f"the stored image side must be in [{MIN_SIDE}, {MAX_SIDE}] px, got {side}")
    if w0 >= h0:
        w, h = side, max(1, round(side * h0 / w0))
    else:
        w, h = max(1, round(side * w0 / h0)), side
    return SizePlan(w, h, dict(native))


def fit(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``image`` centre-cropped to the aspect ratio of ``size`` and resampled to it (Lanczos)."""
    img = image.convert("RGB")
    if img.size == size:
        return img
    w, h = img.size
    target = size[0] / size[1]
    if abs(w / h - target) > 1e-3:  # crop the longer dimension symmetrically
        if w / h > target:
            cw = max(1, round(h * target))
            img = img.crop(((w - cw) // 2, 0, (w - cw) // 2 + cw, h))
        else:
            ch = max(1, round(w / target))
            img = img.crop((0, (h - ch) // 2, w, (h - ch) // 2 + ch))
    return img.resize(size, RESAMPLE)


def clean_png(image: Image.Image, size: tuple[int, int] | None = None) -> bytes:
    """RGB PNG bytes with no metadata, at ``size`` if given (see :func:`fit`)."""
    img = fit(image, size) if size is not None else image.convert("RGB")
    # A fresh image carries no info dict, so no text chunks, ICC profile or EXIF are written.
    fresh = Image.new("RGB", img.size)
    fresh.paste(img)
    buf = io.BytesIO()
    fresh.save(buf, format="PNG", optimize=False)
    return single_idat(buf.getvalue())


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def single_idat(data: bytes) -> bytes:
    """The PNG with its image data in one IDAT chunk (Pillow splits it every 64 KiB, so the number
    of chunks would follow the compressed size)."""
    chunks, pos, idat = [], 8, []
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IDAT":
            idat.append(body)
        elif kind in (b"IHDR", b"IEND"):
            chunks.append((kind, body))
        else:
            raise ValueError(f"unexpected PNG chunk {kind!r}")
        pos += 12 + length
    (ihdr, hbody), (iend, ebody) = chunks
    return data[:8] + _chunk(ihdr, hbody) + _chunk(b"IDAT", b"".join(idat)) + _chunk(iend, ebody)


def png_chunks(data: bytes) -> list[tuple[bytes, int]]:
    """(type, data length) of every chunk of a PNG file, in order."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    out, pos = [], 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        out.append((kind, length))
        pos += 12 + length
    return out


def pad_png(data: bytes, total: int) -> bytes:
    """``data`` with a :data:`PAD_CHUNK` of random bytes before IEND, ``total`` bytes long in all."""
    extra = total - len(data) - 12  # a chunk costs 12 bytes besides its data
    if extra < 0:
        raise ValueError(f"cannot pad {len(data)} bytes to {total}")
    iend = len(data) - 12
    if data[iend + 4 : iend + 8] != b"IEND":
        raise ValueError("PNG data does not end with IEND")
    return data[:iend] + _chunk(PAD_CHUNK, secrets.token_bytes(extra)) + data[iend:]


def load_image(path: str | Path) -> Image.Image:
    """Open and fully decode an image file; a missing or unreadable file is a UserError."""
    return open_rgb(path)


def native_sizes(paths: Iterable[str]) -> dict[str, tuple[int, int]]:
    """(width, height) of every image file, read from its header (the pixels are not decoded)."""
    return {p: image_size(p) for p in dict.fromkeys(paths)}


class ImageStore:
    """A folder of opaque ``<32 hex>.png`` files; names are validated before any read."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def add(self, data: bytes) -> str:
        name = secrets.token_hex(16) + ".png"
        self.write(name, data)
        return name

    def write(self, name: str, data: bytes) -> None:
        try:
            atomic_write_bytes(self.path(name), data)
        except OSError as err:
            raise UserError(f"cannot write to the image store {self.root}: {err.strerror or err}") from None

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
    """Imports images once each (keyed by source and transform) at one common size, can pad them
    all to one byte length (:meth:`equalize`), and can undo a failed import."""

    def __init__(self, store: ImageStore, size: tuple[int, int] | None) -> None:
        self.store = store
        self.size = size
        self.written: list[str] = []
        self._names: dict[tuple[str, str], str] = {}
        self._raw: dict[str, int] = {}  # name -> length as encoded
        self._current: dict[str, int] = {}  # name -> length on disk (after padding)

    def add_file(self, source: str, transform: str = "", fn: Callable[[Image.Image], Image.Image] | None = None) -> str:
        """Store ``fn(image at source)`` (or the image itself) and return its opaque name."""
        key = (source, transform)
        if key not in self._names:
            img = load_image(source)
            if fn is not None:
                img = fn(img)
            data = clean_png(img, self.size)
            name = self.store.add(data)
            self._names[key] = name
            self._raw[name] = self._current[name] = len(data)
            self.written.append(name)
        return self._names[key]

    def equalize(self) -> int:
        """Pad every image written so far to one byte length (the largest + a 12-byte chunk), so
        file sizes say nothing about the system; returns that length. Idempotent."""
        if not self._raw:
            return 0
        total = max(self._raw.values()) + 12
        for name, raw in self._raw.items():
            if self._current[name] != total:
                data = self.store.read(name)
                if len(data) != raw:  # padded to an earlier length: drop that chunk first
                    data = data[: raw - 12] + data[-12:]
                self.store.write(name, pad_png(data, total))
                self._current[name] = total
        return total

    def rollback(self) -> None:
        self.store.remove(self.written)
        self.written.clear()
        self._names.clear()
        self._raw.clear()
        self._current.clear()
