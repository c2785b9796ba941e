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
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.errors import UserError
from harness.formats.files import atomic_write_bytes
from harness.formats.jsonio import read_versioned_json
from harness.formats.manifest import ImageRecord
from harness.formats.runs import RunImages, load_run

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
        return {
            "format": FORMAT,
            "version": VERSION,
            "suite": self.suite,
            "systems": [asdict(s) for s in self.systems],
            "items": [asdict(i) for i in self.items],
        }


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
            raise UserError(
                f"prompt {item.prompt_id!r} has unequal or empty image sets: "
                f"{ {k: len(v) for k, v in item.images.items()} }"
            )


def _check_types(raw: dict, where: str) -> None:
    """Every field of a pairs file has its JSON type (a null, list or object where a string
    belongs is one line, not a crash further on)."""

    def need(ok: bool, field: str, value: object, kind: str) -> None:
        if not ok:
            shown = "null" if value is None else type(value).__name__
            raise UserError(f"{where}: {field} must be {kind}, got {shown}")

    def text(value: object, field: str, nullable: bool = False) -> None:
        need(
            isinstance(value, str) or (nullable and value is None),
            field,
            value,
            "a string" + (" or null" if nullable else ""),
        )

    text(raw.get("suite", ""), "suite")
    need(isinstance(raw.get("systems"), list), "systems", raw.get("systems"), "a list")
    need(isinstance(raw.get("items"), list), "items", raw.get("items"), "a list")
    for k, sys_ in enumerate(raw["systems"]):
        need(isinstance(sys_, dict), f"systems[{k}]", sys_, "an object")
        for key in ("id", "run_id", "source"):
            text(sys_.get(key), f"systems[{k}].{key}")
    for k, item in enumerate(raw["items"]):
        need(isinstance(item, dict), f"items[{k}]", item, "an object")
        for key in ("prompt_id", "prompt"):
            text(item.get(key), f"items[{k}].{key}")
        text(item.get("category"), f"items[{k}].category", nullable=True)
        seeds, images = item.get("seeds"), item.get("images")
        need(isinstance(seeds, list), f"items[{k}].seeds", seeds, "a list")
        for s in seeds:
            need(isinstance(s, int) and not isinstance(s, bool), f"items[{k}].seeds[]", s, "an integer")
        need(isinstance(images, dict), f"items[{k}].images", images, "an object")
        for label, paths in images.items():
            need(isinstance(paths, list), f"items[{k}].images[{label!r}]", paths, "a list")
            for p in paths:
                text(p, f"items[{k}].images[{label!r}][]")


