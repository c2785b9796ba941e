"""Statistics for pairwise human preference studies: pure functions over pandas/numpy data.

Vocabulary: here *A* and *B* are two **systems** chosen by the caller (not the screen sides).
A preference frame has one row per rating with an ``outcome`` column in ``{"A", "B", "tie"}``
("tie" = "I am indifferent") and the cluster columns ``prompt_id`` and ``rater``.

Methods (each chosen so that it can be checked by hand):

* **Preference rates** with two intervals. The primary one is a *clustered bootstrap* whose
  clusters are chosen by ``clusters``:

  - ``("prompt_id",)``, the default (:data:`CLUSTERS`): prompts are resampled with
    replacement, every rating of a drawn prompt coming along. Ratings of one prompt are
    correlated, so an i.i.d. interval would be too narrow; this one generalises over prompts
    and treats the raters as the study's one rater pool (each rates many prompts, the A/B
    placement is randomised). In simulation it covers at its nominal level
    (``python -m benchmarks.scripts.raters_coverage``; table in ``benchmarks/README.md``).
  - ``("prompt_id", "rater")`` (:data:`TWO_WAY`), the conservative option: prompts and raters
    resampled independently (Owen 2007, "the pigeonhole bootstrap"); a rating's weight is (times
    its prompt was drawn) × (times its rater was drawn). It also generalises over raters, but it
    counts the per-rating noise up to three times, so with no real rater effect its interval is
    up to √3 wider than needed (it covers ~0.99 at nominal 0.95 and ``p_boot`` rejects ~0.5% at
    5%), and with few raters (< ~10) it is noisy. Use it when the raters themselves are a small
    sample you want to generalise over.
  - ``()``: the i.i.d. bootstrap (only for ratings that really are independent).

  An interval is *undefined* (NaN) when the bootstrap cannot vary: fewer than two ratings, or
  every replicate equal (say all ratings are "A"); a percentile interval [x, x] would claim a
  certainty the data do not have. The Wilson score interval (ratings treated as independent) is
  reported beside it as a check, and stands in where the bootstrap interval is undefined.
  Every interval of a rate lies in [0, 1] (no normal or Student-t interval is used on these
  binary data).
* **Significance**: ``p_sign`` is the exact two-sided sign (binomial) test of A-wins vs B-wins,
  ties excluded, which assumes independent ratings; ``p_boot`` is the two-sided clustered
  bootstrap p-value of rate_A − rate_B = 0 (twice the smaller tail share of bootstrap
  differences on either side of 0), which does not. Report ``p_boot``; ``p_sign`` is a check,
  and the one to trust when there are fewer than ~10 prompts (:data:`FEW_PROMPTS`; the
  bootstrap then understates the variability, as do its intervals). ``p_boot`` is undefined
  (NaN) where the bootstrap cannot vary.
* **Bradley–Terry** scores (log-strengths, mean 0) by Hunter's (2004) MM algorithm; a tie
  counts as half a win for each side, and ``prior`` virtual ties per compared pair keep every
  score finite when a system never wins. Intervals by the same clustered bootstrap; a replicate
  whose comparison graph falls apart (a pair drawn zero times) is left out. Scores exist only
  for systems connected by rated pairs (:func:`components`).
* **Krippendorff's α** for nominal, ordinal, interval and ratio data (coincidence-matrix form,
  Krippendorff 2011), with missing values.
* **Control accuracy** per rater and exclusion below a threshold (the paper's COCO study: 80%).
* **Sample size**: the normal approximation for testing rate_A − rate_B = 0 with ties, checked
  by simulation (:func:`simulated_power`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

OUTCOMES = ("A", "B", "tie")
CLUSTERS = ("prompt_id",)  # the default: see the module doc
TWO_WAY = ("prompt_id", "rater")  # the conservative option
FEW_PROMPTS = 10  # below this many prompts the bootstrap understates the variability


# ---------------------------------------------------------------------------------------------
# Intervals and the two-way bootstrap


def wilson_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for k successes out of n (NaNs when n = 0)."""
    if n <= 0:
        return (math.nan, math.nan)
    z = float(sps.norm.ppf(0.5 + level / 2))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def _codes(frame: pd.DataFrame, clusters: Sequence[str]) -> list[np.ndarray]:
    missing = [c for c in clusters if c not in frame.columns]
    if missing:
        raise ValueError(f"cluster columns {missing} are not in the frame")
    return [pd.factorize(frame[c].astype(str))[0] for c in clusters]


