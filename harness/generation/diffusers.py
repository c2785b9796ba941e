"""Any diffusers pipeline as a generator: ``imagen-bench eval generator=diffusers generator.path=<folder|repo>``.

DeepFloyd IF (Imagen's open reproduction), Stable Diffusion, PixArt or any ``DiffusionPipeline`` is loaded
from a local folder (``save_pretrained`` layout) or the Hugging Face cache — never downloaded: a repo that
is not cached is the one-line ``hf download`` instruction. A cascade is a list of pipelines: the first
turns prompts into images, each of ``generator.super_resolution`` takes the previous stage's images
(``image=``) and the prompts (DeepFloyd IF: ``generator.path=DeepFloyd/IF-I-XL-v1.0
generator.super_resolution=[{path: DeepFloyd/IF-II-L-v1.0}]``); every stage's images are kept, like our
cascade's, and ``stop_at`` ends it early.

Seeds: each (prompt, seed) gets its own ``torch.Generator('cpu').manual_seed(seed)`` at every stage, so an
image is a function of its prompt and seed (on CPU noise, so the same on any device). With
``generator.per_sample: true`` (default) each image is one pipeline call — batch-independent to the bit;
``false`` batches ``batch_size`` images per call (faster on a GPU; recorded as "groups of N").

Between stages the images pass as the uint8 images that are saved (a stage's output is what is scored
and what the next stage sees); IF's own example passes unquantised tensors, a difference of < 1/255.

``describe()`` records everything an image depends on, for the run fingerprint: each pipeline's class,
every component's class and the sha256 of its weights and config files, the scheduler's class and
config, the call's settings (steps, guidance, size, negative prompt, extra arguments), the dtype, the
grouping and the library versions. Folder paths are recorded under ``path`` (not part of the fingerprint).
"""

from __future__ import annotations

import inspect
import json
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.errors import UserError
from harness.metrics.extractors.hf_local import resolve_model_folder
from imagen.validation import positive_int

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_WEIGHT_SUFFIXES = (".safetensors", ".bin")
_CALL_KEYS = ("num_inference_steps", "guidance_scale", "height", "width", "negative_prompt")


@dataclass
class PipelineStage:
    """One pipeline of the cascade and how it is called."""

    name: str
    source: str  # repo id, or "local folder"
    folder: Path
    pipe: Any
    call: dict[str, Any]  # keyword arguments set by the config (not None)
    extra: dict[str, Any] = field(default_factory=dict)

    def kwargs(self) -> dict[str, Any]:
        return {**{k: v for k, v in self.call.items() if v is not None}, **self.extra}

    def effective_call(self) -> dict[str, Any]:
        """The call's settings with the pipeline's own defaults filled in where the config left them out."""
        params = inspect.signature(self.pipe.__call__).parameters
        out = {
            k: (
                self.call.get(k)
                if self.call.get(k) is not None
                else (params[k].default if k in params and params[k].default is not inspect.Parameter.empty else None)
            )
            for k in _CALL_KEYS
            if k in params or self.call.get(k) is not None
        }
        return {**out, "extra": dict(self.extra)}


def _weights_and_files(folder: Path, variant: str | None) -> tuple[list[Path], list[Path]]:
    """(weight files the loader reads, the other files) of one component folder."""
    weights, other = [], []
    for p in sorted(q for q in folder.iterdir() if q.is_file()):
        if p.suffix in _WEIGHT_SUFFIXES:
            parts = p.name.split(".")
            has_variant = len(parts) > 2 and not parts[-2].isdigit() and "-of-" not in parts[-2]
            if (variant is None and not has_variant) or (variant is not None and f".{variant}." in p.name):
                weights.append(p)
        elif not p.name.startswith("."):
            other.append(p)
    safetensors = [w for w in weights if w.suffix == ".safetensors"]
    return (safetensors or weights), other


def component_identity(folder: Path, pipe: Any, variant: str | None, cache_dir: Any) -> dict[str, Any]:
    """Per component: class, library and the sha256 of its weights and of its config/tokenizer files."""
    from imagen.hashing import files_sha256

    out: dict[str, Any] = {}
    for name, comp in sorted(pipe.components.items()):
        entry: dict[str, Any] = {"class": None if comp is None else type(comp).__name__}
        sub = folder / name
        if comp is not None and sub.is_dir():
            weights, other = _weights_and_files(sub, variant)
            entry["weights_sha256"] = files_sha256(weights, cache_dir) if weights else None
            entry["files_sha256"] = files_sha256(other, cache_dir) if other else None
        out[name] = entry
    out["model_index_sha256"] = files_sha256([folder / "model_index.json"], cache_dir)
    return out


