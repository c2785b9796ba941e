"""Feature spaces by name: the image embeddings that set-level metrics compare (FID, FD-DINOv2, CMMD, PRDC).

A feature space turns image files into one vector per image and says exactly what produced them
(``identity``, a content ``sha256`` of the weights and a ``key`` naming the preprocessing). Built in:

* ``inception`` — the TF-FID Inception pool3 (2048-d), configured by the ``fid`` block and *shared* with
  FID/KID: the same extractor, the same cached reference statistics, the same generated features;
* ``clip`` — open_clip image embeddings, L2-normalised (``clip.model``/``clip.pretrained``, loaded through
  :func:`harness.metrics.extractors.clip.load_clip_scorer`, so CLIP score and a CLIP space load the model once);
* ``dinov2`` — the DINOv2 CLS token (:mod:`harness.metrics.extractors.dinov2`, ``dinov2`` block).

A user adds one with :func:`register_feature_space` (a loader ``env -> FeatureSpace``); every metric that
takes a space by name (PRDC) then runs on it.

Reference features are cached like FID's reference statistics (:class:`ReferenceStatsCache`, keyed by
dataset, split, image-list hash, count, resolution, the space's ``key`` and ``sha256``), so a fixed
reference set is embedded once per machine. Generated features are kept in the run folder
(``features/<key>-<stage>.npz``, with prompt ids and seeds) as FID's are.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import UserError
from harness.formats.files import atomic_write_bytes, open_rgb
from harness.metrics.base import ImageSet, MetricEnv
from harness.metrics.extractors.reference_stats import FeatureStats, ReferenceStatsCache, StatsKey
from harness.metrics.maths.frechet import MIN_SAMPLES, bootstrap_indices
from harness.metrics.maths.intervals import bootstrap_index_sets
from harness.registry import Registry

FEATURES_DIR = "features"
SpaceLoader = Callable[[MetricEnv], "FeatureSpace"]


def digest(obj: Any) -> str:
    """sha256 of the canonical JSON of ``obj`` (what identifies a space in cache keys)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class SpaceFeatures:
    """One image set's features in a space: the (n, d) features and their Gaussian statistics."""

    stats: FeatureStats
    source: str
    cache_hit: bool | None = None
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    key: StatsKey | None = None  # the reference cache key (what a set output records for the gate)

    @property
    def feats(self) -> np.ndarray:
        return np.asarray(self.stats.feats, dtype=np.float64)

    @property
    def count(self) -> int:
        return self.stats.count

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "count": self.count, "cache_hit": self.cache_hit, **self.info}


class FeatureSpace(ABC):
    """An image embedding: files in, (n, d) float features out, with what made them."""

    name: str = "space"  # registry name
    label: str = "space"  # for output labels ("precision (DINOv2)")

    @property
    @abstractmethod
    def key(self) -> str:
        """Preprocessing and network in a file-name-safe word (``dinov2-vitl14-clean``): cache key field."""

    @property
    @abstractmethod
    def sha256(self) -> str:
        """Content hash of the weights (and whatever else changes the features)."""

    @abstractmethod
    def extract(self, files: Sequence[Path], *, desc: str = "", progress: bool = False) -> np.ndarray:
        """(n, d) features of image files, in order."""

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """What produced the features, for ``results.json`` → ``extractors``."""

    def reference_features(self, env: MetricEnv, min_images: int = MIN_SAMPLES) -> SpaceFeatures:
        """The benchmark's reference set in this space, checked and cached (once per evaluation)."""
        return env.shared(("space-reference", self.key, self.sha256), lambda: _reference(self, env, min_images))

    def generated_features(self, images: ImageSet, env: MetricEnv, min_images: int = MIN_SAMPLES) -> SpaceFeatures:
        """One stage's generated images in this space (once per evaluation), saved in the run folder."""
        key = ("space-generated", self.key, self.sha256, str(images.run_dir), images.stage)
        return env.shared(key, lambda: _generated(self, images, env, min_images))


