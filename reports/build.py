"""Build the ablation comparison report (a :class:`reports.document.Document`) from runs on disk.

Sections, in order: the regression verdict (when one is given or found), the runs (only the config
fields that differ, with their metrics and intervals), FID-vs-CLIP-score curves over guidance per
run family and stage, per-category bars for prompt suites, the human study (preference per
category, rater agreement, exclusions, and which automatic metric agrees with the raters), each metric's
agreement with human labels (``meta_eval=``, :mod:`reports.meta_eval`), sample grids, and the sources (every run's results.json with its sha256).
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.formats.meta_eval import MetaEval
from harness.formats.values import MetricValue, OutputInfo
from harness.formats.verdict import Verdict
from reports import plots
from reports.collect import SHORT, Run, differing_keys, families, find_verdict, is_guidance_key, load_runs, show
from reports.document import Bullets, Cell, Document, Figure, Paragraph, Section, Table
from reports.grids import cell_size, choose_prompts, render_grid
from reports.meta_eval import meta_eval_section
from reports.study import StudyData, StudyOptions, load_study
from reports.study_sections import study_section
from reports.summary import family_tables, metric_families, summary_section, value_cell
from reports.summary import output_info as metric_info


@dataclass
class ReportOptions:
    title: str | None = None
    pareto_x: str = "clip_score"
    pareto_y: str = "fid"
    grid_prompts: int = 4
    grid_seeds: int = 2
    grid_cell_px: int = 160
    grid_budget_mpx: float = 2.0
    study: str | None = None
    db: str | None = None
    studies_dir: str = "studies"
    study_options: StudyOptions = field(default_factory=StudyOptions)
    verdict: str | None = None
    notes: str | None = None  # a text file: each non-empty line is one bullet of a "Findings" section, first
    meta_eval: str | None = None  # an ``imagen-bench meta-eval`` result (meta_eval.json or its folder)


def notes_section(path: str) -> Section:
    """The findings a caller states about these runs (e.g. the demo's checks of what it expects), verbatim."""
    try:
        lines = [ln.strip() for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"report notes {path}: cannot be read as UTF-8 text ({err.__class__.__name__})") from None
    return Section("Findings", "findings", [Bullets(lines)])


def sources(runs: list[Run]) -> list[str]:
    """What a figure names: the run ids; each run's checkpoint, revision and file are listed once, in Sources."""
    return [r.run_id for r in runs]


def by_suite(runs: list[Run]) -> dict[str, list[Run]]:
    out: dict[str, list[Run]] = {}
    for r in runs:
        out.setdefault(r.suite, []).append(r)
    return out


def info_of(info: dict[str, OutputInfo], output: str) -> OutputInfo:
    """The output's recorded info; an output no run describes is labelled by its name (lower is better)."""
    return info.get(output) or OutputInfo(metric=output, version="", higher_is_better=False, label=output)


def direction(info: OutputInfo) -> str:
    return info.arrow


# --- verdict ------------------------------------------------------------------------------------


def verdict_section(verdict: Verdict, path: Any) -> Section:
    b, c = verdict.baseline.get("run_id", "?"), verdict.candidate.get("run_id", "?")
    head = Paragraph(
        f"Regression verdict: {verdict.overall.upper()} — candidate {c} against baseline {b} on "
        f"{verdict.benchmark} ({verdict.prompts.get('count', '?')} prompts; {verdict.level:.0%} "
        f"paired-bootstrap intervals, {verdict.n_boot} replicates). Source: {path}",
        css=f"verdict-{verdict.overall}",
    )
    rows = []
    for r in verdict.rows:
        imp = MetricValue(
            r.improvement, r.ci_low, r.ci_high, note=r.note or ("undefined" if r.ci_low is None else None)
        ).format()
        rows.append(
            [
                r.output,
                r.group,
                f"{r.baseline:.4g}",
                f"{r.candidate:.4g}",
                f"{r.delta:+.4g}",
                imp,
                f"{r.max_worse:g}",
                Cell(r.verdict.upper(), css=f"verdict-{r.verdict}"),
                "–" if r.prompts_to_decide is None else str(r.prompts_to_decide),
                str(r.n_prompts),
            ]
        )
    table = Table(
        [
            "output",
            "group",
            "baseline",
            "candidate",
            "Δ (candidate − baseline)",
            f"improvement [{verdict.level:.0%} CI] (positive is better)",
            "max worse",
            "verdict",
            "prompts to decide",
            "prompts",
        ],
        rows,
        caption=f"imagen-bench regress: {c} vs {b}",
        numeric={2, 3, 4, 5, 6, 8, 9},
    )
    return Section("Regression verdict", "verdict", [head, table])


# --- runs table ----------------------------------------------------------------------------------


def runs_table(suite: str, runs: list[Run]) -> Table:
    """What each run is: model, checkpoint, fingerprint and the config fields that differ between the runs."""
    keys = differing_keys(runs)
    if any(is_guidance_key(k) and k.startswith("model.") for k in keys):  # the weights sampled with are shown;
        keys = [k for k in keys if not (is_guidance_key(k) and k.startswith("guidance."))]  # not their overrides
    rows = []
    for r in runs:
        row: list[Any] = [Cell(r.run_id, css="runid"), r.model_name, r.checkpoint_short(), r.fingerprint[: SHORT * 2]]
        rows.append(row + [show(r.config.get(k, "—")) for k in keys])
    return Table(
        ["run id", "model", "checkpoint sha256", "fingerprint", *keys],
        rows,
        caption=f"{suite}: {len(runs)} run(s); config fields shown where the runs differ",
    )


def runs_section(runs: list[Run]) -> Section:
    blocks: list[Any] = [
        Paragraph(
            "Per suite, what each run is (config fields that differ between the runs; run ids and folders left "
            "out), then its numbers, one table per metric: the value, below it the interval and n, as recorded "
            "in each run's results.json. ↑ higher is better, ↓ lower is better."
        )
    ]
    for suite, members in by_suite(runs).items():
        blocks.append(runs_table(suite, members))
        blocks += family_tables(suite, members)
    return Section("Runs", "runs", blocks)


# --- guidance curves ----------------------------------------------------------------------------


def pareto_section(runs: list[Run], opts: ReportOptions) -> Section | None:
    x, y = opts.pareto_x, opts.pareto_y
    blocks: list[Any] = []
    for suite, members in by_suite(runs).items():
        where = {r.run_id: _pareto_groups(r, x, y) for r in members}
        staged = [r for r in members if where[r.run_id]]
        stages = list(dict.fromkeys(panel for r in staged for panel in where[r.run_id]))
        if not stages:
            continue
        fams = families(staged)
        panels: dict[str, list[plots.Curve]] = {}
        for stage in stages:
            panels[stage] = []
            for fam in fams:
                curve = plots.Curve(fam.label)
                for r in fam.runs:
                    group = where[r.run_id].get(stage)
                    vx, vy = (r.value(group, x), r.value(group, y)) if group else (None, None)
                    if vx and vy:
                        order = [r.guidance.get(s, 0.0) for s in fam.varying_stages()]
                        curve.points.append(
                            plots.Point(
                                vx.value,
                                vy.value,
                                fam.point_label(r),
                                vx.ci_low,
                                vx.ci_high,
                                vy.ci_low,
                                vy.ci_high,
                                order=order[0] if order else 0.0,
                            )
                        )
                if curve.points:
                    panels[stage].append(curve)
        info = metric_info(staged)
        xi, yi = info_of(info, x), info_of(info, y)
        title = f"{suite}: {yi.label or y} vs {xi.label or x} over guidance"
        png = plots.pareto_plot(panels, xi, yi, title)
        used = [r for f in fams for r in f.runs]
        fam_lines = [
            f"“{f.label}”{' (' + f.differs + ')' if f.differs and f.differs != f.label else ''}: "
            f"{', '.join(r.run_id + ' (' + f.point_label(r) + ')' for r in f.runs)}."
            for f in fams
        ]
        blocks.append(
            Figure(
                f"pareto-{_slug(suite)}",
                "plots",
                png,
                title,
                alt=f"{title}: one panel per stage ({', '.join(stages)}); {len(fams)} run famil"
                f"{'y' if len(fams) == 1 else 'ies'}, points labelled with the guidance weight w",
                caption=(
                    "Each curve is a run family (runs identical but for guidance); points are labelled with "
                    "the guidance weight w of the stage(s) that vary. Error bars: the intervals recorded in "
                    "results.json (none where undefined). " + " ".join(fam_lines)
                ),
                sources=sources(used),
            )
        )
    if not blocks:
        return None
    return Section("Guidance trade-off (FID vs CLIP score)", "pareto", blocks)


def _pareto_groups(run: Run, x: str, y: str) -> dict[str, str]:
    """Panel → results group of a run's points: a COCO run's stages; a prompt suite's ``overall`` row, in a
    panel named by the stage it was scored at (so a 32² sweep and 128² runs never share axes)."""
    if run.group_by == "stage":
        return {g: g for g in run.groups() if run.value(g, x) and run.value(g, y)}
    if not (run.value("overall", x) and run.value("overall", y)):
        return {}
    stage = run.table.stage or run.final_stage() or "?"
    return {f"{stage} (all prompts)": "overall"}


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in text).strip("-") or "x"


