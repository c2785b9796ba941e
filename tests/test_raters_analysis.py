"""The analysis of a simulated study: screen sides mapped back to systems, exclusion, agreement."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from raters_ui import analysis, assign
from raters_ui.admin import progress_by_category, progress_by_rater
from raters_ui.controls import ControlSpec
from raters_ui.db import Assignment, Item
from raters_ui.ratings import load_ratings
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
    db, made = make_study(
        tmp_path,
        systems=("best", "mid", "worst"),
        n_prompts=8,
        raters=4,
        ratings_per_item=3,
        n_images=1,
        items_per_rater=18,
        controls=ControlSpec(count=6, every=4),
    )
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
    simulate(db2, made2, lambda label, aid, kind, rng: (rng.choice("AB"), rng.choice(["A", "B", "indifferent"])))
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


# --- mid-study and partial studies: every table that can be computed, and why the rest is not


def rate_only(db, made, wanted: set[frozenset]) -> None:
    """Each rater takes one item (ratings_per_item=1, so all different); only the items comparing
    a pair in ``wanted`` are rated, the others stay open as in a study under way."""
    from raters_ui.db import System

    for token in made.tokens.raters.values():
        rater = assign.find_rater(db, token)
        screen = assign.current_screen(db, rater)
        with db.read() as s:
            item = s.get(Item, s.get(Assignment, screen.assignment_id).item_id)
            pair = frozenset(s.get(System, i).label for i in (item.system_1_id, item.system_2_id))
        if pair in wanted:
            assign.submit(db, rater, screen.assignment_id, side_of(db, screen.assignment_id, min(pair)), "B")


def test_analyze_mid_study_prints_every_table_when_bradley_terry_is_not_connected(tmp_path: Path, monkeypatch, capsys):
    from tests.helpers.cli import exit_code

    db, made = make_study(
        tmp_path / "studies" / "demo",
        systems=("a", "b", "c", "d"),
        n_prompts=1,
        n_images=1,
        raters=6,
        ratings_per_item=1,
    )
    rate_only(db, made, {frozenset("ab"), frozenset("cd")})
    monkeypatch.setenv("IMAGEN_BENCH_STUDIES", str(tmp_path / "studies"))
    assert exit_code(["study", "analyze", "demo", "n_boot=50", f"out={tmp_path / 'an'}"]) == 0
    out = capsys.readouterr().out
    for a, b in ("ab", "cd"):
        for q in ("fidelity", "alignment"):
            assert f"{q}: drawbench-run-{a} (A) vs drawbench-run-{b} (B)" in out  # named by run id
    assert "not available across all 4 systems yet" in out and "2 groups" in out
    assert "one pair only, see its preference rates" in out and "Krippendorff" in out
    assert not (tmp_path / "an" / "bradley_terry.csv").exists()  # no empty file
    assert (tmp_path / "an" / "preferences.csv").is_file()


def comparisons_frame(pairs: list[tuple[str, str, str]], n_prompts: int = 12):
    import pandas as pd

    rows = []
    for k, (s1, s2, winner) in enumerate(pairs):
        item = k % n_prompts
        for q in ("fidelity", "alignment"):
            rows.append(
                {
                    "kind": "main",
                    "item_id": 100 * ord(s1) + ord(s2) + 10_000 * item,
                    "prompt_id": f"p{item}",
                    "category": "c",
                    "rater": f"r{k % 5}",
                    "question": q,
                    "system_1": s1,
                    "system_2": s2,
                    "left_system": s1,
                    "right_system": s2,
                    "preferred_system": winner,
                    "preferred_slot": 1 if winner == s1 else 2,
                    "rating_id": k,
                    "correct": None,
                }
            )
    return pd.DataFrame(rows)


def test_bradley_terry_within_each_connected_group_of_three_or_more():
    triangle = [("a", "b", "a"), ("b", "c", "b"), ("a", "c", "a")] * 8
    frame = comparisons_frame(triangle + [("d", "e", "d")] * 6)
    result = analysis.analyze(frame, n_boot=50, exclude=False)
    bt = result.bradley_terry
    assert set(bt["system"]) == {"a", "b", "c"} and set(bt["group"]) == {1}
    assert list(bt[bt["question"] == "fidelity"]["system"]) == ["a", "b", "c"]
    text = analysis.format_analysis(result)
    assert "split them into 2 groups" in text and "scores within this group only" in text
    assert "group 2 (d, e): one pair only" in text


def test_systems_are_named_by_run_id(tmp_path: Path):
    from raters_ui.admin import study_overview

    db, made = make_study(tmp_path, n_prompts=3, raters=1, ratings_per_item=1, n_images=1)
    simulate(db, made, lambda label, aid, kind, rng: (side_of(db, aid, "sys2"), "A"))
    info = study_overview(db, "demo")
    assert info["names"] == {"sys1": "drawbench-run-sys1", "sys2": "drawbench-run-sys2"}
    result = analysis.analyze(load_ratings(db, "demo"), names=info["names"], n_boot=50)
    assert set(result.preferences["system_a"]) | set(result.preferences["system_b"]) == set(info["names"].values())
    text = analysis.format_analysis(result)
    assert "drawbench-run-sys1 (A) vs drawbench-run-sys2 (B)" in text and "sys1 (A)" not in text.replace(
        "drawbench-run-sys1 (A)", ""
    )
    import json

    doc = json.loads(analysis.write_analysis(result, tmp_path / "an").read_text())
    assert not (tmp_path / "an" / "bradley_terry.csv").exists() and doc["bradley_terry"] is None  # 2 systems
    assert doc["settings"]["systems"] == info["names"] and (tmp_path / "an" / "preferences.csv").is_file()


def test_few_prompts_are_flagged_and_a_single_rating_has_no_interval(tmp_path: Path):
    db, made = make_study(tmp_path, n_prompts=3, raters=1, ratings_per_item=1, n_images=1)
    simulate(db, made, lambda label, aid, kind, rng: (side_of(db, aid, "sys2"), "A"))
    result = analysis.analyze(load_ratings(db, "demo"), n_boot=200)
    overall = result.preferences.query("category == 'overall' and question == 'fidelity'").iloc[0]
    assert overall["few_prompts"] and overall["rate_B"] == 1.0
    assert pytest.approx(overall["wilson_low_B"], abs=1e-3) == 0.439  # 3 of 3: Wilson [0.439, 1]
    import math

    assert math.isnan(overall["ci_low_B"]) and math.isnan(overall["p_boot"])  # all B: no spread
    text = analysis.format_analysis(result)
    assert "[undefined; Wilson 0.439-1.000]" in text and "[!]" in text and "fewer than 10 prompts" in text
    assert "[1.000, 1.000]" not in text


def test_a_rater_excluded_by_controls_is_not_reported_as_no_ratings(tmp_path: Path):
    db, made = make_study(
        tmp_path, n_prompts=4, raters=1, ratings_per_item=1, n_images=1, controls=ControlSpec(count=2, every=2)
    )

    def wrong_on_controls(label, aid, kind, rng):
        if kind == "control":
            bad = "B" if side_of(db, aid, "good") == "A" else "A"
            return bad, bad
        return "A", "B"

    simulate(db, made, wrong_on_controls)
    result = analysis.analyze(load_ratings(db, "demo"), threshold=0.8, n_boot=50)
    assert result.excluded == ["rater-001"] and result.preferences.empty
    text = analysis.format_analysis(result)
    assert "no ratings of main items yet" not in text
    assert "all 8 ratings of main items are by raters excluded by the control trials (rater-001)" in text


def test_a_late_submission_after_the_reservation_expired_counts_once(tmp_path: Path):
    from datetime import timedelta

    from sqlalchemy import update

    from raters_ui.db import utcnow

    db, made = make_study(tmp_path, n_prompts=1, raters=2, ratings_per_item=1, n_images=1)
    r1, r2 = (assign.find_rater(db, t) for t in made.tokens.raters.values())
    held = assign.current_screen(db, r1)
    expired = utcnow() - assign.ASSIGNMENT_TTL - timedelta(minutes=1)
    db.write(lambda s: s.execute(update(Assignment).values(assigned_at=expired)))
    taken = assign.current_screen(db, r2)
    assert assign.submit(db, r2, taken.assignment_id, side_of(db, taken.assignment_id, "sys2"), "A")
    assert assign.submit(db, r1, held.assignment_id, side_of(db, held.assignment_id, "sys1"), "A")  # late
    ratings = load_ratings(db, "demo")
    fid = ratings[ratings["question"] == "fidelity"].set_index("rater")
    assert len(fid) == 2  # both answers are stored (the rule: nobody's work is thrown away) ...
    assert fid.loc["rater-002", "item_rank"] == 1 and not fid.loc["rater-002", "surplus"]
    assert fid.loc["rater-001", "item_rank"] == 2 and fid.loc["rater-001", "surplus"]
    result = analysis.analyze(ratings, ratings_per_item=1, n_boot=50)
    overall = result.preferences.query("category == 'overall' and question == 'fidelity'").iloc[0]
    assert overall["n"] == 1 and overall["rate_B"] == 1.0  # ... but the item counts its first rating only
    assert result.settings["surplus_left_out"] == 2 and "1 raters" in analysis.format_analysis(result)
