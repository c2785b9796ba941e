"""The analysis of a simulated study: screen sides mapped back to systems, exclusion, agreement."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from raters_ui import analysis, assign
from raters_ui.admin import progress_by_category, progress_by_rater
from raters_ui.controls import ControlSpec
from raters_ui.db import Assignment, Item
from raters_ui.studies import load_ratings
from raters_ui.synthetic import make_study, side_of


def simulate(db, made, choose) -> None:
    """Every rater rates until finished; ``choose(label, assignment_id, kind, rng)`` answers."""
    for label, token in made.tokens.raters.items():
        rater = assign.find_rater(db, token)
        rng = random.Random(label)
        while (screen := assign.current_screen(db, rater)) is not None:
            with db.read() as s:
                kind = s.get(Item, s.get(Assignment, screen.assignment_id).item_id).kind
            fid, aln = choose(label, screen.assignment_id, kind, rng)
            assign.submit(db, rater, screen.assignment_id, fid, aln)


def test_preferences_follow_systems_not_screen_sides_and_bad_raters_are_excluded(tmp_path: Path):
    db, made = make_study(tmp_path, systems=("best", "mid", "worst"), n_prompts=8, raters=4,
                          ratings_per_item=3,
                          n_images=1, items_per_rater=18, controls=ControlSpec(count=6, every=4))
    rank = {"best": 0, "mid": 1, "worst": 2}

    def choose(label, aid, kind, rng):
        if label == "rater-004":  # answers at random, controls included
            return rng.choice("AB"), rng.choice(["A", "B", "indifferent"])
        if kind == "control":
            good = side_of(db, aid, "good")
            return good, good
        shown = {s: side_of(db, aid, s) for s in rank}
        better = min((s for s in shown if shown[s]), key=rank.get)
        return shown[better], "indifferent"

    simulate(db, made, choose)
    ratings = load_ratings(db, "demo")
    result = analysis.analyze(ratings, threshold=0.8, n_boot=200)
    assert result.excluded == ["rater-004"]
    prefs = result.preferences
    overall = prefs[(prefs["category"] == "overall") & (prefs["question"] == "fidelity")]
    assert len(overall) == 3 and (overall["rate_A"] == 1.0).all()  # system_a is the better one each time
    aln = prefs[(prefs["category"] == "overall") & (prefs["question"] == "alignment")]
    assert (aln["rate_tie"] == 1.0).all()
    bt = result.bradley_terry
    assert list(bt[bt["question"] == "fidelity"]["system"]) == ["best", "mid", "worst"]
    controls = result.controls.set_index("rater")
    assert controls.loc["rater-001", "accuracy"] == 1.0 and not controls.loc["rater-004", "passed"]
    text = analysis.format_analysis(result)
    assert "best (A) vs mid (B)" in text and "rater-004" in text
    kept = analysis.analyze(ratings, threshold=0.8, exclude=False, n_boot=50)
    assert kept.excluded == [] and kept.settings["ratings_used"] > result.settings["ratings_used"]


def test_agreement_is_one_for_unanimous_raters_and_low_for_random_ones(tmp_path: Path):
    db, made = make_study(tmp_path, n_prompts=10, raters=3, ratings_per_item=3, n_images=1)
    truth = {}

    def unanimous(label, aid, kind, rng):
        with db.read() as s:
            item = s.get(Assignment, aid).item_id
        winner = truth.setdefault(item, random.Random(item).choice(["sys1", "sys2"]))
        side = side_of(db, aid, winner)
        return side, side

    simulate(db, made, unanimous)
    alpha = analysis.agreement(load_ratings(db, "demo")).set_index("question")
    assert alpha.loc["fidelity", "alpha_nominal"] == pytest.approx(1.0)
    assert alpha.loc["alignment", "alpha_ordinal"] == pytest.approx(1.0)
    assert alpha.loc["fidelity", "pairable_items"] == 10

    db2, made2 = make_study(tmp_path / "random", n_prompts=30, raters=4, ratings_per_item=4, n_images=1)
    simulate(db2, made2,
             lambda label, aid, kind, rng: (rng.choice("AB"), rng.choice(["A", "B", "indifferent"])))
    alpha2 = analysis.agreement(load_ratings(db2, "demo")).set_index("question")
    assert abs(alpha2.loc["fidelity", "alpha_nominal"]) < 0.25


def test_progress_tables(tmp_path: Path):
    db, made = make_study(tmp_path, n_prompts=4, raters=2, ratings_per_item=2, n_images=1)
    rater = assign.find_rater(db, made.tokens.raters["rater-001"])
    for _ in range(3):
        screen = assign.current_screen(db, rater)
        assign.submit(db, rater, screen.assignment_id, "A", "A")
    assign.current_screen(db, rater)  # one item open
    cat = progress_by_category(db, "demo").set_index("category")
    assert cat.loc["all", "items"] == 4 and cat.loc["all", "ratings_wanted"] == 8
    assert cat.loc["all", "ratings_done"] == 3 and cat.loc["all", "percent"] == pytest.approx(37.5)
    per = progress_by_rater(db, "demo", load_ratings(db, "demo")).set_index("rater")
    assert per.loc["rater-001", "items_done"] == 3 and per.loc["rater-001", "open"] == 1
    assert per.loc["rater-002", "items_done"] == 0
