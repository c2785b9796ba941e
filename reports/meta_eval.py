"""The report's "Which metric agrees with people" section, from ``imagen-bench meta-eval``'s result
(:mod:`harness.formats.meta_eval`): one figure (every output's agreement with its interval, the chance line
and the inter-rater ceiling) and the table of the same rows."""

from __future__ import annotations

import math
from pathlib import Path

from harness.formats.meta_eval import MetaEval, ordered, read_meta_eval
from reports import plots
from reports.document import Cell, Figure, Paragraph, Section, Table


def _cell(x: float) -> str:
    return f"{x:.3f}" if math.isfinite(x) else "–"


def meta_eval_section(path: str | Path) -> tuple[Section, MetaEval]:
    """The section, and the result it was drawn from (its source is listed in the Sources section)."""
    result = read_meta_eval(path)
    rows = ordered(result.rows)
    panels = {
        s: [(r.output, r.value, r.ci_low, r.ci_high, r.n) for r in rows if r.statistic == s and not r.is_ceiling]
        for s in result.statistics()
    }
    panels = {s: p for s, p in panels.items() if p}
    ceilings = {r.statistic: (r.value, r.ci_low, r.ci_high) for r in rows if r.is_ceiling}
    labels = Path(result.labels).name
    blocks: list = [
        Paragraph(
            f"Each metric's agreement with {result.labels_n} human {result.kind} labels on {result.images} images "
            f"({labels}): rank correlation with the mean rating, or the share of decided pairs where the metric "
            "prefers the side people chose. The shaded band is one rater against the rest: a metric there agrees "
            "with people as well as another person does."
        )
    ]
    if panels:
        blocks.append(
            Figure(
                "meta-eval",
                "plots",
                plots.meta_eval_plot(panels, ceilings),
                "Agreement of each metric with the human labels",
                "Dot-and-interval chart: for each metric output, its agreement with the human labels and its 95% "
                "interval, with the chance line and the one-rater-vs-the-rest ceiling.",
                sources=["meta-eval"],
            )
        )
    table_rows = [
        [Cell(r.output, css="runid"), r.statistic, _cell(r.value), r.interval(), str(r.n), r.method] for r in rows
    ]
    blocks.append(Table(["output", "statistic", "value", "95% interval", "n", "method"], table_rows, numeric={2, 4}))
    return Section("Which metric agrees with people (meta-eval)", "meta-eval", blocks), result
