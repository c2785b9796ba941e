"""A study's ratings and image views as frames, and their export (CSV or Parquet).

:func:`load_ratings` is what the analysis, the admin page and the report read: one row per rating with its
item, systems, sides and timings; ``item_rank`` numbers each item's raters in submission order and marks
those beyond ``ratings_per_item`` as ``surplus`` (see :mod:`raters_ui.studies`, "More ratings than wanted").
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig
from sqlalchemy import Select, select
from sqlalchemy.orm import aliased

from harness.errors import UserError
from harness.formats.files import atomic_write_bytes
from harness.validation import as_bool
from raters_ui.db import Assignment, ImageView, Item, Rater, Rating, StudyDB, System
from raters_ui.studies import get_study

RATING_COLUMNS = [
    "study",
    "rating_id",
    "item_id",
    "kind",
    "control_mode",
    "prompt_id",
    "prompt",
    "category",
    "rater",
    "question",
    "choice",
    "a_slot",
    "system_1",
    "system_2",
    "left_system",
    "right_system",
    "preferred_slot",
    "preferred_system",
    "expected_slot",
    "correct",
    "seconds",
    "created_at",
    "client_seconds",
    "assignment_id",
    "image_opens",
    "images_opened",
    "viewer_seconds",
    "item_rank",
    "surplus",
]
VIEW_COLUMNS = [
    "study",
    "rater",
    "assignment_id",
    "item_id",
    "kind",
    "prompt_id",
    "seq",
    "set_shown",
    "image",
    "shown_system",
    "at_seconds",
    "open_seconds",
]


def load_ratings(db: StudyDB, study_name: str) -> pd.DataFrame:
    """Every rating of a study, one row each, with the screen sides mapped back to systems.

    ``choice`` is what the rater clicked (A = left set); ``a_slot`` is the item slot shown as A;
    ``preferred_slot``/``preferred_system`` are the resolved preference (empty for indifferent);
    for controls ``expected_slot`` is the right slot (empty when that question is not graded)
    and ``correct`` whether the answer was right. Control items' second slot is labelled
    ``control:<mode>`` instead of a system. ``item_rank`` numbers a main item's raters in
    submission order; ``surplus`` marks ratings beyond the study's ``ratings_per_item`` (see the
    module doc).

    Time and looking: ``seconds`` is the server's time on the item (first served to submitted,
    :mod:`raters_ui.assign`), ``client_seconds`` the browser's own measure (may be missing);
    ``image_opens`` counts openings of the enlarged view during the item, ``images_opened`` the
    distinct single images opened, ``viewer_seconds`` the time spent in the view (the events
    themselves: :func:`load_image_views`).
    """
    s1, s2 = aliased(System), aliased(System)
    with db.read() as session:
        study = get_study(session, study_name)
        q = (
            select(
                Rating.id,
                Rating.item_id,
                Item.kind,
                Item.control_mode,
                Item.prompt_id,
                Item.prompt,
                Item.category,
                Rater.label,
                Rating.question,
                Rating.choice,
                Assignment.a_slot,
                s1.label,
                s2.label,
                Item.expected_fidelity,
                Item.expected_alignment,
                Rating.seconds,
                Rating.created_at,
                Rating.client_seconds,
                Rating.assignment_id,
            )
            .join(Item, Item.id == Rating.item_id)
            .join(Rater, Rater.id == Rating.rater_id)
            .join(Assignment, Assignment.id == Rating.assignment_id)
        )
        q = _with_systems(q, s1, s2).where(Rating.study_id == study.id).order_by(Rating.id)
        rows = session.execute(q).all()
        views = session.execute(
            select(ImageView.assignment_id, ImageView.set_shown, ImageView.image, ImageView.open_seconds).where(
                ImageView.study_id == study.id
            )
        ).all()
        wanted = study.ratings_per_item
    return _with_views(_ratings_frame(study_name, rows, wanted), views)


def _with_views(df: pd.DataFrame, views: list) -> pd.DataFrame:
    """The ratings with per-assignment summaries of their image-view events."""
    v = pd.DataFrame(views, columns=["assignment_id", "set_shown", "image", "open_seconds"])
    single = v[v["image"].notna()]
    per = pd.DataFrame(
        {
            "image_opens": v.groupby("assignment_id").size(),
            "images_opened": single.groupby("assignment_id")[["set_shown", "image"]].apply(
                lambda g: len(g.drop_duplicates())
            )
            if len(single)
            else pd.Series(dtype=int),
            "viewer_seconds": v.groupby("assignment_id")["open_seconds"].sum(min_count=1),
        }
    )
    key = df["assignment_id"].astype("int64")
    for col in ("image_opens", "images_opened"):
        df[col] = key.map(per[col]).fillna(0).astype("int64") if len(per) else 0
    df["viewer_seconds"] = key.map(per["viewer_seconds"]).astype("float64") if len(per) else 0.0
    df["viewer_seconds"] = df["viewer_seconds"].fillna(0.0)
    return df[RATING_COLUMNS]


def _with_systems(q: Select[Any], s1: Any, s2: Any) -> Select[Any]:
    """``q`` joined to the item's two systems (``s1``, ``s2``: aliases of System); a control has no second system."""
    return q.join(s1, s1.id == Item.system_1_id).outerjoin(s2, s2.id == Item.system_2_id)


