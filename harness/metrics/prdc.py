"""Precision / recall (Kynkäänniemi et al. 2019) and density / coverage (Naeem et al. 2020) on any feature space.

With real features R = {r_j} (the reference set), fake features F = {f_i} (a stage's images), k nearest
neighbours (default 5) and NND_k(x) the distance from x to its k-th nearest neighbour *within its own
set* (itself excluded):

    precision = 1/M Σ_i 1[∃ j: ‖f_i − r_j‖ < NND_k(r_j)]          (fake inside the real manifold)
    recall    = 1/N Σ_j 1[∃ i: ‖r_j − f_i‖ < NND_k(f_i)]          (real inside the fake manifold)
    density   = 1/(kM) Σ_i Σ_j 1[‖f_i − r_j‖ < NND_k(r_j)]        (how many real balls hold each fake)
    coverage  = 1/N Σ_j 1[min_i ‖r_j − f_i‖ < NND_k(r_j)]         (real balls holding at least one fake)

exactly as Naeem et al.'s reference code (clovaai/generative-evaluation-prdc: strict ``<``, Euclidean).
Precision and density are means over the generated images, so they are per-image outputs: each image's
"inside the real manifold" (binary, Wilson interval) and its ball count / k, aggregated per prompt
category by the harness. Recall and coverage are means over the *reference* images of properties of the
whole generated set; their interval is a percentile bootstrap over the generated images (prompts when
a prompt has several seeds), the reference fixed and the fake radii taken from the full set. Distances
run in row blocks and only neighbour pairs are stored (sparse), so large sets fit in memory.

Metrics ``prdc_inception``, ``prdc_dinov2`` and ``prdc_clip`` report ``precision_<space>`` etc. (options: the
``prdc`` block; ``prdc_<space>.enabled=false`` skips one); for a user space,
``register_metric()(prdc_metric("myspace"))``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy import sparse

from harness.errors import UserError
from harness.metrics.base import ImageSet, Metric, MetricEnv, Output, Scores, SetStatistic, SetValue
from harness.metrics.feature_spaces import FeatureSpace, load_feature_space
from harness.metrics.reference_stats import FeatureStats, StatsKey
from harness.metrics.set_statistics import bootstrap_set_value

BLOCK = 1024
METRIC_VERSION = "imagen-bench-prdc/2"  # 2: squared radii, exact ties
DEFAULT_MAX_PAIRS = 50_000_000


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T), 0.0)


def _check(x: np.ndarray, k: int, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (samples × dims), got shape {a.shape}")
    if a.shape[0] <= k:
        raise UserError(f"{what}: {a.shape[0]} images, but k={k} nearest neighbours need more than k")
    if not np.isfinite(a).all():
        raise ValueError(f"{what} contain NaN or infinite values")
    return a


def knn_sq_radii(x: np.ndarray, k: int) -> np.ndarray:
    """*Squared* distance from each row to its k-th nearest other row (blockwise; the row itself excluded).

    Squared, because the balls are tested on squared distances: a radius taken through ``sqrt`` and squared
    back lands an ulp off and flips exact ties (a generated image that duplicates a reference image sits
    exactly on a ball's edge), which made density of a set against itself 1.05 instead of 1.
    """
    out = np.empty(len(x))
    for s in range(0, len(x), BLOCK):
        d = _sq_dists(x[s:s + BLOCK], x)
        out[s:s + BLOCK] = np.partition(d, k, axis=1)[:, k]  # index 0 is the row itself (distance 0)
    return out


def knn_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row to its k-th nearest other row (NND_k of the module docstring)."""
    return np.sqrt(knn_sq_radii(x, k))


@dataclass
class PrdcResult:
    """The four values and what the intervals need: per-fake arrays and the sparse neighbour matrices."""

    precision: float
    recall: float
    density: float
    coverage: float
    inside: np.ndarray  # (M,) bool: fake i lies in some real ball
    ball_counts: np.ndarray  # (M,) int: how many real balls hold fake i
    real_in_fake: sparse.csr_matrix | None  # (N, M): r_j inside fake i's ball (recall)
    fake_in_real: sparse.csr_matrix | None  # (N, M): f_i inside r_j's ball (coverage)
    k: int

    def resampled(self, resamples: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(recall, coverage) of each resample of the fakes (row index arrays; membership is what counts)."""
        m = self.inside.shape[0]
        member = np.zeros((m, len(resamples)), dtype=np.float32)
        for b, idx in enumerate(resamples):
            member[np.unique(idx), b] = 1.0
        recall = np.asarray((self.real_in_fake @ member) > 0).mean(axis=0)
        coverage = np.asarray((self.fake_in_real @ member) > 0).mean(axis=0)
        return recall, coverage


def prdc(real: np.ndarray, fake: np.ndarray, k: int = 5, *, real_sq_radii: np.ndarray | None = None,
         max_pairs: int = DEFAULT_MAX_PAIRS) -> PrdcResult:
    """Precision, recall, density and coverage of ``fake`` against ``real`` (module docstring).

    ``real_sq_radii`` (:func:`knn_sq_radii` of ``real``) may be passed when already computed (they depend on
    the reference only). The neighbour matrices are kept for the bootstrap unless they exceed ``max_pairs``
    entries (then they are None).
    """
    if int(k) < 1:
        raise UserError(f"prdc.k must be >= 1, got {k}")
    real, fake = _check(real, k, "reference features"), _check(fake, k, "generated features")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature dims differ: {real.shape[1]} vs {fake.shape[1]}")
    r_sq = knn_sq_radii(real, k) if real_sq_radii is None else np.asarray(real_sq_radii, dtype=np.float64)
    f_sq = knn_sq_radii(fake, k)
    counts = np.zeros(len(fake), dtype=np.int64)
    recall_hit = np.zeros(len(real), dtype=bool)
    covered = np.zeros(len(real), dtype=bool)
    keep = True
    rows: list[list[np.ndarray]] = [[], []]
    cols: list[list[np.ndarray]] = [[], []]
    stored = 0
    for s in range(0, len(real), BLOCK):
        d = _sq_dists(real[s:s + BLOCK], fake)
        in_real = d < r_sq[s:s + BLOCK, None]  # f_i inside r_j's ball
        in_fake = d < f_sq[None, :]  # r_j inside f_i's ball
        counts += in_real.sum(axis=0)
        covered[s:s + BLOCK] = in_real.any(axis=1)
        recall_hit[s:s + BLOCK] = in_fake.any(axis=1)
        if keep:
            for t, mask in enumerate((in_fake, in_real)):
                r, c = np.nonzero(mask)
                rows[t].append((r + s).astype(np.int32))
                cols[t].append(c.astype(np.int32))
                stored += r.size
            keep = stored <= max_pairs
    mats: list[sparse.csr_matrix | None] = [None, None]
    if keep:
        for t in range(2):
            r, c = np.concatenate(rows[t]), np.concatenate(cols[t])
            mats[t] = sparse.csr_matrix((np.ones(r.size, np.float32), (r, c)), shape=(len(real), len(fake)))
    inside = counts > 0
    return PrdcResult(precision=float(inside.mean()), recall=float(recall_hit.mean()),
                      density=float(counts.sum() / (k * len(fake))), coverage=float(covered.mean()),
                      inside=inside, ball_counts=counts, real_in_fake=mats[0], fake_in_real=mats[1], k=int(k))


def reference_subset(feats: np.ndarray, max_reference: int | None, seed: int) -> np.ndarray:
    """The reference rows PRDC uses: all, or a seeded subset of ``max_reference`` (in their order)."""
    if max_reference is None or len(feats) <= max_reference:
        return feats
    return feats[np.sort(np.random.default_rng(seed).choice(len(feats), max_reference, replace=False))]


class PrdcStatistic(SetStatistic):
    """Recall or coverage of a set of generated rows: which fakes are members of the set counts, with the
    reference radii and the fakes' radii those of the full set (as the metric's own interval)."""

    PARTS: ClassVar[dict[str, int]] = {"recall": 0, "coverage": 1}

    def __init__(self, result: PrdcResult, part: str, max_pairs: int) -> None:
        if part not in self.PARTS:
            raise ValueError(f"PRDC set outputs are {sorted(self.PARTS)}, got {part!r}")
        self.result, self.part, self.max_pairs = result, part, max_pairs

    def value(self) -> float:
        return float(getattr(self.result, self.part))

    def resampled(self, index_sets: Sequence[np.ndarray]) -> np.ndarray:
        if self.result.real_in_fake is None:
            raise UserError(f"{self.part}: more than prdc.max_pairs={self.max_pairs} neighbour pairs, so it cannot "
                            "be resampled; raise prdc.max_pairs")
        return self.result.resampled(list(index_sets))[self.PARTS[self.part]]


class PrdcMetric(Metric):
    """Precision/recall/density/coverage in one feature space (subclasses fix the space: :func:`prdc_metric`)."""

    space_name: ClassVar[str] = ""
    needs = frozenset({"images", "reference"})
    config_key = "prdc"  # subclasses: prdc_<space> (its enabled switch and results.json extractors entry)
    version = METRIC_VERSION

    def __init__(self, k: int = 5, n_boot: int = 200, seed: int = 0, level: float = 0.95,
                 max_reference: int | None = None, max_pairs: int = DEFAULT_MAX_PAIRS) -> None:
        if int(k) < 1:
            raise UserError(f"prdc.k must be >= 1, got {k}")
        self.k, self.n_boot, self.seed, self.level = int(k), int(n_boot), int(seed), float(level)
        self.max_reference = None if max_reference is None else int(max_reference)
        self.max_pairs = int(max_pairs)
        self.space: FeatureSpace | None = None
        self._identity: dict[str, Any] = {}
        self._reference_key: StatsKey | None = None

    @classmethod
    def from_config(cls, env: MetricEnv) -> PrdcMetric:
        opt = lambda k, d: env.option("prdc", k, d)
        level = env.cfg.get("level", 0.95) if env.cfg is not None else 0.95
        return cls(opt("k", 5), opt("n_boot", 200), opt("seed", 0), level, opt("max_reference", None),
                   opt("max_pairs", DEFAULT_MAX_PAIRS))

    def _out(self, what: str) -> str:
        return f"{what}_{self.space_name}"

    def _reference(self, env: MetricEnv) -> tuple[np.ndarray, np.ndarray]:
        """Reference features (a seeded subset when ``max_reference`` is below the count) and squared radii."""
        def make() -> tuple[np.ndarray, np.ndarray]:
            feats = reference_subset(self.space.reference_features(env, self.k + 1).feats, self.max_reference,
                                     self.seed)
            return feats, knn_sq_radii(_check(feats, self.k, "reference features"), self.k)

        return env.shared(("prdc-reference", self.space.key, self.space.sha256, self.k, self.max_reference,
                           self.seed), make)

    def prepare(self, env: MetricEnv) -> None:
        from harness.errors import MissingWeightsError

        try:
            self.space = load_feature_space(self.space_name, env)
        except MissingWeightsError as err:
            raise MissingWeightsError(f"{err} (or {self.config_key}.enabled=false to run without it)") from None
        feats, _ = self._reference(env)
        ref = self.space.reference_features(env, self.k + 1)
        self._reference_key = ref.key
        self._identity = {**self.space.identity(), "metric_version": METRIC_VERSION, "k": self.k,
                          "n_reference_used": len(feats), "reference": ref.describe()}

    def identity(self) -> dict[str, Any]:
        return dict(self._identity)

    def set_source(self, output: str) -> tuple[str, StatsKey] | None:
        return None if self.space is None or self._reference_key is None else (self.space.key, self._reference_key)

    def set_options(self, output: str) -> dict[str, Any]:
        return {"k": self.k, "max_reference": self.max_reference, "seed": self.seed, "max_pairs": self.max_pairs}

    @classmethod
    def set_statistic(cls, output: str, generated: np.ndarray, reference: FeatureStats,
                      options: Mapping[str, Any]) -> SetStatistic:
        if reference.feats is None:
            raise UserError(f"{output} needs the reference features, but the cached reference holds statistics only")
        k, cap = int(options["k"]), options.get("max_reference")
        real = reference_subset(np.asarray(reference.feats, np.float64), None if cap is None else int(cap),
                                int(options["seed"]))
        max_pairs = int(options.get("max_pairs", DEFAULT_MAX_PAIRS))
        result = prdc(real, generated, k, max_pairs=max_pairs)
        return PrdcStatistic(result, output.removesuffix(f"_{cls.space_name}"), max_pairs)

    def compute(self, images: ImageSet, env: MetricEnv) -> Scores:
        if self.space is None:
            self.prepare(env)
        real, sq_radii = self._reference(env)
        fake = self.space.generated_features(images, env, self.k + 1).feats
        res = prdc(real, fake, self.k, real_sq_radii=sq_radii, max_pairs=self.max_pairs)
        keys = [r.sample_key for r in images.records]
        per_image = {self._out("precision"): {key: float(v) for key, v in zip(keys, res.inside)},
                     self._out("density"): {key: float(c) / self.k for key, c in zip(keys, res.ball_counts)}}
        sets = self._set_values(res, images, len(real))
        return Scores(per_image=per_image, sets=sets,
                      details={f"prdc_{self.space_name}": {"k": self.k, "precision": res.precision,
                                                           "density": res.density, "n_reference": len(real)}})

    def _set_values(self, res: PrdcResult, images: ImageSet, n_real: int) -> dict[str, SetValue]:
        resample = self.n_boot > 0 and res.real_in_fake is not None
        note = None if resample or self.n_boot == 0 else \
            f"undefined: more than prdc.max_pairs={self.max_pairs} neighbour pairs"
        out = {}
        for part in PrdcStatistic.PARTS:
            value = bootstrap_set_value(PrdcStatistic(res, part, self.max_pairs), images,
                                        n_boot=self.n_boot if resample else 0, seed=self.seed, level=self.level,
                                        n=len(images), extra={"n_reference": n_real, "k": self.k}, note=note,
                                        fixed="reference and fake radii", bounds=(0.0, 1.0))
            out[self._out(part)] = value
        return out


def prdc_metric(space: str, label: str | None = None) -> type[PrdcMetric]:
    """A PRDC metric class on the feature space registered as ``space`` (outputs ``precision_<space>`` ...)."""
    shown = label or space
    outputs = (
        # max_worse: 0.02 of a [0, 1] rate for the four (density's scale is 1 at a matched distribution)
        Output(f"precision_{space}", higher_is_better=True, kind="binary", bounds=(0.0, 1.0),
               label=f"precision ({shown})", max_worse=0.02),
        Output(f"recall_{space}", higher_is_better=True, kind="bounded", per_image=False, bounds=(0.0, 1.0),
               label=f"recall ({shown})", max_worse=0.02),
        Output(f"density_{space}", higher_is_better=True, kind="continuous", label=f"density ({shown})",
               max_worse=0.02),
        Output(f"coverage_{space}", higher_is_better=True, kind="bounded", per_image=False, bounds=(0.0, 1.0),
               label=f"coverage ({shown})", max_worse=0.02),
    )
    doc = f"Precision/recall/density/coverage on {shown} features (k from prdc.k)."
    return type(f"Prdc_{space}", (PrdcMetric,), {"name": f"prdc_{space}", "space_name": space,
                                                 "config_key": f"prdc_{space}", "outputs": outputs, "__doc__": doc})


PrdcInception = prdc_metric("inception", "Inception")
PrdcDinov2 = prdc_metric("dinov2", "DINOv2")
PrdcClip = prdc_metric("clip", "CLIP")
