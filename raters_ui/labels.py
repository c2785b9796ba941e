"""A study's votes as a human-label file for ``imagen-bench meta-eval`` (``imagen-bench study export-labels``).

Each main rating of one question (``alignment`` by default: the question alignment metrics claim to answer;
``fidelity`` for image-quality metrics) becomes one pairwise vote between the item's two image sets, as the
rater saw them (the study store's copies, resized to the study's common size): ``image_a`` is slot 1's set,
``image_b`` slot 2's, ``vote`` the slot the rater preferred (``tie`` for "indifferent"). The format is
:mod:`harness.formats.labels` (JSONL); image paths are relative to the label file's folder. Raters below the
study's control threshold are left out by default (as ``study analyze`` does), and so are surplus ratings
beyond ``ratings_per_item``; the file's first line names none of that, so the command prints it.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig
from sqlalchemy import select

from harness.errors import UserError
from harness.formats.files import atomic_write_text
from harness.validation import as_bool
from raters_ui.analysis import first_ratings, main_ratings
from raters_ui.db import QUESTIONS, Item, ItemImage, StudyDB
from raters_ui.ratings import load_ratings
from raters_ui.stats import exclude_raters
from raters_ui.studies import get_study, store_of

VOTE_OF_SLOT = {1: "a", 2: "b"}


@dataclass(frozen=True)
class ExportedLabels:
    path: Path
    votes: int
    items: int
    excluded: list[str]
    surplus: int


def item_image_paths(db: StudyDB, study_name: str) -> dict[int, dict[int, list[Path]]]:
    """item id -> slot -> the slot's image files in the store, in display order (main items only)."""
    with db.read() as session:
        study = get_study(session, study_name)
        store = store_of(db, study)
        rows = session.execute(
            select(ItemImage.item_id, ItemImage.slot, ItemImage.file)
            .join(Item, Item.id == ItemImage.item_id)
            .where(Item.study_id == study.id, Item.kind == "main")
            .order_by(ItemImage.item_id, ItemImage.slot, ItemImage.position)
        ).all()
    out: dict[int, dict[int, list[Path]]] = defaultdict(lambda: defaultdict(list))
    for item_id, slot, name in rows:
        out[item_id][slot].append(store.path(name))
    return out


def _used_ratings(db: StudyDB, study_name: str, question: str, exclude: bool) -> tuple[pd.DataFrame, list[str], int]:
    with db.read() as session:
        study = get_study(session, study_name)
        threshold, per_item = study.control_threshold, study.ratings_per_item
    ratings = load_ratings(db, study_name)
    excluded: list[str] = []
    if exclude and len(ratings):
        ratings, excluded = exclude_raters(ratings, threshold)
    ratings, surplus = first_ratings(ratings, per_item)
    main = main_ratings(ratings)
    return main[main["question"] == question], excluded, surplus


def export_labels(
    db: StudyDB, study_name: str, out: str | Path, *, question: str = "alignment", exclude: bool = True
) -> ExportedLabels:
    """Write the study's votes on ``question`` as a pairwise label file (JSONL) at ``out``."""
    if question not in QUESTIONS:
        raise UserError(f"question must be one of {', '.join(QUESTIONS)}, got {question!r}")
    out = Path(out)
    if out.suffix.lower() != ".jsonl":
        raise UserError(f"out={out} must be a .jsonl file (the label format of imagen-bench meta-eval)")
    ratings, excluded, surplus = _used_ratings(db, study_name, question, exclude)
    if ratings.empty:
        raise UserError(f"study {study_name!r} has no {question} ratings of main items to export")
    images = item_image_paths(db, study_name)
    folder = out.parent.resolve()

    def rel(paths: list[Path]) -> list[str]:
        return [os.path.relpath(p.resolve(), folder) for p in paths]

    lines = []
    for r in ratings.itertuples(index=False):
        slot = r.preferred_slot
        vote = VOTE_OF_SLOT.get(int(slot), "tie") if pd.notna(slot) else "tie"
        sets = images[int(r.item_id)]
        row = {
            "prompt_id": str(r.prompt_id),
            "prompt": r.prompt,
            "category": r.category if isinstance(r.category, str) else None,
            "image_a": rel(sets[1]),
            "image_b": rel(sets[2]),
            "vote": vote,
            "rater": str(r.rater),
            "question": question,
            "system_a": r.system_1,
            "system_b": r.system_2,
        }
        lines.append(json.dumps(row, ensure_ascii=False))
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, "\n".join(lines) + "\n")
    return ExportedLabels(out, len(lines), int(ratings["item_id"].nunique()), excluded, surplus)


def export_labels_command(cfg: DictConfig, db: StudyDB) -> None:
    """``imagen-bench study export-labels STUDY out=<file.jsonl> [question=alignment] [exclude=true]``."""
    if not cfg.get("out"):
        raise UserError("study export-labels needs out=<labels.jsonl>")
    done = export_labels(
        db,
        str(cfg.study),
        str(cfg.out),
        question=str(cfg.get("question") or "alignment"),
        exclude=as_bool(cfg.exclude, "exclude"),
    )
    left = f"; raters left out by the control threshold: {', '.join(done.excluded)}" if done.excluded else ""
    surplus = f"; {done.surplus} surplus rating(s) left out" if done.surplus else ""
    print(f"wrote {done.path}: {done.votes} votes on {done.items} items{left}{surplus}")
    print(f"next: imagen-bench meta-eval labels={done.path} metrics=[clip_score,...]")
