"""A study's analysis: from the ratings frame of :func:`raters_ui.studies.load_ratings` to tables.

Used by ``imagen-bench study analyze``, the admin page and reports. Only main items enter the
preference, Bradley–Terry and agreement tables; control items only decide rater exclusion.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness.formats.files import atomic_write_bytes
from raters_ui import stats
from raters_ui.db import QUESTIONS


def main_ratings(ratings: pd.DataFrame) -> pd.DataFrame:
    return ratings[ratings["kind"] == "main"]


def system_pairs_rated(ratings: pd.DataFrame) -> list[tuple[str, str]]:
    """The (system_1, system_2) pairs of the main items that have ratings, in first-seen order."""
    main = main_ratings(ratings)
    return list(dict.fromkeys(zip(main["system_1"], main["system_2"], strict=True)))


def pair_outcomes(ratings: pd.DataFrame, system_a: str, system_b: str, question: str) -> pd.DataFrame:
    """Ratings of ``question`` on items comparing the two systems, as outcome A / B / tie."""
    m = main_ratings(ratings)
    m = m[(m["question"] == question) & (((m["system_1"] == system_a) & (m["system_2"] == system_b))
                                         | ((m["system_1"] == system_b) & (m["system_2"] == system_a)))]
    pref = m["preferred_system"]
    outcome = np.where(pref == system_a, "A", np.where(pref == system_b, "B", "tie"))
    return pd.DataFrame({"prompt_id": m["prompt_id"].astype(str), "category": m["category"],
                         "rater": m["rater"].astype(str), "outcome": outcome})


def comparisons(ratings: pd.DataFrame, question: str) -> pd.DataFrame:
    """One row per main rating of ``question``: the two systems and the winner (NA for a tie)."""
    m = main_ratings(ratings)
    m = m[m["question"] == question]
    winner = m["preferred_system"].astype(object).where(m["preferred_system"].notna(), None)
    return pd.DataFrame({"system_1": m["system_1"], "system_2": m["system_2"], "winner": winner,
                         "prompt_id": m["prompt_id"].astype(str), "rater": m["rater"].astype(str)})


def agreement(ratings: pd.DataFrame) -> pd.DataFrame:
    """Krippendorff's α per question over main items: nominal (A / tie / B as categories) and
    ordinal (prefers slot 1 < indifferent < prefers slot 2). Codes are per item slot, not per
    screen side, since the side is randomised per rater."""
    rows = []
    m = main_ratings(ratings)
    for q in QUESTIONS:
        part = m[m["question"] == q]
        code = part["preferred_slot"].map({1: -1.0, 2: 1.0}).astype(float).fillna(0.0)
        long = pd.DataFrame({"unit": part["item_id"].astype(int), "rater": part["rater"].astype(str),
                             "code": code})
        pairable = int((long.groupby("unit").size() >= 2).sum()) if len(long) else 0
        rows.append({"question": q, "ratings": len(long), "pairable_items": pairable,
                     "alpha_nominal": stats.alpha_from_long(long, unit="unit", rater="rater", value="code"),
                     "alpha_ordinal": stats.alpha_from_long(long, unit="unit", rater="rater", value="code",
                                                            level="ordinal")})
    return pd.DataFrame(rows)


@dataclass
class StudyAnalysis:
    preferences: pd.DataFrame
    bradley_terry: pd.DataFrame
    agreement: pd.DataFrame
    controls: pd.DataFrame
    excluded: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)


def analyze(ratings: pd.DataFrame, *, threshold: float = 0.8, exclude: bool = True, n_boot: int = 2000,
            level: float = 0.95, seed: int = 0, clusters: tuple[str, ...] = stats.CLUSTERS) -> StudyAnalysis:
    """Preference rates per pair, question and category; Bradley–Terry (> 2 systems); α; controls."""
    controls = stats.control_accuracy(ratings, threshold) if len(ratings) else pd.DataFrame()
    excluded: list[str] = []
    if exclude and len(ratings):
        ratings, excluded = stats.exclude_raters(ratings, threshold)
    prefs = []
    for a, b in system_pairs_rated(ratings):
        for q in QUESTIONS:
            frame = pair_outcomes(ratings, a, b, q)
            if len(frame):
                t = stats.preference_table(frame, by="category", n_boot=n_boot, level=level, seed=seed,
                                           clusters=clusters)
                t.insert(0, "question", q)
                t.insert(0, "system_b", b)
                t.insert(0, "system_a", a)
                prefs.append(t)
    bt = []
    systems = set(main_ratings(ratings)["system_1"]) | set(main_ratings(ratings)["system_2"])
    if len(systems) > 2:
        for q in QUESTIONS:
            comp = comparisons(ratings, q)
            if len(comp):
                t = stats.bradley_terry(comp, n_boot=max(1, n_boot // 2), level=level, seed=seed,
                                        clusters=clusters)
                t.insert(0, "question", q)
                bt.append(t)
    return StudyAnalysis(pd.concat(prefs, ignore_index=True) if prefs else pd.DataFrame(),
                         pd.concat(bt, ignore_index=True) if bt else pd.DataFrame(),
                         agreement(ratings), controls, excluded,
                         {"threshold": threshold, "exclude": exclude, "n_boot": n_boot, "level": level,
                          "seed": seed, "clusters": list(clusters),
                          "ratings_used": int(len(main_ratings(ratings)))})


def _records(df: pd.DataFrame) -> list[dict]:
    out = []
    for rec in df.to_dict(orient="records"):
        out.append({k: (None if (v is pd.NA or (isinstance(v, float) and math.isnan(v)))
                        else v.item() if isinstance(v, np.generic) else v) for k, v in rec.items()})
    return out


def write_analysis(result: StudyAnalysis, folder: str | Path) -> Path:
    """``analysis.json`` plus one CSV per table under ``folder``."""
    folder = Path(folder)
    tables = {"preferences": result.preferences, "bradley_terry": result.bradley_terry,
              "agreement": result.agreement, "controls": result.controls}
    for name, df in tables.items():
        atomic_write_bytes(folder / f"{name}.csv", df.to_csv(index=False).encode("utf-8"))
    doc = {"settings": result.settings, "excluded_raters": result.excluded,
           **{name: _records(df) for name, df in tables.items()}}
    atomic_write_bytes(folder / "analysis.json", json.dumps(doc, indent=1, default=str).encode("utf-8"))
    return folder / "analysis.json"


def format_analysis(result: StudyAnalysis) -> str:
    """Plain-text tables for the terminal."""
    lines = []
    if len(result.preferences):
        p = result.preferences
        for (a, b, q), t in p.groupby(["system_a", "system_b", "question"], sort=False):
            pct = int(100 * result.settings["level"])
            lines.append(f"\n{q}: {a} (A) vs {b} (B) — preference rates, {pct}% clustered-bootstrap CI")
            for _, r in t.iterrows():
                lines.append(f"  {str(r['category']):<16} n={int(r['n']):>5}  "
                             f"A {r['rate_A']:.3f} [{r['ci_low_A']:.3f}, {r['ci_high_A']:.3f}]  "
                             f"B {r['rate_B']:.3f} [{r['ci_low_B']:.3f}, {r['ci_high_B']:.3f}]  "
                             f"tie {r['rate_tie']:.3f}  p_boot={r['p_boot']:.3g} p_sign={r['p_sign']:.3g}")
    else:
        lines.append("no ratings of main items yet")
    if len(result.bradley_terry):
        lines.append("\nBradley–Terry log-strengths (ties as half wins)")
        for _, r in result.bradley_terry.iterrows():
            lines.append(f"  {r['question']:<10} #{int(r['rank'])} {r['system']:<20} "
                         f"{r['score']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]")
    lines.append("\nagreement (Krippendorff's alpha)")
    for _, r in result.agreement.iterrows():
        items = int(r["pairable_items"])
        lines.append(f"  {r['question']:<10} nominal {r['alpha_nominal']:.3f}  "
                     f"ordinal {r['alpha_ordinal']:.3f}  ({items} items rated twice or more)")
    if result.excluded:
        lines.append(f"\nexcluded raters (control accuracy < {result.settings['threshold']}): "
                     + ", ".join(result.excluded))
    return "\n".join(lines).lstrip("\n")
