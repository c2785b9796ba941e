"""Bradley–Terry: an exact two-system answer, a cross-check against direct maximisation, and a
synthetic tournament whose true order must be recovered."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

from raters_ui import stats


def comparisons(pairs: list[tuple[str, str, str | None]], n_prompts: int = 20, n_raters: int = 10) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "system_1": [a for a, _, _ in pairs],
            "system_2": [b for _, b, _ in pairs],
            "winner": [w for _, _, w in pairs],
            "prompt_id": [f"p{i % n_prompts}" for i in range(len(pairs))],
            "rater": [f"r{(i * 7) % n_raters}" for i in range(len(pairs))],
        }
    )


def test_two_systems_have_the_closed_form_answer():
    # With two systems the MLE is p1/p2 = W1/W2: 30 wins vs 10 -> log 3 apart; 20 ties add 10
    # half-wins to each side -> log(40/20) = log 2.
    wins = np.array([[0.0, 30.0], [10.0, 0.0]])
    theta = stats.bradley_terry_mm(wins, prior=0.0)
    assert theta[0] - theta[1] == pytest.approx(math.log(3), abs=1e-8)
    assert theta.sum() == pytest.approx(0.0, abs=1e-12)
    df = comparisons([("x", "y", "x")] * 30 + [("x", "y", "y")] * 10 + [("y", "x", None)] * 20)
    out = stats.bradley_terry(df, n_boot=0, prior=0.0).set_index("system")
    assert out.loc["x", "score"] - out.loc["y", "score"] == pytest.approx(math.log(2), abs=1e-8)
    assert out.loc["x", "rank"] == 1 and out.loc["x", "comparisons"] == 60


def test_mm_agrees_with_direct_likelihood_maximisation():
    rng = np.random.default_rng(0)
    wins = rng.integers(1, 20, size=(4, 4)).astype(float)
    np.fill_diagonal(wins, 0)

    def nll(theta: np.ndarray) -> float:
        t = np.concatenate([[0.0], theta])
        diff = t[:, None] - t[None, :]
        return float(-(wins * (diff - np.logaddexp(0, diff))).sum())

    direct = np.concatenate([[0.0], minimize(nll, np.zeros(3), method="BFGS", options={"gtol": 1e-10}).x])
    direct -= direct.mean()
    assert stats.bradley_terry_mm(wins, prior=0.0) == pytest.approx(direct, abs=1e-5)


def test_synthetic_tournament_recovers_the_true_order():
    true = {"s1": 1.2, "s2": 0.6, "s3": 0.0, "s4": -0.6, "s5": -1.2}
    rng = np.random.default_rng(7)
    rows = []
    for a, b in itertools.combinations(true, 2):
        for _ in range(150):
            p = 1 / (1 + math.exp(-(true[a] - true[b])))
            rows.append((a, b, a if rng.random() < p else b))
    order = rng.permutation(len(rows))
    df = comparisons([rows[i] for i in order], n_prompts=50, n_raters=25)
    out = stats.bradley_terry(df, n_boot=200)
    assert list(out["system"]) == ["s1", "s2", "s3", "s4", "s5"]
    est = out.set_index("system")["score"]
    for s, t in true.items():
        assert est[s] == pytest.approx(t, abs=0.2)
    bounds = zip(out["system"], out["ci_low"], out["ci_high"], strict=True)
    inside = sum(lo <= true[s] <= hi for s, lo, hi in bounds)
    assert inside >= 4
    assert (out["ci_high"] - out["ci_low"]).between(0.05, 1.0).all()


def test_a_system_that_never_wins_gets_a_finite_score_with_the_prior():
    df = comparisons([("a", "b", "a")] * 10 + [("b", "c", "b")] * 10 + [("a", "c", "a")] * 10)
    out = stats.bradley_terry(df, n_boot=50).set_index("system")
    assert np.isfinite(out["score"]).all() and np.isfinite(out["ci_low"]).all()
    assert list(out.sort_values("rank").index) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="not connected"):
        stats.bradley_terry(comparisons([("a", "b", "a"), ("c", "d", "c")]), n_boot=0)
    with pytest.raises(ValueError, match="neither"):
        stats.bradley_terry(comparisons([("a", "b", "z")]), n_boot=0)


def test_components_of_the_comparison_graph():
    assert stats.components(["a", "b", "c", "d", "e"], [("a", "b"), ("c", "d"), ("b", "c")]) == [
        ["a", "b", "c", "d"],
        ["e"],
    ]
    assert stats.components(["a", "b"], []) == [["a"], ["b"]]
    assert stats.components(["x", "y", "z"], [("x", "y"), ("y", "z")]) == [["x", "y", "z"]]


def test_bootstrap_replicates_that_break_the_graph_are_left_out():
    # A chain a-b-c whose b-c link rests on one prompt: replicates without that prompt have no
    # common scale for c; they must not pull c's interval towards the centring artefact.
    rows = [("a", "b", "a" if i % 3 else "b") for i in range(40)] + [("b", "c", "b")] * 4
    df = pd.DataFrame(
        {
            "system_1": [r[0] for r in rows],
            "system_2": [r[1] for r in rows],
            "winner": [r[2] for r in rows],
            "prompt_id": [f"p{i % 20}" for i in range(40)] + ["p-bc"] * 4,
            "rater": ["r"] * 44,
        }
    )
    out = stats.bradley_terry(df, n_boot=300, seed=1).set_index("system")
    assert np.isfinite(out["ci_low"]).all() and out.loc["c", "score"] < -3
    # Replicates that lost the b-c link used to leave c at the centre (0), stretching its interval
    # up to ~0.1; without them c stays far below the others.
    assert out.loc["c", "ci_high"] < -2 and out.loc["a", "ci_low"] > out.loc["b", "score"]
