"""The benchmark scripts import and parse their options, and the steps table recommends what it should.

Their speed is measured by running them (benchmarks/README.md), never here."""

from __future__ import annotations

import argparse
import importlib

import pytest

from benchmarks.scripts import precision_effect, steps_to_trust

SCRIPTS = [
    "sampling_speed",
    "profile_unet",
    "steps_to_trust",
    "pipeline_phases",
    "inception_throughput",
    "frechet_speed",
    "gpu_cost",
    "time_grids",
    "metric_costs",
    "raters_coverage",
    "rater_latency",
    "precision_effect",
    "clip_throughput",
]


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_prints_its_help(name, capsys):
    module = importlib.import_module(f"benchmarks.scripts.{name}")
    with pytest.raises(SystemExit) as done:
        module.main(["--help"])
    assert done.value.code == 0
    assert "usage:" in capsys.readouterr().out


def _row(fid: float, clip: float, acc: float, seconds: float, wide: bool = False) -> dict:
    """A run's overall scores; ``wide``: with the intervals of a reference (FID ±10, CLIP ±2, accuracy ±0.06)."""

    def score(v: float, width: float) -> dict:
        width = width if wide else 0.0
        return {"value": v, "ci_low": v - width, "ci_high": v + width, "n": 56}

    return {
        "scores": {"fid": score(fid, 10), "clip_score": score(clip, 2), "world_accuracy": score(acc, 0.06)},
        "n": 56,
        "generate_s": seconds,
    }


def test_the_fewest_steps_inside_every_reference_interval_are_recommended(capsys):
    rows = {
        ("ddpm", 250): _row(100.0, 60.0, 0.30, 400.0, wide=True),
        ("dpmpp_2m", 10): _row(140.0, 60.0, 0.30, 16.0),  # FID outside the reference interval
        ("dpmpp_2m", 15): _row(105.0, 61.0, 0.25, 24.0),  # inside on all three
        ("ddim", 15): _row(95.0, 59.0, 0.35, 23.0),  # inside too, same steps, a little faster
        ("ddim", 25): _row(101.0, 60.0, 0.30, 40.0),
    }
    args = argparse.Namespace(reference_steps=250, limit_per_category=1, n_test=200)
    steps_to_trust.report(rows, 1.5, args)
    out = capsys.readouterr().out
    assert "recommended: ddim at 15 steps" in out
    # 1000 steps not run: 4 x 400 s over 23 s, times the per-step ratio 1.5
    assert f"= {4 * 400 / 23 * 1.5:.1f}x" in out and "MET" in out
    rows[("ddim", 15)] = _row(95.0, 59.0, 0.10, 23.0)  # accuracy now outside: the next one wins
    steps_to_trust.report(rows, None, args)
    assert "recommended: dpmpp_2m at 15 steps" in capsys.readouterr().out


def test_the_imagen_pytorch_ratio_is_measured_only_when_a_configuration_is_recommended(monkeypatch, tmp_path, capsys):
    rows = {
        ("ddpm", 250): _row(100.0, 60.0, 0.30, 400.0, wide=True),
        ("dpmpp_2m", 10): _row(140.0, 60.0, 0.30, 16.0),
    }  # outside: nothing to recommend
    measured = []
    monkeypatch.setattr(steps_to_trust, "run_configs", lambda *a: rows)
    monkeypatch.setattr(steps_to_trust, "anchor_ratio", lambda: measured.append(1) or 1.5)
    steps_to_trust.main(["--out", str(tmp_path)])
    assert measured == [] and "recommended: none" in capsys.readouterr().out
    rows[("dpmpp_2m", 10)] = _row(101.0, 60.0, 0.30, 16.0)
    steps_to_trust.main(["--out", str(tmp_path)])
    assert measured == [1] and "recommended: dpmpp_2m at 10 steps" in capsys.readouterr().out


def test_a_runs_folder_refuses_other_world_options_and_an_ancestral_extra_runs_once(tmp_path):
    args = argparse.Namespace(limit_per_category=1, n_test=200, batch_size=56)
    assert steps_to_trust.run_folder(tmp_path, args)["IMAGEN_BENCH_RUNS"] == str(tmp_path)
    steps_to_trust.run_folder(tmp_path, args)  # the same options: its runs are reused
    with pytest.raises(SystemExit, match="--limit-per-category 1 \\(asked 4\\)"):
        steps_to_trust.run_folder(tmp_path, argparse.Namespace(limit_per_category=4, n_test=200, batch_size=56))
    runs = steps_to_trust.configs(1000, ["ddpm:250", "ddpm:1000", "ddpm:100", "ddim:10", "ddpm:50"])
    assert runs[:4] == [("ddpm", 1000), ("ddpm", 250), ("ddpm", 100), ("ddpm", 50)]
    assert len(runs) == len(set(runs)) == 4 + len(steps_to_trust.FEW_STEPS)


def _change(delta: float, low: float | None, high: float | None) -> dict:
    return {"delta": delta, "ci_low": low, "ci_high": high}


def test_bf16_is_within_noise_only_when_the_paired_interval_holds_zero_and_the_value_is_inside_fp32s():
    fp32 = _row(100.0, 60.0, 0.30, 80.0, wide=True)["scores"]
    bf16 = _row(104.0, 60.5, 0.28, 90.0)["scores"]
    assert precision_effect.within_noise(_change(4.0, -1.0, 9.0), fp32["fid"], bf16["fid"])
    assert not precision_effect.within_noise(_change(4.0, 1.0, 9.0), fp32["fid"], bf16["fid"])  # paired: it moved
    far = _row(115.0, 60.0, 0.30, 90.0)["scores"]["fid"]  # paired interval holds 0, value outside fp32's interval
    assert not precision_effect.within_noise(_change(15.0, -1.0, 30.0), fp32["fid"], far)
    assert not precision_effect.within_noise(_change(0.0, None, None), fp32["fid"], bf16["fid"])  # undefined


def test_the_precision_table_says_no_when_one_score_moves(capsys):
    rows = {
        ("ddpm", 50, "float32"): _row(100.0, 60.0, 0.30, 80.0, wide=True),
        ("ddpm", 50, "bf16"): _row(103.0, 60.2, 0.29, 240.0),
    }
    same = {m: _change(1.0, -2.0, 3.0) for m in precision_effect.METRICS}
    args = argparse.Namespace(samplers=["ddpm:50"], limit_per_category=1, n_test=200)
    assert precision_effect.report(rows, {("ddpm", 50): same}, {("ddpm", 50): 0.9}, args)
    out = capsys.readouterr().out
    assert "within run-to-run noise on FID, CLIP score and world accuracy: yes" in out and "0.33x" in out
    moved = {**same, "world_accuracy": _change(-0.05, -0.08, -0.02)}
    assert not precision_effect.report(rows, {("ddpm", 50): moved}, {("ddpm", 50): 0.9}, args)
    assert "world accuracy: NO" in capsys.readouterr().out


def test_precision_effect_refuses_a_bad_sampler_before_running_anything():
    with pytest.raises(SystemExit, match="sampler:steps"):
        precision_effect.main(["--samplers", "euler:10", "--out", "/nonexistent/never-made"])
