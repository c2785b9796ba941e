"""File helpers for every part above the model: atomic writes, images, content hashes.

The atomic write, the image reader and the file hash are the model layer's own (``imagen.files``,
``imagen.hashing``: it needs them for checkpoints and training data and imports nothing of ours),
re-exported here so that one copy exists; all three are torch-free. ``prompts_sha256`` is the one
prompt-list hash every benchmark records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from imagen.files import atomic_path, atomic_write_bytes, atomic_write_text, image_size, open_rgb
from imagen.hashing import sha256_file

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "image_size",
    "open_rgb",
    "prompts_sha256",
    "sha256_bytes",
    "sha256_file",
]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def prompts_sha256(items: Iterable[tuple[str, str]]) -> str:
    """Digest of a prompt list as (prompt_id, text) pairs in order: equal iff ids, texts and order are.

    Every benchmark records this one hash, so two runs can be checked for using the same prompts
    whatever suite or protocol produced them.
    """
    h = hashlib.sha256()
    for pid, text in items:
        h.update(f"{pid}\t{text}".encode())
        h.update(b"\0")
    return h.hexdigest()
