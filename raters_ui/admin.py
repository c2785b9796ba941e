"""Progress summaries for the admin page and ``imagen-bench study analyze``."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import func, select

from raters_ui import stats
from raters_ui.db import Assignment, Item, Rater, StudyDB, System
from raters_ui.studies import get_study


def system_names(systems: list[tuple[str, str]]) -> dict[str, str]:
    """Label -> the name results use: the run id when every system has a distinct one (pairs
    built from runs label systems sys1, sys2, ...), else the label."""
    run_ids = [run_id for _, run_id in systems]
    if all(run_ids) and len(set(run_ids)) == len(run_ids):
        return {label: run_id for label, run_id in systems}
    return {label: label for label, _ in systems}


def study_overview(db: StudyDB, study_name: str) -> dict:
    with db.read() as s:
        study = get_study(s, study_name)
        systems = s.execute(select(System.label, System.run_id).where(System.study_id == study.id)
                            .order_by(System.position)).all()
        n_raters = s.scalar(select(func.count()).select_from(Rater).where(Rater.study_id == study.id))
        kinds = dict(s.execute(select(Item.kind, func.count()).where(Item.study_id == study.id)
                               .group_by(Item.kind)).all())
    return {"study": study.name, "suite": study.suite, "systems": [label for label, _ in systems],
            "names": system_names(systems), "raters": int(n_raters or 0),
            "items": int(kinds.get("main", 0)), "controls": int(kinds.get("control", 0)),
            "ratings_per_item": study.ratings_per_item, "control_every": study.control_every,
            "control_threshold": study.control_threshold}


def progress_by_category(db: StudyDB, study_name: str) -> pd.DataFrame:
    """Per category (and in total): items, ratings wanted and done, items complete, % done."""
    with db.read() as s:
        study = get_study(s, study_name)
        done = (select(Assignment.item_id, func.count().label("n"))
                .where(Assignment.completed_at.is_not(None))
                .group_by(Assignment.item_id).subquery())
        rows = s.execute(select(Item.category, func.coalesce(done.c.n, 0))
                         .outerjoin(done, done.c.item_id == Item.id)
                         .where(Item.study_id == study.id, Item.kind == "main")).all()
        k = study.ratings_per_item
    df = pd.DataFrame(rows, columns=["category", "ratings"])
    df["category"] = df["category"].fillna("(none)").astype(str)
    df["capped"] = df["ratings"].clip(upper=k)
    df["complete"] = df["ratings"] >= k
    g = df.groupby("category", sort=True).agg(items=("ratings", "size"), ratings_done=("ratings", "sum"),
                                              capped=("capped", "sum"), items_complete=("complete", "sum"))
    g.loc["all"] = g.sum()
    g["ratings_wanted"] = g["items"] * k
    g["percent"] = (100.0 * g["capped"] / g["ratings_wanted"].where(g["ratings_wanted"] > 0)).round(1)
    cols = ["category", "items", "ratings_wanted", "ratings_done", "items_complete", "percent"]
    return g.reset_index()[cols]


def progress_by_rater(db: StudyDB, study_name: str, ratings: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per rater: items and controls done, whether an item is open, control accuracy, last activity."""
    with db.read() as s:
        study = get_study(s, study_name)
        rows = s.execute(
            select(Rater.label, func.count(Assignment.completed_at).filter(Assignment.is_control.is_(False)),
                   func.count(Assignment.completed_at).filter(Assignment.is_control.is_(True)),
                   func.count(Assignment.id) - func.count(Assignment.completed_at),
                   func.max(Assignment.completed_at))
            .outerjoin(Assignment, Assignment.rater_id == Rater.id)
            .where(Rater.study_id == study.id).group_by(Rater.id, Rater.label).order_by(Rater.label)).all()
        threshold = study.control_threshold
    df = pd.DataFrame(rows, columns=["rater", "items_done", "controls_done", "open", "last_activity"])
    if ratings is not None and len(ratings):
        acc = stats.control_accuracy(ratings, threshold)
        acc = acc[["rater", "controls", "correct", "accuracy", "passed"]]
        acc = acc.rename(columns={"controls": "controls_graded", "correct": "controls_correct"})
        df = df.merge(acc, on="rater", how="left")
    return df
