"""Preference-model scores (ImageReward, HPS v2 / v2.1, PickScore) per image, and the adapter interface for more.

A preference model is a network trained on human choices between images of one prompt; its score of an
(image, prompt) pair is higher for the image people would prefer. Each is a per-image metric, so the
harness reports it per prompt category and overall with an interval, like CLIP score:

* ``pickscore`` (Kirstain et al. 2023): a transformers ``CLIPModel`` (``yuvalkirstain/PickScore_v1``) with
  the LAION CLIP-ViT-H/14 processor; score = exp(logit_scale) · cos(image, text) (≈ 18–23);
* ``hpsv2`` / ``hpsv21`` (Wu et al. 2023): an open_clip ViT-H/14 with the HPS checkpoint
  (``xswu/HPSv2``: ``HPS_v2_compressed.pt`` / ``HPS_v2.1_compressed.pt``); score = cos(image, text), as
  ``hpsv2.score`` returns it (its leaderboard prints it × 100);
* ``imagereward`` (Xu et al. 2023): BLIP ViT-L + a cross-attending BERT + an MLP head (``THUDM/ImageReward``),
  z-scored as published (:mod:`harness.metrics.extractors.imagereward`).

Weights come from a local path or the Hugging Face cache only; a missing one fails in ``prepare``, before
any image is generated, with the command that fetches it. Each records the sha256 of its weights.

Adding a model: write a :class:`PreferenceModel` (``score_batch`` over PIL images and prompts, an
``identity``), a loader ``(env, options) -> model`` and register both::

    register_preference_model("mymodel", load_mymodel)
    register_metric()(preference_metric("mymodel", label="MyModel", max_worse=0.01))

``options`` is the config block of the same name (``mymodel: {checkpoint: ..., batch_size: 8}``).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from harness.errors import MissingWeightsError, UserError
from harness.formats.files import open_rgb
from harness.metrics.base import ImageSet, Metric, MetricEnv, Output, Scores
from harness.registry import Registry


class PreferenceModel(ABC):
    """Scores (image, prompt) pairs: higher means people would prefer the image for the prompt."""

    #: what was loaded (model, weights sha256, ...): results.json → extractors
    identity: dict[str, Any]

    @abstractmethod
    def score_batch(self, images: list[Any], prompts: list[str]) -> np.ndarray:
        """One score per (PIL RGB image, prompt) pair."""

    def truncated(self, prompts: Sequence[str]) -> list[bool]:
        """Which prompts the model's tokenizer cuts (scored on their start only)."""
        return [False] * len(prompts)

    def score(
        self,
        paths: Sequence[Path],
        prompts: Sequence[str],
        batch_size: int = 8,
        progress: bool = False,
        desc: str = "preference",
    ) -> np.ndarray:
        from tqdm import tqdm

        if len(paths) != len(prompts):
            raise UserError(f"{len(paths)} images but {len(prompts)} prompts; a preference model pairs them")
        if int(batch_size) < 1:
            raise UserError(f"batch_size must be >= 1, got {batch_size}")
        parts = []
        with tqdm(total=len(paths), unit="img", desc=desc, disable=not progress, dynamic_ncols=True) as bar:
            for s in range(0, len(paths), int(batch_size)):
                chunk = list(paths[s : s + int(batch_size)])
                parts.append(
                    np.asarray(
                        self.score_batch([open_rgb(p) for p in chunk], list(prompts[s : s + int(batch_size)])),
                        dtype=np.float64,
                    )
                )
                bar.update(len(chunk))
        return np.concatenate(parts) if parts else np.zeros(0)


PreferenceLoader = Callable[[MetricEnv, dict[str, Any]], PreferenceModel]

PREFERENCE_MODELS: Registry[PreferenceLoader] = Registry(
    "preference model",
    {
        "pickscore": "harness.metrics.extractors.preference_models:load_pickscore",
        "hpsv2": "harness.metrics.extractors.preference_models:load_hpsv2",
        "hpsv21": "harness.metrics.extractors.preference_models:load_hpsv21",
        "imagereward": "harness.metrics.extractors.imagereward:load_imagereward",
    },
    check=callable,
    expected="a loader function (env, options) -> PreferenceModel",
)


