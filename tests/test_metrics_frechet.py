"""Pure FID/KID maths: eigen vs sqrtm routes, closed forms, singular covariances, KID cross-checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cleanfid.fid import kernel_distance
from torchmetrics.image.kid import KernelInceptionDistance, poly_mmd

from harness.metrics.maths.frechet import (
    feature_stats,
    frechet_distance,
    frechet_distance_features,
    frechet_distance_sqrtm,
    kernel_inception_distance,
    polynomial_mmd2,
)


def _features(n: int, d: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """Non-negative, correlated features like ReLU'd pool3 activations."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    return np.maximum(rng.normal(size=(n, d)) @ mix + shift, 0.0)


@pytest.mark.parametrize("n,d", [(300, 32), (40, 256)], ids=["full-rank", "singular"])
def test_eigen_route_agrees_with_sqrtm(n: int, d: int) -> None:
    mu1, s1 = feature_stats(_features(n, d, seed=1))
    mu2, s2 = feature_stats(_features(n, d, seed=2, shift=0.3))
    fast = frechet_distance(mu1, s1, mu2, s2)
    reference = frechet_distance_sqrtm(mu1, s1, mu2, s2)
    assert fast > 1.0
    assert fast == pytest.approx(reference, rel=1e-6)


@pytest.mark.parametrize("n1,n2,d", [(30, 45, 256), (80, 70, 16)], ids=["n<d: gram route", "n>d: stats route"])
def test_feature_route_equals_statistics_route(n1: int, n2: int, d: int) -> None:
    f1, f2 = _features(n1, d, seed=20), _features(n2, d, seed=21, shift=0.2)
    expected = frechet_distance_sqrtm(*feature_stats(f1), *feature_stats(f2))
    assert frechet_distance_features(f1, f2) == pytest.approx(expected, rel=1e-6)
    assert abs(frechet_distance_features(f1, f1)) < 1e-9


def test_closed_form_for_commuting_covariances() -> None:
    # Diagonal covariances commute: Tr(Σ1 + Σ2 − 2(Σ1Σ2)^½) = Σ (√a − √b)², an independent formula.
    a, b = np.array([4.0, 1.0, 0.25, 9.0]), np.array([1.0, 1.0, 1.0, 0.0])
    mu1, mu2 = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 2.0, 5.0, 4.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)
    # A rotation of both covariances changes nothing.
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(4, 4)))
    rotated = frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T)
    assert rotated == pytest.approx(expected, rel=1e-9)


def test_fid_of_a_set_with_itself_is_zero_even_when_singular() -> None:
    mu, sigma = feature_stats(_features(30, 512, seed=3))  # rank 29 in 512 dims
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-6
    # Moving the mean by δ adds exactly ‖δ‖².
    delta = np.full_like(mu, 0.01)
    assert frechet_distance(mu, sigma, mu + delta, sigma) == pytest.approx(delta @ delta, rel=1e-4)


def test_eps_regularises_both_diagonals() -> None:
    mu, sigma = feature_stats(_features(20, 64, seed=4))
    zero = np.zeros((64, 64))
    # With Σ2 = 0 and eps: Tr(Σ1 + εI) + Tr(εI) − 2 Tr((Σ1 + εI) εI)^½.
    eps = 1e-3
    lam = np.clip(np.linalg.eigvalsh(sigma), 0, None) + eps
    expected = lam.sum() + 64 * eps - 2 * np.sum(np.sqrt(lam * eps))
    assert frechet_distance(mu, sigma, mu, zero, eps=eps) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda mu, s: (mu[:-1], s[:-1, :-1]), "differ in length"),
        (lambda mu, s: (mu, np.where(np.eye(len(mu)) > 0, np.nan, s)), "NaN"),
        (lambda mu, s: (mu, -np.eye(len(mu))), "not positive semi-definite"),
    ],
    ids=["shape", "nan", "not-psd"],
)
def test_bad_statistics_are_refused(bad, message: str) -> None:
    mu, sigma = feature_stats(_features(20, 8, seed=5))
    mu2, sigma2 = bad(mu, sigma)
    with pytest.raises(ValueError, match=message):
        frechet_distance(mu, sigma, mu2, sigma2)


