"""The human-study section of the report: preference per category (the paper's Fig. 3), Bradley–Terry,
rater agreement, control exclusions, and the agreement of automatic metrics with the raters."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from raters_ui.agreement import OVERALL
from reports import plots
from reports.collect import Run
from reports.document import Bullets, Cell, Figure, Paragraph, Section, Table
from reports.study import PairAgreement, StudyData


def _f(x: Any, fmt: str = ".3f") -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:{fmt}}"


def _rate_interval(row: pd.Series, o: str) -> tuple[float | None, float | None, str]:
    """The bootstrap interval of a preference rate, or Wilson's where the bootstrap is undefined."""
    lo, hi = row[f"ci_low_{o}"], row[f"ci_high_{o}"]
    if not (math.isnan(lo) or math.isnan(hi)):
        return lo, hi, ""
    wlo, whi = row[f"wilson_low_{o}"], row[f"wilson_high_{o}"]
    return (None, None, "") if math.isnan(wlo) else (wlo, whi, "W")


def _rate_cell(row: pd.Series, o: str) -> Cell:
    lo, hi, mark = _rate_interval(row, o)
    text = f"{row[f'rate_{o}']:.3f}" + (f" [{lo:.3f}, {hi:.3f}]" if lo is not None else " [undefined]")
    return Cell(text + (" (Wilson)" if mark else ""))


def _prov(study: StudyData, runs: list[Run], ids: list[str]) -> list[str]:
    """The study (and how many ratings it used) and the two runs; both are detailed in the Sources section."""
    used = study.result.settings.get("ratings_used", "?")
    known = {r.run_id for r in runs}
    return [f"study {study.name!r} ({used} ratings of main items)"] + [
        i if i in known else f"{i} (not among the report's runs)" for i in ids
    ]


def overview(study: StudyData) -> Paragraph:
    o, s = study.overview, study.result.settings
    names = ", ".join(f"{label} = {run}" for label, run in o["names"].items())
    clusters = "+".join(s.get("clusters") or []) or "none (i.i.d.)"
    sim = o.get("simulated_raters", 0)
    simulated = (
        f" {sim} of the raters are SIMULATED (named simulated-NNN: automatic answers from a metric, "
        "not people; `study analyze` and this report treat them like any rater)."
        if sim
        else ""
    )
    return Paragraph(
        f"Study {study.name!r} ({o.get('suite') or 'suite not recorded'}): systems {names}; {o['items']} items, "
        f"{o['controls']} controls, {o['raters']} raters, {o['ratings_per_item']} ratings wanted per item; "
        f"{s.get('ratings_used', 0)} ratings of main items used. Intervals: {s['level']:.0%} bootstrap clustered by "
        f"{clusters} ({s['n_boot']} replicates; Wilson where the bootstrap is undefined). Raters below "
        f"{o['control_threshold']:.0%} control accuracy are {'excluded' if s['exclude'] else 'kept (exclude=false)'}."
        + simulated
    )


def preference_blocks(study: StudyData, runs: list[Run]) -> list[Any]:
    prefs = study.result.preferences
    if prefs.empty:
        return [Paragraph("No ratings of main items yet.", css="note")]
    blocks: list[Any] = []
    for k, ((a, b), part) in enumerate(prefs.groupby(["system_a", "system_b"], sort=False), start=1):
        blocks += [_preference_figure(k, str(a), str(b), part, study, runs), _preference_table(str(a), str(b), part)]
    return blocks


def _preference_figure(k: int, a: str, b: str, part: pd.DataFrame, study: StudyData, runs: list[Run]) -> Figure:
    """One pair's preference rates per question and category, as bars with their intervals."""
    panels = {}
    for q, t in part.groupby("question", sort=False):
        rows = []
        for _, r in t.iterrows():
            alo, ahi, _ = _rate_interval(r, "A")
            blo, bhi, _ = _rate_interval(r, "B")
            rows.append(
                plots.PreferenceRow(
                    str(r["category"]), int(r["n"]), r["rate_A"], r["rate_tie"], r["rate_B"], alo, ahi, blo, bhi
                )
            )
        panels[str(q)] = rows
    title = f"Human preference: A = {a} vs B = {b}"
    return Figure(
        f"preference-{k:02d}",
        "plots",
        plots.preference_plot(panels, a, b, title),
        title,
        alt=f"{title}: per category, share of ratings preferring A, indifferent, preferring B, for "
        f"{' and '.join(panels)}, with 95% intervals",
        caption="Per question and category: share of ratings preferring A (dark), indifferent (dotted) and "
        "preferring B (hatched); error bars: the interval of each preference rate (bootstrap, Wilson "
        "where the bootstrap is undefined; see the table).",
        sources=_prov(study, runs, [a, b]),
    )