def load_image_views(db: StudyDB, study_name: str) -> pd.DataFrame:
    """Every image-view event of a study, one row each (:data:`VIEW_COLUMNS`): the set as shown,
    the image (empty = the whole set), and ``shown_system``, the system whose images those were."""
    s1, s2 = aliased(System), aliased(System)
    with db.read() as session:
        study = get_study(session, study_name)
        q = (
            select(
                Rater.label,
                ImageView.assignment_id,
                Item.id,
                Item.kind,
                Item.control_mode,
                Item.prompt_id,
                ImageView.seq,
                ImageView.set_shown,
                ImageView.image,
                Assignment.a_slot,
                s1.label,
                s2.label,
                ImageView.at_seconds,
                ImageView.open_seconds,
            )
            .join(Assignment, Assignment.id == ImageView.assignment_id)
            .join(Rater, Rater.id == Assignment.rater_id)
            .join(Item, Item.id == Assignment.item_id)
        )
        q = _with_systems(q, s1, s2).where(ImageView.study_id == study.id)
        rows = session.execute(q.order_by(ImageView.assignment_id, ImageView.seq)).all()
    out = []
    for rater, aid, item_id, kind, mode, prompt_id, seq, set_shown, image, a_slot, sys1, sys2, at, took in rows:
        slots = {1: sys1, 2: sys2 if sys2 is not None else f"control:{mode}"}
        slot = a_slot if set_shown == "A" else 3 - a_slot
        out.append([study_name, rater, aid, item_id, kind, prompt_id, seq, set_shown, image, slots[slot], at, took])
    df = pd.DataFrame(out, columns=VIEW_COLUMNS)
    df["image"] = df["image"].astype("Int64")
    return df


def _rating_record(study_name: str, r: tuple) -> dict:
    (
        rating_id,
        item_id,
        kind,
        mode,
        prompt_id,
        prompt,
        category,
        rater,
        question,
        choice,
        a_slot,
        sys1,
        sys2,
        exp_f,
        exp_a,
        seconds,
        created_at,
        client_seconds,
        assignment_id,
    ) = r
    slots = {1: sys1, 2: sys2 if sys2 is not None else f"control:{mode}"}
    pref = a_slot if choice == "A" else (3 - a_slot if choice == "B" else None)
    exp = exp_f if question == "fidelity" else exp_a
    return {
        "study": study_name,
        "rating_id": rating_id,
        "item_id": item_id,
        "kind": kind,
        "control_mode": mode,
        "prompt_id": prompt_id,
        "prompt": prompt,
        "category": category,
        "rater": rater,
        "question": question,
        "choice": choice,
        "a_slot": a_slot,
        "system_1": slots[1],
        "system_2": slots[2],
        "left_system": slots[a_slot],
        "right_system": slots[3 - a_slot],
        "preferred_slot": pref,
        "preferred_system": None if pref is None else slots[pref],
        "expected_slot": exp,
        "correct": None if exp is None else pref == exp,
        "seconds": seconds,
        "created_at": created_at,
        "client_seconds": client_seconds,
        "assignment_id": assignment_id,
    }


