"""A human preference study for the report: its analysis, and the link to the runs' automatic scores.

The study is read from its database (``raters_ui``: the same analysis as ``imagen-bench study
analyze``); systems are named by run id, so a study system whose run is among the report's runs is
compared with that run's per-image scores (:mod:`raters_ui.agreement`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness.errors import UserError
from raters_ui.admin import study_overview
from raters_ui.agreement import item_preferences, metric_agreement, prompt_score_differences
from raters_ui.analysis import StudyAnalysis, analyze, first_ratings, name_systems, pair_outcomes, system_pairs_rated
from raters_ui.db import QUESTIONS, display_url, open_db
from raters_ui.ratings import load_ratings
from raters_ui.stats import CLUSTERS, exclude_raters
from reports.collect import Run, per_image_outputs

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass
class StudyOptions:
    exclude: bool = True
    n_boot: int = 1000
    level: float = 0.95
    seed: int = 0
    clusters: tuple[str, ...] = CLUSTERS
    tie_tolerance: float = 0.0


@dataclass
class PairAgreement:
    system_a: str  # run ids
    system_b: str
    stage_a: str | None
    stage_b: str | None
    table: pd.DataFrame  # question + raters_ui.agreement.AGREEMENT_COLUMNS
    directions: dict[str, bool]


@dataclass
class StudyData:
    name: str
    location: str
    overview: dict
    result: StudyAnalysis
    options: StudyOptions
    agreements: list[PairAgreement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def db_location(study: str, db: str | None, studies_dir: str) -> str:
    """``db=`` if given, else ``<studies_dir>/<study>/study.db`` (as ``imagen-bench study``)."""
    if not NAME_RE.match(study):
        raise UserError(f"study={study!r} is not a study name (1-100 letters, digits, '.', '_' or '-')")
    return str(db) if db else str(Path(studies_dir) / study / "study.db")


def used_ratings(ratings: pd.DataFrame, overview: dict, options: StudyOptions) -> pd.DataFrame:
    """The ratings the analysis counts: excluded raters dropped, each item's first raters, systems
    named by run id (as :func:`raters_ui.analysis.analyze` does)."""
    if options.exclude and len(ratings):
        ratings, _ = exclude_raters(ratings, overview["control_threshold"])
    ratings, _ = first_ratings(ratings, overview["ratings_per_item"])
    return name_systems(ratings, overview["names"])


def load_study(study: str, db: str | None, studies_dir: str, options: StudyOptions, runs: list[Run]) -> StudyData:
    location = db_location(study, db, studies_dir)
    handle = open_db(location)
    try:
        overview = study_overview(handle, study)
        ratings = load_ratings(handle, study)
    finally:
        handle.dispose()
    result = analyze(
        ratings,
        threshold=overview["control_threshold"],
        exclude=options.exclude,
        n_boot=options.n_boot,
        level=options.level,
        seed=options.seed,
        clusters=options.clusters,
        ratings_per_item=overview["ratings_per_item"],
        names=overview["names"],
    )
    data = StudyData(study, display_url(handle.url), overview, result, options)
    used = used_ratings(ratings, overview, options)
    by_id = {r.run_id: r for r in runs}
    for a, b in system_pairs_rated(used):
        if a not in by_id or b not in by_id:
            absent = ", ".join(x for x in (a, b) if x not in by_id)
            data.notes.append(
                f"{a} vs {b}: no automatic scores to compare with (run {absent} is not among the report's runs)"
            )
            continue
        data.agreements.append(pair_agreement(used, by_id[a], by_id[b], options))
    return data


def pair_agreement(ratings: pd.DataFrame, run_a: Run, run_b: Run, options: StudyOptions) -> PairAgreement:
    """Per question, metric and category: how often the metric picks the raters' preferred run."""
    stage_a, stage_b = run_a.final_stage(), run_b.final_stage()
    sa, sb = run_a.samples(), run_b.samples()
    sa, sb = sa[sa["stage"] == stage_a], sb[sb["stage"] == stage_b]
    directions = {
        o: run_a.results.metric_info[o].higher_is_better
        for o in per_image_outputs(run_a)
        if o in per_image_outputs(run_b)
    }
    diffs = prompt_score_differences(sa, sb, directions)
    tables = []
    for q in QUESTIONS:
        outcomes = pair_outcomes(ratings, run_a.run_id, run_b.run_id, q)
        if outcomes.empty or diffs.empty:
            continue
        t = metric_agreement(
            item_preferences(outcomes),
            diffs,
            level=options.level,
            tolerance=options.tie_tolerance,
            metrics=list(directions),
        )
        t.insert(0, "question", q)
        tables.append(t)
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return PairAgreement(run_a.run_id, run_b.run_id, stage_a, stage_b, table, directions)