def test_too_few_samples_for_a_covariance() -> None:
    with pytest.raises(ValueError, match="at least 2 samples"):
        feature_stats(np.ones((1, 8)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        kernel_inception_distance(np.ones((1, 8)), np.ones((5, 8)))


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")
def test_kid_matches_torchmetrics_and_cleanfid_on_the_full_sets() -> None:
    # With one subset of all n samples, every implementation sees a permutation of the same sets,
    # and the unbiased MMD² is permutation invariant: the three must agree to rounding.
    real, fake = _features(64, 128, seed=6), _features(64, 128, seed=7, shift=0.2)
    ours, std, m = kernel_inception_distance(real, fake, num_subsets=1, max_subset_size=1000)
    tm = KernelInceptionDistance(feature=torch.nn.Identity(), subsets=1, subset_size=64)
    tm.update(torch.from_numpy(real), real=True)
    tm.update(torch.from_numpy(fake), real=False)
    tm_mean, _ = tm.compute()
    assert m == 64 and std == 0.0
    assert ours > 1e-3
    assert ours == pytest.approx(float(tm_mean), rel=1e-10)
    assert ours == pytest.approx(kernel_distance(real, fake, num_subsets=1), rel=1e-10)


def test_kid_subsets_mmd_matches_torchmetrics_poly_mmd() -> None:
    x, y = _features(50, 32, seed=8), _features(50, 32, seed=9, shift=0.1)
    expected = float(poly_mmd(torch.from_numpy(x), torch.from_numpy(y)))
    assert polynomial_mmd2(x, y) == pytest.approx(expected, rel=1e-10)


def test_kid_is_seeded_and_separates_distributions() -> None:
    a, b = _features(120, 32, seed=10), _features(120, 32, seed=11)
    far = _features(120, 32, seed=12, shift=1.0)
    same1 = kernel_inception_distance(a, b, num_subsets=20, max_subset_size=50, seed=1)
    same2 = kernel_inception_distance(a, b, num_subsets=20, max_subset_size=50, seed=1)
    other_seed = kernel_inception_distance(a, b, num_subsets=20, max_subset_size=50, seed=2)
    assert same1 == same2 and same1[0] != other_seed[0]
    assert same1[1] > 0  # subsets of 50 out of 120 differ, so the subset values spread
    shifted = kernel_inception_distance(a, far, num_subsets=20, max_subset_size=50, seed=1)
    assert abs(same1[0]) < 5 * same1[1] + 1e-3 < shifted[0]


@pytest.mark.parametrize("n", [50, 300])
def test_resampled_frechet_equals_the_direct_distance(n: int) -> None:
    """The bootstrap path (one factor of the reference, a Gram-eigenvalue nuclear norm per replicate)
    gives the same distance as frechet_distance on the replicate's statistics."""
    from harness.metrics.maths.frechet import (
        bootstrap_indices,
        feature_stats,
        frechet_distance,
        frechet_distance_resampled,
        reference_factor,
    )

    rng = np.random.default_rng(3)
    gen, ref = rng.normal(size=(n, 64)), rng.normal(0.2, 1.1, size=(400, 64))
    factor = reference_factor(*feature_stats(ref))
    draws = bootstrap_indices(n, 4, seed=1)
    got = frechet_distance_resampled(gen, factor, list(draws) + [np.arange(n)])
    want = [frechet_distance(*feature_stats(gen[idx]), *feature_stats(ref)) for idx in [*draws, np.arange(n)]]
    np.testing.assert_allclose(got, want, rtol=1e-8)


def test_kid_from_precomputed_kernels_equals_kid_of_the_resampled_features():
    """The regression gate's bootstrap indexes kernels computed once: the same subsets, the same value."""
    from harness.metrics.maths.frechet import kernel_inception_distance, kid_from_kernels, polynomial_kernel

    rng = np.random.default_rng(3)
    gen, ref = rng.normal(size=(40, 16)), rng.normal(0.3, 1.0, size=(30, 16))
    rows = rng.integers(0, 40, size=40)  # a bootstrap resample, with repeats
    k_gg, k_rr, k_gr = polynomial_kernel(gen, gen), polynomial_kernel(ref, ref), polynomial_kernel(gen, ref)
    got = kid_from_kernels(k_gg, k_rr, k_gr, rows, num_subsets=7, max_subset_size=25, seed=5)
    want = kernel_inception_distance(gen[rows], ref, num_subsets=7, max_subset_size=25, seed=5)
    assert got[2] == want[2] == 25
    assert got[0] == pytest.approx(want[0], rel=1e-10, abs=1e-12) and got[1] == pytest.approx(want[1], rel=1e-8)
    assert got[0] > 0.01  # the shifted reference is really far: the comparison is not of two zeros


def test_a_reference_factor_from_features_gives_the_same_resampled_distances() -> None:
    from harness.metrics.maths.frechet import (
        frechet_distance_resampled,
        reference_factor,
        reference_factor_from_features,
    )

    rng = np.random.default_rng(7)
    gen, ref = rng.normal(size=(30, 64)), rng.normal(0.3, 1.2, size=(40, 64))
    sets = [rng.integers(0, 30, 30) for _ in range(5)]
    via_eigh = frechet_distance_resampled(gen, reference_factor(*feature_stats(ref)), sets)
    via_feats = frechet_distance_resampled(gen, reference_factor_from_features(ref), sets)
    np.testing.assert_allclose(via_feats, via_eigh, rtol=1e-8)  # the eigh route rounds at ~1e-9
