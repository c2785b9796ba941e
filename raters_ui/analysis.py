"""A study's analysis: from the ratings frame of :func:`raters_ui.ratings.load_ratings` to tables.

Used by ``imagen-bench study analyze``, the admin page and reports. Only main items enter the
preference, Bradley–Terry and agreement tables; control items only decide rater exclusion.
Systems are named by their run ids when the study knows them (``names``).

Mid-study every table that can be computed is: Bradley–Terry needs the rated pairs to connect
the systems, so while they do not, it is computed within each connected group of three or
more systems and :attr:`StudyAnalysis.notes` says, group by group, why the rest is not there
yet. Nothing here raises on a partial study.

Rater checks (:mod:`raters_ui.quality`) flag raters who were implausibly fast, always picked
the same side or failed the controls; the result holds their table, the speed floor with its
rule, and the preference rates once with every rater and once without the flagged ones
(:attr:`StudyAnalysis.sensitivity`), beside the primary table (control failures excluded as
``exclude`` says).
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness.errors import UserError
from harness.formats.files import atomic_write_bytes
from raters_ui import quality as rq
from raters_ui import stats
from raters_ui.db import QUESTIONS

SYSTEM_COLUMNS = ("system_1", "system_2", "left_system", "right_system", "preferred_system")


def main_ratings(ratings: pd.DataFrame) -> pd.DataFrame:
    return ratings[ratings["kind"] == "main"]


def system_pairs_rated(ratings: pd.DataFrame) -> list[tuple[str, str]]:
    """The (system_1, system_2) pairs of the main items that have ratings, in first-seen order."""
    main = main_ratings(ratings)
    return list(dict.fromkeys(zip(main["system_1"], main["system_2"], strict=True)))


def name_systems(ratings: pd.DataFrame, names: dict[str, str] | None) -> pd.DataFrame:
    """The frame with system labels replaced by ``names`` (label -> run id); controls keep theirs."""
    if not names:
        return ratings
    out = ratings.copy()
    for col in SYSTEM_COLUMNS:
        out[col] = out[col].map(lambda v: names.get(v, v) if isinstance(v, str) else v)
    return out


def first_ratings(ratings: pd.DataFrame, per_item: int | None) -> tuple[pd.DataFrame, int]:
    """Main items' ratings of their first ``per_item`` raters in submission order (controls kept);
    returns the frame and how many surplus ratings were left out (see ``raters_ui.studies``)."""
    if per_item is None or ratings.empty:
        return ratings, 0
    from raters_ui.ratings import item_rank

    rank = item_rank(ratings)
    keep = (ratings["kind"] != "main") | (rank <= per_item).fillna(True).to_numpy(dtype=bool)
    return ratings[keep], int((~keep).sum())


def pair_outcomes(ratings: pd.DataFrame, system_a: str, system_b: str, question: str) -> pd.DataFrame:
    """Ratings of ``question`` on items comparing the two systems, as outcome A / B / tie."""
    m = main_ratings(ratings)
    m = m[
        (m["question"] == question)
        & (
            ((m["system_1"] == system_a) & (m["system_2"] == system_b))
            | ((m["system_1"] == system_b) & (m["system_2"] == system_a))
        )
    ]
    pref = m["preferred_system"]
    outcome = np.where(pref == system_a, "A", np.where(pref == system_b, "B", "tie"))
    return pd.DataFrame(
        {
            "prompt_id": m["prompt_id"].astype(str),
            "category": m["category"],
            "rater": m["rater"].astype(str),
            "outcome": outcome,
        }
    )


def comparisons(ratings: pd.DataFrame, question: str) -> pd.DataFrame:
    """One row per main rating of ``question``: the two systems and the winner (NA for a tie)."""
    m = main_ratings(ratings)
    m = m[m["question"] == question]
    winner = m["preferred_system"].astype(object).where(m["preferred_system"].notna(), None)
    return pd.DataFrame(
        {
            "system_1": m["system_1"],
            "system_2": m["system_2"],
            "winner": winner,
            "prompt_id": m["prompt_id"].astype(str),
            "rater": m["rater"].astype(str),
        }
    )


def agreement(ratings: pd.DataFrame) -> pd.DataFrame:
    """Krippendorff's α per question over main items: nominal (A / tie / B as categories) and
    ordinal (prefers slot 1 < indifferent < prefers slot 2). Codes are per item slot, not per
    screen side, since the side is randomised per rater."""
    rows = []
    m = main_ratings(ratings)
    for q in QUESTIONS:
        part = m[m["question"] == q]
        code = part["preferred_slot"].map({1: -1.0, 2: 1.0}).astype(float).fillna(0.0)
        long = pd.DataFrame({"unit": part["item_id"].astype(int), "rater": part["rater"].astype(str), "code": code})
        pairable = int((long.groupby("unit").size() >= 2).sum()) if len(long) else 0
        rows.append(
            {
                "question": q,
                "ratings": len(long),
                "pairable_items": pairable,
                "alpha_nominal": stats.alpha_from_long(long, unit="unit", rater="rater", value="code"),
                "alpha_ordinal": stats.alpha_from_long(long, unit="unit", rater="rater", value="code", level="ordinal"),
            }
        )
    return pd.DataFrame(rows)


@dataclass
class StudyAnalysis:
    preferences: pd.DataFrame
    bradley_terry: pd.DataFrame
    agreement: pd.DataFrame
    controls: pd.DataFrame
    excluded: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # why a table is missing or to be read with care
    quality: pd.DataFrame = field(default_factory=pd.DataFrame)  # per rater: raters_ui.quality.QUALITY_COLUMNS
    flagged: list[str] = field(default_factory=list)  # raters with any quality flag
    sensitivity: pd.DataFrame = field(default_factory=pd.DataFrame)  # preferences, raters = all | unflagged


def preferences(ratings: pd.DataFrame, **boot) -> pd.DataFrame:
    """Preference rates per rated pair, question and category (:func:`raters_ui.stats.preference_table`
    rows with ``system_a``, ``system_b``, ``question`` and ``few_prompts``)."""
    return _preferences(ratings, **boot)


def _preferences(ratings: pd.DataFrame, **boot) -> pd.DataFrame:
    prefs = []
    for a, b in system_pairs_rated(ratings):
        for q in QUESTIONS:
            frame = pair_outcomes(ratings, a, b, q)
            if len(frame):
                t = stats.preference_table(frame, by="category", **boot)
                t.insert(0, "question", q)
                t.insert(0, "system_b", b)
                t.insert(0, "system_a", a)
                t["few_prompts"] = t["n_prompts"] < stats.FEW_PROMPTS
                prefs.append(t)
    return pd.concat(prefs, ignore_index=True) if prefs else pd.DataFrame()


def _bradley_terry(ratings: pd.DataFrame, systems: list[str], notes: list[str], **boot) -> pd.DataFrame:
    """Bradley–Terry per question over each connected group of >= 3 systems (all systems when
    the rated pairs connect them); a note per group that gets no scores, saying why."""
    tables = []
    for q in QUESTIONS:
        comp = comparisons(ratings, q)
        if comp.empty:  # nothing rated yet: the preference section says so
            continue
        pairs = list(dict.fromkeys(zip(comp["system_1"], comp["system_2"], strict=True)))
        groups = stats.components(systems, pairs)
        if len(groups) > 1:
            notes.append(
                f"Bradley–Terry ({q}): not available across all {len(systems)} systems yet: "
                f"the rated pairs split them into {len(groups)} groups that no rated item links"
            )
        for g, members in enumerate(groups, start=1):
            tag = f"  {q} group {g} ({', '.join(members)})"
            if len(members) < 3:
                if len(groups) > 1:
                    why = "no rated comparison yet" if len(members) == 1 else "one pair only, see its preference rates"
                    notes.append(f"{tag}: {why}")
                continue
            part = comp[comp["system_1"].isin(members)]
            t = stats.bradley_terry(part, **boot)
            t.insert(0, "group", g)
            t.insert(0, "question", q)
            tables.append(t)
            if len(groups) > 1:
                notes.append(f"{tag}: scores within this group only")
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def sensitivity(
    ratings: pd.DataFrame, flagged: list[str], ratings_per_item: int | None, names: dict[str, str] | None, **boot
) -> pd.DataFrame:
    """Preference tables with every rater (``raters="all"``) and without the ``flagged`` ones
    (``"unflagged"``); each keeps every item's first ``ratings_per_item`` raters of its own pool."""
    tables = []
    for label, part in (("all", ratings), ("unflagged", ratings[~ratings["rater"].astype(str).isin(flagged)])):
        used, _ = first_ratings(part, ratings_per_item)
        t = _preferences(name_systems(used, names), **boot)
        if len(t):
            t.insert(0, "raters", label)
            tables.append(t)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def analyze(
    ratings: pd.DataFrame,
    *,
    threshold: float = 0.8,
    exclude: bool = True,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    clusters: tuple[str, ...] = stats.CLUSTERS,
    ratings_per_item: int | None = None,
    names: dict[str, str] | None = None,
    quality: rq.QualityRules | None = None,
) -> StudyAnalysis:
    """Preference rates per pair, question and category; Bradley–Terry (> 2 systems); α; controls;
    rater checks and the preference rates with and without flagged raters.

    ``ratings_per_item`` keeps each main item's first raters only (after exclusion); ``names``
    maps system labels to the names to report (run ids) and lists every system of the study.
    ``quality`` sets the rater checks (default: :class:`raters_ui.quality.QualityRules` with the
    control ``threshold``).
    """
    notes: list[str] = []
    rules = quality or rq.QualityRules(control_threshold=threshold)
    checks, floor = rq.rater_quality(ratings, rules)
    flagged = rq.flagged_raters(checks)
    boot = {"n_boot": n_boot, "level": level, "seed": seed, "clusters": clusters}
    both = sensitivity(ratings, flagged, ratings_per_item, names, **boot) if len(ratings) else pd.DataFrame()
    controls = stats.control_accuracy(ratings, threshold) if len(ratings) else pd.DataFrame()
    excluded: list[str] = []
    n_main = len(main_ratings(ratings))
    if exclude and len(ratings):
        ratings, excluded = stats.exclude_raters(ratings, threshold)
    ratings, surplus = first_ratings(ratings, ratings_per_item)
    if surplus:
        notes.append(
            f"{surplus} surplus rating(s) left out: items rated by more than {ratings_per_item} "
            "raters (a reservation expired and was given to another rater) count their first "
            f"{ratings_per_item} raters only"
        )
    ratings = name_systems(ratings, names)
    prefs = _preferences(ratings, **boot)
    main = main_ratings(ratings)
    systems = list(dict.fromkeys((names or {}).values())) or list(dict.fromkeys([*main["system_1"], *main["system_2"]]))
    bt = (
        _bradley_terry(ratings, systems, notes, n_boot=max(1, n_boot // 2), level=level, seed=seed, clusters=clusters)
        if len(systems) > 2
        else pd.DataFrame()
    )
    if n_main and main.empty:
        notes.append(
            f"all {n_main} ratings of main items are by raters excluded by the control trials "
            f"({', '.join(excluded)}); exclude=false shows them"
        )
    used = {
        "threshold": threshold,
        "exclude": exclude,
        **boot,
        "clusters": list(clusters),
        "ratings_per_item": ratings_per_item,
        "ratings_used": len(main),
        "surplus_left_out": surplus,
        "systems": dict(names or {}),
        "quality": _quality_settings(rules, floor),
    }
    return StudyAnalysis(prefs, bt, agreement(ratings), controls, excluded, used, notes, checks, flagged, both)


def _quality_settings(rules: rq.QualityRules, floor: rq.SpeedFloor) -> dict[str, object]:
    """The rater checks as applied: their rules and the speed floor they derived."""
    return {
        **rq.rules_dict(rules),
        "speed_floor": floor.seconds,
        "floor_rule": floor.rule,
        "floor_source": floor.source,
        "median_of_rater_medians": floor.median,
    }


def _records(df: pd.DataFrame) -> list[dict]:
    out = []
    for rec in df.to_dict(orient="records"):
        out.append(
            {
                k: (
                    None
                    if (v is pd.NA or (isinstance(v, float) and math.isnan(v)))
                    else v.item()
                    if isinstance(v, np.generic)
                    else v
                )
                for k, v in rec.items()
            }
        )
    return out


def write_analysis(result: StudyAnalysis, folder: str | Path) -> Path:
    """``analysis.json`` plus one CSV per non-empty table under ``folder`` (a study of two
    systems has no Bradley–Terry table, so no file for it)."""
    folder = Path(folder)
    tables = {
        "preferences": result.preferences,
        "bradley_terry": result.bradley_terry,
        "agreement": result.agreement,
        "controls": result.controls,
        "rater_quality": result.quality,
        "preferences_with_and_without_flagged": result.sensitivity,
    }
    new = not folder.exists()
    try:
        for name, df in tables.items():
            if len(df.columns):
                atomic_write_bytes(folder / f"{name}.csv", df.to_csv(index=False).encode("utf-8"))
        doc = {
            "settings": result.settings,
            "excluded_raters": result.excluded,
            "flagged_raters": result.flagged,
            "notes": result.notes,
            **{name: _records(df) if len(df.columns) else None for name, df in tables.items()},
        }
        atomic_write_bytes(folder / "analysis.json", json.dumps(doc, indent=1, default=str).encode("utf-8"))
    except OSError as err:
        if new:
            shutil.rmtree(folder, ignore_errors=True)
        raise UserError(f"cannot write the analysis to {folder}: {err.strerror or err}") from None
    return folder / "analysis.json"


def _interval(lo: float, hi: float, wlo: float, whi: float, fmt: str = ".3f") -> str:
    if math.isnan(lo) or math.isnan(hi):
        wilson = "" if math.isnan(wlo) else f"; Wilson {wlo:{fmt}}-{whi:{fmt}}"
        return f"[undefined{wilson}]"
    return f"[{lo:{fmt}}, {hi:{fmt}}]"


def _p(value: float) -> str:
    return "undefined" if math.isnan(value) else f"{value:.3g}"


def _method(settings: dict) -> str:
    clusters = tuple(settings.get("clusters", ()))
    kind = {
        ("prompt_id",): "prompt-clustered",
        ("prompt_id", "rater"): "two-way (prompt x rater)",
        ("rater", "prompt_id"): "two-way (prompt x rater)",
        (): "i.i.d.",
    }.get(clusters, "clustered")
    return f"{round(100 * settings['level'])}% {kind} bootstrap CI"


def _preference_lines(p: pd.DataFrame, settings: dict) -> list[str]:
    lines = []
    for (a, b, q), t in p.groupby(["system_a", "system_b", "question"], sort=False):
        lines.append(f"\n{q}: {a} (A) vs {b} (B) — preference rates, {_method(settings)}")
        for _, r in t.iterrows():
            rates = "  ".join(
                f"{label} {r[f'rate_{o}']:.3f} "
                + _interval(r[f"ci_low_{o}"], r[f"ci_high_{o}"], r[f"wilson_low_{o}"], r[f"wilson_high_{o}"])
                for label, o in (("A", "A"), ("B", "B"), ("tie", "tie"))
            )
            lines.append(
                f"  {r['category']!s:<16} n={int(r['n']):>5} prompts={int(r['n_prompts']):>4}  "
                f"{rates}  p_boot={_p(r['p_boot'])} p_sign={_p(r['p_sign'])}" + ("  [!]" if r["few_prompts"] else "")
            )
    if p["few_prompts"].any():
        lines.append(
            f"\n[!] fewer than {stats.FEW_PROMPTS} prompts: the bootstrap interval and p_boot "
            "understate the uncertainty there; p_sign assumes independent ratings. "
            "Read those rows as indicative only."
        )
    return lines


def _secs(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.1f} s"


def quality_lines(result: StudyAnalysis) -> list[str]:
    """The rater checks: the speed floor and its rule, one line per rater, and the overall
    preference rates with every rater and without the flagged ones."""
    q = result.settings.get("quality") or {}
    if result.quality.empty:
        return []
    lines = [f"\nrater checks (server time per item; speed floor {q.get('floor_rule', '?')})"]
    for _, r in result.quality.iterrows():
        side = "-" if not r["side_items"] else f"{r['side']} {r['side_share']:.2f} of {int(r['side_items'])}"
        state = f"FLAGGED: {r['reason']}" if r["flagged"] else "ok"
        lines.append(
            f"  {r['rater']:<12} items={int(r['items']):>4}  median {_secs(r['median_seconds']):>8} "
            f"(browser {_secs(r['median_client_seconds'])})  side {side:<12} "
            f"enlarged on {r['opened_share']:.0%} of items  {state}"
        )
    lines.append("flagged raters: " + (", ".join(result.flagged) or "none"))
    if result.flagged and len(result.sensitivity):
        overall = result.sensitivity[result.sensitivity["category"] == "overall"]
        lines.append("overall preference rates with every rater (all) and without the flagged ones (unflagged):")
        for _, r in overall.iterrows():
            lines.append(
                f"  {r['raters']:<9} {r['question']:<9} {r['system_a']} (A) vs {r['system_b']} (B): "
                f"A {r['rate_A']:.3f} {_interval(r['ci_low_A'], r['ci_high_A'], r['wilson_low_A'], r['wilson_high_A'])}"
                f"  B {r['rate_B']:.3f} {_interval(r['ci_low_B'], r['ci_high_B'], r['wilson_low_B'], r['wilson_high_B'])}"
                f"  n={int(r['n'])}"
            )
    return lines


def format_analysis(result: StudyAnalysis) -> str:
    """Plain-text tables for the terminal."""
    lines = []
    if len(result.preferences):
        lines += _preference_lines(result.preferences, result.settings)
    elif not any("excluded by the control trials" in n for n in result.notes):
        lines.append("no ratings of main items yet")
    if len(result.bradley_terry):
        lines.append(
            "\nBradley–Terry log-strengths (ties as half wins), "
            f"{_method(result.settings).replace(' CI', '')} intervals"
        )
        for _, r in result.bradley_terry.iterrows():
            lines.append(
                f"  {r['question']:<10} #{int(r['rank'])} {r['system']:<28} "
                f"{r['score']:+.3f} {_interval(r['ci_low'], r['ci_high'], math.nan, math.nan, '+.3f')}"
            )
    lines.append("\nagreement (Krippendorff's alpha)")
    for _, r in result.agreement.iterrows():
        items = int(r["pairable_items"])
        alphas = "  ".join(
            f"{kind} " + ("undefined" if math.isnan(r[f"alpha_{kind}"]) else f"{r[f'alpha_{kind}']:.3f}")
            for kind in ("nominal", "ordinal")
        )
        lines.append(f"  {r['question']:<10} {alphas}  ({items} items rated twice or more)")
    if result.excluded:
        lines.append(
            f"\nexcluded raters (control accuracy < {result.settings['threshold']}): " + ", ".join(result.excluded)
        )
    lines += quality_lines(result)
    if result.notes:
        lines.append("\nnotes")
        lines += [n if n.startswith("  ") else f"  {n}" for n in result.notes]
    return "\n".join(lines).lstrip("\n")


# --- automatic metrics against the raters ----------------------------------------------------------
# For each rated pair of systems whose run folders are known (the study's systems record their run
# folder), how often each per-image metric of the runs' samples.jsonl prefers the system the raters
# preferred (raters_ui.agreement), per category and overall: the metric a team should gate on.


def run_scores(folder: str) -> tuple[pd.DataFrame, dict[str, bool], str]:
    """(samples.jsonl rows at the run's scored stage, {per-image metric: higher is better}, stage);
    a UserError naming what is missing when the folder has no scores."""
    from harness.formats.results import read_results, read_samples

    path = Path(folder)
    if not (path / "results.json").is_file():
        raise UserError(f"{folder} has no results.json (score the run, or it moved)")
    results = read_results(path)
    try:
        samples = pd.DataFrame(read_samples(path))
    except (OSError, ValueError) as err:
        raise UserError(f"{folder}/samples.jsonl is unreadable ({err})") from None
    directions = {o: i.higher_is_better for o, i in results.metric_info.items() if i.per_image}
    if samples.empty or "stage" not in samples.columns or not directions:
        raise UserError(f"{folder} has no per-image scores in samples.jsonl")
    present = list(dict.fromkeys(samples["stage"].astype(str)))
    stage = str(results.table.stage or "")
    if stage not in present:
        ordered = [s for s in results.benchmark.get("stages") or [] if s in present]
        stage = ordered[-1] if ordered else present[-1]
    return samples[samples["stage"].astype(str) == stage], directions, stage


def metric_agreement_tables(
    ratings: pd.DataFrame,
    runs: dict[str, str],
    *,
    threshold: float = 0.8,
    exclude: bool = True,
    ratings_per_item: int | None = None,
    names: dict[str, str] | None = None,
    level: float = 0.95,
    tolerance: float = 0.0,
) -> tuple[pd.DataFrame, list[str]]:
    """Per rated pair, question, metric and category: the agreement rate with its Wilson interval
    (``raters_ui.agreement.AGREEMENT_COLUMNS`` plus the pair and question). ``runs`` maps a system's
    name (run id) to its run folder. The ratings are those the preference table counts (control
    failures excluded when ``exclude``, each item's first raters). Returns the table and notes on the
    pairs that could not be compared. Never raises on a missing or unscored run."""
    from raters_ui.agreement import item_preferences, metric_agreement, prompt_score_differences

    used = stats.exclude_raters(ratings, threshold)[0] if exclude and len(ratings) else ratings
    used = name_systems(first_ratings(used, ratings_per_item)[0], names)
    loaded: dict[str, tuple | str] = {}
    for name, folder in runs.items():
        try:
            loaded[name] = run_scores(folder)
        except UserError as err:
            loaded[name] = str(err)
    tables, notes = [], []
    for a, b in system_pairs_rated(used):
        why = [
            f"{x}: {loaded.get(x, 'no run folder recorded')}" for x in (a, b) if not isinstance(loaded.get(x), tuple)
        ]
        if why:
            notes.append(f"{a} vs {b}: no automatic scores to compare ({'; '.join(why)})")
            continue
        (sa, da, stage_a), (sb, db_, stage_b) = loaded[a], loaded[b]
        directions = {m: d for m, d in da.items() if db_.get(m) == d}
        diffs = prompt_score_differences(sa, sb, directions)
        for q in QUESTIONS:
            outcomes = pair_outcomes(used, a, b, q)
            if outcomes.empty or diffs.empty:
                continue
            t = metric_agreement(
                item_preferences(outcomes), diffs, level=level, tolerance=tolerance, metrics=list(directions)
            )
            for col, value in (
                ("stage_b", stage_b),
                ("stage_a", stage_a),
                ("question", q),
                ("system_b", b),
                ("system_a", a),
            ):
                t.insert(0, col, value)
            tables.append(t)
    return (pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()), notes


def _rate(r: pd.Series) -> str:
    if math.isnan(r["rate"]):
        return "undefined (no decided prompt)"
    return f"{r['rate']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"


def format_metric_agreement(table: pd.DataFrame, notes: list[str], level: float = 0.95) -> str:
    """Terminal text: per pair and question, metrics from most to least agreeing with the raters."""
    lines = [
        (
            f"\nautomatic metrics vs raters: share of decided prompts where the metric prefers the raters' "
            f"choice ({round(100 * level)}% Wilson CI; 0.5 = unrelated to the raters)"
        )
    ]
    if table.empty and not notes:
        lines.append("  no rated pair of systems with scored runs yet")
    for (a, b, q), part in table.groupby(["system_a", "system_b", "question"], sort=False) if len(table) else []:
        overall = part[part["category"] == "overall"].sort_values("rate", ascending=False, na_position="last")
        lines.append(f"  {q}: {a} (A) vs {b} (B)")
        for _, r in overall.iterrows():
            cats = part[(part["metric"] == r["metric"]) & (part["category"] != "overall")]
            per = " · ".join(
                f"{c['category']} {c['rate']:.2f} (n={int(c['decided'])})"
                if c["decided"]
                else f"{c['category']} – (n=0)"
                for _, c in cats.iterrows()
            )
            lines.append(
                f"    {r['metric']:<22} {_rate(r):<28} decided {int(r['decided'])}/{int(r['items'])} "
                f"(raters tied {int(r['human_ties'])}, metric tied {int(r['metric_ties'])}, "
                f"no score {int(r['no_score'])})"
            )
            if per:
                lines.append(f"      {per}")
        best = overall.dropna(subset=["rate"])
        if len(best):
            top = best[best["rate"] == best.iloc[0]["rate"]]["metric"].tolist()
            lines.append(
                f"    most in agreement: {' = '.join(top)} ({best.iloc[0]['rate']:.3f}; overlapping "
                "intervals do not tell metrics apart)"
            )
    lines += [f"  note: {n}" for n in notes]
    return "\n".join(lines)


def write_metric_agreement(table: pd.DataFrame, folder: str | Path) -> Path | None:
    """``metric_agreement.csv`` in ``folder`` (nothing when there is no table)."""
    if table.empty:
        return None
    path = Path(folder) / "metric_agreement.csv"
    try:
        atomic_write_bytes(path, table.to_csv(index=False).encode("utf-8"))
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror or err}") from None
    return path
