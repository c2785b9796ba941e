"""The report's first screen and its metric tables: one row per run with the headline numbers, the verdict in a
line, and the metrics of each family (one metric's outputs) as narrow tables that never scroll sideways.

A *headline* output is a metric's own output (``fid`` of the ``fid`` metric, ``world_accuracy`` of the world
judge), not its breakdowns (``world_count``, ``world_text``); a *family* is all outputs one metric reports.
Both come from ``metric_info`` (never from an output's name), so a metric registered by a user is laid out the
same way.
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.formats.values import OVERALL, MetricValue, OutputInfo
from harness.formats.verdict import Verdict
from reports.collect import Run
from reports.document import Cell, Paragraph, Section, Table

MAX_METRIC_COLUMNS = 5  # cells of 2 lines (value; interval and n) ~ 150 px: 5 of them plus the run id fit 1280 px


def output_info(runs: Iterable[Run]) -> dict[str, OutputInfo]:
    info: dict[str, OutputInfo] = {}
    for r in runs:
        for k, v in r.results.metric_info.items():
            info.setdefault(k, v)
    return info


def label(info: OutputInfo | None, output: str) -> str:
    return f"{(info.label if info else None) or output} {info.arrow if info else '↓'}"


def value_cell(v: MetricValue | None) -> Cell:
    """The value on the first line; its interval and n on the second (so a column is one number wide)."""
    if v is None or v.value is None:
        return Cell("–")
    full = v.format()
    value, bracket, rest = full.partition(" [")
    n = f"n={v.n}" if v.n is not None else ""
    if bracket:
        return Cell(value, note=f"[{rest} {n}".strip())
    return Cell(full, note=n or None)


def headline_group(run: Run) -> str:
    """The row a run is judged by: ``overall`` for a prompt suite, the final stage for stage-grouped runs."""
    groups = run.groups()
    if run.group_by == "stage" and groups:
        return run.final_stage() if run.final_stage() in groups else groups[-1]
    return OVERALL


def metric_families(runs: list[Run]) -> dict[str, list[str]]:
    """metric → its outputs that some run has a value for, in the order the runs list them."""
    info = output_info(runs)
    out: dict[str, list[str]] = {}
    for o in dict.fromkeys(o for r in runs for o in r.outputs()):
        out.setdefault(info[o].metric if o in info else o, []).append(o)
    return out


def headline_outputs(runs: list[Run]) -> list[str]:
    """Per family its own output (the one named like the metric), else the family's first."""
    return [fam[fam.index(m)] if m in fam else fam[0] for m, fam in metric_families(runs).items()]


def _chunks(items: list[tuple[str, str]], size: int) -> list[list[tuple[str, str]]]:
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]


def summary_section(runs: list[Run], verdict: tuple[Verdict, object] | None) -> Section:
    """One screen: what was compared, each run's headline numbers with intervals, and the gate's verdict."""
    heads = headline_outputs(runs)
    info = output_info(runs)
    level = next((v.level for r in runs for o in heads if (v := r.value(headline_group(r), o)) and v.level), 0.95)
    blocks: list[Paragraph | Table] = []
    if verdict is not None:
        blocks.append(verdict_line(verdict[0]))
    where = {r.run_id: r.suite + ("" if headline_group(r) == OVERALL else f" · {headline_group(r)}") for r in runs}
    show_where = len(set(where.values())) > 1  # one suite, all rows "overall": the column would say nothing
    for part in _chunks([(o, "") for o in heads], MAX_METRIC_COLUMNS):
        cols = [o for o, _ in part]
        rows: list[list[Cell | str]] = []
        for r in runs:
            rows.append([Cell(r.run_id, css="runid"), *([where[r.run_id]] if show_where else [])])
            rows[-1] += [value_cell(r.value(headline_group(r), o)) for o in cols]
        first = 2 if show_where else 1
        suites = "" if show_where else f" ({next(iter(where.values()), '')}, all prompts)"
        blocks.append(
            Table(
                ["run", *(["suite · row"] if show_where else []), *[label(info.get(o), o) for o in cols]],
                rows,
                caption=f"Headline numbers{suites}: value, then its {level:.0%} interval and n (details in Runs)",
                numeric=set(range(first, first + len(cols))),
                css="summary",
            )
        )
    return Section("At a glance", "summary", blocks)


def verdict_line(v: Verdict) -> Paragraph:
    """``Gate: FAIL — early vs final on world: 3 of 40 rows fail (fid overall, …)``."""
    b, c = v.baseline.get("run_id", "?"), v.candidate.get("run_id", "?")
    failing = [f"{r.output} ({r.group})" for r in v.rows if r.verdict == "fail"]
    counts = {k: sum(r.verdict == k for r in v.rows) for k in ("fail", "inconclusive", "pass")}
    what = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    text = f"Regression gate: {v.overall.upper()} — candidate {c} against baseline {b} on {v.benchmark}: {what}"
    if failing:
        shown = ", ".join(failing[:6]) + (f" and {len(failing) - 6} more" if len(failing) > 6 else "")
        text += f". Failing: {shown}"
    return Paragraph(text + ". Every row in Regression verdict.", css=f"verdict-{v.overall}")


def family_tables(suite: str, runs: list[Run]) -> list[Table]:
    """Per metric family, rows = runs and columns = its outputs (× stages for stage-grouped runs), at most
    :data:`MAX_METRIC_COLUMNS` per table: several narrow tables rather than one that scrolls."""
    info = output_info(runs)
    groups = list(dict.fromkeys(g for r in runs for g in (r.groups() if r.group_by == "stage" else [OVERALL])))
    tables = []
    for metric, outputs in metric_families(runs).items():
        cols = [(g, o) for o in outputs for g in groups if any(r.value(g, o) for r in runs)]
        parts = _chunks(cols, MAX_METRIC_COLUMNS)
        for k, part in enumerate(parts, start=1):
            headers = ["run", *[label(info.get(o), o) + ("" if g == OVERALL else f" · {g}") for g, o in part]]
            rows: list[list[Cell | str]] = [
                [Cell(r.run_id, css="runid"), *[value_cell(r.value(g, o)) for g, o in part]] for r in runs
            ]
            more = f" ({k} of {len(parts)})" if len(parts) > 1 else ""
            tables.append(
                Table(
                    headers,
                    rows,
                    caption=f"{suite} · {metric}{more}: value, interval and n",
                    numeric=set(range(1, len(headers))),
                )
            )
    return tables