def check_count(n: int, source: str, min_images: int, what: str) -> None:
    need = max(int(min_images), MIN_SAMPLES)
    if n < need:
        raise UserError(f"{source} has {n} image(s); {what} needs at least {need} (set its min_images to change)")


def _reference_listing(env: MetricEnv) -> tuple[str, str]:
    """(resolution label, image-list sha256) of the reference files: read once per evaluation."""
    from harness.metrics.extractors.images import image_list_sha256, image_sizes, resolution_label

    ref = env.reference
    return env.shared(
        ("reference-listing", str(ref.root), len(ref.files)),
        lambda: (resolution_label(image_sizes(ref.files)), image_list_sha256(ref.files, ref.root)),
    )


def _reference(space: FeatureSpace, env: MetricEnv, min_images: int) -> SpaceFeatures:
    ref = env.reference
    if ref is None:
        raise UserError(f"{space.label} features of a reference set are needed, but this benchmark defines none")
    check_count(len(ref.files), str(ref.root), min_images, f"a metric in the {space.name} space")
    resolution, list_hash = _reference_listing(env)
    key = StatsKey(ref.dataset, ref.split, list_hash, len(ref.files), resolution, space.key, space.sha256)
    start = time.perf_counter()

    def compute() -> FeatureStats:
        label = f"{space.label} features ({ref.dataset}{'/' + ref.split if ref.split else ''})"
        return FeatureStats.from_features(space.extract(ref.files, desc=label, progress=env.progress))

    stats, hit = ReferenceStatsCache(env.cache_dir).get_or_compute(key, compute, need_features=True)
    return SpaceFeatures(
        stats,
        str(ref.root),
        hit,
        time.perf_counter() - start,
        {"dataset": ref.dataset, "split": ref.split, "image_list_sha256": list_hash, "resolution": resolution},
        key,
    )


def _generated(space: FeatureSpace, images: ImageSet, env: MetricEnv, min_images: int) -> SpaceFeatures:
    check_count(
        len(images), f"stage {images.stage} of {images.run_dir.name}", min_images, f"a metric in the {space.name} space"
    )
    start = time.perf_counter()
    feats = space.extract(images.paths(), desc=f"{space.label} features ({images.stage})", progress=env.progress)
    stats = FeatureStats.from_features(feats)
    save_features(images, stats.feats, space.key, space.sha256)
    return SpaceFeatures(stats, f"{images.run_dir.name}/{images.stage}", None, time.perf_counter() - start)


def save_features(images: ImageSet, feats: np.ndarray, key: str, sha256: str) -> Path:
    """``features/<key>-<stage>.npz`` in the run folder: features keyed by prompt id and seed."""
    buf = io.BytesIO()
    np.savez(
        buf,
        prompt_id=np.array([r.prompt_id for r in images.records]),
        seed=np.array([r.seed for r in images.records], dtype=np.int64),
        feats=np.asarray(feats, np.float32),
        extractor_sha256=np.array(sha256),
    )
    path = images.run_dir / FEATURES_DIR / f"{key}-{images.stage}.npz"
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_features(run_dir: Path, key: str, stage: str) -> dict[tuple[str, int], np.ndarray]:
    """The features :func:`save_features` kept for one stage: {(prompt_id, seed): row}."""
    path = Path(run_dir) / FEATURES_DIR / f"{key}-{stage}.npz"
    if not path.is_file():
        raise UserError(f"{path} is missing: re-run the evaluation of {Path(run_dir).name} to keep its {key} features")
    with np.load(io.BytesIO(path.read_bytes())) as z:
        return {(str(p), int(s)): f for p, s, f in zip(z["prompt_id"], z["seed"], z["feats"])}


def batched(files: Sequence[Path], batch_size: int) -> list[Sequence[Path]]:
    if int(batch_size) < 1:
        raise UserError(f"batch_size must be >= 1, got {batch_size}")
    return [files[s : s + int(batch_size)] for s in range(0, len(files), int(batch_size))]