def cluster_bootstrap_weights(
    codes: Sequence[np.ndarray], n_rows: int, n_boot: int, rng: np.random.Generator, chunk: int = 256
) -> Iterator[np.ndarray]:
    """Yield (b × N) weight matrices of the multi-way cluster bootstrap, ``chunk`` rows at a time.

    ``codes`` holds one integer code array per clustering factor (e.g. prompt and rater); each
    factor's levels are resampled with replacement and a row's weight is the product of the draw
    counts of its levels. With no factor this is the ordinary i.i.d. bootstrap.
    """
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        if not codes:
            yield rng.multinomial(n_rows, np.full(n_rows, 1.0 / n_rows), size=b).astype(np.float64)
            continue
        w = np.ones((b, n_rows))
        for c in codes:
            levels = int(c.max()) + 1
            counts = rng.multinomial(levels, np.full(levels, 1.0 / levels), size=b)
            w *= counts[:, c]
        yield w


def _percentile(x: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates; undefined (NaN) when they do not vary."""
    x = x[np.isfinite(x)]
    if x.size < 2 or np.ptp(x) <= 1e-12:
        return (math.nan, math.nan)
    lo, hi = np.percentile(x, [50 * (1 - level), 50 * (1 + level)])
    return (float(lo), float(hi))


# ---------------------------------------------------------------------------------------------
# Preference rates


def preference_rates(
    frame: pd.DataFrame, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0, clusters: Sequence[str] = CLUSTERS
) -> dict[str, float]:
    """Rates of A, B and tie with bootstrap and Wilson intervals and two p-values (see module doc).

    Keys: ``n``, ``n_prompts``, ``n_raters``, ``count_X``, ``rate_X``, ``ci_low_X``,
    ``ci_high_X``, ``wilson_low_X``, ``wilson_high_X`` for X in A/B/tie, ``diff`` (rate_A − rate_B)
    with ``diff_ci_low``/``diff_ci_high``, ``p_sign`` and ``p_boot``.
    """
    bad = set(frame["outcome"].unique()) - set(OUTCOMES)
    if bad:
        raise ValueError(f"outcomes must be in {OUTCOMES}, got {sorted(map(str, bad))}")
    n = len(frame)
    onehot = np.stack([(frame["outcome"] == o).to_numpy(dtype=float) for o in OUTCOMES], axis=1)
    counts = onehot.sum(axis=0).astype(int)
    out: dict[str, float] = {"n": n}
    for c in ("prompt_id", "rater"):
        out[f"n_{c.removesuffix('_id')}s"] = int(frame[c].nunique()) if c in frame else math.nan
    boot = np.full((n_boot, 3), math.nan)
    if n:
        rng = np.random.default_rng(seed)
        row = 0
        for w in cluster_bootstrap_weights(_codes(frame, clusters), len(frame), n_boot, rng):
            tot = w.sum(axis=1, keepdims=True)
            with np.errstate(invalid="ignore", divide="ignore"):
                boot[row : row + len(w)] = (w @ onehot) / tot
            row += len(w)
    for j, o in enumerate(OUTCOMES):
        out[f"count_{o}"] = int(counts[j])
        out[f"rate_{o}"] = counts[j] / n if n else math.nan
        out[f"ci_low_{o}"], out[f"ci_high_{o}"] = _percentile(boot[:, j], level)
        out[f"wilson_low_{o}"], out[f"wilson_high_{o}"] = wilson_interval(int(counts[j]), n, level)
    diff = boot[:, 0] - boot[:, 1]
    out["diff"] = out["rate_A"] - out["rate_B"]
    out["diff_ci_low"], out["diff_ci_high"] = _percentile(diff, level)
    out["p_sign"] = sign_test(int(counts[0]), int(counts[1]))
    out["p_boot"] = bootstrap_p_value(diff)
    return out


def sign_test(wins_a: int, wins_b: int) -> float:
    """Exact two-sided binomial test of wins_a vs wins_b (ties already removed)."""
    if wins_a + wins_b == 0:
        return math.nan
    return float(sps.binomtest(wins_a, wins_a + wins_b, 0.5).pvalue)


def bootstrap_p_value(diffs: np.ndarray) -> float:
    """Two-sided p-value of 0 from bootstrap replicates of a difference (percentile inversion).

    Uses the (1 + count) / (1 + B) convention, so it is never exactly 0; NaN when the
    replicates do not vary (e.g. every rating "A": the bootstrap has no spread to test with,
    use the sign test). With few clusters
    (fewer than ~10 prompts) the bootstrap cannot see the data's variability and this p-value
    is too small: rely on ``p_sign`` there.
    """
    d = diffs[np.isfinite(diffs)]
    if d.size < 2 or np.ptp(d) <= 1e-12:  # no variation: nothing to test against
        return math.nan
    tail = min(np.sum(d <= 0), np.sum(d >= 0))
    return float(min(1.0, 2 * (1 + tail) / (1 + d.size)))


def preference_table(frame: pd.DataFrame, *, by: str | None = "category", **kwargs) -> pd.DataFrame:
    """:func:`preference_rates` per group of ``by`` (sorted) and over all rows ("overall")."""
    rows = []
    if by is not None and by in frame.columns:
        for group, part in frame.groupby(frame[by].fillna("(none)").astype(str), sort=True):
            rows.append({by: group, **preference_rates(part, **kwargs)})
    rows.append({(by or "group"): "overall", **preference_rates(frame, **kwargs)})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Bradley–Terry


def _bt_contributions(frame: pd.DataFrame, systems: list[str]) -> np.ndarray:
    """(N × k²) matrix: row r adds its win (1, or ½ each for a tie) to wins[i, j] (i beat j)."""
    k = len(systems)
    idx = {s: i for i, s in enumerate(systems)}
    m = np.zeros((len(frame), k * k))
    for r, (s1, s2, w) in enumerate(zip(frame["system_1"], frame["system_2"], frame["winner"], strict=True)):
        i, j = idx[s1], idx[s2]
        if w is None or (isinstance(w, float) and math.isnan(w)) or pd.isna(w):
            m[r, i * k + j] += 0.5
            m[r, j * k + i] += 0.5
        elif w == s1:
            m[r, i * k + j] += 1.0
        elif w == s2:
            m[r, j * k + i] += 1.0
        else:
            raise ValueError(f"winner {w!r} is neither {s1!r} nor {s2!r}")
    return m


def bradley_terry_mm(wins: np.ndarray, *, prior: float = 0.1, max_iter: int = 10_000, tol: float = 1e-10) -> np.ndarray:
    """Log-strengths (mean 0) maximising the Bradley–Terry likelihood of a wins matrix.

    ``wins[i, j]`` is the (weighted) number of times i beat j. ``prior`` virtual comparisons per
    pair that was compared at least once, split as a tie, keep strengths finite. Hunter's MM
    update p_i ← W_i / Σ_j n_ij / (p_i + p_j) increases the likelihood at every step.
    """
    wins = np.asarray(wins, dtype=np.float64)
    n = wins + wins.T
    compared = n > 0
    w = wins + np.where(compared, prior / 2, 0.0)
    n = w + w.T
    total_wins = w.sum(axis=1)
    p = np.ones(len(w))
    for _ in range(max_iter):
        denom = (n / (p[:, None] + p[None, :])).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            new = np.where(denom > 0, total_wins / denom, p)
        new = np.maximum(new, 1e-300)
        new /= math.exp(np.mean(np.log(new)))
        if np.max(np.abs(np.log(new) - np.log(p))) < tol:
            p = new
            break
        p = new
    theta = np.log(p)
    return theta - theta.mean()


def components(systems: Sequence[str], pairs: Sequence[tuple[str, str]]) -> list[list[str]]:
    """The connected components of the comparison graph (systems joined by a compared pair),
    largest first; systems in their given order within each."""
    parent = {s: s for s in systems}

    def root(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        parent[root(a)] = root(b)
    groups: dict[str, list[str]] = {}
    for s in parent:
        groups.setdefault(root(s), []).append(s)
    return sorted(groups.values(), key=len, reverse=True)


def _connected(wins: np.ndarray) -> bool:
    adj = (wins + wins.T) > 0
    seen, todo = {0}, [0]
    while todo:
        i = todo.pop()
        for j in np.flatnonzero(adj[i]):
            if j not in seen:
                seen.add(int(j))
                todo.append(int(j))
    return len(seen) == len(wins)


def bradley_terry(
    frame: pd.DataFrame,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    prior: float = 0.1,
    clusters: Sequence[str] = CLUSTERS,
) -> pd.DataFrame:
    """Bradley–Terry log-strengths with clustered bootstrap intervals, best system first.

    ``frame`` has one row per comparison: ``system_1``, ``system_2``, ``winner`` (one of the
    two, or missing for a tie) and the cluster columns. Output columns: ``system``, ``score``,
    ``ci_low``, ``ci_high``, ``rank`` (1 = strongest), ``comparisons``.
    """
    systems = sorted(set(frame["system_1"]) | set(frame["system_2"]))
    if len(systems) < 2:
        raise ValueError("Bradley–Terry needs at least two systems")
    contrib = _bt_contributions(frame, systems)
    k = len(systems)
    wins = contrib.sum(axis=0).reshape(k, k)
    if not _connected(wins):
        raise ValueError("the comparison graph is not connected, so the scores are not comparable (see components())")
    score = bradley_terry_mm(wins, prior=prior)
    reps = []
    if n_boot:
        rng = np.random.default_rng(seed)
        for w in cluster_bootstrap_weights(_codes(frame, clusters), len(frame), n_boot, rng):
            for flat in w @ contrib:
                rep = flat.reshape(k, k)
                # A replicate that drew no comparison linking two parts of the graph has no
                # common scale for them: leave it out rather than let the centring decide.
                reps.append(bradley_terry_mm(rep, prior=prior, tol=1e-8) if _connected(rep) else np.full(k, math.nan))
    boot = np.array(reps) if reps else np.full((1, k), math.nan)
    ci = [_percentile(boot[:, i], level) for i in range(k)]
    n_comp = (wins + wins.T).sum(axis=1)
    out = pd.DataFrame(
        {
            "system": systems,
            "score": score,
            "ci_low": [c[0] for c in ci],
            "ci_high": [c[1] for c in ci],
            "comparisons": n_comp,
        }
    )
    out = out.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    out["rank"] = np.arange(1, k + 1)
    return out


# ---------------------------------------------------------------------------------------------
# Krippendorff's alpha

LEVELS = ("nominal", "ordinal", "interval", "ratio")


def _delta2(values: np.ndarray, n_c: np.ndarray, level: str) -> np.ndarray:
    v = values.astype(np.float64)
    if level == "nominal":
        return 1.0 - np.eye(len(v))
    if level == "interval":
        return (v[:, None] - v[None, :]) ** 2
    if level == "ratio":
        s = v[:, None] + v[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(s != 0, ((v[:, None] - v[None, :]) / s) ** 2, 0.0)
    if level == "ordinal":
        cum = np.concatenate([[0.0], np.cumsum(n_c)])
        lo = np.minimum.outer(np.arange(len(v)), np.arange(len(v)))
        hi = np.maximum.outer(np.arange(len(v)), np.arange(len(v)))
        between = cum[hi + 1] - cum[lo]  # sum of n_g for g from c to k inclusive
        return (between - (n_c[:, None] + n_c[None, :]) / 2) ** 2
    raise ValueError(f"level must be one of {LEVELS}, got {level!r}")


def krippendorff_alpha(data: np.ndarray | pd.DataFrame, level: str = "nominal") -> float:
    """Krippendorff's α of a raters × units table of numeric codes (NaN = not coded).

    Units with fewer than two codes are not pairable and are dropped; α is NaN when the codes
    show no variation at all (expected disagreement 0).
    """
    table = np.asarray(data, dtype=np.float64)
    values = np.unique(table[np.isfinite(table)])
    if values.size == 0:
        return math.nan
    counts = np.stack([(table == v).sum(axis=0) for v in values], axis=1)  # units × values
    m = counts.sum(axis=1)
    counts, m = counts[m >= 2], m[m >= 2]
    if counts.size == 0:
        return math.nan
    # Coincidence matrix: every ordered pair of codes within a unit, weighted 1/(m_u - 1).
    weighted = counts / (m - 1)[:, None]
    o = np.einsum("uc,uk->ck", weighted, counts) - np.diag(weighted.sum(axis=0))
    n_c = o.sum(axis=1)
    n = n_c.sum()
    d2 = _delta2(values, n_c, level)
    expected = (np.outer(n_c, n_c) * d2).sum()
    if expected == 0:
        return math.nan
    return float(1.0 - (n - 1) * (o * d2).sum() / expected)


def alpha_from_long(frame: pd.DataFrame, *, unit: str, rater: str, value: str, level: str = "nominal") -> float:
    """α from one row per (unit, rater, value); a rater coding a unit twice keeps the last code."""
    if frame.empty:
        return math.nan
    table = frame.pivot_table(index=rater, columns=unit, values=value, aggfunc="last")
    return krippendorff_alpha(table.to_numpy(dtype=np.float64), level)


# ---------------------------------------------------------------------------------------------
# Control trials


def control_accuracy(ratings: pd.DataFrame, threshold: float = 0.8) -> pd.DataFrame:
    """Per rater: graded control answers, correct ones, accuracy and whether it meets ``threshold``.

    Uses rows with ``kind == "control"`` and a non-missing boolean ``correct``. Raters without any
    graded control have accuracy NaN and ``passed`` NA.
    """
    raters = sorted(ratings["rater"].astype(str).unique())
    graded = ratings[(ratings["kind"] == "control") & ratings["correct"].notna()]
    g = graded.groupby(graded["rater"].astype(str))["correct"]
    n = g.size().reindex(raters, fill_value=0)
    right = g.sum().reindex(raters, fill_value=0).astype(int)
    acc = (right / n.replace(0, np.nan)).astype(float)
    passed = pd.array([pd.NA if math.isnan(a) else bool(a >= threshold - 1e-12) for a in acc], dtype="boolean")
    return pd.DataFrame(
        {
            "rater": raters,
            "controls": n.to_numpy(),
            "correct": right.to_numpy(),
            "accuracy": acc.to_numpy(),
            "passed": passed,
        }
    )


def exclude_raters(
    ratings: pd.DataFrame, threshold: float = 0.8, *, keep_unchecked: bool = True
) -> tuple[pd.DataFrame, list[str]]:
    """Drop every rating of raters whose control accuracy is below ``threshold``.

    ``keep_unchecked`` keeps raters who answered no graded control. Returns the kept ratings and
    the sorted excluded rater ids.
    """
    acc = control_accuracy(ratings, threshold)
    passed = acc["passed"].fillna(keep_unchecked).to_numpy(dtype=bool)
    excluded = sorted(acc.loc[~passed, "rater"])
    return ratings[~ratings["rater"].astype(str).isin(excluded)], excluded


# ---------------------------------------------------------------------------------------------
# Sample size


def ratings_needed(
    rate_a: float, rate_b: float, *, alpha: float = 0.05, power: float = 0.8, design_effect: float = 1.0
) -> int:
    """Ratings needed to detect rate_A ≠ rate_B with a two-sided test (ties = 1 − A − B).

    Per rating X = +1 (A), −1 (B), 0 (tie); the test is on the mean of X. Under H0 (A and B
    equally likely, same tie rate) Var X = a + b; under H1 Var X = a + b − (a − b)². Then
    n = (z_{1−α/2}·√v0 + z_power·√v1)² / (a − b)², times ``design_effect`` (1 + (m − 1)·ICC for
    m ratings per prompt with intra-prompt correlation ICC).
    """
    if not (0 <= rate_a <= 1 and 0 <= rate_b <= 1 and rate_a + rate_b <= 1 + 1e-12):
        raise ValueError("rates must be in [0, 1] and sum to at most 1")
    d = rate_a - rate_b
    if d == 0:
        raise ValueError("equal rates: no sample size detects a zero difference")
    v0, v1 = rate_a + rate_b, rate_a + rate_b - d * d
    z_a, z_b = sps.norm.ppf(1 - alpha / 2), sps.norm.ppf(power)
    n = (z_a * math.sqrt(v0) + z_b * math.sqrt(v1)) ** 2 / (d * d)
    return math.ceil(n * design_effect - 1e-9)


def simulated_power(
    rate_a: float, rate_b: float, n: int, *, alpha: float = 0.05, n_sim: int = 4000, seed: int = 0
) -> float:
    """Share of simulated studies of ``n`` independent ratings in which the test of
    :func:`ratings_needed` (z = (k_A − k_B)/√(k_A + k_B)) rejects at level ``alpha``."""
    rng = np.random.default_rng(seed)
    k = rng.multinomial(n, [rate_a, rate_b, max(0.0, 1 - rate_a - rate_b)], size=n_sim)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (k[:, 0] - k[:, 1]) / np.sqrt(k[:, 0] + k[:, 1])
    z = np.nan_to_num(z)
    return float(np.mean(np.abs(z) > sps.norm.ppf(1 - alpha / 2)))