# --- per-category bars ----------------------------------------------------------------------------


def suites_section(runs: list[Run]) -> Section | None:
    """Per suite and metric family, one figure (a panel per output) and one long table, over the categories.
    A family with numbers only for all prompts together (a set metric on a small suite) is left to the runs
    tables: a bar chart of one group shows no category."""
    blocks: list[Any] = []
    for suite, members in by_suite(runs).items():
        cat = [r for r in members if r.group_by == "category"]
        categories = list(dict.fromkeys(g for r in cat for g in r.groups() if g != "overall")) + ["overall"]
        for metric, outputs in metric_families(cat).items():
            cats = [c for c in categories if any(r.value(c, o) for r in cat for o in outputs)]
            drawn = [r for r in cat if any(r.value(c, o) for c in cats for o in outputs)]
            if cats == ["overall"] or not drawn:
                continue
            blocks += _family_blocks(suite, metric, outputs, cats, drawn)
    if not blocks:
        return None
    return Section("Prompt suites per category", "suites", blocks)


def _family_blocks(suite: str, metric: str, outputs: list[str], cats: list[str], drawn: list[Run]) -> list[Any]:
    info = metric_info(drawn)
    panels = []
    for o in outputs:
        series = []
        for r in drawn:
            vals = [r.value(c, o) for c in cats]
            series.append(
                plots.Bars(
                    r.run_id,
                    [v.value if v and v.value is not None else math.nan for v in vals],
                    [v.ci_low if v else None for v in vals],
                    [v.ci_high if v else None for v in vals],
                )
            )
        panels.append(plots.BarPanel(info_of(info, o), series))
    names = [info_of(info, o).label or o for o in outputs]
    title = f"{suite}: {', '.join(names)} per category"
    figure = Figure(
        f"categories-{_slug(suite)}-{_slug(metric)}",
        "plots",
        plots.category_bars(cats, panels, title),
        title,
        alt=f"{title}: {len(outputs)} panel(s), bars for {len(drawn)} run(s) over {len(cats)} groups, with intervals",
        caption=f"One panel per output of {metric}, per prompt category and overall; one bar per run (legend: the "
        "runs drawn). Error bars are the recorded intervals (missing where undefined: one observation or no spread).",
        sources=sources(drawn),
    )
    one = len(outputs) == 1  # a one-output family: rows are categories; else "output: category", long format
    rows = [
        [c if one else f"{names[k]}: {c}", *[value_cell(r.value(c, o)) for r in drawn]]
        for k, o in enumerate(outputs)
        for c in cats
        if any(r.value(c, o) for r in drawn)
    ]
    arrows = ", ".join(f"{n} {direction(info_of(info, o))}" for n, o in zip(names, outputs))
    table = Table(
        ["category" if one else "output: category", *[r.run_id for r in drawn]],
        rows,
        caption=f"{suite} · {arrows} per category: value, interval and n",
        numeric=set(range(1, len(drawn) + 1)),
    )
    return [figure, table]


