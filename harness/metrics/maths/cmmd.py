"""CMMD (Jayasumana et al. 2024, "Rethinking FID: Towards a Better Evaluation Metric for Image Generation").

CMMD is the squared maximum mean discrepancy between the CLIP image embeddings of the generated set
X = {x₁..x_m} and of the reference set Y = {y₁..y_n}, with the Gaussian RBF kernel

    k(a, b) = exp(−‖a − b‖² / (2σ²)),   σ = 10,

on L2-normalised embeddings, reported × 1000 (google-research/cmmd: ``_SIGMA = 10``, ``_SCALE = 1000``).
The default estimator is google-research/cmmd's ``distance.py`` (``estimator: v_statistic``): the
V-statistic, means over *all* pairs with the diagonals included,

    MMD²_v = 1/m² Σ_{i,j} k(xᵢ,xⱼ) + 1/n² Σ_{i,j} k(yᵢ,yⱼ) − 2/(mn) Σ_{i,j} k(xᵢ,yⱼ)

(the minimum-variance estimator; exactly 0 for a set against itself). Every published CMMD number — the
paper's tables, the PyTorch port's 0.696 for SDXL on COCO-30K and its unit anchor 7.696 on the bundled
image pair — was computed this way, so ours are comparable with them by default. ``estimator: unbiased``
is the paper's eq. 3, the U-statistic

    MMD²_u = 1/(m(m−1)) Σ_{i≠j} k(xᵢ,xⱼ) + 1/(n(n−1)) Σ_{i≠j} k(yᵢ,yⱼ) − 2/(mn) Σ_{i,j} k(xᵢ,yⱼ)

(expectation 0 when both sets come from one distribution, so it can be slightly negative). The two differ
by O(1/m + 1/n); the estimator is recorded with every number and shown in its label.

Uncertainty: a percentile bootstrap over the generated images (prompts when a prompt has several
seeds), the reference fixed, as for FID. A resample holds copies of one image; the U-statistic of a
resample is taken over pairs of *distinct* original images (copies of an image are not two draws),
i.e. with counts c: Σ_{i≠j} cᵢcⱼ k(xᵢ,xⱼ) / Σ_{i≠j} cᵢcⱼ. Kernel sums run in row blocks, so 30K × 30K
sets never hold an m × m matrix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.errors import UserError

SIGMA = 10.0
SCALE = 1000.0
ESTIMATORS = ("v_statistic", "unbiased")
DEFAULT_ESTIMATOR = "v_statistic"  # google-research/cmmd's distance.py: comparable with published numbers
ESTIMATOR_LABELS = {"v_statistic": "V-statistic, as google-research/cmmd", "unbiased": "unbiased, eq. 3"}
BLOCK = 1024


def _check(x: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < 2:
        raise ValueError(f"{what} must be (n >= 2, d) embeddings, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{what} contain NaN or infinite values")
    return a


def rbf_kernel(a: np.ndarray, b: np.ndarray, sigma: float = SIGMA) -> np.ndarray:
    """k(aᵢ, bⱼ) = exp(−‖aᵢ − bⱼ‖² / (2σ²)) for every pair of rows."""
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.exp(-np.maximum(sq, 0.0) / (2.0 * sigma * sigma))


def _kernel_row_sums(a: np.ndarray, b: np.ndarray, sigma: float) -> np.ndarray:
    """Σⱼ k(aᵢ, bⱼ) for each row of ``a`` (blockwise)."""
    return np.concatenate([rbf_kernel(a[s : s + BLOCK], b, sigma).sum(1) for s in range(0, len(a), BLOCK)])


def _quadratic_forms(x: np.ndarray, counts: np.ndarray, sigma: float) -> np.ndarray:
    """cᵦᵀ K cᵦ for each column cᵦ of ``counts`` (m × B), K the kernel matrix of ``x`` (blockwise)."""
    out = np.zeros(counts.shape[1])
    for s in range(0, len(x), BLOCK):
        block = rbf_kernel(x[s : s + BLOCK], x, sigma)
        out += (counts[s : s + BLOCK] * (block @ counts)).sum(0)
    return out


def mmd2_weighted(
    x: np.ndarray, y: np.ndarray, counts: np.ndarray, *, sigma: float = SIGMA, estimator: str = DEFAULT_ESTIMATOR
) -> np.ndarray:
    """MMD² of ``y`` against each count-weighted copy of ``x`` (one column of ``counts`` per copy).

    With all counts 1 this is the plain estimator; a bootstrap passes each resample's counts. For the
    unbiased estimator the within-``x`` term is over pairs of distinct rows: (cᵀKc − Σ cᵢ²) / (m² − Σ cᵢ²).
    A resample of a single distinct row has no such pair (NaN).
    """
    if estimator not in ESTIMATORS:
        raise UserError(f"cmmd.estimator must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")
    x, y = _check(x, "generated embeddings"), _check(y, "reference embeddings")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"embedding dims differ: {x.shape[1]} vs {y.shape[1]}")
    c = np.asarray(counts, dtype=np.float64).reshape(len(x), -1)
    n = len(y)
    s_yy = _kernel_row_sums(y, y, sigma).sum()
    m = c.sum(0)
    sq = (c * c).sum(0)
    quad = _quadratic_forms(x, c, sigma)
    cross = (c * _kernel_row_sums(x, y, sigma)[:, None]).sum(0) / (m * n)
    if estimator == "v_statistic":
        return quad / (m * m) + s_yy / (n * n) - 2.0 * cross
    within_y = (s_yy - n) / (n * (n - 1))
    pairs = m * m - sq
    within_x = np.divide(quad - sq, pairs, out=np.full_like(pairs, np.nan), where=pairs > 0)  # k(a, a) = 1
    return within_x + within_y - 2.0 * cross


def cmmd(
    x: np.ndarray, y: np.ndarray, *, sigma: float = SIGMA, scale: float = SCALE, estimator: str = DEFAULT_ESTIMATOR
) -> float:
    """CMMD = scale · MMD²(x, y) of (normalised) embeddings, with the estimator named (module doc)."""
    return float(scale * mmd2_weighted(x, y, np.ones((len(x), 1)), sigma=sigma, estimator=estimator)[0])


def cmmd_bootstrap(
    x: np.ndarray,
    y: np.ndarray,
    resamples: Sequence[np.ndarray],
    *,
    sigma: float = SIGMA,
    scale: float = SCALE,
    estimator: str = DEFAULT_ESTIMATOR,
) -> np.ndarray:
    """CMMD of each resample of ``x`` (row indices, with repeats) against the fixed ``y``."""
    counts = np.stack([np.bincount(idx, minlength=len(x)) for idx in resamples], axis=1)
    return scale * mmd2_weighted(x, y, counts, sigma=sigma, estimator=estimator)
