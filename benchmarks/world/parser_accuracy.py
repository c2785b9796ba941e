"""How exact is the world judge? Per-category accuracy on held-out ground truth, at several resolutions.

    python -m benchmarks.world.parser_accuracy [--n 700] [--sides 32,64,128] [--noise 0]

For each held-out world image (test split, seed 0, generated in memory) the judge scores the image
against its own caption (should be ~100%) and against a *shuffled* caption: the caption of another
image of the same category. A shuffled caption can still be true of the image (two scenes may share
a description), so the shuffled column is compared with the oracle: the same check on the
ground-truth scene itself, which is the exact chance rate. ``--noise`` adds Gaussian pixel noise
(σ in 0–255 units) to see how the parser degrades on imperfect images. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from typing import Any

import numpy as np

from benchmarks.world.dataset import WorldSettings, sample_item
from benchmarks.world.judge import judge_image, judge_scene
from benchmarks.world.render import render_scene
from harness.metrics.maths.intervals import wilson


def shuffled_partners(categories: list[str], seed: int = 0) -> list[int]:
    """For each item, the index of a different item of the same category (a derangement per category)."""
    rng = np.random.default_rng(seed)
    by_cat: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(categories):
        by_cat[c].append(i)
    partner = list(range(len(categories)))
    for idx in by_cat.values():
        if len(idx) < 2:
            continue
        shift = int(rng.integers(1, len(idx)))
        order = [idx[int(j)] for j in rng.permutation(len(idx))]
        for k, i in enumerate(order):
            partner[i] = order[(k + shift) % len(order)]
    return partner


def evaluate(n: int, side: int, noise: float = 0.0, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Per category: n, own-caption accuracy, shuffled-caption accuracy, oracle chance rate."""
    items = [sample_item(WorldSettings(seed=seed), "test", i) for i in range(n)]
    partner = shuffled_partners([it["category"] for it in items], seed)
    rng = np.random.default_rng(seed)
    rows: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for i, it in enumerate(items):
        image = np.asarray(render_scene(it["scene"], side))
        if noise:
            image = np.clip(image + rng.normal(0, noise, image.shape), 0, 255).round().astype(np.uint8)
        other = items[partner[i]]["spec"]
        r = rows[it["category"]]
        r["own"].append(judge_image(image, it["spec"])["correct"])
        r["shuffled"].append(judge_image(image, other)["correct"])
        r["oracle"].append(judge_scene(it["scene"], other)["correct"])
    return {
        c: {
            "n": len(r["own"]),
            **{k: float(np.mean(v)) for k, v in r.items()},
            "own_ci": wilson(int(sum(r["own"])), len(r["own"])),
        }
        for c, r in sorted(rows.items())
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=700)
    ap.add_argument("--sides", default="32,64,128")
    ap.add_argument("--noise", type=float, default=0.0)
    args = ap.parse_args()
    print("| side | category | n | own caption (95% Wilson) | shuffled caption | oracle chance |")
    print("|---|---|---|---|---|---|")
    for side in (int(s) for s in args.sides.split(",")):
        for cat, r in evaluate(args.n, side, args.noise).items():
            lo, hi = r["own_ci"]
            print(
                f"| {side} | {cat} | {r['n']} | {r['own']:.3f} [{lo:.3f}, {hi:.3f}] | {r['shuffled']:.3f} | "
                f"{r['oracle']:.3f} |"
            )


if __name__ == "__main__":
    main()
