"""raters_ui.agreement: does an automatic metric pick the system the raters preferred? Counted by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from raters_ui.agreement import AGREEMENT_COLUMNS, item_preferences, metric_agreement, prompt_score_differences
from raters_ui.stats import wilson_interval


def test_item_preference_is_the_majority_of_a_and_b_votes():
    outcomes = pd.DataFrame(
        {
            "prompt_id": ["p1", "p1", "p1", "p2", "p2", "p3", "p3", "p4"],
            "category": ["X", "X", "X", "X", "X", "Y", "Y", None],
            "rater": ["r1", "r2", "r3", "r1", "r2", "r1", "r2", "r1"],
            "outcome": ["A", "B", "A", "A", "B", "tie", "tie", "B"],
        }
    )
    prefs = item_preferences(outcomes).set_index("prompt_id")
    assert prefs["preference"].to_dict() == {"p1": "A", "p2": "tie", "p3": "tie", "p4": "B"}
    assert prefs.loc["p1", ["votes_A", "votes_B", "votes_tie", "ratings"]].tolist() == [2, 1, 0, 3]
    assert prefs.loc["p4", "category"] == "(none)"
    with pytest.raises(ValueError, match="outcomes must be"):
        item_preferences(outcomes.assign(outcome="C"))


def test_score_differences_average_seeds_and_follow_each_metric_direction():
    a = pd.DataFrame(
        {"prompt_id": ["p1", "p1", "p2", "p3"], "clip": [10.0, 20.0, 5.0, 1.0], "fid_like": [1.0, 3.0, 2.0, None]}
    )
    b = pd.DataFrame({"prompt_id": ["p1", "p2", "p2"], "clip": [12.0, 6.0, 4.0], "fid_like": [1.0, 2.0, 2.0]})
    d = prompt_score_differences(a, b, {"clip": True, "fid_like": False, "absent": True})
    clip = d[d.metric == "clip"].set_index("prompt_id")
    assert clip["diff"].to_dict() == {"p1": 3.0, "p2": 0.0}  # p3 has no B value: left out
    assert clip.loc["p1", ["n_a", "n_b"]].tolist() == [2, 1]
    fid = d[d.metric == "fid_like"].set_index("prompt_id")
    assert fid.loc["p1", "diff"] == -1.0  # A's mean 2.0 is worse than B's 1.0 for a lower-is-better metric
    assert set(d.metric) == {"clip", "fid_like"}


def test_agreement_counts_each_item_once_and_ties_apart():
    prefs = pd.DataFrame(
        {
            "prompt_id": [f"p{i}" for i in range(1, 9)],
            "category": ["X", "X", "X", "X", "Y", "Y", "Y", "Y"],
            "preference": ["A", "A", "B", "tie", "A", "B", "B", "A"],
        }
    )
    # p1 agree, p2 disagree, p3 agree, p4 raters tie, p5 metric tie, p6 agree, p7 no score, p8 disagree
    diffs = pd.DataFrame(
        {
            "prompt_id": ["p1", "p2", "p3", "p4", "p5", "p6", "p8"],
            "metric": "m",
            "diff": [2.0, -1.0, -0.5, 3.0, 0.0, -2.0, -0.1],
        }
    )
    raw = metric_agreement(prefs, diffs)
    assert list(raw.columns) == list(AGREEMENT_COLUMNS)
    t = raw.set_index("category")
    assert list(t.index) == ["X", "Y", "overall"]
    x, y, overall = t.loc["X"], t.loc["Y"], t.loc["overall"]
    assert (x["agree"], x["decided"], x["human_ties"], x["metric_ties"], x["no_score"]) == (2, 3, 1, 0, 0)
    assert (y["agree"], y["decided"], y["human_ties"], y["metric_ties"], y["no_score"]) == (1, 2, 0, 1, 1)
    assert (overall["agree"], overall["decided"], overall["items"]) == (3, 5, 8)
    for _, r in t.iterrows():
        assert r["items"] == r["decided"] + r["human_ties"] + r["metric_ties"] + r["no_score"]
    assert overall["rate"] == pytest.approx(0.6)
    assert (overall["ci_low"], overall["ci_high"]) == pytest.approx(wilson_interval(3, 5))
    # a tolerance turns small differences into metric ties: p8 (|-0.1|) is no longer a disagreement
    loose = metric_agreement(prefs, diffs, tolerance=0.2).set_index("category").loc["overall"]
    assert (loose["agree"], loose["decided"], loose["metric_ties"]) == (3, 4, 2)


def test_no_decided_item_gives_an_undefined_rate_not_zero():
    prefs = pd.DataFrame({"prompt_id": ["p1", "p2"], "category": ["X", "X"], "preference": ["tie", "A"]})
    diffs = pd.DataFrame({"prompt_id": ["p1", "p2"], "metric": "m", "diff": [1.0, 0.0]})
    row = metric_agreement(prefs, diffs).set_index("category").loc["overall"]
    assert row["decided"] == 0 and math.isnan(row["rate"]) and math.isnan(row["ci_low"])
    assert (row["human_ties"], row["metric_ties"]) == (1, 1)


def test_metrics_argument_keeps_a_metric_without_scores():
    prefs = pd.DataFrame({"prompt_id": ["p1"], "category": ["X"], "preference": ["A"]})
    empty = prompt_score_differences(
        pd.DataFrame({"prompt_id": ["p1"]}), pd.DataFrame({"prompt_id": ["p1"]}), {"m": True}
    )
    t = metric_agreement(prefs, empty, metrics=["m"]).set_index("category")
    assert t.loc["overall", "no_score"] == 1 and t.loc["overall", "decided"] == 0