# --- grids ------------------------------------------------------------------------------------------


def grids_section(runs: list[Run], opts: ReportOptions) -> tuple[Section | None, list[str]]:
    blocks: list[Any] = []
    notes: list[str] = []
    plans = []
    for suite, members in by_suite(runs).items():
        with_samples = [r for r in members if r.final_stage() is not None]
        if len(with_samples) < len(members):
            notes.append(
                f"{suite}: no samples.jsonl rows for "
                f"{', '.join(r.run_id for r in members if r not in with_samples)} (not in the grids)"
            )
        if not with_samples:
            continue
        prompts, index = choose_prompts(with_samples, opts.grid_prompts, opts.grid_seeds)
        if not prompts:
            notes.append(f"{suite}: the runs share no (prompt, seed) at their final stage, so no grid")
            continue
        plans.append((suite, with_samples, prompts, index))
    n_cells = sum(len(p.seeds) * len(m) for _, m, ps, _ in plans for p in ps)
    side = cell_size(n_cells, opts.grid_cell_px, opts.grid_budget_mpx)
    for suite, members, prompts, index in plans:
        for k, p in enumerate(prompts, start=1):
            png, missing = render_grid(p, members, index, side)
            cols = "; ".join(f"[{j}] {r.run_id} ({r.final_stage()})" for j, r in enumerate(members, start=1))
            title = f"{suite} · {p.prompt_id}" + (f" ({p.category})" if p.category else "")
            caption = f"“{p.prompt}” — rows: seeds {', '.join(map(str, p.seeds))}; columns (run, stage): {cols}."
            if missing:
                caption += f" Unreadable images drawn crossed: {', '.join(missing)}."
            blocks.append(
                Figure(
                    f"grid-{_slug(suite)}-{k:02d}-{_slug(p.prompt_id)}",
                    "grids",
                    png,
                    title,
                    alt=f"Sample grid for prompt {p.prompt_id}: “{p.prompt}”, seeds "
                    f"{', '.join(map(str, p.seeds))} across {len(members)} run(s)",
                    caption=caption,
                    sources=sources(members),
                )
            )
    if not blocks and not notes:
        return None, []
    if not blocks:
        return Section("Sample grids", "grids", [Bullets(notes)]), notes
    intro = Paragraph(
        f"The same prompt and seed across runs, at each run's final stage; cells are {side} px "
        "(smaller images enlarged by pixel repetition)."
    )
    return Section("Sample grids", "grids", [intro, *blocks] + ([Bullets(notes)] if notes else [])), notes


