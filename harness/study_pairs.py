"""The study-pairs file: what a human preference study is made from.

Written by ``drawbench`` (two or more DrawBench runs, or folders of another system's images)
and imported by ``imagen-bench study create``. It carries run ids so that results can be
mapped back to systems, but the rater app never shows them: on import, images are copied
into the study's own store under opaque names.

JSON, version 1::

    {
      "format": "imagen-bench.study-pairs",
      "version": 1,
      "suite": "drawbench",
      "systems": [{"id": "sys1", "run_id": "drawbench-20261124-...", "source": "/abs/runs/..."}, ...],
      "items": [
        {"prompt_id": "drawbench-0001", "prompt": "...", "category": "Colors",
         "seeds": [0, 1, 2, 3, 4, 5, 6, 7],
         "images": {"sys1": ["/abs/path/0.png", ... 8], "sys2": [... 8]}}
      ]
    }

Image paths are absolute, or relative to the pairs file's folder. Every item has the same
number of images for every system, in seed order.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.errors import UserError
from harness.jsonio import read_versioned_json
from harness.manifest import atomic_write_bytes

FORMAT = "imagen-bench.study-pairs"
VERSION = 1


@dataclass(frozen=True)
class StudySystem:
    id: str
    run_id: str
    source: str


@dataclass(frozen=True)
class StudyItem:
    prompt_id: str
    prompt: str
    category: str | None
    seeds: list[int]
    images: dict[str, list[str]]


@dataclass(frozen=True)
class StudyPairs:
    suite: str
    systems: list[StudySystem]
    items: list[StudyItem] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "suite": self.suite,
                "systems": [asdict(s) for s in self.systems], "items": [asdict(i) for i in self.items]}


def write_pairs(pairs: StudyPairs, path: str | Path) -> Path:
    validate(pairs)
    path = Path(path)
    atomic_write_bytes(path, json.dumps(pairs.to_json(), indent=1, ensure_ascii=False).encode("utf-8"))
    return path


def validate(pairs: StudyPairs) -> None:
    ids = [s.id for s in pairs.systems]
    if len(ids) < 2 or len(set(ids)) != len(ids):
        raise UserError(f"a study needs at least two distinct systems, got {ids}")
    if not pairs.items:
        raise UserError("the study has no items")
    seen = set()
    for item in pairs.items:
        if item.prompt_id in seen:
            raise UserError(f"prompt {item.prompt_id!r} appears twice in the study")
        seen.add(item.prompt_id)
        if set(item.images) != set(ids):
            raise UserError(f"prompt {item.prompt_id!r} has images for {sorted(item.images)}, expected {sorted(ids)}")
        counts = {len(v) for v in item.images.values()}
        if len(counts) != 1 or 0 in counts:
            raise UserError(f"prompt {item.prompt_id!r} has unequal or empty image sets: "
                            f"{ {k: len(v) for k, v in item.images.items()} }")


def read_pairs(path: str | Path) -> StudyPairs:
    """Load and validate a pairs file; relative image paths are resolved against its folder."""
    path = Path(path)
    raw = read_versioned_json(path, FORMAT, VERSION, "study pairs file")
    base = path.parent
    try:
        systems = [StudySystem(**s) for s in raw["systems"]]
        items = [
            StudyItem(prompt_id=i["prompt_id"], prompt=i["prompt"], category=i.get("category"),
                      seeds=[int(s) for s in i["seeds"]],
                      images={k: [str((base / p).resolve()) for p in v] for k, v in i["images"].items()})
            for i in raw["items"]
        ]
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"{path}: malformed study pairs entry ({type(err).__name__}: {err})") from None
    pairs = StudyPairs(suite=str(raw.get("suite", "")), systems=systems, items=items)
    validate(pairs)
    return pairs
