"""Who looked: per-rater checks that flag raters who clicked through. Pure functions over the
ratings frame of :func:`raters_ui.ratings.load_ratings`.

Three flags, each with its reason in words:

* **fast**: the rater's median time per item is under the *speed floor*. Times are the server's
  (first served to submitted, ``seconds``), never the browser's alone. The floor is
  ``min_seconds`` when given (``study analyze min_seconds=``, or the study's own setting);
  otherwise it comes from the data: ``max(floor_min, floor_fraction × M)`` where M is the median,
  over raters, of each rater's median time per item. Half the raters would have to be fast to
  move M, and ``floor_min`` (2 s by default: the time to take in 16 images and answer two
  questions is far longer) holds when there are too few raters to tell. A rater needs
  ``min_items`` timed items to be judged.
* **same side**: the side shown on screen (A = left) is random per item, so someone who looks
  picks A and B about equally often whatever they prefer. Each item with a side answer counts
  once (its answers agree on a side; mixed or indifferent items count for neither); the rater is
  flagged when at least ``same_side`` of those items are on one side *and* a two-sided binomial
  test against 1/2 gives p < ``side_alpha`` (so at least 8 items all on one side at the defaults:
  a rater who always picks the truly better system is flagged with chance 2^(1-n) on n items).
* **controls**: control accuracy below ``control_threshold`` (:func:`raters_ui.stats.control_accuracy`).

Image-open counts are reported per rater (share of items on which any image was enlarged) but
never flag anyone: they come from the browser, and a rater may judge well from the grid.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from raters_ui import stats

QUALITY_COLUMNS = [
    "rater",
    "items",
    "timed_items",
    "median_seconds",
    "median_client_seconds",
    "under_floor",
    "side_items",
    "side",
    "side_share",
    "side_p",
    "indifferent_share",
    "controls",
    "control_accuracy",
    "opened_share",
    "opens_per_item",
    "fast",
    "same_side",
    "failed_controls",
    "flagged",
    "reason",
]


@dataclass(frozen=True)
class QualityRules:
    min_seconds: float | None = None  # a fixed speed floor in seconds per item; None: from the data
    floor_fraction: float = 0.25  # floor = max(floor_min, floor_fraction x median of raters' medians)
    floor_min: float = 2.0  # the floor never goes below this
    same_side: float = 0.9  # share of side items on one side ...
    side_alpha: float = 0.01  # ... with a binomial p-value below this
    min_items: int = 3  # items a rater needs before the speed or side check applies
    control_threshold: float = 0.8

    def check(self) -> None:
        if self.min_seconds is not None and not 0 <= self.min_seconds <= 3600:
            raise ValueError(f"min_seconds must be in [0, 3600], got {self.min_seconds}")
        if not (
            0 <= self.floor_fraction <= 1
            and 0 <= self.floor_min <= 3600
            and 0.5 < self.same_side <= 1
            and 0 < self.side_alpha < 1
            and self.min_items >= 1
        ):
            raise ValueError(
                "floor_fraction in [0, 1], floor_min >= 0, same_side in (0.5, 1], side_alpha in (0, 1) "
                "and min_items >= 1"
            )


@dataclass(frozen=True)
class SpeedFloor:
    seconds: float
    rule: str  # the rule in words, with its numbers
    median: float  # median over raters of their median time per item (NaN: no timed items)
    source: str  # "min_seconds" | "data"


def item_times(ratings: pd.DataFrame) -> pd.DataFrame:
    """One row per (rater, item): server ``seconds`` and browser ``client_seconds`` of the item
    (both answers of a submission share them), and whether any image was enlarged."""
    cols = ["rater", "item_id", "seconds", "client_seconds", "image_opens"]
    if ratings.empty:
        return pd.DataFrame(columns=cols)
    frame = ratings.assign(rater=ratings["rater"].astype(str))
    for c in cols[2:]:  # frames built by hand (tests, older exports) may lack them
        if c not in frame:
            frame[c] = np.nan
    return frame.groupby(["rater", "item_id"], as_index=False, sort=False)[cols[2:]].first()


def speed_floor(times: pd.DataFrame, rules: QualityRules) -> SpeedFloor:
    """The speed floor and its rule (see the module doc)."""
    timed = times[times["seconds"].notna()]
    per = timed.groupby("rater")["seconds"].median()
    med = float(per.median()) if len(per) else math.nan
    if rules.min_seconds is not None:
        return SpeedFloor(
            float(rules.min_seconds), f"{rules.min_seconds:g} s per item (min_seconds)", med, "min_seconds"
        )
    if math.isnan(med):
        return SpeedFloor(
            rules.floor_min, f"{rules.floor_min:g} s per item (floor_min; no timed items yet)", med, "data"
        )
    floor = max(rules.floor_min, rules.floor_fraction * med)
    rule = (
        f"{floor:.1f} s per item = max({rules.floor_min:g} s, {rules.floor_fraction:g} x {med:.1f} s, the median "
        f"over {len(per)} rater(s) of each rater's median time per item)"
    )
    return SpeedFloor(floor, rule, med, "data")


def _item_sides(ratings: pd.DataFrame) -> pd.Series:
    """Per (rater, item): "A" or "B" when the item's side answers all pick that side, else None."""

    def side(choices: pd.Series) -> str | None:
        sides = {c for c in choices if c in ("A", "B")}
        return sides.pop() if len(sides) == 1 else None

    if "choice" not in ratings:  # a hand-built frame of outcomes only: no screen sides to check
        return pd.Series(dtype=object, index=pd.MultiIndex.from_arrays([[], []], names=["rater", "item_id"]))
    return ratings.groupby([ratings["rater"].astype(str), "item_id"], sort=False)["choice"].agg(side)


