"""Summaries for the admin page and ``imagen-bench study analyze``: progress, the preference
bars with their intervals, and the per-rater table with quality flags. Pure data (and one
Altair chart spec); the page itself is :mod:`raters_ui.admin_view`."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd
from sqlalchemy import func, select

from raters_ui import analysis, stats, theme
from raters_ui.db import Assignment, Item, Rater, StudyDB, System
from raters_ui.quality import QualityRules, SpeedFloor, rater_quality
from raters_ui.studies import get_study

if TYPE_CHECKING:
    from altair import FacetChart

QUESTION_NAMES = {"fidelity": "quality", "alignment": "caption"}


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
        systems = s.execute(
            select(System.label, System.run_id).where(System.study_id == study.id).order_by(System.position)
        ).all()
        n_raters = s.scalar(select(func.count()).select_from(Rater).where(Rater.study_id == study.id))
        n_simulated = s.scalar(
            select(func.count()).select_from(Rater).where(Rater.study_id == study.id, Rater.label.like("simulated-%"))
        )
        kinds = dict(
            s.execute(select(Item.kind, func.count()).where(Item.study_id == study.id).group_by(Item.kind)).all()
        )
    return {
        "study": study.name,
        "suite": study.suite,
        "systems": [label for label, _ in systems],
        "names": system_names(systems),
        "raters": int(n_raters or 0),
        "simulated_raters": int(n_simulated or 0),
        "items": int(kinds.get("main", 0)),
        "controls": int(kinds.get("control", 0)),
        "ratings_per_item": study.ratings_per_item,
        "control_every": study.control_every,
        "control_threshold": study.control_threshold,
        "practice_items": study.practice_items,
        "min_seconds": study.min_seconds,
        "custom_instructions": study.instructions is not None,
        "consent": study.consent,
    }


def progress_by_category(db: StudyDB, study_name: str) -> pd.DataFrame:
    """Per category (and in total): items, ratings wanted and done, items complete, % done."""
    with db.read() as s:
        study = get_study(s, study_name)
        done = (
            select(Assignment.item_id, func.count().label("n"))
            .where(Assignment.completed_at.is_not(None))
            .group_by(Assignment.item_id)
            .subquery()
        )
        rows = s.execute(
            select(Item.category, func.coalesce(done.c.n, 0))
            .outerjoin(done, done.c.item_id == Item.id)
            .where(Item.study_id == study.id, Item.kind == "main")
        ).all()
        k = study.ratings_per_item
    df = pd.DataFrame(rows, columns=["category", "ratings"])
    df["category"] = df["category"].fillna("(none)").astype(str)
    df["capped"] = df["ratings"].clip(upper=k)
    df["complete"] = df["ratings"] >= k
    g = df.groupby("category", sort=True).agg(
        items=("ratings", "size"),
        ratings_done=("ratings", "sum"),
        capped=("capped", "sum"),
        items_complete=("complete", "sum"),
    )
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
            select(
                Rater.label,
                func.count(Assignment.completed_at).filter(Assignment.is_control.is_(False)),
                func.count(Assignment.completed_at).filter(Assignment.is_control.is_(True)),
                func.count(Assignment.id) - func.count(Assignment.completed_at),
                func.max(Assignment.completed_at),
            )
            .outerjoin(Assignment, Assignment.rater_id == Rater.id)
            .where(Rater.study_id == study.id)
            .group_by(Rater.id, Rater.label)
            .order_by(Rater.label)
        ).all()
        threshold = study.control_threshold
    df = pd.DataFrame(rows, columns=["rater", "items_done", "controls_done", "open", "last_activity"])
    if ratings is not None and len(ratings):
        acc = stats.control_accuracy(ratings, threshold)
        acc = acc[["rater", "controls", "correct", "accuracy", "passed"]]
        acc = acc.rename(columns={"controls": "controls_graded", "correct": "controls_correct"})
        df = df.merge(acc, on="rater", how="left")
    return df


def quality_rules(overview: dict, min_seconds: float | None = None) -> QualityRules:
    """The rater checks of a study: its control threshold, and ``min_seconds`` if given, else the
    study's own floor (``study create min_seconds=``), else the floor from the data."""
    floor = min_seconds if min_seconds is not None else overview.get("min_seconds")
    return QualityRules(min_seconds=floor, control_threshold=overview["control_threshold"])


def rater_table(progress: pd.DataFrame, ratings: pd.DataFrame, rules: QualityRules) -> tuple[pd.DataFrame, SpeedFloor]:
    """Progress per rater (:func:`progress_by_rater`) with the quality checks beside it."""
    checks, floor = rater_quality(ratings, rules)
    cols = ["rater", "median_seconds", "median_client_seconds", "opened_share", "side_share", "flagged", "reason"]
    out = progress.merge(checks[cols], on="rater", how="left")
    out["flagged"] = out["flagged"].astype("boolean").fillna(False).astype(bool)
    out["reason"] = out["reason"].fillna("")
    first = ["rater", "flagged", "items_done", "median_seconds", "median_client_seconds", "opened_share", "side_share"]
    rest = [c for c in out.columns if c not in first and c != "reason"]
    return out[first + rest + ["reason"]], floor