# --- sources ----------------------------------------------------------------------------------


def sources_section(runs: list[Run], study: StudyData | None, verdict_path: Any, meta: MetaEval | None) -> Section:
    rows = [
        [
            Cell(r.run_id, css="runid"),
            f"{r.results.task} · {r.suite}",
            r.results.created,
            r.git,
            r.checkpoint_short(),
            str(r.path),
            r.sha256[:16],
        ]
        for r in runs
    ]
    blocks: list[Any] = [
        Table(
            [
                "run id",
                "task · suite",
                "created",
                "git revision",
                "checkpoint sha256",
                "results.json",
                "sha256 (first 16)",
            ],
            rows,
            caption="Every number above comes from one of these files",
        )
    ]
    extra = []
    if study is not None:
        extra.append(f"study {study.name!r} in {study.location}")
    if verdict_path is not None:
        extra.append(f"regression verdict {verdict_path}")
    if meta is not None:
        extra.append(
            f"meta-eval: labels {meta.labels}, metrics {', '.join(meta.metrics)} ({meta.created}, git {meta.git})"
        )
    if extra:
        blocks.append(Bullets(extra))
    return Section("Sources", "sources", blocks)


def build_document(run_specs: list[str], opts: ReportOptions) -> Document:
    """Read the runs (and study, verdict) and lay out the report; raises UserError on bad input."""
    runs = load_runs(run_specs)
    found = find_verdict(run_specs, opts.verdict)
    study = None
    if opts.study:
        study = load_study(opts.study, opts.db, opts.studies_dir, opts.study_options, runs)
    suites = ", ".join(by_suite(runs))
    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    doc = Document(
        opts.title or f"Ablation report: {len(runs)} run(s)",
        f"{suites} · generated {now} by imagen-bench report" + (f" · study {opts.study}" if study else ""),
    )
    doc.sections.append(summary_section(runs, found))
    if opts.notes:
        doc.sections.append(notes_section(opts.notes))
    if found is not None:
        doc.sections.append(verdict_section(*found))
    doc.sections.append(runs_section(runs))
    for section in (pareto_section(runs, opts), suites_section(runs)):
        if section is not None:
            doc.sections.append(section)
    if study is not None:
        doc.sections.append(study_section(study, runs))
    meta = None
    if opts.meta_eval:
        section, meta = meta_eval_section(opts.meta_eval)
        doc.sections.append(section)
    grids, _ = grids_section(runs, opts)
    if grids is not None:
        doc.sections.append(grids)
    doc.sections.append(sources_section(runs, study, found[1] if found else None, meta))
    doc.footer = [f"imagen-bench report · {now} · {len(runs)} run(s) · numbers as recorded in each run's results.json"]
    return doc
