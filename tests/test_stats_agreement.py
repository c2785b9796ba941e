"""Krippendorff's alpha on textbook examples, and control-trial accuracy / rater exclusion."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from raters_ui import stats

nan = math.nan
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the 4 observers x 12 units
# example with missing values (unit 12 has one value only and is not pairable).
KRIPPENDORFF_2011 = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
        [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
    ]
)
# The worked example of the Wikipedia article (3 coders, 15 units).
WIKIPEDIA = np.array(
    [
        [nan, nan, nan, nan, nan, 3, 4, 1, 2, 1, 1, 3, 3, nan, 3],
        [1, nan, 2, 1, 3, 3, 4, 3, nan, nan, nan, nan, nan, nan, nan],
        [nan, nan, 2, 1, 3, 4, 4, nan, 2, 1, 1, 3, 3, nan, 4],
    ]
)


@pytest.mark.parametrize(
    "level, expected", [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)]
)
def test_alpha_krippendorff_2011_example(level, expected):
    assert stats.krippendorff_alpha(KRIPPENDORFF_2011, level) == pytest.approx(expected, abs=5e-4)


def test_alpha_wikipedia_example():
    assert stats.krippendorff_alpha(WIKIPEDIA, "nominal") == pytest.approx(0.691, abs=5e-4)
    assert stats.krippendorff_alpha(WIKIPEDIA, "interval") == pytest.approx(0.811, abs=5e-4)


def test_alpha_small_case_by_hand():
    # Two raters, units (1,1), (1,2), (2,2): coincidences o11 = 2, o12 = o21 = 1, o22 = 2, n = 6,
    # n1 = n2 = 3. alpha = 1 - (n-1) * (o12 + o21) / (n1 n2 + n2 n1) = 1 - 5 * 2 / 18 = 4/9.
    data = np.array([[1, 1, 2], [1, 2, 2]], dtype=float)
    assert stats.krippendorff_alpha(data) == pytest.approx(4 / 9)
    assert stats.krippendorff_alpha(np.array([[1, 2, 3], [1, 2, 3]], dtype=float)) == pytest.approx(1.0)
    assert math.isnan(stats.krippendorff_alpha(np.array([[1, 1], [1, 1]], dtype=float)))


def test_alpha_from_long_matches_the_matrix_form():
    rows = [
        (f"u{u}", f"c{c}", KRIPPENDORFF_2011[c, u])
        for c in range(4)
        for u in range(12)
        if not math.isnan(KRIPPENDORFF_2011[c, u])
    ]
    long = pd.DataFrame(rows, columns=["unit", "rater", "value"])
    assert stats.alpha_from_long(long, unit="unit", rater="rater", value="value", level="ordinal") == pytest.approx(
        0.815, abs=5e-4
    )


def ratings(rows: list[tuple[str, str, object]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rater": [r for r, _, _ in rows],
            "kind": [k for _, k, _ in rows],
            "correct": pd.array([c for _, _, c in rows], dtype="boolean"),
        }
    )


def test_control_accuracy_and_exclusion():
    df = ratings(
        [("r1", "control", True)] * 4
        + [("r1", "control", False)]  # 4/5 = 0.8: passes
        + [("r2", "control", True)] * 3
        + [("r2", "control", False)] * 2  # 3/5 = 0.6: fails
        + [("r2", "control", None)]  # not graded
        + [("r3", "main", None)] * 3  # no controls
        + [("r1", "main", None), ("r2", "main", None)]
    )
    acc = stats.control_accuracy(df, threshold=0.8).set_index("rater")
    assert acc.loc["r1", "controls"] == 5 and acc.loc["r1", "correct"] == 4
    assert acc.loc["r1", "accuracy"] == pytest.approx(0.8) and bool(acc.loc["r1", "passed"])
    assert acc.loc["r2", "accuracy"] == pytest.approx(0.6) and not bool(acc.loc["r2", "passed"])
    assert math.isnan(acc.loc["r3", "accuracy"]) and pd.isna(acc.loc["r3", "passed"])
    kept, excluded = stats.exclude_raters(df, 0.8)
    assert excluded == ["r2"] and set(kept["rater"]) == {"r1", "r3"}
    _, strict = stats.exclude_raters(df, 0.8, keep_unchecked=False)
    assert strict == ["r2", "r3"]
