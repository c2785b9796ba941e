"""Control (gold) trials: pairs with a known right answer, interleaved with the real items.

Two kinds, so that both questions are checked:

* ``degrade``: slot 2 is a heavily degraded copy of slot 1 (blurred, pixelated and noised).
  The right answer to the *quality* question is slot 1. Alignment is not graded: a degraded copy
  still shows the same content, so "indifferent" is a fair alignment answer.
* ``mismatch``: slot 2 holds the same system's images for a different prompt (another category
  when there is one). The right answer to the *alignment* question is slot 1; quality is not
  graded, since both sets are real samples.

``mode="both"`` alternates the two. The rater sees controls as ordinary items; the placement of
the slots on screen is randomised per assignment like every other item. The paper's COCO study
kept raters with at least 80% of controls right (``threshold``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from harness.errors import UserError
from harness.formats.study_pairs import StudyItem

MODES = ("degrade", "mismatch", "both")


@dataclass(frozen=True)
class ControlSpec:
    count: int = 0  # number of control items in the study (0 = no controls)
    every: int = 10  # one control after every `every` real items of a rater
    mode: str = "both"  # degrade | mismatch | both
    threshold: float = 0.8  # share of graded control answers a rater must get right

    def check(self) -> None:
        if self.count < 0 or self.every < 1:
            raise UserError(f"controls.count must be >= 0 and controls.every >= 1, got {self.count} and {self.every}")
        if self.mode not in MODES:
            raise UserError(f"controls.mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not 0.0 <= self.threshold <= 1.0:
            raise UserError(f"controls.threshold must be in [0, 1], got {self.threshold}")


@dataclass(frozen=True)
class ControlPlan:
    """One control item: ``good`` image paths in slot 1, ``bad`` in slot 2."""

    mode: str
    item: StudyItem
    system: str
    good: list[str]
    bad: list[str]
    expected_fidelity: int | None
    expected_alignment: int | None


def degrade(image: Image.Image, seed: int = 0) -> Image.Image:
    """An unmistakably worse copy: pixelated to 1/8 size, blurred and covered in strong noise."""
    img = image.convert("RGB")
    w, h = img.size
    small = img.resize((max(1, w // 8), max(1, h // 8)), Image.Resampling.BILINEAR)
    img = small.resize((w, h), Image.Resampling.NEAREST).filter(ImageFilter.GaussianBlur(max(1.0, w / 64)))
    rng = np.random.default_rng(seed)
    arr = np.asarray(img, dtype=np.float32) + rng.normal(0.0, 45.0, size=(h, w, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def _mismatch_partner(item: StudyItem, items: list[StudyItem], rng: random.Random) -> StudyItem:
    others = [o for o in items if o.prompt_id != item.prompt_id and o.prompt != item.prompt]
    other_cat = [o for o in others if o.category != item.category]
    pool = other_cat or others
    if not pool:
        raise UserError("mismatch controls need at least two different prompts")
    return rng.choice(pool)


def plan_controls(
    items: list[StudyItem], systems: list[str], spec: ControlSpec, rng: random.Random
) -> list[ControlPlan]:
    """Choose ``spec.count`` control items from the study's prompts and systems."""
    spec.check()
    plans: list[ControlPlan] = []
    order = rng.sample(range(len(items)), len(items))  # distinct prompts before any repeats
    for k in range(spec.count):
        mode = spec.mode if spec.mode != "both" else ("degrade", "mismatch")[k % 2]
        item = items[order[k % len(items)]]
        system = systems[(k + k // len(items)) % len(systems)]
        good = item.images[system]
        if mode == "degrade":
            plans.append(ControlPlan(mode, item, system, good, list(good), 1, None))
        else:
            other = _mismatch_partner(item, items, rng)
            bad = other.images[system][: len(good)]
            if len(bad) < len(good):
                bad = (bad * len(good))[: len(good)]
            plans.append(ControlPlan(mode, item, system, good, bad, None, 1))
    return plans