def read_pairs(path: str | Path) -> StudyPairs:
    """Load and validate a pairs file; relative image paths are resolved against its folder."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder, not a study pairs file (give the study-pairs.json in it)")
    try:
        raw = read_versioned_json(path, FORMAT, VERSION, "study pairs file")
    except OSError as err:  # unreadable (permissions, a special file, ...)
        raise UserError(f"cannot read study pairs file {path}: {err.strerror or err}") from None
    _check_types(raw, str(path))
    base = path.parent
    try:
        systems = [StudySystem(**s) for s in raw["systems"]]
        items = [
            StudyItem(
                prompt_id=i["prompt_id"],
                prompt=i["prompt"],
                category=i.get("category"),
                seeds=[int(s) for s in i["seeds"]],
                images={k: [str((base / p).resolve()) for p in v] for k, v in i["images"].items()},
            )
            for i in raw["items"]
        ]
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"{path}: malformed study pairs entry ({type(err).__name__}: {err})") from None
    pairs = StudyPairs(suite=str(raw.get("suite", "")), systems=systems, items=items)
    validate(pairs)
    return pairs


# --- building pairs from run folders --------------------------------------------------------------


def _filter(run: RunImages, prompt_ids: set[str] | None, categories: set[str] | None) -> list[ImageRecord]:
    return [
        r
        for r in run.records
        if (prompt_ids is None or r.prompt_id in prompt_ids) and (categories is None or r.category in categories)
    ]


def _check_selection(runs: list[RunImages], prompt_ids: list[str] | None, categories: list[str] | None) -> None:
    have_ids = {r.prompt_id for run in runs for r in run.records}
    have_cats = {r.category for run in runs for r in run.records}
    for pid in prompt_ids or []:
        if pid not in have_ids:
            raise UserError(f"prompt {pid!r} is in none of the runs {', '.join(r.run_id for r in runs)}")
    for cat in categories or []:
        if cat not in have_cats:
            raise UserError(
                f"category {cat!r} is in none of the runs (categories: {', '.join(sorted(c for c in have_cats if c))})"
            )


def _check_same_images(runs: list[RunImages], chosen: list[dict[tuple[str, int], ImageRecord]]) -> None:
    union = set().union(*chosen)
    for run, recs in zip(runs, chosen):
        missing = sorted(union - set(recs))
        if missing:
            pid, seed = missing[0]
            other = next(r for r, c in zip(runs, chosen) if (pid, seed) in c)
            raise UserError(
                f"run {run.run_id} ({run.run_dir}) has no {run.stage} image for {pid} "
                f"seed {seed}, which run {other.run_id} has ({len(missing)} such images "
                f"missing); complete or resume the run, or restrict the export with "
                f"prompt_ids/categories"
            )
    for key in sorted(union):
        prompts = {run.run_id: recs[key].prompt for run, recs in zip(runs, chosen)}
        if len(set(prompts.values())) > 1:
            raise UserError(
                f"{key[0]} is a different prompt in different runs ({prompts}): the runs "
                f"come from different suite files and cannot be compared"
            )


def _suite_name(runs: list[RunImages]) -> str:
    names = {r.suite for r in runs if r.suite}
    if len(names) > 1:
        raise UserError(f"the runs come from different suites ({', '.join(sorted(names))})")
    return names.pop() if names else ""


def build_study_pairs(
    run_dirs: list[Path],
    prompt_ids: list[str] | None = None,
    categories: list[str] | None = None,
    stage: str | None = None,
) -> StudyPairs:
    """Pairs of image sets, one item per prompt, for two or more runs of the same suite.

    ``stage`` is the image stage to compare in every run; by default each run's final (highest
    resolution) stage is used, which also lets our runs and external imports be compared together.
    ``prompt_ids``/``categories`` restrict the items. Image paths in the result are absolute.
    """
    dirs = [Path(d).resolve() for d in run_dirs]
    if len(dirs) < 2:
        raise UserError(f"a study compares at least two runs, got {len(dirs)}")
    if len(set(dirs)) != len(dirs):
        raise UserError("the same run folder is given twice")
    runs = [load_run(d, stage) for d in dirs]
    if len({r.run_id for r in runs}) != len(runs):
        raise UserError(
            f"two runs share a run id ({', '.join(r.run_id for r in runs)}); results could not be mapped back to them"
        )
    _check_selection(runs, prompt_ids, categories)
    ids, cats = (set(prompt_ids) if prompt_ids else None), (set(categories) if categories else None)
    chosen = [{(r.prompt_id, r.seed): r for r in _filter(run, ids, cats)} for run in runs]
    if not any(chosen):
        raise UserError("no images match the selection in any run")
    _check_same_images(runs, chosen)
    systems = [
        StudySystem(id=f"sys{k}", run_id=run.run_id, source=str(run.run_dir)) for k, run in enumerate(runs, start=1)
    ]
    seeds_of: dict[str, list[int]] = defaultdict(list)
    for pid, seed in chosen[0]:
        seeds_of[pid].append(seed)
    items = []
    for pid in sorted(seeds_of):
        seeds = sorted(seeds_of[pid])
        first = chosen[0][(pid, seeds[0])]
        images = {
            sys.id: [str(run.run_dir / recs[(pid, s)].path) for s in seeds]
            for sys, run, recs in zip(systems, runs, chosen)
        }
        items.append(StudyItem(prompt_id=pid, prompt=first.prompt, category=first.category, seeds=seeds, images=images))
    return StudyPairs(suite=_suite_name(runs), systems=systems, items=items)


def export_study_pairs(
    run_dirs: list[Path],
    out_path: str | Path,
    prompt_ids: list[str] | None = None,
    categories: list[str] | None = None,
    stage: str | None = None,
) -> Path:
    """:func:`build_study_pairs`, written (validated) as JSON to ``out_path``; returns the path."""
    return write_pairs(build_study_pairs(run_dirs, prompt_ids, categories, stage), out_path)