def _side_check(sides: pd.Series, rules: QualityRules) -> dict:
    decided = sides.dropna()
    n = len(decided)
    n_a = int((decided == "A").sum())
    top, k = ("A", n_a) if n_a >= n - n_a else ("B", n - n_a)
    share = k / n if n else math.nan
    p = float(sps.binomtest(k, n, 0.5).pvalue) if n else math.nan
    flag = bool(n >= rules.min_items and share >= rules.same_side - 1e-12 and p < rules.side_alpha)
    return {"side_items": n, "side": top if n else None, "side_share": share, "side_p": p, "same_side": flag}


def _reason(row: dict, floor: SpeedFloor, rules: QualityRules) -> str:
    parts = []
    if row["fast"]:
        parts.append(
            f"fast: median {row['median_seconds']:.1f} s per item < floor {floor.seconds:.1f} s "
            f"({row['under_floor']:.0%} of {row['timed_items']} items under it)"
        )
    if row["same_side"]:
        parts.append(
            f"same side: {row['side_share']:.0%} of {row['side_items']} items on side {row['side']} "
            f"(binomial p = {row['side_p']:.2g})"
        )
    if row["failed_controls"]:
        parts.append(f"controls: {row['control_accuracy']:.0%} right < {rules.control_threshold:.0%}")
    return "; ".join(parts)


def rater_quality(ratings: pd.DataFrame, rules: QualityRules | None = None) -> tuple[pd.DataFrame, SpeedFloor]:
    """Per rater, the checks of the module doc (:data:`QUALITY_COLUMNS`), and the speed floor used."""
    rules = rules or QualityRules()
    rules.check()
    times = item_times(ratings)
    floor = speed_floor(times, rules)
    if ratings.empty:
        return pd.DataFrame(columns=QUALITY_COLUMNS), floor
    controls = stats.control_accuracy(ratings, rules.control_threshold).set_index("rater")
    sides = _item_sides(ratings)
    rows = []
    for rater, part in times.groupby("rater", sort=True):
        timed = part["seconds"].dropna()
        answers = ratings.loc[ratings["rater"].astype(str) == rater].get("choice", pd.Series(dtype=object))
        opens = part["image_opens"].fillna(0)
        row = {
            "rater": rater,
            "items": len(part),
            "timed_items": len(timed),
            "median_seconds": float(timed.median()) if len(timed) else math.nan,
            "median_client_seconds": float(part["client_seconds"].median())
            if part["client_seconds"].notna().any()
            else math.nan,
            "under_floor": float((timed < floor.seconds).mean()) if len(timed) else math.nan,
            "indifferent_share": float((answers == "indifferent").mean()) if len(answers) else math.nan,
            "controls": int(controls.loc[rater, "controls"]),
            "control_accuracy": float(controls.loc[rater, "accuracy"]),
            "opened_share": float((opens > 0).mean()),
            "opens_per_item": float(opens.mean()),
            **_side_check(
                sides.loc[rater] if rater in sides.index.get_level_values(0) else pd.Series(dtype=object), rules
            ),
        }
        row["fast"] = bool(len(timed) >= rules.min_items and row["median_seconds"] < floor.seconds)
        passed = controls.loc[rater, "passed"]
        row["failed_controls"] = bool(passed is not pd.NA and not passed)
        row["flagged"] = row["fast"] or row["same_side"] or row["failed_controls"]
        row["reason"] = _reason(row, floor, rules)
        rows.append(row)
    return pd.DataFrame(rows, columns=QUALITY_COLUMNS), floor


def flagged_raters(table: pd.DataFrame) -> list[str]:
    return sorted(table.loc[table["flagged"].astype(bool), "rater"].astype(str)) if len(table) else []


def rules_dict(rules: QualityRules) -> dict:
    return asdict(rules)
