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

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from harness.errors import UserError

BLOCK = 1024
DEFAULT_MAX_PAIRS = 50_000_000


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T), 0.0)


def check_features(x: np.ndarray, k: int, what: str) -> np.ndarray:
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
        d = _sq_dists(x[s : s + BLOCK], x)
        out[s : s + BLOCK] = np.partition(d, k, axis=1)[:, k]  # index 0 is the row itself (distance 0)
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


def prdc(
    real: np.ndarray,
    fake: np.ndarray,
    k: int = 5,
    *,
    real_sq_radii: np.ndarray | None = None,
    max_pairs: int = DEFAULT_MAX_PAIRS,
) -> PrdcResult:
    """Precision, recall, density and coverage of ``fake`` against ``real`` (module docstring).

    ``real_sq_radii`` (:func:`knn_sq_radii` of ``real``) may be passed when already computed (they depend on
    the reference only). The neighbour matrices are kept for the bootstrap unless they exceed ``max_pairs``
    entries (then they are None).
    """
    if int(k) < 1:
        raise UserError(f"prdc.k must be >= 1, got {k}")
    real, fake = check_features(real, k, "reference features"), check_features(fake, k, "generated features")
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
        d = _sq_dists(real[s : s + BLOCK], fake)
        in_real = d < r_sq[s : s + BLOCK, None]  # f_i inside r_j's ball
        in_fake = d < f_sq[None, :]  # r_j inside f_i's ball
        counts += in_real.sum(axis=0)
        covered[s : s + BLOCK] = in_real.any(axis=1)
        recall_hit[s : s + BLOCK] = in_fake.any(axis=1)
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
    return PrdcResult(
        precision=float(inside.mean()),
        recall=float(recall_hit.mean()),
        density=float(counts.sum() / (k * len(fake))),
        coverage=float(covered.mean()),
        inside=inside,
        ball_counts=counts,
        real_in_fake=mats[0],
        fake_in_real=mats[1],
        k=int(k),
    )


def reference_subset(feats: np.ndarray, max_reference: int | None, seed: int) -> np.ndarray:
    """The reference rows PRDC uses: all, or a seeded subset of ``max_reference`` (in their order)."""
    if max_reference is None or len(feats) <= max_reference:
        return feats
    return feats[np.sort(np.random.default_rng(seed).choice(len(feats), max_reference, replace=False))]
