"""Weights from a local folder or the Hugging Face cache, never the hub: the shared resolution rules.

Every loader of pretrained weights (DINOv2, preference models, diffusers pipelines) takes either a local
path or a hub repo id. A repo id is looked up in the local Hugging Face cache only
(``huggingface_hub.try_to_load_from_cache`` reads the cache folder and never the network); what is not
there is a :class:`MissingWeightsError` whose one line says what to fetch (``hf download <repo>``) and
which config key points at a local copy instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.errors import MissingWeightsError

TRANSFORMERS_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


def _looks_like_path(value: str) -> bool:
    return value.startswith((".", "/", "~")) or value.count("/") != 1  # a repo id is exactly "org/name"


def cached_file(repo: str, filename: str, hf_cache_dir: str | None = None) -> Path | None:
    """The cached copy of ``repo``/``filename``, or None (the network is never used)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, filename, cache_dir=hf_cache_dir)
    return Path(found) if isinstance(found, str) else None


def resolve_model_folder(
    model: str,
    what: str,
    config_key: str,
    *,
    marker: str = "config.json",
    hf_cache_dir: str | None = None,
    fetch: str | None = None,
) -> Path:
    """A model folder: ``model`` itself when it is a folder, else the cached snapshot of the repo id ``model``
    (the folder holding its ``marker`` file). ``fetch`` overrides the suggested download command."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if _looks_like_path(model):
        raise MissingWeightsError(f"{what}: folder {model} does not exist; pass {config_key}=<existing folder>")
    found = cached_file(model, marker, hf_cache_dir)
    if found is None:
        raise MissingWeightsError(
            f"{what} {model} is not in the Hugging Face cache; with network access run "
            f"`{fetch or f'hf download {model}'}`, or pass {config_key}=/path/to/a/local/copy"
        )
    return found.parent


def resolve_model_file(
    value: str | None, repo: str, filename: str, what: str, config_key: str, hf_cache_dir: str | None = None
) -> Path:
    """A weights file: ``value`` when given (a file, or a folder holding ``filename``), else the cached
    ``repo``/``filename``."""
    if value:
        path = Path(str(value)).expanduser()
        if path.is_dir():
            path = path / filename
        if not path.is_file():
            raise MissingWeightsError(f"{what}: {path} does not exist; pass {config_key}=/path/to/{filename}")
        return path
    found = cached_file(repo, filename, hf_cache_dir)
    if found is None:
        raise MissingWeightsError(
            f"{what} ({repo}/{filename}) is not in the Hugging Face cache; with network "
            f"access run `hf download {repo} {filename}`, or pass {config_key}=/path/to/{filename}"
        )
    return found


def weight_files(folder: Path, what: str, names: Sequence[str] = TRANSFORMERS_WEIGHTS) -> list[Path]:
    """The weights a loader would read from ``folder`` (safetensors first, sharded or not)."""
    for name in names:
        stem, ext = name.rsplit(".", 1)
        files = sorted(f for f in folder.glob(f"{stem}*.{ext}") if f.is_file())
        if files:
            return files
    raise MissingWeightsError(
        f"{what}: folder {folder} has a config but no weights ({' or '.join(names)}); fetch the weights into it"
    )
