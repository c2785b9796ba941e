"""Pure maths of FID and KID: no files, no networks, numpy in and floats out.

FID (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium") is the Fréchet distance between two Gaussians fitted to Inception features:

    d² = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁ Σ₂)^½)

Only the trace of (Σ₁Σ₂)^½ is needed, never the matrix. :func:`frechet_distance` gets it from
eigen/singular values (fast, and exact for singular covariances); :func:`frechet_distance_sqrtm`
is the classic ``scipy.linalg.sqrtm`` route of the TTUR code and clean-fid, kept for cross-checks.

KID (Bińkowski et al. 2018, "Demystifying MMD GANs") is the unbiased MMD² with the cubic
polynomial kernel k(x, y) = (xᵀy / d + 1)³, averaged over random subsets, as clean-fid's
``kernel_distance`` and torchmetrics' ``KernelInceptionDistance`` define it. These are the few
lines of maths; tests cross-check them against torchmetrics on the same features.

Singular covariances: with n images the sample covariance has rank ≤ n − 1, so below
``d + 1`` images (2049 for Inception) Σ is singular. The eigen route needs no regularisation for
that (Σ is still positive semi-definite); FID at small n is biased upward, so FIDs are only
comparable at equal n — callers record the counts.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from scipy import linalg

#: The fewest samples for which a sample covariance (ddof = 1) and an unbiased MMD exist.
MIN_SAMPLES = 2


def _check_features(feats: np.ndarray, what: str = "features") -> np.ndarray:
    x = np.asarray(feats, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (samples × dims), got shape {x.shape}")
    if x.shape[0] < MIN_SAMPLES:
        raise ValueError(f"{what}: need at least {MIN_SAMPLES} samples for a covariance, got {x.shape[0]}")
    if not np.isfinite(x).all():
        raise ValueError(f"{what} contain NaN or infinite values")
    return x


def feature_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased sample covariance (ddof = 1, as clean-fid and TTUR use) of (N, d) features."""
    x = _check_features(feats)
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _check_stats(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> tuple[np.ndarray, ...]:
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape:
        raise ValueError(f"mean vectors differ in length: {mu1.shape} vs {mu2.shape}")
    d = mu1.shape[0]
    if s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"covariances must be {d}×{d}, got {s1.shape} and {s2.shape}")
    for name, a in (("mu1", mu1), ("sigma1", s1), ("mu2", mu2), ("sigma2", s2)):
        if not np.isfinite(a).all():
            raise ValueError(f"{name} contains NaN or infinite values")
    return mu1, s1, mu2, s2


