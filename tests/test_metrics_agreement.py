"""`study analyze` reports which automatic metric agrees with the raters: a synthetic study with known
preferences, and run folders whose per-image scores are built to agree, disagree or tie with them."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from harness.formats.results import Results, write_results
from harness.formats.values import OutputInfo, ResultTable
from raters_ui import analysis, assign
from raters_ui.db import Assignment, Item
from raters_ui.ratings import load_ratings
from raters_ui.synthetic import make_study, side_of
from tests.helpers.cli import exit_code

SYSTEM_1_WINS = {"Colors", "Counting"}  # fidelity: raters prefer sys1 here and sys2 on Positional/Text


def _rate_with_known_preferences(db, made) -> None:
    """Every rater: fidelity → sys1 on SYSTEM_1_WINS categories else sys2; alignment → always sys1."""
    for token in made.tokens.raters.values():
        rater = assign.find_rater(db, token)
        while (screen := assign.current_screen(db, rater)) is not None:
            with db.read() as s:
                category = s.get(Item, s.get(Assignment, screen.assignment_id).item_id).category
            fid = side_of(db, screen.assignment_id, "sys1" if category in SYSTEM_1_WINS else "sys2")
            assign.submit(db, rater, screen.assignment_id, fid, side_of(db, screen.assignment_id, "sys1"))


def _score_runs(src: Path, n_prompts: int, categories: list[str]) -> None:
    """results.json + samples.jsonl in each system's run folder, with four per-image metrics."""
    info = {"follows": True, "reversed": True, "follows_low": False, "constant": True}
    for system in ("sys1", "sys2"):
        rows = []
        for p in range(n_prompts):
            wins = (categories[p] in SYSTEM_1_WINS) == (system == "sys1")  # this system wins fidelity here
            for seed in range(2):
                follows = (1.0 if wins else 0.0) + 0.1 * seed
                rows.append(
                    {
                        "prompt_id": f"drawbench-{p + 1:04d}",
                        "seed": seed,
                        "stage": "external",
                        "category": categories[p],
                        "follows": follows,
                        "reversed": -follows,
                        "follows_low": -follows,
                        "constant": 3.0,
                    }
                )
        results = Results(
            run_id=f"drawbench-run-{system}",
            task="drawbench",
            suite="drawbench",
            benchmark={"stages": ["external"]},
            metrics={},
            model={},
            table=ResultTable("category", "external", "image", 0.95, (), ()),
            seeds={},
            prompts={},
            extractors={},
            config={},
            environment={},
            metric_info={m: OutputInfo(m, "test/1", h) for m, h in info.items()},
        )
        write_results(src / f"drawbench-run-{system}", results, rows)


@pytest.fixture
def study(tmp_path: Path, monkeypatch):
    root = tmp_path / "studies" / "demo"
    db, made = make_study(root, n_prompts=16, raters=3, ratings_per_item=3, n_images=2)
    _rate_with_known_preferences(db, made)
    categories = [("Colors", "Counting", "Positional", "Text")[p % 4] for p in range(16)]
    _score_runs(root / "src", 16, categories)
    monkeypatch.setenv("IMAGEN_BENCH_STUDIES", str(tmp_path / "studies"))
    return db, root


def test_study_analyze_recovers_which_metric_agrees_with_the_raters(study, tmp_path, capsys):
    assert exit_code(["study", "analyze", "demo", "n_boot=50", f"out={tmp_path / 'an'}"]) == 0
    out = capsys.readouterr().out
    assert "automatic metrics vs raters" in out and "fidelity: drawbench-run-sys1 (A) vs drawbench-run-sys2 (B)" in out
    assert "most in agreement: follows = follows_low (1.000" in out
    t = pd.read_csv(tmp_path / "an" / "metric_agreement.csv")
    overall = t[t["category"] == "overall"].set_index(["question", "metric"])
    fid = lambda m: overall.loc[("fidelity", m)]
    assert (fid("follows")["rate"], fid("follows")["decided"]) == (1.0, 16)
    assert fid("follows_low")["rate"] == 1.0  # lower is better: the direction is respected
    assert fid("reversed")["rate"] == 0.0
    assert math.isnan(fid("constant")["rate"]) and fid("constant")["metric_ties"] == 16
    low, high = fid("follows")["ci_low"], fid("follows")["ci_high"]
    assert 0.75 < low < 1.0 and high == 1.0  # Wilson at 16/16
    # alignment: raters always pick sys1, which "follows" prefers on half the categories only
    align = t[(t["question"] == "alignment") & (t["metric"] == "follows")].set_index("category")["rate"]
    assert align.to_dict() == {"Colors": 1.0, "Counting": 1.0, "Positional": 0.0, "Text": 0.0, "overall": 0.5}


def test_pairs_without_scored_runs_are_noted_not_fatal(study, tmp_path):
    db, root = study
    (root / "src" / "drawbench-run-sys2" / "results.json").unlink()
    ratings = load_ratings(db, "demo")
    names = {"sys1": "drawbench-run-sys1", "sys2": "drawbench-run-sys2"}
    runs = {n: str(root / "src" / n) for n in names.values()}
    table, notes = analysis.metric_agreement_tables(ratings, runs, names=names, exclude=False)
    assert table.empty and len(notes) == 1 and "drawbench-run-sys2" in notes[0] and "no results.json" in notes[0]
    text = analysis.format_metric_agreement(table, notes)
    assert "note: drawbench-run-sys1 vs drawbench-run-sys2: no automatic scores" in text
    assert analysis.write_metric_agreement(table, tmp_path) is None
