"""A small synthetic study-pairs file (drawn PNGs, no model): for tests, demos and trying the app.

Each system draws its images in its own style (system ``sys1`` sharp shapes, others softer), so
the two sets on a screen look different. The PNGs carry a text chunk naming the system and run,
as generators often do, which the import must strip.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFilter, PngImagePlugin

from harness.formats.study_pairs import StudyItem, StudyPairs, StudySystem, write_pairs

if TYPE_CHECKING:
    from raters_ui.controls import ControlSpec
    from raters_ui.db import StudyDB
    from raters_ui.studies import CreatedStudy

CATEGORIES = ("Colors", "Counting", "Positional", "Text")
PROMPTS = (
    "A red colored car.",
    "Three cats sitting on a fence.",
    "A blue cup to the left of a green book.",
    "A sign that says 'open'.",
    "A yellow banana and a purple plum.",
    "Two dogs playing in the snow.",
    "A clock on top of a bookshelf.",
    "The word *bold* written in chalk <b>not html</b>.",
)
COLOURS = ((220, 40, 40), (40, 90, 220), (30, 160, 70), (230, 190, 30), (150, 60, 180), (240, 120, 30))


def draw_image(seed: int, size: int, sharp: bool) -> Image.Image:
    rng = random.Random(seed)
    bg = tuple(rng.randint(200, 245) for _ in range(3))
    img = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(img)
    for _ in range(rng.randint(2, 4)):
        x, y = rng.randint(0, size * 2 // 3), rng.randint(0, size * 2 // 3)
        r = rng.randint(size // 8, size // 3)
        shape = d.ellipse if rng.random() < 0.5 else d.rectangle
        shape((x, y, x + r, y + r), fill=rng.choice(COLOURS), outline=(20, 20, 20), width=max(1, size // 40))
    return img if sharp else img.filter(ImageFilter.GaussianBlur(size / 40))


def make_pairs(
    folder: str | Path,
    *,
    n_prompts: int = 8,
    systems: tuple[str, ...] = ("sys1", "sys2"),
    n_images: int = 8,
    size: int = 64,
    run_prefix: str = "drawbench-run",
    sizes: dict[str, int] | None = None,
) -> Path:
    """Write PNGs and ``study-pairs.json`` under ``folder``; returns the pairs file. ``sizes``
    gives some systems their own image size (as when a 64 px model meets a 96 px one)."""
    folder = Path(folder)
    items = []
    for p in range(n_prompts):
        prompt_id = f"drawbench-{p + 1:04d}"
        images: dict[str, list[str]] = {}
        for k, system in enumerate(systems):
            sys_dir = folder / f"{run_prefix}-{system}"
            sys_dir.mkdir(parents=True, exist_ok=True)
            images[system] = []
            for seed in range(n_images):
                info = PngImagePlugin.PngInfo()
                info.add_text("parameters", f"model={system} run={run_prefix}-{system} seed={seed}")
                path = sys_dir / f"{prompt_id}_{seed}.png"
                side = (sizes or {}).get(system, size)
                draw_image(p * 1000 + seed, side, sharp=k == 0).save(path, pnginfo=info)
                images[system].append(str(path.relative_to(folder)))
        prompt = PROMPTS[p % len(PROMPTS)] + ("" if p < len(PROMPTS) else f" #{p}")
        items.append(
            StudyItem(
                prompt_id=prompt_id,
                prompt=prompt,
                category=CATEGORIES[p % len(CATEGORIES)],
                seeds=list(range(n_images)),
                images=images,
            )
        )
    sys_list = [
        StudySystem(id=s, run_id=f"{run_prefix}-{s}", source=str((folder / f"{run_prefix}-{s}").resolve()))
        for s in systems
    ]
    pairs = StudyPairs(suite="drawbench", systems=sys_list, items=items)
    return write_pairs(pairs, folder / "study-pairs.json")


def make_study(
    folder: str | Path,
    name: str = "demo",
    *,
    db_url: str | None = None,
    n_prompts: int = 8,
    systems: tuple[str, ...] = ("sys1", "sys2"),
    n_images: int = 8,
    raters: int = 3,
    ratings_per_item: int = 2,
    controls: ControlSpec | None = None,
    items_per_rater: int | None = None,
    seed: int = 0,
    sizes: dict[str, int] | None = None,
    practice: int = 0,
    **spec_options,
) -> tuple[StudyDB, CreatedStudy]:
    """A synthetic study in ``folder`` (SQLite ``study.db`` unless ``db_url``): (db, CreatedStudy).

    No practice items unless asked (``practice=``), so tests reach the items at once; other
    ``StudySpec`` fields (``instructions``, ``consent``, ``min_seconds``) pass through."""
    from harness.formats.study_pairs import read_pairs
    from raters_ui.controls import ControlSpec
    from raters_ui.db import open_db
    from raters_ui.studies import StudySpec, create_study

    folder = Path(folder)
    pairs = read_pairs(make_pairs(folder / "src", n_prompts=n_prompts, systems=systems, n_images=n_images, sizes=sizes))
    db = open_db(db_url or folder / "study.db", create=True)
    spec = StudySpec(
        name=name,
        ratings_per_item=ratings_per_item,
        raters=raters,
        controls=controls or ControlSpec(),
        items_per_rater=items_per_rater,
        seed=seed,
        practice=practice,
        **spec_options,
    )
    return db, create_study(db, pairs, spec, folder / "store")


def side_of(db: StudyDB, assignment_id: int, system: str) -> str | None:
    """Server-side oracle for simulated raters: the screen side ("A"/"B") showing ``system`` (for
    a control item, ``"good"`` names its right slot), or None if the item does not show it."""
    from raters_ui.db import Assignment, Item, System

    with db.read() as s:
        a = s.get(Assignment, assignment_id)
        item = s.get(Item, a.item_id)
        labels = {
            1: s.get(System, item.system_1_id).label,
            2: s.get(System, item.system_2_id).label if item.system_2_id else None,
        }
        if item.kind == "control":
            labels = {1: "good", 2: "bad"}
    slot = next((k for k, v in labels.items() if v == system), None)
    if slot is None:
        return None
    return "A" if slot == a.a_slot else "B"