def _psd_factor(sigma: np.ndarray, name: str) -> np.ndarray:
    """L (d × r) with L Lᵀ = Σ, from the symmetric eigendecomposition Σ = U Λ Uᵀ (L = U Λ^½).

    Only the r eigenvalues above the numerical-rank tolerance λ_max · d · ε (numpy's
    ``matrix_rank`` rule) are kept: below it eigh cannot tell an eigenvalue from rounding noise,
    and a singular Σ (n ≤ d samples) then costs an r × r SVD instead of d × d. Clearly negative
    eigenvalues mean the input is not a covariance, which we refuse rather than hide.
    """
    sym = (sigma + sigma.T) / 2  # np.cov is symmetric up to rounding; eigh reads one triangle
    lam, u = np.linalg.eigh(sym)
    top = float(np.abs(lam).max(initial=0.0))
    if lam.min(initial=0.0) < -1e-6 * top:
        raise ValueError(f"{name} is not positive semi-definite (eigenvalue {lam.min():.3g}); not a covariance")
    keep = lam > top * sym.shape[0] * np.finfo(np.float64).eps
    return u[:, keep] * np.sqrt(lam[keep])


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr (Σ₁Σ₂)^½ as the nuclear norm of L₁ᵀL₂, where Σᵢ = LᵢLᵢᵀ.

    Σ₁Σ₂ is similar to Σ₁^½ Σ₂ Σ₁^½ (PSD), whose eigenvalues are the squared singular values
    of L₁ᵀL₂; so Tr (Σ₁Σ₂)^½ = Σ σᵢ(L₁ᵀL₂). Taking singular values directly, rather than square
    roots of tiny eigenvalues, keeps the null space of a singular Σ from adding √ε noise: this
    is what makes FID(X, X) ≈ 0 hold to ~1e-9 at n ≪ d.
    """
    l1 = _psd_factor(sigma1, "sigma1")
    l2 = _psd_factor(sigma2, "sigma2")
    if l1.shape[1] == 0 or l2.shape[1] == 0:  # a zero covariance (all samples identical)
        return 0.0
    return float(np.linalg.svd(l1.T @ l2, compute_uv=False).sum())


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 0.0
) -> float:
    """Fréchet distance d² = ‖μ₁ − μ₂‖² + Tr Σ₁ + Tr Σ₂ − 2 Tr (Σ₁Σ₂)^½ (eigen route).

    ``eps`` is added to both diagonals when > 0 (clean-fid's fallback for a singular product);
    the default 0 needs no such regularisation because :func:`trace_sqrt_product` is exact for
    singular PSD matrices. Returns a float ≥ 0 up to rounding.
    """
    mu1, s1, mu2, s2 = _check_stats(mu1, sigma1, mu2, sigma2)
    if eps > 0:
        offset = np.eye(s1.shape[0]) * eps
        s1, s2 = s1 + offset, s2 + offset
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt_product(s1, s2))


def frechet_distance_features(feats1: np.ndarray, feats2: np.ndarray) -> float:
    """The same d² straight from two feature sets, exact and fast when a set is smaller than d.

    With Xᵢ the centred features / √(nᵢ − 1), Σᵢ = XᵢᵀXᵢ, so Xᵢᵀ is a factor of Σᵢ and
    Tr (Σ₁Σ₂)^½ = ‖X₁X₂ᵀ‖_* (an n₁ × n₂ SVD instead of two d × d eigendecompositions). Sets
    larger than d go through :func:`frechet_distance` on their statistics.
    """
    x1, x2 = _check_features(feats1, "feats1"), _check_features(feats2, "feats2")
    if x1.shape[1] != x2.shape[1]:
        raise ValueError(f"feature dims differ: {x1.shape[1]} vs {x2.shape[1]}")
    d = x1.shape[1]
    if x1.shape[0] > d or x2.shape[0] > d:
        return frechet_distance(*feature_stats(x1), *feature_stats(x2))
    c1 = (x1 - x1.mean(axis=0)) / np.sqrt(x1.shape[0] - 1)
    c2 = (x2 - x2.mean(axis=0)) / np.sqrt(x2.shape[0] - 1)
    diff = x1.mean(axis=0) - x2.mean(axis=0)
    tr_sqrt = np.linalg.svd(c1 @ c2.T, compute_uv=False).sum()
    return float(diff @ diff + np.sum(c1 * c1) + np.sum(c2 * c2) - 2.0 * tr_sqrt)


def frechet_distance_sqrtm(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """The same d² through ``scipy.linalg.sqrtm(Σ₁Σ₂)`` (TTUR / clean-fid route), for cross-checks.

    As in clean-fid: if the product's square root is not finite, retry with ``eps`` on both
    diagonals; a non-negligible imaginary part is an error.
    """
    mu1, s1, mu2, s2 = _check_stats(mu1, sigma1, mu2, sigma2)
    diff = mu1 - mu2
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        warnings.warn(f"singular product in sqrtm; adding {eps} to the covariance diagonals", stacklevel=2)
        offset = np.eye(s1.shape[0]) * eps
        covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"sqrtm has an imaginary component {np.max(np.abs(covmean.imag)):.3g}")
        covmean = covmean.real
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def polynomial_mmd2(x: np.ndarray, y: np.ndarray, degree: int = 3, coef: float = 1.0) -> float:
    """Unbiased MMD² between equal-size samples with k(a, b) = (aᵀb / d + coef)^degree.

    MMD²_u = [Σ_{i≠j} k(xᵢ,xⱼ) + Σ_{i≠j} k(yᵢ,yⱼ)] / (m(m−1)) − 2 Σ_{i,j} k(xᵢ,yⱼ) / m².
    """
    m, d = x.shape
    if y.shape != (m, d):
        raise ValueError(f"MMD needs equal-size samples, got {x.shape} and {y.shape}")
    k_xx = (x @ x.T / d + coef) ** degree
    k_yy = (y @ y.T / d + coef) ** degree
    k_xy = (x @ y.T / d + coef) ** degree
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.sum() / (m * m))


def kernel_inception_distance(
    feats1: np.ndarray, feats2: np.ndarray, num_subsets: int = 100, max_subset_size: int = 1000, seed: int = 0
) -> tuple[float, float, int]:
    """KID: mean and std (ddof = 0, as torchmetrics) of MMD² over random subsets.

    Each subset draws m = min(n₁, n₂, max_subset_size) samples without replacement from each
    set, like clean-fid and torchmetrics; unlike clean-fid the draw is seeded, so the value is
    reproducible. Returns (mean, std, m).
    """
    x, y = _check_features(feats1, "feats1"), _check_features(feats2, "feats2")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature dims differ: {x.shape[1]} vs {y.shape[1]}")
    if num_subsets < 1 or max_subset_size < MIN_SAMPLES:
        raise ValueError("num_subsets must be ≥ 1 and max_subset_size ≥ 2")
    m = min(x.shape[0], y.shape[0], max_subset_size)
    rng = np.random.default_rng(seed)
    values = np.array(
        [
            polynomial_mmd2(x[rng.choice(x.shape[0], m, replace=False)], y[rng.choice(y.shape[0], m, replace=False)])
            for _ in range(num_subsets)
        ]
    )
    return float(values.mean()), float(values.std()), m


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3, coef: float = 1.0) -> np.ndarray:
    """k(a, b) = (aᵀb / d + coef)^degree for every row pair: KID's kernel."""
    return (x @ y.T / x.shape[1] + coef) ** degree


def kid_from_kernels(
    k_xx: np.ndarray,
    k_yy: np.ndarray,
    k_xy: np.ndarray,
    rows: np.ndarray,
    num_subsets: int,
    max_subset_size: int,
    seed: int = 0,
) -> tuple[float, float, int]:
    """:func:`kernel_inception_distance` of ``feats1[rows]`` against ``feats2``, from kernels computed once.

    ``k_xx``, ``k_yy``, ``k_xy`` are :func:`polynomial_kernel` of (feats1, feats1), (feats2, feats2) and
    (feats1, feats2). The subsets are drawn exactly as :func:`kernel_inception_distance` draws them, so the
    value is the same; a bootstrap that resamples ``rows`` hundreds of times then only indexes the kernels
    instead of recomputing every product (the regression gate's KID interval).
    """
    rows = np.asarray(rows)
    m = min(len(rows), k_yy.shape[0], max_subset_size)
    rng = np.random.default_rng(seed)
    values = np.empty(num_subsets)
    for s in range(num_subsets):
        xi = rows[rng.choice(len(rows), m, replace=False)]
        yi = rng.choice(k_yy.shape[0], m, replace=False)
        values[s] = _unbiased_mmd2(k_xx[np.ix_(xi, xi)], k_yy[np.ix_(yi, yi)], k_xy[np.ix_(xi, yi)])
    return float(values.mean()), float(values.std()), m


def _unbiased_mmd2(kxx: np.ndarray, kyy: np.ndarray, kxy: np.ndarray) -> float:
    """MMD²_u of two size-m subsets from their kernel blocks (diagonals of the within blocks left out)."""
    m = kxx.shape[0]
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2.0 * kxy.sum() / (m * m))


