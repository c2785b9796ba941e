"""Shared by the speed benchmarks: interleaved rounds, medians, the machine's load and the conv peak.

On a shared machine absolute speeds drift with other jobs' load, so every benchmark times its variants
*interleaved* (round 1: A, B, C; round 2: A, B, C; ...) and reports the median over rounds of each
variant's time and of its ratio to the reference *within the same round*: a load change during a round
hits all variants alike. The load average at the start and at the end is printed with every table.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f}"


def machine() -> str:
    cpu = "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"Python {platform.python_version()}"
    )


@dataclass
class Rounds:
    """Seconds of each variant per round, what each returned in the last round, and its float returns."""

    seconds: dict[str, list[float]] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    numbers: dict[str, list[float]] = field(default_factory=dict)  # returns that are numbers, every round

    def median(self, name: str) -> float:
        return statistics.median(self.seconds[name])

    def ratio(self, name: str, reference: str) -> float:
        """Median over rounds of (reference time / this time) within each round: above 1 is faster."""
        pairs = zip(self.seconds[reference], self.seconds[name])
        return statistics.median(ref / mine for ref, mine in pairs)


def interleaved(
    variants: dict[str, Callable[[], Any]], rounds: int, warmup: bool = True, log: Callable[[str], None] | None = None
) -> Rounds:
    """Time every variant once per round, in the same order each round (after one untimed warm-up call)."""
    out = Rounds({name: [] for name in variants})
    if warmup:
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            if log:
                log(f"warm-up {name}: {time.perf_counter() - start:.2f} s (load {load_average()})")
    for r in range(rounds):
        for name, fn in variants.items():
            start = time.perf_counter()
            out.results[name] = fn()
            out.seconds[name].append(time.perf_counter() - start)
            if isinstance(out.results[name], float):
                out.numbers.setdefault(name, []).append(out.results[name])
            if log:
                log(f"round {r + 1}/{rounds} {name}: {out.seconds[name][-1]:.2f} s (load {load_average()})")
    return out


def conv_flops(batch: int, cin: int, cout: int, size: int, kernel: int = 3) -> float:
    return 2.0 * batch * cin * cout * kernel * kernel * size * size


def conv_peak(
    dtype: torch.dtype,
    shapes: tuple[tuple[int, int, int, int], ...] = ((16, 128, 128, 16), (16, 64, 64, 32)),
    repeats: int = 5,
) -> Callable[[], float]:
    """A callable measuring oneDNN's 3×3 convolution rate (GFLOP/s, the best of the given shapes).

    The shapes are a U-Net's typical layers (batch, in, out, side), channels_last, in inference mode; the
    rate is what the convolutions alone reach on this machine now, the ceiling of a conv-bound network.
    """
    cases = []
    for b, cin, cout, side in shapes:
        conv = torch.nn.Conv2d(cin, cout, 3, padding=1).eval().to(memory_format=torch.channels_last)
        x = torch.randn(b, cin, side, side).contiguous(memory_format=torch.channels_last)
        cases.append((conv, x, conv_flops(b, cin, cout, side)))

    def measure() -> float:
        best = 0.0
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            for conv, x, flops in cases:
                conv(x)
                start = time.perf_counter()
                for _ in range(repeats):
                    conv(x)
                best = max(best, flops * repeats / (time.perf_counter() - start) / 1e9)
        return best

    return measure