def item_rank(ratings: pd.DataFrame) -> pd.Series:
    """Per rating, the place of its rater among the raters of its item, in submission order
    (1 = first; both answers of one submission share it)."""
    if ratings.empty:
        return pd.Series([], dtype="Int64", index=ratings.index)
    first = ratings.groupby(["item_id", "rater"])["rating_id"].transform("min")
    return first.groupby(ratings["item_id"]).rank(method="dense").astype("Int64")


def _ratings_frame(study_name: str, rows: list, wanted: int) -> pd.DataFrame:
    records = [_rating_record(study_name, tuple(r)) for r in rows]
    own = [
        c for c in RATING_COLUMNS if c not in ("item_rank", "surplus", "image_opens", "images_opened", "viewer_seconds")
    ]
    df = pd.DataFrame(records, columns=own)
    for col in ("rating_id", "item_id", "a_slot", "preferred_slot", "expected_slot", "assignment_id"):
        df[col] = df[col].astype("Int64")
    df["item_rank"] = item_rank(df)
    df["surplus"] = ((df["kind"] == "main") & (df["item_rank"] > wanted)).astype(bool)
    df["correct"] = df["correct"].astype("boolean")
    df["seconds"] = df["seconds"].astype("float64")
    df["client_seconds"] = df["client_seconds"].astype("float64")
    return df


def export_ratings(db: StudyDB, study_name: str, out: str | Path, *, include_controls: bool = True) -> Path:
    """Write the ratings of a study to ``out`` (.csv or .parquet), atomically."""
    _table_suffix(out)
    df = load_ratings(db, study_name)
    if not include_controls:
        df = df[df["kind"] == "main"]
    return write_table(df, out)


def export_image_views(db: StudyDB, study_name: str, out: str | Path) -> Path:
    """Write the image-view events of a study (:func:`load_image_views`) to a .csv or .parquet file."""
    _table_suffix(out)
    return write_table(load_image_views(db, study_name), out)


def _table_suffix(out: str | Path) -> str:
    suffix = Path(out).suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise UserError(f"export to a .csv or .parquet file, not {Path(out).name!r}")
    return suffix


def write_table(df: pd.DataFrame, out: str | Path) -> Path:
    """``df`` as CSV or Parquet (by the suffix of ``out``), written atomically."""
    out = Path(out)
    suffix = _table_suffix(out)
    buf = io.BytesIO()
    if suffix == ".csv":
        buf.write(df.to_csv(index=False).encode("utf-8"))
    else:
        df.to_parquet(buf, index=False)
    write_file(out, buf.getvalue())
    return out


def write_file(path: Path, data: bytes) -> None:
    """:func:`atomic_write_bytes` with an unwritable place as one line; a folder it had to make
    for a failed write is removed again."""
    missing = [p for p in path.absolute().parents if not p.exists()]
    try:
        atomic_write_bytes(path, data)
    except OSError as err:
        for p in missing:  # innermost first
            try:
                p.rmdir()
            except OSError:
                break
        raise UserError(f"cannot write {path}: {err.strerror or err}") from None


def export_command(cfg: DictConfig, db: StudyDB) -> None:
    """``imagen-bench study export STUDY out=<file.csv|parquet> [views_out=...] [include_controls=true]``."""
    if not cfg.out:
        raise UserError("study export needs out=<file.csv> or out=<file.parquet>")
    if Path(str(cfg.out)).is_dir():
        raise UserError(f"out={cfg.out} is a folder; give a .csv or .parquet file name")
    views = str(cfg.views_out) if cfg.get("views_out") else None
    if views and Path(views).suffix.lower() not in (".csv", ".parquet"):
        raise UserError(f"views_out must be a .csv or .parquet file, not {Path(views).name!r}")
    path = export_ratings(
        db, str(cfg.study), str(cfg.out), include_controls=as_bool(cfg.include_controls, "include_controls")
    )
    print(f"wrote {path}")
    if views:
        print(f"wrote {export_image_views(db, str(cfg.study), views)}")
