"""Report plots (matplotlib's object API on the Agg canvas: no pyplot state, no display needed).

Every plot is readable in greyscale — series differ by marker, line style or hatch as well as by
colour (a palette whose lightness varies) — and every axis names its metric, unit and direction
("lower is better ↓"). Intervals are drawn where the results define them and left out (never
invented) where they are undefined.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure

from harness.formats.values import OutputInfo

# Okabe–Ito colours ordered so that neighbours differ in lightness too.
COLOURS = ("#1a1a1a", "#e69f00", "#0072b2", "#a6a6a6", "#d55e00", "#56b4e9", "#009e73", "#cc79a7")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINES = ("-", "--", ":", "-.")
HATCHES = ("", "///", "...", "xxx", "\\\\\\", "+++", "ooo", "---")
DPI = 110


def style(k: int) -> dict[str, Any]:
    return {
        "color": COLOURS[k % len(COLOURS)],
        "marker": MARKERS[k % len(MARKERS)],
        "linestyle": LINES[(k // len(COLOURS) + k) % len(LINES)],
        "hatch": HATCHES[k % len(HATCHES)],
    }


def axis_label(info: OutputInfo, axis: str) -> str:
    """``FID (lower is better ↓)``; the unit in brackets when the metric states one."""
    label = str(info.label or info.metric or "value")
    unit = f" [{info.unit}]" if info.unit else ""
    higher = info.higher_is_better
    arrow = {("x", True): "→", ("x", False): "←", ("y", True): "↑", ("y", False): "↓"}[(axis, higher)]
    return f"{label}{unit} ({'higher' if higher else 'lower'} is better {arrow})"


def to_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def _err(value: float, low: float | None, high: float | None) -> tuple[float, float]:
    """Asymmetric error-bar lengths; (nan, nan) hides the bar where the interval is undefined."""
    if low is None or high is None or not all(map(math.isfinite, (value, low, high))):
        return (math.nan, math.nan)
    return (max(0.0, value - low), max(0.0, high - value))


# --- FID vs CLIP score over guidance ----------------------------------------------------------------


@dataclass
class Point:
    x: float
    y: float
    label: str  # guidance weight
    x_low: float | None = None
    x_high: float | None = None
    y_low: float | None = None
    y_high: float | None = None
    order: float = 0.0  # position along the curve (the guidance weight)


@dataclass
class Curve:
    label: str
    points: list[Point] = field(default_factory=list)


def pareto_plot(panels: dict[str, list[Curve]], x_info: OutputInfo, y_info: OutputInfo, title: str) -> bytes:
    """One panel per stage: each family a curve through its guidance weights, points labelled."""
    n = len(panels)
    fig = Figure(figsize=(5.2 * n, 4.4), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    families = list(dict.fromkeys(c.label for curves in panels.values() for c in curves))
    for ax, (stage, curves) in zip(axes, panels.items()):
        for curve in curves:
            st = style(families.index(curve.label))
            pts = sorted(curve.points, key=lambda p: p.order)
            xs, ys = [p.x for p in pts], [p.y for p in pts]
            xerr = list(zip(*[_err(p.x, p.x_low, p.x_high) for p in pts])) or None
            yerr = list(zip(*[_err(p.y, p.y_low, p.y_high) for p in pts])) or None
            bars = ax.errorbar(
                xs,
                ys,
                xerr=xerr,
                yerr=yerr,
                color=st["color"],
                marker=st["marker"],
                linestyle=st["linestyle"],
                markersize=6,
                markeredgecolor="black",
                capsize=2,
                elinewidth=0.7,
                label=curve.label,
                zorder=3,
            )
            for line in bars[2]:  # intervals lighter than the curve, which is what the eye should follow
                line.set_alpha(0.45)
            for i, p in enumerate(pts):  # staggered so that labels of close points do not overprint
                ax.annotate(
                    p.label,
                    (p.x, p.y),
                    textcoords="offset points",
                    xytext=(6, 6 + 9 * (i % 3) - 9),
                    fontsize=8,
                    zorder=4,
                )
        ax.set_title(f"stage {stage}", fontsize=10)
        ax.set_xlabel(axis_label(x_info, "x"))
        ax.set_ylabel(axis_label(y_info, "y"))
        ax.grid(True, color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
    fig.suptitle(title, fontsize=11)
    add_legend(fig, *legend_entries(axes))  # every family drawn in any panel, once
    return to_png(fig)


def legend_entries(axes: Sequence[Any]) -> tuple[list[Any], list[str]]:
    """Handles and labels of all panels, each label once, in the order first drawn."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for handle, text in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(text, handle)
    return list(seen.values()), list(seen)