def preference_bars(
    ratings: pd.DataFrame,
    overview: dict,
    *,
    exclude: bool = True,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Long rows for the admin chart: per rated pair, question, category and outcome the rate with
    its interval (the clustered bootstrap one; Wilson where the bootstrap is undefined), as
    ``study analyze`` counts them (control failures excluded, each item's first raters)."""
    used = ratings
    if exclude and len(used):
        used, _ = stats.exclude_raters(used, overview["control_threshold"])
    used, _ = analysis.first_ratings(used, overview["ratings_per_item"])
    prefs = analysis.preferences(
        analysis.name_systems(used, overview["names"]), n_boot=n_boot, level=level, seed=seed, clusters=stats.CLUSTERS
    )
    rows = []
    for _, r in prefs.iterrows():
        for o in ("A", "tie", "B"):
            lo, hi, source = r[f"ci_low_{o}"], r[f"ci_high_{o}"], "bootstrap"
            if math.isnan(lo):
                lo, hi, source = r[f"wilson_low_{o}"], r[f"wilson_high_{o}"], "Wilson"
            label = {"A": f"prefers {r['system_a']}", "tie": "indifferent", "B": f"prefers {r['system_b']}"}[o]
            rows.append(
                {
                    "pair": f"{r['system_a']} vs {r['system_b']}",
                    "question": QUESTION_NAMES[r["question"]],
                    "category": str(r["category"]),
                    "outcome": label,
                    "slot": o,
                    "rate": r[f"rate_{o}"],
                    "ci_low": lo,
                    "ci_high": hi,
                    "interval": source,
                    "n": int(r["n"]),
                    "prompts": int(r["n_prompts"]),
                }
            )
    cols = ["pair", "question", "category", "outcome", "slot", "rate", "ci_low", "ci_high", "interval", "n", "prompts"]
    return pd.DataFrame(rows, columns=cols)


def preference_chart(bars: pd.DataFrame, level: float = 0.95) -> FacetChart:
    """Grouped horizontal bars of one pair (outcome per category, "overall" last), one panel per
    question, with interval lines; colours of :mod:`raters_ui.theme` (AA contrast on white)."""
    import altair as alt

    outcomes = list(dict.fromkeys(bars.sort_values("slot", key=lambda s: s.map({"A": 0, "tie": 1, "B": 2}))["outcome"]))
    categories = sorted(c for c in bars["category"].unique() if c != "overall") + ["overall"]
    pair = bars["pair"].iloc[0]
    y = alt.Y("category:N", sort=categories, title=None)
    offset = alt.YOffset("outcome:N", sort=outcomes)
    base = alt.Chart(bars)
    tip = [
        "question",
        "category",
        "outcome",
        alt.Tooltip("rate:Q", format=".1%"),
        alt.Tooltip("ci_low:Q", format=".1%"),
        alt.Tooltip("ci_high:Q", format=".1%"),
        "interval",
        "n",
        "prompts",
    ]
    colour = alt.Color(
        "outcome:N",
        sort=outcomes,
        title=None,
        legend=alt.Legend(orient="top", labelLimit=400),
        scale=alt.Scale(domain=outcomes, range=[theme.CHART["a"], theme.CHART["tie"], theme.CHART["b"]]),
    )
    bar = base.mark_bar().encode(
        x=alt.X("rate:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"), title="share of ratings"),
        y=y,
        yOffset=offset,
        color=colour,
        tooltip=tip,
    )
    # Interval lines through the middle of their bar (a rule on a band scale sits at its start).
    rule = base.mark_rule(color=theme.CHART_RULE, strokeWidth=2).encode(
        x="ci_low:Q",
        x2="ci_high:Q",
        y=alt.Y("category:N", sort=categories, title=None, bandPosition=0.5),
        yOffset=alt.YOffset("outcome:N", sort=outcomes, bandPosition=0.5),
        tooltip=tip,
    )
    return (
        alt.layer(bar, rule, data=bars)
        .properties(width=380, height=alt.Step(12))
        .facet(column=alt.Column("question:N", sort=["quality", "caption"], title=None))
        .properties(
            title=f"{pair}: preference per category with {round(100 * level)}% intervals",
            description=f"Bar chart: share of ratings preferring each system of {pair}, or indifferent, "
            "per category and overall, for the quality and caption questions, with "
            "interval lines; the same numbers are in the table below.",
        )
        .configure_axis(labelColor=theme.TEXT, titleColor=theme.TEXT, labelFontSize=12, titleFontSize=12)
        .configure_header(labelColor=theme.TEXT, labelFontSize=13, labelFontWeight="bold")
        .configure_legend(labelColor=theme.TEXT)
        .configure_title(color=theme.TEXT)
    )