PREFERENCE_HEADERS = (
    "question",
    "category",
    "ratings",
    "prompts",
    "A: {a}",
    "indifferent",
    "B: {b}",
    "p (bootstrap)",
    "p (sign test)",
    "flag",
)


def _preference_table(a: str, b: str, part: pd.DataFrame) -> Table:
    """One pair's preference rates per question and category, with their intervals and p-values."""
    rows = [
        [
            str(r["question"]),
            str(r["category"]),
            str(int(r["n"])),
            str(int(r["n_prompts"])),
            _rate_cell(r, "A"),
            _rate_cell(r, "tie"),
            _rate_cell(r, "B"),
            _f(r["p_boot"], ".3g"),
            _f(r["p_sign"], ".3g"),
            "few prompts" if r.get("few_prompts") else "",
        ]
        for _, r in part.iterrows()
    ]
    return Table(
        [h.format(a=a, b=b) for h in PREFERENCE_HEADERS],
        rows,
        caption=f"Preference rates {a} (A) vs {b} (B) [interval]",
        numeric={2, 3, 4, 5, 6, 7, 8},
    )


def bradley_terry_table(study: StudyData) -> Table | None:
    bt = study.result.bradley_terry
    if bt.empty:
        return None
    rows = [
        [
            str(r["question"]),
            str(int(r["rank"])),
            Cell(str(r["system"]), css="runid"),
            f"{r['score']:+.3f}",
            "[undefined]" if math.isnan(r["ci_low"]) else f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]",
        ]
        for _, r in bt.iterrows()
    ]
    return Table(
        ["question", "rank", "system", "log-strength", "interval"],
        rows,
        caption="Bradley–Terry log-strengths (ties as half wins; mean 0)",
        numeric={1, 3, 4},
    )


def agreement_table(study: StudyData) -> Table:
    rows = [
        [
            str(r["question"]),
            str(int(r["ratings"])),
            str(int(r["pairable_items"])),
            _f(r["alpha_nominal"]),
            _f(r["alpha_ordinal"]),
        ]
        for _, r in study.result.agreement.iterrows()
    ]
    return Table(
        ["question", "ratings", "items rated twice or more", "α nominal", "α ordinal"],
        rows,
        caption="Rater agreement (Krippendorff's α; undefined with fewer than two ratings per item)",
        numeric={1, 2, 3, 4},
    )


def controls_blocks(study: StudyData) -> list[Any]:
    c = study.result.controls
    excluded = study.result.excluded
    text = (
        f"Excluded raters (control accuracy below {study.overview['control_threshold']:.0%}): {', '.join(excluded)}."
        if excluded
        else "No rater was excluded by the control trials."
    )
    blocks: list[Any] = [Paragraph(text)]
    if not c.empty and int(c["controls"].sum()) > 0:
        rows = [
            [
                str(r["rater"]),
                str(int(r["controls"])),
                str(int(r["correct"])),
                _f(r["accuracy"]),
                "–" if pd.isna(r["passed"]) else ("yes" if r["passed"] else "no"),
            ]
            for _, r in c.iterrows()
        ]
        blocks.append(
            Table(
                ["rater", "graded controls", "correct", "accuracy", "passed"],
                rows,
                caption="Control (gold) trials per rater",
                numeric={1, 2, 3},
            )
        )
    return blocks