# --- resampling the generated set ----------------------------------------------------------------


def generated_resamples(images: ImageSet, n_boot: int, seed: int) -> tuple[list[np.ndarray], str]:
    """Row indices of ``n_boot`` bootstrap resamples of a stage's images, and the resampling unit.

    Prompts are the unit when a prompt has several seeds (its images are not independent), else
    images; seeded, so two runs over the same prompts get the same draws (as FID's interval).
    """
    clusters = [r.prompt_id for r in images.records]
    if len(set(clusters)) < len(clusters):
        return bootstrap_index_sets(clusters, n_boot, seed), "prompts"
    return list(bootstrap_indices(len(clusters), n_boot, seed)), "images"


def percentile_interval(values: np.ndarray, level: float) -> tuple[float | None, float | None]:
    """Percentile interval of finite bootstrap values (None, None when fewer than two are finite)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return None, None
    a = (1 - level) / 2
    low, high = np.quantile(v, [a, 1 - a])
    return float(low), float(high)


# --- built-in spaces -----------------------------------------------------------------------------


class InceptionSpace(FeatureSpace):
    """The TF-FID Inception pool3, sharing FID's extractor, reference statistics and generated features."""

    name, label = "inception", "Inception"

    def __init__(self, env: MetricEnv) -> None:
        from harness.metrics.fid import FidOptions, _extractor

        self.opts = FidOptions.from_env(env)
        self.extractor = _extractor(env, self.opts)

    @property
    def key(self) -> str:
        return f"inception-{self.opts.mode}"

    @property
    def sha256(self) -> str:
        return self.extractor.sha256

    def extract(self, files: Sequence[Path], *, desc: str = "", progress: bool = False) -> np.ndarray:
        from harness.metrics.extractors.images import batches
        from harness.metrics.fid_api import extract_features

        return extract_features(
            batches(list(files), self.opts.mode, self.opts.batch_size, self.opts.num_workers), self.extractor
        )

    def identity(self) -> dict[str, Any]:
        return {**self.extractor.identity(), "mode": self.opts.mode, "features": "pool3 (2048-d)"}

    def reference_features(self, env: MetricEnv, min_images: int = MIN_SAMPLES) -> SpaceFeatures:
        from harness.metrics.fid import reference_stats

        ref = reference_stats(env, self.opts)
        check_count(ref.count, ref.source, min_images, "a metric in the inception space")
        return SpaceFeatures(ref.stats, ref.source, ref.cache_hit, ref.seconds, {"resolution": ref.resolution}, ref.key)

    def generated_features(self, images: ImageSet, env: MetricEnv, min_images: int = MIN_SAMPLES) -> SpaceFeatures:
        from harness.metrics.fid import generated_stats

        gen = generated_stats(images, env, self.opts)  # also saves features/inception-<mode>-<stage>.npz
        check_count(gen.count, gen.source, min_images, "a metric in the inception space")
        return SpaceFeatures(gen.stats, gen.source, None, gen.seconds)


def extract_in_batches(
    files: Sequence[Path],
    batch_size: int,
    embed: Callable[[list[Path]], np.ndarray],
    desc: str,
    progress: bool,
    dim: int,
) -> np.ndarray:
    """``embed`` over ``files`` in batches, under inference mode with a progress bar: (n, d) float64 rows in
    file order ((0, ``dim``) for no files). What every network-backed space shares."""
    import torch
    from tqdm import tqdm

    parts = []
    with (
        tqdm(total=len(files), unit="img", desc=desc, disable=not progress, dynamic_ncols=True) as bar,
        torch.inference_mode(),
    ):
        for chunk in batched(list(files), batch_size):
            parts.append(embed(chunk))
            bar.update(len(chunk))
    return np.concatenate(parts) if parts else np.zeros((0, dim))