def kid_of_rows(
    x: np.ndarray, y: np.ndarray, rows: np.ndarray, num_subsets: int, max_subset_size: int, seed: int = 0
) -> float:
    """:func:`kid_from_kernels` with each subset's kernels computed from the features (the same draws and
    value): for sets too large to hold an n × n kernel matrix."""
    rows = np.asarray(rows)
    m = min(len(rows), len(y), max_subset_size)
    rng = np.random.default_rng(seed)
    values = np.empty(num_subsets)
    for s in range(num_subsets):
        xs = x[rows[rng.choice(len(rows), m, replace=False)]]
        ys = y[rng.choice(len(y), m, replace=False)]
        values[s] = _unbiased_mmd2(polynomial_kernel(xs, xs), polynomial_kernel(ys, ys), polynomial_kernel(xs, ys))
    return float(values.mean())


def reference_factor(mu: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(μ, L, Tr Σ) of a reference set with L Lᵀ = Σ: what :func:`frechet_distance_resampled` reuses."""
    mu, s, _, _ = _check_stats(mu, sigma, mu, sigma)
    return mu, _psd_factor(s, "sigma"), float(np.trace(s))


def reference_factor_from_features(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """:func:`reference_factor` straight from the features: with X the centred features / √(n − 1),
    Σ = XᵀX, so L = Xᵀ (d × n) is a factor — exact, and no d × d eigendecomposition when n ≤ d."""
    x = _check_features(feats, "reference features")
    c = (x - x.mean(axis=0)) / np.sqrt(x.shape[0] - 1)
    return x.mean(axis=0), c.T, float(np.sum(c * c))


def frechet_distance_resampled(
    feats: np.ndarray, reference: tuple[np.ndarray, np.ndarray, float], indices: Sequence[np.ndarray] | np.ndarray
) -> np.ndarray:
    """FID of each resample ``feats[indices[b]]`` against a fixed reference (one value per row of ``indices``).

    With Cᵦ the centred resample / √(n − 1), Σᵦ = CᵦᵀCᵦ and Tr (Σᵦ Σ_ref)^½ = ‖Cᵦ L‖_* (singular values
    of an n × r matrix), so no d × d matrix is formed per resample. The same ``indices`` applied to two
    runs' features give a *paired* bootstrap (common random numbers), as the regression gate needs.
    """
    x = _check_features(feats)
    mu_r, factor, tr_r = reference
    if factor.shape[0] != x.shape[1]:
        raise ValueError(f"feature dims differ: {x.shape[1]} vs reference {factor.shape[0]}")
    out = np.empty(len(indices))
    for b, idx in enumerate(indices):
        sample = x[idx]
        mu = sample.mean(axis=0)
        c = (sample - mu) / np.sqrt(len(idx) - 1)
        diff = mu - mu_r
        nuclear = _nuclear_norm(c @ factor) if factor.shape[1] else 0.0
        out[b] = diff @ diff + np.sum(c * c) + tr_r - 2.0 * nuclear
    return out


def _nuclear_norm(m: np.ndarray) -> float:
    """Σ singular values of ``m`` from the eigenvalues of its smaller Gram matrix (several times faster than an
    SVD of a tall n × r matrix; the loss of precision is far below a bootstrap interval's width)."""
    gram = m.T @ m if m.shape[0] > m.shape[1] else m @ m.T
    return float(np.sqrt(np.clip(np.linalg.eigvalsh(gram), 0.0, None)).sum())


def bootstrap_indices(n: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """(n_boot, n) indices drawn with replacement, seeded (the same for every run compared)."""
    if n < MIN_SAMPLES:
        raise ValueError(f"need at least {MIN_SAMPLES} samples to bootstrap, got {n}")
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