def metric_agreement_blocks(study: StudyData, runs: list[Run]) -> list[Any]:
    blocks: list[Any] = [
        Paragraph(
            "Which automatic metric agrees with the raters? Per item (prompt), the raters' majority preference is "
            "compared with the sign of the metric's difference between the two runs (each run's per-image scores "
            "averaged over the prompt's seeds, in the metric's own direction). Rate = agreeing / decided items, "
            "with its Wilson interval; items where the raters or the metric tie, or a score is missing, are counted "
            "apart. 0.5 is chance."
        )
    ]
    for k, pa in enumerate(study.agreements, start=1):
        blocks += _pair_agreement(study, runs, pa, k)
    if not study.agreements:
        blocks.append(Paragraph("No rated pair of systems has both runs among the report's runs.", css="note"))
    return blocks


def _pair_agreement(study: StudyData, runs: list[Run], pa: PairAgreement, k: int) -> list[Any]:
    t = pa.table
    if t.empty:
        return [Paragraph(f"{pa.system_a} vs {pa.system_b}: no per-image scores in common to compare.", css="note")]
    # a metric that does not score a category (OCR outside Text) has no row there; "overall" always stays
    t = t[(t["category"] == OVERALL) | (t["no_score"] < t["items"])]
    categories = [c for c in dict.fromkeys(t["category"]) if c != OVERALL] + [OVERALL]
    undecided = [m for m, part in t.groupby("metric", sort=False) if int(part["decided"].sum()) == 0]
    panels = {}
    for q, part in t.groupby("question", sort=False):
        series = []
        for metric, m in part[~part["metric"].isin(undecided)].groupby("metric", sort=False):
            m = m.set_index("category").reindex(categories)
            columns = (m["rate"].tolist(), m["ci_low"].tolist(), m["ci_high"].tolist())
            series.append(plots.AgreementSeries(str(metric), *columns, m["decided"].fillna(0).astype(int).tolist()))
        panels[str(q)] = series
    title = f"Automatic metrics vs raters: {pa.system_a} vs {pa.system_b}"
    fig = Figure(
        f"metric-agreement-{k:02d}",
        "plots",
        plots.agreement_plot(categories, panels, title),
        title,
        alt=f"{title}: per question and category, the share of decided items on which each metric "
        f"prefers the run the raters preferred, with Wilson intervals and n",
        caption=f"Stages compared: {pa.system_a} {pa.stage_a}, {pa.system_b} {pa.stage_b}. Metrics and "
        f"directions: {', '.join(f'{m} ' + ('↑' if h else '↓') for m, h in pa.directions.items())}."
        + (f" Not plotted (no item where both raters and metric decide): {', '.join(undecided)}." if undecided else ""),
        sources=_prov(study, runs, [pa.system_a, pa.system_b]),
    )
    return [fig, _agreement_rows(t, pa)]


AGREEMENT_HEADERS = [
    "question",
    "metric",
    "category",
    "agree / decided",
    "rate [Wilson CI]",
    "raters tied",
    "metric tied",
    "no score",
    "items",
]


def _agreement_rows(t: pd.DataFrame, pa: PairAgreement) -> Table:
    """Per question, metric and category: how often the metric picks the run the raters preferred."""
    rows = []
    for _, r in t.iterrows():
        rate = "–" if math.isnan(r["rate"]) else f"{r['rate']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
        rows.append(
            [
                str(r["question"]),
                str(r["metric"]),
                str(r["category"]),
                f"{int(r['agree'])}/{int(r['decided'])}",
                rate,
                *(str(int(r[c])) for c in ("human_ties", "metric_ties", "no_score", "items")),
            ]
        )
    return Table(
        AGREEMENT_HEADERS,
        rows,
        caption=f"Agreement of automatic metrics with the raters: {pa.system_a} vs {pa.system_b}",
        numeric={3, 4, 5, 6, 7, 8},
    )


def study_section(study: StudyData, runs: list[Run]) -> Section:
    blocks: list[Any] = [overview(study)]
    blocks += preference_blocks(study, runs)
    bt = bradley_terry_table(study)
    if bt is not None:
        blocks.append(bt)
    blocks.append(agreement_table(study))
    blocks += controls_blocks(study)
    blocks += metric_agreement_blocks(study, runs)
    notes = list(study.result.notes) + study.notes
    if notes:
        blocks.append(Bullets([n.strip() for n in notes]))
    return Section(f"Human study: {study.name}", "study", blocks)
