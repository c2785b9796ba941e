"""File helpers every layer shares: atomic writes and reading an image as RGB.

They live in the model layer because it needs them itself (checkpoints, training state, the text
embedding cache) and imports nothing of ours; ``harness.formats.files`` re-exports them for the
parts above. Torch-free, so the rater UI may use them through that module.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from imagen.errors import UserError

if TYPE_CHECKING:
    from PIL import Image


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary name beside ``path`` to write to; on success it is fsynced and renamed onto ``path``.

    After kill -9 anywhere, ``path`` holds either its old content or all of the new one, never a
    torn file; a failed block removes the temporary file and leaves ``path`` untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as f:  # the writer may not have synced (safetensors, PIL do not)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` so that ``path`` either holds all of it or does not change (kill -9 safe)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _unreadable(label: str, err: BaseException) -> UserError:
    detail = " ".join(str(err).split())[:200]
    return UserError(f"cannot read image: {label} is not a readable image ({type(err).__name__}: {detail})")


def open_rgb(path: str | Path, label: str | None = None) -> Image.Image:  # PIL is imported lazily
    """The fully decoded image at ``path`` as RGB, or a :class:`UserError` naming it (``label``, else the path).

    The image is decoded here (not lazily), so a truncated file fails now with one line rather
    than later inside a metric.
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            return im.convert("RGB")
    except FileNotFoundError:
        raise UserError(f"cannot read image: {label or path} not found") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise _unreadable(label or str(path), err) from None


def image_size(path: str | Path, label: str | None = None) -> tuple[int, int]:
    """(width, height) of the image at ``path`` after checking its structure, without decoding pixels.

    Cheap enough to run over a whole folder before any work starts; a file that is not an image,
    or whose structure is broken, is a :class:`UserError` naming it.
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            size = im.size
            im.verify()
        return size
    except FileNotFoundError:
        raise UserError(f"cannot read image: {label or path} not found") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise _unreadable(label or str(path), err) from None