class ClipSpace(FeatureSpace):
    """open_clip image embeddings, L2-normalised, from the model's own eval transform."""

    name, label = "clip", "CLIP"

    def __init__(self, scorer: Any, batch_size: int = 32) -> None:
        self.scorer, self.batch_size = scorer, int(batch_size)
        ident = scorer.identity
        model = str(ident.get("model", ""))
        # the architecture is the model name, or the folder's config (whose hash is recorded): never a path
        self._sha = digest(
            {
                "model": None if model.startswith(("local-dir:", "hf-hub:")) else model,
                "weights_sha256": ident.get("weights_sha256"),
                "model_cfg_sha256": ident.get("model_cfg_sha256"),
                "normalised": True,
            }
        )

    @property
    def key(self) -> str:
        return f"clip-{self._sha[:12]}"

    @property
    def sha256(self) -> str:
        return self._sha

    def extract(self, files: Sequence[Path], *, desc: str = "", progress: bool = False) -> np.ndarray:
        import torch

        def embed(chunk: list[Path]) -> np.ndarray:
            x = torch.stack([self.scorer.preprocess(open_rgb(p)) for p in chunk]).to(self.scorer.device)
            emb = self.scorer.model.encode_image(x).double()
            return (emb / emb.norm(dim=-1, keepdim=True)).cpu().numpy()

        return extract_in_batches(files, self.batch_size, embed, desc or "CLIP features", progress, dim=0)

    def identity(self) -> dict[str, Any]:
        return {
            **self.scorer.identity,
            "features": "encode_image, L2-normalised",
            "preprocess": "open_clip eval transform of the model",
            "space_sha256": self._sha,
        }


def clip_space(
    env: MetricEnv, model: str | None = None, pretrained: str | None = None, batch_size: int | None = None
) -> ClipSpace:
    """The CLIP space of ``model``/``pretrained`` (default: the ``clip`` block's, as CLIP score uses)."""
    from harness.errors import MissingWeightsError
    from harness.metrics.extractors.clip import DEFAULT_MODEL, DEFAULT_PRETRAINED, load_clip_scorer

    model = str(model or env.option("clip", "model", DEFAULT_MODEL))
    pretrained = str(pretrained if pretrained is not None else env.option("clip", "pretrained", DEFAULT_PRETRAINED))
    try:  # the same shared key as CLIP score: one loaded model for both
        scorer = env.shared(
            ("clip", model, pretrained),
            lambda: load_clip_scorer(model, pretrained, device=env.device, cache_dir=env.cache_dir),
        )
    except MissingWeightsError as err:
        raise MissingWeightsError(f"{err} (needed by a CLIP feature space)") from None
    bs = int(batch_size or env.option("clip", "batch_size", 16))
    return env.shared(("clip-space", model, pretrained), lambda: ClipSpace(scorer, bs))


def inception_space(env: MetricEnv) -> InceptionSpace:
    return env.shared(("inception-space",), lambda: InceptionSpace(env))


FEATURE_SPACES: Registry[SpaceLoader] = Registry(
    "feature space",
    {
        "inception": "harness.metrics.extractors.feature_spaces:inception_space",
        "clip": "harness.metrics.extractors.feature_spaces:clip_space",
        "dinov2": "harness.metrics.extractors.dinov2:dinov2_space",
    },
    check=callable,
    expected="a loader function (env) -> FeatureSpace",
)


def register_feature_space(name: str, loader: SpaceLoader) -> SpaceLoader:
    """Make ``loader(env) -> FeatureSpace`` available as ``name`` (then e.g. ``prdc_metric(name)`` runs on it)."""
    FEATURE_SPACES.register(name, loader)
    return loader


def load_feature_space(name: str, env: MetricEnv) -> FeatureSpace:
    """The feature space registered as ``name``, loaded once per evaluation."""
    space = FEATURE_SPACES[name](env)
    if not isinstance(space, FeatureSpace):
        raise UserError(f"feature space {name!r} did not load a harness.metrics.extractors.feature_spaces.FeatureSpace")
    return space
