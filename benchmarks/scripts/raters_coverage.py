"""Coverage of the preference-rate intervals of ``study analyze``, by simulation.

    .venv/bin/python -m benchmarks.scripts.raters_coverage [--sims 4000] [--n-boot 1000] [--seed 0]

Each simulated study looks like a DrawBench study: P prompts, each rated by m of R raters
(drawn at random, as the app's least-loaded assignment spreads them), answers A / tie / B with
20% ties and P(A | not tie) = expit(sd_prompt·z_prompt + sd_rater·u_rater), so A and B are equally
good overall (rate_A = rate_B = 0.4): every rejection of "A = B" is a false positive. For each
study the real code (:func:`raters_ui.stats.preference_rates`) computes the interval of rate_A
three ways, and the table reports how often it covers the truth:

* ``prompt``  the prompt-clustered bootstrap (the default, ``clusters=[prompt_id]``);
* ``two-way`` the prompt × rater bootstrap (``clusters=[prompt_id, rater]``, the conservative option);
* ``wilson``  the Wilson interval, ratings treated as independent (reported as a check).

Two truths: ``pool`` is rate_A for the study's own raters (a single rater pool: what the study
measures about its prompts), ``new raters`` is rate_A over the population of raters as well.
They differ only when raters differ (sd_rater > 0). "reject" is the share of studies whose
p-value (``p_boot``; ``p_sign`` for Wilson) is below 0.05 although rate_A = rate_B in the
population. Monte-Carlo standard errors are sqrt(c(1 - c)/sims).
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

from raters_ui.stats import CLUSTERS, TWO_WAY, preference_rates

TIE = 0.2
LEVEL = 0.95
METHODS = {"prompt": CLUSTERS, "two-way": TWO_WAY, "wilson": None}
NODES, WEIGHTS = np.polynomial.hermite_e.hermegauss(80)  # E[f(Z)], Z ~ N(0, 1)
WEIGHTS = WEIGHTS / WEIGHTS.sum()


@dataclass(frozen=True)
class Scenario:
    name: str
    prompts: int
    raters: int
    per_prompt: int
    sd_prompt: float
    sd_rater: float


SCENARIOS = (
    Scenario("prompt effect, 60 prompts", 60, 20, 5, 1.5, 0.0),
    Scenario("+ rater effect, 60 prompts", 60, 20, 5, 1.5, 0.7),
    Scenario("prompt effect, 8 prompts", 8, 20, 5, 1.5, 0.0),
)


def rate_a(sd_prompt: float, shifts: np.ndarray) -> float:
    """rate_A averaged over prompts (quadrature) and the given rater shifts (equal weights)."""
    p = expit(sd_prompt * NODES[:, None] + shifts[None, :]).mean(axis=1)
    return float((1 - TIE) * (WEIGHTS * p).sum())


def population_rate(sc: Scenario) -> float:
    return rate_a(math.hypot(sc.sd_prompt, sc.sd_rater), np.zeros(1))


def simulate_study(sc: Scenario, rng: np.random.Generator) -> tuple[pd.DataFrame, float]:
    """One study's ratings and its pool truth (rate_A for its own raters)."""
    z = rng.standard_normal(sc.prompts)
    u = sc.sd_rater * rng.standard_normal(sc.raters)
    raters = np.stack([rng.choice(sc.raters, sc.per_prompt, replace=False) for _ in range(sc.prompts)])
    prompts = np.repeat(np.arange(sc.prompts), sc.per_prompt)
    who = raters.ravel()
    p_a = (1 - TIE) * expit(sc.sd_prompt * z[prompts] + u[who])
    r = rng.random(len(who))
    outcome = np.where(r < p_a, "A", np.where(r < 1 - TIE, "B", "tie"))
    frame = pd.DataFrame({"prompt_id": [f"p{i}" for i in prompts], "rater": [f"r{j}" for j in who], "outcome": outcome})
    return frame, rate_a(sc.sd_prompt, u)


def run(sims: int, n_boot: int, seed: int) -> pd.DataFrame:
    rows = []
    for k, sc in enumerate(SCENARIOS):
        rng = np.random.default_rng([seed, k])
        truth_pop = population_rate(sc)
        hits = {m: {"pool": 0, "new raters": 0, "reject": 0, "width": 0.0} for m in METHODS}
        for sim in range(sims):
            frame, truth_pool = simulate_study(sc, rng)
            wilson = None
            for method, clusters in METHODS.items():
                if clusters is None:
                    res = wilson
                    lo, hi, p = res["wilson_low_A"], res["wilson_high_A"], res["p_sign"]
                else:
                    res = preference_rates(frame, n_boot=n_boot, level=LEVEL, seed=sim, clusters=clusters)
                    wilson = wilson or res
                    lo, hi, p = res["ci_low_A"], res["ci_high_A"], res["p_boot"]
                h = hits[method]
                h["pool"] += lo <= truth_pool <= hi
                h["new raters"] += lo <= truth_pop <= hi
                h["reject"] += p < 0.05
                h["width"] += hi - lo
        for method, h in hits.items():
            for target in ("pool", "new raters"):
                if target == "new raters" and sc.sd_rater == 0:
                    continue  # the same truth as "pool"
                c = h[target] / sims
                rows.append(
                    {
                        "scenario": sc.name,
                        "ratings": sc.prompts * sc.per_prompt,
                        "interval": method,
                        "truth": target,
                        "coverage": c,
                        "mc_se": math.sqrt(c * (1 - c) / sims),
                        "reject_5%": h["reject"] / sims,
                        "mean_width": h["width"] / sims,
                        "sims": sims,
                    }
                )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sims", type=int, default=4000, help="simulated studies per scenario")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates per interval")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    start = time.perf_counter()
    table = run(args.sims, args.n_boot, args.seed)
    took = time.perf_counter() - start
    print(
        f"coverage of rate_A intervals at nominal {LEVEL}; {args.sims} simulated studies per scenario, "
        f"n_boot={args.n_boot}, seed={args.seed}; 20 raters, 5 ratings per prompt, 20% ties, "
        f"logit sd: prompt 1.5, rater 0 or 0.7"
    )
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(
        f"{took:.0f} s on {platform.machine()} ({platform.python_implementation()} "
        f"{platform.python_version()}, numpy {np.__version__})"
    )


if __name__ == "__main__":
    main()