def register_preference_model(name: str, loader: PreferenceLoader) -> PreferenceLoader:
    """Make ``loader(env, options) -> PreferenceModel`` available under ``name``."""
    PREFERENCE_MODELS.register(name, loader)
    return loader


def load_preference_model(name: str, env: MetricEnv, options: dict[str, Any]) -> PreferenceModel:
    model = PREFERENCE_MODELS[name](env, options)
    if not isinstance(model, PreferenceModel):
        raise UserError(f"preference model {name!r} did not load a harness.metrics.preference.PreferenceModel")
    return model


def block_options(env: MetricEnv, block: str) -> dict[str, Any]:
    """The config block ``block`` as a plain dict (empty when absent)."""
    from omegaconf import DictConfig, OmegaConf

    node = env.cfg.get(block) if env.cfg is not None else None
    if node is None:
        return {}
    return dict(OmegaConf.to_container(node, resolve=True)) if isinstance(node, DictConfig) else dict(node)


class PreferenceMetric(Metric):
    """A preference model's score per image (subclasses fix the model: :func:`preference_metric`)."""

    model_name: ClassVar[str] = ""
    needs = frozenset({"images", "prompts"})

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.options = dict(options or {})
        self.model: PreferenceModel | None = None

    @classmethod
    def from_config(cls, env: MetricEnv) -> PreferenceMetric:
        return cls(block_options(env, cls.config_key or cls.model_name))

    def prepare(self, env: MetricEnv) -> None:
        key = ("preference", self.model_name, json.dumps(self.options, sort_keys=True, default=str))
        try:
            self.model = env.shared(key, lambda: load_preference_model(self.model_name, env, self.options))
        except MissingWeightsError as err:
            raise MissingWeightsError(
                f"{err} (or {self.config_key}.enabled=false to run without {self.outputs[0].label})"
            ) from None

    def identity(self) -> dict[str, Any]:
        return dict(self.model.identity) if self.model is not None else {}

    def compute(self, images: ImageSet, env: MetricEnv) -> Scores:
        if self.model is None:
            self.prepare(env)
        out = self.outputs[0].name
        values = self.model.score(
            images.paths(),
            images.prompts,
            int(self.options.get("batch_size", 8)),
            env.progress,
            desc=self.outputs[0].label or out,
        )
        keys = [r.sample_key for r in images.records]
        cut = self.model.truncated(images.prompts)
        details = {k: {f"{out}_truncated": True} for k, t in zip(keys, cut) if t}
        return Scores(
            per_image={out: {k: float(v) for k, v in zip(keys, values)}},
            per_image_details=details,
            details={out: {"truncated_images": int(sum(cut))}},
        )


def preference_metric(
    name: str,
    *,
    label: str,
    max_worse: float,
    output: str | None = None,
    version: str | None = None,
    kind: str = "continuous",
    bounds: tuple[float, float] | None = None,
) -> type[PreferenceMetric]:
    """A metric class for the preference model registered as ``name`` (options: config block ``name``);
    ``max_worse`` is the gate's default tolerated regression in the model's own score units."""
    out = Output(output or name, higher_is_better=True, kind=kind, bounds=bounds, label=label, max_worse=max_worse)
    attrs = {
        "name": name,
        "model_name": name,
        "config_key": name,
        "outputs": (out,),
        "version": version or f"imagen-bench-{name}/1",
        "__doc__": f"{label} per image (preference model).",
    }
    return type(f"Preference_{name}", (PreferenceMetric,), attrs)


# Default tolerances, each a small fraction of the gap between published systems in the model's own units:
# PickScore (100 · logit scale, systems ~19–23) 0.1; HPS v2/v2.1 (cosine, systems ~0.25–0.30) 0.002;
# ImageReward (standardised reward, systems ~ −0.5–1.0) 0.05.
PickScore = preference_metric("pickscore", label="PickScore", max_worse=0.1)
Hpsv2 = preference_metric("hpsv2", label="HPS v2", max_worse=0.002)
Hpsv21 = preference_metric("hpsv21", label="HPS v2.1", max_worse=0.002)
ImageReward = preference_metric("imagereward", label="ImageReward", max_worse=0.05)
