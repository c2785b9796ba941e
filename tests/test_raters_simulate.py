"""Simulated raters: labelled as such, rate through the real submission path, follow the score they are given."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import UserError
from raters_ui.db import System
from raters_ui.ratings import load_ratings
from raters_ui.simulate import SimulationSpec, simulate_raters
from raters_ui.synthetic import make_study


def _write_scores(db, high: str) -> None:
    with db.read() as s:
        systems = [(r.label, r.source) for r in s.query(System).all()]
    for label, source in systems:
        folder = Path(source)
        folder.mkdir(parents=True, exist_ok=True)
        rows = [
            {"prompt_id": f"drawbench-{p:04d}", "seed": k, "stage": "s", "world_accuracy": float(label == high)}
            for p in range(1, 13)
            for k in range(8)
        ]
        (folder / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_simulated_raters_prefer_the_higher_scoring_system_and_are_named(tmp_path):
    db, _ = make_study(tmp_path, n_prompts=6, raters=1, ratings_per_item=2)
    _write_scores(db, high="sys1")
    done = simulate_raters(db, "demo", SimulationSpec(raters=2, temperature=0.05))
    assert set(done) == {"simulated-002", "simulated-003"} and all(n == 6 for n in done.values())
    ratings = load_ratings(db, "demo")
    sim = ratings[ratings.rater.str.startswith("simulated-")]
    assert len(sim) == 2 * 6 * 2  # two questions per item
    assert set(sim.preferred_system) == {"sys1"}  # the higher-scoring system, on either side of the screen
    assert set(sim.left_system) == {"sys1", "sys2"}
    assert sim.seconds.between(15, 45).all()
    from raters_ui.admin import study_overview

    overview = study_overview(db, "demo")
    assert (overview["raters"], overview["simulated_raters"]) == (3, 2)  # the report names them as simulated


def test_missing_scores_are_one_line(tmp_path):
    db, _ = make_study(tmp_path, n_prompts=2)
    with pytest.raises(UserError, match="no per-image 'world_accuracy' scores"):
        simulate_raters(db, "demo", SimulationSpec())
