"""Who looked: the speed floor and its rule, the rater flags, results with and without flagged
raters, the browser report's checks, exports of timings and image opens, and the colour contrast."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from harness.errors import UserError
from raters_ui import analysis, assign, theme
from raters_ui.db import ImageView, Rating
from raters_ui.quality import QualityRules, item_times, rater_quality, speed_floor
from raters_ui.ratings import export_image_views, export_ratings, load_image_views, load_ratings
from raters_ui.synthetic import make_study, side_of
from raters_ui.telemetry import MAX_EVENTS, ClientReport, ImageOpen, parse_client


def frame(rows: list[tuple[str, int, str, str, float]]) -> pd.DataFrame:
    """A ratings frame of (rater, item, fidelity choice, alignment choice, seconds) rows."""
    out = []
    for k, (rater, item, fid, aln, secs) in enumerate(rows):
        for q, c in (("fidelity", fid), ("alignment", aln)):
            out.append(
                {
                    "rating_id": 2 * k + (q == "alignment"),
                    "item_id": item,
                    "kind": "main",
                    "rater": rater,
                    "question": q,
                    "choice": c,
                    "seconds": secs,
                    "client_seconds": secs - 0.2,
                    "image_opens": 0,
                    "correct": None,
                }
            )
    return pd.DataFrame(out)


def test_the_speed_floor_comes_from_the_median_of_raters_medians():
    ratings = frame(
        [("r1", i, "A", "B", s) for i, s in enumerate([8.0, 10.0, 12.0])]
        + [("r2", i, "B", "A", s) for i, s in enumerate([20.0, 30.0, 40.0])]
        + [("r3", i, "A", "A", 50.0) for i in range(3)]
    )
    floor = speed_floor(item_times(ratings), QualityRules())
    assert floor.median == 30.0 and floor.seconds == 7.5 and floor.source == "data"  # max(2, 0.25 x 30)
    assert floor.rule.startswith("7.5 s per item = max(2 s, 0.25 x 30.0 s, the median over 3 rater(s)")
    fixed = speed_floor(item_times(ratings), QualityRules(min_seconds=15))
    assert fixed.seconds == 15 and fixed.rule == "15 s per item (min_seconds)"
    assert speed_floor(item_times(frame([("r1", 0, "A", "B", 1.0)])), QualityRules()).seconds == 2.0  # floor_min
    empty = speed_floor(item_times(ratings.assign(seconds=math.nan)), QualityRules())
    assert empty.seconds == 2.0 and "no timed items" in empty.rule


def test_fast_same_side_and_control_flags_with_their_reasons():
    careful = [(f"c{r}", i, "AB"[(i + r) % 2], "indifferent", 30.0 + i) for r in range(3) for i in range(10)]
    fast = [("fast", i, "AB"[i % 2], "AB"[i % 2], 1.5) for i in range(10)]
    left = [("left", i, "A", "A", 25.0) for i in range(10)]  # 10 of 10 items on side A
    few_left = [("few", i, "A", "A", 25.0) for i in range(3)]  # 3 of 3: p = 0.25, not flagged
    table, floor = rater_quality(frame(careful + fast + left + few_left))
    t = table.set_index("rater")
    # Raters' medians: 34.5 (x3, the careful ones: 30..39 s), 1.5, 25, 25 -> median 29.75, floor 0.25 x that.
    assert floor.median == 29.75 and floor.seconds == pytest.approx(7.4375)
    assert list(t.index[t["flagged"]]) == ["fast", "left"]
    assert t.loc["fast", "fast"] and not t.loc["fast", "same_side"] and t.loc["fast", "under_floor"] == 1.0
    assert t.loc["fast", "reason"].startswith("fast: median 1.5 s per item < floor")
    assert t.loc["fast", "median_client_seconds"] == pytest.approx(1.3)
    assert t.loc["left", "same_side"] and t.loc["left", "side"] == "A" and t.loc["left", "side_share"] == 1.0
    assert t.loc["left", "side_p"] == pytest.approx(2 * 0.5**10)
    assert "same side: 100% of 10 items on side A" in t.loc["left", "reason"]
    assert not t.loc["few", "flagged"] and t.loc["few", "side_p"] == pytest.approx(0.25)
    assert t.loc["c0", "side_share"] == 0.5 and t.loc["c0", "indifferent_share"] == 0.5


def test_control_failures_flag_and_too_few_items_do_not():
    rows = frame([("bad", i, "B", "B", 20.0) for i in range(2)] + [("ok", i, "A", "B", 1.0) for i in range(2)])
    rows["kind"] = "control"
    rows["correct"] = (rows["rater"] == "ok").astype("boolean")
    t = rater_quality(rows, QualityRules(control_threshold=0.8))[0].set_index("rater")
    assert t.loc["bad", "failed_controls"] and "controls: 0% right < 80%" in t.loc["bad", "reason"]
    assert not t.loc["ok", "fast"]  # 2 items: fewer than min_items (3), so never judged fast
    with pytest.raises(ValueError):
        rater_quality(rows, QualityRules(same_side=0.4))


def study_with_a_fast_rater(tmp_path: Path):
    db, made = make_study(tmp_path, n_prompts=6, raters=4, ratings_per_item=4, n_images=2)
    for label, token in made.tokens.raters.items():
        rater = assign.find_rater(db, token)
        n = 0
        while (screen := assign.current_screen(db, rater)) is not None:
            # rater-004 always prefers sys2 in 1 s; the others prefer sys1 and take 30 s.
            fast = label == "rater-004"
            side = side_of(db, screen.assignment_id, "sys2" if fast else "sys1")
            report = ClientReport(0.9 if fast else 29.0, [ImageOpen("A", 1 + n % 2, 0.5, 2.0)] if not fast else [])
            assign.submit(db, rater, screen.assignment_id, side, side, 1.0 if fast else 30.0, client=report)
            n += 1
    return db, made


def test_analyze_reports_flags_and_results_with_and_without_them(tmp_path: Path):
    db, _ = study_with_a_fast_rater(tmp_path)
    ratings = load_ratings(db, "demo")
    assert {"client_seconds", "image_opens", "images_opened", "viewer_seconds", "assignment_id"} <= set(ratings.columns)
    result = analysis.analyze(ratings, n_boot=50)
    assert result.flagged == ["rater-004"] and result.excluded == []  # flags do not change the primary table
    q = result.settings["quality"]
    assert q["speed_floor"] == 7.5 and q["floor_source"] == "data" and "0.25 x 30.0 s" in q["floor_rule"]
    sens = result.sensitivity
    overall = sens[(sens["category"] == "overall") & (sens["question"] == "fidelity")].set_index("raters")
    assert overall.loc["all", "n"] == 24 and overall.loc["unflagged", "n"] == 18
    assert overall.loc["all", "rate_A"] == pytest.approx(0.75) and overall.loc["unflagged", "rate_A"] == 1.0
    text = analysis.format_analysis(result)
    assert "speed floor 7.5 s per item = max(2 s, 0.25 x 30.0 s" in text
    assert "FLAGGED: fast: median 1.0 s per item < floor 7.5 s" in text and "flagged raters: rater-004" in text
    assert "unflagged fidelity" in text
    opened = result.quality.set_index("rater")
    assert opened.loc["rater-001", "opened_share"] == 1.0 and opened.loc["rater-004", "opened_share"] == 0.0
    path = analysis.write_analysis(result, tmp_path / "out")
    doc = json.loads(path.read_text())
    assert doc["flagged_raters"] == ["rater-004"] and doc["settings"]["quality"]["speed_floor"] == 7.5
    assert {r["raters"] for r in doc["preferences_with_and_without_flagged"]} == {"all", "unflagged"}
    assert pd.read_csv(tmp_path / "out" / "rater_quality.csv")["flagged"].sum() == 1
    fixed = analysis.analyze(ratings, n_boot=50, quality=QualityRules(min_seconds=0.5))
    assert fixed.flagged == [] and fixed.settings["quality"]["floor_rule"] == "0.5 s per item (min_seconds)"


def test_exports_carry_timings_and_image_opens(tmp_path: Path):
    db, _ = study_with_a_fast_rater(tmp_path)
    df = pd.read_csv(export_ratings(db, "demo", tmp_path / "r.csv"))
    slow = df[df["rater"] == "rater-001"]
    assert (slow["seconds"] == 30.0).all() and (slow["client_seconds"] == 29.0).all()
    assert (
        (slow["image_opens"] == 1).all()
        and (slow["images_opened"] == 1).all()
        and (slow["viewer_seconds"] == 2.0).all()
    )
    assert (df[df["rater"] == "rater-004"]["image_opens"] == 0).all()
    views = load_image_views(db, "demo")
    assert len(views) == 18 and set(views["set_shown"]) == {"A"} and set(views["image"]) == {1, 2}
    assert set(views["shown_system"]) <= {"sys1", "sys2"}  # which system's images were looked at
    out = pd.read_parquet(export_image_views(db, "demo", tmp_path / "v.parquet"))
    assert list(out.columns) == list(views.columns) and len(out) == 18
    with pytest.raises(UserError, match="csv or .parquet"):
        export_image_views(db, "demo", tmp_path / "v.txt")


def test_time_on_item_is_measured_by_the_server_from_first_serving(tmp_path: Path):
    from datetime import timedelta

    from sqlalchemy import update

    from raters_ui.db import Assignment, utcnow

    db, made = make_study(tmp_path, n_prompts=2, raters=1, ratings_per_item=1, n_images=1)
    rater = assign.find_rater(db, made.tokens.raters["rater-001"])
    screen = assign.current_screen(db, rater)
    db.write(lambda s: s.execute(update(Assignment).values(shown_at=utcnow() - timedelta(seconds=12))))
    again = assign.current_screen(db, rater)  # a reload: same item, first-served time kept
    assert again.assignment_id == screen.assignment_id
    report = ClientReport(11.0, [ImageOpen("B", None, 3.0, None)])
    assert assign.submit(db, rater, screen.assignment_id, "A", "B", client=report)
    assert not assign.submit(db, rater, screen.assignment_id, "A", "B", client=report)  # a double submit
    with db.read() as s:
        secs = s.execute(select(Rating.seconds, Rating.client_seconds)).all()
        views = s.execute(select(ImageView.set_shown, ImageView.image, ImageView.open_seconds)).all()
    assert all(12.0 <= sec < 20.0 and client == 11.0 for sec, client in secs)
    assert views == [("B", None, None)]  # stored once, with the first submission


def test_the_browser_report_is_checked_before_it_is_stored():
    good = {
        "key": "7",
        "client_seconds": 12.5,
        "events": [
            {"set": "A", "image": 3, "at": 1.0, "seconds": 2.5},
            {"set": "B", "image": None, "at": 4.0, "seconds": None},
        ],
    }
    report = parse_client(good, "7", 8)
    assert report.client_seconds == 12.5
    assert report.opens == [ImageOpen("A", 3, 1.0, 2.5), ImageOpen("B", None, 4.0, None)]
    assert parse_client(good, "8", 8) == ClientReport()  # another screen's report
    for bad in (
        {**good, "client_seconds": float("nan")},
        {**good, "client_seconds": -1},
        {**good, "client_seconds": True},
        {**good, "events": "x"},
        {**good, "events": [{"set": "C", "image": 1, "at": 0}]},
        {**good, "events": [{"set": "A", "image": 9, "at": 0}]},
        {**good, "events": [{"set": "A", "image": True, "at": 0}]},
        {**good, "events": [{"set": "A", "image": 1, "at": 1e12}]},
        None,
        [],
        "telemetry",
    ):
        assert parse_client(bad, "7", 8) == ClientReport(), bad
    flood = {**good, "events": [{"set": "A", "image": 1, "at": 0.0}] * (MAX_EVENTS + 50)}
    assert len(parse_client(flood, "7", 8).opens) == MAX_EVENTS


def test_the_colours_pass_wcag_aa():
    assert theme.contrast("#ffffff", "#000000") == pytest.approx(21.0)
    assert theme.contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # the classic near-miss
    text = {
        "text": (theme.TEXT, theme.BACKGROUND),
        "muted": (theme.MUTED, theme.BACKGROUND),
        "button": ("#ffffff", theme.PRIMARY),
        "current question": (theme.TEXT, theme.CURRENT),
        "viewer": (theme.VIEWER_TEXT, theme.VIEWER_BG),
        "muted on grey": (theme.MUTED, theme.SECONDARY_BG),
    }
    ratios = {k: round(theme.contrast(*v), 2) for k, v in text.items()}
    assert ratios == {
        "text": 14.68,
        "muted": 7.56,
        "button": 6.7,
        "current question": 13.49,
        "viewer": 16.98,
        "muted on grey": 6.87,
    }
    graphics = [theme.BORDER, *theme.CHART.values(), theme.CHART_RULE, theme.PRIMARY]
    assert min(theme.contrast(c, theme.BACKGROUND) for c in graphics) >= 3.0  # WCAG 1.4.11
    assert theme.contrast(theme.CHART["a"], theme.CHART["b"]) > 1.3  # the two systems' bars differ in lightness too