def legend_layout(labels: list[str], width_in: float, fontsize: float = 8, max_cols: int = 3) -> tuple[int, list[str]]:
    """Columns and wrapped labels of a legend that fits ``width_in`` inches: long run-family labels would
    otherwise widen the saved image past the plot, which a page then shrinks until the plot is unreadable."""
    chars = int(width_in * 72 / (0.6 * fontsize))  # characters per line at DejaVu Sans' ~0.6 em per character
    longest = max(len(label) for label in labels) + 9  # + the marker and the gaps around it (~4.8 em)
    ncol = max(1, min(max_cols, len(labels), chars // longest))
    width = max(20, chars // ncol - 9)
    # run ids and paths are not split inside a word or at a hyphen: a long one overflows rather than garbles
    return ncol, [textwrap.fill(label, width, break_long_words=False, break_on_hyphens=False) for label in labels]


def add_legend(fig: Figure, handles: list[Any], labels: list[str], max_cols: int = 3) -> None:
    """The figure's legend below its panels, laid out by :func:`legend_layout` for the figure's width."""
    if handles:
        ncol, labels = legend_layout(labels, width_in=fig.get_figwidth(), max_cols=max_cols)
        fig.legend(handles, labels, loc="outside lower center", ncol=ncol, fontsize=8, frameon=False)


# --- per-category bars --------------------------------------------------------------------------


@dataclass
class Bars:
    label: str
    values: list[float]
    lows: list[float | None]
    highs: list[float | None]


@dataclass
class BarPanel:
    """One output of a metric family: its bars per run over the categories."""

    info: OutputInfo
    series: list[Bars]


def category_bars(categories: Sequence[str], panels: list[BarPanel], title: str) -> bytes:
    """Small multiples, one panel per output of a metric family (they share categories and runs): grouped bars,
    one group per category (the "overall" group last, set apart), one bar per run. The legend lists the runs
    drawn (a run with no value anywhere is left out by the caller)."""
    n_cat = len(categories)
    n_ser = max(1, max((len(p.series) for p in panels), default=1))
    panel_w = max(5.0, 0.32 * n_cat * n_ser + 2.0)
    ncols = 2 if len(panels) > 1 and panel_w <= 7.0 else 1
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(panel_w * ncols, 3.6 * nrows + 0.8), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, panel in zip(axes, panels):
        _bars_panel(ax, categories, panel, n_ser)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=11)
    add_legend(fig, *legend_entries(axes))
    return to_png(fig)


def _bars_panel(ax: Any, categories: Sequence[str], panel: BarPanel, n_ser: int) -> None:
    n_cat, info = len(categories), panel.info
    width = 0.8 / n_ser
    for k, s in enumerate(panel.series):
        st = style(k)
        xs = [i - 0.4 + width * (k + 0.5) for i in range(n_cat)]
        vals = [v if v is not None and math.isfinite(v) else math.nan for v in s.values]
        errs = list(zip(*[_err(v, lo, hi) for v, lo, hi in zip(vals, s.lows, s.highs)]))
        ax.bar(
            xs,
            vals,
            width=width * 0.95,
            color=st["color"],
            hatch=st["hatch"],
            edgecolor="black",
            linewidth=0.6,
            label=s.label,
            yerr=errs,
            capsize=2,
            error_kw={"elinewidth": 0.8},
        )
        if n_cat * n_ser <= 24:  # values written out while there is room (a bar of 0 is otherwise invisible)
            for x, v, hi in zip(xs, vals, s.highs):
                if math.isfinite(v):
                    top = hi if hi is not None and math.isfinite(hi) else v
                    ax.annotate(
                        f"{v:.3g}",
                        (x, top),
                        textcoords="offset points",
                        xytext=(0, 3),
                        ha="center",
                        fontsize=7,
                        rotation=90 if n_ser > 3 else 0,
                    )
    tilt = n_cat > 5
    ax.set_xticks(range(n_cat), list(categories), rotation=30 if tilt else 0, ha="right" if tilt else "center")
    if "overall" in categories and n_cat > 1:
        ax.axvline(categories.index("overall") - 0.5, color="black", linestyle=":", linewidth=0.8)
    if info.bounds is not None:  # bars start at the metric's floor; the top follows the data within the range
        ax.set_ylim(info.bounds[0], min(ax.get_ylim()[1], info.bounds[1]))
    ax.set_ylabel(axis_label(info, "y"), fontsize=9)
    ax.grid(True, axis="y", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title(str(info.label or info.metric), fontsize=10)


# --- human preference (the paper's Fig. 3) --------------------------------------------------------


@dataclass
class PreferenceRow:
    category: str
    n: int
    rate_a: float
    rate_tie: float
    rate_b: float
    a_low: float | None
    a_high: float | None
    b_low: float | None
    b_high: float | None


def preference_plot(panels: dict[str, list[PreferenceRow]], name_a: str, name_b: str, title: str) -> bytes:
    """Per question a panel; per category three bars — prefers A, indifferent, prefers B — each with the
    interval of its rate (none drawn for "indifferent", whose rate is 1 − A − B)."""
    n_rows = max((len(r) for r in panels.values()), default=1)
    fig = Figure(figsize=(5.2 * len(panels), 0.75 * n_rows + 1.9), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    h = 0.26
    kinds = (
        (f"prefers A: {name_a}", COLOURS[0], "", "a"),
        ("indifferent", "#ffffff", "...", "tie"),
        (f"prefers B: {name_b}", COLOURS[1], "///", "b"),
    )
    for ax, (question, rows) in zip(axes, panels.items()):
        base = list(range(len(rows)))[::-1]
        for j, (label, colour, hatch, key) in enumerate(kinds):
            ys = [y + (1 - j) * h for y in base]
            vals = [getattr(r, f"rate_{key}") for r in rows]
            errs = None
            if key != "tie":
                errs = list(
                    zip(
                        *[
                            _err(getattr(r, f"rate_{key}"), getattr(r, f"{key}_low"), getattr(r, f"{key}_high"))
                            for r in rows
                        ]
                    )
                )
            ax.barh(
                ys,
                vals,
                height=h * 0.95,
                color=colour,
                hatch=hatch,
                edgecolor="black",
                linewidth=0.6,
                label=label,
                xerr=errs,
                capsize=3,
                error_kw={"elinewidth": 1.0, "ecolor": "#555555"},
            )
        ax.set_yticks(base, [f"{r.category} (n={r.n})" for r in rows])
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of ratings, 95% CI (higher: more often preferred)")
        ax.set_title(question, fontsize=10)
        ax.grid(True, axis="x", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
    fig.suptitle(title, fontsize=11)
    handles, labels = axes[0].get_legend_handles_labels()
    add_legend(fig, handles, labels)
    return to_png(fig)


# --- agreement of automatic metrics with the raters ----------------------------------------------


@dataclass
class AgreementSeries:
    label: str  # metric
    values: list[float]
    lows: list[float]
    highs: list[float]
    ns: list[int]


def agreement_plot(categories: Sequence[str], panels: dict[str, list[AgreementSeries]], title: str) -> bytes:
    """Per question a panel: for each metric, the share of decided items on which it picks the system
    the raters preferred, per category, with Wilson intervals; 0.5 is chance."""
    n_cat = len(categories)
    fig = Figure(figsize=(max(5.0, 0.9 * n_cat + 2) * len(panels), 4.2), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (question, series) in zip(axes, panels.items()):
        m = max(1, len(series))
        for k, s in enumerate(series):
            st = style(k)
            xs = [i + (k - (m - 1) / 2) * 0.18 for i in range(n_cat)]
            errs = list(zip(*[_err(v, lo, hi) for v, lo, hi in zip(s.values, s.lows, s.highs)]))
            ax.errorbar(
                xs,
                s.values,
                yerr=errs,
                fmt=st["marker"],
                color=st["color"],
                markeredgecolor="black",
                capsize=3,
                elinewidth=0.9,
                label=s.label,
                markersize=7,
            )
            for x, v, n in zip(xs, s.values, s.ns):
                if math.isfinite(v):
                    ax.annotate(f"n={n}", (x, v), textcoords="offset points", xytext=(4, -10), fontsize=7)
        ax.axhline(0.5, color="black", linestyle=":", linewidth=0.9)
        ax.set_xticks(range(n_cat), list(categories))
        ax.set_xlim(-0.6, n_cat - 0.2)  # room for the n labels right of the last points
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("agreement with raters (higher is better ↑)")
        ax.set_xlabel("prompt category (dotted line: chance, 0.5)")
        ax.set_title(question, fontsize=10)
        ax.grid(True, axis="y", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
    fig.suptitle(title, fontsize=11)
    handles, labels = axes[0].get_legend_handles_labels()
    add_legend(fig, handles, labels, max_cols=4)
    return to_png(fig)


# --- meta-eval: each metric's agreement with human labels ------------------------------------------

STATISTIC_RANGE = {"pairwise_accuracy": (0.0, 1.0, 0.5)}  # (low, high, chance); correlations: [-1, 1], chance 0


def meta_eval_plot(panels: dict[str, list[tuple[str, float, float, float, int]]], ceilings: dict[str, Any]) -> bytes:
    """Per statistic a panel: each output's agreement (point) and 95% interval (bar), best at the top, with
    the chance line dotted and the one-rater-vs-the-rest ceiling shaded where raters overlap.
    ``panels``: statistic -> [(output, value, low, high, n)]; ``ceilings``: statistic -> (value, low, high)."""
    tallest = max(len(rows) for rows in panels.values())
    fig = Figure(figsize=(4.2 * len(panels), 1.2 + 0.45 * tallest), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (statistic, rows) in zip(axes, panels.items()):
        low, high, chance = STATISTIC_RANGE.get(statistic, (-1.0, 1.0, 0.0))
        ys = list(range(len(rows)))[::-1]
        ceiling = ceilings.get(statistic)
        if ceiling is not None and all(map(math.isfinite, ceiling)):
            ax.axvspan(ceiling[1], ceiling[2], color="#dddddd")
            ax.axvline(ceiling[0], color="#888888", linewidth=1.0)
        for y, (output, value, lo, hi, n) in zip(ys, rows):
            err = _err(value, lo, hi)
            ax.errorbar([value], [y], xerr=[[err[0]], [err[1]]], fmt="o", color=COLOURS[2], capsize=3)
            ax.annotate(
                f"n={n}", (high + 0.03 * (high - low), y), textcoords="offset points", xytext=(4, -3), fontsize=7
            )
        ax.axvline(chance, color="black", linestyle=":", linewidth=0.9)
        ax.set_yticks(ys, [r[0] for r in rows])
        pad = 0.03 * (high - low)  # a point at the bound stays whole
        ax.set_xlim(low - pad, high + pad)
        ax.set_ylim(-0.6, len(rows) - 0.4)
        shaded = "; shaded: one rater vs the rest, 95%" if ceiling is not None else ""
        ax.set_xlabel(f"{statistic.replace('_', ' ')} (higher agrees more →)\ndotted: chance{shaded}", fontsize=9)
        ax.grid(True, axis="x", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
    return to_png(fig)