def _plain_config(config: Any) -> dict[str, Any]:
    return json.loads(json.dumps({k: v for k, v in dict(config).items() if not k.startswith("_")}, default=str))


def load_pipeline(
    path: str,
    *,
    dtype: str = "float32",
    device: str = "cpu",
    variant: str | None = None,
    scheduler: str | None = None,
    safety_checker: bool = True,
) -> tuple[Any, Path, str]:
    """(pipeline on ``device``, its folder, its source) from a local folder or the HF cache (never the hub)."""
    import diffusers

    if dtype not in DTYPES:
        raise UserError(f"generator.dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    folder = resolve_model_folder(str(path), "diffusers pipeline", "generator.path", marker="model_index.json")
    source = "local folder" if Path(str(path)).expanduser().is_dir() else str(path)
    extra = {} if safety_checker else {"safety_checker": None, "requires_safety_checker": False}
    try:
        with warnings.catch_warnings():  # newer diffusers call it `dtype`; `torch_dtype` works in every version
            warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
            pipe = diffusers.DiffusionPipeline.from_pretrained(
                str(folder), torch_dtype=DTYPES[dtype], variant=variant, local_files_only=True, **extra
            )
    except (OSError, ValueError, RuntimeError, TypeError, KeyError) as err:
        raise UserError(f"cannot load the diffusers pipeline in {folder}: {' '.join(str(err).split())[:300]}") from None
    if scheduler:
        cls = getattr(diffusers, str(scheduler), None)
        if cls is None or not hasattr(cls, "from_config"):
            raise UserError(f"generator.scheduler={scheduler!r} is not a diffusers scheduler class")
        pipe.scheduler = cls.from_config(pipe.scheduler.config)
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe, folder, source


def _to_uint8(images: Any) -> torch.Tensor:
    """(B, 3, H, W) uint8 from a pipeline's ``output_type='np'`` images (B, H, W, 3) in [0, 1]."""
    arr = np.asarray(images, dtype=np.float32)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise UserError(f"the pipeline returned images of shape {arr.shape}; expected (B, H, W, 3)")
    return torch.from_numpy(np.round(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)).permute(0, 3, 1, 2).contiguous()


class DiffusersGenerator:
    """A cascade of diffusers pipelines behind the generator contract (``generate(prompts, seeds)``)."""

    def __init__(
        self,
        stages: list[PipelineStage],
        *,
        name: str,
        dtype: str = "float32",
        per_sample: bool = True,
        batch_size: int = 8,
        stop_at: str | None = None,
        variant: str | None = None,
        cache_dir: Any = None,
    ) -> None:
        names = [s.name for s in stages]
        if len(set(names)) != len(names):
            raise UserError(f"generator stage names must differ, got {names}")
        if stop_at is not None and stop_at not in names:
            raise UserError(
                f"stop_at={stop_at!r} is not a stage of this diffusers generator (stages: {', '.join(names)})"
            )
        self.pipelines = stages[: names.index(stop_at) + 1] if stop_at else stages
        self.stages = [s.name for s in self.pipelines]
        self.name, self.dtype, self.per_sample, self.batch_size = name, dtype, per_sample, int(batch_size)
        self.variant, self.cache_dir = variant, cache_dir
        self._identity: dict[str, Any] | None = None

    def _run(self, stage: PipelineStage, prompts: list[str], seeds: list[int], previous: torch.Tensor | None):
        from PIL import Image

        kwargs = stage.kwargs()
        if previous is not None:
            kwargs["image"] = [Image.fromarray(im.permute(1, 2, 0).numpy()) for im in previous]
        gens = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
        with torch.inference_mode():
            out = stage.pipe(prompt=list(prompts), generator=gens, output_type="np", **kwargs)
        return _to_uint8(out.images)

    def _generate_group(self, prompts: list[str], seeds: list[int]) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        previous = None
        for stage in self.pipelines:
            previous = self._run(stage, prompts, seeds, previous)
            out[stage.name] = previous
        return out

    def generate(self, prompts: list[str], seeds: list[int]) -> dict[str, torch.Tensor]:
        step = 1 if self.per_sample else max(1, self.batch_size)
        parts = [
            self._generate_group(list(prompts[i : i + step]), list(seeds[i : i + step]))
            for i in range(0, len(prompts), step)
        ]
        return {s: torch.cat([p[s] for p in parts]) for s in self.stages}

    def describe(self) -> dict[str, Any]:
        if self._identity is None:
            pipelines = {}
            for s in self.pipelines:
                pipelines[s.name] = {
                    "class": type(s.pipe).__name__,
                    "source": s.source,
                    "components": component_identity(s.folder, s.pipe, self.variant, self.cache_dir),
                    "scheduler": {
                        "class": type(s.pipe.scheduler).__name__,
                        "config": _plain_config(s.pipe.scheduler.config),
                    },
                    "call": s.effective_call(),
                }
            self._identity = {
                "kind": "diffusers",
                "model": self.name,
                "stages": self.stages,
                "pipelines": pipelines,
                "dtype": self.dtype,
                "variant": self.variant,
                "grouping": "per-sample" if self.per_sample else f"groups of {self.batch_size}",
                "noise": "torch.Generator('cpu').manual_seed(seed) per image and stage",
                "versions": {"diffusers": metadata.version("diffusers"), "torch": torch.__version__},
                "path": {s.name: str(s.folder) for s in self.pipelines},
            }
        return dict(self._identity)


def caption_cleaning_available() -> bool:
    """Whether DeepFloyd IF's default caption cleaning can run (it needs bs4 and ftfy; without them IF
    silently falls back to no cleaning, so the choice is made explicit and recorded instead)."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("bs4", "ftfy"))


def _options(node: Any) -> dict[str, Any]:
    from omegaconf import DictConfig, OmegaConf

    return dict(OmegaConf.to_container(node, resolve=True)) if isinstance(node, DictConfig) else dict(node or {})


def _stage_call(opts: dict[str, Any], guidance_override: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    steps = opts.get("steps")
    if steps is not None:
        positive_int(steps, "generator steps")
    guidance = guidance_override if guidance_override is not None else opts.get("guidance_scale")
    call = {
        "num_inference_steps": steps,
        "guidance_scale": None if guidance is None else float(guidance),
        "height": opts.get("height"),
        "width": opts.get("width"),
        "negative_prompt": opts.get("negative_prompt"),
    }
    extra = dict(opts.get("extra") or {})
    clash = set(extra) & {"prompt", "generator", "output_type", "image", *call}
    if clash:
        raise UserError(f"generator extra arguments may not set {sorted(clash)} (use their own keys)")
    return call, extra


def check_diffusers_config(cfg: Any) -> None:
    """Values of ``generator`` checked before any work (one line on the first bad one)."""
    from omegaconf import OmegaConf

    node = cfg.generator
    if OmegaConf.is_missing(node, "path") or not str(node.get("path") or "").strip():
        raise UserError("generator=diffusers needs generator.path=<pipeline folder or HF repo id (cached)>")
    if str(node.get("dtype", "float32")) not in DTYPES:
        raise UserError(f"generator.dtype must be one of {', '.join(DTYPES)}, got {node.get('dtype')!r}")
    for k, sr in enumerate(node.get("super_resolution") or []):
        if not isinstance(_options(sr).get("path"), str):
            raise UserError(f"generator.super_resolution[{k}] needs a path (pipeline folder or cached repo id)")
    positive_int(cfg.get("batch_size", 8), "batch_size")


def build_diffusers_generator(cfg: Any, ctx: Any) -> DiffusersGenerator:
    """The generator named by ``cfg.generator`` (conf/generator/diffusers.yaml)."""
    check_diffusers_config(cfg)
    g = _options(cfg.generator)
    guidance = cfg.get("guidance") or {}
    specs = [{**g, "name": None}] + [_options(sr) for sr in g.get("super_resolution") or []]
    names = list(g.get("stage_names") or ["base"] + [f"sr{k}" for k in range(1, len(specs))])
    if len(names) != len(specs):
        raise UserError(f"generator.stage_names lists {len(names)} names for {len(specs)} pipelines")
    from imagen.devices import resolve_device

    device = str(getattr(ctx, "device", None) or resolve_device(cfg.get("device", "auto")))
    stages = []
    for k, (name, spec) in enumerate(zip(names, specs)):
        pipe, folder, source = load_pipeline(
            str(spec["path"]),
            dtype=str(g.get("dtype", "float32")),
            device=device,
            variant=g.get("variant"),
            scheduler=spec.get("scheduler"),
            safety_checker=bool(g.get("safety_checker", True)),
        )
        call, extra = _stage_call(spec, guidance.get("base") if k == 0 else guidance.get("sr"))
        if "clean_caption" in inspect.signature(pipe.__call__).parameters and "clean_caption" not in extra:
            extra["clean_caption"] = caption_cleaning_available()  # explicit, so the fingerprint says which
        stages.append(PipelineStage(str(name), source, folder, pipe, call, extra))
    label = g.get("model") or Path(str(g["path"]).rstrip("/")).name
    return DiffusersGenerator(
        stages,
        name=str(label),
        dtype=str(g.get("dtype", "float32")),
        per_sample=bool(g.get("per_sample", True)),
        batch_size=int(cfg.get("batch_size", 8)),
        stop_at=cfg.get("stop_at"),
        variant=g.get("variant"),
        cache_dir=cfg.paths.cache_dir if cfg.get("paths") else None,
    )
