"""Fréchet distance at Inception's 2048 dimensions: our eigen/SVD route against scipy ``sqrtm`` (clean-fid's).

    .venv/bin/python -m benchmarks.scripts.frechet_speed [--n 10000] [--dim 2048] [--repeats 3]

Two feature sets with realistic structure (a low-rank correlated part plus noise, shifted and rescaled for
the second set) → their statistics → the distance three ways, interleaved ``--repeats`` times, median time:

  ours (stats)     harness.metrics.maths.frechet.frechet_distance: two eigh + one SVD, exact for singular Σ
  ours (features)  frechet_distance_features: the same value through an n×n SVD when n ≤ d
  scipy sqrtm      frechet_distance_sqrtm: scipy.linalg.sqrtm(Σ₁Σ₂), the TTUR / clean-fid route

The table shows seconds, the speed-up over sqrtm and the relative difference of each value from sqrtm's.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from benchmarks.scripts.timing import load_average, machine
from harness.metrics.maths.frechet import (
    feature_stats,
    frechet_distance,
    frechet_distance_features,
    frechet_distance_sqrtm,
)


def features(n: int, d: int, seed: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    basis = np.random.default_rng(0).normal(size=(64, d)) / 8  # shared structure, like a network's features
    x = rng.normal(size=(n, 64)) @ basis + 0.3 * rng.normal(size=(n, d))
    return np.abs(x * (1 + shift) + shift)  # Inception pool features are non-negative


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    start, start_load = time.perf_counter(), load_average()
    f1, f2 = features(args.n, args.dim, 1), features(args.n, args.dim, 2, shift=0.05)
    (m1, s1), (m2, s2) = feature_stats(f1), feature_stats(f2)
    runs: dict[str, Callable[[], float]] = {
        "ours (stats)": lambda: frechet_distance(m1, s1, m2, s2),
        "scipy sqrtm": lambda: frechet_distance_sqrtm(m1, s1, m2, s2),
    }
    if args.n <= args.dim:
        runs["ours (features)"] = lambda: frechet_distance_features(f1, f2)
    times: dict[str, list[float]] = {k: [] for k in runs}
    values: dict[str, float] = {}
    for _ in range(args.repeats):  # interleaved, so load changes hit every row alike
        for name, fn in runs.items():
            t0 = time.perf_counter()
            values[name] = fn()
            times[name].append(time.perf_counter() - t0)
    ref_t, ref_v = statistics.median(times["scipy sqrtm"]), values["scipy sqrtm"]
    print(f"Fréchet distance, n={args.n} per set, d={args.dim}, median of {args.repeats} interleaved runs")
    print(f"{'route':<16} {'seconds':>9} {'vs sqrtm':>9} {'value':>14} {'rel. diff':>10}")
    for name in runs:
        t = statistics.median(times[name])
        print(
            f"{name:<16} {t:>9.2f} {ref_t / t:>8.1f}x {values[name]:>14.6f} {abs(values[name] - ref_v) / ref_v:>10.1e}"
        )
    print(
        f"machine: {machine()}; load average (1/5/15 min) at start {start_load}, at end {load_average()}; "
        f"{time.perf_counter() - start:.0f} s in all"
    )


if __name__ == "__main__":
    main()
