"""Offline text-embedding cache.

The text encoder is frozen (Imagen §2.1), so a prompt's embedding depends only on the encoder
identity (name + weights digest), the maximum length and the text. Entries live under
``<cache_dir>/text-emb/<key of encoder and length>/<h[:2]>/<h>.safetensors`` with h = sha256
of the text, holding only the valid tokens (the rest is zero padding), in the dtype the
encoder ran in, so a read-back is bit-identical to a fresh encode. Evaluating a second
checkpoint with the same encoder re-encodes nothing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Protocol

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from imagen.files import atomic_path
from imagen.hashing import default_cache_dir


class TextEncoder(Protocol):
    @property
    def identity(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def max_length(self) -> int: ...

    def token_counts(self, texts: list[str]) -> list[int] | None: ...

    def encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]: ...


class EmbeddingCache:
    """Embeddings of one encoder at one maximum length."""

    def __init__(
        self,
        identity: str,
        max_length: int,
        store_dtype: torch.dtype = torch.float32,
        cache_dir: str | Path | None = None,
    ) -> None:
        self.identity, self.max_length, self.store_dtype = identity, max_length, store_dtype
        key = hashlib.sha256(f"{identity}|{max_length}".encode()).hexdigest()[:20]
        self.root = Path(cache_dir or default_cache_dir()) / "text-emb" / key
        self.root.mkdir(parents=True, exist_ok=True)
        info = self.root / "encoder.json"
        if not info.exists():
            info.write_text(json.dumps({"identity": identity, "max_length": max_length}))

    def _path(self, text: str) -> Path:
        h = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return self.root / h[:2] / f"{h}.safetensors"

    def get(self, text: str) -> torch.Tensor | None:
        """The (n_valid, D) float32 embedding, or None when absent or unreadable."""
        path = self._path(text)
        if not path.exists():
            return None
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                emb = f.get_tensor("emb")
        except (SafetensorError, OSError, ValueError, KeyError):
            return None  # a torn or corrupt entry is recomputed, never trusted
        if meta.get("text") != text:
            return None  # a hash collision or a foreign file: recompute
        return emb.float()

    def put(self, text: str, emb: torch.Tensor) -> None:
        path = self._path(text)
        with atomic_path(path) as tmp:
            save_file(
                {"emb": emb.to(self.store_dtype).contiguous()},
                str(tmp),
                metadata={"text": text, "identity": self.identity},
            )


class CachedTextEncoder:
    """A text encoder that reads and fills an :class:`EmbeddingCache`; counts hits and misses."""

    def __init__(self, encoder: TextEncoder, cache: EmbeddingCache | None) -> None:
        self.encoder, self.cache = encoder, cache
        self.hits = self.misses = 0

    @property
    def identity(self) -> str:
        return self.encoder.identity

    @property
    def dim(self) -> int:
        return self.encoder.dim

    @property
    def max_length(self) -> int:
        return self.encoder.max_length

    def token_counts(self, texts: list[str]) -> list[int] | None:
        return self.encoder.token_counts(texts)

    def encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cache is None:
            return self.encoder.encode(texts)
        found = {t: self.cache.get(t) for t in dict.fromkeys(texts)}
        todo = [t for t, e in found.items() if e is None]
        self.hits += len(found) - len(todo)
        self.misses += len(todo)
        if todo:
            emb, mask = self.encoder.encode(todo)
            for t, e, m in zip(todo, emb, mask):
                n = int(m.sum())
                if not bool(m[:n].all()):
                    raise ValueError("the embedding cache assumes right-padded token masks")
                valid = e[:n].to(self.cache.store_dtype).float()
                self.cache.put(t, valid)
                found[t] = valid
        return self._pad([found[t] for t in texts])  # type: ignore[misc]

    def _pad(self, parts: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        n, length = len(parts), self.max_length
        emb = torch.zeros(n, length, self.dim)
        mask = torch.zeros(n, length, dtype=torch.bool)
        for i, e in enumerate(parts):
            emb[i, : e.shape[0]] = e
            mask[i, : e.shape[0]] = True
        return emb, mask
