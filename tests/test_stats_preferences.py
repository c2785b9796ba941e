"""Preference rates, intervals, significance and sample size: answers computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from raters_ui import stats


def frame(
    outcomes: list[str],
    prompts: list[str] | None = None,
    raters: list[str] | None = None,
    categories: list[str] | None = None,
) -> pd.DataFrame:
    n = len(outcomes)
    return pd.DataFrame(
        {
            "prompt_id": prompts or [f"p{i}" for i in range(n)],
            "rater": raters or [f"r{i}" for i in range(n)],
            "category": categories or ["all"] * n,
            "outcome": outcomes,
        }
    )


def test_wilson_interval_hand_computed():
    # 6 of 10, z = 1.959964: z^2 = 3.841459, denominator 1 + z^2/n = 1.3841459,
    # centre (0.6 + 0.1920729) / 1.3841459 = 0.572240,
    # half 1.959964 * sqrt(0.024 + 0.0096036) / 1.3841459 = 0.259575.
    lo, hi = stats.wilson_interval(6, 10)
    assert lo == pytest.approx(0.312665, abs=1e-5)
    assert hi == pytest.approx(0.831815, abs=1e-5)
    assert stats.wilson_interval(0, 10)[0] == 0.0
    assert stats.wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert all(math.isnan(v) for v in stats.wilson_interval(0, 0))


def test_win_rate_counts_and_sign_test_by_hand():
    res = stats.preference_rates(frame(["A"] * 6 + ["B"] * 3 + ["tie"]), n_boot=200)
    assert (res["count_A"], res["count_B"], res["count_tie"]) == (6, 3, 1)
    assert (res["rate_A"], res["rate_B"], res["rate_tie"]) == pytest.approx((0.6, 0.3, 0.1))
    assert (res["wilson_low_A"], res["wilson_high_A"]) == pytest.approx((0.312665, 0.831815), abs=1e-5)
    # Sign test on 6 A-wins vs 3 B-wins (tie dropped): P(X >= 6 | n=9) = (84+36+9+1)/512, doubled.
    assert res["p_sign"] == pytest.approx(2 * 130 / 512)
    assert res["diff"] == pytest.approx(0.3)
    assert res["n"] == 10 and res["n_prompts"] == 10 and res["n_raters"] == 10


@pytest.mark.parametrize("clusters", [("prompt_id",), ()])
def test_one_way_bootstrap_matches_wald_for_independent_ratings(clusters):
    outcomes = ["A"] * 240 + ["B"] * 120 + ["tie"] * 40
    res = stats.preference_rates(frame(outcomes), n_boot=4000, clusters=clusters, seed=1)
    half = 1.959964 * math.sqrt(0.6 * 0.4 / 400)  # Wald half-width 0.0480
    assert res["ci_low_A"] == pytest.approx(0.6 - half, abs=0.008)
    assert res["ci_high_A"] == pytest.approx(0.6 + half, abs=0.008)
    assert res["wilson_low_A"] == pytest.approx(0.6 - half, abs=0.006)


def test_two_way_bootstrap_is_conservative_by_sqrt3_for_singleton_clusters():
    # Every rating its own prompt and rater: the pigeonhole bootstrap weight is a product of two
    # independent draw counts, Var = E[a^2]E[b^2] - 1 = 3, so the interval is ~sqrt(3) wider
    # (Owen 2007); this documents the price of clustering on both factors.
    outcomes = ["A"] * 240 + ["B"] * 120 + ["tie"] * 40
    res = stats.preference_rates(frame(outcomes), n_boot=4000, seed=2, clusters=stats.TWO_WAY)
    width = res["ci_high_A"] - res["ci_low_A"]
    wald = 2 * 1.959964 * math.sqrt(0.6 * 0.4 / 400)
    assert width / wald == pytest.approx(math.sqrt(3), rel=0.12)


def test_clustered_interval_widens_with_correlated_prompts():
    # 60 prompts x 5 raters, all 5 raters agree on a prompt: the effective sample is 60, not 300,
    # so the prompt-clustered interval is ~sqrt(5) times the (independent) Wilson one.
    rng = np.random.default_rng(0)
    per_prompt = np.where(rng.random(60) < 0.6, "A", "B")
    outcomes = [o for o in per_prompt for _ in range(5)]
    prompts = [f"p{i}" for i in range(60) for _ in range(5)]
    raters = [f"r{j}" for _ in range(60) for j in range(5)]
    res = stats.preference_rates(frame(outcomes, prompts, raters), n_boot=3000, clusters=("prompt_id",))
    ratio = (res["ci_high_A"] - res["ci_low_A"]) / (res["wilson_high_A"] - res["wilson_low_A"])
    assert 1.8 < ratio < 2.7
    # The raters agree, so also resampling them changes nothing (up to Monte Carlo noise).
    both = stats.preference_rates(frame(outcomes, prompts, raters), n_boot=3000, seed=5, clusters=stats.TWO_WAY)
    assert both["ci_high_A"] - both["ci_low_A"] == pytest.approx(res["ci_high_A"] - res["ci_low_A"], abs=0.05)


def test_bootstrap_p_value_separates_effect_from_none():
    rng = np.random.default_rng(3)
    prompts = [f"p{i}" for i in range(60) for _ in range(5)]  # 60 prompts x 5 raters, crossed
    raters = [f"r{j}" for _ in range(60) for j in range(5)]
    data = frame(list(rng.choice(["A", "B", "tie"], 300, p=[0.6, 0.3, 0.1])), prompts, raters)
    strong = stats.preference_rates(data, n_boot=2000, clusters=("prompt_id",))
    assert strong["p_boot"] < 0.01 and strong["p_sign"] < 0.001
    # Resampling only 5 raters as well is conservative (Owen 2007): larger, still significant.
    two_way = stats.preference_rates(data, n_boot=2000, clusters=stats.TWO_WAY)
    assert strong["p_boot"] < two_way["p_boot"] < 0.05
    none = stats.preference_rates(frame(["A", "B"] * 150), n_boot=2000)
    assert none["p_boot"] > 0.5 and none["p_sign"] == pytest.approx(1.0)
    assert none["diff_ci_low"] < 0 < none["diff_ci_high"]
    assert 0 < stats.bootstrap_p_value(np.linspace(0.5, 1.5, 99)) == pytest.approx(0.02)  # never exactly 0
    assert math.isnan(stats.bootstrap_p_value(np.ones(99)))  # no spread: undefined, not 0.02


def test_preference_table_has_a_row_per_category_and_overall():
    f = frame(["A", "A", "B", "tie", "A", "B"], categories=["Colors"] * 3 + ["Text"] * 3)
    t = stats.preference_table(f, n_boot=100)
    assert list(t["category"]) == ["Colors", "Text", "overall"]
    assert list(t["n"]) == [3, 3, 6]
    assert t.loc[0, "rate_A"] == pytest.approx(2 / 3) and t.loc[1, "rate_tie"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        stats.preference_rates(frame(["A", "left"]))


def test_sample_size_matches_the_textbook_one_sample_proportion_answer():
    # No ties: testing P(A) = 0.5 against 0.6 at alpha 0.05, power 0.8:
    # n = ((1.959964 * 0.5 + 0.841621 * sqrt(0.24)) / 0.1)^2 = 193.8 -> 194.
    assert stats.ratings_needed(0.6, 0.4) == 194
    assert stats.ratings_needed(0.6, 0.4, design_effect=2.0) == 388
    assert stats.simulated_power(0.6, 0.4, 194, n_sim=6000) == pytest.approx(0.80, abs=0.03)
    assert stats.simulated_power(0.6, 0.4, 97, n_sim=6000) < 0.6


def test_sample_size_with_ties_gives_the_asked_power_in_simulation():
    n = stats.ratings_needed(0.45, 0.30)  # 25% indifferent
    assert stats.simulated_power(0.45, 0.30, n, n_sim=6000, seed=1) == pytest.approx(0.80, abs=0.03)
    assert stats.ratings_needed(0.45, 0.30, power=0.9) > n
    with pytest.raises(ValueError):
        stats.ratings_needed(0.4, 0.4)


def test_an_interval_without_spread_is_undefined_not_a_point():
    one = stats.preference_rates(frame(["A"]), n_boot=500)
    assert all(math.isnan(one[k]) for k in ("ci_low_A", "ci_high_A", "diff_ci_low", "p_boot"))
    assert one["wilson_low_A"] == pytest.approx(0.206543, abs=1e-5) and one["wilson_high_A"] == 1.0
    agree = stats.preference_rates(frame(["A"] * 30), n_boot=500)  # every rating A: [1, 1] would lie
    assert math.isnan(agree["ci_low_A"]) and math.isnan(agree["ci_low_B"]) and math.isnan(agree["p_boot"])
    assert agree["p_sign"] == pytest.approx(2 * 0.5**30)  # the sign test still speaks
    one_prompt = stats.preference_rates(frame(["A", "B", "tie"] * 4, prompts=["p"] * 12), n_boot=500)
    assert math.isnan(one_prompt["ci_low_A"])  # one prompt: prompt-clustered resampling cannot vary


@pytest.mark.parametrize("clusters", [stats.CLUSTERS, stats.TWO_WAY, ()])
def test_every_rate_interval_lies_in_the_unit_interval(clusters):
    rng = np.random.default_rng(4)
    for p_a in (0.02, 0.5, 0.97):
        n = 40
        outcomes = list(rng.choice(["A", "B", "tie"], n, p=[p_a, (1 - p_a) / 2, (1 - p_a) / 2]))
        res = stats.preference_rates(
            frame(outcomes, prompts=[f"p{i % 8}" for i in range(n)], raters=[f"r{i % 3}" for i in range(n)]),
            n_boot=400,
            clusters=clusters,
        )
        for o in stats.OUTCOMES:
            for lo, hi in (
                (res[f"ci_low_{o}"], res[f"ci_high_{o}"]),
                (res[f"wilson_low_{o}"], res[f"wilson_high_{o}"]),
            ):
                assert math.isnan(lo) or 0.0 <= lo <= res[f"rate_{o}"] + 1e-9 <= hi + 2e-9 <= 1.0 + 2e-9
        assert math.isnan(res["diff_ci_low"]) or -1.0 <= res["diff_ci_low"] <= res["diff_ci_high"] <= 1.0


def test_the_default_interval_is_prompt_clustered():
    assert stats.CLUSTERS == ("prompt_id",) and stats.TWO_WAY == ("prompt_id", "rater")
    data = frame(
        ["A", "B", "tie", "A"] * 25,
        prompts=[f"p{i % 20}" for i in range(100)],
        raters=[f"r{i % 4}" for i in range(100)],
    )
    assert stats.preference_rates(data, n_boot=300, seed=3) == stats.preference_rates(
        data, n_boot=300, seed=3, clusters=("prompt_id",)
    )
