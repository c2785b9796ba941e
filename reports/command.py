"""``imagen-bench report runs=<dirs | globs | sweep folder> [study=<name>] [verdict=<file>] [out=<dir>]``

The ablation comparison report: one self-contained HTML page (``report.html``: images and plots
embedded, opens offline) and ``report.md`` with ``plots/*.png`` and ``grids/*.png`` beside it.

* ``runs``: run folders, results.json files, sweep or runs folders (searched for results.json) or
  globs; a list ``runs='[runs/a,runs/b]'``, or give the folders as positional arguments.
* ``study``: a human preference study (``imagen-bench study``) whose systems are runs of the report:
  preference per category, rater agreement, exclusions, and which automatic metric agrees with the
  raters. ``db=`` or ``studies_dir=`` say where its database is, as for ``imagen-bench study``.
* ``verdict``: a verdict.json of ``imagen-bench regress`` (one found in a folder given as ``runs=``
  is used too); its table comes first.
* ``meta_eval``: an ``imagen-bench meta-eval`` result (``meta_eval.json`` or its folder): each metric's
  agreement with human labels, as a figure and a table.
* ``out``: the report folder (default ``<runs_dir>/reports/report-<time>``); a previous report there
  is replaced, any other non-empty folder refused.

The Python entry point is :func:`make_report`.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig

from harness.cli.hydra_app import HYDRA_FLAGS_WITH_VALUE, command
from harness.errors import UserError
from harness.validation import as_float, as_int
from reports.build import ReportOptions, build_document
from reports.study import StudyOptions
from reports.write import Written, write_staged

MAX_HTML_BYTES = 10_000_000


def report_args(args: list[str]) -> list[str]:
    """Positional arguments are run folders: ``imagen-bench report runs/a runs/b`` → ``runs=['runs/a','runs/b']``.

    An argument naming an existing path (or matching a glob) is a run even when it holds ``=`` (sweep points
    are folders like ``guidance.base=3``); any other ``key=value`` is an override.
    """
    out, runs, skip = [], [], False
    for arg in args:
        # a folder of a sweep point is named like an override (guidance.base=3): what exists is a path
        is_path = not skip and (Path(arg).exists() or bool(glob.glob(arg)))
        if not is_path and (skip or arg.startswith("-") or "=" in arg):
            skip = arg in HYDRA_FLAGS_WITH_VALUE
            out.append(arg)
        else:
            if "'" in arg:
                raise UserError(f"cannot pass the run path {arg!r} positionally (it holds a quote): use runs=")
            runs.append(arg)
    if runs:
        out.insert(0, "runs=[" + ",".join(f"'{r}'" for r in runs) + "]")
    return out


def as_list(value: Any, key: str) -> list[str]:
    if isinstance(value, (list, tuple, ListConfig)):
        items = [str(v) for v in value]
    elif value is None:
        items = []
    else:
        items = [str(value)]
    items = [i for i in items if i.strip()]
    if not items:
        raise UserError(f"{key}= is empty: give run folders, results.json files, a sweep folder or a glob")
    return items


def options_from(cfg: DictConfig) -> ReportOptions:
    s, g, p = cfg.study_analysis, cfg.grids, cfg.pareto
    clusters = tuple(str(c) for c in (s.clusters or []))
    if any(c not in ("prompt_id", "rater") for c in clusters) or len(set(clusters)) != len(clusters):
        raise UserError(f"study_analysis.clusters must list prompt_id and/or rater once each, got {list(clusters)}")
    if not isinstance(s.exclude, bool):
        raise UserError(f"study_analysis.exclude must be true or false, got {s.exclude!r}")
    study = StudyOptions(
        exclude=s.exclude,
        n_boot=as_int(s.n_boot, "study_analysis.n_boot", 10, 1_000_000),
        level=as_float(s.level, "study_analysis.level", 0.5, 0.999),
        seed=as_int(s.seed, "study_analysis.seed", 0, 2**31 - 1),
        clusters=clusters,
        tie_tolerance=as_float(s.tie_tolerance, "study_analysis.tie_tolerance", 0.0, 1e9),
    )
    return ReportOptions(
        title=None if cfg.title is None else str(cfg.title),
        pareto_x=str(p.x),
        pareto_y=str(p.y),
        grid_prompts=as_int(g.prompts, "grids.prompts", 0, 100),
        grid_seeds=as_int(g.seeds, "grids.seeds", 1, 64),
        grid_cell_px=as_int(g.cell_px, "grids.cell_px", 48, 1024),
        grid_budget_mpx=as_float(g.budget_mpx, "grids.budget_mpx", 0.01, 100.0),
        study=None if cfg.study in (None, "") else str(cfg.study),
        db=None if not cfg.db else str(cfg.db),
        studies_dir=str(cfg.studies_dir),
        study_options=study,
        verdict=None if not cfg.verdict else str(cfg.verdict),
        notes=None if not cfg.get("notes") else str(cfg.notes),
        meta_eval=None if not cfg.get("meta_eval") else str(cfg.meta_eval),
    )


def make_report(runs: list[str], out: str | Path, options: ReportOptions | None = None) -> Written:
    """Build the report of ``runs`` into ``out`` (the notebook entry of ``imagen-bench report``).

    The output folder is checked (and its temporary twin made) before any run is read, so an unwritable
    ``out`` fails at once; nothing is left at ``out`` unless the whole report was written.
    """
    return write_staged(out, lambda: build_document(runs, options or ReportOptions()))


@command("report")
def main(cfg: DictConfig) -> None:
    opts = options_from(cfg)
    runs = as_list(cfg.runs, "runs")
    if not cfg.out:
        raise UserError("out= is empty: give a folder for the report")
    written = make_report(runs, str(cfg.out), opts)
    size = written.html_bytes / 1e6
    print(f"wrote {written.html} ({size:.1f} MB, {written.figures} figures) and {written.markdown}")
    if written.html_bytes > MAX_HTML_BYTES:
        print(
            f"note: the page is over {MAX_HTML_BYTES / 1e6:.0f} MB; lower grids.budget_mpx or grids.prompts "
            "to make it smaller"
        )
