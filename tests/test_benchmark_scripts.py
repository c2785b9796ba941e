"""The benchmark scripts import and parse their options, and the steps table recommends what it should.

Their speed is measured by running them (benchmarks/README.md), never here."""

from __future__ import annotations

import argparse
import importlib

import pytest

from benchmarks import steps_to_trust

SCRIPTS = ["sampling_speed", "profile_unet", "steps_to_trust", "pipeline_phases", "inception_throughput", "frechet_speed",
           "gpu_cost", "time_grids", "metric_costs", "raters_coverage", "rater_latency"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_prints_its_help(name, capsys):
    module = importlib.import_module(f"benchmarks.{name}")
    with pytest.raises(SystemExit) as done:
        module.main(["--help"])
    assert done.value.code == 0
    assert "usage:" in capsys.readouterr().out


def _row(fid: float, clip: float, acc: float, seconds: float, wide: bool = False) -> dict:
    """A run's overall scores; ``wide``: with the intervals of a reference (FID ±10, CLIP ±2, accuracy ±0.06)."""
    def score(v: float, width: float) -> dict:
        width = width if wide else 0.0
        return {"value": v, "ci_low": v - width, "ci_high": v + width, "n": 56}
    return {"scores": {"fid": score(fid, 10), "clip_score": score(clip, 2), "world_accuracy": score(acc, 0.06)},
            "n": 56, "generate_s": seconds}


def test_the_fewest_steps_inside_every_reference_interval_are_recommended(capsys):
    rows = {("ddpm", 250): _row(100.0, 60.0, 0.30, 400.0, wide=True),
            ("dpmpp_2m", 10): _row(140.0, 60.0, 0.30, 16.0),   # FID outside the reference interval
            ("dpmpp_2m", 15): _row(105.0, 61.0, 0.25, 24.0),   # inside on all three
            ("ddim", 15): _row(95.0, 59.0, 0.35, 23.0),        # inside too, same steps, a little faster
            ("ddim", 25): _row(101.0, 60.0, 0.30, 40.0)}
    args = argparse.Namespace(reference_steps=250, limit_per_category=1, n_test=200)
    steps_to_trust.report(rows, 1.5, args)
    out = capsys.readouterr().out
    assert "recommended: ddim at 15 steps" in out
    # 1000 steps not run: 4 x 400 s over 23 s, times the per-step ratio 1.5
    assert f"= {4 * 400 / 23 * 1.5:.1f}x" in out and "MET" in out
    rows[("ddim", 15)] = _row(95.0, 59.0, 0.10, 23.0)  # accuracy now outside: the next one wins
    steps_to_trust.report(rows, None, args)
    assert "recommended: dpmpp_2m at 15 steps" in capsys.readouterr().out
